//! Asking an archive to take responsibility: a Storage Commitment Push Model SCU
//! (PS3.4 Annex J) for dicom-auto.
//!
//! A C-STORE success means the archive received an instance; it does not promise
//! the archive will keep it. Storage Commitment is how a modality (or a load
//! tester standing in for one) asks for that promise, in two halves:
//!
//! 1. **N-ACTION** (action type 1, "Request Storage Commitment") on the well-known
//!    instance `1.2.840.10008.1.20.1.1`: a [`CommitmentRequest`] carries a
//!    Transaction UID (0008,1195) and a Referenced SOP Sequence (0008,1199) naming
//!    each instance by SOP Class and SOP Instance UID. The N-ACTION-RSP only says
//!    the request was *taken*: a failure status there (0x0122, 0x0213...) is the
//!    end of it.
//! 2. **N-EVENT-REPORT**, later, from the SCP, naming the same transaction: event
//!    type 1 when everything is committed, 2 when failures exist, with a Referenced
//!    SOP Sequence of what is committed and a Failed SOP Sequence (0008,1198) of
//!    what is not, each with a Failure Reason (0008,1197):
//!    0x0110 processing failure, 0x0112 no such object instance, 0x0119
//!    class-instance conflict, 0x0122 SOP class not supported, 0x0131 duplicate
//!    transaction UID, 0x0213 resource limitation ([`FailureReason`]).
//!
//! The report may come on the N-ACTION's own association, if we keep it open and
//! the SCP chooses to, or (what most archives do) on a **new association the SCP
//! opens to us**: we must then be listening, under an AE title and port the SCP is
//! configured with. That association usually asks, by SCP/SCU role selection, for
//! the SCP role of the Push Model (SCU=0, SCP=1), since the SCP is the one that
//! sends a request on it: the [`ReportListener`] grants what is asked, and takes a
//! report from an SCP that sends no role selection at all just as well.
//!
//! [`CommitmentOptions`] say whom to ask (a `dimse` SCU association: peer, AE
//! titles, timeouts, TLS, identity; the Push Model context is proposed here), how
//! long the report may take (`report_timeout`, 60 s by default), whether to keep
//! the N-ACTION's association open for it, and where to listen
//! ([`ListenerOptions`]). A [`Committer`] runs requests, one association each;
//! its listener serves them all, routing each report to the request waiting for
//! its transaction UID. The report is awaited on both paths at once and the first
//! to bring it wins. Every N-EVENT-REPORT-RQ is answered.
//!
//! Every commitment ends in a [`CommitmentOutcome`], data rather than an error:
//! the N-ACTION status, the committed and failed instances, those asked for that
//! the report names in neither list (`unanswered`) and those it names that were
//! never asked for (`unrequested`), how and how fast the report came, and
//! `timed_out` when it did not. [`CommitmentOutcome::is_complete`] is the one
//! question a test asks. [`CommitmentError`] is only for a commitment that could
//! not be run.
//!
//! # Reports nobody waits for
//!
//! A report whose transaction UID no commitment is waiting for (it came after its
//! commitment timed out, it is a repeat, it is another tool's) is answered with
//! **success** and kept in [`ReportListener::unknown_reports`]. PS3.4 J.3.3 has
//! the SCU answer the report with the status "applicable to the associated
//! request", and the report itself is well-formed and addressed to a valid
//! instance (the well-known one): none of the N-EVENT-REPORT failure statuses
//! (PS3.7 10.1.1.1.8) says "unknown transaction", and a failure invites SCPs that
//! retry failed reports to send it again and again. A report that cannot be read
//! (no event information, no Transaction UID, an item without its UIDs) is
//! answered with 0x0110 (processing failure), an unknown event type with 0x0113
//! (no such event type), each with an ErrorComment, and kept in
//! [`ReportListener::malformed_reports`]. Neither ever panics nor hangs: every
//! wait of the listener is bounded by its ARTIM, read and write timeouts.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use commitment::{CommitmentOptions, CommitmentRequest, Committer, ListenerOptions, ReferencedInstance};
//! use dimse::{PeerAddress, ScuOptions};
//!
//! let scu = ScuOptions::new(
//!     PeerAddress::new("pacs.example", 104),
//!     "DICOM_AUTO".parse()?,
//!     "PACS".parse()?,
//! );
//! // The PACS knows us as DICOM_AUTO_SC at our host, port 11113.
//! let listen = ListenerOptions::new()
//!     .bind("0.0.0.0:11113".parse()?)
//!     .ae_title("DICOM_AUTO_SC".parse()?);
//! let committer = Committer::new(
//!     CommitmentOptions::new(scu)
//!         .report_timeout(Duration::from_secs(120))
//!         .listen(listen),
//! )?;
//! let request = CommitmentRequest::new([ReferencedInstance::new(
//!     "1.2.840.10008.5.1.4.1.1.2",
//!     "2.25.1234",
//! )]);
//! let outcome = committer.commit(&request)?;
//! assert!(outcome.is_complete(), "{}", outcome.summary());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Limits
//!
//! When the N-ACTION's association is kept open *and* a listener runs, the
//! association is read in slices of 100 ms so that the listener is checked between
//! them; `dimse::MessageReader` does not keep a half-received message across a
//! read timeout, so a report whose command and data set PDUs arrive more than a
//! slice apart on that association is misread (recorded as the association lost;
//! the wait goes on at the listener).

mod committer;
mod error;
mod listener;
mod options;
mod outcome;
mod report;
mod request;

pub use committer::Committer;
pub use error::CommitmentError;
pub use listener::{ListenerStats, MalformedReport, ReportListener, UnknownReport};
pub use options::{
    COMMITMENT_TRANSFER_SYNTAXES, CommitmentOptions, DEFAULT_LISTENER_AE_TITLE, ListenerOptions,
};
pub use outcome::{CommitmentOutcome, ReportVia};
pub use report::{
    ACTION_REQUEST_COMMITMENT, EVENT_ALL_COMMITTED, EVENT_FAILURES_EXIST, EventReport,
    FailedInstance, FailureReason,
};
pub use request::{CommitmentRequest, ReferencedInstance};
