//! Printing fingerprints fast: p0f-style text or one JSON object a line, byte for byte what
//! `format!` and serde would write, but appended straight into one output buffer.
//!
//! Design: everything that depends only on the matched signature (its label text, JSON-escaped
//! once; its signature in p0f notation; `line N (`) is rendered once per signature, on first
//! use, and kept in a table indexed by the signature's line (unique per record). Per packet
//! only numbers, addresses, the raw signature and the time are written, with `itoa` and a
//! per-second cache of the RFC 3339 date. The buffer goes to the writer every 64 KiB.
//!
//! The test below keeps the previous `format!`/serde printer as the reference and requires
//! equal bytes for every fingerprint of real captures and of a generated mix of stacks.

use std::io::Write;
use std::net::IpAddr;

use ashiato_stepstone::sig::MAX_DIST;
use ashiato_stepstone::{Database, Fingerprint, Kind, Quality, RawSigCache, Record};

/// Bytes gathered before a write to the output.
const CHUNK: usize = 1 << 16;

/// What is rendered once per matched signature.
struct Cached {
    /// Text: `| os       = LABEL\n` (or `app`).
    text_label: Box<[u8]>,
    /// Text: `line N (`.
    text_line: Box<[u8]>,
    /// JSON: `"label":"LABEL","label_kind":"os","dist":`.
    json_label: Box<[u8]>,
    /// JSON: `,"matched":{"sig":"...","line":N,"label_line":N,"class":...}}` plus newline.
    json_matched: Box<[u8]>,
    generic: bool,
    bad_ttl: bool,
}

/// Writes fingerprints as text or JSON lines.
pub struct Printer<'d> {
    db: &'d Database,
    json: bool,
    by_line: Vec<Option<Cached>>,
    raw: RawSigCache,
    buf: Vec<u8>,
    /// The second of `date` and `date` itself (`YYYY-MM-DDTHH:MM:SS.`).
    sec: Option<(u64, [u8; 20])>,
}

fn quality_str(fp: &Fingerprint<'_>) -> &'static str {
    match (fp.matched.record, fp.matched.quality) {
        (None, _) => "none",
        (Some(_), Quality::Exact) => "exact",
        (Some(_), Quality::Generic) => "generic",
        (Some(_), Quality::Fuzzy) => "fuzzy",
    }
}

fn push_num(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Decimal digits of every byte value, for addresses.
const OCTETS: [([u8; 3], u8); 256] = {
    let mut t = [([0u8; 3], 0u8); 256];
    let mut i = 0;
    while i < 256 {
        let (h, te, o) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            ([b'0' + h, b'0' + te, b'0' + o], 3)
        } else if i >= 10 {
            ([b'0' + te, b'0' + o, 0], 2)
        } else {
            ([b'0' + o, 0, 0], 1)
        };
        i += 1;
    }
    t
};

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            let mut s = [0u8; 15];
            let mut n = 0;
            for (i, b) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    s[n] = b'.';
                    n += 1;
                }
                let (d, len) = OCTETS[usize::from(b)];
                s[n..n + 3].copy_from_slice(&d);
                n += usize::from(len);
            }
            out.extend_from_slice(&s[..n]);
        }
        // Rare enough for the standard formatter (which also compresses zeros as serde does).
        IpAddr::V6(a) => {
            let _ = write!(out, "{a}");
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl<'d> Printer<'d> {
    /// A printer for fingerprints matched against `db`.
    pub fn new(db: &'d Database, json: bool) -> Self {
        let max_line = db
            .request
            .iter()
            .chain(&db.response)
            .map(|r| r.line)
            .max()
            .unwrap_or(0);
        Printer {
            db,
            json,
            by_line: (0..=max_line).map(|_| None).collect(),
            raw: RawSigCache::default(),
            buf: Vec::with_capacity(CHUNK + 4096),
            sec: None,
        }
    }

    /// Renders what belongs to `r` on its first use.
    fn cached(&mut self, r: &Record) {
        let db = self.db;
        self.by_line[r.line].get_or_insert_with(|| {
            let l = db.label(r);
            let field = if l.is_app() { "app" } else { "os" };
            let text = l.text();
            let class = l.class.as_deref().map_or_else(|| "null".into(), json_str);
            Cached {
                text_label: format!("| {field:<8} = {text}\n").into_bytes().into(),
                text_line: format!("line {} (", r.line).into_bytes().into(),
                json_label: format!(
                    "\"label\":{},\"label_kind\":\"{field}\",\"dist\":",
                    json_str(&text)
                )
                .into_bytes()
                .into(),
                json_matched: format!(
                    ",\"matched\":{{\"sig\":{},\"line\":{},\"label_line\":{},\"class\":{class}}}}}\n",
                    json_str(&r.sig.to_string()),
                    r.line,
                    l.line
                )
                .into_bytes()
                .into(),
                generic: l.generic,
                bad_ttl: r.sig.bad_ttl,
            }
        });
    }

    fn push_time(&mut self, ns: u64) {
        let s = ns / 1_000_000_000;
        let date = match self.sec {
            Some((sec, d)) if sec == s => d,
            _ => {
                let full = ashiato_wire::time::rfc3339(s * 1_000_000_000);
                let mut d = [0u8; 20];
                d.copy_from_slice(&full.as_bytes()[..20]);
                self.sec = Some((s, d));
                d
            }
        };
        self.buf.extend_from_slice(&date);
        let mut frac = ns % 1_000_000_000;
        let mut digits = [b'0'; 9];
        for d in digits.iter_mut().rev() {
            *d = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        self.buf.extend_from_slice(&digits);
        self.buf.push(b'Z');
    }

    /// Appends one fingerprint; writes to `out` when a chunk is full.
    pub fn print(&mut self, fp: &Fingerprint<'_>, out: &mut impl Write) -> std::io::Result<()> {
        if self.json {
            self.json_line(fp);
        } else {
            self.text_block(fp);
        }
        if self.buf.len() >= CHUNK {
            out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes what is left.
    pub fn finish(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.buf)?;
        self.buf.clear();
        out.flush()
    }

    fn json_line(&mut self, fp: &Fingerprint<'_>) {
        if let Some(r) = fp.matched.record {
            self.cached(r);
        }
        self.buf.extend_from_slice(b"{\"time\":\"");
        self.push_time(fp.ts_nanos);
        let c = fp
            .matched
            .record
            .and_then(|r| self.by_line[r.line].as_ref());
        let b = &mut self.buf;
        b.extend_from_slice(b"\",\"src\":\"");
        push_ip(b, fp.src);
        b.extend_from_slice(b"\",\"sport\":");
        push_num(b, fp.sport);
        b.extend_from_slice(b",\"dst\":\"");
        push_ip(b, fp.dst);
        b.extend_from_slice(b"\",\"dport\":");
        push_num(b, fp.dport);
        b.extend_from_slice(b",\"kind\":\"");
        b.extend_from_slice(fp.observed.kind.as_str().as_bytes());
        b.extend_from_slice(b"\",\"raw_sig\":\"");
        self.raw.push(&fp.observed, fp.syn_mss, b);
        b.extend_from_slice(b"\",");
        match c {
            Some(c) => {
                b.extend_from_slice(&c.json_label);
                push_num(b, fp.matched.dist);
                b.extend_from_slice(b",\"match\":\"");
                b.extend_from_slice(quality_str(fp).as_bytes());
                b.push(b'"');
                b.extend_from_slice(&c.json_matched);
            }
            None => {
                b.extend_from_slice(b"\"label\":\"???\",\"dist\":");
                push_num(b, fp.matched.dist);
                b.extend_from_slice(b",\"match\":\"none\"}\n");
            }
        }
    }

    fn text_block(&mut self, fp: &Fingerprint<'_>) {
        let (who, role) = match fp.observed.kind {
            Kind::Syn => ("| client   = ", "syn"),
            Kind::SynAck => ("| server   = ", "syn+ack"),
        };
        if let Some(r) = fp.matched.record {
            self.cached(r);
        }
        let c = fp
            .matched
            .record
            .and_then(|r| self.by_line[r.line].as_ref());
        let b = &mut self.buf;
        b.extend_from_slice(b".-[ ");
        let start = b.len();
        push_ip(b, fp.src);
        b.push(b'/');
        push_num(b, fp.sport);
        let end = b.len();
        b.extend_from_slice(b" -> ");
        push_ip(b, fp.dst);
        b.push(b'/');
        push_num(b, fp.dport);
        b.extend_from_slice(b" (");
        b.extend_from_slice(role.as_bytes());
        b.extend_from_slice(b") ]-\n|\n");
        b.extend_from_slice(who.as_bytes());
        b.extend_from_within(start..end);
        b.push(b'\n');
        match c {
            Some(c) => b.extend_from_slice(&c.text_label),
            None => b.extend_from_slice(b"| os       = ???\n"),
        }
        b.extend_from_slice(b"| dist     = ");
        if c.is_some_and(|c| c.bad_ttl) {
            b.extend_from_slice(b"<= ");
        }
        push_num(b, fp.matched.dist);
        b.extend_from_slice(b"\n| params   = ");
        let before = b.len();
        let param = |b: &mut Vec<u8>, p: &[u8]| {
            if b.len() > before {
                b.push(b' ');
            }
            b.extend_from_slice(p);
        };
        if let Some(c) = c {
            if c.generic {
                param(b, b"generic");
            }
            if fp.matched.quality == Quality::Fuzzy {
                param(b, b"fuzzy");
            }
            if c.bad_ttl {
                param(b, b"random_ttl");
            }
        }
        if fp.matched.dist > MAX_DIST {
            param(b, b"excess_dist");
        }
        if fp.observed.tos != 0 {
            let t = fp.observed.tos;
            const HEX: &[u8; 16] = b"0123456789abcdef";
            param(
                b,
                &[
                    b't',
                    b'o',
                    b's',
                    b':',
                    b'0',
                    b'x',
                    HEX[usize::from(t >> 4)],
                    HEX[usize::from(t & 15)],
                ],
            );
        }
        if b.len() == before {
            b.extend_from_slice(b"none");
        }
        b.extend_from_slice(b"\n| raw_sig  = ");
        self.raw.push(&fp.observed, fp.syn_mss, b);
        b.extend_from_slice(b"\n| matched  = ");
        match c {
            Some(c) => {
                b.extend_from_slice(&c.text_line);
                b.extend_from_slice(quality_str(fp).as_bytes());
                b.push(b')');
            }
            None => b.extend_from_slice(b"none"),
        }
        b.extend_from_slice(b"\n|\n`----\n\n");
    }
}

#[cfg(test)]
mod tests {
    //! The previous printer (`format!` and serde per field) is the reference: the fast one
    //! must write the same bytes for every fingerprint.

    use std::io::Write;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use ashiato_rng::Xoshiro256pp;
    use ashiato_stepstone::{Database, Fingerprint, MODERN_DB, Quality, Tracker};
    use ashiato_wire::build::{ethernet, ipv4_with_flags, ipv6, tcp_with_options};
    use ashiato_wire::packet::TcpFlags;

    use super::{Printer, quality_str};

    #[derive(serde::Serialize)]
    struct JsonFp<'a> {
        time: String,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        kind: &'static str,
        raw_sig: String,
        label: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        label_kind: Option<&'static str>,
        dist: u8,
        r#match: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        matched: Option<Matched<'a>>,
    }

    #[derive(serde::Serialize)]
    struct Matched<'a> {
        sig: String,
        line: usize,
        label_line: usize,
        class: Option<&'a str>,
    }

    /// The printer as it was, verbatim but for the output type.
    fn reference(db: &Database, fp: &Fingerprint<'_>, json: bool, out: &mut Vec<u8>) {
        let label = fp.matched.record.map(|r| db.label(r));
        let label_text = label.map_or_else(|| "???".to_string(), |l| l.text());
        let raw = fp.observed.raw_sig(fp.syn_mss).to_string();
        let field = if label.is_some_and(|l| l.is_app()) {
            "app"
        } else {
            "os"
        };
        if json {
            let j = JsonFp {
                time: ashiato_wire::time::rfc3339(fp.ts_nanos),
                src: fp.src,
                sport: fp.sport,
                dst: fp.dst,
                dport: fp.dport,
                kind: fp.observed.kind.as_str(),
                raw_sig: raw,
                label: label_text,
                label_kind: label.map(|_| field),
                dist: fp.matched.dist,
                r#match: quality_str(fp),
                matched: fp.matched.record.zip(label).map(|(r, l)| Matched {
                    sig: r.sig.to_string(),
                    line: r.line,
                    label_line: l.line,
                    class: l.class.as_deref(),
                }),
            };
            serde_json::to_writer(&mut *out, &j).unwrap();
            writeln!(out).unwrap();
        } else {
            let (who, role) = match fp.observed.kind {
                ashiato_stepstone::Kind::Syn => ("client", "syn"),
                ashiato_stepstone::Kind::SynAck => ("server", "syn+ack"),
            };
            let mut params = Vec::new();
            if let Some(r) = fp.matched.record {
                if db.label(r).generic {
                    params.push("generic".to_string());
                }
                if fp.matched.quality == Quality::Fuzzy {
                    params.push("fuzzy".to_string());
                }
                if r.sig.bad_ttl {
                    params.push("random_ttl".to_string());
                }
            }
            if fp.matched.dist > ashiato_stepstone::sig::MAX_DIST {
                params.push("excess_dist".to_string());
            }
            if fp.observed.tos != 0 {
                params.push(format!("tos:0x{:02x}", fp.observed.tos));
            }
            let params = if params.is_empty() {
                "none".to_string()
            } else {
                params.join(" ")
            };
            let dist = match fp.matched.record {
                Some(r) if r.sig.bad_ttl => format!("<= {}", fp.matched.dist),
                _ => fp.matched.dist.to_string(),
            };
            let matched = fp.matched.record.map_or_else(
                || "none".to_string(),
                |r| format!("line {} ({})", r.line, quality_str(fp)),
            );
            writeln!(
                out,
                ".-[ {}/{} -> {}/{} ({role}) ]-\n|\n| {who:<8} = {}/{}\n| {field:<8} = {label_text}\n| dist     = {dist}\n| params   = {params}\n| raw_sig  = {raw}\n| matched  = {matched}\n|\n`----\n",
                fp.src, fp.sport, fp.dst, fp.dport, fp.src, fp.sport,
            )
            .unwrap();
        }
    }

    /// Feeds frames to a tracker and prints every fingerprint both ways.
    fn compare(db: &Database, frames: &[(u64, ashiato_wire::LinkType, Vec<u8>)]) -> usize {
        let mut n = 0;
        for json in [false, true] {
            let mut t = Tracker::default();
            let (mut old, mut new) = (Vec::new(), Vec::new());
            let mut p = Printer::new(db, json);
            for (ts, link, data) in frames {
                let Ok(pkt) = ashiato_wire::packet::parse(*link, data) else {
                    continue;
                };
                if let Some(fp) = t.packet(db, *ts, &pkt) {
                    reference(db, &fp, json, &mut old);
                    p.print(&fp, &mut new).unwrap();
                    n += 1;
                }
            }
            p.finish(&mut new).unwrap();
            if old != new {
                let (o, w) = (String::from_utf8_lossy(&old), String::from_utf8_lossy(&new));
                let at = o.lines().zip(w.lines()).position(|(a, b)| a != b);
                let line = at.map(|i| (o.lines().nth(i), w.lines().nth(i)));
                panic!("json={json}: outputs differ at line {at:?}: {line:?}");
            }
        }
        n
    }

    fn p0f_db() -> Database {
        let text = std::fs::read_to_string("/etc/p0f/p0f.fp")
            .expect("p0f's database (apt-get install p0f; scripts/test.sh does)");
        Database::parse(&text).unwrap()
    }

    fn capture(name: &str) -> Vec<(u64, ashiato_wire::LinkType, Vec<u8>)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data")
            .join(name);
        let mut src = ashiato_capture::file::FileSource::open(&path).unwrap();
        let mut v = Vec::new();
        while let Some(f) = src.next_frame().unwrap() {
            v.push((f.ts_nanos, f.link, f.data.to_vec()));
        }
        v
    }

    #[test]
    fn same_bytes_as_the_reference_on_real_captures() {
        let dbs = [p0f_db(), Database::parse(MODERN_DB).unwrap()];
        let mut n = 0;
        for name in [
            "cs-synscan.pcapng",
            "esnet-masscan-tcp_0_1000_20190821.pcap",
            "cs-passiveosfingerprinting.pcapng",
            "linux6-namespaces-mtu1280.pcap",
            "zeek-web.pcap",
            "hosttrace/zeek-workshop_2011_browse.pcap",
            "hosttrace/zeek-wikipedia.pcap",
            "hosttrace/zeek-smtp.pcap",
            "hosttrace/zeek-irc-basic.pcap",
            "hosttrace/cs-http_google.pcapng",
        ] {
            let frames = capture(name);
            for db in &dbs {
                n += compare(db, &frames);
            }
        }
        assert!(n > 2 * 2 * 3000, "{n} fingerprints compared");
    }

    /// Random handshakes that reach every branch: both IP versions, TOS, ECN, random and
    /// excessive TTLs, option layouts with EOL padding, bad options and zero timestamps,
    /// windows that are and are not MSS or MTU multiples, stray and duplicate packets, and
    /// packet times across many seconds.
    #[test]
    fn same_bytes_as_the_reference_on_random_handshakes() {
        const LAYOUTS: [&[u8]; 9] = [
            &[],
            &[2, 4, 5, 0xb4],
            &[
                2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
            ],
            &[2, 4, 5, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2],
            &[2, 4, 5, 0xb4, 1, 1, 4, 2],
            &[
                2, 4, 5, 0xb4, 1, 3, 3, 6, 1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 4, 2, 0, 0,
            ],
            &[
                2, 4, 5, 0xb4, 1, 3, 3, 6, 4, 2, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0,
            ],
            &[2, 3, 5, 0xb4, 3, 3, 15, 0, 7],
            &[2, 4, 5, 0xb4, 0, 1, 0, 0],
        ];
        const WINDOWS: [u16; 8] = [0, 1024, 8192, 64240, 65535, 65160, 29200, 5840];
        let mut rng = Xoshiro256pp::new(11);
        let mut r = |n: u64| rng.next_u64() % n;
        let mut frames = Vec::new();
        let mut ts = 1_700_000_000_000_000_000u64;
        for i in 0..6000u32 {
            let v6 = r(5) == 0;
            let (c, s): (IpAddr, IpAddr) = if v6 {
                (
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i as u16).into(),
                    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1).into(),
                )
            } else {
                (
                    Ipv4Addr::from(0x0a00_0000 | i).into(),
                    Ipv4Addr::new(192, 0, 2, r(3) as u8).into(),
                )
            };
            let sport = 1024 + r(60000) as u16;
            let one = |syn_ack: bool, r: &mut dyn FnMut(u64) -> u64| {
                let ttl = [32u8, 64, 128, 255, 20, 100, 250][r(7) as usize]
                    .saturating_sub(r(30) as u8)
                    .max(1);
                let tos = if r(4) == 0 { r(256) as u8 } else { 0 };
                let mut opts = LAYOUTS[r(LAYOUTS.len() as u64) as usize].to_vec();
                if opts.len() >= 4 && r(3) == 0 {
                    let mss = [1460u16, 1440, 1400, 536, 1331, 1380][r(6) as usize];
                    opts[2..4].copy_from_slice(&mss.to_be_bytes());
                }
                let win = if r(3) == 0 {
                    1460 * (1 + r(44) as u16)
                } else {
                    WINDOWS[r(8) as usize]
                };
                let flags =
                    TcpFlags(if syn_ack { 0x12 } else { 0x02 } | if r(8) == 0 { 0xc0 } else { 0 });
                let (src, dst, sp, dp) = if syn_ack {
                    (s, c, 443, sport)
                } else {
                    (c, s, sport, 443)
                };
                let ack = if syn_ack || r(4) == 0 { 7 } else { 0 };
                let payload: &[u8] = if r(10) == 0 { b"data" } else { b"" };
                let seg = tcp_with_options(
                    src,
                    dst,
                    sp,
                    dp,
                    r(4) as u32,
                    ack,
                    flags,
                    win,
                    &opts,
                    payload,
                );
                let ip = match (src, dst) {
                    (IpAddr::V4(a), IpAddr::V4(b)) => {
                        ipv4_with_flags(a, b, 6, ttl, tos, r(3) as u16, r(2) == 0, &seg)
                    }
                    (IpAddr::V6(a), IpAddr::V6(b)) => ipv6(a, b, 6, ttl, tos, r(2) as u32, &seg),
                    _ => unreachable!(),
                };
                let et = if v6 { 0x86dd } else { 0x0800 };
                ethernet([2; 6], [4; 6], et, &ip)
            };
            ts += r(3_000_000_000);
            if r(6) != 0 {
                frames.push((ts, ashiato_wire::LinkType::Ethernet, one(false, &mut r)));
            }
            for _ in 0..r(3) {
                ts += r(1_000_000);
                frames.push((ts, ashiato_wire::LinkType::Ethernet, one(true, &mut r)));
            }
        }
        let mut n = 0;
        for db in [p0f_db(), Database::parse(MODERN_DB).unwrap()] {
            n += compare(&db, &frames);
        }
        assert!(n > 2 * 2 * 6000, "{n} fingerprints compared");
    }
}
