//! The one error type of the capture crate.

use std::io;
use std::path::PathBuf;

/// What went wrong while reading a capture file or a live interface.
///
/// Each message is one line naming the file (or interface), where and why.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The capture file could not be opened.
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Reading the capture file failed part way.
    #[error("{path}: read error at byte offset {offset}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Absolute byte offset of the failed read.
        offset: u64,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file is not a valid pcap/pcapng file, or is truncated or corrupt.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Where and why decoding stopped (its message names the byte offset).
        source: ashiato_wire::capfile::FormatError,
    },
    /// A live-capture system call failed.
    #[error("interface {iface}: {op}: {source}")]
    Live {
        /// The interface name.
        iface: String,
        /// The operation that failed (e.g. "socket", "setsockopt PACKET_RX_RING", "mmap").
        op: &'static str,
        /// The operating system's reason.
        source: io::Error,
    },
    /// No interface has that name.
    #[error("interface {0:?} does not exist")]
    NoSuchInterface(String),
    /// The process may not capture (or send) on the interface: `EPERM` or `EACCES`.
    #[error("interface {iface}: {op}: permission denied (needs root or CAP_NET_RAW)")]
    PermissionDenied {
        /// The interface name.
        iface: String,
        /// The operation that was refused.
        op: &'static str,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The interface exists but is down (`ENETDOWN`).
    #[error("interface {iface} is down ({op})")]
    InterfaceDown {
        /// The interface name.
        iface: String,
        /// The operation that found it down.
        op: &'static str,
    },
    /// A configuration value is out of range.
    #[error("invalid capture configuration: {0}")]
    Config(String),
}
