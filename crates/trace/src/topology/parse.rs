//! Topology files: CAIDA serial-1/serial-2 and SNAP's copy of CAIDA. Parsers take text (the
//! caller reads the file), never panic, and stop at the first bad line with its number.

use std::fmt::Write as _;

use super::{Asn, Link, LinkStats, Rel, Topology};

/// A topology file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CAIDA `AS1|AS2|rel` (serial-1), optionally with serial-2's `|source`.
    Serial1,
    /// SNAP `FromAS<TAB>ToAS<TAB>rel`, each link listed in both directions.
    Snap,
}

/// A parsed topology and what parsing found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The topology.
    pub topology: Topology,
    /// Counts of lines and link statements.
    pub stats: ParseStats,
}

/// What a parser read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseStats {
    /// The format read.
    pub format: Format,
    /// Lines in the text.
    pub lines: usize,
    /// Comment (`#`) and blank lines.
    pub comments: usize,
    /// Link statements, restatements and contradictions.
    pub links: LinkStats,
}

/// A line that could not be read. Values quoted are cut to 40 characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Wrong number of fields.
    #[error("line {line}: expected {expected}, found {found} field(s)")]
    Fields {
        /// 1-based line number.
        line: usize,
        /// What the format wants.
        expected: &'static str,
        /// Fields found.
        found: usize,
    },
    /// A field that should be an AS number is not.
    #[error("line {line}: {field} {value:?} is not an AS number (decimal, 0 to 4294967295)")]
    Asn {
        /// 1-based line number.
        line: usize,
        /// Which field.
        field: &'static str,
        /// The field's text.
        value: String,
    },
    /// An unknown relationship code.
    #[error("line {line}: relationship {value:?} is not one of {allowed}")]
    Rel {
        /// 1-based line number.
        line: usize,
        /// The field's text.
        value: String,
        /// The codes the format allows.
        allowed: &'static str,
    },
    /// The first data line fits neither format.
    #[error(
        "line {line}: neither CAIDA serial-1 (AS1|AS2|rel) nor SNAP (FromAS<TAB>ToAS<TAB>rel): {value:?}"
    )]
    Format {
        /// 1-based line number.
        line: usize,
        /// The line's text.
        value: String,
    },
}

/// Parses either format, telling them apart by the first data line: a `|` means serial-1,
/// whitespace-separated fields mean SNAP. Text with no data line is an empty serial-1
/// topology.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains('|') {
            return parse_serial1(text);
        }
        if line.split_whitespace().count() == 3 {
            return parse_snap(text);
        }
        return Err(ParseError::Format {
            line: n + 1,
            value: cut(line),
        });
    }
    parse_serial1(text)
}

/// Parses CAIDA serial-1 (`AS1|AS2|-1`: AS1 is a provider of AS2; `AS1|AS2|0`: peers) or
/// serial-2 (a 4th `|source` field, ignored). The pre-2013 codes `1` (AS1 is a customer of
/// AS2) and `2` (siblings) are accepted too.
pub fn parse_serial1(text: &str) -> Result<Parsed, ParseError> {
    read(text, Format::Serial1, |line, n| {
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(ParseError::Fields {
                line: n,
                expected: "3 or 4 `|`-separated fields (AS1|AS2|rel[|source])",
                found: fields.len(),
            });
        }
        let a = asn(fields[0], "AS1", n)?;
        let b = asn(fields[1], "AS2", n)?;
        match fields[2] {
            "-1" => Ok(Link::provider_customer(a, b)),
            "0" => Ok(Link::peer(a, b)),
            "1" => Ok(Link::provider_customer(b, a)),
            "2" => Ok(Link::sibling(a, b)),
            other => Err(ParseError::Rel {
                line: n,
                value: cut(other),
                allowed: "-1 (AS1 provider of AS2), 0 (peers), 1 (AS1 customer of AS2), 2 (siblings)",
            }),
        }
    })
}

/// Parses SNAP's copy of CAIDA: `FromAS<TAB>ToAS<TAB>rel` with `-1` (From is a customer of
/// To), `1` (From is a provider of To), `0` (peers), `2` (siblings). Any whitespace separates
/// fields. SNAP lists each link twice; the mirror lines are counted as duplicates.
pub fn parse_snap(text: &str) -> Result<Parsed, ParseError> {
    read(text, Format::Snap, |line, n| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 3 {
            return Err(ParseError::Fields {
                line: n,
                expected: "3 whitespace-separated fields (FromAS ToAS rel)",
                found: fields.len(),
            });
        }
        let a = asn(fields[0], "FromAS", n)?;
        let b = asn(fields[1], "ToAS", n)?;
        match fields[2] {
            "-1" => Ok(Link::provider_customer(b, a)),
            "1" => Ok(Link::provider_customer(a, b)),
            "0" => Ok(Link::peer(a, b)),
            "2" => Ok(Link::sibling(a, b)),
            other => Err(ParseError::Rel {
                line: n,
                value: cut(other),
                allowed: "-1 (From customer of To), 1 (From provider of To), 0 (peers), 2 (siblings)",
            }),
        }
    })
}

impl Topology {
    /// The topology as CAIDA serial-1 text, one link per line in [`Topology::links`] order:
    /// `-1` for provider→customer, `0` for peers, and the pre-2013 code `2` for siblings.
    /// ASes without links are not written (the format cannot say them).
    pub fn to_serial1(&self) -> String {
        let mut out = String::with_capacity(self.link_count() * 16);
        out.push_str("# AS1|AS2|rel: -1 AS1 provider of AS2, 0 peers, 2 siblings\n");
        for l in self.links() {
            let code = match l.rel {
                Rel::ProviderCustomer => "-1",
                Rel::Peer => "0",
                Rel::Sibling => "2",
            };
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{}|{}|{}", l.a, l.b, code);
        }
        out
    }
}

fn read(
    text: &str,
    format: Format,
    mut line_link: impl FnMut(&str, usize) -> Result<Link, ParseError>,
) -> Result<Parsed, ParseError> {
    let mut links = Vec::new();
    let mut lines = 0;
    let mut comments = 0;
    for (i, raw) in text.lines().enumerate() {
        lines += 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            comments += 1;
            continue;
        }
        links.push(line_link(line, i + 1)?);
    }
    let (topology, link_stats) = Topology::from_links(links);
    Ok(Parsed {
        topology,
        stats: ParseStats {
            format,
            lines,
            comments,
            links: link_stats,
        },
    })
}

fn asn(field: &str, name: &'static str, line: usize) -> Result<Asn, ParseError> {
    let bad = || ParseError::Asn {
        line,
        field: name,
        value: cut(field),
    };
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    field.parse().map_err(|_| bad())
}

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Link, Role, Topology};
    use super::{Format, ParseError, parse, parse_serial1, parse_snap};

    #[test]
    fn serial1_and_serial2() {
        let text = "# comment\n1|2|-1\n2|3|0|bgp\n\n3|4|1\n4|5|2\r\n";
        let p = parse(text).unwrap();
        assert_eq!(p.stats.format, Format::Serial1);
        assert_eq!((p.stats.lines, p.stats.comments), (6, 2));
        let t = &p.topology;
        assert_eq!(t.role(1, 2), Some(Role::Customer));
        assert_eq!(t.role(2, 3), Some(Role::Peer));
        assert_eq!(t.role(3, 4), Some(Role::Provider));
        assert_eq!(t.role(4, 5), Some(Role::Sibling));
    }

    #[test]
    fn snap_sign_is_the_opposite_of_serial1() {
        let text = "# Directed graph\n10\t20\t-1\n20\t10\t1\n20\t30\t0\n30\t20\t0\n";
        let p = parse(text).unwrap();
        assert_eq!(p.stats.format, Format::Snap);
        assert_eq!(p.topology.role(10, 20), Some(Role::Provider));
        assert_eq!(p.stats.links.duplicates, 2);
        assert_eq!(p.stats.links.contradictions, 0);
        assert_eq!(p.topology.link_count(), 2);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_serial1("1|2|-1\n1|2\n").unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Fields {
                    line: 2,
                    found: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_serial1("# x\nAS1|2|-1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: AS1 \"AS1\" is not an AS number (decimal, 0 to 4294967295)"
        );
        let e = parse_serial1("1|4294967296|0").unwrap_err();
        assert!(
            matches!(
                e,
                ParseError::Asn {
                    line: 1,
                    field: "AS2",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_snap("1 2 3\n").unwrap_err();
        assert!(matches!(e, ParseError::Rel { line: 1, .. }), "{e}");
        let e = parse("\n\nhello world\n").unwrap_err();
        assert!(matches!(e, ParseError::Format { line: 3, .. }), "{e}");
    }

    #[test]
    fn empty_text_is_an_empty_topology() {
        let p = parse("# nothing\n").unwrap();
        assert!(p.topology.is_empty());
    }

    #[test]
    fn serial1_round_trip() {
        let (t, _) = Topology::from_parts(
            [],
            [
                Link::provider_customer(7, 3),
                Link::peer(9, 3),
                Link::sibling(9, 8),
            ],
        );
        assert_eq!(parse(&t.to_serial1()).unwrap().topology, t);
    }
}
