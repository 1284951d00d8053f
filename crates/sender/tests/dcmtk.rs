//! Against DCMTK's storescp (skipped, with the reason printed, when it is not
//! installed): delivery byte for byte, rejection, abort, slow peer, decompression.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{StoreScp, assert_ended_within, ct_files, options};
use dicom_dictionary_std::{tags, uids};
use loader::synth::Encoding;
use sender::UidStrategy;
use sender::{LoadPlan, NoObserver, Outcome, PreparedInstance, SenderError, StopAfter, run_load};

fn received_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn files_stored_to_storescp_arrive_with_identical_data_sets() {
    let out = tempfile::tempdir().unwrap();
    let Some(scp) = StoreScp::start(&["-od", out.path().to_str().unwrap()]) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let files = ct_files(src.path(), 3, Encoding::ExplicitVrLittleEndian);
    let instances: Vec<_> = files
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, UidStrategy::AsIs).unwrap()))
        .collect();
    let report = run_load(
        &options(&scp.address).build().unwrap(),
        &LoadPlan::new(instances.clone()),
        &NoObserver,
    )
    .unwrap();
    assert_eq!(report.metrics.counts.succeeded, 3);
    let mut sent: Vec<Vec<u8>> = instances
        .iter()
        .map(|i| i.primary().unwrap().bytes().to_vec())
        .collect();
    let mut received: Vec<Vec<u8>> = received_files(out.path())
        .iter()
        .map(|f| {
            PreparedInstance::from_file(f, UidStrategy::AsIs)
                .unwrap()
                .primary()
                .unwrap()
                .bytes()
                .to_vec()
        })
        .collect();
    sent.sort();
    received.sort();
    assert_eq!(received, sent);
}

#[test]
fn a_refusing_storescp_is_reported_as_a_permanent_rejection_by_the_service_user() {
    let Some(scp) = StoreScp::start(&["--refuse"]) else {
        return;
    };
    match options(&scp.address).build().unwrap().ping() {
        Err(SenderError::Rejected { description, .. }) => {
            assert!(
                description.starts_with("permanent rejection by the service user"),
                "{description}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn aborts_during_the_data_set_are_never_counted_as_delivered_and_the_run_goes_on() {
    let Some(scp) = StoreScp::start(&["--ignore", "--abort-during"]) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let files = ct_files(src.path(), 1, Encoding::ExplicitVrLittleEndian);
    let instance = Arc::new(PreparedInstance::from_file(&files[0], UidStrategy::AsIs).unwrap());
    let plan = LoadPlan::new(vec![instance]).stop_after(StopAfter::Count(4));
    let report = run_load(&options(&scp.address).build().unwrap(), &plan, &NoObserver).unwrap();
    assert!(report.is_consistent());
    let c = report.metrics.counts;
    assert_eq!(c.attempted, 4);
    assert_eq!(c.failed + c.unknown, 4, "{c:?}");
    assert!(
        report.associations.opened >= 4,
        "a new association for every send after an abort"
    );
}

#[test]
fn a_storescp_sleeping_past_the_dimse_timeout_leaves_the_store_unknown() {
    let Some(scp) = StoreScp::start(&["--ignore", "--sleep-during", "3"]) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let files = ct_files(src.path(), 1, Encoding::ExplicitVrLittleEndian);
    let sender = options(&scp.address)
        .dimse_timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let started = Instant::now();
    let outcome = sender.send_file(&files[0]).unwrap();
    assert_eq!(outcome.outcome, Outcome::Unknown, "{outcome:?}");
    assert_ended_within(started, Duration::from_secs(3));
}

#[test]
fn a_compressed_file_reaches_an_uncompressed_only_storescp_decompressed() {
    let out = tempfile::tempdir().unwrap();
    let Some(scp) = StoreScp::start(&["-od", out.path().to_str().unwrap()]) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    let files = ct_files(src.path(), 1, Encoding::RleLossless);
    let outcome = options(&scp.address)
        .build()
        .unwrap()
        .send_file(&files[0])
        .unwrap();
    assert_eq!(outcome.outcome, Outcome::Success, "{outcome:?}");
    let received = dicom_object::open_file(&received_files(out.path())[0]).unwrap();
    assert_eq!(
        received.meta().transfer_syntax().trim_end_matches('\0'),
        uids::EXPLICIT_VR_LITTLE_ENDIAN
    );
    let pixels = received
        .element(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_eq!(pixels.len(), 160 * 160 * 2);
}
