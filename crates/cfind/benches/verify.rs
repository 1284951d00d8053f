//! Benchmark: verify 10,000 studies held by the simulator (the embedded router).
//!
//! `cargo bench -p cfind --bench verify` (add `-- 20000` for another study count).
//! Stores one instance per study into the simulator through route LB-HTM-OPH, then
//! times `CFindClient::verify_studies` on its query AE title (LB-QUERY) with the
//! default batch limits (200 UIDs per query), three times, and once with one query per
//! study on a tenth of the studies for comparison (what polling each study costs).
//! The figure is wall time of the whole verification, from the call to the report.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cfind::{BatchLimits, CFindClient, Polling, SentStudy};
use simulator::{Simulator, SimulatorConfig};
use support::archive::ArchiveStudy;
use support::instances::store_into_simulator;

fn main() -> Result<()> {
    let count: usize = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(n) => n
            .parse()
            .context("the study count must be a whole number")?,
        None => 10_000,
    };
    let simulator = Simulator::start(SimulatorConfig::default())?;
    let studies: Vec<ArchiveStudy> = (0..count)
        .map(|n| ArchiveStudy::synthetic(n, 1, 1))
        .collect();
    let started = Instant::now();
    store_into_simulator(simulator.addr(), "LB-HTM-OPH", &studies);
    println!(
        "setup: stored {count} studies (1 instance each) into the simulator in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let last_send = Instant::now();
    let sent: Vec<SentStudy> = studies
        .iter()
        .map(|s| SentStudy::new(&s.study_instance_uid, 1, last_send))
        .collect();
    let client = |port: u16, called: &str, batch: BatchLimits| {
        CFindClient::builder("127.0.0.1", port)
            .called_ae_title(called)
            .calling_ae_title("CFIND-BENCH")
            .polling(Polling {
                initial_delay: Duration::ZERO,
                poll_interval: Duration::from_millis(100),
                timeout: Duration::from_secs(60),
            })
            .batch_limits(batch)
            .build()
    };

    let port = simulator.addr().port();
    let batched = client(port, "LB-QUERY", BatchLimits::default())?;
    println!(
        "simulator: verify_studies, {} UIDs per query, one association:",
        BatchLimits::default().max_uids_per_query
    );
    let median = three_runs(&batched, &sent)?;
    println!("result (simulator): verifying {count} studies took {median:.3} s (median of 3)");

    let tenth = &sent[..count / 10];
    let one_by_one = client(
        port,
        "LB-QUERY",
        BatchLimits {
            max_uids_per_query: 1,
            ..BatchLimits::default()
        },
    )?;
    let report = one_by_one.verify_studies(tenth)?;
    ensure!(
        report.all_complete(),
        "one-by-one run: not every study was verified complete"
    );
    println!(
        "comparison: one query per study, {} studies in {:.3} s ({:.2} ms per query): {:.1} s for {count}",
        tenth.len(),
        report.elapsed.as_secs_f64(),
        report.elapsed.as_secs_f64() * 1000.0 / report.queries as f64,
        report.elapsed.as_secs_f64() * 10.0,
    );
    simulator.shutdown();
    Ok(())
}

/// Verifies `sent` three times; prints each run and returns the median in seconds.
fn three_runs(client: &CFindClient, sent: &[SentStudy]) -> Result<f64> {
    let mut times = Vec::new();
    for run in 1..=3 {
        let report = client.verify_studies(sent)?;
        ensure!(
            report.all_complete(),
            "run {run}: not every study was verified complete"
        );
        println!(
            "  run {run}: {} studies complete in {:.3} s: {} queries, {:.0} studies/s, {:.2} ms per query",
            sent.len(),
            report.elapsed.as_secs_f64(),
            report.queries,
            sent.len() as f64 / report.elapsed.as_secs_f64(),
            report.elapsed.as_secs_f64() * 1000.0 / report.queries as f64,
        );
        times.push(report.elapsed.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[1])
}
