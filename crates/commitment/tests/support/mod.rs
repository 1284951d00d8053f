//! A deliberately minimal Storage Commitment SCP for the tests, built on
//! `dimse::scp`: it answers each N-ACTION, then reports (or not) as told, on the
//! same association or on a new one to the SCU's listener. Associations are
//! served one at a time; every wait is bounded.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::Pdu;
use dimse::scp::{AcceptOptions, ContextDecision, ScpStream};
use dimse::{
    AeTitle, Command, CommandField, Incoming, MessageReader, PduChannel, PeerAddress, ScuOptions,
    Status, Timeouts,
};
use parking_lot::Mutex;

/// The SCP's AE title.
pub const SCP_AE: &str = "COMMIT_SCP";
/// Every wait of the SCP.
const WAIT: Duration = Duration::from_secs(5);

/// What the SCP reports.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Event type 1, every instance committed.
    AllCommitted,
    /// Event type 2: the instances at these indices fail with these reasons.
    FailSome(Vec<(usize, u16)>),
    /// Leaves out the last instance and names one never asked for.
    Skewed,
    /// A report for a transaction UID of its own.
    OtherTransaction,
    /// No report at all.
    NeverReport,
    /// A report whose event information cannot be read.
    Malformed,
    /// The N-ACTION refused with this status and no report.
    RefuseAction(u16),
}

/// Where the SCP reports.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// On the N-ACTION's association.
    SameAssociation,
    /// On a new association to `listener`, calling `called`, offering role
    /// selection for the Push Model or not.
    NewAssociation {
        listener: SocketAddr,
        called: String,
        role_selection: bool,
    },
    /// On a new association to the listener whose address is set in the cell
    /// once known (a listener the committer starts itself), with role selection.
    NewAssociationLater {
        listener: Arc<Mutex<Option<SocketAddr>>>,
        called: String,
    },
}

/// A running test SCP.
pub struct TestScp {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// The statuses of the N-EVENT-REPORT-RSPs it received.
    pub report_answers: Arc<Mutex<Vec<Status>>>,
    /// The transaction UIDs of the N-ACTIONs it received.
    pub actions: Arc<Mutex<Vec<String>>>,
}

impl TestScp {
    pub fn start(behaviour: Behaviour, delivery: Delivery) -> TestScp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let report_answers = Arc::new(Mutex::new(Vec::new()));
        let actions = Arc::new(Mutex::new(Vec::new()));
        let (s, r, a) = (stop.clone(), report_answers.clone(), actions.clone());
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                serve(stream, &behaviour, &delivery, &r, &a);
            }
        });
        TestScp {
            addr,
            stop,
            handle: Some(handle),
            report_answers,
            actions,
        }
    }

    pub fn address(&self) -> PeerAddress {
        PeerAddress::new("127.0.0.1", self.addr.port())
    }
}

impl Drop for TestScp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn serve(
    tcp: TcpStream,
    behaviour: &Behaviour,
    delivery: &Delivery,
    answers: &Mutex<Vec<Status>>,
    actions: &Mutex<Vec<String>>,
) {
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp.set_write_timeout(Some(WAIT)).unwrap();
    let mut stream = ScpStream::Plain(tcp);
    let Ok(request) = dimse::scp::read_associate_request(&mut stream, Instant::now() + WAIT) else {
        return;
    };
    let Ok(mut association) = dimse::scp::accept(stream, &request, &AcceptOptions::new(), |pc| {
        ContextDecision::Accept {
            transfer_syntax: pc.transfer_syntaxes[0].clone(),
        }
    }) else {
        return;
    };
    let mut reader = MessageReader::new();
    loop {
        let message = match reader.receive(&mut association) {
            Ok(Incoming::Message(message)) => message,
            Ok(Incoming::ReleaseRequested) => {
                let _ = association.send_pdu(&Pdu::ReleaseRP);
                return;
            }
            _ => return,
        };
        if message.command.field != CommandField::NActionRq {
            return;
        }
        let pc = message.presentation_context_id;
        let ts = association
            .accepted_context(pc)
            .unwrap()
            .transfer_syntax
            .clone();
        let (transaction, instances) = read_action(message.data.as_deref().unwrap(), &ts);
        actions.lock().push(transaction.clone());
        if let Behaviour::RefuseAction(code) = behaviour {
            let response = Command::response_to(&message.command, Status(*code), false)
                .unwrap()
                .with_error_comment("SOP class not supported here");
            let _ = dimse::send_message(&mut association, pc, &response, None);
            continue;
        }
        let response = Command::response_to(&message.command, Status::SUCCESS, false).unwrap();
        if dimse::send_message(&mut association, pc, &response, None).is_err() {
            return;
        }
        let Some((event_type, data)) = report(behaviour, &transaction, &instances, &ts) else {
            continue;
        };
        match delivery {
            Delivery::SameAssociation => {
                let rq = Command::n_event_report_rq(
                    1,
                    uids::STORAGE_COMMITMENT_PUSH_MODEL,
                    uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
                    event_type,
                    true,
                );
                if dimse::send_message(&mut association, pc, &rq, Some(&data)).is_err() {
                    return;
                }
                match reader.receive(&mut association) {
                    Ok(Incoming::Message(rsp))
                        if rsp.command.field == CommandField::NEventReportRsp =>
                    {
                        answers.lock().push(rsp.command.status.unwrap());
                    }
                    _ => return,
                }
            }
            Delivery::NewAssociation { .. } | Delivery::NewAssociationLater { .. } => {
                let (listener, called, role_selection) = match delivery {
                    Delivery::NewAssociation {
                        listener,
                        called,
                        role_selection,
                    } => (*listener, called, *role_selection),
                    Delivery::NewAssociationLater { listener, called } => {
                        let Some(listener) = *listener.lock() else {
                            return;
                        };
                        (listener, called, true)
                    }
                    Delivery::SameAssociation => unreachable!(),
                };
                if let Some(status) = report_on_new_association(
                    listener,
                    called,
                    role_selection,
                    event_type,
                    behaviour,
                    &transaction,
                    &instances,
                ) {
                    answers.lock().push(status);
                }
            }
        }
    }
}

fn report_on_new_association(
    listener: SocketAddr,
    called: &str,
    role_selection: bool,
    event_type: u16,
    behaviour: &Behaviour,
    transaction: &str,
    instances: &[(String, String)],
) -> Option<Status> {
    let mut scu = ScuOptions::new(
        PeerAddress::new("127.0.0.1", listener.port()),
        AeTitle::new(SCP_AE).unwrap(),
        AeTitle::new(called).unwrap(),
    )
    .timeouts(Timeouts::all(WAIT))
    .propose(
        uids::STORAGE_COMMITMENT_PUSH_MODEL,
        [uids::IMPLICIT_VR_LITTLE_ENDIAN.to_string()],
    );
    if role_selection {
        // dimse offers SCU=1/SCP=1; real SCPs send SCU=0/SCP=1, granted alike.
        scu = scu.offer_scp_role(uids::STORAGE_COMMITMENT_PUSH_MODEL);
    }
    let mut association = scu.establish().ok()?;
    let pc = association
        .accepted_context(uids::STORAGE_COMMITMENT_PUSH_MODEL)?
        .id;
    let (_, data) = report(
        behaviour,
        transaction,
        instances,
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
    )?;
    let id = association.next_message_id();
    let rq = Command::n_event_report_rq(
        id,
        uids::STORAGE_COMMITMENT_PUSH_MODEL,
        uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
        event_type,
        true,
    );
    association.send(pc, &rq, Some(&data)).ok()?;
    let status = association
        .expect_response(id, CommandField::NEventReportRsp)
        .ok()?
        .status;
    let _ = association.release();
    Some(status)
}

fn read_action(data: &[u8], ts: &str) -> (String, Vec<(String, String)>) {
    let ts = TransferSyntaxRegistry.get(dimse::trim_value(ts)).unwrap();
    let object = InMemDicomObject::read_dataset_with_ts(data, ts).unwrap();
    let text = |o: &InMemDicomObject, tag| {
        dimse::trim_value(&o.get(tag).unwrap().to_str().unwrap()).to_string()
    };
    let instances = object
        .get(tags::REFERENCED_SOP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .iter()
        .map(|item| {
            (
                text(item, tags::REFERENCED_SOP_CLASS_UID),
                text(item, tags::REFERENCED_SOP_INSTANCE_UID),
            )
        })
        .collect();
    (text(&object, tags::TRANSACTION_UID), instances)
}

fn item(class: &str, instance: &str, reason: Option<u16>) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    item.put(DataElement::new(
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(class),
    ));
    item.put(DataElement::new(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(instance),
    ));
    if let Some(reason) = reason {
        item.put(DataElement::new(
            tags::FAILURE_REASON,
            VR::US,
            PrimitiveValue::from(reason),
        ));
    }
    item
}

/// The event type and encoded event information `behaviour` reports.
fn report(
    behaviour: &Behaviour,
    transaction: &str,
    instances: &[(String, String)],
    ts: &str,
) -> Option<(u16, Vec<u8>)> {
    let mut committed: Vec<InMemDicomObject> = Vec::new();
    let mut failed: Vec<InMemDicomObject> = Vec::new();
    let mut transaction = transaction.to_string();
    match behaviour {
        Behaviour::NeverReport | Behaviour::RefuseAction(_) => return None,
        Behaviour::Malformed => {
            // Transaction UID (0008,1195), UI, claiming 100 bytes but carrying 4.
            let mut bytes = vec![0x08, 0x00, 0x95, 0x11];
            if dimse::trim_value(ts) == uids::EXPLICIT_VR_LITTLE_ENDIAN {
                bytes.extend_from_slice(b"UI");
                bytes.extend_from_slice(&100u16.to_le_bytes());
            } else {
                bytes.extend_from_slice(&100u32.to_le_bytes());
            }
            bytes.extend_from_slice(b"1.2.");
            return Some((1, bytes));
        }
        Behaviour::AllCommitted | Behaviour::OtherTransaction => {
            if matches!(behaviour, Behaviour::OtherTransaction) {
                transaction = dimse::new_uid();
            }
            committed = instances.iter().map(|(c, i)| item(c, i, None)).collect();
        }
        Behaviour::FailSome(failures) => {
            for (index, (c, i)) in instances.iter().enumerate() {
                match failures.iter().find(|(at, _)| *at == index) {
                    Some((_, reason)) => failed.push(item(c, i, Some(*reason))),
                    None => committed.push(item(c, i, None)),
                }
            }
        }
        Behaviour::Skewed => {
            committed = instances[..instances.len() - 1]
                .iter()
                .map(|(c, i)| item(c, i, None))
                .collect();
            committed.push(item(uids::CT_IMAGE_STORAGE, "2.25.999", None));
        }
    }
    let event_type = if failed.is_empty() { 1 } else { 2 };
    let mut object = InMemDicomObject::new_empty();
    object.put(DataElement::new(
        tags::TRANSACTION_UID,
        VR::UI,
        PrimitiveValue::from(transaction.as_str()),
    ));
    if !committed.is_empty() {
        object.put(DataElement::new(
            tags::REFERENCED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(committed),
        ));
    }
    if !failed.is_empty() {
        object.put(DataElement::new(
            tags::FAILED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(failed),
        ));
    }
    let ts = TransferSyntaxRegistry.get(dimse::trim_value(ts)).unwrap();
    let mut bytes = Vec::new();
    object.write_dataset_with_ts(&mut bytes, ts).unwrap();
    Some((event_type, bytes))
}
