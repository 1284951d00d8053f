//! Measures what recording costs a sender's worker threads, in nanoseconds per sample.
//!
//! Two threads, each with its own `Recorder`, record synthetic samples as load workers
//! would: latencies from 0.3 to 33 ms so that ends arrive slightly out of order around
//! second boundaries, all successes or 1 % failures carrying an error text. Simulated time
//! runs at 5,000 sends/s per thread (the per-second flush, which compresses the second's
//! histogram, is then shared by 5,000 samples) and at 1,000,000 sends/s (the flush vanishes:
//! what remains is the cost on the hot path). Each thread times its loop once only building samples and once
//! building and recording them (including its final flush); the difference per sample is the
//! recording cost. Time is the thread's own CPU time (from `/proc/thread-self/schedstat`,
//! wall time where that is missing), so other processes on a shared machine do not inflate it.
//!
//! ```text
//! cargo run --release -p metrics --example record_bench [-- SAMPLES_PER_THREAD]
//! ```

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use metrics::{Outcome, PerfMetrics, Recorder, Sample};

const THREADS: usize = 2;

/// Send `i` of a worker sending `rate` per second (simulated time).
fn synthetic_sample(start: Instant, i: u64, rate: u64, failure_every: u64) -> Sample {
    let intended = start + Duration::from_nanos(i * 1_000_000_000 / rate);
    // A spread of latencies from 0.3 ms to about 33 ms, no two neighbours alike.
    let service_us = 300 + (i.wrapping_mul(2_654_435_761) % 32_768);
    let actual = intended + Duration::from_micros(i % 97);
    let end = actual + Duration::from_micros(service_us);
    if failure_every > 0 && i.is_multiple_of(failure_every) {
        Sample::new(intended, actual, end, Outcome::Failure)
            .with_status(0xA700)
            .with_bytes(52_000)
            .with_error("C-STORE refused: A700 out of resources")
    } else {
        Sample::new(intended, actual, end, Outcome::Success)
            .with_status(0x0000)
            .with_bytes(52_000)
    }
}

/// CPU time this thread has run, or `None` where the kernel does not say.
fn thread_cpu_time() -> Option<Duration> {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Time spent by one thread in `work`: its CPU time where available, else wall time.
fn timed(work: impl FnOnce()) -> Duration {
    let (cpu, wall) = (thread_cpu_time(), Instant::now());
    work();
    match (cpu, thread_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => wall.elapsed(),
    }
}

/// Runs `THREADS` workers over `per_thread` samples; returns the time each thread spent.
fn run(
    per_thread: u64,
    rate: u64,
    failure_every: u64,
    metrics: Option<&PerfMetrics>,
) -> anyhow::Result<Vec<Duration>> {
    let start = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let recorder: Option<Recorder> = metrics.map(PerfMetrics::recorder);
            thread::spawn(move || {
                timed(|| {
                    let mut recorder = recorder;
                    for i in 0..per_thread {
                        let sample = synthetic_sample(start, i, rate, failure_every);
                        match recorder.as_mut() {
                            Some(recorder) => recorder.record(sample),
                            None => drop(black_box(sample)),
                        }
                    }
                    // The last flush is part of the cost.
                    drop(recorder);
                })
            })
        })
        .collect();
    workers
        .into_iter()
        .map(|worker| {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))
        })
        .collect()
}

fn mean_ns_per_sample(times: &[Duration], per_thread: u64) -> f64 {
    let total: Duration = times.iter().sum();
    total.as_nanos() as f64 / times.len() as f64 / per_thread as f64
}

fn main() -> anyhow::Result<()> {
    let per_thread: u64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .with_context(|| format!("SAMPLES_PER_THREAD must be a number, got {arg:?}"))?,
        None => 2_000_000,
    };
    let clock = if thread_cpu_time().is_some() {
        "thread CPU time"
    } else {
        "wall time"
    };
    println!("{THREADS} threads x {per_thread} samples, timed by {clock}, best of 3");

    for (label, rate, failure_every) in [
        ("5k/s, all success", 5_000, 0),
        ("5k/s, 1 % failures", 5_000, 100),
        ("1M/s, all success", 1_000_000, 0),
        ("1M/s, 1 % failures", 1_000_000, 100),
    ] {
        run(
            per_thread / 10,
            rate,
            failure_every,
            Some(&PerfMetrics::new()),
        )?;
        let mut baseline = f64::INFINITY;
        let mut with_recording = f64::INFINITY;
        let mut last = None;
        for _ in 0..3 {
            baseline = baseline.min(mean_ns_per_sample(
                &run(per_thread, rate, failure_every, None)?,
                per_thread,
            ));
            let metrics = PerfMetrics::new();
            let times = run(per_thread, rate, failure_every, Some(&metrics))?;
            with_recording = with_recording.min(mean_ns_per_sample(&times, per_thread));
            last = Some(metrics);
        }
        let metrics = last.context("three runs were made")?;
        let total = per_thread * THREADS as u64;
        let counts = metrics.counts();
        anyhow::ensure!(
            counts.attempted == total,
            "recorded {} of {total} samples",
            counts.attempted
        );
        anyhow::ensure!(
            metrics.latency_histogram().len() == total,
            "latency histogram holds {} of {total} samples",
            metrics.latency_histogram().len()
        );
        println!(
            "{label:>20}: recording costs {:.1} ns/sample on each worker thread \
             (building + recording {with_recording:.1} ns, building only {baseline:.1} ns); \
             p95 {:.3} ms, error rate {:.4}",
            with_recording - baseline,
            metrics.p95_latency_ms().unwrap_or(f64::NAN),
            metrics.error_rate().unwrap_or(f64::NAN),
        );
    }
    Ok(())
}
