//! The run report as users see it: a failing test shows up as failed, with its message,
//! in all three files; a skip shows its reason; patient names never appear; and the HTML
//! opens in a real browser (headless Chromium, when installed) without script errors,
//! with a working outcome filter.
//!
//! A test binary of its own, so its deliberately failing "tests" (threads named like
//! tests, as libtest names them) stay out of the suite's report.

use std::path::Path;
use std::process::Command;
use std::thread;

use report::{ConfigItem, Redactor, ReportPaths};
use tests_suite::record::{RunContext, TestReport, init_run};

/// Runs `body` the way libtest runs a test: on a thread named after the test, with the
/// report entry taken first and dropped when the test ends, passing or panicking.
fn run_as_test(name: &str, body: impl FnOnce(&mut TestReport) + Send + 'static) {
    let _ = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut report = TestReport::start();
            body(&mut report);
        })
        .unwrap()
        .join();
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn failures_skips_and_passes_reach_all_three_reports_and_the_page_works_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let paths = ReportPaths::in_dir(dir.path());
    let mut redactor = Redactor::new();
    redactor.add("DOE^JANE");
    init_run(|| RunContext {
        paths: paths.clone(),
        target: "embedded simulator at 127.0.0.1:1".into(),
        configuration: vec![ConfigItem {
            section: "thresholds".into(),
            key: "max_p95_latency_ms".into(),
            value: "0.001".into(),
        }],
        redactor,
    });

    run_as_test("load_stability::p95_within_an_impossible_threshold", |_| {
        let p95 = 12.5;
        assert!(
            p95 <= 0.001,
            "p95 latency {p95} ms above MAX_P95_LATENCY_MS 0.001 ms for DOE^JANE"
        );
    });
    run_as_test(
        "data_selection_examples::large_dicom_file_is_over_10_mb",
        |report| {
            report.skip("the dataset has no file over 10 MB");
        },
    );
    run_as_test(
        "calling_aet_routing::unknown_called_ae_title_is_rejected",
        |report| {
            report.figure("rejection", "called AE title not recognized");
        },
    );

    let html = std::fs::read_to_string(&paths.html).unwrap();
    let json = std::fs::read_to_string(&paths.json).unwrap();
    let junit = std::fs::read_to_string(&paths.junit).unwrap();

    // HTML: counts and the failure message.
    assert!(
        html.contains(r#"id="count-failed">1<"#),
        "HTML does not count the failure"
    );
    assert!(html.contains(r#"id="count-skipped">1<"#));
    assert!(html.contains(r#"id="count-passed">1<"#));
    assert!(html.contains("p95 latency 12.5 ms above MAX_P95_LATENCY_MS 0.001 ms"));
    // JSON: the record with outcome and message.
    let record: report::RunReport = serde_json::from_str(&json).unwrap();
    let failed = record
        .tests
        .iter()
        .find(|t| t.name == "load_stability::p95_within_an_impossible_threshold")
        .unwrap();
    assert_eq!(failed.outcome, report::TestOutcome::Failed);
    assert!(
        failed
            .message
            .as_deref()
            .unwrap()
            .contains("above MAX_P95_LATENCY_MS")
    );
    // JUnit: a failure element with the message, a skipped element with the reason.
    assert!(junit.contains(
        r#"<testsuites name="dicom-auto test report" tests="3" failures="1" skipped="1""#
    ));
    assert!(
        junit.contains("<failure message=\"p95 latency 12.5 ms above MAX_P95_LATENCY_MS 0.001 ms")
    );
    assert!(junit.contains("<skipped message=\"the dataset has no file over 10 MB\"/>"));
    // No patient name anywhere, in any form.
    for text in [&html, &json, &junit] {
        assert!(
            !text.contains("DOE^JANE") && !text.contains("JANE"),
            "patient name leaked"
        );
    }

    let Some(chromium) = chromium() else {
        eprintln!(
            "skipped the browser check: Chromium is not installed (apt-get install chromium)"
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}#outcome=failed", paths.html.display());
    let output = Command::new("timeout")
        .arg("60")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        !log.contains("Uncaught") && !log.contains(":CONSOLE("),
        "the page logged script errors: {log}"
    );
    // The filter from the link ran: only the failed row is shown.
    assert!(dom.contains("1 of 3 shown"), "filter did not run: {dom}");
    let hidden_rows = dom.matches(r#"style="display: none;""#).count();
    assert_eq!(
        hidden_rows, 2,
        "expected the passed and skipped rows hidden"
    );
}
