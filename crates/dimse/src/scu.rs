//! The one SCU association of the workspace: [`ScuOptions`] says whom to call and
//! what to propose, [`ScuAssociation`] carries requests and responses.
//!
//! Every client of dicom-auto (the C-STORE sender, the C-FIND client, the simulator's
//! forwarding) opens its associations here, so they share one set of rules:
//!
//! - every wait is bounded ([`Timeouts`]): TCP connect, negotiation, each DIMSE
//!   message, each socket write;
//! - TCP_NODELAY is on (dicom-ul leaves Nagle on, which costs ~40 ms per request on
//!   loopback through delayed ACKs);
//! - message IDs run 1, 2, ... 65535, 1 (never 0, which some SCPs refuse);
//! - a response must be the expected command and name the request it answers
//!   ([`ScuAssociation::expect_response`]); anything else is a protocol error;
//! - why an association could not be opened is classified once ([`AssociateError`]).
//!
//! Secure transport and user identity are options of [`ScuOptions`]: the one place
//! where an association's transport is chosen.
//!
//! ```no_run
//! use dimse::{AeTitle, PeerAddress, ScuOptions, Timeouts};
//!
//! let options = ScuOptions::new(
//!     PeerAddress::new("127.0.0.1", 11112),
//!     AeTitle::new("DICOM-AUTO")?,
//!     AeTitle::new("ANY-SCP")?,
//! )
//! .timeouts(Timeouts::all(std::time::Duration::from_secs(5)))
//! .propose_verification();
//! let mut association = options.establish()?;
//! let status = association.echo()?;
//! association.release()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::association::Error as UlError;
use dicom_ul::association::client::TlsStream;
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderASCEReason,
    AssociationRJServiceUserReason, AssociationRJSource, PDataValueType,
    PresentationContextNegotiated, UserVariableItem,
};
use dicom_ul::{ClientAssociation, ClientAssociationOptions, Pdu};

use crate::command::{Command, CommandField};
use crate::identity::{IdentityKind, IdentitySummary, UserIdentity};
use crate::message::{
    DimseError, Incoming, Message, MessageReader, Patch, PduChannel, max_pdv_payload,
    send_data_patched, send_message, write_fragments,
};
use crate::socket::SocketTuning;
use crate::status::Status;
use crate::tls::{TlsClient, TlsFailure, TlsSession};
use crate::{AeTitle, PeerAddress, Timeouts};

/// The default largest PDU we accept (`DICOM_MAX_PDU`'s default).
pub const DEFAULT_MAX_PDU_LENGTH: u32 = 65_536;

/// Whom an association calls, as whom, what it proposes and how long it waits.
///
/// A builder: [`ScuOptions::new`], then the setters, then [`ScuOptions::establish`]
/// (as many times as associations are wanted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScuOptions {
    peer: PeerAddress,
    calling_ae_title: AeTitle,
    called_ae_title: AeTitle,
    timeouts: Timeouts,
    max_pdu_length: u32,
    contexts: Vec<(String, Vec<String>)>,
    /// SOP classes for which we offer the SCP role as well as the SCU one.
    scp_roles: Vec<String>,
    socket: SocketTuning,
    security: Security,
}

/// How associations are secured: over TLS or not, and with which user identity, if
/// any. The default is neither: plaintext DICOM, no identity.
///
/// One value for every SCU role (the sender, the C-FIND client, the simulator's
/// forwarding), so a site's security settings mean the same thing everywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// DICOM over TLS with this configuration; `None`: plaintext.
    pub tls: Option<TlsClient>,
    /// The user identity sent in the A-ASSOCIATE-RQ.
    pub identity: Option<UserIdentity>,
}

impl Security {
    /// Plaintext, no identity.
    pub fn plain() -> Self {
        Security::default()
    }

    /// Whether associations run over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }
}

impl ScuOptions {
    /// Options for calling `called_ae_title` at `peer` as `calling_ae_title`, with the
    /// default timeouts and maximum PDU length and no presentation context yet.
    pub fn new(peer: PeerAddress, calling_ae_title: AeTitle, called_ae_title: AeTitle) -> Self {
        ScuOptions {
            peer,
            calling_ae_title,
            called_ae_title,
            timeouts: Timeouts::DEFAULT,
            max_pdu_length: DEFAULT_MAX_PDU_LENGTH,
            contexts: Vec::new(),
            scp_roles: Vec::new(),
            socket: SocketTuning::default(),
            security: Security::default(),
        }
    }

    /// TLS and user identity at once (see [`Security`]).
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// The security in force.
    pub fn current_security(&self) -> &Security {
        &self.security
    }

    /// Speaks DICOM over TLS (PS3.15 Annex B) with this client configuration: the
    /// peer's certificate is verified (unless the configuration says otherwise) for
    /// the configured server name, or else for the host connected to.
    pub fn tls(mut self, tls: TlsClient) -> Self {
        self.security.tls = Some(tls);
        self
    }

    /// The TLS configuration, when associations use TLS.
    pub fn current_tls(&self) -> Option<&TlsClient> {
        self.security.tls.as_ref()
    }

    /// Sends this user identity in the A-ASSOCIATE-RQ (PS3.7 D.3.3.7).
    ///
    /// dicom-ul 0.10.1 always sends "positive response requested = no", so a peer
    /// that accepts the identity confirms it only by accepting the association.
    pub fn identity(mut self, identity: UserIdentity) -> Self {
        self.security.identity = Some(identity);
        self
    }

    /// The user identity sent, if any.
    pub fn current_identity(&self) -> Option<&UserIdentity> {
        self.security.identity.as_ref()
    }

    /// Acknowledge at once (Linux `TCP_QUICKACK`, re-armed around every read; default
    /// on): a peer with Nagle on then adds no delayed-ACK wait to each response. Off
    /// imitates a plain modality. See [`SocketTuning`].
    pub fn quick_ack(mut self, on: bool) -> Self {
        self.socket = SocketTuning::quick_ack(on);
        self
    }

    /// Whether quick acknowledgements are asked for.
    pub fn has_quick_ack(&self) -> bool {
        self.socket.has_quick_ack()
    }

    /// Every wait of the association.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The largest PDU we accept, advertised in the A-ASSOCIATE-RQ (what we *send* is
    /// cut to the peer's maximum, not this).
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.max_pdu_length = length;
        self
    }

    /// Proposes a presentation context: an abstract syntax (SOP class) with the
    /// transfer syntaxes we can use for it, in order of preference.
    pub fn propose<T: Into<String>>(
        mut self,
        abstract_syntax: impl Into<String>,
        transfer_syntaxes: impl IntoIterator<Item = T>,
    ) -> Self {
        self.contexts.push((
            abstract_syntax.into(),
            transfer_syntaxes.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Proposes Verification (C-ECHO) in Implicit VR Little Endian.
    pub fn propose_verification(self) -> Self {
        self.propose(uids::VERIFICATION, [uids::IMPLICIT_VR_LITTLE_ENDIAN])
    }

    /// Offers the SCP role (as well as the SCU one) for `sop_class_uid`, in an SCP/SCU
    /// Role Selection item: what a C-GET SCU does for every storage SOP class it
    /// wants the C-STORE sub-operations of. The peer's answer is
    /// [`ScuAssociation::peer_accepted_scp_role`].
    pub fn offer_scp_role(mut self, sop_class_uid: impl Into<String>) -> Self {
        let uid = sop_class_uid.into();
        if !self.scp_roles.contains(&uid) {
            self.scp_roles.push(uid);
        }
        self
    }

    /// The SOP classes we offer the SCP role for.
    pub fn offered_scp_roles(&self) -> &[String] {
        &self.scp_roles
    }

    /// The peer's address.
    pub fn peer_address(&self) -> &PeerAddress {
        &self.peer
    }

    /// Our AE title.
    pub fn calling_ae_title(&self) -> &AeTitle {
        &self.calling_ae_title
    }

    /// The peer's AE title.
    pub fn called_ae_title(&self) -> &AeTitle {
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

    /// The proposed presentation contexts: abstract syntax and transfer syntaxes.
    pub fn proposed_contexts(&self) -> &[(String, Vec<String>)] {
        &self.contexts
    }

    /// The peer as errors name it: `CALLED@host:port`.
    pub fn peer(&self) -> String {
        format!("{}@{}", self.called_ae_title, self.peer)
    }

    /// Checks what dicom-ul and the operating system would otherwise take badly: a
    /// maximum PDU length out of range, a zero timeout (which blocks forever).
    ///
    /// # Errors
    /// [`AssociateError::InvalidOption`] naming the option, the value and what is
    /// expected.
    pub fn validate(&self) -> Result<(), AssociateError> {
        let min = dicom_ul::pdu::MINIMUM_PDU_SIZE;
        let max = dicom_ul::pdu::MAXIMUM_PDU_SIZE;
        if !(min..=max).contains(&self.max_pdu_length) {
            return Err(AssociateError::InvalidOption {
                name: "max_pdu_length",
                value: self.max_pdu_length.to_string(),
                expected: format!("from {min} to {max} bytes"),
            });
        }
        if let Some(name) = self.timeouts.first_zero() {
            return Err(AssociateError::InvalidOption {
                name,
                value: "0 s".into(),
                expected: "a timeout above zero (zero would wait forever)".into(),
            });
        }
        Ok(())
    }

    /// Opens an association: TCP connect within the connect timeout, negotiation
    /// within the ACSE timeout, then TCP_NODELAY and the DIMSE timeout on the socket.
    ///
    /// # Errors
    /// [`AssociateError`], which says whether the peer was unreachable, rejected us
    /// (and why), accepted no context, or broke off the negotiation.
    pub fn establish(&self) -> Result<ScuAssociation, AssociateError> {
        self.validate()?;
        let started = Instant::now();
        let mut ul = ClientAssociationOptions::new()
            .calling_ae_title(self.calling_ae_title.as_str())
            .called_ae_title(self.called_ae_title.as_str())
            .max_pdu_length(self.max_pdu_length)
            .connection_timeout(self.timeouts.connect)
            .read_timeout(self.timeouts.acse)
            .write_timeout(self.timeouts.write);
        for (abstract_syntax, syntaxes) in &self.contexts {
            ul = ul.with_presentation_context(
                Cow::Borrowed(abstract_syntax.as_str()),
                syntaxes.iter().map(|s| Cow::Borrowed(s.as_str())).collect(),
            );
        }
        for sop_class in &self.scp_roles {
            ul = ul.with_role_selection(Cow::Borrowed(sop_class.as_str()), true, true);
        }
        if let Some(identity) = &self.security.identity {
            ul = with_identity(ul, identity);
        }
        let address = self.peer.to_string();
        let mut link = match &self.security.tls {
            None => Link::Plain(ul.establish_with(&address).map_err(|e| self.classify(e))?),
            Some(tls) => {
                let ul = ul
                    .server_name(tls.server_name_for(self.peer.host()))
                    .tls_config(tls.config());
                Link::Tls(Box::new(
                    ul.establish_with_tls(&address)
                        .map_err(|e| self.classify(e))?,
                ))
            }
        };
        let tcp = link.tcp();
        let tuned = self
            .socket
            .apply(tcp)
            .and_then(|()| tcp.set_read_timeout(Some(self.timeouts.dimse)));
        if let Err(source) = tuned {
            link.abort();
            return Err(AssociateError::Negotiation {
                peer: self.peer(),
                stage: "configuring the socket",
                source: DimseError::Io(source),
            });
        }
        Ok(ScuAssociation {
            tls_session: link.tls_session(),
            link,
            reader: MessageReader::new(),
            peer: self.peer(),
            timeouts: self.timeouts,
            read_timeout: self.timeouts.dimse,
            next_message_id: 1,
            established_in: started.elapsed(),
            socket: self.socket,
            identity: self.security.identity.as_ref().map(UserIdentity::summary),
        })
    }

    fn classify(&self, error: UlError) -> AssociateError {
        let peer = self.peer();
        if self.security.tls.is_some()
            && let Some(failure) = tls_failure(&error)
        {
            return AssociateError::Tls { peer, failure };
        }
        match error {
            UlError::Connect { source, .. } | UlError::ToAddress { source, .. } => {
                AssociateError::Connect { peer, source }
            }
            UlError::Rejected { association_rj, .. } => {
                let mut description = crate::describe_rejection(&association_rj);
                if let Some(identity) = &self.security.identity
                    && refuses_identity(&association_rj)
                {
                    description.push_str(&format!(
                        "; the peer may have refused the user identity offered, {identity}: check the user name and its passcode or token"
                    ));
                }
                AssociateError::Rejected {
                    peer,
                    calling: self.calling_ae_title.clone(),
                    description,
                    rejection: association_rj,
                }
            }
            UlError::NoAcceptedPresentationContexts { .. } => AssociateError::NoAcceptedContexts {
                peer,
                proposed: self.contexts.iter().map(|(a, _)| a.clone()).collect(),
            },
            UlError::UnknownPdu { pdu, .. }
                if self.security.tls.is_none() && is_tls_record(&pdu) =>
            {
                AssociateError::PeerSpeaksTls { peer }
            }
            UlError::TlsNotSupported if self.security.tls.is_none() => {
                AssociateError::PeerSpeaksTls { peer }
            }
            UlError::InvalidServerName { .. } => AssociateError::InvalidOption {
                name: "tls server name",
                value: self
                    .security
                    .tls
                    .as_ref()
                    .map(|t| t.server_name_for(self.peer.host()).to_string())
                    .unwrap_or_default(),
                expected: "a DNS name or an IP address".into(),
            },
            other => AssociateError::Negotiation {
                peer,
                stage: "negotiating",
                source: DimseError::from_association(other),
            },
        }
    }
}

/// dicom-ul's user identity setters, one per kind.
fn with_identity<'a>(
    ul: ClientAssociationOptions<'a>,
    identity: &'a UserIdentity,
) -> ClientAssociationOptions<'a> {
    let primary = identity.primary_field();
    match identity.kind() {
        IdentityKind::Username => ul.username(primary),
        IdentityKind::UsernamePasscode => {
            ul.username_password(primary, identity.passcode().unwrap_or_default())
        }
        IdentityKind::KerberosTicket => ul.kerberos_service_ticket(primary),
        IdentityKind::SamlAssertion => ul.saml_assertion(primary),
        IdentityKind::Jwt => ul.jwt(primary),
    }
}

/// Whether a rejection may be the refusal of our user identity: permanent with no
/// reason given, from the UL service provider's ACSE function (an authorisation
/// failure, as pynetdicom and the standard describe it) or from the service user
/// (as some acceptors send it).
fn refuses_identity(rejection: &AssociationRJ) -> bool {
    rejection.result == AssociationRJResult::Permanent
        && matches!(
            rejection.source,
            AssociationRJSource::ServiceProviderASCE(
                AssociationRJServiceProviderASCEReason::NoReasonGiven
            ) | AssociationRJSource::ServiceUser(AssociationRJServiceUserReason::NoReasonGiven)
        )
}

/// Whether an unknown PDU is the start of a TLS record (alert 0x15, handshake
/// 0x16): the peer answered a plaintext A-ASSOCIATE-RQ in TLS.
fn is_tls_record(pdu: &Pdu) -> bool {
    matches!(
        pdu,
        Pdu::Unknown {
            pdu_type: 0x15 | 0x16,
            ..
        }
    )
}

/// The TLS failure inside a dicom-ul error, if the error came from TLS: a failed
/// handshake, or (TLS 1.3, where the server judges the client's certificate after
/// the client finished) a TLS alert on the first read.
fn tls_failure(error: &UlError) -> Option<TlsFailure> {
    match error {
        UlError::TlsConnection { source, .. } => return Some(TlsFailure::from_rustls(source)),
        UlError::TlsHandshake { source, .. } => return Some(TlsFailure::classify(source)),
        _ => {}
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(TlsFailure::from_rustls(tls));
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return Some(TlsFailure::classify(io));
        }
        cause = e.source();
    }
    None
}

/// Why an association could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssociateError {
    /// The TCP connection failed: nothing listens, the host is unknown or
    /// unreachable, or the connect timeout ran out.
    #[error(
        "cannot connect to {peer}: {source}; check the host and port, and that the peer is running"
    )]
    Connect {
        /// `CALLED@host:port`.
        peer: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The peer rejected the association (A-ASSOCIATE-RJ).
    #[error("{peer} rejected the association from {calling}: {description}")]
    Rejected {
        /// `CALLED@host:port`.
        peer: String,
        /// Our AE title, which the peer may not know.
        calling: AeTitle,
        /// The rejection in words.
        description: String,
        /// The rejection as received.
        rejection: AssociationRJ,
    },
    /// The peer accepted none of the proposed presentation contexts.
    #[error("{peer} accepted none of the proposed presentation contexts ({})", proposed.join(", "))]
    NoAcceptedContexts {
        /// `CALLED@host:port`.
        peer: String,
        /// The abstract syntaxes proposed.
        proposed: Vec<String>,
    },
    /// The negotiation broke off (timeout, abort, malformed answer) or the socket
    /// could not be configured afterwards.
    #[error("association with {peer} failed while {stage}")]
    Negotiation {
        /// `CALLED@host:port`.
        peer: String,
        /// What was going on.
        stage: &'static str,
        /// What failed.
        #[source]
        source: DimseError,
    },
    /// The TLS handshake failed, or the peer ended TLS right after it (a refused
    /// client certificate).
    #[error("TLS with {peer} failed: {failure}")]
    Tls {
        /// `CALLED@host:port`.
        peer: String,
        /// What went wrong, and what to fix.
        failure: TlsFailure,
    },
    /// We spoke plaintext DICOM and the peer answered in TLS.
    #[error(
        "{peer} answered in TLS: the port expects DICOM over TLS; turn TLS on for this peer or use its plaintext port"
    )]
    PeerSpeaksTls {
        /// `CALLED@host:port`.
        peer: String,
    },
    /// An option dicom-ul or the operating system cannot use.
    #[error("invalid association option {name} = {value}: expected {expected}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is expected.
        expected: String,
    },
}

impl AssociateError {
    /// Whether a wait ran out (connect or negotiation): the peer may be alive but slow.
    pub fn is_timeout(&self) -> bool {
        match self {
            AssociateError::Connect { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            AssociateError::Negotiation { source, .. } => source.is_timeout(),
            AssociateError::Tls { failure, .. } => *failure == TlsFailure::TimedOut,
            _ => false,
        }
    }

    /// Whether the peer said the refusal is temporary (a transient rejection, such as
    /// too many associations): trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AssociateError::Rejected { rejection, .. } if rejection.result == AssociationRJResult::Transient)
    }

    /// The peer, `CALLED@host:port` (empty for an invalid option).
    pub fn peer(&self) -> &str {
        match self {
            AssociateError::Connect { peer, .. }
            | AssociateError::Rejected { peer, .. }
            | AssociateError::NoAcceptedContexts { peer, .. }
            | AssociateError::Negotiation { peer, .. }
            | AssociateError::Tls { peer, .. }
            | AssociateError::PeerSpeaksTls { peer } => peer,
            AssociateError::InvalidOption { .. } => "",
        }
    }
}

/// A response as [`ScuAssociation::expect_response`] returns it: the expected
/// command, answering the right request, with its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The response's status.
    pub status: Status,
    /// The whole command set (error comment, counts, affected UIDs...).
    pub command: Command,
    /// The data set or identifier that followed, still encoded.
    pub data: Option<Vec<u8>>,
    /// The presentation context it came on.
    pub presentation_context_id: u8,
}

/// An established SCU association: requests go out one at a time, each response is
/// checked against its request.
///
/// Made by [`ScuOptions::establish`]. A method that fails with a [`DimseError`]
/// leaves the association in an unknown state: the caller should [`abort`](Self::abort)
/// it (dropping it closes the socket without a word to the peer).
#[derive(Debug)]
pub struct ScuAssociation {
    link: Link,
    tls_session: Option<TlsSession>,
    identity: Option<IdentitySummary>,
    reader: MessageReader,
    peer: String,
    timeouts: Timeouts,
    read_timeout: Duration,
    next_message_id: u16,
    established_in: Duration,
    socket: SocketTuning,
}

impl ScuAssociation {
    /// The peer, `CALLED@host:port`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The timeouts the association was opened with.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// How long the association took to establish (TCP connect plus negotiation).
    pub fn established_in(&self) -> Duration {
        self.established_in
    }

    /// What TLS negotiated (protocol version, cipher suite), when the association
    /// runs over TLS.
    pub fn tls_session(&self) -> Option<&TlsSession> {
        self.tls_session.as_ref()
    }

    /// The user identity sent (kind and user name only), if any.
    pub fn identity(&self) -> Option<&IdentitySummary> {
        self.identity.as_ref()
    }

    /// The accepted presentation contexts.
    pub fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        self.link.presentation_contexts()
    }

    /// The first accepted context for `abstract_syntax` (padding ignored).
    pub fn accepted_context(
        &self,
        abstract_syntax: &str,
    ) -> Option<&PresentationContextNegotiated> {
        self.presentation_contexts()
            .iter()
            .find(|pc| crate::trim_value(&pc.abstract_syntax) == abstract_syntax)
    }

    /// Whether the peer accepted that we act as SCP for `sop_class_uid` (PS3.7
    /// D.3.3.4: its A-ASSOCIATE-AC answers our role selection item with the SCP role
    /// set). Without it a C-GET's C-STORE sub-operations for that class cannot come.
    pub fn peer_accepted_scp_role(&self, sop_class_uid: &str) -> bool {
        self.link.user_variables().iter().any(|item| {
            matches!(item, UserVariableItem::ScuScpRoleSelectionSubItem(uid, roles)
                if crate::trim_value(uid) == sop_class_uid && roles.scp)
        })
    }

    /// The peer's maximum PDU length (what our PDUs are cut to).
    pub fn peer_max_pdu_length(&self) -> u32 {
        self.link.peer_max_pdu_length()
    }

    /// The message ID for the next request: 1, 2, ... 65535, then 1 again (never 0).
    pub fn next_message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = following_message_id(id);
        id
    }

    /// Sends a command and, when given, its data set, each cut to the peer's maximum
    /// PDU length.
    pub fn send(
        &mut self,
        presentation_context_id: u8,
        command: &Command,
        data: Option<&[u8]>,
    ) -> Result<(), DimseError> {
        send_message(&mut self.link, presentation_context_id, command, data)
    }

    /// Sends an already encoded command set, then a data set with `patches` written
    /// over it on the way out: the sender's hot path, which encodes each instance
    /// once and changes only its UIDs per send.
    pub fn send_encoded(
        &mut self,
        presentation_context_id: u8,
        command: &[u8],
        data: &[u8],
        patches: &[Patch<'_>],
    ) -> Result<(), DimseError> {
        let max_pdv = max_pdv_payload(self.link.peer_max_pdu_length());
        write_fragments(
            self.link.stream(),
            presentation_context_id,
            PDataValueType::Command,
            command,
            max_pdv,
        )?;
        send_data_patched(&mut self.link, presentation_context_id, data, patches)
    }

    /// As [`send_encoded`](Self::send_encoded), the data set (`len` bytes, no patches)
    /// read from `source` as it goes out, through `buffer` (reused from send to send):
    /// a large file goes from the page cache to the socket in cache-sized chunks, with
    /// no copy of it in memory ([`write_fragments_from`](crate::write_fragments_from)).
    ///
    /// # Errors
    /// [`DimseError::Source`] when `source` fails or is short (the message is then
    /// incomplete: abort the association), or the network's error.
    pub fn send_encoded_from(
        &mut self,
        presentation_context_id: u8,
        command: &[u8],
        source: &mut dyn std::io::Read,
        len: u64,
        buffer: &mut Vec<u8>,
    ) -> Result<(), DimseError> {
        let max_pdv = max_pdv_payload(self.link.peer_max_pdu_length());
        let stream = self.link.stream();
        write_fragments(
            stream,
            presentation_context_id,
            PDataValueType::Command,
            command,
            max_pdv,
        )?;
        crate::message::write_fragments_from(
            stream,
            presentation_context_id,
            PDataValueType::Data,
            source,
            len,
            buffer,
            max_pdv,
        )
    }

    /// Receives the next message, waiting at most the DIMSE timeout per PDU.
    pub fn receive(&mut self) -> Result<Incoming, DimseError> {
        self.receive_within(self.timeouts.dimse)
    }

    /// Receives the next message, waiting at most `wait` per PDU (a query's deadline
    /// may be nearer than the DIMSE timeout).
    pub fn receive_within(&mut self, wait: Duration) -> Result<Incoming, DimseError> {
        // A zero timeout means "block forever" to the OS: never pass one.
        let wait = wait.max(Duration::from_millis(1));
        if wait != self.read_timeout {
            self.link
                .tcp()
                .set_read_timeout(Some(wait))
                .map_err(DimseError::Io)?;
            self.read_timeout = wait;
        }
        // A failed re-arm only costs the delayed ACK it would have saved.
        let _ = self.socket.rearm(self.link.tcp());
        let incoming = self.reader.receive(&mut self.link);
        let _ = self.socket.rearm(self.link.tcp());
        incoming
    }

    /// Waits for the response to request `message_id`, which must be an `expected`
    /// command naming that request and carrying a status. A release request is
    /// answered; it and an abort end the wait with an error.
    pub fn expect_response(
        &mut self,
        message_id: u16,
        expected: CommandField,
    ) -> Result<Response, DimseError> {
        self.expect_response_within(message_id, expected, self.timeouts.dimse)
    }

    /// [`expect_response`](Self::expect_response), waiting at most `wait` per PDU.
    pub fn expect_response_within(
        &mut self,
        message_id: u16,
        expected: CommandField,
        wait: Duration,
    ) -> Result<Response, DimseError> {
        match self.receive_within(wait)? {
            Incoming::Message(message) => check_response(message, message_id, expected),
            Incoming::ReleaseRequested => {
                let _ = self.link.send_pdu(&Pdu::ReleaseRP);
                Err(DimseError::PeerReleased)
            }
            Incoming::Aborted(source) => Err(DimseError::PeerAborted(format!("{source:?}"))),
        }
    }

    /// Sends a C-ECHO on the Verification context and returns the peer's status.
    ///
    /// # Errors
    /// [`DimseError::ContextNotAccepted`] when Verification was not accepted; any
    /// other error of the exchange.
    pub fn echo(&mut self) -> Result<Status, DimseError> {
        let context = self
            .accepted_context(uids::VERIFICATION)
            .map(|pc| pc.id)
            .ok_or_else(|| DimseError::ContextNotAccepted {
                abstract_syntax: uids::VERIFICATION.to_string(),
            })?;
        let id = self.next_message_id();
        self.send(context, &Command::c_echo_rq(id), None)?;
        Ok(self.expect_response(id, CommandField::CEchoRsp)?.status)
    }

    /// Checks, without waiting, that the peer has not closed or aborted the
    /// association while it sat idle.
    ///
    /// A reused association that the peer closed would otherwise take the next
    /// request's bytes into a dead socket and turn a send that never started into an
    /// "unknown" outcome.
    pub fn is_alive(&mut self) -> bool {
        self.link.is_alive()
    }

    /// Releases the association (A-RELEASE), waiting at most the ACSE timeout.
    ///
    /// # Errors
    /// The peer did not answer the release properly (the connection is closed anyway).
    pub fn release(mut self) -> Result<(), DimseError> {
        let _ = self.link.tcp().set_read_timeout(Some(self.timeouts.acse));
        self.link.release()
    }

    /// Answers the peer's A-RELEASE-RQ (an [`Incoming::ReleaseRequested`]) with an
    /// A-RELEASE-RP; the association is over afterwards.
    ///
    /// # Errors
    /// The answer could not be sent.
    pub fn confirm_release(&mut self) -> Result<(), DimseError> {
        self.link.send_pdu(&Pdu::ReleaseRP)
    }

    /// Aborts the association (A-ABORT) and closes the connection.
    pub fn abort(self) {
        self.link.abort();
    }
}

/// The dicom-ul association under a [`ScuAssociation`]: plain TCP or TLS.
#[derive(Debug)]
enum Link {
    Plain(ClientAssociation<TcpStream>),
    // Boxed: the TLS state is large and the plain case is the common one.
    Tls(Box<ClientAssociation<TlsStream>>),
}

impl Link {
    /// The TCP socket (under TLS when there is TLS): timeouts and socket options.
    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Link::Plain(a) => a.inner_stream(),
            Link::Tls(a) => &mut a.inner_stream().sock,
        }
    }

    fn tls_session(&mut self) -> Option<TlsSession> {
        match self {
            Link::Plain(_) => None,
            Link::Tls(a) => Some(TlsSession::of(&a.inner_stream().conn)),
        }
    }

    fn user_variables(&self) -> &[UserVariableItem] {
        match self {
            Link::Plain(a) => a.user_variables(),
            Link::Tls(a) => a.user_variables(),
        }
    }

    fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        match self {
            Link::Plain(a) => a.presentation_contexts(),
            Link::Tls(a) => a.presentation_contexts(),
        }
    }

    /// Whether the idle association can still carry a request, without waiting.
    fn is_alive(&mut self) -> bool {
        match self {
            Link::Plain(a) => {
                let stream = a.inner_stream();
                if stream.set_nonblocking(true).is_err() {
                    return false;
                }
                let mut probe = [0u8; 1];
                let alive = match stream.peek(&mut probe) {
                    // Nothing to read: the peer is quietly waiting, as it should be.
                    Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                    // EOF (closed) or an unsolicited PDU (A-ABORT, A-RELEASE-RQ): the
                    // association cannot carry another request.
                    Ok(_) => false,
                };
                stream.set_nonblocking(false).is_ok() && alive
            }
            Link::Tls(a) => {
                // The raw socket may hold TLS records that carry no DICOM (TLS 1.3
                // session tickets): read and process them, then look at what is left.
                let stream = a.inner_stream();
                if stream.sock.set_nonblocking(true).is_err() {
                    return false;
                }
                let alive = loop {
                    match stream.conn.read_tls(&mut stream.sock) {
                        Ok(0) => break false,
                        Ok(_) => match stream.conn.process_new_packets() {
                            Ok(state) if state.peer_has_closed() => break false,
                            Ok(state) if state.plaintext_bytes_to_read() > 0 => break false,
                            Ok(_) => {}
                            Err(_) => break false,
                        },
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            break stream.conn.process_new_packets().is_ok_and(|state| {
                                !state.peer_has_closed() && state.plaintext_bytes_to_read() == 0
                            });
                        }
                        Err(_) => break false,
                    }
                };
                stream.sock.set_nonblocking(false).is_ok() && alive
            }
        }
    }

    fn release(self) -> Result<(), DimseError> {
        match self {
            Link::Plain(a) => a.release(),
            Link::Tls(a) => a.release(),
        }
        .map_err(DimseError::from_association)
    }

    fn abort(self) {
        let _ = match self {
            Link::Plain(a) => a.abort(),
            Link::Tls(a) => a.abort(),
        };
    }
}

impl PduChannel for Link {
    fn receive_pdu(&mut self) -> Result<Pdu, DimseError> {
        match self {
            Link::Plain(a) => a.receive_pdu(),
            Link::Tls(a) => a.receive_pdu(),
        }
    }

    fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), DimseError> {
        match self {
            Link::Plain(a) => a.send_pdu(pdu),
            Link::Tls(a) => a.send_pdu(pdu),
        }
    }

    fn peer_max_pdu_length(&self) -> u32 {
        match self {
            Link::Plain(a) => PduChannel::peer_max_pdu_length(a),
            Link::Tls(a) => PduChannel::peer_max_pdu_length(a.as_ref()),
        }
    }

    fn stream(&mut self) -> &mut dyn io::Write {
        match self {
            Link::Plain(a) => a.inner_stream(),
            Link::Tls(a) => a.inner_stream(),
        }
    }

    fn pdu_stream(&mut self) -> Option<crate::message::PduStream<'_>> {
        match self {
            Link::Plain(a) => a.pdu_stream(),
            Link::Tls(a) => a.pdu_stream(),
        }
    }
}

/// The message ID after `id`: IDs only need to be unique among outstanding requests,
/// and 0 is skipped because some SCPs refuse it.
fn following_message_id(id: u16) -> u16 {
    id.checked_add(1).unwrap_or(1)
}

/// The one response rule: the expected command, answering `message_id`, with a status.
fn check_response(
    message: Message,
    message_id: u16,
    expected: CommandField,
) -> Result<Response, DimseError> {
    let command = message.command;
    if command.field != expected {
        return Err(DimseError::Protocol(format!(
            "expected {expected} to message {message_id}, received {}",
            command.field
        )));
    }
    if command.message_id_being_responded_to != Some(message_id) {
        return Err(DimseError::Protocol(
            match command.message_id_being_responded_to {
                Some(other) => {
                    format!("{expected} to message {other}, expected one to {message_id}")
                }
                None => {
                    format!("{expected} without MessageIDBeingRespondedTo (expected {message_id})")
                }
            },
        ));
    }
    let Some(status) = command.status else {
        return Err(DimseError::Protocol(format!("{expected} without a status")));
    };
    Ok(Response {
        status,
        command,
        data: message.data,
        presentation_context_id: message.presentation_context_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(command: Command) -> Message {
        Message {
            presentation_context_id: 1,
            command,
            data: None,
        }
    }

    #[test]
    fn a_response_to_the_request_with_a_status_is_accepted() {
        let request = Command::c_echo_rq(7);
        let response = Command::response_to(&request, Status::SUCCESS, false).unwrap();
        let checked = check_response(message(response), 7, CommandField::CEchoRsp).unwrap();
        assert_eq!(checked.status, Status::SUCCESS);
    }

    #[test]
    fn a_response_to_another_request_or_to_none_is_a_protocol_error() {
        let request = Command::c_echo_rq(7);
        let response = Command::response_to(&request, Status::SUCCESS, false).unwrap();
        let error = check_response(message(response.clone()), 8, CommandField::CEchoRsp);
        assert!(matches!(error, Err(DimseError::Protocol(_))));
        let mut anonymous = response;
        anonymous.message_id_being_responded_to = None;
        let error = check_response(message(anonymous), 7, CommandField::CEchoRsp).unwrap_err();
        assert!(
            error.to_string().contains("MessageIDBeingRespondedTo"),
            "{error}"
        );
    }

    #[test]
    fn the_wrong_command_is_a_protocol_error() {
        let request = Command::c_echo_rq(7);
        let response = Command::response_to(&request, Status::SUCCESS, false).unwrap();
        let error = check_response(message(response), 7, CommandField::CStoreRsp);
        assert!(matches!(error, Err(DimseError::Protocol(_))));
    }

    #[test]
    fn zero_timeouts_and_impossible_pdu_lengths_are_refused_before_connecting() {
        let options = ScuOptions::new(
            PeerAddress::new("127.0.0.1", 9),
            AeTitle::new("A").unwrap(),
            AeTitle::new("B").unwrap(),
        );
        let zero = options.clone().timeouts(Timeouts::all(Duration::ZERO));
        assert!(matches!(
            zero.establish(),
            Err(AssociateError::InvalidOption {
                name: "connect",
                ..
            })
        ));
        let tiny = options.max_pdu_length(10);
        assert!(matches!(
            tiny.establish(),
            Err(AssociateError::InvalidOption {
                name: "max_pdu_length",
                ..
            })
        ));
    }

    #[test]
    fn nothing_listening_is_a_connect_error_naming_the_peer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let error = ScuOptions::new(
            PeerAddress::new("127.0.0.1", port),
            AeTitle::new("A").unwrap(),
            AeTitle::new("PACS").unwrap(),
        )
        .timeouts(Timeouts::all(Duration::from_secs(2)))
        .propose_verification()
        .establish()
        .unwrap_err();
        assert!(matches!(error, AssociateError::Connect { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains(&format!("PACS@127.0.0.1:{port}")),
            "{error}"
        );
    }

    #[test]
    fn message_ids_skip_zero_when_they_wrap() {
        assert_eq!(following_message_id(1), 2);
        assert_eq!(following_message_id(65_535), 1);
    }

    /// A Verification SCP on loopback written with dicom-ul alone, answering one
    /// C-ECHO per association with `status`.
    fn echo_scp(status: Status) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut association = dicom_ul::ServerAssociationOptions::new()
                .accept_any()
                .with_abstract_syntax(uids::VERIFICATION)
                .read_timeout(Duration::from_secs(5))
                .establish(stream)
                .unwrap();
            let mut reader = MessageReader::new();
            if let Ok(Incoming::Message(m)) = reader.receive(&mut association) {
                let rsp = Command::response_to(&m.command, status, false).unwrap();
                send_message(&mut association, m.presentation_context_id, &rsp, None).unwrap();
            }
            if let Ok(Incoming::ReleaseRequested) = reader.receive(&mut association) {
                let _ = association.send(&Pdu::ReleaseRP);
            }
        });
        port
    }

    #[test]
    fn echo_returns_the_peers_status_and_release_completes() {
        let port = echo_scp(Status(0x0110));
        let mut association = ScuOptions::new(
            PeerAddress::new("127.0.0.1", port),
            AeTitle::new("SCU").unwrap(),
            AeTitle::new("SCP").unwrap(),
        )
        .timeouts(Timeouts::all(Duration::from_secs(5)))
        .propose_verification()
        .establish()
        .unwrap();
        assert!(
            association.link.tcp().nodelay().unwrap(),
            "TCP_NODELAY not set"
        );
        assert!(association.is_alive());
        assert_eq!(association.echo().unwrap(), Status(0x0110));
        let armed = SocketTuning::is_armed(association.link.tcp()).unwrap();
        assert_eq!(
            armed,
            SocketTuning::quick_ack_supported(),
            "TCP_QUICKACK not re-armed"
        );
        association.release().unwrap();
    }
}
