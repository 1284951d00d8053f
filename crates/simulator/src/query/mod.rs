//! C-FIND against the image store: PS3.4 C.2.2.2 attribute matching and the
//! response identifiers.
//!
//! Supported: single value matching, list of UIDs (and of other values) separated by
//! backslashes, universal matching (empty key or `*`), wildcards `*` and `?`, and
//! range matching on DA and TM (`A-B`, `-B`, `A-`). DT keys are compared as text
//! ranges without time-zone arithmetic. Sequence matching is not supported: sequence
//! keys are left out of the responses. Keys the store does not index are not used for
//! matching (responses then say so with status FF01) and come back empty, except in
//! full mode where the stored data sets answer them.
//!
//! A StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID key that names UIDs (one,
//! or a list) is answered through the store's UID indexes: verifying thousands of
//! studies with batched UID-list queries then costs the length of the lists, not
//! studies x list length. Every other key is still matched on each candidate, and
//! the responses come in the same order as a full scan would give them.

// Matching of one value against one key (PS3.4 C.2.2.2) is in `matching`; what each
// entity of the store answers for a key is in `candidate`.
mod candidate;
mod matching;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use dicom_core::header::Header;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::store::{ImageStore, Position, StudyRecord};
use crate::values::{text, vr_of};
use dimse::{InformationModel, QueryLevel, trim_value};

use self::candidate::{Candidate, Lookup};
use self::matching::matches;

/// A parsed C-FIND identifier.
#[derive(Debug)]
pub(crate) struct Query {
    level: QueryLevel,
    keys: Vec<Key>,
}

#[derive(Debug)]
pub(super) struct Key {
    tag: Tag,
    vr: VR,
    value: String,
}

/// The outcome of a query: the response identifiers and whether some key could
/// not be used for matching (pending status FF01 instead of FF00).
#[derive(Debug, Default)]
pub(crate) struct Matches {
    pub(crate) identifiers: Vec<InMemDicomObject>,
    pub(crate) unsupported_keys: bool,
}

/// Matching options.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MatchOptions {
    pub(crate) person_name_case_insensitive: bool,
}

impl Query {
    /// Reads the identifier. Errors name what is wrong, for the ErrorComment.
    pub(crate) fn parse(
        identifier: &InMemDicomObject,
        model: InformationModel,
    ) -> Result<Query, String> {
        let level = match text(identifier, tags::QUERY_RETRIEVE_LEVEL).as_deref() {
            Some(code) => match QueryLevel::from_code(code) {
                Some(level) if level.allowed_in(model) => level,
                Some(level) => return Err(format!("{level} level needs Patient Root")),
                None => return Err(format!("unknown QueryRetrieveLevel '{code}'")),
            },
            None => return Err("QueryRetrieveLevel missing".into()),
        };
        let keys = identifier
            .iter()
            .filter(|e| {
                let t = e.tag();
                t != tags::QUERY_RETRIEVE_LEVEL
                    && t != tags::SPECIFIC_CHARACTER_SET
                    && t.element() != 0x0000
                    && e.vr() != VR::SQ
            })
            .map(|e| Key {
                tag: e.tag(),
                vr: if e.vr() == VR::UN {
                    vr_of(e.tag())
                } else {
                    e.vr()
                },
                value: e
                    .to_str()
                    .map(|s| trim_value(&s).to_string())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Query { level, keys })
    }

    /// Runs the query on the studies visible at `now`.
    pub(crate) fn run(&self, store: &ImageStore, now: Instant, options: MatchOptions) -> Matches {
        let Some((resolved, positions)) = self.uid_lookup(store) else {
            return self.scan(store, now, options);
        };
        let mut out = Matches::default();
        for (st, se, i) in positions {
            let study = &store.studies[st as usize];
            if !study.is_visible(now) {
                continue;
            }
            let series = || &study.series[se as usize];
            let c = match self.level {
                QueryLevel::Study => Candidate::study(study),
                QueryLevel::Series if series().instances.is_empty() => continue,
                QueryLevel::Series => Candidate::series(study, series()),
                QueryLevel::Image => {
                    Candidate::image(study, series(), &series().instances[i as usize])
                }
                // uid_lookup answers no PATIENT-level query (nor any level a
                // later standard may add: Query::parse accepts only these).
                _ => break,
            };
            self.consider(&c, Some(resolved), options, &mut out);
        }
        out
    }

    /// Matches every visible study (series, instance): the way to answer keys no
    /// index can.
    fn scan(&self, store: &ImageStore, now: Instant, options: MatchOptions) -> Matches {
        let mut out = Matches::default();
        let visible = store.studies.iter().filter(|s| s.is_visible(now));
        match self.level {
            QueryLevel::Patient => {
                let mut patients: BTreeMap<&str, Vec<&StudyRecord>> = BTreeMap::new();
                for study in visible {
                    patients
                        .entry(study.patient.get(tags::PATIENT_ID).unwrap_or(""))
                        .or_default()
                        .push(study);
                }
                for studies in patients.values() {
                    let c = Candidate::patient(studies);
                    self.consider(&c, None, options, &mut out);
                }
            }
            QueryLevel::Study => {
                for study in visible {
                    self.consider(&Candidate::study(study), None, options, &mut out);
                }
            }
            QueryLevel::Series => {
                for study in visible {
                    for series in study.series.iter().filter(|s| !s.instances.is_empty()) {
                        let c = Candidate::series(study, series);
                        self.consider(&c, None, options, &mut out);
                    }
                }
            }
            QueryLevel::Image => {
                for study in visible {
                    for series in &study.series {
                        for instance in &series.instances {
                            let c = Candidate::image(study, series, instance);
                            self.consider(&c, None, options, &mut out);
                        }
                    }
                }
            }
            // QueryLevel is non-exhaustive; Query::parse accepts only the four above.
            _ => {}
        }
        out
    }

    /// The candidates of a UID match key, found through the store's indexes instead
    /// of a scan: the key's tag (already matched by every position returned) and the
    /// positions at the query level (indices below it left at 0), in scan order and
    /// without repeats.
    ///
    /// `None` (scan instead) when no StudyInstanceUID, SeriesInstanceUID or
    /// SOPInstanceUID key at or above the query level names UIDs only: universal
    /// matching (an empty value, or an empty or `*` item in the list) and keys sent
    /// with another VR than UI (where `*` and `?` would be wildcards) keep the scan,
    /// as does a store holding a multi-valued or padded UID.
    fn uid_lookup(&self, store: &ImageStore) -> Option<(Tag, Vec<Position>)> {
        let usable: &[Tag] = match self.level {
            QueryLevel::Patient => return None,
            QueryLevel::Study => &[tags::STUDY_INSTANCE_UID],
            QueryLevel::Series => &[tags::SERIES_INSTANCE_UID, tags::STUDY_INSTANCE_UID],
            QueryLevel::Image => &[
                tags::SOP_INSTANCE_UID,
                tags::SERIES_INSTANCE_UID,
                tags::STUDY_INSTANCE_UID,
            ],
            _ => return None,
        };
        if !store.uid_lookups_are_exact() {
            return None;
        }
        // The most specific key first: it expands to the fewest candidates.
        let (key, uids) = usable.iter().find_map(|&tag| {
            let key = self.keys.iter().find(|k| k.tag == tag && k.vr == VR::UI)?;
            let uids: Vec<&str> = key.value.split('\\').map(trim_value).collect();
            uids.iter()
                .all(|u| !u.is_empty() && *u != "*")
                .then_some((key, uids))
        })?;
        let mut positions: Vec<Position> = Vec::new();
        let studies = &store.studies;
        // Every position at the query level inside the series (study, series).
        let in_series = |positions: &mut Vec<Position>, (st, se): (u32, u32)| match self.level {
            QueryLevel::Image => {
                let count = studies[st as usize].series[se as usize].instances.len();
                positions.extend((0..count as u32).map(|i| (st, se, i)));
            }
            _ => positions.push((st, se, 0)),
        };
        for uid in uids {
            match key.tag {
                tags::SOP_INSTANCE_UID => positions.extend(store.instance_position(uid)),
                tags::SERIES_INSTANCE_UID => {
                    for at in store.series_positions(uid) {
                        in_series(&mut positions, at);
                    }
                }
                _ => {
                    let Some(st) = store.study_position(uid) else {
                        continue;
                    };
                    if self.level == QueryLevel::Study {
                        positions.push((st, 0, 0));
                        continue;
                    }
                    for se in 0..studies[st as usize].series.len() as u32 {
                        in_series(&mut positions, (st, se));
                    }
                }
            }
        }
        positions.sort_unstable();
        positions.dedup();
        Some((key.tag, positions))
    }

    /// Matches one candidate on every key but `resolved` (the key the candidate was
    /// looked up by, which it matches already) and adds its response identifier.
    fn consider(
        &self,
        candidate: &Candidate<'_>,
        resolved: Option<Tag>,
        options: MatchOptions,
        out: &mut Matches,
    ) {
        let mut values = Vec::with_capacity(self.keys.len());
        for key in &self.keys {
            let found = candidate.lookup(key.tag);
            let universal = key.value.is_empty() || key.value == "*" || Some(key.tag) == resolved;
            match &found {
                Lookup::Unknown if !universal => out.unsupported_keys = true,
                Lookup::Unknown | Lookup::Absent if universal => {}
                Lookup::Absent => return,
                Lookup::Value(v) if !universal && !matches(key, v, options) => return,
                _ => {}
            }
            values.push(match found {
                Lookup::Value(v) => Some(v),
                _ => None,
            });
        }
        out.identifiers.push(self.response(values));
    }

    fn response(&self, values: Vec<Option<Cow<'_, str>>>) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(self.level.code()),
        ));
        let mut non_ascii = false;
        for (key, value) in self.keys.iter().zip(values) {
            let element = match value {
                Some(v) if !v.is_empty() => {
                    non_ascii |= !v.is_ascii();
                    let primitive = if v.contains('\\') {
                        PrimitiveValue::Strs(v.split('\\').map(str::to_string).collect())
                    } else {
                        PrimitiveValue::from(v.into_owned())
                    };
                    DataElement::new(key.tag, key.vr, primitive)
                }
                _ => DataElement::new(key.tag, key.vr, PrimitiveValue::Empty),
            };
            obj.put(element);
        }
        if non_ascii {
            obj.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from("ISO_IR 192"),
            ));
        }
        obj
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Arrival, DuplicateAction};
    use std::time::Duration;

    /// An instance of SOP class 1.2.3 arriving on route 0.
    fn arrival<'a>(
        dataset: &'a InMemDicomObject,
        sop_instance_uid: &'a str,
        duplicate: DuplicateAction,
        stable_study_time: Duration,
    ) -> Arrival<'a> {
        Arrival {
            dataset,
            shared: None,
            sop_instance_uid,
            sop_class_uid: "1.2.3",
            transfer_syntax_uid: "1.2.840.10008.1.2.1",
            spooled: None,
            route: 0,
            duplicate,
            stable_study_time,
        }
    }

    fn store_with(studies: &[(&str, &str, &str, &str, &str)]) -> ImageStore {
        // (study uid, patient id, study date, modality, sop uid)
        let mut store = ImageStore::default();
        for (study, pid, date, modality, sop) in studies {
            let mut obj = InMemDicomObject::new_empty();
            obj.put_str(tags::STUDY_INSTANCE_UID, VR::UI, *study);
            obj.put_str(
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                format!("{study}.{modality}"),
            );
            obj.put_str(tags::PATIENT_ID, VR::LO, *pid);
            obj.put_str(tags::PATIENT_NAME, VR::PN, format!("NAME^{pid}"));
            obj.put_str(tags::STUDY_DATE, VR::DA, *date);
            obj.put_str(tags::MODALITY, VR::CS, *modality);
            store
                .insert(arrival(&obj, sop, DuplicateAction::Keep, Duration::ZERO))
                .unwrap();
        }
        store
    }

    fn identifier(level: &str, keys: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put_str(tags::QUERY_RETRIEVE_LEVEL, VR::CS, level);
        for (t, vr, v) in keys {
            obj.put_str(*t, *vr, *v);
        }
        obj
    }

    #[test]
    fn study_query_returns_requested_and_computed_keys() {
        let store = store_with(&[
            ("1", "P1", "20240105", "OPV", "1.1"),
            ("1", "P1", "20240105", "OPT", "1.2"),
            ("1", "P1", "20240105", "OPT", "1.3"),
            ("2", "P2", "20230101", "CT", "2.1"),
        ]);
        let q = Query::parse(
            &identifier(
                "STUDY",
                &[
                    (tags::STUDY_DATE, VR::DA, "20240101-"),
                    (tags::STUDY_INSTANCE_UID, VR::UI, ""),
                    (tags::MODALITIES_IN_STUDY, VR::CS, ""),
                    (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, ""),
                    (tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, ""),
                ],
            ),
            InformationModel::StudyRoot,
        )
        .unwrap();
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        assert_eq!(m.identifiers.len(), 1);
        let r = &m.identifiers[0];
        assert_eq!(text(r, tags::STUDY_INSTANCE_UID).as_deref(), Some("1"));
        assert_eq!(
            text(r, tags::MODALITIES_IN_STUDY).as_deref(),
            Some("OPV\\OPT")
        );
        assert_eq!(
            text(r, tags::NUMBER_OF_STUDY_RELATED_INSTANCES).as_deref(),
            Some("3")
        );
        assert_eq!(
            text(r, tags::NUMBER_OF_STUDY_RELATED_SERIES).as_deref(),
            Some("2")
        );
        assert!(!m.unsupported_keys);
    }

    #[test]
    fn modalities_in_study_matches_any_listed_modality() {
        let store = store_with(&[
            ("1", "P1", "20240105", "OPV", "1.1"),
            ("2", "P2", "20230101", "CT", "2.1"),
        ]);
        let q = Query::parse(
            &identifier("STUDY", &[(tags::MODALITIES_IN_STUDY, VR::CS, "MR\\OPV")]),
            InformationModel::StudyRoot,
        )
        .unwrap();
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        assert_eq!(m.identifiers.len(), 1);
    }

    #[test]
    fn patient_level_groups_studies_by_patient() {
        let store = store_with(&[
            ("1", "P1", "20240105", "OPV", "1.1"),
            ("2", "P1", "20230101", "CT", "2.1"),
            ("3", "P2", "20230101", "CT", "3.1"),
        ]);
        let q = Query::parse(
            &identifier(
                "PATIENT",
                &[
                    (tags::PATIENT_ID, VR::LO, "P1"),
                    (tags::NUMBER_OF_PATIENT_RELATED_STUDIES, VR::IS, ""),
                ],
            ),
            InformationModel::PatientRoot,
        )
        .unwrap();
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        assert_eq!(m.identifiers.len(), 1);
        assert_eq!(
            text(&m.identifiers[0], tags::NUMBER_OF_PATIENT_RELATED_STUDIES).as_deref(),
            Some("2")
        );
        assert!(Query::parse(&identifier("PATIENT", &[]), InformationModel::StudyRoot).is_err());
    }

    #[test]
    fn unindexed_keys_in_load_mode_are_reported_not_matched() {
        let store = store_with(&[("1", "P1", "20240105", "OPV", "1.1")]);
        let q = Query::parse(
            &identifier("STUDY", &[(tags::PATIENT_WEIGHT, VR::DS, "70")]),
            InformationModel::StudyRoot,
        )
        .unwrap();
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        assert_eq!(m.identifiers.len(), 1);
        assert!(m.unsupported_keys);
    }

    #[test]
    fn image_level_lists_instances_of_the_series() {
        let store = store_with(&[
            ("1", "P1", "20240105", "OPT", "1.1"),
            ("1", "P1", "20240105", "OPT", "1.2"),
        ]);
        let q = Query::parse(
            &identifier(
                "IMAGE",
                &[
                    (tags::SERIES_INSTANCE_UID, VR::UI, "1.OPT"),
                    (tags::SOP_INSTANCE_UID, VR::UI, ""),
                ],
            ),
            InformationModel::StudyRoot,
        )
        .unwrap();
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        let uids: Vec<_> = m
            .identifiers
            .iter()
            .map(|r| text(r, tags::SOP_INSTANCE_UID).unwrap())
            .collect();
        assert_eq!(uids, ["1.1", "1.2"]);
    }

    /// (study uid, series uid, sop uid, modality); every study of patient P1, dated
    /// 20240105, visible at once unless `stable_study_time` says otherwise.
    fn store_of(instances: &[(&str, &str, &str, &str)], stable_study_time: Duration) -> ImageStore {
        let mut store = ImageStore::default();
        for (study, series, sop, modality) in instances {
            let mut obj = InMemDicomObject::new_empty();
            put_uids(&mut obj, tags::STUDY_INSTANCE_UID, study);
            put_uids(&mut obj, tags::SERIES_INSTANCE_UID, series);
            obj.put_str(tags::PATIENT_ID, VR::LO, "P1");
            obj.put_str(tags::STUDY_DATE, VR::DA, "20240105");
            obj.put_str(tags::MODALITY, VR::CS, *modality);
            store
                .insert(arrival(
                    &obj,
                    sop,
                    DuplicateAction::Overwrite,
                    stable_study_time,
                ))
                .unwrap();
        }
        store
    }

    /// A UID element; backslashes make it multi-valued, as a sender would encode it.
    fn put_uids(obj: &mut InMemDicomObject, tag: Tag, uids: &str) {
        let values = uids.split('\\').map(str::to_string).collect();
        obj.put(DataElement::new(tag, VR::UI, PrimitiveValue::Strs(values)));
    }

    fn query(level: &str, keys: &[(Tag, VR, &str)]) -> Query {
        let model = if level == "PATIENT" {
            InformationModel::PatientRoot
        } else {
            InformationModel::StudyRoot
        };
        Query::parse(&identifier(level, keys), model).unwrap()
    }

    fn returned(m: &Matches, tag: Tag) -> Vec<String> {
        m.identifiers
            .iter()
            .map(|r| text(r, tag).unwrap_or_default())
            .collect()
    }

    /// Three studies: "1" (series 1.1 with two instances, 1.2), "2" (series 1.1
    /// again, under another study, and 2.2) and "3".
    fn three_studies() -> ImageStore {
        store_of(
            &[
                ("1", "1.1", "1.1.1", "OPV"),
                ("1", "1.1", "1.1.2", "OPV"),
                ("1", "1.2", "1.2.1", "OPT"),
                ("2", "1.1", "2.1.1", "CT"),
                ("2", "2.2", "2.2.1", "CT"),
                ("3", "3.1", "3.1.1", "MR"),
            ],
            Duration::ZERO,
        )
    }

    #[test]
    fn a_study_uid_list_returns_exactly_the_listed_studies_that_exist() {
        let store = three_studies();
        let q = query(
            "STUDY",
            &[(tags::STUDY_INSTANCE_UID, VR::UI, "3\\9.9.9\\1\\3")],
        );
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        // Once each, in the order the studies were stored.
        assert_eq!(returned(&m, tags::STUDY_INSTANCE_UID), ["1", "3"]);
        assert!(!m.unsupported_keys);
    }

    #[test]
    fn a_uid_list_at_series_level_returns_exactly_the_listed_series_that_exist() {
        let store = three_studies();
        let by_series = query(
            "SERIES",
            &[
                (tags::STUDY_INSTANCE_UID, VR::UI, ""),
                (tags::SERIES_INSTANCE_UID, VR::UI, "2.2\\1.1\\8.8"),
            ],
        );
        let m = by_series.run(&store, Instant::now(), MatchOptions::default());
        // 1.1 is held by two studies: both are listed.
        assert_eq!(
            returned(&m, tags::SERIES_INSTANCE_UID),
            ["1.1", "1.1", "2.2"]
        );
        assert_eq!(returned(&m, tags::STUDY_INSTANCE_UID), ["1", "2", "2"]);

        let by_study = query(
            "SERIES",
            &[
                (tags::STUDY_INSTANCE_UID, VR::UI, "3\\2\\7"),
                (tags::SERIES_INSTANCE_UID, VR::UI, ""),
            ],
        );
        let m = by_study.run(&store, Instant::now(), MatchOptions::default());
        assert_eq!(
            returned(&m, tags::SERIES_INSTANCE_UID),
            ["1.1", "2.2", "3.1"]
        );
    }

    #[test]
    fn unknown_uids_match_nothing_at_study_and_series_level() {
        let store = three_studies();
        for q in [
            query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, "7\\8")]),
            query("SERIES", &[(tags::STUDY_INSTANCE_UID, VR::UI, "7\\8")]),
            query("SERIES", &[(tags::SERIES_INSTANCE_UID, VR::UI, "7.1\\1")]),
            query("IMAGE", &[(tags::SOP_INSTANCE_UID, VR::UI, "7.1.1")]),
        ] {
            let m = q.run(&store, Instant::now(), MatchOptions::default());
            assert!(m.identifiers.is_empty(), "{q:?} matched {m:?}");
        }
    }

    #[test]
    fn uid_lookups_answer_exactly_like_a_scan() {
        let mut store = three_studies();
        // An overwrite that moves an instance to another series renumbers the rest.
        let mut moved = InMemDicomObject::new_empty();
        put_uids(&mut moved, tags::STUDY_INSTANCE_UID, "1");
        put_uids(&mut moved, tags::SERIES_INSTANCE_UID, "1.2");
        moved.put_str(tags::MODALITY, VR::CS, "OPT");
        store
            .insert(arrival(
                &moved,
                "1.1.1",
                DuplicateAction::Overwrite,
                Duration::ZERO,
            ))
            .unwrap();
        let study = tags::STUDY_INSTANCE_UID;
        let series = tags::SERIES_INSTANCE_UID;
        let sop = tags::SOP_INSTANCE_UID;
        let modality = (tags::MODALITY, VR::CS, "");
        let queries = [
            query("STUDY", &[(study, VR::UI, "2\\1\\x")]),
            query(
                "STUDY",
                &[
                    (study, VR::UI, "1\\2\\3"),
                    (tags::MODALITIES_IN_STUDY, VR::CS, "CT"),
                ],
            ),
            query("SERIES", &[(study, VR::UI, "1\\3"), modality]),
            query(
                "SERIES",
                &[(study, VR::UI, "2"), (series, VR::UI, "1.1\\2.2\\1.2")],
            ),
            query(
                "SERIES",
                &[(series, VR::UI, "1.1"), (tags::MODALITY, VR::CS, "C*")],
            ),
            query("IMAGE", &[(study, VR::UI, "1"), (sop, VR::UI, "")]),
            query("IMAGE", &[(series, VR::UI, "1.2\\1.1"), (sop, VR::UI, "")]),
            query("IMAGE", &[(sop, VR::UI, "3.1.1\\1.1.2\\1.1.1\\no")]),
            query(
                "IMAGE",
                &[
                    (study, VR::UI, "1"),
                    (series, VR::UI, "1.1"),
                    (sop, VR::UI, "1.1.2\\2.1.1"),
                ],
            ),
        ];
        let now = Instant::now();
        let options = MatchOptions::default();
        for q in &queries {
            assert!(q.uid_lookup(&store).is_some(), "{q:?} is not looked up");
            let looked_up = q.run(&store, now, options);
            let scanned = q.scan(&store, now, options);
            assert!(!scanned.identifiers.is_empty(), "{q:?} tests nothing");
            assert_eq!(looked_up.identifiers, scanned.identifiers, "{q:?}");
            assert_eq!(looked_up.unsupported_keys, scanned.unsupported_keys);
        }
    }

    #[test]
    fn a_universal_item_in_a_uid_list_matches_every_study() {
        let store = three_studies();
        let q = query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, "2\\*")]);
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        assert_eq!(returned(&m, tags::STUDY_INSTANCE_UID), ["1", "2", "3"]);
    }

    #[test]
    fn a_multi_valued_stored_uid_still_matches_each_of_its_values() {
        let store = store_of(&[("7\\8", "7.1", "7.1.1", "CT")], Duration::ZERO);
        let q = query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, "8")]);
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        assert_eq!(returned(&m, tags::STUDY_INSTANCE_UID), ["7\\8"]);
    }

    #[test]
    fn a_study_still_arriving_is_not_returned_by_uid() {
        let store = store_of(&[("1", "1.1", "1.1.1", "CT")], Duration::from_secs(3600));
        let q = query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, "1")]);
        let m = q.run(&store, Instant::now(), MatchOptions::default());
        assert!(m.identifiers.is_empty());
    }
}
