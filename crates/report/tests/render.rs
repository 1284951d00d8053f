//! The three renderings of one run, checked for what a reader of each relies on.

use std::time::{Duration, Instant};

use metrics::{Outcome, PerfMetrics, Sample};
use report::{
    ConfigItem, LoadResult, Redactor, ReportPaths, RunReport, TestOutcome, TestRecord, render_html,
    render_junit, write_reports,
};

fn sample_run() -> RunReport {
    let metrics = PerfMetrics::new();
    {
        let mut recorder = metrics.recorder();
        let start = Instant::now();
        for i in 0..200u64 {
            let intended = start + Duration::from_millis(5 * i);
            let outcome = if i % 50 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            let mut sample = Sample::new(
                intended,
                intended,
                intended + Duration::from_millis(3 + i % 7),
                outcome,
            )
            .with_bytes(50_000)
            .with_status(if outcome == Outcome::Failure {
                0xA700
            } else {
                0
            });
            if outcome == Outcome::Failure {
                sample = sample.with_error("A700 (refused: out of resources) for DOE^JANE");
            }
            recorder.record(sample);
        }
    }
    let mut load = TestRecord::new(
        "load_stability::load_stability_3x_peak",
        TestOutcome::Passed,
        10_500.0,
    );
    load.load = Some(LoadResult {
        metrics: metrics.snapshot().unwrap(),
        transit: None,
        delivery: None,
        retrieval: None,
        commitment: None,
        capacity: None,
        groups: Vec::new(),
    });
    let mut failed = TestRecord::new(
        "routing_transformations::opv_gpa_gets_visual_fields_description",
        TestOutcome::Failed,
        1_200.0,
    );
    failed.message = Some(
        "StudyDescription: expected \"Visual Fields (VF) GPA\" <got> \"\"\npatient DOE^JANE".into(),
    );
    let mut skipped = TestRecord::new(
        "data_selection_examples::large_dicom_file_is_over_10_mb",
        TestOutcome::Skipped,
        0.0,
    );
    skipped.message = Some("no DICOM file over 10 MB in ./dicom_samples".into());
    RunReport {
        title: "dicom-auto test report".into(),
        started_unix_ms: 1_795_812_313_000,
        finished_unix_ms: 1_795_812_343_000,
        target: "embedded simulator at 127.0.0.1:40000".into(),
        configuration: vec![ConfigItem {
            section: "load".into(),
            key: "concurrency".into(),
            value: "8".into(),
        }],
        tests: vec![
            TestRecord::new(
                "calling_aet_routing::unknown_called_ae_is_rejected",
                TestOutcome::Passed,
                35.0,
            ),
            load,
            failed,
            skipped,
        ],
    }
}

#[test]
fn html_report_shows_every_test_and_fetches_nothing() {
    let html = render_html(&sample_run()).unwrap();
    for name in [
        "calling_aet_routing::unknown_called_ae_is_rejected",
        "load_stability::load_stability_3x_peak",
        "routing_transformations::opv_gpa_gets_visual_fields_description",
        "data_selection_examples::large_dicom_file_is_over_10_mb",
    ] {
        assert!(html.contains(name), "missing {name}");
    }
    // Counts on the dashboard.
    assert!(html.contains(r#"id="count-failed">1<"#));
    assert!(html.contains(r#"id="count-skipped">1<"#));
    // The failure message is there, escaped.
    assert!(
        html.contains("&lt;got&gt;") || html.contains("&#60;got&#62;"),
        "message not escaped"
    );
    // A performance panel with its charts.
    assert!(html.contains("Performance: load_stability::load_stability_3x_peak"));
    assert!(html.matches("<svg").count() >= 5);
    // Self-contained: no external script, style, image or font.
    for needle in ["<script src", "<link", "@import", "url(http", "src=\"http"] {
        assert!(!html.contains(needle), "external reference {needle}");
    }
}

#[test]
fn junit_marks_failures_and_skips() {
    let xml = render_junit(&sample_run());
    assert!(xml.contains(
        r#"<testsuites name="dicom-auto test report" tests="4" failures="1" skipped="1""#
    ));
    assert!(xml.contains("<failure message=\"StudyDescription: expected &quot;Visual Fields (VF) GPA&quot; &lt;got&gt; &quot;&quot;\">"));
    assert!(xml.contains("<skipped message=\"no DICOM file over 10 MB in ./dicom_samples\"/>"));
    assert!(xml.contains(r#"<testsuite name="load_stability" tests="1" failures="0""#));
}

#[test]
fn all_three_files_are_written_and_json_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ReportPaths::in_dir(dir.path());
    let run = sample_run();
    write_reports(&run, &paths).unwrap();
    let json = std::fs::read_to_string(&paths.json).unwrap();
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, run);
    assert!(
        json.contains("\"histograms\""),
        "metrics snapshot histograms missing"
    );
    assert!(
        std::fs::read_to_string(&paths.html)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );
    assert!(
        std::fs::read_to_string(&paths.junit)
            .unwrap()
            .starts_with("<?xml")
    );
    // No temporary files left beside them.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}

#[test]
fn redacted_reports_carry_no_patient_name() {
    let mut run = sample_run();
    let mut redactor = Redactor::new();
    redactor.add("DOE^JANE");
    redactor.redact_report(&mut run);
    let html = render_html(&run).unwrap();
    let xml = render_junit(&run);
    let json = serde_json::to_string(&run).unwrap();
    for text in [&html, &xml, &json] {
        assert!(!text.contains("DOE^JANE") && !text.contains("DOE JANE") && !text.contains("JANE"));
    }
}

#[test]
fn a_load_panel_shows_what_the_sink_received_with_the_instances_that_went_wrong() {
    let mut run = sample_run();
    let load = run.tests.iter_mut().find(|t| t.load.is_some()).unwrap();
    load.load.as_mut().unwrap().delivery = Some(report::SinkDelivery {
        invariant: "sent 10 = refused 0 + delivered 9 + undelivered 1 + in transit 0".into(),
        consistent: true,
        clean: false,
        accounting: vec![report::Figure {
            label: "undelivered".into(),
            value: "1".into(),
        }],
        transit: None,
        transit_buckets: Vec::new(),
        timeline: vec![report::ArrivalSecond {
            second: 0,
            arrivals: 9,
            mean_transit_ms: Some(12.5),
            max_transit_ms: Some(40.0),
        }],
        differences: vec![report::DifferenceRow {
            sop_instance_uid: "2.25.77".into(),
            attribute: "InstitutionName (0008,0080)".into(),
            kind: "Changed".into(),
            sent: "HOSPITAL".into(),
            received: "ALTERED".into(),
        }],
        problems: vec![report::ProblemRow {
            sop_instance_uid: "2.25.99".into(),
            kind: "undelivered".into(),
            detail: "1 send(s) never arrived (the router answered success)".into(),
        }],
        problems_total: 2,
    });
    let html = render_html(&run).unwrap();
    for shown in [
        "At the destination sink: problems found",
        "sent 10 = refused 0 + delivered 9 + undelivered 1 + in transit 0",
        "Arrivals at the sink (per second) and transit",
        "2.25.77",
        "ALTERED",
        "2.25.99",
        "never arrived",
    ] {
        assert!(html.contains(shown), "{shown} missing");
    }
}

#[test]
fn a_capacity_search_shows_its_steps_the_sustained_rate_and_both_curves() {
    let step = |number: u32, offered: f64, p95: f64, passed: bool| report::CapacityStep {
        number,
        bisection: number > 3,
        offered_rate: offered,
        achieved_rate: Some(offered.min(200.0)),
        attempted: (offered * 3.0) as u64,
        succeeded: (offered * 3.0) as u64,
        warnings: 0,
        failed: 0,
        unknown: 0,
        error_rate: Some(0.0),
        p50_ms: Some(p95 - 4.0),
        p95_ms: Some(p95),
        p99_ms: Some(p95 + 2.0),
        max_ms: Some(p95 + 8.0),
        passed,
        verdict: if passed {
            "within both thresholds".into()
        } else {
            format!("p95 {p95:.1} ms above 60 ms")
        },
    };
    let mut run = sample_run();
    let load = run.tests[1].load.as_mut().expect("the sample's load test");
    load.capacity = Some(report::CapacityCurve {
        highest_sustained_rate: Some(187.5),
        stopped: "step 3 failed; 1 bisection step".into(),
        max_p95_latency_ms: 60.0,
        max_error_rate: 0.01,
        step_seconds: 3.0,
        warm_up_seconds: 1.0,
        concurrency: 4,
        steps: vec![
            step(1, 100.0, 21.0, true),
            step(2, 150.0, 22.0, true),
            step(3, 225.0, 900.0, false),
            step(4, 187.5, 25.0, true),
        ],
    });
    let html = render_html(&run).unwrap();
    assert!(
        html.contains("highest sustained rate 187.5 sends/s"),
        "{html}"
    );
    assert!(html.contains("p95 900.0 ms above 60 ms"));
    assert!(html.contains("(bisect)"));
    assert!(html.contains("Achieved against offered rate"));
    assert!(html.contains("Latency against offered rate"));
    let curve = |run: &RunReport| run.tests[1].load.as_ref().unwrap().capacity.clone();
    let json = serde_json::to_string(&run).unwrap();
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(curve(&back), curve(&run));
}

#[test]
fn a_profile_run_shows_a_row_per_modality_with_its_latency_and_delivery() {
    let mut run = sample_run();
    let load = run
        .tests
        .iter_mut()
        .find_map(|t| t.load.as_mut())
        .expect("the sample has a load test");
    load.groups = vec![report::GroupRow {
        name: "CT-SCANNERS".into(),
        studies: 12,
        attempted: 1800,
        not_delivered: 3,
        images_per_s: Some(45.5),
        latency: None,
        studies_verified: Some(11),
    }];
    let html = render_html(&run).unwrap();
    assert!(html.contains("Per modality"), "the panel is there");
    assert!(html.contains("CT-SCANNERS"));
    assert!(html.contains("11 of 12"), "studies complete by C-FIND");
    let plain = render_html(&sample_run()).unwrap();
    assert!(!plain.contains("Per modality"), "no panel without groups");
}
