//! Answering an association request with a refusal: A-ASSOCIATE-RJ or A-ABORT, then
//! waiting (briefly) for the peer to close.

use std::io::Read;
use std::time::{Duration, Instant};

use dicom_ul::Pdu;
use dicom_ul::pdu::{AbortRQSource, AssociationRJ};

use super::stream::ScpStream;

/// Sends the A-ASSOCIATE-RJ and closes the connection once the peer has read it
/// (see [`linger_until_peer_closes`]). Errors are ignored: the peer may be gone.
pub fn reject(mut stream: ScpStream, rejection: AssociationRJ) {
    send(&mut stream, &Pdu::AssociationRJ(rejection));
    linger_until_peer_closes(&mut stream);
}

/// Sends an A-ABORT and closes the connection once the peer has read it.
pub fn abort(mut stream: ScpStream, source: AbortRQSource) {
    send(&mut stream, &Pdu::AbortRQ { source });
    linger_until_peer_closes(&mut stream);
}

fn send(stream: &mut ScpStream, pdu: &Pdu) {
    use std::io::Write;
    let mut out = Vec::with_capacity(16);
    if dicom_ul::pdu::write_pdu(&mut out, pdu).is_ok() {
        let _ = stream.write_all(&out);
        let _ = stream.flush();
    }
}

/// Closing a socket with unread input makes Linux send RST, which can destroy the
/// RJ or A-ABORT just written before the peer reads it: shut down our side (after
/// TLS close_notify), then let the peer close first, waiting at most a second and
/// reading at most 1 MiB.
pub fn linger_until_peer_closes(stream: &mut ScpStream) {
    stream.close_write();
    let mut tcp = stream.tcp();
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while Instant::now() < deadline && total < (1 << 20) {
        match tcp.read(&mut sink) {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
}

/// Why an SCP refuses an association it could read: each stands for the
/// A-ASSOCIATE-RJ ([`Refusal::rejection`]) PS3.8 gives that reason. (A request that
/// is not a DICOM association request at all gets
/// [`standard_refusal`](super::standard_refusal)'s.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The called AE title is not one this SCP answers to: permanent, service user.
    CalledAeTitleNotRecognized,
    /// The calling AE title is not one this SCP accepts: permanent, service user.
    CallingAeTitleNotRecognized,
    /// Busy for now: transient, service provider (presentation), temporary congestion.
    TemporaryCongestion,
    /// Over the SCP's limit of simultaneous associations: transient, service provider
    /// (presentation), local limit exceeded.
    LocalLimitExceeded,
    /// A user identity the SCP does not accept: permanent, service provider (ACSE),
    /// no reason given (how the standard's user identity negotiation and pynetdicom
    /// describe an authorisation failure).
    NotAuthorized,
}

impl Refusal {
    /// The A-ASSOCIATE-RJ that says so.
    pub fn rejection(self) -> AssociationRJ {
        use dicom_ul::pdu::{
            AssociationRJResult::{Permanent, Transient},
            AssociationRJServiceProviderASCEReason as AsceReason,
            AssociationRJServiceProviderPresentationReason as PresentationReason,
            AssociationRJServiceUserReason as UserReason,
            AssociationRJSource::{ServiceProviderASCE, ServiceProviderPresentation, ServiceUser},
        };
        let (result, source) = match self {
            Refusal::CalledAeTitleNotRecognized => (
                Permanent,
                ServiceUser(UserReason::CalledAETitleNotRecognized),
            ),
            Refusal::CallingAeTitleNotRecognized => (
                Permanent,
                ServiceUser(UserReason::CallingAETitleNotRecognized),
            ),
            Refusal::TemporaryCongestion => (
                Transient,
                ServiceProviderPresentation(PresentationReason::TemporaryCongestion),
            ),
            Refusal::LocalLimitExceeded => (
                Transient,
                ServiceProviderPresentation(PresentationReason::LocalLimitExceeded),
            ),
            Refusal::NotAuthorized => (Permanent, ServiceProviderASCE(AsceReason::NoReasonGiven)),
        };
        AssociationRJ { result, source }
    }
}
