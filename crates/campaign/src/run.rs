//! A whole campaign, as `dicom-auto run` performs it: prepare, load at the configured
//! profile, verify, judge, report.

use std::path::PathBuf;
use std::time::Instant;

use cfind::VerificationReport;
use config::TestConfig;
use report::{ConfigItem, ReportPaths, RunReport, TestOutcome, TestRecord};
use sender::{LoadObserver, LoadReport};

use crate::checks::{Check, judge};
use crate::load::{self, LoadTarget};
use crate::{CampaignError, Samples};

/// What a campaign did and found.
#[derive(Debug)]
pub struct CampaignRun {
    /// The router in words.
    pub target: String,
    /// The load run.
    pub load: LoadReport,
    /// The C-FIND verification, when it ran.
    pub verification: Option<VerificationReport>,
    /// The judged requirements.
    pub checks: Vec<Check>,
    /// Files of `DICOM_ROOT_DIR` left out (not DICOM, truncated, lacking UIDs...), each
    /// with the reason: reported, never silently dropped.
    pub skipped: Vec<(PathBuf, String)>,
    /// The run record the three reports render.
    pub report: RunReport,
    /// Where the reports were written.
    pub paths: ReportPaths,
}

impl CampaignRun {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Runs a campaign from `config`: scans `DICOM_ROOT_DIR`, checks that the router
/// answers, loads it at `PEAK_IMAGES_PER_SECOND` x `LOAD_MULTIPLIER` for
/// `TEST_DURATION_SECONDS` (the embedded simulator when no `COMPASS_HOST` is set),
/// verifies every delivered study by C-FIND, judges the thresholds, and writes
/// `test_report.html`, `.json` and `.xml` into `REPORT_DIR`.
///
/// # Errors
/// [`CampaignError`] when a step cannot run at all; a run whose checks fail is an
/// `Ok` whose [`CampaignRun::passed`] is false.
pub fn run(config: &TestConfig, observer: &dyn LoadObserver) -> Result<CampaignRun, CampaignError> {
    let started_unix_ms = unix_ms();
    let started = Instant::now();
    let samples = Samples::scan(&config.dataset.root_dir)?;
    let target = LoadTarget::new(config)?;
    target.check_reachable()?;
    let prepared = load::prepare(&target.config, &samples.paths())?;
    let mut skipped: Vec<(PathBuf, String)> = samples
        .skipped
        .iter()
        .map(|s| (s.path.clone(), s.reason.to_string()))
        .collect();
    skipped.extend(prepared.skipped);
    let plan = crate::options::sender::load_plan(&target.config, prepared.instances);
    let load_report = load::run_load(&target, &plan, observer)?;
    let verification = load::verify(&target, &load_report)?;
    let checks = judge(
        &load_report,
        verification.as_ref(),
        &target.config.thresholds,
        target.config.thresholds.max_p95_latency,
    );
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut load_record = TestRecord::new(
        "campaign::load_at_target_rate",
        TestOutcome::Passed,
        elapsed_ms,
    );
    load_record.figures = load::load_figures(&load_report, verification.as_ref());
    load_record.figures.push(report::Figure {
        label: "sample files skipped".into(),
        value: skipped.len().to_string(),
    });
    load_record.load = Some(load::load_result(&load_report, verification.as_ref()));
    if let Some(failures) = crate::checks::failures(&checks) {
        load_record.outcome = TestOutcome::Failed;
        load_record.message = Some(failures);
    }
    let mut tests = vec![load_record];
    tests.extend(checks.iter().map(|check| {
        let mut record = TestRecord::new(
            format!("campaign::{}", check.id),
            if check.passed {
                TestOutcome::Passed
            } else {
                TestOutcome::Failed
            },
            0.0,
        );
        record.message = Some(format!("{}: {}", check.name, check.message));
        record
    }));
    let mut report = RunReport {
        title: "dicom-auto campaign report".into(),
        started_unix_ms,
        finished_unix_ms: unix_ms(),
        target: target.describe(),
        configuration: configuration_items(&target.config),
        tests,
    };
    samples.identifying_values().redact_report(&mut report);
    let paths = ReportPaths {
        html: config.report.html_path(),
        json: config.report.json_path(),
        junit: config.report.junit_path(),
    };
    report::write_reports(&report, &paths).map_err(CampaignError::Report)?;
    Ok(CampaignRun {
        target: target.describe(),
        load: load_report,
        verification,
        checks,
        skipped,
        report,
        paths,
    })
}

/// The configuration summary as the report lists it.
pub fn configuration_items(config: &TestConfig) -> Vec<ConfigItem> {
    config
        .summary()
        .into_iter()
        .map(|e| ConfigItem {
            section: e.section.to_string(),
            key: e.key.to_string(),
            value: e.value,
        })
        .collect()
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
