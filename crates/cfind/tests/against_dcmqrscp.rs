//! The client against DCMTK's dcmqrscp, a real archive answering C-FIND.
//!
//! Skipped (with the reason printed) when `/usr/bin/dcmqrscp` or `/usr/bin/storescu`
//! is missing (apt package `dcmtk`). Each test starts its own dcmqrscp on a free
//! loopback port, stores synthetic studies into it with storescu and stops it at the
//! end.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cfind::{
    BatchLimits, CFindClient, CFindClientBuilder, CFindError, Delivery, Expectation,
    InformationModel, InstanceCountSource, InstanceQuery, NaiveDate, Polling, SentStudy,
    SeriesQuery, StudyQuery,
};
use support::archive::ArchiveStudy;
use support::instances::write_files;

const DCMQRSCP: &str = "/usr/bin/dcmqrscp";
const STORESCU: &str = "/usr/bin/storescu";

/// A dcmqrscp process holding `studies`, killed on drop.
struct Dcmqrscp {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Dcmqrscp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why dcmqrscp cannot be started here (not installed, or it would listen beyond
/// loopback), or `None`.
fn cannot_start_dcmqrscp() -> Option<String> {
    test_peers::may_start(&[DCMQRSCP, STORESCU])
        .err()
        .map(|why| format!("skipped: {why}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Each archive's AE title names its port: were two tests ever handed the same free
/// port, a client reaching the other's archive would be refused (called AE title not
/// recognized) instead of being answered with the other's studies.
fn ae_title(port: u16) -> String {
    format!("QR{port}")
}

fn client(port: u16) -> CFindClientBuilder {
    CFindClient::builder("127.0.0.1", port)
        .called_ae_title(ae_title(port))
        .calling_ae_title("CFIND-TEST")
        .connect_timeout(Duration::from_secs(2))
        .acse_timeout(Duration::from_secs(5))
        .dimse_timeout(Duration::from_secs(5))
        .query_timeout(Duration::from_secs(10))
        .polling(Polling {
            initial_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(100),
            timeout: Duration::from_millis(500),
        })
}

fn start(studies: &[ArchiveStudy]) -> Dcmqrscp {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("db");
    let files = dir.path().join("files");
    std::fs::create_dir_all(&storage).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    let port = free_port();
    let config = dir.path().join("dcmqrscp.cfg");
    std::fs::write(
        &config,
        format!(
            "NetworkTCPPort  = {port}\nMaxPDUSize      = 131072\nMaxAssociations = 32\n\
             HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\n{}      {}    RW      (500, 1024mb)    ANY\nAETable END\n",
            ae_title(port),
            storage.display()
        ),
    )
    .unwrap();
    let child = Command::new(DCMQRSCP)
        .arg("-c")
        .arg(&config)
        .env("TCP_NODELAY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dcmqrscp");
    let server = Dcmqrscp {
        child,
        port,
        _dir: dir,
    };
    let probe = client(port).build().unwrap();
    let ready_by = Instant::now() + Duration::from_secs(10);
    while probe.test_connection().is_err() {
        assert!(
            Instant::now() < ready_by,
            "dcmqrscp did not start on port {port}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let paths = write_files(studies, &files);
    if !paths.is_empty() {
        let status = Command::new(STORESCU)
            .args(["-aec", &ae_title(port), "-aet", "CFIND-TEST", "127.0.0.1"])
            .arg(port.to_string())
            .args(&paths)
            .env("TCP_NODELAY", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run storescu");
        assert!(status.success(), "storescu failed: {status}");
    }
    server
}

fn archive(count: usize, per_series: usize) -> Vec<ArchiveStudy> {
    (0..count)
        .map(|n| ArchiveStudy::synthetic(n, 1, per_series))
        .collect()
}

#[test]
fn dcmqrscp_answers_every_query_kind_under_both_models() {
    if let Some(reason) = cannot_start_dcmqrscp() {
        eprintln!("{reason}");
        return;
    }
    let studies = archive(15, 2);
    let server = start(&studies);
    let study = &studies[4];
    for model in [InformationModel::StudyRoot, InformationModel::PatientRoot] {
        let client = client(server.port).models([model]).build().unwrap();
        let by_uid = client
            .find(&StudyQuery::by_study_instance_uid(
                &study.study_instance_uid,
            ))
            .unwrap();
        assert_eq!(by_uid.model, model);
        assert_eq!(by_uid.len(), 1, "{model}");
        let found = &by_uid.matches[0];
        assert_eq!(
            found.patient_name.as_deref(),
            Some(study.patient_name.as_str())
        );
        assert_eq!(
            found.accession_number.as_deref(),
            Some(study.accession_number.as_str())
        );
        assert_eq!(found.study_date.as_deref(), Some(study.study_date.as_str()));

        let by_patient = client.find(&StudyQuery::by_patient_id("PID-4")).unwrap();
        assert_eq!(by_patient.len(), 2, "studies 4 and 14: {model}");

        let jan = |d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
        let by_dates = client
            .find(&StudyQuery::by_study_dates(jan(2), jan(4)))
            .unwrap();
        assert_eq!(by_dates.len(), 3, "{model}");

        let series = client
            .find(&SeriesQuery::in_study(&study.study_instance_uid))
            .unwrap();
        assert_eq!(series.len(), 1, "{model}");
        assert_eq!(series.matches[0].modality.as_deref(), Some("CT"));

        let instances = client
            .find(&InstanceQuery::in_series(
                &study.study_instance_uid,
                &series.matches[0].series_instance_uid,
            ))
            .unwrap();
        assert_eq!(instances.len(), 2, "{model}");

        let nothing = client.find(&StudyQuery::by_patient_id("NOBODY")).unwrap();
        assert!(nothing.is_empty());
    }
}

#[test]
fn dcmqrscp_studies_are_verified_by_counting_images_since_it_reports_no_counts() {
    if let Some(reason) = cannot_start_dcmqrscp() {
        eprintln!("{reason}");
        return;
    }
    let studies = archive(40, 3);
    let server = start(&studies);
    let client = client(server.port)
        .batch_limits(BatchLimits {
            max_uids_per_query: 16,
            max_uid_list_bytes: 16 * 1024,
        })
        .build()
        .unwrap();
    let sent: Vec<SentStudy> = studies
        .iter()
        .map(|s| SentStudy::new(&s.study_instance_uid, 3, Instant::now()))
        .collect();
    let report = client.verify_studies(&sent).unwrap();
    assert!(report.all_complete(), "{:?}", report.not_complete().next());
    assert!(report.studies.iter().all(|s| s.instances_seen == Some(3)
        && s.instance_count_source == InstanceCountSource::ImageQuery));
    // 16 + 16 + 8 UIDs: three study queries, three image queries.
    assert_eq!(report.queries, 6);
    assert_eq!(report.transit.len(), 40);
}

#[test]
fn a_study_missing_from_dcmqrscp_is_reported_missing_and_times_out() {
    if let Some(reason) = cannot_start_dcmqrscp() {
        eprintln!("{reason}");
        return;
    }
    let studies = archive(3, 1);
    let server = start(&studies);
    let client = client(server.port).build().unwrap();
    let mut sent: Vec<SentStudy> = studies
        .iter()
        .map(|s| SentStudy::new(&s.study_instance_uid, 1, Instant::now()))
        .collect();
    sent.push(SentStudy::new(
        "1.2.826.0.1.3680043.8.498.99",
        1,
        Instant::now(),
    ));
    sent[0].instances_sent = 2;
    let report = client.verify_studies(&sent).unwrap();
    assert_eq!(report.count(Delivery::Complete), 2, "{:?}", report.studies);
    assert_eq!(report.studies[0].delivery, Delivery::Incomplete);
    assert_eq!(report.studies[0].instances_seen, Some(1));
    assert_eq!(report.studies[3].delivery, Delivery::Missing);

    let error = client
        .wait_for_study(
            &studies[0].study_instance_uid,
            &Expectation::visible().at_least_instances(2),
        )
        .unwrap_err();
    assert!(matches!(error, CFindError::StudyNotVisible { .. }));
    assert!(error.to_string().contains("1 of 2 instances"), "{error}");
}
