//! The crate's one error type.

/// What went wrong reading a claim list or a process snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostTraceError {
    /// A line is not a valid claim.
    #[error("claim line {line}: {reason}")]
    Claim {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A line is not a valid process record.
    #[error("process line {line}: {reason}")]
    Proc {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A time is not RFC 3339.
    #[error("bad RFC 3339 time {value:?}")]
    Time {
        /// The text found.
        value: String,
    },
}
