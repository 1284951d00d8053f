//! The SCP: association negotiation by called AE title, and the DIMSE services
//! (C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET with C-CANCEL, Storage Commitment)
//! on one thread per association.
//!
//! This module runs an association from its first byte to its end and dispatches
//! each request; admission (routing and refusing by AE title, presentation
//! contexts) is in `negotiation`, the services in `store`, `find`, `retrieve` and
//! `commitment`.

mod commitment;
mod find;
mod negotiation;
mod retrieve;
mod store;

use std::collections::{HashMap, VecDeque};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use dicom_dictionary_std::uids;
use dicom_ul::Pdu;
use dicom_ul::pdu::{AbortRQServiceProviderReason, AbortRQSource};
use dimse::scp::{AcceptOptions, ScpAssociation, ScpError, ScpStream};
use dimse::{
    Command, CommandField, DimseError, Incoming, Message, MessageReader, PduChannel, Status,
};
use parking_lot::{Mutex, RwLock};

use crate::config::SimulatorConfig;
use crate::faults::FaultState;
use crate::forward::{FailedForward, ForwardItem, SilentFault};
use crate::stats::{Counters, RejectionReason};
use crate::store::ImageStore;
use dicom_object::InMemDicomObject;
use dimse::InformationModel;
use dimse::qr::QrService;

pub use self::find::ReceivedFind;
use self::find::{RECEIVED_FINDS_KEPT, handle_find};
use self::negotiation::{decide, is_query_retrieve, refuse};
use self::store::handle_store;

/// State shared by the accept loop, the association threads and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimulatorConfig,
    pub(crate) store: RwLock<ImageStore>,
    pub(crate) counters: Arc<Mutex<Counters>>,
    pub(crate) faults: FaultState,
    pub(crate) shutdown: Arc<AtomicBool>,
    pub(crate) active: AtomicUsize,
    pub(crate) connections: Mutex<HashMap<u64, TcpStream>>,
    pub(crate) association_threads: Mutex<Vec<JoinHandle<()>>>,
    /// Association threads that ended in a panic (a bug: the peer's association is
    /// lost, the simulator keeps serving the others).
    pub(crate) panicked_threads: AtomicUsize,
    pub(crate) forward_queues: Vec<Option<Sender<ForwardItem>>>,
    pub(crate) failed_forwards: Arc<Mutex<Vec<FailedForward>>>,
    /// Forwarded instances hit by a silent fault.
    pub(crate) silent_faults: Arc<Mutex<Vec<SilentFault>>>,
    /// The latest C-FIND requests (at most `RECEIVED_FINDS_KEPT`), oldest first.
    pub(crate) received_finds: Mutex<VecDeque<ReceivedFind>>,
    /// Where stored instances are written, when `config.spool_dir` is set.
    pub(crate) spool: Option<crate::spool::Spool>,
    /// Connection IDs (for `connections`), unique over both listeners.
    pub(crate) next_connection_id: AtomicU64,
}

impl Shared {
    fn record_find(&self, model: InformationModel, identifier: &InMemDicomObject) {
        let mut received = self.received_finds.lock();
        if received.len() == RECEIVED_FINDS_KEPT {
            received.pop_front();
        }
        received.push_back(ReceivedFind {
            model,
            identifier: identifier.clone(),
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Route(usize),
    QueryOnly,
}

/// How an association ended, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Released,
    PeerAborted,
    ConnectionLost,
    FaultAbort,
    ProtocolError,
    TimedOut,
    Shutdown,
}

enum Flow {
    Continue,
    End(End),
}

/// Removes the connection from the registry when its thread ends.
struct Registration<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.connections.lock().remove(&self.id);
    }
}

struct ActiveSlot<'a>(&'a AtomicUsize);

impl Drop for ActiveSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one TCP connection from A-ASSOCIATE-RQ to the end of the association,
/// after a TLS handshake when `tls` is given (the TLS listener's connections).
pub(crate) fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    id: u64,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let config = &shared.config;
    // Nagle plus delayed ACK costs ~40 ms per response on loopback.
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(config.read_timeout)).is_err()
        || stream
            .set_write_timeout(Some(config.write_timeout))
            .is_err()
    {
        return;
    }
    if let Ok(clone) = stream.try_clone() {
        shared.connections.lock().insert(id, clone);
    }
    let _registration = Registration {
        shared: &shared,
        id,
    };
    if shared.shutdown.load(Ordering::Acquire) {
        return;
    }
    // The ARTIM timer covers the TLS handshake and the A-ASSOCIATE-RQ.
    let artim = config.artim_timeout.min(config.read_timeout);
    let deadline = Instant::now() + artim;
    let stream = match tls {
        None => ScpStream::Plain(stream),
        Some(tls) => match ScpStream::accept_tls(stream, tls, artim) {
            Ok(stream) => stream,
            Err(ScpError::Tls(failure)) => {
                shared.counters.lock().tls_handshake_failed(&failure);
                return;
            }
            Err(_) => return,
        },
    };
    negotiate_and_run(&shared, stream, deadline);
}

fn negotiate_and_run(shared: &Shared, mut stream: ScpStream, deadline: Instant) {
    let config = &shared.config;
    let rq = match dimse::scp::read_associate_request(&mut stream, deadline) {
        Ok(rq) => rq,
        Err(ScpError::TlsClientOnPlainPort) => {
            // Nothing a TLS client could read: close at once.
            shared.counters.lock().tls.clients_on_plain_port += 1;
            let _ = stream.tcp().shutdown(Shutdown::Both);
            return;
        }
        Err(error) => {
            if let Some(source) = error.abort_source() {
                shared.counters.lock().reject(RejectionReason::BadRequest);
                dimse::scp::abort(stream, source);
            }
            return;
        }
    };
    if let Some(rejection) = dimse::scp::standard_refusal(&rq) {
        shared.counters.lock().reject(RejectionReason::BadRequest);
        dimse::scp::reject(stream, rejection);
        return;
    }
    let rules = &config.rules;
    let called = rq.called_ae_title.trim();
    let calling = rq.calling_ae_title.trim();
    let target = if let Some(i) = rules
        .routes
        .iter()
        .position(|r| r.called_ae_title == called)
    {
        Target::Route(i)
    } else if rules.settings.query_ae_title.as_deref() == Some(called) {
        Target::QueryOnly
    } else {
        refuse(shared, stream, RejectionReason::CalledAeTitleNotRecognized);
        return;
    };
    if let Target::Route(i) = target
        && let Some(allowed) = &rules.routes[i].allowed_calling_ae_titles
        && !allowed.iter().any(|a| a == calling)
    {
        refuse(shared, stream, RejectionReason::CallingAeTitleNotRecognized);
        return;
    }
    let identity = dimse::UserIdentity::of_request(&rq);
    if let Some(identity) = &identity {
        shared.counters.lock().identity_seen(identity);
    }
    let identity_accepted = match target {
        Target::Route(i) => match &rules.routes[i].identity {
            Some(policy) => {
                let accepted = identity.as_ref().is_some_and(|id| policy.accepts(id));
                if !accepted && policy.required {
                    refuse(shared, stream, RejectionReason::IdentityRefused);
                    return;
                }
                accepted
            }
            None => false,
        },
        Target::QueryOnly => false,
    };
    if shared.faults.refusing() {
        refuse(shared, stream, RejectionReason::RefusedByFault);
        return;
    }
    if shared.faults.reject_this_association() {
        refuse(shared, stream, RejectionReason::RejectedByFault);
        return;
    }
    let open = shared.active.fetch_add(1, Ordering::AcqRel) + 1;
    let _slot = ActiveSlot(&shared.active);
    if open > config.max_associations {
        refuse(shared, stream, RejectionReason::LocalLimitExceeded);
        return;
    }
    let withheld_models = shared.faults.withheld_find_models();
    // A C-GET SCU takes the C-STORE sub-operations as SCP: grant the roles asked.
    let get_association = negotiation::proposes_get(&rq.presentation_contexts);
    let mut options = AcceptOptions::new()
        .max_pdu_length(config.max_pdu_length)
        .grant_requested_roles();
    if identity_accepted {
        // The user-name kinds answer with an empty server response; nothing is
        // issued for a token either (PS3.7 D.3.3.7.2 lets it be empty).
        options = options.identity_accepted(Vec::new());
    }
    let tls_session = stream.tls_session();
    let accepted = dimse::scp::accept(stream, &rq, &options, |pc| {
        decide(config, target, &withheld_models, get_association, pc)
    });
    let mut association = match accepted {
        Ok(a) => a,
        Err(_) => {
            shared.counters.lock().reject(RejectionReason::BadRequest);
            return;
        }
    };
    {
        let mut c = shared.counters.lock();
        c.associations.accepted += 1;
        c.associations.active += 1;
        if let Some(session) = &tls_session {
            c.tls_association(session);
        }
    }
    let end = run_association(shared, &mut association, target);
    let mut c = shared.counters.lock();
    c.associations.active -= 1;
    let a = &mut c.associations;
    match end {
        End::Released => a.released += 1,
        End::PeerAborted => a.aborted_by_peer += 1,
        End::ConnectionLost => a.connection_lost += 1,
        End::FaultAbort => a.aborted_by_fault += 1,
        End::ProtocolError => a.protocol_errors += 1,
        End::TimedOut => a.timed_out += 1,
        End::Shutdown => a.closed_by_shutdown += 1,
    }
}

type Association = ScpAssociation;

fn run_association(shared: &Shared, association: &mut Association, target: Target) -> End {
    let config = &shared.config;
    let mut reader = MessageReader::new().with_max_data_set_len(config.max_data_set_len);
    let mut data_set_limit = config.max_data_set_len;
    let mut stores_answered = 0u64;
    let mut read_timeout = config.read_timeout;
    loop {
        // The mid-data-set abort is the reader's data set limit lowered: the reader
        // stops at the first fragment past it, while the peer is still sending.
        let abort_mid_data_set = shared
            .faults
            .abort_mid_data_set()
            .filter(|&bytes| bytes < config.max_data_set_len);
        let wanted_limit = abort_mid_data_set.unwrap_or(config.max_data_set_len);
        if wanted_limit != data_set_limit {
            reader = std::mem::take(&mut reader).with_max_data_set_len(wanted_limit);
            data_set_limit = wanted_limit;
        }
        let idle = shared.faults.idle_timeout();
        let wanted = idle
            .unwrap_or(config.read_timeout)
            .max(Duration::from_millis(1));
        if wanted != read_timeout && association.tcp().set_read_timeout(Some(wanted)).is_ok() {
            read_timeout = wanted;
        }
        let incoming = reader.receive(association);
        if shared.shutdown.load(Ordering::Acquire) {
            abort(association, AbortRQSource::ServiceUser);
            return End::Shutdown;
        }
        let flow = match incoming {
            Ok(Incoming::Message(message)) => handle_message(
                shared,
                association,
                &mut reader,
                message,
                target,
                &mut stores_answered,
            ),
            Ok(Incoming::ReleaseRequested) => {
                let _ = association.send_pdu(&Pdu::ReleaseRP);
                return End::Released;
            }
            Ok(Incoming::Aborted(_)) => return End::PeerAborted,
            Ok(_) => return End::ProtocolError,
            Err(e) => Err(e),
        };
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::End(end)) => return end,
            Err(DimseError::ConnectionClosed) => return End::ConnectionLost,
            Err(DimseError::TooLarge { .. }) if abort_mid_data_set.is_some() => {
                abort(association, AbortRQSource::ServiceUser);
                return End::FaultAbort;
            }
            Err(DimseError::Timeout) => {
                abort(association, AbortRQSource::ServiceUser);
                return if idle.is_some() {
                    End::FaultAbort
                } else {
                    End::TimedOut
                };
            }
            Err(_) => {
                let reason = AbortRQServiceProviderReason::UnexpectedPdu;
                abort(association, AbortRQSource::ServiceProvider(reason));
                return End::ProtocolError;
            }
        }
    }
}

fn abort(association: &mut Association, source: AbortRQSource) {
    association.abort(source);
}

fn handle_message(
    shared: &Shared,
    association: &mut Association,
    reader: &mut MessageReader,
    message: Message,
    target: Target,
    stores_answered: &mut u64,
) -> Result<Flow, DimseError> {
    let pc_id = message.presentation_context_id;
    let Some((abstract_syntax, ts_uid)) = association
        .accepted_context(pc_id)
        .map(|pc| (pc.abstract_syntax.clone(), pc.transfer_syntax.clone()))
    else {
        return Err(DimseError::Protocol(format!(
            "message on presentation context {pc_id}, which was not accepted"
        )));
    };
    let command = &message.command;
    match command.field {
        CommandField::CEchoRq => {
            shared.counters.lock().echoes += 1;
            respond(
                shared,
                association,
                pc_id,
                command,
                Status::SUCCESS,
                None,
                None,
            )?;
            Ok(Flow::Continue)
        }
        CommandField::CStoreRq => {
            let Target::Route(route) = target else {
                respond(
                    shared,
                    association,
                    pc_id,
                    command,
                    Status::SOP_CLASS_NOT_SUPPORTED,
                    Some("storage is not offered on the query AE title"),
                    None,
                )?;
                return Ok(Flow::Continue);
            };
            if abstract_syntax == uids::VERIFICATION || is_query_retrieve(&abstract_syntax) {
                respond(
                    shared,
                    association,
                    pc_id,
                    command,
                    Status::SOP_CLASS_NOT_SUPPORTED,
                    Some("C-STORE on a non-storage context"),
                    None,
                )?;
                return Ok(Flow::Continue);
            }
            handle_store(
                shared,
                association,
                route,
                message,
                &ts_uid,
                stores_answered,
            )
        }
        CommandField::CFindRq => {
            let Some(model) = InformationModel::from_sop_class_uid(&abstract_syntax) else {
                respond(
                    shared,
                    association,
                    pc_id,
                    command,
                    Status::SOP_CLASS_NOT_SUPPORTED,
                    Some("C-FIND on a non-query context"),
                    None,
                )?;
                return Ok(Flow::Continue);
            };
            handle_find(shared, association, reader, &message, model, &ts_uid)?;
            Ok(Flow::Continue)
        }
        CommandField::CMoveRq | CommandField::CGetRq => {
            let expected = if command.field == CommandField::CMoveRq {
                QrService::Move
            } else {
                QrService::Get
            };
            match InformationModel::service_of(&abstract_syntax) {
                Some((model, service)) if service == expected => retrieve::handle_retrieve(
                    shared,
                    association,
                    reader,
                    &message,
                    model,
                    service,
                    &ts_uid,
                ),
                _ => {
                    respond(
                        shared,
                        association,
                        pc_id,
                        command,
                        Status::SOP_CLASS_NOT_SUPPORTED,
                        Some("retrieve on a context of another SOP class"),
                        None,
                    )?;
                    Ok(Flow::Continue)
                }
            }
        }
        CommandField::NActionRq => {
            if dimse::trim_value(&abstract_syntax) != uids::STORAGE_COMMITMENT_PUSH_MODEL {
                respond(
                    shared,
                    association,
                    pc_id,
                    command,
                    Status::SOP_CLASS_NOT_SUPPORTED,
                    Some("N-ACTION on a context other than Storage Commitment"),
                    None,
                )?;
                return Ok(Flow::Continue);
            }
            commitment::handle_action(shared, association, reader, &message, &ts_uid)
        }
        // No operation is outstanding between requests: nothing to cancel.
        CommandField::CCancelRq => Ok(Flow::Continue),
        // The answer to a Storage Commitment report whose wait timed out.
        CommandField::NEventReportRsp => Ok(Flow::Continue),
        field if !field.is_response() => {
            respond(
                shared,
                association,
                pc_id,
                command,
                Status::UNRECOGNIZED_OPERATION,
                Some("operation not supported by the simulator"),
                None,
            )?;
            Ok(Flow::Continue)
        }
        field => Err(DimseError::Protocol(format!(
            "unexpected {field} from the requestor"
        ))),
    }
}

/// Sleeps, but wakes early on shutdown.
fn pause(shared: &Shared, total: Duration) {
    let step = Duration::from_millis(20);
    let mut left = total;
    while !left.is_zero() && !shared.shutdown.load(Ordering::Acquire) {
        let nap = left.min(step);
        thread::sleep(nap);
        left -= nap;
    }
}

fn respond(
    shared: &Shared,
    association: &mut Association,
    pc_id: u8,
    request: &Command,
    status: Status,
    comment: Option<&str>,
    data: Option<&[u8]>,
) -> Result<(), DimseError> {
    if let Some(delay) = shared.faults.response_delay() {
        pause(shared, delay);
    }
    let Some(mut response) = Command::response_to(request, status, data.is_some()) else {
        return Ok(());
    };
    if let Some(comment) = comment {
        response = response.with_error_comment(comment);
    }
    dimse::send_message(association, pc_id, &response, data)
}
