#!/usr/bin/env python3
"""Reference DarkFlow set of a capture, independent of ashiato and of argus.

A flow is (src ip, src port, dst ip, dst port) in the orientation of its SYN. A flow is a
DarkFlow when its first SYN-only packet (SYN set; ACK, RST, FIN clear) gets neither a SYN/ACK
(SYN and ACK set) nor an RST (RST set, any other flags) from the reverse direction
(dst, dport -> src, sport) with a timestamp <= t_first_syn + T. Only packets that come after
the first SYN in file order can answer it; an answer whose timestamp is earlier than the SYN's
(clock steps in the capture) still counts. A SYN whose window runs past the end of the capture
and that has no answer in the capture is a DarkFlow. Re-use of a 4-tuple is not split: the
first SYN of the 4-tuple decides.

Usage: darkflow-truth.py [--timeout SECONDS] [--stats] [--details] FILE...
  stdout: one line per DarkFlow, `src sport dst dport`, sorted byte-wise like `LC_ALL=C sort`
  (IPv4 dotted, IPv6 compressed as Python's ipaddress prints it).
  --stats: per file, on stderr: SYN-only packets, SYN flows, answered flows, DarkFlows.
  --details: instead of the DarkFlow lines, print every SYN flow as
     `src sport dst dport dark|answered first_syn syns answer_kind answer_delay early_answers`
     (answer_kind is synack|rst|-, answer_delay in seconds after the first SYN or -,
     early_answers counts reverse SYN/ACKs or RSTs seen before the first SYN in file order).

Reads pcap (us/ns, either byte order) and pcapng (any byte order, if_tsresol), with link types
Ethernet (802.1Q/802.1ad tags), Linux cooked v1/v2, raw IP, BSD loopback; IPv4 (first
fragments only) and IPv6 (extension headers skipped). Several files are treated as separate
captures and their DarkFlows merged.
"""

import argparse
import ipaddress
import struct
import sys

# --- capture readers ------------------------------------------------------------------------

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW_BSD, LINKTYPE_RAW = 0, 1, 12, 101
LINKTYPE_LOOP, LINKTYPE_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_SLL2 = 108, 113, 228, 229, 276


def read_pcap(f, head):
    magic = head[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    rest = f.read(20)
    if len(rest) < 20:
        return
    linktype = struct.unpack(e + "I", rest[16:20])[0] & 0x0FFFFFFF
    mul = 1 if nano else 1000
    while True:
        rh = f.read(16)
        if len(rh) < 16:
            return
        sec, frac, caplen, _ = struct.unpack(e + "IIII", rh)
        data = f.read(caplen)
        if len(data) < caplen:
            return
        yield sec * 1_000_000_000 + frac * mul, linktype, data


def tsresol_to_ns(r):
    """pcapng if_tsresol byte -> function from timestamp ticks to integer nanoseconds."""
    if r & 0x80:
        shift = r & 0x7F
        return lambda ticks: (ticks * 1_000_000_000) >> shift
    if r <= 9:
        mul = 10 ** (9 - r)
        return lambda ticks: ticks * mul
    div = 10 ** (r - 9)
    return lambda ticks: ticks // div


def read_pcapng(f, head):
    e = "<"
    ifaces = []  # (linktype, ticks -> nanoseconds)
    hdr = head
    while True:
        if len(hdr) < 8:
            return
        if hdr[:4] == b"\x0a\x0d\x0d\x0a":  # section header: byte order may change
            bom = f.read(4)
            if len(bom) < 4:
                return
            e = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
            blen = struct.unpack(e + "I", hdr[4:8])[0]
            body = bom + f.read(blen - 12)
        else:
            blen = struct.unpack(e + "I", hdr[4:8])[0]
            if blen < 12:
                raise ValueError("bad pcapng block length")
            body = f.read(blen - 8)
        if len(body) < blen - 8:
            return
        btype = struct.unpack(e + "I", hdr[:4])[0]
        body = body[: blen - 12]  # without the trailing length
        if btype == 1:  # interface description
            linktype = struct.unpack(e + "H", body[:2])[0]
            to_ns = lambda ticks: ticks * 1000  # noqa: E731 (default: microseconds)
            opts = body[8:]
            while len(opts) >= 4:
                code, olen = struct.unpack(e + "HH", opts[:4])
                if code == 0:
                    break
                if code == 9 and olen >= 1:  # if_tsresol
                    to_ns = tsresol_to_ns(opts[4])
                opts = opts[4 + ((olen + 3) & ~3) :]
            ifaces.append((linktype, to_ns))
        elif btype == 6:  # enhanced packet
            ifid, hi, lo, caplen, _ = struct.unpack(e + "IIIII", body[:20])
            if ifid < len(ifaces):
                linktype, to_ns = ifaces[ifid]
                yield to_ns((hi << 32) | lo), linktype, body[20 : 20 + caplen]
        elif btype == 2:  # obsolete packet block
            ifid, _, hi, lo, caplen, _ = struct.unpack(e + "HHIIII", body[:20])
            if ifid < len(ifaces):
                linktype, to_ns = ifaces[ifid]
                yield to_ns((hi << 32) | lo), linktype, body[20 : 20 + caplen]
        elif btype == 3:  # simple packet: no timestamp, so no timing
            raise ValueError("pcapng simple packet blocks carry no timestamp")
        hdr = f.read(8)


def read_capture(path):
    """(timestamp in integer nanoseconds, link type, frame bytes) for every packet."""
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:4] == b"\x0a\x0d\x0d\x0a":
            yield from read_pcapng(f, head)
        else:
            f.seek(4)  # read_pcap reads the 20 header bytes after the magic
            yield from read_pcap(f, head[:4])


# --- packet decoding ------------------------------------------------------------------------

TH_FIN, TH_SYN, TH_RST, TH_ACK = 0x01, 0x02, 0x04, 0x10


def l3_of(linktype, d):
    """(ethertype-ish 4|6, offset of the IP header) or None."""
    if linktype == LINKTYPE_ETHERNET:
        if len(d) < 14:
            return None
        et, off = struct.unpack(">H", d[12:14])[0], 14
        while et in (0x8100, 0x88A8, 0x9100) and len(d) >= off + 4:
            et, off = struct.unpack(">H", d[off + 2 : off + 4])[0], off + 4
    elif linktype == LINKTYPE_SLL:
        if len(d) < 16:
            return None
        et, off = struct.unpack(">H", d[14:16])[0], 16
    elif linktype == LINKTYPE_SLL2:
        if len(d) < 20:
            return None
        et, off = struct.unpack(">H", d[0:2])[0], 20
    elif linktype in (LINKTYPE_RAW, LINKTYPE_RAW_BSD, 14):
        if not d:
            return None
        v = d[0] >> 4
        return (v, 0) if v in (4, 6) else None
    elif linktype == LINKTYPE_IPV4:
        return (4, 0)
    elif linktype == LINKTYPE_IPV6:
        return (6, 0)
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(d) < 5:
            return None
        v = d[4] >> 4
        return (v, 4) if v in (4, 6) else None
    else:
        return None
    if et == 0x0800:
        return (4, off)
    if et == 0x86DD:
        return (6, off)
    return None


def tcp_of(linktype, d):
    """(src, sport, dst, dport, flags) of a TCP segment, or None."""
    l3 = l3_of(linktype, d)
    if l3 is None:
        return None
    v, off = l3
    if v == 4:
        if len(d) < off + 20 or d[off] >> 4 != 4:
            return None
        ihl = (d[off] & 0x0F) * 4
        if d[off + 9] != 6 or ihl < 20:
            return None
        if struct.unpack(">H", d[off + 6 : off + 8])[0] & 0x1FFF:
            return None  # non-first fragment
        src, dst = d[off + 12 : off + 16], d[off + 16 : off + 20]
        t = off + ihl
    elif v == 6:
        if len(d) < off + 40 or d[off] >> 4 != 6:
            return None
        nh, src, dst, t = d[off + 6], d[off + 8 : off + 24], d[off + 24 : off + 40], off + 40
        while nh != 6:
            if nh in (0, 43, 60) and len(d) >= t + 2:
                nh, t = d[t], t + (d[t + 1] + 1) * 8
            elif nh == 51 and len(d) >= t + 2:
                nh, t = d[t], t + (d[t + 1] + 2) * 4
            elif nh == 44 and len(d) >= t + 8:
                if struct.unpack(">H", d[t + 2 : t + 4])[0] & 0xFFF8:
                    return None  # non-first fragment
                nh, t = d[t], t + 8
            else:
                return None
    else:
        return None
    if len(d) < t + 14:
        return None
    sport, dport = struct.unpack(">HH", d[t : t + 4])
    return src, sport, dst, dport, d[t + 13]


def fmt_ns(ns):
    sec, frac = divmod(abs(ns), 1_000_000_000)
    return f"{'-' if ns < 0 else ''}{sec}.{frac:09d}"


def fmt_addr(a):
    return str(ipaddress.ip_address(a))


# --- the DarkFlow truth ---------------------------------------------------------------------


class Flow:
    __slots__ = ("t_syn", "syns", "answer", "delay", "early")

    def __init__(self, t):
        self.t_syn, self.syns, self.answer, self.delay, self.early = t, 1, None, None, 0


def analyse(path, timeout_ns):
    flows = {}  # (src, sport, dst, dport) -> Flow
    answers_seen = {}  # reverse-direction answers seen before any SYN of the flow: key -> count
    syn_pkts = 0
    for ts, linktype, data in read_capture(path):
        p = tcp_of(linktype, data)
        if p is None:
            continue
        src, sport, dst, dport, fl = p
        if fl & TH_SYN and not fl & (TH_ACK | TH_RST | TH_FIN):
            syn_pkts += 1
            key = (src, sport, dst, dport)
            fw = flows.get(key)
            if fw is None:
                fw = flows[key] = Flow(ts)
                fw.early = answers_seen.pop(key, 0)
            else:
                fw.syns += 1
        if fl & TH_RST or (fl & TH_SYN and fl & TH_ACK):
            key = (dst, dport, src, sport)  # the flow this packet answers
            fw = flows.get(key)
            if fw is None:
                answers_seen[key] = answers_seen.get(key, 0) + 1
            elif fw.answer is None and ts <= fw.t_syn + timeout_ns:
                fw.answer = "rst" if fl & TH_RST else "synack"
                fw.delay = ts - fw.t_syn
    return syn_pkts, flows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=5.0, help="T in seconds (default 5)")
    ap.add_argument("--stats", action="store_true", help="per-file counts on stderr")
    ap.add_argument("--details", action="store_true", help="print every SYN flow, not only DarkFlows")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    rows = {}
    for path in args.files:
        syn_pkts, flows = analyse(path, round(args.timeout * 1e9))
        dark = sum(1 for fw in flows.values() if fw.answer is None)
        if args.stats:
            print(
                f"{path}: syn_pkts={syn_pkts} syn_flows={len(flows)} "
                f"answered={len(flows) - dark} darkflows={dark}",
                file=sys.stderr,
            )
        for (src, sport, dst, dport), fw in flows.items():
            k = (fmt_addr(src), sport, fmt_addr(dst), dport)
            if args.details:
                rows[k] = (
                    "dark" if fw.answer is None else "answered",
                    fmt_ns(fw.t_syn),
                    str(fw.syns),
                    fw.answer or "-",
                    "-" if fw.delay is None else fmt_ns(fw.delay),
                    str(fw.early),
                )
            elif fw.answer is None:
                rows[k] = ()
    # byte-wise order of the lines, as `LC_ALL=C sort` (and scripts/argus-req.sh) gives
    lines = sorted(" ".join([k[0], str(k[1]), k[2], str(k[3]), *rows[k]]) for k in rows)
    sys.stdout.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
