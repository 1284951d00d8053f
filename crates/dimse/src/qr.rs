//! The Query/Retrieve vocabulary both sides speak (PS3.4 Annex C): information
//! models, query levels, and the attributes that belong to each level.
//!
//! The C-FIND client (`cfind`) builds its identifiers from these tables and the
//! simulator's C-FIND SCP indexes its store by them, so the two agree on what a level
//! is; how each side matches and answers stays its own.

use std::fmt;

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use serde::Serialize;

/// The Query/Retrieve information model a C-FIND runs under: the SOP class of its
/// presentation context.
///
/// Both models reach the same studies; they differ in the hierarchy above the study.
/// Peers support one or both, so the client proposes them in a preference order and
/// falls back to the next when the peer refuses one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InformationModel {
    /// Study Root Query/Retrieve Information Model - FIND (`1.2.840.10008.5.1.4.1.2.2.1`).
    StudyRoot,
    /// Patient Root Query/Retrieve Information Model - FIND (`1.2.840.10008.5.1.4.1.2.1.1`).
    PatientRoot,
}

impl InformationModel {
    /// The order tried when nothing else is configured: Study Root, then Patient Root.
    pub const DEFAULT_PREFERENCE: [InformationModel; 2] =
        [InformationModel::StudyRoot, InformationModel::PatientRoot];

    /// The SOP class UID of the model's FIND service.
    pub fn sop_class_uid(self) -> &'static str {
        match self {
            InformationModel::StudyRoot => uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
            InformationModel::PatientRoot => {
                uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND
            }
        }
    }

    /// The model whose FIND SOP class is `uid`, if any.
    pub fn from_sop_class_uid(uid: &str) -> Option<Self> {
        let uid = crate::trim_value(uid);
        [InformationModel::StudyRoot, InformationModel::PatientRoot]
            .into_iter()
            .find(|model| model.sop_class_uid() == uid)
    }

    /// A short name: `Study Root` or `Patient Root`.
    pub fn name(self) -> &'static str {
        match self {
            InformationModel::StudyRoot => "Study Root",
            InformationModel::PatientRoot => "Patient Root",
        }
    }
}

/// The services of a Query/Retrieve information model, each its own SOP class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QrService {
    /// C-FIND: query.
    Find,
    /// C-MOVE: the SCP stores the matches to a third AE title.
    Move,
    /// C-GET: the SCP sends the matches back on the requesting association.
    Get,
}

impl QrService {
    /// The DIMSE operation's name: `C-FIND`, `C-MOVE` or `C-GET`.
    pub fn name(self) -> &'static str {
        match self {
            QrService::Find => "C-FIND",
            QrService::Move => "C-MOVE",
            QrService::Get => "C-GET",
        }
    }
}

impl fmt::Display for QrService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl InformationModel {
    /// The SOP class UID of the model's `service`.
    pub fn service_sop_class_uid(self, service: QrService) -> &'static str {
        match (self, service) {
            (model, QrService::Find) => model.sop_class_uid(),
            (InformationModel::StudyRoot, QrService::Move) => {
                uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE
            }
            (InformationModel::PatientRoot, QrService::Move) => {
                uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE
            }
            (InformationModel::StudyRoot, QrService::Get) => {
                uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET
            }
            (InformationModel::PatientRoot, QrService::Get) => {
                uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET
            }
        }
    }

    /// The model and service whose SOP class is `uid` (padding ignored), if any.
    pub fn service_of(uid: &str) -> Option<(InformationModel, QrService)> {
        let uid = crate::trim_value(uid);
        Self::DEFAULT_PREFERENCE.into_iter().find_map(|model| {
            [QrService::Find, QrService::Move, QrService::Get]
                .into_iter()
                .find(|&service| model.service_sop_class_uid(service) == uid)
                .map(|service| (model, service))
        })
    }
}

impl fmt::Display for InformationModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The level of a query: which entity each match describes (QueryRetrieveLevel,
/// (0008,0052)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QueryLevel {
    /// One match per patient (Patient Root only).
    Patient,
    /// One match per study.
    Study,
    /// One match per series.
    Series,
    /// One match per SOP instance (the standard calls the level `IMAGE`).
    Image,
}

impl QueryLevel {
    /// The value of QueryRetrieveLevel.
    pub fn code(self) -> &'static str {
        match self {
            QueryLevel::Patient => "PATIENT",
            QueryLevel::Study => "STUDY",
            QueryLevel::Series => "SERIES",
            QueryLevel::Image => "IMAGE",
        }
    }
}

impl QueryLevel {
    /// The level whose QueryRetrieveLevel value is `code` (padding ignored).
    pub fn from_code(code: &str) -> Option<Self> {
        match crate::trim_value(code) {
            "PATIENT" => Some(QueryLevel::Patient),
            "STUDY" => Some(QueryLevel::Study),
            "SERIES" => Some(QueryLevel::Series),
            "IMAGE" => Some(QueryLevel::Image),
            _ => None,
        }
    }

    /// The unique key of the level (PS3.4 C.6): PatientID, StudyInstanceUID,
    /// SeriesInstanceUID or SOPInstanceUID.
    pub fn unique_key(self) -> Tag {
        match self {
            QueryLevel::Patient => tags::PATIENT_ID,
            QueryLevel::Study => tags::STUDY_INSTANCE_UID,
            QueryLevel::Series => tags::SERIES_INSTANCE_UID,
            QueryLevel::Image => tags::SOP_INSTANCE_UID,
        }
    }

    /// The attributes that belong to the level: what an SCP keeps per entity of the
    /// level and what a client asks back by default.
    pub fn attributes(self) -> &'static [Tag] {
        match self {
            QueryLevel::Patient => PATIENT_ATTRIBUTES,
            QueryLevel::Study => STUDY_ATTRIBUTES,
            QueryLevel::Series => SERIES_ATTRIBUTES,
            QueryLevel::Image => INSTANCE_ATTRIBUTES,
        }
    }

    /// Whether `model` allows queries at this level (PATIENT needs Patient Root).
    pub fn allowed_in(self, model: InformationModel) -> bool {
        self != QueryLevel::Patient || model == InformationModel::PatientRoot
    }
}

/// Patient-level attributes (PS3.4 C.6.1.1.2, the ones routing and verification use).
pub const PATIENT_ATTRIBUTES: &[Tag] = &[
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::ISSUER_OF_PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
];

/// Study-level attributes (PS3.4 C.6.1.1.3).
pub const STUDY_ATTRIBUTES: &[Tag] = &[
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::ACCESSION_NUMBER,
    tags::STUDY_ID,
    tags::STUDY_DESCRIPTION,
    tags::REFERRING_PHYSICIAN_NAME,
];

/// Series-level attributes (PS3.4 C.6.1.1.4).
pub const SERIES_ATTRIBUTES: &[Tag] = &[
    tags::SERIES_INSTANCE_UID,
    tags::MODALITY,
    tags::SERIES_NUMBER,
    tags::SERIES_DESCRIPTION,
    tags::SERIES_DATE,
    tags::SERIES_TIME,
    tags::BODY_PART_EXAMINED,
    tags::LATERALITY,
    tags::INSTITUTIONAL_DEPARTMENT_NAME,
    tags::STATION_NAME,
];

/// Instance-level attributes (PS3.4 C.6.1.1.5).
pub const INSTANCE_ATTRIBUTES: &[Tag] = &[
    tags::SOP_INSTANCE_UID,
    tags::SOP_CLASS_UID,
    tags::INSTANCE_NUMBER,
];

/// The counts an SCP computes for a study query (PS3.4 C.6.1.1.3, optional keys).
pub const STUDY_COUNT_ATTRIBUTES: &[Tag] = &[
    tags::MODALITIES_IN_STUDY,
    tags::NUMBER_OF_STUDY_RELATED_SERIES,
    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
];

/// The count an SCP computes for a series query.
pub const SERIES_COUNT_ATTRIBUTES: &[Tag] = &[tags::NUMBER_OF_SERIES_RELATED_INSTANCES];

impl fmt::Display for QueryLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sop_class_uids_round_trip_even_with_padding() {
        for model in InformationModel::DEFAULT_PREFERENCE {
            let padded = format!("{}\0", model.sop_class_uid());
            assert_eq!(InformationModel::from_sop_class_uid(&padded), Some(model));
        }
        assert_eq!(InformationModel::from_sop_class_uid("1.2.3"), None);
    }

    #[test]
    fn every_service_of_every_model_has_its_own_sop_class() {
        let mut seen = std::collections::HashSet::new();
        for model in InformationModel::DEFAULT_PREFERENCE {
            for service in [QrService::Find, QrService::Move, QrService::Get] {
                let uid = model.service_sop_class_uid(service);
                assert!(seen.insert(uid), "{uid} used twice");
                assert_eq!(
                    InformationModel::service_of(&format!("{uid}\0")),
                    Some((model, service))
                );
            }
        }
        assert_eq!(
            InformationModel::service_of(uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET),
            Some((InformationModel::StudyRoot, QrService::Get))
        );
        assert_eq!(InformationModel::service_of(uids::CT_IMAGE_STORAGE), None);
    }

    #[test]
    fn level_codes_round_trip_and_patient_needs_patient_root() {
        for level in [
            QueryLevel::Patient,
            QueryLevel::Study,
            QueryLevel::Series,
            QueryLevel::Image,
        ] {
            assert_eq!(
                QueryLevel::from_code(&format!("{} ", level.code())),
                Some(level)
            );
            assert!(level.attributes().contains(&level.unique_key()));
        }
        assert!(!QueryLevel::Patient.allowed_in(InformationModel::StudyRoot));
        assert!(QueryLevel::Patient.allowed_in(InformationModel::PatientRoot));
    }
}
