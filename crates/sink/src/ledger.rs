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
        /// Its SOP Class UID, as the sender read it.
        sop_class_uid: String,
        /// Its SOP Instance UID, as the sender read it.
        sop_instance_uid: String,
        /// Its Study Instance UID, as the sender read it (what
        /// [`Ledger::retain_studies`] selects by for a send made as it is).
        study_instance_uid: Option<String>,
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

    fn sop_class_uid(&self) -> Option<String> {
        match self {
            OriginalSource::Loaded(instance) => instance
                .data_set()
                .get(tags::SOP_CLASS_UID)
                .and_then(|e| e.to_str().ok())
                .map(|uid| dimse::trim_value(&uid).to_string()),
            OriginalSource::File { sop_class_uid, .. } => Some(sop_class_uid.clone()),
        }
    }

    fn study_instance_uid(&self) -> Option<String> {
        match self {
            OriginalSource::Loaded(instance) => instance
                .data_set()
                .get(tags::STUDY_INSTANCE_UID)
                .and_then(|e| e.to_str().ok())
                .map(|uid| dimse::trim_value(&uid).to_string()),
            OriginalSource::File {
                study_instance_uid, ..
            } => study_instance_uid.clone(),
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
    observe: bool,
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

    /// A destination stand-in that tracks no sends: every arrival is counted as
    /// observed (a copy of a SOP Instance UID already observed as a duplicate), and a
    /// data set that does not parse is still a corrupt delivery. For a sink whose
    /// sends come from a sender it does not see.
    pub fn observe(mut self) -> Self {
        self.observe = true;
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

/// An instance the router took (a send answered with success or warning), as it was
/// sent: what a Storage Commitment request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenSend {
    /// Its SOP Class UID (`None` when its original has none).
    pub sop_class_uid: Option<String>,
    /// Its SOP Instance UID as sent (the fresh one, else the file's).
    pub sop_instance_uid: String,
    /// Its Study Instance UID as sent (the fresh one, else the file's).
    pub study_instance_uid: Option<String>,
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
    /// Matching by trace: the tracked sends of each SOP Instance UID (as sent), to
    /// match an arrival whose trace the router stripped.
    by_uid: HashMap<Arc<str>, Vec<u32>>,
    /// Arrivals handed over and not yet recorded.
    in_hand: u64,
    last_arrival: Option<Instant>,
    last_answer: Option<Instant>,
    transit: LatencyHistogram,
    seconds: Vec<ArrivalSecond>,
    problems: Vec<InstanceProblem>,
    problems_total: u64,
    unexpected: u64,
    /// Observing: how many copies of each SOP Instance UID arrived.
    observed: HashMap<Box<str>, u32>,
    observed_corrupt: u64,
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
        let uid: Arc<str> = send
            .substitutions
            .iter()
            .find(|s| s.tag == tags::SOP_INSTANCE_UID)
            .map(|s| s.value.clone())
            .unwrap_or_else(|| Arc::from(original.sop_instance_uid()));
        let (key, by_trace) = match &self.options.match_by {
            MatchBy::Trace(trace) => match send.trace {
                Some(value) => (value, true),
                None => {
                    return Err(SinkError::MissingTrace {
                        sop_instance_uid: original.sop_instance_uid().to_string(),
                        route: send.route.to_string(),
                        trace: trace.to_string(),
                    });
                }
            },
            _ => (uid.clone(), false),
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
        if by_trace {
            state.by_uid.entry(uid).or_default().push(index);
        }
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
                // What the router left of the trace block (its creator) is part of
                // the stripping, reported as such, not a difference of its own.
                None => (
                    self.index_of_uid(&arrival.sop_instance_uid),
                    true,
                    trace.tags_in(object),
                ),
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

    /// Matching by trace, for an arrival without one: the first tracked send of SOP
    /// Instance UID `uid` still awaiting an arrival (or, all arrived, the first).
    fn index_of_uid(&self, uid: &str) -> Option<u32> {
        let uid = dimse::trim_value(uid);
        let state = self.state.lock();
        let candidates = state.by_uid.get(uid)?;
        candidates
            .iter()
            .copied()
            .find(|&i| {
                let t = &state.tracked[i as usize];
                t.arrivals < t.stored + t.unknown + t.pending
            })
            .or_else(|| candidates.first().copied())
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
            if self.options.observe {
                let uid = dimse::trim_value(&arrival.sop_instance_uid);
                *state.observed.entry(uid.into()).or_default() += 1;
                if let Judged::Corrupt(error) = verdict.outcome {
                    state.observed_corrupt += 1;
                    let problem =
                        self.problem_of(state, None, &arrival, ProblemKind::Corrupt { error });
                    push_problem(state, problem);
                }
                return;
            }
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

    /// Keeps only the sends to the studies `keep` accepts (by the Study Instance UID
    /// each was sent with: its fresh one, else its file's), forgetting the others:
    /// what a retrieve of some of a run's studies is judged on. Call it once the run
    /// has ended and before the arrivals to judge begin; an arrival of a forgotten send
    /// is then unexpected. Returns how many distinct instances are kept.
    pub fn retain_studies(&self, keep: impl Fn(Option<&str>) -> bool) -> usize {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let study_of_original: Vec<Option<String>> = state
            .originals
            .iter()
            .map(OriginalSource::study_instance_uid)
            .collect();
        let tracked = std::mem::take(&mut state.tracked);
        let old_keys: Vec<(Arc<str>, u32)> = state.by_key.drain().collect();
        let old_uids: Vec<(Arc<str>, Vec<u32>)> = state.by_uid.drain().collect();
        let mut new_index = vec![None; tracked.len()];
        for (index, send) in tracked.into_iter().enumerate() {
            let study = send
                .substitutions
                .iter()
                .find(|s| s.tag == tags::STUDY_INSTANCE_UID)
                .map(|s| s.value.to_string())
                .or_else(|| study_of_original[send.original.0 as usize].clone());
            if keep(study.as_deref()) {
                new_index[index] = Some(state.tracked.len() as u32);
                state.tracked.push(send);
            }
        }
        for (key, index) in old_keys {
            if let Some(new) = new_index[index as usize] {
                state.by_key.insert(key, new);
            }
        }
        for (uid, indices) in old_uids {
            let kept: Vec<u32> = indices
                .into_iter()
                .filter_map(|i| new_index[i as usize])
                .collect();
            if !kept.is_empty() {
                state.by_uid.insert(uid, kept);
            }
        }
        state.awaiting_first = state
            .tracked
            .iter()
            .filter(|t| t.stored + t.unknown + t.pending > 0 && t.arrivals == 0)
            .count() as u64;
        state.tracked.len()
    }

    /// Every instance the router took (success or warning; once however often it was
    /// sent), in the order first sent, with the UIDs it was sent with.
    pub fn taken_sends(&self) -> Vec<TakenSend> {
        let state = self.state.lock();
        state
            .tracked
            .iter()
            .filter(|t| t.stored > 0)
            .map(|t| {
                let original = &state.originals[t.original.0 as usize];
                let substituted = |tag| {
                    t.substitutions
                        .iter()
                        .find(|s| s.tag == tag)
                        .map(|s| s.value.to_string())
                };
                TakenSend {
                    sop_class_uid: original.sop_class_uid(),
                    sop_instance_uid: substituted(tags::SOP_INSTANCE_UID)
                        .unwrap_or_else(|| original.sop_instance_uid().to_string()),
                    study_instance_uid: substituted(tags::STUDY_INSTANCE_UID)
                        .or_else(|| original.study_instance_uid()),
                }
            })
            .collect()
    }

    /// Reports once every arrival handed over has been judged (waiting at most
    /// `wait` for the comparisons in progress), without waiting for what has not
    /// arrived: that is undelivered. For arrivals that are over, such as a finished
    /// retrieve's.
    pub fn finish(&self, wait: Duration) -> DeliveryReport {
        self.wait_for_judgements(wait);
        self.report(true)
    }

    /// The accounting once every arrival handed over has been judged (waiting at most
    /// `wait`); what has not arrived is still in transit. Taken between two
    /// retrieves, it says what the first brought back.
    pub fn judged(&self, wait: Duration) -> DeliveryReport {
        self.wait_for_judgements(wait);
        self.report(false)
    }

    fn wait_for_judgements(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.state.lock();
        while state.in_hand > 0 && Instant::now() < until {
            self.changed.wait_until(&mut state, until);
        }
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
            observed: state.observed.values().map(|&n| u64::from(n)).sum(),
            observed_duplicates: state
                .observed
                .values()
                .map(|&n| u64::from(n.saturating_sub(1)))
                .sum(),
            observed_corrupt: state.observed_corrupt,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AllowedChange, AttributePath};
    use crate::trace::TraceAttribute;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::uids;
    use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
    use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

    const ROUTE: &str = "ROUTER_A";

    /// A small CT-like instance with 2x2 16-bit pixels.
    fn instance(uid: &str) -> InMemDicomObject {
        let mut object = InMemDicomObject::new_empty();
        object.put_str(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE);
        object.put_str(tags::SOP_INSTANCE_UID, VR::UI, uid);
        object.put_str(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.100");
        object.put_str(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.200");
        object.put_str(tags::STUDY_DESCRIPTION, VR::LO, "HEAD");
        object.put_str(tags::PATIENT_NAME, VR::PN, "Doe^Jane");
        for (tag, value) in [
            (tags::ROWS, 2u16),
            (tags::COLUMNS, 2),
            (tags::BITS_ALLOCATED, 16),
            (tags::BITS_STORED, 12),
            (tags::HIGH_BIT, 11),
            (tags::PIXEL_REPRESENTATION, 0),
            (tags::SAMPLES_PER_PIXEL, 1),
        ] {
            object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
        }
        object.put_str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16([10u16, 20, 30, 40].into_iter().collect()),
        ));
        object
    }

    fn with_meta(object: InMemDicomObject, uid: &str) -> dicom_object::DefaultDicomObject {
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
            .media_storage_sop_instance_uid(uid)
            .build()
            .unwrap();
        object.with_exact_meta(meta)
    }

    fn loaded(uid: &str) -> OriginalSource {
        OriginalSource::Loaded(SentInstance::from_object(with_meta(instance(uid), uid)).unwrap())
    }

    fn encoded(object: &InMemDicomObject) -> Vec<u8> {
        let mut bytes = Vec::new();
        object
            .write_dataset_with_ts(&mut bytes, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
            .unwrap();
        bytes
    }

    fn arrival_of(sop_instance_uid: &str, data: Vec<u8>) -> Arrival {
        Arrival {
            at: Instant::now(),
            calling_ae_title: ROUTE.into(),
            sop_instance_uid: sop_instance_uid.into(),
            transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            data,
        }
    }

    fn arrival(object: &InMemDicomObject) -> Arrival {
        let uid = object
            .get(tags::SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        arrival_of(&uid, encoded(object))
    }

    fn send(original: OriginalId) -> ExpectedSend {
        ExpectedSend {
            original,
            substitutions: Vec::new(),
            route: Arc::from(ROUTE),
            trace: None,
        }
    }

    /// Expects one send of `original` and answers it with `outcome`.
    fn sent(ledger: &Ledger, original: OriginalId, outcome: Outcome) -> Ticket {
        let ticket = ledger.expect(send(original)).unwrap();
        ledger.answered(ticket, outcome, Instant::now());
        ticket
    }

    fn assert_consistent(report: &DeliveryReport) {
        assert!(report.consistent, "{}", report.counts.invariant());
    }

    const SHORT: Duration = Duration::from_millis(200);
    /// A generous upper bound for waits that should end early.
    const GENEROUS: Duration = Duration::from_secs(20);

    #[test]
    fn an_observing_sink_counts_arrivals_duplicates_and_corrupt_ones_without_sends() {
        let ledger = Ledger::new(LedgerOptions::new().observe());
        ledger.record(arrival(&instance("2.25.1")));
        ledger.record(arrival(&instance("2.25.2")));
        ledger.record(arrival(&instance("2.25.2")));
        ledger.record(arrival_of("2.25.3", vec![0xFF; 64]));
        let report = ledger.settle(SHORT);
        let c = &report.counts;
        assert_consistent(&report);
        assert_eq!(
            (c.observed, c.observed_duplicates, c.observed_corrupt),
            (4, 1, 1)
        );
        assert_eq!(
            c.unexpected, 0,
            "nothing was expected, so nothing is unexpected"
        );
        assert_eq!(report.problems_named("corrupt").len(), 1);
        assert!(
            !report.clean,
            "a duplicate and a corrupt arrival are not clean"
        );
        assert_eq!(report.timeline.iter().map(|s| s.arrivals).sum::<u64>(), 4);
    }

    #[test]
    fn every_send_delivered_once_unaltered_is_clean_and_timed() {
        let ledger = Ledger::new(LedgerOptions::new());
        let n = 5;
        for i in 0..n {
            let uid = format!("2.25.{}", 1000 + i);
            let id = ledger.add_original(loaded(&uid));
            sent(&ledger, id, Outcome::Success);
            ledger.record(arrival(&instance(&uid)));
        }
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert!(report.clean, "{report:?}");
        assert_eq!(report.counts.sent, n);
        assert_eq!(report.counts.delivered, n);
        assert_eq!(report.transit_histogram.len(), n);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(ledger.tracked_instances(), n as usize);
    }

    #[test]
    fn a_send_never_delivered_is_in_transit_then_undelivered_and_named() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.7"));
        sent(&ledger, id, Outcome::Success);
        let before = ledger.snapshot();
        assert_consistent(&before);
        assert_eq!(before.counts.in_transit, 1);
        assert_eq!(before.counts.undelivered, 0);
        assert!(!before.clean);

        let report = ledger.settle(SHORT);
        assert_consistent(&report);
        assert_eq!(report.counts.undelivered, 1);
        assert_eq!(report.counts.in_transit, 0);
        assert_eq!(report.counts.undelivered_outcome_unknown, 0);
        assert!(!report.clean);
        let named = report.problems_named("undelivered");
        assert_eq!(named.len(), 1, "{:?}", report.problems);
        assert_eq!(named[0].sop_instance_uid, "2.25.7");
        assert_eq!(named[0].route.as_deref(), Some(ROUTE));
    }

    #[test]
    fn an_instance_delivered_twice_is_one_duplicated_instance_with_one_extra_arrival() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.8"));
        sent(&ledger, id, Outcome::Success);
        ledger.record(arrival(&instance("2.25.8")));
        ledger.record(arrival(&instance("2.25.8")));
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.delivered, 1);
        assert_eq!(report.counts.duplicated_instances, 1);
        assert_eq!(report.counts.duplicate_arrivals, 1);
        assert!(!report.clean);
        let named = report.problems_named("duplicated");
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].sop_instance_uid, "2.25.8");
        assert_eq!(
            named[0].kind,
            ProblemKind::Duplicated {
                sends: 1,
                arrivals: 2
            }
        );
    }

    #[test]
    fn a_refused_send_that_never_arrives_is_refused_and_clean() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.9"));
        sent(&ledger, id, Outcome::Failure);
        let started = Instant::now();
        let report = ledger.settle(GENEROUS);
        assert!(started.elapsed() < GENEROUS / 2, "nothing was outstanding");
        assert_consistent(&report);
        assert_eq!(report.counts.sent, 1);
        assert_eq!(report.counts.refused, 1);
        assert_eq!(report.counts.undelivered, 0);
        assert!(report.clean, "{report:?}");
    }

    #[test]
    fn a_refused_send_that_arrives_anyway_is_refused_but_delivered() {
        for arrives_first in [false, true] {
            let ledger = Ledger::new(LedgerOptions::new());
            let id = ledger.add_original(loaded("2.25.10"));
            let ticket = ledger.expect(send(id)).unwrap();
            if arrives_first {
                ledger.record(arrival(&instance("2.25.10")));
            }
            ledger.answered(ticket, Outcome::Failure, Instant::now());
            if !arrives_first {
                ledger.record(arrival(&instance("2.25.10")));
            }
            let report = ledger.settle(GENEROUS);
            assert_consistent(&report);
            assert_eq!(report.counts.refused, 1, "arrives first: {arrives_first}");
            assert_eq!(report.counts.delivered, 0);
            assert_eq!(report.counts.refused_but_delivered, 1);
            assert_eq!(report.counts.duplicate_arrivals, 0);
            assert!(!report.clean);
            let named = report.problems_named("refused_but_delivered");
            assert_eq!(named.len(), 1);
            assert_eq!(named[0].sop_instance_uid, "2.25.10");
        }
    }

    #[test]
    fn an_arrival_with_a_changed_attribute_is_altered_with_the_tag_and_both_values() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.11"));
        sent(&ledger, id, Outcome::Success);
        let mut changed = instance("2.25.11");
        changed.put_str(tags::STUDY_DESCRIPTION, VR::LO, "KNEE");
        ledger.record(arrival(&changed));
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.delivered, 1);
        assert_eq!(report.counts.altered, 1);
        assert_eq!(report.counts.corrupt, 0);
        assert!(!report.clean);
        let differences = report.first_differences(10);
        assert_eq!(differences.len(), 1, "{differences:?}");
        let (uid, difference) = differences[0];
        assert_eq!(uid, "2.25.11");
        assert_eq!(difference.tag, "(0008,1030)");
        assert_eq!(difference.keyword, Some("StudyDescription"));
        assert_eq!(difference.sent.as_deref(), Some("HEAD"));
        assert_eq!(difference.received.as_deref(), Some("KNEE"));
    }

    #[test]
    fn a_change_the_route_policy_allows_is_no_difference_on_that_route_only() {
        let policy = RoutePolicy::allowing([AllowedChange::to_value(
            "StudyDescription".parse::<AttributePath>().unwrap(),
            "KNEE",
        )]);
        let ledger = Ledger::new(LedgerOptions::new().route_policy(ROUTE, policy));
        let allowed = ledger.add_original(loaded("2.25.12"));
        sent(&ledger, allowed, Outcome::Success);
        let other = ledger.add_original(loaded("2.25.13"));
        let ticket = ledger
            .expect(ExpectedSend {
                route: Arc::from("OTHER_ROUTE"),
                ..send(other)
            })
            .unwrap();
        ledger.answered(ticket, Outcome::Success, Instant::now());
        for uid in ["2.25.12", "2.25.13"] {
            let mut changed = instance(uid);
            changed.put_str(tags::STUDY_DESCRIPTION, VR::LO, "KNEE");
            ledger.record(arrival(&changed));
        }
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.delivered, 2);
        assert_eq!(report.counts.altered, 1, "{:?}", report.problems);
        let altered = report.problems_named("altered");
        assert_eq!(altered.len(), 1);
        assert_eq!(altered[0].sop_instance_uid, "2.25.13");
        assert_eq!(altered[0].route.as_deref(), Some("OTHER_ROUTE"));
    }

    #[test]
    fn a_malformed_data_set_is_recorded_as_corrupt_with_its_parse_error() {
        let ledger = Ledger::new(LedgerOptions::new());
        let garbage_id = ledger.add_original(loaded("2.25.14"));
        sent(&ledger, garbage_id, Outcome::Success);
        let truncated_id = ledger.add_original(loaded("2.25.15"));
        sent(&ledger, truncated_id, Outcome::Success);

        let garbage: Vec<u8> = (0..512u32).map(|i| (i * 37 % 251) as u8).collect();
        // Its first element declares a 2.6 GB value: refused before the parser
        // allocates it.
        ledger.record(arrival_of("2.25.14", garbage));
        let mut truncated = encoded(&instance("2.25.15"));
        truncated.truncate(truncated.len() - 5);
        ledger.record(arrival_of("2.25.15", truncated));

        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.delivered, 2);
        assert_eq!(report.counts.altered, 2);
        assert_eq!(report.counts.corrupt, 2);
        assert_eq!(report.counts.unexpected, 0);
        let corrupt = report.problems_named("corrupt");
        assert_eq!(corrupt.len(), 2, "{:?}", report.problems);
        for problem in &corrupt {
            let ProblemKind::Corrupt { error } = &problem.kind else {
                unreachable!()
            };
            assert!(!error.is_empty(), "{problem:?}");
        }
        assert!(
            matches!(&corrupt[0].kind, ProblemKind::Corrupt { error } if error.contains("declares")),
            "{:?}",
            corrupt[0]
        );
    }

    #[test]
    fn a_malformed_data_set_for_an_unknown_key_is_counted_unexpected() {
        let ledger = Ledger::new(LedgerOptions::new());
        ledger.record(arrival_of("2.25.999", vec![0xff; 64]));
        let mut truncated = encoded(&instance("2.25.998"));
        // Cut inside the pixel data's value.
        truncated.truncate(truncated.len() - 5);
        ledger.record(arrival_of("2.25.998", truncated));
        let mut unknown_syntax = arrival_of("2.25.997", encoded(&instance("2.25.997")));
        unknown_syntax.transfer_syntax = "1.2.3.4.5.6".into();
        ledger.record(unknown_syntax);
        let report = ledger.settle(SHORT);
        assert_consistent(&report);
        assert_eq!(report.counts.unexpected, 3);
        assert_eq!(report.counts.sent, 0);
        assert_eq!(report.counts.corrupt, 0, "not a delivery of a send");
        assert!(!report.clean);
        let corrupt = report.problems_named("corrupt");
        assert_eq!(corrupt.len(), 3, "{:?}", report.problems);
        let uids: Vec<_> = corrupt
            .iter()
            .map(|p| p.sop_instance_uid.as_str())
            .collect();
        assert_eq!(uids, ["2.25.999", "2.25.998", "2.25.997"]);
        assert!(
            matches!(&corrupt[2].kind, ProblemKind::Corrupt { error } if error.contains("1.2.3.4.5.6")),
            "{:?}",
            corrupt[2]
        );
    }

    #[test]
    fn an_arrival_matching_no_send_is_unexpected_with_the_calling_ae_title() {
        let ledger = Ledger::new(LedgerOptions::new());
        let mut stray = arrival(&instance("2.25.16"));
        stray.calling_ae_title = "STRANGER".into();
        ledger.record(stray);
        let report = ledger.settle(SHORT);
        assert_consistent(&report);
        assert_eq!(report.counts.unexpected, 1);
        assert!(!report.clean);
        let named = report.problems_named("unexpected");
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].sop_instance_uid, "2.25.16");
        assert_eq!(
            named[0].kind,
            ProblemKind::Unexpected {
                calling_ae_title: "STRANGER".into()
            }
        );
    }

    #[test]
    fn a_router_forwarding_before_answering_is_delivered_and_not_outstanding() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.17"));
        let ticket = ledger.expect(send(id)).unwrap();
        ledger.record(arrival(&instance("2.25.17")));
        ledger.answered(ticket, Outcome::Success, Instant::now());
        let started = Instant::now();
        let timeout = Duration::from_secs(30);
        let report = ledger.settle(timeout);
        assert!(
            started.elapsed() < timeout / 3,
            "settle waited {:?} for a delivered send",
            started.elapsed()
        );
        assert_consistent(&report);
        assert!(report.clean, "{report:?}");
        assert_eq!(report.counts.delivered, 1);
        assert_eq!(report.counts.arrived_before_response, 1);
        assert!(
            report.transit_histogram.is_empty(),
            "transit not measurable"
        );
    }

    #[test]
    fn fresh_uid_sends_are_keyed_by_the_substituted_uid_and_compare_clean() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.18"));
        for i in 0..3 {
            let (study, series, sop) = (
                format!("2.25.5{i}"),
                format!("2.25.6{i}"),
                format!("2.25.7{i}"),
            );
            let ticket = ledger
                .expect(ExpectedSend {
                    substitutions: Substitution::fresh_uids(&study, &series, &sop).to_vec(),
                    ..send(id)
                })
                .unwrap();
            ledger.answered(ticket, Outcome::Success, Instant::now());
            let mut carried = instance("2.25.18");
            carried.put_str(tags::STUDY_INSTANCE_UID, VR::UI, study.as_str());
            carried.put_str(tags::SERIES_INSTANCE_UID, VR::UI, series.as_str());
            carried.put_str(tags::SOP_INSTANCE_UID, VR::UI, sop.as_str());
            ledger.record(arrival(&carried));
        }
        assert_eq!(ledger.tracked_instances(), 3);
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert!(report.clean, "{:?}", report.problems);
        assert_eq!(report.counts.delivered, 3);

        // The original, as is, is none of these sends.
        ledger.record(arrival(&instance("2.25.18")));
        let report = ledger.snapshot();
        assert_eq!(report.counts.unexpected, 1);
    }

    #[test]
    fn retaining_some_studies_judges_only_their_sends_and_finish_does_not_wait_for_the_rest() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.18"));
        // Three fresh-UID sends into two studies, and the file as it is (study 2.25.100).
        let sends = [
            ("2.25.51", "2.25.61", "2.25.71"),
            ("2.25.51", "2.25.61", "2.25.72"),
            ("2.25.52", "2.25.62", "2.25.73"),
        ];
        for (study, series, sop) in sends {
            let ticket = ledger
                .expect(ExpectedSend {
                    substitutions: Substitution::fresh_uids(study, series, sop).to_vec(),
                    ..send(id)
                })
                .unwrap();
            ledger.answered(ticket, Outcome::Success, Instant::now());
        }
        sent(&ledger, id, Outcome::Success);
        assert_eq!(
            ledger.retain_studies(|study| matches!(study, Some("2.25.51" | "2.25.100"))),
            3
        );
        let mut back = instance("2.25.18");
        back.put_str(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.51");
        back.put_str(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.61");
        back.put_str(tags::SOP_INSTANCE_UID, VR::UI, "2.25.71");
        ledger.record(arrival(&back));
        // A forgotten send's instance is unexpected now.
        back.put_str(tags::STUDY_INSTANCE_UID, VR::UI, "2.25.52");
        back.put_str(tags::SERIES_INSTANCE_UID, VR::UI, "2.25.62");
        back.put_str(tags::SOP_INSTANCE_UID, VR::UI, "2.25.73");
        ledger.record(arrival(&back));
        let started = Instant::now();
        let report = ledger.finish(GENEROUS);
        assert!(
            started.elapsed() < SHORT,
            "finish waits for nothing missing"
        );
        assert_consistent(&report);
        assert_eq!(report.counts.sent, 3);
        assert_eq!(report.counts.delivered, 1);
        assert_eq!(
            report.counts.undelivered, 2,
            "2.25.72 and the file as it is"
        );
        assert_eq!(report.counts.unexpected, 1);
    }

    #[test]
    fn the_sends_taken_are_listed_once_with_the_uids_sent_and_the_refused_left_out() {
        let ledger = Ledger::new(LedgerOptions::new());
        let as_is = ledger.add_original(loaded("2.25.30"));
        let fresh = ledger.add_original(loaded("2.25.31"));
        let refused = ledger.add_original(loaded("2.25.32"));
        sent(&ledger, as_is, Outcome::Success);
        sent(&ledger, as_is, Outcome::Warning);
        let ticket = ledger
            .expect(ExpectedSend {
                substitutions: Substitution::fresh_uids("2.25.91", "2.25.92", "2.25.93").to_vec(),
                ..send(fresh)
            })
            .unwrap();
        ledger.answered(ticket, Outcome::Success, Instant::now());
        sent(&ledger, refused, Outcome::Failure);
        let unknown = ledger.add_original(loaded("2.25.33"));
        sent(&ledger, unknown, Outcome::Unknown);
        let taken = ledger.taken_sends();
        let ct = Some(uids::CT_IMAGE_STORAGE.to_string());
        assert_eq!(
            taken,
            vec![
                TakenSend {
                    sop_class_uid: ct.clone(),
                    sop_instance_uid: "2.25.30".into(),
                    study_instance_uid: Some("2.25.100".into()),
                },
                TakenSend {
                    sop_class_uid: ct,
                    sop_instance_uid: "2.25.93".into(),
                    study_instance_uid: Some("2.25.91".into()),
                },
            ]
        );
    }

    #[test]
    fn a_fresh_uid_send_never_delivered_is_named_by_both_uids() {
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(loaded("2.25.19"));
        let ticket = ledger
            .expect(ExpectedSend {
                substitutions: Substitution::fresh_uids("2.25.81", "2.25.82", "2.25.83").to_vec(),
                ..send(id)
            })
            .unwrap();
        ledger.answered(ticket, Outcome::Unknown, Instant::now());
        let report = ledger.settle(SHORT);
        assert_consistent(&report);
        assert_eq!(report.counts.undelivered, 1);
        assert_eq!(report.counts.undelivered_outcome_unknown, 1);
        let named = report.problems_named("undelivered");
        assert_eq!(named[0].sop_instance_uid, "2.25.83");
        assert_eq!(
            named[0].original_sop_instance_uid.as_deref(),
            Some("2.25.19")
        );
    }

    #[test]
    fn repeated_sends_of_one_instance_are_each_delivered_and_a_fourth_arrival_is_a_duplicate() {
        for arrivals in [3u64, 4] {
            let ledger = Ledger::new(LedgerOptions::new());
            let id = ledger.add_original(loaded("2.25.20"));
            for _ in 0..3 {
                sent(&ledger, id, Outcome::Success);
            }
            for _ in 0..arrivals {
                ledger.record(arrival(&instance("2.25.20")));
            }
            let report = ledger.settle(GENEROUS);
            assert_consistent(&report);
            assert_eq!(report.counts.sent, 3);
            assert_eq!(report.counts.delivered, 3);
            assert_eq!(report.counts.duplicate_arrivals, arrivals - 3);
            assert_eq!(report.counts.duplicated_instances, u64::from(arrivals == 4));
            assert_eq!(report.clean, arrivals == 3, "{:?}", report.problems);
            assert_eq!(report.transit_histogram.len(), 3);
        }
    }

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn temp_path(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!(
            "sink-ledger-{}-{name}-{:?}.dcm",
            std::process::id(),
            Instant::now()
        )))
    }

    #[test]
    fn an_original_from_a_file_is_read_when_its_arrival_needs_it() {
        let file = temp_path("original");
        with_meta(instance("2.25.21"), "2.25.21")
            .write_to_file(&file.0)
            .unwrap();
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(OriginalSource::File {
            path: file.0.clone(),
            sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
            sop_instance_uid: "2.25.21".into(),
            study_instance_uid: None,
        });
        sent(&ledger, id, Outcome::Success);
        let mut changed = instance("2.25.21");
        changed.put_str(tags::PATIENT_NAME, VR::PN, "Roe^Richard");
        ledger.record(arrival(&changed));
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.delivered, 1);
        assert_eq!(report.counts.altered, 1, "compared with the file");
        let differences = report.first_differences(10);
        assert_eq!(differences.len(), 1, "{differences:?}");
        assert_eq!(differences[0].1.keyword, Some("PatientName"));
    }

    #[test]
    fn an_original_file_that_is_missing_is_a_problem_not_a_panic() {
        let file = temp_path("missing");
        let ledger = Ledger::new(LedgerOptions::new());
        let id = ledger.add_original(OriginalSource::File {
            path: file.0.clone(),
            sop_class_uid: uids::CT_IMAGE_STORAGE.into(),
            sop_instance_uid: "2.25.22".into(),
            study_instance_uid: None,
        });
        sent(&ledger, id, Outcome::Success);
        ledger.record(arrival(&instance("2.25.22")));
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.delivered, 1);
        assert!(!report.clean);
        let named = report.problems_named("corrupt");
        assert_eq!(named.len(), 1, "{:?}", report.problems);
        assert_eq!(named[0].sop_instance_uid, "2.25.22");
        let ProblemKind::Corrupt { error } = &named[0].kind else {
            unreachable!()
        };
        assert!(error.contains("original could not be read"), "{error}");
    }

    fn trace_ledger() -> Arc<Ledger> {
        Ledger::new(LedgerOptions::new().match_by(MatchBy::Trace(TraceAttribute::dicom_auto())))
    }

    #[test]
    fn matching_by_trace_refuses_a_send_without_a_trace_value() {
        let ledger = trace_ledger();
        let id = ledger.add_original(loaded("2.25.23"));
        let error = ledger.expect(send(id)).unwrap_err();
        assert!(
            matches!(&error, SinkError::MissingTrace { sop_instance_uid, route, .. }
                if sop_instance_uid == "2.25.23" && route == ROUTE),
            "{error:?}"
        );
        let report = ledger.snapshot();
        assert_consistent(&report);
        assert_eq!(report.counts.sent, 0, "an untracked send is not counted");
    }

    #[test]
    fn matching_by_trace_finds_the_send_by_its_trace_and_compares_clean() {
        let ledger = trace_ledger();
        let id = ledger.add_original(loaded("2.25.24"));
        let ticket = ledger
            .expect(ExpectedSend {
                trace: Some(Arc::from("run1-send-1")),
                ..send(id)
            })
            .unwrap();
        ledger.answered(ticket, Outcome::Success, Instant::now());
        // A router that replaces UIDs: only the trace finds the send.
        let mut carried = instance("2.25.24");
        TraceAttribute::dicom_auto().write(&mut carried, "run1-send-1");
        let mut replaced = arrival(&carried);
        replaced.sop_instance_uid = "2.25.555".into();
        ledger.record(replaced);
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert!(report.clean, "{:?}", report.problems);
        assert_eq!(report.counts.delivered, 1);
        assert_eq!(report.counts.trace_stripped, 0);
    }

    #[test]
    fn matching_by_trace_counts_a_stripped_trace_and_still_matches_by_sop_instance_uid() {
        let ledger = trace_ledger();
        let id = ledger.add_original(loaded("2.25.25"));
        let ticket = ledger
            .expect(ExpectedSend {
                trace: Some(Arc::from("run1-send-2")),
                ..send(id)
            })
            .unwrap();
        ledger.answered(ticket, Outcome::Success, Instant::now());
        ledger.record(arrival(&instance("2.25.25")));
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.trace_stripped, 1);
        assert_eq!(report.counts.delivered, 1, "{:?}", report.problems);
        assert_eq!(report.counts.unexpected, 0);
        assert_eq!(report.counts.undelivered, 0);
        let named = report.problems_named("trace_stripped");
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].sop_instance_uid, "2.25.25");
    }

    #[test]
    fn matching_by_trace_spreads_stripped_arrivals_of_one_uid_over_its_sends() {
        let ledger = trace_ledger();
        let id = ledger.add_original(loaded("2.25.26"));
        for i in 0..2 {
            let ticket = ledger
                .expect(ExpectedSend {
                    trace: Some(Arc::from(format!("run1-send-{i}"))),
                    ..send(id)
                })
                .unwrap();
            ledger.answered(ticket, Outcome::Success, Instant::now());
        }
        ledger.record(arrival(&instance("2.25.26")));
        ledger.record(arrival(&instance("2.25.26")));
        let report = ledger.settle(GENEROUS);
        assert_consistent(&report);
        assert_eq!(report.counts.trace_stripped, 2);
        assert_eq!(report.counts.delivered, 2, "{:?}", report.problems);
        assert_eq!(report.counts.duplicate_arrivals, 0);
    }
}
