//! What a route does to an instance: the validations refuse it or fix it, then the
//! morphing rules change it, in file order.

use chrono::{Datelike, NaiveDate, Utc};
use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dimse::Status;

use super::model::{Action, Condition, Route, Test, Validation};
use super::tag_name;
use crate::values::{has_value, put_text, text};

/// Why an instance was refused: the status to answer and an ErrorComment naming
/// the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The C-STORE status.
    pub status: Status,
    /// Which rule refused it and why.
    pub comment: String,
}

impl Route {
    /// Runs the checks then the morphing rules on `obj`, changing it in place.
    /// `today` is the current date as `YYYYMMDD` (UTC).
    pub fn process(&self, obj: &mut InMemDicomObject, today: &str) -> Result<(), Rejection> {
        for validation in &self.validations {
            validation.apply(obj, today)?;
        }
        for rule in &self.morphs {
            if rule.when.iter().all(|c| c.holds(obj)) {
                for action in &rule.actions {
                    action.apply(obj);
                }
                if rule.stop {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Validation {
    fn apply(&self, obj: &mut InMemDicomObject, today: &str) -> Result<(), Rejection> {
        match self {
            Validation::BlankStudyDate { fill_from, status } => {
                if has_value(obj, tags::STUDY_DATE) {
                    return Ok(());
                }
                let source = fill_from.iter().find_map(|t| {
                    text(obj, t.tag)
                        .filter(|d| is_valid_date(d))
                        .map(|d| (t, d))
                });
                match source {
                    Some((_, date)) => {
                        put_text(obj, tags::STUDY_DATE, dicom_core::VR::DA, &date);
                        Ok(())
                    }
                    None if fill_from.is_empty() => Err(reject(*status, "StudyDate is blank")),
                    None => Err(reject(*status, "StudyDate blank, no date to fill it from")),
                }
            }
            Validation::AccessionNumber {
                pattern,
                max_length,
                allow_blank,
                normalise,
                status,
            } => {
                let value = text(obj, tags::ACCESSION_NUMBER).unwrap_or_default();
                if value.is_empty() {
                    return if *allow_blank {
                        Ok(())
                    } else {
                        Err(reject(*status, "AccessionNumber is blank"))
                    };
                }
                let fits = |v: &str| v.chars().count() <= *max_length && pattern.is_match(v);
                if fits(&value) {
                    return Ok(());
                }
                if *normalise {
                    let fixed: String = value
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric())
                        .take(*max_length)
                        .collect();
                    if !fixed.is_empty() && fits(&fixed) {
                        put_text(obj, tags::ACCESSION_NUMBER, dicom_core::VR::SH, &fixed);
                        return Ok(());
                    }
                }
                let len = value.chars().count();
                Err(reject(
                    *status,
                    &if len > *max_length {
                        format!("AccessionNumber too long ({len} > {max_length})")
                    } else {
                        format!("AccessionNumber '{value}' does not match")
                    },
                ))
            }
            Validation::StudyDateValid {
                allow_future,
                status,
            } => {
                let Some(date) = text(obj, tags::STUDY_DATE).filter(|d| !d.is_empty()) else {
                    return Ok(());
                };
                if !is_valid_date(&date) {
                    return Err(reject(
                        *status,
                        &format!("StudyDate '{date}' is not a date"),
                    ));
                }
                if !allow_future && date.as_str() > add_one_day(today).as_str() {
                    return Err(reject(
                        *status,
                        &format!("StudyDate {date} is in the future"),
                    ));
                }
                Ok(())
            }
            Validation::Required { tag, status } => {
                if has_value(obj, tag.tag) {
                    Ok(())
                } else {
                    Err(reject(
                        *status,
                        &format!("{} is missing", tag_name(tag.tag)),
                    ))
                }
            }
        }
    }
}

fn reject(status: Status, comment: &str) -> Rejection {
    Rejection {
        status,
        comment: comment.to_string(),
    }
}

impl Condition {
    /// Whether the condition holds on `obj`.
    pub fn holds(&self, obj: &InMemDicomObject) -> bool {
        let value = text(obj, self.tag.tag);
        let fold = |s: &str| {
            if self.ignore_case {
                s.to_lowercase()
            } else {
                s.to_string()
            }
        };
        match &self.test {
            Test::Present => has_value(obj, self.tag.tag),
            Test::Absent => !has_value(obj, self.tag.tag),
            Test::Equals(expected) => value.is_some_and(|v| fold(&v) == fold(expected)),
            Test::Contains(needle) => value.is_some_and(|v| fold(&v).contains(&fold(needle))),
            Test::Regex(re) => value.is_some_and(|v| re.is_match(&v)),
            Test::AnyOf(options) => {
                value.is_some_and(|v| options.iter().any(|o| fold(o) == fold(&v)))
            }
        }
    }
}

impl Action {
    fn apply(&self, obj: &mut InMemDicomObject) {
        match self {
            Action::Set { tag, value } => {
                let v = value.render(obj);
                put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
            }
            Action::Copy { tag, from } => {
                if let Some(v) = text(obj, from.tag) {
                    put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
                }
            }
            Action::Prepend { tag, value } => {
                let v = format!(
                    "{}{}",
                    value.render(obj),
                    text(obj, tag.tag).unwrap_or_default()
                );
                put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
            }
            Action::Append { tag, value } => {
                let v = format!(
                    "{}{}",
                    text(obj, tag.tag).unwrap_or_default(),
                    value.render(obj)
                );
                put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
            }
            Action::Replace { tag, pattern, with } => {
                if let Some(v) = text(obj, tag.tag) {
                    let replaced = pattern.replace_all(&v, with.as_str()).into_owned();
                    if replaced != v {
                        put_text(obj, tag.tag, tag.vr_or(VR::LO), &replaced);
                    }
                }
            }
            Action::Remove { tag } => {
                obj.remove_element(tag.tag);
            }
        }
    }
}

/// Whether `s` is a DA value `YYYYMMDD` naming a real day.
pub(crate) fn is_valid_date(s: &str) -> bool {
    parse_da(s).is_some()
}

/// A DA value as a date. DA is exactly eight digits, which chrono's `%Y` alone would
/// not enforce (it takes a sign and more digits); year 0 is not a DICOM date.
fn parse_da(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y%m%d")
        .ok()
        .filter(|d| d.year() > 0)
}

/// `date` as a DA value `YYYYMMDD`.
fn format_da(date: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", date.year(), date.month(), date.day())
}

/// Today's date in UTC as `YYYYMMDD`.
pub fn today_utc() -> String {
    format_da(Utc::now().date_naive())
}

/// The day after `yyyymmdd` (a date one day ahead of UTC is still "today" in the
/// easternmost hospitals, so "future" starts after tomorrow UTC).
fn add_one_day(yyyymmdd: &str) -> String {
    parse_da(yyyymmdd)
        .and_then(|d| d.succ_opt())
        .map_or_else(|| yyyymmdd.to_string(), format_da)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;
    use chrono::DateTime;
    use dicom_core::Tag;

    fn oph() -> Route {
        Rules::default_rules()
            .route_for("LB-HTM-OPH")
            .unwrap()
            .clone()
    }

    /// An instance with a valid StudyDate unless `pairs` sets one.
    fn instance(pairs: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put_str(tags::STUDY_DATE, VR::DA, "20240101");
        for (t, vr, v) in pairs {
            obj.put_str(*t, *vr, *v);
        }
        obj
    }

    #[test]
    fn the_default_rules_load_and_have_three_routes() {
        let rules = Rules::default_rules();
        let names: Vec<_> = rules.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["HTM_GI", "HTM_OPH", "HTM_ORTHO"]);
        assert_eq!(rules.settings.query_ae_title.as_deref(), Some("LB-QUERY"));
        assert!(rules.faults.is_empty());
    }

    #[test]
    fn visual_field_gpa_gets_its_study_description() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OPV"),
            (tags::SERIES_DESCRIPTION, VR::LO, "SITA-Standard 24-2 GPA"),
            (tags::STUDY_DATE, VR::DA, "20240105"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("Visual Fields (VF) GPA")
        );
        assert_eq!(
            text(&obj, tags::INSTITUTIONAL_DEPARTMENT_NAME).as_deref(),
            Some("Ophthalmology")
        );
    }

    #[test]
    fn stop_ends_the_chain_at_the_first_matching_rule() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OPV"),
            (tags::SERIES_DESCRIPTION, VR::LO, "Threshold"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("Visual Fields (VF)")
        );
    }

    #[test]
    fn laterality_is_appended_with_a_template() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OPT"),
            (tags::SERIES_DESCRIPTION, VR::LO, "Macula Cube"),
            (tags::LATERALITY, VR::CS, "R"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::SERIES_DESCRIPTION).as_deref(),
            Some("Macula Cube (R)")
        );
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("OCT Macula")
        );
    }

    #[test]
    fn blank_study_date_is_filled_from_the_first_available_date() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OP"),
            (tags::STUDY_DATE, VR::DA, ""),
            (tags::CONTENT_DATE, VR::DA, "20240202"),
            (tags::SERIES_DATE, VR::DA, "20240303"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        // OPH fills from AcquisitionDate, then ContentDate, then SeriesDate.
        assert_eq!(text(&obj, tags::STUDY_DATE).as_deref(), Some("20240202"));
    }

    #[test]
    fn ortho_rejects_a_blank_study_date_with_its_status() {
        let ortho = Rules::default_rules()
            .route_for("LB-HTM-ORTHO")
            .unwrap()
            .clone();
        let mut obj = instance(&[
            (tags::PATIENT_ID, VR::LO, "P1"),
            (tags::MODALITY, VR::CS, "DX"),
        ]);
        obj.remove_element(tags::STUDY_DATE);
        let rejection = ortho.process(&mut obj, "20250101").unwrap_err();
        assert_eq!(rejection.status, Status(0xA900));
        assert!(
            rejection.comment.contains("StudyDate"),
            "{}",
            rejection.comment
        );
    }

    #[test]
    fn accession_numbers_are_normalised_or_rejected_per_route() {
        let mut obj = instance(&[(tags::ACCESSION_NUMBER, VR::SH, "ACC-2024-000123456789")]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::ACCESSION_NUMBER).as_deref(),
            Some("ACC2024000123456")
        );

        let ortho = Rules::default_rules()
            .route_for("LB-HTM-ORTHO")
            .unwrap()
            .clone();
        let mut obj = instance(&[
            (tags::PATIENT_ID, VR::LO, "P1"),
            (tags::STUDY_DATE, VR::DA, "20240101"),
            (tags::ACCESSION_NUMBER, VR::SH, "ACC-1"),
        ]);
        let rejection = ortho.process(&mut obj, "20250101").unwrap_err();
        assert_eq!(rejection.status, Status(0xC000));
    }

    #[test]
    fn future_and_impossible_study_dates_are_rejected() {
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20250103")]);
        let r = oph().process(&mut obj, "20250101").unwrap_err();
        assert!(r.comment.contains("future"), "{}", r.comment);
        // Tomorrow (UTC) is still today somewhere.
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20250102")]);
        oph().process(&mut obj, "20250101").unwrap();
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20230229")]);
        assert!(oph().process(&mut obj, "20250101").is_err());
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20240229")]);
        oph().process(&mut obj, "20250101").unwrap();
    }

    #[test]
    fn ortho_names_radiographs_by_body_part() {
        let ortho = Rules::default_rules()
            .route_for("LB-HTM-ORTHO")
            .unwrap()
            .clone();
        for (part, expected) in [
            ("KNEE", "XR Knee"),
            ("PELVIS", "XR Hip/Pelvis"),
            ("ELBOW", "XR ELBOW"),
            ("", "XR Unspecified"),
        ] {
            let mut obj = instance(&[
                (tags::PATIENT_ID, VR::LO, "P1"),
                (tags::PATIENT_NAME, VR::PN, "DOE^JANE^^"),
                (tags::STUDY_DATE, VR::DA, "20240101"),
                (tags::MODALITY, VR::CS, "CR"),
                (tags::BODY_PART_EXAMINED, VR::CS, part),
            ]);
            ortho.process(&mut obj, "20250101").unwrap();
            assert_eq!(
                text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
                Some(expected),
                "{part}"
            );
            assert_eq!(text(&obj, tags::PATIENT_NAME).as_deref(), Some("DOE^JANE"));
        }
    }

    #[test]
    fn gi_copies_removes_and_prepends() {
        let gi = Rules::default_rules()
            .route_for("LB-HTM-GI")
            .unwrap()
            .clone();
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "ES"),
            (tags::PROTOCOL_NAME, VR::LO, "Colonoscopy screening"),
            (tags::PATIENT_COMMENTS, VR::LT, "moved from old PAS"),
            (tags::STATION_NAME, VR::SH, "SCOPE1"),
        ]);
        gi.process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::SERIES_DESCRIPTION).as_deref(),
            Some("Colonoscopy screening")
        );
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("Endoscopy Colonoscopy")
        );
        assert!(obj.get(tags::PATIENT_COMMENTS).is_none());
        assert_eq!(text(&obj, tags::STATION_NAME).as_deref(), Some("GI-SCOPE1"));
    }

    #[test]
    fn dates_convert_both_ways() {
        assert_eq!(format_da(DateTime::UNIX_EPOCH.date_naive()), "19700101");
        assert_eq!(add_one_day("20241231"), "20250101");
        assert_eq!(add_one_day("20240228"), "20240229");
        assert_eq!(today_utc().len(), 8);
    }

    #[test]
    fn only_eight_digit_real_days_are_dates() {
        assert!(is_valid_date("20240229"));
        for not_a_date in [
            "20230229",
            "20241301",
            "20240100",
            "00000101",
            "2024011",
            "202401011",
            "+2024010",
            "2024-1-1",
            " 2024010",
            "2024010a",
            "",
        ] {
            assert!(!is_valid_date(not_a_date), "{not_a_date:?}");
        }
        assert_eq!(add_one_day("not a date"), "not a date");
    }
}
