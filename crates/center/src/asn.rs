//! Which network a server is in: a prefix-to-AS table in CAIDA's Routeviews `pfx2as` format,
//! looked up by longest prefix match, so the ranking can name each server's origin AS and
//! group the C&C servers per ISP (each abuse desk gets its own list). Pure: text in, a
//! table out.
//!
//! # Format
//! One prefix a line, `prefix<TAB>length<TAB>origin` (any run of spaces or tabs separates),
//! as in `routeviews-rv2-YYYYMMDD-HHMM.pfx2as` (IPv4) and `routeviews-rv6-...` (IPv6); both
//! families may share one file. The origin is an AS number, a multi-origin prefix `a_b`
//! (the prefix was announced by several ASes) or an AS set `a,b` (aggregated
//! announcements), or a mix (`a_b,c`). Every origin is kept, in the file's order; the first is
//! the one servers are grouped under. Blank lines and `#` comments are skipped. A prefix with
//! host bits set, a length past the family's width, an AS number that is not a 32-bit
//! number, or a prefix given twice is refused, naming the line.
//!
//! # Lookup
//! Per family, one hash map per prefix length present; a lookup tries the lengths from the
//! longest down (at most 33 or 129 probes), so a table of a million prefixes answers in
//! microseconds and its size is the file's.

use std::collections::HashMap;
use std::net::IpAddr;

/// A line the table cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct AsnError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Where an address is routed: the longest matching prefix and its origins.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// The prefix, `addr/len`.
    pub prefix: String,
    /// Origin ASes in the file's order (more than one for multi-origin prefixes and AS sets).
    pub asns: Vec<u32>,
}

impl Origin {
    /// The AS servers in this prefix are grouped under (the first origin).
    pub fn asn(&self) -> u32 {
        self.asns[0]
    }
}

/// A prefix-to-AS table.
#[derive(Debug, Default, Clone)]
pub struct AsnTable {
    /// (is IPv6, length) → masked address bits → origins.
    maps: HashMap<(bool, u8), HashMap<u128, Vec<u32>>>,
    /// Lengths present per family, longest first.
    v4_lens: Vec<u8>,
    v6_lens: Vec<u8>,
    prefixes: usize,
}

fn bits(a: IpAddr) -> (bool, u128, u8) {
    match a {
        IpAddr::V4(v) => (false, u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (true, u128::from(v), 128),
    }
}

/// The network bits of a `len`-bit prefix in a `width`-bit address.
fn mask(width: u8, len: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let all = if width == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    let host = u32::from(width - len);
    (all >> host) << host
}

fn parse_origins(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for a in s.split([',', '_']) {
        let n: u32 = a
            .parse()
            .map_err(|_| format!("origin {s:?}: {a:?} is not an AS number"))?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

impl AsnTable {
    /// Parses a whole file.
    pub fn parse(text: &str) -> Result<AsnTable, AsnError> {
        let mut t = AsnTable::default();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let err = |reason: String| AsnError {
                line: i + 1,
                reason,
            };
            let f: Vec<&str> = l.split_whitespace().collect();
            let [addr, len, origin] = f[..] else {
                return Err(err(format!(
                    "{} fields, expected prefix, length and origin",
                    f.len()
                )));
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| err(format!("{addr:?} is not an address")))?;
            let (v6, b, width) = bits(addr);
            let len: u8 = len
                .parse()
                .ok()
                .filter(|&n| n <= width)
                .ok_or_else(|| err(format!("length {len:?} is not 0 to {width}")))?;
            if b & !mask(width, len) != 0 {
                return Err(err(format!("{addr}/{len} has host bits set")));
            }
            let asns = parse_origins(origin).map_err(err)?;
            let m = t.maps.entry((v6, len)).or_default();
            if m.insert(b, asns).is_some() {
                return Err(err(format!("{addr}/{len} is given twice")));
            }
            t.prefixes += 1;
        }
        for (v6, len) in t.maps.keys() {
            if *v6 {
                t.v6_lens.push(*len);
            } else {
                t.v4_lens.push(*len);
            }
        }
        t.v4_lens.sort_unstable_by(|a, b| b.cmp(a));
        t.v6_lens.sort_unstable_by(|a, b| b.cmp(a));
        Ok(t)
    }

    /// Prefixes held.
    pub fn len(&self) -> usize {
        self.prefixes
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.prefixes == 0
    }

    /// The longest prefix holding `a`, with its origins; `None` when no prefix does.
    pub fn lookup(&self, a: IpAddr) -> Option<Origin> {
        let a = match a {
            IpAddr::V6(v) => v.to_ipv4_mapped().map_or(a, IpAddr::V4),
            v4 => v4,
        };
        let (v6, b, width) = bits(a);
        let lens = if v6 { &self.v6_lens } else { &self.v4_lens };
        for &len in lens {
            let key = b & mask(width, len);
            if let Some(asns) = self.maps.get(&(v6, len)).and_then(|m| m.get(&key)) {
                let net = if v6 {
                    IpAddr::V6(key.into())
                } else {
                    IpAddr::V4((key as u32).into())
                };
                return Some(Origin {
                    prefix: format!("{net}/{len}"),
                    asns: asns.clone(),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const TABLE: &str = "# routeviews-rv2 excerpt\n\
        45.33.0.0\t17\t63949\n\
        45.33.32.0\t24\t63949\n\
        8.0.0.0\t9\t3356\n\
        8.8.8.0\t24\t15169\n\
        \n\
        192.0.2.0\t24\t64500_64501\n\
        198.51.100.0\t24\t64510,64511\n\
        203.0.113.0\t24\t64520_64521,64522\n\
        2001:db8::\t32\t64496\n\
        2001:db8:1::\t48\t64497\n";

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_origins_are_kept() {
        let t = AsnTable::parse(TABLE).unwrap();
        assert_eq!(t.len(), 9);
        let o = t.lookup(a("45.33.32.156")).unwrap();
        assert_eq!((o.prefix.as_str(), o.asn()), ("45.33.32.0/24", 63949));
        assert_eq!(t.lookup(a("45.33.99.1")).unwrap().prefix, "45.33.0.0/17");
        assert_eq!(t.lookup(a("8.8.8.8")).unwrap().asn(), 15169);
        assert_eq!(t.lookup(a("8.8.4.4")).unwrap().asn(), 3356);
        assert_eq!(t.lookup(a("192.0.2.1")).unwrap().asns, [64500, 64501]);
        assert_eq!(t.lookup(a("198.51.100.7")).unwrap().asns, [64510, 64511]);
        assert_eq!(
            t.lookup(a("203.0.113.9")).unwrap().asns,
            [64520, 64521, 64522]
        );
        assert_eq!(t.lookup(a("2001:db8:1::5")).unwrap().asn(), 64497);
        assert_eq!(
            t.lookup(a("2001:db8:2::5")).unwrap().prefix,
            "2001:db8::/32"
        );
        assert_eq!(t.lookup(a("::ffff:8.8.8.8")).unwrap().asn(), 15169);
        assert_eq!(t.lookup(a("9.9.9.9")), None);
        assert_eq!(t.lookup(a("2001:db9::1")), None);
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, line, what) in [
            ("8.8.8.0\t24\n", 1, "2 fields"),
            ("# c\n8.8.8.0\t33\t1\n", 2, "length"),
            ("8.8.8.0\t24\t1\nx\t8\t1\n", 2, "not an address"),
            ("8.8.8.1\t24\t15169\n", 1, "host bits"),
            ("8.8.8.0\t24\tAS15169\n", 1, "not an AS number"),
            ("8.8.8.0\t24\t1_\n", 1, "not an AS number"),
            ("8.8.8.0\t24\t99999999999\n", 1, "not an AS number"),
            ("\n\n8.8.8.0\t24\t1\n8.8.8.0\t24\t2\n", 4, "twice"),
            ("2001:db8::\t129\t1\n", 1, "length"),
        ] {
            let e = AsnTable::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(what), "{text:?}: {e}");
        }
    }

    fn naive(entries: &[(u32, u8, u32)], x: u32) -> Option<(u8, u32)> {
        entries
            .iter()
            .filter(|(p, l, _)| *l == 0 || (x ^ p) >> (32 - u32::from(*l)) == 0)
            .max_by_key(|(_, l, _)| *l)
            .map(|(_, l, a)| (*l, *a))
    }

    proptest! {
        /// The lookup agrees with a linear scan for the longest covering prefix.
        #[test]
        fn lookup_is_the_longest_covering_prefix(
            raw in proptest::collection::vec((any::<u32>(), 0u8..=32, 1u32..70000), 0..40),
            probes in proptest::collection::vec(any::<u32>(), 1..40),
        ) {
            let mut entries: Vec<(u32, u8, u32)> = Vec::new();
            for (p, l, a) in raw {
                let m = if l == 0 { 0 } else { u32::MAX << (32 - u32::from(l)) };
                if !entries.iter().any(|(q, k, _)| *q == p & m && *k == l) {
                    entries.push((p & m, l, a));
                }
            }
            let text: String = entries
                .iter()
                .map(|(p, l, a)| format!("{}\t{l}\t{a}\n", std::net::Ipv4Addr::from(*p)))
                .collect();
            let t = AsnTable::parse(&text).unwrap();
            // Probe addresses inside the prefixes too, not only random ones.
            let inside = entries.iter().map(|(p, _, _)| p | 1);
            for x in probes.into_iter().chain(inside) {
                let got = t.lookup(IpAddr::V4(x.into()));
                let want = naive(&entries, x);
                prop_assert_eq!(
                    got.map(|o| (o.prefix.split('/').nth(1).unwrap().parse::<u8>().unwrap(), o.asn())),
                    want
                );
            }
        }
    }
}
