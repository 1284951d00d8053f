//! Latency and throughput metrics for DICOM load runs that can be trusted and merged.
//!
//! A load run records one [`Sample`] per attempted send: when it was *scheduled* to start,
//! when it actually started, when its outcome was known, the [`Outcome`], the DIMSE status,
//! the bytes and any error text. From these the crate keeps:
//!
//! - counts, with `attempted = succeeded + warnings + failed + unknown` by construction;
//! - HDR histograms (1 µs to 1 h, 3 significant digits; longer values clamped and counted)
//!   of **latency from the intended start** (so a stalled router cannot hide behind a
//!   sender that waited for it: no coordinated omission) for every attempt, of latency for
//!   delivered sends only, and of **service time** from the actual start;
//! - a per-second timeline (sent, succeeded, warnings, failed, unknown, p50/p95/p99/max);
//! - a bounded uniform sample of (intended start, latency, outcome) for a scatter chart,
//!   and the first 32 distinct error texts with counts (the rest only counted).
//!
//! Definitions: latency percentiles include every outcome (a timeout weighs in with its
//! full wait); `error_rate = (failed + unknown) / attempted` (warnings are delivered, counted
//! apart); images/s and MB/s (10⁶ bytes) count delivered sends over the wall time from the
//! earliest intended start to the latest end. Queries return `None` before any attempt so
//! that an empty run can never pass a threshold.
//!
//! [`PerfMetrics`] is the shared total. Each worker thread records through its own
//! [`Recorder`], which takes no lock per sample and does not allocate for a success; it
//! hands its tally over once per wall-clock second, on [`Recorder::flush`] and when dropped.
//! [`PerfMetrics::snapshot`] gives a [`MetricsSnapshot`], a serde struct written as JSON for
//! the report; it carries the histograms themselves (HdrHistogram V2 + deflate, base64), so
//! [`MetricsSnapshot::merge`] combines the snapshots of several generator processes into
//! exactly the numbers one process recording every sample would give.
//!
//! [`LatencyHistogram`] is the histogram on its own, for any other duration (C-FIND
//! transit times).
//!
//! ```
//! use std::thread;
//! use std::time::{Duration, Instant};
//! use metrics::{MetricsSnapshot, Outcome, PerfMetrics, Sample};
//!
//! let metrics = PerfMetrics::new();
//! let start = Instant::now();
//! let workers: Vec<_> = (0..2_u64)
//!     .map(|worker| {
//!         let mut recorder = metrics.recorder();
//!         thread::spawn(move || {
//!             for i in 0..100_u64 {
//!                 // Open loop: one send every 10 ms per worker, each served in 2 ms.
//!                 let intended = start + Duration::from_millis(10 * i);
//!                 let end = intended + Duration::from_millis(2);
//!                 let outcome = if i == 99 && worker == 1 { Outcome::Unknown } else { Outcome::Success };
//!                 let mut sample = Sample::new(intended, intended, end, outcome).with_bytes(50_000);
//!                 if outcome == Outcome::Unknown {
//!                     sample = sample.with_error("DIMSE response timeout after 60 s");
//!                 } else {
//!                     sample = sample.with_status(0x0000);
//!                 }
//!                 recorder.record(sample);
//!             }
//!             // Dropping the recorder hands its last second over.
//!         })
//!     })
//!     .collect();
//! for worker in workers {
//!     worker.join().unwrap();
//! }
//!
//! assert_eq!(metrics.attempted(), 200);
//! assert_eq!(metrics.unknown(), 1);
//! assert_eq!(metrics.error_rate(), Some(0.005));
//! let p95 = metrics.p95_latency_ms().unwrap();
//! assert!((2.0..2.01).contains(&p95));
//!
//! // Snapshots are plain JSON and merge exactly.
//! let json = metrics.snapshot()?.to_json()?;
//! let mut total = MetricsSnapshot::from_json(&json)?;
//! total.merge(&MetricsSnapshot::from_json(&json)?)?;
//! assert_eq!(total.counts.attempted, 400);
//! assert_eq!(total.p95_latency_ms(), Some(p95));
//! # Ok::<(), metrics::MetricsError>(())
//! ```

mod error;
mod histogram;
pub mod interval_log;
mod perf;
mod sample;
mod snapshot;
mod tally;
mod timeline;

pub use error::MetricsError;
pub use histogram::{
    HIGHEST_TRACKABLE_US, LOWEST_DISCERNIBLE_US, LatencyBucket, LatencyHistogram, LatencySummary,
    SIGNIFICANT_DIGITS,
};
pub use perf::{PerfMetrics, Recorder};
pub use sample::{Outcome, Sample};
pub use snapshot::{LatencyPoint, MetricsSnapshot, SNAPSHOT_SCHEMA_VERSION, SnapshotHistograms};
pub use tally::{
    ErrorCount, LATENCY_SERIES_CAPACITY, MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_MESSAGES, OutcomeCounts,
};
pub use timeline::TimelinePoint;
