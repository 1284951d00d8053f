//! What a route is allowed to change, as data: attributes with, where it is known,
//! the value they must arrive with ([`AllowedChange`]), and whether the transfer
//! syntax may change ([`TransferSyntaxPolicy`]). One [`RoutePolicy`] per route.
//!
//! ```
//! use sink::{AllowedChange, RoutePolicy};
//!
//! let policy: RoutePolicy = serde_json::from_str(r#"{
//!     "allowed_changes": [
//!         { "attribute": "StudyDescription", "expected": "Visual Fields (VF)" },
//!         { "attribute": "InstitutionName" },
//!         { "attribute": "OtherPatientIDsSequence", "expected_absent": true },
//!         { "attribute": "ReferencedStudySequence[*].ReferencedSOPInstanceUID" }
//!     ],
//!     "lossless_transfer_syntax_change": false
//! }"#)?;
//! assert_eq!(policy.allowed_changes.len(), 4);
//! assert!(!policy.transfer_syntax.lossless_change_allowed);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use dicom_core::Tag;
use serde::{Deserialize, Serialize};

use crate::error::PathError;

/// Which items of a sequence a path step goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemSelector {
    /// Every item (`[*]`, or no brackets).
    Any,
    /// One item, counted from 0 (`[2]`).
    Index(u32),
}

/// One step of an [`AttributePath`]: an attribute and, when the path goes on into a
/// sequence, which of its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathStep {
    /// The attribute.
    pub attribute: dimse::Attribute,
    /// The items the path goes on into (ignored on the last step).
    pub items: ItemSelector,
}

/// An attribute, possibly nested in sequences:
/// `StudyDescription`, `(0009,1001)`, `ReferencedStudySequence[*].ReferencedSOPInstanceUID`,
/// `(0040,0275)[0].(0040,0009)`. Each step is a keyword or a tag number (any form
/// [`dimse::Attribute`] reads); `[n]` picks item `n` (from 0), `[*]` or nothing every item.
///
/// A path that ends at a sequence covers everything inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributePath {
    steps: Vec<PathStep>,
}

impl AttributePath {
    /// A path to a top-level attribute.
    pub fn top_level(tag: Tag) -> Self {
        AttributePath {
            steps: vec![PathStep {
                attribute: dimse::Attribute::from_tag(tag),
                items: ItemSelector::Any,
            }],
        }
    }

    /// The steps, outermost first.
    pub fn steps(&self) -> &[PathStep] {
        &self.steps
    }

    /// Whether this path covers `concrete` (outermost first, with the item index of
    /// each sequence gone through): equal to it, or a prefix of it.
    pub(crate) fn covers(&self, concrete: &[(Tag, Option<u32>)]) -> bool {
        if self.steps.len() > concrete.len() {
            return false;
        }
        let last = self.steps.len() - 1;
        self.steps
            .iter()
            .zip(concrete)
            .enumerate()
            .all(|(i, (step, (tag, item)))| {
                step.attribute.tag == *tag
                    && (i == last
                        || match (step.items, item) {
                            (ItemSelector::Any, _) => true,
                            (ItemSelector::Index(want), Some(got)) => want == *got,
                            (ItemSelector::Index(_), None) => false,
                        })
            })
    }
}

impl FromStr for AttributePath {
    type Err = PathError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| PathError {
            path: text.to_string(),
            reason,
        };
        let mut steps = Vec::new();
        // Split on dots outside parentheses: tag numbers never hold dots, but keep it strict.
        for part in text.split('.') {
            let part = part.trim();
            let (name, items) = match part.split_once('[') {
                None => (part, ItemSelector::Any),
                Some((name, rest)) => {
                    let inside = rest
                        .strip_suffix(']')
                        .ok_or_else(|| bad(format!("`{part}` opens [ without closing it")))?;
                    let items = if inside.trim() == "*" {
                        ItemSelector::Any
                    } else {
                        ItemSelector::Index(inside.trim().parse().map_err(|_| {
                            bad(format!("`[{inside}]` is not an item number or [*]"))
                        })?)
                    };
                    (name, items)
                }
            };
            let attribute = dimse::Attribute::parse(name).map_err(|e| bad(e.to_string()))?;
            steps.push(PathStep { attribute, items });
        }
        Ok(AttributePath { steps })
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.steps.len().saturating_sub(1);
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match step.attribute.keyword {
                Some(keyword) => f.write_str(keyword)?,
                None => {
                    let tag = step.attribute.tag;
                    write!(f, "({:04X},{:04X})", tag.group(), tag.element())?
                }
            }
            if i < last {
                match step.items {
                    ItemSelector::Any => f.write_str("[*]")?,
                    ItemSelector::Index(n) => write!(f, "[{n}]")?,
                }
            }
        }
        Ok(())
    }
}

impl Serialize for AttributePath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AttributePath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What an allowed attribute must arrive as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedValue {
    /// Any value, or none: the route may change or remove it as it likes.
    Any,
    /// Exactly this value (text, multiple values separated by `\`), compared as a DICOM
    /// value. Arriving with another value, or without the attribute, is a difference;
    /// so is arriving unchanged when the sent value was another.
    Value(String),
    /// Removed: arriving with the attribute is a difference.
    Absent,
}

/// One change a route is allowed to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawAllowedChange")]
pub struct AllowedChange {
    /// The attribute (a path ending at a sequence allows any change inside it).
    pub attribute: AttributePath,
    /// What it must arrive as.
    pub expected: ExpectedValue,
}

impl AllowedChange {
    /// The route may change or remove `attribute` freely.
    pub fn any(attribute: AttributePath) -> Self {
        AllowedChange {
            attribute,
            expected: ExpectedValue::Any,
        }
    }

    /// The route sets `attribute` to `value`.
    pub fn to_value(attribute: AttributePath, value: impl Into<String>) -> Self {
        AllowedChange {
            attribute,
            expected: ExpectedValue::Value(value.into()),
        }
    }

    /// The route removes `attribute`.
    pub fn removed(attribute: AttributePath) -> Self {
        AllowedChange {
            attribute,
            expected: ExpectedValue::Absent,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllowedChange {
    attribute: AttributePath,
    #[serde(default)]
    expected: Option<String>,
    #[serde(default)]
    expected_absent: bool,
}

impl TryFrom<RawAllowedChange> for AllowedChange {
    type Error = String;

    fn try_from(raw: RawAllowedChange) -> Result<Self, Self::Error> {
        let expected = match (raw.expected, raw.expected_absent) {
            (Some(_), true) => {
                return Err(format!(
                    "allowed change of {}: give `expected` or `expected_absent = true`, not both",
                    raw.attribute
                ));
            }
            (Some(value), false) => ExpectedValue::Value(value),
            (None, true) => ExpectedValue::Absent,
            (None, false) => ExpectedValue::Any,
        };
        Ok(AllowedChange {
            attribute: raw.attribute,
            expected,
        })
    }
}

/// Whether a route may change the transfer syntax.
///
/// Pixel data is compared after decoding whatever the policy, so a lossless change
/// cannot hide a corrupted pixel; forbidding it is for sites that require the
/// syntax itself to be kept. A lossy syntax is never silent: an instance that
/// arrives in a lossy syntax it was not sent in is always flagged, with its PSNR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSyntaxPolicy {
    /// Whether arriving in another lossless syntax than the one sent is allowed.
    pub lossless_change_allowed: bool,
}

impl Default for TransferSyntaxPolicy {
    fn default() -> Self {
        TransferSyntaxPolicy {
            lossless_change_allowed: true,
        }
    }
}

/// Everything a route is allowed to change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawRoutePolicy")]
pub struct RoutePolicy {
    /// Attributes the route may change, with the value they must arrive with where known.
    pub allowed_changes: Vec<AllowedChange>,
    /// Whether the transfer syntax may change.
    pub transfer_syntax: TransferSyntaxPolicy,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoutePolicy {
    #[serde(default)]
    allowed_changes: Vec<AllowedChange>,
    #[serde(default = "yes")]
    lossless_transfer_syntax_change: bool,
}

fn yes() -> bool {
    true
}

impl From<RawRoutePolicy> for RoutePolicy {
    fn from(raw: RawRoutePolicy) -> Self {
        RoutePolicy {
            allowed_changes: raw.allowed_changes,
            transfer_syntax: TransferSyntaxPolicy {
                lossless_change_allowed: raw.lossless_transfer_syntax_change,
            },
        }
    }
}

impl RoutePolicy {
    /// A policy that allows `changes` and the default transfer-syntax policy.
    pub fn allowing(changes: impl IntoIterator<Item = AllowedChange>) -> Self {
        RoutePolicy {
            allowed_changes: changes.into_iter().collect(),
            transfer_syntax: TransferSyntaxPolicy::default(),
        }
    }

    /// Sets the transfer-syntax policy.
    pub fn transfer_syntax(mut self, policy: TransferSyntaxPolicy) -> Self {
        self.transfer_syntax = policy;
        self
    }

    /// Whether a difference at `concrete` is covered by an allowed change.
    pub(crate) fn allows(&self, concrete: &[(Tag, Option<u32>)]) -> bool {
        self.allowed_changes
            .iter()
            .any(|change| change.attribute.covers(concrete))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn paths_read_keywords_tags_and_item_selectors() {
        let path: AttributePath = "ReferencedStudySequence[1].(0008,1155)".parse().unwrap();
        assert_eq!(path.steps().len(), 2);
        assert_eq!(path.steps()[0].items, ItemSelector::Index(1));
        assert_eq!(
            path.steps()[1].attribute.tag,
            tags::REFERENCED_SOP_INSTANCE_UID
        );
        assert_eq!(
            path.to_string(),
            "ReferencedStudySequence[1].ReferencedSOPInstanceUID"
        );
    }

    #[test]
    fn bad_paths_say_what_is_wrong() {
        for bad in [
            "StudyDescripton",
            "ReferencedStudySequence[x].PatientID",
            "A[1",
        ] {
            let err = bad.parse::<AttributePath>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn a_path_covers_itself_what_lies_inside_and_only_the_items_it_names() {
        let seq = tags::REFERENCED_STUDY_SEQUENCE;
        let uid = tags::REFERENCED_SOP_INSTANCE_UID;
        let any: AttributePath = "ReferencedStudySequence[*].ReferencedSOPInstanceUID"
            .parse()
            .unwrap();
        let first: AttributePath = "ReferencedStudySequence[0].ReferencedSOPInstanceUID"
            .parse()
            .unwrap();
        let whole = AttributePath::top_level(seq);
        let in_item_1 = [(seq, Some(1)), (uid, None)];
        assert!(any.covers(&in_item_1));
        assert!(!first.covers(&in_item_1));
        assert!(whole.covers(&in_item_1));
        assert!(
            !any.covers(&[(seq, None)]),
            "a nested path does not cover its sequence"
        );
    }

    #[test]
    fn an_allowed_change_cannot_be_both_a_value_and_absent() {
        let err = serde_json::from_str::<AllowedChange>(
            r#"{ "attribute": "PatientID", "expected": "X", "expected_absent": true }"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }
}
