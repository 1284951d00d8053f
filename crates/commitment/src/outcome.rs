//! What a commitment did: the SCP's answer to the N-ACTION, then its report,
//! compared with what was asked.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use dimse::Status;
use serde::Serialize;

use crate::report::EventReport;
use crate::{FailedInstance, ReferencedInstance};

/// How the report came.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "via", rename_all = "snake_case")]
pub enum ReportVia {
    /// On the N-ACTION's own association.
    SameAssociation,
    /// On an association the SCP opened to our listener.
    NewAssociation {
        /// The SCP's AE title on that association (its calling AE title).
        calling_ae_title: String,
    },
}

impl fmt::Display for ReportVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportVia::SameAssociation => f.write_str("on the same association"),
            ReportVia::NewAssociation { calling_ae_title } => {
                write!(f, "on a new association from {calling_ae_title}")
            }
        }
    }
}

/// Everything one commitment did.
#[derive(Clone, Debug, Serialize)]
pub struct CommitmentOutcome {
    /// The transaction UID of the request.
    pub transaction_uid: String,
    /// `CALLED@host:port`.
    pub peer: String,
    /// Instances asked to be committed.
    pub requested: usize,
    /// The N-ACTION-RSP status; `None` when no response came.
    pub action_status: Option<Status>,
    /// The N-ACTION-RSP error comment, if any.
    pub action_error_comment: Option<String>,
    /// The report's event type (1: all committed, 2: failures exist), once a
    /// report came.
    pub event_type: Option<u16>,
    /// Instances the report says are committed.
    pub committed: Vec<ReferencedInstance>,
    /// Instances the report says are not, with the reasons.
    pub failed: Vec<FailedInstance>,
    /// Instances asked for that the report names in neither list.
    pub unanswered: Vec<ReferencedInstance>,
    /// Instances the report names that were never asked for.
    pub unrequested: Vec<ReferencedInstance>,
    /// The Retrieve AE Title the report gives, if any.
    pub retrieve_ae_title: Option<String>,
    /// How the report came.
    pub report_via: Option<ReportVia>,
    /// From the N-ACTION-RQ sent to the report received.
    #[serde(
        rename = "time_to_report_ms",
        serialize_with = "dimse::serde_duration::optional_millis"
    )]
    pub time_to_report: Option<Duration>,
    /// No report came within the report timeout.
    pub timed_out: bool,
    /// Why the commitment ended early (association lost before the N-ACTION-RSP,
    /// or while waiting on it for the report with no listener to fall back on).
    pub interrupted: Option<String>,
    /// What the SCP did that the standard does not allow (an event type that
    /// contradicts the lists, an unreadable report on our association...).
    pub anomalies: Vec<String>,
}

impl CommitmentOutcome {
    pub(crate) fn new(transaction_uid: &str, peer: &str, requested: usize) -> Self {
        CommitmentOutcome {
            transaction_uid: transaction_uid.to_string(),
            peer: peer.to_string(),
            requested,
            action_status: None,
            action_error_comment: None,
            event_type: None,
            committed: Vec::new(),
            failed: Vec::new(),
            unanswered: Vec::new(),
            unrequested: Vec::new(),
            retrieve_ae_title: None,
            report_via: None,
            time_to_report: None,
            timed_out: false,
            interrupted: None,
            anomalies: Vec::new(),
        }
    }

    /// Takes the report in, comparing it with the instances `requested`.
    pub(crate) fn take_report(
        &mut self,
        report: EventReport,
        requested: &[ReferencedInstance],
        via: ReportVia,
        after: Duration,
    ) {
        let asked: HashSet<&str> = requested
            .iter()
            .map(|i| i.sop_instance_uid.as_str())
            .collect();
        let mut named: HashSet<String> = HashSet::new();
        for instance in report
            .committed
            .iter()
            .chain(report.failed.iter().map(|f| &f.instance))
        {
            if !named.insert(instance.sop_instance_uid.clone()) {
                self.anomalies.push(format!(
                    "instance {} is named more than once in the report",
                    instance.sop_instance_uid
                ));
            }
            if !asked.contains(instance.sop_instance_uid.as_str()) {
                self.unrequested.push(instance.clone());
            }
        }
        self.unanswered = requested
            .iter()
            .filter(|i| !named.contains(&i.sop_instance_uid))
            .cloned()
            .collect();
        match report.event_type {
            crate::EVENT_ALL_COMMITTED if !report.failed.is_empty() => {
                self.anomalies.push(format!(
                    "event type 1 (all committed) with {} failed instances",
                    report.failed.len()
                ))
            }
            crate::EVENT_FAILURES_EXIST if report.failed.is_empty() => self
                .anomalies
                .push("event type 2 (failures exist) with an empty Failed SOP Sequence".into()),
            _ => {}
        }
        self.event_type = Some(report.event_type);
        self.committed = report.committed;
        self.failed = report.failed;
        self.retrieve_ae_title = report.retrieve_ae_title;
        self.report_via = Some(via);
        self.time_to_report = Some(after);
    }

    /// Whether the SCP took responsibility for everything asked: N-ACTION success,
    /// a report within the timeout naming every instance committed, nothing failed,
    /// unanswered or unrequested, no anomaly.
    pub fn is_complete(&self) -> bool {
        self.action_status == Some(Status::SUCCESS)
            && self.event_type == Some(crate::EVENT_ALL_COMMITTED)
            && !self.timed_out
            && self.interrupted.is_none()
            && self.failed.is_empty()
            && self.unanswered.is_empty()
            && self.unrequested.is_empty()
            && self.anomalies.is_empty()
            && self.committed.len() == self.requested
    }

    /// One line in words: `transaction 2.25.1 with ARCHIVE@host:104: 3 of 3
    /// committed, 0 failed, on a new association from ARCHIVE, in 0.21 s`.
    pub fn summary(&self) -> String {
        let head = format!("transaction {} with {}", self.transaction_uid, self.peer);
        match self.action_status {
            None => {
                return format!(
                    "{head}: no N-ACTION-RSP ({})",
                    self.interrupted.as_deref().unwrap_or("no answer")
                );
            }
            Some(status) if status != Status::SUCCESS => {
                return format!(
                    "{head}: N-ACTION refused with {:04X} ({}){}",
                    status.0,
                    status.meaning(),
                    self.action_error_comment
                        .as_deref()
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default()
                );
            }
            Some(_) => {}
        }
        let Some(via) = &self.report_via else {
            return if self.timed_out {
                format!("{head}: no report within the report timeout")
            } else {
                format!(
                    "{head}: no report ({})",
                    self.interrupted.as_deref().unwrap_or("unknown")
                )
            };
        };
        let mut line = format!(
            "{head}: {} of {} committed, {} failed",
            self.committed.len(),
            self.requested,
            self.failed.len()
        );
        if !self.unanswered.is_empty() {
            line.push_str(&format!(", {} unanswered", self.unanswered.len()));
        }
        if !self.unrequested.is_empty() {
            line.push_str(&format!(", {} unrequested", self.unrequested.len()));
        }
        line.push_str(&format!(", {via}"));
        if let Some(after) = self.time_to_report {
            line.push_str(&format!(", in {:.2} s", after.as_secs_f64()));
        }
        line
    }
}
