#!/usr/bin/env bash
# Runs every fuzz target for N seconds each (default 20). Needs a nightly toolchain
# (cargo-fuzz uses -Z flags); installs cargo-fuzz if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
if ! cargo +nightly --version >/dev/null 2>&1; then
    # The parsers' property tests still ran in the test suite; this gate needs nightly.
    echo "fuzz: NOT RUN: no nightly toolchain here (rustup toolchain install nightly)" >&2
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cd fuzz
for t in $(cargo +nightly fuzz list); do
    echo "fuzz: $t for ${secs}s"
    cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048
done
