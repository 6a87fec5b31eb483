#!/usr/bin/env bash
# The audit-speed figure of docs/benchmarks.md: a generated day of host history at the seed's
# upper rate (600 MB) and a list of 10,000 claims; `ashiato hostcheck` over all claims in one
# pass, against tshark with one display filter per claim (timed on a sample of claims, as
# 10,000 tshark passes over 600 MB would take days; the per-claim time is multiplied out).
# Usage: scripts/hostcheck-bench.sh [DIR] [SAMPLES]   (needs tshark and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-/tmp/hostcheck-bench}"
samples="${2:-3}"
bin="${ASHIATO:-${CARGO_TARGET_DIR:-target}/release/ashiato}"
mkdir -p "$dir"
[ -s "$dir/day.pcap" ] || "$bin" hostsynth --out "$dir/day.pcap" --claims-out "$dir/claims.jsonl"
ls -l "$dir/day.pcap"
cat "$dir/day.pcap" > /dev/null # into the page cache for both tools
rc=0
/usr/bin/time -f "hostcheck: %e s wall, %U s user, %M KiB max RSS" \
    "$bin" hostcheck --pcap "$dir/day.pcap" --claims "$dir/claims.jsonl" --json \
    > "$dir/hostcheck.jsonl" || rc=$?
[ "$rc" -eq 3 ] || { echo "hostcheck exit $rc, expected 3 (claims matched)"; exit 1; }
grep -c '"claim_match"' "$dir/hostcheck.jsonl" | sed 's/^/hostcheck: claims matched: /'
total=0
# The sample: the first matched claim and unmatched ones from the end of the list.
for line in "$(head -1 "$dir/claims.jsonl")" $(tail -n "$((samples - 1))" "$dir/claims.jsonl"); do
    v=$(sed 's/.*"victim":"\([^"]*\)".*/\1/' <<<"$line")
    from=$(date -u -d "$(sed 's/.*"from":"\([^"]*\)".*/\1/' <<<"$line")" +%s)
    to=$(date -u -d "$(sed 's/.*"to":"\([^"]*\)".*/\1/' <<<"$line")" +%s)
    # The same question hostcheck answers for a claim: packets to or from the victim
    # inside the window widened by the 300 s skew.
    filter="(ip.dst==$v || ip.src==$v) && frame.time_epoch >= $((from - 300)) && frame.time_epoch <= $((to + 300))"
    start=$(date +%s.%N)
    n=$(tshark -n -r "$dir/day.pcap" -Y "$filter" -T fields -e frame.number 2>/dev/null | wc -l)
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    echo "tshark: claim victim $v: $n packets in $secs s"
    total=$(echo "$total + $secs" | bc)
done
per=$(echo "scale=2; $total / $samples" | bc)
claims=$(wc -l < "$dir/claims.jsonl")
echo "tshark: $per s per claim; x $claims claims = $(echo "$per * $claims" | bc) s"
