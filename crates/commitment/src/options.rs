//! How to commit: whom to ask, how long to wait for the report, and where it may
//! come.

use std::net::SocketAddr;
use std::time::Duration;

use dicom_dictionary_std::uids;
use dimse::scp::ListenOptions;
use dimse::tls::TlsServerOptions;
use dimse::{AeTitle, ScuOptions};

use crate::CommitmentError;

/// The AE title the report listener answers to by default.
pub const DEFAULT_LISTENER_AE_TITLE: &str = "DICOM_AUTO_SC";

/// The transfer syntaxes proposed and accepted for Storage Commitment, in order
/// of preference.
pub const COMMITMENT_TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
];

/// How a commitment is run.
///
/// A builder: [`CommitmentOptions::new`] with the association's options (peer, AE
/// titles, timeouts, TLS, identity: no presentation context needed, the
/// Storage Commitment Push Model context is proposed here), then the setters.
#[derive(Clone, Debug)]
pub struct CommitmentOptions {
    pub(crate) scu: ScuOptions,
    pub(crate) report_timeout: Duration,
    pub(crate) keep_association_open: bool,
    pub(crate) listener: Option<ListenerOptions>,
}

impl CommitmentOptions {
    /// Waits 60 s for the report, on the N-ACTION's association (kept open), with
    /// no listener: add one with [`listen`](Self::listen) for SCPs that report on
    /// an association of their own, as most archives do.
    pub fn new(scu: ScuOptions) -> Self {
        CommitmentOptions {
            scu,
            report_timeout: Duration::from_secs(60),
            keep_association_open: true,
            listener: None,
        }
    }

    /// How long after the N-ACTION-RSP the N-EVENT-REPORT may take before the
    /// outcome says `timed_out`.
    pub fn report_timeout(mut self, timeout: Duration) -> Self {
        self.report_timeout = timeout;
        self
    }

    /// Whether to keep the N-ACTION's association open and take the report on it
    /// (`true`, the default), or release it once the N-ACTION-RSP is in, so that
    /// the SCP must report on a new association to the listener.
    pub fn keep_association_open(mut self, keep: bool) -> Self {
        self.keep_association_open = keep;
        self
    }

    /// Listen for reports on new associations: [`Committer::new`](crate::Committer::new)
    /// starts the listener, which then serves every commitment of the committer.
    pub fn listen(mut self, listener: ListenerOptions) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The association options underneath.
    pub fn scu(&self) -> &ScuOptions {
        &self.scu
    }

    /// The report timeout.
    pub fn current_report_timeout(&self) -> Duration {
        self.report_timeout
    }

    pub(crate) fn validate(&self, has_listener: bool) -> Result<(), CommitmentError> {
        if self.report_timeout.is_zero() {
            return Err(CommitmentError::InvalidOption {
                name: "report_timeout",
                value: "0 s".into(),
                expected: "a timeout above zero".into(),
            });
        }
        if !self.keep_association_open && !has_listener {
            return Err(CommitmentError::InvalidOption {
                name: "keep_association_open",
                value: "false".into(),
                expected:
                    "true, or a listener (CommitmentOptions::listen) for the report to come to"
                        .into(),
            });
        }
        Ok(())
    }

    /// The association options with the Storage Commitment Push Model context.
    pub(crate) fn association(&self) -> ScuOptions {
        self.scu.clone().propose(
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            COMMITMENT_TRANSFER_SYNTAXES.iter().map(|s| s.to_string()),
        )
    }
}

/// How the report listener listens: the address, our AE title (the one the SCP
/// knows us by and calls), the waits, and optionally TLS.
#[derive(Clone, Debug)]
pub struct ListenerOptions {
    pub(crate) listen: ListenOptions,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions::new()
    }
}

impl ListenerOptions {
    /// 127.0.0.1, a port the system picks, AE title [`DEFAULT_LISTENER_AE_TITLE`],
    /// 30 s to negotiate, 60 s for each read and write, plain TCP.
    pub fn new() -> Self {
        ListenerOptions {
            listen: ListenOptions::new(
                AeTitle::new(DEFAULT_LISTENER_AE_TITLE).expect("a valid AE title"),
            ),
        }
    }

    /// The address and port to listen on (port 0: one the system picks). The SCP
    /// must be configured with it, under our AE title.
    pub fn bind(mut self, address: SocketAddr) -> Self {
        self.listen.bind = address;
        self
    }

    /// The AE title associations must call; others are refused (called AE title
    /// not recognized).
    pub fn ae_title(mut self, title: AeTitle) -> Self {
        self.listen.ae_title = title;
        self
    }

    /// How long a new connection has for its TLS handshake and A-ASSOCIATE-RQ.
    pub fn artim_timeout(mut self, timeout: Duration) -> Self {
        self.listen.artim_timeout = timeout;
        self
    }

    /// How long an association may stay silent before the listener aborts it.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.listen.read_timeout = timeout;
        self
    }

    /// Longest a single write may block.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.listen.write_timeout = timeout;
        self
    }

    /// The largest PDU received.
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.listen.max_pdu_length = length;
        self
    }

    /// Every listening option at once: address, AE title, waits, PDU size, TLS.
    pub fn listen(mut self, listen: ListenOptions) -> Self {
        self.listen = listen;
        self
    }

    /// Listen with DICOM TLS.
    pub fn tls(mut self, tls: TlsServerOptions) -> Self {
        self.listen.tls = Some(tls);
        self
    }
}
