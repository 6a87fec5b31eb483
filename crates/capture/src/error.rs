//! The one error type of the capture crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// What went wrong while reading a capture file or a live interface.
///
/// Each message is one line naming the file (or interface), where and what failed; the
/// operating system's reason is the error's [`source`](std::error::Error::source), which
/// `{:#}` in the binary appends, so it is not repeated in the message. A [`FormatError`] is
/// no such cause but the description itself (offset and what was wrong), so a
/// [`CaptureError::Format`] shows it and has no source.
///
/// [`FormatError`]: ashiato_wire::capfile::FormatError
#[non_exhaustive]
#[derive(Debug)]
pub enum CaptureError {
    /// The capture file could not be opened.
    Open {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Reading the capture file failed part way.
    Read {
        /// The file.
        path: PathBuf,
        /// Absolute byte offset of the failed read.
        offset: u64,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file is not a valid pcap/pcapng file, or is truncated or corrupt.
    Format {
        /// The file.
        path: PathBuf,
        /// Where and why decoding stopped (its message names the byte offset).
        source: ashiato_wire::capfile::FormatError,
    },
    /// A live-capture system call failed.
    Live {
        /// The interface name.
        iface: String,
        /// The operation that failed (e.g. "socket", "setsockopt PACKET_RX_RING", "mmap").
        op: &'static str,
        /// The operating system's reason.
        source: io::Error,
    },
    /// No interface has that name.
    NoSuchInterface(String),
    /// The process may not capture (or send) on the interface: `EPERM` or `EACCES`.
    PermissionDenied {
        /// The interface name.
        iface: String,
        /// The operation that was refused.
        op: &'static str,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The interface exists but is down (`ENETDOWN`).
    InterfaceDown {
        /// The interface name.
        iface: String,
        /// The operation that found it down.
        op: &'static str,
    },
    /// A configuration value is out of range.
    Config(String),
    /// A failure injected by [`FaultInjector`](crate::fault::FaultInjector).
    Injected {
        /// Frames read from the wrapped source before the failure.
        frames: u64,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Open { path, .. } => write!(f, "{}: cannot open", path.display()),
            CaptureError::Read { path, offset, .. } => {
                write!(f, "{}: read error at byte offset {offset}", path.display())
            }
            CaptureError::Format { path, source } => write!(f, "{}: {source}", path.display()),
            CaptureError::Live { iface, op, .. } => write!(f, "interface {iface}: {op} failed"),
            CaptureError::NoSuchInterface(name) => write!(f, "interface {name:?} does not exist"),
            CaptureError::PermissionDenied { iface, op, .. } => write!(
                f,
                "interface {iface}: {op}: permission denied (needs root or CAP_NET_RAW)"
            ),
            CaptureError::InterfaceDown { iface, op } => {
                write!(f, "interface {iface} is down ({op})")
            }
            CaptureError::Config(what) => write!(f, "invalid capture configuration: {what}"),
            CaptureError::Injected { frames } => {
                write!(f, "injected capture failure after {frames} frames")
            }
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Open { source, .. }
            | CaptureError::Read { source, .. }
            | CaptureError::Live { source, .. }
            | CaptureError::PermissionDenied { source, .. } => Some(source),
            CaptureError::Format { .. }
            | CaptureError::InterfaceDown { .. }
            | CaptureError::NoSuchInterface(_)
            | CaptureError::Config(_)
            | CaptureError::Injected { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CaptureError;
    use std::error::Error;
    use std::io;

    /// The message and its causes as the binary prints them (`{:#}` of anyhow).
    fn full(e: &dyn Error) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s = format!("{s}: {c}");
            cur = c.source();
        }
        s
    }

    #[test]
    fn each_cause_is_printed_once() {
        let os = || io::Error::from_raw_os_error(2);
        let cause = os().to_string();
        let errors = [
            CaptureError::Open {
                path: "x.pcap".into(),
                source: os(),
            },
            CaptureError::Read {
                path: "x.pcap".into(),
                offset: 24,
                source: os(),
            },
            CaptureError::Live {
                iface: "eth9".into(),
                op: "socket",
                source: os(),
            },
        ];
        for e in &errors {
            let msg = full(e);
            assert_eq!(msg.matches(&cause).count(), 1, "{msg}");
        }
        assert_eq!(
            full(&errors[1]),
            format!("x.pcap: read error at byte offset 24: {cause}")
        );
        let fmt = CaptureError::Format {
            path: "x.pcap".into(),
            source: ashiato_wire::capfile::FormatError {
                offset: 0,
                kind: ashiato_wire::capfile::FormatErrorKind::Empty,
            },
        };
        assert_eq!(full(&fmt), "x.pcap: at byte offset 0: empty file");
    }
}
