//! De-identification with the PS3.15 Basic Profile, checked the way a privacy reviewer would.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use dicom_core::Tag;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, open_file};
use tagutil::deid::{BasicProfile, DeidOptions, Deidentifier, anonymize, anonymize_folder};
use tagutil::{DeidError, FileOutcome};

/// Every (tag, value) pair in an object, sequences included.
fn all_values(obj: &InMemDicomObject, out: &mut Vec<(Tag, String)>) {
    for element in obj.iter() {
        match element.value() {
            Value::Primitive(p) => out.push((
                element.header().tag,
                p.to_str().trim_end_matches(['\0', ' ']).to_owned(),
            )),
            Value::Sequence(seq) => {
                for item in seq.items() {
                    all_values(item, out);
                }
            }
            Value::PixelSequence(_) => {}
        }
    }
}

/// Anonymizes the sample folder into a fresh output folder; returns (input dir, output dir,
/// input paths by name).
fn anonymized_samples(
    options: DeidOptions,
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    BTreeMap<&'static str, PathBuf>,
) {
    let input = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    let files = sample_folder(input.path());
    let mut deid = Deidentifier::new(options);
    let summary = anonymize_folder(input.path(), output.path(), &mut deid, |_| {}).unwrap();
    assert_eq!(summary.changed, 3);
    assert_eq!(summary.failed, 0);
    (input, output, files)
}

fn output_of(input: &Path, output: &Path, path: &Path) -> DefaultDicomObject {
    open_file(output.join(path.strip_prefix(input).unwrap())).unwrap()
}

#[test]
fn no_attribute_the_profile_acts_on_keeps_its_original_value_in_any_sample_file() {
    let (input, output, files) = anonymized_samples(DeidOptions::default());
    let profile = BasicProfile::standard();

    for path in files.values() {
        let mut original = Vec::new();
        all_values(&open_file(path).unwrap(), &mut original);
        let mut anonymized = Vec::new();
        all_values(
            &output_of(input.path(), output.path(), path),
            &mut anonymized,
        );

        let acted_on: Vec<_> = original
            .iter()
            .filter(|(tag, value)| {
                !value.is_empty() && (profile.action(*tag).is_some() || tag.group() % 2 == 1)
            })
            .collect();
        assert!(acted_on.len() > 20, "the samples exercise the profile");
        for (tag, value) in acted_on {
            assert!(
                !anonymized.contains(&(*tag, value.clone())),
                "{}: {tag} still holds {value:?}",
                path.display()
            );
        }
    }
}

#[test]
fn identifying_text_appears_nowhere_in_the_output_files() {
    let (_input, output, _files) = anonymized_samples(DeidOptions::default());
    let secrets = [
        "DOE^JANE",
        "MRN-0042",
        "19700101",
        "ACC12345",
        "SAINT EXAMPLE HOSPITAL",
        "Elm Street",
        "HOUSE^GREGORY",
        "TECH^TOM",
        "JANE DOE SECRET",
        "SN-998877",
        "CHEST ROUTINE JANE",
        "call Jane",
        "20230405",
        STUDY_A,
        SERIES_A1,
        FRAME_OF_REFERENCE_A,
    ];
    for (path, bytes) in snapshot(output.path()) {
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} still contains {secret:?}",
                path.display()
            );
        }
    }
}

#[test]
fn uids_stay_consistent_within_a_study_and_differ_from_the_originals() {
    let (input, output, files) = anonymized_samples(DeidOptions::default());
    let open = |name: &str| output_of(input.path(), output.path(), &files[name]);
    let a1 = open("study_a/series_1/IM0001");
    let a2 = open("study_a/series_1/IM0002.dcm");
    let b1 = open("study_b/IM0001");

    assert_uids_renamed_consistently(&a1, &a2, &b1);
    // One patient across both studies keeps one pseudonymous ID.
    assert_eq!(text(&a1, tags::PATIENT_ID).as_deref(), Some("ANON000001"));
    assert_eq!(text(&b1, tags::PATIENT_ID), text(&a1, tags::PATIENT_ID));
}

#[test]
fn output_is_valid_dicom_in_the_original_transfer_syntax_ready_to_send() {
    let (input, output, files) = anonymized_samples(DeidOptions::default());
    for path in files.values() {
        let original = open_file(path).unwrap();
        let anonymized = output_of(input.path(), output.path(), path);

        assert_eq!(
            anonymized.meta().transfer_syntax(),
            original.meta().transfer_syntax()
        );
        assert_eq!(
            anonymized.meta().media_storage_sop_instance_uid(),
            text(&anonymized, tags::SOP_INSTANCE_UID).unwrap()
        );
        assert_eq!(
            anonymized.meta().media_storage_sop_class_uid(),
            original.meta().media_storage_sop_class_uid()
        );
        let pixels = |f: &DefaultDicomObject| match f.get(tags::PIXEL_DATA).unwrap().value() {
            Value::PixelSequence(seq) => seq.fragments().concat(),
            Value::Primitive(p) => p.to_bytes().into_owned(),
            Value::Sequence(_) => panic!("pixel data as a sequence"),
        };
        assert_eq!(pixels(&anonymized), pixels(&original), "{}", path.display());
        assert_eq!(text(&anonymized, tags::MODALITY).as_deref(), Some("CT"));
    }
}

#[test]
fn private_attributes_and_overlay_planes_are_removed() {
    let (input, output, files) = anonymized_samples(DeidOptions::default());
    for path in files.values() {
        let anonymized = output_of(input.path(), output.path(), path);
        assert!(
            anonymized.tags().all(|t| t.group() % 2 == 0),
            "{}",
            path.display()
        );
        assert!(
            anonymized.tags().all(|t| t.group() != 0x6000),
            "{}",
            path.display()
        );
        assert_eq!(text(&anonymized, PRIVATE_VALUE), None);
    }
}

#[test]
fn method_attributes_record_the_basic_profile() {
    let (input, output, files) = anonymized_samples(DeidOptions::default());
    let anonymized = output_of(input.path(), output.path(), &files["study_b/IM0001"]);

    assert_eq!(
        text(&anonymized, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
        Some("YES")
    );
    assert!(
        text(&anonymized, tags::DEIDENTIFICATION_METHOD)
            .unwrap()
            .contains("Basic Profile")
    );
    let codes = anonymized
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .to_vec();
    assert_eq!(codes.len(), 1);
    assert_eq!(text(&codes[0], tags::CODE_VALUE).as_deref(), Some("113100"));
    assert_eq!(
        text(&codes[0], tags::CODING_SCHEME_DESIGNATOR).as_deref(),
        Some("DCM")
    );
    assert_eq!(
        text(&codes[0], tags::CODE_MEANING).as_deref(),
        Some("Basic Application Confidentiality Profile")
    );
    // Basic profile results per attribute kind.
    assert_eq!(text(&anonymized, tags::PATIENT_NAME).as_deref(), Some(""));
    assert_eq!(text(&anonymized, tags::STUDY_DATE).as_deref(), Some(""));
    assert_eq!(text(&anonymized, tags::STUDY_DESCRIPTION), None);
    assert_eq!(text(&anonymized, tags::PATIENT_ADDRESS), None);
    assert_eq!(
        text(&anonymized, tags::INSTITUTION_NAME).as_deref(),
        Some("ANONYMIZED")
    );
    assert_eq!(
        text(
            &anonymized,
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED
        )
        .as_deref(),
        Some("REMOVED")
    );
}

#[test]
fn retain_options_keep_descriptions_and_dates_and_are_recorded() {
    let options = DeidOptions {
        keep_descriptions: true,
        keep_longitudinal_dates: true,
    };
    let (input, output, files) = anonymized_samples(options);
    let anonymized = output_of(input.path(), output.path(), &files["study_b/IM0001"]);

    assert_eq!(
        text(&anonymized, tags::STUDY_DESCRIPTION).as_deref(),
        Some("CT CHEST W CONTRAST")
    );
    assert_eq!(
        text(&anonymized, tags::SERIES_DESCRIPTION).as_deref(),
        Some("AXIAL 5MM")
    );
    assert_eq!(
        text(&anonymized, tags::STUDY_DATE).as_deref(),
        Some("20230405")
    );
    assert_eq!(
        text(&anonymized, tags::STUDY_TIME).as_deref(),
        Some("101500")
    );
    // Other descriptors and identifying attributes still go.
    assert_eq!(
        text(&anonymized, tags::PROTOCOL_NAME).as_deref(),
        Some("ANONYMIZED")
    );
    assert_eq!(text(&anonymized, tags::PATIENT_NAME).as_deref(), Some(""));
    let codes: Vec<String> = anonymized
        .get(tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .iter()
        .map(|item| text(item, tags::CODE_VALUE).unwrap())
        .collect();
    assert_eq!(codes, ["113100", "113105", "113106"]);
    assert_eq!(
        text(
            &anonymized,
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED
        )
        .as_deref(),
        Some("UNMODIFIED")
    );
}

#[test]
fn input_folder_is_never_modified_and_non_dicom_files_are_not_copied() {
    let input = tempfile::tempdir().unwrap();
    let output = tempfile::tempdir().unwrap();
    sample_folder(input.path());
    let before = snapshot(input.path());
    let mut skipped = 0;

    let summary = anonymize_folder(
        input.path(),
        output.path(),
        &mut Deidentifier::new(DeidOptions::default()),
        |r| {
            if matches!(r.outcome, FileOutcome::Skipped(_)) {
                skipped += 1;
            }
        },
    )
    .unwrap();

    assert_eq!(snapshot(input.path()), before);
    assert_eq!((summary.skipped, skipped), (2, 2));
    assert!(!output.path().join("README.txt").exists());
    assert_eq!(tagutil::get_dcm_files(output.path()).unwrap().len(), 3);
    assert!(temp_files(output.path()).is_empty());
}

#[test]
fn output_inside_input_is_refused_before_anything_is_written() {
    let input = tempfile::tempdir().unwrap();
    sample_folder(input.path());
    let before = snapshot(input.path());
    let mut deid = Deidentifier::new(DeidOptions::default());

    for output in [
        input.path().to_owned(),
        input.path().join("anon"),
        input.path().join("study_a/.."),
    ] {
        let err = anonymize_folder(input.path(), &output, &mut deid, |_| {}).unwrap_err();
        assert!(matches!(err, DeidError::OutputInsideInput { .. }), "{err}");
    }
    assert_eq!(snapshot(input.path()), before);
    assert!(!input.path().join("anon").exists());
}

#[test]
fn anonymizing_in_memory_keeps_one_uid_map_across_calls() {
    let mut deid = Deidentifier::new(DeidOptions::default());
    let mut first = ct_image(STUDY_A, SERIES_A1, "1.2.3.1", None, Encoding::ExplicitLe);
    let mut second = ct_image(STUDY_A, SERIES_A1, "1.2.3.2", None, Encoding::ExplicitLe);

    let changes = anonymize(&mut first, &mut deid);
    anonymize(&mut second, &mut deid);

    assert!(changes.iter().any(|c| c.old.as_deref() == Some("DOE^JANE")));
    assert_eq!(
        text(&first, tags::STUDY_INSTANCE_UID),
        text(&second, tags::STUDY_INSTANCE_UID)
    );
    assert_ne!(
        text(&first, tags::SOP_INSTANCE_UID),
        text(&second, tags::SOP_INSTANCE_UID)
    );
    assert_eq!(
        deid.uid_map().get(STUDY_A),
        text(&first, tags::STUDY_INSTANCE_UID).as_deref()
    );
}

#[test]
fn the_committed_sample_set_anonymizes_into_valid_files() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dicom_samples");
    let originals = tagutil::get_dcm_files(&samples).unwrap_or_default();
    if originals.is_empty() {
        eprintln!("dicom_samples/ has no DICOM files; covered by the generated samples above");
        return;
    }
    let output = tempfile::tempdir().unwrap();
    let mut deid = Deidentifier::new(DeidOptions::default());

    let summary = anonymize_folder(&samples, output.path(), &mut deid, |_| {}).unwrap();

    assert_eq!(summary.failed, 0);
    assert_eq!(summary.changed, originals.len());
    for path in &originals {
        let original = open_file(path).unwrap();
        let anonymized = output_of(&samples, output.path(), path);
        assert_eq!(
            anonymized.meta().transfer_syntax(),
            original.meta().transfer_syntax()
        );
        assert_eq!(
            text(&anonymized, tags::PATIENT_IDENTITY_REMOVED).as_deref(),
            Some("YES")
        );
        assert_ne!(
            text(&anonymized, tags::SOP_INSTANCE_UID),
            text(&original, tags::SOP_INSTANCE_UID)
        );
        if let Some(name) = text(&original, tags::PATIENT_NAME).filter(|n| !n.is_empty()) {
            assert_ne!(text(&anonymized, tags::PATIENT_NAME), Some(name));
        }
    }
}
