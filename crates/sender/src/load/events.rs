//! One event per send ([`SendEvent`]) and the tallies that consume the stream: the
//! metrics recorder, the per-study records ([`StudyTallies`]), the span of actual
//! starts ([`SendSpan`]) and live progress (see `progress`).
//!
//! A worker hands each event to its own [`WorkerTallies`] on its own thread: no lock,
//! no channel and no allocation per send (the event moves into the metrics sample
//! last, so an error text is never copied). Every tally counts with
//! [`OutcomeCounts`], so `attempted = succeeded + warnings + failed + unknown` holds
//! in each of them by construction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use metrics::{LatencyHistogram, OutcomeCounts, Recorder, Sample};

use super::progress::Live;
use crate::outcome::SendOutcome;

/// How one send of a run ended, and where it belonged.
#[derive(Debug)]
pub(crate) struct SendEvent {
    /// The run's number of the study it went to.
    pub(crate) study: u64,
    /// In an arrival run, the index of its study's group.
    pub(crate) group: Option<usize>,
    /// When it was meant to start (open loop), for latency without coordinated
    /// omission; `None` in closed loop, where it started when it could.
    pub(crate) intended: Option<Instant>,
    /// How long the send waited for its data set beyond when it was due (the
    /// generator's delay, excluded from its latency); `None` when it was ready.
    pub(crate) generator_lag: Option<Duration>,
    /// What came of it; `started` is the actual start, association opening included.
    pub(crate) outcome: SendOutcome,
}

impl SendEvent {
    /// When its outcome was known.
    pub(crate) fn end(&self) -> Instant {
        self.outcome.started + self.outcome.latency
    }

    /// The metrics sample: latency from the intended start, service time from the
    /// actual one.
    fn into_sample(self) -> Sample {
        let end = self.end();
        let outcome = self.outcome;
        let actual = outcome.started;
        let mut sample = Sample::new(
            self.intended.unwrap_or(actual),
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
        sample
    }
}

/// A consumer of the send events.
pub(crate) trait SendTally {
    /// Takes account of one send.
    fn on_send(&mut self, event: &SendEvent);
}

/// One study's sends as one worker saw them.
#[derive(Debug, Clone, Copy)]
pub(super) struct StudyTally {
    pub(super) counts: OutcomeCounts,
    /// Earliest actual start.
    pub(super) first: Instant,
    /// Latest end.
    pub(super) last: Instant,
}

/// Per study (by the run's study number), how its sends ended.
#[derive(Debug, Default)]
pub(super) struct StudyTallies(pub(super) HashMap<u64, StudyTally>);

impl SendTally for StudyTallies {
    fn on_send(&mut self, event: &SendEvent) {
        let (start, end) = (event.outcome.started, event.end());
        let entry = self.0.entry(event.study).or_insert(StudyTally {
            counts: OutcomeCounts::default(),
            first: start,
            last: end,
        });
        entry
            .counts
            .count(event.outcome.outcome, event.outcome.bytes);
        entry.first = entry.first.min(start);
        entry.last = entry.last.max(end);
    }
}

impl StudyTallies {
    /// Adds another worker's tallies.
    pub(super) fn merge(&mut self, other: StudyTallies) {
        for (study, t) in other.0 {
            self.0
                .entry(study)
                .and_modify(|s| {
                    s.counts.merge(&t.counts);
                    s.first = s.first.min(t.first);
                    s.last = s.last.max(t.last);
                })
                .or_insert(t);
        }
    }
}

/// The first and last actual starts: what the achieved send rate is measured over.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SendSpan {
    pub(super) first: Option<Instant>,
    pub(super) last: Option<Instant>,
}

impl SendTally for SendSpan {
    fn on_send(&mut self, event: &SendEvent) {
        let started = event.outcome.started;
        self.first = Some(self.first.map_or(started, |f| f.min(started)));
        self.last = Some(self.last.map_or(started, |l| l.max(started)));
    }
}

impl SendSpan {
    /// The span covering both.
    pub(super) fn merge(&mut self, other: SendSpan) {
        self.first = match (self.first, other.first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last = match (self.last, other.last) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// How long sends waited for their data sets: one histogram entry per late send.
#[derive(Debug, Default)]
pub(super) struct GeneratorLag(pub(super) LatencyHistogram);

impl SendTally for GeneratorLag {
    fn on_send(&mut self, event: &SendEvent) {
        if let Some(lag) = event.generator_lag {
            self.0.record(lag);
        }
    }
}

/// Every consumer of one worker's events.
pub(super) struct WorkerTallies<'a> {
    recorder: Recorder,
    /// An arrival run's per-group metrics, by group index: each send is recorded in
    /// its group's and in the run's, so the groups add up to the run exactly.
    groups: Vec<Recorder>,
    live: &'a Live,
    pub(super) studies: StudyTallies,
    pub(super) span: SendSpan,
    pub(super) lag: GeneratorLag,
}

impl<'a> WorkerTallies<'a> {
    pub(super) fn new(recorder: Recorder, groups: Vec<Recorder>, live: &'a Live) -> Self {
        WorkerTallies {
            recorder,
            groups,
            live,
            studies: StudyTallies::default(),
            span: SendSpan::default(),
            lag: GeneratorLag::default(),
        }
    }

    /// Hands `event` to every tally; the metrics recorder takes it last, by value.
    pub(super) fn record(&mut self, event: SendEvent) {
        self.live.on_send(&event);
        self.studies.on_send(&event);
        self.span.on_send(&event);
        self.lag.on_send(&event);
        match event.group {
            Some(group) => {
                // A sample without an error text clones without allocating.
                let sample = event.into_sample();
                self.groups[group].record(sample.clone());
                self.recorder.record(sample);
            }
            None => self.recorder.record(event.into_sample()),
        }
    }

    /// Flushes the recorder into the run's metrics; the rest is merged by the caller.
    pub(super) fn finish(mut self) -> (StudyTallies, SendSpan, GeneratorLag) {
        self.recorder.flush();
        for group in &mut self.groups {
            group.flush();
        }
        (self.studies, self.span, self.lag)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Outcome;

    fn event(study: u64, outcome: Outcome, at: Instant) -> SendEvent {
        SendEvent {
            study,
            group: None,
            intended: None,
            generator_lag: None,
            outcome: SendOutcome {
                status: None,
                outcome,
                latency: Duration::from_millis(5),
                bytes: 100,
                error: None,
                started: at,
            },
        }
    }

    #[test]
    fn study_tallies_count_every_send_once_in_its_class_across_workers() {
        let t0 = Instant::now();
        let (mut a, mut b) = (StudyTallies::default(), StudyTallies::default());
        let outcomes = [
            Outcome::Success,
            Outcome::Warning,
            Outcome::Failure,
            Outcome::Unknown,
        ];
        for (k, outcome) in outcomes.into_iter().enumerate() {
            let at = t0 + Duration::from_millis(10 * k as u64);
            a.on_send(&event(0, outcome, at));
            b.on_send(&event((k % 2) as u64, outcome, at));
        }
        a.merge(b);
        let study0 = a.0[&0];
        assert!(study0.counts.is_consistent());
        assert_eq!(study0.counts.attempted, 6);
        assert_eq!(
            (
                study0.counts.succeeded,
                study0.counts.failed,
                study0.counts.unknown
            ),
            (2, 2, 1)
        );
        assert_eq!(study0.first, t0);
        assert_eq!(study0.last, t0 + Duration::from_millis(35));
        assert_eq!(a.0[&1].counts.attempted, 2);
    }

    #[test]
    fn the_span_covers_the_earliest_and_latest_actual_start() {
        let t0 = Instant::now();
        let (mut a, mut b) = (SendSpan::default(), SendSpan::default());
        a.on_send(&event(0, Outcome::Success, t0 + Duration::from_millis(3)));
        b.on_send(&event(0, Outcome::Success, t0));
        b.on_send(&event(0, Outcome::Success, t0 + Duration::from_millis(1)));
        a.merge(b);
        assert_eq!(a.first, Some(t0));
        assert_eq!(a.last, Some(t0 + Duration::from_millis(3)));
    }
}
