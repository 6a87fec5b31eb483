//! p0f.fp files: the `[tcp:request]` and `[tcp:response]` sections, read into a
//! [`Database`] of labelled [`Signature`]s in file order.
//!
//! The grammar is p0f 3's (`readfp.c`, `fp_tcp.c: tcp_register_sig`): `;` starts a comment,
//! `[module:direction]` opens a section, `label = g|s:class|!:name:flavor` names the
//! signatures after it (`!` marks an application such as a scanner, `g` a generic signature
//! tried only when no specific one matches), `sig = ...` is one signature, `sys = ...` lists
//! the systems an application runs on. Other sections (`[mtu]`, `[http:*]`) are skipped.
//! Every error names the line; nothing here panics on any text.

use crate::sig::{IpVer, Layout, MAX_TCP_OPT, Quirks, Signature, WinSpec, opt};

/// An error in a signature file, with its 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature file line {line}: {kind}")]
pub struct DbError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: DbErrorKind,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbErrorKind {
    /// A line that is not `key = value` or `[section]`.
    #[error("expected `key = value` or `[section]`, found {0:?}")]
    Syntax(String),
    /// A key this format does not have.
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    /// `sig` before any `label` in its section.
    #[error("`sig` before any `label`")]
    SigWithoutLabel,
    /// A malformed label.
    #[error("malformed label {0:?} (want g|s:class|!:name:flavor)")]
    Label(String),
    /// A malformed signature field.
    #[error("bad {field} in signature {sig:?}")]
    Field {
        /// Which field.
        field: &'static str,
        /// The signature text.
        sig: String,
    },
    /// A quirk that does not apply to the signature's IP version.
    #[error("quirk {quirk:?} is not valid for IPv{ver}")]
    QuirkVersion {
        /// The quirk.
        quirk: &'static str,
        /// The IP version.
        ver: u8,
    },
}

/// A `label = ...` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// `g:` (generic) rather than `s:` (specific).
    pub generic: bool,
    /// The class (`win`, `unix`, ...); `None` for `!` (an application, printed as `app`).
    pub class: Option<String>,
    /// The name (`Linux`).
    pub name: String,
    /// The flavour (`3.11 and newer`), may be empty.
    pub flavor: String,
    /// `sys = ...` of an application label.
    pub sys: Vec<String>,
    /// 1-based line.
    pub line: usize,
}

impl Label {
    /// What p0f prints as `os` or `app`: the name and the flavour.
    pub fn text(&self) -> String {
        if self.flavor.is_empty() {
            self.name.clone()
        } else {
            format!("{} {}", self.name, self.flavor)
        }
    }

    /// An application (scanner, tool) rather than an OS.
    pub fn is_app(&self) -> bool {
        self.class.is_none()
    }
}

/// One signature with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The signature.
    pub sig: Signature,
    /// Index into [`Database::labels`].
    pub label: usize,
    /// 1-based line.
    pub line: usize,
}

/// The TCP signatures of a p0f.fp file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Database {
    /// Labels, in file order.
    pub labels: Vec<Label>,
    /// `[tcp:request]` signatures (SYN).
    pub request: Vec<Record>,
    /// `[tcp:response]` signatures (SYN/ACK).
    pub response: Vec<Record>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Request,
    Response,
    Other,
}

impl Database {
    /// Parses a p0f.fp file.
    pub fn parse(text: &str) -> Result<Database, DbError> {
        let mut db = Database::default();
        let mut section = Section::None;
        let mut current: Option<usize> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |kind| DbError { line, kind };
            let l = raw.split(';').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            if let Some(name) = l.strip_prefix('[') {
                let Some(name) = name.strip_suffix(']') else {
                    return Err(err(DbErrorKind::Syntax(l.to_string())));
                };
                section = match name {
                    "tcp:request" => Section::Request,
                    "tcp:response" => Section::Response,
                    _ => Section::Other,
                };
                current = None;
                continue;
            }
            let Some((key, val)) = l.split_once('=') else {
                return Err(err(DbErrorKind::Syntax(l.to_string())));
            };
            let (key, val) = (key.trim(), val.trim());
            if matches!(section, Section::Other | Section::None) {
                match key {
                    "classes" | "ua_os" | "label" | "sig" | "sys" => continue,
                    _ => return Err(err(DbErrorKind::UnknownKey(key.to_string()))),
                }
            }
            match key {
                "label" => {
                    db.labels.push(parse_label(val, line).map_err(err)?);
                    current = Some(db.labels.len() - 1);
                }
                "sys" => {
                    let Some(c) = current else {
                        return Err(err(DbErrorKind::SigWithoutLabel));
                    };
                    db.labels[c].sys = val.split(',').map(|s| s.trim().to_string()).collect();
                }
                "sig" => {
                    let Some(c) = current else {
                        return Err(err(DbErrorKind::SigWithoutLabel));
                    };
                    let sig = parse_sig(val).map_err(err)?;
                    let rec = Record {
                        sig,
                        label: c,
                        line,
                    };
                    if section == Section::Request {
                        db.request.push(rec);
                    } else {
                        db.response.push(rec);
                    }
                }
                "classes" | "ua_os" => {}
                _ => return Err(err(DbErrorKind::UnknownKey(key.to_string()))),
            }
        }
        Ok(db)
    }

    /// The label of a record.
    pub fn label(&self, rec: &Record) -> &Label {
        &self.labels[rec.label]
    }
}

fn parse_label(val: &str, line: usize) -> Result<Label, DbErrorKind> {
    let bad = || DbErrorKind::Label(val.to_string());
    let mut parts = val.splitn(4, ':');
    let generic = match parts.next() {
        Some("g") => true,
        Some("s") => false,
        _ => return Err(bad()),
    };
    let class = match parts.next() {
        Some("!") => None,
        Some(c) if !c.is_empty() => Some(c.to_string()),
        _ => return Err(bad()),
    };
    let name = match parts.next() {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => return Err(bad()),
    };
    let flavor = parts.next().ok_or_else(bad)?.to_string();
    Ok(Label {
        generic,
        class,
        name,
        flavor,
        sys: Vec::new(),
        line,
    })
}

/// Parses one signature in p0f notation (the value of a `sig =` line).
pub fn parse_sig(s: &str) -> Result<Signature, DbErrorKind> {
    let bad = |field: &'static str| DbErrorKind::Field {
        field,
        sig: s.to_string(),
    };
    let f: Vec<&str> = s.split(':').collect();
    if f.len() != 8 {
        return Err(bad("number of fields (want 8)"));
    }
    let ver = match f[0] {
        "4" => Some(IpVer::V4),
        "6" => Some(IpVer::V6),
        "*" => None,
        _ => return Err(bad("IP version")),
    };
    // ittl: N, N-, or N+D.
    let (ittl, bad_ttl) = if let Some(n) = f[1].strip_suffix('-') {
        (num(n, 1, 255).ok_or_else(|| bad("initial TTL"))?, true)
    } else if let Some((n, d)) = f[1].split_once('+') {
        let n = num(n, 1, 255).ok_or_else(|| bad("initial TTL"))?;
        let d = num(d, 0, 255).ok_or_else(|| bad("initial TTL"))?;
        if n + d > 255 {
            return Err(bad("initial TTL"));
        }
        (n + d, false)
    } else {
        (num(f[1], 1, 255).ok_or_else(|| bad("initial TTL"))?, false)
    };
    let olen = num(f[2], 0, 255).ok_or_else(|| bad("IP options length"))?;
    let mss = wild(f[3], 0, 65535).ok_or_else(|| bad("MSS"))?;
    let (w, sc) = f[4].split_once(',').ok_or_else(|| bad("window,scale"))?;
    let win = if w == "*" {
        WinSpec::Any
    } else if let Some(m) = w.strip_prefix('%') {
        WinSpec::Mod(num(m, 2, 65535).ok_or_else(|| bad("window modulus"))? as u16)
    } else if let Some(m) = w.strip_prefix("mss*") {
        WinSpec::Mss(num(m, 1, 1000).ok_or_else(|| bad("MSS multiplier"))? as u16)
    } else if let Some(m) = w.strip_prefix("mtu*") {
        WinSpec::Mtu(num(m, 1, 1000).ok_or_else(|| bad("MTU multiplier"))? as u16)
    } else {
        WinSpec::Value(num(w, 0, 65535).ok_or_else(|| bad("window"))? as u16)
    };
    let wscale = wild(sc, 0, 255).ok_or_else(|| bad("window scale"))?;
    let layout = parse_layout(f[5]).ok_or_else(|| bad("option layout"))?;
    let quirks = parse_quirks(f[6], ver).map_err(|e| e.unwrap_or_else(|| bad("quirks")))?;
    let pclass = match f[7] {
        "*" => None,
        "0" => Some(false),
        "+" => Some(true),
        _ => return Err(bad("payload class")),
    };
    Ok(Signature {
        ver,
        ittl: ittl as u8,
        bad_ttl,
        olen: olen as u8,
        mss: mss.map(|m| m as u16),
        win,
        wscale: wscale.map(|m| m as u8),
        layout,
        quirks,
        pclass,
    })
}

/// A decimal number of at most 5 digits within bounds.
fn num(s: &str, lo: u32, hi: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u32 = s.parse().ok()?;
    (lo..=hi).contains(&v).then_some(v)
}

fn wild(s: &str, lo: u32, hi: u32) -> Option<Option<u32>> {
    if s == "*" {
        Some(None)
    } else {
        num(s, lo, hi).map(Some)
    }
}

fn parse_layout(s: &str) -> Option<Layout> {
    let mut l = Layout::default();
    if s.is_empty() {
        return Some(l);
    }
    let items: Vec<&str> = s.split(',').collect();
    if items.len() > MAX_TCP_OPT {
        return None;
    }
    for (i, it) in items.iter().enumerate() {
        let k = match *it {
            "nop" => opt::NOP,
            "mss" => opt::MSS,
            "ws" => opt::WS,
            "sok" => opt::SOK,
            "sack" => opt::SACK,
            "ts" => opt::TS,
            _ => {
                if let Some(p) = it.strip_prefix("eol+") {
                    // EOL must be last.
                    if i + 1 != items.len() {
                        return None;
                    }
                    l.eol_pad = num(p, 0, 255)? as u8;
                    opt::EOL
                } else if let Some(n) = it.strip_prefix('?') {
                    num(n, 0, 255)? as u8
                } else {
                    return None;
                }
            }
        };
        l.push(k);
    }
    Some(l)
}

fn parse_quirks(s: &str, ver: Option<IpVer>) -> Result<Quirks, Option<DbErrorKind>> {
    let mut q = 0u32;
    if s.is_empty() {
        return Ok(Quirks(0));
    }
    for it in s.split(',') {
        let (bit, name) = Quirks::NAMES
            .iter()
            .copied()
            .find(|(_, n)| *n == it)
            .ok_or(None)?;
        let v4_only = matches!(
            bit,
            Quirks::DF | Quirks::NZ_ID | Quirks::ZERO_ID | Quirks::NZ_MBZ
        );
        if v4_only && ver == Some(IpVer::V6) {
            return Err(Some(DbErrorKind::QuirkVersion {
                quirk: name,
                ver: 6,
            }));
        }
        if bit == Quirks::FLOW && ver == Some(IpVer::V4) {
            return Err(Some(DbErrorKind::QuirkVersion {
                quirk: name,
                ver: 4,
            }));
        }
        q |= bit;
    }
    Ok(Quirks(q))
}
