//! The sink's listener against a real SCU over loopback: echo, stores matched and
//! compared, a wrong called AE title refused, garbage answered and recorded, a
//! silent client dropped, shutdown with an association open. Every wait is bounded.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::{
    AeTitle, AssociateError, Command, CommandField, PeerAddress, Priority, ScuAssociation,
    ScuOptions, Status, Timeouts,
};
use metrics::Outcome;
use sink::{
    ExpectedSend, Ledger, LedgerOptions, OriginalId, OriginalSource, SentInstance, Sink,
    SinkOptions,
};

const CALLING: &str = "TEST_ROUTER";
/// A generous upper bound for anything that should end quickly.
const BOUND: Duration = Duration::from_secs(20);

fn start(options: SinkOptions) -> (Sink, Arc<Ledger>) {
    let ledger = Ledger::new(LedgerOptions::new());
    let sink = Sink::start(options.comparators(2), ledger.clone()).expect("the sink starts");
    (sink, ledger)
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        acse: Duration::from_secs(5),
        dimse: Duration::from_secs(10),
        write: Duration::from_secs(10),
    }
}

fn scu_options(sink: &Sink, called: &str) -> ScuOptions {
    ScuOptions::new(
        PeerAddress::new("127.0.0.1", sink.port()),
        AeTitle::new(CALLING).unwrap(),
        AeTitle::new(called).unwrap(),
    )
    .timeouts(timeouts())
    .propose_verification()
    .propose(uids::CT_IMAGE_STORAGE, [uids::EXPLICIT_VR_LITTLE_ENDIAN])
}

fn connect(sink: &Sink) -> ScuAssociation {
    scu_options(sink, sink.ae_title().as_str())
        .establish()
        .expect("the sink accepts its own AE title")
}

fn instance(uid: &str) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    object.put_str(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE);
    object.put_str(tags::SOP_INSTANCE_UID, VR::UI, uid);
    object.put_str(tags::PATIENT_NAME, VR::PN, "Doe^Jane");
    object.put_str(tags::STUDY_DESCRIPTION, VR::LO, "HEAD");
    for (tag, value) in [
        (tags::ROWS, 2u16),
        (tags::COLUMNS, 2),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 16),
        (tags::HIGH_BIT, 15),
        (tags::PIXEL_REPRESENTATION, 0),
        (tags::SAMPLES_PER_PIXEL, 1),
    ] {
        object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    object.put_str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16([1u16, 2, 3, 4].into_iter().collect()),
    ));
    object
}

/// Registers `uid` as an original and expects one send of it.
fn track(ledger: &Ledger, uid: &str) -> (OriginalId, sink::Ticket) {
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
        .media_storage_sop_instance_uid(uid)
        .build()
        .unwrap();
    let original = SentInstance::from_object(instance(uid).with_exact_meta(meta)).unwrap();
    let id = ledger.add_original(OriginalSource::Loaded(original));
    let ticket = ledger
        .expect(ExpectedSend {
            original: id,
            substitutions: Vec::new(),
            route: Arc::from("ROUTE"),
            trace: None,
        })
        .unwrap();
    (id, ticket)
}

fn encoded(object: &InMemDicomObject) -> Vec<u8> {
    let mut bytes = Vec::new();
    object
        .write_dataset_with_ts(&mut bytes, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    bytes
}

fn store(association: &mut ScuAssociation, uid: &str, data: &[u8]) -> Status {
    let context = association
        .accepted_context(uids::CT_IMAGE_STORAGE)
        .expect("CT storage accepted")
        .id;
    let id = association.next_message_id();
    let rq = Command::c_store_rq(id, uids::CT_IMAGE_STORAGE, uid, Priority::Medium);
    association.send(context, &rq, Some(data)).unwrap();
    association
        .expect_response(id, CommandField::CStoreRsp)
        .unwrap()
        .status
}

/// Polls `condition` until it holds or [`BOUND`] passes.
fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + BOUND;
    while Instant::now() < until {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

#[test]
fn a_c_echo_is_answered() {
    let (sink, _ledger) = start(SinkOptions::new());
    let mut association = connect(&sink);
    assert_eq!(association.echo().unwrap(), Status::SUCCESS);
    association.release().unwrap();
    assert!(
        eventually(|| sink.stats().released == 1),
        "{:?}",
        sink.stats()
    );
    let stats = sink.stats();
    assert_eq!(stats.echoes, 1);
    assert_eq!(stats.associations_accepted, 1);
    sink.shutdown();
}

#[test]
fn c_stores_of_a_few_instances_arrive_are_matched_and_settle_clean() {
    let (sink, ledger) = start(SinkOptions::new());
    let mut association = connect(&sink);
    for i in 0..5 {
        let uid = format!("2.25.31{i}");
        let (_, ticket) = track(&ledger, &uid);
        let status = store(&mut association, &uid, &encoded(&instance(&uid)));
        assert_eq!(status, Status::SUCCESS);
        ledger.answered(ticket, Outcome::Success, Instant::now());
    }
    association.release().unwrap();
    let report = ledger.settle(BOUND);
    assert!(report.consistent, "{}", report.counts.invariant());
    assert!(report.clean, "{:?}", report.problems);
    assert_eq!(report.counts.delivered, 5);
    assert_eq!(sink.stats().stores, 5);
    sink.shutdown();
}

#[test]
fn an_association_calling_another_ae_title_is_refused_and_counted() {
    let (sink, ledger) = start(SinkOptions::new());
    let error = scu_options(&sink, "SOMEONE_ELSE")
        .establish()
        .expect_err("another AE title is refused");
    match &error {
        AssociateError::Rejected { description, .. } => assert!(
            description.contains("called AE title not recognized"),
            "{description}"
        ),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(error.to_string().contains("rejected"), "{error}");
    assert!(!error.is_transient(), "the refusal is permanent");
    assert!(eventually(|| sink.stats().refused_called_ae_title == 1));
    assert_eq!(sink.stats().associations_accepted, 0);
    // The sink still serves its own AE title.
    let mut association = connect(&sink);
    assert_eq!(association.echo().unwrap(), Status::SUCCESS);
    association.release().unwrap();
    assert!(ledger.snapshot().clean);
    sink.shutdown();
}

#[test]
fn a_garbage_data_set_is_answered_recorded_as_corrupt_and_the_sink_keeps_serving() {
    let (sink, ledger) = start(SinkOptions::new());
    let (_, ticket) = track(&ledger, "2.25.4242");
    let mut association = connect(&sink);
    let garbage: Vec<u8> = (0..2048u32).map(|i| (i * 37 % 251) as u8).collect();
    let status = store(&mut association, "2.25.4242", &garbage);
    assert_eq!(status, Status::SUCCESS, "answered without judging");
    ledger.answered(ticket, Outcome::Success, Instant::now());
    association.release().unwrap();

    let report = ledger.settle(BOUND);
    assert!(report.consistent, "{}", report.counts.invariant());
    assert_eq!(report.counts.delivered, 1);
    assert_eq!(report.counts.corrupt, 1);
    assert_eq!(report.problems_named("corrupt").len(), 1);

    let mut next = connect(&sink);
    assert_eq!(next.echo().unwrap(), Status::SUCCESS);
    next.release().unwrap();
    sink.shutdown();
}

#[test]
fn a_silent_client_is_dropped_after_the_artim_timeout() {
    let (sink, _ledger) = start(SinkOptions::new().artim_timeout(Duration::from_millis(300)));
    let mut stream = TcpStream::connect(sink.local_addr()).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    // Ends with the sink closing the connection (after an A-ABORT, if any).
    let end = stream.read_to_end(&mut received);
    let waited = started.elapsed();
    if let Err(error) = &end {
        assert!(
            !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the sink never dropped the silent client: {error}"
        );
    }
    assert!(waited < BOUND, "dropped after {waited:?}");
    assert!(
        received.is_empty() || received[0] == 0x07,
        "nothing but an A-ABORT: {received:?}"
    );
    assert!(eventually(|| sink.stats().refused_bad_request == 1));
    sink.shutdown();
}

#[test]
fn shutdown_returns_promptly_with_an_association_open() {
    let (sink, _ledger) = start(SinkOptions::new());
    let mut association = connect(&sink);
    assert_eq!(association.echo().unwrap(), Status::SUCCESS);
    let (done, finished) = mpsc::channel();
    let stopper = std::thread::spawn(move || {
        sink.shutdown();
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(BOUND).is_ok(),
        "shutdown hung with an association open"
    );
    stopper.join().unwrap();
    // The association is gone.
    assert!(association.echo().is_err());
}
