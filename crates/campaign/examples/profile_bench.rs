//! Profile-run bench (issue 16): "the generator is never the bottleneck: a profile run
//! at 2,000 images/s against the simulator in load mode keeps its schedule within 1 %
//! using under half a core".
//!
//! A synthetic workload profile (one CT group, small 64 x 64 images, studies of 100
//! images 10 ms apart, `studies_per_hour` set so that the offered rate is `--rate`
//! images/s) is drawn for `--seconds`, turned into the sender's arrival-driven plan
//! ([`campaign::profile::profile_plan`]) and sent by [`sender::run_load`] to the
//! simulator in load mode.
//!
//! The simulator runs in a child process (this example re-run with
//! `--serve-simulator`), so this process's CPU time (`/proc/self/stat`, every thread,
//! the exited ones included) is the generator's alone: the plan's preparation is left
//! out, the run's workers, feed and progress threads are counted. The child's CPU is
//! printed beside it.
//!
//! Schedule accuracy: the achieved send rate (sends started per second from the first
//! to the last actual start) against the schedule's own rate over its first to last
//! intended time, every planned image sent, and latency (from the intended time)
//! against service time (from the actual start): their difference is how late the
//! sends went out.
//!
//! ```text
//! cargo run --release -p campaign --example profile_bench [-- --rate 2000 --seconds 20]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use simulator::{Simulator, SimulatorConfig, StoreMode};

/// Images per study (one series).
const IMAGES_PER_STUDY: u32 = 100;
/// Gap between a study's images.
const IMAGE_INTERVAL_MS: u32 = 10;
/// Studies in flight the sender allows (about rate / images per study x 1.1 s on
/// average; Poisson arrivals need headroom).
const CONCURRENCY: usize = 96;
/// The issue's goals.
const GOAL_ACCURACY_PERCENT: f64 = 1.0;
const GOAL_CORES: f64 = 0.5;

/// `flag NUMBER` from the command line, else `default`.
fn number_arg(args: &[String], flag: &str, default: f64) -> Result<f64, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(default),
        Some(i) => {
            let raw = args
                .get(i + 1)
                .ok_or_else(|| format!("{flag} needs a number"))?;
            raw.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or_else(|| format!("{flag} {raw}: expected a number > 0"))
        }
    }
}

/// User plus system CPU seconds of a process (`/proc/PID/stat`, or `self`): all its
/// threads, those that have exited included.
fn cpu_seconds(pid: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").ok_or("/proc/PID/stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let (utime, stime) = fields
        .get(11)
        .zip(fields.get(12))
        .ok_or("/proc/PID/stat: too few fields")?;
    let ticks = utime.parse::<u64>()? + stime.parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The child: the simulator in load mode on a free port, its port on stdout, stopped
/// when stdin closes; then its store counts on stdout.
fn serve_simulator() -> Result<(), Box<dyn std::error::Error>> {
    let handle = Simulator::start(SimulatorConfig {
        store_mode: StoreMode::Load,
        max_associations: 4 * CONCURRENCY,
        ..SimulatorConfig::default()
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "port {}", handle.addr().port())?;
    out.flush()?;
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    let stats = handle.shutdown();
    writeln!(
        out,
        "simulator: {} C-STOREs received, {} stored, {} associations",
        stats.stores.received, stats.stores.stored, stats.associations.accepted
    )?;
    Ok(())
}

/// The simulator child, killed on drop if still running.
struct SimulatorChild {
    child: Child,
    port: u16,
}

impl SimulatorChild {
    fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve-simulator")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.as_mut().ok_or("child stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("simulator child said {line:?}, not its port"))?;
        Ok(SimulatorChild { child, port })
    }

    /// Closes its stdin and returns what it printed on the way out.
    fn finish(mut self) -> Result<String, Box<dyn std::error::Error>> {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            out.read_to_string(&mut rest)?;
        }
        self.child.wait()?;
        Ok(rest.trim().to_string())
    }
}

impl Drop for SimulatorChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--serve-simulator") {
        return serve_simulator();
    }
    let rate = number_arg(&args, "--rate", 2000.0)?;
    let seconds = number_arg(&args, "--seconds", 20.0)?;
    let duration = Duration::from_secs_f64(seconds);

    // Rates are per hour of the run: rate images/s = studies_per_hour / 3600 x images.
    let studies_per_hour = rate * 3600.0 / f64::from(IMAGES_PER_STUDY);
    let profile_with_seed = |seed: u64| {
        let toml = format!(
            r#"
            [run]
            seed = {seed}

            [[modality]]
            name = "CT"
            modality = "CT"
            calling_ae_titles = ["CT_1", "CT_2", "CT_3", "CT_4"]
            studies_per_hour = {studies_per_hour}
            images_per_series = {IMAGES_PER_STUDY}
            image_interval_ms = {IMAGE_INTERVAL_MS}
            geometry = {{ rows = 64, columns = 64 }}
            "#
        );
        workload::Profile::from_toml_str(&toml, "profile_bench.toml")
    };
    // The Poisson draw of one seed may offer a few % less or more: take the seed of
    // 1..=32 whose schedule offers the closest to `rate`.
    let mut best: Option<(u64, f64)> = None;
    for seed in 1..=32 {
        let offered = profile_with_seed(seed)?
            .schedule(duration)
            .summary()
            .total()
            .offered_images_per_second;
        if best.is_none_or(|(_, b)| (offered - rate).abs() < (b - rate).abs()) {
            best = Some((seed, offered));
        }
    }
    let seed = best.map_or(1, |(seed, _)| seed);
    let profile = profile_with_seed(seed)?;

    let simulator = SimulatorChild::start()?;
    let port = simulator.port.to_string();
    let config = config::TestConfig::from_map([
        ("COMPASS_HOST", "127.0.0.1"),
        ("COMPASS_PORT", port.as_str()),
        ("COMPASS_AE_TITLE", "LB-HTM-GI"),
        ("LOAD_CONCURRENCY", &CONCURRENCY.to_string()),
    ])?;
    let planned = campaign::profile::profile_plan(
        &config,
        &profile,
        Some(duration),
        Path::new("profile_bench.toml"),
    )?;
    let sender = sender::DicomSender::new(campaign::options::sender::sender_options(&config)?)?;

    let summary = planned.schedule.summary();
    let total = summary.total();
    let intended = planned.schedule.intended_times();
    let (first, last) = (
        intended.first().copied().unwrap_or_default(),
        intended.last().copied().unwrap_or_default(),
    );
    let intended_rate = (intended.len().saturating_sub(1)) as f64 / (last - first).as_secs_f64();

    let cpu_before = cpu_seconds("self")?;
    let child_cpu_before = cpu_seconds(&simulator.child.id().to_string())?;
    let started = Instant::now();
    let report = sender::run_load(&sender, &planned.plan, &sender::NoObserver)?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self")? - cpu_before;
    let child_cpu = cpu_seconds(&simulator.child.id().to_string())? - child_cpu_before;
    let simulator_said = simulator.finish()?;

    let m = &report.metrics;
    let c = &m.counts;
    let achieved = report.achieved_send_rate.unwrap_or(0.0);
    let deviation = 100.0 * (achieved - intended_rate) / intended_rate;
    let cores = cpu / wall;
    println!(
        "profile run: {seconds:.0} s, 1 CT group, {IMAGES_PER_STUDY}-image studies {IMAGE_INTERVAL_MS} ms apart, 64 x 64 16-bit images, studies_per_hour {studies_per_hour:.0}, seed {seed}, concurrency {CONCURRENCY}; simulator (load mode) in a child process"
    );
    print!("schedule:\n{summary}");
    println!(
        "offered {:.1} images/s ({} images / {seconds:.0} s); intended send times {:.3} s to {:.3} s = {intended_rate:.1}/s",
        total.offered_images_per_second,
        total.images,
        first.as_secs_f64(),
        last.as_secs_f64()
    );
    println!(
        "sent: {} attempted of {} planned, {} ok, {} failed, {} unknown; {} associations opened; run {wall:.2} s",
        c.attempted,
        intended.len(),
        c.succeeded + c.warnings,
        c.failed,
        c.unknown,
        report.associations.opened
    );
    for e in m.errors.iter().take(3) {
        println!("  error x{}: {}", e.count, e.message);
    }
    let summary_of = |l: Option<metrics::LatencySummary>| {
        l.map_or_else(
            || "n/a".to_string(),
            |l| {
                format!(
                    "p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                    l.p50_ms, l.p99_ms, l.max_ms
                )
            },
        )
    };
    println!("latency from intended time: {}", summary_of(m.latency_ms));
    println!(
        "service time from actual start: {}",
        summary_of(m.service_time_ms)
    );
    if let (Some(l), Some(s)) = (m.latency_ms, m.service_time_ms) {
        println!(
            "lateness (latency - service time): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms (difference of distributions)",
            l.p50_ms - s.p50_ms,
            l.p99_ms - s.p99_ms,
            l.max_ms - s.max_ms
        );
    }
    println!(
        "generator lag (data set not ready): {} sends, {}",
        report.generator.lagged_sends,
        summary_of(report.generator.lag_ms)
    );
    println!(
        "achieved send rate {achieved:.1}/s vs intended {intended_rate:.1}/s: {deviation:+.3} % (goal within {GOAL_ACCURACY_PERCENT} %: {})",
        if deviation.abs() <= GOAL_ACCURACY_PERCENT && c.attempted == intended.len() as u64 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "generator CPU (this process, simulator excluded): {cpu:.2} s over {wall:.2} s = {cores:.3} cores (goal under {GOAL_CORES}: {}); simulator child: {child_cpu:.2} s = {:.3} cores",
        if cores < GOAL_CORES { "met" } else { "NOT met" },
        child_cpu / wall
    );
    println!("{simulator_said}");
    Ok(())
}
