//! The load tests' shared steps, from the `campaign` crate (the same steps
//! `dicom-auto run` takes), with what they measured recorded for the report's
//! performance panel.

use std::sync::Arc;

use campaign::checks::Check;
use cfind::VerificationReport;
use sender::{LoadPlan, LoadReport, NoObserver, PreparedInstance};

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

/// Runs `plan` against the target, checks the accounting invariant, and records the
/// figures.
pub fn run(report: &mut TestReport, target: &LoadTarget, plan: &LoadPlan) -> LoadReport {
    let load =
        campaign::load::run_load(target, plan, &NoObserver).unwrap_or_else(|e| panic!("{e}"));
    for figure in campaign::load::load_figures(&load, None) {
        report.figure(figure.label, figure.value);
    }
    load
}

/// Verifies by C-FIND every study the run delivered to (with fresh UIDs: every
/// instance; with files sent as they are: each study's visibility), and attaches the
/// metrics and transit times to the report.
pub fn verify_and_attach(
    report: &mut TestReport,
    target: &LoadTarget,
    load: &LoadReport,
) -> Option<VerificationReport> {
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
    report.attach_load(campaign::load::load_result(load, verification.as_ref()));
    verification
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
