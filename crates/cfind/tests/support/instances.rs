//! The synthetic archive's studies as DICOM instances, to store into real peers
//! (DCMTK's dcmqrscp, the simulator).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

use simulator::{Simulator, SimulatorConfig, SimulatorHandle};

use super::archive::ArchiveStudy;

/// The simulator route the tests store through (its morphing sets
/// InstitutionalDepartmentName to `Ophthalmology`).
pub const ROUTE: &str = "LB-HTM-OPH";
/// The simulator's query-only AE title (C-ECHO and C-FIND).
pub const QUERY_AE: &str = "LB-QUERY";

/// One Secondary Capture instance per archive instance, with the study's and series'
/// attributes and a few bytes of pixel data.
pub fn instances(study: &ArchiveStudy) -> Vec<InMemDicomObject> {
    let mut out = Vec::new();
    for series in &study.series {
        for instance in &series.instances {
            let mut obj = InMemDicomObject::new_empty();
            let mut put = |tag, vr, value: &str| {
                obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
            };
            put(tags::SOP_CLASS_UID, VR::UI, &instance.sop_class_uid);
            put(tags::SOP_INSTANCE_UID, VR::UI, &instance.sop_instance_uid);
            put(tags::STUDY_INSTANCE_UID, VR::UI, &study.study_instance_uid);
            put(
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                &series.series_instance_uid,
            );
            put(tags::PATIENT_ID, VR::LO, &study.patient_id);
            put(tags::PATIENT_NAME, VR::PN, &study.patient_name);
            put(tags::STUDY_DATE, VR::DA, &study.study_date);
            put(tags::STUDY_TIME, VR::TM, &study.study_time);
            put(tags::ACCESSION_NUMBER, VR::SH, &study.accession_number);
            put(tags::STUDY_DESCRIPTION, VR::LO, &study.study_description);
            put(
                tags::REFERRING_PHYSICIAN_NAME,
                VR::PN,
                &study.referring_physician_name,
            );
            put(tags::STUDY_ID, VR::SH, "1");
            put(tags::MODALITY, VR::CS, &series.modality);
            put(
                tags::SERIES_NUMBER,
                VR::IS,
                &series.series_number.to_string(),
            );
            put(tags::SERIES_DESCRIPTION, VR::LO, &series.series_description);
            put(
                tags::INSTANCE_NUMBER,
                VR::IS,
                &instance.instance_number.to_string(),
            );
            obj.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                PrimitiveValue::from(vec![0_u8; 64]),
            ));
            out.push(obj);
        }
    }
    out
}

fn sop_instance_uid(obj: &InMemDicomObject) -> String {
    obj.get(tags::SOP_INSTANCE_UID)
        .and_then(|e| e.to_str().ok())
        .expect("every synthetic instance has a SOPInstanceUID")
        .to_string()
}

/// The data set alone, in Explicit VR Little Endian (what a C-STORE carries).
pub fn encode(obj: &InMemDicomObject) -> Vec<u8> {
    let mut bytes = Vec::new();
    obj.write_dataset_with_ts(&mut bytes, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("encode a synthetic instance");
    bytes
}

/// Writes every instance of `studies` as a DICOM file under `dir`; returns the paths.
pub fn write_files(studies: &[ArchiveStudy], dir: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for study in studies {
        for obj in instances(study) {
            let sop = sop_instance_uid(&obj);
            let file = obj
                .with_meta(
                    FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
                )
                .expect("file meta");
            let path = dir.join(format!("{sop}.dcm"));
            file.write_to_file(&path).expect("write a test file");
            paths.push(path);
        }
    }
    paths
}

/// A simulator (default rules, on 127.0.0.1 with a free port) holding `studies`,
/// stored through [`ROUTE`].
pub fn simulator_holding(studies: &[ArchiveStudy]) -> SimulatorHandle {
    let simulator = Simulator::start(SimulatorConfig::default()).expect("start a simulator");
    store_into_simulator(simulator.addr(), ROUTE, studies);
    simulator
}

/// Stores every instance of `studies` into a simulator through route `called_ae_title`,
/// on one association (the archive's instances are all Secondary Capture); panics on
/// any status but success.
pub fn store_into_simulator(
    addr: std::net::SocketAddr,
    called_ae_title: &str,
    studies: &[ArchiveStudy],
) {
    use simulator::scu::{ScuOptions, StoreScu};
    let options = ScuOptions {
        calling_ae_title: "CFIND-TEST".into(),
        called_ae_title: called_ae_title.into(),
        ..ScuOptions::default()
    };
    let contexts = [(
        uids::SECONDARY_CAPTURE_IMAGE_STORAGE.to_string(),
        vec![uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string()],
    )];
    let peer = dimse::PeerAddress::new(addr.ip().to_string(), addr.port());
    let mut scu = StoreScu::connect(&peer, &options, &contexts).expect("associate");
    let (context, _) = scu
        .context_for(
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            |_| false,
        )
        .expect("an accepted context");
    for study in studies {
        for obj in instances(study) {
            let sop = sop_instance_uid(&obj);
            let response = scu
                .store(
                    context,
                    uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
                    &sop,
                    &encode(&obj),
                )
                .expect("C-STORE");
            assert_eq!(response.status, dimse::Status::SUCCESS, "{response:?}");
        }
    }
    scu.release().expect("release");
}
