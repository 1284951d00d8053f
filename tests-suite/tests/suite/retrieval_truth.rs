//! Retrieval truth: what the destination archive gives back when asked (`VERIFY_AT`
//! with `retrieve`), each instance judged against its send. Every sample comes back
//! whole by C-GET and by C-MOVE; an archive that fails sub-operations, sends an
//! instance never asked for, or answers "pending" forever is caught and reported,
//! the study named, nothing hanging.
//!
//! On the embedded target the archive is the simulator (it keeps every instance in a
//! spool folder); its faults cannot be switched on in a remote archive, so those
//! tests skip against `COMPASS_HOST`.

use std::time::{Duration, Instant};

use campaign::LoadTarget;
use campaign::retrieval::RetrievalReport;
use config::{RetrieveMethod, TestConfig, UidStrategy, VerifyAt};
use rstest::rstest;
use sender::LoadPlan;
use simulator::FaultPlan;
use tests_suite::fixtures::*;
use tests_suite::load;
use tests_suite::record::TestReport;

/// An embedded target that verifies only by retrieval, by `method`, `faults` on.
fn archive(session: &'static Session, method: RetrieveMethod, faults: FaultPlan) -> LoadTarget {
    archive_with(session, faults, |config| config.retrieve.method = method)
}

fn archive_with(
    session: &'static Session,
    faults: FaultPlan,
    adjust: impl FnOnce(&mut TestConfig),
) -> LoadTarget {
    load::faulty_target(session, faults, |config| {
        config.sink.verify_at = VerifyAt {
            retrieve: true,
            ..VerifyAt::SINK
        };
        config.sink.delivery_timeout = Duration::from_secs(3);
        adjust(config);
    })
}

/// Sends `plan` through `target`, then retrieves what it delivered.
fn retrieved(report: &mut TestReport, target: &LoadTarget, plan: &LoadPlan) -> RetrievalReport {
    let run = load::run(report, target, plan);
    let verified = load::verify_and_attach(report, target, &run);
    let retrieved = verified.retrieved.expect("the target retrieves");
    assert!(
        retrieved.delivery.consistent,
        "{}",
        retrieved.delivery.counts.invariant()
    );
    retrieved
}

fn skip_unless_embedded(report: &mut TestReport, session: &Session) -> bool {
    load::skip_unless_embedded(report, session, "archive faults")
}

#[rstest]
fn every_sample_comes_back_whole_by_get_and_by_move_with_fresh_uids_and_as_is(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    for method in [RetrieveMethod::Get, RetrieveMethod::Move] {
        for uids in [UidStrategy::Fresh, UidStrategy::AsIs] {
            let target = archive(session, method, FaultPlan::default());
            let retrieval = retrieved(&mut report, &target, &load::each_sample_once(session, uids));
            let check = campaign::checks::retrieval_at_archive(&retrieval);
            assert!(check.passed, "{method:?}, {uids:?}: {}", check.message);
            let c = &retrieval.delivery.counts;
            assert_eq!(c.delivered, c.sent, "{method:?}, {uids:?}");
            assert_eq!(c.sent as usize, session.samples.infos.len());
            assert_eq!(retrieval.studies.len(), retrieval.studies_delivered);
            for study in &retrieval.studies {
                assert_eq!(
                    study.judged.matched, study.sent,
                    "{}",
                    study.study_instance_uid
                );
            }
        }
    }
}

#[rstest]
fn an_archive_that_fails_sub_operations_is_caught_with_the_instances_never_retrieved(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    for method in [RetrieveMethod::Get, RetrieveMethod::Move] {
        let faults = FaultPlan {
            retrieve_fail_every_nth: Some(2),
            ..FaultPlan::default()
        };
        let target = archive(session, method, faults);
        let retrieval = retrieved(
            &mut report,
            &target,
            &load::each_sample_once(session, UidStrategy::Fresh),
        );
        let check = campaign::checks::retrieval_at_archive(&retrieval);
        assert!(!check.passed, "{method:?}: {}", check.message);
        let c = &retrieval.delivery.counts;
        assert!(c.undelivered > 0, "{method:?}: {}", c.invariant());
        // What the archive says it failed is what never came back.
        let failed: u64 = retrieval
            .studies
            .iter()
            .filter_map(|s| s.outcome.as_ref())
            .map(|o| u64::from(o.counts.failed.unwrap_or(0)))
            .sum();
        assert_eq!(failed, c.undelivered, "{method:?}: {}", check.message);
        assert!(
            retrieval
                .studies
                .iter()
                .any(|s| !s.is_whole() && check.message.contains(s.study_instance_uid.as_str())),
            "the failure names a study: {}",
            check.message
        );
    }
}

#[rstest]
fn an_archive_that_sends_an_instance_never_asked_for_is_caught(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    for method in [RetrieveMethod::Get, RetrieveMethod::Move] {
        let faults = FaultPlan {
            retrieve_extra_instance: true,
            ..FaultPlan::default()
        };
        let target = archive(session, method, faults);
        let retrieval = retrieved(
            &mut report,
            &target,
            &load::each_sample_once(session, UidStrategy::Fresh),
        );
        let check = campaign::checks::retrieval_at_archive(&retrieval);
        assert!(!check.passed, "{method:?}: {}", check.message);
        assert!(
            retrieval.delivery.counts.unexpected > 0,
            "{method:?}: {}",
            retrieval.delivery.counts.invariant()
        );
        assert!(retrieval.studies.iter().all(|s| s.judged.unexpected > 0));
    }
}

#[rstest]
fn an_archive_pending_forever_is_cancelled_at_the_retrieve_deadline_and_reported(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        retrieve_pending_forever: true,
        ..FaultPlan::default()
    };
    let target = archive_with(session, faults, |config| {
        config.retrieve.studies = 2;
        config.retrieve.timeout = Duration::from_secs(2);
    });
    let started = Instant::now();
    let retrieval = retrieved(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    assert!(started.elapsed() < Duration::from_secs(60), "nothing hangs");
    assert_eq!(retrieval.studies.len(), 2, "RETRIEVE_STUDIES=2");
    for study in &retrieval.studies {
        let outcome = study.outcome.as_ref().expect("the retrieve ran");
        assert_eq!(
            outcome.cancelled,
            Some(retrieve::CancelReason::Deadline),
            "{}",
            outcome.summary()
        );
        assert!(!study.is_whole());
    }
    let check = campaign::checks::retrieval_at_archive(&retrieval);
    assert!(!check.passed);
    assert!(check.message.contains("cancelled"), "{}", check.message);
}

#[rstest]
fn a_sample_of_studies_is_judged_on_their_sends_alone(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let target = archive_with(session, FaultPlan::default(), |config| {
        config.retrieve.studies = 2;
    });
    let retrieval = retrieved(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    assert_eq!(retrieval.studies.len(), 2);
    assert!(retrieval.studies_delivered > 2);
    let sent: u64 = retrieval.studies.iter().map(|s| s.sent).sum();
    assert_eq!(retrieval.delivery.counts.sent, sent);
    let check = campaign::checks::retrieval_at_archive(&retrieval);
    assert!(check.passed, "{}", check.message);
}
