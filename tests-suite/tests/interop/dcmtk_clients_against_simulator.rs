//! DCMTK's echoscu, storescu and findscu against the embedded simulator: the simulator
//! is a correct SCP for clients it has never seen.

use std::path::Path;

use crate::common::{dcmtk, require_peers, samples, start_simulator, store_with_storescu};

const CALLING: &str = "DCMTK-SCU";

fn echo(port: u16, called: &str) -> tests_suite::peers::ToolRun {
    dcmtk(
        "echoscu",
        &[
            "-to",
            "5",
            "-ta",
            "5",
            "-td",
            "5",
            "-aet",
            CALLING,
            "-aec",
            called,
            "127.0.0.1",
            &port.to_string(),
        ],
    )
}

#[test]
fn dcmtk_echoscu_is_answered_on_every_route_and_on_the_query_ae_title() {
    require_peers();
    let simulator = start_simulator();
    let port = simulator.addr().port();
    let mut titles: Vec<String> = simulator
        .rules()
        .routes
        .iter()
        .map(|r| r.called_ae_title.clone())
        .collect();
    titles.push("LB-QUERY".into());
    for title in &titles {
        let run = echo(port, title);
        assert!(run.success(), "echoscu to {title}: {}", run.output());
    }
    assert_eq!(simulator.stats().associations.accepted, titles.len() as u64);
}

#[test]
fn dcmtk_echoscu_is_refused_for_an_unknown_called_ae_title() {
    require_peers();
    let simulator = start_simulator();
    let run = echo(simulator.addr().port(), "NOT-A-ROUTE");
    assert!(!run.success(), "echoscu succeeded: {}", run.output());
    let output = run.output();
    assert!(
        output.contains("Association Rejected")
            && output.contains("Called AE Title Not Recognized"),
        "{output}"
    );
}

#[test]
fn dcmtk_storescu_stores_every_sample_in_its_own_transfer_syntax() {
    require_peers();
    let simulator = start_simulator();
    let paths: Vec<&Path> = samples().iter().map(|i| i.path.as_path()).collect();
    // LB-HTM-OPH normalises what it can and replaces duplicates: every sample passes.
    let run = store_with_storescu(simulator.addr().port(), "LB-HTM-OPH", &paths);
    assert!(run.success(), "storescu: {}", run.output());
    for info in samples() {
        assert!(
            simulator.contains_instance(&info.sop_instance_uid),
            "{} ({}) is not in the simulator",
            info.path.display(),
            info.transfer_syntax_uid
        );
    }
    let stats = simulator.stats();
    assert_eq!(stats.stores.received, samples().len() as u64);
    assert_eq!(stats.instances_in_store, samples().len() as u64);
}

#[test]
fn dcmtk_findscu_finds_a_study_stored_by_storescu_with_its_morphed_description() {
    require_peers();
    let simulator = start_simulator();
    let port = simulator.addr().port().to_string();
    let colonoscopy = samples()
        .iter()
        .find(|i| i.has_modality("ES"))
        .expect("an endoscopy sample");
    let study = colonoscopy.study_instance_uid.clone().expect("a study UID");
    let patient = colonoscopy.patient_id.clone().expect("a patient ID");
    let stored = store_with_storescu(
        simulator.addr().port(),
        "LB-HTM-GI",
        &[colonoscopy.path.as_path()],
    );
    assert!(stored.success(), "storescu: {}", stored.output());

    let study_root = findscu(
        "-S",
        &port,
        &[
            "QueryRetrieveLevel=STUDY",
            &format!("StudyInstanceUID={study}"),
            "StudyDescription",
            "PatientID",
        ],
    );
    let answer = study_root.output();
    assert!(study_root.success(), "findscu -S: {answer}");
    assert!(answer.contains(&study), "{answer}");
    assert!(answer.contains("Endoscopy Colonoscopy"), "{answer}");

    let patient_root = findscu(
        "-P",
        &port,
        &[
            "QueryRetrieveLevel=STUDY",
            &format!("PatientID={patient}"),
            "StudyInstanceUID",
        ],
    );
    let answer = patient_root.output();
    assert!(patient_root.success(), "findscu -P: {answer}");
    assert!(answer.contains(&study), "{answer}");
}

/// findscu on the simulator's query AE title under a model (`-S` Study Root, `-P`
/// Patient Root) with these keys.
fn findscu(model: &str, port: &str, keys: &[&str]) -> tests_suite::peers::ToolRun {
    let mut args = vec![
        model, "-to", "5", "-ta", "5", "-td", "10", "-aet", CALLING, "-aec", "LB-QUERY",
    ];
    for key in keys {
        args.extend(["-k", key]);
    }
    args.extend(["127.0.0.1", port]);
    dcmtk("findscu", &args)
}
