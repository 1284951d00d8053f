//! What the interop tests share: the sample files, the embedded simulator, DCMTK tools.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use std::sync::Arc;

use config::AssociationStrategy;
use loader::FileInfo;
use sender::{
    DicomSender, LoadPlan, LoadReport, NoObserver, PreparedInstance, StopAfter, run_load,
};
use simulator::{Simulator, SimulatorConfig, SimulatorHandle};
use tests_suite::peers::{self, ToolRun};

/// The committed sample set (`dicom_samples/`).
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("dicom_samples")
}

/// Every sample file with its metadata, scanned once.
pub fn samples() -> &'static [FileInfo] {
    static SAMPLES: OnceLock<Vec<FileInfo>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let scan = loader::find_dicom_files(samples_dir()).expect("dicom_samples/ is readable");
        let infos = loader::scan_infos(&scan.files);
        assert!(
            infos.failures.is_empty(),
            "unreadable samples: {:?}",
            infos.failures
        );
        assert!(!infos.infos.is_empty(), "no sample in dicom_samples/");
        infos.infos
    })
}

/// Fails the test, with the way out, when DCMTK or Orthanc is missing or this network
/// namespace reaches beyond loopback.
pub fn require_peers() {
    if let Err(e) = peers::check_installed() {
        panic!("{e}");
    }
    // Asked for by name (feature interop), so refused loudly rather than skipped.
    if let Err(why) = test_peers::loopback_only() {
        panic!("interop tests start DCMTK and Orthanc: {why}");
    }
}

/// The simulator with its default rules on a free loopback port.
pub fn start_simulator() -> SimulatorHandle {
    Simulator::start(SimulatorConfig::default()).expect("the simulator starts")
}

/// Runs a DCMTK tool (`/usr/bin/<tool>`, never one shadowing it on PATH) within 60 s.
pub fn dcmtk<S: AsRef<std::ffi::OsStr>>(tool: &str, args: &[S]) -> ToolRun {
    let program = format!("/usr/bin/{tool}");
    let run = peers::run_tool(&program, args, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{program}: {e:#}"));
    assert!(
        run.status.is_some(),
        "{program} did not finish within 60 s: {}",
        run.output()
    );
    run
}

/// Runs `scripts/peers/store`: storescu, each file in its own transfer syntax.
pub fn store_with_storescu(port: u16, called_ae_title: &str, paths: &[&Path]) -> ToolRun {
    let mut args = vec![
        peers::scripts_dir().join("store").display().to_string(),
        "--aet".into(),
        "DCMTK-STORESCU".into(),
        "--aec".into(),
        called_ae_title.into(),
        port.to_string(),
    ];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    peers::run_tool("bash", &args, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("scripts/peers/store: {e:#}"))
}

/// Sends each instance once on one persistent association, unpaced, and checks the
/// accounting adds up.
pub fn send_each_once(sender: &DicomSender, instances: Vec<Arc<PreparedInstance>>) -> LoadReport {
    let plan = LoadPlan::new(instances)
        .stop_after(StopAfter::EachOnce)
        .rate(None)
        .concurrency(1)
        .association(AssociationStrategy::Persistent);
    let report = run_load(sender, &plan, &NoObserver).expect("the load runs");
    assert!(report.is_consistent(), "accounting: {:?}", report.summary());
    report
}
