//! Getting back what arrived: C-MOVE and C-GET clients for dicom-auto.
//!
//! When a router's destination is a hospital's PACS, no sink of ours can stand in for
//! it: the only way to see what the PACS really holds is to ask for it back. This
//! crate runs the two Query/Retrieve operations that do (PS3.4 C.4.2 and C.4.3):
//!
//! - **C-MOVE** ([`Method::Move`]): the SCP opens its own association to a move
//!   destination (an AE title it knows, such as dicom-auto's sink) and stores the
//!   instances there; we see its sub-operation counts.
//! - **C-GET** ([`Method::Get`]): the SCP sends the instances back on our
//!   association as C-STORE sub-operations, which a [`Receiver`] answers (SCP/SCU
//!   role selection is offered for every storage class proposed).
//!
//! A [`RetrieveRequest`] names the patient, studies, series or instances; the
//! [`RetrieveOptions`] say whom to ask (a `dimse` SCU association), under which
//! models, and when to give up: a **stall timeout** (counts unchanged: an SCP
//! answering "pending" forever), a **deadline**, a **sub-operation limit**, each
//! ending the retrieve with a C-CANCEL, and a grace period after which an SCP that
//! ignores the C-CANCEL has its association aborted. No wait is unbounded.
//!
//! Every retrieve ends in a [`RetrieveOutcome`]: the SCP's own account (final
//! status, remaining/completed/failed/warning counts, the failed instances it names)
//! beside ours (instances received, those our receiver refused, why we cancelled)
//! and the [`Anomaly`]s seen on the way (an instance never asked for, one sent
//! twice, counts going backwards, counts disagreeing with what arrived). A retrieve
//! that fails is an outcome to report, not an error: [`RetrieveError`] is only for a
//! retrieve that could not be run.
//!
//! ```no_run
//! use dimse::{PeerAddress, ScuOptions};
//! use retrieve::{Method, RetrieveOptions, RetrieveRequest, Retriever};
//!
//! let scu = ScuOptions::new(
//!     PeerAddress::new("pacs.example", 104),
//!     "DICOM_AUTO".parse()?,
//!     "PACS".parse()?,
//! );
//! let options = RetrieveOptions::new(scu).stall_timeout(std::time::Duration::from_secs(30));
//! let mut retriever = Retriever::new(options, Method::Move { destination: "DICOM_AUTO_SINK".parse()? });
//! let outcome = retriever.retrieve(&RetrieveRequest::study("1.2.3"), &mut retrieve::Discard)?;
//! assert!(outcome.is_complete(), "{}", outcome.summary());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod error;
mod options;
mod outcome;
mod receiver;
mod request;

pub use client::Retriever;
pub use error::RetrieveError;
pub use options::{
    COMMON_STORAGE_SOP_CLASSES, MAX_STORAGE_SOP_CLASSES, Method, RetrieveOptions,
    STORAGE_TRANSFER_SYNTAXES,
};
pub use outcome::{Anomaly, CancelReason, RetrieveOutcome};
pub use receiver::{Discard, Progress, ReceivedInstance, Receiver};
pub use request::RetrieveRequest;
