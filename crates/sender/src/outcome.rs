//! [`SendOutcome`] and [`EchoOutcome`]: what one C-STORE or C-ECHO came to.

use std::time::{Duration, Instant};

use dimse::Status;
pub use metrics::Outcome;

/// How one C-STORE ended, typed for the accounting.
///
/// - [`Outcome::Success`] / [`Outcome::Warning`] / [`Outcome::Failure`]: a C-STORE-RSP
///   arrived, classified by [`Status::class`] (the workspace's one status table);
///   `status` holds the code.
/// - [`Outcome::Failure`] without a status: the store could not go out completely (no
///   association, no presentation context, conversion failed, or the connection broke
///   before the last byte of the data set left): the peer cannot hold the instance.
/// - [`Outcome::Unknown`]: the whole request was sent, then the association was
///   aborted, the connection lost, or the DIMSE timeout expired: the instance may or
///   may not have arrived, and only a C-FIND can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendOutcome {
    /// The C-STORE-RSP status, when one arrived.
    pub status: Option<Status>,
    /// The accounting class.
    pub outcome: Outcome,
    /// From the start of the request (command written) to its outcome.
    pub latency: Duration,
    /// Bytes of the data set as encoded for the wire (0 when nothing was sent).
    pub bytes: u64,
    /// Why it was not a plain success: the status and the peer's Error Comment, or the
    /// failure's cause.
    pub error: Option<String>,
    /// When the request started.
    pub started: Instant,
}

impl SendOutcome {
    pub(crate) fn not_sent(outcome: Outcome, error: String, started: Instant) -> Self {
        SendOutcome {
            status: None,
            outcome,
            latency: started.elapsed(),
            bytes: 0,
            error: Some(error),
            started,
        }
    }

    /// Whether the peer took the instance (success or warning).
    pub fn is_delivered(&self) -> bool {
        self.outcome.is_delivered()
    }
}

/// The result of a C-ECHO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoOutcome {
    /// The C-ECHO-RSP status (success here: another status is an error).
    pub status: Status,
    /// From writing the C-ECHO-RQ to reading its response.
    pub round_trip: Duration,
    /// TCP connect plus association negotiation.
    pub association_time: Duration,
    /// What TLS negotiated, when the association ran over TLS.
    pub tls_session: Option<dimse::tls::TlsSession>,
}
