//! The spool: each stored instance written to a folder as a DICOM file, so that a
//! simulator in load mode (or a long full-mode run) keeps memory bounded and can
//! still answer C-MOVE and C-GET with the instances themselves.
//!
//! Files are written atomically (a temporary name, then a rename) under names of
//! their own (`<n>.dcm`, a counter): never a name made from a UID the sender chose.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

/// The folder the stored instances are written to.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    next: AtomicU64,
}

impl Spool {
    /// Creates the folder (and its parents) when missing.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Spool> {
        fs::create_dir_all(dir)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            next: AtomicU64::new(0),
        })
    }

    /// Writes `obj` as a DICOM file in `transfer_syntax_uid` (the syntax it arrived
    /// in) and returns its path. Errors are what to tell the sender.
    pub(crate) fn write(
        &self,
        obj: &InMemDicomObject,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax_uid: &str,
    ) -> Result<Arc<Path>, String> {
        let ts = TransferSyntaxRegistry
            .get(transfer_syntax_uid)
            .ok_or_else(|| format!("unknown transfer syntax {transfer_syntax_uid}"))?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // The process ID keeps two simulators sharing a folder apart.
        let name = format!("{}-{n:012}", std::process::id());
        let path = self.dir.join(format!("{name}.dcm"));
        let temp = self.dir.join(format!(".{name}.tmp"));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(transfer_syntax_uid)
            .media_storage_sop_class_uid(sop_class_uid)
            .media_storage_sop_instance_uid(sop_instance_uid)
            .build()
            .map_err(|e| format!("cannot build the file meta information: {e}"))?;
        let written = (|| -> Result<(), String> {
            let file = fs::File::create(&temp).map_err(|e| e.to_string())?;
            let mut out = BufWriter::with_capacity(64 * 1024, file);
            out.write_all(&[0u8; 128]).map_err(|e| e.to_string())?;
            out.write_all(b"DICM").map_err(|e| e.to_string())?;
            meta.write(&mut out).map_err(|e| e.to_string())?;
            obj.write_dataset_with_ts(&mut out, ts)
                .map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
            fs::rename(&temp, &path).map_err(|e| e.to_string())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(format!(
                "cannot write to the spool {}: {e}",
                self.dir.display()
            ));
        }
        Ok(Arc::from(path.as_path()))
    }
}

/// Reads a spooled instance back (the data set, without its file meta group).
pub(crate) fn read(path: &Path) -> Result<InMemDicomObject, String> {
    OpenFileOptions::new()
        .open_file(path)
        .map(|file| file.into_inner())
        .map_err(|e| format!("cannot read the spooled {}: {e}", path.display()))
}

/// A spooled instance's data set as it lies in the file, without parsing it: the
/// file's bytes and where the data set starts (after the preamble and the file meta
/// group, which the spool writes with its group length). `Ok(None)` when the file
/// is not laid out so: parse it with [`read`] instead.
pub(crate) fn read_raw(path: &Path) -> Result<Option<(Vec<u8>, usize)>, String> {
    let bytes =
        fs::read(path).map_err(|e| format!("cannot read the spooled {}: {e}", path.display()))?;
    Ok(data_set_start(&bytes).map(|start| (bytes, start)))
}

/// Where the data set starts in a DICOM file's bytes whose meta group opens with
/// its group length (0002,0000) UL in Explicit VR Little Endian.
fn data_set_start(bytes: &[u8]) -> Option<usize> {
    const PREAMBLE: usize = 128;
    const GROUP_LENGTH: [u8; 8] = [0x02, 0x00, 0x00, 0x00, b'U', b'L', 0x04, 0x00];
    let header = bytes.get(PREAMBLE..PREAMBLE + 16)?;
    if &header[..4] != b"DICM" || header[4..12] != GROUP_LENGTH {
        return None;
    }
    let group_length = u32::from_le_bytes([header[12], header[13], header[14], header[15]]);
    let start = (PREAMBLE + 16).checked_add(usize::try_from(group_length).ok()?)?;
    // What follows must not be more of the meta group (a wrong group length).
    match bytes.get(start..start + 2) {
        Some(group) if group != [0x02, 0x00] => Some(start),
        None if start == bytes.len() => Some(start),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::VR;
    use dicom_dictionary_std::{tags, uids};

    #[test]
    fn a_spooled_instance_reads_back_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(&dir.path().join("spool")).unwrap();
        let mut obj = InMemDicomObject::new_empty();
        obj.put_str(
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
        );
        obj.put_str(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4");
        obj.put_str(tags::PATIENT_ID, VR::LO, "P1");
        let path = spool
            .write(
                &obj,
                uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
                "1.2.3.4",
                uids::IMPLICIT_VR_LITTLE_ENDIAN,
            )
            .unwrap();
        let back = read(&path).unwrap();
        assert_eq!(
            back.element(tags::PATIENT_ID).unwrap().to_str().unwrap(),
            "P1"
        );
        let names: Vec<_> = fs::read_dir(dir.path().join("spool"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].ends_with(".dcm"), "{names:?}");
    }

    #[test]
    fn the_raw_data_set_is_what_encoding_the_parsed_one_gives() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let mut obj = InMemDicomObject::new_empty();
        obj.put_str(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE);
        obj.put_str(tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5");
        obj.put_str(tags::PATIENT_NAME, VR::PN, "RAW^READ");
        obj.put(dicom_core::DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            dicom_core::PrimitiveValue::from(vec![7u8; 1000]),
        ));
        for ts_uid in [
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            uids::IMPLICIT_VR_LITTLE_ENDIAN,
        ] {
            let path = spool
                .write(&obj, uids::CT_IMAGE_STORAGE, "1.2.3.4.5", ts_uid)
                .unwrap();
            let (bytes, start) = read_raw(&path).unwrap().expect("the spool's own layout");
            let ts = TransferSyntaxRegistry.get(ts_uid).unwrap();
            let mut encoded = Vec::new();
            read(&path)
                .unwrap()
                .write_dataset_with_ts(&mut encoded, ts)
                .unwrap();
            assert_eq!(&bytes[start..], &encoded[..], "{ts_uid}");
        }
    }

    #[test]
    fn a_file_of_another_layout_is_left_to_the_parser() {
        assert_eq!(data_set_start(b"short"), None);
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0]);
        bytes.extend_from_slice(&[0; 8]);
        assert_eq!(data_set_start(&bytes), None);
        // A group length that stops inside the meta group.
        let mut bytes = vec![0u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 0x04, 0x00, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0x02, 0x00, 0x01, 0x00]);
        assert_eq!(data_set_start(&bytes), None);
    }
}
