//! Load runs against the simulator's fault injection: the books balance whatever the
//! router does, and the pool recovers.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{OriginalStudy, ct_files, study_files};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dimse::Status;
use loader::synth::Encoding;
use sender::UidStrategy;
use sender::{
    DicomSender, LoadPlan, LoadReport, NoObserver, PreparedInstance, StopAfter, UidLevel, UidRoot,
    run_load,
};
use simulator::{
    FaultPlan, Simulator, SimulatorConfig, SimulatorHandle, StatusOverride, StoreSelection,
};

fn start(faults: FaultPlan) -> SimulatorHandle {
    let handle = Simulator::start(SimulatorConfig::default()).unwrap();
    handle.set_faults(faults);
    handle
}

fn run(handle: &SimulatorHandle, plan: LoadPlan, dimse_timeout: Duration) -> LoadReport {
    let sender = DicomSender::builder(handle.addr().to_string())
        .called_ae_title("LB-HTM-OPH")
        .dimse_timeout(dimse_timeout)
        .acse_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let report = run_load(&sender, &plan, &NoObserver).unwrap();
    assert!(report.is_consistent(), "{:?}", report.metrics.counts);
    report
}

fn instances(n: usize) -> (tempfile::TempDir, Vec<Arc<PreparedInstance>>) {
    let dir = tempfile::tempdir().unwrap();
    let prepared = ct_files(dir.path(), n, Encoding::ExplicitVrLittleEndian)
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, UidStrategy::Fresh).unwrap()))
        .collect();
    (dir, prepared)
}

#[test]
fn refusals_and_aborts_are_counted_and_the_pool_carries_on() {
    let sim = start(FaultPlan {
        status_override: Some(StatusOverride {
            status: Status(0xA700),
            selection: StoreSelection::EveryNth(4),
        }),
        abort_after_stores: Some(5),
        ..FaultPlan::default()
    });
    let (_dir, instances) = instances(3);
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(40))
        .concurrency(4);
    let report = run(&sim, plan, Duration::from_secs(5));
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
fn associations_the_router_drops_when_idle_are_replaced_before_the_next_send() {
    let sim = start(FaultPlan {
        idle_timeout: Some(Duration::from_millis(100)),
        ..FaultPlan::default()
    });
    let (_dir, instances) = instances(1);
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(4))
        .rate(Some(3.3));
    let report = run(&sim, plan, Duration::from_secs(5));
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
fn a_congested_router_fails_sends_with_a_transient_rejection_until_it_recovers() {
    let sim = start(FaultPlan {
        refuse_associations_for: Some(Duration::from_millis(500)),
        ..FaultPlan::default()
    });
    let (_dir, instances) = instances(1);
    // Due at 0, 250, 500... ms: the first ones meet the refusal.
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(6))
        .rate(Some(4.0));
    let report = run(&sim, plan, Duration::from_secs(5));
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
fn stalled_stores_end_as_unknown_within_the_dimse_timeout() {
    let sim = start(FaultPlan {
        stall_stores: true,
        ..FaultPlan::default()
    });
    let (_dir, instances) = instances(1);
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(3))
        .concurrency(3);
    let started = Instant::now();
    let report = run(&sim, plan, Duration::from_millis(400));
    assert_eq!(report.metrics.counts.unknown, 3);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn fresh_uid_studies_each_copy_one_original_study_of_one_patient_into_the_archive() {
    let sim = start(FaultPlan::default());
    let dir = tempfile::tempdir().unwrap();
    // Two patients, the first with two studies, and a one-instance study of a third.
    let originals = [
        OriginalStudy::new(1, &[3, 2]),
        OriginalStudy::new(2, &[4]),
        OriginalStudy::new(1, &[2]),
        OriginalStudy::new(3, &[1]),
    ];
    let files = study_files(dir.path(), &originals);
    let instances: Vec<_> = files
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, UidStrategy::Fresh).unwrap()))
        .collect();
    // Two whole passes and part of a third: the last copies are partial.
    let sends = 2 * files.len() as u64 + 4;
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::Count(sends))
        .concurrency(3);
    let report = run(&sim, plan, Duration::from_secs(5));
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
