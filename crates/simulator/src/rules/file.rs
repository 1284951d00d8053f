//! The rules file format: TOML read into `Raw*` mirrors of the model with every
//! value's position kept, then checked and converted by a [`Loader`] that reports
//! each mistake as `Bad rules file: FILE:LINE: what is wrong`.

use std::path::Path;
use std::time::Duration;

use dimse::{Attribute, InformationModel, Status};
use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::model::*;
use super::{
    CommitmentReport, DEFAULT_REJECT_STATUS, DEFAULT_RULES_TOML, MoveDestination, Rules, Settings,
};
use super::{IdentityPolicy, IdentityUser};
use crate::error::RulesError;
use crate::faults::{
    AttributeAlteration, FaultPlan, FindRefusal, ResponseDelay, StatusOverride, StoreSelection,
};

mod forward;
use forward::RawForward;

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
        Rules::parse(&text, &path.display().to_string(), forward::folder_of(path))
    }

    /// Parses rules from TOML text; `file` names it in errors. Relative paths in it
    /// (TLS files of a forwarding destination) are relative to the current folder.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Rules, RulesError> {
        Rules::parse(text, file, None)
    }

    fn parse(text: &str, file: &str, dir: Option<&Path>) -> Result<Rules, RulesError> {
        let raw: RawRules = toml::from_str(text).map_err(|e| RulesError::Invalid {
            file: file.to_string(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().trim().to_string(),
        })?;
        let loader = Loader { text, file, dir };
        loader.rules(raw)
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
    #[serde(default, rename = "move_destination")]
    move_destinations: Vec<Spanned<RawMoveDestination>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMoveDestination {
    ae_title: Spanned<String>,
    host: String,
    port: Spanned<u16>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    query_ae_title: Option<Spanned<String>>,
    #[serde(default)]
    person_name_case_insensitive: bool,
    commitment_report: Option<Spanned<String>>,
    #[serde(default)]
    commitment_report_delay_ms: u64,
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
    reject_first_associations: Option<u64>,
    abort_mid_data_set_bytes: Option<usize>,
    withheld_find_models: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    stall_finds: bool,
    refuse_find: Option<Spanned<RawFindRefusal>>,
    #[serde(default)]
    omit_instance_counts: bool,
    #[serde(default)]
    status_in_last_identifier: bool,
    drop_forward_every_nth: Option<Spanned<u64>>,
    duplicate_forward_every_nth: Option<Spanned<u64>>,
    corrupt_pixels_every_nth: Option<Spanned<u64>>,
    alter_attribute: Option<Spanned<RawAlteration>>,
    forward_delay_ms: Option<RawDelay>,
    #[serde(default)]
    retrieve_pending_forever: bool,
    #[serde(default)]
    retrieve_extra_instance: bool,
    retrieve_fail_every_nth: Option<Spanned<u64>>,
    #[serde(default)]
    commitment_never_report: bool,
    commitment_fail_every_nth: Option<Spanned<u64>>,
    #[serde(default)]
    commitment_unknown_transaction: bool,
    #[serde(default)]
    seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlteration {
    every_nth: Spanned<u64>,
    attribute: Spanned<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFindRefusal {
    #[serde(default)]
    models: Vec<String>,
    status: u16,
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
    identity: Option<Spanned<RawIdentity>>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    required: Option<bool>,
    #[serde(default)]
    kinds: Vec<Spanned<String>>,
    #[serde(default)]
    users: Vec<Spanned<RawIdentityUser>>,
    #[serde(default)]
    tokens: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentityUser {
    name: String,
    passcode: Option<String>,
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
    /// The rules file's folder, for the relative paths in it.
    dir: Option<&'a Path>,
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
        let commitment_report = match &raw.settings.commitment_report {
            None => CommitmentReport::SameAssociation,
            Some(value) => match value.get_ref().as_str() {
                "same-association" => CommitmentReport::SameAssociation,
                "new-association" => CommitmentReport::NewAssociation,
                other => {
                    return Err(self.error(
                        &value.span(),
                        format!("commitment_report = \"{other}\": expected \"same-association\" or \"new-association\""),
                    ));
                }
            },
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
        let mut move_destinations: Vec<MoveDestination> = Vec::new();
        for spanned in raw.move_destinations {
            let span = spanned.span();
            let raw = spanned.into_inner();
            let ae_title = self.ae_title(&raw.ae_title, "move_destination ae_title")?;
            if move_destinations.iter().any(|d| d.ae_title == ae_title) {
                return Err(self.error(
                    &span,
                    format!("move_destination ae_title \"{ae_title}\" is used twice"),
                ));
            }
            if raw.host.trim().is_empty() {
                return Err(self.error(&span, "move_destination host is empty"));
            }
            if *raw.port.get_ref() == 0 {
                return Err(self.error(&raw.port.span(), "move_destination port = 0"));
            }
            move_destinations.push(MoveDestination {
                ae_title,
                host: raw.host,
                port: raw.port.into_inner(),
            });
        }
        Ok(Rules {
            settings: Settings {
                query_ae_title,
                person_name_case_insensitive: raw.settings.person_name_case_insensitive,
                commitment_report,
                commitment_report_delay: Duration::from_millis(
                    raw.settings.commitment_report_delay_ms,
                ),
            },
            faults,
            routes,
            move_destinations,
        })
    }

    fn delay(
        &self,
        span: &Span,
        raw: Option<RawDelay>,
        key: &str,
    ) -> Result<Option<ResponseDelay>, RulesError> {
        Ok(match raw {
            None => None,
            Some(RawDelay::Fixed(ms)) => Some(ResponseDelay::Fixed(Duration::from_millis(ms))),
            Some(RawDelay::Range([a, b])) if a <= b => Some(ResponseDelay::Random {
                min: Duration::from_millis(a),
                max: Duration::from_millis(b),
            }),
            Some(RawDelay::Range([a, b])) => {
                return Err(self.error(
                    span,
                    format!("{key} = [{a}, {b}]: the first bound must not exceed the second"),
                ));
            }
        })
    }

    /// An "every Nth" count: 0 would select nothing (or divide by zero), so it is
    /// refused rather than silently ignored.
    fn every_nth(&self, value: &Spanned<u64>, key: &str) -> Result<u64, RulesError> {
        match *value.get_ref() {
            0 => Err(self.error(
                &value.span(),
                format!("{key} = 0: must be at least 1 (every Nth one)"),
            )),
            n => Ok(n),
        }
    }

    fn alteration(
        &self,
        spanned: Spanned<RawAlteration>,
    ) -> Result<AttributeAlteration, RulesError> {
        let raw = spanned.into_inner();
        Ok(AttributeAlteration {
            every_nth: self.every_nth(&raw.every_nth, "alter_attribute every_nth")?,
            attribute: self.tag(
                &raw.attribute.span(),
                "alter_attribute attribute",
                raw.attribute.get_ref(),
            )?,
            value: raw.value,
        })
    }

    fn faults(&self, spanned: Spanned<RawFaults>) -> Result<FaultPlan, RulesError> {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let response_delay = self.delay(&span, raw.response_delay_ms, "response_delay_ms")?;
        let forward_delay = self.delay(&span, raw.forward_delay_ms, "forward_delay_ms")?;
        let every_nth = |value: &Option<Spanned<u64>>, key: &str| {
            value.as_ref().map(|v| self.every_nth(v, key)).transpose()
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
        let refuse_find = raw.refuse_find.map(|r| self.find_refusal(r)).transpose()?;
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
            reject_first_associations: raw.reject_first_associations,
            abort_mid_data_set: raw.abort_mid_data_set_bytes,
            withheld_find_models: match &raw.withheld_find_models {
                Some(names) => {
                    self.models(names.span(), names.get_ref(), "withheld_find_models")?
                }
                None => Vec::new(),
            },
            stall_finds: raw.stall_finds,
            refuse_find,
            omit_instance_counts: raw.omit_instance_counts,
            status_in_last_identifier: raw.status_in_last_identifier,
            drop_forward_every_nth: every_nth(
                &raw.drop_forward_every_nth,
                "drop_forward_every_nth",
            )?,
            duplicate_forward_every_nth: every_nth(
                &raw.duplicate_forward_every_nth,
                "duplicate_forward_every_nth",
            )?,
            corrupt_pixels_every_nth: every_nth(
                &raw.corrupt_pixels_every_nth,
                "corrupt_pixels_every_nth",
            )?,
            alter_attribute: raw
                .alter_attribute
                .map(|a| self.alteration(a))
                .transpose()?,
            forward_delay,
            retrieve_pending_forever: raw.retrieve_pending_forever,
            retrieve_extra_instance: raw.retrieve_extra_instance,
            retrieve_fail_every_nth: every_nth(
                &raw.retrieve_fail_every_nth,
                "retrieve_fail_every_nth",
            )?,
            commitment_never_report: raw.commitment_never_report,
            commitment_fail_every_nth: every_nth(
                &raw.commitment_fail_every_nth,
                "commitment_fail_every_nth",
            )?,
            commitment_unknown_transaction: raw.commitment_unknown_transaction,
            seed: raw.seed,
        })
    }

    fn find_refusal(&self, spanned: Spanned<RawFindRefusal>) -> Result<FindRefusal, RulesError> {
        let span = spanned.span();
        let raw = spanned.into_inner();
        Ok(FindRefusal {
            models: self.models(span, &raw.models, "refuse_find models")?,
            status: Status(raw.status),
        })
    }

    /// Query/Retrieve models named as in the file: `study_root`, `patient_root`.
    fn models(
        &self,
        span: Span,
        names: &[String],
        key: &str,
    ) -> Result<Vec<InformationModel>, RulesError> {
        names
            .iter()
            .map(|name| match name.as_str() {
                "study_root" => Ok(InformationModel::StudyRoot),
                "patient_root" => Ok(InformationModel::PatientRoot),
                other => Err(self.error(
                    &span,
                    format!("{key} = \"{other}\": expected \"study_root\" or \"patient_root\""),
                )),
            })
            .collect()
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
        let identity = match raw.identity {
            Some(identity) => Some(self.identity(&name, identity)?),
            None => None,
        };
        let forward = match raw.forward {
            Some(f) => Some(self.forward(&name, &called_ae_title, f)?),
            None => None,
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
            identity,
            delivery,
            stable_study_time,
            duplicates,
            validations,
            morphs,
        })
    }

    fn identity(
        &self,
        route: &str,
        spanned: Spanned<RawIdentity>,
    ) -> Result<IdentityPolicy, RulesError> {
        use dimse::IdentityKind;
        let span = spanned.span();
        let raw = spanned.into_inner();
        let mut kinds = Vec::new();
        for kind in &raw.kinds {
            let parsed = kind.get_ref().parse::<IdentityKind>().map_err(|_| {
                self.error(
                    &kind.span(),
                    format!(
                        "identity.kinds: \"{}\" is no identity kind: expected \"username\", \"username_passcode\", \"kerberos\", \"saml\" or \"jwt\"",
                        kind.get_ref()
                    ),
                )
            })?;
            kinds.push(parsed);
        }
        let mut users = Vec::new();
        for user in raw.users {
            let user_span = user.span();
            let user = user.into_inner();
            if user.name.is_empty() {
                return Err(self.error(&user_span, "identity.users: a user name must not be empty"));
            }
            users.push(IdentityUser {
                name: user.name,
                passcode: user.passcode,
            });
        }
        if raw.tokens.iter().any(String::is_empty) {
            return Err(self.error(&span, "identity.tokens: a token must not be empty"));
        }
        let required = raw.required.unwrap_or(true);
        if required && users.is_empty() && raw.tokens.is_empty() {
            return Err(self.error(
                &span,
                format!(
                    "route \"{route}\": [route.identity] requires an identity but lists no users and no tokens, so nobody could associate"
                ),
            ));
        }
        Ok(IdentityPolicy {
            required,
            kinds,
            users,
            tokens: raw.tokens,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(toml: &str) -> String {
        Rules::from_toml_str(toml, "test.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_route_identity_loads_and_mistakes_are_named() {
        let toml = "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\n\n[route.identity]\nrequired = true\nkinds = [\"username_passcode\", \"jwt\"]\nusers = [{ name = \"modality1\", passcode = \"pw\" }]\ntokens = [\"tok\"]\n";
        let rules = Rules::from_toml_str(toml, "test.toml").unwrap();
        let identity = rules.routes[0].identity.as_ref().unwrap();
        assert!(identity.required);
        assert_eq!(identity.kinds.len(), 2);
        assert_eq!(identity.users[0].name, "modality1");
        assert_eq!(identity.tokens, ["tok"]);
        let err = error_of(&toml.replace("\"jwt\"", "\"x509\""));
        assert!(err.starts_with("Bad rules file: test.toml:7: "), "{err}");
        assert!(err.contains("x509"), "{err}");
        let err = error_of(
            "[[route]]\nname = \"A\"\ncalled_ae_title = \"A\"\n\n[route.identity]\nrequired = true\n",
        );
        assert!(err.contains("nobody could associate"), "{err}");
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
    fn the_protocol_faults_load_from_the_file() {
        let toml = "[faults]\nabort_mid_data_set_bytes = 4096\nreject_first_associations = 2\nwithheld_find_models = [\"patient_root\"]\nstall_finds = true\nomit_instance_counts = true\nstatus_in_last_identifier = true\nrefuse_find = { models = [\"study_root\"], status = 0xA900 }\n";
        let faults = Rules::from_toml_str(toml, "f.toml").unwrap().faults;
        assert_eq!(faults.abort_mid_data_set, Some(4096));
        assert_eq!(faults.reject_first_associations, Some(2));
        assert_eq!(faults.withheld_find_models, [InformationModel::PatientRoot]);
        assert!(faults.stall_finds && faults.omit_instance_counts);
        assert!(faults.status_in_last_identifier);
        assert_eq!(
            faults.refuse_find,
            Some(FindRefusal {
                models: vec![InformationModel::StudyRoot],
                status: Status(0xA900),
            })
        );
    }

    #[test]
    fn the_silent_forwarding_faults_load_from_the_file() {
        let toml = "[faults]\ndrop_forward_every_nth = 5\nduplicate_forward_every_nth = 4\ncorrupt_pixels_every_nth = 3\nalter_attribute = { every_nth = 2, attribute = \"InstitutionName\", value = \"ALTERED\" }\nforward_delay_ms = [10, 20]\n";
        let faults = Rules::from_toml_str(toml, "f.toml").unwrap().faults;
        assert_eq!(faults.drop_forward_every_nth, Some(5));
        assert_eq!(faults.duplicate_forward_every_nth, Some(4));
        assert_eq!(faults.corrupt_pixels_every_nth, Some(3));
        let alteration = faults.alter_attribute.unwrap();
        assert_eq!(alteration.every_nth, 2);
        assert_eq!(
            alteration.attribute.tag,
            dicom_dictionary_std::tags::INSTITUTION_NAME
        );
        assert_eq!(alteration.value.as_deref(), Some("ALTERED"));
        assert_eq!(
            faults.forward_delay,
            Some(ResponseDelay::Random {
                min: Duration::from_millis(10),
                max: Duration::from_millis(20),
            })
        );

        let toml = "[faults]\nforward_delay_ms = 30\nalter_attribute = { every_nth = 1, attribute = \"(0010,1010)\" }\n";
        let faults = Rules::from_toml_str(toml, "f.toml").unwrap().faults;
        assert_eq!(
            faults.forward_delay,
            Some(ResponseDelay::Fixed(Duration::from_millis(30)))
        );
        let alteration = faults.alter_attribute.unwrap();
        assert_eq!(
            alteration.attribute.tag,
            dicom_dictionary_std::tags::PATIENT_AGE
        );
        assert_eq!(alteration.value, None, "no value: remove");
    }

    #[test]
    fn silent_fault_mistakes_are_named_with_their_line() {
        let err = error_of("[faults]\nseed = 1\ndrop_forward_every_nth = 0\n");
        assert!(err.starts_with("Bad rules file: test.toml:3: "), "{err}");
        assert!(err.contains("drop_forward_every_nth = 0"), "{err}");
        for key in ["duplicate_forward_every_nth", "corrupt_pixels_every_nth"] {
            let err = error_of(&format!("[faults]\n{key} = 0\n"));
            assert!(err.starts_with("Bad rules file: test.toml:2: "), "{err}");
            assert!(err.contains(key), "{err}");
        }
        let err = error_of(
            "[faults]\nseed = 1\nalter_attribute = { every_nth = 2, attribute = \"InstitutionNom\", value = \"x\" }\n",
        );
        assert!(err.starts_with("Bad rules file: test.toml:3: "), "{err}");
        assert!(err.contains("InstitutionNom"), "{err}");
        let err = error_of(
            "[faults]\nalter_attribute = { every_nth = 0, attribute = \"InstitutionName\" }\n",
        );
        assert!(err.starts_with("Bad rules file: test.toml:2: "), "{err}");
        assert!(err.contains("every_nth = 0"), "{err}");
        let err = error_of("[faults]\nforward_delay_ms = [20, 10]\n");
        assert!(err.contains("forward_delay_ms = [20, 10]"), "{err}");
    }

    #[test]
    fn an_unknown_model_to_refuse_is_named_with_its_line() {
        let toml =
            "[faults]\nseed = 1\nrefuse_find = { models = [\"worklist\"], status = 0xC000 }\n";
        let err = error_of(toml);
        assert!(err.starts_with("Bad rules file: test.toml:3: "), "{err}");
        assert!(
            err.contains("worklist") && err.contains("study_root"),
            "{err}"
        );
    }

    #[test]
    fn move_destinations_and_retrieve_faults_load_and_mistakes_are_named() {
        let toml = "[[move_destination]]\nae_title = \"VIEWER\"\nhost = \"127.0.0.1\"\nport = 11113\n\n[faults]\nretrieve_pending_forever = true\nretrieve_extra_instance = true\nretrieve_fail_every_nth = 3\n";
        let rules = Rules::from_toml_str(toml, "m.toml").unwrap();
        assert_eq!(
            rules.move_destination("VIEWER"),
            Some(&MoveDestination {
                ae_title: "VIEWER".into(),
                host: "127.0.0.1".into(),
                port: 11113
            })
        );
        assert!(rules.move_destination("OTHER").is_none());
        assert!(rules.faults.retrieve_pending_forever && rules.faults.retrieve_extra_instance);
        assert_eq!(rules.faults.retrieve_fail_every_nth, Some(3));
        let twice = "[[move_destination]]\nae_title = \"A\"\nhost = \"h\"\nport = 1\n[[move_destination]]\nae_title = \"A\"\nhost = \"h\"\nport = 2\n";
        let err = error_of(twice);
        assert!(err.starts_with("Bad rules file: test.toml:5: "), "{err}");
        assert!(err.contains("used twice"), "{err}");
        let long = error_of(
            "[[move_destination]]\nae_title = \"THIS-AE-TITLE-IS-TOO-LONG\"\nhost = \"h\"\nport = 1\n",
        );
        assert!(long.contains("test.toml:2"), "{long}");
        let zero = error_of("[faults]\nretrieve_fail_every_nth = 0\n");
        assert!(zero.contains("retrieve_fail_every_nth = 0"), "{zero}");
        let unknown = error_of(
            "[[move_destination]]\nae_title = \"A\"\nhost = \"h\"\nport = 1\ntls = true\n",
        );
        assert!(unknown.contains("tls"), "{unknown}");
    }

    #[test]
    fn commitment_settings_and_faults_load_and_mistakes_are_named() {
        let rules = Rules::from_toml_str("", "empty.toml").unwrap();
        assert_eq!(
            rules.settings.commitment_report,
            CommitmentReport::SameAssociation
        );
        assert_eq!(rules.settings.commitment_report_delay, Duration::ZERO);
        let toml = "[settings]\ncommitment_report = \"new-association\"\ncommitment_report_delay_ms = 250\n\n[faults]\ncommitment_never_report = true\ncommitment_fail_every_nth = 2\ncommitment_unknown_transaction = true\n";
        let rules = Rules::from_toml_str(toml, "c.toml").unwrap();
        assert_eq!(
            rules.settings.commitment_report,
            CommitmentReport::NewAssociation
        );
        assert_eq!(
            rules.settings.commitment_report_delay,
            Duration::from_millis(250)
        );
        assert!(rules.faults.commitment_never_report);
        assert!(rules.faults.commitment_unknown_transaction);
        assert_eq!(rules.faults.commitment_fail_every_nth, Some(2));
        let bad = error_of("[settings]\ncommitment_report = \"later\"\n");
        assert!(bad.starts_with("Bad rules file: test.toml:2: "), "{bad}");
        assert!(bad.contains("new-association"), "{bad}");
        let zero = error_of("[faults]\ncommitment_fail_every_nth = 0\n");
        assert!(zero.contains("commitment_fail_every_nth = 0"), "{zero}");
    }
}
