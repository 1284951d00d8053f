//! Folder updates: what a user editing a sample set in place relies on.

mod common;

use std::io;

use common::*;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::open_file;
use tagutil::{
    Edit, EditPlan, FileOutcome, SkipReason, UpdateOptions, update_folder, update_folder_with_hook,
};

fn plan(edits: &[Edit]) -> EditPlan {
    let mut plan = EditPlan::new();
    for edit in edits {
        plan.push(edit.clone()).unwrap();
    }
    plan
}

#[test]
fn dry_run_leaves_every_file_byte_identical_and_reports_what_would_change() {
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path());
    let before = snapshot(dir.path());
    let mut plan = plan(&[Edit::set("StudyDescription", "LOAD TEST").unwrap()]);
    plan.regenerate_uids().unwrap();

    let mut reported = 0;
    let summary = update_folder(
        dir.path(),
        &plan,
        UpdateOptions { dry_run: true },
        |report| {
            if let FileOutcome::Changed(changes) = &report.outcome {
                assert!(
                    changes
                        .iter()
                        .any(|c| c.new.as_deref() == Some("LOAD TEST"))
                );
                reported += 1;
            }
        },
    )
    .unwrap();

    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(reported, 3);
    assert_eq!(summary.changed, 3);
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn failure_injected_before_rename_leaves_originals_intact_and_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path());
    let before = snapshot(dir.path());
    let plan = plan(&[Edit::set("StudyDescription", "LOAD TEST").unwrap()]);

    let summary = update_folder_with_hook(
        dir.path(),
        &plan,
        UpdateOptions::default(),
        |_| {},
        &|temp| {
            // The new content is complete at this point; only the rename is left.
            assert!(temp.exists());
            Err(io::Error::other("injected: power cut before rename"))
        },
    )
    .unwrap();

    assert_eq!(summary.failed, 3);
    assert!(summary.has_failures());
    assert_eq!(snapshot(dir.path()), before);
    assert!(temp_files(dir.path()).is_empty());
}

#[test]
fn keyword_and_every_hex_form_update_the_file() {
    for form in ["StudyDescription", "(0008,1030)", "0008,1030", "00081030"] {
        let dir = tempfile::tempdir().unwrap();
        let files = sample_folder(dir.path());
        let plan = plan(&[Edit::set(form, "BY FORM").unwrap()]);

        let summary = update_folder(dir.path(), &plan, UpdateOptions::default(), |_| {}).unwrap();

        assert_eq!(summary.changed, 3, "form {form}");
        for path in files.values() {
            let file = open_file(path).unwrap();
            assert_eq!(
                text(&file, tags::STUDY_DESCRIPTION).as_deref(),
                Some("BY FORM"),
                "{form}"
            );
        }
    }
}

#[test]
fn unknown_tag_or_bad_value_is_a_clear_error_before_any_file_is_touched() {
    let err = Edit::set("StudyDescripton", "X").unwrap_err().to_string();
    assert!(err.contains("StudyDescripton"), "{err}");

    let err = Edit::set("StudyDate", "20230230").unwrap_err().to_string();
    assert!(
        err.contains("StudyDate") && err.contains("20230230") && err.contains("DA"),
        "{err}"
    );

    let err = Edit::set("(0020,000D)", "1.2.03").unwrap_err().to_string();
    assert!(
        err.contains("StudyInstanceUID") && err.contains("leading zero"),
        "{err}"
    );

    let err = Edit::set("StationName", "A NAME LONGER THAN SIXTEEN")
        .unwrap_err()
        .to_string();
    assert!(err.contains("SH") && err.contains("16"), "{err}");

    let err = Edit::set("MediaStorageSOPInstanceUID", "1.2.3")
        .unwrap_err()
        .to_string();
    assert!(err.contains("file meta"), "{err}");
}

#[test]
fn non_dicom_files_are_skipped_and_reported_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path());
    let plan = plan(&[Edit::set("StudyDescription", "X").unwrap()]);
    let mut skipped = Vec::new();

    let summary = update_folder(dir.path(), &plan, UpdateOptions::default(), |report| {
        if let FileOutcome::Skipped(reason) = &report.outcome {
            skipped.push((report.path.file_name().unwrap().to_owned(), reason.clone()));
        }
    })
    .unwrap();

    assert_eq!(summary.scanned, 5);
    assert_eq!(summary.skipped, 2);
    assert_eq!(summary.changed, 3);
    assert!(skipped.contains(&("README.txt".into(), SkipReason::NoDicmMagic)));
    assert!(skipped.contains(&("empty.dcm".into(), SkipReason::TooShort { len: 0 })));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.txt")).unwrap(),
        README
    );
}

#[test]
fn truncated_dicom_file_fails_without_panic_and_is_left_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_folder(dir.path());
    let full = std::fs::read(&files["study_b/IM0001"]).unwrap();
    let truncated = dir.path().join("truncated");
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let plan = plan(&[Edit::set("StudyDescription", "X").unwrap()]);
    let mut failed = Vec::new();

    let summary = update_folder(dir.path(), &plan, UpdateOptions::default(), |report| {
        if let FileOutcome::Failed(err) = &report.outcome {
            failed.push(err.to_string());
        }
    })
    .unwrap();

    assert_eq!(summary.failed, 1);
    assert!(failed[0].contains("truncated"), "{}", failed[0]);
    assert_eq!(std::fs::read(&truncated).unwrap(), &full[..full.len() / 3]);
}

#[test]
fn compressed_file_cut_inside_its_pixel_data_fails_and_is_left_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_folder(dir.path());
    let path = &files["study_a/series_1/IM0002.dcm"];
    let full = std::fs::read(path).unwrap();
    // Cut inside the JPEG fragment: dicom-rs itself opens this without complaint.
    let cut = &full[..full.len() - 12];
    std::fs::write(path, cut).unwrap();
    let plan = plan(&[Edit::set("StudyDescription", "X").unwrap()]);
    let mut failed = Vec::new();

    let summary = update_folder(dir.path(), &plan, UpdateOptions::default(), |report| {
        if let FileOutcome::Failed(err) = &report.outcome {
            failed.push(err.to_string());
        }
    })
    .unwrap();

    assert_eq!((summary.failed, summary.changed), (1, 2));
    assert!(
        failed[0].contains("IM0002.dcm") && failed[0].contains("truncated"),
        "{failed:?}"
    );
    assert_eq!(std::fs::read(path).unwrap(), cut);
}

#[test]
fn new_uids_are_consistent_across_the_folder_and_references_follow() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_folder(dir.path());
    let mut plan = EditPlan::new();
    plan.regenerate_uids().unwrap();

    update_folder(dir.path(), &plan, UpdateOptions::default(), |_| {}).unwrap();

    let a1 = open_file(&files["study_a/series_1/IM0001"]).unwrap();
    let a2 = open_file(&files["study_a/series_1/IM0002.dcm"]).unwrap();
    let b1 = open_file(&files["study_b/IM0001"]).unwrap();
    assert_uids_renamed_consistently(&a1, &a2, &b1);
}

#[test]
fn transfer_syntax_and_encapsulated_pixel_data_survive_an_edit_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_folder(dir.path());
    let path = &files["study_a/series_1/IM0002.dcm"];
    let before = open_file(path).unwrap();
    let plan = plan(&[Edit::set("SeriesDescription", "EDITED").unwrap()]);

    update_folder(dir.path(), &plan, UpdateOptions::default(), |_| {}).unwrap();

    let after = open_file(path).unwrap();
    assert_eq!(
        after.meta().transfer_syntax(),
        before.meta().transfer_syntax()
    );
    let fragments =
        |file: &dicom_object::DefaultDicomObject| match file.get(tags::PIXEL_DATA).unwrap().value()
        {
            Value::PixelSequence(seq) => (seq.offset_table().to_vec(), seq.fragments().to_vec()),
            other => panic!("expected encapsulated pixel data, got {other:?}"),
        };
    assert_eq!(fragments(&after), fragments(&before));
    assert_eq!(fragments(&after).1[0], FRAGMENT);
    assert_eq!(
        text(&after, tags::SERIES_DESCRIPTION).as_deref(),
        Some("EDITED")
    );
    let written = std::fs::read(path).unwrap();
    assert!(written.windows(FRAGMENT.len()).any(|w| w == FRAGMENT));
}

#[test]
fn implicit_and_deflated_files_keep_their_transfer_syntax_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let deflated = dir.path().join("deflated");
    ct_image(STUDY_A, SERIES_A1, "1.2.3.4.5", None, Encoding::Deflated)
        .write_to_file(&deflated)
        .unwrap();
    let implicit = dir.path().join("implicit");
    ct_image(STUDY_A, SERIES_A1, "1.2.3.4.6", None, Encoding::ImplicitLe)
        .write_to_file(&implicit)
        .unwrap();
    let before: Vec<_> = [&deflated, &implicit]
        .iter()
        .map(|p| open_file(p).unwrap())
        .collect();
    let plan = plan(&[Edit::set("StudyDescription", "EDITED").unwrap()]);

    let summary = update_folder(dir.path(), &plan, UpdateOptions::default(), |_| {}).unwrap();

    assert_eq!(summary.changed, 2);
    for (path, before) in [&deflated, &implicit].iter().zip(&before) {
        let after = open_file(path).unwrap();
        assert_eq!(
            after.meta().transfer_syntax(),
            before.meta().transfer_syntax()
        );
        assert_eq!(
            after.element(tags::PIXEL_DATA).unwrap().to_bytes().unwrap(),
            before
                .element(tags::PIXEL_DATA)
                .unwrap()
                .to_bytes()
                .unwrap()
        );
        assert_eq!(
            text(&after, tags::STUDY_DESCRIPTION).as_deref(),
            Some("EDITED")
        );
    }
}

#[test]
fn remove_deletes_and_add_fills_only_missing_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let files = sample_folder(dir.path());
    let plan = plan(&[
        Edit::remove("InstitutionName").unwrap(),
        Edit::add("StationName", "NEW STATION").unwrap(),
        Edit::add("BodyPartExamined", "CHEST").unwrap(),
    ]);

    update_folder(dir.path(), &plan, UpdateOptions::default(), |_| {}).unwrap();

    let file = open_file(&files["study_b/IM0001"]).unwrap();
    assert_eq!(text(&file, tags::INSTITUTION_NAME), None);
    assert_eq!(
        text(&file, tags::STATION_NAME).as_deref(),
        Some("CT-ROOM-2")
    );
    assert_eq!(
        text(&file, tags::BODY_PART_EXAMINED).as_deref(),
        Some("CHEST")
    );
}

#[test]
fn files_the_edits_do_not_change_are_counted_unchanged_and_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    sample_folder(dir.path());
    let before = snapshot(dir.path());
    let plan = plan(&[Edit::set("Modality", "CT").unwrap()]);

    let summary = update_folder(dir.path(), &plan, UpdateOptions::default(), |_| {}).unwrap();

    assert_eq!(summary.unchanged, 3);
    assert_eq!(summary.changed, 0);
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn the_committed_sample_set_can_be_updated_in_a_copy() {
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dicom_samples");
    let Ok(originals) = tagutil::get_dcm_files(&samples) else {
        eprintln!("dicom_samples/ not present; covered by the generated samples above");
        return;
    };
    if originals.is_empty() {
        eprintln!("dicom_samples/ has no DICOM files; covered by the generated samples above");
        return;
    }
    let copy = tempfile::tempdir().unwrap();
    for path in &originals {
        let target = copy.path().join(path.strip_prefix(&samples).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(path, &target).unwrap();
    }
    let mut plan = plan(&[Edit::set("StudyDescription", "REFRESHED").unwrap()]);
    plan.regenerate_uids().unwrap();

    let summary = update_folder(copy.path(), &plan, UpdateOptions::default(), |_| {}).unwrap();

    assert_eq!(summary.failed, 0);
    assert_eq!(summary.changed, originals.len());
    for path in tagutil::get_dcm_files(copy.path()).unwrap() {
        let file = open_file(&path).unwrap();
        assert_eq!(
            text(&file, tags::STUDY_DESCRIPTION).as_deref(),
            Some("REFRESHED")
        );
        assert_eq!(
            file.meta().media_storage_sop_instance_uid(),
            text(&file, tags::SOP_INSTANCE_UID).unwrap()
        );
    }
}
