//! Delivery verification: did the studies arrive, complete, and how long did it take?
//!
//! Two entry points:
//!
//! - [`Session::wait_for_study`]: one study, polled until it is visible and matches an
//!   [`Expectation`] (attribute values, at least N instances).
//! - [`Session::verify_studies`]: every study of a load run, queried in batches with
//!   UID-list matching, polling only the studies not yet complete. The result gives
//!   per study found/missing and instances seen vs sent, and the distribution of
//!   time-to-visible, measured from the last send of each study.
//!
//! Instance counts come from NumberOfStudyRelatedInstances. Peers that do not return it
//! (DCMTK's dcmqrscp) are asked an IMAGE-level query instead, and the instances are
//! counted.
//!
//! **What time-to-visible measures.** A study is seen when a query answers it; the
//! query is stamped when its final response arrives. Time-to-visible is that stamp
//! minus the study's last send: an upper bound on the router's transit time, too long
//! by at most one poll interval plus one query's duration. Poll faster for a finer
//! figure.

use std::collections::{HashMap, HashSet};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use dicom_dictionary_std::tags;
use metrics::LatencyHistogram;
use serde::Serialize;

use crate::client::CFindClient;
use crate::error::CFindError;
use crate::identifier::Key;
use crate::query::{InstanceQuery, Query, StudyQuery};
use crate::results::StudyResult;
use crate::session::Session;
use dimse::qr::InformationModel;

/// At most this many distinct query errors are kept in a report (the rest are counted).
const MAX_ERRORS_KEPT: usize = 16;

/// What a study must look like to count as delivered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectation {
    min_instances: Option<u32>,
    attributes: Vec<(Key, String)>,
}

impl Expectation {
    /// The study only has to be visible.
    pub fn visible() -> Self {
        Self::default()
    }

    /// At least `count` instances (NumberOfStudyRelatedInstances, or an image count when
    /// the peer does not report it).
    pub fn at_least_instances(mut self, count: u32) -> Self {
        self.min_instances = Some(count);
        self
    }

    /// The attribute must have this value (compared as text without padding: DA as
    /// `YYYYMMDD`, PN as `Family^Given`, several values joined with `\`).
    pub fn with_attribute(mut self, key: Key, value: impl Into<String>) -> Self {
        self.attributes.push((key, value.into()));
        self
    }

    /// What is not as expected in `study` with `instances` counted, in words; empty
    /// when everything matches.
    pub fn unmet(&self, study: &StudyResult, instances: Option<u32>) -> Vec<String> {
        let mut unmet = Vec::new();
        if let Some(min) = self.min_instances {
            match instances {
                Some(seen) if seen >= min => {}
                Some(seen) => unmet.push(format!("{seen} of {min} instances")),
                None => unmet.push(format!("instance count unknown (expected {min})")),
            }
        }
        for (key, expected) in &self.attributes {
            match study.identifier.get(key.tag()) {
                Some(value) if value == expected.trim() => {}
                Some(value) => unmet.push(format!("{key} is {value:?}, expected {expected:?}")),
                None => unmet.push(format!("{key} not returned by the peer")),
            }
        }
        unmet
    }
}

/// Where an instance count came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InstanceCountSource {
    /// NumberOfStudyRelatedInstances in the study-level answer.
    StudyAttribute,
    /// Counting the matches of an IMAGE-level query.
    ImageQuery,
    /// Not counted (no instance count was expected).
    NotCounted,
}

/// A study seen as expected by [`Session::wait_for_study`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StudySighting {
    /// The study as the peer answered it.
    pub study: StudyResult,
    /// Instances counted, when counted.
    pub instances: Option<u32>,
    /// Where the count came from.
    pub instance_count_source: InstanceCountSource,
    /// When the answer that satisfied the expectation arrived.
    pub seen_at: Instant,
    /// From the call to `seen_at` (initial delay included).
    pub waited: Duration,
    /// Queries it took.
    pub polls: u32,
    /// The information model of the last query.
    pub model: InformationModel,
}

/// One study a load run sent: what verification checks.
///
/// Entries with the same UID are merged: instances are added up and the latest send
/// is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentStudy {
    /// StudyInstanceUID as sent.
    pub study_instance_uid: String,
    /// Instances delivered with a success or warning status (the sender's
    /// `succeeded + warnings`): failed sends are not expected to arrive.
    pub instances_sent: u32,
    /// When the last instance of the study was sent (its response received).
    pub last_send_at: Instant,
}

impl SentStudy {
    /// A sent study.
    pub fn new(
        study_instance_uid: impl Into<String>,
        instances_sent: u32,
        last_send_at: Instant,
    ) -> Self {
        SentStudy {
            study_instance_uid: study_instance_uid.into(),
            instances_sent,
            last_send_at,
        }
    }

    /// A sent study whose last send is known as wall-clock time, as the sender's load
    /// report records it (`StudyRecord::last_sent`). The time is converted to the
    /// monotonic clock once, here: a wall-clock step (NTP) between the send and this
    /// call shifts the transit time by that step. A time in the future counts as now.
    ///
    /// ```
    /// use std::time::{Duration, Instant, SystemTime};
    ///
    /// let two_seconds_ago = SystemTime::now() - Duration::from_secs(2);
    /// let sent = cfind::SentStudy::with_wall_clock("1.2.3", 4, two_seconds_ago);
    /// let ago = Instant::now() - sent.last_send_at;
    /// assert!(ago >= Duration::from_secs(2) && ago < Duration::from_secs(3));
    /// ```
    pub fn with_wall_clock(
        study_instance_uid: impl Into<String>,
        instances_sent: u32,
        last_send: SystemTime,
    ) -> Self {
        let ago = SystemTime::now()
            .duration_since(last_send)
            .unwrap_or(Duration::ZERO);
        let now = Instant::now();
        Self::new(
            study_instance_uid,
            instances_sent,
            now.checked_sub(ago).unwrap_or(now),
        )
    }
}

/// Whether a study arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Delivery {
    /// Visible with at least as many instances as were sent.
    Complete,
    /// Visible, but with fewer instances than were sent when polling stopped.
    Incomplete,
    /// Not visible when polling stopped.
    Missing,
    /// The last query about it failed, so its state is unknown.
    Unverified,
}

/// The verification of one study.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StudyVerification {
    /// StudyInstanceUID.
    pub study_instance_uid: String,
    /// Instances sent.
    pub instances_sent: u32,
    /// Instances seen at the last answer (`None` when never seen or not counted).
    pub instances_seen: Option<u32>,
    /// Where the count came from.
    pub instance_count_source: InstanceCountSource,
    /// The outcome.
    pub delivery: Delivery,
    /// From the last send to the answer that showed the study complete (an upper
    /// bound: see the module documentation).
    #[serde(serialize_with = "dimse::serde_duration::optional_millis")]
    pub time_to_visible: Option<Duration>,
    /// The error of the last query about it, when that query failed.
    pub last_error: Option<String>,
}

/// The outcome of [`Session::verify_studies`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct VerificationReport {
    /// One entry per distinct study, in the order first sent.
    pub studies: Vec<StudyVerification>,
    /// Time-to-visible of the complete studies.
    pub transit: LatencyHistogram,
    /// C-FIND requests sent.
    pub queries: u64,
    /// Polling rounds.
    pub rounds: u32,
    /// From the call to the end (initial delay included).
    #[serde(serialize_with = "dimse::serde_duration::millis")]
    pub elapsed: Duration,
    /// The information model of the last successful query.
    pub model: Option<InformationModel>,
    /// Distinct query errors (the first 16), with how often each occurred.
    pub errors: Vec<(String, u32)>,
}

impl VerificationReport {
    /// Studies with the given outcome.
    pub fn count(&self, delivery: Delivery) -> usize {
        self.studies
            .iter()
            .filter(|s| s.delivery == delivery)
            .count()
    }

    /// Whether every study arrived complete.
    pub fn all_complete(&self) -> bool {
        self.studies
            .iter()
            .all(|s| s.delivery == Delivery::Complete)
    }

    /// The studies that did not arrive complete.
    pub fn not_complete(&self) -> impl Iterator<Item = &StudyVerification> {
        self.studies
            .iter()
            .filter(|s| s.delivery != Delivery::Complete)
    }
}

/// Verification state of one study while polling.
struct Tracked {
    uid: String,
    sent: u32,
    last_send_at: Instant,
    found: bool,
    seen: Option<u32>,
    source: InstanceCountSource,
    complete_at: Option<Instant>,
    last_error: Option<String>,
}

/// Counts errors by text, keeping the first few distinct ones.
#[derive(Default)]
struct ErrorLog {
    errors: Vec<(String, u32)>,
}

impl ErrorLog {
    fn record(&mut self, error: &CFindError) -> String {
        let text = error.to_string();
        if let Some(entry) = self.errors.iter_mut().find(|(t, _)| *t == text) {
            entry.1 += 1;
        } else if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push((text.clone(), 1));
        }
        text
    }
}

/// Cuts `uids` into lists no longer than the batch limits allow.
pub(crate) fn chunk_uids<'a>(
    uids: &[&'a str],
    max_count: usize,
    max_bytes: usize,
) -> Vec<Vec<&'a str>> {
    let mut chunks = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for uid in uids {
        // Each UID costs its length plus a backslash separator.
        let cost = uid.len() + 1;
        if !current.is_empty() && (current.len() >= max_count || bytes + cost > max_bytes) {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes += cost;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

impl Session {
    /// Counts the instances of `uids` with IMAGE-level queries: one per batch, or one
    /// per study when the peer refuses a UID list at that level.
    fn count_instances(&mut self, uids: &[&str]) -> Result<HashMap<String, u32>, CFindError> {
        let mut counts: HashMap<String, HashSet<String>> = HashMap::new();
        let mut tally = |result: crate::results::QueryResult<crate::results::InstanceResult>| {
            for instance in result.matches {
                counts
                    .entry(instance.study_instance_uid)
                    .or_default()
                    .insert(instance.sop_instance_uid);
            }
        };
        match self.find(&InstanceQuery::in_studies(uids)) {
            Ok(result) => tally(result),
            Err(error) if error.status().is_some() && uids.len() > 1 => {
                for uid in uids {
                    tally(self.find(&InstanceQuery::in_studies(&[uid]))?);
                }
            }
            Err(error) => return Err(error),
        }
        Ok(uids
            .iter()
            .map(|uid| {
                let count = counts.get(*uid).map_or(0, |set| set.len());
                (uid.to_string(), u32::try_from(count).unwrap_or(u32::MAX))
            })
            .collect())
    }

    /// Polls until study `study_instance_uid` is visible and matches `expectation`.
    ///
    /// Waits the initial delay, then queries every poll interval until the polling
    /// timeout has passed since the first query. Transient errors (peer down, busy,
    /// slow) are retried at the next poll; others end the wait at once.
    ///
    /// # Errors
    /// [`CFindError::StudyNotVisible`] on timeout, with what was still unmet and the
    /// last answer; or the first non-transient error.
    pub fn wait_for_study(
        &mut self,
        study_instance_uid: &str,
        expectation: &Expectation,
    ) -> Result<StudySighting, CFindError> {
        let called = Instant::now();
        let polling = self.client().polling();
        thread::sleep(polling.initial_delay);
        let deadline = Instant::now() + polling.timeout;
        let query = StudyQuery::by_study_instance_uid(study_instance_uid)
            .with_return_keys(expectation.attributes.iter().map(|(key, _)| *key));
        let uid = study_instance_uid.trim();
        let mut polls = 0;
        let mut unmet = "not visible".to_string();
        let mut last_answer: String;
        loop {
            polls += 1;
            match self.find(&query) {
                Ok(result) => {
                    let model = result.model;
                    match result
                        .matches
                        .into_iter()
                        .find(|study| study.study_instance_uid == uid)
                    {
                        None => {
                            unmet = "not visible".into();
                            last_answer = "no match".into();
                        }
                        Some(study) => {
                            let (instances, source) = match study.number_of_study_related_instances
                            {
                                Some(n) => (Some(n), InstanceCountSource::StudyAttribute),
                                None if expectation.min_instances.is_some() => {
                                    match self.count_instances(&[uid]) {
                                        Ok(counts) => (
                                            counts.get(uid).copied(),
                                            InstanceCountSource::ImageQuery,
                                        ),
                                        Err(e) if e.is_transient() => {
                                            (None, InstanceCountSource::NotCounted)
                                        }
                                        Err(e) => return Err(e),
                                    }
                                }
                                None => (None, InstanceCountSource::NotCounted),
                            };
                            let problems = expectation.unmet(&study, instances);
                            if problems.is_empty() {
                                let seen_at = Instant::now();
                                return Ok(StudySighting {
                                    study,
                                    instances,
                                    instance_count_source: source,
                                    seen_at,
                                    waited: seen_at - called,
                                    polls,
                                    model,
                                });
                            }
                            unmet = problems.join("; ");
                            last_answer = describe_study(&study, instances);
                        }
                    }
                }
                Err(error) if error.is_transient() => {
                    last_answer = format!("error: {error}");
                }
                Err(error) => return Err(error),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CFindError::StudyNotVisible {
                    study_instance_uid: uid.to_string(),
                    waited: now - called,
                    polls,
                    unmet,
                    last_answer,
                });
            }
            thread::sleep(polling.poll_interval.min(deadline - now));
        }
    }

    /// Verifies every study of a load run, in batches, polling only the studies not yet
    /// complete; see the module documentation for what is measured.
    ///
    /// Waits the initial delay, then polls until every study is complete or the polling
    /// timeout has passed since the first query. Transient query errors leave the
    /// studies concerned `Unverified` unless a later round verifies them.
    ///
    /// # Errors
    /// Only non-transient errors (a rejected AE title, no model accepted...): the
    /// verification cannot work at all.
    pub fn verify_studies(&mut self, sent: &[SentStudy]) -> Result<VerificationReport, CFindError> {
        let called = Instant::now();
        let polling = self.client().polling();
        let batch = self.client().batch_limits();
        let queries_before = self.queries_sent();

        let mut tracked: Vec<Tracked> = Vec::with_capacity(sent.len());
        let mut index: HashMap<String, usize> = HashMap::with_capacity(sent.len());
        for study in sent {
            let uid = study.study_instance_uid.trim();
            match index.get(uid) {
                Some(&i) => {
                    let entry = &mut tracked[i];
                    entry.sent = entry.sent.saturating_add(study.instances_sent);
                    entry.last_send_at = entry.last_send_at.max(study.last_send_at);
                }
                None => {
                    index.insert(uid.to_string(), tracked.len());
                    tracked.push(Tracked {
                        uid: uid.to_string(),
                        sent: study.instances_sent,
                        last_send_at: study.last_send_at,
                        found: false,
                        seen: None,
                        source: InstanceCountSource::NotCounted,
                        complete_at: None,
                        last_error: None,
                    });
                }
            }
        }

        thread::sleep(polling.initial_delay);
        let deadline = Instant::now() + polling.timeout;
        let mut errors = ErrorLog::default();
        let mut model = None;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let pending: Vec<usize> = (0..tracked.len())
                .filter(|&i| tracked[i].complete_at.is_none())
                .collect();
            let pending_uids: Vec<&str> =
                pending.iter().map(|&i| tracked[i].uid.as_str()).collect();
            // Owned chunks: `tracked` is updated while they are queried.
            let chunks: Vec<Vec<String>> = chunk_uids(
                &pending_uids,
                batch.max_uids_per_query,
                batch.max_uid_list_bytes,
            )
            .into_iter()
            .map(|chunk| chunk.into_iter().map(str::to_string).collect())
            .collect();
            for chunk in chunks {
                match self.verify_chunk(&chunk, &index, &mut tracked) {
                    Ok(used) => model = Some(used),
                    Err(error) if error.is_transient() => {
                        let text = errors.record(&error);
                        for uid in &chunk {
                            tracked[index[uid.as_str()]].last_error = Some(text.clone());
                        }
                    }
                    Err(error) => return Err(error),
                }
            }
            if tracked.iter().all(|t| t.complete_at.is_some()) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            thread::sleep(polling.poll_interval.min(deadline - now));
        }

        let mut transit = LatencyHistogram::new();
        let studies = tracked
            .into_iter()
            .map(|t| {
                let time_to_visible = t
                    .complete_at
                    .map(|at| at.saturating_duration_since(t.last_send_at));
                if let Some(d) = time_to_visible {
                    transit.record(d);
                }
                let delivery = match (&t.complete_at, &t.last_error, t.found) {
                    (Some(_), _, _) => Delivery::Complete,
                    (None, Some(_), _) => Delivery::Unverified,
                    (None, None, true) => Delivery::Incomplete,
                    (None, None, false) => Delivery::Missing,
                };
                StudyVerification {
                    study_instance_uid: t.uid,
                    instances_sent: t.sent,
                    instances_seen: t.seen,
                    instance_count_source: t.source,
                    delivery,
                    time_to_visible,
                    last_error: if delivery == Delivery::Complete {
                        None
                    } else {
                        t.last_error
                    },
                }
            })
            .collect();
        Ok(VerificationReport {
            studies,
            transit,
            queries: self.queries_sent() - queries_before,
            rounds,
            elapsed: called.elapsed(),
            model,
            errors: errors.errors,
        })
    }

    /// Queries one batch of UIDs and updates their state; returns the model used.
    fn verify_chunk(
        &mut self,
        chunk: &[String],
        index: &HashMap<String, usize>,
        tracked: &mut [Tracked],
    ) -> Result<InformationModel, CFindError> {
        let result = self.find(&StudyQuery::minimal().study_instance_uids(chunk))?;
        let mut answered_at = Instant::now();
        let chunk_set: HashSet<&str> = chunk.iter().map(String::as_str).collect();
        let mut found_now: HashSet<usize> = HashSet::with_capacity(result.matches.len());
        let mut uncounted: Vec<usize> = Vec::new();
        for study in &result.matches {
            let uid = study.study_instance_uid.as_str();
            // Only the studies asked about: a peer that ignores the UID list must not
            // make unrelated studies count.
            let Some(&i) = index.get(uid).filter(|_| chunk_set.contains(uid)) else {
                continue;
            };
            found_now.insert(i);
            match study.number_of_study_related_instances {
                Some(n) => {
                    tracked[i].seen = Some(n);
                    tracked[i].source = InstanceCountSource::StudyAttribute;
                }
                None => uncounted.push(i),
            }
        }
        if !uncounted.is_empty() {
            let uids: Vec<&str> = uncounted.iter().map(|&i| tracked[i].uid.as_str()).collect();
            let counts = self.count_instances(&uids)?;
            answered_at = Instant::now();
            for &i in &uncounted {
                tracked[i].seen = counts.get(&tracked[i].uid).copied();
                tracked[i].source = InstanceCountSource::ImageQuery;
            }
        }
        for uid in chunk {
            let t = &mut tracked[index[uid.as_str()]];
            t.last_error = None;
            t.found = found_now.contains(&index[uid.as_str()]);
            if !t.found {
                t.seen = None;
            } else if t.seen.unwrap_or(0) >= t.sent {
                t.complete_at = Some(answered_at);
            }
        }
        Ok(result.model)
    }
}

fn describe_study(study: &StudyResult, instances: Option<u32>) -> String {
    let mut parts: Vec<String> = study
        .identifier
        .iter()
        .filter(|(tag, value)| !value.is_empty() && *tag != tags::QUERY_RETRIEVE_LEVEL)
        .map(|(tag, value)| format!("{}={value}", crate::identifier::keyword(tag)))
        .collect();
    if study.number_of_study_related_instances.is_none()
        && let Some(n) = instances
    {
        parts.push(format!("{n} instances counted"));
    }
    parts.join(", ")
}

impl CFindClient {
    /// [`Session::wait_for_study`] on a session of its own.
    pub fn wait_for_study(
        &self,
        study_instance_uid: &str,
        expectation: &Expectation,
    ) -> Result<StudySighting, CFindError> {
        self.session()
            .wait_for_study(study_instance_uid, expectation)
    }

    /// [`Session::verify_studies`] on a session of its own: one association for the
    /// whole verification (reopened only if it breaks).
    pub fn verify_studies(&self, sent: &[SentStudy]) -> Result<VerificationReport, CFindError> {
        self.session().verify_studies(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_lists_are_cut_by_count_and_by_bytes() {
        let uids: Vec<String> = (0..450).map(|i| format!("1.2.840.99999.{i:05}")).collect();
        let refs: Vec<&str> = uids.iter().map(String::as_str).collect();
        let by_count = chunk_uids(&refs, 200, 64 * 1024);
        assert_eq!(
            by_count.iter().map(Vec::len).collect::<Vec<_>>(),
            [200, 200, 50]
        );
        // 20 bytes per UID with its separator: 100 bytes hold 5.
        let by_bytes = chunk_uids(&refs[..12], 200, 100);
        assert_eq!(by_bytes.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 2]);
        let joined: Vec<&str> = by_count.concat();
        assert_eq!(joined, refs, "every UID once, in order");
    }

    #[test]
    fn a_uid_longer_than_the_byte_limit_still_gets_a_query() {
        let chunks = chunk_uids(&["1.2.3.4.5.6.7.8.9"], 10, 4);
        assert_eq!(chunks, vec![vec!["1.2.3.4.5.6.7.8.9"]]);
    }

    #[test]
    fn unmet_expectations_say_what_differs() {
        let mut identifier = crate::identifier::Identifier::default();
        identifier.insert(tags::STUDY_INSTANCE_UID, "1.2.3");
        identifier.insert(tags::PATIENT_NAME, "Doe^Jane");
        let study = <StudyResult as crate::results::Match>::from_identifier(identifier);
        let expectation = Expectation::visible()
            .at_least_instances(3)
            .with_attribute(Key::parse("PatientName").unwrap(), "Doe^John")
            .with_attribute(Key::parse("AccessionNumber").unwrap(), "A1");
        let unmet = expectation.unmet(&study, Some(2));
        assert_eq!(
            unmet,
            [
                "2 of 3 instances",
                "PatientName is \"Doe^Jane\", expected \"Doe^John\"",
                "AccessionNumber not returned by the peer",
            ]
        );
        assert!(Expectation::visible().unmet(&study, None).is_empty());
    }
}
