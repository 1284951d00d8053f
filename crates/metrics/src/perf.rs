//! [`PerfMetrics`] (the shared, queryable total) and [`Recorder`] (one per worker thread).
//!
//! Why per-worker recorders rather than hdrhistogram's `sync` module or a lock per sample:
//! a recorder owns plain histograms and counters, so recording is a few array increments
//! with no atomic or lock, and it hands everything to the shared total once per wall-clock
//! second (when a sample ends in a newer second than any before), on [`Recorder::flush`]
//! and on drop. `SyncHistogram` would give the histograms but not the counters, error
//! texts, timeline and series, which would then need their own synchronisation.
//!
//! The latency of every attempt is kept per second of its end (the current second and the
//! one before, since ends of overlapping operations arrive slightly out of order), so the
//! same histogram feeds the timeline's per-second percentiles and, summed, the overall ones.
//! A sample ending more than a second before the newest one goes straight to the total under
//! the lock: rare, and a flip-flop around a second boundary never costs a flush per sample.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;

use crate::error::MetricsError;
use crate::histogram::{LatencyHistogram, LatencySummary};
use crate::sample::Sample;
use crate::snapshot::{self, MetricsSnapshot};
use crate::tally::{Measured, OutcomeCounts, Tally};
use crate::timeline::{Timeline, TimelinePoint};

/// Converts [`Instant`]s into wall-clock microseconds from one reading of both clocks, so
/// that timelines of several processes line up and later clock adjustments do not bend a run.
#[derive(Debug, Clone, Copy)]
struct Clock {
    anchor: Instant,
    anchor_unix_us: i64,
}

impl Clock {
    fn now() -> Self {
        let anchor = Instant::now();
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            anchor,
            anchor_unix_us: i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// Nanoseconds from the anchor to `at`, negative for earlier instants.
    fn offset_ns(&self, at: Instant) -> i128 {
        match at.checked_duration_since(self.anchor) {
            Some(after) => after.as_nanos() as i128,
            None => -(self.anchor.saturating_duration_since(at).as_nanos() as i128),
        }
    }

    fn unix_us(&self, offset_ns: i128) -> i64 {
        let unix_us = i128::from(self.anchor_unix_us) + offset_ns.div_euclid(1_000);
        i64::try_from(unix_us).unwrap_or(if unix_us < 0 { i64::MIN } else { i64::MAX })
    }

    /// One clock reading per instant (three, where the obvious code takes four): this runs
    /// for every sample on every worker.
    fn measure(&self, sample: &Sample) -> Measured {
        let intended = self.offset_ns(sample.intended_start);
        let actual = self.offset_ns(sample.actual_start);
        let end = self.offset_ns(sample.end);
        // Same as `Sample::latency().as_micros()`: whole microseconds of a non-negative span.
        let micros_between =
            |from: i128, to: i128| u64::try_from((to - from).max(0) / 1_000).unwrap_or(u64::MAX);
        Measured {
            intended_unix_us: self.unix_us(intended),
            end_unix_us: self.unix_us(end),
            latency_us: micros_between(intended, end),
            service_us: micros_between(actual, end),
            outcome: sample.outcome,
            status: sample.status,
            bytes: sample.bytes,
        }
    }
}

fn unix_second(unix_us: i64) -> i64 {
    unix_us.div_euclid(1_000_000)
}

/// Counts and latency of the sends that ended in one second.
#[derive(Debug)]
struct SecondTally {
    counts: OutcomeCounts,
    latency: LatencyHistogram,
}

impl SecondTally {
    fn new() -> Self {
        Self {
            counts: OutcomeCounts::default(),
            latency: LatencyHistogram::new(),
        }
    }

    fn record(&mut self, measured: &Measured) {
        self.counts.count(measured.outcome, measured.bytes);
        self.latency.record_micros(measured.latency_us);
    }
}

/// The flushed total: everything recorders have handed over.
#[derive(Debug)]
struct Aggregate {
    tally: Tally,
    /// Latency of every attempt, whatever its outcome: its count equals `tally.counts.attempted`.
    latency: LatencyHistogram,
    timeline: Timeline,
    rng: SmallRng,
}

impl Aggregate {
    fn record(&mut self, measured: &Measured, error: Option<String>) {
        self.latency.record_micros(measured.latency_us);
        self.timeline.add_one(
            unix_second(measured.end_unix_us),
            measured.outcome,
            measured.bytes,
            measured.latency_us,
        );
        self.tally.record(measured, error, &mut self.rng);
    }

    /// Takes one second of a recorder, leaving it empty.
    fn absorb_second(&mut self, unix_s: i64, second: &mut SecondTally) {
        if second.counts.attempted > 0 {
            self.timeline.add(unix_s, &second.counts, &second.latency);
            self.latency.merge(&second.latency);
            second.counts = OutcomeCounts::default();
            second.latency.reset();
        }
    }
}

#[derive(Debug)]
struct Shared {
    clock: Clock,
    aggregate: Mutex<Aggregate>,
    recorders_created: AtomicU64,
}

/// Thread-safe performance metrics of a load run: counts, latency and service-time
/// histograms, a per-second timeline, a sampled latency series and bounded error texts.
///
/// Cloning is cheap and every clone shows the same totals. Worker threads record through
/// their own [`Recorder`] (see [`recorder`](Self::recorder)); queries and
/// [`snapshot`](Self::snapshot) see what recorders have flushed, which is everything
/// once they are flushed or dropped, and otherwise lags by at most the current second
/// of each busy recorder.
///
/// Definitions used by every query:
/// - latency percentiles cover **every attempt, whatever its outcome** (a timed-out store
///   weighs in with its full wait, so stalls cannot hide);
///   [`delivered_latency_summary`](Self::delivered_latency_summary) covers success and
///   warning only;
/// - wall time runs from the earliest intended start to the latest end recorded;
/// - images/s and MB/s count delivered sends (success and warning) over that wall time;
///   MB is 10⁶ bytes;
/// - the timeline files each send under the second in which it **ended**, so `sent` per
///   second is completions per second and a stall shows as a gap followed by slow sends.
///
/// Memory of the total: three histograms (at most about 190 KB each), a 1000-point series,
/// 32 error texts, and per second of run a few hundred bytes (the last nine seconds live,
/// older ones compressed): about 1.5 MB for an hour-long run.
#[derive(Clone)]
pub struct PerfMetrics {
    shared: Arc<Shared>,
}

impl fmt::Debug for PerfMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfMetrics")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Default for PerfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfMetrics {
    /// Empty metrics; the wall clock is read now to place [`Instant`]s in time.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                clock: Clock::now(),
                aggregate: Mutex::new(Aggregate {
                    tally: Tally::new(),
                    latency: LatencyHistogram::new(),
                    timeline: Timeline::default(),
                    rng: SmallRng::seed_from_u64(0),
                }),
                recorders_created: AtomicU64::new(0),
            }),
        }
    }

    /// A recorder for one worker thread. Create one per thread (it is `Send`, not shared).
    pub fn recorder(&self) -> Recorder {
        let id = self
            .shared
            .recorders_created
            .fetch_add(1, Ordering::Relaxed);
        Recorder {
            shared: Arc::clone(&self.shared),
            tally: Tally::new(),
            newest_second: None,
            seconds: [SecondTally::new(), SecondTally::new()],
            // Seeded per recorder: the series only needs samples independent of latency,
            // not unpredictable ones.
            rng: SmallRng::seed_from_u64(id.wrapping_add(1)),
        }
    }

    /// Records one sample straight into the total, taking the lock: for occasional sends
    /// (a single store, an echo). Load loops use a [`Recorder`] per worker instead.
    pub fn record(&self, sample: Sample) {
        let measured = self.shared.clock.measure(&sample);
        self.shared.aggregate.lock().record(&measured, sample.error);
    }

    fn with_tally<T>(&self, query: impl FnOnce(&Tally) -> T) -> T {
        query(&self.shared.aggregate.lock().tally)
    }

    fn with_latency<T>(&self, query: impl FnOnce(&LatencyHistogram) -> T) -> T {
        query(&self.shared.aggregate.lock().latency)
    }

    /// Outcome counts and bytes.
    pub fn counts(&self) -> OutcomeCounts {
        self.with_tally(|t| t.counts)
    }

    /// Sends recorded, whatever their outcome.
    pub fn attempted(&self) -> u64 {
        self.counts().attempted
    }

    /// Sends answered with status `0000`.
    pub fn succeeded(&self) -> u64 {
        self.counts().succeeded
    }

    /// Sends stored with a warning status.
    pub fn warnings(&self) -> u64 {
        self.counts().warnings
    }

    /// Sends refused or never sent.
    pub fn failed(&self) -> u64 {
        self.counts().failed
    }

    /// Sends whose fate is unknown (abort, lost connection, timeout while outstanding).
    pub fn unknown(&self) -> u64 {
        self.counts().unknown
    }

    /// `(failed + unknown) / attempted`; `None` before any attempt, so an empty run can
    /// never pass an error-rate threshold by accident. Warnings are not errors.
    pub fn error_rate(&self) -> Option<f64> {
        self.counts().error_rate()
    }

    /// 95th percentile latency (every outcome) in milliseconds; `None` before any attempt.
    pub fn p95_latency_ms(&self) -> Option<f64> {
        self.with_latency(|h| h.percentile_ms(95.0))
    }

    /// Latency (every outcome) at `percentile` (0 to 100); `None` before any attempt.
    pub fn latency_percentile(&self, percentile: f64) -> Option<Duration> {
        self.with_latency(|h| h.percentile(percentile))
    }

    /// Min, mean, percentiles and max of the latency of every attempt.
    pub fn latency_summary(&self) -> Option<LatencySummary> {
        self.with_latency(LatencyHistogram::summary)
    }

    /// Min, mean, percentiles and max of the latency of delivered sends (success, warning).
    pub fn delivered_latency_summary(&self) -> Option<LatencySummary> {
        self.with_tally(|t| t.delivered_latency.summary())
    }

    /// Min, mean, percentiles and max of the service time (from the actual start) of every attempt.
    pub fn service_time_summary(&self) -> Option<LatencySummary> {
        self.with_tally(|t| t.service_time.summary())
    }

    /// A copy of the latency histogram of every attempt.
    pub fn latency_histogram(&self) -> LatencyHistogram {
        self.with_latency(LatencyHistogram::clone)
    }

    /// From the earliest intended start to the latest end; `None` before any attempt.
    pub fn wall_time(&self) -> Option<Duration> {
        self.with_tally(|t| t.window).map(|w| {
            Duration::from_micros(u64::try_from(w.end_unix_us - w.start_unix_us).unwrap_or(0))
        })
    }

    /// Delivered images per second over the wall time; `None` before any attempt or when
    /// the wall time is zero.
    pub fn images_per_sec(&self) -> Option<f64> {
        let (counts, window) = self.with_tally(|t| (t.counts, t.window));
        snapshot::per_second(counts.delivered() as f64, window)
    }

    /// Attempted sends per second over the wall time (the achieved send rate).
    pub fn attempts_per_sec(&self) -> Option<f64> {
        let (counts, window) = self.with_tally(|t| (t.counts, t.window));
        snapshot::per_second(counts.attempted as f64, window)
    }

    /// Delivered megabytes (10⁶ bytes) per second over the wall time.
    pub fn megabytes_per_sec(&self) -> Option<f64> {
        let (counts, window) = self.with_tally(|t| (t.counts, t.window));
        snapshot::per_second(counts.bytes_delivered as f64 / 1e6, window)
    }

    /// One point per second from the first scheduled send to the last end, gaps included.
    pub fn timeline(&self) -> Result<Vec<TimelinePoint>, MetricsError> {
        Ok(self.snapshot()?.timeline)
    }

    /// Everything above as a serializable, mergeable [`MetricsSnapshot`].
    pub fn snapshot(&self) -> Result<MetricsSnapshot, MetricsError> {
        let aggregate = self.shared.aggregate.lock();
        MetricsSnapshot::from_parts(&aggregate.tally, &aggregate.latency, &aggregate.timeline)
    }
}

/// A worker thread's recorder: records without locking, hands its tally to the
/// [`PerfMetrics`] it came from at each new wall-clock second, on [`flush`](Self::flush)
/// and when dropped.
///
/// Memory: four auto-sized histograms (tens of KB each for millisecond latencies, at
/// most about 190 KB each) plus a 24 KB series buffer, reserved up front so that recording
/// a success does not allocate.
pub struct Recorder {
    shared: Arc<Shared>,
    tally: Tally,
    /// The latest Unix second any recorded send ended in.
    newest_second: Option<i64>,
    /// Sends that ended in `newest_second` and in the second before it.
    seconds: [SecondTally; 2],
    rng: SmallRng,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("unflushed", &self.tally.counts)
            .field("newest_second", &self.newest_second)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Records one sample: no lock, and no allocation in steady state. It allocates only
    /// when a sample brings a status code not seen before, an error text (moved in, kept
    /// only if among the first distinct ones), or a latency larger than any before that
    /// makes a histogram grow (a few dozen times at most over a recorder's life: histograms
    /// keep their size when flushed). Once per wall-clock second it takes the lock to flush.
    pub fn record(&mut self, sample: Sample) {
        let measured = self.shared.clock.measure(&sample);
        let unix_s = unix_second(measured.end_unix_us);
        let slot = match self.newest_second {
            Some(newest) if unix_s == newest => 0,
            Some(newest) if unix_s == newest - 1 => 1,
            Some(newest) if unix_s < newest => {
                // Ended more than a second before a send already recorded here: rare (an
                // operation that overlapped a long one), so it goes whole to the total under
                // the lock rather than costing a flush.
                self.shared.aggregate.lock().record(&measured, sample.error);
                return;
            }
            _ => {
                self.flush();
                self.newest_second = Some(unix_s);
                0
            }
        };
        self.seconds[slot].record(&measured);
        self.tally.record(&measured, sample.error, &mut self.rng);
    }

    /// Hands everything recorded so far to the shared [`PerfMetrics`].
    pub fn flush(&mut self) {
        if self.tally.is_empty() {
            return;
        }
        let mut aggregate = self.shared.aggregate.lock();
        let aggregate = &mut *aggregate;
        if let Some(newest) = self.newest_second {
            let [current, previous] = &mut self.seconds;
            aggregate.absorb_second(newest, current);
            aggregate.absorb_second(newest - 1, previous);
        }
        aggregate.tally.absorb(&mut self.tally, &mut aggregate.rng);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::thread;

    use rand::Rng as _;

    use super::*;
    use crate::sample::Outcome;

    fn sample_at(start: Instant, offset_ms: u64, latency_ms: u64, outcome: Outcome) -> Sample {
        let intended = start + Duration::from_millis(offset_ms);
        let end = intended + Duration::from_millis(latency_ms);
        Sample::new(intended, intended, end, outcome).with_bytes(1_000)
    }

    #[test]
    fn totals_add_up_for_any_interleaving_of_recorders_across_threads() {
        let metrics = PerfMetrics::new();
        let start = Instant::now();
        let workers: Vec<_> = (0..8_u64)
            .map(|worker| {
                let metrics = metrics.clone();
                thread::spawn(move || {
                    let mut rng = SmallRng::seed_from_u64(worker);
                    let mut recorder = metrics.recorder();
                    let mut expected = [0_u64; 4];
                    for i in 0..20_000_u64 {
                        let outcome = match rng.random_range(0..4) {
                            0 => Outcome::Success,
                            1 => Outcome::Warning,
                            2 => Outcome::Failure,
                            _ => Outcome::Unknown,
                        };
                        expected[outcome as usize] += 1;
                        // Spread over several seconds so recorders flush mid-run, in any order.
                        let offset_ms = i / 4 + rng.random_range(0..3_000);
                        let mut sample =
                            sample_at(start, offset_ms, rng.random_range(1..400), outcome);
                        if outcome.is_error() {
                            sample.error = Some(format!("error kind {}", i % 50));
                        }
                        recorder.record(sample);
                        if rng.random_range(0..1_000) == 0 {
                            recorder.flush();
                        }
                    }
                    expected
                })
            })
            .collect();
        let mut expected = [0_u64; 4];
        for worker in workers {
            for (total, n) in expected.iter_mut().zip(worker.join().unwrap()) {
                *total += n;
            }
        }

        let counts = metrics.counts();
        assert_eq!(counts.attempted, 160_000);
        assert_eq!(
            [
                counts.succeeded,
                counts.warnings,
                counts.failed,
                counts.unknown
            ],
            expected
        );
        assert_eq!(
            counts.attempted,
            counts.succeeded + counts.warnings + counts.failed + counts.unknown
        );
        let snapshot = metrics.snapshot().unwrap();
        assert_eq!(snapshot.histograms.latency.len(), counts.attempted);
        assert_eq!(snapshot.histograms.service_time.len(), counts.attempted);
        assert_eq!(
            snapshot.histograms.delivered_latency.len(),
            counts.delivered()
        );
        let per_second: u64 = snapshot.timeline.iter().map(|p| p.sent).sum();
        assert_eq!(per_second, counts.attempted);
        let per_second_failed: u64 = snapshot.timeline.iter().map(|p| p.failed).sum();
        assert_eq!(per_second_failed, counts.failed);
        let listed: u64 = snapshot.errors.iter().map(|e| e.count).sum();
        assert_eq!(
            listed + snapshot.errors_unlisted,
            counts.failed + counts.unknown
        );
        assert_eq!(snapshot.latency_series_population, counts.attempted);
    }

    #[test]
    fn measured_times_match_the_sample_to_the_microsecond() {
        let clock = Clock::now();
        let at = |ns: i64| match u64::try_from(ns) {
            Ok(after) => clock.anchor + Duration::from_nanos(after),
            Err(_) => clock.anchor - Duration::from_nanos(ns.unsigned_abs()),
        };
        for (intended, actual, end) in [
            (-2_500_999_i64, -1_000_001, 1_999_999_999),
            (0, 999, 1_000),
            (7_123_456_789, 7_123_456_789, 7_123_457_788),
            (5_000, 6_000, 4_000),
        ] {
            let sample = Sample::new(at(intended), at(actual), at(end), Outcome::Success);
            let measured = clock.measure(&sample);
            assert_eq!(
                u128::from(measured.latency_us),
                sample.latency().as_micros()
            );
            assert_eq!(
                u128::from(measured.service_us),
                sample.service_time().as_micros()
            );
            assert_eq!(
                measured.end_unix_us - clock.anchor_unix_us,
                end.div_euclid(1_000),
                "end {end} ns after the anchor"
            );
        }
    }

    #[test]
    fn metrics_are_shared_across_threads_and_recorders_move_into_them() {
        fn shared<T: Send + Sync>() {}
        fn movable<T: Send>() {}
        shared::<PerfMetrics>();
        shared::<MetricsSnapshot>();
        shared::<LatencyHistogram>();
        movable::<Recorder>();
    }

    #[test]
    fn an_unflushed_recorder_is_counted_once_it_is_dropped() {
        let metrics = PerfMetrics::new();
        let start = Instant::now();
        let mut recorder = metrics.recorder();
        recorder.record(sample_at(start, 0, 5, Outcome::Success));
        recorder.record(sample_at(start, 1, 5, Outcome::Success));
        assert_eq!(
            metrics.attempted(),
            0,
            "recorded within one second, not yet flushed"
        );
        drop(recorder);
        assert_eq!(metrics.attempted(), 2);
    }

    #[test]
    fn a_stalled_router_shows_in_latency_from_the_intended_start() {
        let metrics = PerfMetrics::new();
        let start = Instant::now();
        // Ten sends scheduled 100 ms apart; the router stalls for 2 s on the first, and the
        // others start late but are served in 1 ms each.
        let mut recorder = metrics.recorder();
        for i in 0..10_u64 {
            let intended = start + Duration::from_millis(100 * i);
            let actual = start + Duration::from_millis(2_000 + i);
            let end = actual + Duration::from_millis(1);
            recorder.record(Sample::new(intended, actual, end, Outcome::Success));
        }
        drop(recorder);
        let latency = metrics.latency_summary().unwrap();
        let service = metrics.service_time_summary().unwrap();
        assert!(latency.p50_ms > 1_000.0, "latency p50 {}", latency.p50_ms);
        assert!(service.max_ms < 2.0, "service max {}", service.max_ms);
    }

    #[test]
    fn failures_count_in_the_latency_histogram_but_not_in_delivered_latency() {
        let metrics = PerfMetrics::new();
        let start = Instant::now();
        metrics.record(sample_at(start, 0, 10, Outcome::Success));
        metrics.record(sample_at(start, 0, 60_000, Outcome::Unknown).with_error("DIMSE timeout"));
        assert_eq!(metrics.latency_summary().unwrap().count, 2);
        assert!(metrics.latency_summary().unwrap().max_ms >= 60_000.0);
        assert_eq!(metrics.delivered_latency_summary().unwrap().count, 1);
        assert_eq!(metrics.error_rate(), Some(0.5));
    }

    #[test]
    fn throughput_counts_delivered_images_over_the_wall_time() {
        let metrics = PerfMetrics::new();
        let start = Instant::now();
        // 100 sends over 10 s (the last ends at 10 s), one in ten failed.
        for i in 0..100_u64 {
            let outcome = if i % 10 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            metrics.record(sample_at(start, i * 100, 100, outcome).with_bytes(2_000_000));
        }
        assert_eq!(metrics.wall_time(), Some(Duration::from_secs(10)));
        assert_eq!(metrics.images_per_sec(), Some(9.0));
        assert_eq!(metrics.attempts_per_sec(), Some(10.0));
        assert_eq!(metrics.megabytes_per_sec(), Some(18.0));
    }

    #[test]
    fn an_empty_run_has_no_rates_or_percentiles_to_pass_a_threshold_with() {
        let metrics = PerfMetrics::new();
        assert_eq!(metrics.error_rate(), None);
        assert_eq!(metrics.p95_latency_ms(), None);
        assert_eq!(metrics.images_per_sec(), None);
        assert!(metrics.timeline().unwrap().is_empty());
    }

    #[test]
    fn timeline_counts_each_second_by_when_sends_ended() {
        let metrics = PerfMetrics::new();
        let start = Instant::now();
        let mut recorder = metrics.recorder();
        for i in 0..30_u64 {
            recorder.record(sample_at(start, i * 100, 5, Outcome::Success));
        }
        recorder.record(sample_at(start, 3_000, 5, Outcome::Failure));
        drop(recorder);
        let timeline = metrics.timeline().unwrap();
        assert_eq!(timeline.iter().map(|p| p.sent).sum::<u64>(), 31);
        assert_eq!(timeline.iter().map(|p| p.failed).sum::<u64>(), 1);
        assert!(timeline.len() >= 4 && timeline.len() <= 5);
        assert!(
            timeline
                .iter()
                .all(|p| p.sent == 0 || p.p95_ms.is_some_and(|ms| (ms - 5.0).abs() < 0.01))
        );
        assert_eq!(timeline[0].second, 0);
    }
}
