//! Sample DICOM files built in memory: two studies of one patient, with the identifying
//! attributes the Basic Profile acts on, a private block, an overlay, cross-file references, and
//! native, encapsulated and deflated encodings.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject};

pub const STUDY_A: &str = "1.2.826.0.1.3680043.10.1001.1";
pub const STUDY_B: &str = "1.2.826.0.1.3680043.10.1001.2";
pub const SERIES_A1: &str = "1.2.826.0.1.3680043.10.1001.1.1";
pub const SERIES_B1: &str = "1.2.826.0.1.3680043.10.1001.2.1";
pub const FRAME_OF_REFERENCE_A: &str = "1.2.826.0.1.3680043.10.1001.1.9";
pub const PRIVATE_CREATOR: Tag = Tag(0x0009, 0x0010);
pub const PRIVATE_VALUE: Tag = Tag(0x0009, 0x1001);

/// Which encoding a sample file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ExplicitLe,
    ImplicitLe,
    /// JPEG Baseline transfer syntax with made-up fragment bytes (never decoded).
    EncapsulatedJpeg,
    Deflated,
}

impl Encoding {
    pub fn transfer_syntax(self) -> &'static str {
        match self {
            Encoding::ExplicitLe => uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Encoding::ImplicitLe => uids::IMPLICIT_VR_LITTLE_ENDIAN,
            Encoding::EncapsulatedJpeg => uids::JPEG_BASELINE8_BIT,
            Encoding::Deflated => uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        }
    }
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

/// Fragment bytes of the encapsulated sample, to check they survive byte for byte.
pub const FRAGMENT: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5, 6, 7, 8, 0xFF, 0xD9];

/// A CT image of patient DOE^JANE with identifying attributes filled in.
pub fn ct_image(
    study: &str,
    series: &str,
    sop: &str,
    referenced_sop: Option<&str>,
    encoding: Encoding,
) -> DefaultDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    put_str(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
    put_str(
        &mut obj,
        tags::IMAGE_TYPE,
        VR::CS,
        "ORIGINAL\\PRIMARY\\AXIAL",
    );
    put_str(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::CT_IMAGE_STORAGE,
    );
    put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop);
    put_str(&mut obj, tags::STUDY_DATE, VR::DA, "20230405");
    put_str(&mut obj, tags::SERIES_DATE, VR::DA, "20230405");
    put_str(&mut obj, tags::CONTENT_DATE, VR::DA, "20230405");
    put_str(&mut obj, tags::ACQUISITION_DATE, VR::DA, "20230405");
    put_str(&mut obj, tags::STUDY_TIME, VR::TM, "101500");
    put_str(&mut obj, tags::SERIES_TIME, VR::TM, "101600");
    put_str(&mut obj, tags::CONTENT_TIME, VR::TM, "101700");
    put_str(&mut obj, tags::ACCESSION_NUMBER, VR::SH, "ACC12345");
    put_str(&mut obj, tags::MODALITY, VR::CS, "CT");
    put_str(
        &mut obj,
        tags::INSTITUTION_NAME,
        VR::LO,
        "SAINT EXAMPLE HOSPITAL",
    );
    put_str(
        &mut obj,
        tags::INSTITUTION_ADDRESS,
        VR::ST,
        "1 Example Road, Springfield",
    );
    put_str(
        &mut obj,
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        "HOUSE^GREGORY",
    );
    put_str(&mut obj, tags::STATION_NAME, VR::SH, "CT-ROOM-2");
    put_str(
        &mut obj,
        tags::STUDY_DESCRIPTION,
        VR::LO,
        "CT CHEST W CONTRAST",
    );
    put_str(&mut obj, tags::SERIES_DESCRIPTION, VR::LO, "AXIAL 5MM");
    put_str(&mut obj, tags::OPERATORS_NAME, VR::PN, "TECH^TOM");
    put_str(&mut obj, tags::PATIENT_NAME, VR::PN, "DOE^JANE");
    put_str(&mut obj, tags::PATIENT_ID, VR::LO, "MRN-0042");
    put_str(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, "19700101");
    put_str(&mut obj, tags::PATIENT_SEX, VR::CS, "F");
    put_str(&mut obj, tags::PATIENT_AGE, VR::AS, "053Y");
    put_str(&mut obj, tags::PATIENT_ADDRESS, VR::LO, "12 Elm Street");
    put_str(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "SN-998877");
    put_str(&mut obj, tags::PROTOCOL_NAME, VR::LO, "CHEST ROUTINE JANE");
    put_str(&mut obj, tags::STUDY_INSTANCE_UID, VR::UI, study);
    put_str(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, series);
    put_str(&mut obj, tags::STUDY_ID, VR::SH, "S77");
    put_str(&mut obj, tags::SERIES_NUMBER, VR::IS, "1");
    put_str(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    put_str(
        &mut obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        FRAME_OF_REFERENCE_A,
    );
    put_str(
        &mut obj,
        tags::PATIENT_COMMENTS,
        VR::LT,
        "Allergic to iodine; call Jane at home",
    );
    if let Some(referenced) = referenced_sop {
        let item = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from(uids::CT_IMAGE_STORAGE),
            ),
            DataElement::new(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from(referenced),
            ),
        ]);
        obj.put(DataElement::new(
            tags::REFERENCED_IMAGE_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![item], Length::UNDEFINED),
        ));
    }
    put_str(&mut obj, PRIVATE_CREATOR, VR::LO, "ACME PRIVATE");
    put_str(&mut obj, PRIVATE_VALUE, VR::LO, "JANE DOE SECRET");
    // One overlay plane, whose data the profile removes.
    obj.put(DataElement::new(
        Tag(0x6000, 0x0010),
        VR::US,
        PrimitiveValue::from(4_u16),
    ));
    obj.put(DataElement::new(
        Tag(0x6000, 0x0011),
        VR::US,
        PrimitiveValue::from(4_u16),
    ));
    obj.put(DataElement::new(
        Tag(0x6000, 0x0100),
        VR::US,
        PrimitiveValue::from(1_u16),
    ));
    obj.put(DataElement::new(
        Tag(0x6000, 0x3000),
        VR::OW,
        PrimitiveValue::U16([0xFFFF].into_iter().collect()),
    ));
    obj.put(DataElement::new(
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1_u16),
    ));
    put_str(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    obj.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(4_u16),
    ));
    obj.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(4_u16),
    ));
    let (bits_allocated, bits_stored) = match encoding {
        Encoding::EncapsulatedJpeg => (8_u16, 8_u16),
        _ => (16, 12),
    };
    for (tag, value) in [
        (tags::BITS_ALLOCATED, bits_allocated),
        (tags::BITS_STORED, bits_stored),
        (tags::HIGH_BIT, bits_stored - 1),
        (tags::PIXEL_REPRESENTATION, 0),
    ] {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    if encoding == Encoding::EncapsulatedJpeg {
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(vec![0_u32], vec![FRAGMENT.to_vec()]),
        ));
    } else {
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16((0..16_u16).map(|v| v * 100).collect()),
        ));
    }
    obj.with_meta(FileMetaTableBuilder::new().transfer_syntax(encoding.transfer_syntax()))
        .expect("sample meta builds")
}

/// A text file long enough to be judged by its missing DICM magic, not its size.
pub const README: &str = "Sample set notes: three CT images in two studies of one patient, \
    generated for tagutil's tests. Not a DICOM file; tagutil must skip it and say why.\n";

/// A folder with three DICOM files in two studies (one per encoding family, in subfolders,
/// without extensions), a text file and a too-short file. Returns the DICOM paths by name.
pub fn sample_folder(root: &Path) -> BTreeMap<&'static str, PathBuf> {
    let files = [
        (
            "study_a/series_1/IM0001",
            ct_image(
                STUDY_A,
                SERIES_A1,
                "1.2.826.0.1.3680043.10.1001.1.1.1",
                None,
                Encoding::ExplicitLe,
            ),
        ),
        (
            "study_a/series_1/IM0002.dcm",
            ct_image(
                STUDY_A,
                SERIES_A1,
                "1.2.826.0.1.3680043.10.1001.1.1.2",
                Some("1.2.826.0.1.3680043.10.1001.1.1.1"),
                Encoding::EncapsulatedJpeg,
            ),
        ),
        (
            "study_b/IM0001",
            ct_image(
                STUDY_B,
                SERIES_B1,
                "1.2.826.0.1.3680043.10.1001.2.1.1",
                None,
                Encoding::ImplicitLe,
            ),
        ),
    ];
    let mut paths = BTreeMap::new();
    for (name, file) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        file.write_to_file(&path).unwrap();
        paths.insert(name, path);
    }
    std::fs::write(root.join("README.txt"), README).unwrap();
    std::fs::write(root.join("study_b/empty.dcm"), b"").unwrap();
    paths
}

/// Every file under `root` with its bytes, to prove nothing changed.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Names of tagutil temporary files anywhere under `root`.
pub fn temp_files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tagutil-"))
        .map(|e| e.path().to_owned())
        .collect()
}

pub fn text(file: &InMemDicomObject, tag: Tag) -> Option<String> {
    file.get(tag).map(|e| {
        e.value()
            .to_str()
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_default()
    })
}

/// The three sample files after a run that renamed UIDs: study A's two images share study,
/// series and frame of reference; study B differs; nothing keeps an original UID; IM0002's
/// reference to IM0001 follows the rename; the meta table follows SOPInstanceUID.
pub fn assert_uids_renamed_consistently(
    a1: &DefaultDicomObject,
    a2: &DefaultDicomObject,
    b1: &DefaultDicomObject,
) {
    let study_a = text(a1, tags::STUDY_INSTANCE_UID).unwrap();
    assert!(study_a.starts_with("2.25."), "{study_a}");
    assert_ne!(study_a, STUDY_A);
    assert_eq!(text(a2, tags::STUDY_INSTANCE_UID).unwrap(), study_a);
    assert_eq!(
        text(a2, tags::SERIES_INSTANCE_UID),
        text(a1, tags::SERIES_INSTANCE_UID)
    );
    assert_ne!(text(a1, tags::SERIES_INSTANCE_UID).unwrap(), SERIES_A1);
    assert_eq!(
        text(a2, tags::FRAME_OF_REFERENCE_UID),
        text(a1, tags::FRAME_OF_REFERENCE_UID)
    );
    assert_ne!(
        text(a1, tags::FRAME_OF_REFERENCE_UID).unwrap(),
        FRAME_OF_REFERENCE_A
    );
    assert_ne!(text(b1, tags::STUDY_INSTANCE_UID).unwrap(), study_a);
    assert_ne!(text(b1, tags::STUDY_INSTANCE_UID).unwrap(), STUDY_B);
    assert_ne!(
        text(a1, tags::SOP_INSTANCE_UID),
        text(a2, tags::SOP_INSTANCE_UID)
    );

    let reference = a2
        .get(tags::REFERENCED_IMAGE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0]
        .clone();
    assert_eq!(
        text(&reference, tags::REFERENCED_SOP_INSTANCE_UID),
        text(a1, tags::SOP_INSTANCE_UID)
    );
    for file in [a1, a2, b1] {
        assert_eq!(
            file.meta().media_storage_sop_instance_uid(),
            text(file, tags::SOP_INSTANCE_UID).unwrap()
        );
    }
}
