//! A load report as the command line shows it: the summary table ([`SummaryTable`])
//! and the JSON file ([`write_json`]), under the same names.

use std::fmt;
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::{AssociationCounts, LoadReport, LoadSummary, StudyRecord};

/// The summary of a report as a two-column table, names on the left, followed by the
/// ten most frequent errors.
#[derive(Debug, Clone, Copy)]
pub struct SummaryTable<'a>(pub &'a LoadReport);

impl fmt::Display for SummaryTable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let report = self.0;
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
            ("first_send_after_ms", opt(s.first_send_after_ms, 1)),
            ("streamed_instances", s.streamed_instances.to_string()),
            (
                "generator_lagged_sends",
                s.generator_lagged_sends.to_string(),
            ),
            ("generator_lag_p99_ms", opt(s.generator_lag_p99_ms, 3)),
        ]);
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            writeln!(f, "{k:<width$}  {v:>12}")?;
        }
        for e in report.metrics.errors.iter().take(10) {
            writeln!(f, "error x{}: {}", e.count, e.message)?;
        }
        Ok(())
    }
}

/// The summary at the top level (the table's names) plus associations, studies and the
/// full metrics snapshot; written atomically (temporary file, then rename).
///
/// # Errors
/// The folder cannot take a temporary file, or the rename fails.
pub fn write_json(path: &Path, report: &LoadReport) -> Result<()> {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        summary: LoadSummary,
        associations: &'a AssociationCounts,
        studies: &'a [StudyRecord],
        uid_root: &'a Option<String>,
        generator: &'a crate::GeneratorReport,
        /// This process's peak resident memory so far (Linux), for benchmarks.
        peak_rss_bytes: Option<u64>,
        metrics: &'a metrics::MetricsSnapshot,
        /// The part of a sharded run, `"i/N"`.
        #[serde(skip_serializing_if = "Option::is_none")]
        shard: Option<crate::Shard>,
    }
    let out = Out {
        summary: report.summary(),
        associations: &report.associations,
        studies: &report.studies,
        uid_root: &report.uid_root,
        generator: &report.generator,
        peak_rss_bytes: peak_rss_bytes(),
        metrics: &report.metrics,
        shard: report.shard,
    };
    let json = serde_json::to_vec_pretty(&out)?;
    // Written whole or not at all, readable by others (a results file is meant to be shared).
    loader::AtomicFile::new(path)
        .write_bytes(&json)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// This process's peak resident memory in bytes (VmHWM of /proc/self/status); `None`
/// where there is no such file.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
