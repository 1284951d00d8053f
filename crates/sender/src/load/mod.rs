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
//!
//! # Arrivals
//!
//! An arrival plan ([`LoadPlan::arrivals`]) fits the same machinery: its studies are
//! flattened, in order of arrival, into one table of send numbers (`arrival`), each
//! with its intended start (arrival + offset); a worker claims one study at a time
//! (as under the per-study strategy), opens its association with the study's AE
//! titles (options made once per pair of titles) and sends its images at their
//! times. Each send is recorded in the run's metrics and in its group's.
//!
//! # Modules
//!
//! The plan ([`LoadPlan`]) says what and how fast; the schedule fixes where each send
//! number goes and hands the numbers out; workers send them and emit one event per
//! send; tallies (metrics, studies, progress) consume the events; the report puts
//! them together.

mod arrival;
mod events;
mod feed;
mod files;
mod plan;
mod progress;
mod report;
mod schedule;
mod shard;
mod watch;
mod worker;

use std::sync::mpsc;
use std::thread;
use std::time::{Instant, SystemTime};

use metrics::PerfMetrics;

pub use arrival::{ImageArrival, StudyArrival};
pub use feed::GeneratorReport;
pub use files::{PreparedFiles, prepare_paths};
pub use plan::{DEFAULT_MEMORY_BUDGET, LoadPlan, StopAfter};
pub use progress::{LoadObserver, LoadProgress, NoObserver};
pub use report::{
    AssociationCounts, GroupReport, LoadReport, LoadSummary, StudyRecord, TlsSessionCount,
};
pub use shard::{
    MAX_SHARDS, MAX_START_AHEAD, MAX_START_LATE, Shard, check_start_at, parse_start_at,
};
pub use watch::{PlannedSend, SendWatch, WatchToken};

use crate::contexts::Proposal;
use crate::{DicomSender, SenderError};
use arrival::Endpoints;
use events::{SendSpan, StudyTallies, WorkerTallies};
use feed::Feed;
use progress::{Live, ProgressReporter};
use schedule::{Dispenser, Schedule};
use worker::Worker;

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
        plan.instances()
            .iter()
            .map(|i| (i.sop_class_uid(), i.transfer_syntax())),
    )?;
    warm_up(sender, plan, &proposal);
    // Made once: every association of the run opens with the same options.
    let scu = sender.options().scu_options(&proposal);
    let schedule = Schedule::new(plan);
    let metrics = PerfMetrics::new();
    let arrivals = plan.arrival_table();
    let endpoints = arrivals.map(|table| Endpoints::new(table, sender.options(), &proposal));
    let group_metrics: Vec<PerfMetrics> = (0..arrivals.map_or(0, |a| a.groups.len()))
        .map(|_| PerfMetrics::new())
        .collect();
    let live = Live::default();
    let (start, wall_start) = match plan.start_time() {
        // Shards on several machines share one schedule: the clock starts at the common
        // wall-clock instant. Checked again here: preparing the run took time.
        Some(at) => {
            let wait = check_start_at(at, SystemTime::now())?;
            thread::sleep(wait);
            let late = SystemTime::now().duration_since(at).unwrap_or_default();
            let now = Instant::now();
            (now.checked_sub(late).unwrap_or(now), at)
        }
        None => (Instant::now(), SystemTime::now()),
    };
    let dispenser = Dispenser::new(plan, &schedule, start);
    let feed = Feed::new(
        plan.instances(),
        &schedule,
        plan.total(),
        plan.current_memory_budget(),
    );

    let results: Vec<WorkerResult> = thread::scope(|scope| {
        // Each worker holds a sender it drops when it ends (or unwinds): the channel
        // disconnects the moment the last one is done, with no polling.
        let (running, all_done) = mpsc::channel::<()>();
        let feed = &feed;
        let readers: Vec<_> = (0..feed.readers())
            .map(|_| scope.spawn(move || feed.read_ahead()))
            .collect();
        let workers: Vec<_> = (0..plan.worker_count())
            .map(|_| {
                let groups = group_metrics.iter().map(PerfMetrics::recorder).collect();
                let mut tallies = WorkerTallies::new(metrics.recorder(), groups, &live);
                let (dispenser, schedule, scu, live) = (&dispenser, &schedule, &scu, &live);
                let endpoints = endpoints.as_ref();
                let running = running.clone();
                scope.spawn(move || {
                    let _running = running;
                    let mut worker = Worker {
                        sender,
                        plan,
                        scu,
                        live,
                        session: None,
                        associations: AssociationCounts::default(),
                        endpoints,
                        endpoint: None,
                    };
                    worker.run(dispenser, schedule, feed, start, &mut tallies);
                    let (studies, span, lag) = tallies.finish();
                    (worker.associations, studies, span, lag)
                })
            })
            .collect();

        // Progress from this thread while the workers run.
        let mut progress = ProgressReporter {
            live: &live,
            metrics: &metrics,
            observer,
            start,
            planned: plan.total(),
            last: (Instant::now(), 0),
        };
        drop(running);
        let interval = plan.current_progress_interval();
        while let Err(mpsc::RecvTimeoutError::Timeout) = all_done.recv_timeout(interval) {
            progress.report();
        }
        let results = workers
            .into_iter()
            .map(|w| w.join().expect("a load worker panicked"))
            .collect();
        feed.finish();
        for reader in readers {
            reader.join().expect("a read-ahead thread panicked");
        }
        progress.report();
        results
    });
    let elapsed = start.elapsed();

    let mut associations = AssociationCounts::default();
    let mut studies = StudyTallies::default();
    let mut span = SendSpan::default();
    let mut lag = metrics::LatencyHistogram::new();
    for (a, s, p, l) in results {
        associations.merge(&a);
        studies.merge(s);
        span.merge(p);
        lag.merge(&l.0);
    }
    let generator = feed.report(&lag, span.first.map(|first| first.duration_since(start)));
    let to_wall = |at: Instant| wall_start + at.saturating_duration_since(start);
    let mut studies: Vec<_> = studies.0.into_iter().collect();
    studies.sort_by_key(|(_, t)| t.first);
    let studies = studies
        .into_iter()
        .map(|(id, t)| {
            let (study_instance_uid, source) = schedule.study_identity(id);
            let source = &plan.instances()[source];
            StudyRecord {
                study_instance_uid,
                original_study_instance_uid: source.study_instance_uid().map(str::to_string),
                patient_id: source.patient_id().map(str::to_string),
                counts: t.counts,
                first_sent: to_wall(t.first),
                last_sent: to_wall(t.last),
                group: schedule
                    .group_of(id)
                    .and_then(|g| arrivals.map(|a| a.groups[g].to_string())),
            }
        })
        .collect::<Vec<_>>();
    let attempted = metrics.attempted();
    let achieved_send_rate = match (span.first, span.last) {
        (Some(a), Some(b)) if b > a && attempted > 1 => {
            Some((attempted - 1) as f64 / b.duration_since(a).as_secs_f64())
        }
        _ => None,
    };
    let snapshot_of = |metrics: &PerfMetrics| {
        metrics.snapshot().map_err(|e| SenderError::Prepare {
            what: "the run's metrics".into(),
            detail: e.to_string(),
        })
    };
    let snapshot = snapshot_of(&metrics)?;
    let mut groups = Vec::with_capacity(group_metrics.len());
    for (g, group) in group_metrics.iter().enumerate() {
        let name = arrivals.map_or("", |a| &a.groups[g]).to_string();
        let studies = studies
            .iter()
            .filter(|s| s.group.as_deref() == Some(name.as_str()))
            .count() as u64;
        groups.push(GroupReport {
            name,
            studies,
            metrics: snapshot_of(group)?,
        });
    }
    Ok(LoadReport {
        metrics: snapshot,
        target_rate: plan
            .target_rate()
            .map(|rate| rate / f64::from(plan.sharding().count())),
        achieved_send_rate,
        elapsed,
        concurrency: plan.worker_count(),
        association: plan.association_strategy(),
        associations,
        studies,
        groups,
        uid_root: schedule.uid_root(),
        generator,
        shard: (!plan.sharding().is_whole()).then(|| plan.sharding()),
    })
}

/// What one worker hands back: its association events and its tallies.
type WorkerResult = (
    AssociationCounts,
    StudyTallies,
    SendSpan,
    events::GeneratorLag,
);

/// Makes, before the clock starts, the conversions the peer will need (decompression,
/// re-encoding), so that the first sends of each instance do not carry the codec's
/// time in their latency. Uses one probe association; when it cannot be opened the
/// run goes on, and the conversions happen on first use.
fn warm_up(sender: &DicomSender, plan: &LoadPlan, proposal: &Proposal) {
    let needs_conversion = plan
        .instances()
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
    for instance in plan.instances() {
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
