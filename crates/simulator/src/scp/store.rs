//! The C-STORE service: parse, check and morph the instance by its route's rules,
//! store and queue it for forwarding, then answer (or not: faults).

use std::sync::Arc;
use std::time::Instant;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::pdu::AbortRQSource;
use dimse::{Command, DimseError, Message, Status};

use super::{Association, End, Flow, Shared, abort, respond};
use crate::faults::ForwardFaults;
use crate::forward::ForwardItem;
use crate::rules::{DuplicatePolicy, today_utc};
use crate::stats::StoreStats;
use crate::store::{Arrival, DuplicateAction, InsertOutcome, StoreMode};
use crate::values::text;

/// The store counter one C-STORE adds to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StoreOutcome {
    Stored,
    Overwritten,
    DuplicateKept,
    DuplicateRefused,
    Unreadable,
    RejectedByRules,
    FailedByFault,
}

impl StoreOutcome {
    fn count(self, s: &mut StoreStats) {
        let counter = match self {
            StoreOutcome::Stored => &mut s.stored,
            StoreOutcome::Overwritten => &mut s.overwritten,
            StoreOutcome::DuplicateKept => &mut s.duplicates_kept,
            StoreOutcome::DuplicateRefused => &mut s.duplicates_refused,
            StoreOutcome::Unreadable => &mut s.unreadable,
            StoreOutcome::RejectedByRules => &mut s.rejected_by_rules,
            StoreOutcome::FailedByFault => &mut s.failed_by_fault,
        };
        *counter += 1;
    }
}

/// What happened to one C-STORE, for the response and the counters.
pub(super) struct StoreResult {
    status: Status,
    comment: Option<String>,
    /// `None` when the route does not store (forwarding only).
    outcome: Option<StoreOutcome>,
    /// The instance for the route's forwarding queue.
    forward: Option<ForwardItem>,
}

impl StoreResult {
    fn failed(outcome: StoreOutcome, status: Status, comment: String) -> Self {
        StoreResult {
            status,
            comment: Some(comment),
            outcome: Some(outcome),
            forward: None,
        }
    }
}

pub(super) fn handle_store(
    shared: &Shared,
    association: &mut Association,
    route: usize,
    message: Message,
    ts_uid: &str,
    stores_answered: &mut u64,
) -> Result<Flow, DimseError> {
    let Message {
        presentation_context_id: pc_id,
        command,
        data,
    } = message;
    let data = data.unwrap_or_default();
    let bytes = data.len() as u64;
    if shared.faults.stall_stores() {
        let mut c = shared.counters.lock();
        let s = &mut c.routes[route].stores;
        s.received += 1;
        s.bytes += bytes;
        s.stalled += 1;
        return Ok(Flow::Continue);
    }
    let result = process_store(shared, route, &command, &data, ts_uid);
    drop(data);
    let forward = shared.forward_queues[route]
        .as_ref()
        .zip(result.forward)
        .map(|(queue, mut item)| {
            // Counted here, in the order the stores were answered, over all routes.
            item.faults = shared.faults.forward_faults();
            item.not_before = item.faults.delay.map(|d| Instant::now() + d);
            (queue, item)
        });
    {
        // One lock per store, as every association contends for this mutex. It is
        // taken before the response goes out (a sender holding its answer always
        // finds it in the statistics) and before the forwarding queue gets the item
        // (a fast forwarder never makes delivered > enqueued in a snapshot).
        let mut c = shared.counters.lock();
        let r = &mut c.routes[route];
        let s = &mut r.stores;
        s.received += 1;
        s.bytes += bytes;
        if let Some(outcome) = result.outcome {
            outcome.count(s);
        }
        *s.by_status.entry(result.status).or_default() += 1;
        if forward.is_some() {
            s.forwarded += 1;
            r.forwarding.enqueued += 1;
        }
    }
    if let Some((queue, item)) = forward
        && queue.send(item).is_err()
    {
        // The forwarder is gone (shutdown): the item stays counted as queued.
    }
    respond(
        shared,
        association,
        pc_id,
        &command,
        result.status,
        result.comment.as_deref(),
        None,
    )?;
    *stores_answered += 1;
    if shared
        .faults
        .abort_after_stores()
        .is_some_and(|n| *stores_answered >= n)
    {
        abort(association, AbortRQSource::ServiceUser);
        return Ok(Flow::End(End::FaultAbort));
    }
    Ok(Flow::Continue)
}

/// Parses, checks, morphs and stores one instance, and says what to count and
/// what to forward; the caller counts, queues and then answers.
pub(super) fn process_store(
    shared: &Shared,
    route_index: usize,
    command: &Command,
    data: &[u8],
    ts_uid: &str,
) -> StoreResult {
    let config = &shared.config;
    let route = &config.rules.routes[route_index];
    let overridden = shared.faults.store_override();
    if let Some(status) = overridden
        && !status.is_delivered()
    {
        return StoreResult::failed(
            StoreOutcome::FailedByFault,
            status,
            "status override (fault injection)".into(),
        );
    }
    let unreadable = |comment: String| {
        StoreResult::failed(StoreOutcome::Unreadable, Status::CANNOT_UNDERSTAND, comment)
    };
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return unreadable(format!("unknown transfer syntax {ts_uid}"));
    };
    let mut obj = match InMemDicomObject::read_dataset_with_ts(data, ts) {
        Ok(obj) => obj,
        Err(e) => return unreadable(format!("cannot parse data set: {e}")),
    };
    let sop_instance_uid = command
        .sop_instance_uid
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| text(&obj, tags::SOP_INSTANCE_UID))
        .unwrap_or_default();
    let sop_class_uid = command
        .sop_class_uid
        .clone()
        .or_else(|| text(&obj, tags::SOP_CLASS_UID))
        .unwrap_or_default();
    if let Err(rejection) = route.process(&mut obj, &today_utc()) {
        return StoreResult::failed(
            StoreOutcome::RejectedByRules,
            rejection.status,
            rejection.comment,
        );
    }
    // A morph may give the instance a new UID (a de-identifying route): the router
    // stores and forwards what it made, under the UID it now carries, so the forwarded
    // C-STORE's command names the same instance as its data set.
    let sop_instance_uid = text(&obj, tags::SOP_INSTANCE_UID)
        .filter(|u| !u.is_empty())
        .unwrap_or(sop_instance_uid);
    // One allocation for the object header; the elements are not copied.
    let dataset = Arc::new(obj);
    let mut outcome = None;
    if route.delivery.store {
        let duplicate = match route.duplicates {
            DuplicatePolicy::KeepFirst => DuplicateAction::Keep,
            DuplicatePolicy::Overwrite => DuplicateAction::Overwrite,
            DuplicatePolicy::Reject(_) => DuplicateAction::Refuse,
        };
        let view: &InMemDicomObject = &dataset;
        let spooled = match &shared.spool {
            Some(spool) => match spool.write(view, &sop_class_uid, &sop_instance_uid, ts_uid) {
                Ok(path) => Some(path),
                Err(comment) => {
                    return StoreResult::failed(
                        StoreOutcome::Unreadable,
                        Status::OUT_OF_RESOURCES,
                        comment,
                    );
                }
            },
            None => None,
        };
        let stored_copy =
            (config.store_mode == StoreMode::Full && spooled.is_none()).then(|| dataset.clone());
        let inserted = shared.store.write().insert(Arrival {
            dataset: view,
            shared: stored_copy,
            sop_instance_uid: &sop_instance_uid,
            sop_class_uid: &sop_class_uid,
            transfer_syntax_uid: ts_uid,
            spooled: spooled.clone(),
            route: route_index as u16,
            duplicate,
            stable_study_time: route.stable_study_time,
        });
        if let Some(path) = &spooled
            && !matches!(
                inserted,
                Ok(InsertOutcome::Stored | InsertOutcome::Overwritten)
            )
        {
            // Not kept: the file is nobody's.
            let _ = std::fs::remove_file(path);
        }
        outcome = Some(match inserted {
            Ok(InsertOutcome::Stored) => StoreOutcome::Stored,
            Ok(InsertOutcome::Overwritten) => StoreOutcome::Overwritten,
            Ok(InsertOutcome::DuplicateKept) => StoreOutcome::DuplicateKept,
            Ok(InsertOutcome::DuplicateRefused) => {
                let status = match route.duplicates {
                    DuplicatePolicy::Reject(status) => status,
                    _ => Status::DUPLICATE_SOP_INSTANCE,
                };
                return StoreResult::failed(
                    StoreOutcome::DuplicateRefused,
                    status,
                    format!("duplicate SOP instance {sop_instance_uid}"),
                );
            }
            Err(missing) => {
                return StoreResult::failed(
                    StoreOutcome::Unreadable,
                    Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                    format!("{} missing", missing.0),
                );
            }
        });
    }
    let forward_this = shared.forward_queues[route_index].is_some()
        && outcome != Some(StoreOutcome::DuplicateKept);
    StoreResult {
        status: overridden.unwrap_or(Status::SUCCESS),
        comment: None,
        outcome,
        forward: forward_this.then(|| ForwardItem {
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid: ts_uid.to_string(),
            dataset,
            attempts: 0,
            faults: ForwardFaults::default(),
            not_before: None,
        }),
    }
}
