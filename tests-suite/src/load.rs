//! The load tests' shared steps, from the `campaign` crate (the same steps
//! `dicom-auto run` takes), with what they measured recorded for the report's
//! performance panel.

use std::sync::Arc;

use campaign::checks::Check;
use cfind::VerificationReport;
use sender::{LoadPlan, LoadReport, NoObserver, PreparedInstance};
use sink::DeliveryReport;

use crate::fixtures::Session;
use crate::record::TestReport;

pub use campaign::LoadTarget;

/// The target for one load test: the configured router, or a private simulator in load
/// mode on the embedded target.
pub fn target(session: &Session) -> LoadTarget {
    LoadTarget::new(&session.config).unwrap_or_else(|e| panic!("{e}"))
}

/// Every sample prepared for sending with the configured UID strategy (encoded once).
pub fn prepare_samples(session: &Session) -> Vec<Arc<PreparedInstance>> {
    // The session already found the files: hand them over rather than scan the folder again.
    campaign::load::prepare(&session.config, &session.samples.paths())
        .unwrap_or_else(|e| panic!("cannot prepare the samples: {e}"))
        .instances
}

/// Runs `plan` against the target (every send shown to the destination sink's ledger
/// when the target has a sink), checks the accounting invariant, and records the
/// figures.
pub fn run(report: &mut TestReport, target: &LoadTarget, plan: &LoadPlan) -> LoadReport {
    let plan = target.watched(plan.clone());
    let load =
        campaign::load::run_load(target, &plan, &NoObserver).unwrap_or_else(|e| panic!("{e}"));
    for figure in campaign::load::load_figures(&load, None, None)
        .into_iter()
        .chain(campaign::profile::group_figures(&load))
    {
        report.figure(figure.label, figure.value);
    }
    load
}

/// How a run's delivery was verified: by C-FIND, at the destination sink, or both
/// (`VERIFY_AT`).
#[derive(Debug)]
pub struct Verified {
    /// The C-FIND verification, when it ran.
    pub cfind: Option<VerificationReport>,
    /// What the destination sink received, when the target has a sink.
    pub at_sink: Option<DeliveryReport>,
    /// What came back from the destination archive, when the target retrieves.
    pub retrieved: Option<campaign::retrieval::RetrievalReport>,
    /// What the destination archive committed, when the target asks it to.
    pub committed: Option<campaign::commitment::CommitmentReport>,
}

/// Waits for what the destination sink still expects and takes its verdict, verifies
/// by C-FIND every study the run delivered to (with fresh UIDs: every instance; with
/// files sent as they are: each study's visibility), retrieves them from the archive
/// when `VERIFY_AT` says so, and attaches the metrics, transit times, the sink's
/// accounting and the retrieval to the report.
pub fn verify_and_attach(
    report: &mut TestReport,
    target: &LoadTarget,
    load: &LoadReport,
) -> Verified {
    let at_sink = target.settle_delivery();
    if let Some(delivery) = &at_sink {
        for figure in campaign::delivery::delivery_figures(delivery) {
            report.figure(figure.label, figure.value);
        }
    }
    let verification = campaign::load::verify(target, load).unwrap_or_else(|e| panic!("{e}"));
    if let Some(v) = &verification {
        report.figure(
            "studies verified / sent",
            format!(
                "{} / {}",
                v.count(cfind::Delivery::Complete),
                v.studies.len()
            ),
        );
    }
    let committed = target
        .verify_commitment(load)
        .unwrap_or_else(|e| panic!("{e}"));
    let retrieved = target
        .verify_retrieval(load)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut result = campaign::load::load_result(load, verification.as_ref(), at_sink.as_ref());
    if let Some(retrieval) = &retrieved {
        for figure in campaign::retrieval::retrieval_figures(retrieval) {
            report.figure(figure.label, figure.value);
        }
        result.retrieval = Some(campaign::retrieval::archive_retrieval(retrieval));
    }
    if let Some(commitment) = &committed {
        for figure in campaign::commitment::commitment_figures(commitment) {
            report.figure(figure.label, figure.value);
        }
        result.commitment = Some(campaign::commitment::archive_commitment(commitment));
    }
    report.attach_load(result);
    Verified {
        cfind: verification,
        at_sink,
        retrieved,
        committed,
    }
}

/// Asserts that what was verified arrived: every study complete by C-FIND, every
/// instance at the sink once and unaltered, every retrieved study whole, every
/// instance committed (naming the first that were not).
pub fn assert_delivered(verified: &Verified) {
    let mut checks = Vec::new();
    checks.extend(verified.cfind.as_ref().map(campaign::checks::delivery));
    checks.extend(
        verified
            .at_sink
            .as_ref()
            .map(campaign::checks::delivery_at_sink),
    );
    checks.extend(
        verified
            .retrieved
            .as_ref()
            .map(campaign::checks::retrieval_at_archive),
    );
    checks.extend(
        verified
            .committed
            .as_ref()
            .map(campaign::checks::commitment_at_archive),
    );
    assert_passed(&checks);
}

/// Asserts every delivered study was found complete, naming the first few that were not.
pub fn assert_all_studies_arrived(verification: &VerificationReport) {
    assert_passed(&[campaign::checks::delivery(verification)]);
}

/// Asserts every check passed, with the failed checks' messages.
pub fn assert_passed(checks: &[Check]) {
    if let Some(failures) = campaign::checks::failures(checks) {
        panic!("{failures}");
    }
}

/// Every sample sent once, with `uids`, two at a time: the plan of the delivery,
/// retrieval and commitment truth tests.
pub fn each_sample_once(session: &Session, uids: sender::UidStrategy) -> LoadPlan {
    let prepared = sender::prepare_paths(&session.samples.paths(), uids)
        .unwrap_or_else(|e| panic!("cannot prepare the samples: {e}"));
    LoadPlan::new(prepared.instances).concurrency(2)
}

/// An embedded target of the session's configuration as `adjust` changes it (where it
/// verifies, its timeouts), its simulator committing `faults`.
pub fn faulty_target(
    session: &Session,
    faults: simulator::FaultPlan,
    adjust: impl FnOnce(&mut config::TestConfig),
) -> LoadTarget {
    let mut config = session.config.clone();
    adjust(&mut config);
    let target = LoadTarget::new(&config).unwrap_or_else(|e| panic!("{e}"));
    target
        .simulator
        .as_ref()
        .expect("an embedded target has its simulator")
        .set_faults(faults);
    target
}

/// Skips the test (and says so) unless it runs against the embedded simulator: `what`
/// (silent router faults, archive faults) cannot be switched on in a remote peer.
pub fn skip_unless_embedded(report: &mut TestReport, session: &Session, what: &str) -> bool {
    if session.simulator.is_some() {
        return false;
    }
    report.skip(format!(
        "{what} need the embedded simulator; the remote router at {} and archive at {} cannot \
         be made to commit them (unset COMPASS_HOST to run this test)",
        session.config.endpoint.address(),
        session.config.cfind.address()
    ));
    true
}
