//! `dicom-auto capacity`: the highest rate the router sustains, found by stepped
//! open-loop runs (campaign::capacity).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use campaign::capacity::{CapacityObserver, CapacityOptions, CapacityStep, Phase, RateSteps};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sender::LoadProgress;

use crate::CHECKS_FAILED;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 a sustained rate was found, 1 not even the first step \
                        was sustained (start lower), 2 the search could not run (configuration, \
                        unreachable router, no samples).\n\nEach step runs its warm-up as a run \
                        of its own, not counted, then the step; latency is measured from each \
                        send's intended start. Delivery is not verified (no sink): the search \
                        measures what the router accepts."
)]
pub struct CapacityArgs {
    /// The first step's offered rate, sends/s [default: PEAK_IMAGES_PER_SECOND].
    #[arg(long, value_name = "PER_SECOND")]
    start_rate: Option<f64>,
    /// Each step offers this many times the previous rate.
    #[arg(long, default_value_t = CapacityOptions::DEFAULT_FACTOR, conflicts_with = "increment")]
    factor: f64,
    /// Each step offers this many sends/s more than the previous one (instead of --factor).
    #[arg(long, value_name = "PER_SECOND")]
    increment: Option<f64>,
    /// Stepping steps at most (bisection steps come on top).
    #[arg(long, default_value_t = CapacityOptions::DEFAULT_MAX_STEPS)]
    steps: u32,
    /// Counted seconds per step.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, default_value = "10")]
    step_seconds: Duration,
    /// Uncounted seconds at the step's rate before each step (0: no warm-up).
    #[arg(long, value_name = "SECONDS", value_parser = seconds, default_value = "2")]
    warm_up_seconds: Duration,
    /// After the first failing step, halve the interval between the last passing and
    /// the first failing rate N times.
    #[arg(long, value_name = "N", default_value_t = 0)]
    bisect: u32,
    /// A step fails when its p95 latency exceeds this [default: MAX_P95_LATENCY_MS].
    #[arg(long, value_name = "MS")]
    max_p95_ms: Option<f64>,
    /// A step fails when (failed + unknown) / attempted exceeds this [default: MAX_ERROR_RATE].
    #[arg(long, value_name = "FRACTION")]
    max_error_rate: Option<f64>,
    /// Associations per step [default: LOAD_CONCURRENCY].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Also write the curve (every step, the highest sustained rate) as JSON here
    /// (atomically).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress bar (for CI logs).
    #[arg(long)]
    quiet: bool,
}

/// Seconds as a duration: 0 or more, fractions allowed.
fn seconds(raw: &str) -> Result<Duration, String> {
    let value: f64 = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(value).map_err(|_| format!("{raw:?}: expected 0 or more seconds"))
}

/// Shows the search on stderr: the running step on the bar, each judged step above it.
struct Progress {
    bar: ProgressBar,
}

impl CapacityObserver for Progress {
    fn step_started(&self, number: u32, rate: f64, phase: Phase) {
        let phase = match phase {
            Phase::WarmUp => "warm-up",
            Phase::Counted => "counted",
        };
        self.bar
            .set_prefix(format!("step {number} at {rate:.1}/s ({phase})"));
        self.bar.set_position(0);
    }

    fn load_progress(&self, progress: &LoadProgress) {
        self.bar.set_position(progress.attempted);
        let p95 = progress
            .p95_latency_ms
            .map_or_else(|| "-".into(), |p| format!("{p:.1} ms"));
        self.bar.set_message(format!(
            "{:.0}/s, p95 {p95}, {} failed, {} unknown",
            progress.current_rate, progress.failed, progress.unknown
        ));
    }

    fn step_finished(&self, step: &CapacityStep) {
        let mark = if step.passed { "pass" } else { "FAIL" };
        self.bar.println(format!(
            "{mark} step {} at {:.1}/s: {}",
            step.number, step.offered_rate, step.verdict
        ));
    }
}

pub fn capacity(args: &CapacityArgs) -> Result<ExitCode> {
    let mut config = crate::configuration()?;
    if let Some(concurrency) = args.concurrency {
        anyhow::ensure!(concurrency > 0, "--concurrency 0: expected at least 1");
        config.load.concurrency = concurrency;
    }
    let mut options = CapacityOptions::from_config(&config)
        .rate_steps(match args.increment {
            Some(increment) => RateSteps::Increment(increment),
            None => RateSteps::Factor(args.factor),
        })
        .max_steps(args.steps)
        .step_duration(args.step_seconds)
        .warm_up(args.warm_up_seconds)
        .bisect(args.bisect);
    if let Some(rate) = args.start_rate {
        options = options.start_rate(rate);
    }
    if let Some(ms) = args.max_p95_ms {
        let latency = Duration::try_from_secs_f64(ms / 1000.0)
            .map_err(|_| anyhow::anyhow!("--max-p95-ms {ms}: expected a latency above 0 ms"))?;
        options = options.max_p95_latency(latency);
    }
    if let Some(rate) = args.max_error_rate {
        options = options.max_error_rate(rate);
    }
    options.validate()?;

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {prefix} {pos} sent  {msg}")
                .expect("a valid progress template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    eprintln!(
        "dicom-auto: capacity of {} from {:.1}/s, {} steps of {} s (warm-up {} s), {} associations, thresholds p95 {:.0} ms, error rate {:.2} %",
        if config.endpoint.target.is_embedded() {
            "the embedded simulator".to_string()
        } else {
            config.endpoint.address()
        },
        options.current_start_rate(),
        options.current_max_steps(),
        options.current_step_duration().as_secs_f64(),
        options.current_warm_up().as_secs_f64(),
        config.load.concurrency,
        options.current_max_p95_latency().as_secs_f64() * 1000.0,
        options.current_max_error_rate() * 100.0,
    );
    let progress = Progress { bar };
    let outcome = campaign::capacity::run(&config, &options, &progress);
    progress.bar.finish_and_clear();
    let run = outcome?;
    let curve = run.found.curve();
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&curve).context("encoding the curve as JSON")?;
        report::write_atomically(path, json.as_bytes())?;
    }

    println!("target      {}", run.target);
    for (path, reason) in &run.skipped {
        println!("skipped     {}: {reason}", path.display());
    }
    print!("{}", StepTable(&curve));
    println!(
        "search      {} in {:.1} s",
        curve.stopped,
        run.found.elapsed.as_secs_f64()
    );
    match curve.highest_sustained_rate {
        Some(rate) => println!("sustained   {rate:.1} sends/s (highest step that passed)"),
        None => println!(
            "sustained   none: the first step, at {:.1}/s, already failed; start lower (--start-rate)",
            options.current_start_rate()
        ),
    }
    if let Some(path) = &args.json {
        println!("json        {}", path.display());
    }
    println!(
        "reports     {}, {}, {}",
        run.paths.html.display(),
        run.paths.json.display(),
        run.paths.junit.display()
    );
    Ok(if curve.highest_sustained_rate.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECKS_FAILED)
    })
}

/// The steps as a table, in the order they ran.
struct StepTable<'a>(&'a report::CapacityCurve);

impl std::fmt::Display for StepTable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1}"));
        writeln!(
            f,
            "{:>4} {:>10} {:>10} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8}  verdict",
            "step",
            "offered/s",
            "achieved/s",
            "attempted",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms"
        )?;
        for s in &self.0.steps {
            writeln!(
                f,
                "{:>4} {:>10.1} {:>10} {:>9} {:>7} {:>8} {:>8} {:>8} {:>8}  {}{}",
                format!("{}{}", s.number, if s.bisection { "b" } else { "" }),
                s.offered_rate,
                ms(s.achieved_rate),
                s.attempted,
                s.failed + s.unknown,
                ms(s.p50_ms),
                ms(s.p95_ms),
                ms(s.p99_ms),
                ms(s.max_ms),
                if s.passed { "pass: " } else { "FAIL: " },
                s.verdict
            )?;
        }
        Ok(())
    }
}
