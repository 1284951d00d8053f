//! Storage Commitment Push Model as SCP (PS3.4 Annex J): the N-ACTION-RQ
//! "Request Storage Commitment" (action type 1) on the well-known SOP instance is
//! checked and answered at once, then each referenced instance is looked up in the
//! store and the N-EVENT-REPORT-RQ (event type 1 all committed, 2 failures exist)
//! goes either on the same association or on one the simulator opens to the
//! requestor (its AE title looked up in `[[move_destination]]`), as the rules'
//! `commitment_report` says.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::thread;
use std::time::Duration;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::Pdu;
use dimse::{
    AeTitle, Command, CommandField, DimseError, Incoming, Message, MessageReader, PduChannel,
    PeerAddress, Status, Timeouts,
};
use parking_lot::Mutex;

use super::{Association, End, Flow, Shared, pause, respond};
use crate::rules::{CommitmentReport, MoveDestination};
use crate::stats::Counters;
use crate::store::ImageStore;
use crate::values::text;

/// Action Type ID of "Request Storage Commitment" (PS3.4 J.3.2).
pub(super) const ACTION_REQUEST_COMMITMENT: u16 = 1;
/// Event Type ID: storage commitment request successful (all committed).
const EVENT_ALL_COMMITTED: u16 = 1;
/// Event Type ID: storage commitment request complete, failures exist.
const EVENT_FAILURES_EXIST: u16 = 2;

// Failure Reasons (0008,1197) of a report (PS3.4 J.3.3.1): status codes.
const REASON_PROCESSING_FAILURE: u16 = Status::PROCESSING_FAILURE.0;
const REASON_NO_SUCH_OBJECT_INSTANCE: u16 = Status::NO_SUCH_SOP_INSTANCE.0;
const REASON_CLASS_INSTANCE_CONFLICT: u16 = Status::CLASS_INSTANCE_CONFLICT.0;

/// Message IDs of the N-EVENT-REPORT-RQs the simulator sends on the requestor's
/// own associations (never 0).
static NEXT_REPORT_ID: AtomicU16 = AtomicU16::new(1);

fn next_report_id() -> u16 {
    loop {
        let id = NEXT_REPORT_ID.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// One instance of the Referenced SOP Sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Referenced {
    sop_class_uid: String,
    sop_instance_uid: String,
}

/// A readable request: its transaction and the instances it names.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    transaction_uid: String,
    instances: Vec<Referenced>,
}

/// What the store says about a request.
#[derive(Debug, Default)]
struct Verdict {
    committed: Vec<Referenced>,
    failed: Vec<(Referenced, u16)>,
    failed_by_fault: u64,
}

/// Reads the N-ACTION-RQ: the action type, the instance acted on, then the
/// action information. A refusal is the N-ACTION status with its ErrorComment.
fn parse(
    command: &Command,
    data: Option<&[u8]>,
    ts_uid: &str,
) -> Result<Request, (Status, String)> {
    match command.action_type_id {
        Some(ACTION_REQUEST_COMMITMENT) => {}
        Some(other) => {
            return Err((
                Status::NO_SUCH_ACTION,
                format!("action type {other}: only 1 (request commitment)"),
            ));
        }
        None => return Err((Status::NO_SUCH_ACTION, "Action Type ID missing".into())),
    }
    let class = command.sop_class_uid.as_deref().map(dimse::trim_value);
    if class != Some(uids::STORAGE_COMMITMENT_PUSH_MODEL) {
        return Err((
            Status::NO_SUCH_SOP_CLASS,
            format!(
                "requested SOP class {} is not the Push Model",
                class.unwrap_or("(none)")
            ),
        ));
    }
    let instance = command.sop_instance_uid.as_deref().map(dimse::trim_value);
    if instance != Some(uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE) {
        return Err((
            Status::NO_SUCH_SOP_INSTANCE,
            format!(
                "requested instance {} is not 1.2.840.10008.1.20.1.1",
                instance.unwrap_or("(none)")
            ),
        ));
    }
    let Some(data) = data else {
        return Err((
            Status::PROCESSING_FAILURE,
            "no action information (data set) with the N-ACTION".into(),
        ));
    };
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return Err((
            Status::PROCESSING_FAILURE,
            format!("unknown transfer syntax {ts_uid}"),
        ));
    };
    let obj = InMemDicomObject::read_dataset_with_ts(data, ts).map_err(|e| {
        (
            Status::PROCESSING_FAILURE,
            format!("cannot read the action information: {e}"),
        )
    })?;
    let transaction_uid = text(&obj, tags::TRANSACTION_UID).unwrap_or_default();
    if transaction_uid.is_empty() {
        return Err((
            Status::INVALID_ARGUMENT_VALUE,
            "Transaction UID (0008,1195) missing or empty".into(),
        ));
    }
    let items = obj
        .get(tags::REFERENCED_SOP_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or_default();
    if items.is_empty() {
        return Err((
            Status::INVALID_ARGUMENT_VALUE,
            "Referenced SOP Sequence (0008,1199) missing or empty".into(),
        ));
    }
    let mut instances = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let uid = |tag| text(item, tag).filter(|v| !v.is_empty());
        let (Some(sop_class_uid), Some(sop_instance_uid)) = (
            uid(tags::REFERENCED_SOP_CLASS_UID),
            uid(tags::REFERENCED_SOP_INSTANCE_UID),
        ) else {
            return Err((
                Status::INVALID_ARGUMENT_VALUE,
                format!(
                    "Referenced SOP item {}: class or instance UID missing",
                    n + 1
                ),
            ));
        };
        instances.push(Referenced {
            sop_class_uid,
            sop_instance_uid,
        });
    }
    Ok(Request {
        transaction_uid,
        instances,
    })
}

/// Committed: the store holds the instance (visible or not) under that SOP class.
/// `fail_every_nth` fails the Nth, 2Nth... referenced instance of the request.
fn evaluate(store: &ImageStore, request: &Request, fail_every_nth: Option<u64>) -> Verdict {
    let mut verdict = Verdict::default();
    for (n, instance) in request.instances.iter().enumerate() {
        if fail_every_nth.is_some_and(|every| ((n + 1) as u64).is_multiple_of(every)) {
            verdict.failed_by_fault += 1;
            verdict
                .failed
                .push((instance.clone(), REASON_PROCESSING_FAILURE));
            continue;
        }
        match store.locate(&instance.sop_instance_uid) {
            None => verdict
                .failed
                .push((instance.clone(), REASON_NO_SUCH_OBJECT_INSTANCE)),
            Some((_, _, record))
                if dimse::trim_value(&record.sop_class_uid) != instance.sop_class_uid =>
            {
                verdict
                    .failed
                    .push((instance.clone(), REASON_CLASS_INSTANCE_CONFLICT));
            }
            Some(_) => verdict.committed.push(instance.clone()),
        }
    }
    verdict
}

/// The event information of the N-EVENT-REPORT-RQ (PS3.4 J.3.3 table J.3-2).
fn event_information(
    transaction_uid: &str,
    verdict: &Verdict,
    retrieve_ae_title: &str,
) -> InMemDicomObject {
    let reference = |r: &Referenced| {
        let mut item = InMemDicomObject::new_empty();
        item.put_str(tags::REFERENCED_SOP_CLASS_UID, VR::UI, &*r.sop_class_uid);
        item.put_str(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            &*r.sop_instance_uid,
        );
        item
    };
    let mut obj = InMemDicomObject::new_empty();
    obj.put_str(tags::TRANSACTION_UID, VR::UI, transaction_uid);
    obj.put_str(tags::RETRIEVE_AE_TITLE, VR::AE, retrieve_ae_title);
    if !verdict.committed.is_empty() {
        let items: Vec<_> = verdict.committed.iter().map(reference).collect();
        obj.put(DataElement::new(
            tags::REFERENCED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(items),
        ));
    }
    if !verdict.failed.is_empty() {
        let items: Vec<_> = verdict
            .failed
            .iter()
            .map(|(r, reason)| {
                let mut item = reference(r);
                item.put(DataElement::new(
                    tags::FAILURE_REASON,
                    VR::US,
                    PrimitiveValue::from(*reason),
                ));
                item
            })
            .collect();
        obj.put(DataElement::new(
            tags::FAILED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(items),
        ));
    }
    obj
}

fn encode(obj: &InMemDicomObject, ts_uid: &str) -> Result<Vec<u8>, String> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    let mut bytes = Vec::new();
    obj.write_dataset_with_ts(&mut bytes, ts)
        .map_err(|e| format!("cannot encode the event information: {e}"))?;
    Ok(bytes)
}

/// A report ready to go: its event type and information.
struct Report {
    event_type: u16,
    information: InMemDicomObject,
}

/// Serves one N-ACTION-RQ on a Storage Commitment context.
pub(super) fn handle_action(
    shared: &Shared,
    association: &mut Association,
    reader: &mut MessageReader,
    message: &Message,
    ts_uid: &str,
) -> Result<Flow, DimseError> {
    let pc_id = message.presentation_context_id;
    let command = &message.command;
    shared.counters.lock().commitments.requests += 1;
    let request = match parse(command, message.data.as_deref(), ts_uid) {
        Ok(request) => request,
        Err((status, comment)) => {
            shared.counters.lock().commitments.refused += 1;
            respond(
                shared,
                association,
                pc_id,
                command,
                status,
                Some(&comment),
                None,
            )?;
            return Ok(Flow::Continue);
        }
    };
    respond(
        shared,
        association,
        pc_id,
        command,
        Status::SUCCESS,
        None,
        None,
    )?;
    let faults = shared.faults.commitment_faults();
    if faults.never_report {
        shared.counters.lock().commitments.never_reported_by_fault += 1;
        return Ok(Flow::Continue);
    }
    let verdict = {
        let store = shared.store.read();
        evaluate(&store, &request, faults.fail_every_nth)
    };
    let transaction_uid = if faults.unknown_transaction {
        format!("2.25.{}", rand::random::<u128>())
    } else {
        request.transaction_uid.clone()
    };
    let report = Report {
        event_type: if verdict.failed.is_empty() {
            EVENT_ALL_COMMITTED
        } else {
            EVENT_FAILURES_EXIST
        },
        information: event_information(
            &transaction_uid,
            &verdict,
            association.called_ae_title().trim(),
        ),
    };
    {
        let mut c = shared.counters.lock();
        let s = &mut c.commitments;
        s.instances_committed += verdict.committed.len() as u64;
        s.instances_failed += verdict.failed.len() as u64;
        s.failed_by_fault += verdict.failed_by_fault;
        if faults.unknown_transaction {
            s.unknown_transaction_by_fault += 1;
        }
    }
    let settings = &shared.config.rules.settings;
    match settings.commitment_report {
        CommitmentReport::SameAssociation => {
            pause(shared, settings.commitment_report_delay);
            if shared.shutdown.load(Ordering::Acquire) {
                return Ok(Flow::End(End::Shutdown));
            }
            report_here(shared, association, reader, pc_id, ts_uid, &report)
        }
        CommitmentReport::NewAssociation => {
            report_elsewhere(shared, association, report);
            Ok(Flow::Continue)
        }
    }
}

/// Sends the report on the N-ACTION's association and waits (at most the
/// sub-operation timeout) for its N-EVENT-REPORT-RSP.
fn report_here(
    shared: &Shared,
    association: &mut Association,
    reader: &mut MessageReader,
    pc_id: u8,
    ts_uid: &str,
    report: &Report,
) -> Result<Flow, DimseError> {
    let bytes = encode(&report.information, ts_uid).map_err(DimseError::Protocol)?;
    let id = next_report_id();
    let rq = Command::n_event_report_rq(
        id,
        uids::STORAGE_COMMITMENT_PUSH_MODEL,
        uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
        report.event_type,
        true,
    );
    dimse::send_message(association, pc_id, &rq, Some(&bytes))?;
    shared.counters.lock().commitments.reports_same_association += 1;
    let before = association.tcp().read_timeout().ok().flatten();
    let _ = association.tcp().set_read_timeout(Some(
        shared.config.forward_timeout.max(Duration::from_millis(1)),
    ));
    let answer = wait_for_report_response(association, reader, id);
    let _ = association.tcp().set_read_timeout(before);
    let unanswered = || shared.counters.lock().commitments.reports_unanswered += 1;
    match answer {
        Ok(Answer::Status(status)) => {
            if status != Status::SUCCESS {
                shared.counters.lock().commitments.reports_refused += 1;
            }
            Ok(Flow::Continue)
        }
        Ok(Answer::Released) => {
            unanswered();
            let _ = association.send_pdu(&Pdu::ReleaseRP);
            Ok(Flow::End(End::Released))
        }
        Ok(Answer::Aborted) => {
            unanswered();
            Ok(Flow::End(End::PeerAborted))
        }
        // A late N-EVENT-REPORT-RSP is let through by the dispatcher.
        Err(e) if e.is_timeout() => {
            unanswered();
            Ok(Flow::Continue)
        }
        Err(e) => {
            unanswered();
            Err(e)
        }
    }
}

enum Answer {
    Status(Status),
    Released,
    Aborted,
}

fn wait_for_report_response(
    association: &mut Association,
    reader: &mut MessageReader,
    id: u16,
) -> Result<Answer, DimseError> {
    loop {
        match reader.receive(association)? {
            Incoming::Message(m)
                if m.command.field == CommandField::NEventReportRsp
                    && m.command.message_id_being_responded_to == Some(id) =>
            {
                return Ok(Answer::Status(
                    m.command.status.unwrap_or(Status::PROCESSING_FAILURE),
                ));
            }
            // Nothing is outstanding to cancel; a stray response is ignored.
            Incoming::Message(m)
                if m.command.field == CommandField::CCancelRq || m.command.field.is_response() => {}
            Incoming::Message(m) => {
                return Err(DimseError::Protocol(format!(
                    "{} arrived while waiting for an N-EVENT-REPORT-RSP",
                    m.command.field
                )));
            }
            Incoming::ReleaseRequested => return Ok(Answer::Released),
            Incoming::Aborted(_) => return Ok(Answer::Aborted),
            _ => {
                return Err(DimseError::Protocol(
                    "unexpected PDU while waiting for an N-EVENT-REPORT-RSP".into(),
                ));
            }
        }
    }
}

/// Everything the background delivery needs, owned.
struct Delivery {
    destination: MoveDestination,
    calling_ae_title: String,
    report: Report,
    delay: Duration,
    timeout: Duration,
    max_pdu_length: u32,
    counters: Arc<Mutex<Counters>>,
    shutdown: Arc<AtomicBool>,
}

/// Sends the report on a new association to the requestor, on a thread of its
/// own; a requestor missing from `[[move_destination]]` is an undeliverable report.
fn report_elsewhere(shared: &Shared, association: &Association, report: Report) {
    let requestor = association.calling_ae_title().trim().to_string();
    let Some(destination) = shared.config.rules.move_destination(&requestor).cloned() else {
        let mut c = shared.counters.lock();
        c.commitments.undeliverable_reports += 1;
        c.commitments.last_undeliverable = Some(format!(
            "requestor {requestor} is not in [[move_destination]]"
        ));
        return;
    };
    let delivery = Delivery {
        destination,
        calling_ae_title: association.called_ae_title().trim().to_string(),
        report,
        delay: shared.config.rules.settings.commitment_report_delay,
        timeout: shared.config.forward_timeout,
        max_pdu_length: shared.config.max_pdu_length,
        counters: shared.counters.clone(),
        shutdown: shared.shutdown.clone(),
    };
    let spawned = thread::Builder::new()
        .name("commitment-report".into())
        .spawn(move || deliver(delivery));
    match spawned {
        Ok(handle) => shared.association_threads.lock().push(handle),
        Err(e) => {
            let mut c = shared.counters.lock();
            c.commitments.undeliverable_reports += 1;
            c.commitments.last_undeliverable = Some(format!("cannot start a thread: {e}"));
        }
    }
}

/// How a delivery on a new association ended.
enum Delivered {
    Answered(Status),
    /// Sent, no answer.
    Unanswered,
    /// Never sent, with the reason.
    Undeliverable(String),
}

fn deliver(delivery: Delivery) {
    let step = Duration::from_millis(20);
    let mut left = delivery.delay;
    while !left.is_zero() && !delivery.shutdown.load(Ordering::Acquire) {
        let nap = left.min(step);
        thread::sleep(nap);
        left -= nap;
    }
    if delivery.shutdown.load(Ordering::Acquire) {
        return;
    }
    let outcome = send_on_new_association(&delivery);
    let mut c = delivery.counters.lock();
    let s = &mut c.commitments;
    match outcome {
        Delivered::Answered(status) => {
            s.reports_new_association += 1;
            if status != Status::SUCCESS {
                s.reports_refused += 1;
            }
        }
        Delivered::Unanswered => {
            s.reports_new_association += 1;
            s.reports_unanswered += 1;
        }
        Delivered::Undeliverable(why) => {
            s.undeliverable_reports += 1;
            s.last_undeliverable = Some(why);
        }
    }
}

fn send_on_new_association(delivery: &Delivery) -> Delivered {
    let d = &delivery.destination;
    let titles = AeTitle::new(&delivery.calling_ae_title)
        .and_then(|calling| AeTitle::new(&d.ae_title).map(|called| (calling, called)));
    let (calling, called) = match titles {
        Ok(titles) => titles,
        Err(e) => return Delivered::Undeliverable(format!("bad AE title: {e}")),
    };
    let options = dimse::ScuOptions::new(PeerAddress::new(d.host.clone(), d.port), calling, called)
        .timeouts(Timeouts {
            connect: Duration::from_secs(5).min(delivery.timeout),
            ..Timeouts::all(delivery.timeout)
        })
        .max_pdu_length(delivery.max_pdu_length)
        .propose(
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            [
                uids::EXPLICIT_VR_LITTLE_ENDIAN,
                uids::IMPLICIT_VR_LITTLE_ENDIAN,
            ],
        )
        // The simulator sends the N-EVENT-REPORT here: it asks for the SCP role.
        .offer_scp_role(uids::STORAGE_COMMITMENT_PUSH_MODEL);
    let mut association = match options.establish() {
        Ok(a) => a,
        Err(e) => return Delivered::Undeliverable(format!("cannot reach {}: {e}", d.ae_title)),
    };
    let Some((pc_id, ts_uid)) = association
        .accepted_context(uids::STORAGE_COMMITMENT_PUSH_MODEL)
        .map(|pc| (pc.id, dimse::trim_value(&pc.transfer_syntax).to_string()))
    else {
        association.abort();
        return Delivered::Undeliverable(format!("{} accepted no Push Model context", d.ae_title));
    };
    let bytes = match encode(&delivery.report.information, &ts_uid) {
        Ok(bytes) => bytes,
        Err(why) => {
            association.abort();
            return Delivered::Undeliverable(why);
        }
    };
    let id = association.next_message_id();
    let rq = Command::n_event_report_rq(
        id,
        uids::STORAGE_COMMITMENT_PUSH_MODEL,
        uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
        delivery.report.event_type,
        true,
    );
    if let Err(e) = association.send(pc_id, &rq, Some(&bytes)) {
        association.abort();
        return Delivered::Undeliverable(format!("cannot send the report: {e}"));
    }
    match association.expect_response(id, CommandField::NEventReportRsp) {
        Ok(response) => {
            let _ = association.release();
            Delivered::Answered(response.status)
        }
        Err(_) => {
            association.abort();
            Delivered::Unanswered
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(data: Option<&InMemDicomObject>) -> (Command, Option<Vec<u8>>) {
        let command = Command::n_action_rq(
            1,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
            ACTION_REQUEST_COMMITMENT,
            data.is_some(),
        );
        let bytes = data.map(|d| encode(d, uids::EXPLICIT_VR_LITTLE_ENDIAN).unwrap());
        (command, bytes)
    }

    fn information(transaction: Option<&str>, items: &[(&str, &str)]) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        if let Some(t) = transaction {
            obj.put_str(tags::TRANSACTION_UID, VR::UI, t);
        }
        let items: Vec<_> = items
            .iter()
            .map(|(class, instance)| {
                let mut item = InMemDicomObject::new_empty();
                if !class.is_empty() {
                    item.put_str(tags::REFERENCED_SOP_CLASS_UID, VR::UI, *class);
                }
                item.put_str(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, *instance);
                item
            })
            .collect();
        obj.put(DataElement::new(
            tags::REFERENCED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(items),
        ));
        obj
    }

    const EXPLICIT: &str = uids::EXPLICIT_VR_LITTLE_ENDIAN;

    #[test]
    fn a_good_request_is_read() {
        let info = information(Some("2.25.9"), &[(uids::CT_IMAGE_STORAGE, "1.2.3")]);
        let (command, data) = action(Some(&info));
        let request = parse(&command, data.as_deref(), EXPLICIT).unwrap();
        assert_eq!(request.transaction_uid, "2.25.9");
        assert_eq!(
            request.instances,
            [Referenced {
                sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
                sop_instance_uid: "1.2.3".into()
            }]
        );
    }

    #[test]
    fn bad_requests_get_the_n_action_failure_statuses() {
        let info = information(Some("2.25.9"), &[(uids::CT_IMAGE_STORAGE, "1.2.3")]);
        let (mut command, data) = action(Some(&info));
        command.action_type_id = Some(2);
        assert_eq!(
            parse(&command, data.as_deref(), EXPLICIT).unwrap_err().0,
            Status::NO_SUCH_ACTION
        );
        let (mut command, data) = action(Some(&info));
        command.sop_instance_uid = Some("1.2.3.4".into());
        assert_eq!(
            parse(&command, data.as_deref(), EXPLICIT).unwrap_err().0,
            Status::NO_SUCH_SOP_INSTANCE
        );
        let (command, _) = action(None);
        assert_eq!(
            parse(&command, None, EXPLICIT).unwrap_err().0,
            Status::PROCESSING_FAILURE
        );
        let (command, _) = action(None);
        assert_eq!(
            parse(&command, Some(&[0xFF; 7]), EXPLICIT).unwrap_err().0,
            Status::PROCESSING_FAILURE
        );
        let no_transaction = information(None, &[(uids::CT_IMAGE_STORAGE, "1.2.3")]);
        let (command, data) = action(Some(&no_transaction));
        let (status, comment) = parse(&command, data.as_deref(), EXPLICIT).unwrap_err();
        assert_eq!(status, Status::INVALID_ARGUMENT_VALUE);
        assert!(comment.contains("Transaction UID"), "{comment}");
        let no_class = information(Some("2.25.9"), &[("", "1.2.3")]);
        let (command, data) = action(Some(&no_class));
        assert_eq!(
            parse(&command, data.as_deref(), EXPLICIT).unwrap_err().0,
            Status::INVALID_ARGUMENT_VALUE
        );
        let empty = information(Some("2.25.9"), &[]);
        let (command, data) = action(Some(&empty));
        assert_eq!(
            parse(&command, data.as_deref(), EXPLICIT).unwrap_err().0,
            Status::INVALID_ARGUMENT_VALUE
        );
    }

    #[test]
    fn the_fault_fails_every_nth_instance_of_a_request() {
        let request = Request {
            transaction_uid: "2.25.1".into(),
            instances: (1..=4)
                .map(|i| Referenced {
                    sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
                    sop_instance_uid: format!("1.2.{i}"),
                })
                .collect(),
        };
        let verdict = evaluate(&ImageStore::default(), &request, Some(2));
        assert_eq!(verdict.failed_by_fault, 2);
        let reasons: Vec<u16> = verdict.failed.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            reasons,
            [
                REASON_NO_SUCH_OBJECT_INSTANCE,
                REASON_PROCESSING_FAILURE,
                REASON_NO_SUCH_OBJECT_INSTANCE,
                REASON_PROCESSING_FAILURE
            ]
        );
        let info = event_information("2.25.1", &verdict, "LB-R");
        assert!(info.get(tags::REFERENCED_SOP_SEQUENCE).is_none());
        let failed = info
            .get(tags::FAILED_SOP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(failed.len(), 4);
        assert_eq!(
            failed[1]
                .get(tags::FAILURE_REASON)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            REASON_PROCESSING_FAILURE
        );
    }
}
