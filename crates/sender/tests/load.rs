//! Load runs against the simulator: strategies, schedules, faults (the books balance
//! whatever the router does, and the pool recovers), accounting.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    OriginalStudy, assert_ended_within, associations, ct_files, options, simulator,
    stored_data_sets, study_files,
};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dimse::Status;
use loader::synth::Encoding;
use parking_lot::Mutex;
use rstest::rstest;
use sender::{AssociationStrategy, DicomSender, UidLevel, UidRoot, UidStrategy};
use sender::{
    LoadPlan, LoadProgress, LoadReport, NoObserver, PreparedInstance, StopAfter, run_load,
};
use simulator::{FaultPlan, ResponseDelay, SimulatorHandle, StatusOverride, StoreSelection};

fn instances(n: usize, uids: UidStrategy) -> (tempfile::TempDir, Vec<Arc<PreparedInstance>>) {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), n, Encoding::ExplicitVrLittleEndian);
    (dir, prepare(&files, uids))
}

/// `n` CT files of about 50 KB, found and inspected as a load from a folder does
/// ([`sender::prepare_paths`]): their data sets stay on disk.
fn inspected(
    n: usize,
    uids: UidStrategy,
) -> (
    tempfile::TempDir,
    Vec<std::path::PathBuf>,
    Vec<Arc<PreparedInstance>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), n, Encoding::ExplicitVrLittleEndian);
    let prepared = sender::prepare_paths(&[dir.path().to_path_buf()], uids).unwrap();
    assert!(prepared.skipped.is_empty(), "{:?}", prepared.skipped);
    (dir, files, prepared.instances)
}

fn prepare(files: &[std::path::PathBuf], uids: UidStrategy) -> Vec<Arc<PreparedInstance>> {
    files
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, uids).unwrap()))
        .collect()
}

/// Runs `plan` with the default test options against `sim`.
fn run(sim: &SimulatorHandle, plan: &LoadPlan) -> LoadReport {
    run_with(&options(sim.addr()).build().unwrap(), plan)
}

/// The default test options with this DIMSE timeout.
fn sender_waiting(sim: &SimulatorHandle, dimse_timeout: Duration) -> DicomSender {
    options(sim.addr())
        .dimse_timeout(dimse_timeout)
        .build()
        .unwrap()
}

/// Runs `plan` and checks that the books balance.
fn run_with(sender: &DicomSender, plan: &LoadPlan) -> LoadReport {
    let report = run_load(sender, plan, &NoObserver).unwrap();
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
    let sim = simulator(FaultPlan::default());
    let report = run(&sim, &LoadPlan::new(instances).concurrency(2));
    assert_eq!(report.metrics.counts.attempted, 6);
    assert_eq!(report.metrics.counts.succeeded, 6);
    assert!(report.all_delivered());
    assert_eq!(sim.stats().stores.received, 6);
    assert_eq!(sim.stats().stores.stored, 6);
    assert_eq!(report.associations.opened, 2);
}

#[test]
fn per_image_strategy_opens_one_association_per_image() {
    let (_dir, instances) = instances(5, UidStrategy::AsIs);
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(instances)
        .concurrency(2)
        .association(AssociationStrategy::PerImage);
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.succeeded, 5);
    assert_eq!(report.associations.opened, 5);
    assert_eq!(associations(&sim), 5);
}

#[test]
fn per_study_strategy_sends_each_synthetic_study_on_one_association() {
    let dir = tempfile::tempdir().unwrap();
    let files = study_files(
        dir.path(),
        &[OriginalStudy::new(1, &[3]), OriginalStudy::new(2, &[3])],
    );
    let sim = simulator(FaultPlan::default());
    // A copy of the first study, of the second, of the first again.
    let plan = LoadPlan::new(prepare(&files, UidStrategy::Fresh))
        .stop_after(StopAfter::Count(9))
        .association(AssociationStrategy::PerStudy);
    let report = run(&sim, &plan);
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
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(30))
        .concurrency(3);
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.succeeded, 30);
    assert_eq!(report.associations.opened, 3);
}

#[test]
fn an_association_is_replaced_after_its_maximum_operations() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(10))
        .max_ops_per_association(NonZeroU32::new(3));
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.succeeded, 10);
    assert_eq!(report.associations.opened, 4);
    assert_eq!(report.associations.recycled, 3);
}

#[test]
fn the_pool_reconnects_when_the_peer_closes_idle_associations() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let sim = simulator(FaultPlan {
        idle_timeout: Some(Duration::from_millis(100)),
        ..FaultPlan::default()
    });
    // One send every 300 ms: the peer closes the association between sends.
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(4))
        .rate(Some(3.3));
    let report = run(&sim, &plan);
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
    let sim = simulator(FaultPlan {
        reject_first_associations: Some(1),
        ..FaultPlan::default()
    });
    let plan = LoadPlan::new(instances).stop_after(StopAfter::Count(3));
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.failed, 1);
    assert_eq!(report.metrics.counts.succeeded, 2);
    assert_eq!(report.associations.failed_to_open, 1);
    assert!(
        report.metrics.errors[0].message.contains("rejected"),
        "{:?}",
        report.metrics.errors
    );
}

#[rstest]
#[case::two_workers(2, Duration::from_millis(300))]
#[case::one_worker_per_send(3, Duration::from_millis(400))]
fn stalled_stores_end_as_unknown_within_the_dimse_timeout(
    #[case] concurrency: usize,
    #[case] dimse_timeout: Duration,
) {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let sim = simulator(FaultPlan {
        stall_stores: true,
        ..FaultPlan::default()
    });
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(3))
        .concurrency(concurrency);
    let started = Instant::now();
    let report = run_with(&sender_waiting(&sim, dimse_timeout), &plan);
    assert_eq!(report.metrics.counts.unknown, 3);
    assert_ended_within(started, Duration::from_secs(4));
}

#[test]
fn aborts_in_the_middle_of_data_sets_are_never_counted_as_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::large_ct_file(dir.path(), 1024);
    let instance = Arc::new(PreparedInstance::from_file(&path, UidStrategy::AsIs).unwrap());
    // 2 MB of pixels: the abort comes while most of them are still to be written.
    let sim = simulator(FaultPlan {
        abort_mid_data_set: Some(64 * 1024),
        ..FaultPlan::default()
    });
    let plan = LoadPlan::new(vec![instance]).stop_after(StopAfter::Count(3));
    let report = run(&sim, &plan);
    let c = &report.metrics.counts;
    assert_eq!(c.attempted, 3);
    assert_eq!(c.succeeded + c.warnings, 0);
    assert_eq!(c.failed + c.unknown, 3);
    assert_eq!(sim.stats().stores.received, 0);
}

#[test]
fn open_loop_latency_counts_the_queue_behind_a_slow_peer() {
    let (_dir, instances) = instances(1, UidStrategy::AsIs);
    let sim = simulator(FaultPlan {
        response_delay: Some(ResponseDelay::Fixed(Duration::from_millis(100))),
        ..FaultPlan::default()
    });
    // Sends due every 50 ms, each taking 100 ms on one association: the queue grows,
    // the last send is due at 450 ms and done at about 1 s.
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(10))
        .rate(Some(20.0));
    let report = run(&sim, &plan);
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
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(prepare(&files, UidStrategy::Fresh))
        .stop_after(StopAfter::Count(8))
        .concurrency(2);
    let report = run(&sim, &plan);
    // Every send arrived, none as a copy of another (the store keeps one per UID).
    assert_eq!(sim.stats().stores.received, 8);
    let mut sop_uids = Vec::new();
    let mut study_uids = Vec::new();
    for object in stored_data_sets(&sim) {
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
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(prepare(&files, UidStrategy::Fresh))
        .stop_after(StopAfter::Count(2 * files.len() as u64))
        .concurrency(3)
        .synthetic_studies(2, 2);
    let report = run(&sim, &plan);
    // Every send arrived, none as a copy of another (the store keeps one per UID).
    assert_eq!(sim.stats().stores.received, 2 * files.len() as u64);
    assert_eq!(sim.stats().stores.stored, 2 * files.len() as u64);

    // Per fresh study: its (patient, accession) pairs, and its series sizes.
    let mut originals: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    let mut series: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for object in stored_data_sets(&sim) {
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
    let sim = simulator(FaultPlan::default());
    let sender = options(sim.addr()).build().unwrap();
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
    let sim = simulator(FaultPlan::default());
    let seen: Mutex<Vec<LoadProgress>> = Mutex::new(Vec::new());
    let observer = |p: &LoadProgress| seen.lock().push(*p);
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(20))
        .progress_interval(Duration::from_millis(10));
    let sender = options(sim.addr()).build().unwrap();
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
    let sim = simulator(FaultPlan::default());
    let sender = options(sim.addr()).build().unwrap();
    let err = run_load(&sender, &LoadPlan::new(Vec::new()), &NoObserver).unwrap_err();
    assert!(err.to_string().contains("at least one instance"), "{err}");
}

#[test]
fn refusals_and_aborts_are_counted_and_the_pool_carries_on() {
    let sim = simulator(FaultPlan {
        status_override: Some(StatusOverride {
            status: Status(0xA700),
            selection: StoreSelection::EveryNth(4),
        }),
        abort_after_stores: Some(5),
        ..FaultPlan::default()
    });
    let (_dir, instances) = instances(3, UidStrategy::Fresh);
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(40))
        .concurrency(4);
    let report = run_with(&sender_waiting(&sim, Duration::from_secs(5)), &plan);
    let c = report.metrics.counts;
    assert_eq!(c.attempted, 40);
    assert!(c.failed >= 8, "every 4th store refused: {c:?}");
    assert!(
        report
            .metrics
            .status_counts
            .keys()
            .any(|k| k.contains("A700")),
        "{:?}",
        report.metrics.status_counts
    );
    // Each association is aborted after 5 stores: at least 40 / 5 of them.
    assert!(report.associations.opened >= 8, "{:?}", report.associations);
    assert_eq!(sim.stats().stores.stored, c.succeeded + c.warnings);
}

#[test]
fn a_congested_router_fails_sends_with_a_transient_rejection_until_it_recovers() {
    let sim = simulator(FaultPlan {
        refuse_associations_for: Some(Duration::from_millis(500)),
        ..FaultPlan::default()
    });
    let (_dir, instances) = instances(1, UidStrategy::Fresh);
    // Due at 0, 250, 500... ms: the first ones meet the refusal.
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(6))
        .rate(Some(4.0));
    let report = run_with(&sender_waiting(&sim, Duration::from_secs(5)), &plan);
    let c = report.metrics.counts;
    assert!(c.failed >= 1 && c.succeeded >= 2, "{c:?}");
    assert_eq!(c.failed, report.associations.failed_to_open);
    assert!(
        report.metrics.errors[0].message.contains("transient"),
        "{:?}",
        report.metrics.errors
    );
}

#[test]
fn fresh_uid_studies_each_copy_one_original_study_of_one_patient_into_the_archive() {
    let sim = simulator(FaultPlan::default());
    let dir = tempfile::tempdir().unwrap();
    // Two patients, the first with two studies, and a one-instance study of a third.
    let originals = [
        OriginalStudy::new(1, &[3, 2]),
        OriginalStudy::new(2, &[4]),
        OriginalStudy::new(1, &[2]),
        OriginalStudy::new(3, &[1]),
    ];
    let files = study_files(dir.path(), &originals);
    let instances = prepare(&files, UidStrategy::Fresh);
    // Two whole passes and part of a third: the last copies are partial.
    let sends = 2 * files.len() as u64 + 4;
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(sends))
        .concurrency(3);
    let report = run_with(&sender_waiting(&sim, Duration::from_secs(5)), &plan);
    assert_eq!(
        report.metrics.counts.succeeded, sends,
        "{:?}",
        report.metrics.errors
    );

    // Every send's own SOP Instance UID, each stored once.
    let root: UidRoot = report.uid_root.as_deref().unwrap().parse().unwrap();
    let mut per_study: BTreeMap<String, (BTreeSet<Vec<String>>, u64)> = BTreeMap::new();
    for k in 0..sends {
        let uid = root.uid(UidLevel::Instance, k);
        let stored = sim
            .stored_instance(uid.as_str())
            .unwrap_or_else(|| panic!("send {k} ({uid}) not in the simulator's store"));
        let dataset = stored.dataset.expect("the simulator keeps whole data sets");
        let text = |tag: Tag| dataset.element(tag).unwrap().to_str().unwrap().to_string();
        let patient_and_study = vec![
            text(tags::PATIENT_ID),
            text(tags::PATIENT_NAME),
            text(tags::PATIENT_BIRTH_DATE),
            text(tags::STUDY_DATE),
            text(tags::ACCESSION_NUMBER),
        ];
        let entry = per_study.entry(stored.study_instance_uid).or_default();
        entry.0.insert(patient_and_study);
        entry.1 += 1;
    }
    assert_eq!(sim.stats().stores.stored, sends, "{:?}", sim.stats().stores);
    for (study, (attributes, _)) in &per_study {
        assert_eq!(
            attributes.len(),
            1,
            "fresh study {study} mixes patients or original studies: {attributes:?}"
        );
    }

    // The records agree with the archive, study by study.
    assert_eq!(report.studies.len(), per_study.len());
    let archive: BTreeMap<String, simulator::StudySummary> = sim
        .studies()
        .into_iter()
        .map(|s| (s.study_instance_uid.clone(), s))
        .collect();
    for record in &report.studies {
        let (attributes, stored) = &per_study[&record.study_instance_uid];
        assert_eq!(record.counts.succeeded, *stored, "{record:?}");
        let summary = &archive[&record.study_instance_uid];
        assert_eq!(
            summary.instances as u64, record.counts.succeeded,
            "{summary:?}"
        );
        let patient = &attributes.first().unwrap()[0];
        assert_eq!(record.patient_id.as_ref(), Some(patient), "{record:?}");
        assert_eq!(summary.patient_id.as_ref(), Some(patient), "{summary:?}");
    }
    // Each pass copies every original study with its series; the third pass got
    // through the first 4 instances of the first study (its 3-instance series, then one).
    let mut shapes: Vec<(usize, usize)> =
        archive.values().map(|s| (s.series, s.instances)).collect();
    shapes.sort_unstable();
    let mut expected = [(2, 5), (1, 4), (1, 2), (1, 1)].repeat(2);
    expected.push((2, 4));
    expected.sort_unstable();
    assert_eq!(shapes, expected);
}

/// The files' data sets (what follows the meta group), as a load sends them as is.
fn file_data_sets(files: &[std::path::PathBuf]) -> BTreeSet<Vec<u8>> {
    files
        .iter()
        .map(|f| {
            let object = dicom_object::open_file(f).unwrap();
            let mut bytes = Vec::new();
            object
                .write_dataset_with_ts(
                    &mut bytes,
                    &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .unwrap();
            bytes
        })
        .collect()
}

#[test]
fn a_set_larger_than_the_memory_budget_is_streamed_and_every_send_carries_its_file() {
    let (_dir, files, instances) = inspected(10, UidStrategy::AsIs);
    assert!(instances.iter().all(|i| !i.is_resident()));
    let one = instances[0].encoded_len() as u64;
    let total: u64 = instances.iter().map(|i| i.encoded_len() as u64).sum();
    let sim = simulator(FaultPlan::default());
    // Room for three data sets: one stays resident, two at a time are streamed.
    let plan = LoadPlan::new(instances)
        .concurrency(3)
        .stop_after(StopAfter::Count(40))
        .memory_budget(3 * one + one / 2);
    let report = run(&sim, &plan);
    assert_eq!(
        report.metrics.counts.succeeded, 40,
        "{:?}",
        report.metrics.errors
    );
    let generator = &report.generator;
    assert_eq!(generator.resident_instances, 1, "{generator:?}");
    assert_eq!(generator.streamed_instances, 9);
    // Each streamed instance is read for each of its four sends, never more.
    assert_eq!(generator.streamed_reads, 36);
    assert_eq!(
        generator.streamed_bytes,
        4 * (total - generator.resident_bytes)
    );
    assert!(
        generator.peak_streamed_bytes <= 2 * one + one / 2,
        "{generator:?}"
    );
    assert!(generator.first_send_after.is_some());
    // What arrived is what the files hold (the simulator keeps one copy per SOP
    // Instance UID of the forty it received).
    assert_eq!(sim.stats().stores.received, 40);
    let stored: BTreeSet<_> = common::stored_bytes(&sim).into_iter().collect();
    assert_eq!(stored, file_data_sets(&files));
}

#[test]
fn a_streamed_run_with_fresh_uids_sends_a_new_instance_every_time() {
    let (_dir, _files, instances) = inspected(6, UidStrategy::Fresh);
    let one = instances[0].encoded_len() as u64;
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(instances)
        .concurrency(2)
        .stop_after(StopAfter::Count(18))
        .memory_budget(2 * one);
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.succeeded, 18);
    assert!(
        report.generator.streamed_instances >= 4,
        "{:?}",
        report.generator
    );
    let uids: BTreeSet<String> = stored_data_sets(&sim)
        .iter()
        .map(|o| {
            o.element(tags::SOP_INSTANCE_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(uids.len(), 18);
}

#[test]
fn a_set_that_fits_the_budget_is_read_once_and_kept() {
    let (_dir, _files, instances) = inspected(6, UidStrategy::AsIs);
    let total: u64 = instances.iter().map(|i| i.encoded_len() as u64).sum();
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(instances)
        .concurrency(2)
        .stop_after(StopAfter::Count(24));
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.succeeded, 24);
    let generator = &report.generator;
    assert_eq!(
        (generator.resident_instances, generator.streamed_instances),
        (6, 0)
    );
    assert_eq!(generator.resident_bytes, total);
    assert_eq!(generator.streamed_reads, 0);
    assert_eq!(generator.memory_budget_bytes, sender::DEFAULT_MEMORY_BUDGET);
}

#[rstest]
#[case::resident(sender::DEFAULT_MEMORY_BUDGET)]
#[case::streamed(1)]
fn a_file_cut_short_after_inspection_fails_each_of_its_sends_naming_it(#[case] budget: u64) {
    let (_dir, files, instances) = inspected(4, UidStrategy::AsIs);
    let whole = std::fs::read(&files[2]).unwrap();
    std::fs::write(&files[2], &whole[..whole.len() - 1000]).unwrap();
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(8))
        .memory_budget(budget);
    let report = run(&sim, &plan);
    let counts = &report.metrics.counts;
    assert_eq!(
        (counts.succeeded, counts.failed),
        (6, 2),
        "{:?}",
        report.metrics.errors
    );
    let error = &report.metrics.errors[0];
    assert_eq!(error.count, 2);
    assert!(error.message.contains("CT0002.dcm"), "{}", error.message);
    assert_eq!(sim.stats().stores.received, 6);
}

#[test]
fn a_run_sending_each_file_once_reads_each_ahead_of_its_send_and_keeps_none() {
    let (_dir, _files, instances) = inspected(6, UidStrategy::AsIs);
    let total: u64 = instances.iter().map(|i| i.encoded_len() as u64).sum();
    let sim = simulator(FaultPlan::default());
    let report = run(&sim, &LoadPlan::new(instances).concurrency(2));
    assert_eq!(report.metrics.counts.succeeded, 6);
    let generator = &report.generator;
    assert_eq!(
        (generator.resident_instances, generator.streamed_instances),
        (0, 6)
    );
    assert_eq!(
        (generator.streamed_reads, generator.streamed_bytes),
        (6, total)
    );
}

#[test]
fn a_generator_slower_than_the_schedule_reports_its_lag_and_keeps_it_out_of_the_latency() {
    // Fresh UIDs on streamed files: each send's data set is read, parsed and encoded
    // on the way, far slower than 20,000 sends per second.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..4 {
        loader::synth::InstanceBuilder::new(loader::synth::Modality::Ct)
            .geometry(loader::synth::ImageGeometry::mono16(256, 256, 12))
            .seed(i + 1)
            .write_to(dir.path().join(format!("CT{i}.dcm")))
            .unwrap();
    }
    let prepared = sender::prepare_paths(&[dir.path().to_path_buf()], UidStrategy::Fresh).unwrap();
    let sim = simulator(FaultPlan::default());
    let plan = LoadPlan::new(prepared.instances)
        .rate(Some(20_000.0))
        .stop_after(StopAfter::Count(24))
        .memory_budget(1);
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.succeeded, 24);
    let generator = &report.generator;
    assert!(generator.lagged_sends >= 16, "{generator:?}");
    let lag = generator.lag_ms.expect("lag measured");
    let latency = report.metrics.latency_ms.expect("latency measured");
    // The lag grows with every send the generator falls behind; the router's latency,
    // measured from when each send was both due and ready, does not.
    assert!(
        latency.max_ms < lag.max_ms,
        "latency {latency:?} should exclude the generator's lag {lag:?}"
    );
}
