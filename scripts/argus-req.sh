#!/usr/bin/env bash
# argus's view of unanswered TCP connection requests (state REQ), for comparison with the
# DarkFlow set (scripts/darkflow-truth.py). See docs/argus-notes.md.
#
# Usage: scripts/argus-req.sh [--merge] [--all] [--timeout SECS] FILE...
#
#   default     argus -X -S SECS (SECS = --timeout, default 5): argus cuts a flow into status
#               records at SECS after the record's first packet, so the first record of a flow
#               covers [first packet, first packet + SECS). Prints `saddr sport daddr dport`
#               of every 4-tuple whose EARLIEST record has state REQ (SYN seen, no SYN/ACK,
#               no RST, no ACK-only/data packet in that window), sorted, unique.
#   --merge     argus -X -S 86400, then racluster merges all status records of a 5-tuple
#               (also across argus idle timeouts and 4-tuple reuse). Prints 4-tuples whose
#               merged flow is REQ: argus never saw any answer in the whole capture.
#   --all       instead, print every TCP record (default mode) or merged flow (--merge):
#               `stime saddr sport daddr dport state spkts dpkts` (stime in Unix seconds),
#               sorted by stime.
#   --timeout   the status interval of the default mode (seconds, integer, default 5).
#
# Several FILEs are processed one by one (separate argus runs, separate captures) and their
# lines concatenated (--all) or merged (sort -u).
# Needs argus (argus-server) and ra/racluster (argus-client). Reads pcap and pcapng (argus
# uses libpcap, which reads pcapng since 1.1); if argus rejects a pcapng file it is converted
# with editcap or tcpdump when one of them is installed.
set -euo pipefail

usage() { sed -n '5,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

merge=0 all=0 timeout=5
files=()
while (($#)); do
    case "$1" in
        --merge) merge=1 ;;
        --all) all=1 ;;
        --timeout) shift; (($#)) || usage; timeout="$1" ;;
        --timeout=*) timeout="${1#--timeout=}" ;;
        -h|--help) usage ;;
        --) shift; files+=("$@"); break ;;
        -*) echo "argus-req.sh: unknown option $1" >&2; usage ;;
        *) files+=("$1") ;;
    esac
    shift
done
((${#files[@]})) || usage
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] || { echo "argus-req.sh: --timeout wants a positive integer" >&2; exit 2; }
for tool in argus ra racluster; do
    command -v "$tool" >/dev/null || { echo "argus-req.sh: $tool not found (apt-get install argus-server argus-client)" >&2; exit 1; }
done

tmp="$(mktemp -d -t argus-req.XXXXXX)"
trap 'rm -rf -- "$tmp"' EXIT

# magic of a capture file: pcap, pcapng or other
kind() {
    local m
    m="$(head -c 4 -- "$1" | od -An -tx1 | tr -d ' \n')"
    case "$m" in
        d4c3b2a1|a1b2c3d4|4d3cb2a1|a1b23c4d) echo pcap ;;
        0a0d0d0a) echo pcapng ;;
        *) echo other ;;
    esac
}

# argus -> $2 (argus records). argus exits 0 even when it cannot read its input, so its
# stderr is checked too.
run_argus() {
    local in="$1" out="$2" interval="$3"
    rm -f -- "$out"   # argus -w appends
    # -X: ignore /etc/argus.conf (it may set -S and an output file of its own).
    if ! argus -X -S "$interval" -r "$in" -w "$out" 2>"$tmp/argus.err" \
        || grep -qE 'ArgusError|pcap_open_offline|unknown packet file format' "$tmp/argus.err" \
        || [[ ! -s "$out" ]]; then
        return 1
    fi
}

process() {
    local f="$1" in="$1" interval
    [[ -r "$f" ]] || { echo "argus-req.sh: cannot read $f" >&2; return 1; }
    case "$(kind "$f")" in
        pcap|pcapng) ;;
        *) echo "argus-req.sh: $f: not a pcap or pcapng file" >&2; return 1 ;;
    esac
    if ((merge)); then interval=86400; else interval="$timeout"; fi
    if ! run_argus "$in" "$tmp/a.argus" "$interval"; then
        if [[ "$(kind "$f")" == pcapng ]]; then
            in="$tmp/converted.pcap"
            if command -v editcap >/dev/null; then
                editcap -F pcap "$f" "$in"
            elif command -v tcpdump >/dev/null; then
                tcpdump -r "$f" -w "$in" 2>/dev/null
            else
                echo "argus-req.sh: argus cannot read pcapng $f and neither editcap nor tcpdump is installed" >&2
                return 1
            fi
            run_argus "$in" "$tmp/a.argus" "$interval" || { cat "$tmp/argus.err" >&2; return 1; }
        else
            cat "$tmp/argus.err" >&2
            return 1
        fi
    fi
    # -X: ignore /etc/ra.conf and ~/.rarc (RA_PORT_DIRECTION there can swap src and dst for
    # display). -n: numeric ports. -u -p6: Unix time with microseconds. -c ' ': one space
    # between fields, no padding. Output: stime saddr sport daddr dport state spkts dpkts.
    local fields=(-s stime saddr sport daddr dport state spkts dpkts)
    if ((merge)); then
        # racluster merges the status records of a flow (default key: the 5-tuple, with
        # direction correction). -M norep: no aggregation statistics needed.
        racluster -X -n -u -p6 -c ' ' -M norep -r "$tmp/a.argus" "${fields[@]}" - tcp
    else
        ra -X -n -u -p6 -c ' ' -r "$tmp/a.argus" "${fields[@]}" - tcp
    fi | awk 'NF == 8 && $1 ~ /^[0-9]+(\.[0-9]+)?$/ && $3 ~ /^[0-9]+$/ && $5 ~ /^[0-9]+$/'
}

export LC_ALL=C   # byte-wise sort: same order as darkflow-truth.py
out="$tmp/out"
: >"$out"
for f in "${files[@]}"; do
    process "$f" >"$tmp/records"
    if ((all)); then
        sort -s -k1,1n "$tmp/records" >>"$out"
    elif ((merge)); then
        awk '$6 == "REQ" { print $2, $3, $4, $5 }' "$tmp/records" >>"$out"
    else
        # the earliest record of each 4-tuple (stable sort by start time, first one wins)
        sort -s -k1,1n "$tmp/records" \
            | awk '!seen[$2 " " $3 " " $4 " " $5]++ && $6 == "REQ" { print $2, $3, $4, $5 }' >>"$out"
    fi
done
if ((all)); then cat "$out"; else sort -u "$out"; fi
