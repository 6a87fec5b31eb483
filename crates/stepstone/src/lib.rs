//! Stepping-stone detection for ashiato: is the address that hits the darknet the attacker, or
//! a relay in front of it? (docs/stepping-stones.md)
//!
//! This crate is the pure core. It reads no file, socket or clock:
//!
//! - [`sig`]: the p0f 3 signature model: [`Observed`] (what one SYN or SYN/ACK shows: IP
//!   version, TTL, IP options length, MSS, window and scale, option layout, quirks, payload
//!   class) and [`Signature`] (what a p0f.fp line asks for), both in p0f's notation.
//! - [`extract`]: a parsed packet (`ashiato_wire::packet`) → [`Observed`], as p0f 3.09b does it.
//! - [`db`]: p0f.fp files → [`Database`], errors naming the line. [`MODERN_DB`] is our own
//!   signature file (current stacks and scanners), kept apart from p0f's LGPL database.
//! - [`matcher`]: [`Observed`] + [`Database`] → the signature p0f would report, and how
//!   exactly it matched ([`Quality`]).
//! - [`tracker`]: which packets p0f fingerprints (handshakes, retransmissions, stray
//!   SYN/ACKs) in a bounded table, in packet time.
//!
//! - [`decide`]: passive (Fp, Tp) against active (Fa, Ta) evidence → a relay [`decide::Verdict`]
//!   with the signals that fired.
//!
//! - [`responder`]: the darknet responder's core: SYNs in, SYN/ACKs out under rate limits,
//!   Tp measured from the acknowledging ACK.
//! - [`app`]: the responder's optional application exchange (Tapp) for relays that end TCP.
//! - [`passive`]: Tp (SYN/ACK to ACK) and Fp per source from a capture of both directions.
//!
//! Data flows: frame → `ashiato_wire::packet::parse` → [`Tracker::packet`] → [`Fingerprint`].

pub mod app;
pub mod db;
pub mod decide;
pub mod extract;
pub mod matcher;
pub mod passive;
pub mod responder;
pub mod sig;
pub mod tracker;

pub use db::{Database, DbError, DbErrorKind, Label, Record};
pub use matcher::{Match, Quality, find};
pub use sig::{IpVer, Kind, Observed, Quirks, RawSigCache, SigKey, Signature};
pub use tracker::{Fingerprint, Tracker, TrackerStats};

/// Our signature file (`signatures/ashiato.fp`): modern stacks and scanners, each with where
/// it came from. Not derived from p0f's database.
pub const MODERN_DB: &str = include_str!("../signatures/ashiato.fp");

#[cfg(test)]
mod tests;
