//! The one text-to-value converter of the workspace: a value written as text (a rules file,
//! a command line, a test's override) becomes a value dicom-rs can store, for the attribute's
//! value representation.
//!
//! Checked, the text must follow the rules of its VR (PS3.5 Table 6.2-1: lengths, character
//! sets, calendar dates, UID syntax); tools that edit real data (tagutil) use this.
//! Unchecked, only what the VR's binary type needs is enforced (numbers must parse), so a test
//! can build deliberately invalid data (a 20-character CS, a date like `2024-13-45`).

use dicom_core::VR;
use dicom_core::chrono::NaiveDate;
use dicom_core::value::PrimitiveValue;

/// Whether [`text_to_value`] checks text against the rules of its VR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrCheck {
    /// Reject text that breaks the VR's rules (length, characters, date and UID syntax).
    Checked,
    /// Take string VRs as given; only numbers for binary VRs must parse.
    Unchecked,
}

/// Text that cannot become a value of the VR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The text breaks a rule of the VR (checked conversion only).
    #[error("{reason}")]
    Invalid {
        /// The value representation checked against.
        vr: VR,
        /// Which rule the text breaks, in words.
        reason: String,
    },
    /// A binary numeric VR (US, SL, FD...) got a part that is not a number of its type.
    #[error("`{part}` is not a number of the attribute's binary type ({})", .vr.to_string())]
    NotANumber {
        /// The value representation.
        vr: VR,
        /// The offending part of a `\`-separated value.
        part: String,
    },
    /// Values of this VR (OB, SQ, AT...) have no text form.
    #[error("values of VR {} cannot be given as text", .vr.to_string())]
    NotText {
        /// The value representation.
        vr: VR,
    },
}

/// Whether values of `vr` are text (PS3.5 6.2): the VRs whose values are character
/// strings, multi-valued with a backslash or single-valued.
pub fn is_text_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::LT
            | VR::PN
            | VR::SH
            | VR::ST
            | VR::TM
            | VR::UC
            | VR::UI
            | VR::UR
            | VR::UT
    )
}

/// Whether `vr` is a text VR holding one value, in which a backslash is an ordinary
/// character (LT, ST, UT, UR).
pub fn is_single_valued_text_vr(vr: VR) -> bool {
    matches!(vr, VR::LT | VR::ST | VR::UT | VR::UR)
}

/// Converts `text` into a value of `vr`, checking it against the VR's rules when `check` says
/// so.
///
/// Multi-valued VRs take their values separated by `\`, as in the standard's encoding; an empty
/// text is an empty value for any VR. The error says which rule the text breaks; callers add the
/// attribute.
///
/// ```
/// use dicom_core::VR;
/// use dicom_core::value::PrimitiveValue;
/// use dimse::{VrCheck, text_to_value};
///
/// assert_eq!(text_to_value(VR::US, "512", VrCheck::Checked)?, PrimitiveValue::from(512_u16));
/// assert!(text_to_value(VR::CS, "lower case", VrCheck::Checked).is_err());
/// assert!(text_to_value(VR::CS, "lower case", VrCheck::Unchecked).is_ok());
/// # Ok::<(), dimse::ValueError>(())
/// ```
pub fn text_to_value(vr: VR, text: &str, check: VrCheck) -> Result<PrimitiveValue, ValueError> {
    if text.is_empty() {
        return Ok(PrimitiveValue::Empty);
    }
    let checked = check == VrCheck::Checked;
    let invalid = |reason: String| ValueError::Invalid { vr, reason };
    match vr {
        // Single-valued text: a backslash is an ordinary character here.
        vr if is_single_valued_text_vr(vr) => {
            if checked {
                check_single_text(vr, text).map_err(invalid)?;
            }
            Ok(PrimitiveValue::from(text.to_owned()))
        }
        vr if is_text_vr(vr) => {
            let parts: Vec<&str> = text.split('\\').collect();
            if checked {
                for part in &parts {
                    check_component(vr, part).map_err(invalid)?;
                }
            }
            Ok(if parts.len() == 1 {
                PrimitiveValue::from(text.to_owned())
            } else {
                PrimitiveValue::Strs(parts.iter().map(|p| (*p).to_owned()).collect())
            })
        }
        VR::US => numbers(vr, text, PrimitiveValue::U16),
        VR::SS => numbers(vr, text, PrimitiveValue::I16),
        VR::UL => numbers(vr, text, PrimitiveValue::U32),
        VR::SL => numbers(vr, text, PrimitiveValue::I32),
        VR::UV => numbers(vr, text, PrimitiveValue::U64),
        VR::SV => numbers(vr, text, PrimitiveValue::I64),
        VR::FL => numbers(vr, text, PrimitiveValue::F32),
        VR::FD => numbers(vr, text, PrimitiveValue::F64),
        vr => Err(ValueError::NotText { vr }),
    }
}

fn numbers<T: std::str::FromStr>(
    vr: VR,
    text: &str,
    wrap: impl FnOnce(dicom_core::value::C<T>) -> PrimitiveValue,
) -> Result<PrimitiveValue, ValueError> {
    let parsed = text
        .split('\\')
        .map(|part| {
            part.trim()
                .parse::<T>()
                .map_err(|_| ValueError::NotANumber {
                    vr,
                    part: part.to_owned(),
                })
        })
        .collect::<Result<dicom_core::value::C<T>, ValueError>>()?;
    Ok(wrap(parsed))
}

fn check_chars(value: &str, allow_backslash: bool, allow_newlines: bool) -> Result<(), String> {
    for c in value.chars() {
        let allowed_control =
            c == '\x1b' || (allow_newlines && matches!(c, '\r' | '\n' | '\t' | '\x0c'));
        if c.is_control() && !allowed_control {
            return Err(format!(
                "control character U+{:04X} is not allowed",
                c as u32
            ));
        }
        if c == '\\' && !allow_backslash {
            return Err("backslash is not allowed".to_owned());
        }
    }
    Ok(())
}

fn max_len(vr: VR, value: &str, max: usize) -> Result<(), String> {
    // Limits in PS3.5 are in bytes of the encoded value; for the default character repertoire
    // that is the UTF-8 byte length, which is never shorter than the character count.
    let len = value.len();
    if len > max {
        Err(format!(
            "is {len} bytes long; {} allows at most {max}",
            vr.to_string()
        ))
    } else {
        Ok(())
    }
}

fn check_single_text(vr: VR, value: &str) -> Result<(), String> {
    match vr {
        VR::LT => {
            max_len(vr, value, 10240)?;
            check_chars(value, true, true)
        }
        VR::ST => {
            max_len(vr, value, 1024)?;
            check_chars(value, true, true)
        }
        VR::UT => check_chars(value, true, true),
        VR::UR => {
            if value.starts_with(' ') {
                return Err("leading spaces are not allowed in a URI".to_owned());
            }
            check_chars(value, false, false)
        }
        _ => unreachable!("single-valued text VRs only"),
    }
}

/// Checks one value of a multi-valued string VR.
fn check_component(vr: VR, value: &str) -> Result<(), String> {
    match vr {
        VR::AE => {
            max_len(vr, value, 16)?;
            check_chars(value, false, false)?;
            if !value.is_empty() && value.trim().is_empty() {
                return Err("an AE title made only of spaces is not allowed".to_owned());
            }
            Ok(())
        }
        VR::AS => {
            let bytes = value.as_bytes();
            let ok = bytes.len() == 4
                && bytes[..3].iter().all(u8::is_ascii_digit)
                && matches!(bytes[3], b'D' | b'W' | b'M' | b'Y');
            if ok {
                Ok(())
            } else {
                Err("an age must be nnnD, nnnW, nnnM or nnnY (e.g. 042Y)".to_owned())
            }
        }
        VR::CS => {
            max_len(vr, value, 16)?;
            if value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '_')
            {
                Ok(())
            } else {
                Err(
                    "a code string allows only uppercase A-Z, digits, space and underscore"
                        .to_owned(),
                )
            }
        }
        VR::DA => check_date(value.trim_end()),
        VR::DT => check_datetime(value.trim_end()),
        VR::TM => check_time(value.trim_end()),
        VR::DS => {
            max_len(vr, value, 16)?;
            let trimmed = value.trim();
            let valid_chars = trimmed
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'));
            if valid_chars && trimmed.parse::<f64>().is_ok_and(f64::is_finite) {
                Ok(())
            } else {
                Err("a decimal string must be a finite number such as 1.5 or -2E3".to_owned())
            }
        }
        VR::IS => {
            max_len(vr, value, 12)?;
            match value.trim().parse::<i64>() {
                Ok(n) if (-(1_i64 << 31)..(1_i64 << 31)).contains(&n) => Ok(()),
                _ => Err(
                    "an integer string must be a whole number between -2^31 and 2^31-1".to_owned(),
                ),
            }
        }
        VR::LO => {
            max_len(vr, value, 64)?;
            check_chars(value, false, false)
        }
        VR::SH => {
            max_len(vr, value, 16)?;
            check_chars(value, false, false)
        }
        VR::UC => check_chars(value, false, false),
        VR::PN => check_person_name(value),
        VR::UI => check_uid(value),
        _ => unreachable!("multi-valued string VRs only"),
    }
}

fn check_person_name(value: &str) -> Result<(), String> {
    check_chars(value, false, false)?;
    let groups: Vec<&str> = value.split('=').collect();
    if groups.len() > 3 {
        return Err("a person name has at most 3 component groups separated by '='".to_owned());
    }
    for group in groups {
        if group.len() > 64 {
            return Err(format!(
                "the component group `{group}` is {} bytes long; PN allows at most 64",
                group.len()
            ));
        }
        if group.split('^').count() > 5 {
            return Err("a person name has at most 5 components separated by '^'".to_owned());
        }
    }
    Ok(())
}

/// Checks a UID: digits and dots, at most 64 bytes, no empty component, no leading zero in a
/// component other than "0" itself (PS3.5 9.1).
pub fn check_uid(value: &str) -> Result<(), String> {
    let uid = value.trim_end_matches('\0');
    if uid.len() > 64 {
        return Err(format!(
            "a UID is at most 64 bytes; this one is {}",
            uid.len()
        ));
    }
    if !uid.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err("a UID may contain only digits and dots".to_owned());
    }
    for component in uid.split('.') {
        if component.is_empty() {
            return Err(
                "a UID may not have an empty component (`..`, or a dot at either end)".to_owned(),
            );
        }
        if component.len() > 1 && component.starts_with('0') {
            return Err(format!(
                "the UID component `{component}` has a leading zero"
            ));
        }
    }
    Ok(())
}

fn digits(s: &str, what: &str) -> Result<u32, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        s.parse::<u32>()
            .map_err(|_| format!("{what} `{s}` is not a number"))
    } else {
        Err(format!("{what} `{s}` must be digits"))
    }
}

fn check_date(value: &str) -> Result<(), String> {
    if value.len() != 8 {
        return Err("a date must be YYYYMMDD (8 digits)".to_owned());
    }
    let year = digits(&value[0..4], "year")?;
    let month = digits(&value[4..6], "month")?;
    let day = digits(&value[6..8], "day")?;
    NaiveDate::from_ymd_opt(year as i32, month, day)
        .map(|_| ())
        .ok_or_else(|| format!("{year:04}-{month:02}-{day:02} is not a calendar date"))
}

fn check_time(value: &str) -> Result<(), String> {
    let (whole, fraction) = match value.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (value, None),
    };
    if !matches!(whole.len(), 2 | 4 | 6) {
        return Err("a time must be HH, HHMM or HHMMSS, optionally with .FFFFFF".to_owned());
    }
    let hour = digits(&whole[0..2], "hour")?;
    if hour > 23 {
        return Err(format!("hour {hour} is out of range 00-23"));
    }
    if whole.len() >= 4 {
        let minute = digits(&whole[2..4], "minute")?;
        if minute > 59 {
            return Err(format!("minute {minute} is out of range 00-59"));
        }
    }
    if whole.len() == 6 {
        // 60 is allowed for a leap second (PS3.5 Table 6.2-1, TM).
        let second = digits(&whole[4..6], "second")?;
        if second > 60 {
            return Err(format!("second {second} is out of range 00-60"));
        }
    }
    if let Some(fraction) = fraction {
        if whole.len() != 6 || fraction.is_empty() || fraction.len() > 6 {
            return Err("a fraction of a second needs HHMMSS before it and 1-6 digits".to_owned());
        }
        digits(fraction, "fraction")?;
    }
    if value.len() > 14 {
        return Err("a time is at most 14 bytes".to_owned());
    }
    Ok(())
}

fn check_datetime(value: &str) -> Result<(), String> {
    if value.len() > 26 {
        return Err("a date-time is at most 26 bytes".to_owned());
    }
    let (body, offset) = match value.find(['+', '-']) {
        Some(i) => (&value[..i], Some(&value[i + 1..])),
        None => (value, None),
    };
    if let Some(offset) = offset {
        let ok = offset.len() == 4
            && digits(&offset[..2], "offset hours").is_ok_and(|h| h <= 14)
            && digits(&offset[2..], "offset minutes").is_ok_and(|m| m <= 59);
        if !ok {
            return Err("a UTC offset must be &HHMM, e.g. +0100".to_owned());
        }
    }
    let date_len = body.len().min(8);
    let (date, time) = body.split_at(date_len);
    match date.len() {
        4 => {
            digits(date, "year")?;
        }
        6 => {
            digits(&date[..4], "year")?;
            let month = digits(&date[4..], "month")?;
            if !(1..=12).contains(&month) {
                return Err(format!("month {month} is out of range 01-12"));
            }
        }
        8 => check_date(date)?,
        _ => return Err("a date-time starts with YYYY, YYYYMM or YYYYMMDD".to_owned()),
    }
    if !time.is_empty() {
        if date.len() != 8 {
            return Err("a time in a date-time needs a full YYYYMMDD date before it".to_owned());
        }
        check_time(time)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(vr: VR, text: &str) -> Result<PrimitiveValue, ValueError> {
        text_to_value(vr, text, VrCheck::Checked)
    }

    #[test]
    fn dates_must_be_real_calendar_dates() {
        assert!(checked(VR::DA, "20240229").is_ok());
        assert!(checked(VR::DA, "20230229").is_err());
        assert!(checked(VR::DA, "20241301").is_err());
        assert!(checked(VR::DA, "2024-01-01").is_err());
        assert!(checked(VR::DA, "20240101\\20240102").is_ok());
    }

    #[test]
    fn times_accept_partial_forms_and_reject_out_of_range_fields() {
        for ok in ["10", "1030", "103015", "103015.123456", "235960"] {
            assert!(checked(VR::TM, ok).is_ok(), "{ok}");
        }
        for bad in ["24", "1060", "103061", "10301.5", "103015.1234567", "1:30"] {
            assert!(checked(VR::TM, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn date_times_check_their_parts() {
        for ok in ["2024", "202402", "20240229103015.5", "20240101120000+0100"] {
            assert!(checked(VR::DT, ok).is_ok(), "{ok}");
        }
        for bad in ["20230229", "202413", "2024010125", "20240101120000+01"] {
            assert!(checked(VR::DT, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uids_follow_the_part5_rules() {
        assert!(check_uid("1.2.840.10008.1.2.1").is_ok());
        assert!(check_uid("2.25.0").is_ok());
        assert!(check_uid("1.2.03").is_err());
        assert!(check_uid("1..2").is_err());
        assert!(check_uid("1.2.").is_err());
        assert!(check_uid("1.2.a").is_err());
        assert!(check_uid(&format!("1.{}", "2".repeat(63))).is_err());
    }

    #[test]
    fn lengths_follow_each_vr() {
        assert!(checked(VR::SH, &"A".repeat(16)).is_ok());
        assert!(checked(VR::SH, &"A".repeat(17)).is_err());
        assert!(checked(VR::LO, &"A".repeat(64)).is_ok());
        assert!(checked(VR::LO, &"A".repeat(65)).is_err());
        assert!(checked(VR::AE, &"A".repeat(17)).is_err());
        assert!(checked(VR::PN, &format!("{}^B", "A".repeat(63))).is_err());
    }

    #[test]
    fn code_strings_are_uppercase() {
        assert!(checked(VR::CS, "CT").is_ok());
        assert!(checked(VR::CS, "ORIGINAL\\PRIMARY").is_ok());
        assert!(checked(VR::CS, "ct").is_err());
    }

    #[test]
    fn numbers_are_stored_as_binary_values() {
        assert_eq!(
            checked(VR::US, "512").unwrap(),
            PrimitiveValue::from(512_u16)
        );
        assert!(checked(VR::US, "70000").is_err());
        assert!(checked(VR::IS, "12a").is_err());
        assert!(checked(VR::DS, "1.5e3").is_ok());
        assert!(checked(VR::DS, "abc").is_err());
    }

    #[test]
    fn binary_vrs_cannot_be_set_from_text() {
        let err = checked(VR::OB, "00").unwrap_err();
        assert!(err.to_string().contains("OB"), "{err}");
    }

    #[test]
    fn empty_value_is_allowed_for_any_vr() {
        assert_eq!(checked(VR::DA, "").unwrap(), PrimitiveValue::Empty);
    }

    #[test]
    fn unchecked_text_may_break_the_vr_rules_but_numbers_must_parse() {
        let long_code = "not a code string at all";
        assert_eq!(
            text_to_value(VR::CS, long_code, VrCheck::Unchecked).unwrap(),
            PrimitiveValue::from(long_code)
        );
        assert!(text_to_value(VR::DA, "2024-13-45", VrCheck::Unchecked).is_ok());
        assert!(matches!(
            text_to_value(VR::US, "many", VrCheck::Unchecked),
            Err(ValueError::NotANumber { part, .. }) if part == "many"
        ));
        assert!(matches!(
            text_to_value(VR::SQ, "x", VrCheck::Unchecked),
            Err(ValueError::NotText { vr: VR::SQ })
        ));
    }

    #[test]
    fn multi_valued_text_is_split_and_single_valued_text_is_not() {
        assert_eq!(
            checked(VR::CS, "ORIGINAL\\PRIMARY").unwrap(),
            PrimitiveValue::Strs(["ORIGINAL".to_owned(), "PRIMARY".to_owned()].into())
        );
        assert_eq!(
            checked(VR::LT, "a\\b").unwrap(),
            PrimitiveValue::from("a\\b")
        );
    }
}
