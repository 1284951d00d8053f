//! Naming an attribute by keyword or by tag number: [`Attribute`], the one way every
//! command line, rules file and query of the workspace does it.

use std::fmt;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// One DICOM attribute, as named on a command line, in a rules file or in a query.
///
/// Parse it with [`Attribute::parse`] from a keyword (`StudyDescription`) or a tag number in any
/// of the forms `(0008,1030)`, `0008,1030` or `00081030`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The attribute's tag.
    pub tag: Tag,
    /// The keyword from the standard data dictionary, when the tag is in it.
    pub keyword: Option<&'static str>,
    /// The value representation from the standard data dictionary, when the dictionary gives a
    /// single one (not for context-dependent VRs such as US-or-SS).
    pub vr: Option<VR>,
}

impl Attribute {
    /// Parses a keyword or a tag number.
    ///
    /// Keywords are looked up in dicom-rs' standard data dictionary, so a misspelt keyword is an
    /// error rather than a silently ignored edit.
    pub fn parse(text: &str) -> Result<Self, AttributeError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(AttributeError::Empty);
        }
        if let Some(tag) = parse_tag_number(trimmed) {
            return Ok(Self::from_tag(tag));
        }
        let looks_numeric = trimmed.starts_with('(')
            || trimmed.contains(',')
            || (trimmed.len() == 8 && trimmed.chars().all(|c| c.is_ascii_hexdigit()));
        if looks_numeric {
            return Err(AttributeError::MalformedTag {
                text: text.to_owned(),
            });
        }
        let entry = StandardDataDictionary.by_name(trimmed).ok_or_else(|| {
            AttributeError::UnknownKeyword {
                keyword: text.to_owned(),
            }
        })?;
        Ok(Self {
            tag: entry.tag(),
            keyword: Some(entry.alias),
            vr: exact_vr(entry.vr()),
        })
    }

    /// The attribute for a tag, with keyword and VR filled in from the dictionary when known.
    pub fn from_tag(tag: Tag) -> Self {
        match StandardDataDictionary.by_tag(tag) {
            Some(entry) => Self {
                tag,
                keyword: Some(entry.alias),
                vr: exact_vr(entry.vr()),
            },
            None => Self {
                tag,
                keyword: None,
                vr: None,
            },
        }
    }

    /// The VR to use when creating the element: the dictionary's, or its most common
    /// reading where the dictionary gives several (US-or-SS reads as US), else `fallback`
    /// (for private and unknown attributes).
    pub fn vr_or(&self, fallback: VR) -> VR {
        match self.vr {
            Some(vr) => vr,
            None => StandardDataDictionary
                .by_tag(self.tag)
                .map(|e| e.vr().relaxed())
                .unwrap_or(fallback),
        }
    }

    /// Whether the attribute lives in the file meta group (0002,xxxx).
    pub fn is_file_meta(&self) -> bool {
        self.tag.group() == 0x0002
    }

    /// Whether the attribute is private (odd group number).
    pub fn is_private(&self) -> bool {
        self.tag.group() % 2 == 1
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:04X},{:04X})", self.tag.group(), self.tag.element())?;
        if let Some(keyword) = self.keyword {
            write!(f, " {keyword}")?;
        }
        Ok(())
    }
}

fn exact_vr(vr: VirtualVr) -> Option<VR> {
    vr.exact()
}

impl std::str::FromStr for Attribute {
    type Err = AttributeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Attribute::parse(text)
    }
}

/// Why a text does not name an attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// Nothing was given where an attribute was expected.
    #[error(
        "empty attribute name; give a keyword such as StudyDescription or a tag such as (0008,1030)"
    )]
    Empty,
    /// The text is not a keyword of the standard data dictionary.
    #[error(
        "unknown attribute keyword `{keyword}`: not in the DICOM standard dictionary \
         (check the spelling, or give the tag number as (gggg,eeee))"
    )]
    UnknownKeyword {
        /// The text as given.
        keyword: String,
    },
    /// The text looks like a tag number but is not one of the accepted forms.
    #[error("malformed tag `{text}`: use (gggg,eeee), gggg,eeee or ggggeeee with hex digits")]
    MalformedTag {
        /// The text as given.
        text: String,
    },
}

/// Parses `(gggg,eeee)`, `gggg,eeee` or `ggggeeee` (hex, either case).
fn parse_tag_number(text: &str) -> Option<Tag> {
    let inner = match (text.strip_prefix('('), text.strip_suffix(')')) {
        (Some(_), Some(_)) => &text[1..text.len() - 1],
        (None, None) => text,
        _ => return None,
    };
    let (group, element) = match inner.split_once(',') {
        Some((g, e)) => (g.trim(), e.trim()),
        None if inner.len() == 8 && !text.starts_with('(') => inner.split_at(4),
        None => return None,
    };
    let hex4 = |s: &str| {
        if s.len() == 4 && s.chars().all(|c| c.is_ascii_hexdigit()) {
            u16::from_str_radix(s, 16).ok()
        } else {
            None
        }
    };
    Some(Tag(hex4(group)?, hex4(element)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn keyword_and_every_hex_form_name_the_same_attribute() {
        let forms = [
            "StudyDescription",
            "(0008,1030)",
            "0008,1030",
            "00081030",
            "(0008, 1030)",
        ];
        for form in forms {
            let attribute = Attribute::parse(form).unwrap();
            assert_eq!(attribute.tag, tags::STUDY_DESCRIPTION, "form {form}");
            assert_eq!(attribute.keyword, Some("StudyDescription"), "form {form}");
            assert_eq!(attribute.vr, Some(VR::LO), "form {form}");
        }
    }

    #[test]
    fn hex_forms_accept_lowercase_digits() {
        assert_eq!(
            Attribute::parse("(0008,103e)").unwrap().tag,
            tags::SERIES_DESCRIPTION
        );
        assert_eq!(
            Attribute::parse("0008103e").unwrap().tag,
            tags::SERIES_DESCRIPTION
        );
    }

    #[test]
    fn unknown_keyword_is_an_error_naming_it() {
        let err = Attribute::parse("StudyDescripton").unwrap_err();
        assert!(err.to_string().contains("StudyDescripton"), "{err}");
    }

    #[test]
    fn malformed_numbers_are_errors_not_keywords() {
        for bad in [
            "(0008,103)",
            "0008,10300",
            "(0008,1030",
            "0008103",
            "(zzzz,0010)",
        ] {
            let err = Attribute::parse(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn display_shows_number_and_keyword() {
        let attribute = Attribute::parse("PatientName").unwrap();
        assert_eq!(attribute.to_string(), "(0010,0010) PatientName");
        let private = Attribute::parse("(0009,1001)").unwrap();
        assert_eq!(private.to_string(), "(0009,1001)");
        assert!(private.is_private());
        assert_eq!(private.vr_or(VR::LO), VR::LO);
        assert_eq!(Attribute::parse("PixelData").unwrap().vr_or(VR::LO), VR::OW);
    }
}
