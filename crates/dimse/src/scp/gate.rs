//! What each of our listening SCPs (the sink, the Storage Commitment report
//! listener) asks of a new connection before its own service begins: the socket's
//! timeouts, a TLS handshake and an A-ASSOCIATE-RQ within the ARTIM timeout, the
//! standard checks of the request, and a called AE title that is the listener's.
//! The simulator admits by its routing rules and keeps its own.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_ul::pdu::AssociationRQ;
use rustls::ServerConfig;

use super::{
    Refusal, ScpError, ScpStream, abort, read_associate_request, reject, standard_refusal,
};
use crate::ae_title::AeTitle;
use crate::tls::TlsServerOptions;

/// Where and how an SCP of ours listens.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// The address to listen on (port 0: one the system picks).
    pub bind: SocketAddr,
    /// The AE title associations must call; others are refused (called AE title not
    /// recognized).
    pub ae_title: AeTitle,
    /// How long a new connection has for its TLS handshake and A-ASSOCIATE-RQ.
    pub artim_timeout: Duration,
    /// How long an association may stay silent before it is aborted.
    pub read_timeout: Duration,
    /// Longest a single write to the peer may block.
    pub write_timeout: Duration,
    /// The largest PDU received.
    pub max_pdu_length: u32,
    /// DICOM TLS, or plain TCP.
    pub tls: Option<TlsServerOptions>,
}

impl ListenOptions {
    /// 127.0.0.1, a port the system picks, `ae_title`, 30 s to negotiate, 60 s for
    /// each read and write, [`DEFAULT_MAX_PDU_LENGTH`](crate::DEFAULT_MAX_PDU_LENGTH),
    /// plain TCP.
    pub fn new(ae_title: AeTitle) -> Self {
        ListenOptions {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            ae_title,
            artim_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            max_pdu_length: crate::DEFAULT_MAX_PDU_LENGTH,
            tls: None,
        }
    }
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// An option that cannot work.
    #[error("{name} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        expected: &'static str,
    },
    /// The address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        #[source]
        source: io::Error,
    },
}

/// Admits new connections to a listening SCP, as its [`ListenOptions`] say.
#[derive(Debug)]
pub struct Gate {
    options: ListenOptions,
    tls: Option<Arc<ServerConfig>>,
}

/// A connection the [`Gate`] let through: its stream and the request to answer.
#[derive(Debug)]
pub struct Admitted {
    /// The connection, TLS already negotiated when the listener speaks TLS.
    pub stream: ScpStream,
    /// The A-ASSOCIATE-RQ, checked and calling this listener's AE title.
    pub request: AssociationRQ,
}

/// Why the [`Gate`] turned a connection away; the peer has been answered (A-ASSOCIATE-RJ
/// or A-ABORT) where an answer is due.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotAdmitted {
    /// The socket's timeouts could not be set.
    #[error("configuring the socket: {0}")]
    Socket(#[source] io::Error),
    /// The TLS handshake failed or did not end within the ARTIM timeout.
    #[error("{0}")]
    Tls(#[source] ScpError),
    /// No readable A-ASSOCIATE-RQ within the ARTIM timeout.
    #[error("{0}")]
    Unreadable(#[source] ScpError),
    /// The request fails a check every SCP makes (application context, protocol
    /// version, no presentation context): rejected.
    #[error("the A-ASSOCIATE-RQ was rejected")]
    Rejected,
    /// The request calls another AE title: rejected (called AE title not recognized).
    #[error("called AE title {0:?} is not this listener's")]
    CalledAeTitle(String),
}

impl Gate {
    /// Checks the options, loads the TLS certificate and key, and binds.
    ///
    /// # Errors
    /// [`ListenError::InvalidOption`] for a zero timeout or unreadable TLS files,
    /// [`ListenError::Bind`] when the address cannot be listened on.
    pub fn open(options: ListenOptions) -> Result<(Gate, TcpListener), ListenError> {
        for (name, value) in [
            ("artim_timeout", options.artim_timeout),
            ("read_timeout", options.read_timeout),
            ("write_timeout", options.write_timeout),
        ] {
            if value.is_zero() {
                return Err(ListenError::InvalidOption {
                    name,
                    value: "0 s".into(),
                    expected: "a duration above zero (zero would wait forever)",
                });
            }
        }
        let tls = match &options.tls {
            Some(tls) => Some(
                tls.server_config()
                    .map_err(|e| ListenError::InvalidOption {
                        name: "tls",
                        value: crate::ErrorChain(&e).to_string(),
                        expected: "a readable certificate chain and private key",
                    })?,
            ),
            None => None,
        };
        let addr = options.bind;
        let listener =
            TcpListener::bind(addr).map_err(|source| ListenError::Bind { addr, source })?;
        Ok((Gate { options, tls }, listener))
    }

    /// The options the gate admits by.
    pub fn options(&self) -> &ListenOptions {
        &self.options
    }

    /// Sets up a new connection and reads its request: what is left to the SCP is its
    /// own checks and the answer.
    ///
    /// # Errors
    /// Why the connection was turned away ([`NotAdmitted`]).
    pub fn admit(&self, stream: TcpStream) -> Result<Admitted, NotAdmitted> {
        let options = &self.options;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(options.read_timeout))
            .and_then(|()| stream.set_write_timeout(Some(options.write_timeout)))
            .map_err(NotAdmitted::Socket)?;
        let deadline = Instant::now() + options.artim_timeout;
        let mut stream = match &self.tls {
            None => ScpStream::Plain(stream),
            Some(tls) => ScpStream::accept_tls(stream, tls.clone(), options.artim_timeout)
                .map_err(NotAdmitted::Tls)?,
        };
        let request = match read_associate_request(&mut stream, deadline) {
            Ok(request) => request,
            Err(error) => {
                if let Some(source) = error.abort_source() {
                    abort(stream, source);
                } else if matches!(error, ScpError::TlsClientOnPlainPort) {
                    // Nothing a TLS client could read: close at once.
                    let _ = stream.tcp().shutdown(Shutdown::Both);
                }
                return Err(NotAdmitted::Unreadable(error));
            }
        };
        if let Some(rejection) = standard_refusal(&request) {
            reject(stream, rejection);
            return Err(NotAdmitted::Rejected);
        }
        let called = crate::trim_value(&request.called_ae_title);
        if called != options.ae_title.as_str() {
            let called = called.to_string();
            reject(stream, Refusal::CalledAeTitleNotRecognized.rejection());
            return Err(NotAdmitted::CalledAeTitle(called));
        }
        Ok(Admitted { stream, request })
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use dicom_dictionary_std::uids;
    use dicom_ul::ClientAssociationOptions;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    fn gate() -> (Gate, TcpListener) {
        let mut options = ListenOptions::new(AeTitle::new("OUR-SCP").unwrap());
        options.artim_timeout = WAIT;
        Gate::open(options).unwrap()
    }

    /// Admits one connection from a client calling `called`; the client's result and
    /// the gate's.
    fn one_client(called: &'static str) -> (Result<(), String>, Result<Admitted, NotAdmitted>) {
        let (gate, listener) = gate();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            ClientAssociationOptions::new()
                .calling_ae_title("MODALITY")
                .called_ae_title(called)
                .with_presentation_context(
                    uids::VERIFICATION,
                    vec![uids::IMPLICIT_VR_LITTLE_ENDIAN],
                )
                .read_timeout(WAIT)
                .establish(addr)
                .map(|association| {
                    let _ = association.abort();
                })
                .map_err(|e| e.to_string())
        });
        let (stream, _) = listener.accept().unwrap();
        let admitted = gate.admit(stream);
        if let Ok(admitted) = &admitted {
            // The test answers nothing: close, so the client's wait ends.
            let _ = admitted.stream.tcp().shutdown(Shutdown::Both);
        }
        (client.join().unwrap(), admitted)
    }

    #[test]
    fn a_request_calling_the_listeners_ae_title_is_admitted_with_its_request() {
        let (_, admitted) = one_client("OUR-SCP");
        let admitted = admitted.unwrap();
        assert_eq!(
            crate::trim_value(&admitted.request.calling_ae_title),
            "MODALITY"
        );
        assert!(matches!(admitted.stream, ScpStream::Plain(_)));
    }

    #[test]
    fn a_request_calling_another_ae_title_is_rejected_and_named() {
        let (client, admitted) = one_client("SOMEONE-ELSE");
        assert!(
            matches!(&admitted, Err(NotAdmitted::CalledAeTitle(called)) if called == "SOMEONE-ELSE"),
            "{admitted:?}"
        );
        let client = client.unwrap_err();
        assert!(client.to_lowercase().contains("rejected"), "{client}");
    }

    #[test]
    fn a_zero_timeout_is_refused_naming_the_option() {
        let mut options = ListenOptions::new(AeTitle::new("OUR-SCP").unwrap());
        options.read_timeout = Duration::ZERO;
        let error = Gate::open(options).unwrap_err();
        assert!(
            matches!(
                error,
                ListenError::InvalidOption {
                    name: "read_timeout",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn an_address_in_use_is_a_bind_error_naming_it() {
        let (_gate, listener) = gate();
        let mut options = ListenOptions::new(AeTitle::new("OUR-SCP").unwrap());
        options.bind = listener.local_addr().unwrap();
        let error = Gate::open(options).unwrap_err();
        assert!(
            matches!(error, ListenError::Bind { addr, .. } if addr == listener.local_addr().unwrap()),
            "{error}"
        );
    }
}
