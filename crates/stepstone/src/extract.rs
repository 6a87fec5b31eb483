//! From a parsed packet to an [`Observed`] signature: p0f 3.09b's `parse_packet`, quirk for
//! quirk, over `ashiato-wire`'s zero-copy view (so VLAN tags, Linux cooked captures and pcapng
//! come for free).
//!
//! Faithful to p0f, including two of its habits, so labels match p0f's on its own database:
//! - `ack+` (nonzero ACK number on a SYN) is set, as in p0f's `RD32(tcp->ack) & !(flags &
//!   RST)`, only when the lowest bit of the ACK field's first byte on the wire is set (the
//!   `&` is a bitwise and with 1 on a little-endian host);
//! - option parsing stops after [`MAX_TCP_OPT`] options and marks the rest `bad`.
//!
//! Different from p0f: IPv6 packets with extension headers are fingerprinted (p0f drops them)
//! and their options length still counts as 0.

use ashiato_wire::packet::{Ip, L4, Packet};

use crate::sig::{IpVer, Kind, Layout, MAX_TCP_OPT, Observed, Quirks, opt};

/// Why a packet gives no signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Not TCP, or the TCP header was not captured.
    NotTcp,
    /// Neither a SYN nor a SYN/ACK (or a combination p0f calls silly: SYN+FIN, SYN+RST).
    NotHandshake,
    /// An IPv4 fragment.
    Fragment,
    /// The TCP header runs past the captured bytes or the IP length.
    Truncated,
}

/// The p0f signature of a SYN or SYN/ACK.
pub fn observe(pkt: &Packet<'_>) -> Result<Observed, Skip> {
    let L4::Tcp(tcp) = pkt.l4 else {
        return Err(Skip::NotTcp);
    };
    let mut quirks = 0u32;
    let (ver, ttl, ip_opt_len, tos, seg) = match pkt.ip {
        Ip::V4(h) => {
            if h.is_fragment() {
                return Err(Skip::Fragment);
            }
            let hdr = h.header;
            let flags_off = u16::from_be_bytes([hdr[6], hdr[7]]);
            let tos_ecn = hdr[1];
            if tos_ecn & 0x03 != 0 {
                quirks |= Quirks::ECN;
            }
            if flags_off & 0x8000 != 0 {
                quirks |= Quirks::NZ_MBZ;
            }
            if h.dont_fragment {
                quirks |= Quirks::DF;
                if h.id != 0 {
                    quirks |= Quirks::NZ_ID;
                }
            } else if h.id == 0 {
                quirks |= Quirks::ZERO_ID;
            }
            let olen = u8::try_from(hdr.len() - 20).unwrap_or(u8::MAX);
            (IpVer::V4, h.ttl, olen, tos_ecn >> 2, h.payload)
        }
        Ip::V6(h) => {
            let first = u32::from_be_bytes([h.header[0], h.header[1], h.header[2], h.header[3]]);
            if first & 0x000f_ffff != 0 {
                quirks |= Quirks::FLOW;
            }
            if (first >> 20) & 0x03 != 0 {
                quirks |= Quirks::ECN;
            }
            let tos = ((first >> 22) & 0x3f) as u8;
            let seg = h.payload.get(h.upper_offset..).unwrap_or(&[]);
            (IpVer::V6, h.hop_limit, 0, tos, seg)
        }
    };
    let flags = tcp.flags.0;
    let syn = flags & 0x02 != 0;
    let ack = flags & 0x10 != 0;
    let rst = flags & 0x04 != 0;
    let fin = flags & 0x01 != 0;
    if !syn || rst || fin {
        return Err(Skip::NotHandshake);
    }
    let kind = if ack { Kind::SynAck } else { Kind::Syn };
    let doff = usize::from(tcp.header_len);
    if doff < 20 || seg.len() < doff {
        return Err(Skip::Truncated);
    }
    let head = &seg[..doff];
    // ECE, CWR, or the NS bit (RFC 3540), as p0f's TCP_NS_RES.
    if flags & 0xc0 != 0 || head[12] & 0x01 != 0 {
        quirks |= Quirks::ECN;
    }
    if tcp.seq == 0 {
        quirks |= Quirks::ZERO_SEQ;
    }
    if ack {
        if tcp.ack == 0 {
            quirks |= Quirks::ZERO_ACK;
        }
    } else if head[8] & 0x01 != 0 {
        // p0f: `RD32(tcp->ack) & !(tcp->flags & TCP_RST)`; RST is excluded above.
        quirks |= Quirks::NZ_ACK;
    }
    if flags & 0x20 != 0 {
        quirks |= Quirks::URG;
    } else if head[18] != 0 || head[19] != 0 {
        quirks |= Quirks::NZ_URG;
    }
    if flags & 0x08 != 0 {
        quirks |= Quirks::PUSH;
    }
    let o = options(&head[20..], kind, &mut quirks);
    let ip_hdr = pkt.ip.header().len();
    Ok(Observed {
        kind,
        ver,
        ttl,
        ip_opt_len,
        mss: o.mss,
        win: tcp.window,
        wscale: o.wscale,
        layout: o.layout,
        quirks: Quirks(quirks),
        payload: tcp.payload_len > 0,
        tot_hdr: u16::try_from(ip_hdr + doff).unwrap_or(u16::MAX),
        ts1: o.ts1,
        tos,
        seq: tcp.seq,
    })
}

struct Opts {
    layout: Layout,
    mss: u16,
    wscale: u8,
    ts1: u32,
}

/// Walks the options as p0f does: fixed-size options are read at their fixed size (a wrong
/// length byte is `bad` but still read), SACK and unknown options by their length byte; any
/// overrun stops the walk and marks `bad`.
fn options(b: &[u8], kind: Kind, quirks: &mut u32) -> Opts {
    let mut o = Opts {
        layout: Layout::default(),
        mss: 0,
        wscale: 0,
        ts1: 0,
    };
    let end = b.len();
    let mut i = 0usize;
    let mut bad = false;
    while i < end {
        if o.layout.len() >= MAX_TCP_OPT {
            bad = true;
            break;
        }
        let k = b[i];
        o.layout.push(k);
        i += 1;
        match k {
            opt::EOL => {
                o.layout.eol_pad = u8::try_from(end - i).unwrap_or(u8::MAX);
                if b[i..].iter().any(|&x| x != 0) {
                    *quirks |= Quirks::OPT_EOL_NZ;
                }
                i = end;
            }
            opt::NOP => {}
            opt::MSS => {
                if i + 3 > end {
                    bad = true;
                    break;
                }
                if b[i] != 4 {
                    *quirks |= Quirks::OPT_BAD;
                }
                o.mss = u16::from_be_bytes([b[i + 1], b[i + 2]]);
                i += 3;
            }
            opt::WS => {
                if i + 2 > end {
                    bad = true;
                    break;
                }
                if b[i] != 3 {
                    *quirks |= Quirks::OPT_BAD;
                }
                o.wscale = b[i + 1];
                if o.wscale > 14 {
                    *quirks |= Quirks::OPT_EXWS;
                }
                i += 2;
            }
            opt::SOK => {
                if i + 1 > end {
                    bad = true;
                    break;
                }
                if b[i] != 2 {
                    *quirks |= Quirks::OPT_BAD;
                }
                i += 1;
            }
            opt::TS => {
                if i + 9 > end {
                    bad = true;
                    break;
                }
                if b[i] != 10 {
                    *quirks |= Quirks::OPT_BAD;
                }
                o.ts1 = u32::from_be_bytes([b[i + 1], b[i + 2], b[i + 3], b[i + 4]]);
                if o.ts1 == 0 {
                    *quirks |= Quirks::OPT_ZERO_TS1;
                }
                if kind == Kind::Syn && b[i + 5..i + 9].iter().any(|&x| x != 0) {
                    *quirks |= Quirks::OPT_NZ_TS2;
                }
                i += 9;
            }
            _ => {
                // SACK takes 10..=34 bytes, anything else 2..=40 (p0f's bounds).
                let (lo, hi) = if k == opt::SACK { (10, 34) } else { (2, 40) };
                let Some(&len) = b.get(i) else {
                    bad = true;
                    break;
                };
                let len = usize::from(len);
                if len < lo || len > hi || i - 1 + len > end {
                    bad = true;
                    break;
                }
                i += len - 1;
            }
        }
    }
    if bad || i != end {
        *quirks |= Quirks::OPT_BAD;
    }
    o
}
