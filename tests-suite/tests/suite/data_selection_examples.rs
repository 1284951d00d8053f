//! The old `test_data_selection_examples.py`: every data fixture, used the way a test
//! author would, each checking that the fixture gives what its name promises.

use std::collections::BTreeMap;
use std::path::Path;

use config::TestConfig;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use loader::synth::Modality;
use loader::{FileInfo, MEGABYTE, SizeCategory};
use rstest::rstest;
use tests_suite::fixtures::*;
use tests_suite::record::TestReport;

#[rstest]
fn perf_config_names_the_dataset_folder(mut report: TestReport, perf_config: &TestConfig) {
    assert!(
        perf_config.dataset.root_dir.is_dir(),
        "DICOM_ROOT_DIR {} is not a folder",
        perf_config.dataset.root_dir.display()
    );
    report.figure("dataset", perf_config.dataset.root_dir.display());
}

#[rstest]
fn dicom_files_are_found_by_content_in_a_stable_order(
    mut report: TestReport,
    dicom_files: Vec<&'static Path>,
) {
    assert!(!dicom_files.is_empty(), "no DICOM file in the dataset");
    let mut sorted = dicom_files.clone();
    sorted.sort();
    assert_eq!(
        dicom_files, sorted,
        "files are not in a stable, sorted order"
    );
    for path in &dicom_files {
        loader::check_magic(path).unwrap_or_else(|why| panic!("{}: {why}", path.display()));
    }
    report.figure("files", dicom_files.len());
}

#[rstest]
fn single_dicom_file_is_a_whole_readable_instance(
    _report: TestReport,
    single_dicom_file: &FileInfo,
) {
    let obj = loader::load_dataset(&single_dicom_file.path, &loader::LoadOptions::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let sop = obj
        .element(tags::SOP_INSTANCE_UID)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        sop.trim_end_matches('\0'),
        single_dicom_file.sop_instance_uid
    );
}

#[rstest]
fn small_dicom_files_are_at_most_ten_files_under_1_mb(
    mut report: TestReport,
    small_dicom_files: Vec<&'static FileInfo>,
) {
    if small_dicom_files.is_empty() {
        return report.skip("the dataset has no file under 1 MB");
    }
    assert!(small_dicom_files.len() <= 10);
    for file in &small_dicom_files {
        assert!(
            file.size_bytes < MEGABYTE,
            "{} is {} bytes",
            file.path.display(),
            file.size_bytes
        );
    }
    report.figure("small files", small_dicom_files.len());
}

#[rstest]
fn medium_dicom_files_are_between_1_and_10_mb(
    mut report: TestReport,
    medium_dicom_files: Vec<&'static FileInfo>,
) {
    if medium_dicom_files.is_empty() {
        return report.skip("the dataset has no file between 1 and 10 MB");
    }
    for file in &medium_dicom_files {
        assert!(
            (MEGABYTE..=10 * MEGABYTE).contains(&file.size_bytes),
            "{} is {} bytes",
            file.path.display(),
            file.size_bytes
        );
    }
    report.figure("medium files", medium_dicom_files.len());
}

#[rstest]
fn large_dicom_file_is_over_10_mb(mut report: TestReport, large_dicom_file: Option<&FileInfo>) {
    let Some(file) = large_dicom_file else {
        return report.skip(
            "the dataset has no file over 10 MB (make one with `cargo run -p loader --bin \
             gen-samples -- --out target/samples --large` and point DICOM_ROOT_DIR at it)",
        );
    };
    assert!(file.size_bytes > 10 * MEGABYTE);
}

#[rstest]
fn dicom_by_modality_files_each_file_under_its_own_modality(
    mut report: TestReport,
    dicom_by_modality: BTreeMap<String, Vec<&'static FileInfo>>,
    dicom_infos: &[FileInfo],
) {
    let grouped: usize = dicom_by_modality.values().map(Vec::len).sum();
    let with_modality = dicom_infos.iter().filter(|i| i.modality.is_some()).count();
    assert_eq!(
        grouped, with_modality,
        "a file is missing from, or twice in, the groups"
    );
    for (modality, files) in &dicom_by_modality {
        for file in files {
            assert_eq!(file.modality.as_deref(), Some(modality.as_str()));
        }
    }
    report.figure(
        "modalities",
        dicom_by_modality
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
    );
}

#[rstest]
fn dicom_by_size_category_partitions_the_samples(
    mut report: TestReport,
    dicom_by_size_category: BTreeMap<SizeCategory, Vec<&'static FileInfo>>,
    dicom_infos: &[FileInfo],
) {
    let total: usize = dicom_by_size_category.values().map(Vec::len).sum();
    assert_eq!(total, dicom_infos.len());
    for (category, files) in &dicom_by_size_category {
        for file in files {
            assert_eq!(SizeCategory::of(file.size_bytes), *category);
        }
        report.figure(category.name(), files.len());
    }
}

#[rstest]
fn dicom_datasets_hold_every_sample_decoded(
    mut report: TestReport,
    dicom_datasets: &Vec<(std::path::PathBuf, DefaultDicomObject)>,
    dicom_files: Vec<&'static Path>,
) {
    assert_eq!(dicom_datasets.len(), dicom_files.len());
    for (path, obj) in dicom_datasets {
        let ts = obj.meta().transfer_syntax().trim_end_matches('\0');
        // Decoding leaves only native (uncompressed) encodings where a codec exists.
        let native = [
            "1.2.840.10008.1.2",
            "1.2.840.10008.1.2.1",
            "1.2.840.10008.1.2.2",
            "1.2.840.10008.1.2.1.99",
        ];
        assert!(native.contains(&ts), "{} still in {ts}", path.display());
    }
    report.figure("datasets", dicom_datasets.len());
}

#[rstest]
fn test_dicom_with_attributes_writes_the_requested_values(
    _report: TestReport,
    mut test_dicom_with_attributes: DicomFactory,
) {
    let (path, _) = test_dicom_with_attributes.create(
        Modality::Opv,
        &[("SeriesDescription", "SITA 24-2 GPA"), ("StudyDate", "")],
    );
    let info = loader::read_file_info(&path).unwrap();
    assert_eq!(info.modality.as_deref(), Some("OPV"));
    assert_eq!(info.series_description.as_deref(), Some("SITA 24-2 GPA"));
    let obj = loader::load_dataset(&path, &loader::LoadOptions::new()).unwrap();
    assert_eq!(obj.element(tags::STUDY_DATE).unwrap().to_str().unwrap(), "");
}

#[rstest]
fn dicom_sender_stores_the_single_dicom_file(
    mut report: TestReport,
    dicom_sender: sender::DicomSender,
    single_dicom_file: &FileInfo,
    metrics: ::metrics::PerfMetrics,
) {
    let echo = dicom_sender
        .ping()
        .unwrap_or_else(|e| panic!("C-ECHO: {e}"));
    assert!(echo.status.is_delivered(), "C-ECHO status {}", echo.status);

    let outcome = dicom_sender
        .send_file(&single_dicom_file.path)
        .unwrap_or_else(|e| panic!("C-STORE: {e}"));
    metrics.record(
        ::metrics::Sample::new(
            outcome.started,
            outcome.started,
            outcome.started + outcome.latency,
            outcome.outcome,
        )
        .with_bytes(outcome.bytes),
    );

    assert!(
        outcome.is_delivered(),
        "status {:?}: {:?}",
        outcome.status,
        outcome.error
    );
    assert_eq!(metrics.attempted(), 1);
    assert_eq!(metrics.error_rate(), Some(0.0));
    report.figure("C-ECHO round trip", format!("{:?}", echo.round_trip));
    report.figure("C-STORE latency", format!("{:?}", outcome.latency));
}

#[rstest]
fn cfind_client_answers_c_echo(mut report: TestReport, cfind_client: cfind::CFindClient) {
    let check = cfind_client
        .test_connection()
        .unwrap_or_else(|e| panic!("C-ECHO to {}: {e}", cfind_client.peer()));
    report.figure("peer", cfind_client.peer());
    report.figure("check", format!("{check:?}"));
}
