//! The `dicom-auto` command as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dicom_samples")
}

/// The command with a clean configuration: only the variables given, run from `dir`.
fn dicom_auto(dir: &Path, vars: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dicom-auto"));
    command.current_dir(dir).args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("COMPASS_")
            || name.starts_with("CFIND_")
            || name.starts_with("DICOM_")
            || name.starts_with("REMOTE_AE_")
            || name.starts_with("LOCAL_AE_")
        {
            command.env_remove(name);
        }
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("dicom-auto runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn run_against_the_embedded_simulator_passes_and_writes_the_three_reports() {
    let dir = tempfile::tempdir().unwrap();
    let output = dicom_auto(
        dir.path(),
        &[
            ("DICOM_ROOT_DIR", samples_dir().display().to_string()),
            ("REPORT_DIR", dir.path().display().to_string()),
            ("TEST_DURATION_SECONDS", "2".into()),
            ("PEAK_IMAGES_PER_SECOND", "10".into()),
            ("SEND_UID_STRATEGY", "fresh".into()),
        ],
        &["run", "--quiet"],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("embedded simulator at 127.0.0.1:"),
        "{shown}"
    );
    assert!(
        shown.contains("pass        every delivered study complete"),
        "{shown}"
    );
    // The embedded router forwards to the sink (VERIFY_AT defaults to both there).
    assert!(
        shown.contains("pass        every instance the router took delivered to the sink once"),
        "{shown}"
    );
    assert!(shown.contains("sink        transit to the sink"), "{shown}");
    for file in ["test_report.html", "test_report.json", "test_report.xml"] {
        assert!(dir.path().join(file).is_file(), "{file} missing: {shown}");
    }
}

#[test]
fn run_against_an_unreachable_router_fails_fast_naming_the_host_and_the_variable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = dicom_auto(
        dir.path(),
        &[
            ("COMPASS_HOST", "127.0.0.1".into()),
            ("COMPASS_PORT", port.to_string()),
            ("DICOM_CONNECT_TIMEOUT", "3".into()),
            ("DICOM_ROOT_DIR", samples_dir().display().to_string()),
            ("REPORT_DIR", dir.path().display().to_string()),
        ],
        &["run", "--quiet"],
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(shown.contains("COMPASS_HOST"), "{shown}");
}

#[test]
fn a_bad_configuration_value_is_named_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let output = dicom_auto(
        dir.path(),
        &[("LOAD_CONCURRENCY", "many".into())],
        &["run", "--quiet"],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("LOAD_CONCURRENCY") && shown.contains("many"),
        "{shown}"
    );
}

#[test]
fn merge_adds_the_runs_of_two_reports_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for name in ["a", "b"] {
        let run_dir = dir.path().join(name);
        std::fs::create_dir(&run_dir).unwrap();
        let output = dicom_auto(
            &run_dir,
            &[
                ("DICOM_ROOT_DIR", samples_dir().display().to_string()),
                ("REPORT_DIR", run_dir.display().to_string()),
                ("TEST_DURATION_SECONDS", "1".into()),
                ("PEAK_IMAGES_PER_SECOND", "10".into()),
            ],
            &["run", "--quiet"],
        );
        assert!(output.status.success(), "{}", text(&output));
        reports.push(run_dir.join("test_report.json"));
    }
    let attempted = |path: &Path| -> u64 {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        json["tests"][0]["load"]["metrics"]["attempted"]
            .as_u64()
            .unwrap()
    };
    let merged = dir.path().join("merged.json");
    let output = dicom_auto(
        dir.path(),
        &[],
        &[
            "merge",
            reports[0].to_str().unwrap(),
            reports[1].to_str().unwrap(),
            "--out",
            merged.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    assert_eq!(
        json["attempted"].as_u64().unwrap(),
        attempted(&reports[0]) + attempted(&reports[1])
    );
}

#[test]
fn merge_refuses_a_file_without_a_snapshot_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("notes.json");
    std::fs::write(&bogus, "{\"hello\": 1}").unwrap();
    let output = dicom_auto(dir.path(), &[], &["merge", bogus.to_str().unwrap()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("notes.json") && shown.contains("no metrics snapshot"),
        "{shown}"
    );
}

#[test]
fn simulate_serves_the_embedded_router_until_stopped() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_dicom-auto"))
        .args(["simulate", "--port", "0", "--stats-every", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open until the end: a closed pipe would make the simulator's next line fail.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let address = first
        .trim()
        .strip_prefix("simulator listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let (host, port) = address.rsplit_once(':').unwrap();
    let echo = dimse::ScuOptions::new(
        dimse::PeerAddress::new(host, port.parse().unwrap()),
        dimse::AeTitle::new("DICOM-AUTO").unwrap(),
        dimse::AeTitle::new("LB-QUERY").unwrap(),
    )
    .timeouts(dimse::Timeouts::all(Duration::from_secs(5)))
    .propose_verification()
    .establish()
    .map(|mut association| {
        let status = association.echo();
        let _ = association.release();
        status
    });
    child.kill().unwrap();
    let _ = child.wait();
    drop(stdout);
    assert_eq!(echo.unwrap().unwrap(), dimse::Status::SUCCESS);
}

#[test]
fn find_takes_its_peer_from_the_configuration() {
    let simulator = simulator::Simulator::start(simulator::SimulatorConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let peer = [
        ("COMPASS_HOST", "127.0.0.1".to_string()),
        ("COMPASS_PORT", simulator.addr().port().to_string()),
        ("CFIND_AE_TITLE", "LB-QUERY".to_string()),
    ];
    let output = dicom_auto(dir.path(), &peer, &["find", "study", "2.25.1"]);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("0 studies"), "{shown}");

    let closed = [
        ("COMPASS_HOST", "127.0.0.1".to_string()),
        ("COMPASS_PORT", "1".to_string()),
        ("DICOM_CONNECT_TIMEOUT", "2".to_string()),
    ];
    let output = dicom_auto(dir.path(), &closed, &["find", "ping"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}

/// A simulator that stores anything sent to `STORE-ALL` and answers C-FIND as `LB-QUERY`.
fn store_all_simulator() -> simulator::SimulatorHandle {
    let mut rules = simulator::Rules::default_rules();
    rules
        .routes
        .push(simulator::Route::store_only("STORE_ALL", "STORE-ALL"));
    simulator::Simulator::start(simulator::SimulatorConfig::with_rules(rules)).unwrap()
}

fn router_vars(simulator: &simulator::SimulatorHandle) -> Vec<(&'static str, String)> {
    vec![
        ("COMPASS_HOST", "127.0.0.1".to_string()),
        ("COMPASS_PORT", simulator.addr().port().to_string()),
        ("COMPASS_AE_TITLE", "STORE-ALL".to_string()),
        ("CFIND_AE_TITLE", "LB-QUERY".to_string()),
        ("CFIND_INITIAL_DELAY", "0".to_string()),
        ("CFIND_POLL_INTERVAL", "0.2".to_string()),
        ("CFIND_TIMEOUT", "2".to_string()),
    ]
}

/// Sends `count` sample instances with fresh UIDs to `router` and returns the load's
/// JSON, written into `dir`.
fn load_with_fresh_uids(dir: &Path, router: &simulator::SimulatorHandle, count: u32) -> PathBuf {
    let load_json = dir.join("load.json");
    let samples = samples_dir().display().to_string();
    let output = dicom_auto(
        dir,
        &router_vars(router),
        &[
            "load",
            &samples,
            "--count",
            &count.to_string(),
            "--reuid",
            "--quiet",
            "--json",
            load_json.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    load_json
}

#[test]
fn verify_finds_every_study_a_load_delivered_and_misses_are_a_failure() {
    let router = store_all_simulator();
    let dir = tempfile::tempdir().unwrap();
    let load_json = load_with_fresh_uids(dir.path(), &router, 46);

    let verification_json = dir.path().join("verification.json");
    let output = dicom_auto(
        dir.path(),
        &router_vars(&router),
        &[
            "verify",
            load_json.to_str().unwrap(),
            "--json",
            verification_json.to_str().unwrap(),
        ],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("missing     0"), "{shown}");
    let verification: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&verification_json).unwrap()).unwrap();
    let studies = verification["studies"].as_array().unwrap();
    assert!(!studies.is_empty());
    assert!(
        studies.iter().all(|s| s["delivery"] == "complete"),
        "{verification}"
    );

    // The same load checked at a destination that never received it.
    let elsewhere = store_all_simulator();
    let output = dicom_auto(
        dir.path(),
        &router_vars(&elsewhere),
        &["verify", load_json.to_str().unwrap()],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("FAIL") && shown.contains("not complete"),
        "{shown}"
    );
}

#[test]
fn verify_refuses_a_file_that_is_not_a_load_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("report.json");
    std::fs::write(&bogus, "{\"tests\": []}").unwrap();
    let output = dicom_auto(dir.path(), &[], &["verify", bogus.to_str().unwrap()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(shown.contains("--json FILE"), "{shown}");
}

#[test]
fn tags_dry_run_previews_and_writes_nothing_and_anonymize_writes_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("samples");
    std::fs::create_dir(&samples).unwrap();
    let one = loader::find_dicom_files(samples_dir())
        .unwrap()
        .files
        .into_iter()
        .next()
        .expect("a committed sample");
    let copy = samples.join("one.dcm");
    std::fs::copy(&one, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();

    let output = dicom_auto(
        dir.path(),
        &[],
        &[
            "tags",
            "--dry-run",
            "--verbose",
            "--set",
            "StudyDescription=LOAD TEST",
            samples.to_str().unwrap(),
        ],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("would change") && shown.contains("dry run"),
        "{shown}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before, "a dry run wrote");

    let anonymized = dir.path().join("anon");
    let output = dicom_auto(
        dir.path(),
        &[],
        &[
            "anonymize",
            samples.to_str().unwrap(),
            anonymized.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(anonymized.join("one.dcm").is_file());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        before,
        "the input was modified"
    );
}

#[test]
fn sink_stands_in_for_the_destination_counting_arrivals_and_repeated_copies() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sink.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dicom-auto"))
        .current_dir(dir.path())
        .args([
            "sink",
            "--port",
            "0",
            "--idle-exit",
            "1",
            "--duration",
            "60",
            "--json",
        ])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let address = first
        .split(" listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let (host, port) = address.rsplit_once(':').unwrap();
    let sample = samples_dir().join("MRN3477855/ACC24739648/S01_OPV_explicit/IM0001.dcm");
    // The same file twice: the second copy is a repeated SOP Instance UID.
    for _ in 0..2 {
        let store = dicom_auto(
            dir.path(),
            &[],
            &[
                "store",
                host,
                port,
                sample.to_str().unwrap(),
                "--aec",
                "DICOM_AUTO_SINK",
            ],
        );
        assert!(store.status.success(), "{}", text(&store));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a repeated copy is a finding: {rest}"
    );
    assert!(
        rest.contains(
            "received    2 instances (1 copies of an instance already received, 0 not parseable)"
        ),
        "{rest}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["delivery"]["counts"]["observed"], 2);
    assert_eq!(summary["listener"]["stores"], 2);
}

#[test]
fn run_against_an_embedded_router_that_drops_instances_fails_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let default_rules =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../simulator/rules/default.toml");
    let rules = dir.path().join("dropping.toml");
    std::fs::write(
        &rules,
        std::fs::read_to_string(default_rules).unwrap()
            + "\n[faults]\ndrop_forward_every_nth = 3\n",
    )
    .unwrap();
    let output = dicom_auto(
        dir.path(),
        &[
            ("DICOM_ROOT_DIR", samples_dir().display().to_string()),
            ("REPORT_DIR", dir.path().display().to_string()),
            ("TEST_DURATION_SECONDS", "2".into()),
            ("PEAK_IMAGES_PER_SECOND", "10".into()),
            ("SEND_UID_STRATEGY", "fresh".into()),
            ("DELIVERY_TIMEOUT", "2".into()),
            ("SIMULATOR_RULES", rules.display().to_string()),
        ],
        &["run", "--quiet"],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("FAIL        every instance the router took delivered to the sink once"),
        "{shown}"
    );
    assert!(shown.contains("e.g. undelivered 2.25."), "{shown}");
    // C-FIND still finds the studies: the router kept what it dropped on the way.
    assert!(
        shown.contains("pass        every delivered study complete"),
        "{shown}"
    );
}

#[test]
fn commit_holds_the_archive_to_its_report_for_a_load_and_names_what_it_does_not_hold() {
    let router = store_all_simulator();
    let dir = tempfile::tempdir().unwrap();
    let load_json = load_with_fresh_uids(dir.path(), &router, 23);
    let samples = samples_dir().display().to_string();

    // The simulator reports on the N-ACTION's association by default.
    let commitments_json = dir.path().join("commitments.json");
    let output = dicom_auto(
        dir.path(),
        &router_vars(&router),
        &[
            "commit",
            "--load",
            load_json.to_str().unwrap(),
            "--listen-port",
            "0",
            "--keep-open",
            "--timeout",
            "10",
            "--json",
            commitments_json.to_str().unwrap(),
        ],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(!shown.contains("FAIL"), "{shown}");
    let commitments: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&commitments_json).unwrap()).unwrap();
    let studies = commitments.as_array().unwrap();
    assert!(!studies.is_empty());
    let requested: u64 = studies
        .iter()
        .map(|s| s["requested"].as_u64().unwrap())
        .sum();
    assert_eq!(
        requested, 23,
        "every instance sent, listed and asked: {commitments}"
    );
    assert!(studies.iter().all(|s| s["sent"] == s["requested"]));

    // The files themselves were sent with fresh UIDs: the archive holds none of them.
    let output = dicom_auto(
        dir.path(),
        &router_vars(&router),
        &[
            "commit",
            &samples,
            "--listen-port",
            "0",
            "--keep-open",
            "--timeout",
            "10",
        ],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("FAIL"), "{shown}");
    assert!(shown.contains("0112 (no such object instance)"), "{shown}");
}

#[test]
fn capacity_prints_each_step_and_the_highest_sustained_rate_and_writes_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("DICOM_ROOT_DIR", samples_dir().display().to_string()),
        ("REPORT_DIR", dir.path().display().to_string()),
    ];
    let json = dir.path().join("capacity.json");
    // Far below what the simulator takes: both steps pass, the search ends at --steps.
    let output = dicom_auto(
        dir.path(),
        &vars,
        &[
            "capacity",
            "--quiet",
            "--start-rate",
            "20",
            "--factor",
            "2",
            "--steps",
            "2",
            "--step-seconds",
            "0.5",
            "--warm-up-seconds",
            "0.2",
            "--max-p95-ms",
            "5000",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("sustained   40.0 sends/s"), "{shown}");
    assert!(
        shown.contains("every step passed up to 40.0 sends/s"),
        "{shown}"
    );
    let curve: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(curve["steps"].as_array().map(Vec::len), Some(2), "{curve}");
    assert_eq!(curve["highest_sustained_rate"], 40.0);
    for file in ["test_report.html", "test_report.json", "test_report.xml"] {
        assert!(dir.path().join(file).is_file(), "{file} missing: {shown}");
    }

    // A step cannot meet a p95 of one microsecond: nothing sustained, exit 1.
    let output = dicom_auto(
        dir.path(),
        &vars,
        &[
            "capacity",
            "--quiet",
            "--start-rate",
            "20",
            "--steps",
            "1",
            "--step-seconds",
            "0.3",
            "--warm-up-seconds",
            "0",
            "--max-p95-ms",
            "0.001",
        ],
    );
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("sustained   none"), "{shown}");
}

#[test]
fn capacity_refuses_a_factor_that_cannot_step_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = dicom_auto(dir.path(), &[], &["capacity", "--factor", "1"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("step factor 1: expected a factor above 1"),
        "{shown}"
    );
}
