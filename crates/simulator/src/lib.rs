//! An embedded DICOM router that stands in for Laurel Bridge Compass.
//!
//! The simulator is a real DICOM SCP speaking real DICOM over TCP and, optionally,
//! TLS on a second port ([`SimulatorConfig::tls`]; associations read and answered
//! by `dimse::scp`, one thread per association). It behaves like a Compass
//! configured with routes:
//!
//! - **Routes by called AE title.** Each route of the [`Rules`] has a called AE
//!   title; an unknown one is refused (A-ASSOCIATE-RJ permanent, service user,
//!   reason 7), a calling AE title missing from the route's allow-list too
//!   (reason 3), and one association over [`SimulatorConfig::max_associations`]
//!   transiently (service provider, reason 2). A route may require a user
//!   identity ([`rules::IdentityPolicy`]: users and passcodes, tokens): without an
//!   acceptable one the association is refused (permanent, service user, reason 1).
//! - **Services.** C-ECHO; C-STORE of every storage SOP class; C-FIND, C-MOVE and
//!   C-GET (Study Root and Patient Root, PATIENT/STUDY/SERIES/IMAGE) with C-CANCEL,
//!   answered on every route's AE title and on an optional query-only AE title.
//!   C-MOVE sends to the rules' [`MoveDestination`]s, C-GET on the requesting
//!   association (SCP role granted); both report pending counts, `B000`/`A702`
//!   with the failed SOP instance list, `A801` for an unknown destination. The
//!   instances come from the store (full mode) or from a spool folder
//!   ([`SimulatorConfig::spool_dir`], which load mode needs to be retrievable).
//! - **Storage Commitment** (Push Model, PS3.4 Annex J) on the same AE titles: the
//!   N-ACTION is checked (failure statuses `0110`, `0112`, `0115`, `0118`, `0123`)
//!   and answered at once, then an N-EVENT-REPORT (event type 1 or 2, failure
//!   reasons `0112` not stored, `0119` another SOP class) goes on the same
//!   association or, with [`CommitmentReport::NewAssociation`], on one opened to
//!   the requestor's [`MoveDestination`]; counted in [`CommitmentStats`].
//! - **Rules per route** ([`rules`]): validation (blank or invalid StudyDate,
//!   AccessionNumber format...) that refuses with a configurable status, morphing
//!   (set, copy, prepend, append, regex replace, remove under conditions), a
//!   duplicate SOP Instance UID policy, delivery to the built-in store, to an
//!   external C-STORE SCP (queued and retried), or both, and a stable-study delay
//!   before C-FIND sees a study. [`Rules::default_rules`] models the old suite's
//!   three routes (`LB-HTM-GI`, `LB-HTM-OPH`, `LB-HTM-ORTHO`).
//! - **Fault injection** ([`FaultPlan`]), from the rules file or at run time:
//!   response delays, status overrides, aborts (after N stores or in the middle
//!   of a data set), idle timeouts, refused associations, stalled stores and
//!   queries, and the C-FIND misbehaviours of real PACS (a refused information
//!   model, no instance counts, the final status inside the last identifier),
//!   and the silent faults of a bad router on forwarding (dropped, duplicated,
//!   corrupted, altered or delayed instances, listed by
//!   [`SimulatorHandle::silent_faults`]), bad-day retrieves (pending forever,
//!   an extra instance, every Nth sub-operation failed) and commitments (never
//!   reported, every Nth instance failed, an unknown transaction UID).
//! - **Statistics** ([`SimulatorStats`]), the stored studies and the C-FIND requests
//!   received ([`SimulatorHandle::received_finds`]), on the handle.
//! - **Load mode** ([`StoreMode::Load`]) keeps only index entries (a few hundred
//!   bytes per instance) so long load runs hold memory bounded.
//!
//! # Example
//!
//! ```
//! use simulator::{Simulator, SimulatorConfig};
//!
//! let handle = Simulator::start(SimulatorConfig::default()).unwrap();
//! // Listening on 127.0.0.1 with a free port; send to LB-HTM-OPH@<addr>.
//! let addr = handle.addr();
//! assert!(addr.ip().is_loopback());
//! assert!(handle.rules().route_for("LB-HTM-OPH").is_some());
//! assert_eq!(handle.stats().stores.received, 0);
//! let stats = handle.shutdown();
//! assert_eq!(stats.associations.accepted, 0);
//! // Nothing listens any more.
//! assert!(std::net::TcpStream::connect(addr).is_err());
//! ```
//!
//! The `simulator` binary runs the same thing from the command line
//! (`cargo run -p simulator -- --rules my-rules.toml`; its flags and what it does
//! are [`cli`], for other binaries to reuse), and `simulator-bench`
//! measures its throughput. The rules file format is described in the crate's
//! README.

pub mod cli;
mod config;
mod error;
pub mod faults;
mod forward;
mod query;
pub mod rules;
mod scp;
pub mod scu;
mod spool;
mod stats;
mod store;
mod values;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dicom_object::InMemDicomObject;
use parking_lot::{Mutex, RwLock};

pub use config::{SimulatorConfig, StorageSopClasses, TlsListener, TransferSyntaxPolicy};
pub use error::{RulesError, SimulatorError};
pub use faults::{
    AttributeAlteration, FaultPlan, FindRefusal, ResponseDelay, StatusOverride, StoreSelection,
};
pub use forward::{FailedForward, SilentFault, SilentFaultKind};
pub use rules::{CommitmentReport, MoveDestination, Route, Rules};
pub use scp::ReceivedFind;
pub use stats::{
    AssociationStats, CommitmentStats, FindStats, ForwardStats, IdentityStats, RejectionReason,
    RetrieveStats, RouteStats, SimulatorStats, StoreStats, TlsStats, tls_failure_kind,
};
pub use store::StoreMode;

use crate::scp::Shared;
use crate::stats::Counters;
use crate::store::ImageStore;

/// Starts simulators. See the crate documentation.
#[derive(Debug)]
pub struct Simulator {
    _private: (),
}

impl Simulator {
    /// Binds the listening socket, starts the accept thread and one forwarding
    /// thread per forwarding route, and returns at once.
    pub fn start(config: SimulatorConfig) -> Result<SimulatorHandle, SimulatorError> {
        config.check()?;
        let spool = match &config.spool_dir {
            Some(dir) => {
                Some(
                    spool::Spool::open(dir).map_err(|e| SimulatorError::InvalidSetting {
                        name: "spool_dir",
                        value: dir.display().to_string(),
                        reason: format!("cannot create the folder: {e}"),
                    })?,
                )
            }
            None => None,
        };
        let (listener, addr) = bind(config.bind)?;
        let tls = match &config.tls {
            Some(tls) => {
                let server_config =
                    tls.options
                        .server_config()
                        .map_err(|source| SimulatorError::Tls {
                            flag: config::tls_flag(&source),
                            source: Box::new(source),
                        })?;
                let (listener, addr) = bind(tls.bind)?;
                Some((listener, addr, server_config))
            }
            None => None,
        };
        let shutdown = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Mutex::new(Counters::new(config.rules.routes.len())));
        let failed_forwards = Arc::new(Mutex::new(Vec::new()));
        let silent_faults = Arc::new(Mutex::new(Vec::new()));
        let mut forward_queues = Vec::with_capacity(config.rules.routes.len());
        let mut forward_threads = Vec::new();
        for (index, route) in config.rules.routes.iter().enumerate() {
            match &route.delivery.forward {
                Some(destination) => {
                    let context = forward::ForwardContext {
                        route_index: index,
                        route_name: route.name.clone(),
                        destination: destination.clone(),
                        counters: counters.clone(),
                        failed: failed_forwards.clone(),
                        silent_faults: silent_faults.clone(),
                        shutdown: shutdown.clone(),
                        io_timeout: config.forward_timeout,
                    };
                    let (queue, thread) = forward::spawn(context).map_err(|source| {
                        shutdown.store(true, Ordering::Release);
                        SimulatorError::Spawn {
                            what: "forwarding",
                            source,
                        }
                    })?;
                    forward_queues.push(Some(queue));
                    forward_threads.push(thread);
                }
                None => forward_queues.push(None),
            }
        }
        let faults = faults::FaultState::new(config.rules.faults.clone());
        let shared = Arc::new(Shared {
            config,
            store: RwLock::new(ImageStore::default()),
            counters,
            faults,
            shutdown,
            active: AtomicUsize::new(0),
            connections: Mutex::new(HashMap::new()),
            association_threads: Mutex::new(Vec::new()),
            panicked_threads: AtomicUsize::new(0),
            forward_queues,
            failed_forwards,
            silent_faults,
            received_finds: Mutex::new(VecDeque::new()),
            spool,
            next_connection_id: AtomicU64::new(0),
        });
        let spawn_accept = |name: &str, listener: TcpListener, tls| {
            let accept_shared = shared.clone();
            thread::Builder::new()
                .name(name.into())
                .spawn(move || accept_loop(accept_shared, listener, tls))
                .map_err(|source| {
                    shared.shutdown.store(true, Ordering::Release);
                    SimulatorError::Spawn {
                        what: "accept",
                        source,
                    }
                })
        };
        let accept_thread = spawn_accept("simulator-accept", listener, None)?;
        let (tls_addr, tls_accept_thread) = match tls {
            Some((listener, tls_addr, server_config)) => {
                match spawn_accept("simulator-accept-tls", listener, Some(server_config)) {
                    Ok(thread) => (Some(tls_addr), Some(thread)),
                    Err(error) => {
                        // Stop the plain listener started above.
                        let _ = TcpStream::connect_timeout(
                            &dimse::socket::reachable_address(addr),
                            Duration::from_secs(2),
                        );
                        let _ = accept_thread.join();
                        return Err(error);
                    }
                }
            }
            None => (None, None),
        };
        Ok(SimulatorHandle {
            addr,
            tls_addr,
            shared,
            accept_thread: Some(accept_thread),
            tls_accept_thread,
            forward_threads,
        })
    }
}

fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), SimulatorError> {
    let error = |source| SimulatorError::Bind { addr, source };
    let listener = TcpListener::bind(addr).map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    Ok((listener, local))
}

fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    for connection in listener.incoming() {
        if shared.shutdown.load(Ordering::Acquire) {
            break;
        }
        let stream = match connection {
            Ok(stream) => stream,
            Err(_) => {
                // Out of file descriptors and the like: let the pressure drop.
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let id = shared.next_connection_id.fetch_add(1, Ordering::AcqRel) + 1;
        let worker_shared = shared.clone();
        let worker_tls = tls.clone();
        let spawned = thread::Builder::new()
            .name(format!("association-{id}"))
            .spawn(move || scp::serve(worker_shared, stream, id, worker_tls));
        if let Ok(handle) = spawned {
            let mut threads = shared.association_threads.lock();
            let (finished, running): (Vec<_>, Vec<_>) =
                threads.drain(..).partition(|t| t.is_finished());
            *threads = running;
            threads.push(handle);
            drop(threads);
            join_counting_panics(&shared, finished);
        }
    }
    // The listener drops here: nothing listens after shutdown.
}

fn join_counting_panics(shared: &Shared, threads: Vec<JoinHandle<()>>) {
    for t in threads {
        if t.join().is_err() {
            shared.panicked_threads.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A running simulator. Dropping it shuts it down (see [`SimulatorHandle::shutdown`]).
#[derive(Debug)]
pub struct SimulatorHandle {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    tls_accept_thread: Option<JoinHandle<()>>,
    forward_threads: Vec<JoinHandle<()>>,
}

/// One study in the built-in store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StudySummary {
    /// StudyInstanceUID.
    pub study_instance_uid: String,
    /// PatientID.
    pub patient_id: Option<String>,
    /// PatientName.
    pub patient_name: Option<String>,
    /// AccessionNumber.
    pub accession_number: Option<String>,
    /// StudyDate.
    pub study_date: Option<String>,
    /// StudyDescription (after morphing).
    pub study_description: Option<String>,
    /// Modalities of its series, in order of arrival.
    pub modalities: Vec<String>,
    /// Series count.
    pub series: usize,
    /// Instance count.
    pub instances: usize,
    /// Whether C-FIND sees it yet (stable-study time elapsed).
    pub visible: bool,
}

/// One stored instance.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoredInstance {
    /// SOPInstanceUID.
    pub sop_instance_uid: String,
    /// SOPClassUID.
    pub sop_class_uid: String,
    /// StudyInstanceUID.
    pub study_instance_uid: String,
    /// SeriesInstanceUID.
    pub series_instance_uid: String,
    /// The route that received it.
    pub route: String,
    /// The indexed attributes by keyword: patient and study attributes as held for
    /// its study, series attributes as held for its series (both from the first
    /// instance of the study/series), instance attributes of this instance.
    pub attributes: BTreeMap<String, String>,
    /// The whole data set after morphing (full mode only).
    pub dataset: Option<Arc<InMemDicomObject>>,
}

impl SimulatorHandle {
    /// The address the simulator listens on (plain DICOM).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address of the TLS listener, when [`SimulatorConfig::tls`] asked for one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The rules in force.
    pub fn rules(&self) -> &Rules {
        &self.shared.config.rules
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &SimulatorConfig {
        &self.shared.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimulatorStats {
        let mut stats = self.shared.counters.lock().snapshot(
            self.shared
                .config
                .rules
                .routes
                .iter()
                .map(|r| r.name.as_str()),
        );
        let store = self.shared.store.read();
        stats.associations.panicked = self.shared.panicked_threads.load(Ordering::Acquire) as u64;
        stats.instances_in_store = store.len() as u64;
        stats.studies_in_store = store.studies.iter().filter(|s| !s.is_empty()).count() as u64;
        stats
    }

    /// The studies in the built-in store, in order of first arrival.
    pub fn studies(&self) -> Vec<StudySummary> {
        use dicom_dictionary_std::tags;
        let now = Instant::now();
        let store = self.shared.store.read();
        store
            .studies
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| StudySummary {
                study_instance_uid: s.uid.to_string(),
                patient_id: s.patient.get(tags::PATIENT_ID).map(str::to_string),
                patient_name: s.patient.get(tags::PATIENT_NAME).map(str::to_string),
                accession_number: s.attrs.get(tags::ACCESSION_NUMBER).map(str::to_string),
                study_date: s.attrs.get(tags::STUDY_DATE).map(str::to_string),
                study_description: s.attrs.get(tags::STUDY_DESCRIPTION).map(str::to_string),
                modalities: s.modalities().into_iter().map(str::to_string).collect(),
                series: s.series_count(),
                instances: s.instance_count(),
                visible: s.is_visible(now),
            })
            .collect()
    }

    /// Whether an instance with this SOP Instance UID is stored.
    pub fn contains_instance(&self, sop_instance_uid: &str) -> bool {
        self.shared.store.read().contains(sop_instance_uid)
    }

    /// A stored instance: its index attributes and, in full mode, its data set.
    pub fn stored_instance(&self, sop_instance_uid: &str) -> Option<StoredInstance> {
        let store = self.shared.store.read();
        let (study, series, instance) = store.locate(sop_instance_uid)?;
        Some(self.describe(study, series, instance))
    }

    /// Every stored instance, study by study (in order of first arrival), each
    /// study's series and each series' instances in order of arrival: what a test
    /// that did not choose the UIDs it sent inspects.
    pub fn stored_instances(&self) -> Vec<StoredInstance> {
        let store = self.shared.store.read();
        store
            .studies
            .iter()
            .flat_map(|study| {
                study.series.iter().flat_map(move |series| {
                    series
                        .instances
                        .iter()
                        .map(move |instance| self.describe(study, series, instance))
                })
            })
            .collect()
    }

    fn describe(
        &self,
        study: &store::StudyRecord,
        series: &store::SeriesRecord,
        instance: &store::InstanceRecord,
    ) -> StoredInstance {
        let mut attributes = BTreeMap::new();
        for (tag, value) in study
            .patient
            .iter()
            .chain(study.attrs.iter())
            .chain(series.attrs.iter())
        {
            attributes.insert(rules::tag_name(tag), value.to_string());
        }
        attributes.insert("SOPInstanceUID".into(), instance.uid.to_string());
        attributes.insert("SOPClassUID".into(), instance.sop_class_uid.to_string());
        if let Some(n) = &instance.instance_number {
            attributes.insert("InstanceNumber".into(), n.to_string());
        }
        StoredInstance {
            sop_instance_uid: instance.uid.to_string(),
            sop_class_uid: instance.sop_class_uid.to_string(),
            study_instance_uid: study.uid.to_string(),
            series_instance_uid: series.uid.to_string(),
            route: self.shared.config.rules.routes[instance.route as usize]
                .name
                .clone(),
            attributes,
            dataset: instance.dataset.clone(),
        }
    }

    /// The C-FIND requests received, oldest first: the latest 1,000, stalled and
    /// refused ones included (not those whose identifier could not be decoded).
    pub fn received_finds(&self) -> Vec<ReceivedFind> {
        self.shared.received_finds.lock().iter().cloned().collect()
    }

    /// Empties the built-in store (counters are kept).
    pub fn clear_store(&self) {
        self.shared.store.write().clear();
    }

    /// The faults in force.
    pub fn faults(&self) -> FaultPlan {
        self.shared.faults.plan()
    }

    /// Replaces the faults in force (counters of "every Nth" restart, a refusal
    /// period starts now). Applies to the next message on every association.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.faults.set(plan);
    }

    /// Stops injecting faults.
    pub fn clear_faults(&self) {
        self.shared.faults.set(FaultPlan::default());
    }

    /// Refuses new associations for `duration` from now (transient rejection,
    /// temporary congestion), without changing the other faults.
    pub fn refuse_associations_for(&self, duration: Duration) {
        self.shared.faults.refuse_for(duration);
    }

    /// Instances the forwarders gave up on (after the route's `max_attempts`).
    pub fn failed_forwards(&self) -> Vec<FailedForward> {
        self.shared.failed_forwards.lock().clone()
    }

    /// Forwarded instances the silent faults of the plan hit (dropped, duplicated,
    /// pixels corrupted, attribute altered), in the order it happened. Kept across
    /// [`set_faults`](Self::set_faults).
    pub fn silent_faults(&self) -> Vec<SilentFault> {
        self.shared.silent_faults.lock().clone()
    }

    /// Waits until every forwarding queue is empty (delivered, failed or dropped), up to
    /// `timeout`. Returns whether they are.
    pub fn wait_for_forwarding(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stats().forwarding.queued() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops accepting, ends open associations (each gets an A-ABORT when its
    /// thread can still write; after a grace period the sockets are closed), joins
    /// every thread, and returns the final counters. Instances still waiting to be
    /// forwarded stay counted as queued.
    pub fn shutdown(mut self) -> SimulatorStats {
        self.stop();
        self.stats()
    }

    fn stop(&mut self) {
        let Some(accept_thread) = self.accept_thread.take() else {
            return;
        };
        self.shared.shutdown.store(true, Ordering::Release);
        // Wake each blocking accept() with a connection of our own.
        let listeners = [(self.addr, Some(accept_thread))]
            .into_iter()
            .chain(self.tls_addr.zip(Some(self.tls_accept_thread.take())));
        for (addr, thread) in listeners {
            let woke = TcpStream::connect_timeout(
                &dimse::socket::reachable_address(addr),
                Duration::from_secs(2),
            )
            .is_ok();
            if let Some(thread) = thread
                && woke
            {
                let _ = thread.join();
            }
        }
        // Wake association threads blocked in a read: they send A-ABORT and end.
        for stream in self.shared.connections.lock().values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
        let threads: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.shared.association_threads.lock());
        let grace = Instant::now() + Duration::from_secs(2);
        while Instant::now() < grace && threads.iter().any(|t| !t.is_finished()) {
            thread::sleep(Duration::from_millis(5));
        }
        // Threads stuck writing to a peer that does not read: cut them off.
        for stream in self.shared.connections.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        join_counting_panics(&self.shared, threads);
        for t in self.forward_threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
