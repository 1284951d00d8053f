//! Verify by Storage Commitment (`VERIFY_AT=commit`): after a load, ask the
//! destination archive to take responsibility for every instance the router took,
//! and hold it to its report.
//!
//! A C-STORE success at the router says it received an instance; Storage Commitment
//! (PS3.4 Annex J) is the standard's own way of asking the archive behind it whether
//! it now keeps it. A [`CommitmentCheck`] listens for the archive's N-EVENT-REPORT at
//! `SINK_BIND`:`COMMIT_PORT` under our `LOCAL_AE_TITLE` and, once the load is over,
//! sends one N-ACTION per study naming each of its instances as sent (its SOP Class
//! and, with fresh UIDs, its fresh SOP Instance UID), to the C-FIND peer. Every study
//! ends committed, partly failed (with the archive's reasons), unanswered, or
//! without a report within `COMMIT_TIMEOUT`; reports for transactions nobody asked
//! about are counted too. It proves custody, not content: retrieval
//! (`VERIFY_AT=retrieve`) compares what the archive holds.
//!
//! The instances come from a ledger of the run's sends: the sink's or the
//! retrieval's when the run has one, else the check's own
//! ([`CommitmentCheck::own_ledger`]), shown every send like the others.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use commitment::{
    CommitmentError, CommitmentOutcome, CommitmentRequest, Committer, ReferencedInstance,
    ReportListener,
};
use config::TestConfig;
use dimse::AeTitle;
use serde::Serialize;
use sink::{Ledger, LedgerOptions};

use crate::CampaignError;

/// How many commitments run at once: each waits for its report, most of it idle.
const PARALLEL_COMMITMENTS: usize = 4;

/// The listener for the archive's reports, and (when no other ledger sees the run's
/// sends) the ledger of what the router took.
#[derive(Debug)]
pub struct CommitmentCheck {
    listener: Arc<ReportListener>,
    own_ledger: Option<Arc<Ledger>>,
}

impl CommitmentCheck {
    /// Starts the report listener ([`listener_options`](crate::options::commitment::listener_options));
    /// with `own_ledger`, the check keeps a ledger of the sends itself (the run has
    /// neither a sink nor a retrieval to share one).
    ///
    /// # Errors
    /// [`CampaignError::Commitment`] when the listener cannot listen there.
    pub fn start(config: &TestConfig, own_ledger: bool) -> Result<Self, CampaignError> {
        let listener = ReportListener::start(crate::options::commitment::listener_options(config))
            .map_err(CampaignError::Commitment)?;
        Ok(CommitmentCheck {
            listener: Arc::new(listener),
            own_ledger: own_ledger.then(|| Ledger::new(LedgerOptions::new())),
        })
    }

    /// The check's own ledger, when it keeps one: every send of the run must be shown
    /// to it.
    pub fn own_ledger(&self) -> Option<&Arc<Ledger>> {
        self.own_ledger.as_ref()
    }

    /// The AE title and address the archive must send its reports to.
    pub fn listener(&self) -> (&AeTitle, SocketAddr) {
        (self.listener.ae_title(), self.listener.local_addr())
    }

    /// Asks the archive to commit every instance the router took, per study, and
    /// waits for each report (`COMMIT_TIMEOUT`, several studies at once), asking the
    /// C-FIND peer of `config` (the target's, pointed at the router). `sends` is
    /// the ledger the run's sends were shown to (the check's own one when it has
    /// it). Call it before [`RetrievalCheck::verify`](crate::retrieval::RetrievalCheck::verify),
    /// which forgets the studies it does not retrieve.
    ///
    /// An archive that cannot be reached, or that does not accept Storage
    /// Commitment, ends the check there: the studies left are reported not
    /// attempted.
    ///
    /// # Errors
    /// [`CampaignError::Tls`] for TLS files that cannot be used.
    pub fn verify(
        &self,
        config: &TestConfig,
        sends: &Ledger,
    ) -> Result<CommitmentReport, CampaignError> {
        let started = Instant::now();
        let options = crate::options::commitment::commitment_options(config)?;
        let committer = Committer::with_listener(options, self.listener.clone())
            .map_err(CampaignError::Commitment)?;
        let mut without_class = 0u64;
        let mut order: Vec<String> = Vec::new();
        let mut by_study: HashMap<String, Vec<ReferencedInstance>> = HashMap::new();
        for send in sends.taken_sends() {
            let Some(class) = send.sop_class_uid else {
                without_class += 1;
                continue;
            };
            let study = send.study_instance_uid.unwrap_or_default();
            by_study
                .entry(study.clone())
                .or_insert_with(|| {
                    order.push(study);
                    Vec::new()
                })
                .push(ReferencedInstance::new(class, send.sop_instance_uid));
        }
        let studies: Vec<(String, Vec<ReferencedInstance>)> = order
            .into_iter()
            .map(|study| {
                let instances = by_study.remove(&study).unwrap_or_default();
                (study, instances)
            })
            .collect();
        let rows = commit_studies(&committer, &studies);
        let unknown = self.listener.unknown_reports();
        let malformed = self.listener.malformed_reports();
        let (ae_title, addr) = self.listener();
        Ok(CommitmentReport {
            peer: committer.options().scu().peer(),
            listener: format!("{ae_title}@{addr}"),
            studies: rows,
            instances_without_class: without_class,
            unknown_reports: unknown.len(),
            unknown_transactions: unknown
                .iter()
                .take(3)
                .map(|r| r.transaction_uid.clone())
                .collect(),
            malformed_reports: malformed.len(),
            report_timeout: committer.options().current_report_timeout(),
            elapsed: started.elapsed(),
        })
    }
}

/// Runs one commitment per study (its instances named in one request), a few at a
/// time, and returns them in the order given. An archive that cannot be reached, or
/// that does not accept Storage Commitment, ends it there: the studies left are
/// reported not attempted.
pub fn commit_studies(
    committer: &Committer,
    studies: &[(String, Vec<ReferencedInstance>)],
) -> Vec<StudyCommitment> {
    let next = AtomicUsize::new(0);
    let stop: parking_lot::Mutex<Option<String>> = parking_lot::Mutex::new(None);
    let stopped = AtomicBool::new(false);
    let slots: Vec<parking_lot::Mutex<Option<StudyCommitment>>> = (0..studies.len())
        .map(|_| parking_lot::Mutex::new(None))
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_COMMITMENTS.min(studies.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((study, instances)) = studies.get(i) else {
                        return;
                    };
                    let row = if stopped.load(Ordering::Acquire) {
                        let why = stop.lock().clone().unwrap_or_default();
                        StudyCommitment::failed(
                            study,
                            instances.len(),
                            format!("not attempted: {why}"),
                        )
                    } else {
                        let request = CommitmentRequest::new(instances.iter().cloned());
                        match committer.commit(&request) {
                            Ok(outcome) => StudyCommitment::of(study, outcome),
                            Err(error) => {
                                let text = dimse::ErrorChain(&error).to_string();
                                if stops_every_commitment(&error) {
                                    stop.lock().get_or_insert_with(|| text.clone());
                                    stopped.store(true, Ordering::Release);
                                }
                                StudyCommitment::failed(study, instances.len(), text)
                            }
                        }
                    };
                    *slots[i].lock() = Some(row);
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(parking_lot::Mutex::into_inner)
        .collect()
}

/// Whether an error will repeat for every study (the archive unreachable, refusing
/// the association, or without Storage Commitment).
fn stops_every_commitment(error: &CommitmentError) -> bool {
    matches!(
        error,
        CommitmentError::Associate(_) | CommitmentError::NotSupported { .. }
    )
}

/// One study's commitment.
#[derive(Debug, Clone, Serialize)]
pub struct StudyCommitment {
    /// The study, as sent.
    pub study_instance_uid: String,
    /// Instances of it the router took, all named in the request.
    pub requested: usize,
    /// What the archive answered and reported, when the request could be made.
    pub outcome: Option<CommitmentOutcome>,
    /// Why it could not be made.
    pub error: Option<String>,
}

impl StudyCommitment {
    fn of(study: &str, outcome: CommitmentOutcome) -> Self {
        StudyCommitment {
            study_instance_uid: study.to_string(),
            requested: outcome.requested,
            outcome: Some(outcome),
            error: None,
        }
    }

    fn failed(study: &str, requested: usize, error: String) -> Self {
        StudyCommitment {
            study_instance_uid: study.to_string(),
            requested,
            outcome: None,
            error: Some(error),
        }
    }

    /// Whether the archive committed every instance asked, in time.
    pub fn is_committed(&self) -> bool {
        self.outcome
            .as_ref()
            .is_some_and(CommitmentOutcome::is_complete)
    }

    /// Instances the archive reported committed.
    pub fn committed(&self) -> usize {
        self.outcome.as_ref().map_or(0, |o| o.committed.len())
    }

    /// Instances the archive reported failed.
    pub fn failed_count(&self) -> usize {
        self.outcome.as_ref().map_or(0, |o| o.failed.len())
    }

    /// Instances asked that the archive did not account for: unanswered in its report,
    /// or all of them when no report came.
    pub fn unaccounted(&self) -> usize {
        match &self.outcome {
            Some(o) if o.report_via.is_some() => o.unanswered.len(),
            _ => self.requested,
        }
    }

    /// The study's commitment in words.
    pub fn summary(&self) -> String {
        match (&self.outcome, &self.error) {
            (Some(outcome), _) => match outcome.failed.first() {
                Some(first) => format!(
                    "{}; e.g. {} failed: {}",
                    outcome.summary(),
                    first.instance.sop_instance_uid,
                    first
                        .reason
                        .map_or_else(|| "no reason given".to_string(), |r| r.to_string())
                ),
                None => outcome.summary(),
            },
            (None, Some(error)) => error.clone(),
            (None, None) => String::new(),
        }
    }
}

/// What the commitment verification found.
#[derive(Debug, Clone, Serialize)]
pub struct CommitmentReport {
    /// The archive, `CALLED@host:port`.
    pub peer: String,
    /// Where its reports were awaited, `AE@host:port`.
    pub listener: String,
    /// One commitment per study the router took instances of, in run order.
    pub studies: Vec<StudyCommitment>,
    /// Instances taken whose SOP Class UID is unknown: they cannot be named in a
    /// request (a file without one).
    pub instances_without_class: u64,
    /// Reports that came for a transaction no commitment of ours was waiting for.
    pub unknown_reports: usize,
    /// The first of their transaction UIDs.
    pub unknown_transactions: Vec<String>,
    /// Reports that could not be read (answered with a failure status).
    pub malformed_reports: usize,
    /// How long each report could take (`COMMIT_TIMEOUT`).
    #[serde(serialize_with = "dimse::serde_duration::seconds")]
    pub report_timeout: Duration,
    /// The whole verification.
    #[serde(serialize_with = "dimse::serde_duration::seconds")]
    pub elapsed: Duration,
}

impl CommitmentReport {
    /// Instances named in the requests.
    pub fn requested(&self) -> usize {
        self.studies.iter().map(|s| s.requested).sum()
    }

    /// Instances the archive reported committed.
    pub fn committed(&self) -> usize {
        self.studies.iter().map(StudyCommitment::committed).sum()
    }

    /// Whether the archive committed every instance the router took, every report
    /// came in time and could be read, and no report came for a transaction of no one.
    pub fn is_clean(&self) -> bool {
        !self.studies.is_empty()
            && self.studies.iter().all(StudyCommitment::is_committed)
            && self.instances_without_class == 0
            && self.unknown_reports == 0
            && self.malformed_reports == 0
    }
}

/// The report's view of a commitment verification: one row per study.
pub fn archive_commitment(report: &CommitmentReport) -> report::ArchiveCommitment {
    report::ArchiveCommitment {
        peer: report.peer.clone(),
        listener: report.listener.clone(),
        clean: report.is_clean(),
        requested: report.requested() as u64,
        committed: report.committed() as u64,
        unknown_reports: report.unknown_reports as u64,
        malformed_reports: report.malformed_reports as u64,
        instances_without_class: report.instances_without_class,
        studies: report
            .studies
            .iter()
            .map(|study| {
                let mut notes: Vec<String> = Vec::new();
                if let Some(error) = &study.error {
                    notes.push(error.clone());
                }
                if let Some(outcome) = &study.outcome {
                    if let Some(status) = outcome.action_status
                        && status != dimse::Status::SUCCESS
                    {
                        notes.push(format!(
                            "N-ACTION answered {:04X} ({})",
                            status.0,
                            status.meaning()
                        ));
                    }
                    if outcome.timed_out {
                        notes.push(format!(
                            "no report within {:.0} s",
                            report.report_timeout.as_secs_f64()
                        ));
                    }
                    if let Some(why) = &outcome.interrupted {
                        notes.push(why.clone());
                    }
                    if let Some(first) = outcome.failed.first() {
                        notes.push(format!(
                            "e.g. {} failed: {}",
                            first.instance.sop_instance_uid,
                            first
                                .reason
                                .map_or_else(|| "no reason given".to_string(), |r| r.to_string())
                        ));
                    }
                    if !outcome.unrequested.is_empty() {
                        notes.push(format!(
                            "{} instance(s) reported that were never asked for",
                            outcome.unrequested.len()
                        ));
                    }
                    notes.extend(outcome.anomalies.iter().take(2).cloned());
                }
                report::StudyCommitmentRow {
                    study_instance_uid: study.study_instance_uid.clone(),
                    requested: study.requested as u64,
                    committed: study.committed() as u64,
                    failed: study.failed_count() as u64,
                    unaccounted: study.unaccounted() as u64,
                    report_via: study
                        .outcome
                        .as_ref()
                        .and_then(|o| o.report_via.as_ref())
                        .map_or_else(|| "-".to_string(), ToString::to_string),
                    seconds: study
                        .outcome
                        .as_ref()
                        .and_then(|o| o.time_to_report)
                        .map(|t| t.as_secs_f64()),
                    committed_all: study.is_committed(),
                    note: notes.join("; "),
                }
            })
            .collect(),
    }
}

/// The short figures of a commitment verification beside a load run.
pub fn commitment_figures(report: &CommitmentReport) -> Vec<report::Figure> {
    let committed_studies = report.studies.iter().filter(|s| s.is_committed()).count();
    let failed: usize = report
        .studies
        .iter()
        .map(StudyCommitment::failed_count)
        .sum();
    let unaccounted: usize = report
        .studies
        .iter()
        .map(StudyCommitment::unaccounted)
        .sum();
    let longest = report
        .studies
        .iter()
        .filter_map(|s| s.outcome.as_ref().and_then(|o| o.time_to_report))
        .max()
        .unwrap_or_default();
    vec![
        report::Figure {
            label: "committed by the archive (studies)".into(),
            value: format!("{committed_studies} of {}", report.studies.len()),
        },
        report::Figure {
            label: "instances committed / failed / unaccounted of requested".into(),
            value: format!(
                "{} / {failed} / {unaccounted} of {}",
                report.committed(),
                report.requested()
            ),
        },
        report::Figure {
            label: "time to the commitment report (longest)".into(),
            value: format!("{:.2} s", longest.as_secs_f64()),
        },
    ]
}
