//! [`SenderOptions`]: where to send, as whom, and how long to wait for anything.

use std::time::Duration;

use dimse::{AeTitle, AeTitleError, PeerAddress, PeerAddressError, ScuOptions, Security, Timeouts};

use crate::SenderError;
use crate::contexts::Proposal;

/// Default calling AE title.
pub const DEFAULT_CALLING_AE_TITLE: &str = "DICOM-AUTO";
/// Default called AE title.
pub const DEFAULT_CALLED_AE_TITLE: &str = "ANY-SCP";

/// How a [`DicomSender`](crate::DicomSender) reaches its peer.
///
/// A builder: start from [`SenderOptions::new`] (text, as on a command line) or
/// [`SenderOptions::for_peer`] (typed), chain the setters, and finish with
/// [`SenderOptions::build`]. Setters that take text keep the last valid value and
/// remember the first text they could not use, which `build` reports: the chain
/// never panics and the error names the option.
///
/// ```
/// use std::time::Duration;
/// use sender::SenderOptions;
///
/// let sender = SenderOptions::new("127.0.0.1:11112")
///     .calling_ae_title("MODALITY")
///     .called_ae_title("ROUTER")
///     .dimse_timeout(Duration::from_secs(10))
///     .build()?;
/// assert_eq!(sender.options().called_ae().as_str(), "ROUTER");
/// # Ok::<(), sender::SenderError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderOptions {
    peer: PeerAddress,
    calling_ae_title: AeTitle,
    called_ae_title: AeTitle,
    timeouts: Timeouts,
    max_pdu_length: u32,
    priority: dimse::Priority,
    quick_ack: bool,
    security: Security,
    /// The first text a setter could not turn into its type.
    invalid: Option<InvalidText>,
}

/// A setter's text that is not a valid value, kept for [`SenderOptions::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum InvalidText {
    Address {
        text: String,
        source: PeerAddressError,
    },
    AeTitle {
        role: &'static str,
        text: String,
        source: AeTitleError,
    },
}

impl SenderOptions {
    /// Options for a peer at `address` (`host:port`, `[v6]:port`), with the default AE
    /// titles (`DICOM-AUTO` calling `ANY-SCP`), timeouts and maximum PDU length.
    pub fn new(address: impl AsRef<str>) -> Self {
        let text = address.as_ref();
        match text.parse::<PeerAddress>() {
            Ok(peer) => SenderOptions::for_peer(peer),
            Err(source) => SenderOptions {
                invalid: Some(InvalidText::Address {
                    text: text.to_string(),
                    source,
                }),
                ..SenderOptions::for_peer(PeerAddress::new(text, 0))
            },
        }
    }

    /// Options for `peer`, with the default AE titles, timeouts and maximum PDU length.
    pub fn for_peer(peer: PeerAddress) -> Self {
        SenderOptions {
            peer,
            calling_ae_title: AeTitle::new(DEFAULT_CALLING_AE_TITLE).expect("a valid AE title"),
            called_ae_title: AeTitle::new(DEFAULT_CALLED_AE_TITLE).expect("a valid AE title"),
            timeouts: Timeouts::DEFAULT,
            max_pdu_length: dimse::DEFAULT_MAX_PDU_LENGTH,
            priority: dimse::Priority::Medium,
            quick_ack: true,
            security: Security::default(),
            invalid: None,
        }
    }

    /// Our AE title (the calling AE title); checked by [`build`](Self::build).
    pub fn calling_ae_title(mut self, title: impl AsRef<str>) -> Self {
        if let Some(title) = self.ae_title("calling", title.as_ref()) {
            self.calling_ae_title = title;
        }
        self
    }

    /// The peer's AE title (the called AE title), which routers often route by;
    /// checked by [`build`](Self::build).
    pub fn called_ae_title(mut self, title: impl AsRef<str>) -> Self {
        if let Some(title) = self.ae_title("called", title.as_ref()) {
            self.called_ae_title = title;
        }
        self
    }

    fn ae_title(&mut self, role: &'static str, text: &str) -> Option<AeTitle> {
        match AeTitle::new(text) {
            Ok(title) => Some(title),
            Err(source) => {
                self.invalid.get_or_insert(InvalidText::AeTitle {
                    role,
                    text: text.to_string(),
                    source,
                });
                None
            }
        }
    }

    /// All timeouts at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// TCP connection timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Association negotiation and release timeout.
    pub fn acse_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.acse = timeout;
        self
    }

    /// DIMSE response timeout.
    pub fn dimse_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.dimse = timeout;
        self
    }

    /// Socket write timeout.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.write = timeout;
        self
    }

    /// The largest PDU we accept, advertised in the A-ASSOCIATE-RQ (what we *send* is
    /// bounded by the peer's maximum, not this).
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.max_pdu_length = length;
        self
    }

    /// Priority of C-STORE requests.
    pub fn priority(mut self, priority: dimse::Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Acknowledge at once (Linux `TCP_QUICKACK`, default on), so that a peer with
    /// Nagle on adds no delayed-ACK wait to each response; off imitates a plain
    /// modality. See [`dimse::SocketTuning`].
    pub fn quick_ack(mut self, on: bool) -> Self {
        self.quick_ack = on;
        self
    }

    /// Whether quick acknowledgements are on.
    pub fn has_quick_ack(&self) -> bool {
        self.quick_ack
    }

    /// TLS and user identity of every association (default: plaintext, no identity).
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// The security in force.
    pub fn current_security(&self) -> &Security {
        &self.security
    }

    /// The peer's address.
    pub fn address(&self) -> &PeerAddress {
        &self.peer
    }

    /// Our AE title.
    pub fn calling_ae(&self) -> &AeTitle {
        &self.calling_ae_title
    }

    /// The peer's AE title.
    pub fn called_ae(&self) -> &AeTitle {
        &self.called_ae_title
    }

    /// The timeouts in force.
    pub fn current_timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The largest PDU we accept.
    pub fn current_max_pdu_length(&self) -> u32 {
        self.max_pdu_length
    }

    /// The priority of C-STORE requests.
    pub fn current_priority(&self) -> dimse::Priority {
        self.priority
    }

    /// The association options for `proposal`: our peer, titles, timeouts and
    /// maximum PDU length, each (SOP class, transfer syntax) pair in a context of its
    /// own (so the peer can accept the syntaxes it takes one by one).
    pub fn scu_options(&self, proposal: &Proposal) -> ScuOptions {
        proposal.contexts().iter().fold(
            ScuOptions::new(
                self.peer.clone(),
                self.calling_ae_title.clone(),
                self.called_ae_title.clone(),
            )
            .timeouts(self.timeouts)
            .max_pdu_length(self.max_pdu_length)
            .quick_ack(self.quick_ack)
            .security(self.security.clone()),
            |options, (abstract_syntax, transfer_syntax)| {
                options.propose(abstract_syntax.as_str(), [transfer_syntax.as_str()])
            },
        )
    }

    /// Checks the options and makes the sender.
    ///
    /// # Errors
    /// [`SenderError::InvalidAddress`] for an address that is not `host:port`,
    /// [`SenderError::InvalidAeTitle`] for an AE title that breaks PS3.5's rules
    /// (see [`dimse::AeTitle`]); [`SenderError::InvalidOption`] for a maximum PDU
    /// length dicom-ul cannot use or a zero timeout.
    pub fn build(self) -> Result<crate::DicomSender, SenderError> {
        crate::DicomSender::new(self)
    }

    pub(crate) fn validate(&self) -> Result<(), SenderError> {
        match &self.invalid {
            Some(InvalidText::Address { text, source }) => {
                return Err(SenderError::InvalidAddress {
                    address: text.clone(),
                    source: source.clone(),
                });
            }
            Some(InvalidText::AeTitle { role, text, source }) => {
                return Err(SenderError::InvalidAeTitle {
                    role,
                    title: text.clone(),
                    source: source.clone(),
                });
            }
            None => {}
        }
        // The association's own checks (PDU range, zero timeouts), before any connect.
        self.scu_options(&Proposal::verification())
            .validate()
            .map_err(|e| SenderError::from_associate(e, self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_association_defaults() {
        let options = SenderOptions::new("127.0.0.1:104");
        assert_eq!(options.current_timeouts(), Timeouts::DEFAULT);
        assert_eq!(options.current_timeouts().dimse, Duration::from_secs(60));
        assert_eq!(
            options.current_max_pdu_length(),
            dimse::DEFAULT_MAX_PDU_LENGTH
        );
        assert_eq!(options.calling_ae().as_str(), DEFAULT_CALLING_AE_TITLE);
        assert_eq!(options.called_ae().as_str(), DEFAULT_CALLED_AE_TITLE);
    }

    #[test]
    fn an_overlong_called_ae_title_is_refused_with_its_value() {
        let err = SenderOptions::new("127.0.0.1:104")
            .called_ae_title("A_TITLE_LONGER_THAN_16")
            .build()
            .unwrap_err();
        match err {
            SenderError::InvalidAeTitle { role, title, .. } => {
                assert_eq!(role, "called");
                assert_eq!(title, "A_TITLE_LONGER_THAN_16");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_blank_calling_ae_title_is_refused() {
        let err = SenderOptions::new("127.0.0.1:104")
            .calling_ae_title("   ")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("calling AE title"), "{err}");
    }

    #[test]
    fn an_address_without_a_port_is_refused_with_its_text() {
        let err = SenderOptions::new("router.example").build().unwrap_err();
        assert!(
            matches!(&err, SenderError::InvalidAddress { address, .. } if address == "router.example"),
            "{err}"
        );
    }

    #[test]
    fn a_max_pdu_below_the_standard_minimum_is_refused() {
        let err = SenderOptions::new("127.0.0.1:104")
            .max_pdu_length(512)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_pdu_length"), "{err}");
    }

    #[test]
    fn a_zero_timeout_is_refused_before_connecting() {
        let err = SenderOptions::new("127.0.0.1:104")
            .dimse_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("dimse"), "{err}");
    }

    #[test]
    fn every_pair_of_the_proposal_gets_a_context_of_its_own() {
        let proposal =
            Proposal::for_instances([("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.4.50")])
                .unwrap();
        let scu = SenderOptions::new("127.0.0.1:104").scu_options(&proposal);
        assert_eq!(scu.proposed_contexts().len(), proposal.contexts().len());
        assert!(scu.proposed_contexts().iter().all(|(_, ts)| ts.len() == 1));
    }
}
