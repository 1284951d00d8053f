//! Reading and writing element values as text.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;
use dimse::{Attribute, trim_value};

/// The dictionary VR of a tag; LO when unknown (private tags hold text far more
/// often than anything else).
pub(crate) fn vr_of(tag: Tag) -> VR {
    Attribute::from_tag(tag).vr_or(VR::LO)
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
    // A morph writes what the rules say, checked or not: validating is the rules' job.
    let primitive = dimse::text_to_value(vr, value, dimse::VrCheck::Unchecked)
        .unwrap_or_else(|_| PrimitiveValue::from(value));
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
    fn keywords_and_hex_forms_name_the_same_tag_with_the_dictionary_vr() {
        let by_name = Attribute::parse("StudyDescription").unwrap();
        let by_hex = Attribute::parse("(0008,1030)").unwrap();
        let bare = Attribute::parse("0008,1030").unwrap();
        assert_eq!(by_name.tag, tags::STUDY_DESCRIPTION);
        assert_eq!(by_hex.tag, by_name.tag);
        assert_eq!(bare.tag, by_name.tag);
        assert_eq!(by_name.vr_or(VR::LO), VR::LO);
        assert_eq!(vr_of(tags::STUDY_DATE), VR::DA);
        // Private tags hold text far more often than anything else.
        assert_eq!(vr_of(dicom_core::Tag(0x0009, 0x1010)), VR::LO);
        assert!(Attribute::parse("NoSuchKeyword").is_err());
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
