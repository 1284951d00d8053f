//! Finding DICOM files under a folder by their `DICM` magic, whatever their names.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::LoadError;
use crate::magic::{Head, MIN_DICOM_LEN, read_head};

/// The result of [`find_dicom_files`]: what was found, and what was passed over and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// DICOM files, sorted by path (byte-wise), each physical file once.
    pub files: Vec<PathBuf>,
    /// Entries that were not taken, sorted by path.
    pub skipped: Vec<Skipped>,
}

/// One entry of the folder that [`find_dicom_files`] did not return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry as reached from the root (through symlinks, not canonicalised).
    pub path: PathBuf,
    /// Why it was passed over.
    pub reason: SkipReason,
}

/// Why an entry was passed over by [`find_dicom_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Opening or reading it failed (permissions, broken symlink, I/O error).
    Unreadable {
        /// The I/O error, as text.
        message: String,
    },
    /// Shorter than the 132 bytes that hold the preamble and the magic.
    TooShort {
        /// Its length in bytes.
        len: u64,
    },
    /// Long enough, but no `DICM` at offset 128.
    NotDicom,
    /// A directory symlink pointing back to one of its own ancestors; not descended into again.
    SymlinkLoop {
        /// The ancestor it points to.
        ancestor: PathBuf,
    },
    /// The same physical file was already found under another path (through a symlink);
    /// returning it twice would send the same SOP instance twice.
    DuplicateOf {
        /// The path under which the file is returned.
        kept: PathBuf,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Unreadable { message } => write!(f, "unreadable: {message}"),
            SkipReason::TooShort { len } => {
                write!(f, "too short for DICOM ({len} bytes, need {MIN_DICOM_LEN})")
            }
            SkipReason::NotDicom => write!(f, "not DICOM (no DICM magic at offset 128)"),
            SkipReason::SymlinkLoop { ancestor } => {
                write!(f, "symlink loop back to {}", ancestor.display())
            }
            SkipReason::DuplicateOf { kept } => {
                write!(f, "same file as {}", kept.display())
            }
        }
    }
}

/// Recursively find every DICOM file under `root`.
///
/// A file is DICOM when it has `DICM` at byte 128, whatever its name or extension (many archives
/// write extension-less files). Symlinks are followed; a directory symlink that loops back to an
/// ancestor is reported in [`Scan::skipped`] instead of being walked forever. Files are checked in
/// parallel (rayon); the result is sorted by path so two scans of the same tree agree.
///
/// One bad entry never fails the scan: unreadable files, short files and non-DICOM files are listed
/// in [`Scan::skipped`] with the reason.
///
/// # Errors
/// [`LoadError::RootNotFound`] when `root` does not exist, [`LoadError::RootUnreadable`] when its
/// metadata cannot be read.
pub fn find_dicom_files(root: impl AsRef<Path>) -> Result<Scan, LoadError> {
    let root = root.as_ref();
    if let Err(source) = std::fs::metadata(root) {
        return Err(if source.kind() == std::io::ErrorKind::NotFound {
            LoadError::RootNotFound {
                path: root.to_path_buf(),
            }
        } else {
            LoadError::RootUnreadable {
                path: root.to_path_buf(),
                source,
            }
        });
    }

    // Listing directories is cheap and sequential; reading 132 bytes of each file is where the
    // time goes on a big archive, so only that part runs on the rayon pool.
    let mut candidates = Vec::new();
    let mut skipped = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(true) {
        match entry {
            Ok(entry) if entry.file_type().is_file() => candidates.push(entry.into_path()),
            Ok(_) => {}
            Err(error) => skipped.push(walk_error_to_skip(root, &error)),
        }
    }

    let checked: Vec<(PathBuf, Result<PathBuf, SkipReason>)> = candidates
        .into_par_iter()
        .map(|path| {
            let verdict = check_magic(&path).and_then(|()| {
                std::fs::canonicalize(&path).map_err(|e| SkipReason::Unreadable {
                    message: e.to_string(),
                })
            });
            (path, verdict)
        })
        .collect();

    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (path, verdict) in checked {
        match verdict {
            Ok(canonical) => found.push((path, canonical)),
            Err(reason) => skipped.push(Skipped { path, reason }),
        }
    }
    found.sort();

    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut files = Vec::with_capacity(found.len());
    for (path, canonical) in found {
        if let Some(kept) = seen.get(&canonical) {
            skipped.push(Skipped {
                path,
                reason: SkipReason::DuplicateOf { kept: kept.clone() },
            });
        } else {
            seen.insert(canonical, path.clone());
            files.push(path);
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Scan { files, skipped })
}

/// Whether `path` holds `DICM` at offset 128; reads at most 132 bytes.
///
/// # Errors
/// The [`SkipReason`] a scan would report for this file.
pub fn check_magic(path: &Path) -> Result<(), SkipReason> {
    match read_head(path) {
        Ok(Head::Dicom) => Ok(()),
        Ok(Head::TooShort { len }) => Err(SkipReason::TooShort { len }),
        Ok(Head::NotDicom) => Err(SkipReason::NotDicom),
        Err(e) => Err(SkipReason::Unreadable {
            message: e.to_string(),
        }),
    }
}

fn walk_error_to_skip(root: &Path, error: &walkdir::Error) -> Skipped {
    let path = error.path().unwrap_or(root).to_path_buf();
    let reason = match error.loop_ancestor() {
        Some(ancestor) => SkipReason::SymlinkLoop {
            ancestor: ancestor.to_path_buf(),
        },
        None => SkipReason::Unreadable {
            message: error
                .io_error()
                .map_or_else(|| error.to_string(), ToString::to_string),
        },
    };
    Skipped { path, reason }
}

#[cfg(all(test, feature = "codecs"))]
mod tests {
    use super::*;
    use crate::synth::{Encoding, InstanceBuilder, Modality};

    fn write_dicom(path: &Path) {
        InstanceBuilder::new(Modality::Ct)
            .geometry(crate::synth::ImageGeometry::mono16(8, 8, 12))
            .encoding(Encoding::ExplicitVrLittleEndian)
            .seed(1)
            .write_to(path)
            .unwrap();
    }

    fn reason_of<'a>(scan: &'a Scan, name: &str) -> &'a SkipReason {
        &scan
            .skipped
            .iter()
            .find(|s| s.path.ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in skipped: {:?}", scan.skipped))
            .reason
    }

    #[test]
    fn finds_dicom_in_nested_folders_whatever_the_extension() {
        let root = tempfile::tempdir().unwrap();
        write_dicom(&root.path().join("a/b/c/IM0001.dcm"));
        write_dicom(&root.path().join("a/IM0002"));
        write_dicom(&root.path().join("z/report.txt"));
        let scan = find_dicom_files(root.path()).unwrap();
        let names: Vec<_> = scan
            .files
            .iter()
            .map(|p| p.strip_prefix(root.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            [
                PathBuf::from("a/IM0002"),
                PathBuf::from("a/b/c/IM0001.dcm"),
                PathBuf::from("z/report.txt")
            ]
        );
        assert!(scan.skipped.is_empty(), "{:?}", scan.skipped);
    }

    #[test]
    fn non_dicom_short_and_truncated_header_files_are_skipped_with_their_reason() {
        let root = tempfile::tempdir().unwrap();
        write_dicom(&root.path().join("good.dcm"));
        std::fs::write(root.path().join("notes.dcm"), vec![b'x'; 500]).unwrap();
        std::fs::write(root.path().join("empty"), b"").unwrap();
        let whole = std::fs::read(root.path().join("good.dcm")).unwrap();
        std::fs::write(root.path().join("cut.dcm"), &whole[..130]).unwrap();
        let scan = find_dicom_files(root.path()).unwrap();
        assert_eq!(scan.files, [root.path().join("good.dcm")]);
        assert_eq!(reason_of(&scan, "notes.dcm"), &SkipReason::NotDicom);
        assert_eq!(reason_of(&scan, "empty"), &SkipReason::TooShort { len: 0 });
        assert_eq!(
            reason_of(&scan, "cut.dcm"),
            &SkipReason::TooShort { len: 130 }
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_loop_is_reported_and_does_not_hang_the_scan() {
        let root = tempfile::tempdir().unwrap();
        write_dicom(&root.path().join("series/IM0001"));
        std::os::unix::fs::symlink(root.path(), root.path().join("series/back-to-root")).unwrap();
        let scan = find_dicom_files(root.path()).unwrap();
        assert_eq!(scan.files, [root.path().join("series/IM0001")]);
        assert!(matches!(
            reason_of(&scan, "back-to-root"),
            SkipReason::SymlinkLoop { .. }
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_reached_twice_through_a_symlink_is_returned_once() {
        let root = tempfile::tempdir().unwrap();
        write_dicom(&root.path().join("a/IM0001"));
        std::os::unix::fs::symlink(root.path().join("a"), root.path().join("b")).unwrap();
        let scan = find_dicom_files(root.path()).unwrap();
        assert_eq!(scan.files, [root.path().join("a/IM0001")]);
        assert_eq!(
            reason_of(&scan, "b/IM0001"),
            &SkipReason::DuplicateOf {
                kept: root.path().join("a/IM0001")
            }
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_broken_symlink_is_reported_unreadable() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root.path().join("gone"), root.path().join("dangling")).unwrap();
        let scan = find_dicom_files(root.path()).unwrap();
        assert!(scan.files.is_empty());
        assert!(matches!(
            reason_of(&scan, "dangling"),
            SkipReason::Unreadable { .. }
        ));
    }

    #[test]
    fn two_scans_of_the_same_tree_agree() {
        let root = tempfile::tempdir().unwrap();
        for i in 0..40 {
            write_dicom(&root.path().join(format!("s{}/IM{i:04}", i % 3)));
        }
        let first = find_dicom_files(root.path()).unwrap();
        assert_eq!(first.files.len(), 40);
        assert!(first.files.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(first, find_dicom_files(root.path()).unwrap());
    }

    #[test]
    fn a_missing_root_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("no-such-folder");
        let error = find_dicom_files(&missing).unwrap_err();
        assert!(matches!(&error, LoadError::RootNotFound { path } if path == &missing));
        assert!(error.to_string().contains("no-such-folder"), "{error}");
    }
}
