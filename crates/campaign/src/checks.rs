//! What a load run must show to pass: the thresholds of the configuration, judged in
//! one place for the suite's load tests and for `dicom-auto run`.

use std::time::Duration;

use cfind::{Delivery, VerificationReport};
use config::Thresholds;
use sender::LoadReport;

/// One judged requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short stable name (`error_rate`, `p95_latency`, `delivery`), for reports.
    pub id: &'static str,
    /// What is required, in words.
    pub name: &'static str,
    /// Whether the run met it.
    pub passed: bool,
    /// The measured value against the limit, or what went wrong.
    pub message: String,
}

/// Judges a run: error rate within `MAX_ERROR_RATE`, p95 latency (from each send's
/// intended time) within `p95_limit`, and, when verification ran, every delivered
/// study complete at the destination.
pub fn judge(
    load: &LoadReport,
    verification: Option<&VerificationReport>,
    thresholds: &Thresholds,
    p95_limit: Duration,
) -> Vec<Check> {
    let counts = &load.metrics.counts;
    let mut checks = Vec::new();
    checks.push(match load.metrics.error_rate {
        Some(rate) => Check {
            id: "error_rate",
            name: "error rate within MAX_ERROR_RATE",
            passed: rate <= thresholds.max_error_rate,
            message: format!(
                "error rate {:.2} % (limit MAX_ERROR_RATE {:.2} %): {} failed, {} unknown of {}",
                rate * 100.0,
                thresholds.max_error_rate * 100.0,
                counts.failed,
                counts.unknown,
                counts.attempted
            ),
        },
        None => Check {
            id: "error_rate",
            name: "error rate within MAX_ERROR_RATE",
            passed: false,
            message: "no send was attempted".into(),
        },
    });
    let limit_ms = p95_limit.as_secs_f64() * 1000.0;
    checks.push(match load.metrics.p95_latency_ms() {
        Some(p95) => Check {
            id: "p95_latency",
            name: "p95 latency within its limit",
            passed: p95 <= limit_ms,
            message: format!("p95 latency {p95:.1} ms (limit {limit_ms:.0} ms)"),
        },
        None => Check {
            id: "p95_latency",
            name: "p95 latency within its limit",
            passed: false,
            message: "no latency was recorded".into(),
        },
    });
    if let Some(v) = verification {
        checks.push(delivery(v));
    }
    checks
}

/// Every delivered study complete at the destination, naming the first few that were
/// not.
pub fn delivery(verification: &VerificationReport) -> Check {
    let v = verification;
    let complete = v.count(Delivery::Complete);
    let examples: Vec<String> = v
        .not_complete()
        .take(5)
        .map(|s| {
            format!(
                "{} ({:?}, seen {:?} of {})",
                s.study_instance_uid, s.delivery, s.instances_seen, s.instances_sent
            )
        })
        .collect();
    Check {
        id: "delivery",
        name: "every delivered study complete at the destination",
        passed: complete == v.studies.len(),
        message: if examples.is_empty() {
            format!("{complete} of {} studies complete", v.studies.len())
        } else {
            format!(
                "{} of {} studies not complete at the destination, e.g. {}",
                v.studies.len() - complete,
                v.studies.len(),
                examples.join("; ")
            )
        },
    }
}

/// The failed checks' messages, one per line: a test's failure text.
pub fn failures(checks: &[Check]) -> Option<String> {
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.message.as_str())
        .collect();
    (!failed.is_empty()).then(|| failed.join("\n"))
}
