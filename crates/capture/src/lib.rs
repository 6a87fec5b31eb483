//! Packet sources for ashiato: the IO shells around the pure decoders of `ashiato-wire`.
//!
//! Every source hands out [`ashiato_wire::Frame`]s (timestamp in nanoseconds since the Unix
//! epoch, link type, original length, captured bytes) borrowed from its own buffer, so the
//! consumer (the probe's digest pipeline, the DarkFlow shells) never copies a packet.
//!
//! Sources implement one trait, [`FrameSource`]: `poll` hands a batch of frames to a callback
//! and says [`Poll::Frames`], [`Poll::Idle`] (live, nothing within the timeout) or
//! [`Poll::End`] (files read to their end). Every consumer writes one loop over `S:
//! FrameSource` and runs it over files, a live ring, frames in memory or a fault injector.
//!
//! - [`source`]: the trait, its batch and statistics types, and [`MemorySource`] (frames in
//!   memory, for tests and benchmarks).
//! - [`fault`]: [`FaultInjector`](fault::FaultInjector), a wrapper around any source that
//!   drops, truncates or fails deterministically for a seed.
//! - [`file`](mod@file): pcap and pcapng files read in large chunks; several files in time order.
//! - [`live`]: a Linux AF_PACKET socket with a TPACKET_V3 memory-mapped ring, with the
//!   kernel's drop counters.
//! - [`send`]: a raw AF_PACKET sender with rate control, for labs and the live benchmark.
//! - [`netns`]: network namespaces and veth pairs, so one process can play several hosts.
//!
//! Errors are one enum, [`CaptureError`], whose messages name the file or interface, the byte
//! offset and the cause on one line.

pub mod error;
pub mod fault;
pub mod file;
pub mod live;
pub mod netns;
pub mod send;
pub mod source;

pub use error::CaptureError;
pub use source::{FrameSource, MemorySource, OwnedFrame, Poll, SourceStats};
