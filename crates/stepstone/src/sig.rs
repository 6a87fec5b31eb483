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

impl Quirks {
    /// Appends the names in p0f's notation (`df,id+`) to `out`.
    pub fn push_names(self, out: &mut Vec<u8>) {
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if self.has(bit) {
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(name.as_bytes());
                first = false;
            }
        }
    }
}

impl fmt::Display for Quirks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_bytes(f, |b| self.push_names(b))
    }
}

/// Displays what `push` appends (the byte writers are the one implementation of the notation).
fn display_bytes(f: &mut fmt::Formatter<'_>, push: impl FnOnce(&mut Vec<u8>)) -> fmt::Result {
    let mut b = Vec::with_capacity(96);
    push(&mut b);
    f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?)
}

/// Appends a number in decimal.
fn push_num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
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

impl Layout {
    /// Appends the layout in p0f's notation (`mss,sok,ts,nop,ws`) to `out`.
    pub fn push_names(&self, out: &mut Vec<u8>) {
        for (i, &k) in self.kinds().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match k {
                opt::EOL => {
                    out.extend_from_slice(b"eol+");
                    push_num(out, self.eol_pad);
                }
                opt::NOP => out.extend_from_slice(b"nop"),
                opt::MSS => out.extend_from_slice(b"mss"),
                opt::WS => out.extend_from_slice(b"ws"),
                opt::SOK => out.extend_from_slice(b"sok"),
                opt::SACK => out.extend_from_slice(b"sack"),
                opt::TS => out.extend_from_slice(b"ts"),
                other => {
                    out.push(b'?');
                    push_num(out, other);
                }
            }
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_bytes(f, |b| self.push_names(b))
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

/// Everything of an [`Observed`] (and the answered SYN's MSS) that its raw signature and the
/// matcher read, packed into six words: equal keys give equal `raw_sig` text and equal matches
/// on one database. Left out: the sequence number, the TOS, and the timestamp's value (only
/// whether it is zero counts). For caches keyed by packet shape.
#[derive(Clone, Copy, Debug, Eq)]
pub struct SigKey([u64; 6]);

impl PartialEq for SigKey {
    /// Word by word without a branch (the derived comparison calls `memcmp`).
    #[inline]
    fn eq(&self, o: &Self) -> bool {
        self.0.iter().zip(&o.0).fold(0, |d, (a, b)| d | (a ^ b)) == 0
    }
}

// The option kinds fill exactly three of the key's words.
const _: () = assert!(MAX_TCP_OPT == 24);

impl std::hash::Hash for SigKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for w in self.0 {
            h.write_u64(w);
        }
    }
}

impl Observed {
    /// This packet's [`SigKey`] when it answers a SYN with MSS `syn_mss` (0: a SYN).
    #[inline]
    pub fn sig_key(&self, syn_mss: u16) -> SigKey {
        // Kinds past `len` stay zero (`Layout::push` writes only below it), so whole words
        // compare equal exactly when the layouts do.
        let k = &self.layout.kinds;
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&k[i * 8..i * 8 + 8]);
            u64::from_le_bytes(x)
        };
        let a = u64::from(self.kind == Kind::SynAck)
            | u64::from(self.ver == IpVer::V6) << 1
            | u64::from(self.payload) << 2
            | u64::from(self.ts1 != 0) << 3
            | u64::from(self.ttl) << 8
            | u64::from(self.ip_opt_len) << 16
            | u64::from(self.wscale) << 24
            | u64::from(self.layout.len) << 32
            | u64::from(self.layout.eol_pad) << 40;
        let b = u64::from(self.mss)
            | u64::from(self.win) << 16
            | u64::from(self.tot_hdr) << 32
            | u64::from(syn_mss) << 48;
        SigKey([a, b, u64::from(self.quirks.0), w(0), w(1), w(2)])
    }
}

/// Distinct raw signatures kept by [`RawSigCache`] before it starts over.
pub const RAW_SIG_CACHE_MAX: usize = 4096;

/// Remembers the `raw_sig` text of each packet shape ([`SigKey`]): traffic repeats a few
/// stacks at a few distances, and copying the text is cheaper than writing it.
#[derive(Default)]
pub struct RawSigCache {
    map: std::collections::HashMap<SigKey, (u32, u16), foldhash::fast::RandomState>,
    text: Vec<u8>,
}

impl RawSigCache {
    /// Appends `o`'s raw signature (as [`Observed::push_raw_sig`]) to `out`.
    #[inline]
    pub fn push(&mut self, o: &Observed, syn_mss: u16, out: &mut Vec<u8>) {
        let key = o.sig_key(syn_mss);
        if let Some(&(at, len)) = self.map.get(&key) {
            let at = at as usize;
            out.extend_from_slice(&self.text[at..at + usize::from(len)]);
            return;
        }
        if self.map.len() >= RAW_SIG_CACHE_MAX {
            self.map.clear();
            self.text.clear();
        }
        let start = out.len();
        o.push_raw_sig(syn_mss, out);
        let sig = &out[start..];
        // At most 24 options of at most 7 bytes plus the fixed fields: always fits a u16.
        if let (Ok(at), Ok(len)) = (u32::try_from(self.text.len()), u16::try_from(sig.len())) {
            self.text.extend_from_slice(sig);
            self.map.insert(key, (at, len));
        }
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

impl Observed {
    /// Appends p0f's `raw_sig` to `out` (what [`Observed::raw_sig`] displays), with no other
    /// allocation: the fast path of `ashiato fingerprint`.
    pub fn push_raw_sig(&self, syn_mss: u16, out: &mut Vec<u8>) {
        let o = self;
        out.push(b'0' + o.ver.digit());
        out.push(b':');
        push_num(out, o.ttl);
        out.push(b'+');
        let dist = o.guess_dist();
        if dist > MAX_DIST {
            out.push(b'?');
        } else {
            push_num(out, dist);
        }
        out.push(b':');
        push_num(out, o.ip_opt_len);
        out.push(b':');
        if o.mss == SPECIAL_MSS && o.kind == Kind::SynAck {
            out.push(b'*');
        } else {
            push_num(out, o.mss);
        }
        out.push(b':');
        match o.win_multi(syn_mss) {
            Some(WinMulti::Mss(m)) if m > 0 => {
                out.extend_from_slice(b"mss*");
                push_num(out, m);
            }
            Some(WinMulti::Mtu(m)) if m > 0 => {
                out.extend_from_slice(b"mtu*");
                push_num(out, m);
            }
            _ => push_num(out, o.win),
        }
        out.push(b',');
        push_num(out, o.wscale);
        out.push(b':');
        o.layout.push_names(out);
        out.push(b':');
        o.quirks.push_names(out);
        out.extend_from_slice(if o.payload { b":+" } else { b":0" });
    }
}

impl fmt::Display for RawSig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        display_bytes(f, |b| self.o.push_raw_sig(self.syn_mss, b))
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
