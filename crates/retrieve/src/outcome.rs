//! What a retrieve did: the SCP's own account (status, sub-operation counts, failed
//! instances) beside what we saw (instances received, stalls, oddities).

use std::fmt;
use std::time::Duration;

use dimse::{CommandField, InformationModel, Status, StatusClass, SubOperations};
use serde::Serialize;

use crate::{Method, RetrieveRequest};

/// Why we cancelled a retrieve (C-CANCEL-RQ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The configured number of sub-operations was reached.
    Limit,
    /// The whole retrieve took longer than its deadline.
    Deadline,
    /// Nothing moved (counts unchanged, no instance) for the stall timeout: an SCP
    /// answering "pending" forever.
    Stalled,
    /// The SCP said nothing at all within the DIMSE timeout.
    Silent,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::Limit => "the sub-operation limit was reached",
            CancelReason::Deadline => "the retrieve deadline passed",
            CancelReason::Stalled => "the SCP made no progress within the stall timeout",
            CancelReason::Silent => "the SCP said nothing within the DIMSE timeout",
        })
    }
}

/// Something the SCP did that the standard does not allow, or that contradicts
/// what we asked: recorded, never a reason to stop reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// An instance came back that the image-level request did not name.
    Unrequested {
        /// Its SOP Instance UID.
        sop_instance_uid: String,
    },
    /// The same instance came back twice in one retrieve.
    Repeated {
        /// Its SOP Instance UID.
        sop_instance_uid: String,
    },
    /// A C-STORE sub-operation arrived on a C-MOVE's association, or on a
    /// presentation context that is not a storage one.
    MisplacedStore {
        /// Its SOP Instance UID.
        sop_instance_uid: String,
        /// Why it does not belong.
        why: String,
    },
    /// The counts went backwards between two responses.
    CountsWentBackwards {
        /// The earlier counts.
        before: SubOperations,
        /// The later ones.
        after: SubOperations,
    },
    /// The final counts of a C-GET disagree with the instances we answered.
    CountsDisagree {
        /// Completed plus warning, as the SCP reported them.
        reported: u32,
        /// The instances we answered with success.
        accepted: u64,
    },
    /// A message that has no place in a retrieve (a response to another request,
    /// an N-service).
    UnexpectedMessage {
        /// What it was.
        what: String,
    },
    /// A final response whose counts are missing where the standard requires them
    /// (completed, failed and warning after sub-operations).
    MissingCounts,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::Unrequested { sop_instance_uid } => {
                write!(
                    f,
                    "instance {sop_instance_uid} came back but was not asked for"
                )
            }
            Anomaly::Repeated { sop_instance_uid } => {
                write!(f, "instance {sop_instance_uid} came back more than once")
            }
            Anomaly::MisplacedStore {
                sop_instance_uid,
                why,
            } => write!(f, "C-STORE of {sop_instance_uid} {why}"),
            Anomaly::CountsWentBackwards { before, after } => {
                write!(
                    f,
                    "sub-operation counts went backwards: {before} then {after}"
                )
            }
            Anomaly::CountsDisagree { reported, accepted } => write!(
                f,
                "the SCP reports {reported} sub-operations completed, we accepted {accepted} instances"
            ),
            Anomaly::UnexpectedMessage { what } => write!(f, "unexpected {what}"),
            Anomaly::MissingCounts => {
                f.write_str("the final response leaves out the sub-operation counts")
            }
        }
    }
}

/// Everything one retrieve did.
#[derive(Clone, Debug, Serialize)]
pub struct RetrieveOutcome {
    /// What was asked for.
    pub request: RetrieveRequest,
    /// How.
    pub method: Method,
    /// Under which information model.
    pub model: InformationModel,
    /// `CALLED@host:port`.
    pub peer: String,
    /// The final response's status; `None` when none came (association lost, or no
    /// answer to our C-CANCEL within its grace).
    pub final_status: Option<Status>,
    /// The final response's error comment, if any.
    pub error_comment: Option<String>,
    /// The sub-operation counts of the final response (or of the last pending one
    /// when no final response came).
    pub counts: SubOperations,
    /// Pending responses received.
    pub pending_responses: u32,
    /// The Failed SOP Instance UID List of the final response.
    pub failed_instances: Vec<String>,
    /// C-STORE sub-operations received on our association (C-GET).
    pub received: u64,
    /// Their data set bytes.
    pub received_bytes: u64,
    /// Those the receiver refused (our C-STORE-RSP was not a success).
    pub refused_by_receiver: u64,
    /// Why we cancelled, if we did.
    pub cancelled: Option<CancelReason>,
    /// Why the retrieve ended without its final response, if it did.
    pub interrupted: Option<String>,
    /// What the SCP did wrong.
    pub anomalies: Vec<Anomaly>,
    /// From the request to the final response.
    #[serde(serialize_with = "dimse::serde_duration::seconds")]
    pub elapsed: Duration,
}

impl RetrieveOutcome {
    /// Whether everything asked for was retrieved: a success final status, nothing
    /// failed, not cancelled, and no anomaly.
    pub fn is_complete(&self) -> bool {
        self.final_status == Some(Status::SUCCESS)
            && self.counts.failed.unwrap_or(0) == 0
            && self.failed_instances.is_empty()
            && self.cancelled.is_none()
            && self.interrupted.is_none()
            && self.anomalies.is_empty()
    }

    /// Sub-operations completed, as the SCP reported them (completed plus warning:
    /// a warning is a stored instance).
    pub fn reported_retrieved(&self) -> u32 {
        u32::from(self.counts.completed.unwrap_or(0)) + u32::from(self.counts.warning.unwrap_or(0))
    }

    /// Instances per second over the whole retrieve (sub-operations reported
    /// completed, or received when the SCP reported none).
    pub fn instances_per_second(&self) -> f64 {
        let done = u64::from(self.reported_retrieved()).max(self.received);
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            done as f64 / seconds
        } else {
            0.0
        }
    }

    /// One line in words: `C-GET of study 1.2.3 from QR@host:port: 0000 (success),
    /// completed 12, failed 0, warning 0, in 0.41 s`.
    pub fn summary(&self) -> String {
        let field = match self.method {
            Method::Move { .. } => CommandField::CMoveRsp,
            Method::Get => CommandField::CGetRsp,
        };
        let status = match self.final_status {
            Some(status) => format!("{:04X} ({})", status.0, status.meaning_for(field)),
            None => "no final response".into(),
        };
        let mut line = format!(
            "{} of {} from {}: {status}, {}, in {:.2} s",
            self.method,
            self.request,
            self.peer,
            self.counts,
            self.elapsed.as_secs_f64()
        );
        if matches!(self.method, Method::Get) {
            line.push_str(&format!(", {} instances received", self.received));
        }
        if let Some(reason) = self.cancelled {
            line.push_str(&format!("; cancelled: {reason}"));
        }
        if let Some(why) = &self.interrupted {
            line.push_str(&format!("; interrupted: {why}"));
        }
        if let Some(comment) = &self.error_comment {
            line.push_str(&format!("; the SCP says: {comment}"));
        }
        line
    }

    /// The final status class, when a final response came.
    pub fn status_class(&self) -> Option<StatusClass> {
        self.final_status.map(Status::class)
    }
}
