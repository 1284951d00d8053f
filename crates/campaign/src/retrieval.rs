//! Verify by retrieve (`VERIFY_AT=retrieve`): after a load, get the delivered studies
//! back from the destination archive and judge every instance against its send.
//!
//! The sink sees what a router delivers to a stand-in; when the destination is the
//! hospital's PACS, only retrieval shows what it really holds. A [`RetrievalCheck`]
//! keeps a ledger of every send of the run (like the sink's: expected before it goes
//! out, answered after) and, once the load is over, retrieves each delivered study
//! (or `RETRIEVE_STUDIES` of them, spread over the run) from the archive (the C-FIND
//! peer) by C-GET or by C-MOVE to a destination of its own (`RETRIEVE_AE_TITLE`,
//! `RETRIEVE_PORT`). Every instance that comes back goes through the sink's
//! comparison: matched to its send, compared element by element with what the route
//! may change, counted. The [`RetrievalReport`] has the archive's own account per
//! study (sub-operation counts, status, failed instances, time to retrieve) beside
//! the ledger's (retrieved, never retrieved, altered, unexpected).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{RetrieveMethod, TestConfig};
use dimse::{AeTitle, Status};
use retrieve::{
    Method, ReceivedInstance, Receiver, RetrieveError, RetrieveOutcome, RetrieveRequest, Retriever,
};
use sender::StudyRecord;
use serde::Serialize;
use sink::{Arrival, DeliveryCounts, DeliveryReport, Ledger, LedgerOptions, MatchBy, Sink};
use sink::{RoutePolicy, TraceAttribute};

use crate::CampaignError;
use crate::delivery::sink_options;

/// How long the comparisons of the last arrivals may take once a retrieve ended.
const JUDGING_WAIT: Duration = Duration::from_secs(30);

/// The ledger a run's sends are shown to for retrieval, and (for C-MOVE) the
/// destination the archive moves the studies to.
#[derive(Debug)]
pub struct RetrievalCheck {
    ledger: Arc<Ledger>,
    destination: Option<Sink>,
    /// The SOP classes of what the run sends: what a C-GET proposes.
    sop_classes: parking_lot::Mutex<Vec<String>>,
}

impl RetrievalCheck {
    /// A check of sends to `route`, which may change what `policy` allows; for
    /// `RETRIEVE_METHOD=move` its destination listens at `SINK_BIND`:`RETRIEVE_PORT`
    /// as `RETRIEVE_AE_TITLE`.
    ///
    /// # Errors
    /// [`CampaignError::Sink`] when the C-MOVE destination cannot listen.
    pub fn start(
        config: &TestConfig,
        route: &str,
        policy: RoutePolicy,
    ) -> Result<Self, CampaignError> {
        let mut options = LedgerOptions::new().route_policy(route, policy);
        if config.sink.match_by == config::DeliveryMatch::Trace {
            options = options.match_by(MatchBy::Trace(TraceAttribute::dicom_auto()));
        }
        let ledger = Ledger::new(options);
        let destination = match config.retrieve.method {
            RetrieveMethod::Get => None,
            RetrieveMethod::Move => Some(
                Sink::start(
                    sink_options(config)
                        .bind(SocketAddr::new(config.sink.bind, config.retrieve.port))
                        .ae_title(config.retrieve.ae_title.clone()),
                    ledger.clone(),
                )
                .map_err(CampaignError::Sink)?,
            ),
        };
        Ok(RetrievalCheck {
            ledger,
            destination,
            sop_classes: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// Notes the SOP classes the run sends (a C-GET can only bring back the classes
    /// it proposes).
    pub fn sends_sop_classes(&self, classes: impl IntoIterator<Item = String>) {
        let mut known = self.sop_classes.lock();
        for class in classes {
            if !known.contains(&class) {
                known.push(class);
            }
        }
    }

    /// The ledger every send of the run must be shown to.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The C-MOVE destination: its AE title and where it listens.
    pub fn destination(&self) -> Option<(&AeTitle, SocketAddr)> {
        self.destination
            .as_ref()
            .map(|sink| (sink.ae_title(), sink.local_addr()))
    }

    /// Retrieves the studies of `studies` the run delivered to (`RETRIEVE_STUDIES` of
    /// them, or all) from the archive (`CFIND_*`), proposing for a C-GET the classes
    /// the run sent ([`sends_sop_classes`](Self::sends_sop_classes); the common ones
    /// when none was noted), and judges what came back.
    ///
    /// # Errors
    /// [`CampaignError::Tls`] when the configuration's TLS files cannot be used. A
    /// retrieve that fails, or an archive that cannot be reached, is in the report.
    pub fn verify(
        &self,
        config: &TestConfig,
        studies: &[StudyRecord],
    ) -> Result<RetrievalReport, CampaignError> {
        let started = Instant::now();
        let delivered: Vec<&StudyRecord> = studies
            .iter()
            .filter(|s| s.counts.delivered() > 0)
            .collect();
        let chosen = sample(&delivered, config.retrieve.studies);
        let keep: HashSet<&str> = chosen
            .iter()
            .map(|s| s.study_instance_uid.as_str())
            .collect();
        self.ledger
            .retain_studies(|study| study.is_some_and(|uid| keep.contains(uid)));
        let mut options = crate::options::retrieve::retrieve_options(config)?
            .deadline(Some(config.retrieve.timeout));
        let classes = self.sop_classes.lock().clone();
        if !classes.is_empty() {
            options = options.storage_sop_classes(classes);
        }
        let peer = options.scu().peer();
        let method = match (&self.destination, config.retrieve.method) {
            (Some(sink), _) => Method::Move {
                destination: sink.ae_title().clone(),
            },
            (None, _) => Method::Get,
        };
        let mut retriever = Retriever::new(options, method.clone());
        let mut receiver = LedgerReceiver {
            ledger: &self.ledger,
            calling_ae_title: config.cfind.called_ae_title.to_string(),
        };
        let mut rows = Vec::with_capacity(chosen.len());
        let mut before = self.ledger.judged(JUDGING_WAIT).counts;
        let mut unreachable: Option<String> = None;
        for study in &chosen {
            if let Some(why) = &unreachable {
                rows.push(StudyRetrieval::not_attempted(study, why));
                continue;
            }
            let mut request = RetrieveRequest::study(study.study_instance_uid.clone());
            if let Some(id) = &study.patient_id {
                request = request.with_patient_id(id.clone());
            }
            let result = retriever.retrieve(&request, &mut receiver);
            let after = self.ledger.judged(JUDGING_WAIT).counts;
            let judged = JudgedArrivals::between(&before, &after);
            before = after;
            match result {
                Ok(outcome) => rows.push(StudyRetrieval::of(study, outcome, judged)),
                Err(error) => {
                    let text = dimse::ErrorChain(&error).to_string();
                    if stops_every_retrieve(&error) {
                        unreachable = Some(text.clone());
                    }
                    rows.push(StudyRetrieval::failed(study, text, judged));
                }
            }
        }
        retriever.release();
        let delivery = self.ledger.finish(JUDGING_WAIT);
        Ok(RetrievalReport {
            method: method.to_string(),
            peer,
            studies_delivered: delivered.len(),
            studies: rows,
            delivery,
            elapsed: started.elapsed(),
        })
    }
}

/// Whether an error will repeat for every study (the archive unreachable, refusing
/// the association, or without a usable model), so the rest are not attempted.
fn stops_every_retrieve(error: &RetrieveError) -> bool {
    matches!(
        error,
        RetrieveError::Associate(_)
            | RetrieveError::NoModel { .. }
            | RetrieveError::NoStorageRole { .. }
    )
}

/// `wanted` of `studies`, spread evenly over the run (the first, the last and
/// between); all of them when `wanted` is 0 or at least their number.
fn sample<T: Copy>(studies: &[T], wanted: u64) -> Vec<T> {
    let n = studies.len();
    let k = usize::try_from(wanted).unwrap_or(usize::MAX);
    if k == 0 || k >= n {
        return studies.to_vec();
    }
    if k == 1 {
        return vec![studies[0]];
    }
    (0..k).map(|i| studies[i * (n - 1) / (k - 1)]).collect()
}

/// Hands every C-GET instance to the ledger, as an arrival from the archive.
struct LedgerReceiver<'a> {
    ledger: &'a Ledger,
    calling_ae_title: String,
}

impl Receiver for LedgerReceiver<'_> {
    fn instance(&mut self, instance: ReceivedInstance) -> Status {
        self.ledger.record(Arrival {
            at: instance.at,
            calling_ae_title: self.calling_ae_title.clone(),
            sop_instance_uid: instance.sop_instance_uid,
            transfer_syntax: instance.transfer_syntax,
            data: instance.data,
        });
        Status::SUCCESS
    }
}

/// What the ledger judged of one study's retrieve: the change in its counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JudgedArrivals {
    /// Instances matched to their sends (first copies).
    pub matched: u64,
    /// Of them, changed beyond what the route may change.
    pub altered: u64,
    /// Arrivals that match no send of the run.
    pub unexpected: u64,
    /// Copies of an instance already retrieved.
    pub repeated: u64,
}

impl JudgedArrivals {
    fn between(before: &DeliveryCounts, after: &DeliveryCounts) -> Self {
        // `delivered` counts sends; in transit before the retrieve, delivered after.
        let arrived = |c: &DeliveryCounts| c.delivered;
        JudgedArrivals {
            matched: arrived(after).saturating_sub(arrived(before)),
            altered: after.altered.saturating_sub(before.altered),
            unexpected: after.unexpected.saturating_sub(before.unexpected),
            repeated: after
                .duplicate_arrivals
                .saturating_sub(before.duplicate_arrivals),
        }
    }
}

/// One study's retrieve.
#[derive(Debug, Clone, Serialize)]
pub struct StudyRetrieval {
    /// The study, as sent.
    pub study_instance_uid: String,
    /// Sends to it the router took (success or warning).
    pub sent: u64,
    /// The retrieve, when it ran.
    pub outcome: Option<RetrieveOutcome>,
    /// Why it could not run.
    pub error: Option<String>,
    /// What the ledger made of what came back.
    pub judged: JudgedArrivals,
}

impl StudyRetrieval {
    fn of(study: &StudyRecord, outcome: RetrieveOutcome, judged: JudgedArrivals) -> Self {
        StudyRetrieval {
            study_instance_uid: study.study_instance_uid.clone(),
            sent: study.counts.delivered(),
            outcome: Some(outcome),
            error: None,
            judged,
        }
    }

    fn failed(study: &StudyRecord, error: String, judged: JudgedArrivals) -> Self {
        StudyRetrieval {
            study_instance_uid: study.study_instance_uid.clone(),
            sent: study.counts.delivered(),
            outcome: None,
            error: Some(error),
            judged,
        }
    }

    fn not_attempted(study: &StudyRecord, why: &str) -> Self {
        Self::failed(
            study,
            format!("not attempted: {why}"),
            JudgedArrivals::default(),
        )
    }

    /// Whether the archive gave the whole study back, as sent: its retrieve complete,
    /// every send the router took matched by an instance that came back (an archive
    /// reporting success for less than was sent is not whole), none altered or
    /// unexpected.
    pub fn is_whole(&self) -> bool {
        self.outcome
            .as_ref()
            .is_some_and(RetrieveOutcome::is_complete)
            && self.judged.altered == 0
            && self.judged.unexpected == 0
            && self.judged.repeated == 0
            && self.judged.matched > 0
            && self.judged.matched >= self.sent
    }

    /// Seconds the retrieve took.
    pub fn seconds(&self) -> Option<f64> {
        self.outcome.as_ref().map(|o| o.elapsed.as_secs_f64())
    }
}

/// What the retrieval verification found.
#[derive(Debug, Clone, Serialize)]
pub struct RetrievalReport {
    /// `C-GET`, or `C-MOVE to AE`.
    pub method: String,
    /// The archive, `CALLED@host:port`.
    pub peer: String,
    /// Studies the run delivered to.
    pub studies_delivered: usize,
    /// The studies retrieved (all, or `RETRIEVE_STUDIES` of them), in run order.
    pub studies: Vec<StudyRetrieval>,
    /// The ledger's accounting of the retrieved studies' sends: delivered means
    /// retrieved, undelivered never retrieved.
    pub delivery: DeliveryReport,
    /// The whole verification.
    #[serde(serialize_with = "dimse::serde_duration::seconds")]
    pub elapsed: Duration,
}

impl RetrievalReport {
    /// Whether every retrieved study came back whole and the ledger found nothing
    /// wrong (no send of those studies missing, altered, or unexpected).
    pub fn is_clean(&self) -> bool {
        !self.studies.is_empty()
            && self.studies.iter().all(StudyRetrieval::is_whole)
            && self.delivery.clean
            && self.delivery.counts.undelivered == 0
    }
}

/// The report's view of a retrieval: one row per study, and the judged instances.
pub fn archive_retrieval(report: &RetrievalReport) -> report::ArchiveRetrieval {
    report::ArchiveRetrieval {
        method: report.method.clone(),
        peer: report.peer.clone(),
        clean: report.is_clean(),
        studies_delivered: report.studies_delivered as u64,
        studies: report
            .studies
            .iter()
            .map(|study| {
                let archive_says = match &study.outcome {
                    Some(outcome) => match outcome.final_status {
                        Some(status) => format!("{:04X}: {}", status.0, outcome.counts),
                        None => format!("no final response: {}", outcome.counts),
                    },
                    None => "-".into(),
                };
                let mut notes: Vec<String> = Vec::new();
                if let Some(error) = &study.error {
                    notes.push(error.clone());
                }
                if let Some(outcome) = &study.outcome {
                    if let Some(reason) = outcome.cancelled {
                        notes.push(format!("cancelled: {reason}"));
                    }
                    if let Some(why) = &outcome.interrupted {
                        notes.push(why.clone());
                    }
                    if let Some(comment) = &outcome.error_comment {
                        notes.push(format!("the archive says: {comment}"));
                    }
                    notes.extend(outcome.anomalies.iter().take(3).map(ToString::to_string));
                    if !outcome.failed_instances.is_empty() {
                        notes.push(format!(
                            "{} failed instance(s), e.g. {}",
                            outcome.failed_instances.len(),
                            outcome.failed_instances[0]
                        ));
                    }
                }
                report::StudyRetrievalRow {
                    study_instance_uid: study.study_instance_uid.clone(),
                    sent: study.sent,
                    retrieved: study.judged.matched,
                    archive_says,
                    differences: study.judged.altered
                        + study.judged.unexpected
                        + study.judged.repeated,
                    seconds: study.seconds(),
                    whole: study.is_whole(),
                    note: notes.join("; "),
                }
            })
            .collect(),
        judged: crate::delivery::sink_delivery(&report.delivery),
    }
}

/// The short figures of a retrieval beside a load run.
pub fn retrieval_figures(report: &RetrievalReport) -> Vec<report::Figure> {
    let whole = report.studies.iter().filter(|s| s.is_whole()).count();
    let seconds: Vec<f64> = report
        .studies
        .iter()
        .filter_map(StudyRetrieval::seconds)
        .collect();
    let longest = seconds.iter().copied().fold(0.0_f64, f64::max);
    vec![
        report::Figure {
            label: format!("retrieved from the archive ({})", report.method),
            value: format!(
                "{whole} of {} studies whole ({} delivered)",
                report.studies.len(),
                report.studies_delivered
            ),
        },
        report::Figure {
            label: "retrieved instances matched / never retrieved / altered".into(),
            value: format!(
                "{} / {} / {}",
                report.delivery.counts.delivered,
                report.delivery.counts.undelivered,
                report.delivery.counts.altered
            ),
        },
        report::Figure {
            label: "time to retrieve a study (longest)".into(),
            value: format!("{longest:.2} s"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::{JudgedArrivals, StudyRetrieval, sample};

    /// A retrieve the archive calls a full success, with `completed` sub-operations.
    fn successful_retrieve(completed: u16) -> retrieve::RetrieveOutcome {
        retrieve::RetrieveOutcome {
            request: retrieve::RetrieveRequest::study("2.25.1"),
            method: retrieve::Method::Get,
            model: dimse::InformationModel::StudyRoot,
            peer: "PACS@127.0.0.1:104".into(),
            final_status: Some(dimse::Status::SUCCESS),
            error_comment: None,
            counts: dimse::SubOperations {
                remaining: Some(0),
                completed: Some(completed),
                failed: Some(0),
                warning: Some(0),
            },
            pending_responses: u32::from(completed),
            failed_instances: Vec::new(),
            received: u64::from(completed),
            received_bytes: 0,
            refused_by_receiver: 0,
            cancelled: None,
            interrupted: None,
            anomalies: Vec::new(),
            elapsed: std::time::Duration::from_millis(10),
        }
    }

    fn study(sent: u64, completed: u16, matched: u64) -> StudyRetrieval {
        StudyRetrieval {
            study_instance_uid: "2.25.1".into(),
            sent,
            outcome: Some(successful_retrieve(completed)),
            error: None,
            judged: JudgedArrivals {
                matched,
                ..JudgedArrivals::default()
            },
        }
    }

    #[test]
    fn a_study_is_whole_only_when_every_send_came_back() {
        assert!(study(5, 5, 5).is_whole());
        assert!(
            !study(5, 3, 3).is_whole(),
            "an archive's success for 3 of 5 sent is not the whole study"
        );
        assert!(!study(5, 0, 0).is_whole(), "nothing came back");
    }

    #[test]
    fn a_sample_of_studies_spreads_over_the_run_from_first_to_last() {
        let studies: Vec<u32> = (0..10).collect();
        assert_eq!(sample(&studies, 0), studies, "0 retrieves every study");
        assert_eq!(sample(&studies, 25), studies);
        assert_eq!(sample(&studies, 1), vec![0]);
        assert_eq!(sample(&studies, 2), vec![0, 9]);
        assert_eq!(sample(&studies, 4), vec![0, 3, 6, 9]);
        assert!(sample::<u32>(&[], 3).is_empty());
    }
}
