//! C-STORE client and load engine for dicom-auto: numbers a sign-off can rest on.
//!
//! # Single operations
//!
//! A [`DicomSender`] stands for one peer (address, calling and called AE titles,
//! timeouts). [`DicomSender::ping`] sends a C-ECHO and reports its round trip;
//! [`DicomSender::send_file`] and [`DicomSender::send_dataset`] store one instance and
//! return a [`SendOutcome`]: the DIMSE [`Status`](dimse::Status), its accounting class
//! ([`Outcome`]: success, warning, failure or **unknown**), the latency and the bytes.
//! Unknown means the request went out completely and then the association was aborted,
//! the connection lost or the DIMSE timeout expired: only a C-FIND can tell whether
//! the instance arrived. A rejected association is a typed error
//! ([`SenderError::Rejected`]) that says result, source and reason in words.
//!
//! Associations are the workspace's one SCU association ([`dimse::ScuAssociation`]):
//! every wait is bounded ([`dimse::Timeouts`]: connect, ACSE, DIMSE, write), and every
//! socket has `TCP_NODELAY` set (dicom-ul leaves Nagle on, which costs ~40 ms per
//! request on loopback).
//!
//! # Presentation contexts and conversions
//!
//! Each (SOP class, transfer syntax) pair is proposed in a context of its own, plus
//! Explicit and Implicit VR Little Endian per SOP class ([`Proposal`]). An instance
//! goes on the context with its own syntax, else on another uncompressed one
//! (re-encoded), else, when the peer takes only uncompressed data, decompressed to
//! Explicit VR Little Endian ([`choose_context`]). Conversions are made once per
//! instance and kept ([`PreparedInstance::variant`]).
//!
//! # Load runs
//!
//! [`run_load`] sends a [`LoadPlan`]: which [`PreparedInstance`]s, for how long or how
//! many ([`StopAfter`]), at which rate (open loop, latency measured from each send's
//! *intended* start: no coordinated omission) or as fast as possible (closed loop),
//! over how many associations and with which [`AssociationStrategy`].
//! Instances are encoded once; with fresh UIDs ([`UidStrategy::Fresh`])
//! every send carries new Study/Series/SOP Instance UIDs patched into the encoded
//! bytes, and each pass over the instances sends a fresh copy of every original study
//! (or parts of it, see [`StudyLayout`]): a fresh study never mixes patients or
//! original studies, so an archive files it as one study. The [`LoadReport`] has the [`metrics`] snapshot (counts, HDR-histogram
//! percentiles, timeline), association events, and one [`StudyRecord`] per study for
//! a later C-FIND check; `attempted = succeeded + warnings + failed + unknown` always
//! holds ([`LoadReport::is_consistent`]). Progress goes to a [`LoadObserver`]; the
//! library never prints.
//!
//! # Arrival-driven runs
//!
//! Hospital traffic is studies arriving at random times, each sent by its modality.
//! [`LoadPlan::arrivals`] takes the templates and a list of [`StudyArrival`]s (made
//! elsewhere, e.g. by a Poisson process): each study opens an association of its own
//! at its arrival, under its calling AE title (and its called AE title, if given),
//! sends its [`ImageArrival`]s one after another, each at `start + at + offset` and
//! never earlier, and releases it. [`LoadPlan::concurrency`] bounds the studies in
//! flight; a study that finds every association busy starts late, and its images'
//! latency is still measured from their intended times, so a router that falls behind
//! shows as growing latency, not as a generator that quietly slowed down. Every
//! arrival is a fresh study (new Study, Series and SOP Instance UIDs, one series per
//! [`ImageArrival::series`]), with one [`StudyRecord`] (and its group) in the report,
//! and [`LoadReport::groups`] gives each group's metrics ([`GroupReport`]), recorded
//! from the same sends as the run's, so they add up to it exactly. A study whose
//! association is refused fails each of its images (each tries to open one). With
//! [`StopAfter::Duration`] studies arriving after that time are not started.
//!
//! ```no_run
//! use std::time::Duration;
//! use dimse::AeTitle;
//! use sender::{DicomSender, ImageArrival, LoadPlan, NoObserver, StudyArrival, UidStrategy, prepare_paths, run_load};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sender = DicomSender::builder("127.0.0.1:11112").called_ae_title("ROUTER").build()?;
//! let templates = prepare_paths(&["dicom_samples/CT".into()], UidStrategy::Fresh)?.instances;
//! // A CT study of 40 images 50 ms apart every 20 s, from two scanners.
//! let studies = (0..30)
//!     .map(|i| {
//!         let scanner = AeTitle::new(if i % 2 == 0 { "CT01" } else { "CT02" }).unwrap();
//!         StudyArrival::new(Duration::from_secs(20 * i), scanner, "CT").images(
//!             (0..40)
//!                 .map(|n| ImageArrival::new(Duration::from_millis(50 * n), n as usize % templates.len(), 1))
//!                 .collect(),
//!         )
//!     })
//!     .collect();
//! let report = run_load(&sender, &LoadPlan::arrivals(templates, studies).concurrency(4), &NoObserver)?;
//! for group in &report.groups {
//!     println!("{}: {} studies, p95 {:?} ms", group.name, group.studies, group.metrics.p95_latency_ms());
//! }
//! # Ok(()) }
//! ```
//!
//! # Any size of dataset
//!
//! [`prepare_paths`] only inspects the head of each file, in parallel, so the first
//! send leaves within milliseconds whatever the size of the set. The run then holds
//! data sets within [`LoadPlan::memory_budget`] (512 MiB by default): a set sent
//! repeatedly that fits is read once, while the first sends go out, and kept; a larger
//! one, or any set sent once, is read ahead of its sends and let go after them. A send
//! that has to wait for the disk counts the wait as generator lag
//! ([`GeneratorReport`]), not as the router's latency.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use sender::{AssociationStrategy, DicomSender, LoadPlan, LoadProgress, StopAfter, UidStrategy, prepare_paths, run_load};
//!
//! # fn main() -> Result<(), sender::SenderError> {
//! let sender = DicomSender::builder("127.0.0.1:11112")
//!     .calling_ae_title("MODALITY")
//!     .called_ae_title("ROUTER")
//!     .dimse_timeout(Duration::from_secs(10))
//!     .build()?;
//!
//! let echo = sender.ping()?;
//! println!("C-ECHO round trip {:?}", echo.round_trip);
//!
//! let outcome = sender.send_file("dicom_samples/CT/IM0001")?;
//! println!("{:?} {:?} in {:?}", outcome.outcome, outcome.status, outcome.latency);
//!
//! // 100 images/s for a minute over 8 persistent associations, fresh UIDs.
//! let prepared = prepare_paths(&["dicom_samples".into()], UidStrategy::Fresh)?;
//! for (path, reason) in &prepared.skipped {
//!     eprintln!("skipped {}: {reason}", path.display());
//! }
//! let plan = LoadPlan::new(prepared.instances)
//!     .rate(Some(100.0))
//!     .concurrency(8)
//!     .stop_after(StopAfter::Duration(Duration::from_secs(60)))
//!     .association(AssociationStrategy::Persistent);
//! let report = run_load(&sender, &plan, &|p: &LoadProgress| {
//!     eprintln!("{} sent, {} errors", p.attempted, p.failed + p.unknown);
//! })?;
//! assert!(report.is_consistent());
//! println!("p95 {:?} ms", report.metrics.p95_latency_ms());
//! # Ok(()) }
//! ```

mod association;
mod byte_size;
pub mod cli;
mod contexts;
mod error;
mod instance;
mod layout;
mod load;
mod options;
mod outcome;
mod sender;
mod strategy;
mod uid;

pub use association::Session;
pub use byte_size::{BYTE_SIZE_FORMS, ByteSize};
pub use contexts::{
    ContextChoice, Conversion, MAX_PRESENTATION_CONTEXTS, Proposal, choose_context,
};
pub use error::SenderError;
pub use instance::{InstanceUids, PreparedInstance, Variant};
pub use layout::StudyLayout;
pub use load::{
    AssociationCounts, DEFAULT_MEMORY_BUDGET, GeneratorReport, GroupReport, ImageArrival,
    LoadObserver, LoadPlan, LoadProgress, LoadReport, LoadSummary, MAX_SHARDS, MAX_START_AHEAD,
    MAX_START_LATE, NoObserver, PlannedSend, PreparedFiles, SendWatch, Shard, StopAfter,
    StudyArrival, StudyRecord, TlsSessionCount, WatchToken, check_start_at, parse_start_at,
    prepare_paths, run_load,
};
pub use options::{DEFAULT_CALLED_AE_TITLE, DEFAULT_CALLING_AE_TITLE, SenderOptions};
pub use outcome::{EchoOutcome, Outcome, SendOutcome};
pub use sender::DicomSender;
pub use strategy::{AssociationStrategy, UidStrategy};
pub use uid::{FRESH_UID_LEN, FreshUid, MAX_SERIAL, UidLevel, UidRoot};
