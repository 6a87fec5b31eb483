//! Flow identities: a compact key per address family for the tables, and [`FlowId`] for output.

use core::fmt;
use core::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

/// An address as the tables store it: `u32` for IPv4, 16 bytes for IPv6.
pub trait Addr: Copy + Eq + Hash + fmt::Debug {
    /// Back to a standard address.
    fn ip(self) -> IpAddr;
}

impl Addr for u32 {
    fn ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }
}

impl Addr for [u8; 16] {
    fn ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }
}

/// A flow in the orientation of its SYN: `src` is the client, `dst` the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple<A> {
    /// Client address.
    pub src: A,
    /// Server address.
    pub dst: A,
    /// Client port.
    pub sport: u16,
    /// Server port.
    pub dport: u16,
}

impl<A: Addr> Tuple<A> {
    /// The same flow seen from the other side.
    pub fn reversed(self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }

    /// The flow with standard addresses.
    pub fn id(self) -> FlowId {
        FlowId {
            src: self.src.ip(),
            sport: self.sport,
            dst: self.dst.ip(),
            dport: self.dport,
        }
    }
}

/// A flow, client first: (source address, source port, destination address, destination port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FlowId {
    /// Client (SYN sender) address.
    pub src: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Server (SYN target) address.
    pub dst: IpAddr,
    /// Server port.
    pub dport: u16,
}

impl FlowId {
    /// The same flow seen from the other side.
    pub fn reversed(self) -> Self {
        Self {
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
}

/// `src sport dst dport`, the line format of the DarkFlow set files.
impl fmt::Display for FlowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {} {}", self.src, self.sport, self.dst, self.dport)
    }
}

impl core::str::FromStr for FlowId {
    type Err = String;

    /// Parses `src sport dst dport` (whitespace separated).
    fn from_str(s: &str) -> Result<Self, String> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 4 {
            return Err(format!("expected `src sport dst dport`, got {s:?}"));
        }
        let ip = |x: &str| x.parse::<IpAddr>().map_err(|e| format!("{x:?}: {e}"));
        let port = |x: &str| x.parse::<u16>().map_err(|e| format!("port {x:?}: {e}"));
        Ok(Self {
            src: ip(f[0])?,
            sport: port(f[1])?,
            dst: ip(f[2])?,
            dport: port(f[3])?,
        })
    }
}
