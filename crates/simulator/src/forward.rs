//! Store-and-forward: a queue per forwarding route and a thread that delivers it.
//!
//! An instance answered with success is either delivered or still in the queue:
//! failed attempts go back to the front of the queue and are retried with
//! exponential backoff, until delivered, until the route's `max_attempts` (then it
//! is counted as failed and listed, never silently dropped), or until shutdown
//! (then it is still counted as queued).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use dicom_dictionary_std::uids;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dimse::{PeerAddress, Timeouts};
use parking_lot::Mutex;

use crate::rules::ForwardDestination;
use crate::scu::{ScuError, ScuOptions, StoreScu};
use crate::stats::Counters;

/// Instances sent per association: enough to amortise the handshake, few enough
/// that one bad instance does not hold many others back.
const BATCH: usize = 32;

/// An instance waiting to be forwarded.
#[derive(Debug)]
pub(crate) struct ForwardItem {
    pub(crate) sop_class_uid: String,
    pub(crate) sop_instance_uid: String,
    pub(crate) transfer_syntax_uid: String,
    pub(crate) dataset: Arc<InMemDicomObject>,
    pub(crate) attempts: u32,
}

/// An instance the forwarder gave up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedForward {
    /// The route.
    pub route: String,
    /// The instance.
    pub sop_instance_uid: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
}

pub(crate) struct ForwardContext {
    pub(crate) route_index: usize,
    pub(crate) route_name: String,
    pub(crate) destination: ForwardDestination,
    pub(crate) counters: Arc<Mutex<Counters>>,
    pub(crate) failed: Arc<Mutex<Vec<FailedForward>>>,
    pub(crate) shutdown: Arc<AtomicBool>,
    pub(crate) io_timeout: Duration,
}

/// Starts the forwarding thread of one route.
pub(crate) fn spawn(
    context: ForwardContext,
) -> std::io::Result<(Sender<ForwardItem>, thread::JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let handle = thread::Builder::new()
        .name(format!("forward-{}", context.route_name))
        .spawn(move || run(context, rx))?;
    Ok((tx, handle))
}

fn run(ctx: ForwardContext, rx: Receiver<ForwardItem>) {
    let mut backlog: VecDeque<ForwardItem> = VecDeque::new();
    let mut backoff = ctx.destination.retry_initial;
    while !ctx.shutdown.load(Ordering::Acquire) {
        if backlog.is_empty() {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(item) => backlog.push_back(item),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        while backlog.len() < BATCH {
            match rx.try_recv() {
                Ok(item) => backlog.push_back(item),
                Err(_) => break,
            }
        }
        let batch: Vec<ForwardItem> = backlog.drain(..backlog.len().min(BATCH)).collect();
        let (undelivered, error) = deliver(&ctx, batch);
        if undelivered.is_empty() {
            backoff = ctx.destination.retry_initial;
            continue;
        }
        let error = error.unwrap_or_else(|| "not delivered".into());
        let mut retry = Vec::new();
        {
            let mut counters = ctx.counters.lock();
            let stats = &mut counters.routes[ctx.route_index].forwarding;
            for mut item in undelivered {
                item.attempts += 1;
                stats.failed_attempts += 1;
                if ctx
                    .destination
                    .max_attempts
                    .is_some_and(|max| item.attempts >= max)
                {
                    stats.failed += 1;
                    ctx.failed.lock().push(FailedForward {
                        route: ctx.route_name.clone(),
                        sop_instance_uid: item.sop_instance_uid.clone(),
                        attempts: item.attempts,
                        last_error: error.clone(),
                    });
                } else {
                    retry.push(item);
                }
            }
        }
        // Back to the front, in their original order.
        for item in retry.into_iter().rev() {
            backlog.push_front(item);
        }
        sleep_unless_shutdown(&ctx.shutdown, backoff);
        backoff = (backoff * 2).min(ctx.destination.retry_max);
    }
    // Whatever is left stays counted as queued: enqueued - delivered - failed.
}

fn sleep_unless_shutdown(shutdown: &AtomicBool, total: Duration) {
    let step = Duration::from_millis(20);
    let mut left = total;
    while !left.is_zero() && !shutdown.load(Ordering::Acquire) {
        let nap = left.min(step);
        thread::sleep(nap);
        left -= nap;
    }
}

/// The waits of a forwarding association: `SimulatorConfig::forward_timeout` for
/// negotiation, each response and each write; the connect capped at the SCU's
/// default 5 s so that a destination that is down fails an attempt fast and the
/// backoff, not the socket, paces the retries.
fn forward_timeouts(timeout: Duration) -> Timeouts {
    Timeouts {
        connect: ScuOptions::default().timeouts.connect.min(timeout),
        ..Timeouts::all(timeout)
    }
}

fn is_native(ts: &str) -> bool {
    matches!(
        ts,
        uids::EXPLICIT_VR_LITTLE_ENDIAN | uids::IMPLICIT_VR_LITTLE_ENDIAN
    )
}

/// Sends a batch on one association; returns what was not delivered and why.
fn deliver(ctx: &ForwardContext, batch: Vec<ForwardItem>) -> (Vec<ForwardItem>, Option<String>) {
    let mut wanted: BTreeMap<(String, String), ()> = BTreeMap::new();
    for item in &batch {
        wanted.insert(
            (item.sop_class_uid.clone(), item.transfer_syntax_uid.clone()),
            (),
        );
    }
    let contexts: Vec<(String, Vec<String>)> = wanted
        .into_keys()
        .map(|(class, ts)| {
            let mut syntaxes = vec![ts.clone()];
            if is_native(&ts) {
                for alt in [
                    uids::EXPLICIT_VR_LITTLE_ENDIAN,
                    uids::IMPLICIT_VR_LITTLE_ENDIAN,
                ] {
                    if alt != ts {
                        syntaxes.push(alt.to_string());
                    }
                }
            }
            (class, syntaxes)
        })
        .collect();
    let destination = &ctx.destination;
    let options = ScuOptions {
        calling_ae_title: destination.calling_ae_title.clone(),
        called_ae_title: destination.called_ae_title.clone(),
        timeouts: forward_timeouts(ctx.io_timeout),
        security: destination.security.clone(),
        ..ScuOptions::default()
    };
    let peer = PeerAddress::new(destination.host.clone(), destination.port);
    let mut scu = match StoreScu::connect(&peer, &options, &contexts) {
        Ok(scu) => scu,
        Err(e) => return (batch, Some(e.to_string())),
    };
    {
        let mut counters = ctx.counters.lock();
        let stats = &mut counters.routes[ctx.route_index].forwarding;
        stats.associations += 1;
        stats.tls_associations += u64::from(scu.tls_session().is_some());
    }
    let mut undelivered = Vec::new();
    let mut last_error = None;
    let mut items = batch.into_iter();
    for item in items.by_ref() {
        match send_one(&mut scu, &item) {
            Ok(()) => {
                ctx.counters.lock().routes[ctx.route_index]
                    .forwarding
                    .delivered += 1;
            }
            Err((e, association_broken)) => {
                last_error = Some(e);
                undelivered.push(item);
                if association_broken {
                    break;
                }
            }
        }
    }
    undelivered.extend(items);
    if last_error.is_none() {
        let _ = scu.release();
    } else {
        scu.abort();
    }
    (undelivered, last_error)
}

/// Sends one instance; the error says whether the association is still usable.
fn send_one(scu: &mut StoreScu, item: &ForwardItem) -> Result<(), (String, bool)> {
    let (context_id, ts_uid) = scu
        .context_for(&item.sop_class_uid, &item.transfer_syntax_uid, |ts| {
            is_native(&item.transfer_syntax_uid) && is_native(ts)
        })
        .map_err(|e| (e.to_string(), false))?;
    let ts = TransferSyntaxRegistry
        .get(&ts_uid)
        .ok_or_else(|| (format!("unknown transfer syntax {ts_uid}"), false))?;
    let mut data = Vec::new();
    item.dataset
        .write_dataset_with_ts(&mut data, ts)
        .map_err(|e| {
            (
                format!("cannot encode {}: {e}", item.sop_instance_uid),
                false,
            )
        })?;
    match scu.store(
        context_id,
        &item.sop_class_uid,
        &item.sop_instance_uid,
        &data,
    ) {
        Ok(rsp) if rsp.status.is_delivered() => Ok(()),
        Ok(rsp) => Err((format!("destination answered {}", rsp.status), false)),
        Err(e @ ScuError::Dimse { .. }) => Err((e.to_string(), true)),
        Err(e) => Err((e.to_string(), false)),
    }
}
