//! Reading and writing element values as text, and naming tags the way rules do.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_object::InMemDicomObject;

/// A tag named in a rules file: a keyword (`StudyDescription`) or `(gggg,eeee)`,
/// with the VR used when the simulator creates the element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRef {
    /// The tag.
    pub tag: Tag,
    /// The VR from the standard dictionary (LO for tags it does not know).
    pub vr: VR,
    /// The name as written in the rules.
    pub name: String,
}

impl TagRef {
    /// Resolves a keyword or `(gggg,eeee)` / `gggg,eeee` expression.
    pub fn parse(expr: &str) -> Option<TagRef> {
        let expr = expr.trim();
        let tag = match expr.parse::<Tag>() {
            Ok(tag) => tag,
            Err(_) => StandardDataDictionary.by_name(expr)?.tag(),
        };
        Some(TagRef {
            tag,
            vr: vr_of(tag),
            name: expr.to_string(),
        })
    }
}

impl std::fmt::Display for TagRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The dictionary VR of a tag; LO when unknown (private tags hold text far more
/// often than anything else).
pub(crate) fn vr_of(tag: Tag) -> VR {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.vr().relaxed())
        .unwrap_or(VR::LO)
}

/// The value of `tag` as text with DICOM padding removed, `None` when the element
/// is absent or holds no text (a sequence, binary data).
pub(crate) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let element = obj.get(tag)?;
    if element.vr() == VR::SQ {
        return None;
    }
    element.to_str().ok().map(|s| trim_value(&s).to_string())
}

/// Removes the padding DICOM allows around values (trailing spaces and NULs,
/// leading spaces).
pub(crate) fn trim_value(s: &str) -> &str {
    s.trim_end_matches(['\0', ' ']).trim_start_matches(' ')
}

/// Whether the element is present with a non-empty value.
pub(crate) fn has_value(obj: &InMemDicomObject, tag: Tag) -> bool {
    match obj.get(tag) {
        None => false,
        Some(e) if e.vr() == VR::SQ => true,
        Some(e) => e
            .to_str()
            .map(|s| !trim_value(&s).is_empty())
            .unwrap_or(true),
    }
}

/// Puts a text value; multi-valued text keeps its backslashes.
pub(crate) fn put_text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    let vr = match obj.get(tag) {
        // Keep the VR the element arrived with: an explicit-VR sender chose it.
        Some(e) if e.vr() != VR::SQ && e.vr() != VR::UN => e.vr(),
        _ => vr,
    };
    let primitive = if value.contains('\\') {
        PrimitiveValue::Strs(value.split('\\').map(str::to_string).collect())
    } else {
        PrimitiveValue::from(value)
    };
    obj.put(DataElement::new(tag, vr, primitive));
}

/// Formats a tag as `(gggg,eeee)`.
pub(crate) fn tag_hex(tag: Tag) -> String {
    format!("({:04X},{:04X})", tag.group(), tag.element())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn keywords_and_hex_forms_name_the_same_tag() {
        let by_name = TagRef::parse("StudyDescription").unwrap();
        let by_hex = TagRef::parse("(0008,1030)").unwrap();
        let bare = TagRef::parse("0008,1030").unwrap();
        assert_eq!(by_name.tag, tags::STUDY_DESCRIPTION);
        assert_eq!(by_hex.tag, by_name.tag);
        assert_eq!(bare.tag, by_name.tag);
        assert_eq!(by_name.vr, VR::LO);
        assert!(TagRef::parse("NoSuchKeyword").is_none());
    }

    #[test]
    fn padding_is_not_part_of_the_value() {
        let mut obj = InMemDicomObject::new_empty();
        obj.put_str(tags::MODALITY, VR::CS, "OPV ");
        assert_eq!(text(&obj, tags::MODALITY).as_deref(), Some("OPV"));
        obj.put_str(tags::ACCESSION_NUMBER, VR::SH, "");
        assert!(!has_value(&obj, tags::ACCESSION_NUMBER));
        assert!(has_value(&obj, tags::MODALITY));
    }

    #[test]
    fn multi_valued_text_round_trips() {
        let mut obj = InMemDicomObject::new_empty();
        put_text(&mut obj, tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY");
        assert_eq!(
            text(&obj, tags::IMAGE_TYPE).as_deref(),
            Some("ORIGINAL\\PRIMARY")
        );
    }
}
