//! The C-FIND SCU: configuration, associations, C-ECHO and C-FIND exchanges.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use config::{AeTitle, TestConfig, socket_text};
use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::{TransferSyntax, TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::AssociationRJResult;
use dicom_ul::{ClientAssociation, ClientAssociationOptions, Pdu};
use dimse::{
    Command, CommandField, DimseError, EstablishError, Incoming, Message, MessageReader, Priority,
    Status, StatusClass,
};
use serde::Serialize;

use crate::error::{CFindError, find_operation};
use crate::identifier::Identifier;
use crate::query::Query;
use crate::results::{Match, ModelFallback, QueryResult};
use dimse::qr::InformationModel;

/// Default number of StudyInstanceUIDs in one verification query.
pub const DEFAULT_MAX_UIDS_PER_QUERY: usize = 200;
/// Default limit on the bytes of one UID-list value: below the 64 KiB a UI element can
/// hold in Explicit VR, with room to spare for peers with smaller buffers.
pub const DEFAULT_MAX_UID_LIST_BYTES: usize = 16 * 1024;

/// How verification polls: the `CFIND_INITIAL_DELAY`, `CFIND_POLL_INTERVAL` and
/// `CFIND_TIMEOUT` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Polling {
    /// Wait before the first query.
    pub initial_delay: Duration,
    /// Wait between two queries.
    pub poll_interval: Duration,
    /// Stop polling this long after the first query.
    pub timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Polling {
            initial_delay: config::defaults::CFIND_INITIAL_DELAY,
            poll_interval: config::defaults::CFIND_POLL_INTERVAL,
            timeout: config::defaults::CFIND_TIMEOUT,
        }
    }
}

/// How verification cuts a list of StudyInstanceUIDs into queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BatchLimits {
    /// At most this many UIDs per query.
    pub max_uids_per_query: usize,
    /// At most this many bytes in the UID-list value of one query.
    pub max_uid_list_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_uids_per_query: DEFAULT_MAX_UIDS_PER_QUERY,
            max_uid_list_bytes: DEFAULT_MAX_UID_LIST_BYTES,
        }
    }
}

/// A C-FIND client for one query SCP: where it is, who we are, and how long to wait.
///
/// Build it from the configuration ([`CFindClient::from_config`]) or by hand
/// ([`CFindClient::builder`]). Each `find`/`test_connection` call on the client opens
/// and releases its own association; a [`Session`] ([`CFindClient::session`]) keeps one
/// association for many queries, which is what verification uses.
///
/// Every wait is bounded: the TCP connection by the connect timeout, association
/// negotiation and release by the ACSE timeout, each DIMSE response by the DIMSE
/// timeout, and a whole query by the query timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CFindClient {
    settings: Settings,
    called_ae_title: AeTitle,
    calling_ae_title: AeTitle,
}

/// What the builder and the client share: everything but the AE titles, which the
/// builder holds as text until it checks them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    host: String,
    port: u16,
    models: Vec<InformationModel>,
    connect_timeout: Duration,
    acse_timeout: Duration,
    dimse_timeout: Duration,
    query_timeout: Duration,
    max_pdu_length: u32,
    polling: Polling,
    batch: BatchLimits,
}

impl Settings {
    fn from_config(config: &TestConfig) -> Self {
        let cfind = &config.cfind;
        let network = &config.network;
        Settings {
            host: cfind.host.clone(),
            port: cfind.port,
            models: InformationModel::DEFAULT_PREFERENCE.to_vec(),
            connect_timeout: network.connect_timeout,
            acse_timeout: network.acse_timeout,
            dimse_timeout: network.dimse_timeout,
            // One query never outlasts the polling it is part of.
            query_timeout: cfind.timeout,
            max_pdu_length: network.max_pdu_length,
            polling: Polling {
                initial_delay: cfind.initial_delay,
                poll_interval: cfind.poll_interval,
                timeout: cfind.timeout,
            },
            batch: BatchLimits::default(),
        }
    }
}

/// Builds a [`CFindClient`]; every setting has a default except the address.
#[derive(Clone, Debug)]
pub struct CFindClientBuilder {
    settings: Settings,
    called_ae_title: String,
    calling_ae_title: String,
}

impl CFindClientBuilder {
    /// The query SCP's host and port.
    pub fn address(mut self, host: impl Into<String>, port: u16) -> Self {
        self.settings.host = host.into();
        self.settings.port = port;
        self
    }

    /// The query SCP's host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.settings.host = host.into();
        self
    }

    /// The query SCP's port.
    pub fn port(mut self, port: u16) -> Self {
        self.settings.port = port;
        self
    }

    /// The called AE title (the query SCP's).
    pub fn called_ae_title(mut self, title: impl Into<String>) -> Self {
        self.called_ae_title = title.into();
        self
    }

    /// The calling AE title (ours).
    pub fn calling_ae_title(mut self, title: impl Into<String>) -> Self {
        self.calling_ae_title = title.into();
        self
    }

    /// The information models to use, in order of preference; the client falls back
    /// to the next when the peer refuses one. Default: Study Root, then Patient Root.
    pub fn models(mut self, models: impl IntoIterator<Item = InformationModel>) -> Self {
        self.settings.models = Vec::new();
        for model in models {
            if !self.settings.models.contains(&model) {
                self.settings.models.push(model);
            }
        }
        self
    }

    /// TCP connection timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// Wait for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    pub fn acse_timeout(mut self, timeout: Duration) -> Self {
        self.settings.acse_timeout = timeout;
        self
    }

    /// Wait for each DIMSE response (each C-FIND-RSP, the C-ECHO-RSP).
    pub fn dimse_timeout(mut self, timeout: Duration) -> Self {
        self.settings.dimse_timeout = timeout;
        self
    }

    /// Deadline of one whole query, however many responses it gets.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.settings.query_timeout = timeout;
        self
    }

    /// The largest PDU we accept.
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.settings.max_pdu_length = length;
        self
    }

    /// How verification polls.
    pub fn polling(mut self, polling: Polling) -> Self {
        self.settings.polling = polling;
        self
    }

    /// How verification batches UIDs.
    pub fn batch_limits(mut self, batch: BatchLimits) -> Self {
        self.settings.batch = batch;
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    /// [`CFindError::InvalidAeTitle`] for a bad AE title, [`CFindError::InvalidSetting`]
    /// for a zero timeout or batch size, an empty model list or an empty host.
    pub fn build(self) -> Result<CFindClient, CFindError> {
        let ae = |role: &'static str, value: &str| {
            AeTitle::new(value).map_err(|source| CFindError::InvalidAeTitle {
                role,
                value: value.to_string(),
                source,
            })
        };
        let called_ae_title = ae("called", &self.called_ae_title)?;
        let calling_ae_title = ae("calling", &self.calling_ae_title)?;
        let invalid = |name: &'static str, value: String, reason: &'static str| {
            Err(CFindError::InvalidSetting {
                name,
                value,
                reason,
            })
        };
        if self.settings.host.trim().is_empty() {
            return invalid("host", self.settings.host, "a host name or IP address");
        }
        if self.settings.port == 0 {
            return invalid("port", "0".into(), "a port from 1 to 65535");
        }
        if self.settings.models.is_empty() {
            return invalid("models", "[]".into(), "at least one information model");
        }
        for (name, value) in [
            ("connect_timeout", self.settings.connect_timeout),
            ("acse_timeout", self.settings.acse_timeout),
            ("dimse_timeout", self.settings.dimse_timeout),
            ("query_timeout", self.settings.query_timeout),
            ("poll_interval", self.settings.polling.poll_interval),
            ("poll_timeout", self.settings.polling.timeout),
        ] {
            if value.is_zero() {
                return invalid(name, "0 s".into(), "a duration above zero");
            }
        }
        if self.settings.batch.max_uids_per_query == 0
            || self.settings.batch.max_uid_list_bytes < 64
        {
            return invalid(
                "batch_limits",
                format!("{:?}", self.settings.batch),
                "at least 1 UID and 64 bytes per query",
            );
        }
        if self.settings.max_pdu_length < dicom_ul::pdu::MINIMUM_PDU_SIZE {
            return invalid(
                "max_pdu_length",
                self.settings.max_pdu_length.to_string(),
                "at least 1018 bytes (dicom-ul's minimum)",
            );
        }
        let mut settings = self.settings;
        settings.host = settings.host.trim().to_string();
        Ok(CFindClient {
            settings,
            called_ae_title,
            calling_ae_title,
        })
    }
}

/// Socket text `host:port`, with IPv6 literals in brackets.
impl CFindClient {
    /// A builder for the SCP at `host:port`, with the defaults of the configuration
    /// crate: called AE `ANY-SCP`, calling AE `DICOM-AUTO`, Study Root then Patient Root.
    pub fn builder(host: impl Into<String>, port: u16) -> CFindClientBuilder {
        let polling = Polling::default();
        CFindClientBuilder {
            settings: Settings {
                host: host.into(),
                port,
                models: InformationModel::DEFAULT_PREFERENCE.to_vec(),
                connect_timeout: config::defaults::CONNECT_TIMEOUT,
                acse_timeout: config::defaults::ACSE_TIMEOUT,
                dimse_timeout: config::defaults::DIMSE_TIMEOUT,
                query_timeout: polling.timeout,
                max_pdu_length: config::defaults::MAX_PDU_LENGTH,
                polling,
                batch: BatchLimits::default(),
            },
            called_ae_title: "ANY-SCP".into(),
            calling_ae_title: config::defaults::LOCAL_AE_TITLE.into(),
        }
    }

    /// A builder holding the configuration's C-FIND and network settings, to change
    /// some of them (a command line's `--host`, say) before building.
    ///
    /// The query timeout is `CFIND_TIMEOUT`: one query never outlasts the polling it
    /// is part of.
    pub fn builder_from_config(config: &TestConfig) -> CFindClientBuilder {
        CFindClientBuilder {
            settings: Settings::from_config(config),
            called_ae_title: config.cfind.called_ae_title.as_str().to_string(),
            calling_ae_title: config.cfind.calling_ae_title.as_str().to_string(),
        }
    }

    /// The client the configuration describes (`CFIND_*` and `DICOM_*` settings).
    pub fn from_config(config: &TestConfig) -> Self {
        // The config crate has validated every value the builder would check.
        CFindClient {
            settings: Settings::from_config(config),
            called_ae_title: config.cfind.called_ae_title.clone(),
            calling_ae_title: config.cfind.calling_ae_title.clone(),
        }
    }

    /// The peer as `AE@host:port`, the way errors name it.
    pub fn peer(&self) -> String {
        format!(
            "{}@{}",
            self.called_ae_title.as_str(),
            socket_text(&self.settings.host, self.settings.port)
        )
    }

    /// The polling settings verification uses.
    pub fn polling(&self) -> Polling {
        self.settings.polling
    }

    /// The batch limits verification uses.
    pub fn batch_limits(&self) -> BatchLimits {
        self.settings.batch
    }

    /// The information models in order of preference.
    pub fn models(&self) -> &[InformationModel] {
        &self.settings.models
    }

    /// The deadline of one query.
    pub fn query_timeout(&self) -> Duration {
        self.settings.query_timeout
    }

    /// A session: one association (opened on first use) for many exchanges.
    pub fn session(&self) -> Session {
        Session {
            client: self.clone(),
            open: None,
            refused: Vec::new(),
            queries_sent: 0,
            associations_opened: 0,
        }
    }

    /// Opens an association, sends a C-ECHO and releases: the `ping` of the command line.
    ///
    /// Succeeds when the peer answers the C-ECHO with success, even if it accepts no
    /// query model; [`ConnectionCheck::models_accepted`] says which it accepts.
    pub fn test_connection(&self) -> Result<ConnectionCheck, CFindError> {
        let started = Instant::now();
        let mut open = self.establish(&self.settings.models)?;
        let association_time = started.elapsed();
        let models_accepted = open.contexts.iter().map(|c| c.model).collect();
        let echo = open.echo(self);
        let release = open.release(self.settings.acse_timeout);
        let echo_rtt = echo?;
        Ok(ConnectionCheck {
            peer: self.peer(),
            association_time,
            echo_rtt,
            models_accepted,
            released: release.is_ok(),
        })
    }

    /// Runs one query on its own association (opened and released around it).
    pub fn find<Q: Query>(&self, query: &Q) -> Result<QueryResult<Q::Match>, CFindError> {
        let mut session = self.session();
        let result = session.find(query);
        session.close();
        result
    }

    /// Opens an association proposing `models` (plus Verification), with every socket
    /// timeout set and Nagle's algorithm off.
    fn establish(&self, models: &[InformationModel]) -> Result<OpenAssociation, CFindError> {
        let peer = self.peer();
        let mut options = ClientAssociationOptions::new()
            .calling_ae_title(self.calling_ae_title.as_str())
            .called_ae_title(self.called_ae_title.as_str())
            .with_presentation_context(uids::VERIFICATION, vec![uids::IMPLICIT_VR_LITTLE_ENDIAN])
            .max_pdu_length(self.settings.max_pdu_length);
        for model in models {
            options = options.with_presentation_context(
                model.sop_class_uid(),
                vec![
                    uids::EXPLICIT_VR_LITTLE_ENDIAN,
                    uids::IMPLICIT_VR_LITTLE_ENDIAN,
                ],
            );
        }
        let address = socket_text(&self.settings.host, self.settings.port);
        let timeouts = dimse::ScuTimeouts {
            connect: self.settings.connect_timeout,
            acse: self.settings.acse_timeout,
            dimse: self.settings.dimse_timeout,
            write: self.settings.dimse_timeout,
        };
        let association = dimse::establish(options, address.as_str(), timeouts)
            .map_err(|e| establish_error(e, &peer, models))?;
        let accepted = association.presentation_contexts();
        let mut contexts = Vec::new();
        for model in models {
            let found = accepted.iter().find(|pc| {
                pc.abstract_syntax.trim_end_matches(['\0', ' ']) == model.sop_class_uid()
            });
            if let Some(pc) = found
                && let Some(ts) = TransferSyntaxRegistry.get(&pc.transfer_syntax)
            {
                contexts.push(QueryContext {
                    model: *model,
                    id: pc.id,
                    transfer_syntax: ts,
                });
            }
        }
        let echo_context = accepted
            .iter()
            .find(|pc| pc.abstract_syntax.trim_end_matches(['\0', ' ']) == uids::VERIFICATION)
            .map(|pc| pc.id);
        Ok(OpenAssociation {
            association,
            reader: MessageReader::new(),
            contexts,
            echo_context,
            next_message_id: 1,
            used: false,
        })
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

fn establish_error(error: EstablishError, peer: &str, models: &[InformationModel]) -> CFindError {
    let error = match error {
        EstablishError::Association(error) => *error,
        other => {
            return CFindError::Association {
                peer: peer.to_string(),
                detail: other.to_string(),
                timed_out: false,
            };
        }
    };
    match error {
        UlError::Connect { ref source, .. } | UlError::ToAddress { ref source, .. } => {
            CFindError::Connect {
                peer: peer.to_string(),
                detail: source.to_string(),
            }
        }
        UlError::Rejected {
            ref association_rj, ..
        } => CFindError::Rejected {
            peer: peer.to_string(),
            reason: dimse::describe_rejection(association_rj),
            transient: association_rj.result == AssociationRJResult::Transient,
        },
        UlError::NoAcceptedPresentationContexts { .. } => CFindError::NoModelAccepted {
            peer: peer.to_string(),
            models: models.to_vec(),
        },
        other => {
            let detail = error_chain(&other);
            let timed_out = DimseError::from_association(other).is_timeout();
            CFindError::Association {
                peer: peer.to_string(),
                detail,
                timed_out,
            }
        }
    }
}

/// What [`CFindClient::test_connection`] measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConnectionCheck {
    /// `AE@host:port`.
    pub peer: String,
    /// TCP connection plus association negotiation.
    #[serde(serialize_with = "millis")]
    pub association_time: Duration,
    /// C-ECHO-RQ sent to C-ECHO-RSP received.
    #[serde(serialize_with = "millis")]
    pub echo_rtt: Duration,
    /// The query models the peer accepted, in order of preference.
    pub models_accepted: Vec<InformationModel>,
    /// Whether the association was released cleanly afterwards.
    pub released: bool,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

struct QueryContext {
    model: InformationModel,
    id: u8,
    transfer_syntax: &'static TransferSyntax,
}

impl std::fmt::Debug for QueryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryContext")
            .field("model", &self.model)
            .field("id", &self.id)
            .field("transfer_syntax", &self.transfer_syntax.uid())
            .finish()
    }
}

#[derive(Debug)]
struct OpenAssociation {
    association: ClientAssociation<TcpStream>,
    reader: MessageReader,
    /// Accepted query contexts in order of preference.
    contexts: Vec<QueryContext>,
    echo_context: Option<u8>,
    next_message_id: u16,
    /// Whether an exchange happened on it: a failure on a used association may just
    /// mean the peer closed it while idle.
    used: bool,
}

impl OpenAssociation {
    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1);
        id
    }

    /// Receives the next message within `min(DIMSE timeout, deadline)`.
    fn receive(
        &mut self,
        client: &CFindClient,
        operation: &str,
        started: Instant,
        deadline: Instant,
    ) -> Result<Message, CFindError> {
        let peer = client.peer();
        let now = Instant::now();
        // A DIMSE timeout reports the wait for that one response; the deadline reports
        // the whole exchange, since that is what it bounds.
        let timeout = |what, waited| CFindError::Timeout {
            peer: client.peer(),
            operation: operation.to_string(),
            what,
            waited,
        };
        if now >= deadline {
            return Err(timeout("query deadline", started.elapsed()));
        }
        let remaining = deadline - now;
        let (wait, what) = if remaining < client.settings.dimse_timeout {
            (remaining, "query deadline")
        } else {
            (client.settings.dimse_timeout, "DIMSE timeout")
        };
        // A zero timeout means "block forever" to the OS: never pass one.
        let wait = wait.max(Duration::from_millis(1));
        if let Err(e) = self.association.inner_stream().set_read_timeout(Some(wait)) {
            return Err(CFindError::Dimse {
                peer,
                operation: operation.to_string(),
                source: DimseError::Io(e),
            });
        }
        match self.reader.receive(&mut self.association) {
            Ok(Incoming::Message(message)) => Ok(message),
            Ok(Incoming::ReleaseRequested) => {
                let _ = self.association.send(&Pdu::ReleaseRP);
                Err(CFindError::Ended {
                    peer,
                    operation: operation.to_string(),
                    what: "released",
                })
            }
            Ok(Incoming::Aborted(_)) => Err(CFindError::Ended {
                peer,
                operation: operation.to_string(),
                what: "aborted",
            }),
            Ok(_) => Err(CFindError::Ended {
                peer,
                operation: operation.to_string(),
                what: "ended",
            }),
            Err(e) if e.is_timeout() => Err(timeout(
                what,
                if what == "DIMSE timeout" {
                    now.elapsed()
                } else {
                    started.elapsed()
                },
            )),
            Err(source) => Err(CFindError::Dimse {
                peer,
                operation: operation.to_string(),
                source,
            }),
        }
    }

    fn echo(&mut self, client: &CFindClient) -> Result<Duration, CFindError> {
        let peer = client.peer();
        let operation = "C-ECHO";
        let context = self
            .echo_context
            .ok_or_else(|| CFindError::EchoNotAccepted { peer: peer.clone() })?;
        self.used = true;
        let id = self.message_id();
        let started = Instant::now();
        dimse::send_message(
            &mut self.association,
            context,
            &Command::c_echo_rq(id),
            None,
        )
        .map_err(|source| CFindError::Dimse {
            peer: peer.clone(),
            operation: operation.into(),
            source,
        })?;
        let message = self.receive(
            client,
            operation,
            started,
            started + client.settings.dimse_timeout,
        )?;
        let rtt = started.elapsed();
        let command = &message.command;
        if command.field != CommandField::CEchoRsp
            || command
                .message_id_being_responded_to
                .is_some_and(|r| r != id)
        {
            return Err(CFindError::Protocol {
                peer,
                operation: operation.into(),
                detail: format!(
                    "expected C-ECHO-RSP to message {id}, got {} to {:?}",
                    command.field, command.message_id_being_responded_to
                ),
            });
        }
        match command.status {
            Some(status) if status.is_delivered() => Ok(rtt),
            Some(status) => Err(CFindError::Failed {
                peer,
                operation: operation.into(),
                status,
                error_comment: command.error_comment.clone(),
            }),
            None => Err(CFindError::Protocol {
                peer,
                operation: operation.into(),
                detail: "C-ECHO-RSP without a status".into(),
            }),
        }
    }

    /// One C-FIND on `context` until its final response.
    fn find<Q: Query>(
        &mut self,
        client: &CFindClient,
        context: usize,
        query: &Q,
        deadline: Instant,
    ) -> Result<QueryResult<Q::Match>, CFindError> {
        let QueryContext {
            model,
            id: context_id,
            transfer_syntax,
        } = self.contexts[context];
        let keys = query.keys();
        let operation = find_operation(model, keys.level());
        let peer = client.peer();
        let identifier = keys.encode(model, transfer_syntax)?;
        self.used = true;
        let id = self.message_id();
        let request = Command::c_find_rq(id, model.sop_class_uid(), Priority::Medium);
        let started = Instant::now();
        let dimse_error = |source| CFindError::Dimse {
            peer: peer.clone(),
            operation: operation.clone(),
            source,
        };
        dimse::send_message(
            &mut self.association,
            context_id,
            &request,
            Some(&identifier),
        )
        .map_err(dimse_error)?;
        let protocol = |detail: String| CFindError::Protocol {
            peer: peer.clone(),
            operation: operation.clone(),
            detail,
        };
        let mut matches = Vec::new();
        let mut optional_keys_unsupported = 0;
        let mut cancelled = false;
        loop {
            let message = self.receive(client, &operation, started, deadline)?;
            let command = message.command;
            if command.field != CommandField::CFindRsp {
                return Err(protocol(format!(
                    "expected C-FIND-RSP, got {}",
                    command.field
                )));
            }
            if let Some(responded_to) = command.message_id_being_responded_to
                && responded_to != id
            {
                return Err(protocol(format!(
                    "response to message {responded_to} while message {id} is outstanding"
                )));
            }
            let Some(mut status) = command.status else {
                return Err(protocol("C-FIND-RSP without a status".into()));
            };
            if status.class() == StatusClass::Pending {
                let Some(data) = message.data else {
                    // A pending response must carry a match; one without is useless but
                    // harmless, so it is skipped rather than failing the query.
                    continue;
                };
                let decoded = Identifier::decode(&data, transfer_syntax)
                    .map_err(|e| protocol(format!("undecodable identifier: {e}")))?;
                let has_keys = decoded
                    .identifier
                    .iter()
                    .any(|(tag, _)| tag != dicom_dictionary_std::tags::QUERY_RETRIEVE_LEVEL);
                if has_keys && !cancelled {
                    if status == Status::PENDING_WARNING {
                        optional_keys_unsupported += 1;
                    }
                    matches.push(Q::Match::from_identifier(decoded.identifier));
                }
                match decoded.embedded_status {
                    // dicom-rs #434: some SCPs put the final status in the last
                    // identifier and send nothing more.
                    Some(embedded) if embedded.class() != StatusClass::Pending => {
                        status = embedded;
                    }
                    _ => {
                        if !cancelled && keys.limit().is_some_and(|limit| matches.len() >= limit) {
                            dimse::send_message(
                                &mut self.association,
                                context_id,
                                &Command::c_cancel_rq(id),
                                None,
                            )
                            .map_err(dimse_error)?;
                            cancelled = true;
                        }
                        continue;
                    }
                }
            }
            return match status.class() {
                StatusClass::Failure => Err(CFindError::Failed {
                    peer: peer.clone(),
                    operation,
                    status,
                    error_comment: command.error_comment,
                }),
                _ => Ok(QueryResult {
                    model,
                    fallbacks: Vec::new(),
                    matches,
                    status,
                    truncated: cancelled,
                    optional_keys_unsupported,
                    elapsed: started.elapsed(),
                }),
            };
        }
    }

    fn release(mut self, acse_timeout: Duration) -> Result<(), UlError> {
        let _ = self
            .association
            .inner_stream()
            .set_read_timeout(Some(acse_timeout));
        self.association.release()
    }
}

/// Whether a failure status may mean "not this information model": the identifier
/// does not match the SOP class (A9xx), the SCP cannot process it (Cxxx), or the SOP
/// class is not supported (0122).
fn refuses_model(status: Status) -> bool {
    status.is_data_set_mismatch()
        || status.is_cannot_understand()
        || status == Status::SOP_CLASS_NOT_SUPPORTED
}

/// Whether an error leaves the association unusable (so it must be aborted).
fn breaks_association(error: &CFindError) -> bool {
    matches!(
        error,
        CFindError::Timeout { .. }
            | CFindError::Dimse { .. }
            | CFindError::Ended { .. }
            | CFindError::Protocol { .. }
    )
}

/// Whether an error on a reused association may only mean that the peer closed it
/// while it was idle, so one retry on a new association is worth it.
fn idle_close(error: &CFindError) -> bool {
    match error {
        CFindError::Ended { .. } => true,
        CFindError::Dimse { source, .. } => matches!(
            source,
            DimseError::ConnectionClosed | DimseError::Io(_) | DimseError::Association(_)
        ),
        _ => false,
    }
}

/// One association used for many exchanges.
///
/// The association is opened on first use and reopened after an error that broke it
/// (timeout, abort, closed connection), so a long polling loop survives a peer that
/// restarts or closes idle associations. Models the peer refused are remembered for
/// the session's later queries. Release it with [`Session::close`]; dropping it
/// releases it too.
#[derive(Debug)]
pub struct Session {
    client: CFindClient,
    open: Option<OpenAssociation>,
    refused: Vec<ModelFallback>,
    queries_sent: u64,
    associations_opened: u64,
}

impl Session {
    /// The client this session belongs to.
    pub fn client(&self) -> &CFindClient {
        &self.client
    }

    /// C-FIND requests sent so far (fallback retries included).
    pub fn queries_sent(&self) -> u64 {
        self.queries_sent
    }

    /// Associations opened so far.
    pub fn associations_opened(&self) -> u64 {
        self.associations_opened
    }

    /// Sends a C-ECHO and returns its round-trip time.
    pub fn echo(&mut self) -> Result<Duration, CFindError> {
        let client = self.client.clone();
        let open = self.ensure_open(false)?;
        let result = open.echo(&client);
        if let Err(e) = &result
            && breaks_association(e)
        {
            self.abort();
        }
        result
    }

    /// Runs a query within the client's query timeout.
    pub fn find<Q: Query>(&mut self, query: &Q) -> Result<QueryResult<Q::Match>, CFindError> {
        let deadline = Instant::now() + self.client.settings.query_timeout;
        self.find_until(query, deadline)
    }

    /// Runs a query that must be complete by `deadline` (or the client's query timeout,
    /// whichever is sooner).
    ///
    /// Falls back to the next information model when the peer refuses one (not
    /// accepted at negotiation, association rejected, or a failure status such as
    /// A900/C000 with no match), and reports the model used in the result.
    pub fn find_until<Q: Query>(
        &mut self,
        query: &Q,
        deadline: Instant,
    ) -> Result<QueryResult<Q::Match>, CFindError> {
        let deadline = deadline.min(Instant::now() + self.client.settings.query_timeout);
        let reused = self.open.as_ref().is_some_and(|open| open.used);
        match self.find_on_association(query, deadline) {
            Err(error) if reused && idle_close(&error) => {
                self.abort();
                self.find_on_association(query, deadline)
            }
            result => result,
        }
    }

    fn find_on_association<Q: Query>(
        &mut self,
        query: &Q,
        deadline: Instant,
    ) -> Result<QueryResult<Q::Match>, CFindError> {
        let client = self.client.clone();
        let models: Vec<InformationModel> = self
            .ensure_open(true)?
            .contexts
            .iter()
            .map(|c| c.model)
            .collect();
        let mut tried: Vec<ModelFallback> = Vec::new();
        let mut last_error = None;
        for (index, model) in models.into_iter().enumerate() {
            if self.refused.iter().any(|r| r.refused == model) {
                continue;
            }
            self.queries_sent += 1;
            let open = self.open.as_mut().expect("opened above");
            match open.find(&client, index, query, deadline) {
                Ok(mut result) => {
                    self.refused.append(&mut tried);
                    result.fallbacks = self.refused.clone();
                    return Ok(result);
                }
                Err(error) => {
                    if breaks_association(&error) {
                        self.abort();
                        return Err(error);
                    }
                    match error.status() {
                        Some(status) if refuses_model(status) => {
                            tried.push(ModelFallback {
                                refused: model,
                                reason: format!("C-FIND answered {status}"),
                            });
                            last_error = Some(error);
                        }
                        _ => return Err(error),
                    }
                }
            }
        }
        // Every usable model failed the same way: the query itself is at fault, not
        // a model, so nothing is remembered as refused.
        Err(last_error.unwrap_or_else(|| CFindError::NoModelAccepted {
            peer: client.peer(),
            models: client.settings.models.clone(),
        }))
    }

    fn ensure_open(&mut self, need_model: bool) -> Result<&mut OpenAssociation, CFindError> {
        if self.open.is_none() {
            let open = self.open_with_fallback(need_model)?;
            self.associations_opened += 1;
            self.open = Some(open);
        }
        Ok(self.open.as_mut().expect("just opened"))
    }

    /// Proposes every model at once; when the peer rejects that association, proposes
    /// them one at a time, since some peers reject an association for a context they
    /// do not know instead of refusing just that context.
    fn open_with_fallback(&mut self, need_model: bool) -> Result<OpenAssociation, CFindError> {
        let client = &self.client;
        let models: Vec<InformationModel> = client
            .models()
            .iter()
            .copied()
            .filter(|m| !self.refused.iter().any(|r| r.refused == *m))
            .collect();
        let models = if models.is_empty() {
            client.settings.models.clone()
        } else {
            models
        };
        let first = match client.establish(&models) {
            Ok(open) if !need_model || !open.contexts.is_empty() => return Ok(open),
            Ok(open) => {
                let _ = open.release(client.settings.acse_timeout);
                return Err(CFindError::NoModelAccepted {
                    peer: client.peer(),
                    models,
                });
            }
            Err(error @ CFindError::Rejected { .. }) if models.len() > 1 => error,
            Err(error) => return Err(error),
        };
        let mut refused = Vec::new();
        for model in &models {
            match client.establish(std::slice::from_ref(model)) {
                Ok(open) if !open.contexts.is_empty() => {
                    self.refused.append(&mut refused);
                    return Ok(open);
                }
                Ok(open) => {
                    let _ = open.release(client.settings.acse_timeout);
                    refused.push(ModelFallback {
                        refused: *model,
                        reason: "presentation context not accepted".into(),
                    });
                }
                Err(CFindError::Rejected { reason, .. }) => refused.push(ModelFallback {
                    refused: *model,
                    reason: format!("association rejected: {reason}"),
                }),
                Err(other) => return Err(other),
            }
        }
        Err(first)
    }

    /// Aborts the association (if open); the next exchange opens a new one.
    fn abort(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = open.association.abort();
        }
    }

    /// Releases the association, if one is open. Errors are ignored: the queries are
    /// done and the peer has answered them.
    pub fn close(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = open.release(self.client.settings.acse_timeout);
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_names_the_bad_setting() {
        let err = CFindClient::builder("127.0.0.1", 104)
            .called_ae_title("THIS-TITLE-IS-FAR-TOO-LONG")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("called AE title"), "{err}");
        let err = CFindClient::builder("127.0.0.1", 104)
            .dimse_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("dimse_timeout"), "{err}");
        let err = CFindClient::builder("127.0.0.1", 104)
            .models([])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("models"), "{err}");
    }

    #[test]
    fn the_config_gives_address_titles_and_polling() {
        let config = TestConfig::from_map([
            ("COMPASS_HOST", "10.1.2.3"),
            ("CFIND_PORT", "4242"),
            ("CFIND_AE_TITLE", "ORTHANC"),
            ("LOCAL_AE_TITLE", "QA-SCU"),
            ("CFIND_POLL_INTERVAL", "2"),
            ("CFIND_TIMEOUT", "30"),
            ("DICOM_DIMSE_TIMEOUT", "7"),
        ])
        .unwrap();
        let client = CFindClient::from_config(&config);
        assert_eq!(client.peer(), "ORTHANC@10.1.2.3:4242");
        assert_eq!(client.calling_ae_title.as_str(), "QA-SCU");
        assert_eq!(client.polling().poll_interval, Duration::from_secs(2));
        assert_eq!(client.query_timeout(), Duration::from_secs(30));
        assert_eq!(client.settings.dimse_timeout, Duration::from_secs(7));
        let built = CFindClient::builder_from_config(&config).build().unwrap();
        assert_eq!(built, client);
    }

    #[test]
    fn model_refusal_statuses() {
        for code in [0xA900, 0xC000, 0xC001, 0x0122] {
            assert!(refuses_model(Status(code)), "{code:04X}");
        }
        for code in [0xA700, 0x0110, 0xFE00] {
            assert!(!refuses_model(Status(code)), "{code:04X}");
        }
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(socket_text("::1", 104), "[::1]:104");
        assert_eq!(socket_text("pacs", 104), "pacs:104");
    }
}
