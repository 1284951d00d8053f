//! The ledger: every send the sink expects, every arrival, and the accounting that
//! ties them together.
//!
//! A sender tells the ledger about each send *before* it goes out
//! ([`Ledger::expect`], which gives a [`Ticket`]) and about the router's answer after
//! ([`Ledger::answered`]); the sink's listener hands it each arrival. Because the
//! expectation exists before the router can have the instance, an arrival always
//! finds its send, whichever of the router's answer and its forwarding comes first.
//!
//! Memory per tracked send is kept small by sharing: the original instance (decoded,
//! pixel data included) is registered once ([`Ledger::add_original`]) and every send
//! of it refers to it by an [`OriginalId`]; a send itself holds its key and its few
//! substituted values.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use metrics::{LatencyHistogram, Outcome};
use parking_lot::{Condvar, Mutex};

use crate::compare::{Difference, Sent, compare};
use crate::error::SinkError;
use crate::policy::RoutePolicy;
use crate::report::{
    DeliveryCounts, DeliveryReport, InstanceProblem, MAX_PROBLEMS_KEPT, ProblemKind, TransitSecond,
};
use crate::sent::{SentInstance, Substitution, parse_data_set, transfer_syntax};
use crate::trace::MatchBy;

/// How long the sink must have been quiet (no arrival) before a settled report is
/// taken once every expected instance is in: a duplicate sent right after its first
/// copy is still counted.
pub const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// Originals kept decoded at once when they are read from files (the rest are read
/// again when an arrival needs them).
const ORIGINALS_CACHED: usize = 256;

/// An original instance registered with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginalId(u32);

/// Where an original comes from.
#[derive(Debug, Clone)]
pub enum OriginalSource {
    /// Already decoded.
    Loaded(Arc<SentInstance>),
    /// A file, read when the first arrival of one of its sends needs it (and again
    /// after it left the cache), so that a large dataset is never all in memory.
    File {
        /// The file.
        path: PathBuf,
        /// Its SOP Instance UID, as the sender read it.
        sop_instance_uid: String,
    },
}

impl OriginalSource {
    fn sop_instance_uid(&self) -> &str {
        match self {
            OriginalSource::Loaded(instance) => instance.sop_instance_uid(),
            OriginalSource::File {
                sop_instance_uid, ..
            } => sop_instance_uid,
        }
    }
}

/// One send the sink is to expect.
#[derive(Debug, Clone)]
pub struct ExpectedSend {
    /// What it carries.
    pub original: OriginalId,
    /// The values it carries instead of the original's (fresh UIDs); empty when it
    /// carries the file as is.
    pub substitutions: Vec<Substitution>,
    /// The route it goes to (the called AE title), which says what may change.
    pub route: Arc<str>,
    /// The trace value written into it, when the ledger matches by trace.
    pub trace: Option<Arc<str>>,
}

/// A tracked send, to be answered with [`Ledger::answered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u32);

impl Ticket {
    /// The ticket as a number, for a caller that must carry it through an opaque
    /// token (a sender's per-send watch).
    pub fn to_raw(self) -> u64 {
        u64::from(self.0)
    }

    /// The ticket a number from [`to_raw`](Self::to_raw) stands for. A number that
    /// was never a ticket of this ledger is ignored by [`Ledger::answered`].
    pub fn from_raw(raw: u64) -> Ticket {
        Ticket(u32::try_from(raw).unwrap_or(u32::MAX))
    }
}

/// What the ledger is set up with.
#[derive(Debug, Clone, Default)]
pub struct LedgerOptions {
    match_by: MatchBy,
    default_policy: RoutePolicy,
    policies: HashMap<String, RoutePolicy>,
}

impl LedgerOptions {
    /// Match by SOP Instance UID; no route may change anything.
    pub fn new() -> Self {
        LedgerOptions::default()
    }

    /// How arrivals are matched to sends.
    pub fn match_by(mut self, match_by: MatchBy) -> Self {
        self.match_by = match_by;
        self
    }

    /// What routes without their own policy may change.
    pub fn default_policy(mut self, policy: RoutePolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// What `route` (a called AE title) may change.
    pub fn route_policy(mut self, route: impl Into<String>, policy: RoutePolicy) -> Self {
        self.policies.insert(route.into(), policy);
        self
    }
}

/// One arrival at the sink, as the listener hands it over.
#[derive(Debug)]
pub struct Arrival {
    /// When its last byte arrived.
    pub at: Instant,
    /// The calling AE title of its association.
    pub calling_ae_title: String,
    /// Affected SOP Instance UID of its C-STORE-RQ.
    pub sop_instance_uid: String,
    /// The transfer syntax of its presentation context.
    pub transfer_syntax: String,
    /// The data set, encoded.
    pub data: Vec<u8>,
}

#[derive(Debug)]
struct Tracked {
    original: OriginalId,
    substitutions: Box<[Substitution]>,
    route: u16,
    /// Sends of it whose answer is not known yet.
    pending: u32,
    stored: u32,
    refused: u32,
    unknown: u32,
    arrivals: u32,
    /// Ends of sends (the router's answers) not yet matched with an arrival.
    unmatched_answers: VecDeque<Instant>,
    /// Arrivals not yet matched with an answer (the router forwarded first).
    early_arrivals: u32,
    altered: bool,
    corrupt: bool,
}

#[derive(Debug, Default)]
struct ArrivalSecond {
    arrivals: u64,
    measured: u64,
    transit_sum_us: u64,
    transit_max_us: u64,
}

#[derive(Debug, Default)]
struct State {
    originals: Vec<OriginalSource>,
    cache: HashMap<OriginalId, Arc<SentInstance>>,
    cache_order: VecDeque<OriginalId>,
    routes: Vec<Arc<str>>,
    tracked: Vec<Tracked>,
    by_key: HashMap<Arc<str>, u32>,
    /// Instances the router took (success, warning or unknown) of which no copy has
    /// arrived yet: what a settled report waits for.
    awaiting_first: u64,
    /// Arrivals handed over and not yet recorded.
    in_hand: u64,
    last_arrival: Option<Instant>,
    last_answer: Option<Instant>,
    transit: LatencyHistogram,
    seconds: Vec<ArrivalSecond>,
    problems: Vec<InstanceProblem>,
    problems_total: u64,
    unexpected: u64,
    trace_stripped: u64,
    arrived_before_response: u64,
}

/// Every send the sink expects and what came of it. Shared (`Arc`) by the sender's
/// side and the sink's listener.
#[derive(Debug)]
pub struct Ledger {
    options: LedgerOptions,
    origin: Instant,
    state: Mutex<State>,
    changed: Condvar,
}

impl Ledger {
    /// An empty ledger; its timeline starts now.
    pub fn new(options: LedgerOptions) -> Arc<Self> {
        Arc::new(Ledger {
            options,
            origin: Instant::now(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        })
    }

    /// How arrivals are matched.
    pub fn match_by(&self) -> &MatchBy {
        &self.options.match_by
    }

    /// Registers an original instance that sends will carry.
    pub fn add_original(&self, source: OriginalSource) -> OriginalId {
        let mut state = self.state.lock();
        let id = OriginalId(state.originals.len() as u32);
        if let OriginalSource::Loaded(instance) = &source {
            state.cache.insert(id, instance.clone());
        }
        state.originals.push(source);
        id
    }

    /// Tracks one send, before it goes out.
    ///
    /// # Errors
    /// The ledger matches by trace and the send has no trace value.
    pub fn expect(&self, send: ExpectedSend) -> Result<Ticket, SinkError> {
        let mut state = self.state.lock();
        let original = &state.originals[send.original.0 as usize];
        let key: Arc<str> = match &self.options.match_by {
            MatchBy::Trace(trace) => match send.trace {
                Some(value) => value,
                None => {
                    return Err(SinkError::MissingTrace {
                        sop_instance_uid: original.sop_instance_uid().to_string(),
                        route: send.route.to_string(),
                        trace: trace.to_string(),
                    });
                }
            },
            _ => send
                .substitutions
                .iter()
                .find(|s| s.tag == tags::SOP_INSTANCE_UID)
                .map(|s| s.value.clone())
                .unwrap_or_else(|| Arc::from(original.sop_instance_uid())),
        };
        let route = match state.routes.iter().position(|r| *r == send.route) {
            Some(i) => i as u16,
            None => {
                state.routes.push(send.route.clone());
                (state.routes.len() - 1) as u16
            }
        };
        if let Some(&index) = state.by_key.get(&key) {
            // The same instance sent again (a run without fresh UIDs).
            state.tracked[index as usize].pending += 1;
            return Ok(Ticket(index));
        }
        let index = state.tracked.len() as u32;
        state.by_key.insert(key, index);
        state.tracked.push(Tracked {
            original: send.original,
            substitutions: send.substitutions.into_boxed_slice(),
            route,
            pending: 1,
            stored: 0,
            refused: 0,
            unknown: 0,
            arrivals: 0,
            unmatched_answers: VecDeque::new(),
            early_arrivals: 0,
            altered: false,
            corrupt: false,
        });
        Ok(Ticket(index))
    }

    /// The router's answer to a tracked send, and when it came (the end of the send).
    pub fn answered(&self, ticket: Ticket, outcome: Outcome, at: Instant) {
        {
            let mut guard = self.state.lock();
            let state = &mut *guard;
            state.last_answer = Some(state.last_answer.map_or(at, |t| t.max(at)));
            let Some(tracked) = state.tracked.get_mut(ticket.0 as usize) else {
                return;
            };
            tracked.pending = tracked.pending.saturating_sub(1);
            let taken_before = tracked.stored + tracked.unknown;
            match outcome {
                Outcome::Success | Outcome::Warning => tracked.stored += 1,
                Outcome::Unknown => tracked.unknown += 1,
                Outcome::Failure => tracked.refused += 1,
            }
            if outcome != Outcome::Failure && taken_before == 0 && tracked.arrivals == 0 {
                state.awaiting_first += 1;
            }
            if tracked.early_arrivals > 0 {
                // Arrived before this answer: no transit to measure (for a refused
                // send, a copy the router should not have delivered).
                tracked.early_arrivals -= 1;
                if outcome != Outcome::Failure {
                    state.arrived_before_response += 1;
                }
            } else if outcome != Outcome::Failure {
                tracked.unmatched_answers.push_back(at);
            }
        }
        self.changed.notify_all();
    }

    /// The listener has an arrival it will hand over ([`record`](Self::record)): a
    /// settled report waits for it.
    pub(crate) fn arrival_in_hand(&self) {
        self.state.lock().in_hand += 1;
    }

    /// An arrival announced with [`arrival_in_hand`](Self::arrival_in_hand) that
    /// will never be handed over (the sink is stopping).
    pub(crate) fn arrival_dropped(&self) {
        let mut state = self.state.lock();
        state.in_hand = state.in_hand.saturating_sub(1);
        drop(state);
        self.changed.notify_all();
    }

    /// Matches, compares and counts one arrival. Comparison runs outside the lock.
    pub fn record(&self, arrival: Arrival) {
        let verdict = self.judge(&arrival);
        let mut state = self.state.lock();
        state.in_hand = state.in_hand.saturating_sub(1);
        self.count(&mut state, arrival, verdict);
        drop(state);
        self.changed.notify_all();
    }

    fn judge(&self, arrival: &Arrival) -> Verdict {
        let Some(ts) = transfer_syntax(&arrival.transfer_syntax) else {
            return Verdict {
                index: self.index_of(arrival.sop_instance_uid.as_str()),
                trace_stripped: false,
                outcome: Judged::Corrupt(format!(
                    "unknown transfer syntax {}",
                    arrival.transfer_syntax
                )),
            };
        };
        let parsed = parse_data_set(&arrival.data, ts);
        let (index, trace_stripped, skip) = match (&self.options.match_by, &parsed) {
            (MatchBy::Trace(trace), Ok(object)) => match trace.value_in(object) {
                Some(value) => (self.index_of(&value), false, trace.tags_in(object)),
                None => (self.index_of(&arrival.sop_instance_uid), true, Vec::new()),
            },
            _ => (self.index_of(&arrival.sop_instance_uid), false, Vec::new()),
        };
        let object = match parsed {
            Ok(object) => object,
            Err(error) => {
                return Verdict {
                    index,
                    trace_stripped,
                    outcome: Judged::Corrupt(error),
                };
            }
        };
        let Some(index) = index else {
            return Verdict {
                index,
                trace_stripped,
                outcome: Judged::Unmatched,
            };
        };
        let (original, substitutions, policy) = match self.send_of(index) {
            Ok(send) => send,
            Err(error) => {
                return Verdict {
                    index: Some(index),
                    trace_stripped,
                    outcome: Judged::OriginalUnreadable(error),
                };
            }
        };
        let sent = Sent {
            original: &original,
            substitutions: &substitutions,
            transfer_syntax: original.transfer_syntax(),
        };
        let differences = compare(sent, object, ts, policy, &skip).differences;
        Verdict {
            index: Some(index),
            trace_stripped,
            outcome: Judged::Compared(differences),
        }
    }

    fn index_of(&self, key: &str) -> Option<u32> {
        let key = dimse::trim_value(key);
        self.state.lock().by_key.get(key).copied()
    }

    /// The original, substitutions and policy of tracked send `index`, reading the
    /// original from its file when it is not cached.
    #[allow(clippy::type_complexity)]
    fn send_of(
        &self,
        index: u32,
    ) -> Result<(Arc<SentInstance>, Box<[Substitution]>, &RoutePolicy), String> {
        let (id, substitutions, route, cached, source) = {
            let state = self.state.lock();
            let tracked = &state.tracked[index as usize];
            let id = tracked.original;
            (
                id,
                tracked.substitutions.clone(),
                state.routes[tracked.route as usize].clone(),
                state.cache.get(&id).cloned(),
                state.originals[id.0 as usize].clone(),
            )
        };
        let policy = self
            .options
            .policies
            .get(&*route)
            .unwrap_or(&self.options.default_policy);
        if let Some(original) = cached {
            return Ok((original, substitutions, policy));
        }
        let OriginalSource::File { path, .. } = source else {
            unreachable!("loaded originals are always cached");
        };
        let original = SentInstance::open(&path).map_err(|e| e.to_string())?;
        let mut state = self.state.lock();
        if state.cache.insert(id, original.clone()).is_none() {
            state.cache_order.push_back(id);
            // Only originals read from files are in the order: loaded ones stay.
            while state.cache_order.len() > ORIGINALS_CACHED {
                if let Some(old) = state.cache_order.pop_front() {
                    state.cache.remove(&old);
                }
            }
        }
        Ok((original, substitutions, policy))
    }

    fn count(&self, state: &mut State, arrival: Arrival, verdict: Verdict) {
        let second = arrival.at.saturating_duration_since(self.origin).as_secs() as usize;
        if state.seconds.len() <= second {
            state
                .seconds
                .resize_with(second + 1, ArrivalSecond::default);
        }
        state.seconds[second].arrivals += 1;
        state.last_arrival = Some(arrival.at);
        if verdict.trace_stripped {
            state.trace_stripped += 1;
            let problem =
                self.problem_of(state, verdict.index, &arrival, ProblemKind::TraceStripped);
            push_problem(state, problem);
        }
        let Some(index) = verdict.index else {
            state.unexpected += 1;
            let kind = match verdict.outcome {
                Judged::Corrupt(error) => ProblemKind::Corrupt { error },
                _ => ProblemKind::Unexpected {
                    calling_ae_title: arrival.calling_ae_title.clone(),
                },
            };
            let problem = self.problem_of(state, None, &arrival, kind);
            push_problem(state, problem);
            return;
        };
        let tracked = &mut state.tracked[index as usize];
        tracked.arrivals += 1;
        if tracked.arrivals == 1 && tracked.stored + tracked.unknown > 0 {
            state.awaiting_first -= 1;
        }
        // Copies pair with the router's answers in order (one to one with fresh UIDs;
        // in order for a file sent as it is, again and again).
        match tracked.unmatched_answers.pop_front() {
            Some(answer) => {
                let transit = arrival.at.saturating_duration_since(answer);
                state.transit.record(transit);
                let s = &mut state.seconds[second];
                let micros = transit.as_micros() as u64;
                s.measured += 1;
                s.transit_sum_us += micros;
                s.transit_max_us = s.transit_max_us.max(micros);
            }
            // Forwarded before the router answered: paired when the answer comes.
            None if tracked.pending > tracked.early_arrivals => tracked.early_arrivals += 1,
            // A copy beyond the sends (duplicate, or of a refused send): counted when
            // the report is made.
            None => {}
        }
        let tracked = &mut state.tracked[index as usize];
        let kind = match verdict.outcome {
            Judged::Compared(differences) if differences.is_empty() => None,
            Judged::Compared(differences) => {
                (!tracked.altered).then_some(ProblemKind::Altered { differences })
            }
            Judged::Corrupt(error) => (!tracked.altered).then(|| {
                tracked.corrupt = true;
                ProblemKind::Corrupt { error }
            }),
            Judged::OriginalUnreadable(error) => (!tracked.altered).then(|| ProblemKind::Corrupt {
                error: format!("the original could not be read to compare: {error}"),
            }),
            Judged::Unmatched => None,
        };
        if let Some(kind) = kind {
            tracked.altered = true;
            let problem = self.problem_of(state, Some(index), &arrival, kind);
            push_problem(state, problem);
        }
    }

    fn problem_of(
        &self,
        state: &State,
        index: Option<u32>,
        arrival: &Arrival,
        kind: ProblemKind,
    ) -> InstanceProblem {
        match index {
            Some(index) => tracked_problem(state, &state.tracked[index as usize], kind),
            None => InstanceProblem {
                sop_instance_uid: dimse::trim_value(&arrival.sop_instance_uid).to_string(),
                original_sop_instance_uid: None,
                route: None,
                kind,
            },
        }
    }

    /// The accounting now: sends not yet arrived count as in transit.
    pub fn snapshot(&self) -> DeliveryReport {
        self.report(false)
    }

    /// Waits until every send the router took has arrived and the sink has been quiet
    /// for [`QUIET_PERIOD`], or until `delivery_timeout` has passed since the last
    /// answer the router gave (or since this call, if later), then reports: what has
    /// not arrived by then is undelivered.
    pub fn settle(&self, delivery_timeout: Duration) -> DeliveryReport {
        let called = Instant::now();
        let mut state = self.state.lock();
        loop {
            let now = Instant::now();
            let deadline = state.last_answer.map_or(called, |t| t.max(called)) + delivery_timeout;
            if now >= deadline {
                break;
            }
            let quiet_since = state.last_arrival.map_or(called, |t| t.max(called));
            if state.awaiting_first == 0 && state.in_hand == 0 {
                let quiet_until = (quiet_since + QUIET_PERIOD).min(deadline);
                if now >= quiet_until {
                    break;
                }
                self.changed.wait_until(&mut state, quiet_until);
            } else {
                self.changed
                    .wait_until(&mut state, deadline.min(now + Duration::from_millis(200)));
            }
        }
        drop(state);
        self.report(true)
    }

    fn report(&self, settled: bool) -> DeliveryReport {
        let state = self.state.lock();
        let mut counts = DeliveryCounts {
            unexpected: state.unexpected,
            trace_stripped: state.trace_stripped,
            arrived_before_response: state.arrived_before_response,
            ..DeliveryCounts::default()
        };
        let mut problems = state.problems.clone();
        let mut problems_total = state.problems_total;
        let mut add = |problem: InstanceProblem| {
            problems_total += 1;
            if problems.len() < MAX_PROBLEMS_KEPT {
                problems.push(problem);
            }
        };
        for tracked in &state.tracked {
            // Taken: the router answered success, warning, or nothing known.
            let taken = u64::from(tracked.stored + tracked.unknown + tracked.pending);
            let arrivals = u64::from(tracked.arrivals);
            counts.sent += taken + u64::from(tracked.refused);
            counts.refused += u64::from(tracked.refused);
            if taken == 0 {
                if arrivals > 0 {
                    counts.refused_but_delivered += arrivals;
                    add(tracked_problem(
                        &state,
                        tracked,
                        ProblemKind::RefusedButDelivered { arrivals },
                    ));
                }
                continue;
            }
            if arrivals == 0 {
                if settled {
                    counts.undelivered += taken;
                    let unknown = u64::from(tracked.unknown + tracked.pending);
                    counts.undelivered_outcome_unknown += unknown;
                    add(tracked_problem(
                        &state,
                        tracked,
                        ProblemKind::Undelivered {
                            sends: taken,
                            outcome_unknown: unknown > 0,
                        },
                    ));
                } else {
                    counts.in_transit += taken;
                }
                continue;
            }
            // A copy at the destination delivers every send of it: the sends of a file
            // sent as it is, again and again, cannot be told apart (a router keeping
            // the first copy is right to).
            counts.delivered += taken;
            if tracked.altered {
                counts.altered += taken;
                if tracked.corrupt {
                    counts.corrupt += taken;
                }
            }
            if arrivals > taken {
                counts.duplicated_instances += 1;
                counts.duplicate_arrivals += arrivals - taken;
                add(tracked_problem(
                    &state,
                    tracked,
                    ProblemKind::Duplicated {
                        sends: taken,
                        arrivals,
                    },
                ));
            }
        }
        let timeline = state
            .seconds
            .iter()
            .enumerate()
            .filter(|(_, s)| s.arrivals > 0)
            .map(|(second, s)| TransitSecond {
                second: second as u64,
                arrivals: s.arrivals,
                mean_transit_ms: (s.measured > 0)
                    .then(|| s.transit_sum_us as f64 / s.measured as f64 / 1000.0),
                max_transit_ms: (s.measured > 0).then(|| s.transit_max_us as f64 / 1000.0),
            })
            .collect();
        DeliveryReport {
            consistent: counts.is_consistent(),
            clean: counts.is_clean(),
            counts,
            transit_ms: state.transit.summary(),
            transit_histogram: state.transit.clone(),
            timeline,
            problems,
            problems_total,
        }
    }

    /// Sends tracked so far (distinct instances as sent).
    pub fn tracked_instances(&self) -> usize {
        self.state.lock().tracked.len()
    }
}

fn tracked_problem(state: &State, tracked: &Tracked, kind: ProblemKind) -> InstanceProblem {
    let original = state.originals[tracked.original.0 as usize].sop_instance_uid();
    let uid = tracked
        .substitutions
        .iter()
        .find(|s| s.tag == tags::SOP_INSTANCE_UID)
        .map_or(original, |s| &s.value);
    InstanceProblem {
        sop_instance_uid: uid.to_string(),
        original_sop_instance_uid: (uid != original).then(|| original.to_string()),
        route: Some(state.routes[tracked.route as usize].to_string()),
        kind,
    }
}

fn push_problem(state: &mut State, problem: InstanceProblem) {
    state.problems_total += 1;
    if state.problems.len() < MAX_PROBLEMS_KEPT {
        state.problems.push(problem);
    }
}

struct Verdict {
    index: Option<u32>,
    trace_stripped: bool,
    outcome: Judged,
}

enum Judged {
    Compared(Vec<Difference>),
    Corrupt(String),
    OriginalUnreadable(String),
    Unmatched,
}
