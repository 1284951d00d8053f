//! Query/Retrieve information models and query levels (PS3.4 Annex C).

use std::fmt;

use dicom_dictionary_std::uids;
use serde::Serialize;

/// The Query/Retrieve information model a C-FIND runs under: the SOP class of its
/// presentation context.
///
/// Both models reach the same studies; they differ in the hierarchy above the study.
/// Peers support one or both, so the client proposes them in a preference order and
/// falls back to the next when the peer refuses one (see [`crate::CFindClient`]).
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
        let uid = uid.trim_end_matches(['\0', ' ']);
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
            QueryLevel::Study => "STUDY",
            QueryLevel::Series => "SERIES",
            QueryLevel::Image => "IMAGE",
        }
    }
}

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
}
