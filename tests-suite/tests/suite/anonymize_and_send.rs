//! The old `test_anonymize_and_send.py`: de-identify the samples, send them, check they
//! arrived, and check that nothing identifying arrived with them.
//!
//! The samples are de-identified into a folder of the test's own (the originals are never
//! written to) with the PS3.15 Basic Profile, keeping StudyDescription and
//! SeriesDescription so that routing rules reading them still match.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cfind::{CFindClient, SentStudy};
use config::TestConfig;
use dicom_core::{PrimitiveValue, Tag};
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use rstest::rstest;
use simulator::SimulatorHandle;
use tagutil::FileOutcome;
use tagutil::deid::{DeidOptions, Deidentifier, anonymize, anonymize_folder};
use tests_suite::expectations::{pairs, routing_transformations, transformation_case};
use tests_suite::fixtures::*;
use tests_suite::load::assert_all_studies_arrived;
use tests_suite::record::TestReport;
use tests_suite::routing;

/// Attributes whose original values must not reach the router.
const IDENTIFYING: [(Tag, &str); 11] = [
    (tags::PATIENT_NAME, "PatientName"),
    (tags::PATIENT_ID, "PatientID"),
    (tags::PATIENT_BIRTH_DATE, "PatientBirthDate"),
    (tags::PATIENT_TELEPHONE_NUMBERS, "PatientTelephoneNumbers"),
    (tags::PATIENT_ADDRESS, "PatientAddress"),
    (tags::INSTITUTION_NAME, "InstitutionName"),
    (tags::INSTITUTION_ADDRESS, "InstitutionAddress"),
    (tags::REFERRING_PHYSICIAN_NAME, "ReferringPhysicianName"),
    (tags::PERFORMING_PHYSICIAN_NAME, "PerformingPhysicianName"),
    (tags::OPERATORS_NAME, "OperatorsName"),
    (tags::ACCESSION_NUMBER, "AccessionNumber"),
];

/// Values shorter than this are not searched for inside other values (a 2-character
/// value would be found everywhere); they are still compared whole.
const MIN_SEARCHED_LEN: usize = 4;

/// One sample and its de-identified file.
#[derive(Debug)]
struct DeidentifiedFile {
    original: PathBuf,
    anonymized: PathBuf,
    original_study: String,
    study: String,
    original_series: String,
    series: String,
    sop_instance_uid: String,
    /// The original's identifying values, by attribute keyword.
    identifying: Vec<(&'static str, String)>,
}

/// The de-identified samples, in a folder removed when dropped.
struct Deidentified {
    _dir: tempfile::TempDir,
    copies: Vec<DeidentifiedFile>,
}

fn header(path: &Path) -> InMemDicomObject {
    OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_inner()
}

fn text(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// De-identifies every sample of `root` into a new temporary folder.
fn deidentify_samples(root: &Path) -> Deidentified {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let output = dir.path().join("deidentified");
    let mut deid = Deidentifier::new(DeidOptions {
        keep_descriptions: true,
        ..DeidOptions::default()
    });
    let mut done = Vec::new();
    let mut failed = Vec::new();
    anonymize_folder(root, &output, &mut deid, |file| match &file.outcome {
        FileOutcome::Changed(_) => done.push(file.path.clone()),
        FileOutcome::Failed(e) => failed.push(format!("{}: {e}", file.path.display())),
        _ => {}
    })
    .unwrap_or_else(|e| panic!("de-identifying {}: {e}", root.display()));
    assert!(
        failed.is_empty(),
        "not de-identified: {}",
        failed.join("; ")
    );
    assert!(!done.is_empty(), "no DICOM sample under {}", root.display());

    let copies = done
        .into_iter()
        .map(|original| {
            let relative = original
                .strip_prefix(root)
                .expect("the observer reports files of the input folder");
            let anonymized = output.join(relative);
            let before = header(&original);
            let after = header(&anonymized);
            DeidentifiedFile {
                original_study: text(&before, tags::STUDY_INSTANCE_UID),
                study: text(&after, tags::STUDY_INSTANCE_UID),
                original_series: text(&before, tags::SERIES_INSTANCE_UID),
                series: text(&after, tags::SERIES_INSTANCE_UID),
                sop_instance_uid: text(&after, tags::SOP_INSTANCE_UID),
                identifying: IDENTIFYING
                    .iter()
                    .map(|(tag, name)| (*name, text(&before, *tag)))
                    .filter(|(_, value)| !value.is_empty())
                    .collect(),
                original,
                anonymized,
            }
        })
        .collect();
    Deidentified { _dir: dir, copies }
}

/// Sends every de-identified copy through the configured route and asserts each was
/// accepted.
fn send_all(report: &mut TestReport, config: &TestConfig, copies: &[DeidentifiedFile]) {
    let sender = campaign::options::sender::sender_options(config)
        .unwrap_or_else(|e| panic!("sender options: {e}"))
        .build()
        .unwrap_or_else(|e| panic!("cannot build a sender: {e}"));
    for file in copies {
        let outcome = sender.send_file(&file.anonymized).unwrap_or_else(|e| {
            panic!(
                "C-STORE of {} to {} failed before any status: {e}",
                file.anonymized.display(),
                sender.options().address()
            )
        });
        assert!(
            outcome.is_delivered(),
            "{} refused the de-identified copy of {}: {:?} {}",
            config.endpoint.called_ae_title,
            file.original.display(),
            outcome.status,
            outcome.error.unwrap_or_default()
        );
    }
    report.figure("route", &config.endpoint.called_ae_title);
    report.figure("instances sent", copies.len());
}

/// The instance count of each de-identified study.
fn studies(copies: &[DeidentifiedFile]) -> BTreeMap<&str, u32> {
    let mut studies = BTreeMap::new();
    for file in copies {
        *studies.entry(file.study.as_str()).or_insert(0) += 1;
    }
    studies
}

#[rstest]
fn deidentified_samples_arrive_under_new_study_uids(
    mut report: TestReport,
    perf_config: &TestConfig,
    cfind_client: CFindClient,
) {
    let deidentified = deidentify_samples(&perf_config.dataset.root_dir);
    let copies = &deidentified.copies;
    let originals: BTreeSet<&str> = copies.iter().map(|c| c.original_study.as_str()).collect();
    for file in copies {
        assert!(
            !originals.contains(file.study.as_str()),
            "{} kept an original StudyInstanceUID",
            file.anonymized.display()
        );
    }

    send_all(&mut report, perf_config, copies);

    let sent: Vec<SentStudy> = studies(copies)
        .into_iter()
        .map(|(uid, instances)| SentStudy::new(uid, instances, Instant::now()))
        .collect();
    let verification = cfind_client
        .verify_studies(&sent)
        .unwrap_or_else(|e| panic!("C-FIND verification at {}: {e}", cfind_client.peer()));
    report.figure("studies", sent.len());
    assert_all_studies_arrived(&verification);
}

#[rstest]
fn no_patient_identifying_value_arrives(
    mut report: TestReport,
    perf_config: &TestConfig,
    cfind_client: CFindClient,
    embedded_simulator: Option<&'static SimulatorHandle>,
) {
    let deidentified = deidentify_samples(&perf_config.dataset.root_dir);
    let copies = &deidentified.copies;
    let originals: BTreeSet<&str> = copies
        .iter()
        .flat_map(|c| c.identifying.iter().map(|(_, v)| v.as_str()))
        .collect();
    assert!(
        !originals.is_empty(),
        "the samples carry no identifying value: nothing to check"
    );
    // The search must be able to fail: it finds every original value in its own file.
    for file in copies {
        let found = leaks(&header(&file.original), &file.identifying);
        assert!(
            found.len() >= file.identifying.len(),
            "the search misses identifying values in {}: found only {}",
            file.original.display(),
            found.join("; ")
        );
    }
    let checked: BTreeSet<&str> = copies
        .iter()
        .flat_map(|c| c.identifying.iter().map(|(name, _)| *name))
        .collect();
    report.figure(
        "identifying attributes checked",
        checked.into_iter().collect::<Vec<_>>().join(" "),
    );

    send_all(&mut report, perf_config, copies);

    // What any query peer shows: the patient of each study.
    for uid in studies(copies).keys() {
        let sighting = routing::wait_for_study(&cfind_client, uid, &Default::default());
        for (name, value) in [
            ("PatientName", &sighting.study.patient_name),
            ("PatientID", &sighting.study.patient_id),
        ] {
            if let Some(value) = value {
                assert!(
                    !originals.contains(value.as_str()),
                    "study {uid} arrived with an original {name}"
                );
            }
        }
    }
    // What the embedded router holds: every text value of every stored data set.
    let Some(router) = embedded_simulator else {
        report.figure(
            "stored data sets searched",
            "no (remote router: only C-FIND answers checked)",
        );
        return;
    };
    for file in copies {
        let stored = router
            .stored_instance(&file.sop_instance_uid)
            .unwrap_or_else(|| panic!("instance {} not stored", file.sop_instance_uid));
        let dataset = stored
            .dataset
            .unwrap_or_else(|| panic!("the embedded simulator keeps no data sets (load mode)"));
        let leaks = leaks(&dataset, &file.identifying);
        // The message names attributes, never the values: reports are shared with vendors.
        assert!(
            leaks.is_empty(),
            "stored instance {} (from {}) holds original identifying values: {}",
            file.sop_instance_uid,
            file.original.display(),
            leaks.join("; ")
        );
    }
    report.figure("stored data sets searched", copies.len());
}

/// Where `obj` (sequences included) holds one of the `identifying` values: whole, or
/// inside a longer value. Names the attributes, never the values.
fn leaks(obj: &InMemDicomObject, identifying: &[(&'static str, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for element in obj {
        let tag = element.header().tag;
        if let Some(items) = element.items() {
            for item in items {
                found.extend(leaks(item, identifying));
            }
            continue;
        }
        // Text only: binary values (pixel data, numbers) cannot hold a name or an ID.
        if !matches!(
            element.value().primitive(),
            Some(PrimitiveValue::Str(_) | PrimitiveValue::Strs(_))
        ) {
            continue;
        }
        let Ok(value) = element.to_str() else {
            continue;
        };
        for (name, original) in identifying {
            let whole = value.split('\\').any(|v| v.trim() == original.as_str());
            let inside = original.len() >= MIN_SEARCHED_LEN && value.contains(original.as_str());
            if whole || inside {
                found.push(format!("original {name} in {tag}"));
            }
        }
    }
    found
}

#[rstest]
fn deidentification_keeps_one_study_per_original_study(
    mut report: TestReport,
    perf_config: &TestConfig,
) {
    let deidentified = deidentify_samples(&perf_config.dataset.root_dir);
    let copies = &deidentified.copies;

    let mut studies: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut series: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for file in copies {
        studies
            .entry(&file.original_study)
            .or_default()
            .insert(&file.study);
        series
            .entry(&file.original_series)
            .or_default()
            .insert(&file.series);
    }

    for (what, groups) in [("study", &studies), ("series", &series)] {
        for (original, new) in groups {
            assert_eq!(
                new.len(),
                1,
                "original {what} {original} became {} {what} UIDs: {new:?}",
                new.len()
            );
        }
        let distinct: BTreeSet<&&str> = groups.values().flatten().collect();
        assert_eq!(
            distinct.len(),
            groups.len(),
            "two original {what} UIDs were merged into one"
        );
    }
    report.figure("studies in and out", studies.len());
    report.figure("series in and out", series.len());
}

/// The routing-transformation cases (`expectations/routing_transformations.toml`), each
/// image de-identified before it is sent: the kept descriptions must still steer the
/// router's rules. A route that refuses de-identified images (the Basic Profile blanks
/// StudyDate, which a route may require) is listed in the report, not hidden.
#[rstest]
fn kept_descriptions_still_steer_the_routing_rules(
    mut report: TestReport,
    perf_config: &TestConfig,
    cfind_client: CFindClient,
    mut test_dicom_with_attributes: DicomFactory,
) {
    let mut deid = Deidentifier::new(DeidOptions {
        keep_descriptions: true,
        ..DeidOptions::default()
    });
    let (mut delivered, mut refused, mut not_run) = (Vec::new(), Vec::new(), Vec::new());
    // The run's cases (EXPECTATIONS_DIR, else the built-in file), by the built-in names.
    for name in routing_transformations().case.into_iter().map(|c| c.name) {
        let case = match transformation_case(perf_config, &name) {
            Ok(case) => case,
            Err(reason) => {
                not_run.push(format!("{name}: {reason}"));
                continue;
            }
        };
        let route = match routing::route(perf_config, &case.route) {
            Ok(route) => route,
            Err(reason) => {
                not_run.push(format!("{name}: {reason}"));
                continue;
            }
        };
        let (_, mut object) =
            test_dicom_with_attributes.create(case.modality.0, &pairs(&case.send));
        anonymize(&mut object, &mut deid);
        let lost: Vec<&str> = case
            .send
            .iter()
            .filter(|(keyword, value)| {
                let kept = object
                    .element_by_name(keyword)
                    .ok()
                    .and_then(|e| {
                        e.to_str()
                            .ok()
                            .map(|v| v.trim_end_matches(['\0', ' ']).to_string())
                    })
                    .unwrap_or_default();
                kept != value.trim()
            })
            .map(|(keyword, _)| keyword.as_str())
            .collect();
        if !lost.is_empty() {
            not_run.push(format!(
                "{}: de-identification changes {}",
                case.name,
                lost.join(", ")
            ));
            continue;
        }
        let outcome = routing::send(&routing::sender_for_route(perf_config, route), &object);
        if !outcome.is_delivered() {
            assert!(
                outcome.status.is_some(),
                "{}: no status from {}: {}",
                case.name,
                route.called_ae_title,
                outcome.error.unwrap_or_default()
            );
            refused.push(format!(
                "{} ({}): {}",
                case.name,
                route.called_ae_title,
                outcome.error.unwrap_or_default()
            ));
            continue;
        }
        let study = routing::study_uid(&object);
        routing::wait_for_study(&cfind_client, &study, &case.expect_study);
        routing::assert_series_attributes(
            &cfind_client,
            &study,
            &routing::series_uid(&object),
            &case.expect_series,
        );
        delivered.push(case.name);
    }
    report.figure("cases delivered and transformed", delivered.len());
    if !refused.is_empty() {
        report.figure("refused after de-identification", refused.join("; "));
    }
    if !not_run.is_empty() {
        report.figure("cases not run", not_run.join("; "));
    }
    if delivered.is_empty() && refused.is_empty() {
        return report.skip(format!("no case could run: {}", not_run.join("; ")));
    }
    assert!(
        !delivered.is_empty(),
        "every route refused the de-identified images: {}",
        refused.join("; ")
    );
}
