//! Packet sources for ashiato: the IO shells around the pure decoders of `ashiato-wire`.
//!
//! Every source hands out [`ashiato_wire::Frame`]s (timestamp in nanoseconds since the Unix
//! epoch, link type, original length, captured bytes) borrowed from its own buffer, so the
//! consumer (the probe's digest pipeline, later the DarkFlow detector) never copies a packet.
//!
//! - [`file`](mod@file): pcap and pcapng files read in large chunks; several files in time order.
//! - [`live`]: a Linux AF_PACKET socket with a TPACKET_V3 memory-mapped ring, with the
//!   kernel's drop counters.
//! - [`send`]: a raw AF_PACKET sender with rate control, for labs and the live benchmark.
//! - [`netns`]: network namespaces and veth pairs, so one process can play several hosts.
//!
//! Errors are one enum, [`CaptureError`], whose messages name the file or interface, the byte
//! offset and the cause on one line.

pub mod error;
pub mod file;
pub mod live;
pub mod netns;
pub mod send;

pub use error::CaptureError;
