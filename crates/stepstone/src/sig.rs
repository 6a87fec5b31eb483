//! The p0f 3 signature model: what one SYN or SYN/ACK shows ([`Observed`]), what a p0f.fp line
//! asks for ([`Signature`]), and p0f's own text notation for both.
//!
//! Notation (p0f 3 README, section 5): `ver:ittl:olen:mss:wsize,scale:olayout:quirks:pclass`.
//! An observed packet prints as p0f's `raw_sig`, e.g.
//! `4:64+0:0:1460:mss*20,7:mss,sok,ts,nop,ws:df,id+:0`: the TTL field is the TTL seen plus
//! the guessed hop distance (`+?` when the guess is above 35), and the window is written as a
//! multiple of the MSS or MTU when it is one (the same tests as p0f's `detect_win_multi`).

use std::fmt;

/// Most TCP options recorded per packet (p0f's `MAX_TCP_OPT`); parsing stops there.
pub const MAX_TCP_OPT: usize = 24;
/// Hop distances above this are not believed (p0f's `MAX_DIST`).
pub const MAX_DIST: u8 = 35;
/// The MSS p0f-sendsyn puts in its probes; a SYN/ACK echoing it prints `*` for the MSS.
pub const SPECIAL_MSS: u16 = 1331;

/// IP version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum IpVer {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVer {
    fn digit(self) -> u8 {
        match self {
            IpVer::V4 => 4,
            IpVer::V6 => 6,
        }
    }
}

/// Which packet of the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Kind {
    /// A SYN (client side, p0f's `[tcp:request]`).
    #[serde(rename = "syn")]
    Syn,
    /// A SYN/ACK (server side, p0f's `[tcp:response]`).
    #[serde(rename = "syn+ack")]
    SynAck,
}

impl Kind {
    /// `syn` or `syn+ack`, as p0f names the observation.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Syn => "syn",
            Kind::SynAck => "syn+ack",
        }
    }
}

/// Quirk bits, with p0f's values and names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Quirks(pub u32);

impl Quirks {
    /// `ecn`: ECN bits in IP or TCP.
    pub const ECN: u32 = 0x0000_0001;
    /// `df`: don't fragment.
    pub const DF: u32 = 0x0000_0002;
    /// `id+`: nonzero IP ID with DF.
    pub const NZ_ID: u32 = 0x0000_0004;
    /// `id-`: zero IP ID without DF.
    pub const ZERO_ID: u32 = 0x0000_0008;
    /// `0+`: the IPv4 must-be-zero bit is set.
    pub const NZ_MBZ: u32 = 0x0000_0010;
    /// `flow`: nonzero IPv6 flow label.
    pub const FLOW: u32 = 0x0000_0020;
    /// `seq-`: zero sequence number.
    pub const ZERO_SEQ: u32 = 0x0000_1000;
    /// `ack+`: nonzero ACK number without the ACK flag.
    pub const NZ_ACK: u32 = 0x0000_2000;
    /// `ack-`: zero ACK number with the ACK flag.
    pub const ZERO_ACK: u32 = 0x0000_4000;
    /// `uptr+`: nonzero urgent pointer without URG.
    pub const NZ_URG: u32 = 0x0000_8000;
    /// `urgf+`: URG flag.
    pub const URG: u32 = 0x0001_0000;
    /// `pushf+`: PUSH flag.
    pub const PUSH: u32 = 0x0002_0000;
    /// `ts1-`: own timestamp zero.
    pub const OPT_ZERO_TS1: u32 = 0x0100_0000;
    /// `ts2+`: peer timestamp nonzero on a SYN.
    pub const OPT_NZ_TS2: u32 = 0x0200_0000;
    /// `opt+`: nonzero bytes after EOL.
    pub const OPT_EOL_NZ: u32 = 0x0400_0000;
    /// `exws`: window scale above 14.
    pub const OPT_EXWS: u32 = 0x0800_0000;
    /// `bad`: options that could not be parsed.
    pub const OPT_BAD: u32 = 0x1000_0000;

    /// Names in p0f's printing order.
    pub const NAMES: [(u32, &'static str); 17] = [
        (Self::DF, "df"),
        (Self::NZ_ID, "id+"),
        (Self::ZERO_ID, "id-"),
        (Self::ECN, "ecn"),
        (Self::NZ_MBZ, "0+"),
        (Self::FLOW, "flow"),
        (Self::ZERO_SEQ, "seq-"),
        (Self::NZ_ACK, "ack+"),
        (Self::ZERO_ACK, "ack-"),
        (Self::NZ_URG, "uptr+"),
        (Self::URG, "urgf+"),
        (Self::PUSH, "pushf+"),
        (Self::OPT_ZERO_TS1, "ts1-"),
        (Self::OPT_NZ_TS2, "ts2+"),
        (Self::OPT_EOL_NZ, "opt+"),
        (Self::OPT_EXWS, "exws"),
        (Self::OPT_BAD, "bad"),
    ];

    /// This bit is set.
    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

impl fmt::Display for Quirks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.has(bit) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// TCP option kinds p0f names.
pub mod opt {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No-operation.
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WS: u8 = 3;
    /// SACK permitted.
    pub const SOK: u8 = 4;
    /// SACK.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TS: u8 = 8;
}

/// The order of TCP option kinds, as sent (at most [`MAX_TCP_OPT`]), and the EOL padding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    kinds: [u8; MAX_TCP_OPT],
    len: u8,
    /// Bytes after an EOL option (p0f's `eol+N`).
    pub eol_pad: u8,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            kinds: [0; MAX_TCP_OPT],
            len: 0,
            eol_pad: 0,
        }
    }
}

impl Layout {
    /// The option kinds in order.
    pub fn kinds(&self) -> &[u8] {
        &self.kinds[..usize::from(self.len)]
    }

    /// Appends a kind; false when full.
    pub fn push(&mut self, kind: u8) -> bool {
        if usize::from(self.len) >= MAX_TCP_OPT {
            return false;
        }
        self.kinds[usize::from(self.len)] = kind;
        self.len += 1;
        true
    }

    /// Number of options.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// No options.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Layout({self})")
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &k) in self.kinds().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match k {
                opt::EOL => write!(f, "eol+{}", self.eol_pad)?,
                opt::NOP => f.write_str("nop")?,
                opt::MSS => f.write_str("mss")?,
                opt::WS => f.write_str("ws")?,
                opt::SOK => f.write_str("sok")?,
                opt::SACK => f.write_str("sack")?,
                opt::TS => f.write_str("ts")?,
                other => write!(f, "?{other}")?,
            }
        }
        Ok(())
    }
}

/// Everything p0f looks at in one SYN or SYN/ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Observed {
    /// SYN or SYN/ACK.
    pub kind: Kind,
    /// IP version.
    pub ver: IpVer,
    /// TTL (hop limit) as received.
    pub ttl: u8,
    /// IPv4 options length in bytes (0 for IPv6, as in p0f).
    pub ip_opt_len: u8,
    /// The MSS option's value, 0 without one.
    pub mss: u16,
    /// The window field.
    pub win: u16,
    /// The window-scale option's shift, 0 without one.
    pub wscale: u8,
    /// Option layout.
    pub layout: Layout,
    /// Quirks.
    pub quirks: Quirks,
    /// The segment carries data.
    pub payload: bool,
    /// IP header plus TCP header length (p0f's `tot_hdr`, for the MTU test).
    pub tot_hdr: u16,
    /// The timestamp option's own value (0 without one).
    pub ts1: u32,
    /// The DSCP bits (IPv4 TOS >> 2, IPv6 traffic class >> 2).
    pub tos: u8,
    /// The sequence number (for duplicate detection).
    pub seq: u32,
}

/// How the window relates to the MSS or MTU (p0f's `detect_win_multi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinMulti {
    /// A multiple of the MSS (or of a guessed MSS).
    Mss(u16),
    /// A multiple of the MTU.
    Mtu(u16),
}

impl Observed {
    /// The window as a multiple of the MSS or MTU, tried in p0f's order: MSS, MSS − 12 (with
    /// timestamps), 1460 and 1448 (MTU 1500 on IPv4), 1440 and 1428 (IPv6), then the MTU as
    /// MSS + 40, MSS + the actual headers, MSS + 60 (IPv6) and 1500, then the SYN's MSS and
    /// that − 12 (for a SYN/ACK, `syn_mss` nonzero).
    pub fn win_multi(&self, syn_mss: u16) -> Option<WinMulti> {
        let win = i32::from(self.win);
        let mss = i32::from(self.mss);
        if win == 0 || mss < 100 {
            return None;
        }
        let v6 = self.ver == IpVer::V6;
        let tot = i32::from(self.tot_hdr);
        let syn = i32::from(syn_mss);
        let tries: [(bool, i32, bool); 12] = [
            (true, mss, false),
            (self.ts1 != 0, mss - 12, false),
            (true, 1460, false),
            (true, 1448, false),
            (v6, 1440, false),
            (v6, 1428, false),
            (true, mss + 40, true),
            (true, mss + tot, true),
            (v6, mss + 60, true),
            (true, 1500, true),
            (syn != 0, syn, false),
            (syn != 0, syn - 12, false),
        ];
        for (on, div, mtu) in tries {
            // A zero or negative divisor never divides (p0f would fault on zero; it cannot
            // reach one because mss >= 100 and a nonzero SYN MSS came from a packet).
            if on && div > 0 && win % div == 0 {
                let m = u16::try_from(win / div).unwrap_or(u16::MAX);
                return Some(if mtu {
                    WinMulti::Mtu(m)
                } else {
                    WinMulti::Mss(m)
                });
            }
        }
        None
    }

    /// The hop distance guessed from the TTL alone (to the next of 32, 64, 128, 255).
    pub fn guess_dist(&self) -> u8 {
        guess_dist(self.ttl)
    }

    /// p0f's `raw_sig` for this packet; `syn_mss` is the MSS of the SYN a SYN/ACK answers (0
    /// if unknown), used only by the window test.
    pub fn raw_sig(&self, syn_mss: u16) -> RawSig<'_> {
        RawSig { o: self, syn_mss }
    }
}

/// The hop distance from a TTL to the next initial TTL of 32, 64, 128 or 255.
pub fn guess_dist(ttl: u8) -> u8 {
    match ttl {
        0..=32 => 32 - ttl,
        33..=64 => 64 - ttl,
        65..=128 => 128 - ttl,
        _ => 255 - ttl,
    }
}

/// Displays an [`Observed`] in p0f's notation.
pub struct RawSig<'a> {
    o: &'a Observed,
    syn_mss: u16,
}

impl fmt::Display for RawSig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.o;
        let dist = o.guess_dist();
        if dist > MAX_DIST {
            write!(f, "{}:{}+?:{}:", o.ver.digit(), o.ttl, o.ip_opt_len)?;
        } else {
            write!(f, "{}:{}+{}:{}:", o.ver.digit(), o.ttl, dist, o.ip_opt_len)?;
        }
        if o.mss == SPECIAL_MSS && o.kind == Kind::SynAck {
            f.write_str("*:")?;
        } else {
            write!(f, "{}:", o.mss)?;
        }
        match o.win_multi(self.syn_mss) {
            Some(WinMulti::Mss(m)) if m > 0 => write!(f, "mss*{m}")?,
            Some(WinMulti::Mtu(m)) if m > 0 => write!(f, "mtu*{m}")?,
            _ => write!(f, "{}", o.win)?,
        }
        write!(
            f,
            ",{}:{}:{}:{}",
            o.wscale,
            o.layout,
            o.quirks,
            if o.payload { "+" } else { "0" }
        )
    }
}

/// The window part of a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WinSpec {
    /// `*`: any window.
    Any,
    /// An exact window.
    Value(u16),
    /// `%N`: a multiple of N.
    Mod(u16),
    /// `mss*N`.
    Mss(u16),
    /// `mtu*N`.
    Mtu(u16),
}

impl fmt::Display for WinSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WinSpec::Any => f.write_str("*"),
            WinSpec::Value(v) => write!(f, "{v}"),
            WinSpec::Mod(v) => write!(f, "%{v}"),
            WinSpec::Mss(v) => write!(f, "mss*{v}"),
            WinSpec::Mtu(v) => write!(f, "mtu*{v}"),
        }
    }
}

/// One `sig = ...` line of a p0f.fp file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    /// IP version (`None`: `*`).
    pub ver: Option<IpVer>,
    /// Initial TTL (with any `+N` already added).
    pub ittl: u8,
    /// `ttl-`: the TTL is unreliable (randomised); only an upper bound.
    pub bad_ttl: bool,
    /// IPv4 options length.
    pub olen: u8,
    /// MSS (`None`: `*`).
    pub mss: Option<u16>,
    /// Window.
    pub win: WinSpec,
    /// Window scale (`None`: `*`).
    pub wscale: Option<u8>,
    /// Option layout and EOL padding.
    pub layout: Layout,
    /// Quirks.
    pub quirks: Quirks,
    /// Payload class (`None`: `*`; `Some(true)`: `+`).
    pub pclass: Option<bool>,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ver {
            None => f.write_str("*")?,
            Some(v) => write!(f, "{}", v.digit())?,
        }
        write!(
            f,
            ":{}{}:{}:",
            self.ittl,
            if self.bad_ttl { "-" } else { "" },
            self.olen
        )?;
        match self.mss {
            None => f.write_str("*")?,
            Some(m) => write!(f, "{m}")?,
        }
        write!(f, ":{},", self.win)?;
        match self.wscale {
            None => f.write_str("*")?,
            Some(s) => write!(f, "{s}")?,
        }
        write!(f, ":{}:{}:", self.layout, self.quirks)?;
        f.write_str(match self.pclass {
            None => "*",
            Some(true) => "+",
            Some(false) => "0",
        })
    }
}
