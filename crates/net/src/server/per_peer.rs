//! Connections per peer. A peer is an IPv4 address or an IPv6 /64: one host is normally given
//! a whole /64 (RFC 7421), so counting single IPv6 addresses would let it open as many
//! connections as it has addresses, i.e. all of them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The key a connection from `ip` is counted under: the IPv4 address (also for IPv4-mapped
/// IPv6, `::ffff:a.b.c.d`, which a dual-stack listener reports for IPv4 peers), or the /64
/// prefix of an IPv6 address.
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Connection counts by [`peer_key`], shared by the accept loop and the connection tasks.
pub type PerPeerCounts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One connection's place in the count; leaving (drop) gives it back.
#[derive(Debug)]
pub struct PerPeer {
    counts: PerPeerCounts,
    key: IpAddr,
}

impl PerPeer {
    /// Counts a connection from `ip`, or `None` if its peer already holds `limit`.
    pub fn enter(counts: &PerPeerCounts, ip: IpAddr, limit: usize) -> Option<PerPeer> {
        let key = peer_key(ip);
        let mut m = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(key).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                m.remove(&key);
            }
            return None;
        }
        *n += 1;
        Some(PerPeer {
            counts: counts.clone(),
            key,
        })
    }
}

impl Drop for PerPeer {
    fn drop(&mut self) {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PerPeer, PerPeerCounts, peer_key};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn keys_are_ipv4_addresses_and_ipv6_slash_64s() {
        assert_eq!(peer_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(peer_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            peer_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            peer_key(ip("2001:db8:1:2::1")),
            peer_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            peer_key(ip("2001:db8:1:2::1")),
            peer_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(peer_key(ip("::1")), ip("::"));
        // IPv4-compatible (deprecated, ::a.b.c.d) is not mapped: it is an IPv6 address.
        assert_eq!(peer_key(ip("::192.0.2.7")), ip("::"));
    }

    #[test]
    fn one_slash_64_shares_one_cap() {
        let counts = PerPeerCounts::default();
        let a = PerPeer::enter(&counts, ip("2001:db8:0:1::1"), 2).unwrap();
        let b = PerPeer::enter(&counts, ip("2001:db8:0:1::2"), 2).unwrap();
        assert!(
            PerPeer::enter(&counts, ip("2001:db8:0:1:dead:beef::3"), 2).is_none(),
            "a third address of the same /64 is over the cap"
        );
        let other = PerPeer::enter(&counts, ip("2001:db8:0:2::1"), 2);
        assert!(other.is_some(), "another /64 has its own cap");
        drop(a);
        let c = PerPeer::enter(&counts, ip("2001:db8:0:1::3"), 2);
        assert!(c.is_some(), "a place is given back when a connection ends");
        drop((b, c, other));
        assert!(
            counts.lock().unwrap().is_empty(),
            "no entry outlives its connections"
        );
    }

    #[test]
    fn mapped_and_plain_ipv4_share_one_cap() {
        let counts = PerPeerCounts::default();
        let _a = PerPeer::enter(&counts, ip("192.0.2.7"), 1).unwrap();
        assert!(PerPeer::enter(&counts, ip("::ffff:192.0.2.7"), 1).is_none());
        assert!(PerPeer::enter(&counts, ip("192.0.2.8"), 1).is_some());
    }

    #[test]
    fn a_zero_cap_refuses_and_leaves_nothing_behind() {
        let counts = PerPeerCounts::default();
        assert!(PerPeer::enter(&counts, ip("192.0.2.7"), 0).is_none());
        assert!(counts.lock().unwrap().is_empty());
    }
}
