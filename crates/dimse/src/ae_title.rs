//! Application Entity titles, checked the way PS3.5 §6.2 defines the AE value representation.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The longest AE title the standard allows, in characters (PS3.5 Table 6.2-1, VR `AE`).
pub const AE_TITLE_MAX_LEN: usize = 16;

/// A DICOM Application Entity title: 1 to 16 characters of the default character repertoire
/// (printable ASCII), without backslash or control characters, not all spaces.
///
/// Leading and trailing spaces are not significant in an AE title (PS3.5 §6.2), so they are
/// removed on construction: `AeTitle::new(" PACS ")` equals `AeTitle::new("PACS")`.
///
/// ```
/// use dimse::AeTitle;
///
/// let called: AeTitle = "LB-HTM-GI".parse()?;
/// assert_eq!(called.as_str(), "LB-HTM-GI");
/// assert!(AeTitle::new("A\\B").is_err());
/// assert!(AeTitle::new("SEVENTEEN-LETTERS").is_err());
/// # Ok::<(), dimse::AeTitleError>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct AeTitle(String);

/// Why a string is not a valid AE title.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AeTitleError {
    /// Nothing but spaces (or nothing at all).
    #[error("an AE title must have 1 to {AE_TITLE_MAX_LEN} characters and not be all spaces")]
    Blank,
    /// Longer than 16 characters once leading and trailing spaces are removed.
    #[error("an AE title has at most {AE_TITLE_MAX_LEN} characters, this one has {len}")]
    TooLong {
        /// Length in characters, without leading and trailing spaces.
        len: usize,
    },
    /// A backslash: it separates values in DICOM, so it can never be part of one.
    #[error("an AE title cannot contain a backslash (it separates DICOM values)")]
    Backslash,
    /// A control character (tab, newline, ...) or a character outside printable ASCII.
    #[error("an AE title uses printable ASCII only, found {found:?}")]
    ForbiddenCharacter {
        /// The first offending character.
        found: char,
    },
}

impl AeTitle {
    /// Checks `title` and returns it without its leading and trailing spaces.
    pub fn new(title: &str) -> Result<Self, AeTitleError> {
        let trimmed = title.trim_matches(' ');
        if trimmed.is_empty() {
            return Err(AeTitleError::Blank);
        }
        if trimmed.contains('\\') {
            return Err(AeTitleError::Backslash);
        }
        if let Some(found) = trimmed.chars().find(|c| !(' '..='~').contains(c)) {
            return Err(AeTitleError::ForbiddenCharacter { found });
        }
        // Only ASCII is left here, so bytes and characters agree.
        if trimmed.len() > AE_TITLE_MAX_LEN {
            return Err(AeTitleError::TooLong { len: trimmed.len() });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The title without padding, as it goes on the wire before the association layer pads it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AeTitle {
    type Err = AeTitleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl AsRef<str> for AeTitle {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AeTitle({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typical_router_title_is_accepted_unchanged() {
        assert_eq!(
            AeTitle::new("LB-HTM-ORTHO").unwrap().as_str(),
            "LB-HTM-ORTHO"
        );
    }

    #[test]
    fn leading_and_trailing_spaces_are_not_significant() {
        assert_eq!(
            AeTitle::new("  PACS ").unwrap(),
            AeTitle::new("PACS").unwrap()
        );
    }

    #[test]
    fn inner_spaces_are_kept() {
        assert_eq!(AeTitle::new("MY PACS").unwrap().as_str(), "MY PACS");
    }

    #[test]
    fn sixteen_characters_fit_and_seventeen_do_not() {
        assert!(AeTitle::new("ABCDEFGHIJKLMNOP").is_ok());
        assert_eq!(
            AeTitle::new("ABCDEFGHIJKLMNOPQ"),
            Err(AeTitleError::TooLong { len: 17 })
        );
    }

    #[test]
    fn padding_does_not_count_towards_the_length() {
        assert!(AeTitle::new(" ABCDEFGHIJKLMNOP ").is_ok());
    }

    #[test]
    fn empty_and_all_space_titles_are_rejected() {
        assert_eq!(AeTitle::new(""), Err(AeTitleError::Blank));
        assert_eq!(AeTitle::new("    "), Err(AeTitleError::Blank));
    }

    #[test]
    fn a_backslash_is_rejected() {
        assert_eq!(AeTitle::new("A\\B"), Err(AeTitleError::Backslash));
    }

    #[test]
    fn control_and_non_ascii_characters_are_rejected() {
        assert_eq!(
            AeTitle::new("A\tB"),
            Err(AeTitleError::ForbiddenCharacter { found: '\t' })
        );
        assert_eq!(
            AeTitle::new("SCU\n"),
            Err(AeTitleError::ForbiddenCharacter { found: '\n' })
        );
        assert_eq!(
            AeTitle::new("ÄRZTE"),
            Err(AeTitleError::ForbiddenCharacter { found: 'Ä' })
        );
    }

    #[test]
    fn it_serializes_as_a_plain_string() {
        let json = serde_json::to_string(&AeTitle::new("PACS").unwrap()).unwrap();
        assert_eq!(json, "\"PACS\"");
    }
}
