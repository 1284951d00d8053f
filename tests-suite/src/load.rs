//! The load tests' shared steps: a target sized for load, one load run, and the C-FIND
//! verification of every study it sent, all recorded for the report's performance panel.

use std::path::PathBuf;
use std::sync::Arc;

use cfind::{CFindClient, Delivery, SentStudy, VerificationReport};
use config::{TestConfig, UidStrategy};
use report::{LoadResult, TransitTimes};
use sender::{DicomSender, LoadPlan, LoadReport, NoObserver, PreparedInstance};
use simulator::{SimulatorHandle, StoreMode};

use crate::fixtures::{Session, start_simulator};
use crate::record::TestReport;

/// Where a load test sends: the configured router, or, on the embedded target, a
/// simulator of the test's own in load mode (index entries only, so a long run holds
/// memory bounded and does not crowd the functional tests' simulator).
#[derive(Debug)]
pub struct LoadTarget {
    /// The configuration pointed at the target.
    pub config: TestConfig,
    /// The private simulator, on the embedded target.
    pub simulator: Option<SimulatorHandle>,
}

impl LoadTarget {
    /// The target for one load test.
    pub fn new(session: &Session) -> Self {
        if !session.config.endpoint.target.is_embedded() {
            return LoadTarget {
                config: session.config.clone(),
                simulator: None,
            };
        }
        let concurrency = session.config.load.concurrency;
        let (handle, config) = start_simulator(&session.config, |simulator| {
            simulator.store_mode = StoreMode::Load;
            simulator.max_associations = simulator.max_associations.max(concurrency * 2);
        });
        LoadTarget {
            config,
            simulator: Some(handle),
        }
    }

    /// A sender for the configured endpoint (route selected by `COMPASS_ROUTE`, else
    /// `COMPASS_AE_TITLE`).
    pub fn sender(&self) -> DicomSender {
        campaign::options::sender::sender_options(&self.config)
            .build()
            .unwrap_or_else(|e| panic!("sender: {e}"))
    }

    /// A C-FIND client for the verification peer.
    pub fn cfind(&self) -> CFindClient {
        CFindClient::from_config(&self.config)
    }
}

/// Every sample prepared for sending with the configured UID strategy (encoded once).
pub fn prepare_samples(session: &Session) -> Vec<Arc<PreparedInstance>> {
    // The session already found the files: hand them over rather than scan the folder again.
    let files: Vec<PathBuf> = session
        .samples
        .infos
        .iter()
        .map(|i| i.path.clone())
        .collect();
    let prepared = sender::prepare_paths(&files, session.config.sending.uid_strategy)
        .unwrap_or_else(|e| panic!("cannot prepare the samples: {e}"));
    assert!(
        !prepared.instances.is_empty(),
        "no sendable DICOM file under {}",
        session.samples.root.display()
    );
    prepared.instances
}

/// Runs `plan` against the target, checks the accounting invariant, and records the
/// figures.
pub fn run(report: &mut TestReport, target: &LoadTarget, plan: &LoadPlan) -> LoadReport {
    let sender = target.sender();
    let load = sender::run_load(&sender, plan, &NoObserver)
        .unwrap_or_else(|e| panic!("load run could not start: {e}"));
    assert!(
        load.is_consistent(),
        "accounting broken: attempted != succeeded + warnings + failed + unknown ({:?})",
        load.summary()
    );
    let summary = load.summary();
    report.figure("attempted", summary.attempted);
    report.figure(
        "target / achieved send rate",
        format!(
            "{} / {} per s",
            fmt(summary.target_rate),
            fmt(summary.achieved_send_rate)
        ),
    );
    report.figure("delivered images/s", fmt(summary.images_per_s));
    if let Some(latency) = summary.latency_ms {
        report.figure("p95 latency", format!("{:.1} ms", latency.p95_ms));
    }
    load
}

fn fmt(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.1}"))
}

/// Verifies by C-FIND every study the run delivered to (with fresh UIDs: every
/// instance; with files sent as they are: each study's visibility), and attaches the
/// metrics and transit times to the report.
pub fn verify_and_attach(
    report: &mut TestReport,
    target: &LoadTarget,
    load: &LoadReport,
) -> Option<VerificationReport> {
    let fresh = target.config.sending.uid_strategy == UidStrategy::Fresh;
    let sent: Vec<SentStudy> = load
        .studies
        .iter()
        .filter(|s| s.counts.delivered() > 0)
        .map(|s| {
            // Files sent as they are repeat their UIDs: the router keeps one copy, so
            // only the study's presence can be checked, not a count.
            let instances = if fresh {
                s.counts.delivered() as u32
            } else {
                1
            };
            SentStudy::with_wall_clock(s.study_instance_uid.clone(), instances, s.last_sent)
        })
        .collect();
    let verification = if target.config.cfind.verify && !sent.is_empty() {
        let verification = target
            .cfind()
            .verify_studies(&sent)
            .unwrap_or_else(|e| panic!("C-FIND verification could not run: {e}"));
        report.figure(
            "studies verified / sent",
            format!(
                "{} / {}",
                verification.count(Delivery::Complete),
                sent.len()
            ),
        );
        Some(verification)
    } else {
        None
    };
    report.attach_load(LoadResult {
        metrics: load.metrics.clone(),
        transit: verification.as_ref().map(|v| TransitTimes {
            verified: v.count(Delivery::Complete) as u64,
            missing: (v.studies.len() - v.count(Delivery::Complete)) as u64,
            summary: v.transit.summary(),
            buckets: v.transit.buckets(),
        }),
    });
    verification
}

/// Asserts every delivered study was found complete, naming the first few that were not.
pub fn assert_all_studies_arrived(verification: &VerificationReport) {
    let missing: Vec<String> = verification
        .not_complete()
        .take(5)
        .map(|s| {
            format!(
                "{} ({:?}, seen {:?} of {})",
                s.study_instance_uid, s.delivery, s.instances_seen, s.instances_sent
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} studies not complete at the destination, e.g. {}",
        verification.studies.len() - verification.count(Delivery::Complete),
        verification.studies.len(),
        missing.join("; ")
    );
}
