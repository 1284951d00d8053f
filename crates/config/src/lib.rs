//! Typed configuration for dicom-auto, read from environment variables and a `.env` file.
//!
//! This crate is the only place in the workspace that reads environment variables. It keeps
//! the old pytest suite's variable names and defaults, so an existing `.env` works unchanged,
//! and adds the settings the Rust tool needs (timeouts, PDU size, association and UID
//! strategies, report folder). Every variable, its default and its meaning is listed in
//! `.env.example` at the workspace root.
//!
//! # Where values come from
//!
//! [`TestConfig::from_env`] reads `.env` from the current directory, or else from the
//! workspace root (the nearest ancestor whose `Cargo.toml` has `[workspace]`, so `cargo test`
//! finds it from any crate), and lays the process environment over it: a real environment
//! variable always beats the `.env` file. The process environment is never modified.
//! A variable set to an empty value counts as unset.
//!
//! [`TestConfig::from_map`] builds the same configuration from an explicit map and touches
//! neither the environment nor the file system: that is what tests use.
//!
//! # The target
//!
//! Without `COMPASS_HOST` the [`Target`] is [`Target::Embedded`]: the suite starts the
//! simulator on a free loopback port and calls [`TestConfig::with_router_address`]. With it,
//! the target is [`Target::Remote`], a real router.
//!
//! # Routes
//!
//! Any `REMOTE_AE_<NAME>`/`LOCAL_AE_<NAME>` pair defines route `<NAME>` (called and calling AE
//! titles); `COMPASS_ROUTE` selects one for [`TestConfig::endpoint`]; all of them are in
//! [`TestConfig::routes`]. Without `COMPASS_ROUTE`, `COMPASS_AE_TITLE` and `LOCAL_AE_TITLE` are
//! used. When the target is embedded and no route variable is set at all, the simulator's
//! three default routes exist ([`defaults::BUILT_IN_ROUTES`]), so `COMPASS_ROUTE=HTM_GI`
//! works out of the box.
//!
//! # Delivery verification
//!
//! `VERIFY_AT` ([`VerifyAt`], in [`SinkSettings::verify_at`]) says where a run checks that
//! what it sent arrived: `cfind` (the default against a real router) queries the destination with the
//! [`CFindSettings`]; `sink` counts what reaches the destination sink, a storage SCP the run
//! starts on `SINK_BIND`:`SINK_PORT` (port 0, the default, lets the system pick one and the
//! sink reports it) under AE title `SINK_AE_TITLE` (`DICOM_AUTO_SINK`); `both` does both
//! (the default on the embedded target, whose simulator forwards to the sink).
//! An instance not at the sink `DELIVERY_TIMEOUT` seconds (30) after the last send is
//! undelivered; until then it is in transit.
//! `CFIND_VERIFY` is read as before and not combined with `VERIFY_AT`: it is up to the
//! caller whether `CFIND_VERIFY=false` also skips the C-FIND part of `cfind`/`both`.
//!
//! # Errors
//!
//! Every problem is reported, not only the first, and each names the variable, its value and
//! what was expected, e.g. `LOAD_CONCURRENCY="eight": expected a whole number >= 1`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use config::{Target, TestConfig};
//!
//! let config = TestConfig::from_map([
//!     ("COMPASS_HOST", "compass.example.org"),
//!     ("REMOTE_AE_CARDIO", "LB-CARDIO"),
//!     ("LOCAL_AE_CARDIO", "CATH-LAB"),
//!     ("COMPASS_ROUTE", "CARDIO"),
//!     ("LOAD_MULTIPLIER", "2"),
//! ])?;
//!
//! assert!(matches!(config.endpoint.target, Target::Remote { port: 11112, .. }));
//! assert_eq!(config.endpoint.called_ae_title.as_str(), "LB-CARDIO");
//! assert_eq!(config.cfind.address(), "compass.example.org:11112");
//! assert_eq!(config.load.target_rate(), 100.0);
//! assert_eq!(config.network.dimse_timeout, Duration::from_secs(60));
//!
//! let error = TestConfig::from_map([("LOAD_CONCURRENCY", "eight")]).unwrap_err();
//! assert_eq!(error.to_string(), r#"LOAD_CONCURRENCY="eight": expected a whole number >= 1"#);
//! # Ok::<(), config::ConfigError>(())
//! ```

mod endpoint;
mod error;
mod parse;
mod sections;
mod security;
mod sources;

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use dimse::{AE_TITLE_MAX_LEN, AeTitle, AeTitleError};
pub use endpoint::{Endpoint, Route, RouteOrigin, Target};
pub use error::ConfigError;
pub use sections::{
    CFindSettings, CommitSettings, Dataset, DeliveryMatch, IntegrationSettings, LoadProfile,
    NetworkSettings, ReportSettings, RetrieveMethod, RetrieveSettings, SendSettings, SinkSettings,
    Thresholds, VerifyAt,
};
pub use security::{SecuritySettings, TlsSettings};
pub use sender::{AssociationStrategy, UidStrategy};
pub use sources::{BaseDirs, DOTENV_FILE, find_workspace_root, read_dotenv};

use parse::Reader;
use sources::Vars;

/// Default values, for documentation and for crates that need the same numbers
/// (e.g. a CLI's help text).
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use crate::VerifyAt;

    /// `COMPASS_HOST` when unset; the embedded simulator is on loopback.
    pub const COMPASS_HOST: &str = "127.0.0.1";
    /// `COMPASS_PORT`.
    pub const COMPASS_PORT: u16 = 11112;
    /// `COMPASS_AE_TITLE`: the router's AE title when no route is selected.
    pub const COMPASS_AE_TITLE: &str = "COMPASS";
    /// `LOCAL_AE_TITLE`: our AE title when no route is selected, and on built-in routes.
    pub const LOCAL_AE_TITLE: &str = "DICOM-AUTO";
    /// The embedded simulator's routes (name, called AE title), the old suite's three.
    pub const BUILT_IN_ROUTES: [(&str, &str); 3] = [
        ("HTM_GI", "LB-HTM-GI"),
        ("HTM_OPH", "LB-HTM-OPH"),
        ("HTM_ORTHO", "LB-HTM-ORTHO"),
    ];
    /// `CFIND_INITIAL_DELAY` against a remote router.
    pub const CFIND_INITIAL_DELAY: Duration = Duration::from_secs(5);
    /// `CFIND_INITIAL_DELAY` against the embedded simulator, which stores synchronously.
    pub const CFIND_INITIAL_DELAY_EMBEDDED: Duration = Duration::ZERO;
    /// `CFIND_TIMEOUT`.
    pub const CFIND_TIMEOUT: Duration = Duration::from_secs(60);
    /// `CFIND_POLL_INTERVAL` against a remote router.
    pub const CFIND_POLL_INTERVAL: Duration = Duration::from_secs(5);
    /// `CFIND_POLL_INTERVAL` against the embedded simulator.
    pub const CFIND_POLL_INTERVAL_EMBEDDED: Duration = Duration::from_millis(500);
    /// `SINK_PORT`: 0, any free port (the sink reports the one it got).
    pub const SINK_PORT: u16 = 0;
    /// `SINK_AE_TITLE`: the destination sink's AE title (15 characters).
    pub const SINK_AE_TITLE: &str = "DICOM_AUTO_SINK";
    /// `SINK_BIND`: loopback.
    pub const SINK_BIND: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// `DELIVERY_TIMEOUT`: how long after the last send an instance may still be in transit.
    pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
    /// `VERIFY_AT` on the embedded target: by C-FIND and at the sink, which the
    /// embedded router forwards to.
    pub const VERIFY_AT_EMBEDDED: VerifyAt = VerifyAt::BOTH;
    /// `VERIFY_AT` against a real router: by C-FIND (the sink needs the router told to
    /// forward to it).
    pub const VERIFY_AT_REMOTE: VerifyAt = VerifyAt::CFIND;
    /// `RETRIEVE_AE_TITLE`: our C-MOVE destination (16 characters).
    pub const RETRIEVE_AE_TITLE: &str = "DICOM_AUTO_RETRV";
    /// `RETRIEVE_TIMEOUT`: one study's retrieve.
    pub const RETRIEVE_TIMEOUT: Duration = Duration::from_secs(300);
    /// `COMMIT_TIMEOUT`: the archive's Storage Commitment report.
    pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);
    /// `PEAK_IMAGES_PER_SECOND`.
    pub const PEAK_IMAGES_PER_SECOND: f64 = 50.0;
    /// `LOAD_MULTIPLIER`.
    pub const LOAD_MULTIPLIER: f64 = 3.0;
    /// `LOAD_CONCURRENCY`.
    pub const LOAD_CONCURRENCY: usize = 8;
    /// `LOAD_MEMORY_BUDGET`: 512 MiB.
    pub const LOAD_MEMORY_BUDGET: u64 = 512 << 20;
    /// The smallest `LOAD_MEMORY_BUDGET`: 16 MiB.
    pub const MIN_LOAD_MEMORY_BUDGET: u64 = 16 << 20;
    /// `TEST_DURATION_SECONDS`.
    pub const TEST_DURATION: Duration = Duration::from_secs(300);
    /// `MAX_ERROR_RATE`.
    pub const MAX_ERROR_RATE: f64 = 0.02;
    /// `MAX_P95_LATENCY_MS`.
    pub const MAX_P95_LATENCY: Duration = Duration::from_millis(2000);
    /// `MAX_P95_LATENCY_MS_SHORT`.
    pub const MAX_P95_LATENCY_SHORT: Duration = Duration::from_millis(1500);
    /// `DICOM_ROOT_DIR`.
    pub const DICOM_ROOT_DIR: &str = "./dicom_samples";
    /// `DICOM_CONNECT_TIMEOUT`.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
    /// `DICOM_ACSE_TIMEOUT` (pynetdicom's default).
    pub const ACSE_TIMEOUT: Duration = Duration::from_secs(30);
    /// `DICOM_DIMSE_TIMEOUT`.
    pub const DIMSE_TIMEOUT: Duration = Duration::from_secs(60);
    /// `DICOM_NETWORK_TIMEOUT` (pynetdicom's default).
    pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(60);
    /// `DICOM_MAX_PDU`: 64 KiB, four times DCMTK's and pynetdicom's 16 KiB, because fewer,
    /// larger PDUs cost fewer system calls when the simulator receives multi-megabyte images.
    pub const MAX_PDU_LENGTH: u32 = 65_536;
    /// Smallest accepted `DICOM_MAX_PDU`: dicom-ul's `MINIMUM_PDU_SIZE` (1024 − 6), below
    /// which dicom-ul refuses every PDU.
    pub const MIN_PDU_LENGTH: u32 = 1018;
    /// Largest accepted `DICOM_MAX_PDU`: DCMTK's `ASC_MAXIMUMPDUSIZE`, the most a common peer
    /// agrees to.
    pub const MAX_PDU_LENGTH_LIMIT: u32 = 131_072;
    /// `FAILURE_PAUSE_SECONDS` against a remote router: the old suite's 2 minutes.
    pub const FAILURE_PAUSE: Duration = Duration::from_secs(120);
    /// `FAILURE_PAUSE_SECONDS` against the embedded simulator.
    pub const FAILURE_PAUSE_EMBEDDED: Duration = Duration::from_secs(2);
}

/// The whole configuration of a test run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TestConfig {
    /// The C-STORE destination and the AE titles of the selected route.
    pub endpoint: Endpoint,
    /// Every defined route, sorted by name.
    pub routes: Vec<Route>,
    /// Delivery verification by C-FIND.
    pub cfind: CFindSettings,
    /// The destination sink, and where delivery is verified (`VERIFY_AT`).
    pub sink: SinkSettings,
    /// Retrieval from the destination archive (`VERIFY_AT=retrieve`).
    pub retrieve: RetrieveSettings,
    /// Storage Commitment by the destination archive (`VERIFY_AT=commit`).
    pub commit: CommitSettings,
    /// Rates, concurrency and duration of load runs.
    pub load: LoadProfile,
    /// Pass/fail limits.
    pub thresholds: Thresholds,
    /// The sample files.
    pub dataset: Dataset,
    /// Timeouts and PDU size.
    pub network: NetworkSettings,
    /// Association and UID strategies.
    pub sending: SendSettings,
    /// TLS and user identity of every association.
    pub security: SecuritySettings,
    /// Functional test settings.
    pub integration: IntegrationSettings,
    /// Report file locations.
    pub report: ReportSettings,
    /// The `.env` file that was read, if any.
    pub dotenv_file: Option<PathBuf>,
}

impl TestConfig {
    /// Reads the process environment over `.env` (from the current directory, else the
    /// workspace root). A missing `.env` is fine; an unreadable or malformed one is an error.
    pub fn from_env() -> Result<Self, ConfigError> {
        let dirs = discover_dirs();
        let dotenv = dirs.dotenv_path();
        Self::from_layers(dotenv.as_deref(), std::env::vars_os(), &dirs)
    }

    /// Like [`TestConfig::from_env`] with an explicit `.env` file, which must exist.
    pub fn from_env_with_dotenv(dotenv: &Path) -> Result<Self, ConfigError> {
        Self::from_layers(Some(dotenv), std::env::vars_os(), &discover_dirs())
    }

    /// Builds a configuration from `vars` alone: no environment, no `.env`, no file system.
    /// Relative paths are kept as written.
    pub fn from_map<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::build(&Vars::from_map(vars), None)
    }

    /// Like [`TestConfig::from_map`], resolving relative paths (`DICOM_ROOT_DIR`, `REPORT_DIR`)
    /// against `dirs` as [`TestConfig::from_env`] does.
    pub fn from_map_in<I, K, V>(vars: I, dirs: &BaseDirs) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self::build(&Vars::from_map(vars), Some(dirs))
    }

    /// `.env` values (if a file is given) overridden by `env`, then parsed.
    pub(crate) fn from_layers(
        dotenv: Option<&Path>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
        dirs: &BaseDirs,
    ) -> Result<Self, ConfigError> {
        let from_file = match dotenv {
            Some(path) => read_dotenv(path)?,
            None => Default::default(),
        };
        let mut config = Self::build(&Vars::layered(from_file, env), Some(dirs))?;
        config.dotenv_file = dotenv.map(Path::to_path_buf);
        Ok(config)
    }

    fn build(vars: &Vars, dirs: Option<&BaseDirs>) -> Result<Self, ConfigError> {
        let mut reader = Reader::new(vars);
        let (endpoint, routes) = endpoint::read(&mut reader);
        let cfind = CFindSettings::read(&mut reader, &endpoint);
        let sink = SinkSettings::read(&mut reader, &endpoint.target);
        let retrieve = RetrieveSettings::read(&mut reader);
        let commit = CommitSettings::read(&mut reader);
        let load = LoadProfile::read(&mut reader);
        let thresholds = Thresholds::read(&mut reader);
        let dataset = Dataset::read(&mut reader, dirs);
        let network = NetworkSettings::read(&mut reader);
        let sending = SendSettings::read(&mut reader);
        let security = SecuritySettings::read(&mut reader, dirs);
        let integration = IntegrationSettings::read(&mut reader, &endpoint.target, dirs);
        let report = ReportSettings::read(&mut reader, dirs);
        reader.finish()?;
        Ok(Self {
            endpoint,
            routes,
            cfind,
            sink,
            retrieve,
            commit,
            load,
            thresholds,
            dataset,
            network,
            sending,
            security,
            integration,
            report,
            dotenv_file: None,
        })
    }

    /// The same configuration aimed at `address`: what the suite does once the embedded
    /// simulator has bound its port. C-FIND follows unless `CFIND_HOST`/`CFIND_PORT` are set.
    pub fn with_router_address(mut self, address: SocketAddr) -> Self {
        self.endpoint.point_at(address);
        self.cfind.follow(&self.endpoint);
        self
    }

    /// Points the configuration at an embedded router's TLS port, trusting its
    /// throwaway CA and presenting its throwaway client certificate; the allowed
    /// versions stay as configured. Does nothing when TLS is off.
    pub fn with_embedded_tls(
        mut self,
        address: SocketAddr,
        ca_file: PathBuf,
        certificate_file: PathBuf,
        key_file: PathBuf,
    ) -> Self {
        let Some(tls) = self.security.tls.as_mut() else {
            return self;
        };
        tls.ca_file = Some(ca_file);
        tls.certificate_file = Some(certificate_file);
        tls.key_file = Some(key_file);
        tls.server_name = None;
        tls.insecure_skip_verify = false;
        self.with_router_address(address)
    }

    /// The route called `name`, if defined.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|route| route.name == name)
    }

    /// The route selected by `COMPASS_ROUTE`, if any.
    pub fn selected_route(&self) -> Option<&Route> {
        self.endpoint
            .route
            .as_deref()
            .and_then(|name| self.route(name))
    }

    /// The settings a report shows, as (section, key, value) rows in a stable order. Keys are
    /// the JSON field names. Secrets (`DICOM_PASSCODE`, `DICOM_IDENTITY_TOKEN`) never
    /// appear: the identity shows as its kind and user name.
    pub fn summary(&self) -> Vec<SummaryEntry> {
        let mut rows = Vec::new();
        let mut add = |section: &'static str, key: &'static str, value: String| {
            rows.push(SummaryEntry {
                section,
                key,
                value,
            });
        };
        let e = &self.endpoint;
        add("endpoint", "target", e.target.to_string());
        add("endpoint", "address", e.address());
        add("endpoint", "called_ae_title", e.called_ae_title.to_string());
        add(
            "endpoint",
            "calling_ae_title",
            e.calling_ae_title.to_string(),
        );
        add(
            "route",
            "route",
            e.route.clone().unwrap_or_else(|| "(none)".to_owned()),
        );
        add("route", "routes", routes_text(&self.routes));
        let c = &self.cfind;
        add("cfind", "verify", c.verify.to_string());
        add("cfind", "address", c.address());
        add("cfind", "called_ae_title", c.called_ae_title.to_string());
        add("cfind", "initial_delay_seconds", secs(c.initial_delay));
        add("cfind", "timeout_seconds", secs(c.timeout));
        add("cfind", "poll_interval_seconds", secs(c.poll_interval));
        let k = &self.sink;
        add("sink", "verify_at", k.verify_at.to_string());
        add("sink", "match_by", k.match_by.as_str().to_owned());
        add("sink", "port", k.port.to_string());
        add("sink", "ae_title", k.ae_title.to_string());
        add("sink", "bind", k.bind.to_string());
        add("sink", "delivery_timeout_seconds", secs(k.delivery_timeout));
        let r = &self.retrieve;
        add("retrieve", "method", r.method.as_str().to_owned());
        add("retrieve", "ae_title", r.ae_title.to_string());
        add("retrieve", "port", r.port.to_string());
        add("retrieve", "studies", r.studies.to_string());
        add("retrieve", "timeout_seconds", secs(r.timeout));
        add("commit", "port", self.commit.port.to_string());
        add("commit", "timeout_seconds", secs(self.commit.timeout));
        let l = &self.load;
        add(
            "load",
            "peak_images_per_second",
            l.peak_images_per_second.to_string(),
        );
        add("load", "multiplier", l.multiplier.to_string());
        add("load", "target_rate", l.target_rate().to_string());
        add("load", "concurrency", l.concurrency.to_string());
        add("load", "duration_seconds", secs(l.duration));
        add("load", "ramp_up_seconds", secs(l.ramp_up));
        add("load", "memory_budget_bytes", l.memory_budget.to_string());
        let t = &self.thresholds;
        add("thresholds", "max_error_rate", t.max_error_rate.to_string());
        add("thresholds", "max_p95_latency_ms", ms(t.max_p95_latency));
        add(
            "thresholds",
            "max_p95_latency_short_ms",
            ms(t.max_p95_latency_short),
        );
        add(
            "dataset",
            "root_dir",
            self.dataset.root_dir.display().to_string(),
        );
        let n = &self.network;
        add(
            "network",
            "connect_timeout_seconds",
            secs(n.connect_timeout),
        );
        add("network", "acse_timeout_seconds", secs(n.acse_timeout));
        add("network", "dimse_timeout_seconds", secs(n.dimse_timeout));
        add(
            "network",
            "network_timeout_seconds",
            secs(n.network_timeout),
        );
        add("network", "max_pdu_length", n.max_pdu_length.to_string());
        add("network", "quick_ack", n.quick_ack.to_string());
        add("security", "tls", self.security.tls_text());
        add(
            "security",
            "user_identity",
            self.security
                .identity_summary()
                .map_or_else(|| "none".to_owned(), |i| i.to_string()),
        );
        let s = &self.sending;
        add("sending", "association", s.association.as_str().to_owned());
        add(
            "sending",
            "max_ops_per_association",
            s.max_ops_per_association
                .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        );
        add(
            "sending",
            "uid_strategy",
            s.uid_strategy.as_str().to_owned(),
        );
        add(
            "integration",
            "failure_pause_seconds",
            secs(self.integration.failure_pause),
        );
        add(
            "integration",
            "expectations_dir",
            self.integration
                .expectations_dir
                .as_ref()
                .map_or_else(|| "(built in)".to_owned(), |p| p.display().to_string()),
        );
        add(
            "integration",
            "simulator_rules",
            self.integration
                .simulator_rules
                .as_ref()
                .map_or_else(|| "(default rules)".to_owned(), |p| p.display().to_string()),
        );
        add("report", "dir", self.report.dir.display().to_string());
        add(
            "source",
            "dotenv_file",
            self.dotenv_file
                .as_ref()
                .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string()),
        );
        rows
    }
}

fn discover_dirs() -> BaseDirs {
    // Without a readable current directory only absolute paths can work; resolving against
    // "." keeps them working and lets the loader name any relative path it cannot find.
    BaseDirs::discover().unwrap_or_else(|_| BaseDirs {
        cwd: PathBuf::from("."),
        workspace_root: None,
    })
}

fn secs(d: std::time::Duration) -> String {
    d.as_secs_f64().to_string()
}

fn ms(d: std::time::Duration) -> String {
    (d.as_secs_f64() * 1000.0).to_string()
}

fn routes_text(routes: &[Route]) -> String {
    if routes.is_empty() {
        return "(none)".to_owned();
    }
    let described: Vec<String> = routes
        .iter()
        .map(|r| {
            let origin = match r.origin {
                RouteOrigin::Configured => "",
                RouteOrigin::BuiltIn => ", built in",
            };
            format!(
                "{} (called {}, calling {}{origin})",
                r.name, r.called_ae_title, r.calling_ae_title
            )
        })
        .collect();
    described.join("; ")
}

/// One row of [`TestConfig::summary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryEntry {
    /// `endpoint`, `route`, `cfind`, `sink`, `load`, `thresholds`, `dataset`, `network`,
    /// `security`, `sending`, `integration`, `report` or `source`.
    pub section: &'static str,
    /// The setting, named like its JSON field.
    pub key: &'static str,
    /// The value as a user would write it.
    pub value: String,
}

/// One `section.key=value` line per [`SummaryEntry`].
impl fmt::Display for TestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in self.summary() {
            writeln!(f, "{}.{}={}", row.section, row.key, row.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn dirs_at(dir: &Path) -> BaseDirs {
        BaseDirs {
            cwd: dir.to_path_buf(),
            workspace_root: None,
        }
    }

    #[test]
    fn nothing_configured_gives_the_documented_defaults() {
        let config = TestConfig::from_map(Vec::<(String, String)>::new()).unwrap();
        assert!(config.endpoint.target.is_embedded());
        assert_eq!(config.load.target_rate(), 150.0);
        assert_eq!(config.dotenv_file, None);
    }

    #[test]
    fn a_real_environment_variable_beats_the_dotenv_file() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(DOTENV_FILE);
        fs::write(
            &dotenv,
            "COMPASS_HOST=from-dotenv\nCOMPASS_PORT=104\nLOAD_CONCURRENCY=4\n",
        )
        .unwrap();
        let config = TestConfig::from_layers(
            Some(&dotenv),
            env(&[("COMPASS_PORT", "4242"), ("UNRELATED", "x")]),
            &dirs_at(dir.path()),
        )
        .unwrap();
        assert_eq!(
            config.endpoint.target,
            Target::Remote {
                host: "from-dotenv".into(),
                port: 4242
            }
        );
        assert_eq!(config.load.concurrency, 4);
        assert_eq!(config.dotenv_file.as_deref(), Some(dotenv.as_path()));
    }

    #[test]
    fn a_blank_environment_variable_resets_a_dotenv_value_to_its_default() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(DOTENV_FILE);
        fs::write(&dotenv, "COMPASS_HOST=router\n").unwrap();
        let config = TestConfig::from_layers(
            Some(&dotenv),
            env(&[("COMPASS_HOST", "")]),
            &dirs_at(dir.path()),
        )
        .unwrap();
        assert!(config.endpoint.target.is_embedded());
    }

    #[test]
    fn a_bad_value_in_the_dotenv_file_names_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(DOTENV_FILE);
        fs::write(&dotenv, "LOAD_CONCURRENCY=eight\n").unwrap();
        let error =
            TestConfig::from_layers(Some(&dotenv), env(&[]), &dirs_at(dir.path())).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"LOAD_CONCURRENCY="eight": expected a whole number >= 1"#
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_route_variable_that_is_not_unicode_is_named_in_the_error() {
        use std::os::unix::ffi::OsStringExt;
        let dir = tempfile::tempdir().unwrap();
        let env = [
            (
                OsString::from("REMOTE_AE_CT"),
                OsString::from_vec(vec![0xC3, 0x28]),
            ),
            (OsString::from("LOCAL_AE_CT"), OsString::from("SCU")),
        ];
        let error = TestConfig::from_layers(None, env, &dirs_at(dir.path())).unwrap_err();
        assert!(
            matches!(&error, ConfigError::NotUnicode { variable } if variable == "REMOTE_AE_CT"),
            "{error}"
        );
    }

    #[test]
    fn an_explicit_dotenv_file_that_does_not_exist_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.env");
        let error = TestConfig::from_env_with_dotenv(&missing).unwrap_err();
        assert!(matches!(error, ConfigError::DotenvRead { .. }), "{error:?}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = TestConfig::from_map([
            ("LOAD_CONCURRENCY", "eight"),
            ("MAX_ERROR_RATE", "5"),
            ("COMPASS_ROUTE", "NOPE"),
            ("REMOTE_AE_HALF", "X"),
        ])
        .unwrap_err();
        let variables: BTreeSet<String> = error
            .problems()
            .iter()
            .map(|p| match p {
                ConfigError::InvalidValue { variable, .. } => variable.clone(),
                ConfigError::UnknownRoute { .. } => "COMPASS_ROUTE".into(),
                ConfigError::IncompleteRoute { missing, .. } => missing.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            variables,
            BTreeSet::from([
                "COMPASS_ROUTE".to_owned(),
                "LOAD_CONCURRENCY".to_owned(),
                "LOCAL_AE_HALF".to_owned(),
                "MAX_ERROR_RATE".to_owned(),
            ])
        );
    }

    #[test]
    fn the_summary_shows_endpoint_route_load_and_thresholds() {
        let config = TestConfig::from_map([("COMPASS_ROUTE", "HTM_GI")]).unwrap();
        let text = config.to_string();
        for line in [
            "endpoint.target=embedded simulator",
            "endpoint.address=127.0.0.1:11112",
            "endpoint.called_ae_title=LB-HTM-GI",
            "route.route=HTM_GI",
            "load.target_rate=150",
            "load.concurrency=8",
            "thresholds.max_error_rate=0.02",
            "thresholds.max_p95_latency_ms=2000",
            "thresholds.max_p95_latency_short_ms=1500",
            "network.max_pdu_length=65536",
            "sink.verify_at=both",
            "sink.port=0",
            "sink.ae_title=DICOM_AUTO_SINK",
            "sink.bind=127.0.0.1",
            "sink.delivery_timeout_seconds=30",
            "sending.association=persistent",
            "integration.expectations_dir=(built in)",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text.contains("HTM_OPH (called LB-HTM-OPH, calling DICOM-AUTO, built in)"));
    }

    #[test]
    fn the_json_form_carries_units_in_field_names() {
        let config = TestConfig::from_map([("COMPASS_HOST", "pacs")]).unwrap();
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["endpoint"]["target"]["kind"], "remote");
        assert_eq!(json["endpoint"]["target"]["host"], "pacs");
        assert_eq!(json["endpoint"]["called_ae_title"], "COMPASS");
        assert_eq!(json["cfind"]["timeout_seconds"], 60.0);
        assert_eq!(json["thresholds"]["max_p95_latency_ms"], 2000.0);
        assert_eq!(json["sending"]["association"], "persistent");
        assert_eq!(json["sending"]["uid_strategy"], "asis");
        assert_eq!(json["sink"]["verify_at"], "cfind");
        assert_eq!(json["sink"]["bind"], "127.0.0.1");
        assert_eq!(json["sink"]["ae_title"], "DICOM_AUTO_SINK");
        assert_eq!(json["sink"]["delivery_timeout_seconds"], 30.0);
    }

    #[test]
    fn with_router_address_moves_the_endpoint_but_keeps_the_target_kind() {
        let config = TestConfig::from_map(Vec::<(String, String)>::new())
            .unwrap()
            .with_router_address("127.0.0.1:5555".parse().unwrap());
        assert!(config.endpoint.target.is_embedded());
        assert_eq!(config.endpoint.address(), "127.0.0.1:5555");
    }

    #[test]
    fn the_selected_route_is_available_as_a_route() {
        let config = TestConfig::from_map([("COMPASS_ROUTE", "HTM_ORTHO")]).unwrap();
        let route = config.selected_route().unwrap();
        assert_eq!(route.called_ae_title.as_str(), "LB-HTM-ORTHO");
        assert!(
            TestConfig::from_map([("A", "B")])
                .unwrap()
                .selected_route()
                .is_none()
        );
    }

    #[test]
    fn the_example_env_file_documents_every_variable_the_crate_reads() {
        let example = include_str!("../../../.env.example");
        let without_tests = |source: &'static str| source.split("#[cfg(test)]").next().unwrap();
        let source = [
            without_tests(include_str!("endpoint.rs")),
            without_tests(include_str!("sections.rs")),
            without_tests(include_str!("security.rs")),
        ]
        .concat();
        let read: BTreeSet<&str> = source
            .split('"')
            .filter(|word| {
                word.len() > 3
                    && word
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    && word.contains('_')
            })
            .collect();
        assert!(read.contains("LOAD_CONCURRENCY") && read.contains("COMPASS_ROUTE"));
        for variable in read {
            if variable.ends_with('_') {
                continue; // REMOTE_AE_/LOCAL_AE_ prefixes, documented as patterns
            }
            assert!(
                example.contains(&format!("{variable}=")),
                ".env.example does not document {variable}"
            );
        }
    }

    #[test]
    fn the_example_env_file_is_itself_a_valid_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(DOTENV_FILE);
        fs::write(&copy, include_str!("../../../.env.example")).unwrap();
        let from_file = read_dotenv(&copy).unwrap();
        assert!(from_file.is_empty(), "every line should be commented out");
        // Uncommented, every documented default must parse and equal the built-in default.
        let uncommented: String = include_str!("../../../.env.example")
            .lines()
            .filter_map(|line| {
                line.strip_prefix("# ")
                    .filter(|l| l.contains('=') && !l.contains(' '))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        fs::write(&copy, uncommented).unwrap();
        let vars = read_dotenv(&copy).unwrap();
        assert!(vars.contains_key("LOAD_CONCURRENCY"), "{vars:?}");
        let documented = TestConfig::from_map(vars.clone()).unwrap();
        let built_in = TestConfig::from_map(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(documented.load, built_in.load);
        assert_eq!(documented.thresholds, built_in.thresholds);
        assert_eq!(documented.network, built_in.network);
        assert_eq!(documented.sending, built_in.sending);
        assert_eq!(documented.dataset, built_in.dataset);
        assert_eq!(documented.sink, built_in.sink);
    }
}
