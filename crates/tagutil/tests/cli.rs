//! The `tagutil` command line, run as a user would.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use dicom_core::chrono::Local;
use dicom_dictionary_std::tags;
use dicom_object::open_file;

fn tagutil(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tagutil"))
        .args(args)
        .arg(dir)
        .output()
        .expect("tagutil runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn without_an_edit_option_it_says_what_it_needs_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path());
    let before = snapshot(dir.path());

    let output = tagutil(&["--verbose"], dir.path());

    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("--set TAG=VALUE") && err.contains("--new-uids"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn verbose_dry_run_prints_each_change_and_the_summary_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path());
    let before = snapshot(dir.path());

    let output = tagutil(
        &[
            "--verbose",
            "--dry-run",
            "--set",
            "StudyDescription=LOAD TEST",
            "--new-uids",
        ],
        dir.path(),
    );

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains(r#"(0008,1030) StudyDescription: "CT CHEST W CONTRAST" -> "LOAD TEST""#),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            r#"(0020,000D) StudyInstanceUID: "{STUDY_A}" -> "2.25."#
        )),
        "{out}"
    );
    assert!(
        out.contains("README.txt: skipped (not DICOM: no DICM magic at byte 128)"),
        "{out}"
    );
    assert!(
        out.contains(
            "scanned 5, changed 3, unchanged 0, skipped 2, failed 0 (dry run: nothing written)"
        ),
        "{out}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_bad_value_is_an_error_naming_tag_and_value_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path());
    let before = snapshot(dir.path());

    for (args, expected) in [
        (["--set", "StudyDate=20230230"], ["StudyDate", "20230230"]),
        (["--set", "(0008,0060)=ct"], ["Modality", "uppercase"]),
        (
            ["--remove", "NoSuchAttribute"],
            ["NoSuchAttribute", "unknown attribute"],
        ),
    ] {
        let output = tagutil(&args, dir.path());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        for needle in expected {
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn today_sets_study_and_series_dates_and_rules_file_adds_its_edits() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_folder(dir.path());
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rules.path(),
        "remove = [\"InstitutionName\"]\n[set]\n\"0008103E\" = \"FROM RULES\"\n",
    )
    .unwrap();
    let before_run = Local::now().date_naive().format("%Y%m%d").to_string();

    let output = tagutil(
        &["--today", "--rules", rules.path().to_str().unwrap()],
        dir.path(),
    );

    let after_run = Local::now().date_naive().format("%Y%m%d").to_string();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for path in files.values() {
        let file = open_file(path).unwrap();
        let study_date = text(&file, tags::STUDY_DATE).unwrap();
        assert!(
            study_date == before_run || study_date == after_run,
            "{study_date}"
        );
        assert_eq!(text(&file, tags::SERIES_DATE).unwrap(), study_date);
        assert_eq!(
            text(&file, tags::SERIES_DESCRIPTION).as_deref(),
            Some("FROM RULES")
        );
        assert_eq!(text(&file, tags::INSTITUTION_NAME), None);
    }
}

#[test]
fn a_file_that_cannot_be_processed_makes_the_exit_status_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_folder(dir.path());
    let path = &files["study_a/series_1/IM0002.dcm"];
    let full = std::fs::read(path).unwrap();
    std::fs::write(path, &full[..full.len() - 12]).unwrap();

    let output = tagutil(&["--set", "StudyDescription=X"], dir.path());

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("IM0002.dcm: FAILED"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("changed 2, unchanged 0, skipped 2, failed 1"));
}

#[test]
fn anonymize_subcommand_writes_a_deidentified_mirror_and_leaves_the_input() {
    let input = tempfile::tempdir().unwrap();
    let files = sample_folder(input.path());
    let before = snapshot(input.path());
    let output_dir = tempfile::tempdir().unwrap();
    let out = output_dir.path().join("anon");

    let output = Command::new(env!("CARGO_BIN_EXE_tagutil"))
        .args(["anonymize", "--keep-descriptions"])
        .arg(input.path())
        .arg(&out)
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("changed 3"), "{}", stdout(&output));
    assert_eq!(snapshot(input.path()), before);
    for path in files.values() {
        let anonymized = open_file(out.join(path.strip_prefix(input.path()).unwrap())).unwrap();
        assert_eq!(text(&anonymized, tags::PATIENT_NAME).as_deref(), Some(""));
        assert_eq!(
            text(&anonymized, tags::STUDY_DESCRIPTION).as_deref(),
            Some("CT CHEST W CONTRAST")
        );
    }

    let refused = Command::new(env!("CARGO_BIN_EXE_tagutil"))
        .arg("anonymize")
        .arg(input.path())
        .arg(input.path().join("anon"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("inside"), "{}", stderr(&refused));
}
