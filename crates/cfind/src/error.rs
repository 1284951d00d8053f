//! Errors of the C-FIND client and of delivery verification.

use std::time::Duration;

use dimse::{DimseError, Status};

use dimse::qr::{InformationModel, QueryLevel};

/// Why a query, an echo or a verification failed.
///
/// Every network error names the peer as `AE@host:port`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CFindError {
    /// A configured AE title is not valid.
    #[error("invalid {role} AE title {value:?}: {source}")]
    InvalidAeTitle {
        /// `called` or `calling`.
        role: &'static str,
        /// The offending title.
        value: String,
        /// What is wrong with it.
        #[source]
        source: dimse::AeTitleError,
    },

    /// A setting of the client is unusable (zero timeout, zero batch size...).
    #[error("invalid setting {name} = {value}: {reason}")]
    InvalidSetting {
        /// The builder method or setting name.
        name: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        reason: &'static str,
    },

    /// No TCP connection could be made.
    #[error("cannot connect to {peer}: {detail}")]
    Connect {
        /// `AE@host:port`.
        peer: String,
        /// The operating system's reason (refused, unreachable, timed out...).
        detail: String,
    },

    /// The peer rejected the association (A-ASSOCIATE-RJ).
    #[error("association rejected by {peer}: {reason}")]
    Rejected {
        /// `AE@host:port`.
        peer: String,
        /// Result, source and reason, e.g. `permanent rejection by the service user:
        /// called AE title not recognized`.
        reason: String,
        /// Whether the peer said the rejection is transient (retrying may help).
        transient: bool,
    },

    /// Association negotiation failed for another reason (no answer within the ACSE
    /// timeout, malformed answer, connection closed...).
    #[error("cannot open an association with {peer}: {detail}")]
    Association {
        /// `AE@host:port`.
        peer: String,
        /// What failed, with its causes.
        detail: String,
        /// Whether it was a timeout.
        timed_out: bool,
    },

    /// The peer accepted the association but none of the proposed query models.
    #[error(
        "{peer} accepted none of the query models proposed ({}): it does not answer C-FIND from this AE",
        models.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
    )]
    NoModelAccepted {
        /// `AE@host:port`.
        peer: String,
        /// The models proposed.
        models: Vec<InformationModel>,
    },

    /// The peer did not accept the Verification SOP class, so C-ECHO is impossible.
    #[error("{peer} does not accept the Verification SOP class (C-ECHO)")]
    EchoNotAccepted {
        /// `AE@host:port`.
        peer: String,
    },

    /// The peer answered with a failure status.
    #[error(
        "{operation} refused by {peer}: status {status}{}",
        error_comment.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    Failed {
        /// `AE@host:port`.
        peer: String,
        /// `C-FIND (Study Root, STUDY)` or `C-ECHO`.
        operation: String,
        /// The status code.
        status: Status,
        /// The peer's ErrorComment, if it sent one.
        error_comment: Option<String>,
    },

    /// No answer within the DIMSE timeout, or the whole query overran its deadline.
    #[error("{operation} to {peer}: no answer after {:.1} s ({what})", waited.as_secs_f64())]
    Timeout {
        /// `AE@host:port`.
        peer: String,
        /// What was waited for.
        operation: String,
        /// `DIMSE timeout` or `query deadline`.
        what: &'static str,
        /// How long the client waited.
        waited: Duration,
    },

    /// The association broke during an exchange (closed, aborted, protocol error).
    #[error("{operation} to {peer} failed: {source}")]
    Dimse {
        /// `AE@host:port`.
        peer: String,
        /// What was being done.
        operation: String,
        /// The DIMSE layer's error.
        #[source]
        source: DimseError,
    },

    /// The peer aborted or released the association in the middle of an exchange.
    #[error("{operation} to {peer}: the peer {what} the association")]
    Ended {
        /// `AE@host:port`.
        peer: String,
        /// What was being done.
        operation: String,
        /// `aborted`, `released` or `ended` (something else ended it).
        what: &'static str,
    },

    /// The peer sent something a C-FIND SCP must not (wrong message, wrong ID, an
    /// identifier that does not decode).
    #[error("{operation} to {peer}: protocol violation: {detail}")]
    Protocol {
        /// `AE@host:port`.
        peer: String,
        /// What was being done.
        operation: String,
        /// What was wrong.
        detail: String,
    },

    /// A keyword or tag that the DICOM dictionary does not know.
    #[error("unknown attribute {key:?}: use a DICOM keyword (PatientName) or a tag (0010,0010)")]
    UnknownAttribute {
        /// The text given.
        key: String,
    },

    /// A match value that cannot be right (bad UID, bad date, reversed range).
    #[error("invalid match value for {key}: {value:?}: {reason}")]
    InvalidMatchValue {
        /// The key's keyword.
        key: String,
        /// The value (first 80 characters).
        value: String,
        /// What is wrong.
        reason: String,
    },

    /// The identifier could not be encoded.
    #[error("cannot encode the query identifier: {detail}")]
    Encode {
        /// The encoder's explanation.
        detail: String,
    },

    /// A study did not become visible (or did not match the expectation) in time.
    #[error(
        "study {study_instance_uid} not as expected after {:.1} s ({polls} queries): {unmet}; last answer: {last_answer}",
        waited.as_secs_f64()
    )]
    StudyNotVisible {
        /// The study waited for.
        study_instance_uid: String,
        /// How long the client polled.
        waited: Duration,
        /// How many times it queried.
        polls: u32,
        /// What was still not as expected at the last answer.
        unmet: String,
        /// The last answer, in words (`no match`, the attributes seen, or the last error).
        last_answer: String,
    },
}

impl CFindError {
    /// Whether trying again later may succeed: the peer may be down, busy or slow.
    /// Configuration errors (AE titles, models, keys) are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            CFindError::Connect { .. }
            | CFindError::Association { .. }
            | CFindError::Timeout { .. }
            | CFindError::Dimse { .. }
            | CFindError::Ended { .. } => true,
            CFindError::Rejected { transient, .. } => *transient,
            CFindError::Failed { status, .. } => status.is_out_of_resources(),
            _ => false,
        }
    }

    /// The status code of a failure answer.
    pub fn status(&self) -> Option<Status> {
        match self {
            CFindError::Failed { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether this is a timeout (DIMSE timeout or query deadline).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            CFindError::Timeout { .. }
                | CFindError::Association {
                    timed_out: true,
                    ..
                }
        )
    }
}

/// The name of a C-FIND for error messages: `C-FIND (Study Root, STUDY)`.
pub(crate) fn find_operation(model: InformationModel, level: QueryLevel) -> String {
    format!("C-FIND ({model}, {level})")
}
