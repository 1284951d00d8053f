//! Expectations as data: the TOML files in `tests-suite/expectations/` say what the router
//! must do (route, attributes sent, attributes or status expected). A site whose router has
//! other rules edits those files, not Rust code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use loader::synth::Modality;
use serde::Deserialize;

/// The folder of the expectation files.
pub fn expectations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("expectations")
}

fn load<T: for<'de> Deserialize<'de>>(file: &str) -> T {
    let path = expectations_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    toml::from_str(&text)
        .unwrap_or_else(|e| panic!("bad expectations file {}: {e}", path.display()))
}

/// Attributes by keyword.
pub type Attributes = BTreeMap<String, String>;

/// `(keyword, value)` pairs borrowed from `attributes`, as the DICOM factory takes them.
pub fn pairs(attributes: &Attributes) -> Vec<(&str, &str)> {
    attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The entry called `name` among `entries`.
///
/// # Panics
/// When it is missing: the generated test and the file disagree, which a rebuild fixes.
pub fn named<'a, T>(entries: &'a [T], name: &str, name_of: impl Fn(&T) -> &str) -> &'a T {
    entries
        .iter()
        .find(|e| name_of(e) == name)
        .unwrap_or_else(|| panic!("{name} is no longer in the expectations file: rebuild"))
}

/// A modality code that the sample generator can make.
#[derive(Debug, Clone, Copy)]
pub struct ModalityCode(pub Modality);

impl<'de> Deserialize<'de> for ModalityCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Modality::from_code(&code)
            .map(ModalityCode)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown modality {code:?}")))
    }
}

/// `routing_transformations.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingTransformations {
    /// The cases, in file order.
    pub case: Vec<TransformationCase>,
}

/// One image sent to a route, and what the destination must show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformationCase {
    /// Test name, a sentence in snake case.
    pub name: String,
    /// Route name of the configuration.
    pub route: String,
    /// The image's modality.
    pub modality: ModalityCode,
    /// Attributes set on the image.
    #[serde(default)]
    pub send: Attributes,
    /// Study-level attributes expected at the destination.
    #[serde(default)]
    pub expect_study: Attributes,
    /// Series-level attributes expected at the destination.
    #[serde(default)]
    pub expect_series: Attributes,
}

/// The routing-transformation cases.
pub fn routing_transformations() -> RoutingTransformations {
    load("routing_transformations.toml")
}

/// `calling_aet_routing.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingAetRouting {
    /// A called AE title the router must refuse.
    pub unknown_called_ae_title: String,
    /// Per-route image and expectation.
    #[serde(default)]
    pub route: Vec<RouteDelivery>,
}

/// What to send through one route, and what must arrive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDelivery {
    /// Route name of the configuration.
    pub name: String,
    /// The image's modality.
    pub modality: ModalityCode,
    /// Attributes set on the image.
    #[serde(default)]
    pub send: Attributes,
    /// Study-level attributes expected at the destination.
    #[serde(default)]
    pub expect_study: Attributes,
}

/// The calling/called AE routing expectations.
pub fn calling_aet_routing() -> CallingAetRouting {
    load("calling_aet_routing.toml")
}

/// `data_validation.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataValidation {
    /// The cases, in file order.
    pub case: Vec<ValidationCase>,
}

/// What the router must do with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Accepted (success or warning) and delivered.
    Stored,
    /// Refused with a failure status and not delivered.
    Rejected,
}

/// One doubtful image and the expected verdict.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationCase {
    /// Test name.
    pub name: String,
    /// Route name of the configuration.
    pub route: String,
    /// The image's modality.
    pub modality: ModalityCode,
    /// Attributes set on the image (empty: present but blank).
    #[serde(default)]
    pub send: Attributes,
    /// Attributes removed from the image.
    #[serde(default)]
    pub remove: Vec<String>,
    /// The verdict.
    pub expect: Verdict,
    /// The exact failure status, 4 hex digits, when it matters.
    pub status: Option<String>,
    /// Study-level attributes expected at the destination when stored (`{today}` is
    /// replaced by today's date).
    #[serde(default)]
    pub expect_study: Attributes,
}

impl ValidationCase {
    /// The expected status code, if given.
    pub fn status_code(&self) -> Option<u16> {
        self.status.as_deref().map(|s| {
            u16::from_str_radix(s, 16)
                .unwrap_or_else(|_| panic!("case {}: status {s:?} is not 4 hex digits", self.name))
        })
    }
}

/// The data-validation cases.
pub fn data_validation() -> DataValidation {
    load("data_validation.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_expectation_files_parse() {
        assert!(!routing_transformations().case.is_empty());
        assert!(!calling_aet_routing().route.is_empty());
        let validation = data_validation();
        for case in &validation.case {
            let _ = case.status_code();
        }
        assert!(
            validation
                .case
                .iter()
                .any(|c| c.expect == Verdict::Rejected)
        );
    }
}
