#!/usr/bin/env bash
# Sets up what the tests need on a fresh Debian machine and runs the whole test suite.
#
# As root (CI, a container, a root shell) it installs what is missing with apt-get and runs
# every test. As a user it installs through sudo, builds as that user, and runs the test
# binaries through `sudo -E` (cargo's target runner): network-namespace and live-capture tests
# need root, and they fail, not skip, without it.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root=()
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        echo "scripts/test.sh: run it as root or install sudo: the namespace and live-capture tests need root" >&2
        exit 1
    fi
fi

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v tcpdump >/dev/null || need+=(tcpdump)
# DarkFlow: the inline gateway's rules, and argus for the agreement tests.
command -v iptables >/dev/null || need+=(iptables)
command -v argus >/dev/null || need+=(argus-server)
command -v ra >/dev/null || need+=(argus-client)
command -v python3 >/dev/null || need+=(python3)
# The store's PostgreSQL tests start a private server with initdb/pg_ctl (not on PATH in
# Debian, so look where the package puts them); graphviz renders attack graphs.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need+=(postgresql)
command -v dot >/dev/null || need+=(graphviz)
# The center test talks to `ashiato center` with curl and client certificates.
command -v curl >/dev/null || need+=(curl)
# Fingerprints are checked label for label against the real p0f 3 and its own database.
command -v p0f >/dev/null || [ -x /usr/sbin/p0f ] || need+=(p0f)
# The center's interactive graph page is checked in headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
# The stepping-stone relay lab's TCP-terminating relay and its direct scanners.
command -v socat >/dev/null || need+=(socat)
command -v nmap >/dev/null || need+=(nmap)
# The host-tracing lab's C&C: a real IRC server (run in the foreground with its own config).
command -v ngircd >/dev/null || [ -x /usr/sbin/ngircd ] || need+=(ngircd)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup.rs)" >&2; exit 1; }

if [ ${#as_root[@]} -gt 0 ]; then
    host=$(rustc -vV | sed -n 's/^host: //p' | tr 'a-z-' 'A-Z_')
    export "CARGO_TARGET_${host}_RUNNER=sudo -E"
    # Ask for the password once, before the build, not in the middle of the test output.
    sudo -v
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi
