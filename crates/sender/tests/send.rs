//! Single sends against the simulator: outcomes, statuses, faults, conversions.

mod common;

use std::time::{Duration, Instant};

use common::{
    assert_ended_within, associations, ct_files, large_ct_file, options, simulator, store_one,
    stored_bytes, stored_data_sets,
};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dimse::Status;
use loader::synth::Encoding;
use sender::UidStrategy;
use sender::{FRESH_UID_LEN, Outcome, PreparedInstance, SenderError};
use simulator::{FaultPlan, StatusOverride, StoreSelection};

/// Every C-STORE answered with `status`.
fn answer_every_store_with(status: Status) -> FaultPlan {
    FaultPlan {
        status_override: Some(StatusOverride {
            status,
            selection: StoreSelection::EveryNth(1),
        }),
        ..FaultPlan::default()
    }
}

fn file_body(path: &std::path::Path) -> Vec<u8> {
    let instance = PreparedInstance::from_file(path, UidStrategy::AsIs).unwrap();
    instance.primary().unwrap().bytes().to_vec()
}

#[test]
fn ping_answers_with_a_round_trip_time() {
    let sim = simulator(FaultPlan::default());
    let echo = options(sim.addr()).build().unwrap().ping().unwrap();
    assert_eq!(echo.status, Status::SUCCESS);
    assert!(echo.round_trip > Duration::ZERO && echo.round_trip < Duration::from_secs(1));
}

#[test]
fn a_stored_file_arrives_byte_for_byte() {
    let (sim, outcome, file, _dir) =
        store_one(FaultPlan::default(), Encoding::ExplicitVrLittleEndian);
    assert_eq!(outcome.outcome, Outcome::Success);
    assert_eq!(outcome.status, Some(Status::SUCCESS));
    assert!(outcome.bytes > 50_000, "{}", outcome.bytes);
    let body = file_body(&file);
    assert_eq!(sim.stats().stores.bytes, body.len() as u64);
    assert_eq!(stored_bytes(&sim), vec![body]);
}

#[test]
fn a_refusal_status_is_a_failure_that_keeps_its_code() {
    let (_sim, outcome, _, _dir) = store_one(
        answer_every_store_with(Status(0xA700)),
        Encoding::ExplicitVrLittleEndian,
    );
    assert_eq!(outcome.outcome, Outcome::Failure);
    assert_eq!(outcome.status, Some(Status(0xA700)));
    assert!(outcome.error.unwrap().contains("out of resources"));
}

#[test]
fn a_warning_status_counts_as_delivered_with_a_warning() {
    let (_sim, outcome, _, _dir) = store_one(
        answer_every_store_with(Status(0xB007)),
        Encoding::ExplicitVrLittleEndian,
    );
    assert_eq!(outcome.outcome, Outcome::Warning);
    assert!(outcome.is_delivered());
}

#[test]
fn a_silent_peer_makes_the_store_unknown_within_the_dimse_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), 1, Encoding::ExplicitVrLittleEndian);
    let sim = simulator(FaultPlan {
        stall_stores: true,
        ..FaultPlan::default()
    });
    let sender = options(sim.addr())
        .dimse_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcome = sender.send_file(&files[0]).unwrap();
    assert_eq!(outcome.outcome, Outcome::Unknown);
    assert_eq!(outcome.status, None);
    assert!(outcome.error.unwrap().contains("timed out"));
    assert_ended_within(started, Duration::from_secs(3));
}

#[test]
fn an_abort_in_the_middle_of_a_large_data_set_is_not_counted_as_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = large_ct_file(dir.path(), 2048);
    // 8 MB of pixels: the abort comes while most of them are still to be written.
    let sim = simulator(FaultPlan {
        abort_mid_data_set: Some(64 * 1024),
        ..FaultPlan::default()
    });
    let outcome = options(sim.addr())
        .build()
        .unwrap()
        .send_file(&path)
        .unwrap();
    assert!(
        matches!(outcome.outcome, Outcome::Failure | Outcome::Unknown),
        "{outcome:?}"
    );
    assert_eq!(outcome.status, None);
    assert_eq!(sim.stats().stores.received, 0);
    assert!(sim.stored_instances().is_empty());
}

#[test]
fn a_rejected_association_names_result_source_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), 1, Encoding::ExplicitVrLittleEndian);
    // An AE title no route answers: the simulator rejects it as a router does.
    let sim = simulator(FaultPlan::default());
    let sender = options(sim.addr())
        .called_ae_title("WRONG-AE")
        .build()
        .unwrap();
    match sender.send_file(&files[0]) {
        Err(SenderError::Rejected {
            description,
            called,
            ..
        }) => {
            assert_eq!(called, "WRONG-AE");
            assert!(description.contains("permanent"), "{description}");
            assert!(description.contains("service user"), "{description}");
            assert!(
                description.to_lowercase().contains("called ae title"),
                "{description}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_closed_port_is_a_connect_error_naming_the_peer() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let err = options(&address).build().unwrap().ping().unwrap_err();
    assert!(matches!(err, SenderError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(&address), "{err}");
}

#[test]
fn a_compressed_file_is_decompressed_for_a_peer_that_takes_only_uncompressed() {
    // The test simulator takes only uncompressed transfer syntaxes.
    let (sim, outcome, _, _dir) = store_one(FaultPlan::default(), Encoding::RleLossless);
    assert_eq!(outcome.outcome, Outcome::Success, "{outcome:?}");
    let received = stored_data_sets(&sim);
    let pixels = received[0]
        .element(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(pixels.len(), 160 * 160 * 2, "native 16-bit pixels");
}

#[test]
fn fresh_uids_change_only_the_three_uids() {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), 1, Encoding::ExplicitVrLittleEndian);
    let instance = PreparedInstance::from_file(&files[0], UidStrategy::Fresh).unwrap();
    let sim = simulator(FaultPlan::default());
    let outcome = options(sim.addr())
        .build()
        .unwrap()
        .send_prepared(&instance)
        .unwrap();
    assert_eq!(outcome.outcome, Outcome::Success);

    let stored = stored_data_sets(&sim);
    assert_eq!(stored.len(), 1);
    let sent: &InMemDicomObject = &stored[0];
    let original = dicom_object::open_file(&files[0]).unwrap().into_inner();
    let text = |o: &InMemDicomObject, tag| o.element(tag).unwrap().to_str().unwrap().to_string();
    for tag in [
        tags::STUDY_INSTANCE_UID,
        tags::SERIES_INSTANCE_UID,
        tags::SOP_INSTANCE_UID,
    ] {
        let uid = text(sent, tag);
        assert_eq!(uid.len(), FRESH_UID_LEN, "{uid}");
        assert_ne!(uid, text(&original, tag));
    }
    for tag in [tags::PATIENT_ID, tags::MODALITY, tags::SOP_CLASS_UID] {
        assert_eq!(text(sent, tag), text(&original, tag));
    }
    assert_eq!(
        sent.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap(),
        original
            .element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap()
    );
    assert_eq!(instance.sop_class_uid(), uids::CT_IMAGE_STORAGE);
}

#[test]
fn a_non_dicom_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not DICOM at all").unwrap();
    let sim = simulator(FaultPlan::default());
    let err = options(sim.addr())
        .build()
        .unwrap()
        .send_file(&path)
        .unwrap_err();
    assert!(matches!(err, SenderError::File { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert_eq!(associations(&sim), 0, "nothing is sent for a bad file");
}

#[test]
fn an_in_memory_data_set_is_stored_as_encoded_in_its_transfer_syntax() {
    let object = loader::synth::InstanceBuilder::new(loader::synth::Modality::Mr)
        .seed(3)
        .build()
        .unwrap();
    let sim = simulator(FaultPlan::default());
    let outcome = options(sim.addr())
        .build()
        .unwrap()
        .send_dataset(&object)
        .unwrap();
    assert_eq!(outcome.outcome, Outcome::Success, "{outcome:?}");
    let ts = dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut expected = Vec::new();
    object.write_dataset_with_ts(&mut expected, &ts).unwrap();
    assert_eq!(sim.stats().stores.bytes, expected.len() as u64);
    assert_eq!(stored_bytes(&sim), vec![expected]);
}

#[test]
fn an_inspected_file_reads_the_same_data_set_as_a_prepared_one_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let path = &ct_files(dir.path(), 1, Encoding::ExplicitVrLittleEndian)[0];
    let read = PreparedInstance::from_file(path, UidStrategy::AsIs).unwrap();
    let inspected = PreparedInstance::inspect(path, UidStrategy::AsIs).unwrap();
    assert!(read.is_resident() && !inspected.is_resident());
    assert_eq!(inspected.sop_instance_uid(), read.sop_instance_uid());
    assert_eq!(inspected.transfer_syntax(), read.transfer_syntax());
    assert_eq!(inspected.encoded_len(), read.encoded_len());
    assert_eq!(
        inspected.primary().unwrap().bytes(),
        read.primary().unwrap().bytes()
    );
    let fresh = PreparedInstance::inspect(path, UidStrategy::Fresh).unwrap();
    let variant = fresh.primary().unwrap();
    assert_eq!(
        variant.bytes().len(),
        PreparedInstance::from_file(path, UidStrategy::Fresh)
            .unwrap()
            .encoded_len()
    );
}
