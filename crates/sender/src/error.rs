//! [`SenderError`]: why a sender could not be built, an instance prepared or an
//! association used.

use std::path::PathBuf;

use dicom_ul::pdu::AssociationRJ;
use dimse::AssociateError;

use crate::SenderOptions;

/// Errors of the sender. Send outcomes (success, warning, failure, unknown) are not
/// errors: they are [`SendOutcome`](crate::SendOutcome)s; a `SenderError` means the
/// operation could not be attempted or its setup failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SenderError {
    /// An AE title breaks PS3.5's rules.
    #[error("invalid {role} AE title {title:?}: {source}")]
    InvalidAeTitle {
        /// `calling` or `called`.
        role: &'static str,
        /// The title given.
        title: String,
        /// What is wrong with it.
        #[source]
        source: dimse::AeTitleError,
    },
    /// The peer address is not `host:port`.
    #[error("invalid peer address {address:?}: {source}")]
    InvalidAddress {
        /// The address given.
        address: String,
        /// What is wrong with it.
        #[source]
        source: dimse::PeerAddressError,
    },
    /// An option has a value the sender cannot use.
    #[error("invalid {name} {value:?}: expected {expected}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// The TCP connection could not be made (refused, unreachable, timed out).
    #[error("cannot connect to {peer}: {source}")]
    Connect {
        /// `host:port`.
        peer: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed, or the peer ended TLS right after it.
    #[error("TLS with {peer} failed: {failure}")]
    Tls {
        /// `host:port`.
        peer: String,
        /// What went wrong and what to fix.
        failure: dimse::tls::TlsFailure,
    },
    /// We spoke plaintext DICOM and the peer answered in TLS.
    #[error(
        "{peer} answered in TLS: the port expects DICOM over TLS; turn TLS on (DICOM_TLS) or use its plaintext port"
    )]
    PeerSpeaksTls {
        /// `host:port`.
        peer: String,
    },
    /// The peer rejected the association (A-ASSOCIATE-RJ).
    #[error("association {calling} -> {called} at {peer} rejected: {description}")]
    Rejected {
        /// `host:port`.
        peer: String,
        /// Our AE title.
        calling: String,
        /// The AE title we called.
        called: String,
        /// Result, source and reason in words (see [`dimse::describe_rejection`]).
        description: String,
        /// The rejection as received.
        rejection: AssociationRJ,
    },
    /// The peer accepted the association but none of the presentation contexts.
    #[error(
        "association {calling} -> {called} at {peer}: no presentation context accepted (proposed: {proposed})"
    )]
    NoAcceptedContexts {
        /// `host:port`.
        peer: String,
        /// Our AE title.
        calling: String,
        /// The AE title we called.
        called: String,
        /// The abstract syntaxes proposed, comma-separated.
        proposed: String,
    },
    /// The association could not be established or used for another reason
    /// (timeout, closed connection, protocol error).
    #[error("association with {peer} failed while {stage}: {source}")]
    Association {
        /// `host:port`.
        peer: String,
        /// What was being done: `negotiating`, `releasing`, `sending a C-ECHO`...
        stage: &'static str,
        /// The classified cause.
        #[source]
        source: dimse::DimseError,
    },
    /// More presentation contexts are needed than one association can carry.
    #[error(
        "{needed} presentation contexts needed but an association carries at most 128: send fewer SOP classes or transfer syntaxes at once"
    )]
    TooManyPresentationContexts {
        /// How many (SOP class, transfer syntax) pairs were needed.
        needed: usize,
    },
    /// A file could not be read as DICOM.
    #[error("cannot read {path}: {detail}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong, with its causes.
        detail: String,
    },
    /// A data set lacks something a C-STORE needs, or could not be encoded.
    #[error("cannot prepare {what} for sending: {detail}")]
    Prepare {
        /// The file path or `data set <SOP Instance UID>`.
        what: String,
        /// What is missing or failed.
        detail: String,
    },
    /// The C-ECHO got a response, but not a success.
    #[error("C-ECHO to {peer} answered {status}")]
    EchoRefused {
        /// `host:port`.
        peer: String,
        /// The status received.
        status: dimse::Status,
    },
}

impl SenderError {
    /// The one translation of why an association could not be opened, naming the
    /// peer and both AE titles of `options`.
    pub(crate) fn from_associate(error: AssociateError, options: &SenderOptions) -> Self {
        let peer = options.address().to_string();
        let calling = options.calling_ae().to_string();
        let called = options.called_ae().to_string();
        match error {
            AssociateError::Connect { source, .. } => SenderError::Connect { peer, source },
            AssociateError::Rejected {
                description,
                rejection,
                ..
            } => SenderError::Rejected {
                peer,
                calling,
                called,
                description,
                rejection,
            },
            AssociateError::NoAcceptedContexts { proposed, .. } => {
                SenderError::NoAcceptedContexts {
                    peer,
                    calling,
                    called,
                    proposed: proposed.join(", "),
                }
            }
            AssociateError::Negotiation { stage, source, .. } => SenderError::Association {
                peer,
                stage,
                source,
            },
            AssociateError::Tls { failure, .. } => SenderError::Tls { peer, failure },
            AssociateError::PeerSpeaksTls { .. } => SenderError::PeerSpeaksTls { peer },
            AssociateError::InvalidOption {
                name,
                value,
                expected,
            } => SenderError::InvalidOption {
                name,
                value,
                expected,
            },
            // AssociateError is non-exhaustive: a new kind is still a failed negotiation.
            other => SenderError::Association {
                peer,
                stage: "establishing",
                source: dimse::DimseError::Protocol(dimse::ErrorChain(&other).to_string()),
            },
        }
    }
}
