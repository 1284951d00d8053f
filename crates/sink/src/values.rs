//! Values compared as DICOM values, not as bytes: padding, VR encoding and number
//! formatting are syntax, the values themselves are what a router must keep.
//!
//! The rules (PS3.5 §6.2): text values lose their padding (leading and trailing
//! spaces for most string VRs, trailing spaces only for LT/ST/UT/UR, trailing NUL for
//! UI); person names lose empty trailing components (`Smith^John^^^` is `Smith^John`);
//! DS and IS compare as numbers (`1.0` is `1`); a value read as UN (a private element
//! in Implicit VR, which has no VR on the wire) is read again in the other side's VR.

use std::borrow::Cow;

use dicom_core::{PrimitiveValue, VR};
use dimse::is_single_valued_text_vr as is_single_text;
pub(crate) use dimse::is_text_vr;

/// Longest rendering of a value in a report, in characters; longer ones are cut and
/// say how long they were.
pub const MAX_SHOWN_CHARS: usize = 80;

/// The VR both values are judged in: the known one when one side is UN.
pub(crate) fn ruling_vr(sent_vr: VR, received_vr: VR) -> VR {
    if sent_vr == VR::UN {
        received_vr
    } else {
        sent_vr
    }
}

/// Whether two primitive values are the same DICOM value.
pub(crate) fn same_value(
    sent_vr: VR,
    sent: &PrimitiveValue,
    received_vr: VR,
    received: &PrimitiveValue,
) -> bool {
    // Fast path: what a clean router delivers parses to the very same value.
    if sent_vr == received_vr && sent == received {
        return true;
    }
    let vr = ruling_vr(sent_vr, received_vr);
    if is_text_vr(vr) {
        return same_text(vr, &text_values(vr, sent), &text_values(vr, received));
    }
    value_bytes(sent) == value_bytes(received)
}

/// Whether a primitive value equals a value written as text (an expected value of a
/// route's allowed change, a per-send substitution).
pub(crate) fn equals_text(vr: VR, value: &PrimitiveValue, text: &str) -> bool {
    if is_text_vr(vr) || vr == VR::UN {
        let vr = if vr == VR::UN { VR::LO } else { vr };
        let expected = split_text(vr, text);
        return same_text(vr, &text_values(vr, value), &expected);
    }
    // Binary numbers: compare their text forms, value by value.
    let shown = value.to_multi_str();
    let wanted: Vec<&str> = text.split('\\').map(str::trim).collect();
    shown.len() == wanted.len()
        && shown
            .iter()
            .zip(&wanted)
            .all(|(a, b)| a.trim() == *b || numbers_equal(a.trim(), b))
}

fn numbers_equal(a: &str, b: &str) -> bool {
    matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// The values of a text element, each trimmed by its VR's rules.
fn text_values(vr: VR, value: &PrimitiveValue) -> Vec<Cow<'_, str>> {
    let values: Vec<Cow<'_, str>> = match value {
        PrimitiveValue::Empty => Vec::new(),
        // A value read as UN: raw bytes, to be read as text of the known VR.
        PrimitiveValue::U8(bytes) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            return split_text(vr, &text)
                .into_iter()
                .map(|s| Cow::Owned(s.into_owned()))
                .collect();
        }
        PrimitiveValue::Str(s) => vec![Cow::Borrowed(s.as_str())],
        PrimitiveValue::Strs(list) => list.iter().map(|s| Cow::Borrowed(s.as_str())).collect(),
        other => match other.to_str() {
            Cow::Borrowed(s) => vec![Cow::Borrowed(s)],
            Cow::Owned(s) => vec![Cow::Owned(s)],
        },
    };
    normalise(vr, values)
}

fn split_text(vr: VR, text: &str) -> Vec<Cow<'_, str>> {
    let values = if is_single_text(vr) {
        vec![Cow::Borrowed(text)]
    } else {
        text.split('\\').map(Cow::Borrowed).collect()
    };
    normalise(vr, values)
}

fn normalise(vr: VR, values: Vec<Cow<'_, str>>) -> Vec<Cow<'_, str>> {
    let mut out: Vec<Cow<'_, str>> = values
        .into_iter()
        .map(|v| match v {
            Cow::Borrowed(s) => Cow::Borrowed(trim(vr, s)),
            Cow::Owned(s) => Cow::Owned(trim(vr, &s).to_string()),
        })
        .collect();
    // One empty value and no value are the same thing.
    if out.len() == 1 && out[0].is_empty() {
        out.clear();
    }
    out
}

/// One value without the padding its VR does not count.
fn trim(vr: VR, value: &str) -> &str {
    match vr {
        VR::LT | VR::ST | VR::UT | VR::UR => value.trim_end_matches([' ', '\0']),
        VR::PN => value
            .trim_matches(|c| c == ' ' || c == '\0')
            .trim_end_matches(['^', '=', ' ']),
        _ => value.trim_matches(|c| c == ' ' || c == '\0'),
    }
}

fn same_text(vr: VR, a: &[Cow<'_, str>], b: &[Cow<'_, str>]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).all(|(x, y)| {
        if x == y {
            return true;
        }
        match vr {
            VR::DS => numbers_equal(x, y),
            VR::IS => matches!((x.parse::<i64>(), y.parse::<i64>()), (Ok(p), Ok(q)) if p == q),
            VR::PN => {
                // Trailing empty components of each component group are not significant.
                let groups = |s: &str| -> Vec<String> {
                    s.split('=')
                        .map(|g| g.trim_end_matches('^').to_string())
                        .collect()
                };
                let (mut gx, mut gy) = (groups(x), groups(y));
                while gx.last().is_some_and(String::is_empty) {
                    gx.pop();
                }
                while gy.last().is_some_and(String::is_empty) {
                    gy.pop();
                }
                gx == gy
            }
            _ => false,
        }
    })
}

/// The bytes of a binary value, in one order whatever the VR it was read as.
fn value_bytes(value: &PrimitiveValue) -> Cow<'_, [u8]> {
    match value {
        PrimitiveValue::Tags(tags) => Cow::Owned(
            tags.iter()
                .flat_map(|t| {
                    let [g0, g1] = t.group().to_le_bytes();
                    let [e0, e1] = t.element().to_le_bytes();
                    [g0, g1, e0, e1]
                })
                .collect(),
        ),
        other => other.to_bytes(),
    }
}

/// A value as a report shows it: text values trimmed and joined by `\`, numbers
/// likewise (up to 16 of them), longer binary values by their size; at most
/// [`MAX_SHOWN_CHARS`] characters.
pub(crate) fn render(vr: VR, value: &PrimitiveValue) -> String {
    let full = if is_text_vr(vr) {
        text_values(vr, value).join("\\")
    } else {
        match value {
            PrimitiveValue::Empty => String::new(),
            PrimitiveValue::U8(bytes) if bytes.len() > 16 => {
                format!("<{} bytes {}>", bytes.len(), vr.to_string())
            }
            PrimitiveValue::U8(bytes) => bytes
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(" "),
            other if other.multiplicity() > 16 => format!(
                "<{} values, {} bytes {}>",
                other.multiplicity(),
                other.to_bytes().len(),
                vr.to_string()
            ),
            other => other.to_str().into_owned(),
        }
    };
    shorten(full)
}

/// Cuts text longer than [`MAX_SHOWN_CHARS`] and says how long it was.
pub(crate) fn shorten(text: String) -> String {
    let count = text.chars().count();
    if count <= MAX_SHOWN_CHARS {
        return text;
    }
    let cut: String = text.chars().take(MAX_SHOWN_CHARS).collect();
    format!("{cut}… ({count} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::dicom_value;

    fn strs(values: &[&str]) -> PrimitiveValue {
        PrimitiveValue::Strs(values.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn padding_is_not_a_difference() {
        assert!(same_value(
            VR::UI,
            &strs(&["1.2.3\0"]),
            VR::UI,
            &strs(&["1.2.3"])
        ));
        assert!(same_value(
            VR::LO,
            &strs(&[" HEAD "]),
            VR::LO,
            &strs(&["HEAD"])
        ));
        assert!(same_value(
            VR::CS,
            &strs(&["A ", "B"]),
            VR::CS,
            &strs(&["A", "B "])
        ));
        assert!(same_value(
            VR::LO,
            &strs(&[""]),
            VR::LO,
            &PrimitiveValue::Empty
        ));
    }

    #[test]
    fn leading_spaces_count_in_long_text() {
        assert!(!same_value(
            VR::LT,
            &strs(&[" note"]),
            VR::LT,
            &strs(&["note"])
        ));
        assert!(same_value(
            VR::LT,
            &strs(&["note  "]),
            VR::LT,
            &strs(&["note"])
        ));
    }

    #[test]
    fn numbers_in_text_compare_as_numbers() {
        assert!(same_value(
            VR::DS,
            &strs(&["1.0", "2"]),
            VR::DS,
            &strs(&["1", "2.00"])
        ));
        assert!(!same_value(
            VR::DS,
            &strs(&["1.5"]),
            VR::DS,
            &strs(&["1.50001"])
        ));
        assert!(same_value(VR::IS, &strs(&["007"]), VR::IS, &strs(&["7"])));
    }

    #[test]
    fn person_names_lose_empty_trailing_components() {
        assert!(same_value(
            VR::PN,
            &strs(&["Smith^John^^^"]),
            VR::PN,
            &strs(&["Smith^John"])
        ));
        assert!(!same_value(
            VR::PN,
            &strs(&["Smith^John"]),
            VR::PN,
            &strs(&["Smith^Jon"])
        ));
    }

    #[test]
    fn a_value_read_as_un_is_read_again_in_the_known_vr() {
        let un = PrimitiveValue::U8(b"TRACE-1 ".iter().copied().collect());
        assert!(same_value(VR::LO, &strs(&["TRACE-1"]), VR::UN, &un));
        let un_us = PrimitiveValue::U8([0x00u8, 0x02].into_iter().collect());
        assert!(same_value(
            VR::US,
            &dicom_value!(U16, [512]),
            VR::UN,
            &un_us
        ));
    }

    #[test]
    fn changed_values_are_differences() {
        assert!(!same_value(
            VR::LO,
            &strs(&["HEAD"]),
            VR::LO,
            &strs(&["CHEST"])
        ));
        assert!(!same_value(
            VR::US,
            &dicom_value!(U16, [512]),
            VR::US,
            &dicom_value!(U16, [256])
        ));
        assert!(!same_value(
            VR::CS,
            &strs(&["A", "B"]),
            VR::CS,
            &strs(&["A"])
        ));
    }

    #[test]
    fn expected_text_matches_values_of_any_vr() {
        assert!(equals_text(
            VR::LO,
            &strs(&["Visual Fields "]),
            "Visual Fields"
        ));
        assert!(equals_text(VR::US, &dicom_value!(U16, [1, 2]), "1\\2"));
        assert!(!equals_text(VR::US, &dicom_value!(U16, [1]), "2"));
        assert!(equals_text(VR::LO, &PrimitiveValue::Empty, ""));
    }

    #[test]
    fn long_values_are_shortened_and_say_how_long_they_were() {
        let long = "x".repeat(200);
        let shown = render(VR::LT, &PrimitiveValue::from(long));
        assert!(shown.ends_with("(200 characters)"), "{shown}");
        let bytes = PrimitiveValue::U8(vec![0u8; 1000].into());
        assert_eq!(render(VR::OB, &bytes), "<1000 bytes OB>");
    }
}
