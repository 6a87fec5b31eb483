//! `ashiato darkflow --key-file F`: every DarkFlow event names the digest of the flow's first
//! SYN, so a domain controller following the events can trace that packet back
//! (`[triggers] darkflow_events`).
//!
//! [`SynTap`] wraps any frame source: each frame it passes on that is a TCP SYN (no ACK, RST
//! or FIN) is digested under the federation key and filed in a
//! [`SynDigests`] shared with the event writer, which takes the digest back out when the flow
//! becomes a DarkFlow. The fast TCP decoder screens frames first, so frames that are not SYNs
//! cost one extra header check.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use ashiato_capture::{CaptureError, FrameSource, Poll, SourceStats};
use ashiato_darkflow::FlowId;
use ashiato_darkflow::syn_digests::SynDigests;
use ashiato_digest::Key;
use ashiato_wire::Frame;
use ashiato_wire::packet::{self, Fast, L4};

/// SYNs kept at most (each about 80 bytes): a flood beyond it leaves later DarkFlows without
/// a digest, counted in [`SynDigests::dropped`].
pub const MAX_SYNS: usize = 1 << 20;

/// The digests shared by the tap and the event writer (one thread).
pub type Shared = Rc<RefCell<SynDigests>>;

/// A frame source that files the digest of every SYN it passes on (with a key; without one
/// it only passes frames on, so that every DarkFlow mode reads through the same type).
pub struct SynTap<S> {
    inner: S,
    key: Option<Key>,
    digests: Shared,
}

impl<S> SynTap<S> {
    /// Wraps `inner`; DarkFlows are decided `timeout_ns` after their first SYN.
    pub fn new(inner: S, key: Option<Key>, timeout_ns: u64) -> (Self, Shared) {
        // Slack beyond T: a live detector decides a little after T (its clock lag).
        let digests = Rc::new(RefCell::new(SynDigests::new(
            MAX_SYNS,
            timeout_ns.saturating_add(2_000_000_000),
        )));
        (
            SynTap {
                inner,
                key,
                digests: digests.clone(),
            },
            digests,
        )
    }
}

fn file(key: &Key, digests: &Shared, f: &Frame<'_>) {
    let maybe_syn = match packet::tcp_fast(f.link, f.data) {
        Fast::V4(h) => h.flags.is_syn_only(),
        Fast::V6(h) => h.flags.is_syn_only(),
        Fast::NotTcp => false,
        Fast::Slow => true,
    };
    if !maybe_syn {
        return;
    }
    let Ok(p) = packet::parse(f.link, f.data) else {
        return;
    };
    let L4::Tcp(tcp) = p.l4 else { return };
    if !tcp.flags.is_syn_only() {
        return;
    }
    let Ok(d) = key.digest_ip(&p.ip) else { return };
    let flow = FlowId {
        src: p.ip.src(),
        sport: tcp.src_port,
        dst: p.ip.dst(),
        dport: tcp.dst_port,
    };
    digests.borrow_mut().syn(f.ts_nanos, flow, d.as_u128());
}

impl<S: FrameSource> FrameSource for SynTap<S> {
    fn poll<F: FnMut(Frame<'_>)>(
        &mut self,
        timeout: Duration,
        mut on_frame: F,
    ) -> Result<Poll, CaptureError> {
        let digests = &self.digests;
        match &self.key {
            Some(key) => self.inner.poll(timeout, |f| {
                file(key, digests, &f);
                on_frame(f);
            }),
            None => self.inner.poll(timeout, on_frame),
        }
    }

    fn stats(&mut self) -> Result<SourceStats, CaptureError> {
        self.inner.stats()
    }

    fn is_finite(&self) -> bool {
        self.inner.is_finite()
    }
}
