//! What to retrieve: a level and the unique keys down to it.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dimse::{InformationModel, QueryLevel};
use serde::Serialize;

use crate::RetrieveError;

/// The entities a C-MOVE or C-GET asks for: one or more patients, studies, series or
/// instances, named by their unique keys (PS3.4 C.4.2.1.4: a retrieve identifier
/// carries the unique keys of its level and of every level above it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetrieveRequest {
    level: QueryLevel,
    patient_id: Option<String>,
    study_uids: Vec<String>,
    series_uids: Vec<String>,
    instance_uids: Vec<String>,
}

impl RetrieveRequest {
    /// Every study of one patient (Patient Root only).
    pub fn patient(patient_id: impl Into<String>) -> Self {
        RetrieveRequest {
            level: QueryLevel::Patient,
            patient_id: Some(patient_id.into()),
            study_uids: Vec::new(),
            series_uids: Vec::new(),
            instance_uids: Vec::new(),
        }
    }

    /// One study.
    pub fn study(study_uid: impl Into<String>) -> Self {
        Self::studies([study_uid.into()])
    }

    /// Several studies at once (a UID list, PS3.4 C.2.2.2.2).
    pub fn studies(study_uids: impl IntoIterator<Item = String>) -> Self {
        RetrieveRequest {
            level: QueryLevel::Study,
            patient_id: None,
            study_uids: study_uids.into_iter().collect(),
            series_uids: Vec::new(),
            instance_uids: Vec::new(),
        }
    }

    /// Series of one study.
    pub fn series(
        study_uid: impl Into<String>,
        series_uids: impl IntoIterator<Item = String>,
    ) -> Self {
        RetrieveRequest {
            level: QueryLevel::Series,
            patient_id: None,
            study_uids: vec![study_uid.into()],
            series_uids: series_uids.into_iter().collect(),
            instance_uids: Vec::new(),
        }
    }

    /// Instances of one series.
    pub fn instances(
        study_uid: impl Into<String>,
        series_uid: impl Into<String>,
        instance_uids: impl IntoIterator<Item = String>,
    ) -> Self {
        RetrieveRequest {
            level: QueryLevel::Image,
            patient_id: None,
            study_uids: vec![study_uid.into()],
            series_uids: vec![series_uid.into()],
            instance_uids: instance_uids.into_iter().collect(),
        }
    }

    /// The patient the entities belong to: needed by the Patient Root model below
    /// the patient level, ignored by Study Root.
    pub fn with_patient_id(mut self, patient_id: impl Into<String>) -> Self {
        self.patient_id = Some(patient_id.into());
        self
    }

    /// The level of the request.
    pub fn level(&self) -> QueryLevel {
        self.level
    }

    /// The studies named (empty at the patient level).
    pub fn study_uids(&self) -> &[String] {
        &self.study_uids
    }

    /// The instances named, at the image level: what may arrive and nothing else.
    pub fn instance_uids(&self) -> &[String] {
        &self.instance_uids
    }

    /// Whether `model` can express this request: Study Root has no patient level,
    /// and Patient Root needs the patient ID above every other level.
    pub fn fits(&self, model: InformationModel) -> bool {
        self.level.allowed_in(model)
            && (model != InformationModel::PatientRoot || self.patient_id.is_some())
    }

    /// Checks the keys: every level down to the request's has a key, UIDs are
    /// valid, a list names each entity once.
    ///
    /// # Errors
    /// [`RetrieveError::Request`] saying which key is wrong.
    pub fn validate(&self) -> Result<(), RetrieveError> {
        let bad = |reason: String| Err(RetrieveError::Request(reason));
        let lists: [(&str, &[String], bool); 3] = [
            (
                "StudyInstanceUID",
                &self.study_uids,
                self.level != QueryLevel::Patient,
            ),
            (
                "SeriesInstanceUID",
                &self.series_uids,
                matches!(self.level, QueryLevel::Series | QueryLevel::Image),
            ),
            (
                "SOPInstanceUID",
                &self.instance_uids,
                self.level == QueryLevel::Image,
            ),
        ];
        if self.level == QueryLevel::Patient
            && self
                .patient_id
                .as_deref()
                .is_none_or(|id| id.trim().is_empty())
        {
            return bad("a patient-level retrieve needs a PatientID".into());
        }
        for (name, uids, needed) in lists {
            if needed && uids.is_empty() {
                return bad(format!(
                    "a {} retrieve needs at least one {name}",
                    self.level
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for uid in uids {
                dimse::check_uid(uid).map_err(|e| {
                    RetrieveError::Request(format!("{name} {uid:?} is not a valid UID: {e}"))
                })?;
                if !seen.insert(uid.as_str()) {
                    return bad(format!("{name} {uid} is named twice"));
                }
            }
        }
        // Above the request's level the standard wants one entity (a single value).
        if matches!(self.level, QueryLevel::Series | QueryLevel::Image) && self.study_uids.len() > 1
        {
            return bad("a series or image retrieve names exactly one study".into());
        }
        if self.level == QueryLevel::Image && self.series_uids.len() > 1 {
            return bad("an image retrieve names exactly one series".into());
        }
        Ok(())
    }

    /// The identifier of the request under `model`: QueryRetrieveLevel and the
    /// unique keys (UID lists joined with `\`).
    ///
    /// # Errors
    /// [`RetrieveError::Request`] when the request is invalid or `model` cannot
    /// express it ([`fits`](Self::fits)).
    pub fn identifier(&self, model: InformationModel) -> Result<InMemDicomObject, RetrieveError> {
        self.validate()?;
        if !self.fits(model) {
            return Err(RetrieveError::Request(format!(
                "the {model} model cannot retrieve at the {} level{}",
                self.level,
                if self.level.allowed_in(model) {
                    " without a PatientID"
                } else {
                    ""
                }
            )));
        }
        let mut identifier = InMemDicomObject::new_empty();
        identifier.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(self.level.code()),
        ));
        if (model == InformationModel::PatientRoot || self.level == QueryLevel::Patient)
            && let Some(id) = &self.patient_id
        {
            identifier.put(DataElement::new(
                tags::PATIENT_ID,
                VR::LO,
                PrimitiveValue::from(id.as_str()),
            ));
        }
        for (tag, uids) in [
            (tags::STUDY_INSTANCE_UID, &self.study_uids),
            (tags::SERIES_INSTANCE_UID, &self.series_uids),
            (tags::SOP_INSTANCE_UID, &self.instance_uids),
        ] {
            if !uids.is_empty() {
                identifier.put(DataElement::new(
                    tag,
                    VR::UI,
                    PrimitiveValue::Strs(uids.iter().cloned().collect()),
                ));
            }
        }
        Ok(identifier)
    }
}

impl std::fmt::Display for RetrieveRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (one, many, keys) = match self.level {
            QueryLevel::Patient => (
                "patient",
                "patients",
                self.patient_id.iter().cloned().collect(),
            ),
            QueryLevel::Study => ("study", "studies", self.study_uids.clone()),
            QueryLevel::Series => ("series", "series", self.series_uids.clone()),
            _ => ("instance", "instances", self.instance_uids.clone()),
        };
        match keys.as_slice() {
            [key] => write!(f, "{one} {key}"),
            keys => write!(f, "{} {many}", keys.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(identifier: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
        identifier
            .get(tag)
            .map(|e| e.to_str().unwrap().trim_end_matches('\0').to_string())
    }

    #[test]
    fn a_study_identifier_carries_its_level_and_uid_and_nothing_else() {
        let identifier = RetrieveRequest::study("1.2.3")
            .identifier(InformationModel::StudyRoot)
            .unwrap();
        assert_eq!(
            text(&identifier, tags::QUERY_RETRIEVE_LEVEL).unwrap(),
            "STUDY"
        );
        assert_eq!(
            text(&identifier, tags::STUDY_INSTANCE_UID).unwrap(),
            "1.2.3"
        );
        assert_eq!(identifier.iter().count(), 2);
    }

    #[test]
    fn an_image_identifier_names_every_level_above_and_lists_its_instances() {
        let request = RetrieveRequest::instances(
            "1.2.3",
            "1.2.3.4",
            ["1.2.3.4.5".into(), "1.2.3.4.6".into()],
        )
        .with_patient_id("PAT-1");
        let identifier = request.identifier(InformationModel::PatientRoot).unwrap();
        assert_eq!(text(&identifier, tags::PATIENT_ID).unwrap(), "PAT-1");
        assert_eq!(
            text(&identifier, tags::SERIES_INSTANCE_UID).unwrap(),
            "1.2.3.4"
        );
        assert_eq!(
            text(&identifier, tags::SOP_INSTANCE_UID).unwrap(),
            "1.2.3.4.5\\1.2.3.4.6"
        );
        // Study Root leaves the patient out.
        let identifier = request.identifier(InformationModel::StudyRoot).unwrap();
        assert!(identifier.get(tags::PATIENT_ID).is_none());
    }

    #[test]
    fn what_a_model_cannot_express_is_refused_with_the_reason() {
        let error = RetrieveRequest::patient("PAT-1")
            .identifier(InformationModel::StudyRoot)
            .unwrap_err();
        assert!(error.to_string().contains("PATIENT level"), "{error}");
        let error = RetrieveRequest::study("1.2.3")
            .identifier(InformationModel::PatientRoot)
            .unwrap_err();
        assert!(error.to_string().contains("without a PatientID"), "{error}");
        assert!(!RetrieveRequest::study("1.2.3").fits(InformationModel::PatientRoot));
    }

    #[test]
    fn bad_keys_are_named() {
        let cases = [
            (RetrieveRequest::study("1.2.x"), "not a valid UID"),
            (
                RetrieveRequest::studies(Vec::new()),
                "at least one StudyInstanceUID",
            ),
            (
                RetrieveRequest::studies(["1.2".into(), "1.2".into()]),
                "named twice",
            ),
            (RetrieveRequest::patient(" "), "needs a PatientID"),
            (
                RetrieveRequest::series("1.2", Vec::new()),
                "SeriesInstanceUID",
            ),
        ];
        for (request, expected) in cases {
            let error = request.validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{error} should say {expected}");
        }
    }

    #[test]
    fn requests_describe_themselves() {
        assert_eq!(RetrieveRequest::study("1.2.3").to_string(), "study 1.2.3");
        assert_eq!(
            RetrieveRequest::studies(["1.2".into(), "1.3".into()]).to_string(),
            "2 studies"
        );
    }
}
