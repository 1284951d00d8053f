//! The sink's errors: each names what and where, and what to do.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A text that does not name an attribute path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad attribute path `{path}`: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Why the sink could not start, or a send could not be tracked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The listening socket could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; pick another SINK_PORT (0 picks a free one) or SINK_BIND"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the sink's {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An option the sink cannot work with.
    #[error("invalid sink option {name} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        expected: String,
    },
    /// A send cannot be tracked: it has no matching key.
    #[error(
        "send of {sop_instance_uid} on route {route} has no trace value, but the sink matches by {trace}; \
         give the send its trace value (Send::trace)"
    )]
    MissingTrace {
        /// The original instance's SOP Instance UID.
        sop_instance_uid: String,
        /// The route.
        route: String,
        /// The trace attribute.
        trace: String,
    },
    /// An instance to track could not be read.
    #[error("cannot read {path} as the original of a send: {detail}")]
    Original {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// An in-memory instance to track lacks what the sink needs.
    #[error("cannot track this data set as the original of a send: {detail}")]
    BadOriginal {
        /// Why.
        detail: String,
    },
}

impl From<dimse::scp::ListenError> for SinkError {
    fn from(error: dimse::scp::ListenError) -> Self {
        match error {
            dimse::scp::ListenError::Bind { addr, source } => SinkError::Bind { addr, source },
            dimse::scp::ListenError::InvalidOption {
                name,
                value,
                expected,
            } => SinkError::InvalidOption {
                name,
                value,
                expected: expected.into(),
            },
        }
    }
}
