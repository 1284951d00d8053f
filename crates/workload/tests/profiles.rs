//! The profiles users write: the shipped ones parse, and every mistake names its line and field.

use std::path::Path;
use std::time::Duration;

use workload::{AeTitleOrder, CountRange, ImageSource, Profile, SizeProfile, WorkloadError};

fn workspace_file(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn invalid(text: &str) -> (usize, usize, String) {
    match Profile::from_toml_str(text, "p.toml") {
        Err(WorkloadError::Invalid {
            file,
            line,
            column,
            message,
        }) => {
            assert_eq!(file, "p.toml");
            (line, column, message)
        }
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

const CT: &str = r#"
[[modality]]
name = "CT"
modality = "CT"
calling_ae_titles = ["CT_1"]
studies_per_hour = 40
images_per_series = 10
"#;

#[test]
fn the_hospital_day_profile_parses() {
    let profile = Profile::from_file(workspace_file("profiles/hospital-day.toml")).unwrap();
    let names: Vec<&str> = profile.modalities.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["CT", "MR", "DX", "CR", "US", "US-clips", "OP", "OPT", "OPV"]
    );
    assert_eq!(profile.duration(), Some(Duration::from_secs(600)));
    assert!(profile.run.daily_curve.is_some());
    assert_eq!(profile.bursts.len(), 1);
    let dx = profile.group("DX").unwrap();
    assert_eq!(dx.calling_ae_title_order, AeTitleOrder::Random);
    assert_eq!(dx.images_per_series, CountRange { min: 1, max: 3 });
    let schedule = profile.schedule(Duration::from_secs(600));
    assert!(schedule.studies.len() > 100);
}

#[test]
fn the_readme_example_parses() {
    let readme = std::fs::read_to_string(workspace_file("crates/workload/README.md")).unwrap();
    let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let profile = Profile::from_toml_str(&readme[start..end], "README.md").unwrap();
    assert!(!profile.modalities.is_empty());
    assert!(!profile.bursts.is_empty());
}

#[test]
fn a_minimal_group_takes_the_documented_defaults() {
    let profile = Profile::from_toml_str(CT, "p.toml").unwrap();
    let ct = &profile.modalities[0];
    assert_eq!(ct.series, CountRange::fixed(1));
    assert_eq!(ct.image_interval, Duration::ZERO);
    assert_eq!(ct.calling_ae_title_order, AeTitleOrder::RoundRobin);
    assert_eq!(ct.called_ae_title, None);
    assert_eq!(profile.run.seed, workload::DEFAULT_SEED);
    assert!(matches!(
        ct.images,
        ImageSource::Synthetic {
            geometry: Some(_),
            ..
        }
    ));
}

#[test]
fn an_unknown_field_is_refused_at_its_line() {
    let (line, column, message) = invalid(&format!("{CT}colour = \"red\"\n"));
    assert_eq!((line, column), (8, 1));
    assert!(message.contains("unknown field `colour`"), "{message}");
}

#[test]
fn a_rate_of_zero_is_refused_naming_the_field_and_value() {
    let (line, column, message) =
        invalid(&CT.replace("studies_per_hour = 40", "studies_per_hour = 0"));
    assert_eq!((line, column), (6, 20));
    assert!(message.contains("studies_per_hour = 0"), "{message}");
    assert!(message.contains("rate > 0"), "{message}");
}

#[test]
fn a_range_with_min_above_max_is_refused() {
    let (line, _, message) = invalid(&format!("{CT}series = {{ min = 4, max = 2 }}\n"));
    assert_eq!(line, 8);
    assert!(message.contains("series"), "{message}");
    assert!(message.contains("min <= max"), "{message}");
}

#[test]
fn a_daily_curve_needs_24_values() {
    let (line, column, message) = invalid(&format!("[run]\ndaily_curve = [1.0, 2.0]\n{CT}"));
    assert_eq!((line, column), (2, 15));
    assert!(message.contains("daily_curve has 2 values"), "{message}");
    assert!(message.contains("expected 24"), "{message}");
}

#[test]
fn a_negative_curve_factor_is_refused_at_its_column() {
    let mut factors = vec!["1"; 24];
    factors[3] = "-1";
    let text = format!("[run]\ndaily_curve = [{}]\n{CT}", factors.join(","));
    let (line, column, message) = invalid(&text);
    assert_eq!((line, column), (2, 22));
    assert!(message.contains("daily_curve[3] = -1"), "{message}");
}

#[test]
fn an_all_zero_curve_is_refused() {
    let text = format!("[run]\ndaily_curve = [{}]\n{CT}", vec!["0"; 24].join(","));
    let (line, _, message) = invalid(&text);
    assert_eq!(line, 2);
    assert!(
        message.contains("not all") || message.contains("every factor is 0"),
        "{message}"
    );
}

#[test]
fn a_burst_must_name_an_existing_group() {
    let text = format!("{CT}\n[[burst]]\nat_seconds = 5\nmodality = \"MR\"\nimages = 10\n");
    let (line, column, message) = invalid(&text);
    assert_eq!((line, column), (11, 12));
    assert!(message.contains("modality = \"MR\""), "{message}");
    assert!(message.contains("CT"), "{message}");
}

#[test]
fn a_burst_after_the_run_is_refused() {
    let text = format!(
        "[run]\nduration_seconds = 60\n{CT}\n[[burst]]\nat_seconds = 90\nmodality = \"CT\"\nimages = 10\n"
    );
    let (line, _, message) = invalid(&text);
    assert_eq!(line, 12);
    assert!(message.contains("at_seconds = 90"), "{message}");
}

#[test]
fn an_invalid_ae_title_is_refused() {
    let (line, column, message) = invalid(&CT.replace("[\"CT_1\"]", "[\"CT_1\", \"A\\\\B\"]"));
    assert_eq!((line, column), (5, 30));
    assert!(message.contains("calling_ae_titles"), "{message}");
    assert!(message.contains("backslash"), "{message}");
}

#[test]
fn duplicate_group_names_are_refused_at_the_second() {
    let (line, column, message) = invalid(&format!("{CT}{CT}"));
    assert_eq!((line, column), (10, 8));
    assert!(message.contains("name = \"CT\""), "{message}");
    assert!(message.contains("unique"), "{message}");
}

#[test]
fn an_unknown_modality_code_lists_the_known_ones() {
    let (line, _, message) = invalid(&CT.replace("modality = \"CT\"", "modality = \"XA\""));
    assert_eq!(line, 4);
    assert!(message.contains("modality = \"XA\""), "{message}");
    assert!(message.contains("OPV"), "{message}");
}

#[test]
fn an_unknown_size_lists_the_known_ones() {
    let (line, _, message) = invalid(&format!("{CT}size = \"huge\"\n"));
    assert_eq!(line, 8);
    assert!(message.contains("size = \"huge\""), "{message}");
    assert!(message.contains("mammo-4k"), "{message}");
}

#[test]
fn a_multi_frame_size_on_a_single_frame_modality_is_refused() {
    let (line, _, message) = invalid(&format!("{CT}size = \"us-multiframe\"\n"));
    assert_eq!(line, 8);
    assert!(message.contains("single-frame"), "{message}");
}

#[test]
fn jpeg_of_16_bit_images_is_refused_at_the_transfer_syntax() {
    let (line, _, message) = invalid(&format!("{CT}transfer_syntax = \"jpeg-baseline\"\n"));
    assert_eq!(line, 8);
    assert!(message.contains("8-bit"), "{message}");
}

#[test]
fn size_and_folder_together_are_refused() {
    let (line, _, message) = invalid(&format!("{CT}size = \"ct-512\"\nfolder = \".\"\n"));
    assert_eq!(line, 9);
    assert!(
        message.contains("at most one of size, geometry and folder"),
        "{message}"
    );
}

#[test]
fn a_folder_without_dicom_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not DICOM").unwrap();
    let text = format!("{CT}folder = {:?}\n", dir.path().display().to_string());
    let (line, _, message) = invalid(&text);
    assert_eq!(line, 8);
    assert!(message.contains("holds no DICOM files"), "{message}");
}

#[test]
fn a_missing_folder_is_refused() {
    let (line, _, message) = invalid(&format!("{CT}folder = \"/no/such/folder\"\n"));
    assert_eq!(line, 8);
    assert!(
        message.contains("folder = \"/no/such/folder\""),
        "{message}"
    );
}

#[test]
fn a_folder_is_relative_to_the_profile_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    loader::synth::InstanceBuilder::new(loader::synth::Modality::Cr)
        .seed(1)
        .write_to(dir.path().join("images/IM1"))
        .unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, format!("{CT}folder = \"images\"\n")).unwrap();
    let profile = Profile::from_file(&path).unwrap();
    match &profile.modalities[0].images {
        ImageSource::Folder { files, .. } => assert_eq!(files.len(), 1),
        other => panic!("expected a folder, got {other:?}"),
    }
}

#[test]
fn geometry_defaults_bits_stored_and_frames() {
    let profile = Profile::from_toml_str(
        &format!("{CT}geometry = {{ rows = 100, columns = 200 }}\n"),
        "p.toml",
    )
    .unwrap();
    match profile.modalities[0].images {
        ImageSource::Synthetic {
            geometry: Some(g), ..
        } => {
            assert_eq!((g.rows, g.columns, g.frames), (100, 200, 1));
            assert_eq!((g.bits_allocated, g.bits_stored), (16, 12));
        }
        ref other => panic!("expected synthetic, got {other:?}"),
    }
}

#[test]
fn every_size_profile_has_the_documented_pixel_bytes() {
    let bytes = |s: SizeProfile| s.geometry().map_or(0, |g| g.pixel_data_len());
    assert_eq!(bytes(SizeProfile::Ct512), 524_288);
    assert_eq!(bytes(SizeProfile::Mammo4k), 27_262_976);
    assert_eq!(bytes(SizeProfile::Dx3k), 18_000_000);
    assert_eq!(bytes(SizeProfile::Opv), 0);
    for s in SizeProfile::ALL {
        assert_eq!(SizeProfile::from_name(s.name()), Some(s));
    }
}

#[test]
fn a_huge_or_negative_time_is_refused_not_a_panic() {
    let (line, _, message) = invalid(&format!("[run]\nduration_seconds = 1e300\n{CT}"));
    assert_eq!(line, 2);
    assert!(message.contains("duration_seconds"), "{message}");
    let (line, _, message) = invalid(&format!("{CT}image_interval_ms = -5\n"));
    assert_eq!(line, 8);
    assert!(message.contains("image_interval_ms = -5"), "{message}");
}

#[test]
fn a_missing_required_field_is_named() {
    let err = Profile::from_toml_str(&CT.replace("images_per_series = 10\n", ""), "p.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("p.toml:"), "{err}");
    assert!(err.contains("images_per_series"), "{err}");
}
