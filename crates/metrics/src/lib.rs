//! Latency and throughput metrics (HDR histograms, per-second timelines, snapshots).
//!
//! Not built yet: see the sender and metrics issue.
