//! [`MetricsSnapshot`]: the JSON record of a run's metrics, mergeable across processes.

use std::collections::BTreeMap;
use std::iter::Peekable;

use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

use crate::error::MetricsError;
use crate::histogram::{LatencyBucket, LatencyHistogram, LatencySummary};
use crate::sample::Outcome;
use crate::tally::{
    ErrorCount, ErrorLog, OutcomeCounts, Reservoir, SeriesPoint, Tally, Window, widen,
};
use crate::timeline::{Timeline, TimelinePoint, contiguous};

/// Version of the snapshot layout; [`MetricsSnapshot::from_json`] refuses others.
pub const SNAPSHOT_SCHEMA_VERSION: u32 = 1;

/// One point of the sampled latency-over-time series (for a scatter chart).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// Intended start, seconds since [`MetricsSnapshot::origin_unix_s`].
    pub t_s: f64,
    /// Intended start, microseconds since the Unix epoch.
    pub unix_us: i64,
    /// Latency from the intended start.
    pub latency_ms: f64,
    /// How the send ended.
    pub outcome: Outcome,
}

impl From<&SeriesPoint> for LatencyPoint {
    /// `t_s` is left at 0 until the snapshot knows its origin.
    fn from(point: &SeriesPoint) -> Self {
        Self {
            t_s: 0.0,
            unix_us: point.unix_us,
            latency_ms: point.latency_us as f64 / 1e3,
            outcome: point.outcome,
        }
    }
}

/// The three histograms a snapshot is computed from, serialized so that snapshots merge exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotHistograms {
    /// Latency of every attempt (count = `attempted`).
    pub latency: LatencyHistogram,
    /// Latency of delivered sends (count = `succeeded + warnings`).
    pub delivered_latency: LatencyHistogram,
    /// Service time of every attempt (count = `attempted`).
    pub service_time: LatencyHistogram,
}

/// The metrics of a run (or of several merged runs) as one serde value: what `--json`
/// writes and what the report renders.
///
/// Summaries (`error_rate`, `latency_ms`, rates, buckets, per-second percentiles) are
/// derived from the counts and histograms, and recomputed by [`merge`](Self::merge), which
/// adds the histograms themselves: merging the snapshots of several generator processes
/// gives the percentiles of all their samples recorded together, exactly.
///
/// Times: `window_*_unix_us` bound the run from the earliest intended start to the latest
/// end; `origin_unix_s` is the whole second the window starts in, and `timeline[].second`
/// and `latency_series[].t_s` count from it. Rates use `wall_time_s`. Empty values
/// (no attempt yet) are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// [`SNAPSHOT_SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// The Unix second in which the first send was scheduled.
    pub origin_unix_s: Option<i64>,
    /// Earliest intended start, microseconds since the Unix epoch.
    pub window_start_unix_us: Option<i64>,
    /// Latest end, microseconds since the Unix epoch.
    pub window_end_unix_us: Option<i64>,
    /// Seconds from the earliest intended start to the latest end (0 when empty).
    pub wall_time_s: f64,
    /// Outcome counts and bytes (`attempted`, `succeeded`, `warnings`, `failed`, `unknown`,
    /// `bytes_attempted`, `bytes_delivered` at the top level of the JSON).
    #[serde(flatten)]
    pub counts: OutcomeCounts,
    /// `(failed + unknown) / attempted`.
    pub error_rate: Option<f64>,
    /// Delivered images per second over the wall time.
    pub images_per_s: Option<f64>,
    /// Attempted sends per second over the wall time (achieved send rate).
    pub attempts_per_s: Option<f64>,
    /// Delivered megabytes (10⁶ bytes) per second over the wall time.
    pub mb_per_s: Option<f64>,
    /// Latency of every attempt, from its intended start.
    pub latency_ms: Option<LatencySummary>,
    /// Latency of delivered sends only.
    pub delivered_latency_ms: Option<LatencySummary>,
    /// Service time (from the actual start) of every attempt.
    pub service_time_ms: Option<LatencySummary>,
    /// Latency of every attempt on a 1-2-5 millisecond scale, for a histogram chart.
    pub latency_buckets: Vec<LatencyBucket>,
    /// Latencies above one hour, recorded as one hour.
    pub clamped_latencies: u64,
    /// Responses per DIMSE status code, keyed by the code in 4 hex digits (`"0000"`, `"A700"`).
    pub status_counts: BTreeMap<String, u64>,
    /// The first distinct error texts with their counts.
    pub errors: Vec<ErrorCount>,
    /// Errors whose text was not listed (beyond the first distinct ones).
    pub errors_unlisted: u64,
    /// One point per second, from `origin_unix_s` to the last end, gaps included.
    pub timeline: Vec<TimelinePoint>,
    /// A uniform random sample of sends (at most 1000), sorted by intended start.
    pub latency_series: Vec<LatencyPoint>,
    /// How many sends `latency_series` was sampled from.
    pub latency_series_population: u64,
    /// The histograms everything above is computed from.
    pub histograms: SnapshotHistograms,
}

impl Default for MetricsSnapshot {
    fn default() -> Self {
        Self::empty()
    }
}

impl MetricsSnapshot {
    /// A snapshot of nothing: the neutral element of [`merge`](Self::merge).
    pub fn empty() -> Self {
        Self {
            schema_version: SNAPSHOT_SCHEMA_VERSION,
            origin_unix_s: None,
            window_start_unix_us: None,
            window_end_unix_us: None,
            wall_time_s: 0.0,
            counts: OutcomeCounts::default(),
            error_rate: None,
            images_per_s: None,
            attempts_per_s: None,
            mb_per_s: None,
            latency_ms: None,
            delivered_latency_ms: None,
            service_time_ms: None,
            latency_buckets: Vec::new(),
            clamped_latencies: 0,
            status_counts: BTreeMap::new(),
            errors: Vec::new(),
            errors_unlisted: 0,
            timeline: Vec::new(),
            latency_series: Vec::new(),
            latency_series_population: 0,
            histograms: SnapshotHistograms {
                latency: LatencyHistogram::new(),
                delivered_latency: LatencyHistogram::new(),
                service_time: LatencyHistogram::new(),
            },
        }
    }

    pub(crate) fn from_parts(
        tally: &Tally,
        latency: &LatencyHistogram,
        timeline: &Timeline,
    ) -> Result<Self, MetricsError> {
        let mut snapshot = Self {
            window_start_unix_us: tally.window.map(|w| w.start_unix_us),
            window_end_unix_us: tally.window.map(|w| w.end_unix_us),
            counts: tally.counts,
            status_counts: tally
                .statuses
                .0
                .iter()
                .map(|&(code, count)| (format!("{code:04X}"), count))
                .collect(),
            errors: tally.errors.listed.clone(),
            errors_unlisted: tally.errors.unlisted,
            latency_series: tally.series.points.iter().map(LatencyPoint::from).collect(),
            latency_series_population: tally.series.seen,
            histograms: SnapshotHistograms {
                latency: latency.clone(),
                delivered_latency: tally.delivered_latency.clone(),
                service_time: tally.service_time.clone(),
            },
            ..Self::empty()
        };
        let origin = snapshot.origin();
        snapshot.timeline = timeline.points(origin.unwrap_or(0))?;
        snapshot.refresh_derived();
        Ok(snapshot)
    }

    /// Reads a snapshot written by [`to_json`](Self::to_json) (or `serde_json`), refusing
    /// other schema versions.
    pub fn from_json(json: &str) -> Result<Self, MetricsError> {
        let snapshot: Self = serde_json::from_str(json)?;
        snapshot.check_version()?;
        Ok(snapshot)
    }

    /// The snapshot as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, MetricsError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    fn check_version(&self) -> Result<(), MetricsError> {
        if self.schema_version == SNAPSHOT_SCHEMA_VERSION {
            Ok(())
        } else {
            Err(MetricsError::SchemaVersion {
                found: self.schema_version,
                expected: SNAPSHOT_SCHEMA_VERSION,
            })
        }
    }

    /// `(failed + unknown) / attempted`; `None` when nothing was attempted.
    pub fn error_rate(&self) -> Option<f64> {
        self.counts.error_rate()
    }

    /// 95th percentile latency (every outcome) in milliseconds.
    pub fn p95_latency_ms(&self) -> Option<f64> {
        self.histograms.latency.percentile_ms(95.0)
    }

    /// Latency (every outcome) at any `percentile` (0 to 100) in milliseconds.
    pub fn latency_percentile_ms(&self, percentile: f64) -> Option<f64> {
        self.histograms.latency.percentile_ms(percentile)
    }

    /// Adds `other` to this snapshot: counts, histograms (exactly), per-second timeline
    /// (aligned on Unix seconds), error texts (still bounded), status counts and the
    /// latency series (re-sampled so it stays uniform over both); then recomputes every
    /// summary. Fails on a snapshot of another schema version or with undecodable histograms,
    /// leaving `self` unchanged.
    pub fn merge(&mut self, other: &MetricsSnapshot) -> Result<(), MetricsError> {
        self.check_version()?;
        other.check_version()?;
        let mut window = self.window();
        widen(&mut window, other.window());
        let origin = window.map(|w| w.start_unix_us.div_euclid(1_000_000));
        // The only fallible step goes first, so an error leaves `self` untouched.
        let timeline = merge_timelines(&self.timeline, &other.timeline, origin.unwrap_or(0))?;

        self.timeline = timeline;
        self.window_start_unix_us = window.map(|w| w.start_unix_us);
        self.window_end_unix_us = window.map(|w| w.end_unix_us);
        self.counts.merge(&other.counts);
        self.histograms.latency.merge(&other.histograms.latency);
        self.histograms
            .delivered_latency
            .merge(&other.histograms.delivered_latency);
        self.histograms
            .service_time
            .merge(&other.histograms.service_time);
        for (code, count) in &other.status_counts {
            *self.status_counts.entry(code.clone()).or_default() += count;
        }
        let mut errors = ErrorLog {
            listed: std::mem::take(&mut self.errors),
            unlisted: self.errors_unlisted,
        };
        errors.merge(&ErrorLog {
            listed: other.errors.clone(),
            unlisted: other.errors_unlisted,
        });
        self.errors = errors.listed;
        self.errors_unlisted = errors.unlisted;
        self.merge_series(other);
        self.refresh_derived();
        Ok(())
    }

    fn merge_series(&mut self, other: &MetricsSnapshot) {
        let to_reservoir = |snapshot: &MetricsSnapshot| Reservoir {
            points: snapshot
                .latency_series
                .iter()
                .map(|p| SeriesPoint {
                    unix_us: p.unix_us,
                    latency_us: (p.latency_ms * 1e3).round() as u64,
                    outcome: p.outcome,
                })
                .collect(),
            seen: snapshot.latency_series_population,
        };
        let mut mine = to_reservoir(self);
        let mut theirs = to_reservoir(other);
        // Seeded from the data: merging the same files twice gives the same report.
        let seed = mine.seen.rotate_left(32) ^ theirs.seen ^ self.counts.bytes_attempted;
        mine.absorb(&mut theirs, &mut SmallRng::seed_from_u64(seed));
        self.latency_series_population = mine.seen;
        self.latency_series = mine.points.iter().map(LatencyPoint::from).collect();
    }

    fn window(&self) -> Option<Window> {
        Some(Window {
            start_unix_us: self.window_start_unix_us?,
            end_unix_us: self.window_end_unix_us?,
        })
    }

    fn origin(&self) -> Option<i64> {
        self.window_start_unix_us.map(|us| us.div_euclid(1_000_000))
    }

    /// Recomputes every derived field from counts, histograms, window and raw points.
    fn refresh_derived(&mut self) {
        let window = self.window();
        let origin = self.origin();
        self.origin_unix_s = origin;
        self.wall_time_s = window.map_or(0.0, |w| (w.end_unix_us - w.start_unix_us) as f64 / 1e6);
        self.error_rate = self.counts.error_rate();
        self.images_per_s = per_second(self.counts.delivered() as f64, window);
        self.attempts_per_s = per_second(self.counts.attempted as f64, window);
        self.mb_per_s = per_second(self.counts.bytes_delivered as f64 / 1e6, window);
        self.latency_ms = self.histograms.latency.summary();
        self.delivered_latency_ms = self.histograms.delivered_latency.summary();
        self.service_time_ms = self.histograms.service_time.summary();
        self.latency_buckets = self.histograms.latency.buckets();
        self.clamped_latencies = self.histograms.latency.clamped();
        let origin = origin.unwrap_or(0);
        self.timeline = contiguous(std::mem::take(&mut self.timeline), origin);
        self.latency_series.sort_by_key(|p| p.unix_us);
        for point in &mut self.latency_series {
            point.t_s = (point.unix_us - origin * 1_000_000) as f64 / 1e6;
        }
    }
}

/// `amount` per second of the window; `None` without a window or with a zero-length one.
pub(crate) fn per_second(amount: f64, window: Option<Window>) -> Option<f64> {
    let window = window?;
    let seconds = (window.end_unix_us - window.start_unix_us) as f64 / 1e6;
    (seconds > 0.0).then(|| amount / seconds)
}

/// Merges two timelines by Unix second, decoding only one second's histograms at a time
/// (a long run's timeline decoded whole would take tens of KB per second).
fn merge_timelines(
    a: &[TimelinePoint],
    b: &[TimelinePoint],
    origin_unix_s: i64,
) -> Result<Vec<TimelinePoint>, MetricsError> {
    fn next_matching<'a>(
        points: &mut Peekable<impl Iterator<Item = &'a TimelinePoint>>,
        unix_s: i64,
    ) -> Option<&'a TimelinePoint> {
        points.next_if(|p| p.unix_s == unix_s)
    }
    let mut merged = Vec::with_capacity(a.len().max(b.len()));
    // Empty seconds carry nothing; `contiguous` puts them back.
    let mut a = a.iter().filter(|p| p.sent > 0).peekable();
    let mut b = b.iter().filter(|p| p.sent > 0).peekable();
    loop {
        let unix_s = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.unix_s.min(y.unix_s),
            (Some(x), None) => x.unix_s,
            (None, Some(y)) => y.unix_s,
            (None, None) => break,
        };
        let mut counts = OutcomeCounts::default();
        let mut latency = LatencyHistogram::new();
        for point in [next_matching(&mut a, unix_s), next_matching(&mut b, unix_s)]
            .into_iter()
            .flatten()
        {
            counts.merge(&point.counts());
            latency.merge(&point.latency()?);
        }
        let encoded = latency.to_base64()?;
        merged.push(TimelinePoint::new(
            unix_s,
            origin_unix_s,
            &counts,
            &latency,
            encoded,
        ));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::perf::PerfMetrics;
    use crate::sample::Sample;

    /// Deterministic, varied samples: outcome, latency and start spread over `seconds`.
    fn samples(seed: u64, count: u64, seconds: u64, start: Instant) -> Vec<Sample> {
        (0..count)
            .map(|i| {
                let x = (i + 1)
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(seed.wrapping_mul(1442695040888963407));
                let outcome = match x >> 62 {
                    0 | 1 => Outcome::Success,
                    2 => Outcome::Warning,
                    _ if x % 7 == 0 => Outcome::Unknown,
                    _ => Outcome::Failure,
                };
                let intended = start + Duration::from_micros((x >> 20) % (seconds * 1_000_000));
                let actual = intended + Duration::from_micros((x >> 8) % 5_000);
                let end = actual + Duration::from_micros(50 + (x >> 30) % 2_000_000);
                let mut sample = Sample::new(intended, actual, end, outcome)
                    .with_bytes(50_000 + x % 1_000)
                    .with_status(if outcome.is_delivered() { 0 } else { 0xA700 });
                if outcome.is_error() {
                    sample.error = Some(format!("refused {}", x % 3));
                }
                sample
            })
            .collect()
    }

    fn record_all(metrics: &PerfMetrics, samples: &[Sample]) {
        let mut recorder = metrics.recorder();
        let mut sorted = samples.to_vec();
        sorted.sort_by_key(|s| s.end);
        for sample in sorted {
            recorder.record(sample);
        }
    }

    #[test]
    fn merged_snapshots_report_the_same_numbers_as_one_run_with_all_samples() {
        let start = Instant::now();
        let first = samples(1, 20_000, 12, start);
        let second = samples(2, 7_000, 5, start + Duration::from_secs(4));
        let (one, two, both) = (PerfMetrics::new(), PerfMetrics::new(), PerfMetrics::new());
        record_all(&one, &first);
        record_all(&two, &second);
        record_all(&both, &[first, second].concat());

        // As if written by two processes and read back.
        let mut merged =
            MetricsSnapshot::from_json(&one.snapshot().unwrap().to_json().unwrap()).unwrap();
        let other =
            MetricsSnapshot::from_json(&two.snapshot().unwrap().to_json().unwrap()).unwrap();
        merged.merge(&other).unwrap();
        let expected = both.snapshot().unwrap();

        assert_eq!(merged.histograms, expected.histograms);
        for percentile in [0.0, 50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0] {
            assert_eq!(
                merged.latency_percentile_ms(percentile),
                expected.latency_percentile_ms(percentile)
            );
        }
        assert_eq!(merged.latency_ms, expected.latency_ms);
        assert_eq!(merged.service_time_ms, expected.service_time_ms);
        assert_eq!(merged.counts, expected.counts);
        assert_eq!(merged.error_rate, expected.error_rate);
        assert_eq!(merged.images_per_s, expected.images_per_s);
        assert_eq!(merged.latency_buckets, expected.latency_buckets);
        assert_eq!(merged.status_counts, expected.status_counts);
        let mut merged_errors = merged.errors.clone();
        let mut expected_errors = expected.errors.clone();
        merged_errors.sort_by(|x, y| x.message.cmp(&y.message));
        expected_errors.sort_by(|x, y| x.message.cmp(&y.message));
        assert_eq!(merged_errors, expected_errors);
        assert_eq!(merged.timeline.len(), expected.timeline.len());
        for (m, e) in merged.timeline.iter().zip(&expected.timeline) {
            assert_eq!(
                (m.second, m.sent, m.succeeded, m.failed, m.p95_ms, m.max_ms),
                (e.second, e.sent, e.succeeded, e.failed, e.p95_ms, e.max_ms)
            );
        }
        assert_eq!(merged.latency_series_population, 27_000);
        assert_eq!(merged.latency_series.len(), 1000);
    }

    #[test]
    fn merging_into_an_empty_snapshot_gives_the_snapshot_back() {
        let metrics = PerfMetrics::new();
        record_all(&metrics, &samples(3, 500, 3, Instant::now()));
        let snapshot = metrics.snapshot().unwrap();
        let mut merged = MetricsSnapshot::empty();
        merged.merge(&snapshot).unwrap();
        assert_eq!(merged.histograms, snapshot.histograms);
        assert_eq!(merged.counts, snapshot.counts);
        assert_eq!(merged.timeline, snapshot.timeline);
        assert_eq!(merged.latency_series, snapshot.latency_series);
    }

    #[test]
    fn snapshot_json_has_the_documented_field_names() {
        let metrics = PerfMetrics::new();
        record_all(&metrics, &samples(4, 100, 2, Instant::now()));
        let json: serde_json::Value =
            serde_json::from_str(&metrics.snapshot().unwrap().to_json().unwrap()).unwrap();
        for field in [
            "schema_version",
            "origin_unix_s",
            "wall_time_s",
            "attempted",
            "succeeded",
            "warnings",
            "failed",
            "unknown",
            "bytes_delivered",
            "error_rate",
            "images_per_s",
            "mb_per_s",
            "latency_ms",
            "service_time_ms",
            "latency_buckets",
            "status_counts",
            "errors",
            "timeline",
            "latency_series",
            "histograms",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert!(json["latency_ms"]["p999_ms"].is_f64());
        assert!(json["histograms"]["latency"]["hdr"].is_string());
        assert!(json["timeline"][0]["p95_ms"].is_f64() || json["timeline"][0]["p95_ms"].is_null());
    }

    #[test]
    fn a_snapshot_of_another_schema_version_is_refused() {
        let mut snapshot = MetricsSnapshot::empty();
        snapshot.schema_version = 99;
        let json = serde_json::to_string(&snapshot).unwrap();
        assert!(matches!(
            MetricsSnapshot::from_json(&json),
            Err(MetricsError::SchemaVersion { found: 99, .. })
        ));
    }

    #[test]
    fn a_corrupt_timeline_histogram_fails_the_merge_and_changes_nothing() {
        let metrics = PerfMetrics::new();
        record_all(&metrics, &samples(5, 200, 2, Instant::now()));
        let mut snapshot = metrics.snapshot().unwrap();
        let before = snapshot.clone();
        let mut corrupt = snapshot.clone();
        let busy_second = corrupt.timeline.iter_mut().find(|p| p.sent > 0).unwrap();
        busy_second.latency_hdr = Some("bm90IGEgaGlzdG9ncmFt".to_owned());
        assert!(snapshot.merge(&corrupt).is_err());
        assert_eq!(snapshot, before);
    }
}
