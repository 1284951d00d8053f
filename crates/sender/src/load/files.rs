//! [`prepare_paths`]: the instances of a run, read from files and folders.

use std::path::PathBuf;
use std::sync::Arc;

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

/// Reads every DICOM file under `paths` (files or folders) and prepares them.
///
/// A bad file never stops a run: it is listed in [`PreparedFiles::skipped`] with the
/// reason.
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
    for file in files {
        match PreparedInstance::from_file(&file, uids) {
            Ok(instance) => prepared.instances.push(Arc::new(instance)),
            Err(e) => prepared.skipped.push((file, e.to_string())),
        }
    }
    Ok(prepared)
}
