//! The feed: each send's data set in memory before the send needs it, within the
//! run's memory budget ([`LoadPlan::memory_budget`]).
//!
//! Instances [inspected](crate::PreparedInstance::inspect) from files have their data
//! set on disk. What happens to it depends on whether the run sends it more than once:
//!
//! - **Each instance at most once** (each file once, or fewer sends than files): every
//!   data set is **streamed**: the read-ahead threads prepare the data set of each
//!   upcoming send, in send-number order, at most [`READ_AHEAD_BYTES`] of them (or the
//!   budget, if smaller) ahead; a send holds its data set until its response is in. A
//!   file sent as it is is only opened (and its length checked) ahead: its bytes go
//!   from the file to the socket in chunks as the send goes out
//!   ([`dimse::write_fragments_from`]), so a 1 GB set goes out in a few megabytes, with
//!   no copy of it in memory (reading the page cache is then inside the send; a cold
//!   disk's reads too). With fresh UIDs a data set is read and encoded ahead, in memory.
//! - **Repeated sends, and the set fits the budget**: every data set becomes
//!   **resident**: read once (and with fresh UIDs encoded once) by the read-ahead in the
//!   order the run first needs them, while the first sends are already going out, and
//!   kept for the whole run.
//! - **Repeated sends of a larger set**: the first instances, up to the budget less the
//!   read-ahead's share, are resident; the others are streamed for every send. So a
//!   50 GB reference set runs within the budget.
//!
//! One data set larger than the read-ahead's share is let through alone.
//!
//! A send whose data is not ready when it is due waits for it. That wait is the
//! generator's, not the router's: each send reports when its data was ready, latency
//! is measured from the later of the intended start and that moment, and the wait is
//! reported as generator lag ([`GeneratorReport`]).
//!
//! [`LoadPlan::memory_budget`]: super::LoadPlan::memory_budget

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::Serialize;

use super::schedule::Schedule;
use crate::instance::{PreparedInstance, Variant};

/// Bytes of streamed data sets the read-ahead may hold (read ahead or being sent): at
/// 2 GB/s, 60 ms of sends to absorb a disk's hiccup; more would only cost memory.
const READ_AHEAD_BYTES: u64 = 128 << 20;

/// Sends the read-ahead may run ahead of the workers, whatever the budget: enough to
/// cover a disk hiccup at thousands of sends per second, few enough that a run ending
/// early reads little in vain.
const READ_AHEAD_SENDS: u64 = 256;

/// Threads reading ahead: a disk (or page cache) is not faster with more on a 2-core
/// machine, and each one parses when fresh UIDs need encoding.
const READERS: usize = 2;

/// A data set as read (or why it could not be), and when it was ready.
type Loaded = Result<(Arc<Variant>, Instant), String>;

/// How a run's data sets were held, and what waiting for them cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GeneratorReport {
    /// The memory budget for data sets, in bytes.
    pub memory_budget_bytes: u64,
    /// Instances whose data set stayed in memory for the whole run.
    pub resident_instances: u64,
    /// Their bytes.
    pub resident_bytes: u64,
    /// Instances read from disk for every send (the set did not fit the budget).
    pub streamed_instances: u64,
    /// Data sets the read-ahead read for streamed sends.
    pub streamed_reads: u64,
    /// Their bytes.
    pub streamed_bytes: u64,
    /// The most bytes of streamed data sets held at once (read ahead or being sent;
    /// a file sent as it is counts its data set's length, though only an open file and
    /// a chunk of it are in memory).
    pub peak_streamed_bytes: u64,
    /// Sends whose data set was not in memory when they were due: the generator, not
    /// the router, delayed them.
    pub lagged_sends: u64,
    /// How long those sends waited for their data set (latency excludes it).
    pub lag_ms: Option<metrics::LatencySummary>,
    /// Time from the start of the run to the first send's start (JSON:
    /// `first_send_after_ms`).
    #[serde(
        rename = "first_send_after_ms",
        serialize_with = "dimse::serde_duration::optional_millis"
    )]
    pub first_send_after: Option<Duration>,
}

/// A send's data set, held until the send is done.
pub(super) struct Lease<'f> {
    feed: &'f Feed<'f>,
    loaded: Loaded,
    /// Budget bytes given back on drop (streamed data sets only).
    reserved: u64,
}

impl Lease<'_> {
    /// The data set, or why it could not be read.
    pub(super) fn variant(&self) -> Result<&Arc<Variant>, &str> {
        match &self.loaded {
            Ok((variant, _)) => Ok(variant),
            Err(e) => Err(e),
        }
    }

    /// When the data set was ready (or found unreadable: now).
    pub(super) fn ready_at(&self) -> Instant {
        match &self.loaded {
            Ok((_, at)) => *at,
            Err(_) => Instant::now(),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.reserved > 0 {
            // The send is over: its data set (buffer or open file) goes first.
            self.loaded = Err(String::new());
            let mut state = self.feed.state.lock();
            state.held_bytes -= self.reserved;
            drop(state);
            self.feed.changed.notify_all();
        }
    }
}

struct StreamState {
    /// The next send number the read-ahead will look at.
    next_read: u64,
    /// One past the highest send number a worker has asked for.
    frontier: u64,
    /// Streamed data sets read ahead, by send number.
    ready: BTreeMap<u64, Loaded>,
    /// Bytes of streamed data sets reserved, read ahead or being sent.
    held_bytes: u64,
    peak_bytes: u64,
    reads: u64,
    read_bytes: u64,
    /// Resident instances not yet looked at by the read-ahead.
    resident_to_load: usize,
    done: bool,
}

/// The data sets of one run: resident ones, and the read-ahead of streamed ones.
pub(super) struct Feed<'a> {
    instances: &'a [Arc<PreparedInstance>],
    schedule: &'a Schedule<'a>,
    total: Option<u64>,
    /// Per instance: `Some` when it stays in memory for the run (filled on first use).
    resident: Vec<Option<OnceLock<Loaded>>>,
    streamed_instances: u64,
    resident_bytes: u64,
    budget: u64,
    /// What streamed data sets may hold at once.
    stream_budget: u64,
    state: Mutex<StreamState>,
    changed: Condvar,
}

impl<'a> Feed<'a> {
    /// Decides what stays resident (see the module's documentation): nothing when no
    /// instance is sent twice, everything when it fits `budget`, otherwise the
    /// instances in order up to the budget less the read-ahead's share.
    pub(super) fn new(
        instances: &'a [Arc<PreparedInstance>],
        schedule: &'a Schedule<'a>,
        total: Option<u64>,
        budget: u64,
    ) -> Self {
        let on_disk: u64 = instances
            .iter()
            .filter(|i| !i.is_resident())
            .map(|i| i.encoded_len() as u64)
            .sum();
        let repeats = total.is_none_or(|total| total > instances.len() as u64);
        let read_ahead = READ_AHEAD_BYTES.min(budget / 2);
        let (resident_limit, stream_budget) = if !repeats {
            (0, READ_AHEAD_BYTES.min(budget))
        } else if on_disk <= budget {
            (budget, 0)
        } else {
            (budget - read_ahead, read_ahead)
        };
        let mut kept = 0u64;
        let mut resident_bytes = 0u64;
        let mut streamed_instances = 0u64;
        let mut resident_to_load = 0usize;
        let resident = instances
            .iter()
            .map(|instance| {
                let len = instance.encoded_len() as u64;
                if instance.is_resident() {
                    resident_bytes += len;
                    let slot = OnceLock::new();
                    let _ = slot.set(load(instance));
                    Some(slot)
                } else if kept + len <= resident_limit {
                    kept += len;
                    resident_bytes += len;
                    resident_to_load += 1;
                    Some(OnceLock::new())
                } else {
                    streamed_instances += 1;
                    None
                }
            })
            .collect();
        Feed {
            instances,
            schedule,
            total,
            resident,
            streamed_instances,
            resident_bytes,
            budget,
            stream_budget,
            state: Mutex::new(StreamState {
                next_read: 0,
                frontier: 0,
                ready: BTreeMap::new(),
                held_bytes: 0,
                peak_bytes: 0,
                reads: 0,
                read_bytes: 0,
                resident_to_load,
                done: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// How many read-ahead threads the run needs (none when everything is in memory).
    pub(super) fn readers(&self) -> usize {
        let state = self.state.lock();
        if state.resident_to_load == 0 && self.streamed_instances == 0 {
            0
        } else {
            READERS
        }
    }

    /// One read-ahead thread: loads resident instances in order of first use and
    /// reads streamed data sets ahead of the sends, until the run is over.
    pub(super) fn read_ahead(&self) {
        loop {
            let mut state = self.state.lock();
            if state.done {
                return;
            }
            if state.resident_to_load == 0 && self.streamed_instances == 0 {
                return;
            }
            let k = state.next_read;
            if self.total.is_some_and(|total| k >= total) {
                return;
            }
            let index = self.schedule.instance_of(k);
            if let Some(slot) = &self.resident[index] {
                state.next_read += 1;
                drop(state);
                self.resident_load(slot, index);
                continue;
            }
            let size = self.instances[index].encoded_len() as u64;
            let fits = state.held_bytes == 0 || state.held_bytes + size <= self.stream_budget;
            if !fits || k >= state.frontier + READ_AHEAD_SENDS {
                self.changed.wait(&mut state);
                continue;
            }
            state.next_read += 1;
            state.held_bytes += size;
            state.peak_bytes = state.peak_bytes.max(state.held_bytes);
            drop(state);
            let loaded = self.instances[index]
                .primary_streamed()
                .map(|variant| (variant, Instant::now()))
                .map_err(|e| e.to_string());
            let mut state = self.state.lock();
            state.reads += 1;
            state.read_bytes += size;
            state.ready.insert(k, loaded);
            drop(state);
            self.changed.notify_all();
        }
    }

    /// The data set of send `k`, waiting for the read-ahead if it is not ready.
    pub(super) fn take(&self, k: u64) -> Lease<'_> {
        let index = self.schedule.instance_of(k);
        if let Some(slot) = &self.resident[index] {
            // A worker ahead of the read-ahead loads it itself; one that meets the
            // read-ahead loading it waits for that load.
            let loaded = self.resident_load(slot, index).clone();
            return Lease {
                feed: self,
                loaded,
                reserved: 0,
            };
        }
        let mut state = self.state.lock();
        if k >= state.frontier {
            state.frontier = k + 1;
            self.changed.notify_all();
        }
        loop {
            if let Some(loaded) = state.ready.remove(&k) {
                return Lease {
                    feed: self,
                    loaded,
                    reserved: self.instances[index].encoded_len() as u64,
                };
            }
            self.changed.wait(&mut state);
        }
    }

    /// The resident data set of instance `index`, loaded by whoever needs it first.
    fn resident_load<'s>(&self, slot: &'s OnceLock<Loaded>, index: usize) -> &'s Loaded {
        if let Some(loaded) = slot.get() {
            return loaded;
        }
        let mut loaded_here = false;
        let loaded = slot.get_or_init(|| {
            loaded_here = true;
            load(&self.instances[index])
        });
        if loaded_here {
            self.state.lock().resident_to_load -= 1;
        }
        loaded
    }

    /// Stops the read-ahead: the run is over.
    pub(super) fn finish(&self) {
        self.state.lock().done = true;
        self.changed.notify_all();
    }

    /// What the feed did, with the lag and first send the workers measured.
    pub(super) fn report(
        &self,
        lag: &metrics::LatencyHistogram,
        first_send_after: Option<Duration>,
    ) -> GeneratorReport {
        let state = self.state.lock();
        GeneratorReport {
            memory_budget_bytes: self.budget,
            resident_instances: self.resident.iter().filter(|r| r.is_some()).count() as u64,
            resident_bytes: self.resident_bytes,
            streamed_instances: self.streamed_instances,
            streamed_reads: state.reads,
            streamed_bytes: state.read_bytes,
            peak_streamed_bytes: state.peak_bytes,
            lagged_sends: lag.len(),
            lag_ms: lag.summary(),
            first_send_after,
        }
    }
}

fn load(instance: &PreparedInstance) -> Loaded {
    instance
        .primary()
        .map(|variant| (variant, Instant::now()))
        .map_err(|e| e.to_string())
}
