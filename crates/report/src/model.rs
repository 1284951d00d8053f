//! The record of one test run: what every renderer (HTML, JSON, JUnit) reads.

use metrics::{LatencyBucket, LatencySummary, MetricsSnapshot};
use serde::{Deserialize, Serialize};

/// Everything known about one run of the suite.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Heading of the report.
    pub title: String,
    /// When the run started, milliseconds since the Unix epoch.
    pub started_unix_ms: i64,
    /// When the last test finished, milliseconds since the Unix epoch.
    pub finished_unix_ms: i64,
    /// The router under test in words: `embedded simulator at 127.0.0.1:40213`.
    pub target: String,
    /// The configuration in force (endpoint, route, load profile, thresholds...).
    pub configuration: Vec<ConfigItem>,
    /// Every test of the run, in the order they finished.
    pub tests: Vec<TestRecord>,
}

/// One configuration value, grouped by section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigItem {
    /// `endpoint`, `load`, `thresholds`...
    pub section: String,
    /// The setting's name.
    pub key: String,
    /// Its value, as text.
    pub value: String,
}

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// Every assertion held.
    Passed,
    /// An assertion failed or the test panicked.
    Failed,
    /// The test could not run here (the reason is in the message).
    Skipped,
}

impl TestOutcome {
    /// `passed`, `failed` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            TestOutcome::Passed => "passed",
            TestOutcome::Failed => "failed",
            TestOutcome::Skipped => "skipped",
        }
    }
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    /// Full name, `group::test_name`, as `cargo test` filters it.
    pub name: String,
    /// The group (the old pytest file without `test_`): `routing_transformations`.
    pub group: String,
    /// How it ended.
    pub outcome: TestOutcome,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// The failure message (panic text) or the reason for a skip.
    pub message: Option<String>,
    /// What a load test measured.
    pub load: Option<LoadResult>,
    /// Short figures any test wants shown beside its name (`instances sent: 12`).
    pub figures: Vec<Figure>,
}

impl TestRecord {
    /// A record with no message, figures or load result.
    pub fn new(name: impl Into<String>, outcome: TestOutcome, duration_ms: f64) -> Self {
        let name = name.into();
        let group = name.split("::").next().unwrap_or_default().to_string();
        TestRecord {
            name,
            group,
            outcome,
            duration_ms,
            message: None,
            load: None,
            figures: Vec::new(),
        }
    }
}

/// A named figure shown in the results table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figure {
    /// What it is.
    pub label: String,
    /// Its value with unit.
    pub value: String,
}

/// What a load test measured: the sender's metrics and, when delivery was checked by
/// C-FIND, the transit times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// The sender's metrics snapshot (histograms included, so runs can be merged later).
    pub metrics: MetricsSnapshot,
    /// Transit times measured by C-FIND verification, when it ran.
    pub transit: Option<TransitTimes>,
    /// What the destination sink received, when the run verified there.
    #[serde(default)]
    pub delivery: Option<SinkDelivery>,
    /// What came back from the destination archive, when the run retrieved from it.
    #[serde(default)]
    pub retrieval: Option<ArchiveRetrieval>,
    /// What the destination archive committed to keep, when the run asked it to.
    #[serde(default)]
    pub commitment: Option<ArchiveCommitment>,
    /// The steps of a capacity search, when the run was one (`metrics` is then the
    /// highest sustained step's, else the first step's).
    #[serde(default)]
    pub capacity: Option<CapacityCurve>,
    /// Per group (modality) of a workload profile's run: rates, latency, delivery.
    #[serde(default)]
    pub groups: Vec<GroupRow>,
}

/// One group (a modality of a workload profile) of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    /// The group's name, as the profile gives it.
    pub name: String,
    /// Studies it sent, each on its own association.
    pub studies: u64,
    /// Images attempted.
    pub attempted: u64,
    /// Images failed or with an unknown outcome.
    pub not_delivered: u64,
    /// Delivered images per second.
    pub images_per_s: Option<f64>,
    /// Latency from the intended send time.
    pub latency: Option<LatencySummary>,
    /// Of its studies, those C-FIND verification found complete (when it ran).
    pub studies_verified: Option<u64>,
}

/// A capacity search: the offered rate stepped (then bisected) until the p95 latency
/// or the error rate crossed its threshold, with what each step measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityCurve {
    /// The highest offered rate (sends/s) whose step passed, bisection included;
    /// `None` when the first step already failed.
    pub highest_sustained_rate: Option<f64>,
    /// Why the search ended, in words.
    pub stopped: String,
    /// The p95 latency a step may reach and still pass, milliseconds.
    pub max_p95_latency_ms: f64,
    /// The error rate ((failed + unknown) / attempted) a step may reach and still pass.
    pub max_error_rate: f64,
    /// Seconds of counted sends per step.
    pub step_seconds: f64,
    /// Seconds of uncounted sends before each step, at the step's rate.
    pub warm_up_seconds: f64,
    /// Associations (sender concurrency) every step used.
    pub concurrency: usize,
    /// Every step in the order it ran.
    pub steps: Vec<CapacityStep>,
}

/// One step of a capacity search: an open-loop run at one offered rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityStep {
    /// The step's number, from 1, in the order the steps ran.
    pub number: u32,
    /// Whether the step refined the limit by bisection (rather than stepping up).
    pub bisection: bool,
    /// The offered rate, sends/s.
    pub offered_rate: f64,
    /// Delivered (succeeded + warnings) per second over the step's wall time (first
    /// intended send to last response).
    pub achieved_rate: Option<f64>,
    /// Sends attempted in the counted part of the step.
    pub attempted: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Succeeded with a warning status.
    pub warnings: u64,
    /// Failed.
    pub failed: u64,
    /// Sent whole, then no answer (aborted, lost, timed out).
    pub unknown: u64,
    /// (failed + unknown) / attempted.
    pub error_rate: Option<f64>,
    /// Latency from intended start: p50, milliseconds.
    pub p50_ms: Option<f64>,
    /// p95, milliseconds.
    pub p95_ms: Option<f64>,
    /// p99, milliseconds.
    pub p99_ms: Option<f64>,
    /// Longest, milliseconds.
    pub max_ms: Option<f64>,
    /// Whether the step stayed within both thresholds.
    pub passed: bool,
    /// Why it passed or failed, in words.
    pub verdict: String,
}

impl CapacityCurve {
    /// The steps ordered by offered rate (bisection steps in their place), as the
    /// curves are drawn.
    pub fn by_offered_rate(&self) -> Vec<&CapacityStep> {
        let mut steps: Vec<&CapacityStep> = self.steps.iter().collect();
        steps.sort_by(|a, b| a.offered_rate.total_cmp(&b.offered_rate));
        steps
    }
}

/// What the destination archive answered when asked, by Storage Commitment, to take
/// responsibility for every instance the router took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveCommitment {
    /// The archive, `CALLED@host:port`.
    pub peer: String,
    /// Where its reports were awaited, `AE@host:port`.
    pub listener: String,
    /// Whether it committed everything, every report in time and readable.
    pub clean: bool,
    /// Instances named in the requests.
    pub requested: u64,
    /// Instances reported committed.
    pub committed: u64,
    /// Reports for transactions nobody asked about.
    pub unknown_reports: u64,
    /// Reports that could not be read.
    pub malformed_reports: u64,
    /// Instances taken that could not be named (no SOP Class UID).
    pub instances_without_class: u64,
    /// One row per study.
    pub studies: Vec<StudyCommitmentRow>,
}

/// One study's commitment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyCommitmentRow {
    /// The study, as sent.
    pub study_instance_uid: String,
    /// Instances named in its request.
    pub requested: u64,
    /// Reported committed.
    pub committed: u64,
    /// Reported failed.
    pub failed: u64,
    /// Asked and not accounted for (unanswered, or no report).
    pub unaccounted: u64,
    /// How the report came, or `-`.
    pub report_via: String,
    /// Seconds from the request to the report.
    pub seconds: Option<f64>,
    /// Whether everything asked was committed in time.
    pub committed_all: bool,
    /// What else happened (failure reasons, a timeout, an error).
    pub note: String,
}

/// What a retrieve of a run's studies from the destination archive brought back,
/// each instance judged against its send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveRetrieval {
    /// `C-GET`, or `C-MOVE to AE`.
    pub method: String,
    /// The archive, `CALLED@host:port`.
    pub peer: String,
    /// Whether every retrieved study came back whole, as sent.
    pub clean: bool,
    /// Studies the run delivered to.
    pub studies_delivered: u64,
    /// One row per retrieved study.
    pub studies: Vec<StudyRetrievalRow>,
    /// The instances of the retrieved studies, judged: accounting, differences,
    /// problems (delivered means retrieved).
    pub judged: SinkDelivery,
}

/// One study's retrieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRetrievalRow {
    /// The study, as sent.
    pub study_instance_uid: String,
    /// Sends to it the router took.
    pub sent: u64,
    /// Instances that came back matched to their sends.
    pub retrieved: u64,
    /// The archive's account: final status and sub-operation counts.
    pub archive_says: String,
    /// Instances altered, unexpected or repeated.
    pub differences: u64,
    /// Seconds the retrieve took.
    pub seconds: Option<f64>,
    /// Whether it came back whole.
    pub whole: bool,
    /// What else happened (cancelled, anomalies, an error).
    pub note: String,
}

/// What the destination sink received of a run: every send accounted for, the exact
/// transit times, and the instances that went wrong, named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkDelivery {
    /// `sent N = refused + delivered + undelivered + in transit`, with the figures.
    pub invariant: String,
    /// Whether the invariant holds.
    pub consistent: bool,
    /// Whether every send the router took arrived once, unaltered, and nothing else did.
    pub clean: bool,
    /// The accounting, one row per count.
    pub accounting: Vec<Figure>,
    /// Transit from the router's answer to the arrival at the sink.
    pub transit: Option<LatencySummary>,
    /// Its histogram buckets, for the chart.
    pub transit_buckets: Vec<LatencyBucket>,
    /// Arrivals per second with their transit.
    #[serde(default)]
    pub timeline: Vec<ArrivalSecond>,
    /// The first differences of altered instances.
    pub differences: Vec<DifferenceRow>,
    /// The first other problems (undelivered, duplicated, corrupt, unexpected...).
    pub problems: Vec<ProblemRow>,
    /// Problems in all.
    pub problems_total: u64,
}

/// One second of arrivals at the sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivalSecond {
    /// Seconds since the sink's ledger was made (about the start of the run).
    pub second: u64,
    /// Arrivals in this second.
    pub arrivals: u64,
    /// Mean transit of those with a measurable transit, milliseconds.
    pub mean_transit_ms: Option<f64>,
    /// Longest such transit, milliseconds.
    pub max_transit_ms: Option<f64>,
}

/// One difference between what was sent and what arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DifferenceRow {
    /// The instance, by SOP Instance UID as sent.
    pub sop_instance_uid: String,
    /// Where: keyword or path, and tag.
    pub attribute: String,
    /// What kind of difference.
    pub kind: String,
    /// The value sent.
    pub sent: String,
    /// The value received.
    pub received: String,
}

/// One instance that went wrong at the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemRow {
    /// The instance, by SOP Instance UID as sent (or as received, if never sent).
    pub sop_instance_uid: String,
    /// `undelivered`, `duplicated`, `corrupt`, `refused_but_delivered`, `unexpected`...
    pub kind: String,
    /// In words.
    pub detail: String,
}

/// Time from the last send of a study to the moment C-FIND first showed all of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitTimes {
    /// Studies verified complete at the destination.
    pub verified: u64,
    /// Studies missing (or incomplete) when verification gave up.
    pub missing: u64,
    /// Percentiles of the transit time.
    pub summary: Option<LatencySummary>,
    /// Histogram buckets for the chart.
    pub buckets: Vec<LatencyBucket>,
}

/// Counts of tests by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeTotals {
    /// Tests run.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
}

impl RunReport {
    /// Counts of tests by outcome.
    pub fn totals(&self) -> OutcomeTotals {
        let mut totals = OutcomeTotals {
            total: self.tests.len(),
            ..OutcomeTotals::default()
        };
        for test in &self.tests {
            match test.outcome {
                TestOutcome::Passed => totals.passed += 1,
                TestOutcome::Failed => totals.failed += 1,
                TestOutcome::Skipped => totals.skipped += 1,
            }
        }
        totals
    }

    /// Wall time of the run in seconds.
    pub fn duration_s(&self) -> f64 {
        (self.finished_unix_ms - self.started_unix_ms).max(0) as f64 / 1000.0
    }
}
