//! `sender`: C-ECHO, C-STORE and load runs from the command line, in the style of
//! DCMTK's storescu.
//!
//! ```text
//! sender echo [HOST PORT]
//! sender store [HOST PORT] PATH...
//! sender load [HOST PORT] PATH... [--rate N] [--concurrency N] [--duration S | --count N]
//! ```
//!
//! HOST, PORT and the AE titles fall back to the configuration (`.env`, see the config
//! crate) when left out. Exit status: 0 when every send was delivered, 1 when any
//! failed or is unknown, 2 for bad arguments or setup errors.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use config::{AssociationStrategy, TestConfig, UidStrategy};
use indicatif::{ProgressBar, ProgressStyle};
use sender::{
    DicomSender, LoadPlan, LoadProgress, LoadReport, SenderOptions, StopAfter, StudyLayout,
    prepare_paths, run_load,
};

#[derive(Parser, Debug)]
#[command(
    name = "sender",
    version,
    about = "DICOM C-ECHO, C-STORE and load runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// C-ECHO: is the peer there, and how fast does it answer?
    Echo {
        /// [HOST PORT]; from the configuration when left out.
        #[arg(value_name = "HOST PORT")]
        args: Vec<String>,
        /// Number of C-ECHOs (each on its own association).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// Store files (each once, one association), then print the summary.
    Store(SendArgs),
    /// Load run: send files at a rate or as fast as possible, for a time or a count.
    Load(SendArgs),
}

#[derive(Args, Debug)]
struct SendArgs {
    /// [HOST PORT] PATH...: files or folders (walked recursively, non-DICOM skipped).
    #[arg(value_name = "[HOST PORT] PATH", required = true)]
    args: Vec<String>,
    #[command(flatten)]
    peer: PeerArgs,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Args, Debug)]
struct PeerArgs {
    /// Calling AE title (ours); default from the configuration.
    #[arg(long)]
    aet: Option<String>,
    /// Called AE title (the peer's); default from the configuration.
    #[arg(long)]
    aec: Option<String>,
    /// DIMSE response timeout in seconds; default from the configuration.
    #[arg(long, value_name = "SECONDS")]
    dimse_timeout: Option<f64>,
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// Target rate in images per second (open loop); without it, as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Linear ramp-up to the target rate, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    ramp_up: f64,
    /// Number of associations sending in parallel (default 1 for store, 8 for load).
    #[arg(long, short = 'c')]
    concurrency: Option<usize>,
    /// Run for this many seconds (sends start within it).
    #[arg(long, value_name = "SECONDS", conflicts_with = "count")]
    duration: Option<f64>,
    /// Send this many images (files cycled).
    #[arg(long)]
    count: Option<u64>,
    /// How associations are used.
    #[arg(long, value_enum, default_value_t = Strategy::Persistent)]
    association: Strategy,
    /// Release and reopen an association after this many stores.
    #[arg(long)]
    max_ops: Option<std::num::NonZeroU32>,
    /// Give every send fresh Study/Series/SOP Instance UIDs: each pass over the files
    /// sends a new copy of every original study (same patient, same series), so no
    /// fresh study mixes patients or original studies.
    #[arg(long)]
    reuid: bool,
    /// With --reuid: cut each original series into fresh series of at most N
    /// instances (default: keep each original series whole).
    #[arg(long, value_name = "N", requires = "reuid")]
    series_size: Option<u64>,
    /// With --reuid: put at most N fresh series in one fresh study, all from the same
    /// original study (default: all series of the original study).
    #[arg(long, value_name = "N", requires = "reuid")]
    series_per_study: Option<u64>,
    /// Write the summary and full metrics as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Strategy {
    PerImage,
    PerStudy,
    Persistent,
}

impl From<Strategy> for AssociationStrategy {
    fn from(s: Strategy) -> Self {
        match s {
            Strategy::PerImage => AssociationStrategy::PerImage,
            Strategy::PerStudy => AssociationStrategy::PerStudy,
            Strategy::Persistent => AssociationStrategy::Persistent,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let config =
        TestConfig::from_env().context("reading the configuration (.env and environment)")?;
    match cli.command {
        Action::Echo { args, repeat, peer } => {
            let (address, rest) = split_peer(&args, &config)?;
            if !rest.is_empty() {
                bail!("echo takes at most HOST and PORT, got {args:?}");
            }
            let sender = sender_for(&config, address, &peer)?;
            let options = sender.options();
            let mut failures = 0;
            for _ in 0..repeat {
                match sender.ping() {
                    Ok(echo) => println!(
                        "C-ECHO {} -> {}@{}: {} in {:.3} ms (association {:.3} ms)",
                        options.calling_ae(),
                        options.called_ae(),
                        options.address(),
                        echo.status,
                        ms(echo.round_trip),
                        ms(echo.association_time)
                    ),
                    Err(e) => {
                        failures += 1;
                        println!(
                            "C-ECHO {}@{} failed: {e}",
                            options.called_ae(),
                            options.address()
                        );
                    }
                }
            }
            Ok(if failures == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Action::Store(a) => send(&config, &a.args, &a.peer, &a.load, 1),
        Action::Load(a) => send(&config, &a.args, &a.peer, &a.load, 8),
    }
}

/// `[HOST PORT] REST...`: HOST and PORT are taken from the arguments when the second
/// is a port number and the first is not an existing path.
fn split_peer<'a>(args: &'a [String], config: &TestConfig) -> Result<(String, &'a [String])> {
    if args.len() >= 2 && args[1].parse::<u16>().is_ok() && !Path::new(&args[0]).exists() {
        let port: u16 = args[1].parse()?;
        let host = &args[0];
        return Ok((config::socket_text(host, port), &args[2..]));
    }
    Ok((config.endpoint.address(), args))
}

fn sender_for(config: &TestConfig, address: String, peer: &PeerArgs) -> Result<DicomSender> {
    let mut options = SenderOptions::from_config(config);
    options = SenderOptions::new(address)
        .calling_ae_title(
            peer.aet
                .clone()
                .unwrap_or_else(|| options.calling_ae().to_string()),
        )
        .called_ae_title(
            peer.aec
                .clone()
                .unwrap_or_else(|| options.called_ae().to_string()),
        )
        .timeouts(options.current_timeouts())
        .max_pdu_length(config.network.max_pdu_length);
    if let Some(seconds) = peer.dimse_timeout {
        options = options.dimse_timeout(seconds_arg("--dimse-timeout", seconds)?);
    }
    Ok(options.build()?)
}

fn seconds_arg(name: &str, seconds: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{name} {seconds}: expected a positive number of seconds"))
}

fn send(
    config: &TestConfig,
    args: &[String],
    peer: &PeerArgs,
    load: &LoadArgs,
    default_workers: usize,
) -> Result<ExitCode> {
    let (address, paths) = split_peer(args, config)?;
    if paths.is_empty() {
        bail!("no PATH given: name DICOM files or folders to send");
    }
    let sender = sender_for(config, address, peer)?;
    let uids = if load.reuid {
        UidStrategy::Fresh
    } else {
        UidStrategy::AsIs
    };
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let prepared = prepare_paths(&paths, uids)?;
    let instances = prepared.instances;
    for (path, reason) in &prepared.skipped {
        eprintln!("skipped {}: {reason}", path.display());
    }
    if instances.is_empty() {
        bail!("no DICOM file to send under {paths:?}");
    }
    let total_bytes: usize = instances.iter().map(|i| i.encoded_len()).sum();
    eprintln!(
        "{} instances ({:.1} MB) prepared for {}@{}",
        instances.len(),
        total_bytes as f64 / 1e6,
        sender.options().called_ae(),
        sender.options().address()
    );
    let stop = match (load.duration, load.count) {
        (Some(s), _) => StopAfter::Duration(seconds_arg("--duration", s)?),
        (None, Some(n)) => StopAfter::Count(n),
        (None, None) => StopAfter::EachOnce,
    };
    let plan = LoadPlan::new(instances.into_iter().collect::<Vec<Arc<_>>>())
        .rate(load.rate)
        .ramp_up(Duration::try_from_secs_f64(load.ramp_up).context("--ramp-up: expected seconds")?)
        .concurrency(load.concurrency.unwrap_or(default_workers))
        .stop_after(stop)
        .association(load.association.into())
        .max_ops_per_association(load.max_ops)
        .study_layout(StudyLayout::limits(load.series_size, load.series_per_study));

    let bar = if load.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("a valid template"),
    );
    let observer = |p: &LoadProgress| {
        match p.planned {
            Some(n) => bar.set_length(n),
            None => bar.set_length(p.attempted),
        }
        bar.set_position(p.attempted);
        let p95 = p
            .p95_latency_ms
            .map_or("-".to_string(), |v| format!("{v:.1} ms"));
        bar.set_message(format!(
            "{:.0} img/s, errors {}, p95 {p95}, {} associations",
            p.current_rate,
            p.failed + p.unknown,
            p.open_associations
        ));
    };
    let report = run_load(&sender, &plan, &observer)?;
    bar.finish_and_clear();

    print_summary(&report);
    if let Some(path) = &load.json {
        write_json(path, &report)?;
        eprintln!("JSON written to {}", path.display());
    }
    Ok(if report.all_delivered() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_summary(report: &LoadReport) {
    let s = report.summary();
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let mut rows: Vec<(&str, String)> = vec![
        ("attempted", s.attempted.to_string()),
        ("succeeded", s.succeeded.to_string()),
        ("warnings", s.warnings.to_string()),
        ("failed", s.failed.to_string()),
        ("unknown", s.unknown.to_string()),
        ("images_per_s", opt(s.images_per_s, 1)),
        ("mb_per_s", opt(s.mb_per_s, 2)),
    ];
    if let Some(l) = s.latency_ms {
        rows.extend([
            ("latency_ms.p50_ms", format!("{:.3}", l.p50_ms)),
            ("latency_ms.p90_ms", format!("{:.3}", l.p90_ms)),
            ("latency_ms.p95_ms", format!("{:.3}", l.p95_ms)),
            ("latency_ms.p99_ms", format!("{:.3}", l.p99_ms)),
            ("latency_ms.p999_ms", format!("{:.3}", l.p999_ms)),
            ("latency_ms.max_ms", format!("{:.3}", l.max_ms)),
        ]);
    }
    if let Some(l) = s.service_time_ms {
        rows.push(("service_time_ms.p95_ms", format!("{:.3}", l.p95_ms)));
    }
    rows.extend([
        ("target_rate", opt(s.target_rate, 1)),
        ("achieved_send_rate", opt(s.achieved_send_rate, 1)),
        ("elapsed_s", format!("{:.2}", s.elapsed_s)),
        ("concurrency", s.concurrency.to_string()),
        ("association", s.association.as_str().to_string()),
    ]);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for (k, v) in rows {
        let _ = writeln!(out, "{k:<width$}  {v:>12}");
    }
    for e in report.metrics.errors.iter().take(10) {
        let _ = writeln!(out, "error x{}: {}", e.count, e.message);
    }
}

/// The summary at the top level (the table's names) plus associations, studies and the
/// full metrics snapshot; written atomically (temporary file, then rename).
fn write_json(path: &Path, report: &LoadReport) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        summary: sender::LoadSummary,
        associations: &'a sender::AssociationCounts,
        studies: &'a [sender::StudyRecord],
        uid_root: &'a Option<String>,
        metrics: &'a metrics::MetricsSnapshot,
    }
    let out = Out {
        summary: report.summary(),
        associations: &report.associations,
        studies: &report.studies,
        uid_root: &report.uid_root,
        metrics: &report.metrics,
    };
    let json = serde_json::to_vec_pretty(&out)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // NamedTempFile removes itself if anything below fails: no stray temporary file.
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    file.write_all(&json)?;
    // Temporary files are created owner-only; a results file is meant to be shared.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
