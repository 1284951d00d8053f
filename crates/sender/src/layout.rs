//! How a fresh-UID load run groups its sends into studies and series.
//!
//! A fresh study must look like a study to an archive: one patient, one set of
//! study attributes. Instances of different patients under one Study Instance UID
//! are filed by a PACS once per Patient ID (Orthanc does so), so a C-FIND then sees
//! parts of the study and the run's delivery figures turn false through no fault of
//! the router. So every fresh study is made from the instances of **one original
//! study** (one Patient ID and one Study Instance UID in the files): a copy of it,
//! or, with a [`StudyLayout`] that sets limits, a part of it.
//!
//! The instances are sent in passes. Within a pass the instances of one original
//! study go one after another (studies in order of their first instance, series
//! likewise, instances in the order given), and each pass gives every fresh study
//! and series new UIDs. Send number `k` is position `k mod n` of pass `k div n`;
//! its study and series serials come from a table made once before the run, so a
//! send costs two array reads and no lock.

use std::collections::HashMap;

/// How the sends of a fresh-UID load run are grouped into studies and series.
///
/// Whatever the limits, a fresh study only holds instances of one original study
/// (same Patient ID, same Study Instance UID in the files), so its patient and study
/// attributes agree. The default keeps the original structure: each pass over the
/// instances sends one copy of every original study, each original series as one
/// fresh series. Limits cut within an original study, never across two:
///
/// ```
/// use sender::StudyLayout;
///
/// // Copies of the original studies, series as they are.
/// assert_eq!(StudyLayout::default(), StudyLayout::ORIGINAL);
/// // Original series cut into series of at most 10 instances, one per study: a
/// // 25-instance original study becomes three studies of 10, 10 and 5.
/// let small = StudyLayout::limits(Some(10), Some(1));
/// assert_eq!(small.max_instances_per_series, Some(10));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StudyLayout {
    /// Cut each original series into fresh series of at most this many instances
    /// (`None`: one fresh series per original series).
    pub max_instances_per_series: Option<u64>,
    /// Put at most this many fresh series into one fresh study (`None`: all the
    /// fresh series of the original study).
    pub max_series_per_study: Option<u64>,
}

impl StudyLayout {
    /// Copies of the original studies, series as they are.
    pub const ORIGINAL: StudyLayout = StudyLayout {
        max_instances_per_series: None,
        max_series_per_study: None,
    };

    /// A layout with these limits (`None`: no limit at that level). A limit of 0 is
    /// refused when the run starts.
    pub fn limits(
        max_instances_per_series: Option<u64>,
        max_series_per_study: Option<u64>,
    ) -> Self {
        StudyLayout {
            max_instances_per_series,
            max_series_per_study,
        }
    }
}

/// The grouping keys of one instance, as read from its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct OriginalKey<'a> {
    pub patient_id: Option<&'a str>,
    pub study_instance_uid: Option<&'a str>,
    pub series_instance_uid: Option<&'a str>,
}

/// Where send number `k` goes: which instance, under which study and series serials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Index of the instance in the plan.
    pub instance: usize,
    /// Serial of the fresh study (unique in the run).
    pub study: u64,
    /// Serial of the fresh series (unique in the run).
    pub series: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    instance: usize,
    study: u64,
    series: u64,
}

/// The order of one pass and the fresh study and series of each of its positions.
#[derive(Debug)]
pub(crate) struct SendOrder {
    slots: Vec<Slot>,
    studies_per_pass: u64,
    series_per_pass: u64,
    /// For each study slot of a pass, one instance of the original study it copies.
    study_source: Vec<usize>,
}

impl SendOrder {
    /// The order for instances with these keys (in plan order). `layout`'s limits
    /// must be non-zero (the plan checks them).
    pub(crate) fn new(keys: &[OriginalKey<'_>], layout: StudyLayout) -> Self {
        // Original studies (by patient and study) in order of first instance, and in
        // each, its series in order of first instance.
        let mut study_index: HashMap<(Option<&str>, Option<&str>), usize> = HashMap::new();
        let mut studies: Vec<Vec<Vec<usize>>> = Vec::new();
        let mut series_index: Vec<HashMap<Option<&str>, usize>> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let s = *study_index
                .entry((key.patient_id, key.study_instance_uid))
                .or_insert_with(|| {
                    studies.push(Vec::new());
                    series_index.push(HashMap::new());
                    studies.len() - 1
                });
            let series = &mut studies[s];
            let r = *series_index[s]
                .entry(key.series_instance_uid)
                .or_insert_with(|| {
                    series.push(Vec::new());
                    series.len() - 1
                });
            series[r].push(i);
        }

        let per_series = layout.max_instances_per_series.unwrap_or(u64::MAX).max(1);
        let per_study = layout.max_series_per_study.unwrap_or(u64::MAX).max(1);
        let mut slots = Vec::with_capacity(keys.len());
        let mut study_source = Vec::new();
        let mut series_count = 0u64;
        for original in studies {
            let fresh_series = original
                .iter()
                .flat_map(|series| chunks(series, per_series));
            let mut in_study = 0u64;
            for series in fresh_series {
                if in_study == 0 {
                    study_source.push(series[0]);
                }
                let study = study_source.len() as u64 - 1;
                slots.extend(series.iter().map(|&instance| Slot {
                    instance,
                    study,
                    series: series_count,
                }));
                series_count += 1;
                in_study += 1;
                if in_study == per_study {
                    in_study = 0;
                }
            }
        }
        SendOrder {
            slots,
            studies_per_pass: study_source.len() as u64,
            series_per_pass: series_count,
            study_source,
        }
    }

    /// Where send number `k` goes.
    pub(crate) fn at(&self, k: u64) -> Placement {
        let n = self.slots.len() as u64;
        let (pass, slot) = (k / n, self.slots[(k % n) as usize]);
        Placement {
            instance: slot.instance,
            study: pass * self.studies_per_pass + slot.study,
            series: pass * self.series_per_pass + slot.series,
        }
    }

    /// One instance (its index in the plan) of the original study that fresh study
    /// `study` was made from.
    pub(crate) fn source_of_study(&self, study: u64) -> usize {
        self.study_source[(study % self.studies_per_pass) as usize]
    }
}

/// `items` in consecutive pieces of at most `size`.
fn chunks(items: &[usize], size: u64) -> std::slice::Chunks<'_, usize> {
    items.chunks(usize::try_from(size).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn key<'a>(patient: &'a str, study: &'a str, series: &'a str) -> OriginalKey<'a> {
        OriginalKey {
            patient_id: Some(patient),
            study_instance_uid: Some(study),
            series_instance_uid: Some(series),
        }
    }

    /// Instances of three original studies, interleaved as a folder walk might list
    /// them; the third shares its Study Instance UID with the first but not its patient.
    fn mixed() -> Vec<OriginalKey<'static>> {
        vec![
            key("P1", "A", "a1"),
            key("P2", "B", "b1"),
            key("P1", "A", "a2"),
            key("P1", "A", "a1"),
            key("P2", "B", "b1"),
            key("P1", "A", "a1"),
            key("P3", "A", "c1"),
        ]
    }

    /// Checks over `passes` passes: every fresh study holds one original study, every
    /// fresh series lies in one fresh study, and returns the instances per study.
    fn studies_of(order: &SendOrder, keys: &[OriginalKey<'_>], passes: u64) -> Vec<Vec<usize>> {
        let mut study_key = HashMap::new();
        let mut series_study = HashMap::new();
        let mut studies: Vec<(u64, Vec<usize>)> = Vec::new();
        for k in 0..passes * keys.len() as u64 {
            let at = order.at(k);
            let original = (
                keys[at.instance].patient_id,
                keys[at.instance].study_instance_uid,
            );
            assert_eq!(
                *study_key.entry(at.study).or_insert(original),
                original,
                "send {k}"
            );
            assert_eq!(*series_study.entry(at.series).or_insert(at.study), at.study);
            let source = keys[order.source_of_study(at.study)];
            assert_eq!((source.patient_id, source.study_instance_uid), original);
            match studies.last_mut() {
                Some((s, members)) if *s == at.study => members.push(at.instance),
                _ => studies.push((at.study, vec![at.instance])),
            }
        }
        let serials: HashSet<u64> = studies.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            serials.len(),
            studies.len(),
            "a study's sends are not consecutive"
        );
        studies.into_iter().map(|(_, members)| members).collect()
    }

    #[test]
    fn by_default_each_fresh_study_is_a_copy_of_one_original_study_series_kept() {
        let keys = mixed();
        let order = SendOrder::new(&keys, StudyLayout::ORIGINAL);
        let studies = studies_of(&order, &keys, 2);
        let pass = vec![vec![0, 3, 5, 2], vec![1, 4], vec![6]];
        assert_eq!(studies, [pass.clone(), pass].concat());
        // Series a1, a2, b1, c1 per pass.
        assert_eq!(order.at(0).series, 0);
        assert_eq!(order.at(3).series, 1);
        assert_eq!(order.at(7).series, 4);
    }

    #[test]
    fn limits_cut_an_original_study_into_several_fresh_ones_never_merging_two() {
        let keys = mixed();
        let order = SendOrder::new(&keys, StudyLayout::limits(Some(2), Some(1)));
        let studies = studies_of(&order, &keys, 3);
        let pass = vec![vec![0, 3], vec![5], vec![2], vec![1, 4], vec![6]];
        assert_eq!(studies, [pass.clone(), pass.clone(), pass].concat());
    }

    #[test]
    fn series_limits_group_fresh_series_within_the_original_study() {
        let keys = mixed();
        // a1 cut into (0 3) (5), then a2: studies of at most 2 series.
        let order = SendOrder::new(&keys, StudyLayout::limits(Some(2), Some(2)));
        let studies = studies_of(&order, &keys, 1);
        assert_eq!(studies, vec![vec![0, 3, 5], vec![2], vec![1, 4], vec![6]]);
        assert_ne!(order.at(1).series, order.at(2).series);
        assert_eq!(order.at(1).study, order.at(2).study);
    }

    #[test]
    fn instances_without_uids_or_patient_are_grouped_by_what_they_have() {
        let none = OriginalKey {
            patient_id: None,
            study_instance_uid: None,
            series_instance_uid: None,
        };
        let keys = vec![none, key("P1", "A", "a1"), none];
        let order = SendOrder::new(&keys, StudyLayout::ORIGINAL);
        assert_eq!(studies_of(&order, &keys, 1), vec![vec![0, 2], vec![1]]);
    }
}
