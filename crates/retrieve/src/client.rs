//! The retrieve exchange itself: one request, its pending responses and (for a
//! C-GET) its C-STORE sub-operations, until the final response.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dimse::{
    Command, CommandField, DimseError, Incoming, Message, ScuAssociation, Status, StatusClass,
    SubOperations,
};

use crate::outcome::{Anomaly, CancelReason, RetrieveOutcome};
use crate::receiver::{Progress, ReceivedInstance, Receiver};
use crate::{Method, RetrieveError, RetrieveOptions, RetrieveRequest};

/// A C-MOVE or C-GET client on one association, kept open across retrieves (one
/// per study of a verification, say) and opened again when the previous one was
/// lost.
///
/// ```no_run
/// use dimse::{AeTitle, PeerAddress, ScuOptions};
/// use retrieve::{Discard, Method, RetrieveOptions, RetrieveRequest, Retriever};
///
/// let scu = ScuOptions::new(
///     PeerAddress::new("127.0.0.1", 11112),
///     "DICOM_AUTO".parse()?,
///     "QRSCP".parse()?,
/// );
/// let mut retriever = Retriever::new(RetrieveOptions::new(scu), Method::Get);
/// let outcome = retriever.retrieve(&RetrieveRequest::study("1.2.3"), &mut Discard)?;
/// println!("{}", outcome.summary());
/// retriever.release();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Retriever {
    options: RetrieveOptions,
    method: Method,
    association: Option<ScuAssociation>,
}

impl Retriever {
    /// A retriever using `method`; the association opens at the first retrieve (or
    /// [`connect`](Self::connect)).
    pub fn new(options: RetrieveOptions, method: Method) -> Self {
        Retriever {
            options,
            method,
            association: None,
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Opens the association now, if it is not open: a wrong address, AE title or
    /// model support shows before any retrieve.
    ///
    /// # Errors
    /// The association was refused, accepted no retrieve model, or (C-GET) granted
    /// no storage role.
    pub fn connect(&mut self) -> Result<&mut ScuAssociation, RetrieveError> {
        if self.association.is_none() {
            let association = self.options.association_for(&self.method).establish()?;
            if !self.options.models.iter().any(|m| {
                association
                    .accepted_context(m.service_sop_class_uid(self.method.service()))
                    .is_some()
            }) {
                let peer = association.peer().to_string();
                association.abort();
                return Err(RetrieveError::NoModel {
                    peer,
                    service: self.method.service(),
                    level: dimse::QueryLevel::Study,
                    proposed: self.proposed_models(),
                });
            }
            if self.method == Method::Get
                && !self
                    .options
                    .storage_sop_classes
                    .iter()
                    .any(|class| association.peer_accepted_scp_role(class))
            {
                let peer = association.peer().to_string();
                association.abort();
                return Err(RetrieveError::NoStorageRole {
                    peer,
                    proposed: self.options.storage_sop_classes.len(),
                });
            }
            self.association = Some(association);
        }
        Ok(self.association.as_mut().expect("just opened"))
    }

    fn proposed_models(&self) -> String {
        self.options
            .models
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Runs one retrieve to its end: its final response, or our C-CANCEL and the
    /// answer to it, or the association's loss. Instances of a C-GET go to
    /// `receiver`, which also sees the progress.
    ///
    /// # Errors
    /// The request is invalid, the association cannot be opened, no accepted model
    /// can express the request, or the request cannot be sent. What happens after
    /// the request went out is in the [`RetrieveOutcome`], whatever it is.
    pub fn retrieve(
        &mut self,
        request: &RetrieveRequest,
        receiver: &mut dyn Receiver,
    ) -> Result<RetrieveOutcome, RetrieveError> {
        request.validate()?;
        let service = self.method.service();
        let models = self.options.models.clone();
        let proposed = self.proposed_models();
        self.connect()?;
        let Retriever {
            options,
            method,
            association: slot,
        } = self;
        let association = slot.as_mut().expect("connected above");
        let Some((model, context)) = models.iter().find_map(|&model| {
            let pc = association.accepted_context(model.service_sop_class_uid(service))?;
            request.fits(model).then(|| (model, pc.clone()))
        }) else {
            return Err(RetrieveError::NoModel {
                peer: association.peer().to_string(),
                service,
                level: request.level(),
                proposed,
            });
        };
        let identifier = encode(&request.identifier(model)?, &context.transfer_syntax)
            .map_err(RetrieveError::Request)?;
        let id = association.next_message_id();
        let sop_class = model.service_sop_class_uid(service);
        let command = match &*method {
            Method::Move { destination } => {
                Command::c_move_rq(id, sop_class, destination.as_str(), options.priority)
            }
            Method::Get => Command::c_get_rq(id, sop_class, options.priority),
        };
        let peer = association.peer().to_string();
        if let Err(source) = association.send(context.id, &command, Some(&identifier)) {
            if let Some(association) = slot.take() {
                association.abort();
            }
            return Err(RetrieveError::Send {
                peer,
                service,
                source,
            });
        }
        let mut exchange = Exchange {
            options,
            method,
            request,
            message_id: id,
            context_id: context.id,
            started: Instant::now(),
            last_progress: Instant::now(),
            cancel: None,
            seen: HashSet::new(),
            outcome: RetrieveOutcome {
                request: request.clone(),
                method: method.clone(),
                model,
                peer,
                final_status: None,
                error_comment: None,
                counts: SubOperations::default(),
                pending_responses: 0,
                failed_instances: Vec::new(),
                received: 0,
                received_bytes: 0,
                refused_by_receiver: 0,
                cancelled: None,
                interrupted: None,
                anomalies: Vec::new(),
                elapsed: Duration::ZERO,
            },
        };
        let lost = exchange.run(association, receiver);
        let mut outcome = exchange.outcome;
        outcome.elapsed = exchange.started.elapsed();
        if lost && let Some(association) = slot.take() {
            association.abort();
        }
        Ok(outcome)
    }

    /// Releases the association, if one is open.
    pub fn release(mut self) {
        if let Some(association) = self.association.take() {
            let _ = association.release();
        }
    }
}

/// The state of one retrieve in flight.
struct Exchange<'a> {
    options: &'a RetrieveOptions,
    method: &'a Method,
    request: &'a RetrieveRequest,
    message_id: u16,
    context_id: u8,
    started: Instant,
    last_progress: Instant,
    /// Our C-CANCEL: why, and until when the SCP may answer it.
    cancel: Option<(CancelReason, Instant)>,
    seen: HashSet<String>,
    outcome: RetrieveOutcome,
}

impl Exchange<'_> {
    /// Reads until the final response; returns whether the association is lost.
    fn run(&mut self, association: &mut ScuAssociation, receiver: &mut dyn Receiver) -> bool {
        let dimse_timeout = association.timeouts().dimse;
        loop {
            let now = Instant::now();
            let wait = match self.cancel {
                Some((_, until)) => until.saturating_duration_since(now),
                None => {
                    let stall = (self.last_progress + self.options.stall_timeout)
                        .saturating_duration_since(now);
                    let deadline = self
                        .options
                        .deadline
                        .map(|d| (self.started + d).saturating_duration_since(now))
                        .unwrap_or(Duration::MAX);
                    dimse_timeout.min(stall).min(deadline)
                }
            };
            match association.receive_within(wait) {
                Ok(Incoming::Message(message)) => {
                    if self.handle(association, receiver, message) {
                        return false;
                    }
                    if let Some(reason) = self.due_cancel(Instant::now())
                        && self.send_cancel(association, reason).is_err()
                    {
                        return true;
                    }
                }
                Ok(Incoming::ReleaseRequested) => {
                    let _ = association.confirm_release();
                    self.outcome.interrupted =
                        Some("the SCP released the association before its final response".into());
                    return true;
                }
                Ok(Incoming::Aborted(source)) => {
                    self.outcome.interrupted = Some(format!(
                        "the SCP aborted the association before its final response ({source:?})"
                    ));
                    return true;
                }
                Ok(_) => {
                    self.outcome.interrupted = Some("the association ended".into());
                    return true;
                }
                Err(DimseError::Timeout) => {
                    let now = Instant::now();
                    if let Some((_, until)) = self.cancel {
                        if now >= until {
                            self.outcome.interrupted = Some(format!(
                                "no final response within {:.1} s of our C-CANCEL; association aborted",
                                self.options.cancel_grace.as_secs_f64()
                            ));
                            return true;
                        }
                        continue;
                    }
                    let reason = self.due_cancel(now).unwrap_or(CancelReason::Silent);
                    if self.send_cancel(association, reason).is_err() {
                        return true;
                    }
                }
                Err(error) => {
                    self.outcome.interrupted = Some(format!("association lost: {error}"));
                    return true;
                }
            }
        }
    }

    /// The reason to cancel now, if any (and if not cancelled yet).
    fn due_cancel(&self, now: Instant) -> Option<CancelReason> {
        if self.cancel.is_some() {
            return None;
        }
        if let Some(limit) = self.options.max_sub_operations
            && self.done() >= u64::from(limit)
        {
            return Some(CancelReason::Limit);
        }
        if let Some(deadline) = self.options.deadline
            && now >= self.started + deadline
        {
            return Some(CancelReason::Deadline);
        }
        (now >= self.last_progress + self.options.stall_timeout).then_some(CancelReason::Stalled)
    }

    /// Sub-operations done: as counted by the SCP, or instances received when more.
    fn done(&self) -> u64 {
        let c = &self.outcome.counts;
        let reported = [c.completed, c.failed, c.warning]
            .into_iter()
            .map(|n| u64::from(n.unwrap_or(0)))
            .sum::<u64>();
        reported.max(self.outcome.received)
    }

    fn send_cancel(
        &mut self,
        association: &mut ScuAssociation,
        reason: CancelReason,
    ) -> Result<(), ()> {
        self.outcome.cancelled = Some(reason);
        self.cancel = Some((reason, Instant::now() + self.options.cancel_grace));
        let cancel = Command::c_cancel_rq(self.message_id);
        association
            .send(self.context_id, &cancel, None)
            .map_err(|error| {
                self.outcome.interrupted = Some(format!("cannot send C-CANCEL: {error}"));
            })
    }

    /// Handles one message; returns whether it was the final response.
    fn handle(
        &mut self,
        association: &mut ScuAssociation,
        receiver: &mut dyn Receiver,
        message: Message,
    ) -> bool {
        let expected = match self.method {
            Method::Move { .. } => CommandField::CMoveRsp,
            Method::Get => CommandField::CGetRsp,
        };
        let field = message.command.field;
        if field == CommandField::CStoreRq {
            self.store(association, receiver, message);
            return false;
        }
        if field != expected
            || message.command.message_id_being_responded_to != Some(self.message_id)
        {
            self.outcome.anomalies.push(Anomaly::UnexpectedMessage {
                what: format!(
                    "{field} (responding to {:?}) during the {}",
                    message.command.message_id_being_responded_to,
                    self.method.service()
                ),
            });
            return false;
        }
        let Some(status) = message.command.status else {
            self.outcome.anomalies.push(Anomaly::UnexpectedMessage {
                what: format!("{field} without a status"),
            });
            return false;
        };
        let counts = message.command.sub_operations;
        if status.class() == StatusClass::Pending {
            self.outcome.pending_responses += 1;
            self.update_counts(counts);
            receiver.progress(&self.progress());
            return false;
        }
        self.outcome.final_status = Some(status);
        self.outcome.error_comment = message.command.error_comment.clone();
        if [counts.completed, counts.failed, counts.warning]
            .iter()
            .all(Option::is_none)
        {
            if matches!(
                status.class(),
                StatusClass::Success | StatusClass::Warning | StatusClass::Cancel
            ) && self.outcome.pending_responses > 0
            {
                self.outcome.anomalies.push(Anomaly::MissingCounts);
            }
        } else {
            self.update_counts(counts);
        }
        if let Some(data) = &message.data {
            self.outcome.failed_instances = failed_instances(data, &self.context_ts(association));
        }
        if *self.method == Method::Get && self.outcome.counts.completed.is_some() {
            let accepted = self.outcome.received - self.outcome.refused_by_receiver;
            let reported = self.outcome.reported_retrieved();
            if u64::from(reported) != accepted {
                self.outcome
                    .anomalies
                    .push(Anomaly::CountsDisagree { reported, accepted });
            }
        }
        receiver.progress(&self.progress());
        true
    }

    fn context_ts(&self, association: &ScuAssociation) -> String {
        association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == self.context_id)
            .map(|pc| pc.transfer_syntax.clone())
            .unwrap_or_default()
    }

    fn update_counts(&mut self, counts: SubOperations) {
        let before = self.outcome.counts;
        let went_back =
            |b: Option<u16>, a: Option<u16>| matches!((b, a), (Some(b), Some(a)) if a < b);
        if went_back(before.completed, counts.completed)
            || went_back(before.failed, counts.failed)
            || went_back(before.warning, counts.warning)
        {
            self.outcome.anomalies.push(Anomaly::CountsWentBackwards {
                before,
                after: counts,
            });
        }
        if counts != before {
            self.last_progress = Instant::now();
        }
        self.outcome.counts = counts;
    }

    fn progress(&self) -> Progress {
        Progress {
            counts: self.outcome.counts,
            received: self.outcome.received,
            received_bytes: self.outcome.received_bytes,
            elapsed: self.started.elapsed(),
        }
    }

    /// A C-STORE sub-operation: handed to the receiver and answered.
    fn store(
        &mut self,
        association: &mut ScuAssociation,
        receiver: &mut dyn Receiver,
        message: Message,
    ) {
        let command = &message.command;
        let uid = command.sop_instance_uid.clone().unwrap_or_default();
        let context = association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == message.presentation_context_id)
            .cloned();
        let misplaced = match (&self.method, &context) {
            (Method::Move { .. }, _) => Some("arrived on the C-MOVE's own association".to_string()),
            (_, None) => Some(format!(
                "arrived on presentation context {}, which was not accepted",
                message.presentation_context_id
            )),
            (_, Some(pc))
                if !association.peer_accepted_scp_role(dimse::trim_value(&pc.abstract_syntax)) =>
            {
                Some(format!(
                    "arrived on the context of {}, for which we hold no SCP role",
                    pc.abstract_syntax
                ))
            }
            _ => None,
        };
        let status = if let Some(why) = misplaced {
            self.outcome.anomalies.push(Anomaly::MisplacedStore {
                sop_instance_uid: uid.clone(),
                why,
            });
            Status::SOP_CLASS_NOT_SUPPORTED
        } else {
            self.last_progress = Instant::now();
            self.outcome.received += 1;
            let data = message.data.unwrap_or_default();
            self.outcome.received_bytes += data.len() as u64;
            if self.request.level() == dimse::QueryLevel::Image
                && !self.request.instance_uids().contains(&uid)
            {
                self.outcome.anomalies.push(Anomaly::Unrequested {
                    sop_instance_uid: uid.clone(),
                });
            }
            if !self.seen.insert(uid.clone()) {
                self.outcome.anomalies.push(Anomaly::Repeated {
                    sop_instance_uid: uid.clone(),
                });
            }
            let status = receiver.instance(ReceivedInstance {
                at: Instant::now(),
                sop_class_uid: command.sop_class_uid.clone().unwrap_or_default(),
                sop_instance_uid: uid,
                transfer_syntax: context.map(|pc| pc.transfer_syntax).unwrap_or_default(),
                data,
            });
            if !status.is_delivered() {
                self.outcome.refused_by_receiver += 1;
            }
            status
        };
        if let Some(response) = Command::response_to(command, status, false) {
            let _ = association.send(message.presentation_context_id, &response, None);
        }
        receiver.progress(&self.progress());
    }
}

/// The identifier encoded in the Q/R context's transfer syntax.
fn encode(identifier: &InMemDicomObject, ts_uid: &str) -> Result<Vec<u8>, String> {
    let ts = TransferSyntaxRegistry
        .get(dimse::trim_value(ts_uid))
        .ok_or_else(|| format!("the peer chose transfer syntax {ts_uid}, which we cannot write"))?;
    let mut bytes = Vec::with_capacity(256);
    identifier
        .write_dataset_with_ts(&mut bytes, ts)
        .map_err(|e| format!("cannot encode the identifier: {e}"))?;
    Ok(bytes)
}

/// The Failed SOP Instance UID List (0008,0058) of a final response's identifier
/// (empty when it cannot be read).
fn failed_instances(data: &[u8], ts_uid: &str) -> Vec<String> {
    let Some(ts) = TransferSyntaxRegistry.get(dimse::trim_value(ts_uid)) else {
        return Vec::new();
    };
    let Ok(object) = InMemDicomObject::read_dataset_with_ts(data, ts) else {
        return Vec::new();
    };
    object
        .get(tags::FAILED_SOP_INSTANCE_UID_LIST)
        .and_then(|e| e.to_multi_str().ok())
        .map(|values| {
            values
                .iter()
                .map(|v| dimse::trim_value(v).to_string())
                .filter(|v| !v.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
