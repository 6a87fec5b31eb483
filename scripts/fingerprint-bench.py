#!/usr/bin/env python3
"""`ashiato fingerprint` against p0f 3.09b on one capture, one core, in one run
(docs/benchmarks.md section 11).

Usage: scripts/fingerprint-bench.py CAPTURE RUNS ASHIATO [ASHIATO...]

Each round runs every command once, interleaved, pinned to CPU 0 (`taskset -c 0`), output to
/dev/null: each ashiato binary with `--count`, p0f-style text and `--json` (all with p0f's own
database, /etc/p0f/p0f.fp, so both tools do the same matching), then `p0f -r CAPTURE`.
Prints the median wall time and the median CPU time (user + system of the child) of each,
and the ratio to p0f's. CPU time is the figure to quote on a shared machine: wall time also
counts the waits for the core.
"""
import resource
import statistics
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    capture, runs, bins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    cmds = []
    for b in bins:
        for mode in (["--count"], [], ["--json"]):
            name = f"{b.rsplit('/', 1)[-1]} {' '.join(mode) or 'text'}"
            cmds.append((name, [b, "fingerprint", "--pcap", capture,
                                "--db", "/etc/p0f/p0f.fp"] + mode))
    cmds.append(("p0f -r", ["p0f", "-r", capture]))
    wall = {k: [] for k, _ in cmds}
    cpu = {k: [] for k, _ in cmds}

    def used():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    for _ in range(runs):
        for name, cmd in cmds:
            c0, t0 = used(), time.perf_counter()
            subprocess.run(["taskset", "-c", "0"] + cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(used() - c0)
    pw, pc = statistics.median(wall["p0f -r"]), statistics.median(cpu["p0f -r"])
    print(f"{'run':28s} {'wall ms':>9s} {'cpu ms':>9s} {'x p0f (wall)':>13s} {'x p0f (cpu)':>12s}")
    for name, _ in cmds:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:28s} {w * 1e3:9.1f} {c * 1e3:9.1f} {pw / w:13.1f} {pc / c:12.1f}")


if __name__ == "__main__":
    main()
