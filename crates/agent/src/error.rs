use std::path::PathBuf;

/// What went wrong in the agent, naming the file, socket or call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A file or directory of the history could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The netlink sock_diag dump failed.
    #[error("sock_diag: {0}")]
    Netlink(std::io::Error),
    /// A call to the center failed.
    // The cause is the source, printed once by the caller's error chain.
    #[error("center {what}")]
    Center {
        /// The route.
        what: String,
        /// The cause.
        source: ashiato_net::client::ClientError,
    },
    /// The center's answer or a key file does not have the expected form.
    #[error("{0}")]
    Invalid(String),
}

impl AgentError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> AgentError {
        AgentError::Io {
            path: path.into(),
            source,
        }
    }
}
