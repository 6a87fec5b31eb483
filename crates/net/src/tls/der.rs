//! Just enough DER (X.690) to read what a service checks in its own certificates at start:
//! the validity dates, the subject name and the public key (RFC 5280 §4.1). Certificates
//! are still verified by rustls/webpki; this reader only reports, so it is strict and small:
//! single-byte tags, definite lengths of at most four bytes, and nothing it does not need.

use std::fmt;

/// Why a certificate could not be read, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerError {
    /// Byte offset in the certificate.
    pub offset: usize,
    /// What was expected there.
    pub what: &'static str,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed certificate at byte {}: {}",
            self.offset, self.what
        )
    }
}

impl std::error::Error for DerError {}

/// One attribute of a distinguished name: its OID arcs, string tag and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAttribute {
    /// The attribute type, e.g. `[2, 5, 4, 3]` for commonName.
    pub oid: Vec<u64>,
    /// The ASN.1 string tag (0x0c UTF8String, 0x13 PrintableString, ...).
    pub tag: u8,
    /// The value's bytes.
    pub value: Vec<u8>,
}

/// What a service reads from its certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// The subject name, in order (one attribute per RDN; multi-valued RDNs are flattened).
    pub subject: Vec<NameAttribute>,
    /// The encoded subject name (to compare with an issuer name).
    pub subject_der: Vec<u8>,
    /// The encoded SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
}

impl CertInfo {
    /// The first commonName of the subject, if it is a UTF-8 or printable string.
    pub fn common_name(&self) -> Option<&str> {
        self.subject
            .iter()
            .find(|a| a.oid == [2, 5, 4, 3])
            .and_then(|a| std::str::from_utf8(&a.value).ok())
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
const VERSION: u8 = 0xa0;

/// A cursor over DER bytes that knows its absolute offset (for error messages).
#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> DerError {
        DerError {
            offset: self.offset,
            what,
        }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads one element; returns its tag, its whole encoding and a reader over its value.
    fn element(&mut self) -> Result<(u8, &'a [u8], Reader<'a>), DerError> {
        let d = self.data;
        let (&tag, rest) = d.split_first().ok_or(self.err("element missing"))?;
        if tag & 0x1f == 0x1f {
            return Err(self.err("multi-byte tag"));
        }
        let (&first, rest) = rest.split_first().ok_or(self.err("length missing"))?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(self.err("unsupported or truncated length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, 2 + n)
        };
        let end = header
            .checked_add(len)
            .filter(|&e| e <= d.len())
            .ok_or(self.err("element runs past its container"))?;
        let inner = Reader {
            data: &d[header..end],
            offset: self.offset + header,
        };
        self.data = &d[end..];
        self.offset += end;
        Ok((tag, &d[..end], inner))
    }

    fn expect(&mut self, want: u8, what: &'static str) -> Result<(&'a [u8], Reader<'a>), DerError> {
        let at = *self;
        let (tag, whole, inner) = self.element()?;
        if tag != want {
            return Err(at.err(what));
        }
        Ok((whole, inner))
    }
}

/// Reads validity, subject and public key from one DER certificate.
pub fn parse_certificate(der: &[u8]) -> Result<CertInfo, DerError> {
    let mut top = Reader {
        data: der,
        offset: 0,
    };
    let (_, mut cert) = top.expect(SEQUENCE, "expected the Certificate SEQUENCE")?;
    let (_, mut tbs) = cert.expect(SEQUENCE, "expected the TBSCertificate SEQUENCE")?;
    if tbs.peek_tag() == Some(VERSION) {
        tbs.element()?;
    }
    tbs.expect(INTEGER, "expected the serial number")?;
    tbs.expect(SEQUENCE, "expected the signature algorithm")?;
    tbs.expect(SEQUENCE, "expected the issuer name")?;
    let (_, mut validity) = tbs.expect(SEQUENCE, "expected the validity")?;
    let not_before = read_time(&mut validity)?;
    let not_after = read_time(&mut validity)?;
    let (subject_der, subject) = tbs.expect(SEQUENCE, "expected the subject name")?;
    let (spki_der, _) = tbs.expect(SEQUENCE, "expected the subject public key info")?;
    Ok(CertInfo {
        not_before,
        not_after,
        subject: read_name(subject)?,
        subject_der: subject_der.to_vec(),
        spki_der: spki_der.to_vec(),
    })
}

fn read_name(mut name: Reader<'_>) -> Result<Vec<NameAttribute>, DerError> {
    let mut out = Vec::new();
    while !name.is_empty() {
        let (_, mut rdn) = name.expect(SET, "expected a relative distinguished name")?;
        while !rdn.is_empty() {
            let (_, mut atv) = rdn.expect(SEQUENCE, "expected an attribute")?;
            let (_, oid) = atv.expect(OID, "expected an attribute type")?;
            let oid_err = oid.err("bad object identifier");
            let oid = read_oid(oid.data).ok_or(oid_err)?;
            let (tag, _, value) = atv.element()?;
            out.push(NameAttribute {
                oid,
                tag,
                value: value.data.to_vec(),
            });
        }
    }
    Ok(out)
}

fn read_oid(b: &[u8]) -> Option<Vec<u64>> {
    let mut arcs = Vec::new();
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate() {
        v = v.checked_mul(128)? | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        } else if i + 1 == b.len() {
            return None;
        }
    }
    (!arcs.is_empty()).then_some(arcs)
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`), the
/// only forms RFC 5280 §4.1.2.5 allows, as seconds since the Unix epoch.
fn read_time(r: &mut Reader<'_>) -> Result<i64, DerError> {
    let at = *r;
    let (tag, _, v) = r.element()?;
    let bad = || at.err("expected a UTCTime or GeneralizedTime in Z form");
    let text = v.data;
    let (year, rest) = match (tag, text.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(&text[..2]).ok_or_else(bad)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (GENERALIZED_TIME, 15) => (digits(&text[..4]).ok_or_else(bad)?, &text[4..]),
        _ => return Err(bad()),
    };
    if rest[10] != b'Z' {
        return Err(bad());
    }
    let field = |i: usize| digits(&rest[i..i + 2]).ok_or_else(bad);
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    // The `time` crate checks the calendar (days per month, leap years) and the clock fields.
    let small = |v: i64| u8::try_from(v).map_err(|_| bad());
    let month = time::Month::try_from(small(month)?).map_err(|_| bad())?;
    let year = i32::try_from(year).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year, month, small(day)?).map_err(|_| bad())?;
    let at = date
        .with_hms(small(h)?, small(m)?, small(s)?)
        .map_err(|_| bad())?;
    Ok(at.assume_utc().unix_timestamp())
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::{Reader, parse_certificate, read_oid, read_time};

    fn time(tag: u8, s: &str) -> Result<i64, super::DerError> {
        let mut der = vec![tag, s.len() as u8];
        der.extend_from_slice(s.as_bytes());
        read_time(&mut Reader {
            data: &der,
            offset: 0,
        })
    }

    #[test]
    fn times_in_both_forms() {
        assert_eq!(time(0x17, "700101000000Z"), Ok(0));
        assert_eq!(time(0x17, "491231235959Z"), Ok(2_524_607_999));
        assert_eq!(time(0x17, "500101000000Z"), Ok(-631_152_000));
        assert_eq!(time(0x18, "20240229120000Z"), Ok(1_709_208_000));
        for bad in [
            "20230229120000Z",
            "2024022912000Z",
            "20241301000000Z",
            "20240101000000+",
        ] {
            assert!(time(0x18, bad).is_err(), "{bad}");
        }
        assert!(
            time(0x17, "20240101000000Z").is_err(),
            "UTCTime is 13 bytes"
        );
        assert!(time(0x04, "700101000000Z").is_err(), "not a time tag");
    }

    #[test]
    fn object_identifiers() {
        assert_eq!(read_oid(&[0x55, 0x04, 0x03]), Some(vec![2, 5, 4, 3]));
        assert_eq!(
            read_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            Some(vec![1, 2, 840, 113549])
        );
        assert_eq!(read_oid(&[0x2a, 0x86]), None, "unterminated arc");
        assert_eq!(read_oid(&[]), None);
    }

    #[test]
    fn garbage_and_truncations_are_errors_not_panics() {
        assert!(parse_certificate(&[]).is_err());
        assert!(parse_certificate(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_certificate(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(parse_certificate(&[0x1f, 0x00]).is_err());
        let e = parse_certificate(&[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap_err();
        assert_eq!(e.offset, 2, "{e}");
        // Every prefix of a real certificate fails cleanly.
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        assert!(parse_certificate(&der).is_ok());
        for cut in 0..der.len() {
            assert!(parse_certificate(&der[..cut]).is_err(), "cut at {cut}");
        }
    }
}
