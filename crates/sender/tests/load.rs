//! Load runs against a loopback test SCP: strategies, schedules, faults, accounting.

mod common;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, BTreeSet};

use common::{Behaviour, OriginalStudy, TestScp, ct_files, options, study_files};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::Status;
use loader::synth::Encoding;
use parking_lot::Mutex;
use sender::{AssociationStrategy, UidStrategy};
use sender::{
    LoadPlan, LoadProgress, LoadReport, NoObserver, PreparedInstance, StopAfter, run_load,
};

fn instances(n: usize, uids: UidStrategy) -> (tempfile::TempDir, Vec<Arc<PreparedInstance>>) {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), n, Encoding::ExplicitVrLittleEndian);
    let prepared = files
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, uids).unwrap()))
        .collect();
    (dir, prepared)
}

fn prepare(files: &[std::path::PathBuf], uids: UidStrategy) -> Vec<Arc<PreparedInstance>> {
    files
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, uids).unwrap()))
        .collect()
}

fn run(scp: &TestScp, plan: &LoadPlan) -> LoadReport {
    let report = run_load(&options(&scp.address).build().unwrap(), plan, &NoObserver).unwrap();
    assert!(
        report.is_consistent(),
        "accounting broken: {:?}",
        report.metrics.counts
    );
    report
}

#[test]
fn each_file_is_delivered_once_by_default() {
    let (_dir, instances) = instances(6, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let report = run(&scp, &LoadPlan::new(instances).concurrency(2));
    assert_eq!(report.metrics.counts.attempted, 6);
    assert_eq!(report.metrics.counts.succeeded, 6);
    assert!(report.all_delivered());
    assert_eq!(scp.received().len(), 6);
    assert_eq!(report.associations.opened, 2);
}

#[test]
fn per_image_strategy_opens_one_association_per_image() {
    let (_dir, instances) = instances(5, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let plan = LoadPlan::new(instances)
        .concurrency(2)
        .association(AssociationStrategy::PerImage);
    let report = run(&scp, &plan);
    assert_eq!(report.metrics.counts.succeeded, 5);
    assert_eq!(report.associations.opened, 5);
    assert_eq!(scp.associations(), 5);
}

#[test]
fn per_study_strategy_sends_each_synthetic_study_on_one_association() {
    let dir = tempfile::tempdir().unwrap();
    let files = study_files(
        dir.path(),
        &[OriginalStudy::new(1, &[3]), OriginalStudy::new(2, &[3])],
    );
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    // A copy of the first study, of the second, of the first again.
    let plan = LoadPlan::new(prepare(&files, UidStrategy::Fresh))
        .stop_after(StopAfter::Count(9))
        .association(AssociationStrategy::PerStudy);
    let report = run(&scp, &plan);
    assert_eq!(report.associations.opened, 3);
    assert_eq!(report.studies.len(), 3);
    assert!(
        report
            .studies
            .iter()
            .all(|s| s.counts.attempted == 3 && s.counts.succeeded == 3)
    );
}

#[test]
fn a_persistent_pool_reuses_one_association_per_worker() {
    let (_dir, instances) = instances(3, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(30))
        .concurrency(3);
    let report = run(&scp, &plan);
    assert_eq!(report.metrics.counts.succeeded, 30);
    assert_eq!(report.associations.opened, 3);
}

#[test]
fn an_association_is_replaced_after_its_maximum_operations() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(10))
        .max_ops_per_association(NonZeroU32::new(3));
    let report = run(&scp, &plan);
    assert_eq!(report.metrics.counts.succeeded, 10);
    assert_eq!(report.associations.opened, 4);
    assert_eq!(report.associations.recycled, 3);
}

#[test]
fn the_pool_reconnects_when_the_peer_closes_idle_associations() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::CloseWhenIdle(Duration::from_millis(100)));
    // One send every 300 ms: the peer closes the association between sends.
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(4))
        .rate(Some(3.3));
    let report = run(&scp, &plan);
    assert_eq!(
        report.metrics.counts.succeeded, 4,
        "{:?}",
        report.metrics.errors
    );
    assert!(
        report.associations.found_closed >= 2,
        "{:?}",
        report.associations
    );
}

#[test]
fn a_rejected_association_fails_its_send_and_the_run_goes_on() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::RejectFirst(1));
    let sender = options(&scp.address)
        .called_ae_title("NOT-THE-SCP")
        .build()
        .unwrap();
    let plan = LoadPlan::new(instances).stop_after(StopAfter::Count(3));
    let report = run_load(&sender, &plan, &NoObserver).unwrap();
    assert!(report.is_consistent());
    assert_eq!(report.metrics.counts.failed, 1);
    assert_eq!(report.metrics.counts.succeeded, 2);
    assert_eq!(report.associations.failed_to_open, 1);
    assert!(
        report.metrics.errors[0].message.contains("rejected"),
        "{:?}",
        report.metrics.errors
    );
}

#[test]
fn a_silent_peer_makes_every_send_unknown_and_the_run_still_ends() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::Silent);
    let sender = options(&scp.address)
        .dimse_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(3))
        .concurrency(2);
    let started = Instant::now();
    let report = run_load(&sender, &plan, &NoObserver).unwrap();
    assert!(report.is_consistent());
    assert_eq!(report.metrics.counts.unknown, 3);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn aborts_in_the_middle_of_data_sets_are_never_counted_as_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::large_ct_file(dir.path(), 1024);
    let instance = Arc::new(PreparedInstance::from_file(&path, UidStrategy::AsIs).unwrap());
    let scp = TestScp::start(Behaviour::AbortMidDataSet);
    let plan = LoadPlan::new(vec![instance]).stop_after(StopAfter::Count(3));
    let report = run(&scp, &plan);
    let c = &report.metrics.counts;
    assert_eq!(c.attempted, 3);
    assert_eq!(c.succeeded + c.warnings, 0);
    assert_eq!(c.failed + c.unknown, 3);
}

#[test]
fn open_loop_latency_counts_the_queue_behind_a_slow_peer() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::AnswerAfter(Duration::from_millis(100)));
    // Sends due every 50 ms, each taking 100 ms on one association: the queue grows,
    // the last send is due at 450 ms and done at about 1 s.
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(10))
        .rate(Some(20.0));
    let report = run(&scp, &plan);
    let latency = report.metrics.latency_ms.unwrap();
    let service = report.metrics.service_time_ms.unwrap();
    assert!(latency.max_ms >= 400.0, "latency max {} ms", latency.max_ms);
    assert!(
        service.max_ms < 300.0,
        "service time max {} ms",
        service.max_ms
    );
}

#[test]
fn fresh_uids_make_every_send_a_new_instance() {
    let dir = tempfile::tempdir().unwrap();
    let files = study_files(dir.path(), &[OriginalStudy::new(1, &[2, 2])]);
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let plan = LoadPlan::new(prepare(&files, UidStrategy::Fresh))
        .stop_after(StopAfter::Count(8))
        .concurrency(2);
    let report = run(&scp, &plan);
    let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut sop_uids = Vec::new();
    let mut study_uids = Vec::new();
    for data in scp.received() {
        let object = InMemDicomObject::read_dataset_with_ts(&data[..], &ts).unwrap();
        let text = |tag| object.element(tag).unwrap().to_str().unwrap().to_string();
        sop_uids.push(text(tags::SOP_INSTANCE_UID));
        study_uids.push(text(tags::STUDY_INSTANCE_UID));
    }
    sop_uids.sort();
    sop_uids.dedup();
    assert_eq!(sop_uids.len(), 8);
    study_uids.sort();
    study_uids.dedup();
    // 8 sends of a 2 x 2 study: 2 fresh copies of it, as the report lists them.
    let mut reported: Vec<String> = report
        .studies
        .iter()
        .map(|s| s.study_instance_uid.clone())
        .collect();
    reported.sort();
    assert_eq!(study_uids, reported);
    assert!(report.studies.iter().all(|s| s.counts.succeeded == 4));
}

#[test]
fn study_limits_cut_original_studies_into_smaller_fresh_studies_of_one_patient_each() {
    let dir = tempfile::tempdir().unwrap();
    let files = study_files(
        dir.path(),
        &[
            OriginalStudy::new(1, &[5, 1]),
            OriginalStudy::new(2, &[3]),
            OriginalStudy::new(1, &[2]),
        ],
    );
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let plan = LoadPlan::new(prepare(&files, UidStrategy::Fresh))
        .stop_after(StopAfter::Count(2 * files.len() as u64))
        .concurrency(3)
        .synthetic_studies(2, 2);
    let report = run(&scp, &plan);

    // Per fresh study: its (patient, accession) pairs, and its series sizes.
    let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut originals: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut series: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for data in scp.received() {
        let object = InMemDicomObject::read_dataset_with_ts(&data[..], &ts).unwrap();
        let text = |tag| object.element(tag).unwrap().to_str().unwrap().to_string();
        let study = text(tags::STUDY_INSTANCE_UID);
        originals
            .entry(study.clone())
            .or_default()
            .insert((text(tags::PATIENT_ID), text(tags::ACCESSION_NUMBER)));
        *series
            .entry(study)
            .or_default()
            .entry(text(tags::SERIES_INSTANCE_UID))
            .or_default() += 1;
    }
    assert!(
        originals.values().all(|o| o.len() == 1),
        "a fresh study mixes original studies: {originals:?}"
    );
    // Per pass: 5+1 -> (2 2) (1 1), 3 -> (2 1), 2 -> (2): 4 studies.
    let mut shapes: Vec<Vec<u64>> = series
        .values()
        .map(|s| {
            let mut sizes: Vec<u64> = s.values().copied().collect();
            sizes.sort_unstable();
            sizes
        })
        .collect();
    shapes.sort();
    let pass = [vec![1, 1], vec![1, 2], vec![2], vec![2, 2]];
    let mut expected = [pass.clone(), pass].concat();
    expected.sort();
    assert_eq!(shapes, expected);
    for record in &report.studies {
        let sent: u64 = series[&record.study_instance_uid].values().sum();
        assert_eq!(record.counts.succeeded, sent, "{record:?}");
        let (patient, _) = originals[&record.study_instance_uid].first().unwrap();
        assert_eq!(record.patient_id.as_deref(), Some(patient.as_str()));
    }
    assert_eq!(report.studies.len(), series.len());
}

#[test]
fn a_zero_study_limit_is_refused_with_its_name() {
    let (_dir, instances) = instances(1, UidStrategy::Fresh);
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let sender = options(&scp.address).build().unwrap();
    let plan = LoadPlan::new(instances).synthetic_studies(0, 1);
    let err = run_load(&sender, &plan, &NoObserver).unwrap_err();
    assert!(
        err.to_string().contains("max_instances_per_series"),
        "{err}"
    );
}

#[test]
fn the_observer_hears_progress_and_the_final_figures() {
    let (_dir, instances) = instances(4, UidStrategy::AsIs);
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let seen: Mutex<Vec<LoadProgress>> = Mutex::new(Vec::new());
    let observer = |p: &LoadProgress| seen.lock().push(*p);
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(20))
        .progress_interval(Duration::from_millis(10));
    let sender = options(&scp.address).build().unwrap();
    run_load(&sender, &plan, &observer).unwrap();
    let seen = seen.into_inner();
    let last = seen.last().unwrap();
    assert_eq!(last.attempted, 20);
    assert_eq!(last.succeeded, 20);
    assert_eq!(last.planned, Some(20));
    assert!(seen.windows(2).all(|w| w[0].attempted <= w[1].attempted));
}

#[test]
fn a_folder_is_prepared_with_bad_files_skipped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    ct_files(dir.path(), 2, Encoding::ExplicitVrLittleEndian);
    std::fs::write(dir.path().join("readme.txt"), "not DICOM").unwrap();
    let prepared = sender::prepare_paths(&[dir.path().to_path_buf()], UidStrategy::AsIs).unwrap();
    assert_eq!(prepared.instances.len(), 2);
    assert_eq!(prepared.skipped.len(), 1);
    assert!(prepared.skipped[0].0.ends_with("readme.txt"));
}

#[test]
fn an_empty_plan_is_refused_with_a_reason() {
    let scp = TestScp::start(Behaviour::Answer(Status::SUCCESS));
    let sender = options(&scp.address).build().unwrap();
    let err = run_load(&sender, &LoadPlan::new(Vec::new()), &NoObserver).unwrap_err();
    assert!(err.to_string().contains("at least one instance"), "{err}");
}
