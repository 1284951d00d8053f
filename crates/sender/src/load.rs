//! Load runs: many C-STOREs from many associations, on a fixed schedule or as fast
//! as the associations allow, with every send accounted for.
//!
//! # Scheduling without coordinated omission
//!
//! In an open-loop run ([`LoadPlan::rate`]) send number *k* has a fixed **intended
//! start**, `start + k / rate` (after an optional linear ramp-up). Workers take the
//! next send number from a shared counter, wait for its intended start if it is
//! still ahead, and record both times: latency is measured from the intended start,
//! service time from the actual start. When the router stalls, sends queue up behind
//! it and their latency grows with the queue, as a real modality would see it,
//! instead of the generator quietly slowing down and hiding the stall.
//!
//! In a closed-loop run (no rate) each worker sends as soon as its previous send is
//! done: the intended start is the actual start, and the run measures the most the
//! concurrency can push through.
//!
//! # Associations
//!
//! One thread per association (dicom-ul has no asynchronous operations window, so an
//! association carries one request at a time). [`AssociationStrategy::PerImage`] opens
//! and releases an association around every store (the old suite's pattern),
//! [`AssociationStrategy::PerStudy`] keeps one for the consecutive sends of a study,
//! and [`AssociationStrategy::Persistent`] keeps one per worker, reused until it
//! breaks, the peer closes it, or [`LoadPlan::max_ops_per_association`] is reached;
//! a new one is opened for the next send. Failing to open one (refused, rejected,
//! timed out) fails that send and the next send tries again.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use metrics::{MetricsSnapshot, Outcome, PerfMetrics, Sample};
use parking_lot::Mutex;
use serde::Serialize;

use crate::association::Session;
use crate::contexts::Proposal;
use crate::instance::{InstanceUids, PreparedInstance};
use crate::layout::{OriginalKey, SendOrder, StudyLayout};
use crate::outcome::SendOutcome;
use crate::uid::{UidLevel, UidRoot};
use crate::{AssociationStrategy, DicomSender, SenderError, UidStrategy};

/// When a load run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAfter {
    /// Each prepared instance once.
    EachOnce,
    /// This many sends.
    Count(u64),
    /// Sends whose start (intended start in open loop) falls within this time.
    Duration(Duration),
}

/// What a load run sends, how fast, and over which associations.
///
/// ```
/// use std::time::Duration;
/// use sender::{LoadPlan, StopAfter};
/// use sender::AssociationStrategy;
///
/// let plan = LoadPlan::new(Vec::new())
///     .rate(Some(200.0))
///     .ramp_up(Duration::from_secs(10))
///     .concurrency(16)
///     .stop_after(StopAfter::Duration(Duration::from_secs(300)))
///     .association(AssociationStrategy::Persistent);
/// assert_eq!(plan.target_rate(), Some(200.0));
/// ```
#[derive(Debug, Clone)]
pub struct LoadPlan {
    instances: Vec<Arc<PreparedInstance>>,
    stop: StopAfter,
    rate: Option<f64>,
    ramp_up: Duration,
    concurrency: usize,
    association: AssociationStrategy,
    max_ops_per_association: Option<NonZeroU32>,
    layout: StudyLayout,
    progress_interval: Duration,
}

impl LoadPlan {
    /// A plan sending `instances` once each, closed loop, on one persistent association.
    pub fn new(instances: Vec<Arc<PreparedInstance>>) -> Self {
        LoadPlan {
            instances,
            stop: StopAfter::EachOnce,
            rate: None,
            ramp_up: Duration::ZERO,
            concurrency: 1,
            association: AssociationStrategy::Persistent,
            max_ops_per_association: None,
            layout: StudyLayout::ORIGINAL,
            progress_interval: Duration::from_millis(250),
        }
    }

    /// When the run stops (default: each instance once).
    pub fn stop_after(mut self, stop: StopAfter) -> Self {
        self.stop = stop;
        self
    }

    /// Target rate in images per second (open loop); `None` for closed loop.
    pub fn rate(mut self, rate: Option<f64>) -> Self {
        self.rate = rate;
        self
    }

    /// Linear ramp from 0 to the target rate over this time (open loop only).
    pub fn ramp_up(mut self, ramp_up: Duration) -> Self {
        self.ramp_up = ramp_up;
        self
    }

    /// Number of workers, each with its own association (default 1).
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.concurrency = workers;
        self
    }

    /// How associations are used (default: persistent).
    pub fn association(mut self, strategy: AssociationStrategy) -> Self {
        self.association = strategy;
        self
    }

    /// Release and reopen an association after this many stores (persistent and
    /// per-study strategies); `None` for no limit.
    pub fn max_ops_per_association(mut self, max: Option<NonZeroU32>) -> Self {
        self.max_ops_per_association = max;
        self
    }

    /// How fresh UIDs group the sends into studies and series (default
    /// [`StudyLayout::ORIGINAL`]: each pass over the instances sends one copy of every
    /// original study, with its series). A fresh study never mixes instances of two
    /// original studies or two patients. Ignored for as-is runs.
    pub fn study_layout(mut self, layout: StudyLayout) -> Self {
        self.layout = layout;
        self
    }

    /// Fresh studies of at most `series_per_study` series of at most
    /// `instances_per_series` instances, each cut from one original study:
    /// shorthand for [`study_layout`](Self::study_layout) with both limits set.
    /// An original study smaller than that stays one study of its own size.
    pub fn synthetic_studies(self, instances_per_series: u64, series_per_study: u64) -> Self {
        self.study_layout(StudyLayout::limits(
            Some(instances_per_series),
            Some(series_per_study),
        ))
    }

    /// How often the observer hears about progress (default 250 ms).
    pub fn progress_interval(mut self, interval: Duration) -> Self {
        self.progress_interval = interval;
        self
    }

    /// The target rate, if open loop.
    pub fn target_rate(&self) -> Option<f64> {
        self.rate
    }

    /// Workers, each with its own association.
    pub fn worker_count(&self) -> usize {
        self.concurrency
    }

    /// When the run stops.
    pub fn stop(&self) -> StopAfter {
        self.stop
    }

    /// How associations are used.
    pub fn association_strategy(&self) -> AssociationStrategy {
        self.association
    }

    /// Stores per association before it is recycled, if limited.
    pub fn max_ops(&self) -> Option<NonZeroU32> {
        self.max_ops_per_association
    }

    /// The instances sent.
    pub fn instances(&self) -> &[Arc<PreparedInstance>] {
        &self.instances
    }

    fn validate(&self) -> Result<(), SenderError> {
        let invalid = |name: &'static str, value: String, expected: &str| {
            Err(SenderError::InvalidOption {
                name,
                value,
                expected: expected.to_string(),
            })
        };
        if self.instances.is_empty() {
            return invalid("instances", "none".into(), "at least one instance to send");
        }
        if self.concurrency == 0 {
            return invalid("concurrency", "0".into(), "at least 1 worker");
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return invalid(
                "rate",
                rate.to_string(),
                "a positive number of images per second",
            );
        }
        if self.layout.max_instances_per_series == Some(0) {
            return invalid(
                "max_instances_per_series",
                "0".into(),
                "at least one instance per series, or no limit",
            );
        }
        if self.layout.max_series_per_study == Some(0) {
            return invalid(
                "max_series_per_study",
                "0".into(),
                "at least one series per study, or no limit",
            );
        }
        let fresh = self.instances[0].has_fresh_uids();
        if self.instances.iter().any(|i| i.has_fresh_uids() != fresh) {
            return invalid(
                "instances",
                "a mix of as-is and fresh-UID instances".into(),
                "instances prepared with one UID strategy",
            );
        }
        Ok(())
    }

    fn total(&self) -> Option<u64> {
        match self.stop {
            StopAfter::EachOnce => Some(self.instances.len() as u64),
            StopAfter::Count(n) => Some(n),
            StopAfter::Duration(_) => None,
        }
    }

    /// Intended start of send `k`, from the run's start (open loop only).
    fn intended_offset(&self, k: u64) -> Option<Duration> {
        let rate = self.rate?;
        let ramp = self.ramp_up.as_secs_f64();
        let k = k as f64;
        // The ramp sends rate*ramp/2 images: count(t) = rate t^2 / (2 ramp) until then.
        let ramp_count = rate * ramp / 2.0;
        let t = if k < ramp_count {
            (2.0 * ramp * k / rate).sqrt()
        } else {
            ramp + (k - ramp_count) / rate
        };
        Some(Duration::from_secs_f64(t))
    }
}

/// Progress of a running load, as reported to a [`LoadObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadProgress {
    /// Time since the run started.
    #[serde(serialize_with = "dimse::serde_duration::seconds")]
    pub elapsed: Duration,
    /// Sends whose outcome is known.
    pub attempted: u64,
    /// Success.
    pub succeeded: u64,
    /// Delivered with a warning status.
    pub warnings: u64,
    /// Failure.
    pub failed: u64,
    /// Unknown.
    pub unknown: u64,
    /// Sends planned in all, when the run is bounded by a count.
    pub planned: Option<u64>,
    /// Outcomes per second over the last progress interval.
    pub current_rate: f64,
    /// 95th percentile latency so far (lags the workers by up to a second).
    pub p95_latency_ms: Option<f64>,
    /// Associations open right now.
    pub open_associations: u64,
}

fn unix_us<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let us = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    s.serialize_i64(us)
}

/// Receives progress while a load runs (from the thread that called
/// [`run_load`]). Closures `Fn(&LoadProgress)` are observers.
pub trait LoadObserver: Sync {
    /// Called every progress interval, and once more with the final figures.
    fn on_progress(&self, progress: &LoadProgress);
}

impl<F: Fn(&LoadProgress) + Sync> LoadObserver for F {
    fn on_progress(&self, progress: &LoadProgress) {
        self(progress)
    }
}

/// An observer that ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl LoadObserver for NoObserver {
    fn on_progress(&self, _: &LoadProgress) {}
}

/// What was sent to one study: what a C-FIND check needs to verify delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudyRecord {
    /// Study Instance UID as sent.
    pub study_instance_uid: String,
    /// The Study Instance UID in the files: with fresh UIDs, the original study this
    /// one is a copy (or, under [`StudyLayout`] limits, a part) of; as is, the same
    /// as `study_instance_uid`. `None` when the files have none.
    pub original_study_instance_uid: Option<String>,
    /// Patient ID of its instances, as in the files.
    pub patient_id: Option<String>,
    /// Sends to this study.
    pub attempted: u64,
    /// Of which delivered with success.
    pub succeeded: u64,
    /// Of which delivered with a warning.
    pub warnings: u64,
    /// Of which failed (not delivered).
    pub failed: u64,
    /// Of which unknown (may or may not have arrived).
    pub unknown: u64,
    /// Wall-clock time of the first send's start (JSON: Unix microseconds).
    #[serde(rename = "first_sent_unix_us", serialize_with = "unix_us")]
    pub first_sent: SystemTime,
    /// Wall-clock time the last send to it ended (JSON: Unix microseconds).
    #[serde(rename = "last_sent_unix_us", serialize_with = "unix_us")]
    pub last_sent: SystemTime,
}

/// Association-level events of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AssociationCounts {
    /// Associations established.
    pub opened: u64,
    /// Attempts to establish one that failed (refused, rejected, timed out).
    pub failed_to_open: u64,
    /// Associations found closed or aborted by the peer while idle, before reuse.
    pub found_closed: u64,
    /// Associations released after reaching the maximum operations.
    pub recycled: u64,
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
    /// The root of the fresh UIDs, when the run made them. Send number `k` (from 0)
    /// carried SOP Instance UID `root.uid(UidLevel::Instance, k)` (see
    /// [`UidRoot`](crate::UidRoot)'s `FromStr`).
    pub uid_root: Option<String>,
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
}

impl LoadReport {
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
        }
    }

    /// attempted = succeeded + warnings + failed + unknown, in the metrics and summed
    /// over the studies.
    pub fn is_consistent(&self) -> bool {
        let c = &self.metrics.counts;
        let by_study = |f: fn(&StudyRecord) -> u64| self.studies.iter().map(f).sum::<u64>();
        c.attempted == c.succeeded + c.warnings + c.failed + c.unknown
            && by_study(|s| s.attempted) == c.attempted
            && by_study(|s| s.succeeded) == c.succeeded
            && by_study(|s| s.warnings) == c.warnings
            && by_study(|s| s.failed) == c.failed
            && by_study(|s| s.unknown) == c.unknown
    }

    /// Whether every send was delivered (no failure, no unknown).
    pub fn all_delivered(&self) -> bool {
        self.metrics.counts.failed == 0 && self.metrics.counts.unknown == 0
    }
}

/// Instances read from files and folders, and the files left out.
#[derive(Debug, Default)]
pub struct PreparedFiles {
    /// Ready to send.
    pub instances: Vec<Arc<PreparedInstance>>,
    /// Files skipped (not DICOM, truncated, lacking UIDs...), each with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads every DICOM file under `paths` (files or folders) and prepares them.
///
/// A bad file never stops a run: it is listed in [`PreparedFiles::skipped`] with the
/// reason.
///
/// # Errors
/// [`SenderError::File`] when a path does not exist or a folder cannot be walked.
pub fn prepare_paths(paths: &[PathBuf], uids: UidStrategy) -> Result<PreparedFiles, SenderError> {
    let mut files = Vec::new();
    let mut prepared = PreparedFiles::default();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
            continue;
        }
        let scan = loader::find_dicom_files(path).map_err(|e| SenderError::File {
            path: path.clone(),
            detail: dimse::ErrorChain(&e).to_string(),
        })?;
        files.extend(scan.files);
        prepared.skipped.extend(
            scan.skipped
                .into_iter()
                .map(|s| (s.path, s.reason.to_string())),
        );
    }
    for file in files {
        match PreparedInstance::from_file(&file, uids) {
            Ok(instance) => prepared.instances.push(Arc::new(instance)),
            Err(e) => prepared.skipped.push((file, e.to_string())),
        }
    }
    Ok(prepared)
}

/// Hands out send numbers to the workers.
struct Dispenser<'a> {
    plan: &'a LoadPlan,
    next: Mutex<u64>,
    total: Option<u64>,
    deadline: Option<Instant>,
    start: Instant,
    /// Study of each send number (per-study strategy only).
    study_of: &'a (dyn Fn(u64) -> u64 + Sync),
}

impl Dispenser<'_> {
    /// The next send numbers for one worker: one, or a whole study's worth under the
    /// per-study strategy. `None` when the run is over.
    fn claim(&self) -> Option<Range<u64>> {
        // A lock per claim, not an atomic counter: taking a number and checking that it
        // is still admitted (count, deadline) must be one step, or a worker could take
        // k, another take k + 1 and send it, and then k be refused at the deadline,
        // leaving a gap in the send numbers that UIDs and study records derive from.
        // Uncontended for tens of nanoseconds per send: far below a C-STORE's cost.
        let mut next = self.next.lock();
        let first = *next;
        if !self.admits(first) {
            return None;
        }
        let mut end = first + 1;
        if self.plan.association == AssociationStrategy::PerStudy {
            let study = (self.study_of)(first);
            while self.admits(end) && (self.study_of)(end) == study {
                end += 1;
            }
        }
        *next = end;
        Some(first..end)
    }

    fn admits(&self, k: u64) -> bool {
        if self.total.is_some_and(|total| k >= total) {
            return false;
        }
        match (self.deadline, self.plan.intended_offset(k)) {
            (Some(deadline), Some(offset)) => self.start + offset < deadline,
            (Some(deadline), None) => Instant::now() < deadline,
            (None, _) => true,
        }
    }
}

/// Counters the progress thread reads while workers run.
#[derive(Default)]
struct Live {
    counts: [AtomicU64; 4],
    open_associations: AtomicU64,
}

impl Live {
    fn add(&self, outcome: Outcome) {
        let i = match outcome {
            Outcome::Success => 0,
            Outcome::Warning => 1,
            Outcome::Failure => 2,
            Outcome::Unknown => 3,
        };
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    fn progress(
        &self,
        elapsed: Duration,
        planned: Option<u64>,
        rate: f64,
        p95: Option<f64>,
    ) -> LoadProgress {
        let get = |i: usize| self.counts[i].load(Ordering::Relaxed);
        let (succeeded, warnings, failed, unknown) = (get(0), get(1), get(2), get(3));
        LoadProgress {
            elapsed,
            attempted: succeeded + warnings + failed + unknown,
            succeeded,
            warnings,
            failed,
            unknown,
            planned,
            current_rate: rate,
            p95_latency_ms: p95,
            open_associations: self.open_associations.load(Ordering::Relaxed),
        }
    }
}

/// Per-worker tally of one study.
#[derive(Debug, Clone, Copy)]
struct StudyTally {
    counts: [u64; 4],
    first: Instant,
    last: Instant,
}

/// What one worker hands back.
#[derive(Default)]
struct WorkerResult {
    studies: HashMap<u64, StudyTally>,
    associations: AssociationCounts,
    first_start: Option<Instant>,
    last_start: Option<Instant>,
}

/// Runs a load: sends per `plan` to `sender`'s peer and accounts for every send.
///
/// Blocks until the run is over; progress goes to `observer` from this thread.
///
/// # Errors
/// [`SenderError::InvalidOption`] for an unusable plan (no instances, zero workers, a
/// non-positive rate, mixed UID strategies) and
/// [`SenderError::TooManyPresentationContexts`]. Failures of the peer are not errors:
/// they are counted in the report.
pub fn run_load(
    sender: &DicomSender,
    plan: &LoadPlan,
    observer: &dyn LoadObserver,
) -> Result<LoadReport, SenderError> {
    plan.validate()?;
    let proposal = Proposal::for_instances(
        plan.instances
            .iter()
            .map(|i| (i.sop_class_uid(), i.transfer_syntax())),
    )?;
    warm_up(sender, plan, &proposal);
    // Made once: every association of the run opens with the same options.
    let scu = sender.options().scu_options(&proposal);
    let n = plan.instances.len() as u64;
    // Fresh UIDs: the run's root, and where each send number goes (which instance,
    // which fresh study and series), fixed before the clock starts.
    let fresh = plan.instances[0].has_fresh_uids().then(|| {
        let keys: Vec<OriginalKey<'_>> = plan
            .instances
            .iter()
            .map(|i| OriginalKey {
                patient_id: i.patient_id(),
                study_instance_uid: i.study_instance_uid(),
                series_instance_uid: i.series_instance_uid(),
            })
            .collect();
        (UidRoot::random(), SendOrder::new(&keys, plan.layout))
    });

    // As-is: number the files' studies, so a send's study is a number, not a string;
    // with one instance of each, for the records.
    let mut study_uids: Vec<(String, usize)> = Vec::new();
    let mut study_index_of_instance: Vec<u64> = Vec::with_capacity(plan.instances.len());
    if fresh.is_none() {
        let mut index: HashMap<&str, u64> = HashMap::new();
        for (i, instance) in plan.instances.iter().enumerate() {
            let uid = instance
                .study_instance_uid()
                .unwrap_or("(no Study Instance UID)");
            let next = index.len() as u64;
            let id = *index.entry(uid).or_insert_with(|| {
                study_uids.push((uid.to_string(), i));
                next
            });
            study_index_of_instance.push(id);
        }
    }
    let study_of = |k: u64| -> u64 {
        match &fresh {
            Some((_, order)) => order.at(k).study,
            None => study_index_of_instance[(k % n) as usize],
        }
    };

    let metrics = PerfMetrics::new();
    let live = Live::default();
    let start = Instant::now();
    let wall_start = SystemTime::now();
    let dispenser = Dispenser {
        plan,
        next: Mutex::new(0),
        total: plan.total(),
        deadline: match plan.stop {
            StopAfter::Duration(d) => Some(start + d),
            _ => None,
        },
        start,
        study_of: &study_of,
    };

    let results: Vec<WorkerResult> = thread::scope(|scope| {
        let workers: Vec<_> = (0..plan.concurrency)
            .map(|_| {
                let mut recorder = metrics.recorder();
                let (dispenser, live, scu, fresh) = (&dispenser, &live, &scu, fresh.as_ref());
                let study_of = &study_of;
                scope.spawn(move || {
                    let mut worker = Worker {
                        sender,
                        plan,
                        scu,
                        live,
                        session: None,
                        result: WorkerResult::default(),
                    };
                    while let Some(range) = dispenser.claim() {
                        for k in range.clone() {
                            let intended = plan.intended_offset(k).map(|o| start + o);
                            if let Some(at) = intended {
                                let now = Instant::now();
                                if at > now {
                                    thread::sleep(at - now);
                                }
                            }
                            let (instance, uids) = match fresh {
                                Some((root, order)) => {
                                    let at = order.at(k);
                                    let uids = InstanceUids {
                                        study: root.uid(UidLevel::Study, at.study),
                                        series: root.uid(UidLevel::Series, at.series),
                                        // Send numbers are unique in a run, so SOP
                                        // Instance UIDs are.
                                        instance: root.uid(UidLevel::Instance, k),
                                    };
                                    (at.instance, Some(uids))
                                }
                                None => ((k % n) as usize, None),
                            };
                            let instance = &plan.instances[instance];
                            let outcome = worker.send(instance, uids.as_ref());
                            let end = outcome.started + outcome.latency;
                            let actual = outcome.started;
                            let mut sample = Sample::new(
                                intended.unwrap_or(actual),
                                actual,
                                end,
                                outcome.outcome,
                            )
                            .with_bytes(outcome.bytes);
                            if let Some(status) = outcome.status {
                                sample = sample.with_status(status.code());
                            }
                            if let Some(error) = outcome.error {
                                sample = sample.with_error(error);
                            }
                            recorder.record(sample);
                            live.add(outcome.outcome);
                            worker.tally(study_of(k), outcome.outcome, actual, end);
                        }
                        if plan.association == AssociationStrategy::PerStudy {
                            worker.close();
                        }
                    }
                    worker.close();
                    recorder.flush();
                    worker.result
                })
            })
            .collect();

        // Progress from this thread while the workers run.
        let planned = plan.total();
        let mut last = (Instant::now(), 0u64);
        let report = |last: &mut (Instant, u64)| {
            let now = Instant::now();
            let attempted = live.progress(Duration::ZERO, None, 0.0, None).attempted;
            let dt = now.duration_since(last.0).as_secs_f64();
            let rate = if dt > 0.0 {
                (attempted - last.1) as f64 / dt
            } else {
                0.0
            };
            *last = (now, attempted);
            observer.on_progress(&live.progress(
                start.elapsed(),
                planned,
                rate,
                metrics.p95_latency_ms(),
            ));
        };
        while !workers.iter().all(|w| w.is_finished()) {
            let wake = Instant::now() + plan.progress_interval;
            while Instant::now() < wake && !workers.iter().all(|w| w.is_finished()) {
                thread::sleep(Duration::from_millis(5).min(plan.progress_interval));
            }
            report(&mut last);
        }
        let results = workers
            .into_iter()
            .map(|w| w.join().expect("a load worker panicked"))
            .collect();
        report(&mut last);
        results
    });
    let elapsed = start.elapsed();

    let mut associations = AssociationCounts::default();
    let mut studies: HashMap<u64, StudyTally> = HashMap::new();
    let (mut first_start, mut last_start): (Option<Instant>, Option<Instant>) = (None, None);
    for r in results {
        associations.opened += r.associations.opened;
        associations.failed_to_open += r.associations.failed_to_open;
        associations.found_closed += r.associations.found_closed;
        associations.recycled += r.associations.recycled;
        first_start = min_opt(first_start, r.first_start);
        last_start = max_opt(last_start, r.last_start);
        for (id, t) in r.studies {
            studies
                .entry(id)
                .and_modify(|s| {
                    for i in 0..4 {
                        s.counts[i] += t.counts[i];
                    }
                    s.first = s.first.min(t.first);
                    s.last = s.last.max(t.last);
                })
                .or_insert(t);
        }
    }
    let to_wall = |at: Instant| wall_start + at.saturating_duration_since(start);
    let mut studies: Vec<(u64, StudyTally)> = studies.into_iter().collect();
    studies.sort_by_key(|(_, t)| t.first);
    let studies = studies
        .into_iter()
        .map(|(id, t)| {
            let (study_instance_uid, source) = match &fresh {
                Some((root, order)) => (
                    root.uid(UidLevel::Study, id).to_string(),
                    order.source_of_study(id),
                ),
                None => study_uids[id as usize].clone(),
            };
            let source = &plan.instances[source];
            StudyRecord {
                study_instance_uid,
                original_study_instance_uid: source.study_instance_uid().map(str::to_string),
                patient_id: source.patient_id().map(str::to_string),
                attempted: t.counts.iter().sum(),
                succeeded: t.counts[0],
                warnings: t.counts[1],
                failed: t.counts[2],
                unknown: t.counts[3],
                first_sent: to_wall(t.first),
                last_sent: to_wall(t.last),
            }
        })
        .collect();
    let attempted = metrics.attempted();
    let achieved_send_rate = match (first_start, last_start) {
        (Some(a), Some(b)) if b > a && attempted > 1 => {
            Some((attempted - 1) as f64 / b.duration_since(a).as_secs_f64())
        }
        _ => None,
    };
    let snapshot = metrics.snapshot().map_err(|e| SenderError::Prepare {
        what: "the run's metrics".into(),
        detail: e.to_string(),
    })?;
    Ok(LoadReport {
        metrics: snapshot,
        target_rate: plan.rate,
        achieved_send_rate,
        elapsed,
        concurrency: plan.concurrency,
        association: plan.association,
        associations,
        studies,
        uid_root: fresh.map(|(root, _)| format!("{root:?}")),
    })
}

/// Makes, before the clock starts, the conversions the peer will need (decompression,
/// re-encoding), so that the first sends of each instance do not carry the codec's
/// time in their latency. Uses one probe association; when it cannot be opened the
/// run goes on, and the conversions happen on first use.
fn warm_up(sender: &DicomSender, plan: &LoadPlan, proposal: &Proposal) {
    let needs_conversion = plan
        .instances
        .iter()
        .any(|i| i.transfer_syntax() != dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN);
    if !needs_conversion {
        return;
    }
    let Ok(session) = sender.open(proposal) else {
        return;
    };
    let accepted = session.presentation_contexts().to_vec();
    let _ = session.release();
    for instance in &plan.instances {
        if let Some(choice) = crate::contexts::choose_context(
            &accepted,
            instance.sop_class_uid(),
            instance.transfer_syntax(),
        ) && choice.conversion != crate::contexts::Conversion::None
        {
            // A failure is cached too, and reported by each send that needs it.
            let _ = instance.variant(&choice.transfer_syntax);
        }
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// One worker's association and tallies.
struct Worker<'a> {
    sender: &'a DicomSender,
    plan: &'a LoadPlan,
    scu: &'a dimse::ScuOptions,
    live: &'a Live,
    session: Option<Session>,
    result: WorkerResult,
}

impl Worker<'_> {
    /// Sends one instance on this worker's association, opening one if needed.
    fn send(&mut self, instance: &PreparedInstance, uids: Option<&InstanceUids>) -> SendOutcome {
        let started = Instant::now();
        self.result.first_start.get_or_insert(started);
        self.result.last_start = Some(started);
        if let Some(session) = self.session.as_mut() {
            let recycle = self
                .plan
                .max_ops_per_association
                .is_some_and(|max| session.operations() >= u64::from(max.get()));
            if recycle {
                self.result.associations.recycled += 1;
                self.close();
            } else if !session.check_alive() {
                self.result.associations.found_closed += 1;
                self.close();
            }
        }
        if self.session.is_none() {
            match self.sender.open_with(self.scu) {
                Ok(session) => {
                    self.result.associations.opened += 1;
                    self.live.open_associations.fetch_add(1, Ordering::Relaxed);
                    self.session = Some(session);
                }
                Err(e) => {
                    self.result.associations.failed_to_open += 1;
                    return SendOutcome::not_sent(Outcome::Failure, e.to_string(), started);
                }
            }
        }
        let session = self.session.as_mut().expect("opened above");
        let mut outcome = session.store(instance, uids);
        // Time spent opening the association belongs to this send.
        outcome.latency = outcome.started.saturating_duration_since(started) + outcome.latency;
        outcome.started = started;
        if !session.is_usable() || self.plan.association == AssociationStrategy::PerImage {
            self.close();
        }
        outcome
    }

    /// Releases (or drops, when broken) the current association.
    fn close(&mut self) {
        if let Some(session) = self.session.take() {
            self.live.open_associations.fetch_sub(1, Ordering::Relaxed);
            if session.is_usable() {
                // The outcomes are known; a botched release changes none of them.
                let _ = session.release();
            }
        }
    }

    fn tally(&mut self, study: u64, outcome: Outcome, start: Instant, end: Instant) {
        let i = match outcome {
            Outcome::Success => 0,
            Outcome::Warning => 1,
            Outcome::Failure => 2,
            Outcome::Unknown => 3,
        };
        let entry = self.result.studies.entry(study).or_insert(StudyTally {
            counts: [0; 4],
            first: start,
            last: end,
        });
        entry.counts[i] += 1;
        entry.first = entry.first.min(start);
        entry.last = entry.last.max(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_sends_are_evenly_spaced_at_the_target_rate() {
        let plan = LoadPlan::new(Vec::new()).rate(Some(1000.0));
        assert_eq!(plan.intended_offset(0), Some(Duration::ZERO));
        assert_eq!(plan.intended_offset(1000), Some(Duration::from_secs(1)));
        assert_eq!(
            plan.intended_offset(1500),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn a_ramp_up_sends_half_the_full_rate_count_during_the_ramp() {
        let plan = LoadPlan::new(Vec::new())
            .rate(Some(100.0))
            .ramp_up(Duration::from_secs(10));
        // 100/s ramped over 10 s: 500 sends in the ramp, then 100/s.
        let at_500 = plan.intended_offset(500).unwrap().as_secs_f64();
        assert!((at_500 - 10.0).abs() < 1e-9, "{at_500}");
        let at_600 = plan.intended_offset(600).unwrap().as_secs_f64();
        assert!((at_600 - 11.0).abs() < 1e-9, "{at_600}");
        // Halfway through the ramp the rate is half: 125 sends by 5 s.
        let at_125 = plan.intended_offset(125).unwrap().as_secs_f64();
        assert!((at_125 - 5.0).abs() < 1e-9, "{at_125}");
    }

    #[test]
    fn closed_loop_has_no_intended_times() {
        assert_eq!(LoadPlan::new(Vec::new()).intended_offset(5), None);
    }
}
