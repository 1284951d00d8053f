//! Delivery truth at the destination: what arrived, compared with what was sent.
//!
//! C-FIND can say that a study is visible with N instances. It cannot see a router that
//! corrupts pixel data, drops or rewrites an attribute no rule names, or delivers
//! something other than what it was given. This crate holds the parts of a destination
//! sink that judge each delivered instance against its send:
//!
//! - [`SentInstance`]: the original instance, decoded once and shared (`Arc`) by every
//!   send of it, plus each send's own values ([`Substitution`]: the fresh Study, Series
//!   and SOP Instance UIDs a load run writes per send).
//! - [`MatchBy`]: arrivals are matched by SOP Instance UID, or by a trace attribute the
//!   sender writes ([`TraceAttribute::dicom_auto`], a private element, creator
//!   `DICOM-AUTO TRACE` in group 0099, found by its creator whatever block it sits in).
//! - [`RoutePolicy`]: what a route may change, as data: attributes ([`AttributePath`],
//!   sequences and items included) with the value they must arrive with where it is
//!   known ([`AllowedChange`]), and whether the transfer syntax may change losslessly
//!   ([`TransferSyntaxPolicy`]; a lossy syntax is never silent).
//! - The comparison itself (element by element, sequences recursively, private elements
//!   included, values compared as DICOM values rather than bytes, pixel data after
//!   decoding with a PSNR when samples differ), which yields [`Difference`]s.
//!
//! Around them:
//!
//! - [`Ledger`]: every send is expected *before* it goes out ([`Ledger::expect`], then
//!   [`Ledger::answered`] with the router's answer), so an arrival always finds its
//!   send whichever comes first; [`Ledger::settle`] waits for what is in transit (up
//!   to a delivery timeout) and gives the [`DeliveryReport`]: the accounting
//!   ([`DeliveryCounts`], `sent = refused + delivered + undelivered + in transit`), the
//!   exact transit times (router's answer to arrival) in an HDR histogram with a
//!   per-second timeline, and the instances that went wrong, named
//!   ([`InstanceProblem`]). Originals are shared by all their sends and read from
//!   their files when an arrival needs them: a tracked send costs a few hundred bytes.
//! - [`Sink`]: the storage SCP the router delivers to ([`SinkOptions`]): its own AE
//!   title (others refused), every storage SOP class and private ones, any transfer
//!   syntax dicom-rs reads, every wait bounded; it answers each C-STORE at once and
//!   compares on its own threads, so it observes the router without steering it. A
//!   data set that does not parse is a corrupt delivery, never a panic.
//! - `sink-bench` (feature `bench`): matching and comparison throughput and memory per
//!   tracked send.
//!
//! ```
//! use sink::{AllowedChange, AttributePath, RoutePolicy, TraceAttribute};
//!
//! let policy = RoutePolicy::allowing([AllowedChange::to_value(
//!     "StudyDescription".parse::<AttributePath>()?,
//!     "Visual Fields (VF)",
//! )]);
//! assert_eq!(policy.allowed_changes.len(), 1);
//! assert_eq!(
//!     TraceAttribute::dicom_auto().to_string(),
//!     "(0099,xx01) of private creator \"DICOM-AUTO TRACE\""
//! );
//! # Ok::<(), sink::PathError>(())
//! ```

mod compare;
mod error;
mod ledger;
mod pixels;
mod policy;
mod report;
mod sent;
mod server;
mod trace;
mod values;

pub use compare::{Difference, DifferenceKind, compare_delivery};
pub use error::{PathError, SinkError};
pub use ledger::{
    Arrival, ExpectedSend, Ledger, LedgerOptions, OriginalId, OriginalSource, QUIET_PERIOD,
    TakenSend, Ticket,
};
pub use pixels::Geometry;
pub use policy::{
    AllowedChange, AttributePath, ExpectedValue, ItemSelector, PathStep, RoutePolicy,
    TransferSyntaxPolicy,
};
pub use report::{
    DeliveryCounts, DeliveryReport, InstanceProblem, MAX_PROBLEMS_KEPT, ProblemKind, TransitSecond,
};
pub use sent::{SentInstance, Substitution};
pub use server::{DEFAULT_SINK_AE_TITLE, Sink, SinkOptions, SinkStats};
pub use trace::{
    MatchBy, TRACE_BLOCK, TRACE_ELEMENT, TRACE_GROUP, TRACE_PRIVATE_CREATOR, TraceAttribute,
};
pub use values::MAX_SHOWN_CHARS;
