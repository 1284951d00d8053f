//! The sample files of `DICOM_ROOT_DIR`: found by content, with what must never
//! appear in a report.

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use loader::{FileInfo, Skipped};
use rayon::prelude::*;
use report::Redactor;

use crate::CampaignError;

/// The sample files of a folder, scanned once.
#[derive(Debug)]
pub struct Samples {
    /// The folder scanned.
    pub root: PathBuf,
    /// Every DICOM file found, sorted, with its cheap metadata.
    pub infos: Vec<FileInfo>,
    /// What the scan passed over, and why (non-DICOM files, unreadable ones).
    pub skipped: Vec<Skipped>,
}

impl Samples {
    /// Finds every DICOM file under `root` (by content, any extension) and reads its
    /// metadata up to Pixel Data; unreadable files are listed in `skipped`.
    ///
    /// # Errors
    /// [`CampaignError::Samples`] when the folder cannot be read at all.
    pub fn scan(root: &Path) -> Result<Self, CampaignError> {
        let scan = loader::find_dicom_files(root).map_err(|source| CampaignError::Samples {
            root: root.to_path_buf(),
            detail: source.to_string(),
        })?;
        let infos = loader::scan_infos(&scan.files);
        let mut skipped = scan.skipped;
        skipped.extend(infos.failures.into_iter().map(|error| Skipped {
            path: error.path().to_path_buf(),
            reason: loader::SkipReason::Unreadable {
                message: error.to_string(),
            },
        }));
        Ok(Samples {
            root: root.to_path_buf(),
            infos: infos.infos,
            skipped,
        })
    }

    /// The paths of the files found, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.infos.iter().map(|i| i.path.clone()).collect()
    }

    /// Patient names, IDs and birth dates found in the samples: what a report must
    /// never show.
    pub fn identifying_values(&self) -> Redactor {
        let values: Vec<String> = self
            .infos
            .par_iter()
            .flat_map_iter(|info| {
                let mut found = Vec::new();
                if let Ok(obj) = OpenFileOptions::new()
                    .read_until(tags::PIXEL_DATA)
                    .open_file(&info.path)
                {
                    for tag in [
                        tags::PATIENT_NAME,
                        tags::PATIENT_ID,
                        tags::PATIENT_BIRTH_DATE,
                    ] {
                        if let Some(value) = obj.get(tag).and_then(|e| e.to_str().ok()) {
                            found.push(value.to_string());
                        }
                    }
                }
                found
            })
            .collect();
        let mut redactor = Redactor::new();
        for value in &values {
            redactor.add(value);
        }
        redactor
    }
}
