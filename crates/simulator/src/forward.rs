//! Store-and-forward: a queue per forwarding route and a thread that delivers it.
//!
//! An instance answered with success is either delivered or still in the queue:
//! failed attempts go back to the front of the queue and are retried with
//! exponential backoff, until delivered, until the route's `max_attempts` (then it
//! is counted as failed and listed, never silently dropped), or until shutdown
//! (then it is still counted as queued). The exception is fault injection: the
//! silent faults of a [`FaultPlan`](crate::FaultPlan) drop, duplicate, corrupt, alter
//! or hold back forwarded instances, each listed as a [`SilentFault`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use dicom_core::value::Value;
use dicom_core::{PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dimse::{PeerAddress, Timeouts};
use parking_lot::Mutex;

use crate::faults::{AttributeAlteration, ForwardFaults};
use crate::rules::ForwardDestination;
use crate::scu::{ScuError, ScuOptions, StoreScu};
use crate::stats::Counters;
use crate::values::put_text;

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
    /// The silent faults chosen for it when it was queued; after [`admit`], only
    /// those that actually changed the copy sent are still set.
    pub(crate) faults: ForwardFaults,
    /// Not sent before this (the `forward_delay` fault).
    pub(crate) not_before: Option<Instant>,
}

/// What a silent fault did to a forwarded instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SilentFaultKind {
    /// Discarded: never sent to the destination.
    Dropped,
    /// Delivered twice (two successful C-STOREs of the same data set).
    Duplicated,
    /// Delivered with bytes of its Pixel Data flipped.
    PixelsCorrupted,
    /// Delivered with the `alter_attribute` attribute changed or removed.
    AttributeAltered,
}

/// A forwarded instance a silent fault hit, for tests that check what a
/// destination should have noticed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilentFault {
    /// What was done.
    pub kind: SilentFaultKind,
    /// The route.
    pub route: String,
    /// The instance.
    pub sop_instance_uid: String,
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
    pub(crate) silent_faults: Arc<Mutex<Vec<SilentFault>>>,
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
                Ok(item) => backlog.extend(admit(&ctx, item)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        while backlog.len() < BATCH {
            match rx.try_recv() {
                Ok(item) => backlog.extend(admit(&ctx, item)),
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if let Some(hold) = backlog
            .front()
            .and_then(|item| item.not_before)
            .filter(|t| *t > now)
        {
            // Short naps: the queue keeps filling and shutdown is noticed meanwhile.
            sleep_unless_shutdown(&ctx.shutdown, (hold - now).min(Duration::from_millis(100)));
            continue;
        }
        let ready = backlog
            .iter()
            .take(BATCH)
            .take_while(|item| item.not_before.is_none_or(|t| t <= now))
            .count();
        if ready == 0 {
            continue;
        }
        let batch: Vec<ForwardItem> = backlog.drain(..ready).collect();
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
    // Whatever is left stays counted as queued:
    // enqueued - delivered - failed - dropped_by_fault.
}

/// Applies the silent faults chosen for a newly received item: drops it (`None`),
/// or makes the copy the destination gets (cloned: the simulator's own store keeps
/// the good instance).
fn admit(ctx: &ForwardContext, mut item: ForwardItem) -> Option<ForwardItem> {
    if item.faults.drop {
        ctx.counters.lock().routes[ctx.route_index]
            .forwarding
            .dropped_by_fault += 1;
        record(ctx, SilentFaultKind::Dropped, &item);
        return None;
    }
    if item.faults.corrupt_pixels || item.faults.alter.is_some() {
        let mut copy = (*item.dataset).clone();
        item.faults.corrupt_pixels = item.faults.corrupt_pixels && corrupt_pixels(&mut copy);
        if let Some(alteration) = item.faults.alter.take()
            && alter(&mut copy, &alteration)
        {
            item.faults.alter = Some(alteration);
        }
        item.dataset = Arc::new(copy);
    }
    Some(item)
}

fn record(ctx: &ForwardContext, kind: SilentFaultKind, item: &ForwardItem) {
    ctx.silent_faults.lock().push(SilentFault {
        kind,
        route: ctx.route_name.clone(),
        sop_instance_uid: item.sop_instance_uid.clone(),
    });
}

/// XORs a few bytes in the middle of the pixel data (native), or in the middle of
/// the first fragment (encapsulated: its first and last bytes, which codecs check
/// for markers, are kept). Returns whether anything changed.
pub(crate) fn corrupt_pixels(obj: &mut InMemDicomObject) -> bool {
    const FLIPPED: usize = 4;
    let mut changed = false;
    obj.update_value(tags::PIXEL_DATA, |value| match value {
        Value::PixelSequence(sequence) => {
            if let Some(fragment) = sequence.fragments_mut().first_mut() {
                changed = flip_middle(&mut fragment[..], FLIPPED);
            }
        }
        Value::Primitive(primitive) => {
            changed = match primitive {
                PrimitiveValue::U8(bytes) => flip_middle(&mut bytes[..], FLIPPED),
                PrimitiveValue::U16(words) => flip_middle(&mut words[..], FLIPPED / 2),
                PrimitiveValue::Empty => false,
                other => {
                    // Rare (OF, OD, OL pixel data): rewritten as bytes of the same length.
                    let mut bytes = other.to_bytes().into_owned();
                    let flipped = flip_middle(&mut bytes, FLIPPED);
                    *other = PrimitiveValue::U8(bytes.into());
                    flipped
                }
            };
        }
        Value::Sequence(_) => {}
    });
    changed
}

/// Inverts up to `count` items around the middle of `items`, never the first or
/// the last one.
fn flip_middle<T>(items: &mut [T], count: usize) -> bool
where
    T: Copy + std::ops::Not<Output = T>,
{
    if items.len() < 3 {
        return false;
    }
    let inner = items.len() - 2;
    let count = count.min(inner);
    let start = 1 + (inner - count) / 2;
    for item in &mut items[start..start + count] {
        *item = !*item;
    }
    true
}

/// Sets or removes the attribute; returns whether the data set changed.
pub(crate) fn alter(obj: &mut InMemDicomObject, alteration: &AttributeAlteration) -> bool {
    let tag = alteration.attribute.tag;
    match &alteration.value {
        Some(value) => {
            put_text(obj, tag, alteration.attribute.vr_or(VR::LO), value);
            true
        }
        None => obj.remove_element(tag),
    }
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
                // The duplicate only counts when the destination took it too; a
                // failed second copy is not retried (the instance was delivered).
                let duplicated = item.faults.duplicate && send_one(&mut scu, &item).is_ok();
                {
                    let mut counters = ctx.counters.lock();
                    let stats = &mut counters.routes[ctx.route_index].forwarding;
                    stats.delivered += 1;
                    stats.duplicated_by_fault += u64::from(duplicated);
                    stats.corrupted_by_fault += u64::from(item.faults.corrupt_pixels);
                    stats.altered_by_fault += u64::from(item.faults.alter.is_some());
                }
                let kinds = [
                    (duplicated, SilentFaultKind::Duplicated),
                    (item.faults.corrupt_pixels, SilentFaultKind::PixelsCorrupted),
                    (
                        item.faults.alter.is_some(),
                        SilentFaultKind::AttributeAltered,
                    ),
                ];
                for (_, kind) in kinds.into_iter().filter(|(hit, _)| *hit) {
                    record(ctx, kind, &item);
                }
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

#[cfg(test)]
mod tests {
    use dicom_core::value::PixelFragmentSequence;
    use dicom_core::{DataElement, Tag};
    use dimse::Attribute;

    use super::*;

    fn with_pixels(value: Value<InMemDicomObject, Vec<u8>>, vr: VR) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(tags::PIXEL_DATA, vr, value));
        obj
    }

    fn pixel_value(obj: &InMemDicomObject) -> &Value<InMemDicomObject, Vec<u8>> {
        obj.get(tags::PIXEL_DATA).unwrap().value()
    }

    #[test]
    fn native_pixels_are_flipped_in_the_middle() {
        let mut obj = with_pixels(PrimitiveValue::from(vec![0u8; 16]).into(), VR::OB);
        assert!(corrupt_pixels(&mut obj));
        let bytes = pixel_value(&obj).to_bytes().unwrap().into_owned();
        assert_eq!(bytes.len(), 16);
        assert_eq!(bytes.iter().filter(|b| **b == 0xFF).count(), 4);
        assert_eq!((bytes[0], bytes[15]), (0, 0));

        let mut obj = with_pixels(PrimitiveValue::U16(vec![0u16; 8].into()).into(), VR::OW);
        assert!(corrupt_pixels(&mut obj));
        let Value::Primitive(PrimitiveValue::U16(words)) = pixel_value(&obj) else {
            panic!("OW stays words");
        };
        assert_eq!(words.len(), 8);
        assert_eq!(words.iter().filter(|w| **w == 0xFFFF).count(), 2);
    }

    #[test]
    fn encapsulated_pixels_keep_the_first_fragment_length_and_ends() {
        let fragment: Vec<u8> = vec![0xFF, 0xD8, 1, 2, 3, 4, 5, 6, 0xFF, 0xD9];
        let value = Value::PixelSequence(PixelFragmentSequence::new(
            Vec::<u32>::new(),
            vec![fragment.clone(), vec![9; 4]],
        ));
        let mut obj = with_pixels(value, VR::OB);
        assert!(corrupt_pixels(&mut obj));
        let fragments = pixel_value(&obj).fragments().unwrap();
        let first = &fragments[0];
        assert_eq!(first.len(), fragment.len());
        assert_eq!(&first[..2], &fragment[..2]);
        assert_eq!(&first[8..], &fragment[8..]);
        assert_ne!(first, &fragment);
        assert_eq!(fragments[1], vec![9; 4], "only the first fragment");
    }

    #[test]
    fn without_pixel_data_nothing_is_corrupted() {
        let mut obj = InMemDicomObject::new_empty();
        assert!(!corrupt_pixels(&mut obj));
        let mut tiny = with_pixels(PrimitiveValue::from(vec![1u8, 2]).into(), VR::OB);
        assert!(!corrupt_pixels(&mut tiny), "nothing between first and last");
    }

    #[test]
    fn an_alteration_sets_or_removes_and_says_whether_it_changed_anything() {
        let attribute = Attribute::parse("InstitutionName").unwrap();
        let mut obj = InMemDicomObject::new_empty();
        let set = AttributeAlteration {
            every_nth: 1,
            attribute,
            value: Some("ALTERED".into()),
        };
        assert!(alter(&mut obj, &set));
        let element = obj.get(Tag(0x0008, 0x0080)).unwrap();
        assert_eq!(element.vr(), VR::LO);
        assert_eq!(element.to_str().unwrap().trim_end(), "ALTERED");
        let remove = AttributeAlteration { value: None, ..set };
        assert!(alter(&mut obj, &remove));
        assert!(!alter(&mut obj, &remove), "already absent");
    }
}
