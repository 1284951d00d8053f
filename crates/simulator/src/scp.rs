//! The SCP: association negotiation by called AE title, and the DIMSE services
//! (C-ECHO, C-STORE, C-FIND with C-CANCEL) on one thread per association.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::association::SyncAssociation;
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, AssociationRJ, AssociationRJResult,
    AssociationRJServiceProviderASCEReason,
    AssociationRJServiceProviderPresentationReason as ProviderReason,
    AssociationRJServiceUserReason as UserReason, AssociationRJSource, AssociationRQ,
    MAXIMUM_PDU_SIZE, PresentationContextResultReason,
};
use dicom_ul::{Pdu, ServerAssociation, ServerAssociationOptions};
use dimse::{Command, CommandField, DimseError, Incoming, Message, MessageReader, Status};
use parking_lot::{Mutex, RwLock};

use crate::config::{SimulatorConfig, StorageSopClasses, TransferSyntaxPolicy};
use crate::faults::FaultState;
use crate::forward::{FailedForward, ForwardItem};
use crate::query::{MatchOptions, Query};
use crate::rules::{DuplicatePolicy, today_utc};
use crate::stats::{Counters, RejectionReason, StoreStats};
use crate::store::{Arrival, DuplicateAction, ImageStore, InsertOutcome, StoreMode};
use crate::values::text;
use dimse::InformationModel;

/// The largest A-ASSOCIATE-RQ read: 128 presentation contexts with long UIDs fit
/// in well under this.
const MAX_ASSOCIATE_RQ_LEN: usize = 1 << 16;

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

/// Serves one TCP connection from A-ASSOCIATE-RQ to the end of the association.
pub(crate) fn serve(shared: Arc<Shared>, stream: TcpStream, id: u64) {
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
    negotiate_and_run(&shared, stream);
}

fn negotiate_and_run(shared: &Shared, mut stream: TcpStream) {
    let config = &shared.config;
    let (rq_len, rq) =
        match peek_associate_rq(&stream, config.artim_timeout.min(config.read_timeout)) {
            Ok(found) => found,
            Err(PeekError::Gone) => return,
            Err(PeekError::NotAnAssociateRq) => {
                shared.counters.lock().reject(RejectionReason::BadRequest);
                let reason = AbortRQServiceProviderReason::UnexpectedPdu;
                abort_raw(&mut stream, AbortRQSource::ServiceProvider(reason));
                return;
            }
            Err(PeekError::Malformed) => {
                shared.counters.lock().reject(RejectionReason::BadRequest);
                let reason = AbortRQServiceProviderReason::UnrecognizedPduParameter;
                abort_raw(&mut stream, AbortRQSource::ServiceProvider(reason));
                return;
            }
        };
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
        refuse(
            shared,
            &mut stream,
            rq_len,
            RejectionReason::CalledAeTitleNotRecognized,
        );
        return;
    };
    if let Target::Route(i) = target
        && let Some(allowed) = &rules.routes[i].allowed_calling_ae_titles
        && !allowed.iter().any(|a| a == calling)
    {
        refuse(
            shared,
            &mut stream,
            rq_len,
            RejectionReason::CallingAeTitleNotRecognized,
        );
        return;
    }
    if shared.faults.refusing() {
        refuse(shared, &mut stream, rq_len, RejectionReason::RefusedByFault);
        return;
    }
    let open = shared.active.fetch_add(1, Ordering::AcqRel) + 1;
    let _slot = ActiveSlot(&shared.active);
    if open > config.max_associations {
        refuse(
            shared,
            &mut stream,
            rq_len,
            RejectionReason::LocalLimitExceeded,
        );
        return;
    }
    let options = negotiation(config, &rq, target, called);
    // dicom-ul reads the same A-ASSOCIATE-RQ again (it was only peeked) and answers.
    let mut association = match options.establish(stream) {
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

enum PeekError {
    /// Closed, reset or silent: nobody to answer.
    Gone,
    NotAnAssociateRq,
    Malformed,
}

/// Reads the A-ASSOCIATE-RQ without consuming it, so that the simulator can route
/// or refuse by AE title (and refuse transiently, which dicom-ul's AccessControl
/// cannot) before handing the socket to dicom-ul.
fn peek_associate_rq(
    stream: &TcpStream,
    timeout: Duration,
) -> Result<(usize, AssociationRQ), PeekError> {
    let deadline = Instant::now() + timeout;
    let header = peek_exact(stream, 6, deadline)?;
    if header[0] != 0x01 {
        return Err(PeekError::NotAnAssociateRq);
    }
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    if len > MAX_ASSOCIATE_RQ_LEN {
        return Err(PeekError::Malformed);
    }
    let bytes = peek_exact(stream, 6 + len, deadline)?;
    match dicom_ul::pdu::read_pdu(&bytes[..], MAXIMUM_PDU_SIZE, false) {
        Ok(Some(Pdu::AssociationRQ(rq))) => Ok((6 + len, rq)),
        _ => Err(PeekError::Malformed),
    }
}

fn peek_exact(stream: &TcpStream, n: usize, deadline: Instant) -> Result<Vec<u8>, PeekError> {
    let mut buf = vec![0u8; n];
    loop {
        match stream.peek(&mut buf) {
            Ok(0) => return Err(PeekError::Gone),
            Ok(k) if k >= n => return Ok(buf),
            Ok(_) => {
                if Instant::now() >= deadline {
                    return Err(PeekError::Gone);
                }
                // Part of the PDU is in: the rest is on its way.
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(PeekError::Gone),
        }
    }
}

/// Counts the refusal and answers the (peeked) A-ASSOCIATE-RQ with the
/// A-ASSOCIATE-RJ that `reason` stands for.
fn refuse(shared: &Shared, stream: &mut TcpStream, rq_len: usize, reason: RejectionReason) {
    use AssociationRJResult::{Permanent, Transient};
    use AssociationRJSource::{ServiceProviderASCE, ServiceProviderPresentation, ServiceUser};
    shared.counters.lock().reject(reason);
    let (result, source) = match reason {
        RejectionReason::CalledAeTitleNotRecognized => (
            Permanent,
            ServiceUser(UserReason::CalledAETitleNotRecognized),
        ),
        RejectionReason::CallingAeTitleNotRecognized => (
            Permanent,
            ServiceUser(UserReason::CallingAETitleNotRecognized),
        ),
        RejectionReason::RefusedByFault => (
            Transient,
            ServiceProviderPresentation(ProviderReason::TemporaryCongestion),
        ),
        RejectionReason::LocalLimitExceeded => (
            Transient,
            ServiceProviderPresentation(ProviderReason::LocalLimitExceeded),
        ),
        // Not refused through here (a bad request is aborted, or refused by
        // dicom-ul itself); this is the RJ that would say so.
        RejectionReason::BadRequest => (
            Permanent,
            ServiceProviderASCE(AssociationRJServiceProviderASCEReason::NoReasonGiven),
        ),
    };
    let mut rq = vec![0u8; rq_len];
    if stream.read_exact(&mut rq).is_err() {
        return;
    }
    let mut out = Vec::with_capacity(10);
    if dicom_ul::pdu::write_pdu(
        &mut out,
        &Pdu::AssociationRJ(AssociationRJ { result, source }),
    )
    .is_ok()
    {
        let _ = stream.write_all(&out);
    }
    linger_until_peer_closes(stream);
}

fn abort_raw(stream: &mut TcpStream, source: AbortRQSource) {
    let mut out = Vec::with_capacity(10);
    if dicom_ul::pdu::write_pdu(&mut out, &Pdu::AbortRQ { source }).is_ok() {
        let _ = stream.write_all(&out);
    }
    linger_until_peer_closes(stream);
}

/// Closing a socket with unread input makes Linux send RST, which can destroy the
/// RJ or A-ABORT just written before the peer reads it: let the peer close first
/// (briefly, and reading at most a bounded amount).
fn linger_until_peer_closes(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while Instant::now() < deadline && total < (1 << 20) {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
}

/// Whether `uid` is a storage SOP class in the standard registry.
pub(crate) fn is_storage_sop_class(uid: &str) -> bool {
    use dicom_core::dictionary::UidDictionary;
    dicom_dictionary_std::StandardSopClassDictionary
        .by_uid(uid)
        .is_some_and(|e| {
            e.alias.contains("Storage")
                && !e.alias.starts_with("StorageCommitment")
                && e.alias != "MediaStorageDirectoryStorage"
                && e.alias != "Storage"
        })
}

fn is_find_model(uid: &str) -> bool {
    InformationModel::from_sop_class_uid(uid).is_some()
}

fn abstract_syntax_allowed(config: &SimulatorConfig, target: Target, uid: &str) -> bool {
    if uid == uids::VERIFICATION || is_find_model(uid) {
        return true;
    }
    match (target, config.storage_sop_classes) {
        (Target::QueryOnly, _) => false,
        (Target::Route(_), StorageSopClasses::Standard) => is_storage_sop_class(uid),
        (Target::Route(_), StorageSopClasses::Any) => true,
    }
}

fn negotiation<'a>(
    config: &'a SimulatorConfig,
    rq: &AssociationRQ,
    target: Target,
    called: &str,
) -> ServerAssociationOptions<
    'a,
    dicom_ul::association::server::AcceptAny,
    dicom_ul::association::server::DefaultNegotiation,
> {
    let mut options = ServerAssociationOptions::new()
        .accept_any()
        .ae_title(called.to_string())
        .max_pdu_length(config.max_pdu_length)
        .strict(true)
        .read_timeout(config.read_timeout)
        .write_timeout(config.write_timeout);
    let mut offered = false;
    for pc in &rq.presentation_contexts {
        let uid = pc.abstract_syntax.trim_end_matches(['\0', ' ']);
        if abstract_syntax_allowed(config, target, uid) {
            options = options.with_abstract_syntax(uid.to_string());
            offered = true;
        }
    }
    if !offered {
        // dicom-ul needs one; every proposed context is then refused.
        options = options.with_abstract_syntax(uids::VERIFICATION);
    }
    match &config.transfer_syntaxes {
        // No list: every transfer syntax the registry can parse, compressed included.
        TransferSyntaxPolicy::All => options,
        TransferSyntaxPolicy::UncompressedOnly => options
            .with_transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .with_transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN),
        TransferSyntaxPolicy::Only(list) => list
            .iter()
            .fold(options, |o, ts| o.with_transfer_syntax(ts.as_str())),
    }
}

type Association = ServerAssociation<TcpStream>;

fn run_association(shared: &Shared, association: &mut Association, target: Target) -> End {
    let config = &shared.config;
    let mut reader = MessageReader::new().with_max_data_set_len(config.max_data_set_len);
    let mut stores_answered = 0u64;
    let mut read_timeout = config.read_timeout;
    loop {
        let idle = shared.faults.idle_timeout();
        let wanted = idle
            .unwrap_or(config.read_timeout)
            .max(Duration::from_millis(1));
        if wanted != read_timeout
            && association
                .inner_stream()
                .set_read_timeout(Some(wanted))
                .is_ok()
        {
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
                let _ = association.send(&Pdu::ReleaseRP);
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
    let _ = association.send(&Pdu::AbortRQ { source });
    let _ = association.inner_stream().shutdown(Shutdown::Both);
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
        .presentation_contexts()
        .iter()
        .find(|pc| pc.id == pc_id && pc.reason == PresentationContextResultReason::Acceptance)
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
            if abstract_syntax == uids::VERIFICATION || is_find_model(&abstract_syntax) {
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
        // No operation is outstanding between requests: nothing to cancel.
        CommandField::CCancelRq => Ok(Flow::Continue),
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

/// The store counter one C-STORE adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreOutcome {
    Stored,
    Overwritten,
    DuplicateKept,
    DuplicateRefused,
    Unreadable,
    RejectedByRules,
    FailedByFault,
}

impl StoreOutcome {
    fn count(self, s: &mut StoreStats) {
        let counter = match self {
            StoreOutcome::Stored => &mut s.stored,
            StoreOutcome::Overwritten => &mut s.overwritten,
            StoreOutcome::DuplicateKept => &mut s.duplicates_kept,
            StoreOutcome::DuplicateRefused => &mut s.duplicates_refused,
            StoreOutcome::Unreadable => &mut s.unreadable,
            StoreOutcome::RejectedByRules => &mut s.rejected_by_rules,
            StoreOutcome::FailedByFault => &mut s.failed_by_fault,
        };
        *counter += 1;
    }
}

/// What happened to one C-STORE, for the response and the counters.
struct StoreResult {
    status: Status,
    comment: Option<String>,
    /// `None` when the route does not store (forwarding only).
    outcome: Option<StoreOutcome>,
    /// The instance for the route's forwarding queue.
    forward: Option<ForwardItem>,
}

impl StoreResult {
    fn failed(outcome: StoreOutcome, status: Status, comment: String) -> Self {
        StoreResult {
            status,
            comment: Some(comment),
            outcome: Some(outcome),
            forward: None,
        }
    }
}

fn handle_store(
    shared: &Shared,
    association: &mut Association,
    route: usize,
    message: Message,
    ts_uid: &str,
    stores_answered: &mut u64,
) -> Result<Flow, DimseError> {
    let Message {
        presentation_context_id: pc_id,
        command,
        data,
    } = message;
    let data = data.unwrap_or_default();
    let bytes = data.len() as u64;
    if shared.faults.stall_stores() {
        let mut c = shared.counters.lock();
        let s = &mut c.routes[route].stores;
        s.received += 1;
        s.bytes += bytes;
        s.stalled += 1;
        return Ok(Flow::Continue);
    }
    let result = process_store(shared, route, &command, &data, ts_uid);
    drop(data);
    let forward = shared.forward_queues[route].as_ref().zip(result.forward);
    {
        // One lock per store, as every association contends for this mutex. It is
        // taken before the response goes out (a sender holding its answer always
        // finds it in the statistics) and before the forwarding queue gets the item
        // (a fast forwarder never makes delivered > enqueued in a snapshot).
        let mut c = shared.counters.lock();
        let r = &mut c.routes[route];
        let s = &mut r.stores;
        s.received += 1;
        s.bytes += bytes;
        if let Some(outcome) = result.outcome {
            outcome.count(s);
        }
        *s.by_status.entry(result.status).or_default() += 1;
        if forward.is_some() {
            s.forwarded += 1;
            r.forwarding.enqueued += 1;
        }
    }
    if let Some((queue, item)) = forward
        && queue.send(item).is_err()
    {
        // The forwarder is gone (shutdown): the item stays counted as queued.
    }
    respond(
        shared,
        association,
        pc_id,
        &command,
        result.status,
        result.comment.as_deref(),
        None,
    )?;
    *stores_answered += 1;
    if shared
        .faults
        .abort_after_stores()
        .is_some_and(|n| *stores_answered >= n)
    {
        abort(association, AbortRQSource::ServiceUser);
        return Ok(Flow::End(End::FaultAbort));
    }
    Ok(Flow::Continue)
}

/// Parses, checks, morphs and stores one instance, and says what to count and
/// what to forward; the caller counts, queues and then answers.
fn process_store(
    shared: &Shared,
    route_index: usize,
    command: &Command,
    data: &[u8],
    ts_uid: &str,
) -> StoreResult {
    let config = &shared.config;
    let route = &config.rules.routes[route_index];
    let overridden = shared.faults.store_override();
    if let Some(status) = overridden
        && !status.is_delivered()
    {
        return StoreResult::failed(
            StoreOutcome::FailedByFault,
            status,
            "status override (fault injection)".into(),
        );
    }
    let unreadable = |comment: String| {
        StoreResult::failed(StoreOutcome::Unreadable, Status::CANNOT_UNDERSTAND, comment)
    };
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return unreadable(format!("unknown transfer syntax {ts_uid}"));
    };
    let mut obj = match InMemDicomObject::read_dataset_with_ts(data, ts) {
        Ok(obj) => obj,
        Err(e) => return unreadable(format!("cannot parse data set: {e}")),
    };
    let sop_instance_uid = command
        .sop_instance_uid
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| text(&obj, tags::SOP_INSTANCE_UID))
        .unwrap_or_default();
    let sop_class_uid = command
        .sop_class_uid
        .clone()
        .or_else(|| text(&obj, tags::SOP_CLASS_UID))
        .unwrap_or_default();
    if let Err(rejection) = route.process(&mut obj, &today_utc()) {
        return StoreResult::failed(
            StoreOutcome::RejectedByRules,
            rejection.status,
            rejection.comment,
        );
    }
    // One allocation for the object header; the elements are not copied.
    let dataset = Arc::new(obj);
    let mut outcome = None;
    if route.delivery.store {
        let duplicate = match route.duplicates {
            DuplicatePolicy::KeepFirst => DuplicateAction::Keep,
            DuplicatePolicy::Overwrite => DuplicateAction::Overwrite,
            DuplicatePolicy::Reject(_) => DuplicateAction::Refuse,
        };
        let view: &InMemDicomObject = &dataset;
        let stored_copy = (config.store_mode == StoreMode::Full).then(|| dataset.clone());
        let inserted = shared.store.write().insert(Arrival {
            dataset: view,
            shared: stored_copy,
            sop_instance_uid: &sop_instance_uid,
            sop_class_uid: &sop_class_uid,
            route: route_index as u16,
            duplicate,
            stable_study_time: route.stable_study_time,
        });
        outcome = Some(match inserted {
            Ok(InsertOutcome::Stored) => StoreOutcome::Stored,
            Ok(InsertOutcome::Overwritten) => StoreOutcome::Overwritten,
            Ok(InsertOutcome::DuplicateKept) => StoreOutcome::DuplicateKept,
            Ok(InsertOutcome::DuplicateRefused) => {
                let status = match route.duplicates {
                    DuplicatePolicy::Reject(status) => status,
                    _ => Status::DUPLICATE_SOP_INSTANCE,
                };
                return StoreResult::failed(
                    StoreOutcome::DuplicateRefused,
                    status,
                    format!("duplicate SOP instance {sop_instance_uid}"),
                );
            }
            Err(missing) => {
                return StoreResult::failed(
                    StoreOutcome::Unreadable,
                    Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                    format!("{} missing", missing.0),
                );
            }
        });
    }
    let forward_this = shared.forward_queues[route_index].is_some()
        && outcome != Some(StoreOutcome::DuplicateKept);
    StoreResult {
        status: overridden.unwrap_or(Status::SUCCESS),
        comment: None,
        outcome,
        forward: forward_this.then(|| ForwardItem {
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid: ts_uid.to_string(),
            dataset,
            attempts: 0,
        }),
    }
}

fn handle_find(
    shared: &Shared,
    association: &mut Association,
    reader: &mut MessageReader,
    message: &Message,
    model: InformationModel,
    ts_uid: &str,
) -> Result<(), DimseError> {
    let pc_id = message.presentation_context_id;
    let command = &message.command;
    shared.counters.lock().finds.requests += 1;
    let fail = |shared: &Shared, association: &mut Association, status: Status, comment: &str| {
        shared.counters.lock().finds.failed += 1;
        respond(
            shared,
            association,
            pc_id,
            command,
            status,
            Some(comment),
            None,
        )
    };
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return fail(
            shared,
            association,
            Status::CANNOT_UNDERSTAND,
            "unknown transfer syntax",
        );
    };
    let identifier = match message
        .data
        .as_deref()
        .map(|d| InMemDicomObject::read_dataset_with_ts(d, ts))
    {
        Some(Ok(obj)) => obj,
        Some(Err(_)) | None => {
            return fail(
                shared,
                association,
                Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                "cannot parse the identifier",
            );
        }
    };
    let query = match Query::parse(&identifier, model) {
        Ok(q) => q,
        Err(why) => {
            return fail(
                shared,
                association,
                Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                &why,
            );
        }
    };
    let options = MatchOptions {
        person_name_case_insensitive: shared.config.rules.settings.person_name_case_insensitive,
    };
    let matches = {
        let store = shared.store.read();
        query.run(&store, Instant::now(), options)
    };
    let pending = if matches.unsupported_keys {
        Status::PENDING_WARNING
    } else {
        Status::PENDING
    };
    for identifier in &matches.identifiers {
        if cancel_requested(association, reader, command.message_id)? {
            shared.counters.lock().finds.cancelled += 1;
            return respond(
                shared,
                association,
                pc_id,
                command,
                Status::CANCEL,
                None,
                None,
            );
        }
        let mut bytes = Vec::with_capacity(512);
        identifier
            .write_dataset_with_ts(&mut bytes, ts)
            .map_err(|e| DimseError::Protocol(format!("cannot encode a C-FIND response: {e}")))?;
        shared.counters.lock().finds.matches += 1;
        respond(
            shared,
            association,
            pc_id,
            command,
            pending,
            None,
            Some(&bytes),
        )?;
    }
    respond(
        shared,
        association,
        pc_id,
        command,
        Status::SUCCESS,
        None,
        None,
    )
}

/// Whether a C-CANCEL for `message_id` arrived while C-FIND responses are going out.
/// Looks at dicom-ul's read buffer and the socket without blocking.
fn cancel_requested(
    association: &mut Association,
    reader: &mut MessageReader,
    message_id: Option<u16>,
) -> Result<bool, DimseError> {
    let waiting = {
        let (socket, buffer) = SyncAssociation::get_mut(association);
        if !buffer.is_empty() {
            true
        } else {
            let mut probe = [0u8; 1];
            let _ = socket.set_nonblocking(true);
            let peeked = socket.peek(&mut probe);
            let _ = socket.set_nonblocking(false);
            matches!(peeked, Ok(n) if n > 0)
        }
    };
    if !waiting {
        return Ok(false);
    }
    match reader.receive(association)? {
        Incoming::Message(m) if m.command.field == CommandField::CCancelRq => {
            Ok(m.command.message_id_being_responded_to == message_id
                || m.command.message_id_being_responded_to.is_none())
        }
        Incoming::Message(m) => Err(DimseError::Protocol(format!(
            "{} arrived while a C-FIND was outstanding",
            m.command.field
        ))),
        Incoming::Aborted(_) => Err(DimseError::ConnectionClosed),
        _ => Err(DimseError::Protocol(
            "release requested during a C-FIND".into(),
        )),
    }
}
