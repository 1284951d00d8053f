//! The built-in image store: what C-FIND answers from.
//!
//! Instances are kept in a patient/study/series/instance hierarchy. Study- and
//! series-level attributes are held once per study and series (taken from the first
//! instance received for it, as Orthanc does, and refreshed when an instance is
//! overwritten), so an instance costs only its UIDs: a few hundred bytes in load mode.
//! In full mode each instance also keeps its whole data set (after morphing).
//!
//! Studies, series and instances are also indexed by UID, so that C-FIND can answer
//! a UID (or a list of UIDs) by lookup instead of visiting every study.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::values::text;
use dimse::trim_value;

/// What the store keeps of each instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreMode {
    /// The index entries and the whole data set (after morphing), for tests that
    /// inspect what arrived.
    #[default]
    Full,
    /// Only the index entries: memory stays bounded during long load runs.
    Load,
}

// What the store keeps per patient, study, series and instance is the shared
// per-level attribute tables (`dimse::qr`): the C-FIND client asks for what the SCP
// indexes.
use dimse::qr::{PATIENT_ATTRIBUTES, SERIES_ATTRIBUTES, STUDY_ATTRIBUTES};

/// Attribute values of one level, as text without padding.
#[derive(Clone, Debug, Default)]
pub(crate) struct Attrs(Vec<(Tag, Box<str>)>);

impl Attrs {
    fn capture(obj: &InMemDicomObject, keys: &[Tag]) -> Attrs {
        Attrs(
            keys.iter()
                .filter_map(|&t| text(obj, t).map(|v| (t, v.into_boxed_str())))
                .collect(),
        )
    }

    pub(crate) fn get(&self, tag: Tag) -> Option<&str> {
        self.0.iter().find(|(t, _)| *t == tag).map(|(_, v)| &**v)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Tag, &str)> {
        self.0.iter().map(|(t, v)| (*t, &**v))
    }
}

#[derive(Debug)]
pub(crate) struct InstanceRecord {
    pub(crate) uid: Arc<str>,
    pub(crate) sop_class_uid: Arc<str>,
    pub(crate) instance_number: Option<Box<str>>,
    pub(crate) route: u16,
    /// The transfer syntax it arrived in (interned): what C-MOVE and C-GET send it in
    /// when the destination accepts it.
    pub(crate) transfer_syntax_uid: Arc<str>,
    pub(crate) dataset: Option<Arc<InMemDicomObject>>,
    /// Where the spool keeps it (then `dataset` is `None`).
    pub(crate) spooled: Option<Arc<std::path::Path>>,
}

impl InstanceRecord {
    pub(crate) fn get(&self, tag: Tag) -> Option<&str> {
        match tag {
            tags::SOP_INSTANCE_UID => Some(&self.uid),
            tags::SOP_CLASS_UID => Some(&self.sop_class_uid),
            tags::INSTANCE_NUMBER => self.instance_number.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SeriesRecord {
    pub(crate) uid: Arc<str>,
    pub(crate) attrs: Attrs,
    pub(crate) instances: Vec<InstanceRecord>,
}

#[derive(Debug)]
pub(crate) struct StudyRecord {
    pub(crate) uid: Arc<str>,
    pub(crate) patient: Attrs,
    pub(crate) attrs: Attrs,
    pub(crate) series: Vec<SeriesRecord>,
    last_received: Instant,
    stable_study_time: Duration,
}

impl StudyRecord {
    /// A study is visible once no instance arrived for its stable-study time.
    pub(crate) fn is_visible(&self, now: Instant) -> bool {
        !self.is_empty() && now >= self.last_received + self.stable_study_time
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.instances.is_empty())
    }

    pub(crate) fn instance_count(&self) -> usize {
        self.series.iter().map(|s| s.instances.len()).sum()
    }

    pub(crate) fn series_count(&self) -> usize {
        self.series
            .iter()
            .filter(|s| !s.instances.is_empty())
            .count()
    }

    /// Distinct modalities, in order of first appearance.
    pub(crate) fn modalities(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.series.iter().filter(|s| !s.instances.is_empty()) {
            if let Some(m) = s.attrs.get(tags::MODALITY)
                && !m.is_empty()
                && !out.contains(&m)
            {
                out.push(m);
            }
        }
        out
    }

    pub(crate) fn first_dataset(&self) -> Option<&InMemDicomObject> {
        self.series
            .iter()
            .flat_map(|s| s.instances.iter())
            .find_map(|i| i.dataset.as_deref())
    }
}

/// What happened to an instance handed to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InsertOutcome {
    /// A new instance.
    Stored,
    /// Same SOP Instance UID as a stored one; the first copy was kept.
    DuplicateKept,
    /// Same SOP Instance UID as a stored one; the new copy replaced it.
    Overwritten,
    /// Same SOP Instance UID as a stored one; refused.
    DuplicateRefused,
}

/// Why an instance cannot be indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MissingKey(pub(crate) &'static str);

/// What [`ImageStore::insert`] needs to know about the arriving instance.
#[derive(Debug)]
pub(crate) struct Arrival<'a> {
    pub(crate) dataset: &'a InMemDicomObject,
    pub(crate) shared: Option<Arc<InMemDicomObject>>,
    pub(crate) sop_instance_uid: &'a str,
    pub(crate) sop_class_uid: &'a str,
    pub(crate) transfer_syntax_uid: &'a str,
    pub(crate) spooled: Option<Arc<std::path::Path>>,
    pub(crate) route: u16,
    pub(crate) duplicate: DuplicateAction,
    pub(crate) stable_study_time: Duration,
}

/// The duplicate policy reduced to what the store does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DuplicateAction {
    Keep,
    Overwrite,
    Refuse,
}

/// Where a record sits: indices into `studies`, a study's `series` and a series'
/// `instances`. Records are only appended, except instances removed by an overwrite.
pub(crate) type Position = (u32, u32, u32);

/// The index (and in full mode the data sets) of every stored instance.
#[derive(Debug, Default)]
pub(crate) struct ImageStore {
    pub(crate) studies: Vec<StudyRecord>,
    study_index: HashMap<Arc<str>, u32>,
    /// Series UID to (study, series) of the first study that holds it.
    series_index: HashMap<Arc<str>, (u32, u32)>,
    /// Further studies holding an already indexed series UID: a sender reused a
    /// SeriesInstanceUID across studies. Rare, so kept apart from `series_index`.
    series_elsewhere: HashMap<Arc<str>, Vec<(u32, u32)>>,
    instance_index: HashMap<Arc<str>, Position>,
    /// Interned SOP class and transfer syntax UIDs.
    sop_classes: HashSet<Arc<str>>,
    /// Set once a stored UID is multi-valued or padded: C-FIND matching splits and
    /// trims stored values, so such a study would match a UID its index key does not
    /// equal, and lookups by UID would miss it.
    inexact_uid_keys: bool,
}

impl ImageStore {
    pub(crate) fn len(&self) -> usize {
        self.instance_index.len()
    }

    pub(crate) fn contains(&self, sop_instance_uid: &str) -> bool {
        self.instance_index.contains_key(sop_instance_uid)
    }

    pub(crate) fn insert(&mut self, arrival: Arrival<'_>) -> Result<InsertOutcome, MissingKey> {
        let obj = arrival.dataset;
        let study_uid = text(obj, tags::STUDY_INSTANCE_UID)
            .filter(|s| !s.is_empty())
            .ok_or(MissingKey("StudyInstanceUID"))?;
        let series_uid = text(obj, tags::SERIES_INSTANCE_UID)
            .filter(|s| !s.is_empty())
            .ok_or(MissingKey("SeriesInstanceUID"))?;
        if arrival.sop_instance_uid.is_empty() {
            return Err(MissingKey("SOPInstanceUID"));
        }
        let mut outcome = InsertOutcome::Stored;
        if let Some(&location) = self.instance_index.get(arrival.sop_instance_uid) {
            match arrival.duplicate {
                DuplicateAction::Keep => return Ok(InsertOutcome::DuplicateKept),
                DuplicateAction::Refuse => return Ok(InsertOutcome::DuplicateRefused),
                DuplicateAction::Overwrite => {
                    self.remove_at(location);
                    outcome = InsertOutcome::Overwritten;
                }
            }
        }
        self.inexact_uid_keys |= [study_uid.as_str(), &series_uid, arrival.sop_instance_uid]
            .into_iter()
            .any(|uid| uid.contains('\\') || trim_value(uid) != uid);
        let now = Instant::now();
        let study_idx = match self.study_index.get(study_uid.as_str()) {
            Some(&i) => i,
            None => {
                let uid: Arc<str> = Arc::from(study_uid.as_str());
                self.studies.push(StudyRecord {
                    uid: uid.clone(),
                    patient: Attrs::capture(obj, PATIENT_ATTRIBUTES),
                    attrs: Attrs::capture(obj, STUDY_ATTRIBUTES),
                    series: Vec::new(),
                    last_received: now,
                    stable_study_time: arrival.stable_study_time,
                });
                let i = (self.studies.len() - 1) as u32;
                self.study_index.insert(uid, i);
                i
            }
        };
        let study = &mut self.studies[study_idx as usize];
        study.last_received = now;
        study.stable_study_time = arrival.stable_study_time;
        if outcome == InsertOutcome::Overwritten || study.is_empty() {
            study.patient = Attrs::capture(obj, PATIENT_ATTRIBUTES);
            study.attrs = Attrs::capture(obj, STUDY_ATTRIBUTES);
        }
        let series_idx = match study.series.iter().position(|s| *s.uid == *series_uid) {
            Some(i) => i,
            None => {
                let uid: Arc<str> = Arc::from(series_uid.as_str());
                study.series.push(SeriesRecord {
                    uid: uid.clone(),
                    attrs: Attrs::capture(obj, SERIES_ATTRIBUTES),
                    instances: Vec::new(),
                });
                let at = (study_idx, (study.series.len() - 1) as u32);
                match self.series_index.get(&uid) {
                    None => {
                        self.series_index.insert(uid, at);
                    }
                    Some(_) => self.series_elsewhere.entry(uid).or_default().push(at),
                }
                at.1 as usize
            }
        };
        let series = &mut study.series[series_idx];
        if outcome == InsertOutcome::Overwritten || series.instances.is_empty() {
            series.attrs = Attrs::capture(obj, SERIES_ATTRIBUTES);
        }
        let sop_class_uid = match self.sop_classes.get(arrival.sop_class_uid) {
            Some(c) => c.clone(),
            None => {
                let c: Arc<str> = Arc::from(arrival.sop_class_uid);
                self.sop_classes.insert(c.clone());
                c
            }
        };
        let transfer_syntax_uid = match self.sop_classes.get(arrival.transfer_syntax_uid) {
            Some(ts) => ts.clone(),
            None => {
                let ts: Arc<str> = Arc::from(arrival.transfer_syntax_uid);
                self.sop_classes.insert(ts.clone());
                ts
            }
        };
        let uid: Arc<str> = Arc::from(arrival.sop_instance_uid);
        series.instances.push(InstanceRecord {
            uid: uid.clone(),
            sop_class_uid,
            instance_number: text(obj, tags::INSTANCE_NUMBER).map(String::into_boxed_str),
            route: arrival.route,
            transfer_syntax_uid,
            dataset: arrival.shared,
            spooled: arrival.spooled,
        });
        let instance_idx = (series.instances.len() - 1) as u32;
        self.instance_index
            .insert(uid, (study_idx, series_idx as u32, instance_idx));
        Ok(outcome)
    }

    fn remove_at(&mut self, (study, series, instance): (u32, u32, u32)) {
        let list = &mut self.studies[study as usize].series[series as usize].instances;
        let removed = list.remove(instance as usize);
        self.instance_index.remove(&removed.uid);
        if let Some(path) = &removed.spooled {
            // The overwritten copy's file; a failure leaves a stray file, no more.
            let _ = std::fs::remove_file(path);
        }
        // Later instances of the series moved down by one.
        for (i, record) in list.iter().enumerate().skip(instance as usize) {
            if let Some(loc) = self.instance_index.get_mut(&record.uid) {
                *loc = (study, series, i as u32);
            }
        }
    }

    pub(crate) fn locate(
        &self,
        sop_instance_uid: &str,
    ) -> Option<(&StudyRecord, &SeriesRecord, &InstanceRecord)> {
        let (st, se, i) = self.instance_position(sop_instance_uid)?;
        let study = &self.studies[st as usize];
        let series = &study.series[se as usize];
        Some((study, series, &series.instances[i as usize]))
    }

    /// Whether the UID lookups below find every record whose (split, trimmed) UID
    /// equals the one asked for. False once a multi-valued or padded UID was stored.
    pub(crate) fn uid_lookups_are_exact(&self) -> bool {
        !self.inexact_uid_keys
    }

    /// The index of the study with this StudyInstanceUID in `studies`.
    pub(crate) fn study_position(&self, study_instance_uid: &str) -> Option<u32> {
        self.study_index.get(study_instance_uid).copied()
    }

    /// (study, series) of every series with this SeriesInstanceUID, in the order
    /// the series were first stored (not sorted).
    pub(crate) fn series_positions(
        &self,
        series_instance_uid: &str,
    ) -> impl Iterator<Item = (u32, u32)> + '_ {
        let first = self.series_index.get(series_instance_uid).copied();
        let elsewhere = first
            .and_then(|_| self.series_elsewhere.get(series_instance_uid))
            .into_iter()
            .flatten()
            .copied();
        first.into_iter().chain(elsewhere)
    }

    /// Where the instance with this SOPInstanceUID sits.
    pub(crate) fn instance_position(&self, sop_instance_uid: &str) -> Option<Position> {
        self.instance_index.get(sop_instance_uid).copied()
    }

    pub(crate) fn clear(&mut self) {
        *self = ImageStore::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::VR;

    fn instance(study: &str, series: &str, sop: &str, modality: &str) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put_str(tags::STUDY_INSTANCE_UID, VR::UI, study);
        obj.put_str(tags::SERIES_INSTANCE_UID, VR::UI, series);
        obj.put_str(tags::SOP_INSTANCE_UID, VR::UI, sop);
        obj.put_str(tags::MODALITY, VR::CS, modality);
        obj.put_str(tags::PATIENT_ID, VR::LO, "P1");
        obj.put_str(tags::STUDY_DESCRIPTION, VR::LO, format!("desc of {sop}"));
        obj
    }

    fn arrive<'a>(
        obj: &'a InMemDicomObject,
        sop: &'a str,
        duplicate: DuplicateAction,
    ) -> Arrival<'a> {
        Arrival {
            dataset: obj,
            shared: None,
            sop_instance_uid: sop,
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.7",
            transfer_syntax_uid: "1.2.840.10008.1.2.1",
            spooled: None,
            route: 0,
            duplicate,
            stable_study_time: Duration::ZERO,
        }
    }

    #[test]
    fn instances_group_into_studies_and_series() {
        let mut store = ImageStore::default();
        for (series, sop, m) in [
            ("1.1", "1.1.1", "OPV"),
            ("1.1", "1.1.2", "OPV"),
            ("1.2", "1.2.1", "OPT"),
        ] {
            let obj = instance("1", series, sop, m);
            assert_eq!(
                store.insert(arrive(&obj, sop, DuplicateAction::Keep)),
                Ok(InsertOutcome::Stored)
            );
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.studies.len(), 1);
        let study = &store.studies[0];
        assert_eq!(study.series_count(), 2);
        assert_eq!(study.instance_count(), 3);
        assert_eq!(study.modalities(), ["OPV", "OPT"]);
        // Study attributes come from the first instance.
        assert_eq!(
            study.attrs.get(tags::STUDY_DESCRIPTION),
            Some("desc of 1.1.1")
        );
    }

    #[test]
    fn duplicates_follow_the_policy() {
        let mut store = ImageStore::default();
        let first = instance("1", "1.1", "9", "CT");
        store
            .insert(arrive(&first, "9", DuplicateAction::Keep))
            .unwrap();
        let mut second = instance("1", "1.1", "9", "CT");
        second.put_str(tags::STUDY_DESCRIPTION, VR::LO, "second copy");
        assert_eq!(
            store.insert(arrive(&second, "9", DuplicateAction::Keep)),
            Ok(InsertOutcome::DuplicateKept)
        );
        assert_eq!(
            store.insert(arrive(&second, "9", DuplicateAction::Refuse)),
            Ok(InsertOutcome::DuplicateRefused)
        );
        assert_eq!(
            store.studies[0].attrs.get(tags::STUDY_DESCRIPTION),
            Some("desc of 9")
        );
        assert_eq!(
            store.insert(arrive(&second, "9", DuplicateAction::Overwrite)),
            Ok(InsertOutcome::Overwritten)
        );
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.studies[0].attrs.get(tags::STUDY_DESCRIPTION),
            Some("second copy")
        );
    }

    #[test]
    fn an_overwrite_that_moves_series_keeps_the_index_consistent() {
        let mut store = ImageStore::default();
        for sop in ["a", "b", "c"] {
            let obj = instance("1", "1.1", sop, "CT");
            store
                .insert(arrive(&obj, sop, DuplicateAction::Keep))
                .unwrap();
        }
        let moved = instance("1", "1.2", "a", "CT");
        store
            .insert(arrive(&moved, "a", DuplicateAction::Overwrite))
            .unwrap();
        for sop in ["a", "b", "c"] {
            let (_, _, record) = store.locate(sop).unwrap();
            assert_eq!(&*record.uid, sop);
        }
        assert_eq!(&*store.locate("a").unwrap().1.uid, "1.2");
    }

    #[test]
    fn an_instance_without_study_uid_cannot_be_indexed() {
        let mut store = ImageStore::default();
        let mut obj = instance("1", "1.1", "x", "CT");
        obj.remove_element(tags::STUDY_INSTANCE_UID);
        assert_eq!(
            store.insert(arrive(&obj, "x", DuplicateAction::Keep)),
            Err(MissingKey("StudyInstanceUID"))
        );
    }
}
