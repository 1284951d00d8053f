//! The PS3.15 Table E.1-1 attribute table (Basic Profile column), bundled as data.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use dicom_core::Tag;

use crate::error::DeidError;

/// The edition of PS3.15 the bundled table was taken from.
pub const STANDARD_EDITION: &str = "2026c";

/// The bundled table: see the header of the data file for its source.
const TABLE: &str = include_str!("../../data/ps3.15-2026c-table-e.1-1-basic-profile.tsv");

/// An action code of PS3.15 Table E.1-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProfileAction {
    /// D: replace with a non-zero length dummy value consistent with the VR.
    Dummy,
    /// Z: replace with a zero length value (or a dummy value consistent with the VR).
    Zero,
    /// X: remove.
    Remove,
    /// K: keep (only set by a Retain option here).
    Keep,
    /// C: clean, i.e. replace with values of similar meaning that are not identifying
    /// (only set by an option here; see [`crate::deid::DeidOptions::keep_descriptions`]).
    Clean,
    /// U: replace with a non-zero length UID that is internally consistent within a set of
    /// instances.
    Uid,
    /// Z/D: Z unless D is required to maintain IOD conformance.
    ZeroOrDummy,
    /// X/Z: X unless Z is required to maintain IOD conformance.
    RemoveOrZero,
    /// X/D: X unless D is required to maintain IOD conformance.
    RemoveOrDummy,
    /// X/Z/D: X unless Z or D is required to maintain IOD conformance.
    RemoveOrZeroOrDummy,
    /// X/Z/U*: X unless Z or replacement of contained instance UIDs (U) is required to maintain
    /// IOD conformance.
    RemoveOrZeroOrUidStar,
}

impl ProfileAction {
    /// Parses the code as printed in the standard.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "D" => Self::Dummy,
            "Z" => Self::Zero,
            "X" => Self::Remove,
            "K" => Self::Keep,
            "C" => Self::Clean,
            "U" => Self::Uid,
            "Z/D" => Self::ZeroOrDummy,
            "X/Z" => Self::RemoveOrZero,
            "X/D" => Self::RemoveOrDummy,
            "X/Z/D" => Self::RemoveOrZeroOrDummy,
            "X/Z/U*" => Self::RemoveOrZeroOrUidStar,
            _ => return None,
        })
    }

    /// The code as printed in the standard.
    pub fn code(self) -> &'static str {
        match self {
            Self::Dummy => "D",
            Self::Zero => "Z",
            Self::Remove => "X",
            Self::Keep => "K",
            Self::Clean => "C",
            Self::Uid => "U",
            Self::ZeroOrDummy => "Z/D",
            Self::RemoveOrZero => "X/Z",
            Self::RemoveOrDummy => "X/D",
            Self::RemoveOrZeroOrDummy => "X/Z/D",
            Self::RemoveOrZeroOrUidStar => "X/Z/U*",
        }
    }
}

impl fmt::Display for ProfileAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A tag with optional wildcard nibbles, like `(60xx,4000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagPattern {
    group: u16,
    group_mask: u16,
    element: u16,
    element_mask: u16,
}

impl TagPattern {
    /// Whether `tag` matches the pattern.
    pub fn matches(&self, tag: Tag) -> bool {
        tag.group() & self.group_mask == self.group
            && tag.element() & self.element_mask == self.element
    }

    fn exact(&self) -> Option<Tag> {
        (self.group_mask == 0xFFFF && self.element_mask == 0xFFFF)
            .then_some(Tag(self.group, self.element))
    }

    fn parse(text: &str) -> Option<Self> {
        let inner = text.strip_prefix('(')?.strip_suffix(')')?;
        let (group, element) = inner.split_once(',')?;
        let (group, group_mask) = Self::parse_half(group)?;
        let (element, element_mask) = Self::parse_half(element)?;
        Some(Self {
            group,
            group_mask,
            element,
            element_mask,
        })
    }

    fn parse_half(text: &str) -> Option<(u16, u16)> {
        if text.len() != 4 {
            return None;
        }
        let (mut value, mut mask) = (0_u16, 0_u16);
        for c in text.chars() {
            value <<= 4;
            mask <<= 4;
            if c == 'x' {
                continue;
            }
            value |= c.to_digit(16)? as u16;
            mask |= 0xF;
        }
        Some((value, mask))
    }
}

impl fmt::Display for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let half = |value: u16, mask: u16| -> String {
            (0..4)
                .map(|i| {
                    let shift = 12 - 4 * i;
                    if (mask >> shift) & 0xF == 0xF {
                        char::from_digit(((value >> shift) & 0xF) as u32, 16)
                            .unwrap_or('?')
                            .to_ascii_uppercase()
                    } else {
                        'x'
                    }
                })
                .collect()
        };
        write!(
            f,
            "({},{})",
            half(self.group, self.group_mask),
            half(self.element, self.element_mask)
        )
    }
}

/// One row of Table E.1-1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    /// The attribute's tag or tag pattern.
    pub pattern: TagPattern,
    /// The Basic Profile action.
    pub action: ProfileAction,
    /// The attribute name as printed in the standard.
    pub name: String,
}

/// The Basic Application Level Confidentiality Profile's attribute table.
#[derive(Debug)]
pub struct BasicProfile {
    rows: Vec<ProfileRow>,
    exact: HashMap<Tag, usize>,
    patterns: Vec<usize>,
}

impl BasicProfile {
    /// The table bundled with this crate (PS3.15 [`STANDARD_EDITION`]).
    pub fn standard() -> &'static BasicProfile {
        static PROFILE: OnceLock<BasicProfile> = OnceLock::new();
        PROFILE.get_or_init(|| {
            // The data file is compiled in and parsed by a unit test, so a failure here means
            // the crate was built from a corrupted checkout.
            BasicProfile::parse(TABLE).expect("bundled PS3.15 table parses (checked by tests)")
        })
    }

    /// Parses a table in the bundled file's format.
    pub fn parse(text: &str) -> Result<Self, DeidError> {
        let mut rows = Vec::new();
        let mut exact = HashMap::new();
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let bad = |reason: &str| DeidError::Table {
                line: index + 1,
                text: line.to_owned(),
                reason: reason.to_owned(),
            };
            let mut fields = line.splitn(3, '\t');
            let (Some(tag), Some(action), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected three tab-separated fields"));
            };
            let pattern = TagPattern::parse(tag).ok_or_else(|| bad("malformed tag"))?;
            let action =
                ProfileAction::from_code(action).ok_or_else(|| bad("unknown action code"))?;
            let row = rows.len();
            match pattern.exact() {
                Some(tag) => {
                    if exact.insert(tag, row).is_some() {
                        return Err(bad("tag listed twice"));
                    }
                }
                None => patterns.push(row),
            }
            rows.push(ProfileRow {
                pattern,
                action,
                name: name.to_owned(),
            });
        }
        Ok(Self {
            rows,
            exact,
            patterns,
        })
    }

    /// The row for `tag`, if the table lists it.
    pub fn row(&self, tag: Tag) -> Option<&ProfileRow> {
        let index = self.exact.get(&tag).copied().or_else(|| {
            self.patterns
                .iter()
                .copied()
                .find(|&i| self.rows[i].pattern.matches(tag))
        })?;
        Some(&self.rows[index])
    }

    /// The Basic Profile action for `tag`, if the table lists it.
    pub fn action(&self, tag: Tag) -> Option<ProfileAction> {
        self.row(tag).map(|row| row.action)
    }

    /// Every row, in tag order.
    pub fn rows(&self) -> &[ProfileRow] {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn bundled_table_parses_with_every_action_code_of_the_basic_profile() {
        let profile = BasicProfile::standard();
        assert!(profile.rows().len() > 600, "{} rows", profile.rows().len());
        for code in ["D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"] {
            let action = ProfileAction::from_code(code).unwrap();
            assert!(
                profile.rows().iter().any(|r| r.action == action),
                "no row with {code}"
            );
        }
    }

    #[test]
    fn well_known_attributes_have_the_standards_actions() {
        let profile = BasicProfile::standard();
        let expect = [
            (tags::PATIENT_NAME, "Z"),
            // Z in editions up to 2023; Z/D since 2024b, as the bundled 2026c table says.
            (tags::PATIENT_ID, "Z/D"),
            (tags::PATIENT_BIRTH_DATE, "Z"),
            (tags::PATIENT_SEX, "Z"),
            (tags::PATIENT_ADDRESS, "X"),
            (tags::OTHER_PATIENT_I_DS_SEQUENCE, "X"),
            (tags::INSTITUTION_NAME, "X/Z/D"),
            (tags::REFERRING_PHYSICIAN_NAME, "Z"),
            (tags::STUDY_INSTANCE_UID, "U"),
            (tags::SERIES_INSTANCE_UID, "U"),
            (tags::SOP_INSTANCE_UID, "U"),
            (tags::FRAME_OF_REFERENCE_UID, "U"),
            (tags::REFERENCED_SOP_INSTANCE_UID, "U"),
            (tags::ACCESSION_NUMBER, "Z"),
            (tags::STUDY_DATE, "Z"),
            (tags::STUDY_ID, "Z"),
            (tags::STUDY_DESCRIPTION, "X"),
            (tags::SERIES_DESCRIPTION, "X"),
            (tags::CONTENT_DATE, "Z/D"),
            (tags::SERIES_DATE, "X/D"),
            (tags::ACQUISITION_DATE, "X/Z"),
            (tags::REFERENCED_IMAGE_SEQUENCE, "X/Z/U*"),
            (tags::MEDIA_STORAGE_SOP_INSTANCE_UID, "U"),
        ];
        for (tag, code) in expect {
            assert_eq!(
                profile.action(tag).map(ProfileAction::code),
                Some(code),
                "{tag}"
            );
        }
    }

    #[test]
    fn attributes_the_profile_does_not_list_have_no_action() {
        let profile = BasicProfile::standard();
        for tag in [
            tags::MODALITY,
            tags::SOP_CLASS_UID,
            tags::ROWS,
            tags::PIXEL_DATA,
        ] {
            assert_eq!(profile.action(tag), None, "{tag}");
        }
    }

    #[test]
    fn overlay_and_curve_patterns_match_every_repeating_group() {
        let profile = BasicProfile::standard();
        assert_eq!(
            profile.action(Tag(0x6000, 0x3000)),
            Some(ProfileAction::Remove)
        );
        assert_eq!(
            profile.action(Tag(0x601E, 0x3000)),
            Some(ProfileAction::Remove)
        );
        assert_eq!(
            profile.action(Tag(0x6002, 0x4000)),
            Some(ProfileAction::Remove)
        );
        assert_eq!(
            profile.action(Tag(0x5004, 0x1234)),
            Some(ProfileAction::Remove)
        );
        assert_eq!(profile.action(Tag(0x6000, 0x0010)), None);
        let overlay = profile.row(Tag(0x6000, 0x3000)).unwrap();
        assert_eq!(overlay.pattern.to_string(), "(60xx,3000)");
        assert_eq!(overlay.name, "Overlay Data");
    }

    #[test]
    fn malformed_table_lines_are_reported_with_their_line_number() {
        let err = BasicProfile::parse("# c\n(0010,0010)\tQ\tPatient's Name\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 2") && text.contains("unknown action"),
            "{text}"
        );
    }
}
