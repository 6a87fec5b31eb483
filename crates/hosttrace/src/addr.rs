//! Which addresses are "on the Internet" for the seed's port feature (feature 3: connections to
//! 135-139, 445, 1433-1434 on Internet addresses). Local SMB or SQL traffic is normal; the same
//! ports towards the Internet are what worms and bots scan.

use std::net::IpAddr;

/// Not private (RFC 1918, RFC 4193), shared (RFC 6598), loopback, link-local, multicast,
/// broadcast or unspecified. (`IpAddr::is_global` is still unstable.)
pub fn is_internet(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_multicast()
                || v.is_broadcast()
                || v.is_unspecified()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || o[0] == 0
                || o[0] >= 240)
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_ranges_are_not_internet() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "224.0.0.5",
            "255.255.255.255",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "ff02::1",
        ] {
            assert!(!is_internet(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "172.32.0.1", "82.118.225.196", "2001:4860::8888"] {
            assert!(is_internet(a.parse().unwrap()), "{a}");
        }
    }
}
