//! Query keys and the identifiers a C-FIND SCP answers with.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::Value;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntax;
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::error::CFindError;
use dimse::Status;

/// An attribute sent in a query identifier: its tag and the VR it is encoded with.
///
/// Build one from a keyword or a tag expression with [`Key::parse`] (`"PatientName"`,
/// `"(0010,0010)"`, `"0010,0010"`), from a standard tag with [`Key::from_tag`], or with
/// an explicit VR for private attributes with [`Key::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    tag: Tag,
    vr: VR,
}

impl Key {
    /// A key with an explicit VR (private or unknown attributes).
    pub fn new(tag: Tag, vr: VR) -> Self {
        Key { tag, vr }
    }

    /// A key for a standard attribute, with the VR from the DICOM dictionary.
    ///
    /// # Errors
    /// [`CFindError::UnknownAttribute`] when the tag is not in the standard dictionary.
    pub fn from_tag(tag: Tag) -> Result<Self, CFindError> {
        let entry =
            StandardDataDictionary
                .by_tag(tag)
                .ok_or_else(|| CFindError::UnknownAttribute {
                    key: tag.to_string(),
                })?;
        Ok(Key {
            tag,
            vr: entry.vr().relaxed(),
        })
    }

    /// A key from a keyword (`PatientName`) or a tag (`(0010,0010)`, `0010,0010`).
    ///
    /// # Errors
    /// [`CFindError::UnknownAttribute`] naming the text when the dictionary knows neither.
    pub fn parse(expression: &str) -> Result<Self, CFindError> {
        let expression = expression.trim();
        let entry = StandardDataDictionary.by_expr(expression).ok_or_else(|| {
            CFindError::UnknownAttribute {
                key: expression.to_string(),
            }
        })?;
        Ok(Key {
            tag: entry.tag(),
            vr: entry.vr().relaxed(),
        })
    }

    /// The attribute's tag.
    pub fn tag(self) -> Tag {
        self.tag
    }

    /// The VR the key is encoded with.
    pub fn vr(self) -> VR {
        self.vr
    }

    /// The keyword (`PatientName`), or the tag as `(gggg,eeee)` for attributes outside
    /// the standard dictionary.
    pub fn keyword(self) -> String {
        keyword(self.tag)
    }

    /// A key for a tag this crate names itself: always in the dictionary.
    pub(crate) fn known(tag: Tag) -> Self {
        Key::from_tag(tag).unwrap_or(Key { tag, vr: VR::LO })
    }
}

impl FromStr for Key {
    type Err = CFindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Key::parse(s)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.keyword())
    }
}

/// The keyword of a tag, or `(gggg,eeee)` when the standard dictionary does not know it.
pub fn keyword(tag: Tag) -> String {
    match StandardDataDictionary.by_tag(tag) {
        Some(entry) => entry.alias().to_string(),
        None => tag.to_string(),
    }
}

/// The attributes of one C-FIND match, as the SCP returned them.
///
/// Every returned key is kept, including those the client did not ask for. Values are
/// text: multiple values are joined with `\`, padding is removed, numbers are written
/// in decimal, a sequence is shown as `<sequence of N items>`. An attribute the SCP
/// returned empty is present with an empty string, which is not the same as absent.
///
/// Serialized as a JSON object from keyword to value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identifier {
    values: BTreeMap<Tag, String>,
}

/// An identifier as decoded from the wire, with the status some SCPs put in it.
pub(crate) struct DecodedIdentifier {
    pub(crate) identifier: Identifier,
    /// A (0000,0900) Status inside the data set: some SCPs report the final status there
    /// instead of in the command (dicom-rs #434).
    pub(crate) embedded_status: Option<Status>,
}

impl Identifier {
    /// The value of `tag`, if the SCP returned it.
    pub fn get(&self, tag: Tag) -> Option<&str> {
        self.values.get(&tag).map(String::as_str)
    }

    /// The value of `tag` when returned and not empty.
    pub fn non_empty(&self, tag: Tag) -> Option<&str> {
        self.get(tag).filter(|value| !value.is_empty())
    }

    /// The value of the attribute named by a keyword or tag expression.
    pub fn get_by_name(&self, name: &str) -> Option<&str> {
        let key = Key::parse(name).ok()?;
        self.get(key.tag)
    }

    /// Whether the SCP returned `tag` (possibly empty).
    pub fn contains(&self, tag: Tag) -> bool {
        self.values.contains_key(&tag)
    }

    /// Every returned attribute in tag order.
    pub fn iter(&self) -> impl Iterator<Item = (Tag, &str)> {
        self.values
            .iter()
            .map(|(tag, value)| (*tag, value.as_str()))
    }

    /// Number of returned attributes.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether nothing was returned.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Sets a value (for building expected results and test fixtures).
    pub fn insert(&mut self, tag: Tag, value: impl Into<String>) {
        self.values.insert(tag, value.into());
    }

    /// Decodes an identifier received in `ts`.
    pub(crate) fn decode(bytes: &[u8], ts: &TransferSyntax) -> Result<DecodedIdentifier, String> {
        let object =
            InMemDicomObject::read_dataset_with_ts(bytes, ts).map_err(|e| e.to_string())?;
        let mut values = BTreeMap::new();
        let mut embedded_status = None;
        for element in &object {
            let tag = element.header().tag;
            if tag.group() == 0x0000 {
                // Command elements do not belong in an identifier; only a status is
                // meaningful there, and only as a final status (see DecodedIdentifier).
                if tag == tags::STATUS {
                    embedded_status = element.to_int::<u16>().ok().map(Status);
                }
                continue;
            }
            if tag == tags::SPECIFIC_CHARACTER_SET {
                // Already applied by the decoder: the values below are Unicode.
                continue;
            }
            values.insert(tag, render(element.vr(), element.value()));
        }
        Ok(DecodedIdentifier {
            identifier: Identifier { values },
            embedded_status,
        })
    }
}

fn render<I, P>(vr: VR, value: &Value<I, P>) -> String {
    match value {
        Value::Primitive(primitive) => {
            let text_vr = matches!(vr, VR::LT | VR::ST | VR::UT);
            primitive
                .to_multi_str()
                .iter()
                .map(|part| {
                    // Leading spaces are significant in the text VRs only.
                    if text_vr {
                        part.trim_end_matches([' ', '\0'])
                    } else {
                        dimse::trim_value(part)
                    }
                })
                .collect::<Vec<_>>()
                .join("\\")
        }
        Value::Sequence(sequence) => {
            format!("<sequence of {} items>", sequence.items().len())
        }
        Value::PixelSequence(_) => "<encapsulated pixel data>".to_string(),
    }
}

impl Serialize for Identifier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.values.len()))?;
        for (tag, value) in &self.values {
            map.serialize_entry(&keyword(*tag), value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue};
    use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

    #[test]
    fn keys_parse_from_keywords_and_tags() {
        let by_name = Key::parse("PatientName").unwrap();
        assert_eq!(by_name.tag(), tags::PATIENT_NAME);
        assert_eq!(by_name.vr(), VR::PN);
        assert_eq!(Key::parse("(0010,0020)").unwrap().tag(), tags::PATIENT_ID);
        assert_eq!(
            Key::parse("0008,0050").unwrap().keyword(),
            "AccessionNumber"
        );
    }

    #[test]
    fn an_unknown_keyword_is_an_error_naming_it() {
        let err = Key::parse("PatientNmae").unwrap_err();
        assert!(err.to_string().contains("PatientNmae"), "{err}");
    }

    #[test]
    fn decoded_identifiers_keep_every_key_without_padding_and_report_an_embedded_status() {
        let mut object = InMemDicomObject::new_empty();
        object.put(DataElement::new(
            tags::MODALITIES_IN_STUDY,
            VR::CS,
            PrimitiveValue::Strs(["CT".to_string(), "SR ".to_string()].into()),
        ));
        object.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3\0"),
        ));
        object.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::Empty,
        ));
        object.put(DataElement::new(
            tags::STATUS,
            VR::US,
            PrimitiveValue::from(0_u16),
        ));
        let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
        let mut bytes = Vec::new();
        object.write_dataset_with_ts(&mut bytes, &ts).unwrap();

        let decoded = Identifier::decode(&bytes, &ts).unwrap();
        let identifier = decoded.identifier;
        assert_eq!(identifier.get(tags::MODALITIES_IN_STUDY), Some("CT\\SR"));
        assert_eq!(identifier.get(tags::STUDY_INSTANCE_UID), Some("1.2.3"));
        assert_eq!(identifier.get(tags::PATIENT_NAME), Some(""));
        assert_eq!(identifier.non_empty(tags::PATIENT_NAME), None);
        assert!(!identifier.contains(tags::STATUS));
        assert_eq!(decoded.embedded_status, Some(Status::SUCCESS));
        let json = serde_json::to_string(&identifier).unwrap();
        assert!(
            json.contains("\"ModalitiesInStudy\":\"CT\\\\SR\""),
            "{json}"
        );
    }

    #[test]
    fn garbage_identifiers_are_errors() {
        let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
        assert!(Identifier::decode(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 0xFF], &ts).is_err());
    }
}
