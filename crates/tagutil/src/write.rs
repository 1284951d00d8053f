//! Replacing a DICOM file so that a crash or an error never leaves it half-written, through
//! [`loader::AtomicFile`]: temporary file beside the target, flushed and synced, renamed over
//! it; on failure before the rename the temporary file is deleted and the target is as it was.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
#[cfg(test)]
use std::{fs, path::PathBuf};

use dicom_object::DefaultDicomObject;
use loader::AtomicFile;

use crate::error::{EncodeError, WriteError};
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
    // The temporary file's name marks it as tagutil's, so a scan reports one left by a killed
    // run instead of editing it as a sample.
    AtomicFile::new(target)
        .temp_name(TEMP_PREFIX, TEMP_SUFFIX)
        .before_rename(before_rename)
        .write(|out| {
            out.write_all(&preamble).map_err(EncodeError::Preamble)?;
            out.write_all(loader::MAGIC)
                .map_err(EncodeError::Preamble)?;
            let encode = |source| EncodeError::Dicom(Box::new(source));
            obj.write_meta(&mut *out).map_err(encode)?;
            obj.write_dataset(&mut *out).map_err(encode)
        })
}

fn existing_preamble(path: &Path) -> Option<[u8; 128]> {
    let mut preamble = [0_u8; 128];
    File::open(path).ok()?.read_exact(&mut preamble).ok()?;
    Some(preamble)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

    fn file_count(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    fn small_file() -> DefaultDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(uids::CT_IMAGE_STORAGE),
        ));
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
        obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
            .unwrap()
    }

    #[test]
    fn failure_before_rename_leaves_original_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        fs::write(&target, b"original bytes").unwrap();

        let result = write_file_with_hook(&small_file(), &target, &|_| {
            Err(io::Error::other("injected failure before rename"))
        });

        let err = result.unwrap_err();
        assert!(matches!(err, WriteError::Replace { .. }), "{err}");
        assert!(err.to_string().contains("image.dcm"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"original bytes");
        assert_eq!(file_count(dir.path()), 1, "no temporary file is left");
    }

    #[test]
    fn the_temporary_file_is_named_as_tagutil_s() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        let seen = std::cell::RefCell::new(PathBuf::new());
        write_file_with_hook(&small_file(), &target, &|temp| {
            *seen.borrow_mut() = temp.to_owned();
            Ok(())
        })
        .unwrap();
        let candidates = crate::scan_folder(dir.path()).unwrap();
        assert_eq!(candidates, vec![crate::Candidate::Dicom(target)]);
        assert!(
            crate::files::is_temp_file(&seen.borrow()),
            "{:?}",
            seen.borrow()
        );
    }

    #[test]
    fn successful_replace_keeps_permissions_and_preamble() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        let mut old = vec![7_u8; 128];
        old.extend_from_slice(b"DICM");
        fs::write(&target, &old).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();

        write_file_atomically(&small_file(), &target).unwrap();

        let written = fs::read(&target).unwrap();
        assert_eq!(&written[..132], &old[..]);
        assert!(written.len() > 132);
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(file_count(dir.path()), 1, "no temporary file is left");
    }
}
