//! Storage Commitment (Push Model, PS3.4 Annex J) against Orthanc: `crates/commitment`'s
//! `Committer` asks, Orthanc answers the N-ACTION and sends its N-EVENT-REPORT on a new
//! association to the modality it knows under our calling AE title (its
//! `DicomModalities`, `AllowStorageCommitment`), where our `ReportListener` takes it.
//!
//! Each test stores a few small synthetic CT instances into its own Orthanc first (by
//! the start script's storescu), then commits them, or them and others.
//!
//! What Orthanc 1.10 really does, as asserted here: every stored instance committed
//! (event type 1); one it does not hold failed with 0x0112, one named under another
//! SOP class with 0x0119 (event type 2, the others committed); the report always on a
//! new association, also when we keep the N-ACTION's open; an N-ACTION from an AE
//! title missing from `DicomModalities` aborted (no N-ACTION-RSP); a report it cannot
//! deliver (nobody at the modality's port) never comes, and our wait ends at the
//! report timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use commitment::{
    CommitmentOptions, CommitmentOutcome, CommitmentRequest, Committer, ListenerOptions,
    ReferencedInstance, ReportListener, ReportVia,
};
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dimse::{PeerAddress, ScuOptions, Status, Timeouts};
use loader::synth::{ImageGeometry, InstanceBuilder, Modality, UidGenerator};
use tests_suite::peers::{OrthancOptions, Peer};

use crate::common::require_peers;

/// The AE title we commit under, and the one our listener answers to: Orthanc sends
/// the report to the modality declared under the calling AE title of the N-ACTION.
const OUR_AE: &str = "DA-COMMIT";

/// How many instances each test stores.
const STORED: usize = 5;

/// Long enough for Orthanc's commitment job (well under a second here).
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

fn uid(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|v| v.trim_end_matches('\0').trim().to_string())
        .expect("a UID")
}

/// Writes `n` small CT instances into `dir` and returns them as commitment references.
fn synthetic_instances(dir: &Path, n: usize) -> Vec<ReferencedInstance> {
    (1..=n)
        .map(|i| {
            let obj = InstanceBuilder::new(Modality::Ct)
                .geometry(ImageGeometry::mono16(8, 8, 12))
                .instance_number(i as u32)
                .write_to(dir.join(format!("ct-{i}.dcm")))
                .expect("a synthetic CT is written");
            ReferencedInstance::new(
                uid(&obj, tags::SOP_CLASS_UID),
                uid(&obj, tags::SOP_INSTANCE_UID),
            )
        })
        .collect()
}

/// Our listener on loopback, a port the system picks.
fn start_listener() -> Arc<ReportListener> {
    Arc::new(
        ReportListener::start(
            ListenerOptions::new()
                .bind("127.0.0.1:0".parse().unwrap())
                .ae_title(OUR_AE.parse().unwrap())
                .artim_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(20))
                .write_timeout(Duration::from_secs(20)),
        )
        .expect("the report listener starts"),
    )
}

/// An Orthanc holding `stored` (written into a folder of their own), which knows
/// `modalities`.
fn start_orthanc(
    modalities: Vec<(String, SocketAddr)>,
    stored: usize,
) -> (Peer, Vec<ReferencedInstance>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let instances = synthetic_instances(dir.path(), stored);
    let orthanc = Peer::orthanc(&OrthancOptions {
        modalities,
        load: vec![dir.path().to_path_buf()],
        ..OrthancOptions::default()
    })
    .expect("Orthanc starts");
    assert_eq!(orthanc.loaded(), stored, "{}", orthanc.log());
    (orthanc, instances)
}

fn committer(
    orthanc: &Peer,
    calling_ae_title: &str,
    listener: &Arc<ReportListener>,
    report_timeout: Duration,
    keep_association_open: bool,
) -> Committer {
    let scu = ScuOptions::new(
        PeerAddress::new("127.0.0.1", orthanc.port()),
        calling_ae_title.parse().unwrap(),
        orthanc.ae_title().parse().unwrap(),
    )
    .timeouts(Timeouts::all(Duration::from_secs(20)));
    Committer::with_listener(
        CommitmentOptions::new(scu)
            .report_timeout(report_timeout)
            .keep_association_open(keep_association_open),
        listener.clone(),
    )
    .expect("a valid committer")
}

/// Orthanc's modalities: our listener under our AE title.
fn us(listener: &ReportListener) -> Vec<(String, SocketAddr)> {
    vec![(OUR_AE.to_string(), listener.local_addr())]
}

fn commit(committer: &Committer, request: &CommitmentRequest, orthanc: &Peer) -> CommitmentOutcome {
    committer
        .commit(request)
        .unwrap_or_else(|e| panic!("the commitment runs: {e}\n{}", orthanc.log()))
}

fn sop_instance_uids<'a>(
    instances: impl IntoIterator<Item = &'a ReferencedInstance>,
) -> Vec<String> {
    let mut uids: Vec<String> = instances
        .into_iter()
        .map(|i| i.sop_instance_uid.clone())
        .collect();
    uids.sort();
    uids
}

/// Every report came through the listener and was for a commitment waiting for it.
fn check_listener_clean(listener: &ReportListener) {
    assert!(
        listener.unknown_reports().is_empty(),
        "{:?}",
        listener.unknown_reports()
    );
    assert!(
        listener.malformed_reports().is_empty(),
        "{:?}",
        listener.malformed_reports()
    );
}

fn via_orthanc(orthanc: &Peer) -> Option<ReportVia> {
    Some(ReportVia::NewAssociation {
        calling_ae_title: orthanc.ae_title().to_string(),
    })
}

#[test]
fn orthanc_commits_every_stored_instance_on_a_new_association() {
    require_peers();
    let listener = start_listener();
    let (orthanc, stored) = start_orthanc(us(&listener), STORED);
    let committer = committer(&orthanc, OUR_AE, &listener, REPORT_TIMEOUT, false);
    let request = CommitmentRequest::new(stored.clone());

    let outcome = commit(&committer, &request, &orthanc);

    let context = format!("{}: {:?}\n{}", outcome.summary(), outcome, orthanc.log());
    assert!(outcome.is_complete(), "{context}");
    assert_eq!(outcome.action_status, Some(Status::SUCCESS), "{context}");
    assert_eq!(
        sop_instance_uids(&outcome.committed),
        sop_instance_uids(&stored),
        "{context}"
    );
    assert!(outcome.failed.is_empty(), "{context}");
    assert_eq!(outcome.report_via, via_orthanc(&orthanc), "{context}");
    assert!(!outcome.timed_out, "{context}");
    assert_eq!(listener.stats().delivered, 1, "{context}");
    check_listener_clean(&listener);
    orthanc.stop().unwrap();
    listener.shutdown();
}

#[test]
fn orthanc_reports_an_instance_it_does_not_hold_as_failed() {
    require_peers();
    let listener = start_listener();
    let (orthanc, stored) = start_orthanc(us(&listener), STORED);
    let committer = committer(&orthanc, OUR_AE, &listener, REPORT_TIMEOUT, false);
    let never_stored = ReferencedInstance::new(
        stored[0].sop_class_uid.clone(),
        UidGenerator::from_entropy().next_uid(),
    );
    let request = CommitmentRequest::new(stored.clone()).with_instance(never_stored.clone());

    let outcome = commit(&committer, &request, &orthanc);

    let context = format!("{}: {:?}\n{}", outcome.summary(), outcome, orthanc.log());
    assert!(!outcome.is_complete(), "{context}");
    assert_eq!(outcome.action_status, Some(Status::SUCCESS), "{context}");
    assert_eq!(
        outcome.event_type,
        Some(commitment::EVENT_FAILURES_EXIST),
        "{context}"
    );
    assert_eq!(
        sop_instance_uids(&outcome.committed),
        sop_instance_uids(&stored),
        "{context}"
    );
    assert_eq!(outcome.failed.len(), 1, "{context}");
    assert_eq!(outcome.failed[0].instance, never_stored, "{context}");
    // Orthanc finds no instance with that SOP Instance UID: 0x0112, no such object
    // instance.
    assert_eq!(
        outcome.failed[0].reason.map(|r| r.code),
        Some(0x0112),
        "{context}"
    );
    assert!(outcome.unanswered.is_empty(), "{context}");
    assert!(outcome.unrequested.is_empty(), "{context}");
    assert!(outcome.anomalies.is_empty(), "{context}");
    assert_eq!(outcome.report_via, via_orthanc(&orthanc), "{context}");
    check_listener_clean(&listener);
    orthanc.stop().unwrap();
    listener.shutdown();
}

#[test]
fn an_unknown_calling_ae_has_its_n_action_aborted_at_once_and_gets_no_report() {
    require_peers();
    let listener = start_listener();
    let (orthanc, stored) = start_orthanc(us(&listener), STORED);
    let timeout = Duration::from_secs(3);
    let committer = committer(&orthanc, "NOT-A-MODALITY", &listener, timeout, false);
    let request = CommitmentRequest::new(stored);

    let started = Instant::now();
    let outcome = commit(&committer, &request, &orthanc);
    let took = started.elapsed();

    // Orthanc accepts the association (it checks no calling AE title there), then
    // rejects the N-ACTION of an AE title missing from DicomModalities ("DICOM
    // authorization rejected", "Rejected N-ACTION request" in its log) by aborting
    // the association: no N-ACTION-RSP, so no wait for a report at all.
    let context = format!("{}: {:?}\n{}", outcome.summary(), outcome, orthanc.log());
    assert!(!outcome.is_complete(), "{context}");
    assert_eq!(outcome.action_status, None, "{context}");
    let interrupted = outcome.interrupted.as_deref().unwrap_or_default();
    assert!(interrupted.contains("no N-ACTION-RSP"), "{context}");
    assert!(interrupted.contains("aborted"), "{context}");
    assert!(!outcome.timed_out, "{context}");
    assert!(outcome.report_via.is_none(), "{context}");
    assert!(took < timeout, "took {took:?}: {context}");
    assert_eq!(listener.stats().associations, 0, "{context}");
    assert!(orthanc.log().contains("Rejected N-ACTION"), "{context}");
    orthanc.stop().unwrap();
    listener.shutdown();
}

#[test]
fn a_report_orthanc_cannot_deliver_leaves_the_wait_to_end_at_the_report_timeout() {
    require_peers();
    let listener = start_listener();
    // A known modality whose port nobody listens on (bound, then closed).
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut modalities = us(&listener);
    modalities.push(("DA-COMMIT-GONE".to_string(), nowhere));
    let (orthanc, stored) = start_orthanc(modalities, STORED);
    let timeout = Duration::from_secs(3);
    let committer = committer(&orthanc, "DA-COMMIT-GONE", &listener, timeout, false);
    let request = CommitmentRequest::new(stored);

    let started = Instant::now();
    let outcome = commit(&committer, &request, &orthanc);
    let took = started.elapsed();

    // Orthanc takes the request, then fails to open the association for its report
    // ("connecting to AET ...: TCP Initialization Error: Connection refused" in its
    // log) and does not try again within the wait.
    let context = format!("{}: {:?}\n{}", outcome.summary(), outcome, orthanc.log());
    assert!(!outcome.is_complete(), "{context}");
    assert_eq!(outcome.action_status, Some(Status::SUCCESS), "{context}");
    assert!(outcome.timed_out, "{context}");
    assert!(outcome.interrupted.is_none(), "{context}");
    assert!(outcome.report_via.is_none(), "{context}");
    assert!(
        outcome.committed.is_empty() && outcome.failed.is_empty(),
        "{context}"
    );
    assert!(took >= timeout, "took {took:?}: {context}");
    assert!(
        took < timeout + Duration::from_secs(5),
        "took {took:?}: {context}"
    );
    assert_eq!(listener.stats().associations, 0, "{context}");
    assert!(
        orthanc
            .log()
            .contains("connecting to AET \"DA-COMMIT-GONE\""),
        "{context}"
    );
    orthanc.stop().unwrap();
    listener.shutdown();
}

#[test]
fn orthanc_reports_an_instance_named_under_another_sop_class_as_failed() {
    require_peers();
    let listener = start_listener();
    let (orthanc, stored) = start_orthanc(us(&listener), STORED);
    let committer = committer(&orthanc, OUR_AE, &listener, REPORT_TIMEOUT, false);
    let (right, wrong) = stored.split_at(STORED - 1);
    let misnamed = ReferencedInstance::new(
        dicom_dictionary_std::uids::MR_IMAGE_STORAGE,
        wrong[0].sop_instance_uid.clone(),
    );
    let request = CommitmentRequest::new(right.to_vec()).with_instance(misnamed.clone());

    let outcome = commit(&committer, &request, &orthanc);

    let context = format!("{}: {:?}\n{}", outcome.summary(), outcome, orthanc.log());
    assert!(!outcome.is_complete(), "{context}");
    assert_eq!(
        outcome.event_type,
        Some(commitment::EVENT_FAILURES_EXIST),
        "{context}"
    );
    assert_eq!(
        sop_instance_uids(&outcome.committed),
        sop_instance_uids(right),
        "{context}"
    );
    assert_eq!(outcome.failed.len(), 1, "{context}");
    assert_eq!(outcome.failed[0].instance, misnamed, "{context}");
    // Orthanc holds the SOP Instance UID under CT Image Storage: 0x0119,
    // class-instance conflict.
    assert_eq!(
        outcome.failed[0].reason.map(|r| r.code),
        Some(0x0119),
        "{context}"
    );
    assert!(outcome.anomalies.is_empty(), "{context}");
    check_listener_clean(&listener);
    orthanc.stop().unwrap();
    listener.shutdown();
}

#[test]
fn with_the_association_kept_open_orthanc_still_reports_on_a_new_one() {
    require_peers();
    let listener = start_listener();
    let (orthanc, stored) = start_orthanc(us(&listener), STORED);
    let committer = committer(&orthanc, OUR_AE, &listener, REPORT_TIMEOUT, true);
    let request = CommitmentRequest::new(stored.clone());

    let outcome = commit(&committer, &request, &orthanc);

    // Orthanc never reports on the N-ACTION's association: it opens its own, and the
    // committer takes the report from the listener while watching the open one.
    let context = format!("{}: {:?}\n{}", outcome.summary(), outcome, orthanc.log());
    assert!(outcome.is_complete(), "{context}");
    assert_eq!(outcome.report_via, via_orthanc(&orthanc), "{context}");
    assert_eq!(outcome.committed.len(), stored.len(), "{context}");
    check_listener_clean(&listener);
    orthanc.stop().unwrap();
    listener.shutdown();
}
