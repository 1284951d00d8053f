//! The flags that make a load run one shard of a larger one ([`ShardArgs`]), and the
//! folder a shard leaves for `dicom-auto merge` ([`write_shard_outputs`]).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::{LoadPlan, LoadReport, Shard, StudyRecord};

/// The metrics snapshot in a shard's folder (what `dicom-auto merge` reads).
pub const METRICS_FILE: &str = "metrics.json";
/// The HdrHistogram interval log in a shard's folder.
pub const HLOG_FILE: &str = "latency.hlog";
/// The study records in a shard's folder (what `dicom-auto verify` reads).
pub const STUDIES_FILE: &str = "studies.json";

/// `--shard`, `--start-at`, `--shard-out`: one part of a run split across processes
/// or machines (see [`Shard`]).
#[derive(Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// Send part I of N of the run (0 <= I < N): the whole run's sends I, I+N, I+2N...
    /// at their times, so --rate, --count and --duration describe the whole run and
    /// this process sends rate/N. Needs --count or --duration.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Start the run's clock at this wall-clock time, the same for every shard: RFC 3339
    /// (2026-12-04T10:00:00Z) or Unix seconds. Sleeps until then; refused when more
    /// than 24 h ahead or passed more than 5 s ago.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at_flag)]
    pub start_at: Option<SystemTime>,
    /// Write metrics.json (snapshot), latency.hlog (HdrHistogram interval log) and
    /// studies.json (study records) into this folder, for `dicom-auto merge`.
    #[arg(long, value_name = "DIR")]
    pub shard_out: Option<PathBuf>,
}

fn parse_start_at_flag(text: &str) -> Result<SystemTime, crate::SenderError> {
    crate::parse_start_at(text)
}

impl ShardArgs {
    /// `plan` as these flags make it: its shard and start instant.
    pub fn apply(&self, plan: LoadPlan) -> LoadPlan {
        plan.shard(self.shard.unwrap_or(Shard::WHOLE))
            .start_at(self.start_at)
    }

    /// Writes the shard's folder when `--shard-out` was given; returns it.
    ///
    /// # Errors
    /// See [`write_shard_outputs`].
    pub fn write(&self, report: &LoadReport) -> Result<Option<&Path>> {
        match &self.shard_out {
            Some(dir) => {
                write_shard_outputs(dir, report)?;
                Ok(Some(dir))
            }
            None => Ok(None),
        }
    }
}

/// What `studies.json` holds: the fields `dicom-auto verify` reads of a load's JSON,
/// with the shard they come from.
#[derive(Debug, serde::Serialize)]
struct ShardStudies<'a> {
    shard: Option<Shard>,
    uid_root: &'a Option<String>,
    studies: &'a [StudyRecord],
}

/// Writes `dir/metrics.json`, `dir/latency.hlog` and `dir/studies.json` for `report`,
/// each atomically (temporary file, then rename), creating `dir`.
///
/// # Errors
/// The folder cannot be made or written, or a histogram cannot be encoded.
pub fn write_shard_outputs(dir: &Path, report: &LoadReport) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        loader::AtomicFile::new(&path)
            .write_bytes(bytes)
            .with_context(|| format!("writing {}", path.display()))
    };
    write(
        METRICS_FILE,
        report
            .metrics
            .to_json()
            .context("encoding the metrics snapshot")?
            .as_bytes(),
    )?;
    write(
        HLOG_FILE,
        &metrics::interval_log::write_interval_log(&report.metrics)
            .context("encoding the interval log")?,
    )?;
    let studies = ShardStudies {
        shard: report.shard,
        uid_root: &report.uid_root,
        studies: &report.studies,
    };
    write(STUDIES_FILE, &serde_json::to_vec_pretty(&studies)?)?;
    Ok(())
}
