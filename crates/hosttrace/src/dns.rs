//! The little of DNS (RFC 1035 §4) the audit needs: a response's RCODE, its first question
//! name, and the A/AAAA addresses it answers (for IP → FQDN). Names follow compression pointers
//! (§4.1.4) with a bound on jumps; any malformed byte ends parsing with `None`, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RCODE 2: the server failed.
pub const RCODE_SERVFAIL: u8 = 2;
/// RCODE 3: the name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;
/// Most answer records read from one message.
pub const MAX_ANSWERS: usize = 64;
/// Most compression pointers followed in one name.
const MAX_JUMPS: usize = 16;

/// What the audit takes from a DNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsMessage {
    /// The QR bit: this is a response.
    pub response: bool,
    /// The RCODE (low 4 bits of the flags).
    pub rcode: u8,
    /// The first question's name, lower case, without the final dot (empty for the root or no
    /// question).
    pub qname: String,
    /// Addresses from A and AAAA answers.
    pub addresses: Vec<IpAddr>,
}

/// Parses a DNS message (UDP payload); `None` when it is not one.
pub fn parse(b: &[u8]) -> Option<DnsMessage> {
    if b.len() < 12 {
        return None;
    }
    let flags = u16::from_be_bytes([b[2], b[3]]);
    let qd = u16::from_be_bytes([b[4], b[5]]);
    let an = u16::from_be_bytes([b[6], b[7]]);
    let mut off = 12;
    let mut qname = String::new();
    for i in 0..qd {
        let (name, next) = read_name(b, off)?;
        if i == 0 {
            qname = name;
        }
        off = next.checked_add(4)?;
        if off > b.len() {
            return None;
        }
    }
    let mut addresses = Vec::new();
    for _ in 0..usize::from(an).min(MAX_ANSWERS) {
        let (_, next) = read_name(b, off)?;
        let h = b.get(next..next + 10)?;
        let ty = u16::from_be_bytes([h[0], h[1]]);
        let rdlen = usize::from(u16::from_be_bytes([h[8], h[9]]));
        let rd = b.get(next + 10..next + 10 + rdlen)?;
        match (ty, rdlen) {
            (1, 4) => addresses.push(IpAddr::V4(Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]))),
            (28, 16) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(rd);
                addresses.push(IpAddr::V6(Ipv6Addr::from(a)));
            }
            _ => {}
        }
        off = next + 10 + rdlen;
    }
    Some(DnsMessage {
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        qname,
        addresses,
    })
}

/// Reads a possibly compressed name at `off`; returns it and the offset after it (after the
/// first pointer when compressed).
fn read_name(b: &[u8], mut off: usize) -> Option<(String, usize)> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *b.get(off)?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Some((name, end.unwrap_or(off + 1)));
                }
                let label = b.get(off + 1..off + 1 + usize::from(len))?;
                if name.len() + label.len() > 253 {
                    return None;
                }
                if !name.is_empty() {
                    name.push('.');
                }
                for &c in label {
                    let c = c.to_ascii_lowercase();
                    // Keep names printable: anything else is shown escaped like dig does.
                    if c.is_ascii_graphic() && c != b'.' && c != b'\\' {
                        name.push(char::from(c));
                    } else {
                        name.push_str(&format!("\\{c:03}"));
                    }
                }
                off += 1 + usize::from(len);
            }
            0xc0 => {
                let lo = *b.get(off + 1)?;
                end.get_or_insert(off + 2);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return None;
                }
                off = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response for example.com with one A record (compressed owner name) and one AAAA.
    fn response(rcode: u8) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x80 | rcode, 0, 1, 0, 2, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07Example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
        m.extend_from_slice(&[0xc0, 12, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
        m.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        m
    }

    #[test]
    fn a_response_gives_rcode_name_and_addresses() {
        let d = parse(&response(0)).unwrap();
        assert!(d.response);
        assert_eq!(d.rcode, 0);
        assert_eq!(d.qname, "example.com");
        assert_eq!(
            d.addresses,
            vec![
                "93.184.216.34".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(parse(&response(3)).unwrap().rcode, RCODE_NXDOMAIN);
    }

    #[test]
    fn pointer_loops_and_cut_messages_are_refused() {
        let mut m = vec![0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12]);
        assert_eq!(parse(&m), None);
        let r = response(0);
        for n in 0..r.len() {
            // Every prefix parses or is refused, without a panic.
            let _ = parse(&r[..n]);
        }
        assert_eq!(parse(&r[..20]), None);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse(&b);
        }

        #[test]
        fn flipping_a_byte_never_panics(i in 0usize..80, v in proptest::prelude::any::<u8>()) {
            let mut r = response(0);
            let i = i % r.len();
            r[i] = v;
            let _ = parse(&r);
        }
    }
}
