//! Per-second counts and latency histograms, keyed by the Unix second in which sends ended.
//!
//! A live histogram per second would cost tens of KB each (about 150 MB for an hour-long
//! run), so only the last [`LIVE_SECONDS`] stay live; older seconds are kept as their
//! compressed HdrHistogram V2 bytes (a few hundred bytes each) and decoded on demand. A
//! recorder that reports late into a packed second (it was blocked in a long timeout) makes
//! that second decode, add and re-pack: rare, and still exact. Packing (deflate) costs about
//! half a millisecond, once per second of run for the whole process, under the lock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::MetricsError;
use crate::histogram::LatencyHistogram;
use crate::sample::Outcome;
use crate::tally::OutcomeCounts;

/// Seconds behind the newest one that keep a live histogram.
const LIVE_SECONDS: i64 = 8;

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since [`MetricsSnapshot::origin_unix_s`](crate::MetricsSnapshot::origin_unix_s)
    /// (the second in which the first send was scheduled).
    pub second: i64,
    /// The same second as a Unix time (what snapshots from several processes are aligned on).
    pub unix_s: i64,
    /// Sends that ended in this second, whatever their outcome.
    pub sent: u64,
    /// Of which succeeded.
    pub succeeded: u64,
    /// Of which were stored with a warning.
    pub warnings: u64,
    /// Of which failed.
    pub failed: u64,
    /// Of which ended with an unknown outcome.
    pub unknown: u64,
    /// Bytes delivered by the sends that ended in this second.
    pub bytes_delivered: u64,
    /// Median latency of those sends (all outcomes); `null` for a second with no send.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency of those sends.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency of those sends.
    pub p99_ms: Option<f64>,
    /// Largest latency of those sends.
    pub max_ms: Option<f64>,
    /// This second's latency histogram (HdrHistogram V2 + deflate, base64), so seconds from
    /// several processes merge exactly; `null` for a second with no send.
    pub latency_hdr: Option<String>,
}

impl TimelinePoint {
    pub(crate) fn empty(unix_s: i64, origin_unix_s: i64) -> Self {
        Self {
            second: unix_s - origin_unix_s,
            unix_s,
            sent: 0,
            succeeded: 0,
            warnings: 0,
            failed: 0,
            unknown: 0,
            bytes_delivered: 0,
            p50_ms: None,
            p95_ms: None,
            p99_ms: None,
            max_ms: None,
            latency_hdr: None,
        }
    }

    pub(crate) fn new(
        unix_s: i64,
        origin_unix_s: i64,
        counts: &OutcomeCounts,
        latency: &LatencyHistogram,
        latency_hdr: String,
    ) -> Self {
        Self {
            sent: counts.attempted,
            succeeded: counts.succeeded,
            warnings: counts.warnings,
            failed: counts.failed,
            unknown: counts.unknown,
            bytes_delivered: counts.bytes_delivered,
            p50_ms: latency.percentile_ms(50.0),
            p95_ms: latency.percentile_ms(95.0),
            p99_ms: latency.percentile_ms(99.0),
            max_ms: latency.percentile_ms(100.0),
            latency_hdr: Some(latency_hdr),
            ..Self::empty(unix_s, origin_unix_s)
        }
    }

    pub(crate) fn counts(&self) -> OutcomeCounts {
        OutcomeCounts {
            attempted: self.sent,
            succeeded: self.succeeded,
            warnings: self.warnings,
            failed: self.failed,
            unknown: self.unknown,
            bytes_attempted: 0,
            bytes_delivered: self.bytes_delivered,
        }
    }

    pub(crate) fn latency(&self) -> Result<LatencyHistogram, MetricsError> {
        match &self.latency_hdr {
            Some(encoded) => LatencyHistogram::from_base64(encoded),
            None => Ok(LatencyHistogram::new()),
        }
    }
}

/// Fills the gaps between `points` (sorted by `unix_s`, distinct) with empty seconds and
/// numbers every point from `origin_unix_s`.
pub(crate) fn contiguous(points: Vec<TimelinePoint>, origin_unix_s: i64) -> Vec<TimelinePoint> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return points;
    };
    let (first_s, last_s) = (first.unix_s.min(origin_unix_s), last.unix_s);
    let mut filled = Vec::with_capacity(usize::try_from(last_s - first_s + 1).unwrap_or(0));
    let mut points = points.into_iter().peekable();
    for unix_s in first_s..=last_s {
        match points.next_if(|p| p.unix_s == unix_s) {
            Some(mut point) => {
                point.second = unix_s - origin_unix_s;
                filled.push(point);
            }
            None => filled.push(TimelinePoint::empty(unix_s, origin_unix_s)),
        }
    }
    filled
}

#[derive(Debug)]
enum SecondLatency {
    Live(LatencyHistogram),
    Packed(Vec<u8>),
}

#[derive(Debug)]
struct Second {
    counts: OutcomeCounts,
    latency: SecondLatency,
}

impl Second {
    fn live_mut(&mut self) -> &mut LatencyHistogram {
        if let SecondLatency::Packed(bytes) = &self.latency {
            let unpacked = LatencyHistogram::from_compressed(bytes)
                .expect("bytes packed by this timeline from a valid histogram decode");
            self.latency = SecondLatency::Live(unpacked);
        }
        match &mut self.latency {
            SecondLatency::Live(histogram) => histogram,
            SecondLatency::Packed(_) => unreachable!("unpacked above"),
        }
    }

    fn pack(&mut self) {
        if let SecondLatency::Live(histogram) = &self.latency {
            // Encoding into memory cannot fail in practice; if it did, staying live only costs memory.
            if let Ok(bytes) = histogram.to_compressed() {
                self.latency = SecondLatency::Packed(bytes);
            }
        }
    }
}

/// The per-second record of the aggregate.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    seconds: BTreeMap<i64, Second>,
    /// Seconds before this one are packed (unless re-opened by a late report, then re-packed).
    packed_below: Option<i64>,
}

impl Timeline {
    /// Adds one second's counts and latency histogram.
    pub(crate) fn add(&mut self, unix_s: i64, counts: &OutcomeCounts, latency: &LatencyHistogram) {
        let second = self.second_mut(unix_s);
        second.counts.merge(counts);
        second.live_mut().merge(latency);
        self.repack(unix_s);
    }

    /// Adds one send that ended in `unix_s`.
    pub(crate) fn add_one(&mut self, unix_s: i64, outcome: Outcome, bytes: u64, latency_us: u64) {
        let second = self.second_mut(unix_s);
        second.counts.count(outcome, bytes);
        second.live_mut().record_micros(latency_us);
        self.repack(unix_s);
    }

    fn second_mut(&mut self, unix_s: i64) -> &mut Second {
        self.seconds.entry(unix_s).or_insert_with(|| Second {
            counts: OutcomeCounts::default(),
            latency: SecondLatency::Live(LatencyHistogram::new()),
        })
    }

    /// Packs `unix_s` again if a late report re-opened it, then packs what became old.
    fn repack(&mut self, unix_s: i64) {
        if self.packed_below.is_some_and(|below| unix_s < below)
            && let Some(second) = self.seconds.get_mut(&unix_s)
        {
            second.pack();
        }
        self.pack_old();
    }

    fn pack_old(&mut self) {
        let Some((&newest, _)) = self.seconds.last_key_value() else {
            return;
        };
        let below = newest - LIVE_SECONDS;
        let from = self.packed_below.unwrap_or(i64::MIN);
        if below > from {
            for (_, second) in self.seconds.range_mut(from..below) {
                second.pack();
            }
            self.packed_below = Some(below);
        }
    }

    /// Every second with at least one send, sorted, as snapshot points.
    pub(crate) fn points(&self, origin_unix_s: i64) -> Result<Vec<TimelinePoint>, MetricsError> {
        let mut points = Vec::with_capacity(self.seconds.len());
        for (&unix_s, second) in &self.seconds {
            let (latency, encoded) = match &second.latency {
                SecondLatency::Live(histogram) => (histogram.clone(), histogram.to_base64()?),
                SecondLatency::Packed(bytes) => {
                    use base64::Engine as _;
                    (
                        LatencyHistogram::from_compressed(bytes)?,
                        base64::engine::general_purpose::STANDARD.encode(bytes),
                    )
                }
            };
            points.push(TimelinePoint::new(
                unix_s,
                origin_unix_s,
                &second.counts,
                &latency,
                encoded,
            ));
        }
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_seconds_are_packed_and_still_report_exact_percentiles() {
        let mut timeline = Timeline::default();
        for unix_s in 0..100 {
            timeline.add_one(unix_s, Outcome::Success, 100, 1_000 + unix_s as u64);
        }
        let packed = timeline
            .seconds
            .values()
            .filter(|s| matches!(s.latency, SecondLatency::Packed(_)))
            .count();
        // The newest second and the LIVE_SECONDS before it stay live.
        assert_eq!(packed, 100 - (LIVE_SECONDS as usize + 1));
        let points = timeline.points(0).unwrap();
        assert_eq!(points.len(), 100);
        assert_eq!(points[3].p95_ms, Some(1.003));
        assert_eq!(points[3].sent, 1);
    }

    #[test]
    fn a_late_report_into_a_packed_second_is_added_not_lost() {
        let mut timeline = Timeline::default();
        timeline.add_one(0, Outcome::Success, 100, 500);
        timeline.add_one(60, Outcome::Success, 100, 500);
        timeline.add_one(0, Outcome::Unknown, 100, 60_000_000);
        let points = timeline.points(0).unwrap();
        assert_eq!((points[0].sent, points[0].unknown), (2, 1));
        assert!(points[0].max_ms.unwrap() >= 60_000.0);
        assert!(matches!(
            timeline.seconds[&0].latency,
            SecondLatency::Packed(_)
        ));
    }

    #[test]
    fn gaps_between_seconds_are_filled_with_empty_seconds() {
        let mut timeline = Timeline::default();
        timeline.add_one(10, Outcome::Success, 100, 500);
        timeline.add_one(13, Outcome::Failure, 100, 500);
        let points = contiguous(timeline.points(10).unwrap(), 9);
        let sent: Vec<(i64, u64)> = points.iter().map(|p| (p.second, p.sent)).collect();
        assert_eq!(sent, vec![(0, 0), (1, 1), (2, 0), (3, 0), (4, 1)]);
        assert_eq!(points[2].p95_ms, None);
    }
}
