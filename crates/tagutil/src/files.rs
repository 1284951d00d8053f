//! Finding DICOM files in a folder.
//!
//! A file is DICOM when it carries the PS3.10 magic `DICM` at byte 128, whatever its name:
//! sample sets often have no `.dcm` extension, and a `.dcm` file can be anything.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use loader::Head;

use walkdir::WalkDir;

use crate::error::ScanError;

/// Prefix and suffix of tagutil's own temporary files; a leftover one (from a killed run) is
/// reported and never treated as a sample.
pub(crate) const TEMP_PREFIX: &str = ".tagutil-";
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// A file met while scanning a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A file with the DICM magic.
    Dicom(PathBuf),
    /// A file that is not processed, and why.
    Skipped {
        /// The file.
        path: PathBuf,
        /// Why it is skipped.
        reason: SkipReason,
    },
}

/// Why a file in the folder is not processed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Shorter than the 132 bytes of preamble and magic.
    TooShort {
        /// The file's length in bytes.
        len: u64,
    },
    /// No `DICM` at byte 128.
    NoDicmMagic,
    /// A symbolic link; not followed, so that an in-place edit never replaces a link by a file.
    SymbolicLink,
    /// A temporary file left by an interrupted tagutil run.
    LeftoverTempFile,
    /// The file or folder could not be read.
    Unreadable {
        /// The I/O error, as text.
        error: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TooShort { len } => {
                write!(
                    f,
                    "not DICOM: {len} bytes, shorter than preamble and DICM magic"
                )
            }
            SkipReason::NoDicmMagic => write!(f, "not DICOM: no DICM magic at byte 128"),
            SkipReason::SymbolicLink => write!(f, "symbolic link, not followed"),
            SkipReason::LeftoverTempFile => {
                write!(
                    f,
                    "temporary file left by an interrupted tagutil run; safe to delete"
                )
            }
            SkipReason::Unreadable { error } => write!(f, "unreadable: {error}"),
        }
    }
}

/// Lists every file under `dir` (recursively, sorted by path), each either a DICOM candidate or
/// skipped with a reason.
pub fn scan_folder(dir: &Path) -> Result<Vec<Candidate>, ScanError> {
    std::fs::read_dir(dir).map_err(|source| ScanError::NotADirectory {
        path: dir.to_owned(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in WalkDir::new(dir).sort_by_file_name() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err.path().unwrap_or(dir).to_owned();
                found.push(Candidate::Skipped {
                    path,
                    reason: SkipReason::Unreadable {
                        error: err.to_string(),
                    },
                });
                continue;
            }
        };
        let file_type = entry.file_type();
        if file_type.is_dir() {
            continue;
        }
        let path = entry.into_path();
        if file_type.is_symlink() {
            found.push(Candidate::Skipped {
                path,
                reason: SkipReason::SymbolicLink,
            });
            continue;
        }
        if is_temp_file(&path) {
            found.push(Candidate::Skipped {
                path,
                reason: SkipReason::LeftoverTempFile,
            });
            continue;
        }
        match sniff(&path) {
            Ok(None) => found.push(Candidate::Dicom(path)),
            Ok(Some(reason)) => found.push(Candidate::Skipped { path, reason }),
            Err(err) => found.push(Candidate::Skipped {
                path,
                reason: SkipReason::Unreadable {
                    error: err.to_string(),
                },
            }),
        }
    }
    Ok(found)
}

/// The DICOM files under `dir`, recursively, sorted by path (the old `dcmutl.get_dcm_files`,
/// but by content rather than by extension).
pub fn get_dcm_files(dir: &Path) -> Result<Vec<PathBuf>, ScanError> {
    Ok(scan_folder(dir)?
        .into_iter()
        .filter_map(|candidate| match candidate {
            Candidate::Dicom(path) => Some(path),
            Candidate::Skipped { .. } => None,
        })
        .collect())
}

pub(crate) fn is_temp_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX))
}

/// `Ok(None)` when the file has the DICM magic ([`loader::read_head`]), otherwise why not.
fn sniff(path: &Path) -> io::Result<Option<SkipReason>> {
    Ok(match loader::read_head(path)? {
        Head::Dicom => None,
        Head::TooShort { len } => Some(SkipReason::TooShort { len }),
        Head::NotDicom => Some(SkipReason::NoDicmMagic),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_dicom_by_magic_recursively_and_reports_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let mut dicom = vec![0_u8; 128];
        dicom.extend_from_slice(b"DICM");
        dicom.extend_from_slice(&[0; 16]);
        std::fs::write(sub.join("no_extension"), &dicom).unwrap();
        std::fs::write(dir.path().join("notes.dcm"), b"hello").unwrap();
        std::fs::write(dir.path().join("big.bin"), vec![1_u8; 400]).unwrap();
        std::fs::write(dir.path().join(".tagutil-x.tmp"), &dicom).unwrap();

        let found = scan_folder(dir.path()).unwrap();
        assert_eq!(found.len(), 4);
        assert!(found.contains(&Candidate::Dicom(sub.join("no_extension"))));
        assert!(found.contains(&Candidate::Skipped {
            path: dir.path().join("notes.dcm"),
            reason: SkipReason::TooShort { len: 5 },
        }));
        assert!(found.contains(&Candidate::Skipped {
            path: dir.path().join("big.bin"),
            reason: SkipReason::NoDicmMagic,
        }));
        assert!(found.contains(&Candidate::Skipped {
            path: dir.path().join(".tagutil-x.tmp"),
            reason: SkipReason::LeftoverTempFile,
        }));
        assert_eq!(
            get_dcm_files(dir.path()).unwrap(),
            vec![sub.join("no_extension")]
        );
    }

    #[test]
    fn scanning_a_missing_folder_is_an_error_naming_it() {
        let err = scan_folder(Path::new("/definitely/not/here")).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }
}
