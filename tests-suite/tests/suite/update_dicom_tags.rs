//! The old `test_update_dicom_tags.py`: the tag updater (the `tagutil` crate, through its
//! library API) on a copy of the samples: what `--dry-run`, `--set`, `--new-uids` and
//! `--today` do to every file, that bad values and non-DICOM files are handled, and that
//! an updated file still goes through the router.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cfind::CFindClient;
use config::TestConfig;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use loader::FileInfo;
use rstest::rstest;
use tagutil::{Edit, EditPlan, FileOutcome, RunSummary, SkipReason, UpdateOptions, update_folder};
use tests_suite::fixtures::*;
use tests_suite::record::TestReport;
use tests_suite::routing;
use tests_suite::values::same_value;

/// A copy of the sample folder, removed when dropped.
struct SampleCopy {
    dir: tempfile::TempDir,
}

impl SampleCopy {
    fn of(root: &Path) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        copy_tree(root, dir.path());
        SampleCopy { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every file's bytes, by path relative to the copy.
    fn contents(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        collect(self.path(), self.path(), &mut files);
        files
    }

    /// The copy's DICOM files (those of the sample scan), relative paths.
    fn dicom_files(&self, samples: &[FileInfo], root: &Path) -> Vec<PathBuf> {
        samples
            .iter()
            .map(|info| {
                info.path
                    .strip_prefix(root)
                    .expect("samples lie under DICOM_ROOT_DIR")
                    .to_path_buf()
            })
            .collect()
    }

    /// Runs `plan` over the copy and returns the summary and each file's outcome.
    fn update(
        &self,
        plan: &EditPlan,
        options: UpdateOptions,
    ) -> (RunSummary, BTreeMap<PathBuf, Seen>) {
        let mut outcomes = BTreeMap::new();
        let summary = update_folder(self.path(), plan, options, |file| {
            let relative = file
                .path
                .strip_prefix(self.path())
                .unwrap_or(&file.path)
                .to_path_buf();
            outcomes.insert(relative, Seen::from(&file.outcome));
        })
        .unwrap_or_else(|e| panic!("updating {}: {e}", self.path().display()));
        (summary, outcomes)
    }

    fn open(&self, relative: &Path) -> DefaultDicomObject {
        let path = self.path().join(relative);
        OpenFileOptions::new()
            .open_file(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }
}

/// What happened to one file, kept past the observer's callback.
#[derive(Debug)]
enum Seen {
    Changed,
    Unchanged,
    Skipped(SkipReason),
    Failed(String),
}

impl From<&FileOutcome> for Seen {
    fn from(outcome: &FileOutcome) -> Self {
        match outcome {
            FileOutcome::Changed(_) => Seen::Changed,
            FileOutcome::Unchanged => Seen::Unchanged,
            FileOutcome::Skipped(reason) => Seen::Skipped(reason.clone()),
            FileOutcome::Failed(error) => Seen::Failed(error.to_string()),
            other => Seen::Failed(format!("unexpected outcome {other:?}")),
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        }
    }
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.insert(path.strip_prefix(root).unwrap().to_path_buf(), bytes);
        }
    }
}

fn text(object: &DefaultDicomObject, tag: dicom_core::Tag) -> String {
    object
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

fn plan_of(edits: impl IntoIterator<Item = Edit>) -> EditPlan {
    let mut plan = EditPlan::new();
    for edit in edits {
        plan.push(edit).unwrap_or_else(|e| panic!("{e}"));
    }
    plan
}

fn set(attribute: &str, value: &str) -> Edit {
    Edit::set(attribute, value).unwrap_or_else(|e| panic!("{e}"))
}

#[rstest]
fn dry_run_changes_no_file(mut report: TestReport, perf_config: &TestConfig) {
    let copy = SampleCopy::of(&perf_config.dataset.root_dir);
    let before = copy.contents();
    let mut plan = plan_of([set("StudyDescription", "DRY RUN")]);
    plan.regenerate_uids().unwrap();
    plan.set_dates_to(chrono::NaiveDate::from_ymd_opt(2020, 2, 29).unwrap())
        .unwrap();

    let (summary, _) = copy.update(&plan, UpdateOptions { dry_run: true });

    report.figure("files that would change", summary.changed);
    assert!(
        summary.changed > 0,
        "the plan would change nothing: {summary:?}"
    );
    assert_eq!(summary.failed, 0, "{summary:?}");
    let after = copy.contents();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "a dry run added or removed files"
    );
    for (path, bytes) in &before {
        assert!(
            after[path] == *bytes,
            "a dry run changed {}",
            path.display()
        );
    }
}

#[rstest]
fn set_study_description_changes_every_file_and_nothing_else(
    mut report: TestReport,
    perf_config: &TestConfig,
    dicom_infos: &'static [FileInfo],
) {
    const DESCRIPTION: &str = "DICOM-AUTO RENAMED";
    let copy = SampleCopy::of(&perf_config.dataset.root_dir);
    let files = copy.dicom_files(dicom_infos, &perf_config.dataset.root_dir);
    let before: BTreeMap<&PathBuf, DefaultDicomObject> =
        files.iter().map(|f| (f, copy.open(f))).collect();
    let bytes_before = copy.contents();

    let (summary, _) = copy.update(
        &plan_of([set("StudyDescription", DESCRIPTION)]),
        UpdateOptions::default(),
    );

    report.figure("files changed", summary.changed);
    assert_eq!(summary.changed, files.len(), "{summary:?}");
    for file in &files {
        let old = &before[file];
        let new = copy.open(file);
        assert_eq!(
            text(&new, tags::STUDY_DESCRIPTION),
            DESCRIPTION,
            "{}",
            file.display()
        );
        assert_eq!(
            old.meta().transfer_syntax(),
            new.meta().transfer_syntax(),
            "{}: transfer syntax changed",
            file.display()
        );
        assert_eq!(
            bytes_before[file][..128],
            std::fs::read(copy.path().join(file)).unwrap()[..128],
            "{}: preamble changed",
            file.display()
        );
        let old_tags: BTreeSet<_> = old.tags().collect();
        let new_tags: BTreeSet<_> = new.tags().collect();
        let mut expected_tags = old_tags.clone();
        expected_tags.insert(tags::STUDY_DESCRIPTION);
        assert_eq!(
            new_tags,
            expected_tags,
            "{}: attributes added or removed",
            file.display()
        );
        for tag in old_tags.iter().filter(|t| **t != tags::STUDY_DESCRIPTION) {
            assert!(
                same_value(old.get(*tag), new.get(*tag)),
                "{}: {tag} changed although only StudyDescription was set",
                file.display()
            );
        }
    }
    // Files that are not DICOM are not touched.
    let after = copy.contents();
    for (path, bytes) in bytes_before.iter().filter(|(p, _)| !files.contains(p)) {
        assert!(after[path] == *bytes, "{} changed", path.display());
    }
}

#[rstest]
fn new_uids_keep_studies_together_and_change_every_sop_instance_uid(
    mut report: TestReport,
    perf_config: &TestConfig,
    dicom_infos: &'static [FileInfo],
) {
    let copy = SampleCopy::of(&perf_config.dataset.root_dir);
    let files = copy.dicom_files(dicom_infos, &perf_config.dataset.root_dir);
    let before: Vec<DefaultDicomObject> = files.iter().map(|f| copy.open(f)).collect();
    let mut plan = EditPlan::new();
    plan.regenerate_uids().unwrap();

    let (summary, _) = copy.update(&plan, UpdateOptions::default());

    assert_eq!(summary.changed, files.len(), "{summary:?}");
    let after: Vec<DefaultDicomObject> = files.iter().map(|f| copy.open(f)).collect();
    let mut studies: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut new_sops = BTreeSet::new();
    let old_sops: BTreeSet<String> = before
        .iter()
        .map(|o| text(o, tags::SOP_INSTANCE_UID))
        .collect();
    for ((file, old), new) in files.iter().zip(&before).zip(&after) {
        studies
            .entry(text(old, tags::STUDY_INSTANCE_UID))
            .or_default()
            .insert(text(new, tags::STUDY_INSTANCE_UID));
        series
            .entry(text(old, tags::SERIES_INSTANCE_UID))
            .or_default()
            .insert(text(new, tags::SERIES_INSTANCE_UID));
        let sop = text(new, tags::SOP_INSTANCE_UID);
        assert!(
            !old_sops.contains(&sop),
            "{}: SOPInstanceUID is an original one",
            file.display()
        );
        assert_eq!(
            new.meta()
                .media_storage_sop_instance_uid()
                .trim_end_matches('\0'),
            sop,
            "{}: the file meta table does not follow the new SOPInstanceUID",
            file.display()
        );
        new_sops.insert(sop);
    }
    assert_eq!(
        new_sops.len(),
        files.len(),
        "two files got the same SOPInstanceUID"
    );
    for (what, groups) in [("study", &studies), ("series", &series)] {
        for (old, new) in groups {
            assert_eq!(new.len(), 1, "{what} {old} was split into {new:?}");
            assert!(!new.contains(old), "{what} {old} kept its UID");
        }
        let distinct: BTreeSet<&String> = groups.values().flatten().collect();
        assert_eq!(distinct.len(), groups.len(), "two {what} UIDs were merged");
    }
    report.figure("studies", studies.len());
    report.figure("instances", new_sops.len());
}

#[rstest]
fn today_sets_study_and_series_dates(
    mut report: TestReport,
    perf_config: &TestConfig,
    dicom_infos: &'static [FileInfo],
) {
    let copy = SampleCopy::of(&perf_config.dataset.root_dir);
    let files = copy.dicom_files(dicom_infos, &perf_config.dataset.root_dir);
    // What `tagutil --today` reads: the local date.
    let today = chrono::Local::now().date_naive();
    let mut plan = EditPlan::new();
    plan.set_dates_to(today).unwrap();

    let (summary, _) = copy.update(&plan, UpdateOptions::default());

    assert_eq!(summary.failed, 0, "{summary:?}");
    let expected = today.format("%Y%m%d").to_string();
    for file in &files {
        let object = copy.open(file);
        assert_eq!(
            text(&object, tags::STUDY_DATE),
            expected,
            "{} StudyDate",
            file.display()
        );
        assert_eq!(
            text(&object, tags::SERIES_DATE),
            expected,
            "{} SeriesDate",
            file.display()
        );
    }
    report.figure("files dated today", files.len());
}

/// Builds a plan the way the tool does from its command line: every edit checked before
/// the first file is opened.
fn plan_from_assignments(assignments: &[&str]) -> Result<EditPlan, tagutil::EditError> {
    let mut plan = EditPlan::new();
    for assignment in assignments {
        let (attribute, value) = Edit::split_assignment(assignment)?;
        plan.push(Edit::set(attribute, value)?)?;
    }
    Ok(plan)
}

#[rstest]
#[case::impossible_date(&["StudyDescription=RENAMED", "StudyDate=20241301"], &["StudyDate", "20241301"])]
#[case::value_too_long_for_its_vr(
    &["AccessionNumber=ABCDEFGHIJKLMNOPQRSTUVWXYZ"],
    &["AccessionNumber", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
)]
#[case::unknown_attribute(&["StudyDescriptionn=X"], &["StudyDescriptionn"])]
#[case::one_attribute_set_twice(
    &["StudyDescription=A", "(0008,1030)=B"],
    &["StudyDescription"]
)]
fn a_bad_value_is_refused_before_any_file_is_touched(
    mut report: TestReport,
    perf_config: &TestConfig,
    #[case] assignments: &[&str],
    #[case] named_in_error: &[&str],
) {
    let copy = SampleCopy::of(&perf_config.dataset.root_dir);
    let before = copy.contents();

    let refused = match plan_from_assignments(assignments) {
        Err(error) => dimse::ErrorChain(&error).to_string(),
        Ok(plan) => {
            copy.update(&plan, UpdateOptions::default());
            panic!("{assignments:?} was accepted");
        }
    };

    report.figure("refusal", &refused);
    for name in named_in_error {
        assert!(
            refused.contains(name),
            "the error does not name {name}: {refused}"
        );
    }
    assert!(copy.contents() == before, "a file changed");
}

#[rstest]
fn non_dicom_and_truncated_files_are_reported_and_left_alone(
    mut report: TestReport,
    perf_config: &TestConfig,
    dicom_infos: &'static [FileInfo],
) {
    let copy = SampleCopy::of(&perf_config.dataset.root_dir);
    let strays = copy.path().join("strays");
    std::fs::create_dir_all(&strays).unwrap();
    std::fs::write(strays.join("notes.txt"), "not DICOM at all\n".repeat(20)).unwrap();
    std::fs::write(strays.join("short.dcm"), b"DICM").unwrap();
    std::fs::write(strays.join("empty"), b"").unwrap();
    std::fs::write(strays.join("zeros.dcm"), [0u8; 512]).unwrap();
    // A real sample cut in half: inside its pixel data, which an uncompressed file ends with.
    let native = dicom_infos
        .iter()
        .filter(|i| i.transfer_syntax_uid == dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .max_by_key(|i| i.size_bytes)
        .expect("an Explicit VR Little Endian sample");
    let whole = std::fs::read(&native.path).unwrap();
    std::fs::write(strays.join("truncated.dcm"), &whole[..whole.len() / 2]).unwrap();
    let before = copy.contents();

    let (summary, outcomes) = copy.update(
        &plan_of([set("StudyDescription", "DICOM-AUTO RENAMED")]),
        UpdateOptions::default(),
    );

    let seen = |name: &str| &outcomes[&Path::new("strays").join(name)];
    let reason = |name: &str| match seen(name) {
        Seen::Skipped(reason) => reason.clone(),
        other => panic!("{name}: {other:?}"),
    };
    assert!(
        matches!(reason("notes.txt"), SkipReason::NoDicmMagic),
        "{}",
        reason("notes.txt")
    );
    assert!(
        matches!(reason("zeros.dcm"), SkipReason::NoDicmMagic),
        "{}",
        reason("zeros.dcm")
    );
    assert!(
        matches!(reason("short.dcm"), SkipReason::TooShort { len: 4 }),
        "{}",
        reason("short.dcm")
    );
    assert!(
        matches!(reason("empty"), SkipReason::TooShort { len: 0 }),
        "{}",
        reason("empty")
    );
    match seen("truncated.dcm") {
        Seen::Failed(error) => report.figure("truncated file", error),
        other => panic!("truncated.dcm: {other:?}"),
    }
    assert_eq!(
        summary.failed, 1,
        "only the truncated file fails: {summary:?}"
    );
    assert_eq!(summary.changed, dicom_infos.len(), "{summary:?}");
    assert_eq!(
        summary.scanned,
        before.len(),
        "every file is reported: {summary:?}"
    );
    let after = copy.contents();
    for name in [
        "notes.txt",
        "short.dcm",
        "empty",
        "zeros.dcm",
        "truncated.dcm",
    ] {
        let path = Path::new("strays").join(name);
        assert!(after[&path] == before[&path], "{name} was changed");
    }
    report.figure("skipped", summary.skipped);
    report.figure("failed", summary.failed);
}

#[rstest]
fn an_updated_file_is_still_sendable_and_shows_its_new_description(
    mut report: TestReport,
    perf_config: &TestConfig,
    dicom_infos: &'static [FileInfo],
    cfind_client: CFindClient,
) {
    // Routes rewrite StudyDescription for some modalities; CT keeps what it was sent with.
    let Some(ct) = dicom_infos
        .iter()
        .find(|i| i.modality.as_deref() == Some("CT"))
    else {
        return report
            .skip("the samples have no CT image (the routes keep a CT's StudyDescription)");
    };
    let copy = SampleCopy::of(&perf_config.dataset.root_dir);
    let description = "DICOM-AUTO TAGUTIL";
    // New UIDs: a study no other test (nor an earlier run) has sent.
    let mut plan = plan_of([set("StudyDescription", description)]);
    plan.regenerate_uids().unwrap();
    let (summary, _) = copy.update(&plan, UpdateOptions::default());
    assert_eq!(summary.failed, 0, "{summary:?}");
    let relative = ct.path.strip_prefix(&perf_config.dataset.root_dir).unwrap();
    let updated = copy.path().join(relative);
    let study = text(&copy.open(relative), tags::STUDY_INSTANCE_UID);
    let sender = campaign::options::sender::sender_options(perf_config)
        .unwrap_or_else(|e| panic!("sender options: {e}"))
        .build()
        .unwrap_or_else(|e| panic!("cannot build a sender: {e}"));

    let outcome = sender
        .send_file(&updated)
        .unwrap_or_else(|e| panic!("C-STORE to {} failed: {e}", sender.options().address()));

    assert!(
        outcome.is_delivered(),
        "the router refused the updated file: {:?} {}",
        outcome.status,
        outcome.error.unwrap_or_default()
    );
    let expected = BTreeMap::from([("StudyDescription".to_string(), description.to_string())]);
    let sighting = routing::wait_for_study(&cfind_client, &study, &expected);
    report.figure(
        "visible after",
        format!("{:.0} ms", sighting.waited.as_secs_f64() * 1000.0),
    );
}
