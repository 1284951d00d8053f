//! [`Sample`]: what one send contributes to the metrics, and its [`Outcome`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How one store ended, as the accounting sees it.
///
/// `attempted = succeeded + warnings + failed + unknown` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Stored: DIMSE status `0000`.
    Success,
    /// Stored with a warning status (`B000`, `B006`, `B007`, `0001`, ...): delivered, but
    /// reported, because the router may have coerced data.
    Warning,
    /// Refused with a failure status (`A7xx`, `A9xx`, `Cxxx`, ...) or never sent because the
    /// association could not be established.
    Failure,
    /// The store was outstanding when the association was aborted, the connection was lost
    /// or a timeout expired: the instance may or may not have arrived (a C-FIND settles it).
    Unknown,
}

impl Outcome {
    /// True for [`Success`](Self::Success) and [`Warning`](Self::Warning): the peer took the instance.
    pub fn is_delivered(self) -> bool {
        matches!(self, Outcome::Success | Outcome::Warning)
    }

    /// True for [`Failure`](Self::Failure) and [`Unknown`](Self::Unknown): what
    /// [`error_rate`](crate::PerfMetrics::error_rate) counts.
    pub fn is_error(self) -> bool {
        !self.is_delivered()
    }

    /// The lowercase name used in JSON (`"success"`, `"warning"`, `"failure"`, `"unknown"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Warning => "warning",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// One attempted send, as recorded by a [`Recorder`](crate::Recorder).
///
/// Times are [`Instant`]s; the recorder turns them into wall-clock times using the
/// clock reading taken when the [`PerfMetrics`](crate::PerfMetrics) was created.
///
/// - `intended_start`: when the schedule wanted the send to start (under a fixed arrival
///   rate); equal to `actual_start` in closed-loop runs.
/// - `actual_start`: when the sender actually began (took a connection, wrote the first PDU).
/// - `end`: when the outcome was known (response received, abort, timeout).
///
/// Latency is `end - intended_start`, so a stalled router delays the whole schedule's
/// measurements instead of hiding behind it (no coordinated omission); service time is
/// `end - actual_start`. A time earlier than the one it is measured from counts as zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When the send was scheduled to start.
    pub intended_start: Instant,
    /// When the send actually started.
    pub actual_start: Instant,
    /// When its outcome was known.
    pub end: Instant,
    /// How it ended.
    pub outcome: Outcome,
    /// DIMSE status code of the response, if one arrived.
    pub status: Option<u16>,
    /// Size of the dataset sent, in bytes (counted in MB/s when delivered).
    pub bytes: u64,
    /// What went wrong, for failures and unknown outcomes (kept bounded, see
    /// [`MetricsSnapshot::errors`](crate::MetricsSnapshot::errors)).
    pub error: Option<String>,
}

impl Sample {
    /// A sample with no status, no bytes and no error text; set those fields as needed.
    pub fn new(
        intended_start: Instant,
        actual_start: Instant,
        end: Instant,
        outcome: Outcome,
    ) -> Self {
        Self {
            intended_start,
            actual_start,
            end,
            outcome,
            status: None,
            bytes: 0,
            error: None,
        }
    }

    /// Sets the DIMSE status code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the number of bytes sent.
    pub fn with_bytes(mut self, bytes: u64) -> Self {
        self.bytes = bytes;
        self
    }

    /// Sets the error text.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Time from the intended start to the end (what latency percentiles are made of).
    pub fn latency(&self) -> Duration {
        self.end.saturating_duration_since(self.intended_start)
    }

    /// Time from the actual start to the end.
    pub fn service_time(&self) -> Duration {
        self.end.saturating_duration_since(self.actual_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_counts_from_the_intended_start_and_service_time_from_the_actual_start() {
        let intended = Instant::now();
        let actual = intended + Duration::from_millis(40);
        let end = actual + Duration::from_millis(10);
        let sample = Sample::new(intended, actual, end, Outcome::Success);
        assert_eq!(sample.latency(), Duration::from_millis(50));
        assert_eq!(sample.service_time(), Duration::from_millis(10));
    }

    #[test]
    fn an_end_before_the_start_counts_as_zero_not_a_panic() {
        let end = Instant::now();
        let later = end + Duration::from_millis(5);
        let sample = Sample::new(later, later, end, Outcome::Failure);
        assert_eq!(sample.latency(), Duration::ZERO);
    }

    #[test]
    fn warnings_are_delivered_and_unknown_outcomes_are_errors() {
        assert!(Outcome::Warning.is_delivered());
        assert!(Outcome::Unknown.is_error());
        assert!(Outcome::Failure.is_error());
        assert!(!Outcome::Success.is_error());
    }
}
