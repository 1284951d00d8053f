//! Expectations as data: the TOML files in `tests-suite/expectations/` say what the router
//! must do (route, attributes sent, attributes or status expected). A site whose router has
//! other rules edits those files, not Rust code, or keeps its own set in a folder named by
//! `EXPECTATIONS_DIR` (the Orthanc router's set is `tests-suite/expectations/orthanc/`).
//!
//! # One test per built-in case
//!
//! `build.rs` makes one test per case of the built-in files, so test names never depend on
//! `.env`. A folder named by `EXPECTATIONS_DIR` must therefore use the same case names:
//! there, a built-in case that is missing (or a whole file that is missing) is reported as
//! skipped with the reason "not in `<folder>`", and a case only that folder has never runs.
//!
//! # Skipping a case
//!
//! Any case (or `[[route]]` of `calling_aet_routing.toml`) may carry `skip = "reason"`: the
//! router cannot express that rule, and the test is reported as skipped with that reason.
//!
//! ```no_run
//! # fn demo(config: &config::TestConfig) -> Result<(), String> {
//! let case = tests_suite::expectations::transformation_case(config, "knee_radiograph_gets_xr_knee")?;
//! assert_eq!(case.route, "HTM_ORTHO");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::TestConfig;
use loader::synth::Modality;
use serde::Deserialize;

/// The suite's built-in expectation files (the embedded simulator's default rules).
pub fn built_in_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("expectations")
}

/// The folder the expectations of this run come from: `EXPECTATIONS_DIR`, else the
/// built-in one.
pub fn expectations_dir(config: &TestConfig) -> PathBuf {
    config
        .integration
        .expectations_dir
        .clone()
        .unwrap_or_else(built_in_dir)
}

/// Reads `file` from `dir`; `None` when an alternative folder lacks it (its cases are then
/// skipped). The built-in files and every file that exists must parse.
///
/// # Panics
/// On a built-in file that cannot be read, or any file that does not parse: every test of
/// the group would fail the same way, and the message names the file.
fn load<T: for<'de> Deserialize<'de>>(dir: &Path, file: &str) -> Option<T> {
    let path = dir.join(file);
    if dir != built_in_dir() && !path.exists() {
        return None;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Some(
        toml::from_str(&text)
            .unwrap_or_else(|e| panic!("bad expectations file {}: {e}", path.display())),
    )
}

/// An entry of an expectation file that one generated test runs.
pub trait Case: Clone {
    /// Its name (the test's name, or the route's).
    fn name(&self) -> &str;
    /// Why this router cannot be tested on it, if it cannot.
    fn skip(&self) -> Option<&str>;
}

/// Every entry type has a `name` and an optional `skip`.
macro_rules! cases {
    ($($entry:ty),*) => {$(
        impl Case for $entry {
            fn name(&self) -> &str {
                &self.name
            }
            fn skip(&self) -> Option<&str> {
                self.skip.as_deref()
            }
        }
    )*};
}
cases!(TransformationCase, RouteDelivery, ValidationCase);

/// The entry called `name` among the entries `entries_of` takes from `file` in the run's
/// folder, or the reason the test is skipped: the entry says `skip`, or an alternative
/// folder lacks it.
///
/// # Panics
/// When the built-in file lacks it: the generated test and the file disagree, which a
/// rebuild fixes.
fn find<F, T>(
    config: &TestConfig,
    file: &str,
    name: &str,
    entries_of: impl FnOnce(F) -> Vec<T>,
) -> Result<T, String>
where
    F: for<'de> Deserialize<'de>,
    T: Case,
{
    let dir = expectations_dir(config);
    let not_in = || format!("not in {}", dir.display());
    let entries = load(&dir, file).map(entries_of).ok_or_else(not_in)?;
    let Some(entry) = entries.into_iter().find(|e| e.name() == name) else {
        if dir == built_in_dir() {
            panic!(
                "{name} is no longer in {}: rebuild",
                dir.join(file).display()
            );
        }
        return Err(not_in());
    };
    match entry.skip() {
        Some(reason) => Err(format!("{reason} ({})", dir.join(file).display())),
        None => Ok(entry),
    }
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
    /// Why the router under test cannot be checked on this case.
    pub skip: Option<String>,
}

/// The built-in routing-transformation cases (whatever `EXPECTATIONS_DIR` says).
pub fn routing_transformations() -> RoutingTransformations {
    load(&built_in_dir(), ROUTING_TRANSFORMATIONS).expect("the built-in file exists")
}

/// The run's routing-transformation case `name`, or why its test is skipped.
pub fn transformation_case(config: &TestConfig, name: &str) -> Result<TransformationCase, String> {
    find(
        config,
        ROUTING_TRANSFORMATIONS,
        name,
        |f: RoutingTransformations| f.case,
    )
}

const ROUTING_TRANSFORMATIONS: &str = "routing_transformations.toml";
const CALLING_AET_ROUTING: &str = "calling_aet_routing.toml";
const DATA_VALIDATION: &str = "data_validation.toml";

/// `calling_aet_routing.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingAetRouting {
    /// A called AE title the router must refuse.
    pub unknown_called_ae_title: String,
    /// How the router refuses it.
    #[serde(default)]
    pub unknown_called_ae_refusal: CalledAeRefusal,
    /// Per-route image and expectation.
    #[serde(default)]
    pub route: Vec<RouteDelivery>,
}

/// How a router refuses a called AE title it has no route for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalledAeRefusal {
    /// A-ASSOCIATE-RJ naming the called AE title (Compass, the simulator).
    #[default]
    Association,
    /// The association is accepted, every C-STORE is refused with a failure status and
    /// nothing reaches the destination (Orthanc, which cannot refuse an association).
    Store,
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
    /// Why the router under test cannot be checked on this route.
    pub skip: Option<String>,
}

/// The run's calling/called AE routing expectations, or why the tests using them are
/// skipped (an alternative folder without the file).
pub fn calling_aet_routing(config: &TestConfig) -> Result<CallingAetRouting, String> {
    let dir = expectations_dir(config);
    load(&dir, CALLING_AET_ROUTING).ok_or_else(|| format!("not in {}", dir.display()))
}

/// The run's expectation for route `name`, or why its test is skipped.
pub fn route_delivery(config: &TestConfig, name: &str) -> Result<RouteDelivery, String> {
    find(config, CALLING_AET_ROUTING, name, |f: CallingAetRouting| {
        f.route
    })
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
    /// Why the router under test cannot be checked on this case.
    pub skip: Option<String>,
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

/// The run's data-validation case `name`, or why its test is skipped.
pub fn validation_case(config: &TestConfig, name: &str) -> Result<ValidationCase, String> {
    find(config, DATA_VALIDATION, name, |f: DataValidation| f.case)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const ORTHANC: &str = "orthanc";

    fn config_with_dir(dir: &Path) -> TestConfig {
        TestConfig::from_map([("EXPECTATIONS_DIR", dir.to_str().unwrap())]).unwrap()
    }

    fn names<T: Case>(entries: &[T]) -> BTreeSet<String> {
        entries.iter().map(|e| e.name().to_string()).collect()
    }

    /// Every case name of the three files in `dir`, by file.
    fn case_names(dir: &Path) -> [BTreeSet<String>; 3] {
        let routing: RoutingTransformations = load(dir, ROUTING_TRANSFORMATIONS).unwrap();
        let calling: CallingAetRouting = load(dir, CALLING_AET_ROUTING).unwrap();
        let validation: DataValidation = load(dir, DATA_VALIDATION).unwrap();
        for case in &validation.case {
            let _ = case.status_code();
        }
        [
            names(&routing.case),
            names(&calling.route),
            names(&validation.case),
        ]
    }

    #[test]
    fn shipped_expectation_files_parse() {
        let [routing, calling, validation] = case_names(&built_in_dir());
        assert!(!routing.is_empty() && !calling.is_empty() && !validation.is_empty());
        let validation: DataValidation = load(&built_in_dir(), DATA_VALIDATION).unwrap();
        assert!(
            validation
                .case
                .iter()
                .any(|c| c.expect == Verdict::Rejected)
        );
    }

    #[test]
    fn the_orthanc_set_has_exactly_the_built_in_case_names() {
        // A name only the Orthanc set has would never run; one it lacks would be skipped.
        assert_eq!(
            case_names(&built_in_dir().join(ORTHANC)),
            case_names(&built_in_dir())
        );
    }

    #[test]
    fn the_orthanc_set_expects_a_store_refusal_for_an_unknown_called_ae_title() {
        let config = config_with_dir(&built_in_dir().join(ORTHANC));
        let orthanc = calling_aet_routing(&config).unwrap();
        assert_eq!(orthanc.unknown_called_ae_refusal, CalledAeRefusal::Store);
        let built_in = calling_aet_routing(&TestConfig::from_map([("A", "b")]).unwrap()).unwrap();
        assert_eq!(
            built_in.unknown_called_ae_refusal,
            CalledAeRefusal::Association
        );
    }

    #[test]
    fn without_expectations_dir_the_built_in_cases_are_used() {
        let config = TestConfig::from_map([("A", "b")]).unwrap();
        assert_eq!(expectations_dir(&config), built_in_dir());
        let case = validation_case(&config, "blank_study_date_is_rejected_on_ortho").unwrap();
        assert_eq!(case.status_code(), Some(0xA900));
    }

    #[test]
    fn a_case_missing_from_another_folder_is_skipped_with_that_folder_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(ROUTING_TRANSFORMATIONS),
            "[[case]]\nname = \"knee_radiograph_gets_xr_knee\"\nroute = \"HTM_ORTHO\"\nmodality = \"DX\"\n",
        )
        .unwrap();
        let config = config_with_dir(dir.path());
        let not_in = format!("not in {}", dir.path().display());

        let kept = transformation_case(&config, "knee_radiograph_gets_xr_knee").unwrap();
        assert_eq!(kept.route, "HTM_ORTHO");
        assert_eq!(
            transformation_case(&config, "pelvis_radiograph_gets_xr_hip_pelvis").unwrap_err(),
            not_in
        );
        // No file at all: every case of it is missing.
        assert_eq!(
            validation_case(&config, "future_study_date_is_rejected").unwrap_err(),
            not_in
        );
        assert_eq!(route_delivery(&config, "HTM_GI").unwrap_err(), not_in);
        assert_eq!(calling_aet_routing(&config).unwrap_err(), not_in);
    }

    #[test]
    fn a_case_marked_skip_is_skipped_with_its_reason_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(CALLING_AET_ROUTING);
        std::fs::write(
            &file,
            "unknown_called_ae_title = \"NOPE\"\nunknown_called_ae_refusal = \"store\"\n\
             [[route]]\nname = \"HTM_GI\"\nmodality = \"ES\"\nskip = \"no GI route here\"\n",
        )
        .unwrap();
        let config = config_with_dir(dir.path());

        let reason = route_delivery(&config, "HTM_GI").unwrap_err();

        assert_eq!(reason, format!("no GI route here ({})", file.display()));
        let whole = calling_aet_routing(&config).unwrap();
        assert_eq!(whole.unknown_called_ae_refusal, CalledAeRefusal::Store);
    }

    #[test]
    fn an_unknown_refusal_kind_is_a_parse_error() {
        let parsed: Result<CallingAetRouting, _> = toml::from_str(
            "unknown_called_ae_title = \"NOPE\"\nunknown_called_ae_refusal = \"abort\"\n",
        );
        let error = parsed.unwrap_err().to_string();
        assert!(
            error.contains("association") && error.contains("store"),
            "{error}"
        );
    }
}
