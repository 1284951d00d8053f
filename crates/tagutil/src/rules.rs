//! The `--rules FILE` format: the command line's edits, written down in TOML.
//!
//! ```toml
//! new_uids = true          # like --new-uids
//! today = true             # like --today
//! remove = ["InstitutionName", "(0008,0081)"]
//!
//! [set]                    # like --set TAG=VALUE; keys are keywords or tag numbers
//! StudyDescription = "LOAD TEST CT"
//! "(0008,103E)" = "AXIAL 5MM"
//!
//! [add]                    # set only where the file lacks the attribute
//! InstitutionName = "TEST SITE"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::edit::Edit;
use crate::error::{EditError, RulesError};

/// The contents of a rules file, each edit already checked against its attribute's VR.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// Edits, in the order: `set` (by key), `add` (by key), `remove` (as listed).
    pub edits: Vec<Edit>,
    /// Regenerate instance UIDs.
    pub new_uids: bool,
    /// Set StudyDate and SeriesDate to today.
    pub today: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    new_uids: bool,
    #[serde(default)]
    today: bool,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    add: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

impl Rules {
    /// Reads and checks a rules file.
    pub fn from_file(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|err| match err {
            ParseFailure::Toml(source) => RulesError::Parse {
                path: path.to_owned(),
                source,
            },
            ParseFailure::Edit(source) => RulesError::Edit {
                path: path.to_owned(),
                source,
            },
        })
    }

    fn parse(text: &str) -> Result<Self, ParseFailure> {
        let raw: RawRules = toml::from_str(text).map_err(|e| ParseFailure::Toml(Box::new(e)))?;
        let mut edits = Vec::new();
        for (attribute, value) in &raw.set {
            edits.push(Edit::set(attribute, value).map_err(ParseFailure::Edit)?);
        }
        for (attribute, value) in &raw.add {
            edits.push(Edit::add(attribute, value).map_err(ParseFailure::Edit)?);
        }
        for attribute in &raw.remove {
            edits.push(Edit::remove(attribute).map_err(ParseFailure::Edit)?);
        }
        Ok(Self {
            edits,
            new_uids: raw.new_uids,
            today: raw.today,
        })
    }
}

enum ParseFailure {
    Toml(Box<toml::de::Error>),
    Edit(EditError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn rules_file_gives_the_same_edits_as_flags() {
        let rules = Rules::parse(
            r#"
            new_uids = true
            remove = ["InstitutionName"]
            [set]
            StudyDescription = "LOAD TEST"
            "(0008,103E)" = "AXIAL"
            "#,
        )
        .ok()
        .unwrap();
        assert!(rules.new_uids);
        assert!(!rules.today);
        let tags: Vec<_> = rules.edits.iter().map(|e| e.attribute().tag).collect();
        assert_eq!(
            tags,
            vec![
                tags::SERIES_DESCRIPTION,
                tags::STUDY_DESCRIPTION,
                tags::INSTITUTION_NAME
            ]
        );
        assert_eq!(
            rules.edits[1],
            Edit::set("StudyDescription", "LOAD TEST").unwrap()
        );
    }

    #[test]
    fn bad_value_in_rules_file_names_file_attribute_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[set]\nStudyDate = \"20231301\"\n").unwrap();
        let err = dimse::ErrorChain(&Rules::from_file(&path).unwrap_err()).to_string();
        assert!(err.contains("rules.toml"), "{err}");
        assert!(err.contains("StudyDate"), "{err}");
        assert!(err.contains("20231301"), "{err}");
    }

    #[test]
    fn unknown_key_in_rules_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "new_uid = true\n").unwrap();
        let err = dimse::ErrorChain(&Rules::from_file(&path).unwrap_err()).to_string();
        assert!(err.contains("new_uid"), "{err}");
    }
}
