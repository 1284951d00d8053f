//! `dicom-auto sink`: the destination sink on its own, as a stand-in for the PACS a
//! router delivers to. It tracks no sends (a sender it does not see made them): it
//! counts what arrives, per second, finds copies of a SOP Instance UID that had
//! already arrived and data sets that do not parse, and says so.
//!
//! `dicom-auto run` starts its own sink with a ledger of every send (`VERIFY_AT`),
//! which also finds what never arrived and what arrived changed.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sink::{Ledger, LedgerOptions, Sink};

use crate::{CHECKS_FAILED, configuration};

/// Options of `dicom-auto sink`; each defaults to its `SINK_*` variable.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Port to listen on (default SINK_PORT; 0 picks a free one, printed at start).
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on (default SINK_BIND, 127.0.0.1).
    #[arg(long)]
    bind: Option<IpAddr>,
    /// AE title the router must call (default SINK_AE_TITLE, DICOM_AUTO_SINK).
    #[arg(long)]
    ae_title: Option<dimse::AeTitle>,
    /// Stop after this many seconds and print the summary (default: until
    /// interrupted; a line per second shows the counts so far).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Stop once nothing has arrived for this many seconds (after a first arrival).
    #[arg(long, value_name = "SECONDS")]
    idle_exit: Option<f64>,
    /// Write the summary (counts, per-second arrivals, problems) as JSON here,
    /// atomically, when the sink stops.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn seconds(value: Option<f64>, flag: &str) -> anyhow::Result<Option<Duration>> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| format!("{flag} {s}: expected a number of seconds above zero"))
        })
        .transpose()
}

/// Runs the sink until `--duration` or `--idle-exit` ends it; exit status 1 when a
/// duplicate or corrupt arrival was seen.
pub fn sink(args: &SinkArgs) -> anyhow::Result<ExitCode> {
    let config = configuration()?;
    let duration = seconds(args.duration, "--duration")?;
    let idle_exit = seconds(args.idle_exit, "--idle-exit")?;
    let settings = &config.sink;
    let bind = SocketAddr::new(
        args.bind.unwrap_or(settings.bind),
        args.port.unwrap_or(settings.port),
    );
    let ae_title = args.ae_title.clone().unwrap_or(settings.ae_title.clone());
    let ledger = Ledger::new(LedgerOptions::new().observe());
    let sink = Sink::start(
        campaign::delivery::sink_options(&config)
            .bind(bind)
            .ae_title(ae_title),
        ledger.clone(),
    )
    .context("starting the sink")?;
    println!(
        "sink        {} listening on {} (point the router's destination here)",
        sink.ae_title(),
        sink.local_addr()
    );
    let started = Instant::now();
    let mut last = (0u64, Instant::now());
    let mut next_line = started + Duration::from_secs(1);
    loop {
        thread::sleep(Duration::from_millis(200).min(duration.unwrap_or(Duration::MAX)));
        let now = Instant::now();
        if duration.is_some_and(|d| now - started >= d) {
            break;
        }
        let stats = sink.stats();
        if stats.stores != last.0 {
            last = (stats.stores, now);
        } else if let Some(idle) = idle_exit
            && stats.stores > 0
            && now - last.1 >= idle
        {
            break;
        }
        if now >= next_line {
            next_line += Duration::from_secs(1);
            println!(
                "{:>6.0} s   {} received, {} MB, {} associations",
                (now - started).as_secs_f64(),
                stats.stores,
                stats.bytes / 1_000_000,
                stats.associations_accepted
            );
        }
    }
    let stats = sink.stats();
    let report = ledger.settle(Duration::from_secs(5));
    sink.shutdown();
    let c = &report.counts;
    println!(
        "received    {} instances ({} copies of an instance already received, {} not parseable), {} associations ({} refused: wrong called AE title {})",
        c.observed,
        c.observed_duplicates,
        c.observed_corrupt,
        stats.associations_accepted,
        stats.refused_called_ae_title + stats.refused_too_many + stats.refused_bad_request,
        stats.refused_called_ae_title
    );
    for problem in report.problems.iter().take(20) {
        println!(
            "problem     {} {}",
            problem.kind.name(),
            problem.sop_instance_uid
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "listener": stats, "delivery": report });
        let text = serde_json::to_string_pretty(&json).context("encoding the summary")?;
        loader::AtomicFile::new(path)
            .write_bytes(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if c.observed_duplicates + c.observed_corrupt == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECKS_FAILED)
    })
}
