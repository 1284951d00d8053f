//! Replacing a file so that a crash or an error never leaves it half-written.
//!
//! The new content goes to a temporary file in the target's own folder (a rename is only atomic
//! within one file system), is flushed and synced to disk, and only then renamed over the target.
//! If anything fails before the rename, the temporary file is deleted and the target is as it was.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use dicom_object::DefaultDicomObject;

use crate::error::WriteError;
use crate::files::{TEMP_PREFIX, TEMP_SUFFIX};

/// Writes `obj` to `target` atomically, as a PS3.10 file with the transfer syntax named in its
/// file meta table.
///
/// When `target` already exists its 128-byte preamble is kept (some files carry a TIFF header
/// there) and so are its permissions; a new file gets a zero preamble.
pub fn write_file_atomically(obj: &DefaultDicomObject, target: &Path) -> Result<(), WriteError> {
    write_file_with_hook(obj, target, &|_| Ok(()))
}

/// Like [`write_file_atomically`], with `before_rename` called on the synced temporary file just
/// before it is renamed over the target. Tests use it to inject a failure at the last moment.
pub(crate) fn write_file_with_hook(
    obj: &DefaultDicomObject,
    target: &Path,
    before_rename: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<(), WriteError> {
    let preamble = existing_preamble(target).unwrap_or([0; 128]);
    replace_atomically(
        target,
        |out| {
            out.write_all(&preamble).map_err(|source| WriteError::Io {
                path: target.to_owned(),
                source,
            })?;
            out.write_all(b"DICM").map_err(|source| WriteError::Io {
                path: target.to_owned(),
                source,
            })?;
            let encode = |source| WriteError::Encode {
                path: target.to_owned(),
                source: Box::new(source),
            };
            obj.write_meta(&mut *out).map_err(encode)?;
            obj.write_dataset(&mut *out).map_err(encode)
        },
        before_rename,
    )
}

/// Runs `write` into a temporary file beside `target`, syncs it, calls `before_rename`, then
/// renames it over `target`.
pub(crate) fn replace_atomically(
    target: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<(), WriteError>,
    before_rename: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<(), WriteError> {
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|source| WriteError::TempFile {
            dir: dir.to_owned(),
            source,
        })?;
    let io_error = |source| WriteError::Io {
        path: target.to_owned(),
        source,
    };
    {
        let mut out = BufWriter::new(temp.as_file());
        write(&mut out)?;
        out.flush().map_err(io_error)?;
    }
    if let Ok(meta) = fs::metadata(target) {
        fs::set_permissions(temp.path(), meta.permissions()).map_err(io_error)?;
    }
    temp.as_file().sync_all().map_err(io_error)?;
    // On error `temp` is dropped here, which deletes the temporary file.
    before_rename(temp.path()).map_err(|source| WriteError::Replace {
        path: target.to_owned(),
        source,
    })?;
    temp.persist(target).map_err(|err| WriteError::Replace {
        path: target.to_owned(),
        source: err.error,
    })?;
    // Make the rename itself durable; a failure here leaves a complete file either way.
    if let Ok(dir_handle) = File::open(dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

fn existing_preamble(path: &Path) -> Option<[u8; 128]> {
    let mut preamble = [0_u8; 128];
    File::open(path).ok()?.read_exact(&mut preamble).ok()?;
    Some(preamble)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn failure_before_rename_leaves_original_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        fs::write(&target, b"original bytes").unwrap();

        let result = replace_atomically(
            &target,
            |out| {
                out.write_all(b"new bytes").unwrap();
                Ok(())
            },
            &|_| Err(io::Error::other("injected failure before rename")),
        );

        let err = result.unwrap_err();
        assert!(err.to_string().contains("image.dcm"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"original bytes");
        assert_eq!(entries(dir.path()), vec!["image.dcm"]);
    }

    #[test]
    fn failure_while_writing_leaves_original_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        fs::write(&target, b"original bytes").unwrap();

        let result = replace_atomically(
            &target,
            |out| {
                out.write_all(b"half").unwrap();
                Err(WriteError::Io {
                    path: target.clone(),
                    source: io::Error::other("disk full"),
                })
            },
            &|_| Ok(()),
        );

        assert!(result.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"original bytes");
        assert_eq!(entries(dir.path()), vec!["image.dcm"]);
    }

    #[test]
    fn successful_replace_keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();

        replace_atomically(
            &target,
            |out| {
                out.write_all(b"new").unwrap();
                Ok(())
            },
            &|_| Ok(()),
        )
        .unwrap();

        assert_eq!(fs::read(&target).unwrap(), b"new");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(entries(dir.path()), vec!["image.dcm"]);
    }
}
