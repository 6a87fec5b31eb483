#!/usr/bin/env bash
# Compares three DarkFlow sets per capture: ashiato's, the independent reference
# (scripts/darkflow-truth.py) and argus's REQ set (scripts/argus-req.sh), and prints one table
# row per file. Usage: scripts/darkflow-agreement.sh [--bin PATH] FILE...
# Needs python3, argus-server and argus-client; builds nothing (default binary:
# target/release/ashiato).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/ashiato
if [ "${1:-}" = --bin ]; then bin="$2"; shift 2; fi
[ -x "$bin" ] || { echo "no $bin: cargo build --release --locked first" >&2; exit 1; }
tmp="$(mktemp -d -t darkflow-agree.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
echo "| capture | ashiato | reference | ashiato ≠ reference | argus REQ | DarkFlow not REQ | REQ not DarkFlow |"
echo "|---|---|---|---|---|---|---|"
for f in "$@"; do
    "$bin" darkflow --pcap "$f" --set-out "$tmp/ours" --no-progress >/dev/null
    python3 scripts/darkflow-truth.py "$f" | sort > "$tmp/ref"
    scripts/argus-req.sh "$f" | sort > "$tmp/argus"
    sort -o "$tmp/ours" "$tmp/ours"
    printf '| %s | %d | %d | %d | %d | %d | %d |\n' "$(basename "$f")" \
        "$(wc -l < "$tmp/ours")" "$(wc -l < "$tmp/ref")" \
        "$(comm -3 "$tmp/ours" "$tmp/ref" | wc -l)" "$(wc -l < "$tmp/argus")" \
        "$(comm -23 "$tmp/ours" "$tmp/argus" | wc -l)" "$(comm -13 "$tmp/ours" "$tmp/argus" | wc -l)"
done
