//! What a route is made of: where it answers, what it checks, how it changes an
//! instance and where it delivers it. Plain data, built by the rules file loader or
//! by hand ([`Route::store_only`]).

use std::time::Duration;

use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use dimse::{Attribute, Status};
use regex::Regex;

use super::IdentityPolicy;
use crate::values::text;

/// One route: a called AE title and what happens to what arrives on it.
#[derive(Clone, Debug)]
pub struct Route {
    /// The route's name (e.g. `HTM_OPH`).
    pub name: String,
    /// The called AE title that selects this route (e.g. `LB-HTM-OPH`).
    pub called_ae_title: String,
    /// When set, only these calling AE titles may associate (others get
    /// A-ASSOCIATE-RJ permanent, service user, reason 3).
    pub allowed_calling_ae_titles: Option<Vec<String>>,
    /// When set, the user identities accepted (and whether one is required).
    pub identity: Option<IdentityPolicy>,
    /// Where accepted instances go.
    pub delivery: Delivery,
    /// A study becomes visible to C-FIND only once no instance of it has arrived for
    /// this long (Compass's stable-study time). Zero: visible at once.
    pub stable_study_time: Duration,
    /// What a second instance with the same SOP Instance UID does.
    pub duplicates: DuplicatePolicy,
    /// Checks run first, in order; the first failure rejects the instance.
    pub validations: Vec<Validation>,
    /// Morphing rules run after the checks, in order, each on the result of the
    /// previous ones.
    pub morphs: Vec<MorphRule>,
}

/// Where a route delivers accepted instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Into the built-in image store (what C-FIND answers from).
    pub store: bool,
    /// To an external C-STORE SCP, queued and retried.
    pub forward: Option<ForwardDestination>,
}

/// An external C-STORE destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardDestination {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The destination's AE title.
    pub called_ae_title: String,
    /// The AE title the simulator calls from.
    pub calling_ae_title: String,
    /// Give up on an instance after this many failed attempts (it is then counted
    /// as failed and listed by the handle). `None`: retry until shutdown.
    pub max_attempts: Option<u32>,
    /// First retry delay; doubles after each failure.
    pub retry_initial: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// TLS and user identity of the forwarding association (`[route.forward.tls]`,
    /// `[route.forward.identity]`); plaintext without identity by default.
    pub security: dimse::Security,
}

/// What a duplicate SOP Instance UID does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DuplicatePolicy {
    /// Keep the first copy and answer success (what Orthanc does by default).
    #[default]
    KeepFirst,
    /// Replace the stored copy with the new one.
    Overwrite,
    /// Refuse the new copy with this status.
    Reject(Status),
}

/// A check on a received instance.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Validation {
    /// StudyDate blank or absent: fill it from the first of `fill_from` that holds a
    /// valid date, or reject with `status` (also when none does).
    BlankStudyDate {
        /// Dates to copy from, in order; empty means reject.
        fill_from: Vec<Attribute>,
        /// Status when rejected.
        status: Status,
    },
    /// AccessionNumber must match `pattern` and fit `max_length` characters.
    AccessionNumber {
        /// The pattern the whole value must match.
        pattern: Regex,
        /// Longest value (16 for SH).
        max_length: usize,
        /// Whether a blank AccessionNumber passes.
        allow_blank: bool,
        /// Normalise (drop characters other than letters and digits, then truncate)
        /// instead of rejecting; still rejected if the result does not match.
        normalise: bool,
        /// Status when rejected.
        status: Status,
    },
    /// StudyDate, when present, must be a real date, not in the future.
    StudyDateValid {
        /// Accept dates after today.
        allow_future: bool,
        /// Status when rejected.
        status: Status,
    },
    /// The element must be present with a value.
    Required {
        /// The element.
        tag: Attribute,
        /// Status when rejected.
        status: Status,
    },
}

/// A morphing rule: when every condition holds, apply the actions.
#[derive(Clone, Debug)]
pub struct MorphRule {
    /// A name for reports (defaults to `morph N`).
    pub name: String,
    /// All must hold (an empty list always holds).
    pub when: Vec<Condition>,
    /// Applied in order.
    pub actions: Vec<Action>,
    /// When this rule applied, run no further morphing rules.
    pub stop: bool,
}

/// A condition on one element.
#[derive(Clone, Debug)]
pub struct Condition {
    /// The element tested.
    pub tag: Attribute,
    /// The test.
    pub test: Test,
    /// Compare text ignoring case (equals, contains, any_of).
    pub ignore_case: bool,
}

/// A test on an element's value (padding removed). Absent elements fail every test
/// but `Absent`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Test {
    /// The value is exactly this.
    Equals(String),
    /// The value contains this.
    Contains(String),
    /// The value matches this regular expression (anywhere, unless anchored).
    Regex(Regex),
    /// The element is present with a non-empty value.
    Present,
    /// The element is absent or empty.
    Absent,
    /// The value is one of these.
    AnyOf(Vec<String>),
}

/// A change to an instance.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Action {
    /// Set the element (created if absent).
    Set {
        /// Target element.
        tag: Attribute,
        /// The value; `${Keyword}` is replaced by that element's value.
        value: Template,
    },
    /// Copy another element's value (nothing happens when the source is absent).
    Copy {
        /// Target element.
        tag: Attribute,
        /// Source element.
        from: Attribute,
    },
    /// Put text before the current value (an absent element counts as empty).
    Prepend {
        /// Target element.
        tag: Attribute,
        /// The text.
        value: Template,
    },
    /// Put text after the current value.
    Append {
        /// Target element.
        tag: Attribute,
        /// The text.
        value: Template,
    },
    /// Regular-expression replacement of every match (`$1` refers to groups).
    Replace {
        /// Target element (nothing happens when absent).
        tag: Attribute,
        /// What to replace.
        pattern: Regex,
        /// The replacement.
        with: String,
    },
    /// Remove the element.
    Remove {
        /// Target element.
        tag: Attribute,
    },
}

impl Action {
    /// The element the action changes.
    pub fn target(&self) -> &Attribute {
        match self {
            Action::Set { tag, .. }
            | Action::Copy { tag, .. }
            | Action::Prepend { tag, .. }
            | Action::Append { tag, .. }
            | Action::Replace { tag, .. }
            | Action::Remove { tag } => tag,
        }
    }
}

impl Validation {
    /// The element the check may change instead of refusing the instance (a StudyDate
    /// it fills, an AccessionNumber it normalises), if any.
    pub fn fills(&self) -> Option<Tag> {
        match self {
            Validation::BlankStudyDate { fill_from, .. } if !fill_from.is_empty() => {
                Some(dicom_dictionary_std::tags::STUDY_DATE)
            }
            Validation::AccessionNumber {
                normalise: true, ..
            } => Some(dicom_dictionary_std::tags::ACCESSION_NUMBER),
            _ => None,
        }
    }
}

impl Route {
    /// Every element the route may change on the way: what its checks fill or
    /// normalise and what its morphing rules write. A destination may receive these
    /// changed; nothing else.
    pub fn changed_attributes(&self) -> Vec<Tag> {
        let mut changed: Vec<Tag> = Vec::new();
        let filled = self.validations.iter().filter_map(Validation::fills);
        let morphed = self
            .morphs
            .iter()
            .flat_map(|m| &m.actions)
            .map(|a| a.target().tag);
        for tag in filled.chain(morphed) {
            if !changed.contains(&tag) {
                changed.push(tag);
            }
        }
        changed
    }
}

/// Text with `${Keyword}` placeholders, resolved against the instance being morphed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum TemplatePart {
    Text(String),
    Element(Attribute),
}

impl Template {
    pub(super) fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(TemplatePart::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in value `{source}`"))?;
            let name = &after[..end];
            let tag = Attribute::parse(name)
                .map_err(|e| format!("unknown tag `{name}` in value `{source}`: {e}"))?;
            parts.push(TemplatePart::Element(tag));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        Ok(Template { parts })
    }

    pub(super) fn render(&self, obj: &InMemDicomObject) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(t) => out.push_str(t),
                TemplatePart::Element(tag) => out.push_str(&text(obj, tag.tag).unwrap_or_default()),
            }
        }
        out
    }
}

impl Route {
    /// A route that stores what it receives as it is: no checks, no morphing, duplicates
    /// kept first, visible at once.
    pub fn store_only(name: impl Into<String>, called_ae_title: impl Into<String>) -> Self {
        Route {
            name: name.into(),
            called_ae_title: called_ae_title.into(),
            allowed_calling_ae_titles: None,
            identity: None,
            delivery: Delivery {
                store: true,
                forward: None,
            },
            stable_study_time: Duration::ZERO,
            duplicates: DuplicatePolicy::KeepFirst,
            validations: Vec::new(),
            morphs: Vec::new(),
        }
    }
}
