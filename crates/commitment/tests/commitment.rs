//! Storage Commitment against the minimal test SCP over loopback: every port bound
//! to 0, every wait bounded.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use commitment::{
    CommitmentOptions, CommitmentRequest, Committer, ListenerOptions, ReferencedInstance,
    ReportListener, ReportVia,
};
use dicom_dictionary_std::uids;
use dimse::{AeTitle, ScuOptions, Status, Timeouts};
use support::{Behaviour, Delivery, SCP_AE, TestScp};

const LISTENER_AE: &str = "SC_LISTENER";

fn scu(scp: &TestScp) -> ScuOptions {
    ScuOptions::new(
        scp.address(),
        AeTitle::new("DICOM_AUTO").unwrap(),
        AeTitle::new(SCP_AE).unwrap(),
    )
    .timeouts(Timeouts::all(Duration::from_secs(5)))
}

fn request(n: usize) -> CommitmentRequest {
    CommitmentRequest::new(
        (0..n).map(|i| {
            ReferencedInstance::new(uids::CT_IMAGE_STORAGE, format!("2.25.{}{i}", 1000 + n))
        }),
    )
}

fn listener() -> Arc<ReportListener> {
    Arc::new(
        ReportListener::start(
            ListenerOptions::new()
                .ae_title(AeTitle::new(LISTENER_AE).unwrap())
                .read_timeout(Duration::from_secs(5))
                .artim_timeout(Duration::from_secs(5)),
        )
        .unwrap(),
    )
}

fn to_listener(listener: &ReportListener, role_selection: bool) -> Delivery {
    Delivery::NewAssociation {
        listener: listener.local_addr(),
        called: LISTENER_AE.into(),
        role_selection,
    }
}

#[test]
fn committed_on_the_same_association() {
    let scp = TestScp::start(Behaviour::AllCommitted, Delivery::SameAssociation);
    let committer =
        Committer::new(CommitmentOptions::new(scu(&scp)).report_timeout(Duration::from_secs(5)))
            .unwrap();
    let request = request(3);
    let outcome = committer.commit(&request).unwrap();
    assert!(outcome.is_complete(), "{}", outcome.summary());
    assert_eq!(outcome.report_via, Some(ReportVia::SameAssociation));
    assert_eq!(outcome.committed, request.instances());
    assert_eq!(outcome.transaction_uid, request.transaction_uid());
    assert!(outcome.time_to_report.is_some());
    assert_eq!(*scp.report_answers.lock(), [Status::SUCCESS]);
    assert_eq!(*scp.actions.lock(), [request.transaction_uid().to_string()]);
}

#[test]
fn committed_via_a_new_association_with_role_selection() {
    let listener = listener();
    let scp = TestScp::start(Behaviour::AllCommitted, to_listener(&listener, true));
    let committer = Committer::with_listener(
        CommitmentOptions::new(scu(&scp))
            .report_timeout(Duration::from_secs(5))
            .keep_association_open(false),
        listener.clone(),
    )
    .unwrap();
    let outcome = committer.commit(&request(2)).unwrap();
    assert!(outcome.is_complete(), "{}", outcome.summary());
    assert_eq!(
        outcome.report_via,
        Some(ReportVia::NewAssociation {
            calling_ae_title: SCP_AE.into()
        })
    );
    assert!(
        outcome
            .summary()
            .contains("new association from COMMIT_SCP")
    );
    assert_eq!(*scp.report_answers.lock(), [Status::SUCCESS]);
    assert_eq!(listener.stats().delivered, 1);
}

#[test]
fn committed_via_a_new_association_without_role_selection_while_the_first_stays_open() {
    let scp_listener = listener();
    let scp = TestScp::start(Behaviour::AllCommitted, to_listener(&scp_listener, false));
    let committer = Committer::with_listener(
        CommitmentOptions::new(scu(&scp)).report_timeout(Duration::from_secs(5)),
        scp_listener.clone(),
    )
    .unwrap();
    let outcome = committer.commit(&request(1)).unwrap();
    assert!(outcome.is_complete(), "{}", outcome.summary());
    assert!(matches!(
        outcome.report_via,
        Some(ReportVia::NewAssociation { .. })
    ));
}

#[test]
fn a_partial_failure_names_each_failed_instance_and_its_reason() {
    let scp = TestScp::start(
        Behaviour::FailSome(vec![(1, 0x0112), (2, 0x0213)]),
        Delivery::SameAssociation,
    );
    let committer =
        Committer::new(CommitmentOptions::new(scu(&scp)).report_timeout(Duration::from_secs(5)))
            .unwrap();
    let request = request(4);
    let outcome = committer.commit(&request).unwrap();
    assert!(!outcome.is_complete());
    assert_eq!(outcome.event_type, Some(2));
    assert_eq!(outcome.committed.len(), 2);
    assert_eq!(outcome.failed.len(), 2);
    assert_eq!(outcome.failed[0].instance, request.instances()[1]);
    let reasons: Vec<_> = outcome
        .failed
        .iter()
        .map(|f| f.reason.unwrap().meaning)
        .collect();
    assert_eq!(reasons, ["no such object instance", "resource limitation"]);
    assert!(outcome.unanswered.is_empty() && outcome.unrequested.is_empty());
    assert!(outcome.anomalies.is_empty(), "{:?}", outcome.anomalies);
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["failed"][0]["reason"]["code"], 0x0112);
    assert!(json["time_to_report_ms"].is_number());
}

#[test]
fn unanswered_and_unrequested_instances_are_told_apart() {
    let scp = TestScp::start(Behaviour::Skewed, Delivery::SameAssociation);
    let committer =
        Committer::new(CommitmentOptions::new(scu(&scp)).report_timeout(Duration::from_secs(5)))
            .unwrap();
    let request = request(3);
    let outcome = committer.commit(&request).unwrap();
    assert!(!outcome.is_complete());
    assert_eq!(outcome.unanswered, [request.instances()[2].clone()]);
    assert_eq!(outcome.unrequested.len(), 1);
    assert_eq!(outcome.unrequested[0].sop_instance_uid, "2.25.999");
}

#[test]
fn no_report_times_out_and_nothing_hangs() {
    let listener = listener();
    let scp = TestScp::start(Behaviour::NeverReport, Delivery::SameAssociation);
    let committer = Committer::with_listener(
        CommitmentOptions::new(scu(&scp)).report_timeout(Duration::from_millis(600)),
        listener,
    )
    .unwrap();
    let started = Instant::now();
    let outcome = committer.commit(&request(2)).unwrap();
    assert!(outcome.timed_out, "{}", outcome.summary());
    assert!(!outcome.is_complete());
    assert_eq!(outcome.action_status, Some(Status::SUCCESS));
    assert!(outcome.report_via.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(outcome.summary().contains("no report within"));
}

#[test]
fn a_report_for_an_unknown_transaction_is_answered_and_recorded() {
    let listener = listener();
    let scp = TestScp::start(Behaviour::OtherTransaction, to_listener(&listener, true));
    let committer = Committer::with_listener(
        CommitmentOptions::new(scu(&scp))
            .report_timeout(Duration::from_millis(800))
            .keep_association_open(false),
        listener.clone(),
    )
    .unwrap();
    let request = request(2);
    let outcome = committer.commit(&request).unwrap();
    assert!(outcome.timed_out);
    assert_eq!(*scp.report_answers.lock(), [Status::SUCCESS]);
    let unknown = listener.unknown_reports();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_ne!(unknown[0].transaction_uid, request.transaction_uid());
    assert_eq!(unknown[0].from, SCP_AE);
    assert_eq!(unknown[0].committed, 2);
}

#[test]
fn a_malformed_report_is_answered_with_a_failure_and_recorded() {
    let listener = listener();
    let scp = TestScp::start(Behaviour::Malformed, to_listener(&listener, true));
    let committer = Committer::with_listener(
        CommitmentOptions::new(scu(&scp))
            .report_timeout(Duration::from_millis(800))
            .keep_association_open(false),
        listener.clone(),
    )
    .unwrap();
    let outcome = committer.commit(&request(1)).unwrap();
    assert!(outcome.timed_out);
    assert_eq!(*scp.report_answers.lock(), [Status::PROCESSING_FAILURE]);
    let malformed = listener.malformed_reports();
    assert_eq!(malformed.len(), 1);
    assert_eq!(malformed[0].answered, Status::PROCESSING_FAILURE);
    // The listener still serves afterwards.
    assert_eq!(listener.stats().associations, 1);
}

#[test]
fn a_malformed_report_on_the_same_association_is_an_anomaly() {
    let scp = TestScp::start(Behaviour::Malformed, Delivery::SameAssociation);
    let committer = Committer::new(
        CommitmentOptions::new(scu(&scp)).report_timeout(Duration::from_millis(800)),
    )
    .unwrap();
    let outcome = committer.commit(&request(1)).unwrap();
    assert!(outcome.timed_out);
    assert_eq!(outcome.anomalies.len(), 1, "{:?}", outcome.anomalies);
    assert_eq!(*scp.report_answers.lock(), [Status::PROCESSING_FAILURE]);
}

#[test]
fn a_refused_n_action_is_an_outcome_not_an_error() {
    let scp = TestScp::start(Behaviour::RefuseAction(0x0122), Delivery::SameAssociation);
    let committer =
        Committer::new(CommitmentOptions::new(scu(&scp)).report_timeout(Duration::from_secs(5)))
            .unwrap();
    let started = Instant::now();
    let outcome = committer.commit(&request(1)).unwrap();
    assert_eq!(outcome.action_status, Some(Status(0x0122)));
    assert_eq!(
        outcome.action_error_comment.as_deref(),
        Some("SOP class not supported here")
    );
    assert!(!outcome.timed_out && !outcome.is_complete());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no wait for a report"
    );
    assert!(outcome.summary().contains("N-ACTION refused with 0122"));
}

#[test]
fn one_listener_serves_two_commitments_in_sequence() {
    let cell = Arc::new(parking_lot::Mutex::new(None));
    let scp = TestScp::start(
        Behaviour::AllCommitted,
        Delivery::NewAssociationLater {
            listener: cell.clone(),
            called: LISTENER_AE.into(),
        },
    );
    // The listener is the committer's own, started by Committer::new.
    let committer = Committer::new(
        CommitmentOptions::new(scu(&scp))
            .report_timeout(Duration::from_secs(5))
            .keep_association_open(false)
            .listen(
                ListenerOptions::new()
                    .ae_title(AeTitle::new(LISTENER_AE).unwrap())
                    .read_timeout(Duration::from_secs(5)),
            ),
    )
    .unwrap();
    *cell.lock() = Some(committer.listener().unwrap().local_addr());
    for n in [1, 3] {
        let outcome = committer.commit(&request(n)).unwrap();
        assert!(outcome.is_complete(), "{}", outcome.summary());
    }
    let listener = committer.listener().unwrap();
    assert_eq!(listener.stats().delivered, 2);
    assert!(listener.unknown_reports().is_empty());
    assert_eq!(scp.actions.lock().len(), 2);
}

#[test]
fn options_that_cannot_work_are_refused() {
    let scp = TestScp::start(Behaviour::NeverReport, Delivery::SameAssociation);
    let error =
        Committer::new(CommitmentOptions::new(scu(&scp)).keep_association_open(false)).unwrap_err();
    assert!(error.to_string().contains("listener"), "{error}");
    let committer = Committer::new(CommitmentOptions::new(scu(&scp))).unwrap();
    assert!(committer.commit(&CommitmentRequest::new([])).is_err());
}
