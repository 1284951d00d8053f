//! Live progress of a load run: the counters workers bump ([`Live`]) and what the
//! caller's [`LoadObserver`] hears from them every progress interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::{OutcomeCounts, PerfMetrics};
use serde::Serialize;

use super::events::{SendEvent, SendTally};

/// Progress of a running load, as reported to a [`LoadObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadProgress {
    /// Time since the run started.
    #[serde(serialize_with = "dimse::serde_duration::seconds")]
    pub elapsed: Duration,
    /// Sends whose outcome is known.
    pub attempted: u64,
    /// Success.
    pub succeeded: u64,
    /// Delivered with a warning status.
    pub warnings: u64,
    /// Failure.
    pub failed: u64,
    /// Unknown.
    pub unknown: u64,
    /// Sends planned in all, when the run is bounded by a count.
    pub planned: Option<u64>,
    /// Outcomes per second over the last progress interval.
    pub current_rate: f64,
    /// 95th percentile latency so far (lags the workers by up to a second).
    pub p95_latency_ms: Option<f64>,
    /// Associations open right now.
    pub open_associations: u64,
}

/// Receives progress while a load runs (from the thread that called
/// [`run_load`](crate::run_load)). Closures `Fn(&LoadProgress)` are observers.
pub trait LoadObserver: Sync {
    /// Called every progress interval, and once more with the final figures.
    fn on_progress(&self, progress: &LoadProgress);
}

impl<F: Fn(&LoadProgress) + Sync> LoadObserver for F {
    fn on_progress(&self, progress: &LoadProgress) {
        self(progress)
    }
}

/// An observer that ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl LoadObserver for NoObserver {
    fn on_progress(&self, _: &LoadProgress) {}
}

/// Counters the progress thread reads while workers run.
#[derive(Default)]
pub(super) struct Live {
    counts: [AtomicU64; 4],
    open_associations: AtomicU64,
}

impl Live {
    /// A worker's association opened (`true`) or closed.
    pub(super) fn association(&self, opened: bool) {
        if opened {
            self.open_associations.fetch_add(1, Ordering::Relaxed);
        } else {
            self.open_associations.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The outcomes so far, as one consistent set of counts (each class read once).
    fn counts(&self) -> OutcomeCounts {
        let get = |i: usize| self.counts[i].load(Ordering::Relaxed);
        let (succeeded, warnings, failed, unknown) = (get(0), get(1), get(2), get(3));
        OutcomeCounts {
            attempted: succeeded + warnings + failed + unknown,
            succeeded,
            warnings,
            failed,
            unknown,
            ..OutcomeCounts::default()
        }
    }

    pub(super) fn progress(
        &self,
        elapsed: Duration,
        planned: Option<u64>,
        rate: f64,
        p95: Option<f64>,
    ) -> LoadProgress {
        let c = self.counts();
        LoadProgress {
            elapsed,
            attempted: c.attempted,
            succeeded: c.succeeded,
            warnings: c.warnings,
            failed: c.failed,
            unknown: c.unknown,
            planned,
            current_rate: rate,
            p95_latency_ms: p95,
            open_associations: self.open_associations.load(Ordering::Relaxed),
        }
    }
}

/// Progress is a tally like the others: one relaxed atomic add per send, read by the
/// thread that reports.
impl SendTally for &Live {
    fn on_send(&mut self, event: &SendEvent) {
        let i = match event.outcome.outcome {
            metrics::Outcome::Success => 0,
            metrics::Outcome::Warning => 1,
            metrics::Outcome::Failure => 2,
            metrics::Outcome::Unknown => 3,
        };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Turns the live counters into [`LoadProgress`] for the observer: the current rate
/// is over the time since the previous report.
pub(super) struct ProgressReporter<'a> {
    pub(super) live: &'a Live,
    pub(super) metrics: &'a PerfMetrics,
    pub(super) observer: &'a dyn LoadObserver,
    pub(super) start: Instant,
    pub(super) planned: Option<u64>,
    pub(super) last: (Instant, u64),
}

impl ProgressReporter<'_> {
    pub(super) fn report(&mut self) {
        let now = Instant::now();
        let attempted = self.live.counts().attempted;
        let dt = now.duration_since(self.last.0).as_secs_f64();
        let rate = if dt > 0.0 {
            (attempted - self.last.1) as f64 / dt
        } else {
            0.0
        };
        self.last = (now, attempted);
        self.observer.on_progress(&self.live.progress(
            self.start.elapsed(),
            self.planned,
            rate,
            self.metrics.p95_latency_ms(),
        ));
    }
}
