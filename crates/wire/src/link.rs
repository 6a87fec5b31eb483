//! Link-layer types as numbered by pcap and pcapng (the tcpdump.org `LINKTYPE_*` registry).
//!
//! Only the link types that can carry IP and that probes meet in practice are named; every
//! other number is kept as [`LinkType::Other`] so that a capture file still decodes and the
//! packet parser can report the frame as unsupported instead of failing the whole file.

/// The link layer of a captured frame, from a pcap header or a pcapng interface block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_NULL` (0): BSD loopback, a 4-byte address family in host byte order.
    Null,
    /// `LINKTYPE_ETHERNET` (1): IEEE 802.3 Ethernet, possibly with 802.1Q/802.1ad tags.
    Ethernet,
    /// `LINKTYPE_RAW` (101; also the legacy numbers 12 and 14): a bare IPv4 or IPv6 packet.
    Raw,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, a 4-byte address family in network order.
    Loop,
    /// `LINKTYPE_LINUX_SLL` (113): Linux "cooked" capture, 16-byte header.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): Linux "cooked" capture v2, 20-byte header.
    LinuxSll2,
    /// `LINKTYPE_IPV4` (228): a bare IPv4 packet.
    Ipv4,
    /// `LINKTYPE_IPV6` (229): a bare IPv6 packet.
    Ipv6,
    /// Any other link type number, kept as is.
    Other(u32),
}

impl LinkType {
    /// Maps a pcap/pcapng link type number to a [`LinkType`].
    ///
    /// The legacy numbers 12 and 14, which some systems wrote for raw IP, map to
    /// [`LinkType::Raw`] (see pcap-linktype(7)).
    pub fn from_pcap(v: u32) -> Self {
        match v {
            0 => Self::Null,
            1 => Self::Ethernet,
            101 | 12 | 14 => Self::Raw,
            108 => Self::Loop,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            other => Self::Other(other),
        }
    }

    /// The pcap/pcapng number of this link type (raw IP is written as 101).
    pub fn to_pcap(self) -> u32 {
        match self {
            Self::Null => 0,
            Self::Ethernet => 1,
            Self::Raw => 101,
            Self::Loop => 108,
            Self::LinuxSll => 113,
            Self::LinuxSll2 => 276,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
            Self::Other(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LinkType;

    #[test]
    fn named_numbers_round_trip() {
        for v in [0, 1, 101, 108, 113, 276, 228, 229, 147, 65_000] {
            assert_eq!(LinkType::from_pcap(v).to_pcap(), v);
        }
    }

    #[test]
    fn legacy_raw_numbers() {
        assert_eq!(LinkType::from_pcap(12), LinkType::Raw);
        assert_eq!(LinkType::from_pcap(14), LinkType::Raw);
        assert_eq!(LinkType::Raw.to_pcap(), 101);
    }

    #[test]
    fn unknown_kept() {
        assert_eq!(LinkType::from_pcap(147), LinkType::Other(147));
    }
}
