//! Opening an SCU association the way every client in the workspace must: every wait
//! bounded and TCP_NODELAY on.

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use dicom_ul::{ClientAssociation, ClientAssociationOptions};

/// The waits of one SCU association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScuTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// The A-ASSOCIATE-AC (socket read timeout during negotiation).
    pub acse: Duration,
    /// Each DIMSE response once associated (socket read timeout afterwards).
    pub dimse: Duration,
    /// Each socket write.
    pub write: Duration,
}

/// Why [`establish`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EstablishError {
    /// dicom-ul could not connect or negotiate (refused, rejected, no context accepted,
    /// timed out...). Callers match on it to say which.
    #[error(transparent)]
    Association(Box<dicom_ul::association::Error>),
    /// The association was accepted but its socket could not be configured; it was
    /// aborted.
    #[error("cannot configure the association's socket: {0}")]
    Socket(#[source] io::Error),
}

/// Establishes `options` with `address`: the connect timeout and ACSE timeout bound the
/// negotiation, then the socket's read timeout becomes the DIMSE timeout and
/// TCP_NODELAY is set (dicom-ul leaves Nagle on, which costs ~40 ms per request on
/// loopback through delayed ACKs).
pub fn establish(
    options: ClientAssociationOptions<'_>,
    address: &str,
    timeouts: ScuTimeouts,
) -> Result<ClientAssociation<TcpStream>, EstablishError> {
    let mut association = options
        .connection_timeout(timeouts.connect)
        .read_timeout(timeouts.acse)
        .write_timeout(timeouts.write)
        .establish(address)
        .map_err(|e| EstablishError::Association(Box::new(e)))?;
    let stream = association.inner_stream();
    let tuned = stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(timeouts.dimse)));
    if let Err(e) = tuned {
        let _ = association.abort();
        return Err(EstablishError::Socket(e));
    }
    Ok(association)
}
