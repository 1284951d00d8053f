//! Durations in JSON as plain numbers, the one way every report and summary writes them:
//! `#[serde(serialize_with = "dimse::serde_duration::millis")]`.

use std::time::Duration;

use serde::Serializer;

/// A duration as fractional seconds (`1.5`).
pub fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// A duration as fractional milliseconds (`1500.0`).
pub fn millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64() * 1000.0)
}

/// An optional duration as fractional milliseconds, or `null`.
pub fn optional_millis<S: Serializer>(
    duration: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match duration {
        Some(d) => millis(d, serializer),
        None => serializer.serialize_none(),
    }
}
