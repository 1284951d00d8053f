//! Why a commitment could not be run at all (a commitment that ran and failed, or
//! whose report never came, is a [`CommitmentOutcome`](crate::CommitmentOutcome),
//! not an error).

use std::net::SocketAddr;

use dimse::{AssociateError, DimseError};

/// Why a commitment, or the report listener, could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitmentError {
    /// The request is malformed (no instance, an invalid UID, an instance twice).
    #[error("invalid commitment request: {0}; name each instance once by valid UIDs")]
    Request(String),
    /// An option that cannot work.
    #[error("invalid commitment option {name} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        expected: String,
    },
    /// The association could not be opened.
    #[error(transparent)]
    Associate(#[from] AssociateError),
    /// The peer did not accept the Storage Commitment Push Model context.
    #[error(
        "{peer} did not accept the Storage Commitment Push Model (1.2.840.10008.1.20.1) context; check that the peer offers Storage Commitment and knows our AE title"
    )]
    NotSupported {
        /// `CALLED@host:port`.
        peer: String,
    },
    /// The N-ACTION-RQ could not be sent (the association is lost).
    #[error("cannot send the N-ACTION-RQ to {peer}: {source}")]
    Send {
        /// `CALLED@host:port`.
        peer: String,
        /// What went wrong.
        #[source]
        source: DimseError,
    },
    /// The report listener cannot listen on its address.
    #[error(
        "cannot listen for commitment reports on {addr}: {source}; pick a free port or another address"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the report listener's {what} thread: {source}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl From<dimse::scp::ListenError> for CommitmentError {
    fn from(error: dimse::scp::ListenError) -> Self {
        match error {
            dimse::scp::ListenError::Bind { addr, source } => {
                CommitmentError::Bind { addr, source }
            }
            dimse::scp::ListenError::InvalidOption {
                name,
                value,
                expected,
            } => CommitmentError::InvalidOption {
                name,
                value,
                expected: expected.into(),
            },
        }
    }
}
