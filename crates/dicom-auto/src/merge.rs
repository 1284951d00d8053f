//! `dicom-auto merge`: one exact metrics snapshot of several runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use metrics::MetricsSnapshot;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON files holding metrics snapshots: a snapshot itself, a `load --json`
    /// output (its `metrics`), or a test_report.json (every load test's metrics).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Write the merged snapshot here (atomically) instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn merge(args: &MergeArgs) -> Result<ExitCode> {
    let mut merged = MetricsSnapshot::empty();
    let mut count = 0usize;
    for path in &args.files {
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
        count += snapshots.len();
    }
    let json = merged.to_json().context("encoding the merged snapshot")?;
    match &args.out {
        Some(out) => {
            loader::AtomicFile::new(out)
                .write_bytes(json.as_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            let c = &merged.counts;
            eprintln!(
                "merged {count} snapshots into {}: {} attempted, {} succeeded, {} warnings, {} failed, {} unknown; p95 {}",
                out.display(),
                c.attempted,
                c.succeeded,
                c.warnings,
                c.failed,
                c.unknown,
                merged
                    .p95_latency_ms()
                    .map_or_else(|| "-".into(), |p| format!("{p:.1} ms"))
            );
        }
        None => println!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
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
