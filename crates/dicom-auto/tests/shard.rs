//! A run split into shards (`--shard I/N`, `--start-at`, `--shard-out`) and merged
//! (`dicom-auto merge DIR...`) against one run of the whole, on one simulator.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::{LatencyHistogram, MetricsSnapshot};

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dicom_samples")
}

fn store_all_simulator() -> simulator::SimulatorHandle {
    let mut rules = simulator::Rules::default_rules();
    rules
        .routes
        .push(simulator::Route::store_only("STORE_ALL", "STORE-ALL"));
    simulator::Simulator::start(simulator::SimulatorConfig::with_rules(rules)).unwrap()
}

/// The command pointed at `router`, with no other configuration from this process.
fn dicom_auto(dir: &Path, router: &simulator::SimulatorHandle, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dicom-auto"));
    command.current_dir(dir).args(args);
    for (name, _) in std::env::vars() {
        if ["COMPASS_", "CFIND_", "DICOM_", "REMOTE_AE_", "LOCAL_AE_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            command.env_remove(name);
        }
    }
    for (name, value) in [
        ("COMPASS_HOST", "127.0.0.1".to_string()),
        ("COMPASS_PORT", router.addr().port().to_string()),
        ("COMPASS_AE_TITLE", "STORE-ALL".to_string()),
        ("CFIND_AE_TITLE", "LB-QUERY".to_string()),
        ("CFIND_INITIAL_DELAY", "0".to_string()),
        ("CFIND_POLL_INTERVAL", "0.2".to_string()),
        ("CFIND_TIMEOUT", "5".to_string()),
    ] {
        command.env(name, value);
    }
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn study_uids(studies: &serde_json::Value) -> Vec<String> {
    studies
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["study_instance_uid"].as_str().unwrap().to_string())
        .collect()
}

const SHARDS: u32 = 3;
const SECONDS: u32 = 3;

#[test]
fn three_shards_merged_add_up_to_one_run_of_the_whole() {
    let router = store_all_simulator();
    let dir = tempfile::tempdir().unwrap();
    let samples = samples_dir().display().to_string();

    // One run of the whole, at one pass over the samples a second: each shard then
    // sends one pass over the samples, whole, and studies can be counted exactly too.
    let probe = dir.path().join("probe.json");
    let output = dicom_auto(
        dir.path(),
        &router,
        &[
            "load",
            &samples,
            "--count",
            "1",
            "--quiet",
            "--json",
            probe.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    let instances: u32 = shown
        .lines()
        .find_map(|l| {
            l.split_once(" instances (")
                .map(|(n, _)| n.trim().parse().ok())
        })
        .flatten()
        .unwrap_or_else(|| panic!("no instance count in {shown}"));
    let rate = (f64::from(instances * SHARDS) / f64::from(SECONDS)).to_string();
    let duration = SECONDS.to_string();
    let common = [
        "--rate",
        &rate,
        "--duration",
        &duration,
        "--reuid",
        "-c",
        "2",
        "--quiet",
    ];

    let single = dir.path().join("single.json");
    let mut args = vec!["load", samples.as_str()];
    args.extend(common);
    args.extend(["--json", single.to_str().unwrap()]);
    let output = dicom_auto(dir.path(), &router, &args).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));

    // The shards, as N machines would run them: separate processes, one start instant.
    let start_at = SystemTime::now() + Duration::from_secs(3);
    let start_at = format!(
        "{:.3}",
        start_at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    );
    let shard_dirs: Vec<PathBuf> = (0..SHARDS)
        .map(|i| dir.path().join(format!("shard-{i}")))
        .collect();
    let children: Vec<_> = (0..SHARDS)
        .map(|i| {
            let shard = format!("{i}/{SHARDS}");
            let mut args = vec!["load", samples.as_str()];
            args.extend(common);
            args.extend([
                "--shard",
                &shard,
                "--start-at",
                &start_at,
                "--shard-out",
                shard_dirs[i as usize].to_str().unwrap(),
            ]);
            dicom_auto(dir.path(), &router, &args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        // Each ends by itself: its run is bounded by --duration and every wait by a timeout.
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }

    let merged = dir.path().join("merged.json");
    let hlog = dir.path().join("merged.hlog");
    let mut args = vec!["merge"];
    args.extend(shard_dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend([
        "--out",
        merged.to_str().unwrap(),
        "--hlog-out",
        hlog.to_str().unwrap(),
        "--verify",
    ]);
    let output = dicom_auto(dir.path(), &router, &args).output().unwrap();
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("their latency histogram equals the merged snapshot's"),
        "{shown}"
    );
    assert!(
        shown.contains("in more than one") && shown.contains(", 0 in more than one"),
        "{shown}"
    );
    assert!(shown.contains("missing     0"), "{shown}");

    // Counts: exact. The shards' intended send times together are the single run's,
    // and a send is in the run when its intended time falls within the duration.
    let single = json(&single);
    let merged_json = json(&merged);
    for count in ["attempted", "succeeded"] {
        assert_eq!(
            merged_json[count], single["metrics"][count],
            "{count}: {shown}"
        );
    }
    assert_eq!(
        merged_json["attempted"].as_u64().unwrap(),
        u64::from(instances * SHARDS),
    );

    // Studies: disjoint across shards (roots ending in the shard index), and as many
    // as the single run made (each shard sent whole passes over the samples).
    let mut seen = HashSet::new();
    let mut roots = HashSet::new();
    for shard_dir in &shard_dirs {
        let studies = json(&shard_dir.join("studies.json"));
        roots.insert(studies["uid_root"].as_str().unwrap().to_string());
        for uid in study_uids(&studies["studies"]) {
            assert!(seen.insert(uid.clone()), "{uid} sent by two shards");
        }
    }
    assert_eq!(roots.len(), SHARDS as usize);
    assert_eq!(seen.len(), study_uids(&single["studies"]).len());

    // Percentiles: the merged histogram is the shards' histograms added, so its
    // percentiles equal those of all their samples recorded together, exactly; and
    // the interval logs hold the same histograms.
    let merged = MetricsSnapshot::from_json(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let mut union = LatencyHistogram::new();
    let mut from_logs = LatencyHistogram::new();
    for shard_dir in &shard_dirs {
        let snapshot = MetricsSnapshot::from_json(
            &std::fs::read_to_string(shard_dir.join("metrics.json")).unwrap(),
        )
        .unwrap();
        union.merge(&snapshot.histograms.latency);
        let log = std::fs::read(shard_dir.join("latency.hlog")).unwrap();
        let intervals = metrics::interval_log::read_interval_log(&log).unwrap();
        from_logs.merge(&metrics::interval_log::tagged_total(&intervals, "latency"));
    }
    assert_eq!(union, merged.histograms.latency);
    assert_eq!(from_logs, union);
    for p in [50.0, 90.0, 99.0, 100.0] {
        assert_eq!(
            union.percentile(p),
            merged.histograms.latency.percentile(p),
            "p{p}"
        );
    }
    let written = metrics::interval_log::read_interval_log(&std::fs::read(&hlog).unwrap()).unwrap();
    assert_eq!(
        metrics::interval_log::tagged_total(&written, "latency"),
        merged.histograms.latency
    );

    // Against the single run: a different run of the same schedule, so only close.
    // Loopback C-STOREs to the simulator take about a millisecond; scheduling noise
    // on a busy two-core machine can add tens. The bound asserts that the merge is
    // not off by a factor (averaged percentiles, a shard lost, seconds misread as
    // milliseconds), not the histograms' 0.1 % precision, which holds only within
    // one set of samples (checked exactly above).
    let single_p50 = single["metrics"]["latency_ms"]["p50_ms"].as_f64().unwrap();
    let merged_p50 = merged.histograms.latency.percentile_ms(50.0).unwrap();
    assert!(
        (merged_p50 - single_p50).abs() <= 50.0 + 2.0 * single_p50,
        "p50 merged {merged_p50} ms, single {single_p50} ms"
    );
}

#[test]
fn a_bad_shard_is_refused_naming_the_flag_and_the_value() {
    let router = store_all_simulator();
    let dir = tempfile::tempdir().unwrap();
    let samples = samples_dir().display().to_string();
    let output = dicom_auto(
        dir.path(),
        &router,
        &[
            "load", &samples, "--count", "3", "--shard", "3/3", "--quiet",
        ],
    )
    .output()
    .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("--shard") && shown.contains("3/3"),
        "{shown}"
    );
    let output = dicom_auto(
        dir.path(),
        &router,
        &[
            "load",
            &samples,
            "--count",
            "3",
            "--start-at",
            "1000000000",
            "--quiet",
        ],
    )
    .output()
    .unwrap();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("start_at") && shown.contains("passed"),
        "{shown}"
    );
}
