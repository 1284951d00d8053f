//! `dicom-auto run`: a whole campaign from the configuration.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sender::{LoadObserver, LoadProgress};

use crate::CHECKS_FAILED;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// No progress bar (for CI logs).
    #[arg(long)]
    quiet: bool,
    /// One shard of a run split across processes or machines: `--shard I/N` sends
    /// the whole campaign's sends I, I+N, ... (rate/N); `--shard-out DIR` leaves
    /// what `dicom-auto merge` adds up.
    #[command(flatten)]
    shard: sender::cli::ShardArgs,
    /// Send the traffic of a workload profile (TOML: modalities, study shapes, AE
    /// titles, Poisson arrivals per hour, a daily curve, bursts; see
    /// profiles/hospital-day.toml) instead of cycling DICOM_ROOT_DIR at a constant rate:
    /// each study on its own association under its modality's AE title.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["shard", "start_at", "shard_out"])]
    profile: Option<std::path::PathBuf>,
    /// With --profile: the run's length in seconds (the daily curve is compressed into
    /// it); default the profile's duration_seconds, else TEST_DURATION_SECONDS.
    #[arg(long, value_name = "SECONDS", requires = "profile")]
    profile_seconds: Option<f64>,
}

/// Shows a load run's progress on stderr.
struct Progress {
    bar: ProgressBar,
}

impl LoadObserver for Progress {
    fn on_progress(&self, progress: &LoadProgress) {
        if let Some(planned) = progress.planned {
            self.bar.set_length(planned);
        }
        self.bar.set_position(progress.attempted);
        let p95 = progress
            .p95_latency_ms
            .map_or_else(|| "-".into(), |p| format!("{p:.1} ms"));
        self.bar.set_message(format!(
            "{:.0}/s, p95 {p95}, {} failed, {} unknown, {} associations",
            progress.current_rate, progress.failed, progress.unknown, progress.open_associations
        ));
    }
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let config = crate::configuration()?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {pos} sent  {msg}")
                .expect("a valid progress template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    eprintln!(
        "dicom-auto: {} s at {:.1} images/s to {}",
        config.load.duration.as_secs(),
        config.load.target_rate(),
        if config.endpoint.target.is_embedded() {
            "the embedded simulator".to_string()
        } else {
            config.endpoint.address()
        }
    );
    let progress = Progress { bar };
    let outcome = match &args.profile {
        Some(path) => {
            let duration = args
                .profile_seconds
                .map(|s| {
                    Duration::try_from_secs_f64(s)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "--profile-seconds {s}: expected a number of seconds above zero"
                            )
                        })
                })
                .transpose()?;
            campaign::run_profile(&config, path, duration, &progress)
        }
        None => campaign::run_with(&config, &progress, &|plan| args.shard.apply(plan)),
    };
    progress.bar.finish_and_clear();
    let run = outcome?;

    println!("target      {}", run.target);
    if let Some(shard) = run.load.shard {
        println!("shard       {shard} (of the whole run: this process's part alone is judged)");
    }
    if let Some(dir) = args.shard.write(&run.load)? {
        println!("shard out   {}", dir.display());
    }
    for (path, reason) in &run.skipped {
        println!("skipped     {}: {reason}", path.display());
    }
    // The sender's own table: target vs achieved send rate and service time sit beside the
    // latency, so what the generator itself cost is never read as the router's figure.
    print!("{}", sender::cli::SummaryTable(&run.load));
    for figure in campaign::profile::group_figures(&run.load) {
        println!("group       {}: {}", figure.label, figure.value);
    }
    if let Some(delivery) = &run.delivery {
        for figure in campaign::delivery::delivery_figures(delivery) {
            println!("sink        {}: {}", figure.label, figure.value);
        }
    }
    if let Some(commitment) = &run.commitment {
        for figure in campaign::commitment::commitment_figures(commitment) {
            println!("archive     {}: {}", figure.label, figure.value);
        }
    }
    if let Some(retrieval) = &run.retrieval {
        for figure in campaign::retrieval::retrieval_figures(retrieval) {
            println!("archive     {}: {}", figure.label, figure.value);
        }
    }
    for check in &run.checks {
        let mark = if check.passed { "pass" } else { "FAIL" };
        println!("{mark}        {}: {}", check.name, check.message);
    }
    println!(
        "reports     {}, {}, {}",
        run.paths.html.display(),
        run.paths.json.display(),
        run.paths.junit.display()
    );
    Ok(if run.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECKS_FAILED)
    })
}
