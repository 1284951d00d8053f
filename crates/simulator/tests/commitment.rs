//! Storage Commitment Push Model against the simulator, driven by the project's
//! SCU (`commitment::Committer`, written independently of the simulator's SCP)
//! and, for malformed requests, by a hand-made N-ACTION over `dimse`: reports on
//! the same association and on a new one to a `ReportListener`, failures with
//! their reasons, the faults, the stats. Loopback, ports bound to 0, bounded waits.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use commitment::{
    CommitmentOptions, CommitmentOutcome, CommitmentRequest, Committer, ListenerOptions,
    ReferencedInstance, ReportListener, ReportVia,
};
use common::*;
use dicom_core::DataElement;
use dicom_core::VR;
use dicom_core::value::DataSetSequence;
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dimse::{Command, CommandField, PeerAddress, ScuOptions, Status, Timeouts};
use simulator::{Rules, Simulator, SimulatorConfig, SimulatorHandle};

const STUDY: &str = "1.2.826.0.9.8";
const SERIES: &str = "1.2.826.0.9.8.1";
const REQUESTOR: &str = "MODALITY";

fn sop(i: usize) -> String {
    format!("{SERIES}.{i}")
}

/// One storing route `LB-R`, the query AE `LB-QUERY`, `extra` appended.
fn rules(extra: &str) -> Rules {
    let toml = format!(
        "[settings]\nquery_ae_title = \"LB-QUERY\"\n{extra}\n[[route]]\nname = \"R\"\ncalled_ae_title = \"LB-R\"\n"
    );
    Rules::from_toml_str(&toml, "test.toml").unwrap()
}

/// A simulator with instances 1..=n stored (Secondary Capture).
fn start(rules: Rules, stored: usize) -> SimulatorHandle {
    let mut config = SimulatorConfig::with_rules(rules);
    config.forward_timeout = Duration::from_secs(5);
    let sim = Simulator::start(config).unwrap();
    let mut client = connect(sim.addr(), "LB-R").unwrap();
    for i in 1..=stored {
        let obj = instance(STUDY, SERIES, &sop(i), "OT", "commit me");
        assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    }
    client.release();
    sim
}

fn scu(sim: &SimulatorHandle, called: &str) -> ScuOptions {
    ScuOptions::new(
        PeerAddress::new("127.0.0.1", sim.addr().port()),
        REQUESTOR.parse().unwrap(),
        called.parse().unwrap(),
    )
    .timeouts(Timeouts {
        connect: Duration::from_secs(5),
        ..Timeouts::all(Duration::from_secs(10))
    })
}

fn referenced(range: std::ops::RangeInclusive<usize>) -> Vec<ReferencedInstance> {
    range
        .map(|i| ReferencedInstance::new(SECONDARY_CAPTURE, sop(i)))
        .collect()
}

/// Commits on the same association (no listener).
fn commit_here(
    sim: &SimulatorHandle,
    called: &str,
    request: &CommitmentRequest,
) -> CommitmentOutcome {
    let committer = Committer::new(
        CommitmentOptions::new(scu(sim, called)).report_timeout(Duration::from_secs(10)),
    )
    .unwrap();
    committer.commit(request).unwrap()
}

fn listener() -> Arc<ReportListener> {
    Arc::new(
        ReportListener::start(
            ListenerOptions::new()
                .ae_title(REQUESTOR.parse().unwrap())
                .read_timeout(Duration::from_secs(10))
                .artim_timeout(Duration::from_secs(10)),
        )
        .unwrap(),
    )
}

fn destination(listener: &ReportListener) -> String {
    format!(
        "[[move_destination]]\nae_title = \"{REQUESTOR}\"\nhost = \"127.0.0.1\"\nport = {}\n",
        listener.port()
    )
}

#[test]
fn all_committed_on_the_same_association_on_a_route_and_on_the_query_ae() {
    let sim = start(rules(""), 3);
    for called in ["LB-R", "LB-QUERY"] {
        let request = CommitmentRequest::new(referenced(1..=3));
        let outcome = commit_here(&sim, called, &request);
        assert!(outcome.is_complete(), "{}", outcome.summary());
        assert_eq!(outcome.action_status, Some(Status::SUCCESS));
        assert_eq!(outcome.event_type, Some(1));
        assert_eq!(outcome.committed.len(), 3);
        assert!(outcome.failed.is_empty());
        assert_eq!(outcome.report_via, Some(ReportVia::SameAssociation));
        assert_eq!(outcome.retrieve_ae_title.as_deref(), Some(called));
        assert!(outcome.anomalies.is_empty(), "{:?}", outcome.anomalies);
    }
    let c = sim.shutdown().commitments;
    assert_eq!((c.requests, c.refused), (2, 0));
    assert_eq!(c.reports_same_association, 2);
    assert_eq!((c.instances_committed, c.instances_failed), (6, 0));
    assert_eq!((c.reports_unanswered, c.reports_refused), (0, 0));
}

#[test]
fn an_instance_not_stored_or_of_another_class_fails_with_its_reason() {
    let sim = start(rules(""), 2);
    let mut instances = referenced(1..=1);
    instances.push(ReferencedInstance::new(SECONDARY_CAPTURE, sop(9)));
    instances.push(ReferencedInstance::new(uids::CT_IMAGE_STORAGE, sop(2)));
    let outcome = commit_here(&sim, "LB-R", &CommitmentRequest::new(instances));
    assert_eq!(outcome.event_type, Some(2), "{}", outcome.summary());
    assert!(!outcome.timed_out);
    assert_eq!(outcome.committed, referenced(1..=1));
    let reasons: Vec<(String, Option<u16>)> = outcome
        .failed
        .iter()
        .map(|f| {
            (
                f.instance.sop_instance_uid.clone(),
                f.reason.as_ref().map(|r| r.code),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [(sop(9), Some(0x0112)), (sop(2), Some(0x0119))],
        "{}",
        outcome.summary()
    );
    let c = sim.shutdown().commitments;
    assert_eq!((c.instances_committed, c.instances_failed), (1, 2));
}

#[test]
fn the_report_waits_for_the_configured_delay() {
    let sim = start(rules("commitment_report_delay_ms = 300\n"), 1);
    let started = Instant::now();
    let outcome = commit_here(&sim, "LB-R", &CommitmentRequest::new(referenced(1..=1)));
    assert!(outcome.is_complete(), "{}", outcome.summary());
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(outcome.time_to_report.unwrap() >= Duration::from_millis(300));
}

#[test]
fn new_association_mode_reports_to_the_requestor_in_move_destinations() {
    let listener = listener();
    let extra = format!(
        "commitment_report = \"new-association\"\n\n{}",
        destination(&listener)
    );
    let sim = start(rules(&extra), 2);
    let options = CommitmentOptions::new(scu(&sim, "LB-R"))
        .keep_association_open(false)
        .report_timeout(Duration::from_secs(10));
    let committer = Committer::with_listener(options, listener.clone()).unwrap();
    let mut instances = referenced(1..=2);
    instances.push(ReferencedInstance::new(SECONDARY_CAPTURE, sop(7)));
    let outcome = committer
        .commit(&CommitmentRequest::new(instances))
        .unwrap();
    assert!(!outcome.timed_out, "{}", outcome.summary());
    assert_eq!(outcome.event_type, Some(2));
    assert_eq!(outcome.committed.len(), 2);
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(
        outcome.report_via,
        Some(ReportVia::NewAssociation {
            calling_ae_title: "LB-R".into()
        })
    );
    assert!(eventually(|| sim
        .stats()
        .commitments
        .reports_new_association
        == 1));
    let c = sim.shutdown().commitments;
    assert_eq!(
        (c.reports_same_association, c.undeliverable_reports),
        (0, 0)
    );
    assert_eq!(c.reports_unanswered, 0);
    assert!(listener.unknown_reports().is_empty());
    assert!(listener.malformed_reports().is_empty());
}

#[test]
fn a_requestor_missing_from_move_destinations_is_an_undeliverable_report() {
    let listener = listener();
    let sim = start(rules("commitment_report = \"new-association\"\n"), 1);
    let options = CommitmentOptions::new(scu(&sim, "LB-R"))
        .keep_association_open(false)
        .report_timeout(Duration::from_millis(800));
    let committer = Committer::with_listener(options, listener).unwrap();
    let outcome = committer
        .commit(&CommitmentRequest::new(referenced(1..=1)))
        .unwrap();
    assert_eq!(outcome.action_status, Some(Status::SUCCESS));
    assert!(outcome.timed_out, "{}", outcome.summary());
    let c = sim.shutdown().commitments;
    assert_eq!(c.undeliverable_reports, 1);
    let why = c.last_undeliverable.unwrap();
    assert!(
        why.contains(REQUESTOR) && why.contains("move_destination"),
        "{why}"
    );
}

#[test]
fn never_report_fault_leaves_the_client_waiting_until_its_timeout() {
    let sim = start(rules("[faults]\ncommitment_never_report = true\n"), 1);
    let committer = Committer::new(
        CommitmentOptions::new(scu(&sim, "LB-R")).report_timeout(Duration::from_millis(700)),
    )
    .unwrap();
    let outcome = committer
        .commit(&CommitmentRequest::new(referenced(1..=1)))
        .unwrap();
    assert_eq!(outcome.action_status, Some(Status::SUCCESS));
    assert!(outcome.timed_out, "{}", outcome.summary());
    assert!(outcome.event_type.is_none());
    let c = sim.shutdown().commitments;
    assert_eq!(c.never_reported_by_fault, 1);
    assert_eq!(c.reports_same_association + c.reports_new_association, 0);
}

#[test]
fn unknown_transaction_fault_is_recorded_by_the_listener() {
    let listener = listener();
    let extra = format!(
        "commitment_report = \"new-association\"\n\n{}\n[faults]\ncommitment_unknown_transaction = true\n",
        destination(&listener)
    );
    let sim = start(rules(&extra), 1);
    let options = CommitmentOptions::new(scu(&sim, "LB-R"))
        .keep_association_open(false)
        .report_timeout(Duration::from_millis(1500));
    let committer = Committer::with_listener(options, listener.clone()).unwrap();
    let request = CommitmentRequest::new(referenced(1..=1));
    let outcome = committer.commit(&request).unwrap();
    assert!(outcome.timed_out, "{}", outcome.summary());
    assert!(eventually(|| listener.unknown_reports().len() == 1));
    let unknown = &listener.unknown_reports()[0];
    assert_ne!(unknown.transaction_uid, request.transaction_uid());
    assert_eq!((unknown.event_type, unknown.committed), (1, 1));
    let c = sim.shutdown().commitments;
    assert_eq!(c.unknown_transaction_by_fault, 1);
    assert_eq!(c.reports_new_association, 1);
}

#[test]
fn fail_every_nth_fault_fails_stored_instances_with_processing_failure() {
    let sim = start(rules("[faults]\ncommitment_fail_every_nth = 2\n"), 3);
    let outcome = commit_here(&sim, "LB-R", &CommitmentRequest::new(referenced(1..=3)));
    assert_eq!(outcome.event_type, Some(2), "{}", outcome.summary());
    assert_eq!(outcome.committed.len(), 2);
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.failed[0].instance.sop_instance_uid, sop(2));
    assert_eq!(
        outcome.failed[0].reason.as_ref().map(|r| r.code),
        Some(0x0110)
    );
    let c = sim.shutdown().commitments;
    assert_eq!(c.failed_by_fault, 1);
}

/// The action information: a Transaction UID (when given) and a Referenced SOP
/// Sequence.
fn action_information(transaction: Option<&str>) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    if let Some(t) = transaction {
        obj.put_str(tags::TRANSACTION_UID, VR::UI, t);
    }
    let mut item = InMemDicomObject::new_empty();
    item.put_str(tags::REFERENCED_SOP_CLASS_UID, VR::UI, SECONDARY_CAPTURE);
    item.put_str(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, sop(1));
    obj.put(DataElement::new(
        tags::REFERENCED_SOP_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(vec![item]),
    ));
    encode(&obj)
}

#[test]
fn malformed_n_actions_get_failure_statuses_and_the_association_goes_on() {
    let sim = start(rules(""), 1);
    let mut association = scu(&sim, "LB-R")
        .propose(
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            [uids::EXPLICIT_VR_LITTLE_ENDIAN],
        )
        .establish()
        .unwrap();
    let pc = association
        .accepted_context(uids::STORAGE_COMMITMENT_PUSH_MODEL)
        .unwrap()
        .id;
    let instance = uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE;
    let good = action_information(Some("2.25.77"));
    let cases: [(&str, u16, Option<Vec<u8>>, u16); 5] = [
        (instance, 1, None, 0x0110),
        (instance, 1, Some(vec![0xFF; 7]), 0x0110),
        (instance, 1, Some(action_information(None)), 0x0115),
        ("1.2.3.4", 1, Some(good.clone()), 0x0112),
        (instance, 2, Some(good.clone()), 0x0123),
    ];
    for (sop_instance, action_type, data, expected) in cases {
        let id = association.next_message_id();
        let rq = Command::n_action_rq(
            id,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            sop_instance,
            action_type,
            data.is_some(),
        );
        association.send(pc, &rq, data.as_deref()).unwrap();
        let rsp = association
            .expect_response(id, CommandField::NActionRsp)
            .unwrap();
        assert_eq!(rsp.status, Status(expected), "{:?}", rsp.command);
        assert!(rsp.command.error_comment.is_some(), "{:?}", rsp.command);
    }
    // A good one on the same association: success, then the report.
    let id = association.next_message_id();
    let rq = Command::n_action_rq(id, uids::STORAGE_COMMITMENT_PUSH_MODEL, instance, 1, true);
    association.send(pc, &rq, Some(&good)).unwrap();
    let rsp = association
        .expect_response(id, CommandField::NActionRsp)
        .unwrap();
    assert_eq!(rsp.status, Status::SUCCESS);
    match association.receive().unwrap() {
        dimse::Incoming::Message(m) => {
            assert_eq!(m.command.field, CommandField::NEventReportRq);
            assert_eq!(m.command.event_type_id, Some(1));
            assert_eq!(m.command.sop_instance_uid.as_deref(), Some(instance));
            let answer = Command::response_to(&m.command, Status::SUCCESS, false).unwrap();
            association.send(pc, &answer, None).unwrap();
        }
        other => panic!("{other:?}"),
    }
    association.release().unwrap();
    let stats = sim.shutdown();
    let c = stats.commitments;
    assert_eq!((c.requests, c.refused), (6, 5));
    assert_eq!(c.reports_same_association, 1);
    assert_eq!(stats.associations.panicked, 0);
}
