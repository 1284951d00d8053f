//! Routing rules: which called AE titles the simulator answers, what it checks and
//! changes in each received instance, and where it delivers it.
//!
//! Rules come from a TOML file (see the crate README for the format) or from
//! [`Rules::default_rules`], the three routes modelled on the old suite's Compass.
//! Every mistake in a file is reported as `Bad rules file: FILE:LINE: what is wrong`.

use std::path::Path;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dimse::Status;
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::error::RulesError;
use crate::faults::{FaultPlan, ResponseDelay, StatusOverride, StoreSelection};
use crate::values::{has_value, put_text, text};
use dicom_core::VR;
use dimse::Attribute;

/// The rules shipped with the crate (see `rules/default.toml` and the README).
pub const DEFAULT_RULES_TOML: &str = include_str!("../rules/default.toml");

/// Default status for a rejected instance: A900, "data set does not match SOP class".
pub const DEFAULT_REJECT_STATUS: Status = Status(0xA900);

/// A complete rules file: global settings, faults, and the routes.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Settings that apply to every route.
    pub settings: Settings,
    /// Faults injected from the start.
    pub faults: FaultPlan,
    /// The routes, in file order.
    pub routes: Vec<Route>,
}

/// Settings that apply to every route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// An extra AE title that answers C-ECHO and C-FIND only (no storage).
    pub query_ae_title: Option<String>,
    /// Match person names (PN) ignoring case in C-FIND. The standard leaves this to
    /// the SCP; DCMTK and Orthanc differ, so it is a choice.
    pub person_name_case_insensitive: bool,
}

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

/// Text with `${Keyword}` placeholders, resolved against the instance being morphed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TemplatePart {
    Text(String),
    Element(Attribute),
}

impl Template {
    fn parse(source: &str) -> Result<Template, String> {
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

    fn render(&self, obj: &InMemDicomObject) -> String {
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

/// Why an instance was refused: the status to answer and an ErrorComment naming
/// the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The C-STORE status.
    pub status: Status,
    /// Which rule refused it and why.
    pub comment: String,
}

impl Route {
    /// A route that stores what it receives as it is: no checks, no morphing, duplicates
    /// kept first, visible at once.
    pub fn store_only(name: impl Into<String>, called_ae_title: impl Into<String>) -> Self {
        Route {
            name: name.into(),
            called_ae_title: called_ae_title.into(),
            allowed_calling_ae_titles: None,
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

    /// Runs the checks then the morphing rules on `obj`, changing it in place.
    /// `today` is the current date as `YYYYMMDD` (UTC).
    pub fn process(&self, obj: &mut InMemDicomObject, today: &str) -> Result<(), Rejection> {
        for validation in &self.validations {
            validation.apply(obj, today)?;
        }
        for rule in &self.morphs {
            if rule.when.iter().all(|c| c.holds(obj)) {
                for action in &rule.actions {
                    action.apply(obj);
                }
                if rule.stop {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Validation {
    fn apply(&self, obj: &mut InMemDicomObject, today: &str) -> Result<(), Rejection> {
        match self {
            Validation::BlankStudyDate { fill_from, status } => {
                if has_value(obj, tags::STUDY_DATE) {
                    return Ok(());
                }
                let source = fill_from.iter().find_map(|t| {
                    text(obj, t.tag)
                        .filter(|d| is_valid_date(d))
                        .map(|d| (t, d))
                });
                match source {
                    Some((_, date)) => {
                        put_text(obj, tags::STUDY_DATE, dicom_core::VR::DA, &date);
                        Ok(())
                    }
                    None if fill_from.is_empty() => Err(reject(*status, "StudyDate is blank")),
                    None => Err(reject(*status, "StudyDate blank, no date to fill it from")),
                }
            }
            Validation::AccessionNumber {
                pattern,
                max_length,
                allow_blank,
                normalise,
                status,
            } => {
                let value = text(obj, tags::ACCESSION_NUMBER).unwrap_or_default();
                if value.is_empty() {
                    return if *allow_blank {
                        Ok(())
                    } else {
                        Err(reject(*status, "AccessionNumber is blank"))
                    };
                }
                let fits = |v: &str| v.chars().count() <= *max_length && pattern.is_match(v);
                if fits(&value) {
                    return Ok(());
                }
                if *normalise {
                    let fixed: String = value
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric())
                        .take(*max_length)
                        .collect();
                    if !fixed.is_empty() && fits(&fixed) {
                        put_text(obj, tags::ACCESSION_NUMBER, dicom_core::VR::SH, &fixed);
                        return Ok(());
                    }
                }
                let len = value.chars().count();
                Err(reject(
                    *status,
                    &if len > *max_length {
                        format!("AccessionNumber too long ({len} > {max_length})")
                    } else {
                        format!("AccessionNumber '{value}' does not match")
                    },
                ))
            }
            Validation::StudyDateValid {
                allow_future,
                status,
            } => {
                let Some(date) = text(obj, tags::STUDY_DATE).filter(|d| !d.is_empty()) else {
                    return Ok(());
                };
                if !is_valid_date(&date) {
                    return Err(reject(
                        *status,
                        &format!("StudyDate '{date}' is not a date"),
                    ));
                }
                if !allow_future && date.as_str() > add_one_day(today).as_str() {
                    return Err(reject(
                        *status,
                        &format!("StudyDate {date} is in the future"),
                    ));
                }
                Ok(())
            }
            Validation::Required { tag, status } => {
                if has_value(obj, tag.tag) {
                    Ok(())
                } else {
                    Err(reject(
                        *status,
                        &format!("{} is missing", tag_name(tag.tag)),
                    ))
                }
            }
        }
    }
}

fn reject(status: Status, comment: &str) -> Rejection {
    Rejection {
        status,
        comment: comment.to_string(),
    }
}

impl Condition {
    /// Whether the condition holds on `obj`.
    pub fn holds(&self, obj: &InMemDicomObject) -> bool {
        let value = text(obj, self.tag.tag);
        let fold = |s: &str| {
            if self.ignore_case {
                s.to_lowercase()
            } else {
                s.to_string()
            }
        };
        match &self.test {
            Test::Present => has_value(obj, self.tag.tag),
            Test::Absent => !has_value(obj, self.tag.tag),
            Test::Equals(expected) => value.is_some_and(|v| fold(&v) == fold(expected)),
            Test::Contains(needle) => value.is_some_and(|v| fold(&v).contains(&fold(needle))),
            Test::Regex(re) => value.is_some_and(|v| re.is_match(&v)),
            Test::AnyOf(options) => {
                value.is_some_and(|v| options.iter().any(|o| fold(o) == fold(&v)))
            }
        }
    }
}

impl Action {
    fn apply(&self, obj: &mut InMemDicomObject) {
        match self {
            Action::Set { tag, value } => {
                let v = value.render(obj);
                put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
            }
            Action::Copy { tag, from } => {
                if let Some(v) = text(obj, from.tag) {
                    put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
                }
            }
            Action::Prepend { tag, value } => {
                let v = format!(
                    "{}{}",
                    value.render(obj),
                    text(obj, tag.tag).unwrap_or_default()
                );
                put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
            }
            Action::Append { tag, value } => {
                let v = format!(
                    "{}{}",
                    text(obj, tag.tag).unwrap_or_default(),
                    value.render(obj)
                );
                put_text(obj, tag.tag, tag.vr_or(VR::LO), &v);
            }
            Action::Replace { tag, pattern, with } => {
                if let Some(v) = text(obj, tag.tag) {
                    let replaced = pattern.replace_all(&v, with.as_str()).into_owned();
                    if replaced != v {
                        put_text(obj, tag.tag, tag.vr_or(VR::LO), &replaced);
                    }
                }
            }
            Action::Remove { tag } => {
                obj.remove_element(tag.tag);
            }
        }
    }
}

/// Whether `s` is a DA value `YYYYMMDD` naming a real day.
pub(crate) fn is_valid_date(s: &str) -> bool {
    parse_da(s).is_some()
}

/// A DA value as a date. DA is exactly eight digits, which chrono's `%Y` alone would
/// not enforce (it takes a sign and more digits); year 0 is not a DICOM date.
fn parse_da(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y%m%d")
        .ok()
        .filter(|d| d.year() > 0)
}

/// `date` as a DA value `YYYYMMDD`.
fn format_da(date: NaiveDate) -> String {
    format!("{:04}{:02}{:02}", date.year(), date.month(), date.day())
}

/// Today's date in UTC as `YYYYMMDD`.
pub fn today_utc() -> String {
    format_da(Utc::now().date_naive())
}

/// The day after `yyyymmdd` (a date one day ahead of UTC is still "today" in the
/// easternmost hospitals, so "future" starts after tomorrow UTC).
fn add_one_day(yyyymmdd: &str) -> String {
    parse_da(yyyymmdd)
        .and_then(|d| d.succ_opt())
        .map_or_else(|| yyyymmdd.to_string(), format_da)
}

// ---------------------------------------------------------------------------
// Loading

impl Rules {
    /// The rules shipped with the crate: routes `HTM_GI`, `HTM_OPH` and `HTM_ORTHO`.
    pub fn default_rules() -> Rules {
        Rules::from_toml_str(DEFAULT_RULES_TOML, "default.toml (built in)")
            .expect("the built-in rules are checked by a unit test")
    }

    /// Reads a rules file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Rules, RulesError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Rules::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses rules from TOML text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Rules, RulesError> {
        let raw: RawRules = toml::from_str(text).map_err(|e| RulesError::Invalid {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().trim().to_string(),
        })?;
        let loader = Loader { text, file };
        loader.rules(raw)
    }

    /// The route whose called AE title is `called_ae_title`.
    pub fn route_for(&self, called_ae_title: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.called_ae_title == called_ae_title)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    settings: RawSettings,
    faults: Option<Spanned<RawFaults>>,
    #[serde(default, rename = "route")]
    routes: Vec<Spanned<RawRoute>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    query_ae_title: Option<Spanned<String>>,
    #[serde(default)]
    person_name_case_insensitive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaults {
    response_delay_ms: Option<RawDelay>,
    status_override: Option<Spanned<RawStatusOverride>>,
    abort_after_stores: Option<u64>,
    idle_timeout_seconds: Option<Spanned<f64>>,
    refuse_associations_seconds: Option<Spanned<f64>>,
    #[serde(default)]
    stall_stores: bool,
    #[serde(default)]
    seed: u64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDelay {
    Fixed(u64),
    Range([u64; 2]),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatusOverride {
    status: u16,
    every_nth: Option<u64>,
    fraction: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Spanned<String>,
    called_ae_title: Spanned<String>,
    allowed_calling_ae_titles: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    deliver_to: DeliverTo,
    forward: Option<Spanned<RawForward>>,
    #[serde(default)]
    stable_study_seconds: Option<Spanned<f64>>,
    duplicates: Option<RawDuplicates>,
    #[serde(default)]
    validate: Vec<Spanned<RawValidation>>,
    #[serde(default)]
    morph: Vec<Spanned<RawMorph>>,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum DeliverTo {
    #[default]
    Store,
    Forward,
    Both,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForward {
    host: String,
    port: u16,
    called_ae_title: String,
    calling_ae_title: Option<String>,
    max_attempts: Option<u32>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuplicates {
    policy: DuplicateKind,
    status: Option<u16>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum DuplicateKind {
    KeepFirst,
    Overwrite,
    Reject,
}

#[derive(Deserialize)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
enum RawValidation {
    BlankStudyDate {
        action: FillOrReject,
        #[serde(default)]
        fill_from: Vec<String>,
        status: Option<u16>,
    },
    AccessionNumber {
        pattern: Option<String>,
        max_length: Option<usize>,
        action: NormaliseOrReject,
        allow_blank: Option<bool>,
        status: Option<u16>,
    },
    StudyDateValid {
        allow_future: Option<bool>,
        status: Option<u16>,
    },
    Required {
        tag: String,
        status: Option<u16>,
    },
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum FillOrReject {
    Fill,
    Reject,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum NormaliseOrReject {
    #[serde(alias = "normalize")]
    Normalise,
    Reject,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMorph {
    name: Option<String>,
    #[serde(default)]
    when: Vec<Spanned<RawCondition>>,
    actions: Vec<Spanned<RawAction>>,
    #[serde(default)]
    stop: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    tag: String,
    equals: Option<String>,
    contains: Option<String>,
    regex: Option<String>,
    present: Option<bool>,
    absent: Option<bool>,
    any_of: Option<Vec<String>>,
    #[serde(default)]
    ignore_case: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    set: Option<String>,
    copy: Option<String>,
    prepend: Option<String>,
    append: Option<String>,
    replace: Option<String>,
    remove: Option<String>,
    value: Option<String>,
    from: Option<String>,
    pattern: Option<String>,
    with: Option<String>,
}

struct Loader<'a> {
    text: &'a str,
    file: &'a str,
}

type Span = std::ops::Range<usize>;

impl Loader<'_> {
    fn error(&self, span: &Span, message: impl Into<String>) -> RulesError {
        RulesError::Invalid {
            file: self.file.to_string(),
            line: line_of(self.text, span.start),
            message: message.into(),
        }
    }

    fn tag(&self, span: &Span, key: &str, name: &str) -> Result<Attribute, RulesError> {
        Attribute::parse(name).map_err(|source| RulesError::Attribute {
            file: self.file.to_string(),
            line: line_of(self.text, span.start),
            key: key.to_string(),
            value: name.to_string(),
            source,
        })
    }

    fn regex(&self, span: &Span, key: &str, pattern: &str) -> Result<Regex, RulesError> {
        Regex::new(pattern).map_err(|e| {
            self.error(
                span,
                format!("{key} = \"{pattern}\": not a valid regular expression: {e}"),
            )
        })
    }

    fn seconds(&self, value: &Spanned<f64>, key: &str) -> Result<Duration, RulesError> {
        Duration::try_from_secs_f64(*value.get_ref()).map_err(|_| {
            self.error(
                &value.span(),
                format!(
                    "{key} = {}: must be a non-negative number of seconds",
                    value.get_ref()
                ),
            )
        })
    }

    fn ae_title(&self, value: &Spanned<String>, key: &str) -> Result<String, RulesError> {
        let ae = value.get_ref().trim();
        if ae.is_empty()
            || ae.len() > 16
            || !ae
                .chars()
                .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\')
        {
            return Err(self.error(
                &value.span(),
                format!("{key} = \"{}\": an AE title has 1 to 16 printable ASCII characters, no backslash", value.get_ref()),
            ));
        }
        Ok(ae.to_string())
    }

    fn rules(&self, raw: RawRules) -> Result<Rules, RulesError> {
        let query_ae_title = match &raw.settings.query_ae_title {
            Some(ae) => Some(self.ae_title(ae, "query_ae_title")?),
            None => None,
        };
        let faults = match raw.faults {
            Some(f) => self.faults(f)?,
            None => FaultPlan::default(),
        };
        let mut routes: Vec<Route> = Vec::with_capacity(raw.routes.len());
        for raw_route in raw.routes {
            let span = raw_route.span();
            let route = self.route(raw_route.into_inner())?;
            if routes.iter().any(|r| r.name == route.name) {
                return Err(self.error(
                    &span,
                    format!("route name \"{}\" is used twice", route.name),
                ));
            }
            if routes
                .iter()
                .any(|r| r.called_ae_title == route.called_ae_title)
                || query_ae_title.as_deref() == Some(route.called_ae_title.as_str())
            {
                return Err(self.error(
                    &span,
                    format!(
                        "called_ae_title \"{}\" is used twice",
                        route.called_ae_title
                    ),
                ));
            }
            routes.push(route);
        }
        Ok(Rules {
            settings: Settings {
                query_ae_title,
                person_name_case_insensitive: raw.settings.person_name_case_insensitive,
            },
            faults,
            routes,
        })
    }

    fn faults(&self, spanned: Spanned<RawFaults>) -> Result<FaultPlan, RulesError> {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let response_delay = match raw.response_delay_ms {
            None => None,
            Some(RawDelay::Fixed(ms)) => Some(ResponseDelay::Fixed(Duration::from_millis(ms))),
            Some(RawDelay::Range([a, b])) if a <= b => Some(ResponseDelay::Random {
                min: Duration::from_millis(a),
                max: Duration::from_millis(b),
            }),
            Some(RawDelay::Range([a, b])) => {
                return Err(self.error(
                    &span,
                    format!(
                        "response_delay_ms = [{a}, {b}]: the first bound must not exceed the second"
                    ),
                ));
            }
        };
        let status_override = match raw.status_override {
            None => None,
            Some(o) => {
                let ospan = o.span();
                let o = o.into_inner();
                let selection = match (o.every_nth, o.fraction) {
                    (Some(n), None) if n > 0 => StoreSelection::EveryNth(n),
                    (None, Some(p)) if (0.0..=1.0).contains(&p) => StoreSelection::Fraction(p),
                    _ => {
                        return Err(self.error(&ospan, "status_override needs exactly one of every_nth (>= 1) or fraction (0.0 to 1.0)"));
                    }
                };
                Some(StatusOverride {
                    status: Status(o.status),
                    selection,
                })
            }
        };
        Ok(FaultPlan {
            response_delay,
            status_override,
            abort_after_stores: raw.abort_after_stores,
            idle_timeout: raw
                .idle_timeout_seconds
                .as_ref()
                .map(|s| self.seconds(s, "idle_timeout_seconds"))
                .transpose()?,
            refuse_associations_for: raw
                .refuse_associations_seconds
                .as_ref()
                .map(|s| self.seconds(s, "refuse_associations_seconds"))
                .transpose()?,
            stall_stores: raw.stall_stores,
            seed: raw.seed,
        })
    }

    fn route(&self, raw: RawRoute) -> Result<Route, RulesError> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(self.error(&raw.name.span(), "route name must not be empty"));
        }
        let called_ae_title = self.ae_title(&raw.called_ae_title, "called_ae_title")?;
        let allowed_calling_ae_titles = match &raw.allowed_calling_ae_titles {
            None => None,
            Some(list) => {
                let span = list.span();
                let mut out = Vec::new();
                for ae in list.get_ref() {
                    out.push(self.ae_title(
                        &Spanned::new(span.clone(), ae.clone()),
                        "allowed_calling_ae_titles",
                    )?);
                }
                Some(out)
            }
        };
        let forward = match raw.forward {
            None => None,
            Some(f) => {
                let span = f.span();
                let f = f.into_inner();
                let ae = |v: String, key| self.ae_title(&Spanned::new(span.clone(), v), key);
                Some(ForwardDestination {
                    host: f.host,
                    port: f.port,
                    called_ae_title: ae(f.called_ae_title, "forward.called_ae_title")?,
                    calling_ae_title: ae(
                        f.calling_ae_title
                            .unwrap_or_else(|| called_ae_title.clone()),
                        "forward.calling_ae_title",
                    )?,
                    max_attempts: f.max_attempts,
                    retry_initial: Duration::from_millis(f.retry_initial_ms.unwrap_or(200)),
                    retry_max: Duration::from_millis(f.retry_max_ms.unwrap_or(10_000)),
                })
            }
        };
        let needs_forward = matches!(raw.deliver_to, DeliverTo::Forward | DeliverTo::Both);
        if needs_forward && forward.is_none() {
            return Err(self.error(
                &raw.name.span(),
                format!(
                    "route \"{name}\": deliver_to forwards but there is no [route.forward] table"
                ),
            ));
        }
        let delivery = Delivery {
            store: matches!(raw.deliver_to, DeliverTo::Store | DeliverTo::Both),
            forward: if needs_forward { forward } else { None },
        };
        let duplicates = match raw.duplicates {
            None => DuplicatePolicy::KeepFirst,
            Some(d) => match d.policy {
                DuplicateKind::KeepFirst => DuplicatePolicy::KeepFirst,
                DuplicateKind::Overwrite => DuplicatePolicy::Overwrite,
                DuplicateKind::Reject => DuplicatePolicy::Reject(Status(
                    d.status.unwrap_or(Status::DUPLICATE_SOP_INSTANCE.0),
                )),
            },
        };
        let stable_study_time = match &raw.stable_study_seconds {
            Some(s) => self.seconds(s, "stable_study_seconds")?,
            None => Duration::ZERO,
        };
        let validations = raw
            .validate
            .into_iter()
            .map(|v| self.validation(v))
            .collect::<Result<Vec<_>, _>>()?;
        let morphs = raw
            .morph
            .into_iter()
            .enumerate()
            .map(|(i, m)| self.morph(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Route {
            name,
            called_ae_title,
            allowed_calling_ae_titles,
            delivery,
            stable_study_time,
            duplicates,
            validations,
            morphs,
        })
    }

    fn validation(&self, spanned: Spanned<RawValidation>) -> Result<Validation, RulesError> {
        let span = spanned.span();
        let status = |s: Option<u16>| s.map(Status).unwrap_or(DEFAULT_REJECT_STATUS);
        Ok(match spanned.into_inner() {
            RawValidation::BlankStudyDate {
                action,
                fill_from,
                status: s,
            } => {
                if action == FillOrReject::Fill && fill_from.is_empty() {
                    return Err(self.error(&span, "blank_study_date with action = \"fill\" needs fill_from = [\"SeriesDate\", ...]"));
                }
                let fill_from = if action == FillOrReject::Fill {
                    fill_from
                        .iter()
                        .map(|t| self.tag(&span, "fill_from", t))
                        .collect::<Result<Vec<_>, _>>()?
                } else {
                    Vec::new()
                };
                Validation::BlankStudyDate {
                    fill_from,
                    status: status(s),
                }
            }
            RawValidation::AccessionNumber {
                pattern,
                max_length,
                action,
                allow_blank,
                status: s,
            } => {
                let pattern = pattern.unwrap_or_else(|| "^[A-Za-z0-9]+$".to_string());
                Validation::AccessionNumber {
                    pattern: self.regex(&span, "pattern", &pattern)?,
                    max_length: max_length.unwrap_or(16),
                    allow_blank: allow_blank.unwrap_or(true),
                    normalise: action == NormaliseOrReject::Normalise,
                    status: status(s),
                }
            }
            RawValidation::StudyDateValid {
                allow_future,
                status: s,
            } => Validation::StudyDateValid {
                allow_future: allow_future.unwrap_or(false),
                status: status(s),
            },
            RawValidation::Required { tag, status: s } => Validation::Required {
                tag: self.tag(&span, "tag", &tag)?,
                status: status(s),
            },
        })
    }

    fn morph(&self, index: usize, spanned: Spanned<RawMorph>) -> Result<MorphRule, RulesError> {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let name = raw.name.unwrap_or_else(|| format!("morph {}", index + 1));
        if raw.actions.is_empty() {
            return Err(self.error(&span, format!("morph \"{name}\" has no actions")));
        }
        let when = raw
            .when
            .into_iter()
            .map(|c| self.condition(c))
            .collect::<Result<Vec<_>, _>>()?;
        let actions = raw
            .actions
            .into_iter()
            .map(|a| self.action(a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MorphRule {
            name,
            when,
            actions,
            stop: raw.stop,
        })
    }

    fn condition(&self, spanned: Spanned<RawCondition>) -> Result<Condition, RulesError> {
        let span = spanned.span();
        let c = spanned.into_inner();
        let tag = self.tag(&span, "tag", &c.tag)?;
        let mut tests = Vec::new();
        if let Some(v) = c.equals {
            tests.push(Test::Equals(v));
        }
        if let Some(v) = c.contains {
            tests.push(Test::Contains(v));
        }
        if let Some(v) = c.regex {
            tests.push(Test::Regex(self.regex(&span, "regex", &v)?));
        }
        match c.present {
            Some(true) => tests.push(Test::Present),
            Some(false) => tests.push(Test::Absent),
            None => {}
        }
        match c.absent {
            Some(true) => tests.push(Test::Absent),
            Some(false) => tests.push(Test::Present),
            None => {}
        }
        if let Some(v) = c.any_of {
            tests.push(Test::AnyOf(v));
        }
        if tests.len() != 1 {
            return Err(self.error(
                &span,
                format!(
                    "condition on {} needs exactly one of equals, contains, regex, present, absent, any_of (found {})",
                    c.tag,
                    tests.len()
                ),
            ));
        }
        Ok(Condition {
            tag,
            test: tests.remove(0),
            ignore_case: c.ignore_case,
        })
    }

    fn action(&self, spanned: Spanned<RawAction>) -> Result<Action, RulesError> {
        let span = spanned.span();
        let a = spanned.into_inner();
        let ops: Vec<(&str, &String)> = [
            ("set", &a.set),
            ("copy", &a.copy),
            ("prepend", &a.prepend),
            ("append", &a.append),
            ("replace", &a.replace),
            ("remove", &a.remove),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let [(op, target)] = ops[..] else {
            return Err(self.error(
                &span,
                format!("an action needs exactly one of set, copy, prepend, append, replace, remove (found {})", ops.len()),
            ));
        };
        let tag = self.tag(&span, op, target)?;
        let need = |field: &Option<String>, name: &str| {
            field.clone().ok_or_else(|| {
                self.error(
                    &span,
                    format!("action {op} = \"{target}\" needs {name} = \"...\""),
                )
            })
        };
        let unused: Vec<&str> = [
            (
                "value",
                a.value.is_some() && !matches!(op, "set" | "prepend" | "append"),
            ),
            ("from", a.from.is_some() && op != "copy"),
            ("pattern", a.pattern.is_some() && op != "replace"),
            ("with", a.with.is_some() && op != "replace"),
        ]
        .into_iter()
        .filter(|(_, bad)| *bad)
        .map(|(k, _)| k)
        .collect();
        if !unused.is_empty() {
            return Err(self.error(
                &span,
                format!(
                    "action {op} = \"{target}\" does not use {}",
                    unused.join(", ")
                ),
            ));
        }
        let template = |v: String| Template::parse(&v).map_err(|m| self.error(&span, m));
        Ok(match op {
            "set" => Action::Set {
                tag,
                value: template(need(&a.value, "value")?)?,
            },
            "prepend" => Action::Prepend {
                tag,
                value: template(need(&a.value, "value")?)?,
            },
            "append" => Action::Append {
                tag,
                value: template(need(&a.value, "value")?)?,
            },
            "copy" => {
                let from = need(&a.from, "from")?;
                Action::Copy {
                    tag,
                    from: self.tag(&span, "from", &from)?,
                }
            }
            "replace" => {
                let pattern = need(&a.pattern, "pattern")?;
                Action::Replace {
                    tag,
                    pattern: self.regex(&span, "pattern", &pattern)?,
                    with: need(&a.with, "with")?,
                }
            }
            _ => Action::Remove { tag },
        })
    }
}

/// Tags a rules file can name, for callers that print them.
pub fn tag_name(tag: Tag) -> String {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    dicom_dictionary_std::StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| crate::values::tag_hex(tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use dicom_core::VR;

    fn oph() -> Route {
        Rules::default_rules()
            .route_for("LB-HTM-OPH")
            .unwrap()
            .clone()
    }

    /// An instance with a valid StudyDate unless `pairs` sets one.
    fn instance(pairs: &[(Tag, VR, &str)]) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put_str(tags::STUDY_DATE, VR::DA, "20240101");
        for (t, vr, v) in pairs {
            obj.put_str(*t, *vr, *v);
        }
        obj
    }

    fn error_of(toml: &str) -> String {
        Rules::from_toml_str(toml, "test.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_default_rules_load_and_have_three_routes() {
        let rules = Rules::default_rules();
        let names: Vec<_> = rules.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["HTM_GI", "HTM_OPH", "HTM_ORTHO"]);
        assert_eq!(rules.settings.query_ae_title.as_deref(), Some("LB-QUERY"));
        assert!(rules.faults.is_empty());
    }

    #[test]
    fn visual_field_gpa_gets_its_study_description() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OPV"),
            (tags::SERIES_DESCRIPTION, VR::LO, "SITA-Standard 24-2 GPA"),
            (tags::STUDY_DATE, VR::DA, "20240105"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("Visual Fields (VF) GPA")
        );
        assert_eq!(
            text(&obj, tags::INSTITUTIONAL_DEPARTMENT_NAME).as_deref(),
            Some("Ophthalmology")
        );
    }

    #[test]
    fn stop_ends_the_chain_at_the_first_matching_rule() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OPV"),
            (tags::SERIES_DESCRIPTION, VR::LO, "Threshold"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("Visual Fields (VF)")
        );
    }

    #[test]
    fn laterality_is_appended_with_a_template() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OPT"),
            (tags::SERIES_DESCRIPTION, VR::LO, "Macula Cube"),
            (tags::LATERALITY, VR::CS, "R"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::SERIES_DESCRIPTION).as_deref(),
            Some("Macula Cube (R)")
        );
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("OCT Macula")
        );
    }

    #[test]
    fn blank_study_date_is_filled_from_the_first_available_date() {
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "OP"),
            (tags::STUDY_DATE, VR::DA, ""),
            (tags::CONTENT_DATE, VR::DA, "20240202"),
            (tags::SERIES_DATE, VR::DA, "20240303"),
        ]);
        oph().process(&mut obj, "20250101").unwrap();
        // OPH fills from AcquisitionDate, then ContentDate, then SeriesDate.
        assert_eq!(text(&obj, tags::STUDY_DATE).as_deref(), Some("20240202"));
    }

    #[test]
    fn ortho_rejects_a_blank_study_date_with_its_status() {
        let ortho = Rules::default_rules()
            .route_for("LB-HTM-ORTHO")
            .unwrap()
            .clone();
        let mut obj = instance(&[
            (tags::PATIENT_ID, VR::LO, "P1"),
            (tags::MODALITY, VR::CS, "DX"),
        ]);
        obj.remove_element(tags::STUDY_DATE);
        let rejection = ortho.process(&mut obj, "20250101").unwrap_err();
        assert_eq!(rejection.status, Status(0xA900));
        assert!(
            rejection.comment.contains("StudyDate"),
            "{}",
            rejection.comment
        );
    }

    #[test]
    fn accession_numbers_are_normalised_or_rejected_per_route() {
        let mut obj = instance(&[(tags::ACCESSION_NUMBER, VR::SH, "ACC-2024-000123456789")]);
        oph().process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::ACCESSION_NUMBER).as_deref(),
            Some("ACC2024000123456")
        );

        let ortho = Rules::default_rules()
            .route_for("LB-HTM-ORTHO")
            .unwrap()
            .clone();
        let mut obj = instance(&[
            (tags::PATIENT_ID, VR::LO, "P1"),
            (tags::STUDY_DATE, VR::DA, "20240101"),
            (tags::ACCESSION_NUMBER, VR::SH, "ACC-1"),
        ]);
        let rejection = ortho.process(&mut obj, "20250101").unwrap_err();
        assert_eq!(rejection.status, Status(0xC000));
    }

    #[test]
    fn future_and_impossible_study_dates_are_rejected() {
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20250103")]);
        let r = oph().process(&mut obj, "20250101").unwrap_err();
        assert!(r.comment.contains("future"), "{}", r.comment);
        // Tomorrow (UTC) is still today somewhere.
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20250102")]);
        oph().process(&mut obj, "20250101").unwrap();
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20230229")]);
        assert!(oph().process(&mut obj, "20250101").is_err());
        let mut obj = instance(&[(tags::STUDY_DATE, VR::DA, "20240229")]);
        oph().process(&mut obj, "20250101").unwrap();
    }

    #[test]
    fn ortho_names_radiographs_by_body_part() {
        let ortho = Rules::default_rules()
            .route_for("LB-HTM-ORTHO")
            .unwrap()
            .clone();
        for (part, expected) in [
            ("KNEE", "XR Knee"),
            ("PELVIS", "XR Hip/Pelvis"),
            ("ELBOW", "XR ELBOW"),
            ("", "XR Unspecified"),
        ] {
            let mut obj = instance(&[
                (tags::PATIENT_ID, VR::LO, "P1"),
                (tags::PATIENT_NAME, VR::PN, "DOE^JANE^^"),
                (tags::STUDY_DATE, VR::DA, "20240101"),
                (tags::MODALITY, VR::CS, "CR"),
                (tags::BODY_PART_EXAMINED, VR::CS, part),
            ]);
            ortho.process(&mut obj, "20250101").unwrap();
            assert_eq!(
                text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
                Some(expected),
                "{part}"
            );
            assert_eq!(text(&obj, tags::PATIENT_NAME).as_deref(), Some("DOE^JANE"));
        }
    }

    #[test]
    fn gi_copies_removes_and_prepends() {
        let gi = Rules::default_rules()
            .route_for("LB-HTM-GI")
            .unwrap()
            .clone();
        let mut obj = instance(&[
            (tags::MODALITY, VR::CS, "ES"),
            (tags::PROTOCOL_NAME, VR::LO, "Colonoscopy screening"),
            (tags::PATIENT_COMMENTS, VR::LT, "moved from old PAS"),
            (tags::STATION_NAME, VR::SH, "SCOPE1"),
        ]);
        gi.process(&mut obj, "20250101").unwrap();
        assert_eq!(
            text(&obj, tags::SERIES_DESCRIPTION).as_deref(),
            Some("Colonoscopy screening")
        );
        assert_eq!(
            text(&obj, tags::STUDY_DESCRIPTION).as_deref(),
            Some("Endoscopy Colonoscopy")
        );
        assert!(obj.get(tags::PATIENT_COMMENTS).is_none());
        assert_eq!(text(&obj, tags::STATION_NAME).as_deref(), Some("GI-SCOPE1"));
    }

    #[test]
    fn syntax_errors_name_the_file_and_line() {
        let err = error_of("[[route]]\nname = \"A\"\ncalled_ae_title = \n");
        assert!(err.starts_with("Bad rules file: test.toml:3: "), "{err}");
    }

    #[test]
    fn unknown_keys_and_tags_are_reported_with_their_line() {
        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\ncolour = 1\n";
        let err = error_of(toml);
        assert!(err.starts_with("Bad rules file: test.toml:4: "), "{err}");
        assert!(err.contains("colour"), "{err}");

        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\n\n[[route.morph]]\nwhen = [\n  { tag = \"Modality\", equals = \"CT\" },\n  { tag = \"NoSuchTag\", equals = \"x\" },\n]\nactions = [{ set = \"StudyDescription\", value = \"x\" }]\n";
        let err = error_of(toml);
        assert!(err.starts_with("Bad rules file: test.toml:8: "), "{err}");
        assert!(err.contains("NoSuchTag"), "{err}");
    }

    #[test]
    fn a_malformed_tag_is_a_typed_attribute_error_at_its_line() {
        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\n\n[[route.morph]]\nactions = [{ remove = \"(0008,10\" }]\n";
        let err = Rules::from_toml_str(toml, "test.toml").unwrap_err();
        assert_eq!(err.line(), Some(6));
        assert!(
            matches!(
                &err,
                RulesError::Attribute {
                    source: dimse::AttributeError::MalformedTag { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.starts_with("Bad rules file: test.toml:6: "), "{text}");
        assert!(text.contains("(gggg,eeee)"), "{text}");
    }

    #[test]
    fn bad_values_are_named() {
        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"THIS-AE-TITLE-IS-TOO-LONG\"\n";
        let err = error_of(toml);
        assert!(
            err.contains("test.toml:3") && err.contains("THIS-AE-TITLE-IS-TOO-LONG"),
            "{err}"
        );

        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\n[[route.morph]]\nactions = [{ replace = \"StudyDescription\", pattern = \"(\", with = \"\" }]\n";
        let err = error_of(toml);
        assert!(
            err.contains("test.toml:5") && err.contains("regular expression"),
            "{err}"
        );

        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\n[[route.morph]]\nwhen = [{ tag = \"Modality\", equals = \"CT\", contains = \"C\" }]\nactions = [{ remove = \"StudyDescription\" }]\n";
        let err = error_of(toml);
        assert!(
            err.contains("test.toml:5") && err.contains("exactly one"),
            "{err}"
        );

        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\n[[route.validate]]\ncheck = \"accession_number\"\naction = \"shout\"\n";
        let err = error_of(toml);
        assert!(err.contains("shout"), "{err}");
    }

    #[test]
    fn forwarding_without_a_destination_is_an_error() {
        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\ndeliver_to = \"forward\"\n";
        let err = error_of(toml);
        assert!(
            err.contains("test.toml:2") && err.contains("[route.forward]"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_called_ae_titles_are_an_error() {
        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"X\"\n[[route]]\nname = \"B\"\ncalled_ae_title = \"X\"\n";
        let err = error_of(toml);
        assert!(err.contains("used twice"), "{err}");
    }

    #[test]
    fn faults_load_from_the_file() {
        let toml = "[faults]\nresponse_delay_ms = [5, 10]\nstatus_override = { status = 0xA700, every_nth = 3 }\nabort_after_stores = 7\nseed = 9\n";
        let rules = Rules::from_toml_str(toml, "f.toml").unwrap();
        assert_eq!(rules.faults.abort_after_stores, Some(7));
        assert_eq!(
            rules.faults.status_override,
            Some(StatusOverride {
                status: Status(0xA700),
                selection: StoreSelection::EveryNth(3)
            })
        );
        assert!(matches!(
            rules.faults.response_delay,
            Some(ResponseDelay::Random { .. })
        ));
    }

    #[test]
    fn dates_convert_both_ways() {
        assert_eq!(format_da(DateTime::UNIX_EPOCH.date_naive()), "19700101");
        assert_eq!(add_one_day("20241231"), "20250101");
        assert_eq!(add_one_day("20240228"), "20240229");
        assert_eq!(today_utc().len(), 8);
    }

    #[test]
    fn only_eight_digit_real_days_are_dates() {
        assert!(is_valid_date("20240229"));
        for not_a_date in [
            "20230229",
            "20241301",
            "20240100",
            "00000101",
            "2024011",
            "202401011",
            "+2024010",
            "2024-1-1",
            " 2024010",
            "2024010a",
            "",
        ] {
            assert!(!is_valid_date(not_a_date), "{not_a_date:?}");
        }
        assert_eq!(add_one_day("not a date"), "not a date");
    }
}
