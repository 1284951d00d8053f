//! Errors of this crate: only reading and merging stored histograms and snapshots can fail;
//! recording never does.

use hdrhistogram::serialization::DeserializeError;

/// What went wrong reading, writing or merging serialized histograms and snapshots.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// A histogram string in a snapshot is not base64.
    #[error("histogram is not valid base64 (was the snapshot file edited or truncated?): {source}")]
    HistogramBase64 {
        /// The base64 decoder's complaint.
        source: base64::DecodeError,
    },
    /// The bytes are not an HdrHistogram V2 histogram.
    #[error("histogram bytes are not HdrHistogram V2 (plain or deflate): {source}")]
    HistogramDecode {
        /// The HdrHistogram decoder's complaint.
        source: DeserializeError,
    },
    /// The histogram was recorded with another configuration, so merging it would not be exact.
    #[error(
        "histogram was recorded with lowest value {lowest} and {significant_digits} significant \
         digits; dicom-auto histograms use 1 µs and 3 digits, and merging others would not be exact"
    )]
    IncompatibleHistogram {
        /// Lowest discernible value of the stored histogram.
        lowest: u64,
        /// Significant digits of the stored histogram.
        significant_digits: u8,
    },
    /// The histogram holds values above the one-hour limit that this crate clamps to.
    #[error("histogram holds {max_us} µs, above the one-hour limit of dicom-auto histograms")]
    HistogramOutOfRange {
        /// Largest value found.
        max_us: u64,
    },
    /// Encoding a histogram failed (an I/O error of the in-memory deflate stream).
    #[error("histogram could not be encoded: {reason}")]
    HistogramEncode {
        /// The encoder's complaint.
        reason: String,
    },
    /// Text that is not an HdrHistogram interval log.
    #[error("not an HdrHistogram interval log (.hlog): {detail}")]
    IntervalLog {
        /// Where the parser stopped.
        detail: String,
    },
    /// A snapshot was written by an incompatible version of this crate.
    #[error("snapshot has schema version {found}, this build reads version {expected}")]
    SchemaVersion {
        /// Version found in the snapshot.
        found: u32,
        /// Version this build writes and reads.
        expected: u32,
    },
    /// A snapshot is not valid JSON for [`MetricsSnapshot`](crate::MetricsSnapshot).
    #[error("snapshot is not valid JSON: {source}")]
    Json {
        /// The JSON parser's complaint.
        #[from]
        source: serde_json::Error,
    },
}
