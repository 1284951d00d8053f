//! What a load run must show to pass: the thresholds of the configuration, judged in
//! one place for the suite's load tests and for `dicom-auto run`.

use std::time::Duration;

use cfind::{Delivery, VerificationReport};
use config::Thresholds;
use sender::LoadReport;
use sink::{DeliveryReport, ProblemKind};

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
/// intended time) within `p95_limit`, when C-FIND verification ran every delivered
/// study complete at the destination, and when the sink verified, every instance the
/// router took delivered there once and unaltered.
pub fn judge(
    load: &LoadReport,
    verification: Option<&VerificationReport>,
    at_sink: Option<&DeliveryReport>,
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
    if let Some(report) = at_sink {
        checks.push(delivery_at_sink(report));
    }
    checks
}

/// Every instance the router took arrived at the sink once, unaltered, and nothing
/// else arrived; the accounting adds up. Names the first instances that went wrong.
pub fn delivery_at_sink(report: &DeliveryReport) -> Check {
    let c = &report.counts;
    let examples = problem_examples(report, 5);
    let passed = report.consistent && report.clean;
    Check {
        id: "delivery_at_sink",
        name: "every instance the router took delivered to the sink once, unaltered",
        passed,
        message: if passed {
            format!(
                "{}; nothing altered, duplicated or unexpected",
                c.invariant()
            )
        } else {
            format!(
                "{}; {} altered, {} undelivered, {} duplicated, {} refused but delivered, {} arrived never sent; e.g. {}",
                c.invariant(),
                c.altered,
                c.undelivered,
                c.duplicated_instances,
                c.refused_but_delivered,
                c.unexpected,
                examples.join("; ")
            )
        },
    }
}

/// The first `n` instances that went wrong, each in words with what was wrong.
pub fn problem_examples(report: &DeliveryReport, n: usize) -> Vec<String> {
    report
        .problems
        .iter()
        .take(n)
        .map(|p| {
            let detail = match &p.kind {
                ProblemKind::Altered { differences } => differences
                    .iter()
                    .take(3)
                    .map(|d| {
                        format!(
                            "{} sent {:?} received {:?}",
                            d.path,
                            d.sent.as_deref().unwrap_or("(absent)"),
                            d.received.as_deref().unwrap_or("(absent)")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                ProblemKind::Corrupt { error } => error.clone(),
                ProblemKind::Duplicated { sends, arrivals } => {
                    format!("{arrivals} arrivals for {sends} send(s)")
                }
                _ => String::new(),
            };
            format!(
                "{} {}{}",
                p.kind.name(),
                p.sop_instance_uid,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            )
        })
        .collect()
}

/// Every retrieved study came back from the archive whole: the retrieve complete
/// (final success, nothing failed, not cancelled, no anomaly) and every instance of
/// it matched to its send, unaltered, nothing else.
pub fn retrieval_at_archive(report: &crate::retrieval::RetrievalReport) -> Check {
    let passed = report.is_clean();
    let c = &report.delivery.counts;
    let not_whole: Vec<String> = report
        .studies
        .iter()
        .filter(|s| !s.is_whole())
        .take(3)
        .map(|s| {
            let why = match (&s.outcome, &s.error) {
                (_, Some(error)) => error.clone(),
                (Some(outcome), None) => outcome.summary(),
                (None, None) => String::new(),
            };
            format!("{}: {why}", s.study_instance_uid)
        })
        .collect();
    Check {
        id: "retrieval_at_archive",
        name: "every retrieved study came back from the archive whole, as sent",
        passed,
        message: if passed {
            format!(
                "{} of {} delivered studies retrieved by {} from {}; {}; nothing altered or unexpected",
                report.studies.len(),
                report.studies_delivered,
                report.method,
                report.peer,
                c.invariant()
            )
        } else {
            let mut examples = not_whole;
            examples.extend(problem_examples(&report.delivery, 5));
            format!(
                "{} of {} retrieved studies came back whole; {}; {} never retrieved, {} altered, {} unexpected; e.g. {}",
                report.studies.iter().filter(|s| s.is_whole()).count(),
                report.studies.len(),
                c.invariant(),
                c.undelivered,
                c.altered,
                c.unexpected,
                examples.join("; ")
            )
        },
    }
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

/// The destination archive committed, by Storage Commitment, every instance the
/// router took: each study's report came within `COMMIT_TIMEOUT`, naming every
/// instance committed, nothing failed, unanswered or never asked for, and no report
/// came for a transaction nobody asked about.
pub fn commitment_at_archive(report: &crate::commitment::CommitmentReport) -> Check {
    let passed = report.is_clean();
    let committed_studies = report.studies.iter().filter(|s| s.is_committed()).count();
    Check {
        id: "commitment_at_archive",
        name: "the archive committed every instance the router took",
        passed,
        message: if passed {
            format!(
                "{} of {} instances committed by {} in {} studies, reports at {}",
                report.committed(),
                report.requested(),
                report.peer,
                report.studies.len(),
                report.listener
            )
        } else if report.studies.is_empty() {
            format!(
                "nothing to commit: no instance the router took could be named ({} without a SOP Class UID)",
                report.instances_without_class
            )
        } else {
            let mut examples: Vec<String> = report
                .studies
                .iter()
                .filter(|s| !s.is_committed())
                .take(3)
                .map(|s| format!("{}: {}", s.study_instance_uid, s.summary()))
                .collect();
            if report.unknown_reports > 0 {
                examples.push(format!(
                    "{} report(s) for a transaction nobody asked about, e.g. {}",
                    report.unknown_reports,
                    report.unknown_transactions.join(", ")
                ));
            }
            if report.malformed_reports > 0 {
                examples.push(format!("{} unreadable report(s)", report.malformed_reports));
            }
            if report.instances_without_class > 0 {
                examples.push(format!(
                    "{} instance(s) without a SOP Class UID could not be asked",
                    report.instances_without_class
                ));
            }
            format!(
                "{} of {} studies committed, {} of {} instances; {}",
                committed_studies,
                report.studies.len(),
                report.committed(),
                report.requested(),
                examples.join("; ")
            )
        },
    }
}
