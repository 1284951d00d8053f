//! `dicom-auto`: load-test and verify a DICOM router from the shell.
//!
//! Every subcommand reads the same configuration as the test suite (`.env` in the
//! current folder or the workspace root, overridden by the environment; see
//! `.env.example`). With no `COMPASS_HOST`, the router is the embedded simulator.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod archive;
mod capacity;
mod commit;
mod merge;
mod retrieve;
mod run;
mod sent_load;
mod sink;
mod verify;

/// Exit status when the command could not run (configuration, unreachable router,
/// unreadable input): nothing was judged.
const CANNOT_RUN: u8 = 2;
/// Exit status when the run happened and a check failed.
const CHECKS_FAILED: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "dicom-auto",
    version,
    about = "Load-test and verify a DICOM router (Laurel Bridge Compass or any C-STORE SCP)",
    after_help = "Configuration: .env and the environment (see .env.example); with no COMPASS_HOST \
                  the router is the embedded simulator.\n\nExamples:\n  \
                  dicom-auto run                       # load, verify by C-FIND, write test_report.*\n  \
                  dicom-auto capacity --start-rate 50 --bisect 3   # the highest sustained rate\n  \
                  dicom-auto echo                      # is the router there?\n  \
                  dicom-auto load dicom_samples --rate 100 --duration 30 --reuid --json load.json\n  \
                  dicom-auto verify load.json          # is all of it at the destination?\n  \
                  dicom-auto merge a.json b.json       # one exact snapshot of several runs\n  \
                  dicom-auto load dicom_samples --rate 300 --duration 60 --reuid --shard 0/3 \
                  --start-at 2026-12-04T10:00:00Z --shard-out shard-0   # one of three machines\n  \
                  dicom-auto merge shard-0 shard-1 shard-2 --verify   # add the shards up, verify once\n  \
                  dicom-auto find study 2.25.123       # is it at the destination?\n  \
                  dicom-auto retrieve --get --study 2.25.123 --out back/   # get it back\n  \
                  dicom-auto commit --study 2.25.123 --listen-port 11114   # does the archive keep it?\n  \
                  dicom-auto tags --dry-run --new-uids --today dicom_samples/\n  \
                  dicom-auto simulate --port 11112     # the embedded router on its own\n  \
                  dicom-auto sink --port 11113 --idle-exit 10   # a destination stand-in"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// C-ECHO, store files, or drive a load run (storescu-style), to the configured
    /// router and route unless HOST PORT and the AE options say otherwise.
    #[command(flatten)]
    Send(sender::cli::Action),
    /// A whole campaign: load at PEAK_IMAGES_PER_SECOND x LOAD_MULTIPLIER for
    /// TEST_DURATION_SECONDS, verify every delivered study by C-FIND, judge
    /// MAX_ERROR_RATE and MAX_P95_LATENCY_MS, write test_report.html/.json/.xml.
    Run(run::RunArgs),
    /// The highest rate the router sustains: step the offered rate (open loop, a
    /// warm-up before each step) until a step's p95 latency or error rate crosses
    /// MAX_P95_LATENCY_MS or MAX_ERROR_RATE, optionally bisect; print the steps, write
    /// test_report.html/.json/.xml with the curve.
    Capacity(capacity::CapacityArgs),
    /// Verify by C-FIND that every study a load delivered to (its --json) is at the
    /// destination, complete.
    Verify(verify::VerifyArgs),
    /// Query the C-FIND peer (CFIND_HOST/PORT/AE_TITLE, else the router): ping, study,
    /// patient, today, dates, modality, series, images, wait.
    Find(cfind::cli::Args),
    /// Edit DICOM attributes across a folder in place (atomic writes; --dry-run writes
    /// nothing): refresh a sample set before a campaign.
    Tags(tagutil::cli::UpdateArgs),
    /// De-identify a folder into another with the PS3.15 Basic Profile.
    Anonymize(tagutil::cli::AnonymizeArgs),
    /// Run the embedded router on its own (real DICOM over TCP, routing by called AE
    /// title, tag morphing, validation, fault injection) until Ctrl-C.
    Simulate(simulator::cli::Args),
    /// The destination sink on its own: a storage SCP standing in for the PACS the
    /// router delivers to (SINK_BIND:SINK_PORT, SINK_AE_TITLE), counting what arrives,
    /// repeated copies and data sets that do not parse.
    Sink(sink::SinkArgs),
    /// Get studies back from the destination archive (CFIND_HOST/PORT/AE_TITLE) by
    /// C-MOVE (--move-to AE) or C-GET (--get), and check that everything came back:
    /// sub-operation counts, failed instances, anomalies; with --load, against what
    /// a load sent.
    Retrieve(retrieve::RetrieveArgs),
    /// Ask the destination archive (the C-FIND peer) to commit instances by Storage
    /// Commitment: of DICOM files, of a --study as it lists them, or of every study
    /// of a load's --load JSON; the report awaited at SINK_BIND:COMMIT_PORT.
    Commit(commit::CommitArgs),
    /// Merge the metrics snapshots of several runs (or generator machines) exactly:
    /// counts and histograms are added, percentiles recomputed; shard folders
    /// (--shard-out) also have their interval logs checked and study records united,
    /// and --verify verifies the union by C-FIND once.
    Merge(merge::MergeArgs),
}

/// The configuration, or why it cannot be used.
fn configuration() -> anyhow::Result<config::TestConfig> {
    use anyhow::Context;
    config::TestConfig::from_env().context("reading the configuration (.env and the environment)")
}

fn find(args: &cfind::cli::Args) -> anyhow::Result<ExitCode> {
    let config = configuration()?;
    let defaults = campaign::options::cfind::cfind_client_builder(&config)?;
    let mut out = std::io::stdout().lock();
    Ok(match cfind::cli::run(args, defaults, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dicom-auto find: {error:#}");
            ExitCode::from(CHECKS_FAILED)
        }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Capacity(args) => capacity::capacity(&args),
        Command::Send(action) => configuration().and_then(|config| {
            sender::cli::run(action, &campaign::options::sender::cli_defaults(&config)?)
        }),
        Command::Merge(args) => merge::merge(&args),
        Command::Sink(args) => sink::sink(&args),
        Command::Retrieve(args) => retrieve::retrieve(&args),
        Command::Commit(args) => commit::commit(&args),
        Command::Simulate(args) => simulator::cli::run(args),
        Command::Tags(args) => Ok(tagutil::cli::exit_code(tagutil::cli::run_update(&args))),
        Command::Anonymize(args) => Ok(tagutil::cli::exit_code(tagutil::cli::run_anonymize(&args))),
        Command::Find(args) => find(&args),
        Command::Verify(args) => verify::verify(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("dicom-auto: {error:#}");
            ExitCode::from(CANNOT_RUN)
        }
    }
}
