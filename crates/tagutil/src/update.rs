//! Updating every DICOM file of a folder in place.

use std::io;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};

use crate::edit::{Change, EditPlan, apply, collect_instance_uids};
use crate::error::{FileError, ScanError};
use crate::files::{Candidate, SkipReason, scan_folder};
use crate::uid::UidMap;
use crate::write::write_file_with_hook;

/// How a folder run behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpdateOptions {
    /// Compute and report every change, write nothing.
    pub dry_run: bool,
}

/// What happened to one file.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileOutcome {
    /// The file was changed (or, in a dry run, would be); the changes in order.
    Changed(Vec<Change>),
    /// The edits left every value as it was; the file was not rewritten.
    Unchanged,
    /// Not a DICOM file, or not one to touch.
    Skipped(SkipReason),
    /// A DICOM file that could not be read or written; it is left as it was.
    Failed(FileError),
}

/// One file's outcome, handed to the observer as the run goes.
#[derive(Debug)]
pub struct FileReport {
    /// The file (for anonymize: the input file).
    pub path: PathBuf,
    /// What happened.
    pub outcome: FileOutcome,
}

/// Counts for a whole run. `scanned = changed + unchanged + skipped + failed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Files looked at.
    pub scanned: usize,
    /// Files changed (or that would be, in a dry run).
    pub changed: usize,
    /// DICOM files the edits did not change.
    pub unchanged: usize,
    /// Files skipped (not DICOM, links, leftovers).
    pub skipped: usize,
    /// DICOM files that could not be processed.
    pub failed: usize,
}

impl RunSummary {
    pub(crate) fn record(&mut self, outcome: &FileOutcome) {
        self.scanned += 1;
        match outcome {
            FileOutcome::Changed(_) => self.changed += 1,
            FileOutcome::Unchanged => self.unchanged += 1,
            FileOutcome::Skipped(_) => self.skipped += 1,
            FileOutcome::Failed(_) => self.failed += 1,
        }
    }

    /// Whether any file failed (the CLI then exits non-zero).
    pub fn has_failures(&self) -> bool {
        self.failed > 0
    }
}

/// Applies `plan` to every DICOM file under `dir`, reporting each file to `observer` as it goes.
///
/// With [`EditPlan::regenerate_uids`], every file is read once first to collect its instance
/// UIDs, so the same original UID gets the same new UID in every file and references between
/// files stay valid.
pub fn update_folder(
    dir: &Path,
    plan: &EditPlan,
    options: UpdateOptions,
    observer: impl FnMut(&FileReport),
) -> Result<RunSummary, ScanError> {
    update_folder_with_hook(dir, plan, options, observer, &|_| Ok(()))
}

/// [`update_folder`] with a hook called on each synced temporary file just before it is renamed
/// over the original. An error from the hook aborts that file's replacement: the original stays
/// as it was, the temporary file is deleted, and the file counts as failed. Fault-injection
/// tests use it; a caller could also use it to verify the new file before it goes live.
pub fn update_folder_with_hook(
    dir: &Path,
    plan: &EditPlan,
    options: UpdateOptions,
    observer: impl FnMut(&FileReport),
    before_rename: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<RunSummary, ScanError> {
    let candidates = scan_folder(dir)?;
    let mut uids = UidMap::new();
    if plan.regenerates_uids() {
        for candidate in &candidates {
            if let Candidate::Dicom(path) = candidate
                && let Ok(obj) = OpenFileOptions::new()
                    .read_until(tags::PIXEL_DATA)
                    .open_file(path)
            {
                collect_instance_uids(&obj, &mut uids);
            }
        }
    }
    Ok(process_candidates(
        candidates,
        observer,
        |path| match update_file_with_hook(path, plan, &uids, options, before_rename) {
            Ok(changes) if changes.is_empty() => FileOutcome::Unchanged,
            Ok(changes) => FileOutcome::Changed(changes),
            Err(err) => FileOutcome::Failed(err),
        },
    ))
}

/// Runs `process` on each DICOM candidate, reports every candidate to `observer` and counts.
pub(crate) fn process_candidates(
    candidates: Vec<Candidate>,
    mut observer: impl FnMut(&FileReport),
    mut process: impl FnMut(&Path) -> FileOutcome,
) -> RunSummary {
    let mut summary = RunSummary::default();
    for candidate in candidates {
        let report = match candidate {
            Candidate::Skipped { path, reason } => FileReport {
                path,
                outcome: FileOutcome::Skipped(reason),
            },
            Candidate::Dicom(path) => {
                let outcome = process(&path);
                FileReport { path, outcome }
            }
        };
        summary.record(&report.outcome);
        observer(&report);
    }
    summary
}

/// Applies `plan` to one file and returns the changes (empty: nothing to do, file untouched).
/// UIDs are renamed through `uids`, which must already hold the originals (see
/// [`collect_instance_uids`]).
pub fn update_file(
    path: &Path,
    plan: &EditPlan,
    uids: &UidMap,
    options: UpdateOptions,
) -> Result<Vec<Change>, FileError> {
    update_file_with_hook(path, plan, uids, options, &|_| Ok(()))
}

fn update_file_with_hook(
    path: &Path,
    plan: &EditPlan,
    uids: &UidMap,
    options: UpdateOptions,
    before_rename: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<Vec<Change>, FileError> {
    let mut file = open(path)?;
    let changes = apply(plan, &mut file, uids);
    if !changes.is_empty() && !options.dry_run {
        write_file_with_hook(&file, path, before_rename)?;
    }
    Ok(changes)
}

pub(crate) fn open(path: &Path) -> Result<DefaultDicomObject, FileError> {
    let file = OpenFileOptions::new()
        .open_file(path)
        .map_err(|source| FileError::Open {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
    check_encapsulated_end(path, &file)?;
    Ok(file)
}

/// dicom-rs treats an end of file inside encapsulated pixel data as a normal end and keeps the
/// short fragment, so a truncated compressed image opens without error. Rewriting it would turn
/// a visibly broken file into a well-formed one with a cut image; refuse instead. When Pixel Data
/// is the last element of a file that is not deflated, the file must end with the delimiter.
fn check_encapsulated_end(path: &Path, file: &DefaultDicomObject) -> Result<(), FileError> {
    let encapsulated = file
        .get(tags::PIXEL_DATA)
        .is_some_and(|e| matches!(e.value(), dicom_core::value::Value::PixelSequence(_)));
    let pixel_data_is_last = file.tags().last() == Some(tags::PIXEL_DATA);
    let deflated = file.meta().transfer_syntax().trim_end_matches('\0')
        == dicom_dictionary_std::uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN;
    if !encapsulated || !pixel_data_is_last || deflated {
        return Ok(());
    }
    let ends_well = loader::ends_with_sequence_delimiter(path).map_err(|source| FileError::Io {
        path: path.to_owned(),
        source,
    })?;
    if ends_well {
        Ok(())
    } else {
        Err(FileError::Truncated {
            path: path.to_owned(),
        })
    }
}
