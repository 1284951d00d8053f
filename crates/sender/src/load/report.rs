//! What a load run hands back: the [`LoadReport`] (metrics, association events, one
//! [`StudyRecord`] per study) and the [`LoadSummary`] the command line prints.

use std::time::{Duration, SystemTime};

use dimse::tls::TlsSession;
use metrics::{MetricsSnapshot, OutcomeCounts};
use serde::{Deserialize, Serialize};

use crate::AssociationStrategy;

/// What was sent to one study: what a C-FIND check needs to verify delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyRecord {
    /// Study Instance UID as sent.
    pub study_instance_uid: String,
    /// The Study Instance UID in the files: with fresh UIDs, the original study this
    /// one is a copy (or, under [`StudyLayout`](crate::StudyLayout) limits, a part) of; as is, the same
    /// as `study_instance_uid`. `None` when the files have none.
    pub original_study_instance_uid: Option<String>,
    /// Patient ID of its instances, as in the files.
    pub patient_id: Option<String>,
    /// How the sends to this study ended (attempted = succeeded + warnings + failed
    /// + unknown), with their bytes.
    #[serde(flatten)]
    pub counts: OutcomeCounts,
    /// Wall-clock time of the first send's start (JSON: Unix microseconds).
    #[serde(rename = "first_sent_unix_us", with = "unix_us")]
    pub first_sent: SystemTime,
    /// Wall-clock time the last send to it ended (JSON: Unix microseconds).
    #[serde(rename = "last_sent_unix_us", with = "unix_us")]
    pub last_sent: SystemTime,
    /// In an arrival run, its [`StudyArrival::group`](crate::StudyArrival::group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// One group of an arrival run's studies ([`StudyArrival::group`](crate::StudyArrival::group)):
/// its own metrics, recorded from the same sends as the run's, so that the groups'
/// counts and histograms add up exactly to the run's.
#[derive(Debug, Clone, Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub name: String,
    /// Studies of the group that were sent (started).
    pub studies: u64,
    /// Counts, latency from the intended start and service time (histograms and
    /// percentiles), delivered images/s over the group's own span, errors.
    pub metrics: MetricsSnapshot,
}

/// Association-level events of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AssociationCounts {
    /// Associations established.
    pub opened: u64,
    /// Attempts to establish one that failed (refused, rejected, timed out).
    pub failed_to_open: u64,
    /// Associations found closed or aborted by the peer while idle, before reuse.
    pub found_closed: u64,
    /// Associations released after reaching the maximum operations.
    pub recycled: u64,
    /// The associations opened over TLS, by what TLS negotiated (empty without TLS).
    pub tls_sessions: Vec<TlsSessionCount>,
}

/// How many associations negotiated one TLS version and cipher suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSessionCount {
    /// What was negotiated.
    pub session: TlsSession,
    /// Associations that negotiated it.
    pub associations: u64,
}

impl AssociationCounts {
    /// Adds another worker's events.
    pub(super) fn merge(&mut self, other: &AssociationCounts) {
        self.opened += other.opened;
        self.failed_to_open += other.failed_to_open;
        self.found_closed += other.found_closed;
        self.recycled += other.recycled;
        for count in &other.tls_sessions {
            self.add_tls_session(&count.session, count.associations);
        }
    }

    /// Counts an association that negotiated `session`.
    pub(super) fn add_tls_session(&mut self, session: &TlsSession, associations: u64) {
        match self.tls_sessions.iter_mut().find(|c| &c.session == session) {
            Some(count) => count.associations += associations,
            None => self.tls_sessions.push(TlsSessionCount {
                session: session.clone(),
                associations,
            }),
        }
    }
}

/// The result of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Counts, latency and service-time histograms, timeline, errors.
    pub metrics: MetricsSnapshot,
    /// Target rate (open loop), images per second.
    pub target_rate: Option<f64>,
    /// Sends started per second, over the span from the first to the last actual
    /// start: what the generator achieved against the target.
    pub achieved_send_rate: Option<f64>,
    /// Time from the start of the run to the end of the last send.
    #[serde(serialize_with = "dimse::serde_duration::seconds")]
    pub elapsed: Duration,
    /// Workers.
    pub concurrency: usize,
    /// Strategy used.
    pub association: AssociationStrategy,
    /// Association events.
    pub associations: AssociationCounts,
    /// Per study, what was sent and how it ended, in order of first send.
    pub studies: Vec<StudyRecord>,
    /// An arrival run's figures per group of studies, in order of first arrival
    /// (empty for other runs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupReport>,
    /// The root of the fresh UIDs, when the run made them. Send number `k` (from 0)
    /// carried SOP Instance UID `root.uid(UidLevel::Instance, k)` (see
    /// [`UidRoot`](crate::UidRoot)'s `FromStr`).
    pub uid_root: Option<String>,
    /// How the data sets were held (resident or streamed within the memory budget)
    /// and how long sends waited for them: the generator's own cost.
    pub generator: super::GeneratorReport,
    /// The part of a sharded run this was ([`LoadPlan::shard`](crate::LoadPlan::shard));
    /// `None` for a whole run. `target_rate` is then the shard's share.
    pub shard: Option<super::Shard>,
}

/// The figures the CLI prints and `--json` writes, under the same names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSummary {
    /// Sends whose outcome is known (= succeeded + warnings + failed + unknown).
    pub attempted: u64,
    /// Stored with status 0000.
    pub succeeded: u64,
    /// Stored with a warning status.
    pub warnings: u64,
    /// Not stored.
    pub failed: u64,
    /// May or may not have been stored.
    pub unknown: u64,
    /// Delivered images per second of wall time.
    pub images_per_s: Option<f64>,
    /// Delivered megabytes (10^6 bytes) per second of wall time.
    pub mb_per_s: Option<f64>,
    /// Latency from the intended start, every outcome included.
    pub latency_ms: Option<metrics::LatencySummary>,
    /// Service time from the actual start.
    pub service_time_ms: Option<metrics::LatencySummary>,
    /// Target rate (open loop).
    pub target_rate: Option<f64>,
    /// Sends started per second.
    pub achieved_send_rate: Option<f64>,
    /// Run time in seconds.
    pub elapsed_s: f64,
    /// Workers.
    pub concurrency: usize,
    /// Association strategy.
    pub association: AssociationStrategy,
    /// Milliseconds from the start of the run to the first send.
    pub first_send_after_ms: Option<f64>,
    /// Instances read from disk for every send: the set exceeded the memory budget.
    pub streamed_instances: u64,
    /// Sends that waited for their data set (the generator's delay, not in latency).
    pub generator_lagged_sends: u64,
    /// 99th percentile of those waits.
    pub generator_lag_p99_ms: Option<f64>,
}

impl LoadReport {
    /// The report of a run that sent nothing (a placeholder where a run is expected).
    pub fn empty() -> Self {
        LoadReport {
            metrics: MetricsSnapshot::empty(),
            target_rate: None,
            achieved_send_rate: None,
            elapsed: Duration::ZERO,
            concurrency: 0,
            association: AssociationStrategy::Persistent,
            associations: AssociationCounts::default(),
            studies: Vec::new(),
            uid_root: None,
            generator: super::GeneratorReport::default(),
            shard: None,
            groups: Vec::new(),
        }
    }

    /// The summary figures.
    pub fn summary(&self) -> LoadSummary {
        let m = &self.metrics;
        LoadSummary {
            attempted: m.counts.attempted,
            succeeded: m.counts.succeeded,
            warnings: m.counts.warnings,
            failed: m.counts.failed,
            unknown: m.counts.unknown,
            images_per_s: m.images_per_s,
            mb_per_s: m.mb_per_s,
            latency_ms: m.latency_ms,
            service_time_ms: m.service_time_ms,
            target_rate: self.target_rate,
            achieved_send_rate: self.achieved_send_rate,
            elapsed_s: self.elapsed.as_secs_f64(),
            concurrency: self.concurrency,
            association: self.association,
            first_send_after_ms: self
                .generator
                .first_send_after
                .map(|d| d.as_secs_f64() * 1e3),
            streamed_instances: self.generator.streamed_instances,
            generator_lagged_sends: self.generator.lagged_sends,
            generator_lag_p99_ms: self.generator.lag_ms.map(|l| l.p99_ms),
        }
    }

    /// attempted = succeeded + warnings + failed + unknown, in the metrics and summed
    /// over the studies; in an arrival run also in each group, the groups summing to
    /// the run and each group's studies to the group.
    pub fn is_consistent(&self) -> bool {
        let same = |a: &OutcomeCounts, b: &OutcomeCounts| {
            a.is_consistent()
                && b.is_consistent()
                && (a.attempted, a.succeeded, a.warnings, a.failed, a.unknown)
                    == (b.attempted, b.succeeded, b.warnings, b.failed, b.unknown)
        };
        let sum = |counts: &mut dyn Iterator<Item = &OutcomeCounts>| {
            counts.fold(OutcomeCounts::default(), |mut total, c| {
                total.merge(c);
                total
            })
        };
        let c = &self.metrics.counts;
        let by_study = sum(&mut self.studies.iter().map(|s| &s.counts));
        if !same(c, &by_study) {
            return false;
        }
        if self.groups.is_empty() {
            return true;
        }
        let by_group = sum(&mut self.groups.iter().map(|g| &g.metrics.counts));
        same(c, &by_group)
            && self.groups.iter().all(|g| {
                let studies: Vec<_> = self
                    .studies
                    .iter()
                    .filter(|s| s.group.as_deref() == Some(g.name.as_str()))
                    .collect();
                studies.len() as u64 == g.studies
                    && same(
                        &g.metrics.counts,
                        &sum(&mut studies.iter().map(|s| &s.counts)),
                    )
            })
    }

    /// Whether every send was delivered (no failure, no unknown).
    pub fn all_delivered(&self) -> bool {
        self.metrics.counts.failed == 0 && self.metrics.counts.unknown == 0
    }
}

/// Wall-clock times in JSON as Unix microseconds, read back by `dicom-auto verify`.
mod unix_us {
    use std::time::{Duration, SystemTime};

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let us = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        s.serialize_i64(us)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let us = i64::deserialize(d)?;
        let since_epoch = Duration::from_micros(us.max(0) as u64);
        Ok(SystemTime::UNIX_EPOCH + since_epoch)
    }
}
