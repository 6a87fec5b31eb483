#!/usr/bin/env bash
# The participation table of docs/benchmarks.md §8: `ashiato lab` on a CAIDA topology at
# several shares of participating domains, averaged over several seeds (each seed picks
# another victim, other origins and other participants).
#
#   scripts/lab-participation.sh [TOPOLOGY_FILE] [DOMAINS] [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
topo=${1:-../shared/data/topology/snap-as-caida20071105.txt}
domains=${2:-300}
seeds=${3:-5}
bin=./target/release/ashiato
[ -x "$bin" ] || cargo build --release --locked
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for p in 20 50 80 100; do
    for s in $(seq 1 "$seeds"); do
        "$bin" lab --topology "$topo" --domains "$domains" --participation "$p%" --seed "$s" \
            --traces 3 --json --out "$out/run-$p-$s" > "$out/$p-$s.json"
    done
done
python3 - "$out" "$seeds" <<'PY'
import json, sys, glob
out, seeds = sys.argv[1], int(sys.argv[2])
print(f"| participation | accuracy (mean, min–max over {seeds} seeds) | wrong | packets in gaps | attributed via peering skip | mean path fraction | origins found |")
print("|---|---|---|---|---|---|---|")
for p in (20, 50, 80, 100):
    runs = [json.load(open(f"{out}/{p}-{s}.json")) for s in range(1, seeds + 1)]
    acc = [r["accuracy"] for r in runs]
    det = sum(r["detected"] for r in runs)
    line = "| {}% | {:.2f} ({:.2f}–{:.2f}) | {} | {:.0f} % | {:.0f} % | {:.2f} | {}/{} |".format(
        p, sum(acc) / len(acc), min(acc), max(acc),
        sum(r["wrong"] for r in runs),
        100 * sum(r["gap_packets"] for r in runs) / det,
        100 * sum(r["packets_via_skip"] for r in runs) / det,
        sum(r["mean_path_fraction"] for r in runs) / len(runs),
        sum(r["origins_found"] for r in runs), sum(r["origins_total"] for r in runs))
    print(line)
PY
