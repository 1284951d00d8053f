//! [`LatencyHistogram`]: an HDR histogram of durations in microseconds with the one
//! configuration used everywhere in dicom-auto, so any two of them merge exactly.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::de::Error as _;
use serde::ser::{Error as _, SerializeStruct as _};
use serde::{
    Deserialize, Deserializer as SerdeDeserializer, Serialize, Serializer as SerdeSerializer,
};

use crate::error::MetricsError;

/// Smallest distinguishable value: 1 microsecond.
pub const LOWEST_DISCERNIBLE_US: u64 = 1;
/// Largest value kept as is: 1 hour in microseconds. Larger values are clamped to it
/// and counted in [`LatencyHistogram::clamped`].
pub const HIGHEST_TRACKABLE_US: u64 = 3_600_000_000;
/// Precision: values are kept to 3 significant digits (0.1 % relative error).
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// Percentiles, extremes and mean of a set of durations, in milliseconds.
///
/// This is what the summary table, `--json` and the report print; field names are
/// the JSON names.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of values the summary is made of.
    pub count: u64,
    /// Smallest value.
    pub min_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value (after clamping to one hour).
    pub max_ms: f64,
}

/// One bar of a latency histogram chart: how many values fell in `(lower_ms, upper_ms]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyBucket {
    /// Exclusive lower bound in milliseconds (0 for the first bucket).
    pub lower_ms: f64,
    /// Inclusive upper bound in milliseconds.
    pub upper_ms: f64,
    /// Values in the bucket.
    pub count: u64,
}

/// An HDR histogram of durations (1 µs to 1 h, 3 significant digits) that merges exactly.
///
/// Every histogram built by this crate has the same configuration, so adding one to
/// another gives the same percentiles as recording all values into one. It grows with
/// the largest value recorded (a few tens of KB for millisecond latencies, about 190 KB
/// at the one-hour limit) rather than allocating the whole range up front. Durations
/// above one hour are recorded as one hour and counted in [`clamped`](Self::clamped),
/// so a stuck peer can never make recording fail.
///
/// Serialized (serde) as `{"clamped": n, "hdr": "<base64 of HdrHistogram V2 + deflate>"}`,
/// readable by any HdrHistogram implementation.
#[derive(Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    clamped: u64,
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.hist.len())
            .field("max_us", &self.hist.max())
            .field("clamped", &self.clamped)
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Equal when the same values were recorded, whatever size each histogram has grown to
/// (hdrhistogram's own `==` also compares sizes).
impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &Self) -> bool {
        let recorded = |h: &Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>()
        };
        self.clamped == other.clamped
            && self.hist.len() == other.hist.len()
            && recorded(&self.hist) == recorded(&other.hist)
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let hist = Histogram::new(SIGNIFICANT_DIGITS)
            .expect("3 significant digits with auto-resize is a valid HDR configuration");
        Self { hist, clamped: 0 }
    }

    /// Records one duration.
    pub fn record(&mut self, value: Duration) {
        self.record_micros(u64::try_from(value.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one duration given in microseconds.
    pub fn record_micros(&mut self, micros: u64) {
        self.record_micros_n(micros, 1);
    }

    /// Records `count` occurrences of a duration given in microseconds.
    pub fn record_micros_n(&mut self, micros: u64, count: u64) {
        if count == 0 {
            return;
        }
        let value = if micros > HIGHEST_TRACKABLE_US {
            self.clamped += count;
            HIGHEST_TRACKABLE_US
        } else {
            micros
        };
        // `record_n` grows the histogram up to the value (at most one hour: a few hundred KB).
        // It can only fail if growing needed more than `usize` can index, which one hour at
        // 3 digits does not; the saturating fallback is there so recording can never panic.
        if self.hist.record_n(value, count).is_err() {
            self.hist.saturating_record_n(value, count);
        }
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// How many recorded values exceeded one hour and were recorded as one hour.
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The value at `percentile` (0 to 100, e.g. `99.9`), or `None` when empty.
    ///
    /// As in every HDR histogram, the answer is the highest value equivalent to the
    /// recorded one at 3 significant digits, never lower than the true value.
    pub fn percentile(&self, percentile: f64) -> Option<Duration> {
        self.percentile_micros(percentile)
            .map(Duration::from_micros)
    }

    fn percentile_micros(&self, percentile: f64) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        let quantile = (percentile / 100.0).clamp(0.0, 1.0);
        Some(self.hist.value_at_quantile(quantile))
    }

    /// The value at `percentile` in milliseconds, or `None` when empty.
    pub fn percentile_ms(&self, percentile: f64) -> Option<f64> {
        self.percentile_micros(percentile).map(micros_to_ms)
    }

    /// Smallest recorded value, or `None` when empty.
    pub fn min(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_micros(self.hist.min()))
    }

    /// Largest recorded value (at most one hour), or `None` when empty.
    pub fn max(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_micros(self.hist.max()))
    }

    /// Mean of the recorded values, or `None` when empty.
    pub fn mean(&self) -> Option<Duration> {
        (!self.is_empty()).then(|| Duration::from_secs_f64(self.hist.mean() / 1e6))
    }

    /// Count, min, mean, p50, p90, p95, p99, p99.9 and max in milliseconds, or `None` when empty.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.is_empty() {
            return None;
        }
        let at = |p: f64| micros_to_ms(self.hist.value_at_quantile(p));
        Some(LatencySummary {
            count: self.hist.len(),
            min_ms: micros_to_ms(self.hist.min()),
            mean_ms: self.hist.mean() / 1e3,
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: micros_to_ms(self.hist.max()),
        })
    }

    /// Counts per bucket on a 1-2-5 millisecond scale (…, 0.1, 0.2, 0.5, 1, 2, 5, 10 ms, …),
    /// from the first bucket holding a value to the last; the counts add up to [`len`](Self::len).
    pub fn buckets(&self) -> Vec<LatencyBucket> {
        let mut buckets: Vec<LatencyBucket> = Vec::new();
        if self.is_empty() {
            return buckets;
        }
        let bounds = bucket_bounds_us(self.hist.max());
        let mut counts = vec![0_u64; bounds.len()];
        for value in self.hist.iter_recorded() {
            // Each HDR bucket is assigned whole by its representative value, so the chart
            // never splits one recorded value across two bars.
            let representative = self.hist.highest_equivalent(value.value_iterated_to());
            let index = bounds.partition_point(|&upper| upper < representative);
            let index = index.min(bounds.len() - 1);
            counts[index] += value.count_at_value();
        }
        let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
        let last = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
        for (index, &count) in counts.iter().enumerate().take(last + 1).skip(first) {
            let lower = if index == 0 { 0 } else { bounds[index - 1] };
            buckets.push(LatencyBucket {
                lower_ms: micros_to_ms(lower),
                upper_ms: micros_to_ms(bounds[index]),
                count,
            });
        }
        buckets
    }

    /// Adds every value of `other` to this histogram (exact: same configuration).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.clamped += other.clamped;
        // Cannot fail: both histograms hold values within 1 h and this one auto-resizes.
        self.hist
            .add(&other.hist)
            .expect("histograms of this crate share one configuration and auto-resize");
    }

    /// Forgets every value, keeping the allocation.
    pub fn reset(&mut self) {
        self.hist.reset();
        self.clamped = 0;
    }

    /// The HdrHistogram itself (for writers of HdrHistogram's own formats).
    pub(crate) fn hdr(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The histogram in HdrHistogram's V2 + deflate format, base64-encoded
    /// (the `clamped` count is not part of it).
    pub fn to_base64(&self) -> Result<String, MetricsError> {
        Ok(BASE64.encode(self.to_compressed()?))
    }

    /// Reads a histogram written by [`to_base64`](Self::to_base64) (or by any HdrHistogram
    /// implementation with V2 encoding, deflated or not, lowest value 1 and 3 significant digits).
    pub fn from_base64(encoded: &str) -> Result<Self, MetricsError> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(|source| MetricsError::HistogramBase64 { source })?;
        Self::from_compressed(&bytes)
    }

    pub(crate) fn to_compressed(&self) -> Result<Vec<u8>, MetricsError> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut bytes)
            .map_err(|source| MetricsError::HistogramEncode {
                reason: source.to_string(),
            })?;
        Ok(bytes)
    }

    pub(crate) fn from_compressed(bytes: &[u8]) -> Result<Self, MetricsError> {
        let mut hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|source| MetricsError::HistogramDecode { source })?;
        if hist.low() != LOWEST_DISCERNIBLE_US || hist.sigfig() != SIGNIFICANT_DIGITS {
            return Err(MetricsError::IncompatibleHistogram {
                lowest: hist.low(),
                significant_digits: hist.sigfig(),
            });
        }
        if hist.max() > hist.highest_equivalent(HIGHEST_TRACKABLE_US) {
            return Err(MetricsError::HistogramOutOfRange { max_us: hist.max() });
        }
        hist.auto(true);
        Ok(Self { hist, clamped: 0 })
    }
}

impl Serialize for LatencyHistogram {
    fn serialize<S: SerdeSerializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hdr = self.to_base64().map_err(S::Error::custom)?;
        let mut state = serializer.serialize_struct("LatencyHistogram", 2)?;
        state.serialize_field("clamped", &self.clamped)?;
        state.serialize_field("hdr", &hdr)?;
        state.end()
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: SerdeDeserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Encoded {
            #[serde(default)]
            clamped: u64,
            hdr: String,
        }
        let encoded = Encoded::deserialize(deserializer)?;
        let mut histogram = Self::from_base64(&encoded.hdr).map_err(D::Error::custom)?;
        histogram.clamped = encoded.clamped;
        Ok(histogram)
    }
}

pub(crate) fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1e3
}

/// Upper bounds in microseconds of the 1-2-5 scale from 10 µs up to the first bound ≥ `max_us`.
fn bucket_bounds_us(max_us: u64) -> Vec<u64> {
    let mut bounds = Vec::new();
    let mut decade = 10_u64;
    loop {
        for step in [1, 2, 5] {
            let bound = decade * step;
            bounds.push(bound);
            if bound >= max_us {
                return bounds;
            }
        }
        decade *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram_of(values_us: &[u64]) -> LatencyHistogram {
        let mut histogram = LatencyHistogram::new();
        for &value in values_us {
            histogram.record_micros(value);
        }
        histogram
    }

    #[test]
    fn percentiles_are_within_three_significant_digits() {
        let histogram = histogram_of(&(1..=10_000).collect::<Vec<_>>());
        let p95 = histogram.percentile(95.0).unwrap().as_micros() as f64;
        assert!((p95 - 9_500.0).abs() / 9_500.0 < 0.001, "p95 was {p95} µs");
        assert_eq!(histogram.min(), Some(Duration::from_micros(1)));
        let max = histogram.max().unwrap().as_micros() as f64;
        assert!((max - 10_000.0).abs() / 10_000.0 < 0.001);
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        let histogram = LatencyHistogram::new();
        assert_eq!(histogram.percentile(95.0), None);
        assert_eq!(histogram.summary(), None);
        assert!(histogram.buckets().is_empty());
    }

    #[test]
    fn durations_above_one_hour_are_clamped_and_counted_not_lost() {
        let mut histogram = LatencyHistogram::new();
        histogram.record(Duration::from_secs(5 * 3600));
        histogram.record(Duration::MAX);
        histogram.record(Duration::from_millis(3));
        assert_eq!(histogram.len(), 3);
        assert_eq!(histogram.clamped(), 2);
        let max = histogram.max().unwrap();
        assert!(max >= Duration::from_secs(3600) && max < Duration::from_secs(3605));
    }

    #[test]
    fn merged_histogram_equals_one_recorded_with_all_values() {
        let first: Vec<u64> = (0..5_000).map(|i| 100 + i * 37 % 90_000).collect();
        let second: Vec<u64> = (0..3_000).map(|i| 2_000 + i * 1_013 % 5_000_000).collect();
        let mut merged = histogram_of(&first);
        merged.merge(&histogram_of(&second));
        let all = histogram_of(&[first, second].concat());
        assert_eq!(merged, all);
        assert_eq!(merged.summary(), all.summary());
    }

    #[test]
    fn histograms_with_the_same_values_are_equal_whatever_size_they_grew_to() {
        let mut grown = histogram_of(&[3_000_000_000]);
        grown.reset();
        grown.record_micros(42);
        assert_eq!(grown, histogram_of(&[42]));
        assert_ne!(grown, histogram_of(&[43_000]));
    }

    #[test]
    fn base64_round_trip_keeps_every_value() {
        let histogram = histogram_of(&[1, 5, 250, 250, 40_000, 3_000_000]);
        let decoded = LatencyHistogram::from_base64(&histogram.to_base64().unwrap()).unwrap();
        assert_eq!(decoded, histogram);
    }

    #[test]
    fn json_round_trip_keeps_clamped_count() {
        let mut histogram = histogram_of(&[10, 20]);
        histogram.record(Duration::from_secs(7200));
        let json = serde_json::to_string(&histogram).unwrap();
        let decoded: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(decoded, histogram);
        assert_eq!(decoded.clamped(), 1);
    }

    #[test]
    fn garbage_base64_is_an_error_not_a_panic() {
        assert!(matches!(
            LatencyHistogram::from_base64("not base64!"),
            Err(MetricsError::HistogramBase64 { .. })
        ));
        assert!(matches!(
            LatencyHistogram::from_base64("AAAA"),
            Err(MetricsError::HistogramDecode { .. })
        ));
    }

    #[test]
    fn histogram_with_other_precision_is_refused_because_merge_would_be_inexact() {
        let other: Histogram<u64> = Histogram::new_with_bounds(1, 1_000_000, 2).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&other, &mut bytes)
            .unwrap();
        assert!(matches!(
            LatencyHistogram::from_base64(&BASE64.encode(bytes)),
            Err(MetricsError::IncompatibleHistogram {
                significant_digits: 2,
                ..
            })
        ));
    }

    #[test]
    fn buckets_add_up_to_the_count_on_a_1_2_5_scale() {
        let histogram = histogram_of(&[50, 150, 150, 900, 1_500, 7_000, 7_000, 7_000]);
        let buckets = histogram.buckets();
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 8);
        let uppers: Vec<f64> = buckets.iter().map(|b| b.upper_ms).collect();
        assert_eq!(uppers, vec![0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]);
        assert_eq!(buckets.last().unwrap().count, 3);
    }
}
