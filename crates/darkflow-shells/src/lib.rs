//! The IO shells around the pure DarkFlow core (`ashiato-darkflow`): each owns the clock,
//! the capture or the sockets, and drives the core with packets and `now`.
//!
//! * [`offline`] — capture files (any [`FrameSource`](ashiato_capture::FrameSource) that
//!   ends) replayed through the detector by packet time: the same events on every run.
//! * [`live`] — a live source (an AF_PACKET ring) read by the clock, deadlines decided a
//!   little behind it so that answers still in the ring are not missed.
//! * [`inline`] — the NFQUEUE gateway: the decision is
//!   [`Gateway`](ashiato_darkflow::gateway::Gateway); this shell opens the queue and the raw
//!   sockets, reads the clock and applies the verdicts.
//! * [`report_dir`] — a report directory written as events come (`darkflows.csv` streamed,
//!   the summary files at the end).
//!
//! Printing, flags and the metrics endpoint are the binary's (`ashiato darkflow`).

pub mod inline;
pub mod live;
pub mod offline;
pub mod report_dir;
