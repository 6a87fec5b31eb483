//! Wire formats for ashiato: capture files and packet layers, as pure code over bytes.
//!
//! Nothing here reads a file, a socket or a clock; the IO shells live in `ashiato-capture`.
//! Every parser takes a byte slice, never panics on any input, and returns a typed error that
//! names the layer (or file offset) and the offending value.
//!
//! The layers, outermost first:
//!
//! - [`capfile`]: the container. [`capfile::Decoder`] turns pcap or pcapng bytes, fed
//!   incrementally, into [`Frame`]s (timestamp in ns, [`LinkType`], original length, captured
//!   bytes borrowed from the input). [`capfile::PcapWriter`] writes classic pcap.
//! - [`link`]: the [`LinkType`] numbers of pcap/pcapng.
//! - [`packet`]: one frame parsed down through the link layer (Ethernet with VLAN tags, Linux
//!   cooked, BSD loopback, raw IP), IPv4 or IPv6 (with extension headers) to the L4 header
//!   (TCP, UDP, ICMP). This is the digest pipeline's hot path: zero-copy, no allocation.
//!   [`packet::ParseStats`] counts the frames skipped, by reason.
//! - [`time`]: timestamps as RFC 3339 text.
//! - [`build`]: the emit side: Ethernet/IPv4/IPv6/TCP/UDP/ICMP construction with correct
//!   checksums, for tests, benchmarks and lab traffic. Property tests check that
//!   `packet::parse(build(..))` returns the fields that were built.

pub mod build;
pub mod capfile;
pub mod link;
pub mod packet;
pub mod time;

pub use capfile::Frame;
pub use link::LinkType;
