//! The `sender` command line, as a library module so that another command (the
//! `dicom-auto` command, with defaults from the configuration) can offer the same
//! subcommands without defining a flag twice.
//!
//! ```text
//! sender echo [HOST PORT]
//! sender store [HOST PORT] PATH...
//! sender load [HOST PORT] PATH... [--rate N] [--concurrency N] [--duration S | --count N]
//!             [--shard I/N] [--start-at TIME] [--shard-out DIR]
//! ```
//!
//! What the command line leaves out (HOST, PORT, AE titles, timeouts, maximum PDU
//! length, association strategy) comes from [`Defaults`]: built in for the `sender`
//! binary ([`Defaults::default`]), read from `.env` by whoever embeds it. Exit status:
//! 0 when every send was delivered, 1 when any failed or is unknown; [`run`]'s error
//! (bad arguments, setup) is meant to exit with 2.
//!
//! This module is the one part of the crate that prints: it is the user interface.

mod shard;
mod summary;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use dimse::{AeTitle, PeerAddress, Timeouts};
use indicatif::{ProgressBar, ProgressStyle};

pub use shard::{HLOG_FILE, METRICS_FILE, STUDIES_FILE, ShardArgs, write_shard_outputs};
pub use summary::{SummaryTable, peak_rss_bytes, write_json};

use crate::{
    AssociationStrategy, DEFAULT_CALLED_AE_TITLE, DEFAULT_CALLING_AE_TITLE, DicomSender, LoadPlan,
    LoadProgress, SenderOptions, StopAfter, StudyLayout, UidStrategy, prepare_paths, run_load,
};

/// What the command line falls back to for whatever it leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// The peer when HOST and PORT are left out.
    pub peer: PeerAddress,
    /// Our AE title when `--aet` is left out.
    pub calling_ae_title: AeTitle,
    /// The peer's AE title when `--aec` is left out.
    pub called_ae_title: AeTitle,
    /// Every wait (`--dimse-timeout` overrides the DIMSE one).
    pub timeouts: Timeouts,
    /// The largest PDU we accept.
    pub max_pdu_length: u32,
    /// How associations are used when `--association` is left out.
    pub association: AssociationStrategy,
    /// Stores per association when `--max-ops` is left out (`None`: no limit).
    pub max_ops_per_association: Option<NonZeroU32>,
    /// TLS and user identity of every association.
    pub security: dimse::Security,
    /// Acknowledge at once (TCP_QUICKACK); see [`SenderOptions::quick_ack`].
    pub quick_ack: bool,
    /// Bytes of data sets a load holds in memory when `--memory-budget` is left out.
    pub memory_budget: u64,
}

impl Default for Defaults {
    /// `DICOM-AUTO` calling `ANY-SCP` at 127.0.0.1:11112, the association defaults
    /// ([`Timeouts::DEFAULT`], [`dimse::DEFAULT_MAX_PDU_LENGTH`]), persistent
    /// associations without a limit.
    fn default() -> Self {
        Defaults {
            peer: PeerAddress::new("127.0.0.1", 11112),
            calling_ae_title: AeTitle::new(DEFAULT_CALLING_AE_TITLE).expect("a valid AE title"),
            called_ae_title: AeTitle::new(DEFAULT_CALLED_AE_TITLE).expect("a valid AE title"),
            timeouts: Timeouts::DEFAULT,
            max_pdu_length: dimse::DEFAULT_MAX_PDU_LENGTH,
            association: AssociationStrategy::Persistent,
            max_ops_per_association: None,
            security: dimse::Security::default(),
            quick_ack: true,
            memory_budget: crate::DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// The `sender` command: one of its [`Action`]s.
#[derive(Parser, Debug)]
#[command(
    name = "sender",
    version,
    about = "DICOM C-ECHO, C-STORE and load runs"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Action,
}

/// The subcommands, ready to be flattened into another command.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// C-ECHO: is the peer there, and how fast does it answer?
    Echo(EchoArgs),
    /// Store files (each once, one association), then print the summary.
    Store(SendArgs),
    /// Load run: send files at a rate or as fast as possible, for a time or a count.
    Load(SendArgs),
}

/// `echo`'s arguments.
#[derive(Args, Debug)]
pub struct EchoArgs {
    /// [HOST PORT]; the default peer when left out.
    #[arg(value_name = "HOST PORT")]
    args: Vec<String>,
    /// Number of C-ECHOs (each on its own association).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    #[command(flatten)]
    peer: PeerArgs,
}

/// `store`'s and `load`'s arguments.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// [HOST PORT] PATH...: files or folders (walked recursively, non-DICOM skipped).
    #[arg(value_name = "[HOST PORT] PATH", required = true)]
    args: Vec<String>,
    #[command(flatten)]
    peer: PeerArgs,
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    shard: ShardArgs,
}

#[derive(Args, Debug)]
struct PeerArgs {
    /// Calling AE title (ours); the default one when left out.
    #[arg(long)]
    aet: Option<String>,
    /// Called AE title (the peer's); the default one when left out.
    #[arg(long)]
    aec: Option<String>,
    /// DIMSE response timeout in seconds; the default one when left out.
    #[arg(long, value_name = "SECONDS")]
    dimse_timeout: Option<f64>,
    #[command(flatten)]
    security: dimse::cli::SecurityArgs,
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
    /// How associations are used (default: the default strategy, persistent).
    #[arg(long, value_enum)]
    association: Option<Strategy>,
    /// Release and reopen an association after this many stores.
    #[arg(long)]
    max_ops: Option<NonZeroU32>,
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
    /// Memory for data sets (e.g. 512MiB, 2GiB): a larger set is streamed from disk
    /// (default 512MiB, or LOAD_MEMORY_BUDGET with dicom-auto).
    #[arg(long, value_name = "SIZE")]
    memory_budget: Option<crate::ByteSize>,
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

/// Runs one subcommand, printing what it found, and says how the process should exit.
///
/// # Errors
/// Bad arguments, unreadable paths, an unusable plan: a setup error, for exit status 2.
pub fn run(action: Action, defaults: &Defaults) -> Result<ExitCode> {
    match action {
        Action::Echo(a) => echo(&a, defaults),
        Action::Store(a) => send(&a, defaults, 1),
        Action::Load(a) => send(&a, defaults, 8),
    }
}

fn echo(a: &EchoArgs, defaults: &Defaults) -> Result<ExitCode> {
    let (peer, rest) = split_peer(&a.args, defaults)?;
    if !rest.is_empty() {
        bail!("echo takes at most HOST and PORT, got {:?}", a.args);
    }
    let sender = sender_for(peer, &a.peer, defaults)?;
    let options = sender.options();
    let mut failures = 0;
    for _ in 0..a.repeat {
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

/// `[HOST PORT] REST...`: HOST and PORT are taken from the arguments when the second
/// is a port number and the first is not an existing path.
fn split_peer<'a>(args: &'a [String], defaults: &Defaults) -> Result<(PeerAddress, &'a [String])> {
    if args.len() >= 2
        && let Ok(port) = args[1].parse::<u16>()
        && !Path::new(&args[0]).exists()
    {
        return Ok((PeerAddress::new(args[0].as_str(), port), &args[2..]));
    }
    Ok((defaults.peer.clone(), args))
}

fn sender_for(peer: PeerAddress, args: &PeerArgs, defaults: &Defaults) -> Result<DicomSender> {
    let mut options = SenderOptions::for_peer(peer)
        .calling_ae_title(
            args.aet
                .as_deref()
                .unwrap_or(defaults.calling_ae_title.as_str()),
        )
        .called_ae_title(
            args.aec
                .as_deref()
                .unwrap_or(defaults.called_ae_title.as_str()),
        )
        .timeouts(defaults.timeouts)
        .max_pdu_length(defaults.max_pdu_length)
        .security(args.security.apply(&defaults.security)?)
        .quick_ack(defaults.quick_ack);
    if let Some(seconds) = args.dimse_timeout {
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

fn send(a: &SendArgs, defaults: &Defaults, default_workers: usize) -> Result<ExitCode> {
    let (peer, paths) = split_peer(&a.args, defaults)?;
    if paths.is_empty() {
        bail!("no PATH given: name DICOM files or folders to send");
    }
    let sender = sender_for(peer, &a.peer, defaults)?;
    let load = &a.load;
    let uids = if load.reuid {
        UidStrategy::Fresh
    } else {
        UidStrategy::AsIs
    };
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    let prepared = prepare_paths(&paths, uids)?;
    for (path, reason) in &prepared.skipped {
        eprintln!("skipped {}: {reason}", path.display());
    }
    let instances = prepared.instances;
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
    let plan = LoadPlan::new(instances)
        .rate(load.rate)
        .ramp_up(Duration::try_from_secs_f64(load.ramp_up).context("--ramp-up: expected seconds")?)
        .concurrency(load.concurrency.unwrap_or(default_workers))
        .stop_after(stop)
        .association(load.association.map_or(defaults.association, Into::into))
        .max_ops_per_association(load.max_ops.or(defaults.max_ops_per_association))
        .study_layout(StudyLayout::limits(load.series_size, load.series_per_study))
        .memory_budget(
            load.memory_budget
                .map_or(defaults.memory_budget, crate::ByteSize::bytes),
        );
    let plan = a.shard.apply(plan);

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
        bar.set_length(p.planned.unwrap_or(p.attempted));
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

    print!("{}", SummaryTable(&report));
    if let Some(path) = &load.json {
        write_json(path, &report)?;
        eprintln!("JSON written to {}", path.display());
    }
    if let Some(dir) = a.shard.write(&report)? {
        eprintln!(
            "shard {} written to {} ({METRICS_FILE}, {HLOG_FILE}, {STUDIES_FILE})",
            report.shard.unwrap_or_default(),
            dir.display()
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_taken_only_when_the_second_is_a_port() {
        let defaults = Defaults::default();
        let args = ["10.0.0.5".to_string(), "104".to_string(), "x".to_string()];
        let (peer, rest) = split_peer(&args, &defaults).unwrap();
        assert_eq!(peer, PeerAddress::new("10.0.0.5", 104));
        assert_eq!(rest, &args[2..]);
        let args = ["files".to_string()];
        let (peer, rest) = split_peer(&args, &defaults).unwrap();
        assert_eq!(peer, defaults.peer);
        assert_eq!(rest, &args[..]);
    }

    #[test]
    fn flags_override_the_defaults_and_the_rest_comes_from_them() {
        let defaults = Defaults {
            max_pdu_length: 32_768,
            ..Defaults::default()
        };
        let args = PeerArgs {
            aet: None,
            aec: Some("ROUTER".into()),
            dimse_timeout: Some(3.0),
            security: dimse::cli::SecurityArgs::default(),
        };
        let sender = sender_for(defaults.peer.clone(), &args, &defaults).unwrap();
        let options = sender.options();
        assert_eq!(options.called_ae().as_str(), "ROUTER");
        assert_eq!(options.calling_ae(), &defaults.calling_ae_title);
        assert_eq!(options.current_timeouts().dimse, Duration::from_secs(3));
        assert_eq!(options.current_timeouts().acse, defaults.timeouts.acse);
        assert_eq!(options.current_max_pdu_length(), 32_768);
    }
}
