//! `dicom-auto merge`: one exact metrics snapshot of several runs, or of the shards of
//! one run (`--shard-out` folders): histograms added (never percentiles averaged),
//! counts summed, interval logs cross-checked, study records united and, with
//! `--verify`, verified once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::sent_load::SentLoad;
use anyhow::{Context, Result, bail};
use clap::Args;
use metrics::MetricsSnapshot;
use metrics::interval_log::{self, LATENCY_TAG, LoggedInterval};
use sender::StudyRecord;
use sender::cli::{HLOG_FILE, METRICS_FILE, STUDIES_FILE};
use serde_json::Value;

use crate::CHECKS_FAILED;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON files holding metrics snapshots: a snapshot itself, a `load --json`
    /// output (its `metrics`), or a test_report.json (every load test's metrics);
    /// shard folders (`--shard-out DIR`: metrics.json, latency.hlog, studies.json);
    /// or HdrHistogram interval logs (.hlog).
    #[arg(required = true, value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    /// Write the merged snapshot here (atomically) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the merged histograms as an HdrHistogram interval log here (atomically).
    #[arg(long, value_name = "FILE")]
    hlog_out: Option<PathBuf>,
    /// Write the union of the study records here (atomically), as `dicom-auto
    /// verify` reads them.
    #[arg(long, value_name = "FILE")]
    studies_out: Option<PathBuf>,
    /// Verify the union of the study records by C-FIND, once (the configured C-FIND
    /// peer, as `dicom-auto verify` does).
    #[arg(long)]
    verify: bool,
}

/// The study records of every input, united by Study Instance UID.
#[derive(Debug, Default)]
struct StudyUnion {
    by_uid: HashMap<String, StudyRecord>,
    order: Vec<String>,
    /// Study Instance UIDs found in more than one input.
    duplicates: Vec<String>,
    /// Any input made fresh UIDs (then a study in two inputs is a collision).
    fresh: bool,
    inputs: usize,
}

impl StudyUnion {
    fn add(&mut self, sent: SentLoad) {
        self.inputs += 1;
        self.fresh |= sent.uid_root.is_some();
        for study in sent.studies {
            match self.by_uid.get_mut(&study.study_instance_uid) {
                // Files sent as they are by several shards: one study, its sends added.
                Some(known) => {
                    known.counts.merge(&study.counts);
                    known.first_sent = known.first_sent.min(study.first_sent);
                    known.last_sent = known.last_sent.max(study.last_sent);
                    self.duplicates.push(study.study_instance_uid);
                }
                None => {
                    self.order.push(study.study_instance_uid.clone());
                    self.by_uid.insert(study.study_instance_uid.clone(), study);
                }
            }
        }
    }

    fn studies(&self) -> Vec<StudyRecord> {
        self.order
            .iter()
            .map(|uid| self.by_uid[uid].clone())
            .collect()
    }
}

pub fn merge(args: &MergeArgs) -> Result<ExitCode> {
    let mut merged = MetricsSnapshot::empty();
    let mut count = 0usize;
    let mut intervals: Vec<LoggedInterval> = Vec::new();
    let mut logs = 0usize;
    let mut union = StudyUnion::default();
    for path in &args.files {
        if path.is_dir() {
            let metrics = path.join(METRICS_FILE);
            count += add_snapshots(&mut merged, &metrics)?;
            let hlog = path.join(HLOG_FILE);
            if hlog.is_file() {
                intervals.extend(read_hlog(&hlog)?);
                logs += 1;
            }
            let studies = path.join(STUDIES_FILE);
            if studies.is_file() {
                union.add(read_studies(&studies)?);
            }
        } else if path.extension().is_some_and(|e| e == "hlog") {
            intervals.extend(read_hlog(path)?);
            logs += 1;
        } else {
            count += add_snapshots(&mut merged, path)?;
            if let Ok(sent) = read_studies(path) {
                union.add(sent);
            }
        }
    }
    let mut failed = false;
    if logs > 0 {
        let from_logs = interval_log::tagged_total(&intervals, LATENCY_TAG);
        if count > 0 && logs == count {
            // The logs and the snapshots are two encodings of the same histograms: their
            // sums must agree to the last count, or one of the files is not what it claims.
            if from_logs != merged.histograms.latency {
                bail!(
                    "the interval logs' latency ({} values) differs from the snapshots' ({} values): the .hlog and metrics.json files do not come from the same runs",
                    from_logs.len(),
                    merged.histograms.latency.len()
                );
            }
            eprintln!(
                "hlog        {logs} interval logs: their latency histogram equals the merged snapshot's ({} values)",
                from_logs.len()
            );
        } else {
            eprintln!(
                "hlog        {logs} interval logs ({} latency values; not cross-checked: {count} snapshots)",
                from_logs.len()
            );
        }
    }
    if count == 0 && logs == 0 {
        bail!(
            "nothing to merge: no snapshot and no interval log in {:?}",
            args.files
        );
    }

    let json = merged.to_json().context("encoding the merged snapshot")?;
    let c = &merged.counts;
    let summary = format!(
        "{} attempted, {} succeeded, {} warnings, {} failed, {} unknown; p95 {}",
        c.attempted,
        c.succeeded,
        c.warnings,
        c.failed,
        c.unknown,
        merged
            .p95_latency_ms()
            .map_or_else(|| "-".into(), |p| format!("{p:.1} ms"))
    );
    match &args.out {
        Some(out) => {
            write_atomic(out, json.as_bytes())?;
            eprintln!("merged {count} snapshots into {}: {summary}", out.display());
        }
        None => {
            println!("{json}");
            if union.inputs > 0 || logs > 0 {
                eprintln!("merged {count} snapshots: {summary}");
            }
        }
    }
    if let Some(out) = &args.hlog_out {
        let log = interval_log::write_interval_log(&merged).context("encoding the interval log")?;
        write_atomic(out, &log)?;
        eprintln!("interval log written to {}", out.display());
    }

    if union.inputs > 0 {
        eprintln!(
            "studies     {} from {} inputs, {} in more than one",
            union.order.len(),
            union.inputs,
            union.duplicates.len()
        );
        if union.fresh && !union.duplicates.is_empty() {
            // Shards make fresh UIDs under disjoint roots: a shared study is a collision.
            failed = true;
            eprintln!(
                "FAIL        fresh-UID studies in more than one input (disjoint roots expected), e.g. {}",
                union.duplicates[..union.duplicates.len().min(3)].join(", ")
            );
        }
    } else if args.verify || args.studies_out.is_some() {
        bail!(
            "no study records in {:?}: give shard folders (--shard-out) or load --json files",
            args.files
        );
    }
    let studies = union.studies();
    if let Some(out) = &args.studies_out {
        let json = serde_json::to_vec_pretty(&serde_json::json!({
            "uid_root": union.fresh.then_some("(several: one per shard)"),
            "studies": studies,
        }))?;
        write_atomic(out, &json)?;
        eprintln!("study records written to {}", out.display());
    }
    if args.verify {
        let verified = crate::verify::verify_sent(&studies, union.fresh, None)?;
        if verified != ExitCode::SUCCESS {
            failed = true;
        }
    }
    Ok(if failed {
        ExitCode::from(CHECKS_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    loader::AtomicFile::new(path)
        .write_bytes(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// Adds every snapshot of `path` to `merged`; how many.
fn add_snapshots(merged: &mut MetricsSnapshot, path: &Path) -> Result<usize> {
    let snapshots = read_snapshots(path)?;
    if snapshots.is_empty() {
        bail!(
            "{}: no metrics snapshot in it (expected a snapshot, a load --json output or a test_report.json with load tests)",
            path.display()
        );
    }
    for snapshot in &snapshots {
        merged
            .merge(snapshot)
            .with_context(|| format!("{}: cannot merge its snapshot", path.display()))?;
    }
    Ok(snapshots.len())
}

fn read_hlog(path: &Path) -> Result<Vec<LoggedInterval>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    interval_log::read_interval_log(&bytes)
        .with_context(|| format!("{}: not a readable interval log", path.display()))
}

/// A shard's studies.json (or a load --json): the same shape.
fn read_studies(path: &Path) -> Result<SentLoad> {
    SentLoad::read(path)
}

/// Every snapshot a file holds, in the three shapes dicom-auto writes.
fn read_snapshots(path: &Path) -> Result<Vec<MetricsSnapshot>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let mut found = Vec::new();
    if value.get("histograms").is_some() {
        found.push(value.clone());
    } else if let Some(metrics) = value.get("metrics") {
        found.push(metrics.clone());
    } else if let Some(tests) = value.get("tests").and_then(Value::as_array) {
        found.extend(
            tests
                .iter()
                .filter_map(|t| t.get("load").and_then(|l| l.get("metrics")))
                .cloned(),
        );
    }
    found
        .into_iter()
        .map(|v| {
            MetricsSnapshot::from_json(&v.to_string())
                .with_context(|| format!("{}: not a metrics snapshot", path.display()))
        })
        .collect()
}
