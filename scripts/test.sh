#!/usr/bin/env bash
# Sets up what the tests need on a fresh Debian machine and runs the whole test suite.
# Namespace and live-capture tests need root (they fail, not skip, without it).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v tcpdump >/dev/null || need+=(tcpdump)
# DarkFlow: the inline gateway's rules, and argus for the agreement tests.
command -v iptables >/dev/null || need+=(iptables)
command -v argus >/dev/null || need+=(argus-server)
command -v ra >/dev/null || need+=(argus-client)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    else
        echo "missing: ${need[*]} (install them, or run as root)" >&2
        exit 1
    fi
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup.rs)" >&2; exit 1; }

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi
