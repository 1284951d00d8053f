//! Capacity search: the highest rate a router sustains, found by stepping the offered
//! rate up (then, optionally, bisecting) until the p95 latency or the error rate
//! crosses its threshold.
//!
//! Each step is one open-loop run of the sender ([`sender::LoadPlan`] with a rate and
//! a duration) against the same [`LoadTarget`], so its latency is measured from each
//! send's intended start: past the router's limit the queue grows for the whole step
//! and the p95 leaves the service time far behind, which is what makes a latency
//! threshold a sharp test of "sustained". Before each step a warm-up runs at the
//! step's rate as **a run of its own**, whose sends are not counted: every counted
//! figure comes from the step's own HDR histogram and counts, and every step starts
//! with the warm-up's backlog drained (a step never pays for the one before it).
//!
//! A step passes when its p95 latency is within [`CapacityOptions::max_p95_latency`]
//! and its error rate ((failed + unknown) / attempted) within
//! [`CapacityOptions::max_error_rate`] (by default `MAX_P95_LATENCY_MS` and
//! `MAX_ERROR_RATE`). The search stops at the first failing step, or after
//! [`CapacityOptions::max_steps`]; with [`CapacityOptions::bisect`] it then halves the
//! interval between the last passing and the first failing rate that many times. The
//! highest sustained rate is the highest offered rate whose step passed.
//!
//! The search measures what the router *accepts* (its C-STORE responses); it does not
//! verify delivery. [`run`] builds its target without a sink, retrieval or commitment
//! check for that reason.
//!
//! ```no_run
//! use std::time::Duration;
//! use campaign::capacity::{CapacityOptions, RateSteps, search};
//!
//! let config = config::TestConfig::from_env()?;
//! let target = campaign::LoadTarget::new(&config)?;
//! let samples = campaign::Samples::scan(&config.dataset.root_dir)?;
//! let instances = campaign::load::prepare(&target.config, &samples.paths())?.instances;
//! let options = CapacityOptions::from_config(&config)
//!     .start_rate(50.0)
//!     .rate_steps(RateSteps::Factor(1.5))
//!     .max_steps(8)
//!     .step_duration(Duration::from_secs(10))
//!     .bisect(3);
//! let found = search(&target, &instances, &options, &sender::NoObserver)?;
//! println!("sustained {:?} sends/s", found.highest_sustained_rate());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use config::TestConfig;
use report::{LoadResult, TestOutcome, TestRecord};
use sender::{LoadObserver, LoadProgress, LoadReport, PreparedInstance, StopAfter};

use crate::load::{self, LoadTarget};
use crate::{CampaignError, Samples};

/// How the offered rate grows from one step to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateSteps {
    /// Each step offers this many times the previous one's rate (> 1).
    Factor(f64),
    /// Each step offers this many sends/s more than the previous one (> 0).
    Increment(f64),
}

impl RateSteps {
    /// The offered rate of stepping step `index` (from 0).
    fn rate(self, start: f64, index: u32) -> f64 {
        match self {
            RateSteps::Factor(f) => start * f.powi(index as i32),
            RateSteps::Increment(inc) => start + inc * f64::from(index),
        }
    }
}

/// How a capacity search steps, how long each step runs, and what a step must stay
/// within to pass.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityOptions {
    start_rate: f64,
    rate_steps: RateSteps,
    max_steps: u32,
    step_duration: Duration,
    warm_up: Duration,
    bisect: u32,
    max_p95_latency: Duration,
    max_error_rate: f64,
}

impl CapacityOptions {
    /// The default growth from step to step: x1.5.
    pub const DEFAULT_FACTOR: f64 = 1.5;
    /// The default number of stepping steps (bisection steps come on top).
    pub const DEFAULT_MAX_STEPS: u32 = 8;
    /// The default counted time per step.
    pub const DEFAULT_STEP_DURATION: Duration = Duration::from_secs(10);
    /// The default uncounted warm-up before each step.
    pub const DEFAULT_WARM_UP: Duration = Duration::from_secs(2);

    /// Options with the thresholds of `config` (`MAX_P95_LATENCY_MS`,
    /// `MAX_ERROR_RATE`), starting at `PEAK_IMAGES_PER_SECOND`, x1.5 per step, 8
    /// steps of 10 s after 2 s of warm-up each, no bisection.
    pub fn from_config(config: &TestConfig) -> Self {
        CapacityOptions {
            start_rate: config.load.peak_images_per_second,
            rate_steps: RateSteps::Factor(Self::DEFAULT_FACTOR),
            max_steps: Self::DEFAULT_MAX_STEPS,
            step_duration: Self::DEFAULT_STEP_DURATION,
            warm_up: Self::DEFAULT_WARM_UP,
            bisect: 0,
            max_p95_latency: config.thresholds.max_p95_latency,
            max_error_rate: config.thresholds.max_error_rate,
        }
    }

    /// The first step's offered rate, sends/s.
    pub fn start_rate(mut self, rate: f64) -> Self {
        self.start_rate = rate;
        self
    }

    /// How the rate grows from step to step.
    pub fn rate_steps(mut self, steps: RateSteps) -> Self {
        self.rate_steps = steps;
        self
    }

    /// At most this many stepping steps (bisection steps are counted apart).
    pub fn max_steps(mut self, steps: u32) -> Self {
        self.max_steps = steps;
        self
    }

    /// The counted time of each step: sends whose intended start falls within it.
    pub fn step_duration(mut self, duration: Duration) -> Self {
        self.step_duration = duration;
        self
    }

    /// The uncounted run at the step's rate before each step (zero: none).
    pub fn warm_up(mut self, duration: Duration) -> Self {
        self.warm_up = duration;
        self
    }

    /// After the first failing step, halve the interval between the last passing and
    /// the first failing rate this many times (0: no bisection).
    pub fn bisect(mut self, steps: u32) -> Self {
        self.bisect = steps;
        self
    }

    /// The p95 latency (from intended start) a step may reach and still pass.
    pub fn max_p95_latency(mut self, latency: Duration) -> Self {
        self.max_p95_latency = latency;
        self
    }

    /// The error rate a step may reach and still pass, from 0 to 1.
    pub fn max_error_rate(mut self, rate: f64) -> Self {
        self.max_error_rate = rate;
        self
    }

    /// The first step's rate.
    pub fn current_start_rate(&self) -> f64 {
        self.start_rate
    }

    /// The growth from step to step.
    pub fn current_rate_steps(&self) -> RateSteps {
        self.rate_steps
    }

    /// The stepping steps at most.
    pub fn current_max_steps(&self) -> u32 {
        self.max_steps
    }

    /// The counted time per step.
    pub fn current_step_duration(&self) -> Duration {
        self.step_duration
    }

    /// The warm-up per step.
    pub fn current_warm_up(&self) -> Duration {
        self.warm_up
    }

    /// The bisection steps.
    pub fn current_bisect(&self) -> u32 {
        self.bisect
    }

    /// The p95 threshold.
    pub fn current_max_p95_latency(&self) -> Duration {
        self.max_p95_latency
    }

    /// The error-rate threshold.
    pub fn current_max_error_rate(&self) -> f64 {
        self.max_error_rate
    }

    /// Checks every option, naming the one that is wrong and its value.
    ///
    /// # Errors
    /// [`CampaignError::InvalidOption`] for a rate or factor that cannot step, no
    /// steps, a zero step duration or an error rate outside 0..=1.
    pub fn validate(&self) -> Result<(), CampaignError> {
        let invalid = |name: &'static str, value: String, expected: &'static str| {
            Err(CampaignError::InvalidOption {
                name,
                value,
                expected,
            })
        };
        if !(self.start_rate.is_finite() && self.start_rate > 0.0) {
            return invalid(
                "start rate",
                self.start_rate.to_string(),
                "a rate above 0 sends/s",
            );
        }
        match self.rate_steps {
            RateSteps::Factor(f) if !(f.is_finite() && f > 1.0) => {
                return invalid("step factor", f.to_string(), "a factor above 1");
            }
            RateSteps::Increment(i) if !(i.is_finite() && i > 0.0) => {
                return invalid(
                    "step increment",
                    i.to_string(),
                    "an increment above 0 sends/s",
                );
            }
            _ => {}
        }
        if self.max_steps == 0 {
            return invalid("steps", "0".into(), "at least 1 step");
        }
        if self.step_duration.is_zero() {
            return invalid("step duration", "0 s".into(), "a step longer than 0 s");
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return invalid(
                "max error rate",
                self.max_error_rate.to_string(),
                "a fraction from 0 to 1",
            );
        }
        if self.max_p95_latency.is_zero() {
            return invalid("max p95 latency", "0 ms".into(), "a latency above 0 ms");
        }
        Ok(())
    }
}

/// Which part of a step is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The uncounted run before the step.
    WarmUp,
    /// The counted step.
    Counted,
}

/// Receives a capacity search's progress (from the thread that called [`search`]);
/// the library never prints. Every method does nothing by default.
pub trait CapacityObserver: Sync {
    /// A step's warm-up or counted run starts at `rate` sends/s.
    fn step_started(&self, _number: u32, _rate: f64, _phase: Phase) {}
    /// The running load's progress.
    fn load_progress(&self, _progress: &LoadProgress) {}
    /// A step ended and was judged.
    fn step_finished(&self, _step: &CapacityStep) {}
}

impl CapacityObserver for sender::NoObserver {}

/// Forwards a step's load progress to the search's observer.
struct Forward<'a>(&'a dyn CapacityObserver);

impl LoadObserver for Forward<'_> {
    fn on_progress(&self, progress: &LoadProgress) {
        self.0.load_progress(progress);
    }
}

/// One step: its offered rate, its counted run, and the verdict.
#[derive(Debug)]
pub struct CapacityStep {
    /// From 1, in the order the steps ran.
    pub number: u32,
    /// Whether it refined the limit by bisection.
    pub bisection: bool,
    /// The offered rate, sends/s.
    pub offered_rate: f64,
    /// The counted run (the warm-up is not in it).
    pub load: LoadReport,
    /// Whether it stayed within both thresholds.
    pub passed: bool,
    /// Why it passed or failed, in words.
    pub verdict: String,
}

impl CapacityStep {
    /// Delivered (succeeded + warnings) per second over the step's wall time.
    pub fn achieved_rate(&self) -> Option<f64> {
        self.load.metrics.images_per_s
    }

    /// The step as the report's row.
    pub fn row(&self) -> report::CapacityStep {
        let m = &self.load.metrics;
        let latency = m.latency_ms;
        report::CapacityStep {
            number: self.number,
            bisection: self.bisection,
            offered_rate: self.offered_rate,
            achieved_rate: self.achieved_rate(),
            attempted: m.counts.attempted,
            succeeded: m.counts.succeeded,
            warnings: m.counts.warnings,
            failed: m.counts.failed,
            unknown: m.counts.unknown,
            error_rate: m.error_rate,
            p50_ms: latency.map(|l| l.p50_ms),
            p95_ms: latency.map(|l| l.p95_ms),
            p99_ms: latency.map(|l| l.p99_ms),
            max_ms: latency.map(|l| l.max_ms),
            passed: self.passed,
            verdict: self.verdict.clone(),
        }
    }
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stopped {
    /// Stepping step `step` failed (at `rate`); bisection, if asked, came after.
    Failed {
        /// Its number.
        step: u32,
        /// Its offered rate.
        rate: f64,
    },
    /// Every stepping step passed: the limit is above the last rate.
    MaxSteps {
        /// The last (highest) offered rate.
        rate: f64,
    },
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stopped::Failed { step, rate } => {
                write!(
                    f,
                    "stepping stopped at step {step} ({rate:.1} sends/s), the first to fail"
                )
            }
            Stopped::MaxSteps { rate } => write!(
                f,
                "every step passed up to {rate:.1} sends/s: the limit is higher (more steps or a larger factor find it)"
            ),
        }
    }
}

/// What a capacity search found.
#[derive(Debug)]
pub struct CapacityReport {
    /// Every step, in the order it ran.
    pub steps: Vec<CapacityStep>,
    /// Why the search ended.
    pub stopped: Stopped,
    /// The options it ran with.
    pub options: CapacityOptions,
    /// Associations every step used (`LOAD_CONCURRENCY`).
    pub concurrency: usize,
    /// Wall time of the whole search, warm-ups included.
    pub elapsed: Duration,
}

impl CapacityReport {
    /// The highest offered rate whose step passed (bisection included); `None` when
    /// none did.
    pub fn highest_sustained_rate(&self) -> Option<f64> {
        self.highest_sustained_step().map(|s| s.offered_rate)
    }

    /// The passing step with the highest offered rate.
    pub fn highest_sustained_step(&self) -> Option<&CapacityStep> {
        self.steps
            .iter()
            .filter(|s| s.passed)
            .max_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate))
    }

    /// The search as the report's curve (also its JSON).
    pub fn curve(&self) -> report::CapacityCurve {
        let bisected = self.steps.iter().filter(|s| s.bisection).count();
        let stopped = if bisected == 0 {
            self.stopped.to_string()
        } else {
            format!("{}; then {bisected} bisection step(s)", self.stopped)
        };
        report::CapacityCurve {
            highest_sustained_rate: self.highest_sustained_rate(),
            stopped,
            max_p95_latency_ms: self.options.max_p95_latency.as_secs_f64() * 1000.0,
            max_error_rate: self.options.max_error_rate,
            step_seconds: self.options.step_duration.as_secs_f64(),
            warm_up_seconds: self.options.warm_up.as_secs_f64(),
            concurrency: self.concurrency,
            steps: self.steps.iter().map(CapacityStep::row).collect(),
        }
    }

    /// What the report's performance panel shows: the curve, with the metrics of the
    /// highest sustained step (the first step's when none passed).
    pub fn load_result(&self) -> LoadResult {
        let shown = self.highest_sustained_step().or(self.steps.first());
        let mut result = shown.map_or_else(
            || load::load_result(&LoadReport::empty(), None, None),
            |step| load::load_result(&step.load, None, None),
        );
        result.capacity = Some(self.curve());
        result
    }
}

/// Judges one step's counted run against the thresholds.
fn judge(load: &LoadReport, options: &CapacityOptions) -> (bool, String) {
    let m = &load.metrics;
    if m.counts.attempted == 0 {
        return (false, "nothing was sent".into());
    }
    let error_rate = m.error_rate.unwrap_or(1.0);
    let max_p95 = options.max_p95_latency.as_secs_f64() * 1000.0;
    let mut failures = Vec::new();
    if error_rate > options.max_error_rate {
        failures.push(format!(
            "error rate {:.2} % above {:.2} % ({} failed, {} unknown)",
            error_rate * 100.0,
            options.max_error_rate * 100.0,
            m.counts.failed,
            m.counts.unknown
        ));
    }
    match m.p95_latency_ms() {
        Some(p95) if p95 > max_p95 => {
            failures.push(format!("p95 {p95:.1} ms above {max_p95:.0} ms"));
        }
        Some(_) => {}
        None => failures.push("no latency recorded".into()),
    }
    if failures.is_empty() {
        (
            true,
            format!(
                "p95 {:.1} ms, error rate {:.2} %: within both thresholds",
                m.p95_latency_ms().unwrap_or_default(),
                error_rate * 100.0
            ),
        )
    } else {
        (false, failures.join("; "))
    }
}

/// Runs the search against `target`: one open-loop run of `instances` per step, at
/// the target's `LOAD_CONCURRENCY` and sending settings (association strategy,
/// memory budget), each after its uncounted warm-up.
///
/// # Errors
/// [`CampaignError::InvalidOption`] for options [`CapacityOptions::validate`]
/// refuses; [`CampaignError::Sender`] when a run cannot start;
/// [`CampaignError::Accounting`] when a run's sends do not add up (attempted =
/// succeeded + warnings + failed + unknown, checked for every step and warm-up).
pub fn search(
    target: &LoadTarget,
    instances: &[Arc<PreparedInstance>],
    options: &CapacityOptions,
    observer: &dyn CapacityObserver,
) -> Result<CapacityReport, CampaignError> {
    options.validate()?;
    let started = Instant::now();
    let config = &target.config;
    let forward = Forward(observer);
    let mut steps: Vec<CapacityStep> = Vec::new();
    let mut run_step = |rate: f64, bisection: bool| -> Result<bool, CampaignError> {
        let number = steps.len() as u32 + 1;
        let plan = |duration: Duration| {
            crate::options::sender::load_plan(config, instances.to_vec())
                .rate(Some(rate))
                // Every step starts at its rate: a ramp would offer less than the
                // rate being judged.
                .ramp_up(Duration::ZERO)
                .stop_after(StopAfter::Duration(duration))
        };
        if !options.warm_up.is_zero() {
            observer.step_started(number, rate, Phase::WarmUp);
            load::run_load(target, &plan(options.warm_up), &forward)?;
        }
        observer.step_started(number, rate, Phase::Counted);
        let counted = load::run_load(target, &plan(options.step_duration), &forward)?;
        let (passed, verdict) = judge(&counted, options);
        let step = CapacityStep {
            number,
            bisection,
            offered_rate: rate,
            load: counted,
            passed,
            verdict,
        };
        observer.step_finished(&step);
        steps.push(step);
        Ok(passed)
    };

    let mut last_passed: Option<f64> = None;
    let mut stopped = None;
    for index in 0..options.max_steps {
        let rate = options.rate_steps.rate(options.start_rate, index);
        if run_step(rate, false)? {
            last_passed = Some(rate);
        } else {
            stopped = Some(Stopped::Failed {
                step: index + 1,
                rate,
            });
            break;
        }
    }
    let stopped = match stopped {
        Some(stopped) => stopped,
        None => Stopped::MaxSteps {
            rate: options
                .rate_steps
                .rate(options.start_rate, options.max_steps - 1),
        },
    };
    if let Stopped::Failed { rate: failed, .. } = stopped {
        // Below the first passing rate nothing is known to pass: bisect from 0.
        let (mut low, mut high) = (last_passed.unwrap_or(0.0), failed);
        for _ in 0..options.bisect {
            let mid = (low + high) / 2.0;
            if run_step(mid, true)? {
                low = mid;
            } else {
                high = mid;
            }
        }
    }
    Ok(CapacityReport {
        steps,
        stopped,
        options: options.clone(),
        concurrency: config.load.concurrency,
        elapsed: started.elapsed(),
    })
}

/// The test record of a search: passed when some step was sustained, with the
/// highest sustained rate and the steps as figures, and the curve for the panel.
pub fn capacity_record(found: &CapacityReport) -> TestRecord {
    let highest = found.highest_sustained_rate();
    let mut record = TestRecord::new(
        "campaign::capacity_search",
        if highest.is_some() {
            TestOutcome::Passed
        } else {
            TestOutcome::Failed
        },
        found.elapsed.as_secs_f64() * 1000.0,
    );
    let figure = |label: &str, value: String| report::Figure {
        label: label.into(),
        value,
    };
    record.figures.push(figure(
        "highest sustained rate",
        highest.map_or_else(|| "none".into(), |r| format!("{r:.1} sends/s")),
    ));
    record
        .figures
        .push(figure("steps", found.steps.len().to_string()));
    record
        .figures
        .push(figure("search ended", found.curve().stopped));
    if highest.is_none() {
        record.message = Some(format!(
            "no step was sustained: the first, at {:.1} sends/s, already failed ({}); start lower",
            found.options.start_rate,
            found.steps.first().map_or("", |s| s.verdict.as_str())
        ));
    }
    record.load = Some(found.load_result());
    record
}

/// What `dicom-auto capacity` did and found.
#[derive(Debug)]
pub struct CapacityRun {
    /// The router in words.
    pub target: String,
    /// The search.
    pub found: CapacityReport,
    /// Files of `DICOM_ROOT_DIR` left out, each with the reason.
    pub skipped: Vec<(std::path::PathBuf, String)>,
    /// The run record the three reports render.
    pub report: report::RunReport,
    /// Where the reports were written.
    pub paths: report::ReportPaths,
}

/// A capacity search from `config`, as `dicom-auto capacity` runs it: scans
/// `DICOM_ROOT_DIR`, checks that the router answers, searches (against the embedded
/// simulator when no `COMPASS_HOST` is set; no delivery check: the target has no
/// sink), and writes `test_report.html`, `.json` and `.xml` into `REPORT_DIR`.
///
/// # Errors
/// [`CampaignError`] when the search cannot run; a search in which no step passed is
/// an `Ok` whose record failed.
pub fn run(
    config: &TestConfig,
    options: &CapacityOptions,
    observer: &dyn CapacityObserver,
) -> Result<CapacityRun, CampaignError> {
    options.validate()?;
    let started_unix_ms = crate::run::unix_ms();
    let samples = Samples::scan(&config.dataset.root_dir)?;
    let mut accepting_only = config.clone();
    accepting_only.sink.verify_at = config::VerifyAt::CFIND;
    let target = LoadTarget::new(&accepting_only)?;
    target.check_reachable()?;
    let prepared = load::prepare(&target.config, &samples.paths())?;
    let mut skipped: Vec<(std::path::PathBuf, String)> = samples
        .skipped
        .iter()
        .map(|s| (s.path.clone(), s.reason.to_string()))
        .collect();
    skipped.extend(prepared.skipped);
    let found = search(&target, &prepared.instances, options, observer)?;
    let mut record = capacity_record(&found);
    record.figures.push(report::Figure {
        label: "sample files skipped".into(),
        value: skipped.len().to_string(),
    });
    let associations = found
        .steps
        .last()
        .map(|s| s.load.associations.clone())
        .unwrap_or_default();
    let (report, paths) = crate::run::write_run_report(
        "dicom-auto capacity report",
        started_unix_ms,
        &target,
        &associations,
        vec![record],
        &samples,
    )?;
    Ok(CapacityRun {
        target: target.describe(),
        found,
        skipped,
        report,
        paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> CapacityOptions {
        CapacityOptions::from_config(&TestConfig::from_map([("MAX_P95_LATENCY_MS", "60")]).unwrap())
    }

    #[test]
    fn steps_grow_by_factor_or_increment() {
        assert_eq!(RateSteps::Factor(1.5).rate(100.0, 2), 225.0);
        assert_eq!(RateSteps::Increment(25.0).rate(100.0, 3), 175.0);
    }

    #[test]
    fn thresholds_default_to_the_configuration() {
        let options = options();
        assert_eq!(options.current_max_p95_latency(), Duration::from_millis(60));
        assert_eq!(options.current_bisect(), 0);
        assert!(options.validate().is_ok());
    }

    #[test]
    fn an_option_that_cannot_step_is_refused_by_name_and_value() {
        let error = options()
            .rate_steps(RateSteps::Factor(1.0))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("step factor") && error.contains('1'),
            "{error}"
        );
        let error = options()
            .start_rate(0.0)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("start rate"), "{error}");
        let error = options().max_steps(0).validate().unwrap_err().to_string();
        assert!(error.contains("steps"), "{error}");
    }

    #[test]
    fn a_step_with_nothing_sent_is_not_sustained() {
        let (passed, verdict) = judge(&LoadReport::empty(), &options());
        assert!(!passed);
        assert_eq!(verdict, "nothing was sent");
    }
}
