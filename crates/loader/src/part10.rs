//! A DICOM file (PS3.10) from a data set that arrived over the network: preamble,
//! `DICM`, the file meta information, then the data set as it came.

use dicom_object::meta::FileMetaTableBuilder;

/// The bytes of a DICOM file holding `data_set`, encoded in `transfer_syntax`, of
/// the SOP class and instance a C-STORE named. The data set is copied as it is, not
/// re-encoded: the file is what the peer sent.
///
/// # Errors
/// A UID the file meta information cannot hold (empty, too long), as text.
///
/// ```
/// let bytes = loader::part10_bytes("1.2.840.10008.5.1.4.1.1.7", "1.2.3", "1.2.840.10008.1.2.1", &[])?;
/// assert_eq!(&bytes[128..132], b"DICM");
/// # Ok::<(), String>(())
/// ```
pub fn part10_bytes(
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax: &str,
    data_set: &[u8],
) -> Result<Vec<u8>, String> {
    for (name, uid) in [
        ("SOP Class UID", sop_class_uid),
        ("SOP Instance UID", sop_instance_uid),
        ("transfer syntax UID", transfer_syntax),
    ] {
        if dimse_trim(uid).is_empty() {
            return Err(format!("a DICOM file needs a {name}; none was given"));
        }
    }
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(dimse_trim(sop_class_uid))
        .media_storage_sop_instance_uid(dimse_trim(sop_instance_uid))
        .transfer_syntax(dimse_trim(transfer_syntax))
        .build()
        .map_err(|e| format!("cannot build the file meta information: {e}"))?;
    let mut bytes = Vec::with_capacity(data_set.len() + 512);
    bytes.extend_from_slice(&[0u8; crate::MAGIC_OFFSET]);
    bytes.extend_from_slice(crate::MAGIC);
    meta.write(&mut bytes)
        .map_err(|e| format!("cannot write the file meta information: {e}"))?;
    bytes.extend_from_slice(data_set);
    Ok(bytes)
}

fn dimse_trim(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' ']).trim_start()
}

#[cfg(test)]
mod tests {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::InMemDicomObject;
    use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

    use super::*;

    #[test]
    fn the_file_reads_back_with_its_meta_and_data_set() {
        let mut object = InMemDicomObject::new_empty();
        object.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("Doe^Jane"),
        ));
        let mut data = Vec::new();
        object
            .write_dataset_with_ts(&mut data, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
            .unwrap();
        let bytes = part10_bytes(
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
            "1.2.3.4\0",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            &data,
        )
        .unwrap();
        let file = dicom_object::OpenFileOptions::new()
            .from_reader(&bytes[128..])
            .unwrap();
        assert_eq!(file.meta().media_storage_sop_instance_uid(), "1.2.3.4");
        assert_eq!(
            file.element(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
            "Doe^Jane"
        );
        assert!(part10_bytes("", "", "", &data).is_err());
    }
}
