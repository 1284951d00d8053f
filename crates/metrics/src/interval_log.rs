//! HdrHistogram interval logs (`.hlog`): a snapshot's histograms in the text format
//! HdrHistogram's own tools read (`HistogramLogProcessor`, `HistogramLogAnalyzer`), and
//! read back exactly, so shards of a run on several machines merge without loss.
//!
//! A log written here holds one interval per histogram of the snapshot, each tagged
//! ([`LATENCY_TAG`], [`DELIVERED_LATENCY_TAG`], [`SERVICE_TIME_TAG`]) and spanning
//! the run's window; values are microseconds. Timestamps are seconds since the Unix
//! epoch (no `BaseTime`), so the logs of several shards line up without a common
//! base; `StartTime` is the window's start.

use std::time::Duration;

use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};

use crate::error::MetricsError;
use crate::histogram::LatencyHistogram;
use crate::snapshot::MetricsSnapshot;

/// Tag of the interval holding the latency of every attempt.
pub const LATENCY_TAG: &str = "latency";
/// Tag of the interval holding the latency of delivered sends.
pub const DELIVERED_LATENCY_TAG: &str = "delivered_latency";
/// Tag of the interval holding the service time of every attempt.
pub const SERVICE_TIME_TAG: &str = "service_time";

/// One interval read from a log.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedInterval {
    /// The interval's tag, if it has one.
    pub tag: Option<String>,
    /// Start of the interval, as the log gives it (here: since the Unix epoch).
    pub start: Duration,
    /// Length of the interval.
    pub duration: Duration,
    /// The values recorded in it (microseconds).
    pub histogram: LatencyHistogram,
}

/// The interval log of `snapshot`: its three histograms, one tagged interval each.
///
/// # Errors
/// [`MetricsError::HistogramEncode`] when a histogram cannot be encoded.
pub fn write_interval_log(snapshot: &MetricsSnapshot) -> Result<Vec<u8>, MetricsError> {
    let encode = |e: &dyn std::fmt::Display| MetricsError::HistogramEncode {
        reason: e.to_string(),
    };
    let start_us = snapshot.window_start_unix_us.unwrap_or(0).max(0) as u64;
    let end_us = snapshot.window_end_unix_us.unwrap_or(0).max(0) as u64;
    let start = Duration::from_micros(start_us);
    let length = Duration::from_micros(end_us.saturating_sub(start_us));
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut builder = IntervalLogWriterBuilder::new();
        builder
            .add_comment("dicom-auto load run; values in microseconds")
            .with_start_time(std::time::UNIX_EPOCH + start)
            // Values are µs: the max column reads in milliseconds.
            .with_max_value_divisor(1000.0);
        let mut writer = builder
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| encode(&e))?;
        let histograms = &snapshot.histograms;
        for (tag, histogram) in [
            (LATENCY_TAG, &histograms.latency),
            (DELIVERED_LATENCY_TAG, &histograms.delivered_latency),
            (SERVICE_TIME_TAG, &histograms.service_time),
        ] {
            writer
                .write_histogram(
                    histogram.hdr(),
                    start,
                    length,
                    Some(Tag::new(tag).expect("a tag without commas or spaces")),
                )
                .map_err(|e| encode(&format!("{e:?}")))?;
        }
    }
    Ok(out)
}

/// Every interval of an interval log, in the order written.
///
/// # Errors
/// [`MetricsError::IntervalLog`] for text that is not an interval log, and the
/// histogram errors of [`LatencyHistogram::from_base64`] for an interval whose
/// histogram cannot be read exactly.
pub fn read_interval_log(log: &[u8]) -> Result<Vec<LoggedInterval>, MetricsError> {
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(log) {
        let entry = entry.map_err(|e| MetricsError::IntervalLog {
            detail: format!("{e:?}"),
        })?;
        if let LogEntry::Interval(interval) = entry {
            intervals.push(LoggedInterval {
                tag: interval.tag().map(|t| t.as_str().to_string()),
                start: interval.start_timestamp(),
                duration: interval.duration(),
                histogram: LatencyHistogram::from_base64(interval.encoded_histogram())?,
            });
        }
    }
    Ok(intervals)
}

/// The sum of every interval tagged `tag` (exact: the histograms are added).
pub fn tagged_total<'a>(
    intervals: impl IntoIterator<Item = &'a LoggedInterval>,
    tag: &str,
) -> LatencyHistogram {
    let mut total = LatencyHistogram::new();
    for interval in intervals {
        if interval.tag.as_deref() == Some(tag) {
            total.merge(&interval.histogram);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, PerfMetrics, Sample};

    #[test]
    fn a_log_read_back_holds_the_snapshots_histograms_exactly() {
        let metrics = PerfMetrics::new();
        let t0 = std::time::Instant::now();
        for ms in [1u64, 2, 3, 50, 700] {
            let end = t0 + Duration::from_millis(ms);
            let actual = t0 + Duration::from_millis(ms / 2);
            metrics.record(Sample::new(t0, actual, end, Outcome::Success).with_bytes(1000));
        }
        let snapshot = metrics.snapshot().unwrap();
        let log = write_interval_log(&snapshot).unwrap();
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(text.contains("#[StartTime: "), "{text}");
        let intervals = read_interval_log(&log).unwrap();
        assert_eq!(intervals.len(), 3);
        assert_eq!(
            tagged_total(&intervals, LATENCY_TAG),
            snapshot.histograms.latency
        );
        assert_eq!(
            tagged_total(&intervals, SERVICE_TIME_TAG),
            snapshot.histograms.service_time
        );
    }

    #[test]
    fn text_that_is_not_a_log_is_refused() {
        assert!(read_interval_log(b"Tag=x,1.0,2.0,notbase64!!\n").is_err());
    }
}
