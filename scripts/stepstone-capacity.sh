#!/usr/bin/env bash
# Capacity of the live stepping-stone responder (`ashiato stepstone --iface`) through the
# AF_PACKET ring: a sender namespace offers SYNs at fixed rates from 65,536 source addresses
# over a veth to a sensor namespace where the responder answers them; the sender's kernel
# ends each handshake with a RST (the sources are local addresses of the sender namespace by
# an AnyIP route, and no socket listens), which the responder times as Tp. The responder also
# runs its active phase (ICMP echoes and the SYN probe), which the sender's kernel answers.
#
# Per offered rate: SYNs offered/s (the sender's count), SYNs the responder saw/s,
# SYN/ACKs/s, connections with Tp measured/s (the responder's Prometheus counters), SYNs lost
# before the responder (offered minus seen) and of them those the veth dropped, and the
# responder's CPU (utime+stime from /proc/PID/stat) and the sender's. Then the in-memory core
# (responder_rate) in the same run.
#
# Run as root from the repository root:
#   CARGO_BUILD_JOBS=1 cargo build --release --locked -p ashiato
#   cargo build --release -p ashiato-stepstone --example responder_rate
#   scripts/stepstone-capacity.sh [SECONDS] [RATE...]      (default: 10 s at 2000 10000 40000)
# ASHIATO names another build to measure (default ./target/release/ashiato).
# RESPONDER_ARGS adds flags to the responder (e.g. RESPONDER_ARGS="--pings 0").
set -euo pipefail

SECS=${1:-10}
shift || true
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(2000 10000 40000)
BIN=${ASHIATO:-./target/release/ashiato}
CORE=./target/release/examples/responder_rate
[ -x "$BIN" ] || { echo "build $BIN first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

TAG=$(printf '%04x' $((RANDOM ^ $$ & 0xffff)))
SENS=asc-s-$TAG SEND=asc-c-$TAG VS=ascs$TAG VC=ascc$TAG
PORT=19$((RANDOM % 900 + 100))
RPID= MADE=() SENDER= LOG=
cleanup() {
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null || true
    # Only the namespaces this run made (deleting one removes its end of the veth).
    for n in "${MADE[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -f "$SENDER" "$LOG"
}
trap cleanup EXIT

ip netns add "$SENS" && MADE+=("$SENS")
ip netns add "$SEND" && MADE+=("$SEND")
ip link add "$VS" netns "$SENS" type veth peer name "$VC" netns "$SEND"
ip -n "$SENS" addr add 10.77.0.1/24 dev "$VS"
ip -n "$SEND" addr add 10.77.0.2/24 dev "$VC"
for n in "$SENS" "$SEND"; do ip -n "$n" link set lo up; done
ip -n "$SENS" link set "$VS" up
ip -n "$SEND" link set "$VC" up
# The sources: all of 10.99.0.0/16 is local in the sender namespace (AnyIP).
ip -n "$SEND" route add local 10.99.0.0/16 dev lo
ip -n "$SEND" route add 198.51.100.0/24 via 10.77.0.1
# Resolve the sensor's MAC before the first SYN.
ip netns exec "$SEND" bash -c "echo > /dev/udp/10.77.0.1/9"
sleep 0.3

SENDER=$(mktemp)
cat >"$SENDER" <<'EOF'
# Raw SYN sender: IP_HDRINCL, sources 10.99.0.0/16 in turn, paced per millisecond.
import socket, struct, sys, time
rate, secs = int(sys.argv[1]), float(sys.argv[2])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def syn(i):
    src = bytes([10, 99, (i >> 8) & 255, i & 255]); dst = bytes([198, 51, 100, 9])
    sport = 1024 + (i * 7) % 60000
    opts = struct.pack("!BBHBBBB", 2, 4, 1460, 1, 3, 3, 7)  # MSS, NOP, WS 7
    tcp = struct.pack("!HHIIBBHHH", sport, 22, i * 2654435761 & 0xffffffff, 0,
                      (20 + len(opts)) // 4 << 4, 0x02, 64240, 0, 0) + opts
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xffff, 0, 64, 6, 0, src, dst)
    return ip + tcp, socket.inet_ntoa(dst)
pkts = [syn(i) for i in range(65536)]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
sent, fails, t0 = 0, 0, time.monotonic()
while True:
    el = time.monotonic() - t0
    if el >= secs: break
    due = min(int(el * rate) + 1, int(secs * rate))
    while sent < due:
        p, d = pkts[sent & 0xffff]
        try: s.sendto(p, (d, 0))
        except OSError: fails += 1
        sent += 1
    time.sleep(0.0005)
el = time.monotonic() - t0
print(sent, fails, round(el, 3))
EOF

metric() { # NAME -> the counter's value from the responder's metrics page
    ip netns exec "$SENS" curl -s "http://127.0.0.1:$PORT/metrics" |
        awk -v n="ashiato_stepstone_$1" '$1 == n { print $2 }'
}
# Frames the sender's veth could not hand to the sensor's backlog (the veth's own drops).
veth_drops() { ip netns exec "$SEND" cat "/sys/class/net/$VC/statistics/tx_dropped"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

printf '| offered SYN/s | seen SYN/s | SYN/ACK/s | Tp measured/s | lost before the responder | of which veth | limited | responder CPU %% | sender CPU %% |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for R in "${RATES[@]}"; do
    LOG=$(mktemp)
    ip netns exec "$SENS" "$BIN" stepstone --iface "$VS" --darknet 198.51.100.0/24 \
        --local 10.77.0.1 --rate 10000000 --per-source-rate 1000 \
        --metrics-listen "127.0.0.1:$PORT" --dev-insecure ${RESPONDER_ARGS:-} >/dev/null 2>"$LOG" &
    RPID=$!
    for _ in $(seq 100); do grep -q "answering SYNs" "$LOG" && break; sleep 0.1; done
    grep -q "answering SYNs" "$LOG" || { cat "$LOG" >&2; exit 1; }
    sleep 0.5
    s0=$(metric syns_total); a0=$(metric syn_acks_total); m0=$(metric measured_total)
    v0=$(veth_drops); c0=$(cpu_ticks "$RPID"); t0=$(date +%s.%N)
    read -r SENT FAILS SEL SCPU < <(ip netns exec "$SEND" bash -c \
        "TIMEFORMAT=%U+%S; { time python3 $SENDER $R $SECS; } 2>&1 | tr '\n' ' '; echo")
    sleep 1.5 # the last RSTs, and a metrics snapshot (published every 100 ms)
    t1=$(date +%s.%N); c1=$(cpu_ticks "$RPID"); v1=$(veth_drops)
    s1=$(metric syns_total); a1=$(metric syn_acks_total); m1=$(metric measured_total)
    lim=$(($(metric limited_global_total) + $(metric limited_source_total)))
    kill "$RPID"; wait "$RPID" 2>/dev/null || true; RPID=
    rm -f "$LOG"
    LOG=
    awk -v sent="$SENT" -v fails="$FAILS" -v sel="$SEL" -v scpu="$SCPU" -v secs="$SECS" \
        -v s="$((s1 - s0))" -v a="$((a1 - a0))" -v m="$((m1 - m0))" -v lim="$lim" -v veth="$((v1 - v0))" \
        -v cpu="$((c1 - c0))" -v hz="$HZ" -v t0="$t0" -v t1="$t1" 'BEGIN {
        split(scpu, sc, "+");
        printf "| %d | %d | %d | %d | %d (%.1f %%) | %d | %d | %.0f | %.0f |\n",
            (sent - fails) / sel, s / sel, a / sel, m / sel, sent - fails - s,
            100 * (sent - fails - s) / (sent - fails), veth, lim,
            100 * cpu / hz / (t1 - t0), 100 * (sc[1] + sc[2]) / sel }'
done

if [ -x "$CORE" ]; then
    echo
    echo "in-memory core, same run: $(taskset -c 0 "$CORE" 1000000)"
fi
