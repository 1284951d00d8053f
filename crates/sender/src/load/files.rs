//! [`prepare_paths`]: the instances of a run, read from files and folders.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use crate::instance::PreparedInstance;
use crate::{SenderError, UidStrategy};

/// Instances read from files and folders, and the files left out.
#[derive(Debug, Default)]
pub struct PreparedFiles {
    /// Ready to send.
    pub instances: Vec<Arc<PreparedInstance>>,
    /// Files skipped (not DICOM, truncated, lacking UIDs...), each with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Finds every DICOM file under `paths` (files or folders) and
/// [inspects](PreparedInstance::inspect) them: their identity and syntax from the head
/// of the file; a load run reads the data sets within its memory budget.
///
/// A bad file never stops a run: one whose head is not a readable DICOM data set with
/// its UIDs is listed in [`PreparedFiles::skipped`] with the reason. One whose data set
/// is cut short after the attributes before Pixel Data is found when it is read, and
/// each send of it fails naming the file.
///
/// # Errors
/// [`SenderError::File`] when a path does not exist or a folder cannot be walked.
pub fn prepare_paths(paths: &[PathBuf], uids: UidStrategy) -> Result<PreparedFiles, SenderError> {
    let mut files = Vec::new();
    let mut prepared = PreparedFiles::default();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        let scan = loader::find_dicom_files(path).map_err(|e| SenderError::File {
            path: path.clone(),
            detail: dimse::ErrorChain(&e).to_string(),
        })?;
        files.extend(scan.files);
        prepared.skipped.extend(
            scan.skipped
                .into_iter()
                .map(|s| (s.path, s.reason.to_string())),
        );
    }
    // Only the head of each file is read, in parallel: a run starts within
    // milliseconds whatever the size of the set, and reads the data sets as it goes.
    let inspected: Vec<_> = files
        .into_par_iter()
        .map(|file| {
            let result = PreparedInstance::inspect(&file, uids);
            (file, result)
        })
        .collect();
    for (file, result) in inspected {
        match result {
            Ok(instance) => prepared.instances.push(Arc::new(instance)),
            Err(e) => prepared.skipped.push((file, e.to_string())),
        }
    }
    Ok(prepared)
}
