//! What to ask: C-FIND queries at the study, series and image levels.
//!
//! A query is a set of keys. A key with a value is a *match key* (the SCP returns only
//! entities whose attribute matches); a key without one is a *return key* (the SCP
//! fills it in). Each query type starts with the return keys a user usually wants and
//! takes more with [`Query::with_return_key`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntax;

use crate::error::CFindError;
use crate::identifier::Key;
use crate::results::{InstanceResult, Match, SeriesResult, StudyResult};
use dimse::qr::{self, InformationModel, QueryLevel};

/// The longest UID the standard allows (PS3.5 9.1).
const UID_MAX_LEN: usize = 64;

/// The keys of a query, its level and its result limit: what every query type holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryKeys {
    level: QueryLevel,
    /// Tag -> (VR, value); an empty value makes a return key.
    keys: BTreeMap<Tag, (VR, String)>,
    limit: Option<usize>,
}

impl QueryKeys {
    fn new(level: QueryLevel, return_keys: &[Tag]) -> Self {
        let mut keys = QueryKeys {
            level,
            keys: BTreeMap::new(),
            limit: None,
        };
        for tag in return_keys {
            keys.set(Key::known(*tag), String::new());
        }
        keys
    }

    fn set(&mut self, key: Key, value: String) {
        self.keys.insert(key.tag(), (key.vr(), value));
    }

    /// The query level.
    pub fn level(&self) -> QueryLevel {
        self.level
    }

    /// The largest number of matches to collect before cancelling the query.
    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// The value of a match key (`None` for a return key or an absent key).
    pub fn match_value(&self, tag: Tag) -> Option<&str> {
        self.keys
            .get(&tag)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    }

    /// Every key with its value (empty for return keys), in tag order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &str)> {
        self.keys
            .iter()
            .map(|(tag, (vr, value))| (Key::new(*tag, *vr), value.as_str()))
    }

    /// Encodes the identifier for `model` in the transfer syntax of the accepted context.
    ///
    /// Patient Root queries get an empty PatientID key when they have none: hierarchical
    /// SCPs (DCMTK's dcmqrscp among them) refuse a study-level query without a key at
    /// the patient level.
    pub(crate) fn encode(
        &self,
        model: InformationModel,
        ts: &TransferSyntax,
    ) -> Result<Vec<u8>, CFindError> {
        let mut object = InMemDicomObject::new_empty();
        object.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(self.level.code()),
        ));
        let mut non_ascii = false;
        for (tag, (vr, value)) in &self.keys {
            validate(*tag, *vr, value)?;
            non_ascii |= !value.is_ascii();
            object.put(element(*tag, *vr, value));
        }
        if model == InformationModel::PatientRoot && !self.keys.contains_key(&tags::PATIENT_ID) {
            object.put(DataElement::new(
                tags::PATIENT_ID,
                VR::LO,
                PrimitiveValue::Empty,
            ));
        }
        if non_ascii {
            object.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from("ISO_IR 192"),
            ));
        }
        let mut bytes = Vec::with_capacity(256);
        object
            .write_dataset_with_ts(&mut bytes, ts)
            .map_err(|e| CFindError::Encode {
                detail: e.to_string(),
            })?;
        Ok(bytes)
    }
}

fn element(tag: Tag, vr: VR, value: &str) -> dicom_object::mem::InMemElement {
    if value.is_empty() {
        return DataElement::new(tag, vr, PrimitiveValue::Empty);
    }
    if value.contains('\\') {
        let parts: Vec<String> = value.split('\\').map(str::to_string).collect();
        return DataElement::new(tag, vr, PrimitiveValue::Strs(parts.into()));
    }
    DataElement::new(tag, vr, PrimitiveValue::from(value))
}

/// Checks the match values whose syntax the standard fixes (UIDs, dates), so a typo
/// is reported here instead of silently matching nothing at the SCP.
fn validate(tag: Tag, vr: VR, value: &str) -> Result<(), CFindError> {
    if value.is_empty() {
        return Ok(());
    }
    let invalid = |reason: String| CFindError::InvalidMatchValue {
        key: Key::new(tag, vr).keyword(),
        value: value.chars().take(80).collect(),
        reason,
    };
    match vr {
        VR::UI => {
            for uid in value.split('\\') {
                if uid.is_empty()
                    || uid.len() > UID_MAX_LEN
                    || !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                {
                    return Err(invalid(format!(
                        "`{uid}` is not a UID (digits and dots, at most {UID_MAX_LEN} characters)"
                    )));
                }
            }
        }
        VR::DA => {
            for part in value.split('\\') {
                let (from, to) = part.split_once('-').unwrap_or((part, part));
                let parse = |d: &str| {
                    if d.is_empty() {
                        Ok(None)
                    } else {
                        NaiveDate::parse_from_str(d, "%Y%m%d")
                            .map(Some)
                            .map_err(|_| invalid(format!("`{d}` is not a date YYYYMMDD")))
                    }
                };
                if let (Some(from), Some(to)) = (parse(from)?, parse(to)?)
                    && from > to
                {
                    return Err(invalid(format!("the range {part} ends before it starts")));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A date in the DA format, `YYYYMMDD`.
pub fn dicom_date(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

/// Behaviour shared by [`StudyQuery`], [`SeriesQuery`] and [`InstanceQuery`].
pub trait Query {
    /// What one match of this query is decoded into.
    type Match: Match;

    /// The keys, level and limit.
    fn keys(&self) -> &QueryKeys;

    /// The keys, level and limit, to change.
    fn keys_mut(&mut self) -> &mut QueryKeys;

    /// Adds a match key: only entities whose attribute matches `value` are returned
    /// (single value, `*`/`?` wildcards, `A-B` ranges or a `\`-separated list, as
    /// PS3.4 C.2.2.2 defines for the attribute's VR).
    fn with_match(mut self, key: Key, value: impl Into<String>) -> Self
    where
        Self: Sized,
    {
        self.keys_mut().set(key, value.into());
        self
    }

    /// Adds a return key: the SCP fills it in each match (if it supports it).
    fn with_return_key(mut self, key: Key) -> Self
    where
        Self: Sized,
    {
        let keys = self.keys_mut();
        if !keys.keys.contains_key(&key.tag()) {
            keys.set(key, String::new());
        }
        self
    }

    /// Adds several return keys.
    fn with_return_keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self
    where
        Self: Sized,
    {
        for key in keys {
            self = self.with_return_key(key);
        }
        self
    }

    /// Collects at most `limit` matches, then sends a C-CANCEL and drains the SCP's
    /// remaining responses; the result says it was truncated.
    fn with_limit(mut self, limit: usize) -> Self
    where
        Self: Sized,
    {
        self.keys_mut().limit = Some(limit);
        self
    }
}

/// Implements [`Query`] for a query type holding its [`QueryKeys`] in `keys`.
macro_rules! impl_query {
    ($query:ty, $match:ty) => {
        impl Query for $query {
            type Match = $match;

            fn keys(&self) -> &QueryKeys {
                &self.keys
            }

            fn keys_mut(&mut self) -> &mut QueryKeys {
                &mut self.keys
            }
        }
    };
}

/// Return keys of a study query unless more are asked for: the study's own attributes
/// and the counts an SCP computes for it ([`dimse::qr`]), with the patient's name, ID
/// and birth date so that a match says whose study it is.
pub const STUDY_RETURN_KEYS: [Tag; 13] = concat([
    qr::STUDY_ATTRIBUTES,
    qr::STUDY_COUNT_ATTRIBUTES,
    &[
        tags::PATIENT_NAME,
        tags::PATIENT_ID,
        tags::PATIENT_BIRTH_DATE,
    ],
]);

/// Return keys of a series query unless more are asked for: the series attributes a
/// user reads in a listing (not all of [`dimse::qr::SERIES_ATTRIBUTES`]: station and
/// department are routing matters) and the instance count.
pub const SERIES_RETURN_KEYS: [Tag; 8] = [
    tags::SERIES_DATE,
    tags::SERIES_TIME,
    tags::MODALITY,
    tags::SERIES_DESCRIPTION,
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::SERIES_NUMBER,
    tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
];

/// Return keys of an image query unless more are asked for: the instance's own
/// attributes ([`dimse::qr::INSTANCE_ATTRIBUTES`]) and the UIDs of its study and series.
pub const INSTANCE_RETURN_KEYS: [Tag; 5] = concat([
    qr::INSTANCE_ATTRIBUTES,
    &[tags::STUDY_INSTANCE_UID, tags::SERIES_INSTANCE_UID],
]);

/// The tags of `parts` one after the other, at compile time; `N` must be their total
/// (a wrong `N` fails the build).
const fn concat<const N: usize, const P: usize>(parts: [&[Tag]; P]) -> [Tag; N] {
    let mut keys = [Tag(0, 0); N];
    let mut filled = 0;
    let mut part = 0;
    while part < P {
        let mut i = 0;
        while i < parts[part].len() {
            keys[filled] = parts[part][i];
            filled += 1;
            i += 1;
        }
        part += 1;
    }
    assert!(
        filled == N,
        "the return-key count does not match its tables"
    );
    keys
}

/// A STUDY-level query.
///
/// ```
/// use cfind::{NaiveDate, Query, StudyQuery, Key};
///
/// let query = StudyQuery::new()
///     .patient_id("PID-1")
///     .study_dates(
///         NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
///         NaiveDate::from_ymd_opt(2024, 1, 31).unwrap(),
///     )
///     .with_return_key(Key::parse("InstitutionName")?);
/// assert_eq!(
///     query.keys().match_value(dicom_dictionary_std::tags::STUDY_DATE),
///     Some("20240101-20240131")
/// );
/// # Ok::<(), cfind::CFindError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudyQuery {
    keys: QueryKeys,
}

impl Default for StudyQuery {
    fn default() -> Self {
        Self::new()
    }
}

impl StudyQuery {
    /// Every study, with the usual return keys ([`STUDY_RETURN_KEYS`]).
    pub fn new() -> Self {
        StudyQuery {
            keys: QueryKeys::new(QueryLevel::Study, &STUDY_RETURN_KEYS),
        }
    }

    /// Studies with only StudyInstanceUID, PatientID and NumberOfStudyRelatedInstances
    /// returned: the small answers delivery verification needs.
    pub fn minimal() -> Self {
        StudyQuery {
            keys: QueryKeys::new(
                QueryLevel::Study,
                &[
                    tags::PATIENT_ID,
                    tags::STUDY_INSTANCE_UID,
                    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
                ],
            ),
        }
    }

    /// The study with this StudyInstanceUID.
    pub fn by_study_instance_uid(uid: &str) -> Self {
        Self::new().study_instance_uid(uid)
    }

    /// The studies of this PatientID.
    pub fn by_patient_id(patient_id: &str) -> Self {
        Self::new().patient_id(patient_id)
    }

    /// Studies dated from `from` to `to`, both included.
    pub fn by_study_dates(from: NaiveDate, to: NaiveDate) -> Self {
        Self::new().study_dates(from, to)
    }

    /// Studies with a series of this modality (ModalitiesInStudy).
    pub fn by_modality(modality: &str) -> Self {
        Self::new().modality(modality)
    }

    /// Studies dated today, in the local time zone.
    pub fn today() -> Self {
        Self::new().study_date(chrono::Local::now().date_naive())
    }

    /// Matches one StudyInstanceUID.
    pub fn study_instance_uid(self, uid: &str) -> Self {
        self.with_match(Key::known(tags::STUDY_INSTANCE_UID), uid.trim())
    }

    /// Matches any of several StudyInstanceUIDs (UID list matching).
    pub fn study_instance_uids<S: AsRef<str>>(self, uids: &[S]) -> Self {
        let list = uids
            .iter()
            .map(|uid| uid.as_ref().trim())
            .collect::<Vec<_>>()
            .join("\\");
        self.with_match(Key::known(tags::STUDY_INSTANCE_UID), list)
    }

    /// Matches a PatientID (`*` and `?` are wildcards).
    pub fn patient_id(self, patient_id: &str) -> Self {
        self.with_match(Key::known(tags::PATIENT_ID), patient_id)
    }

    /// Matches one StudyDate.
    pub fn study_date(self, date: NaiveDate) -> Self {
        self.with_match(Key::known(tags::STUDY_DATE), dicom_date(date))
    }

    /// Matches StudyDate from `from` to `to`, both included.
    pub fn study_dates(self, from: NaiveDate, to: NaiveDate) -> Self {
        let range = format!("{}-{}", dicom_date(from), dicom_date(to));
        self.with_match(Key::known(tags::STUDY_DATE), range)
    }

    /// Matches ModalitiesInStudy.
    pub fn modality(self, modality: &str) -> Self {
        self.with_match(Key::known(tags::MODALITIES_IN_STUDY), modality.trim())
    }

    /// Matches AccessionNumber.
    pub fn accession_number(self, accession_number: &str) -> Self {
        self.with_match(Key::known(tags::ACCESSION_NUMBER), accession_number)
    }
}

impl_query!(StudyQuery, StudyResult);

/// A SERIES-level query under one study.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesQuery {
    keys: QueryKeys,
}

impl SeriesQuery {
    /// The series of a study, with the usual return keys ([`SERIES_RETURN_KEYS`]).
    pub fn in_study(study_instance_uid: &str) -> Self {
        SeriesQuery {
            keys: QueryKeys::new(QueryLevel::Series, &SERIES_RETURN_KEYS),
        }
        .with_match(
            Key::known(tags::STUDY_INSTANCE_UID),
            study_instance_uid.trim(),
        )
    }

    /// Matches Modality.
    pub fn modality(self, modality: &str) -> Self {
        self.with_match(Key::known(tags::MODALITY), modality.trim())
    }
}

impl_query!(SeriesQuery, SeriesResult);

/// An IMAGE-level query under one study (and optionally one series).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceQuery {
    keys: QueryKeys,
}

impl InstanceQuery {
    /// The instances of one series, with the usual return keys ([`INSTANCE_RETURN_KEYS`]).
    pub fn in_series(study_instance_uid: &str, series_instance_uid: &str) -> Self {
        Self::in_study(study_instance_uid).with_match(
            Key::known(tags::SERIES_INSTANCE_UID),
            series_instance_uid.trim(),
        )
    }

    /// The instances of a whole study. SeriesInstanceUID is sent as a return key: some
    /// SCPs (dcmqrscp) answer an image query without it with a failure.
    pub fn in_study(study_instance_uid: &str) -> Self {
        InstanceQuery {
            keys: QueryKeys::new(QueryLevel::Image, &INSTANCE_RETURN_KEYS),
        }
        .with_match(
            Key::known(tags::STUDY_INSTANCE_UID),
            study_instance_uid.trim(),
        )
    }

    /// The instances of several studies (UID list), with only the UIDs returned: what
    /// counting instances needs when an SCP does not report study counts.
    pub fn in_studies<S: AsRef<str>>(study_instance_uids: &[S]) -> Self {
        InstanceQuery {
            keys: QueryKeys::new(
                QueryLevel::Image,
                &[
                    tags::SOP_INSTANCE_UID,
                    tags::STUDY_INSTANCE_UID,
                    tags::SERIES_INSTANCE_UID,
                ],
            ),
        }
        .with_match(
            Key::known(tags::STUDY_INSTANCE_UID),
            study_instance_uids
                .iter()
                .map(|uid| uid.as_ref().trim())
                .collect::<Vec<_>>()
                .join("\\"),
        )
    }
}

impl_query!(InstanceQuery, InstanceResult);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_return_keys_are_the_levels_attributes() {
        let study: std::collections::BTreeSet<Tag> = STUDY_RETURN_KEYS.into_iter().collect();
        assert_eq!(study.len(), 13, "no key twice");
        for tag in qr::STUDY_ATTRIBUTES
            .iter()
            .chain(qr::STUDY_COUNT_ATTRIBUTES)
        {
            assert!(study.contains(tag), "{tag}");
        }
        assert!(study.contains(&tags::PATIENT_ID));
        for tag in SERIES_RETURN_KEYS {
            assert!(
                qr::SERIES_ATTRIBUTES
                    .iter()
                    .chain(qr::SERIES_COUNT_ATTRIBUTES)
                    .chain(&[tags::STUDY_INSTANCE_UID])
                    .any(|t| *t == tag),
                "{tag}"
            );
        }
        assert!(INSTANCE_RETURN_KEYS.contains(&tags::SOP_INSTANCE_UID));
        assert!(INSTANCE_RETURN_KEYS.contains(&tags::SERIES_INSTANCE_UID));
    }
    use crate::identifier::Identifier;
    use dicom_transfer_syntax_registry::entries::{
        EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
    };

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_uid_list_is_encoded_as_one_multi_valued_key() {
        let query = StudyQuery::minimal().study_instance_uids(&["1.2.3", "1.2.4", " 1.2.5 "]);
        let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
        let bytes = query
            .keys()
            .encode(InformationModel::StudyRoot, &ts)
            .unwrap();
        let sent = Identifier::decode(&bytes, &ts).unwrap().identifier;
        assert_eq!(
            sent.get(tags::STUDY_INSTANCE_UID),
            Some("1.2.3\\1.2.4\\1.2.5")
        );
        assert_eq!(sent.get(tags::QUERY_RETRIEVE_LEVEL), Some("STUDY"));
        assert_eq!(sent.get(tags::NUMBER_OF_STUDY_RELATED_INSTANCES), Some(""));
    }

    #[test]
    fn patient_root_queries_always_carry_a_patient_id_key() {
        let query = SeriesQuery::in_study("1.2.3");
        let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
        let patient_root = query
            .keys()
            .encode(InformationModel::PatientRoot, &ts)
            .unwrap();
        let study_root = query
            .keys()
            .encode(InformationModel::StudyRoot, &ts)
            .unwrap();
        let decode = |b: &[u8]| Identifier::decode(b, &ts).unwrap().identifier;
        assert_eq!(decode(&patient_root).get(tags::PATIENT_ID), Some(""));
        assert!(!decode(&study_root).contains(tags::PATIENT_ID));
    }

    #[test]
    fn date_ranges_and_today_use_the_da_format() {
        let range = StudyQuery::by_study_dates(date(2024, 2, 1), date(2024, 2, 29));
        assert_eq!(
            range.keys().match_value(tags::STUDY_DATE),
            Some("20240201-20240229")
        );
        let today = StudyQuery::today();
        let expected = dicom_date(chrono::Local::now().date_naive());
        assert_eq!(
            today.keys().match_value(tags::STUDY_DATE),
            Some(expected.as_str())
        );
    }

    #[test]
    fn a_reversed_date_range_is_refused_before_sending() {
        let query = StudyQuery::by_study_dates(date(2024, 3, 1), date(2024, 2, 1));
        let err = query
            .keys()
            .encode(
                InformationModel::StudyRoot,
                &EXPLICIT_VR_LITTLE_ENDIAN.erased(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("ends before it starts"), "{err}");
    }

    #[test]
    fn a_malformed_uid_is_refused_naming_the_key() {
        let query = StudyQuery::by_study_instance_uid("1.2.3a");
        let err = query
            .keys()
            .encode(
                InformationModel::StudyRoot,
                &EXPLICIT_VR_LITTLE_ENDIAN.erased(),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("StudyInstanceUID") && text.contains("1.2.3a"),
            "{text}"
        );
    }

    #[test]
    fn extra_return_keys_do_not_erase_match_values() {
        let query = StudyQuery::by_patient_id("P1")
            .with_return_key(Key::parse("PatientID").unwrap())
            .with_return_key(Key::parse("InstitutionName").unwrap());
        assert_eq!(query.keys().match_value(tags::PATIENT_ID), Some("P1"));
        assert!(
            query
                .keys()
                .iter()
                .any(|(k, _)| k.keyword() == "InstitutionName")
        );
    }

    #[test]
    fn non_ascii_values_declare_utf8() {
        let query = StudyQuery::new().with_match(Key::parse("PatientName").unwrap(), "Müller*");
        let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
        let bytes = query
            .keys()
            .encode(InformationModel::StudyRoot, &ts)
            .unwrap();
        let sent = Identifier::decode(&bytes, &ts).unwrap().identifier;
        assert_eq!(sent.get(tags::PATIENT_NAME), Some("Müller*"));
    }
}
