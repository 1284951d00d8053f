//! The retrieve client against real archives holding the samples: DCMTK dcmqrscp and
//! Orthanc, C-MOVE (to dicom-auto's sink, declared to the archive) and C-GET, at every
//! level, under Study Root and Patient Root; a move destination the archive does not
//! know, and a retrieve cancelled midway, end with a clear result.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use dimse::{AeTitle, InformationModel, PeerAddress, ScuOptions, Status, Timeouts};
use retrieve::{
    CancelReason, Method, ReceivedInstance, RetrieveOptions, RetrieveOutcome, RetrieveRequest,
    Retriever,
};
use sink::{Ledger, LedgerOptions, Sink, SinkOptions};
use tests_suite::peers::{DcmqrscpOptions, OrthancOptions, Peer};

use crate::common::{require_peers, samples, samples_dir};

const SINK_AE: &str = "DA-RETRIEVE-SINK";

/// The samples' hierarchy: patient -> study -> series -> SOP Instance UIDs.
#[derive(Debug, Default)]
struct Archive {
    patients: BTreeMap<String, BTreeSet<String>>,
    studies: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    patient_of_study: BTreeMap<String, String>,
}

impl Archive {
    fn of_samples() -> Archive {
        let mut archive = Archive::default();
        for info in samples() {
            let study = info.study_instance_uid.clone().expect("StudyInstanceUID");
            let series = info.series_instance_uid.clone().expect("SeriesInstanceUID");
            let patient = info.patient_id.clone().expect("PatientID");
            archive
                .patients
                .entry(patient.clone())
                .or_default()
                .insert(info.sop_instance_uid.clone());
            archive
                .studies
                .entry(study.clone())
                .or_default()
                .entry(series)
                .or_default()
                .insert(info.sop_instance_uid.clone());
            archive.patient_of_study.insert(study, patient);
        }
        archive
    }

    fn study_instances(&self, study: &str) -> BTreeSet<String> {
        self.studies[study].values().flatten().cloned().collect()
    }

    /// A study with a series of at least two instances, and that series.
    fn study_with_a_large_series(&self) -> (&str, &str, &BTreeSet<String>) {
        self.studies
            .iter()
            .flat_map(|(study, series)| {
                series
                    .iter()
                    .map(move |(uid, instances)| (study.as_str(), uid.as_str(), instances))
            })
            .max_by_key(|(_, _, instances)| instances.len())
            .expect("a series")
    }

    fn largest_study(&self) -> (&str, usize) {
        self.studies
            .keys()
            .map(|s| (s.as_str(), self.study_instances(s).len()))
            .max_by_key(|(_, n)| *n)
            .expect("a study")
    }
}

/// Our sink, declared to the archive as the move destination.
fn start_sink() -> Sink {
    Sink::start(
        SinkOptions::new()
            .bind("127.0.0.1:0".parse().unwrap())
            .ae_title(SINK_AE.parse().unwrap()),
        Ledger::new(LedgerOptions::new().observe()),
    )
    .expect("the sink starts")
}

fn options(peer: &Peer, model: InformationModel) -> RetrieveOptions {
    let scu = ScuOptions::new(
        PeerAddress::new("127.0.0.1", peer.port()),
        "DA-RETRIEVE".parse().unwrap(),
        peer.ae_title().parse().unwrap(),
    )
    .timeouts(Timeouts::all(Duration::from_secs(20)));
    RetrieveOptions::new(scu)
        .models([model])
        .stall_timeout(Duration::from_secs(20))
        .storage_sop_classes(samples().iter().map(|i| i.sop_class_uid.clone()))
}

/// Runs `request` by `method` and returns the outcome with the SOP Instance UIDs that
/// came back (on our association for a C-GET, at the sink for a C-MOVE).
fn run(
    retriever: &mut Retriever,
    sink: &Sink,
    request: &RetrieveRequest,
) -> (RetrieveOutcome, usize, BTreeSet<String>) {
    let before = sink.stats().stores;
    let mut got = BTreeSet::new();
    let mut receiver = |instance: ReceivedInstance| {
        got.insert(instance.sop_instance_uid);
        Status::SUCCESS
    };
    let outcome = retriever
        .retrieve(request, &mut receiver)
        .unwrap_or_else(|e| panic!("{request}: {e}"));
    // The archive answers our C-MOVE after its last C-STORE to the sink was answered.
    let at_sink = (sink.stats().stores - before) as usize;
    (outcome, at_sink, got)
}

fn check_every_level(peer: &Peer, sink: &Sink, archive: &Archive) {
    for model in [InformationModel::StudyRoot, InformationModel::PatientRoot] {
        for method in [
            Method::Move {
                destination: SINK_AE.parse::<AeTitle>().unwrap(),
            },
            Method::Get,
        ] {
            let context = format!("{:?}, {method}, {model}", peer.kind());
            let mut retriever = Retriever::new(options(peer, model), method.clone());
            let (study, series, series_instances) = archive.study_with_a_large_series();
            let patient = &archive.patient_of_study[study];
            let two: Vec<String> = series_instances.iter().take(2).cloned().collect();
            let mut requests = vec![
                (
                    RetrieveRequest::study(study).with_patient_id(patient),
                    archive.study_instances(study),
                ),
                (
                    RetrieveRequest::series(study, [series.to_string()]).with_patient_id(patient),
                    series_instances.clone(),
                ),
                (
                    RetrieveRequest::instances(study, series, two.clone()).with_patient_id(patient),
                    two.into_iter().collect(),
                ),
            ];
            if model == InformationModel::PatientRoot {
                requests.push((
                    RetrieveRequest::patient(patient),
                    archive.patients[patient].clone(),
                ));
            } else {
                let all: Vec<String> = archive.studies.keys().cloned().collect();
                requests.push((
                    RetrieveRequest::studies(all),
                    samples()
                        .iter()
                        .map(|i| i.sop_instance_uid.clone())
                        .collect(),
                ));
            }
            for (request, expected) in &requests {
                let (outcome, at_sink, got) = run(&mut retriever, sink, request);
                let context = format!("{request}: {context}: {}", outcome.summary());
                assert!(outcome.is_complete(), "{context}: {:?}", outcome.anomalies);
                assert_eq!(outcome.model, model, "{context}");
                assert_eq!(
                    outcome.reported_retrieved() as usize,
                    expected.len(),
                    "{context}"
                );
                match method {
                    Method::Get => {
                        assert_eq!(&got, expected, "{context}");
                        assert_eq!(outcome.received as usize, expected.len(), "{context}");
                        assert_eq!(at_sink, 0, "{context}");
                    }
                    Method::Move { .. } => {
                        assert!(got.is_empty(), "{context}");
                        assert_eq!(at_sink, expected.len(), "{context}");
                    }
                }
            }
            retriever.release();
        }
    }
}

/// A move destination the archive does not know: refused with `expected`, at once.
fn check_unknown_destination(peer: &Peer, archive: &Archive, expected: Status) {
    let (study, _) = archive.largest_study();
    let mut retriever = Retriever::new(
        options(peer, InformationModel::StudyRoot),
        Method::Move {
            destination: "NOBODY-KNOWS".parse().unwrap(),
        },
    );
    let outcome = retriever
        .retrieve(&RetrieveRequest::study(study), &mut retrieve::Discard)
        .unwrap();
    assert_eq!(
        outcome.final_status,
        Some(expected),
        "{}",
        outcome.summary()
    );
    assert!(!outcome.is_complete());
    assert_eq!(outcome.reported_retrieved(), 0);
    assert!(
        outcome.elapsed < Duration::from_secs(10),
        "{}",
        outcome.summary()
    );
    retriever.release();
}

/// A retrieve cancelled after its first sub-operation ends with a final response
/// (cancelled, or complete when the archive was quicker than our C-CANCEL) whose
/// counts add up to the study, never a hang; a retrieve after it is whole.
fn check_cancel_midway(peer: &Peer, sink: &Sink, archive: &Archive) {
    let (study, total) = archive.largest_study();
    for method in [
        Method::Move {
            destination: SINK_AE.parse().unwrap(),
        },
        Method::Get,
    ] {
        let mut retriever = Retriever::new(
            options(peer, InformationModel::StudyRoot)
                .max_sub_operations(Some(1))
                .cancel_grace(Duration::from_secs(10)),
            method.clone(),
        );
        let (outcome, _, _) = run(&mut retriever, sink, &RetrieveRequest::study(study));
        let context = format!("{:?}, {method}: {}", peer.kind(), outcome.summary());
        assert_eq!(outcome.cancelled, Some(CancelReason::Limit), "{context}");
        assert!(outcome.interrupted.is_none(), "{context}");
        match outcome.final_status {
            // Done plus not attempted is the study (Orthanc may report a C-CANCEL
            // that came after its last sub-operation as cancelled, remaining 0).
            Some(Status::CANCEL) => assert_eq!(
                outcome.reported_retrieved() as usize
                    + usize::from(outcome.counts.remaining.unwrap_or(0))
                    + usize::from(outcome.counts.failed.unwrap_or(0)),
                total,
                "{context}"
            ),
            Some(Status::SUCCESS) => {
                assert_eq!(outcome.reported_retrieved() as usize, total, "{context}")
            }
            other => panic!("final status {other:?}: {context}"),
        }
        // Released first: dcmqrscp's process for an association whose C-GET was
        // cancelled keeps a shared lock on its index until the association ends,
        // and the process serving the next association waits for an exclusive one
        // (seen in /proc/locks), so a retrieve beside it would stall.
        retriever.release();
        // A retrieve on a new association is whole.
        let mut unlimited = Retriever::new(options(peer, InformationModel::StudyRoot), method);
        let (again, _, _) = run(&mut unlimited, sink, &RetrieveRequest::study(study));
        assert!(again.is_complete(), "{}\n{}", again.summary(), peer.log());
        unlimited.release();
    }
}

fn destination(sink: &Sink) -> Vec<(String, SocketAddr)> {
    vec![(SINK_AE.to_string(), sink.local_addr())]
}

#[test]
fn retrieve_brings_back_every_level_from_dcmqrscp_by_move_and_get_under_both_models() {
    require_peers();
    let archive = Archive::of_samples();
    let sink = start_sink();
    let dcmqrscp = Peer::dcmqrscp(&DcmqrscpOptions {
        load: vec![samples_dir()],
        move_destinations: destination(&sink),
        ..DcmqrscpOptions::default()
    })
    .unwrap();
    assert_eq!(dcmqrscp.loaded(), samples().len());
    check_every_level(&dcmqrscp, &sink, &archive);
    check_unknown_destination(&dcmqrscp, &archive, Status::MOVE_DESTINATION_UNKNOWN);
    check_cancel_midway(&dcmqrscp, &sink, &archive);
    dcmqrscp.stop().unwrap();
    sink.shutdown();
}

#[test]
fn retrieve_brings_back_every_level_from_orthanc_by_move_and_get_under_both_models() {
    require_peers();
    let archive = Archive::of_samples();
    let sink = start_sink();
    let orthanc = Peer::orthanc(&OrthancOptions {
        load: vec![samples_dir()],
        modalities: destination(&sink),
        ..OrthancOptions::default()
    })
    .unwrap();
    assert_eq!(orthanc.loaded(), samples().len());
    check_every_level(&orthanc, &sink, &archive);
    // Orthanc answers an unknown modality with "unable to process".
    check_unknown_destination(&orthanc, &archive, Status::CANNOT_UNDERSTAND);
    check_cancel_midway(&orthanc, &sink, &archive);
    orthanc.stop().unwrap();
    sink.shutdown();
}
