//! Why the acceptor side could not go on.

use std::io;

use dicom_ul::pdu::{AbortRQServiceProviderReason, AbortRQSource};

use crate::message::DimseError;
use crate::tls::TlsFailure;

/// Why an association could not be read, answered or continued on the acceptor
/// side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScpError {
    /// The peer said nothing (or not all of a PDU) before the deadline.
    #[error("the peer sent no complete PDU in time")]
    Timeout,
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// A network error other than a timeout or a close.
    #[error("network error: {0}")]
    Io(#[source] io::Error),
    /// A TLS ClientHello arrived on the plain port: the peer wants TLS here.
    #[error(
        "a TLS client connected to the plain DICOM port: point it at the TLS port or turn its TLS off"
    )]
    TlsClientOnPlainPort,
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(TlsFailure),
    /// The first PDU was not an A-ASSOCIATE-RQ.
    #[error("expected an A-ASSOCIATE-RQ, got a PDU of type {pdu_type:#04x}")]
    NotAnAssociateRequest {
        /// The PDU type byte received.
        pdu_type: u8,
    },
    /// A PDU announced a length above the maximum.
    #[error("a PDU of {length} bytes exceeds the maximum of {max} bytes")]
    PduTooLong {
        /// The announced length (the PDU body, without its 6-byte header).
        length: u32,
        /// The maximum accepted.
        max: u32,
    },
    /// A PDU could not be decoded.
    #[error("malformed PDU: {0}")]
    Malformed(String),
}

impl ScpError {
    /// The A-ABORT that answers this error, when one should be sent (PS3.8 9.3.8):
    /// none for a peer that is gone or speaks TLS on the plain port.
    pub fn abort_source(&self) -> Option<AbortRQSource> {
        let reason = match self {
            ScpError::NotAnAssociateRequest { .. } => AbortRQServiceProviderReason::UnexpectedPdu,
            ScpError::PduTooLong { .. } => AbortRQServiceProviderReason::InvalidPduParameter,
            ScpError::Malformed(_) => AbortRQServiceProviderReason::UnrecognizedPduParameter,
            _ => return None,
        };
        Some(AbortRQSource::ServiceProvider(reason))
    }

    /// Classifies a socket error: timeouts and closes get their own variants.
    pub fn from_io(error: io::Error) -> ScpError {
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ScpError::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ScpError::Closed,
            _ => ScpError::Io(error),
        }
    }
}

impl From<ScpError> for DimseError {
    fn from(error: ScpError) -> Self {
        match error {
            ScpError::Timeout => DimseError::Timeout,
            ScpError::Closed => DimseError::ConnectionClosed,
            ScpError::Io(e) => DimseError::Io(e),
            other => DimseError::Protocol(other.to_string()),
        }
    }
}
