#!/usr/bin/env bash
# The tables of docs/benchmarks.md §19: traces that are right under the conditions of a real
# federation, on a CAIDA topology.
#
#   (a) accuracy against accuracy_bound, participation 20/50/80/100 % × probes sized at 1e-3
#       and 1e-6 for their load, with background, duplicated packets and multipath;
#   (b) a core-only federation (8 % of ASes, most customers first): localized and
#       mean_candidates, against the single-packet anchor (90 % to < 2 candidate ASes);
#   (c) mesh against recursive mode at 1,000 domains: accuracy, median trace time, memory.
#
#   scripts/trace-accuracy.sh [TOPOLOGY_FILE] [DOMAINS] [SEEDS] [BIG_DOMAINS]
set -euo pipefail
cd "$(dirname "$0")/.."
topo=${1:-../shared/data/topology/snap-as-caida20071105.txt}
domains=${2:-300}
seeds=${3:-3}
big=${4:-1000}
bin=./target/release/ashiato
[ -x "$bin" ] || cargo build --release --locked
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
hard=(--background 50 --duplicates 10% --multipath 20%)
for fpr in 1e-3 1e-6; do
    for p in 20 50 80 100; do
        for s in $(seq 1 "$seeds"); do
            "$bin" lab --topology "$topo" --domains "$domains" --participation "$p%" --seed "$s" \
                --probe-fpr "$fpr" "${hard[@]}" --traces 3 --json --out "$out/run-$fpr-$p-$s" \
                > "$out/a-$fpr-$p-$s.json"
        done
    done
done
for s in $(seq 1 "$seeds"); do
    "$bin" lab --topology "$topo" --domains "$big" --participation 8% --participants core \
        --seed "$s" --traces 3 --json --out "$out/run-core-$s" > "$out/core-$s.json"
done
for mode in recursive mesh; do
    "$bin" lab --topology "$topo" --domains "$big" --participation 50% --mode "$mode" \
        --origins 20 --packets 100 --seed 2 --traces 10 --json --out "$out/run-$mode" \
        > "$out/big-$mode.json"
done
python3 - "$out" "$seeds" "$domains" "$big" <<'PY'
import json, sys
out, seeds, domains, big = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
load = lambda f: json.load(open(f"{out}/{f}"))
print(f"(a) {domains} domains, {seeds} seeds per cell; background 50 pps/link, 10 % duplicated attack packets, 20 % multipath domains\n")
print("| probes sized for | participation | accuracy | accuracy_bound | wrong (with confidence) | false_attribution_bound | packets in gaps (unreliable) |")
print("|---|---|---|---|---|---|---|")
for fpr in ("1e-3", "1e-6"):
    for p in (20, 50, 80, 100):
        rs = [load(f"a-{fpr}-{p}-{s}.json") for s in range(1, seeds + 1)]
        det = sum(r["detected"] for r in rs)
        acc = sum(r["correct"] for r in rs) / det
        bound = sum(r["accuracy_bound"] * r["detected"] for r in rs) / det
        gaps = sum(r["gap_packets"] for r in rs)
        unrel = sum(g["packets"] for r in rs for g in r["gaps"] if g["reason"] == "unreliable")
        print(f"| {fpr} | {p} % | {acc:.3f} | {bound:.3f} | {sum(r['wrong'] for r in rs)} ({sum(r['wrong_confident'] for r in rs)}) | "
              f"{sum(r['false_attribution_bound'] for r in rs):.2e} | {gaps} ({unrel}) |")
print(f"\n(b) {big} domains, core only (8 %), {seeds} seeds\n")
print("| seed | participants | accuracy | localized | mean_candidates | wrong (with confidence) |")
print("|---|---|---|---|---|---|")
for s in range(1, seeds + 1):
    r = load(f"core-{s}.json")
    print(f"| {s} | {r['participants']} | {r['accuracy']:.3f} | {r['localized']:.3f} | {r['mean_candidates']:.2f} | {r['wrong']} ({r['wrong_confident']}) |")
print(f"\n(c) {big} domains, 50 % participation, 20 origins × 100 packets, seed 2\n")
print("| mode | detected | accuracy | accuracy_bound | wrong (with confidence) | truncated | capped | median trace | p99 | resident memory |")
print("|---|---|---|---|---|---|---|---|---|---|")
for m in ("recursive", "mesh"):
    r = load(f"big-{m}.json")
    print(f"| {m} | {r['detected']} | {r['accuracy']:.3f} | {r['accuracy_bound']:.3f} | {r['wrong']} ({r['wrong_confident']}) | {r['truncated']} | {r['capped']} | "
          f"{r['median_ms']:.0f} ms | {r['p99_ms']:.0f} ms | {r['rss_bytes'] / 2**20:.0f} MiB |")
PY
