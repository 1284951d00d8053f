//! A whole campaign, as `dicom-auto run` performs it: prepare, load at the configured
//! profile, verify, judge, report.

use std::path::PathBuf;
use std::time::Instant;

use cfind::VerificationReport;
use config::TestConfig;
use report::{ConfigItem, ReportPaths, RunReport, TestOutcome, TestRecord};
use sender::{LoadObserver, LoadReport};
use sink::DeliveryReport;

use crate::checks::{Check, judge};
use crate::commitment::CommitmentReport;
use crate::load::{self, LoadTarget};
use crate::retrieval::RetrievalReport;
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
    /// What the destination sink received, when `VERIFY_AT` verified there.
    pub delivery: Option<DeliveryReport>,
    /// What came back from the destination archive, when `VERIFY_AT` retrieved.
    pub retrieval: Option<RetrievalReport>,
    /// What the destination archive committed, when `VERIFY_AT` asked it to.
    pub commitment: Option<CommitmentReport>,
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
/// verifies every delivered study by C-FIND, every instance at the destination sink,
/// and what the destination archive gives back (as `VERIFY_AT` says), judges the thresholds, and writes
/// `test_report.html`, `.json` and `.xml` into `REPORT_DIR`.
///
/// # Errors
/// [`CampaignError`] when a step cannot run at all; a run whose checks fail is an
/// `Ok` whose [`CampaignRun::passed`] is false.
pub fn run(config: &TestConfig, observer: &dyn LoadObserver) -> Result<CampaignRun, CampaignError> {
    run_with(config, observer, &|plan| plan)
}

/// [`run`], with the load plan made from `config` passed through `adjust` first: to
/// make the run one shard of a larger one ([`sender::LoadPlan::shard`],
/// [`sender::LoadPlan::start_at`]). The checks then judge this shard alone.
///
/// # Errors
/// As [`run`].
pub fn run_with(
    config: &TestConfig,
    observer: &dyn LoadObserver,
    adjust: &dyn Fn(sender::LoadPlan) -> sender::LoadPlan,
) -> Result<CampaignRun, CampaignError> {
    run_plan(config, observer, &|target| {
        let samples = Samples::scan(&config.dataset.root_dir)?;
        target.check_reachable()?;
        let prepared = load::prepare(&target.config, &samples.paths())?;
        let mut skipped: Vec<(PathBuf, String)> = samples
            .skipped
            .iter()
            .map(|s| (s.path.clone(), s.reason.to_string()))
            .collect();
        skipped.extend(prepared.skipped);
        let plan = adjust(crate::options::sender::load_plan(
            &target.config,
            prepared.instances,
        ));
        Ok((plan, skipped, samples))
    })
}

/// [`run`] with the load of a workload profile (`dicom-auto run --profile FILE`):
/// studies arriving as the profile's seeded schedule says, each on its own
/// association under its modality's AE title, for `duration` (else the profile's own,
/// else `TEST_DURATION_SECONDS`); the report adds each group's figures.
///
/// # Errors
/// As [`run`], and [`CampaignError::Profile`] for a profile that cannot be read.
pub fn run_profile(
    config: &TestConfig,
    profile_path: &std::path::Path,
    duration: Option<std::time::Duration>,
    observer: &dyn LoadObserver,
) -> Result<CampaignRun, CampaignError> {
    let profile = crate::profile::read_profile(profile_path)?;
    run_plan(config, observer, &|target| {
        target.check_reachable()?;
        let planned =
            crate::profile::profile_plan(&target.config, &profile, duration, profile_path)?;
        Ok((planned.plan, Vec::new(), planned.samples))
    })
}

/// What a campaign sends: the plan, the files left out and why, the samples (for the
/// report's scrubbing of identifying values).
type PlannedLoad = (sender::LoadPlan, Vec<(PathBuf, String)>, Samples);

fn run_plan(
    config: &TestConfig,
    observer: &dyn LoadObserver,
    make_plan: &dyn Fn(&LoadTarget) -> Result<PlannedLoad, CampaignError>,
) -> Result<CampaignRun, CampaignError> {
    let started_unix_ms = unix_ms();
    let started = Instant::now();
    let target = LoadTarget::new(config)?;
    let (plan, skipped, samples) = make_plan(&target)?;
    let plan = target.watched(plan);
    let load_report = load::run_load(&target, &plan, observer)?;
    let delivery = target.settle_delivery();
    let verification = load::verify(&target, &load_report)?;
    let commitment = target.verify_commitment(&load_report)?;
    let retrieval = target.verify_retrieval(&load_report)?;
    let mut checks = judge(
        &load_report,
        verification.as_ref(),
        delivery.as_ref(),
        &target.config.thresholds,
        target.config.thresholds.max_p95_latency,
    );
    checks.extend(
        commitment
            .as_ref()
            .map(crate::checks::commitment_at_archive),
    );
    checks.extend(retrieval.as_ref().map(crate::checks::retrieval_at_archive));
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut load_record = TestRecord::new(
        "campaign::load_at_target_rate",
        TestOutcome::Passed,
        elapsed_ms,
    );
    load_record.figures =
        load::load_figures(&load_report, verification.as_ref(), delivery.as_ref());
    load_record.figures.push(report::Figure {
        label: "sample files skipped".into(),
        value: skipped.len().to_string(),
    });
    load_record
        .figures
        .extend(crate::profile::group_figures(&load_report));
    load_record.figures.extend(
        commitment
            .iter()
            .flat_map(crate::commitment::commitment_figures),
    );
    load_record.figures.extend(
        retrieval
            .iter()
            .flat_map(crate::retrieval::retrieval_figures),
    );
    let mut result = load::load_result(&load_report, verification.as_ref(), delivery.as_ref());
    result.retrieval = retrieval.as_ref().map(crate::retrieval::archive_retrieval);
    result.commitment = commitment
        .as_ref()
        .map(crate::commitment::archive_commitment);
    load_record.load = Some(result);
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
    let (report, paths) = write_run_report(
        "dicom-auto campaign report",
        started_unix_ms,
        &target,
        &load_report.associations,
        tests,
        &samples,
    )?;
    Ok(CampaignRun {
        target: target.describe(),
        load: load_report,
        verification,
        delivery,
        retrieval,
        commitment,
        checks,
        skipped,
        report,
        paths,
    })
}

/// The run record of `tests` against `target` (its configuration, with what TLS
/// negotiated on `associations`), scrubbed of the samples' identifying values and
/// written as the three reports into `REPORT_DIR`.
///
/// # Errors
/// [`CampaignError::Report`] when a report cannot be written.
pub(crate) fn write_run_report(
    title: &str,
    started_unix_ms: i64,
    target: &LoadTarget,
    associations: &sender::AssociationCounts,
    tests: Vec<TestRecord>,
    samples: &Samples,
) -> Result<(RunReport, ReportPaths), CampaignError> {
    let config = &target.config;
    let mut report = RunReport {
        title: title.into(),
        started_unix_ms,
        finished_unix_ms: unix_ms(),
        target: target.describe(),
        configuration: configuration_items(config)
            .into_iter()
            .chain(tls_negotiated(associations))
            .collect(),
        tests,
    };
    samples.identifying_values().redact_report(&mut report);
    let paths = ReportPaths {
        html: config.report.html_path(),
        json: config.report.json_path(),
        junit: config.report.junit_path(),
    };
    report::write_reports(&report, &paths).map_err(CampaignError::Report)?;
    Ok((report, paths))
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

/// What TLS negotiated on the run's associations, as a report line:
/// `TLSv1_3 TLS13_AES_256_GCM_SHA384 on 8 associations`; none without TLS.
pub fn tls_negotiated(associations: &sender::AssociationCounts) -> Option<ConfigItem> {
    if associations.tls_sessions.is_empty() {
        return None;
    }
    let value = associations
        .tls_sessions
        .iter()
        .map(|count| {
            let plural = if count.associations == 1 { "" } else { "s" };
            format!(
                "{} on {} association{plural}",
                count.session, count.associations
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Some(ConfigItem {
        section: "security".into(),
        key: "tls_negotiated".into(),
        value,
    })
}

/// What TLS negotiates with the router, found by one C-ECHO, as a report line (none
/// without TLS): for runs that open their associations in many places (the suite),
/// where no single load run's counts tell it. A failed echo is said as such.
pub fn tls_probe(config: &TestConfig) -> Option<ConfigItem> {
    config.security.tls.as_ref()?;
    let value = match crate::options::sender::sender_options(config)
        .and_then(|options| options.build().map_err(CampaignError::from))
        .and_then(|sender| sender.ping().map_err(CampaignError::from))
    {
        Ok(echo) => match echo.tls_session {
            Some(session) => format!("{session} (C-ECHO before the run)"),
            None => "none: the association did not use TLS".to_owned(),
        },
        Err(error) => format!("not negotiated: {error}"),
    };
    Some(ConfigItem {
        section: "security".into(),
        key: "tls_negotiated".into(),
        value,
    })
}

pub(crate) fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use dimse::tls::TlsSession;

    use super::*;

    #[test]
    fn the_negotiated_sessions_are_counted_in_words() {
        let mut associations = sender::AssociationCounts::default();
        assert_eq!(tls_negotiated(&associations), None);
        let session = |version: &str, suite: &str| TlsSession {
            protocol_version: version.into(),
            cipher_suite: suite.into(),
        };
        associations.tls_sessions = vec![
            sender::TlsSessionCount {
                session: session("TLSv1_3", "TLS13_AES_256_GCM_SHA384"),
                associations: 8,
            },
            sender::TlsSessionCount {
                session: session("TLSv1_2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
                associations: 1,
            },
        ];
        let item = tls_negotiated(&associations).unwrap();
        assert_eq!(
            (item.section.as_str(), item.key.as_str()),
            ("security", "tls_negotiated")
        );
        assert_eq!(
            item.value,
            "TLSv1_3 TLS13_AES_256_GCM_SHA384 on 8 associations; TLSv1_2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 on 1 association"
        );
    }

    #[test]
    fn a_plain_configuration_needs_no_probe() {
        let config = TestConfig::from_map([("COMPASS_HOST", "192.0.2.1")]).unwrap();
        assert_eq!(tls_probe(&config), None);
    }
}
