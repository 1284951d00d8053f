//! rstest fixtures with the old `conftest.py`'s names.
//!
//! Session-wide fixtures (`#[once]`) are computed once per test process and shared by
//! reference; function fixtures are fresh per test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ::report::ReportPaths;
use config::TestConfig;
use dicom_object::DefaultDicomObject;
use loader::synth::{InstanceBuilder, Modality};
use loader::{FileInfo, LoadOptions, SizeCategory};
use rayon::prelude::*;
use rstest::fixture;
use simulator::{SimulatorConfig, SimulatorHandle};

use crate::record::{RunContext, TestReport, init_run};

pub use campaign::Samples;
pub use campaign::embedded::embedded_rules;

/// Everything session-wide: configuration, samples and the router under test.
#[derive(Debug)]
pub struct Session {
    /// The configuration from the environment and `.env`, pointed at the embedded
    /// simulator when that is the target.
    pub config: TestConfig,
    /// The sample files.
    pub samples: Samples,
    /// The embedded simulator, when no `COMPASS_HOST` is configured.
    pub simulator: Option<SimulatorHandle>,
}

/// Starts a simulator with [`embedded_rules`], adjusted by `adjust` (store mode, limits),
/// and returns it with `config` pointed at it (sender and C-FIND alike). The session's
/// router, each load test's and each fault test's private one all start here.
pub fn start_simulator(
    config: &TestConfig,
    adjust: impl FnOnce(&mut SimulatorConfig),
) -> (SimulatorHandle, TestConfig) {
    campaign::embedded::start_simulator(config, adjust).unwrap_or_else(|e| panic!("{e}"))
}

/// The session, created on first use: reads the configuration, scans the samples and
/// opens the run's report.
///
/// # Panics
/// On a configuration error or a missing sample folder: every test would fail the same
/// way, and the message names the variable and value to fix.
#[fixture]
#[once]
pub fn session() -> Session {
    let mut config = TestConfig::from_env().unwrap_or_else(|e| panic!("configuration: {e}"));
    // The `integration` marker promises a run against a real router: never fall back to
    // the simulator silently, or a sign-off could rest on the wrong target.
    if cfg!(feature = "integration") && config.endpoint.target.is_embedded() {
        panic!(
            "the integration feature runs against a real router, but COMPASS_HOST is not set \
             (in the environment or .env); set it, or run without --features integration to \
             use the embedded simulator"
        );
    }
    let mut simulator = None;
    if config.endpoint.target.is_embedded() {
        let (handle, pointed) = start_simulator(&config, |_| {});
        simulator = Some(handle);
        config = pointed;
    }
    let samples = Samples::scan(&config.dataset.root_dir).unwrap_or_else(|e| panic!("{e}"));
    init_run(|| RunContext {
        paths: ReportPaths {
            html: config.report.html_path(),
            json: config.report.json_path(),
            junit: config.report.junit_path(),
        },
        target: campaign::load::describe_target(&config, simulator.as_ref()),
        configuration: campaign::configuration_items(&config)
            .into_iter()
            .chain(campaign::tls_probe(&config))
            .collect(),
        redactor: samples.identifying_values(),
    });
    Session {
        config,
        samples,
        simulator,
    }
}

/// This test's entry in the run report. Take it in every test.
#[fixture]
pub fn report(session: &Session) -> TestReport {
    let _ = session;
    TestReport::start()
}

/// `TestConfig` loaded from the environment and `.env`.
#[fixture]
pub fn perf_config(session: &'static Session) -> &'static TestConfig {
    &session.config
}

/// Every DICOM file under `DICOM_ROOT_DIR`, found by content, in a stable order.
#[fixture]
pub fn dicom_files(session: &'static Session) -> Vec<&'static Path> {
    session
        .samples
        .infos
        .iter()
        .map(|i| i.path.as_path())
        .collect()
}

/// Cheap metadata of every sample file (read up to Pixel Data).
#[fixture]
pub fn dicom_infos(session: &'static Session) -> &'static [FileInfo] {
    &session.samples.infos
}

/// Every sample loaded whole, compressed pixel data decoded to Explicit VR Little
/// Endian where a codec exists (as the old suite's loader did). Loaded once.
#[fixture]
#[once]
pub fn dicom_datasets(session: &'static Session) -> Vec<(PathBuf, DefaultDicomObject)> {
    session
        .samples
        .infos
        .par_iter()
        .map(|info| {
            let obj = loader::load_dataset(&info.path, &LoadOptions::new().decompress(true))
                .unwrap_or_else(|e| panic!("{e}"));
            (info.path.clone(), obj)
        })
        .collect()
}

/// Any one DICOM file: the smallest, so tests that need just one image stay fast.
#[fixture]
pub fn single_dicom_file(session: &'static Session) -> &'static FileInfo {
    loader::smallest(&session.samples.infos, 1)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no DICOM file under {}", session.samples.root.display()))
}

/// A file over 10 MB, if the samples have one (tests skip with the reason otherwise).
#[fixture]
pub fn large_dicom_file(session: &'static Session) -> Option<&'static FileInfo> {
    loader::in_size_category(&session.samples.infos, SizeCategory::Large)
        .into_iter()
        .next()
}

/// Up to 10 files under 1 MB.
#[fixture]
pub fn small_dicom_files(session: &'static Session) -> Vec<&'static FileInfo> {
    let mut small = loader::in_size_category(&session.samples.infos, SizeCategory::Small);
    small.truncate(10);
    small
}

/// Files between 1 and 10 MB.
#[fixture]
pub fn medium_dicom_files(session: &'static Session) -> Vec<&'static FileInfo> {
    loader::in_size_category(&session.samples.infos, SizeCategory::Medium)
}

/// Files by modality (`CT`, `MR`, `OPV`, ...).
#[fixture]
pub fn dicom_by_modality(session: &'static Session) -> BTreeMap<String, Vec<&'static FileInfo>> {
    loader::by_modality(&session.samples.infos)
}

/// Files by size category (small, medium, large).
#[fixture]
pub fn dicom_by_size_category(
    session: &'static Session,
) -> BTreeMap<SizeCategory, Vec<&'static FileInfo>> {
    loader::by_size_category(&session.samples.infos)
}

/// Makes DICOM files with chosen attributes in a folder of the test's own, removed
/// when the test ends.
#[derive(Debug)]
pub struct DicomFactory {
    dir: tempfile::TempDir,
    made: usize,
}

impl DicomFactory {
    /// Writes one synthetic instance of `modality` with `attributes` (keyword, value)
    /// set, and returns its path and object.
    ///
    /// # Panics
    /// On an unknown keyword or an impossible value: the test's own mistake.
    pub fn create(
        &mut self,
        modality: Modality,
        attributes: &[(&str, &str)],
    ) -> (PathBuf, DefaultDicomObject) {
        self.create_without(modality, attributes, &[])
    }

    /// Like [`DicomFactory::create`], then removes the `removed` attributes (keywords).
    pub fn create_without(
        &mut self,
        modality: Modality,
        attributes: &[(&str, &str)],
        removed: &[&str],
    ) -> (PathBuf, DefaultDicomObject) {
        self.made += 1;
        // No seed: every instance gets fresh random UIDs, so tests running side by side
        // never send the same study.
        let mut builder = InstanceBuilder::new(modality);
        for (keyword, value) in attributes {
            builder = builder.set_keyword(keyword, *value);
        }
        for keyword in removed {
            builder = builder.remove_keyword(keyword);
        }
        let path = self.dir.path().join(format!("made-{:04}.dcm", self.made));
        let obj = builder
            .write_to(&path)
            .unwrap_or_else(|e| panic!("cannot make a test file with {attributes:?}: {e}"));
        (path, obj)
    }

    /// The folder the files are written to.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Factory for DICOM files with custom attributes.
#[fixture]
pub fn test_dicom_with_attributes() -> DicomFactory {
    DicomFactory {
        dir: tempfile::tempdir().expect("a temporary folder"),
        made: 0,
    }
}

/// The embedded simulator, or `None` against a real router (tests that need to look
/// inside the router or inject faults skip there, saying why).
#[fixture]
pub fn embedded_simulator(session: &'static Session) -> Option<&'static SimulatorHandle> {
    session.simulator.as_ref()
}

/// A C-STORE/C-ECHO client for the configured endpoint: the route selected by
/// `COMPASS_ROUTE`, else `COMPASS_AE_TITLE`/`LOCAL_AE_TITLE`.
#[fixture]
pub fn dicom_sender(perf_config: &TestConfig) -> sender::DicomSender {
    campaign::options::sender::sender_options(perf_config)
        .unwrap_or_else(|e| panic!("sender options: {e}"))
        .build()
        .unwrap_or_else(|e| panic!("sender: {e}"))
}

/// A C-FIND client for the verification peer (`CFIND_*`, else the router).
#[fixture]
pub fn cfind_client(perf_config: &TestConfig) -> cfind::CFindClient {
    campaign::options::cfind::cfind_client(perf_config)
        .unwrap_or_else(|e| panic!("C-FIND client: {e}"))
}

/// A fresh metrics collector per test.
#[fixture]
pub fn metrics() -> ::metrics::PerfMetrics {
    ::metrics::PerfMetrics::new()
}
