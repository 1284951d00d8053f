//! What came back: typed matches and the outcome of a whole query.

use std::time::Duration;

use dicom_dictionary_std::tags;
use dimse::Status;
use serde::Serialize;

use crate::identifier::Identifier;
use dimse::qr::InformationModel;

/// A match type: built from the identifier of one pending C-FIND response.
pub trait Match: Sized {
    /// Reads the typed fields from `identifier` and keeps it whole.
    fn from_identifier(identifier: Identifier) -> Self;

    /// Every key the SCP returned.
    fn identifier(&self) -> &Identifier;
}

fn text(identifier: &Identifier, tag: dicom_core::Tag) -> Option<String> {
    identifier.non_empty(tag).map(str::to_string)
}

fn count(identifier: &Identifier, tag: dicom_core::Tag) -> Option<u32> {
    identifier.non_empty(tag)?.trim().parse().ok()
}

/// One study as the SCP describes it.
///
/// Typed fields are `None` when the SCP did not return the key or returned it empty;
/// [`StudyResult::identifier`] holds every key exactly as returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StudyResult {
    /// StudyInstanceUID (empty only if a broken SCP left it out).
    pub study_instance_uid: String,
    /// PatientName.
    pub patient_name: Option<String>,
    /// PatientID.
    pub patient_id: Option<String>,
    /// StudyDate (`YYYYMMDD`).
    pub study_date: Option<String>,
    /// StudyTime.
    pub study_time: Option<String>,
    /// StudyDescription.
    pub study_description: Option<String>,
    /// AccessionNumber.
    pub accession_number: Option<String>,
    /// ModalitiesInStudy, one entry per value.
    pub modalities_in_study: Vec<String>,
    /// ReferringPhysicianName.
    pub referring_physician_name: Option<String>,
    /// NumberOfStudyRelatedSeries.
    pub number_of_study_related_series: Option<u32>,
    /// NumberOfStudyRelatedInstances: `None` when the SCP does not report it
    /// (DCMTK's dcmqrscp never does).
    pub number_of_study_related_instances: Option<u32>,
    /// Every returned key.
    pub identifier: Identifier,
}

impl Match for StudyResult {
    fn from_identifier(identifier: Identifier) -> Self {
        StudyResult {
            study_instance_uid: text(&identifier, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
            patient_name: text(&identifier, tags::PATIENT_NAME),
            patient_id: text(&identifier, tags::PATIENT_ID),
            study_date: text(&identifier, tags::STUDY_DATE),
            study_time: text(&identifier, tags::STUDY_TIME),
            study_description: text(&identifier, tags::STUDY_DESCRIPTION),
            accession_number: text(&identifier, tags::ACCESSION_NUMBER),
            modalities_in_study: identifier
                .non_empty(tags::MODALITIES_IN_STUDY)
                .map(|v| v.split('\\').map(str::to_string).collect())
                .unwrap_or_default(),
            referring_physician_name: text(&identifier, tags::REFERRING_PHYSICIAN_NAME),
            number_of_study_related_series: count(
                &identifier,
                tags::NUMBER_OF_STUDY_RELATED_SERIES,
            ),
            number_of_study_related_instances: count(
                &identifier,
                tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
            ),
            identifier,
        }
    }

    fn identifier(&self) -> &Identifier {
        &self.identifier
    }
}

/// One series as the SCP describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SeriesResult {
    /// StudyInstanceUID of the study the series belongs to.
    pub study_instance_uid: String,
    /// SeriesInstanceUID.
    pub series_instance_uid: String,
    /// Modality.
    pub modality: Option<String>,
    /// SeriesNumber.
    pub series_number: Option<String>,
    /// SeriesDescription.
    pub series_description: Option<String>,
    /// NumberOfSeriesRelatedInstances, when reported.
    pub number_of_series_related_instances: Option<u32>,
    /// Every returned key.
    pub identifier: Identifier,
}

impl Match for SeriesResult {
    fn from_identifier(identifier: Identifier) -> Self {
        SeriesResult {
            study_instance_uid: text(&identifier, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
            series_instance_uid: text(&identifier, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
            modality: text(&identifier, tags::MODALITY),
            series_number: text(&identifier, tags::SERIES_NUMBER),
            series_description: text(&identifier, tags::SERIES_DESCRIPTION),
            number_of_series_related_instances: count(
                &identifier,
                tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
            ),
            identifier,
        }
    }

    fn identifier(&self) -> &Identifier {
        &self.identifier
    }
}

/// One SOP instance as the SCP describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InstanceResult {
    /// StudyInstanceUID.
    pub study_instance_uid: String,
    /// SeriesInstanceUID.
    pub series_instance_uid: String,
    /// SOPInstanceUID.
    pub sop_instance_uid: String,
    /// SOPClassUID.
    pub sop_class_uid: Option<String>,
    /// InstanceNumber.
    pub instance_number: Option<String>,
    /// Every returned key.
    pub identifier: Identifier,
}

impl Match for InstanceResult {
    fn from_identifier(identifier: Identifier) -> Self {
        InstanceResult {
            study_instance_uid: text(&identifier, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
            series_instance_uid: text(&identifier, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
            sop_instance_uid: text(&identifier, tags::SOP_INSTANCE_UID).unwrap_or_default(),
            sop_class_uid: text(&identifier, tags::SOP_CLASS_UID),
            instance_number: text(&identifier, tags::INSTANCE_NUMBER),
            identifier,
        }
    }

    fn identifier(&self) -> &Identifier {
        &self.identifier
    }
}

/// Why the client did not use a model it preferred.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelFallback {
    /// The model that was refused.
    pub refused: InformationModel,
    /// How the peer refused it, in words.
    pub reason: String,
}

/// The outcome of one C-FIND.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueryResult<T> {
    /// The information model the query ran under.
    pub model: InformationModel,
    /// Preferred models the peer refused on the way to `model`, in the order tried.
    pub fallbacks: Vec<ModelFallback>,
    /// The matches, in the order received.
    pub matches: Vec<T>,
    /// The final status: success, or cancel when the limit was reached.
    pub status: Status,
    /// Whether the result limit was reached and the query cancelled: more may match.
    pub truncated: bool,
    /// Pending responses with status FF01: the SCP did not support some optional keys
    /// for matching, so a match may not satisfy every key.
    pub optional_keys_unsupported: usize,
    /// From sending the request to the final response.
    #[serde(serialize_with = "dimse::serde_duration::millis")]
    pub elapsed: Duration,
}

impl<T> QueryResult<T> {
    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    /// Number of matches.
    pub fn len(&self) -> usize {
        self.matches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_fields_come_from_the_identifier_and_empty_means_none() {
        let mut identifier = Identifier::default();
        identifier.insert(tags::STUDY_INSTANCE_UID, "1.2.3");
        identifier.insert(tags::MODALITIES_IN_STUDY, "CT\\PR");
        identifier.insert(tags::NUMBER_OF_STUDY_RELATED_INSTANCES, " 12");
        identifier.insert(tags::PATIENT_NAME, "");
        identifier.insert(tags::INSTITUTION_NAME, "General");
        let study = StudyResult::from_identifier(identifier);
        assert_eq!(study.study_instance_uid, "1.2.3");
        assert_eq!(study.modalities_in_study, ["CT", "PR"]);
        assert_eq!(study.number_of_study_related_instances, Some(12));
        assert_eq!(study.patient_name, None);
        assert_eq!(
            study.identifier.get(tags::INSTITUTION_NAME),
            Some("General")
        );
    }
}
