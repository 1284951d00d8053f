//! The sender against DCMTK storescp and Orthanc, and the whole chain: suite -> simulator
//! forwarding -> Orthanc, verified by C-FIND at Orthanc.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cfind::{CFindClient, Polling, SentStudy};
use config::{AssociationStrategy, UidStrategy};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use sender::{
    DicomSender, LoadPlan, LoadReport, NoObserver, PreparedInstance, StopAfter, run_load,
};
use simulator::rules::ForwardDestination;
use simulator::{Rules, Simulator, SimulatorConfig};
use tests_suite::peers::{OrthancOptions, Peer, StorescpOptions};

use crate::common::{require_peers, samples, send_each_once};

fn sender_to(addr: std::net::SocketAddr, called: &str, dimse_timeout: Duration) -> DicomSender {
    DicomSender::builder(addr.to_string())
        .calling_ae_title("DICOM-AUTO")
        .called_ae_title(called)
        .connect_timeout(Duration::from_secs(5))
        .acse_timeout(Duration::from_secs(10))
        .dimse_timeout(dimse_timeout)
        .write_timeout(Duration::from_secs(30))
        .build()
        .expect("a valid sender")
}

fn prepared(uids: UidStrategy) -> Vec<Arc<PreparedInstance>> {
    let paths: Vec<_> = samples().iter().map(|i| i.path.clone()).collect();
    let files = sender::prepare_paths(&paths, uids).expect("samples prepare");
    assert!(files.skipped.is_empty(), "skipped: {:?}", files.skipped);
    assert_eq!(files.instances.len(), samples().len());
    files.instances
}

fn sop_instance_uid(obj: &DefaultDicomObject) -> String {
    obj.element(tags::SOP_INSTANCE_UID)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches('\0').to_string())
        .expect("SOPInstanceUID")
}

#[test]
fn sender_delivers_every_sample_to_an_uncompressed_only_storescp_element_for_element() {
    require_peers();
    let storescp = Peer::storescp(&StorescpOptions::default()).unwrap();
    let sender = sender_to(
        storescp.addr(),
        storescp.ae_title(),
        Duration::from_secs(30),
    );
    let report = send_each_once(&sender, prepared(UidStrategy::AsIs));
    assert_eq!(
        report.metrics.counts.succeeded,
        samples().len() as u64,
        "{:?}",
        report.summary()
    );

    // What was sent: each sample as the old suite's loader saw it, compressed pixel
    // data decoded (storescp takes uncompressed data only, so the sender transcoded).
    let sent: BTreeMap<String, DefaultDicomObject> = samples()
        .iter()
        .map(|info| {
            let obj =
                loader::load_dataset(&info.path, &loader::LoadOptions::new().decompress(true))
                    .unwrap_or_else(|e| panic!("{e}"));
            (info.sop_instance_uid.clone(), obj)
        })
        .collect();
    let received_dir = storescp.received_dir().expect("storescp keeps files");
    let mut received = 0;
    for entry in std::fs::read_dir(&received_dir).unwrap() {
        let path = entry.unwrap().path();
        let got = OpenFileOptions::new()
            .open_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let uid = sop_instance_uid(&got);
        let want = sent
            .get(&uid)
            .unwrap_or_else(|| panic!("{uid} was never sent"));
        for element in want.iter() {
            let tag = element.header().tag;
            let other = got
                .get(tag)
                .unwrap_or_else(|| panic!("{uid}: {tag} missing at storescp"));
            if tag == tags::PIXEL_DATA {
                assert_eq!(
                    other.value().to_bytes().ok(),
                    element.value().to_bytes().ok(),
                    "{uid}: pixel data differs"
                );
            } else {
                // Sequence lengths (defined or not) are encoding, not value.
                assert!(
                    tests_suite::values::same_value(Some(other), Some(element)),
                    "{uid}: {tag} differs: sent {:?}, stored {:?}",
                    element.value(),
                    other.value()
                );
            }
        }
        let ts = got.meta().transfer_syntax().trim_end_matches('\0');
        assert!(
            ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"].contains(&ts),
            "{uid}: storescp took {ts}, not an uncompressed syntax"
        );
        received += 1;
    }
    assert_eq!(received, samples().len(), "files at storescp");
}

#[test]
fn sender_accounts_for_every_send_to_a_storescp_that_aborts_during_each_store() {
    require_peers();
    let storescp = Peer::storescp(&StorescpOptions::with_args(&["--abort-during"])).unwrap();
    let sender = sender_to(storescp.addr(), storescp.ae_title(), Duration::from_secs(5));
    let report = send_each_once(&sender, prepared(UidStrategy::AsIs));
    let counts = &report.metrics.counts;
    assert_eq!(counts.attempted, samples().len() as u64);
    assert_eq!(
        counts.succeeded + counts.warnings,
        0,
        "{:?}",
        report.summary()
    );
    assert_eq!(
        counts.failed + counts.unknown,
        counts.attempted,
        "{:?}",
        report.summary()
    );
}

#[test]
fn sender_leaves_stores_unknown_not_hanging_when_storescp_sleeps_past_the_dimse_timeout() {
    require_peers();
    let storescp = Peer::storescp(&StorescpOptions::with_args(&["--sleep-during", "4"])).unwrap();
    let sender = sender_to(storescp.addr(), storescp.ae_title(), Duration::from_secs(1));
    let two: Vec<_> = prepared(UidStrategy::AsIs).into_iter().take(2).collect();
    let report = send_each_once(&sender, two);
    let counts = &report.metrics.counts;
    assert_eq!(counts.attempted, 2);
    assert_eq!(counts.succeeded, 0, "{:?}", report.summary());
    assert!(
        counts.unknown >= 1,
        "a sent-then-timed-out store is unknown: {:?}",
        report.summary()
    );
}

#[test]
fn sender_counts_every_send_to_a_refusing_storescp_as_failed() {
    require_peers();
    let storescp = Peer::storescp(&StorescpOptions::with_args(&["--refuse"])).unwrap();
    let sender = sender_to(storescp.addr(), storescp.ae_title(), Duration::from_secs(5));
    let rejected = sender
        .ping()
        .expect_err("storescp --refuse rejects every association");
    assert!(rejected.to_string().contains("reject"), "{rejected}");
    let plan = LoadPlan::new(prepared(UidStrategy::AsIs))
        .stop_after(StopAfter::EachOnce)
        .rate(None)
        .concurrency(1);
    match run_load(&sender, &plan, &NoObserver) {
        Ok(report) => {
            assert!(report.is_consistent(), "{:?}", report.summary());
            let counts = &report.metrics.counts;
            assert_eq!(counts.failed, counts.attempted, "{:?}", report.summary());
        }
        Err(e) => assert!(e.to_string().contains("reject"), "{e}"),
    }
}

fn orthanc_cfind(orthanc: &Peer) -> CFindClient {
    CFindClient::builder("127.0.0.1", orthanc.port())
        .called_ae_title(orthanc.ae_title())
        .calling_ae_title("DICOM-AUTO")
        .dimse_timeout(Duration::from_secs(10))
        .query_timeout(Duration::from_secs(30))
        .polling(Polling {
            initial_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(250),
            timeout: Duration::from_secs(30),
        })
        .build()
        .unwrap()
}

fn sent_studies(report: &LoadReport) -> Vec<SentStudy> {
    report
        .studies
        .iter()
        // Transit times count from each study's last send, not from now.
        .map(|s| {
            SentStudy::with_wall_clock(
                s.study_instance_uid.clone(),
                s.counts.delivered() as u32,
                s.last_sent,
            )
        })
        .collect()
}

#[test]
fn sender_stores_every_sample_into_orthanc_and_cfind_finds_every_study_complete() {
    require_peers();
    let orthanc = Peer::orthanc(&OrthancOptions::default()).unwrap();
    let sender = sender_to(orthanc.addr(), orthanc.ae_title(), Duration::from_secs(30));
    let report = send_each_once(&sender, prepared(UidStrategy::AsIs));
    assert_eq!(
        report.metrics.counts.succeeded,
        samples().len() as u64,
        "{:?}",
        report.summary()
    );
    let verification = orthanc_cfind(&orthanc)
        .verify_studies(&sent_studies(&report))
        .unwrap();
    assert!(
        verification.all_complete(),
        "{:?}",
        verification.not_complete().collect::<Vec<_>>()
    );
}

#[test]
fn suite_to_simulator_forwarding_to_orthanc_is_verified_by_cfind_at_orthanc() {
    require_peers();
    let orthanc = Peer::orthanc(&OrthancOptions {
        ae_title: "PACS".into(),
        ..OrthancOptions::default()
    })
    .unwrap();
    let mut rules = Rules::default_rules();
    for route in &mut rules.routes {
        route.delivery.forward = Some(ForwardDestination {
            host: "127.0.0.1".into(),
            port: orthanc.port(),
            called_ae_title: "PACS".into(),
            calling_ae_title: "LB-ROUTER".into(),
            max_attempts: Some(5),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
            security: dimse::Security::plain(),
        });
    }
    let simulator = Simulator::start(SimulatorConfig::with_rules(rules)).unwrap();
    // Fresh UIDs, two passes: each pass sends a new copy of every sample study (one
    // patient each), so C-FIND at Orthanc must find twice as many studies, each whole.
    let sender = sender_to(simulator.addr(), "LB-HTM-OPH", Duration::from_secs(30));
    let sends = 2 * samples().len() as u64;
    let plan = LoadPlan::new(prepared(UidStrategy::Fresh))
        .stop_after(StopAfter::Count(sends))
        .rate(None)
        .concurrency(2)
        .association(AssociationStrategy::Persistent);
    let report = run_load(&sender, &plan, &NoObserver).expect("the load runs");
    assert!(report.is_consistent(), "accounting: {:?}", report.summary());
    assert_eq!(
        report.metrics.counts.succeeded,
        sends,
        "{:?}",
        report.summary()
    );
    assert!(
        simulator.wait_for_forwarding(Duration::from_secs(60)),
        "forwarding queue not drained"
    );
    assert!(
        simulator.failed_forwards().is_empty(),
        "{:?}",
        simulator.failed_forwards()
    );
    let verification = orthanc_cfind(&orthanc)
        .verify_studies(&sent_studies(&report))
        .unwrap();
    assert_eq!(verification.studies.len(), report.studies.len());
    assert!(
        verification.all_complete(),
        "{:?}",
        verification.not_complete().collect::<Vec<_>>()
    );
}
