//! The entities a query can match (patient, study, series, instance) and the value
//! each answers for a key, from the store's index or, in full mode, the data set.

use std::borrow::Cow;

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::store::{Attrs, InstanceRecord, SeriesRecord, StudyRecord};
use crate::values::text;
use dimse::qr::{INSTANCE_ATTRIBUTES, PATIENT_ATTRIBUTES, SERIES_ATTRIBUTES, STUDY_ATTRIBUTES};

pub(super) enum Lookup<'a> {
    Value(Cow<'a, str>),
    Absent,
    Unknown,
}

/// One entity that may match: a patient, a study, a series or an instance, with
/// access to the levels above it.
pub(super) struct Candidate<'a> {
    patient: &'a Attrs,
    studies: &'a [&'a StudyRecord],
    study: Option<&'a StudyRecord>,
    series: Option<&'a SeriesRecord>,
    instance: Option<&'a InstanceRecord>,
}

impl<'a> Candidate<'a> {
    pub(super) fn patient(studies: &'a [&'a StudyRecord]) -> Self {
        Candidate {
            patient: &studies[0].patient,
            studies,
            study: None,
            series: None,
            instance: None,
        }
    }

    pub(super) fn study(study: &'a StudyRecord) -> Self {
        Candidate {
            patient: &study.patient,
            studies: &[],
            study: Some(study),
            series: None,
            instance: None,
        }
    }

    pub(super) fn series(study: &'a StudyRecord, series: &'a SeriesRecord) -> Self {
        Candidate {
            series: Some(series),
            ..Candidate::study(study)
        }
    }

    pub(super) fn image(
        study: &'a StudyRecord,
        series: &'a SeriesRecord,
        instance: &'a InstanceRecord,
    ) -> Self {
        Candidate {
            instance: Some(instance),
            ..Candidate::series(study, series)
        }
    }

    pub(super) fn lookup(&self, tag: Tag) -> Lookup<'a> {
        let from = |v: Option<&'a str>| match v {
            Some(v) => Lookup::Value(Cow::Borrowed(v)),
            None => Lookup::Absent,
        };
        let count = |n: usize| Lookup::Value(Cow::Owned(n.to_string()));
        if PATIENT_ATTRIBUTES.contains(&tag) {
            return from(self.patient.get(tag));
        }
        if let Some(study) = self.study {
            if STUDY_ATTRIBUTES.contains(&tag) {
                return from(study.attrs.get(tag));
            }
            match tag {
                tags::NUMBER_OF_STUDY_RELATED_SERIES => return count(study.series_count()),
                tags::NUMBER_OF_STUDY_RELATED_INSTANCES => return count(study.instance_count()),
                tags::MODALITIES_IN_STUDY => {
                    return Lookup::Value(Cow::Owned(study.modalities().join("\\")));
                }
                _ => {}
            }
        }
        if !self.studies.is_empty() {
            match tag {
                tags::NUMBER_OF_PATIENT_RELATED_STUDIES => return count(self.studies.len()),
                tags::NUMBER_OF_PATIENT_RELATED_SERIES => {
                    return count(self.studies.iter().map(|s| s.series_count()).sum());
                }
                tags::NUMBER_OF_PATIENT_RELATED_INSTANCES => {
                    return count(self.studies.iter().map(|s| s.instance_count()).sum());
                }
                _ => {}
            }
        }
        if let Some(series) = self.series {
            if SERIES_ATTRIBUTES.contains(&tag) {
                return from(series.attrs.get(tag));
            }
            if tag == tags::NUMBER_OF_SERIES_RELATED_INSTANCES {
                return count(series.instances.len());
            }
        }
        if let Some(instance) = self.instance
            && INSTANCE_ATTRIBUTES.contains(&tag)
        {
            return from(instance.get(tag));
        }
        // Not indexed at this level: a full-mode data set may know it.
        let dataset = match (self.instance, self.series, self.study) {
            (Some(i), _, _) => i.dataset.as_deref(),
            (None, Some(s), _) => s.instances.iter().find_map(|i| i.dataset.as_deref()),
            (None, None, Some(st)) => st.first_dataset(),
            (None, None, None) => self.studies.first().and_then(|s| s.first_dataset()),
        };
        match dataset {
            Some(obj) => match text(obj, tag) {
                Some(v) => Lookup::Value(Cow::Owned(v)),
                None => Lookup::Absent,
            },
            None => Lookup::Unknown,
        }
    }
}
