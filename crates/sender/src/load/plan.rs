//! [`LoadPlan`]: what a load run sends, how fast, for how long, over which
//! associations; and when each send is meant to start ([`LoadPlan::intended_offset`]).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Shard;
use super::arrival::{ArrivalTable, StudyArrival};
use crate::instance::PreparedInstance;
use crate::layout::StudyLayout;
use crate::{AssociationStrategy, SenderError};

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
    memory_budget: u64,
    watch: Option<super::watch::Watch>,
    shard: Shard,
    start_at: Option<SystemTime>,
    /// The studies of an arrival plan, flattened into sends.
    arrivals: Option<Arc<ArrivalTable>>,
}

/// The default memory budget for a run's data sets: 512 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 512 * 1024 * 1024;

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
            memory_budget: DEFAULT_MEMORY_BUDGET,
            watch: None,
            shard: Shard::WHOLE,
            start_at: None,
            arrivals: None,
        }
    }

    /// An arrival-driven plan: each of `studies` arrives at its time and is sent, on
    /// an association of its own under its calling AE title, as a fresh copy of the
    /// templates its images name (indices into `instances`, which must be prepared
    /// with [`UidStrategy::Fresh`](crate::UidStrategy::Fresh)).
    ///
    /// Each image goes at its intended time, `start + at + offset`, never earlier, and
    /// its latency is measured from that time, also when it goes late because all
    /// [`concurrency`](Self::concurrency) associations are busy with earlier studies
    /// (no coordinated omission). Studies are sent in order of arrival; the run ends
    /// after the last one, or, with [`StopAfter::Duration`], once every study arriving
    /// within that time is sent: a study arriving later is not started, one started
    /// is sent whole. The report has one [`StudyRecord`](super::StudyRecord) per study
    /// sent, with its group, and per-group figures
    /// ([`LoadReport::groups`](super::LoadReport::groups)).
    ///
    /// The association strategy is [`AssociationStrategy::PerStudy`] (another one is
    /// refused when the run starts); [`rate`](Self::rate), [`ramp_up`](Self::ramp_up),
    /// [`study_layout`](Self::study_layout) and [`shard`](Self::shard) do not apply
    /// (a rate or a shard is refused). The templates are held like any plan's
    /// instances, within the [`memory_budget`](Self::memory_budget).
    ///
    /// ```
    /// use std::time::Duration;
    /// use dimse::AeTitle;
    /// use sender::{ImageArrival, LoadPlan, StudyArrival};
    ///
    /// let study = StudyArrival::new(Duration::from_millis(500), AeTitle::new("CT01").unwrap(), "CT")
    ///     .image(ImageArrival::new(Duration::ZERO, 0, 1));
    /// let plan = LoadPlan::arrivals(Vec::new(), vec![study]).concurrency(4);
    /// assert_eq!(plan.studies().map(<[_]>::len), Some(1));
    /// ```
    pub fn arrivals(instances: Vec<Arc<PreparedInstance>>, studies: Vec<StudyArrival>) -> Self {
        LoadPlan {
            association: AssociationStrategy::PerStudy,
            arrivals: Some(Arc::new(ArrivalTable::new(studies))),
            ..LoadPlan::new(instances)
        }
    }

    /// An arrival plan's studies, in order of arrival; `None` for other plans.
    pub fn studies(&self) -> Option<&[StudyArrival]> {
        self.arrivals.as_deref().map(|a| a.studies.as_slice())
    }

    pub(super) fn arrival_table(&self) -> Option<&ArrivalTable> {
        self.arrivals.as_deref()
    }

    /// Sends only `shard`'s part of this plan (default [`Shard::WHOLE`]): the whole
    /// run's send numbers `index`, `index + count`, ... at their intended times, so
    /// the shard sends `rate / count`, its share of a [`StopAfter::Count`], and
    /// within the same duration. Rate, count and duration stay those of the whole
    /// run. See [`Shard`]. A sharded plan needs a count or a duration.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Starts the run's clock at this wall-clock instant (default: as soon as the
    /// run is ready), so that the shards of a run on several machines share one
    /// schedule. The run sleeps until then; an instant more than
    /// [`MAX_START_AHEAD`](super::MAX_START_AHEAD) away, or passed more than
    /// [`MAX_START_LATE`](super::MAX_START_LATE) ago, is refused when the run starts.
    /// Just passed, the clock starts at that instant and the sends already due go at
    /// once (late, and measured as late).
    pub fn start_at(mut self, at: Option<SystemTime>) -> Self {
        self.start_at = at;
        self
    }

    /// Which part of the run this plan sends.
    pub fn sharding(&self) -> Shard {
        self.shard
    }

    /// The wall-clock instant the run's clock starts at, if fixed.
    pub fn start_time(&self) -> Option<SystemTime> {
        self.start_at
    }

    /// Bytes of data sets the run may hold in memory (default
    /// [`DEFAULT_MEMORY_BUDGET`]). Instances [inspected](PreparedInstance::inspect)
    /// from files and sent more than once stay in memory when they all fit; otherwise
    /// the first ones do and the others are read from disk, ahead of time, for each
    /// send. A run sending each instance at most once reads every data set ahead of
    /// its send and keeps none. Instances prepared in memory are not counted, nor the
    /// other encodings a peer may need (decompressed, another uncompressed syntax),
    /// which are made once and kept.
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Shows every send to `watch` before it goes out and with its outcome (the
    /// destination sink's ledger).
    pub fn watch_sends(mut self, watch: std::sync::Arc<dyn super::SendWatch>) -> Self {
        self.watch = Some(super::watch::Watch(watch));
        self
    }

    pub(super) fn send_watch(&self) -> Option<&dyn super::SendWatch> {
        self.watch.as_ref().map(|w| &*w.0)
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

    /// How fresh UIDs group the sends into studies and series.
    pub fn layout(&self) -> StudyLayout {
        self.layout
    }

    /// Bytes of data sets the run may hold in memory.
    pub fn current_memory_budget(&self) -> u64 {
        self.memory_budget
    }

    pub(super) fn current_progress_interval(&self) -> Duration {
        self.progress_interval
    }

    /// The instances sent.
    pub fn instances(&self) -> &[Arc<PreparedInstance>] {
        &self.instances
    }

    pub(super) fn validate(&self) -> Result<(), SenderError> {
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
        if !self.shard.is_whole() && self.stop == StopAfter::EachOnce {
            return invalid(
                "shard",
                self.shard.to_string(),
                "a count or a duration to split (a sharded run cannot send 'each file once')",
            );
        }
        if let Some(at) = self.start_at {
            super::check_start_at(at, SystemTime::now())?;
        }
        if let Some(arrivals) = &self.arrivals {
            self.validate_arrivals(arrivals)?;
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

    fn validate_arrivals(&self, arrivals: &ArrivalTable) -> Result<(), SenderError> {
        let invalid = |name: &'static str, value: String, expected: &str| {
            Err(SenderError::InvalidOption {
                name,
                value,
                expected: expected.to_string(),
            })
        };
        if arrivals.studies.is_empty() {
            return invalid("studies", "none".into(), "at least one study to send");
        }
        if let Some(study) = arrivals.studies.iter().find(|s| s.images.is_empty()) {
            return invalid(
                "studies",
                format!("a study of {} with no images", study.calling_ae_title),
                "at least one image per study",
            );
        }
        if let Some(send) = arrivals
            .sends
            .iter()
            .find(|s| s.instance >= self.instances.len())
        {
            return invalid(
                "images",
                format!("instance {}", send.instance),
                &format!(
                    "an index into the plan's {} instances",
                    self.instances.len()
                ),
            );
        }
        if self.association != AssociationStrategy::PerStudy {
            return invalid(
                "association",
                self.association.as_str().into(),
                "per-study: an arrival plan sends each study on an association of its own",
            );
        }
        if let Some(rate) = self.rate {
            return invalid(
                "rate",
                rate.to_string(),
                "no rate: an arrival plan's times are its studies' arrivals",
            );
        }
        if let StopAfter::Count(n) = self.stop {
            return invalid(
                "stop_after",
                format!("{n} sends"),
                "every study, or a duration after which arriving studies are not started",
            );
        }
        if !self.shard.is_whole() {
            return invalid(
                "shard",
                self.shard.to_string(),
                "the whole run: an arrival plan is not sharded (give each generator its own studies)",
            );
        }
        if !self.instances.iter().all(|i| i.has_fresh_uids()) {
            return invalid(
                "instances",
                "instances prepared as is".into(),
                "instances prepared with fresh UIDs: each arrival is a fresh study",
            );
        }
        Ok(())
    }

    pub(super) fn total(&self) -> Option<u64> {
        if let Some(arrivals) = &self.arrivals {
            return Some(arrivals.sends.len() as u64);
        }
        match self.stop {
            StopAfter::EachOnce => Some(self.instances.len() as u64),
            StopAfter::Count(n) => Some(self.shard.share_of(n)),
            StopAfter::Duration(_) => None,
        }
    }

    /// Intended start of this plan's send `k`, from the run's start (open loop only):
    /// of a shard, its send `k`'s time in the whole run's schedule.
    pub(super) fn intended_offset(&self, k: u64) -> Option<Duration> {
        if let Some(arrivals) = &self.arrivals {
            return Some(arrivals.send(k).offset);
        }
        self.whole_run_offset(self.shard.global_send(k))
    }

    /// The time a [`StopAfter::Duration`] compares with to admit send `k`: its
    /// intended start, or in an arrival plan its study's arrival (a study started
    /// before the end is sent whole).
    pub(super) fn admission_offset(&self, k: u64) -> Option<Duration> {
        match &self.arrivals {
            Some(arrivals) => Some(arrivals.arrival_of(k)),
            None => self.intended_offset(k),
        }
    }

    /// Intended start of the whole run's send `k`.
    fn whole_run_offset(&self, k: u64) -> Option<Duration> {
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
    fn the_shards_intended_sends_together_are_the_whole_runs() {
        let whole = LoadPlan::new(Vec::new())
            .rate(Some(30.0))
            .ramp_up(Duration::from_secs(2))
            .stop_after(StopAfter::Count(100));
        let mut union: Vec<Duration> = (0..3)
            .flat_map(|i| {
                let shard = whole.clone().shard(Shard::new(i, 3).unwrap());
                let sends = shard.total().unwrap();
                (0..sends)
                    .map(|k| shard.intended_offset(k).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        union.sort();
        let single: Vec<Duration> = (0..100)
            .map(|k| whole.intended_offset(k).unwrap())
            .collect();
        assert_eq!(union, single);
    }

    #[test]
    fn a_shard_sends_its_share_of_the_rate() {
        let shard = LoadPlan::new(Vec::new())
            .rate(Some(300.0))
            .shard(Shard::new(2, 3).unwrap());
        // 100 a second: send 100 of the shard is send 302 of the whole run.
        let gap = shard.intended_offset(101).unwrap() - shard.intended_offset(100).unwrap();
        assert!((gap.as_secs_f64() - 0.01).abs() < 1e-9, "{gap:?}");
        assert_eq!(
            shard.intended_offset(0),
            Some(Duration::from_secs_f64(2.0 / 300.0))
        );
    }

    #[test]
    fn closed_loop_has_no_intended_times() {
        assert_eq!(LoadPlan::new(Vec::new()).intended_offset(5), None);
    }
}
