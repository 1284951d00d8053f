//! Commitment truth: what the destination archive promises to keep when asked by
//! Storage Commitment (`VERIFY_AT` with `commit`). Every instance the router took is
//! committed, its report on an association the archive opens to us; an archive that
//! fails instances, never reports, or reports a transaction nobody asked about is
//! caught and named, the wait ending at `COMMIT_TIMEOUT`.
//!
//! On the embedded target the archive is the simulator; its faults cannot be
//! switched on in a remote archive, so those tests skip against `COMPASS_HOST`.

use std::time::Duration;

use campaign::LoadTarget;
use campaign::commitment::CommitmentReport;
use commitment::ReportVia;
use config::{UidStrategy, VerifyAt};
use rstest::rstest;
use sender::LoadPlan;
use simulator::FaultPlan;
use tests_suite::fixtures::*;
use tests_suite::load;
use tests_suite::record::TestReport;

/// Verification by commitment alone, or beside the sink.
const COMMIT_ONLY: VerifyAt = VerifyAt {
    cfind: false,
    sink: false,
    retrieve: false,
    commit: true,
};

/// An embedded target that verifies at `verify_at`, `faults` on, reports awaited
/// `report_timeout`.
fn archive(
    session: &'static Session,
    verify_at: VerifyAt,
    faults: FaultPlan,
    report_timeout: Duration,
) -> LoadTarget {
    load::faulty_target(session, faults, |config| {
        config.sink.verify_at = verify_at;
        config.sink.delivery_timeout = Duration::from_secs(3);
        config.commit.timeout = report_timeout;
    })
}

/// Sends `plan` through `target`, then asks the archive to commit what it took.
fn committed(report: &mut TestReport, target: &LoadTarget, plan: &LoadPlan) -> CommitmentReport {
    let run = load::run(report, target, plan);
    let verified = load::verify_and_attach(report, target, &run);
    verified.committed.expect("the target asks for commitment")
}

fn skip_unless_embedded(report: &mut TestReport, session: &Session) -> bool {
    load::skip_unless_embedded(report, session, "archive faults")
}

#[rstest]
fn every_instance_the_router_took_is_committed_on_an_association_the_archive_opens(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let beside_the_sink = VerifyAt {
        sink: true,
        ..COMMIT_ONLY
    };
    for (verify_at, uids) in [
        (COMMIT_ONLY, UidStrategy::Fresh),
        (COMMIT_ONLY, UidStrategy::AsIs),
        (beside_the_sink, UidStrategy::Fresh),
    ] {
        let target = archive(
            session,
            verify_at,
            FaultPlan::default(),
            Duration::from_secs(20),
        );
        let commitment = committed(&mut report, &target, &load::each_sample_once(session, uids));
        let check = campaign::checks::commitment_at_archive(&commitment);
        let stats = target.simulator.as_ref().map(|s| s.stats().commitments);
        assert!(
            check.passed,
            "{verify_at}, {uids:?}: {} {stats:?}",
            check.message
        );
        let samples = session.samples.infos.len();
        if uids == UidStrategy::Fresh {
            assert_eq!(commitment.requested(), samples, "every send named once");
        } else {
            // Files sent as they are may share instances: each is named once.
            assert!(commitment.requested() >= 1 && commitment.requested() <= samples);
        }
        assert_eq!(commitment.committed(), commitment.requested());
        for study in &commitment.studies {
            let outcome = study.outcome.as_ref().expect("every study was asked");
            assert!(
                matches!(outcome.report_via, Some(ReportVia::NewAssociation { .. })),
                "{}",
                outcome.summary()
            );
        }
    }
}

#[rstest]
fn an_archive_that_fails_every_second_instance_is_caught_with_its_reason(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        commitment_fail_every_nth: Some(2),
        ..FaultPlan::default()
    };
    let target = archive(session, COMMIT_ONLY, faults, Duration::from_secs(20));
    let commitment = committed(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    let check = campaign::checks::commitment_at_archive(&commitment);
    assert!(!check.passed, "{}", check.message);
    let expected_failures: usize = commitment.studies.iter().map(|s| s.requested / 2).sum();
    assert!(
        expected_failures > 0,
        "the samples hold a study of two or more"
    );
    let failed: Vec<_> = commitment
        .studies
        .iter()
        .filter_map(|s| s.outcome.as_ref())
        .flat_map(|o| o.failed.iter())
        .collect();
    assert_eq!(failed.len(), expected_failures);
    assert!(
        failed
            .iter()
            .all(|f| f.reason.is_some_and(|r| r.code == 0x0110))
    );
    assert_eq!(
        commitment.committed() + failed.len(),
        commitment.requested(),
        "every instance asked is accounted for"
    );
    assert!(check.message.contains("0110"), "{}", check.message);
}

#[rstest]
fn an_archive_that_never_reports_is_caught_at_the_commit_timeout(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        commitment_never_report: true,
        ..FaultPlan::default()
    };
    let target = archive(session, COMMIT_ONLY, faults, Duration::from_secs(1));
    let commitment = committed(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    let check = campaign::checks::commitment_at_archive(&commitment);
    assert!(!check.passed);
    assert!(
        check.message.contains("no report within"),
        "{}",
        check.message
    );
    for study in &commitment.studies {
        let outcome = study.outcome.as_ref().expect("every study was asked");
        assert!(outcome.timed_out, "{}", outcome.summary());
        assert_eq!(study.unaccounted(), study.requested);
    }
}

#[rstest]
fn a_report_for_a_transaction_nobody_asked_about_is_recorded_and_fails_the_check(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        commitment_unknown_transaction: true,
        ..FaultPlan::default()
    };
    let target = archive(session, COMMIT_ONLY, faults, Duration::from_secs(1));
    let commitment = committed(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    let check = campaign::checks::commitment_at_archive(&commitment);
    assert!(!check.passed);
    assert_eq!(
        commitment.unknown_reports,
        commitment.studies.len(),
        "one stray report per request"
    );
    assert!(
        check.message.contains("nobody asked about"),
        "{}",
        check.message
    );
    assert!(commitment.studies.iter().all(|s| !s.is_committed()));
}
