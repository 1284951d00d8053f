//! DCMTK's echoscu, storescu and findscu against the simulator. Skipped (with a
//! printed reason) when DCMTK is not installed (`apt-get install dcmtk`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use dicom_dictionary_std::uids;
use dicom_object::meta::FileMetaTableBuilder;
use simulator::{Simulator, SimulatorConfig};

fn dcmtk_installed() -> bool {
    test_peers::installed(&["/usr/bin/echoscu", "/usr/bin/storescu", "/usr/bin/findscu"])
        .map_err(|why| eprintln!("skipped: {why}"))
        .is_ok()
}

fn run(tool: &str, args: &[&str]) -> Output {
    // Debian's DCMTK leaves Nagle on unless told: ~90 ms per exchange otherwise.
    let output = Command::new(Path::new("/usr/bin").join(tool))
        .args(args)
        .env("TCP_NODELAY", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{tool} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn dcmtk_echoscu_storescu_and_findscu_work_against_the_simulator() {
    if !dcmtk_installed() {
        return;
    }
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let port = sim.addr().port().to_string();
    run("echoscu", &["-aec", "LB-HTM-OPH", "127.0.0.1", &port]);

    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 1..=2 {
        let obj = instance(
            "1.2.826.0.9.1",
            "1.2.826.0.9.1.1",
            &format!("1.2.826.0.9.1.1.{i}"),
            "OPV",
            "30-2 GPA",
        );
        let file = obj
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
            .unwrap();
        let path = dir.path().join(format!("vf{i}.dcm"));
        file.write_to_file(&path).unwrap();
        files.push(path.display().to_string());
    }
    let mut args = vec!["-aec", "LB-HTM-OPH", "127.0.0.1", &port];
    args.extend(files.iter().map(String::as_str));
    run("storescu", &args);
    assert_eq!(sim.stats().stores.acknowledged(), 2);

    let output = run(
        "findscu",
        &[
            "-S",
            "-aec",
            "LB-QUERY",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PID001",
            "-k",
            "StudyDescription",
            "-k",
            "NumberOfStudyRelatedInstances",
            "127.0.0.1",
            &port,
        ],
    );
    // findscu prints the responses on stderr (DCMTK's logger).
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("Visual Fields (VF) GPA"), "{printed}");
    assert!(
        printed.contains("[2 ]") || printed.contains("[2]"),
        "{printed}"
    );
    let stats = sim.shutdown();
    assert_eq!(stats.finds.matches, 1);
    assert_eq!(stats.associations.panicked, 0);
}
