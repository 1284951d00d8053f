//! Load runs against the simulator's fault injection: the books balance whatever the
//! router does, and the pool recovers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ct_files;
use config::UidStrategy;
use dimse::Status;
use loader::synth::Encoding;
use sender::{
    DicomSender, LoadPlan, LoadReport, NoObserver, PreparedInstance, StopAfter, run_load,
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
