//! Capacity-search bench (issue 16, item 3): "a capacity search over 8 steps of 10 s
//! completes in under 2 minutes". Runs one against the embedded simulator answering
//! every C-STORE after a fixed delay D over C associations, so the analytic limit is
//! C / D, and prints the wall time, the steps, the rate found and the limit.
//!
//! 8 steps = 5 stepping steps from C / D / 4, x1.5 each (the fifth, 1.27 x the limit,
//! fails), then 3 bisections. Each step runs 10 s after a 2 s warm-up.
//!
//! ```text
//! cargo run --release -p campaign --example capacity_bench [-- --step-seconds 10 --warm-up-seconds 2]
//! ```

use std::time::{Duration, Instant};

use campaign::capacity::{CapacityObserver, CapacityOptions, CapacityStep, RateSteps, search};
use simulator::{FaultPlan, ResponseDelay};

/// The simulator's answer to every C-STORE waits this long.
const SERVICE_TIME: Duration = Duration::from_millis(100);
/// Associations the sender keeps busy.
const CONCURRENCY: usize = 16;
/// The issue's goal for the whole search.
const GOAL: Duration = Duration::from_secs(120);

struct Printer;

impl CapacityObserver for Printer {
    fn step_finished(&self, step: &CapacityStep) {
        eprintln!(
            "step {}{} at {:.1}/s: {}",
            step.number,
            if step.bisection { " (bisect)" } else { "" },
            step.offered_rate,
            step.verdict
        );
    }
}

/// `flag SECONDS` from the command line, else `default`.
fn seconds_arg(args: &[String], flag: &str, default: f64) -> Result<Duration, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(Duration::from_secs_f64(default)),
        Some(i) => {
            let raw = args
                .get(i + 1)
                .ok_or_else(|| format!("{flag} needs a number of seconds"))?;
            raw.parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| format!("{flag} {raw}: expected 0 or more seconds"))
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let step = seconds_arg(&args, "--step-seconds", 10.0)?;
    let warm_up = seconds_arg(&args, "--warm-up-seconds", 2.0)?;
    let config = config::TestConfig::from_map([
        ("VERIFY_AT", "cfind"),
        ("LOAD_CONCURRENCY", &CONCURRENCY.to_string()),
    ])?;
    let target = campaign::LoadTarget::new(&config)?;
    target
        .simulator
        .as_ref()
        .ok_or("no COMPASS_HOST given, so the target must be the embedded simulator")?
        .set_faults(FaultPlan {
            response_delay: Some(ResponseDelay::Fixed(SERVICE_TIME)),
            ..FaultPlan::default()
        });
    let samples = campaign::Samples::scan(&target.config.dataset.root_dir)?;
    let instances = campaign::load::prepare(&target.config, &samples.paths())?.instances;
    let limit = CONCURRENCY as f64 / SERVICE_TIME.as_secs_f64();
    let options = CapacityOptions::from_config(&target.config)
        .start_rate(limit / 4.0)
        .rate_steps(RateSteps::Factor(1.5))
        .max_steps(8)
        .step_duration(step)
        .warm_up(warm_up)
        .bisect(3)
        .max_p95_latency(SERVICE_TIME * 3);

    let started = Instant::now();
    let found = search(&target, &instances, &options, &Printer)?;
    let wall = started.elapsed();

    println!(
        "capacity search: {} steps of {:.0} s (+{:.0} s warm-up each), {} instances, D = {} ms, C = {CONCURRENCY}",
        found.steps.len(),
        step.as_secs_f64(),
        warm_up.as_secs_f64(),
        instances.len(),
        SERVICE_TIME.as_millis()
    );
    for s in &found.steps {
        let m = &s.load.metrics;
        println!(
            "  step {:>2}{:<9} offered {:>6.1}/s  achieved {:>6.1}/s  p50 {:>7.1} ms  p95 {:>7.1} ms  p99 {:>7.1} ms  {}",
            s.number,
            if s.bisection { " (bisect)" } else { "" },
            s.offered_rate,
            s.achieved_rate().unwrap_or_default(),
            m.latency_ms.map_or(0.0, |l| l.p50_ms),
            m.latency_ms.map_or(0.0, |l| l.p95_ms),
            m.latency_ms.map_or(0.0, |l| l.p99_ms),
            if s.passed { "pass" } else { "FAIL" }
        );
    }
    let sustained = found.highest_sustained_rate();
    println!(
        "highest sustained rate: {}; analytic limit C / D = {limit:.1}/s ({})",
        sustained.map_or_else(|| "none".into(), |r| format!("{r:.1}/s")),
        sustained.map_or_else(
            || "-".into(),
            |r| format!("{:+.1} %", (r - limit) / limit * 100.0)
        )
    );
    println!(
        "wall time: {:.1} s (goal under {} s: {})",
        wall.as_secs_f64(),
        GOAL.as_secs(),
        if wall < GOAL { "met" } else { "NOT met" }
    );
    Ok(())
}
