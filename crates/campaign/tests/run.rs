//! A whole campaign against the embedded simulator, and against a router that is not
//! there.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use config::TestConfig;

fn samples_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../dicom_samples")
        .display()
        .to_string()
}

#[test]
fn an_embedded_campaign_loads_verifies_and_writes_three_reports() {
    let reports = tempfile::tempdir().unwrap();
    let config = TestConfig::from_map([
        ("DICOM_ROOT_DIR", samples_dir()),
        ("REPORT_DIR", reports.path().display().to_string()),
        ("TEST_DURATION_SECONDS", "2".into()),
        ("PEAK_IMAGES_PER_SECOND", "10".into()),
        ("LOAD_MULTIPLIER", "2".into()),
        ("LOAD_CONCURRENCY", "2".into()),
        ("SEND_UID_STRATEGY", "fresh".into()),
    ])
    .unwrap();

    let campaign = campaign::run(&config, &sender::NoObserver).unwrap();

    assert!(campaign.passed(), "{:#?}", campaign.checks);
    assert!(
        campaign
            .target
            .starts_with("embedded simulator at 127.0.0.1:")
    );
    let counts = &campaign.load.metrics.counts;
    assert!(counts.attempted >= 30, "{counts:?}");
    assert_eq!(counts.succeeded, counts.attempted);
    let verification = campaign
        .verification
        .as_ref()
        .expect("C-FIND verification ran");
    assert!(!verification.studies.is_empty());
    assert_eq!(
        campaign.checks.iter().map(|c| c.id).collect::<Vec<_>>(),
        ["error_rate", "p95_latency", "delivery", "delivery_at_sink"]
    );
    // The embedded router forwarded every send to the sink (VERIFY_AT defaults to both).
    let at_sink = campaign.delivery.as_ref().expect("the sink verified");
    assert!(at_sink.clean && at_sink.consistent, "{at_sink:#?}");
    assert_eq!(at_sink.counts.sent, counts.attempted);
    assert_eq!(at_sink.counts.delivered, counts.attempted);
    let panel = campaign.report.tests[0]
        .load
        .as_ref()
        .expect("performance panel");
    assert_eq!(panel.transit.as_ref().unwrap().missing, 0);
    let delivery = panel.delivery.as_ref().expect("the sink's panel");
    assert!(delivery.clean, "{delivery:#?}");
    for file in ["test_report.html", "test_report.json", "test_report.xml"] {
        let text = std::fs::read_to_string(reports.path().join(file)).unwrap();
        assert!(text.contains("load_at_target_rate"), "{file}");
    }
}

#[test]
fn an_embedded_campaign_over_tls_stores_and_verifies_over_mutual_tls_and_reports_it() {
    let reports = tempfile::tempdir().unwrap();
    let config = TestConfig::from_map([
        ("DICOM_TLS", "true".to_string()),
        ("DICOM_USERNAME", "modality1".into()),
        ("DICOM_PASSCODE", "hunter2".into()),
        ("DICOM_ROOT_DIR", samples_dir()),
        ("REPORT_DIR", reports.path().display().to_string()),
        ("TEST_DURATION_SECONDS", "1".into()),
        ("PEAK_IMAGES_PER_SECOND", "10".into()),
        ("LOAD_CONCURRENCY", "2".into()),
        ("SEND_UID_STRATEGY", "fresh".into()),
    ])
    .unwrap();

    let campaign = campaign::run(&config, &sender::NoObserver).unwrap();

    assert!(campaign.passed(), "{:#?}", campaign.checks);
    let sessions = &campaign.load.associations.tls_sessions;
    assert_eq!(
        sessions.iter().map(|c| c.associations).sum::<u64>(),
        campaign.load.associations.opened,
        "every association over TLS: {sessions:?}"
    );
    let item = |key: &str| {
        campaign
            .report
            .configuration
            .iter()
            .find(|i| i.section == "security" && i.key == key)
            .map(|i| i.value.clone())
            .unwrap_or_default()
    };
    assert!(
        item("tls_negotiated").starts_with("TLSv1_3 "),
        "{}",
        item("tls_negotiated")
    );
    assert!(
        item("tls").contains("client certificate"),
        "{}",
        item("tls")
    );
    assert_eq!(item("user_identity"), "user name and passcode (modality1)");
    for file in ["test_report.html", "test_report.json", "test_report.xml"] {
        let text = std::fs::read_to_string(reports.path().join(file)).unwrap();
        // JUnit XML carries test results only, no configuration.
        if !file.ends_with(".xml") {
            assert!(text.contains("tls_negotiated"), "{file}");
        }
        assert!(!text.contains("hunter2"), "{file} shows the passcode");
    }
}

#[test]
fn an_unreachable_router_fails_within_the_connect_timeout_naming_host_and_variable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let reports = tempfile::tempdir().unwrap();
    let config = TestConfig::from_map([
        ("COMPASS_HOST", "127.0.0.1".to_string()),
        ("COMPASS_PORT", port.to_string()),
        ("DICOM_CONNECT_TIMEOUT", "2".into()),
        ("DICOM_ROOT_DIR", samples_dir()),
        ("REPORT_DIR", reports.path().display().to_string()),
    ])
    .unwrap();

    let started = Instant::now();
    let error = campaign::run(&config, &sender::NoObserver).unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("COMPASS_HOST"), "{text}");
    assert!(
        std::fs::read_dir(reports.path()).unwrap().next().is_none(),
        "nothing written for a campaign that could not start"
    );
}

#[test]
fn files_that_cannot_be_sent_are_reported_with_their_reason_and_the_rest_are_sent() {
    let samples = tempfile::tempdir().unwrap();
    let files = loader::find_dicom_files(samples_dir()).unwrap().files;
    for (i, file) in files.iter().take(4).enumerate() {
        std::fs::copy(file, samples.path().join(format!("good-{i}.dcm"))).unwrap();
    }
    std::fs::write(samples.path().join("notes.txt"), "not an image").unwrap();
    let head = &std::fs::read(&files[0]).unwrap()[..300];
    std::fs::write(samples.path().join("truncated.dcm"), head).unwrap();
    let reports = tempfile::tempdir().unwrap();
    let config = TestConfig::from_map([
        ("DICOM_ROOT_DIR", samples.path().display().to_string()),
        ("REPORT_DIR", reports.path().display().to_string()),
        ("TEST_DURATION_SECONDS", "1".into()),
        ("PEAK_IMAGES_PER_SECOND", "10".into()),
    ])
    .unwrap();

    let campaign = campaign::run(&config, &sender::NoObserver).unwrap();

    let skipped: Vec<String> = campaign
        .skipped
        .iter()
        .map(|(path, reason)| format!("{}: {reason}", path.display()))
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped.iter().any(|s| s.contains("notes.txt")),
        "{skipped:?}"
    );
    assert!(
        skipped.iter().any(|s| s.contains("truncated.dcm")),
        "{skipped:?}"
    );
    assert!(campaign.load.metrics.counts.attempted > 0);
    let figures = &campaign.report.tests[0].figures;
    assert!(
        figures
            .iter()
            .any(|f| f.label == "sample files skipped" && f.value == "2"),
        "{figures:?}"
    );
}
