//! The mergeable pieces that recorders fill and the aggregate sums: outcome counts, bounded
//! error texts, status code counts, the sampled latency series and the measured window.

use rand::Rng as _;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom as _;
use serde::{Deserialize, Serialize};

use crate::histogram::LatencyHistogram;
use crate::sample::Outcome;

/// At most this many distinct error texts are listed; later distinct texts are only counted.
pub const MAX_ERROR_MESSAGES: usize = 32;
/// Error texts are cut to this many bytes (at a character boundary) before being compared.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 512;
/// Points kept in the sampled latency-over-time series.
pub const LATENCY_SERIES_CAPACITY: usize = 1000;

/// Outcome counts and bytes. `attempted = succeeded + warnings + failed + unknown` by construction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Sends recorded, whatever their outcome.
    pub attempted: u64,
    /// Sends answered with status `0000`.
    pub succeeded: u64,
    /// Sends answered with a warning status (delivered).
    pub warnings: u64,
    /// Sends refused with a failure status or never sent.
    pub failed: u64,
    /// Sends whose fate is unknown (abort, lost connection, timeout while outstanding).
    pub unknown: u64,
    /// Bytes of every attempted send.
    pub bytes_attempted: u64,
    /// Bytes of delivered sends (success and warning): what MB/s is made of.
    pub bytes_delivered: u64,
}

impl OutcomeCounts {
    /// Counts one send that ended in `outcome` and carried `bytes`.
    pub fn count(&mut self, outcome: Outcome, bytes: u64) {
        self.attempted += 1;
        self.bytes_attempted += bytes;
        match outcome {
            Outcome::Success => self.succeeded += 1,
            Outcome::Warning => self.warnings += 1,
            Outcome::Failure => self.failed += 1,
            Outcome::Unknown => self.unknown += 1,
        }
        if outcome.is_delivered() {
            self.bytes_delivered += bytes;
        }
    }

    /// Adds `other`'s counts and bytes (tallies kept apart, e.g. per worker, summed).
    pub fn merge(&mut self, other: &OutcomeCounts) {
        self.attempted += other.attempted;
        self.succeeded += other.succeeded;
        self.warnings += other.warnings;
        self.failed += other.failed;
        self.unknown += other.unknown;
        self.bytes_attempted += other.bytes_attempted;
        self.bytes_delivered += other.bytes_delivered;
    }

    /// Whether `attempted = succeeded + warnings + failed + unknown`: true for counts
    /// made by [`count`](Self::count) and [`merge`](Self::merge); a check for counts
    /// that were read back or put together by hand.
    pub fn is_consistent(&self) -> bool {
        self.attempted == self.succeeded + self.warnings + self.failed + self.unknown
    }

    /// Success plus warning: instances the peer took.
    pub fn delivered(&self) -> u64 {
        self.succeeded + self.warnings
    }

    /// `(failed + unknown) / attempted`, or `None` before any attempt.
    ///
    /// Warnings are delivered, so they are not errors (they are counted and reported on
    /// their own). Unknown outcomes are errors: the sender cannot claim the instance arrived.
    pub fn error_rate(&self) -> Option<f64> {
        (self.attempted > 0).then(|| (self.failed + self.unknown) as f64 / self.attempted as f64)
    }
}

/// One distinct error text and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The text (cut to [`MAX_ERROR_MESSAGE_BYTES`]).
    pub message: String,
    /// Occurrences.
    pub count: u64,
}

/// The first [`MAX_ERROR_MESSAGES`] distinct error texts with counts; the rest only counted,
/// so a million failures cost the same memory as thirty-two.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorLog {
    pub(crate) listed: Vec<ErrorCount>,
    pub(crate) unlisted: u64,
}

impl ErrorLog {
    pub(crate) fn add(&mut self, mut message: String, count: u64) {
        truncate_at_char_boundary(&mut message, MAX_ERROR_MESSAGE_BYTES);
        if let Some(entry) = self.listed.iter_mut().find(|e| e.message == message) {
            entry.count += count;
        } else if self.listed.len() < MAX_ERROR_MESSAGES {
            self.listed.push(ErrorCount { message, count });
        } else {
            self.unlisted += count;
        }
    }

    /// Moves every entry of `other` into this log, leaving `other` empty.
    pub(crate) fn absorb(&mut self, other: &mut ErrorLog) {
        for entry in other.listed.drain(..) {
            self.add(entry.message, entry.count);
        }
        self.unlisted += std::mem::take(&mut other.unlisted);
    }

    pub(crate) fn merge(&mut self, other: &ErrorLog) {
        for entry in &other.listed {
            self.add(entry.message.clone(), entry.count);
        }
        self.unlisted += other.unlisted;
    }
}

fn truncate_at_char_boundary(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
}

/// Counts per DIMSE status code. A linear scan over a handful of codes beats a map on the
/// hot path (the first entry is `0000` in a healthy run) and allocates only for a new code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatusCounts(pub(crate) Vec<(u16, u64)>);

impl StatusCounts {
    pub(crate) fn add(&mut self, status: u16, count: u64) {
        match self.0.iter_mut().find(|(code, _)| *code == status) {
            Some((_, n)) => *n += count,
            None => self.0.push((status, count)),
        }
    }

    pub(crate) fn merge(&mut self, other: &StatusCounts) {
        for &(status, count) in &other.0 {
            self.add(status, count);
        }
    }
}

/// One kept point of the latency-over-time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SeriesPoint {
    /// Intended start, microseconds since the Unix epoch.
    pub(crate) unix_us: i64,
    pub(crate) latency_us: u64,
    pub(crate) outcome: Outcome,
}

/// A uniform random sample (reservoir, algorithm R) of at most
/// [`LATENCY_SERIES_CAPACITY`] points out of `seen`.
///
/// Random rather than every k-th point so that reservoirs from several recorders and
/// processes merge into a sample that is still uniform over all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reservoir {
    pub(crate) points: Vec<SeriesPoint>,
    pub(crate) seen: u64,
}

impl Reservoir {
    pub(crate) fn with_capacity() -> Self {
        Self {
            points: Vec::with_capacity(LATENCY_SERIES_CAPACITY),
            seen: 0,
        }
    }

    pub(crate) fn offer(&mut self, point: SeriesPoint, rng: &mut SmallRng) {
        self.seen += 1;
        if self.points.len() < LATENCY_SERIES_CAPACITY {
            self.points.push(point);
        } else {
            let slot = rng.random_range(0..self.seen);
            if let Some(kept) = self.points.get_mut(slot as usize) {
                *kept = point;
            }
        }
    }

    /// Merges `other` in, so the result is a uniform sample of both populations, and
    /// leaves `other` empty (its allocation kept).
    pub(crate) fn absorb(&mut self, other: &mut Reservoir, rng: &mut SmallRng) {
        let total = self.seen + other.seen;
        if other.seen == other.points.len() as u64 {
            // `other` holds its whole population (the usual case for a recorder's second):
            // offering its points one by one is exactly as if they had been recorded here.
            for point in other.points.drain(..) {
                self.offer(point, rng);
            }
        } else {
            // Draw without replacement: each pick comes from a population with probability
            // proportional to what is left of it (hypergeometric), then a random point of its
            // (itself uniform) reservoir. Picks from one side never exceed what it holds.
            self.points.shuffle(rng);
            other.points.shuffle(rng);
            let mut mine = std::mem::take(&mut self.points).into_iter();
            let mut theirs = other.points.drain(..);
            let (mut left_mine, mut left_theirs) = (self.seen, other.seen);
            let mut merged = Vec::with_capacity(LATENCY_SERIES_CAPACITY);
            while merged.len() < LATENCY_SERIES_CAPACITY {
                let from_mine = rng.random_range(0..left_mine + left_theirs) < left_mine;
                let pick = if from_mine {
                    left_mine -= 1;
                    mine.next()
                } else {
                    left_theirs -= 1;
                    theirs.next()
                };
                match pick {
                    Some(point) => merged.push(point),
                    None => break,
                }
            }
            drop(theirs);
            self.points = merged;
            self.seen = total;
        }
        debug_assert_eq!(self.seen, total);
        other.seen = 0;
    }
}

/// Earliest intended start and latest end seen, microseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) start_unix_us: i64,
    pub(crate) end_unix_us: i64,
}

pub(crate) fn widen(window: &mut Option<Window>, other: Option<Window>) {
    *window = match (*window, other) {
        (Some(a), Some(b)) => Some(Window {
            start_unix_us: a.start_unix_us.min(b.start_unix_us),
            end_unix_us: a.end_unix_us.max(b.end_unix_us),
        }),
        (a, b) => a.or(b),
    };
}

/// Everything one recorder (or the aggregate) has counted, except the latency of every
/// attempt, which is kept per second (see `perf::SecondTally`) and summed by the aggregate.
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    pub(crate) counts: OutcomeCounts,
    /// Latency of delivered sends only (success and warning).
    pub(crate) delivered_latency: LatencyHistogram,
    /// Service time of every attempt.
    pub(crate) service_time: LatencyHistogram,
    pub(crate) errors: ErrorLog,
    pub(crate) statuses: StatusCounts,
    pub(crate) series: Reservoir,
    pub(crate) window: Option<Window>,
}

/// What a [`Sample`](crate::Sample) becomes once its times are known in microseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) intended_unix_us: i64,
    pub(crate) end_unix_us: i64,
    pub(crate) latency_us: u64,
    pub(crate) service_us: u64,
    pub(crate) outcome: Outcome,
    pub(crate) status: Option<u16>,
    pub(crate) bytes: u64,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            counts: OutcomeCounts::default(),
            delivered_latency: LatencyHistogram::new(),
            service_time: LatencyHistogram::new(),
            errors: ErrorLog::default(),
            statuses: StatusCounts::default(),
            series: Reservoir::with_capacity(),
            window: None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.counts.attempted == 0
    }

    /// Counts one sample. Allocates only for a new status code, a new error text or
    /// (before the reservoir's capacity was reserved) a series point.
    pub(crate) fn record(&mut self, m: &Measured, error: Option<String>, rng: &mut SmallRng) {
        self.counts.count(m.outcome, m.bytes);
        self.service_time.record_micros(m.service_us);
        if m.outcome.is_delivered() {
            self.delivered_latency.record_micros(m.latency_us);
        }
        if let Some(status) = m.status {
            self.statuses.add(status, 1);
        }
        if let Some(message) = error {
            self.errors.add(message, 1);
        }
        self.series.offer(
            SeriesPoint {
                unix_us: m.intended_unix_us,
                latency_us: m.latency_us,
                outcome: m.outcome,
            },
            rng,
        );
        widen(
            &mut self.window,
            Some(Window {
                start_unix_us: m.intended_unix_us,
                end_unix_us: m.end_unix_us,
            }),
        );
    }

    /// Moves everything of `other` into this tally and empties `other`, keeping its allocations.
    pub(crate) fn absorb(&mut self, other: &mut Tally, rng: &mut SmallRng) {
        self.counts.merge(&other.counts);
        self.delivered_latency.merge(&other.delivered_latency);
        self.service_time.merge(&other.service_time);
        self.errors.absorb(&mut other.errors);
        self.statuses.merge(&other.statuses);
        self.series.absorb(&mut other.series, rng);
        widen(&mut self.window, other.window);

        other.counts = OutcomeCounts::default();
        other.delivered_latency.reset();
        other.service_time.reset();
        other.statuses.0.clear();
        other.window = None;
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    fn point(unix_us: i64) -> SeriesPoint {
        SeriesPoint {
            unix_us,
            latency_us: 1,
            outcome: Outcome::Success,
        }
    }

    #[test]
    fn every_counted_send_is_attempted_once_and_in_one_class() {
        let mut counts = OutcomeCounts::default();
        for (outcome, bytes) in [
            (Outcome::Success, 10),
            (Outcome::Warning, 20),
            (Outcome::Failure, 0),
            (Outcome::Unknown, 40),
        ] {
            counts.count(outcome, bytes);
        }
        let mut merged = counts;
        merged.merge(&counts);
        assert!(counts.is_consistent() && merged.is_consistent());
        assert_eq!(
            (
                merged.attempted,
                merged.succeeded,
                merged.warnings,
                merged.failed,
                merged.unknown
            ),
            (8, 2, 2, 2, 2)
        );
        assert_eq!((counts.bytes_attempted, counts.bytes_delivered), (70, 30));
        let broken = OutcomeCounts {
            attempted: 1,
            ..OutcomeCounts::default()
        };
        assert!(!broken.is_consistent());
    }

    #[test]
    fn a_million_distinct_errors_keep_only_the_first_texts_and_count_the_rest() {
        let mut log = ErrorLog::default();
        for i in 0..1_000_000 {
            log.add(format!("association rejected #{i}"), 1);
        }
        assert_eq!(log.listed.len(), MAX_ERROR_MESSAGES);
        let listed: u64 = log.listed.iter().map(|e| e.count).sum();
        assert_eq!(listed + log.unlisted, 1_000_000);
    }

    #[test]
    fn repeated_error_texts_are_counted_on_one_line() {
        let mut log = ErrorLog::default();
        for _ in 0..5 {
            log.add("peer aborted the association".to_owned(), 1);
        }
        assert_eq!(
            log.listed,
            vec![ErrorCount {
                message: "peer aborted the association".to_owned(),
                count: 5
            }]
        );
    }

    #[test]
    fn long_error_texts_are_cut_at_a_character_boundary() {
        let mut log = ErrorLog::default();
        log.add("é".repeat(MAX_ERROR_MESSAGE_BYTES), 1);
        let kept = &log.listed[0].message;
        assert!(kept.len() <= MAX_ERROR_MESSAGE_BYTES && kept.chars().all(|c| c == 'é'));
    }

    #[test]
    fn reservoir_stays_bounded_and_counts_its_population() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut reservoir = Reservoir::with_capacity();
        for i in 0..100_000 {
            reservoir.offer(point(i), &mut rng);
        }
        assert_eq!(reservoir.points.len(), LATENCY_SERIES_CAPACITY);
        assert_eq!(reservoir.seen, 100_000);
    }

    #[test]
    fn merged_reservoirs_sample_each_population_in_proportion() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut big = Reservoir::with_capacity();
        let mut small = Reservoir::with_capacity();
        for i in 0..90_000 {
            big.offer(point(i), &mut rng);
        }
        for i in 0..10_000 {
            small.offer(point(1_000_000 + i), &mut rng);
        }
        big.absorb(&mut small, &mut rng);
        assert_eq!(big.seen, 100_000);
        assert_eq!(big.points.len(), LATENCY_SERIES_CAPACITY);
        let from_small = big.points.iter().filter(|p| p.unix_us >= 1_000_000).count();
        // Expected 100 of 1000; 60..140 is beyond four standard deviations.
        assert!(
            (60..140).contains(&from_small),
            "{from_small} points from the small population"
        );
        assert_eq!(small.seen, 0);
        assert!(small.points.is_empty());
    }

    #[test]
    fn error_rate_counts_failures_and_unknown_but_not_warnings() {
        let mut counts = OutcomeCounts::default();
        assert_eq!(counts.error_rate(), None);
        for outcome in [
            Outcome::Success,
            Outcome::Warning,
            Outcome::Failure,
            Outcome::Unknown,
        ] {
            counts.count(outcome, 10);
        }
        assert_eq!(counts.error_rate(), Some(0.5));
        assert_eq!(counts.bytes_delivered, 20);
        assert_eq!(counts.bytes_attempted, 40);
    }
}
