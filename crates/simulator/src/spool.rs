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
}
