//! C-FIND queries and delivery verification: did what we sent arrive, and how long did
//! it take?
//!
//! A router answering "success" to a C-STORE has only accepted an image. This crate asks
//! the destination (a PACS, or the router's own archive) whether the studies are there,
//! complete, with the expected attributes, and measures the time each took to become
//! visible after its last send: the router's transit time.
//!
//! # The pieces
//!
//! - [`CFindClient`]: where the query SCP is and how long to wait, built with
//!   [`CFindClient::builder`]. This crate never reads the configuration: the `campaign`
//!   crate turns `CFIND_*` and `DICOM_*` settings into a builder.
//! - [`Session`]: one association for many exchanges (C-ECHO, C-FIND), reopened if it
//!   breaks. Verification runs all its queries on one session.
//! - Queries: [`StudyQuery`] (by StudyInstanceUID or a list of them, PatientID, StudyDate
//!   range, modality, today), [`SeriesQuery`] and [`InstanceQuery`] under a study. Each
//!   has usual return keys; [`Query::with_return_key`] adds more, [`Query::with_limit`]
//!   caps the matches (the rest are cancelled with C-CANCEL).
//! - Results: [`QueryResult`] with typed matches ([`StudyResult`], [`SeriesResult`],
//!   [`InstanceResult`]), each keeping every returned key in its [`Identifier`], and
//!   the [`InformationModel`] the query ran under.
//! - Verification: [`Session::wait_for_study`] (one study, until it matches an
//!   [`Expectation`]) and [`Session::verify_studies`] (every study of a load run, in
//!   UID-list batches, with a transit-time histogram in its [`VerificationReport`]).
//! - [`cli`]: the `cfind` command line as a library ([`cli::Args`], [`cli::run`]), so
//!   the `cfind` binary (built-in defaults) and `dicom-auto find` (the configuration's)
//!   share every option.
//!
//! # Information models
//!
//! Study Root is tried first, then Patient Root. The client falls back when the peer
//! does not accept the first model's presentation context, rejects the association
//! proposing it, or answers its C-FIND with a failure that points at the model (A9xx,
//! Cxxx, 0122) and no match. [`QueryResult::model`] says which model answered and
//! [`QueryResult::fallbacks`] why others were skipped.
//!
//! # Waits
//!
//! Nothing waits unbounded ([`dimse::Timeouts`]): TCP connection, association
//! negotiation and release, each DIMSE response, each socket write, and each whole
//! query ([`CFindClientBuilder::query_timeout`]). A peer that stops answering yields
//! [`CFindError::Timeout`] and the association is aborted. Polling
//! ([`Session::wait_for_study`], [`Session::verify_studies`]) stops querying
//! [`Polling::timeout`] after its first query, so it ends at most one query timeout
//! later.
//!
//! # Verification
//!
//! [`Session::verify_studies`] takes one [`SentStudy`] per study of a load run (map the
//! sender's per-study records with [`SentStudy::with_wall_clock`]) and asks about up to
//! 200 StudyInstanceUIDs per query (UID-list matching, [`BatchLimits`]), then only about
//! the studies still missing or incomplete, every poll interval. A study is complete
//! when the peer reports at least as many instances as were delivered; peers that do
//! not report NumberOfStudyRelatedInstances (DCMTK's dcmqrscp) get IMAGE-level queries
//! and their instances are counted. Time-to-visible is measured from the study's last
//! send to the end of the query that showed it complete: an upper bound, too long by
//! at most one poll interval plus one query.
//!
//! # Limits
//!
//! - Queries are hierarchical (no relational-query extended negotiation); Patient Root
//!   queries carry an empty PatientID key so that strict SCPs accept them.
//! - A failure status triggers the model fallback only when it came before any match.
//! - No TLS, no user identity negotiation.
//! - Verification runs its queries one after the other on one association; its speed
//!   is the SCP's: against an SCP that scans every study for every UID of a list, it
//!   grows with the square of the study count.
//!
//! # Example
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use cfind::{CFindClient, Expectation, Key, Query, SentStudy, StudyQuery};
//!
//! let client = CFindClient::builder("127.0.0.1", 11112)
//!     .called_ae_title("PACS")
//!     .calling_ae_title("QA-SCU")
//!     .dimse_timeout(Duration::from_secs(10))
//!     .build()?;
//! println!("C-ECHO in {:?}", client.test_connection()?.echo_rtt);
//!
//! // One query on its own association.
//! let found = client.find(
//!     &StudyQuery::by_patient_id("PID-0001").with_return_key(Key::parse("InstitutionName")?),
//! )?;
//! for study in &found.matches {
//!     println!("{} {:?} ({} model)", study.study_instance_uid, study.patient_name, found.model);
//! }
//!
//! // Many queries on one association: wait for a study, then verify a whole run.
//! let mut session = client.session();
//! let sighting = session.wait_for_study(
//!     "1.2.826.0.1.3680043.8.498.1",
//!     &Expectation::visible().at_least_instances(12),
//! )?;
//! println!("visible after {:?}", sighting.waited);
//!
//! let sent = vec![SentStudy::new("1.2.826.0.1.3680043.8.498.1", 12, Instant::now())];
//! let report = session.verify_studies(&sent)?;
//! println!(
//!     "{} of {} complete, p95 transit {:?} ms",
//!     report.count(cfind::Delivery::Complete),
//!     report.studies.len(),
//!     report.transit.percentile_ms(95.0),
//! );
//! session.close();
//! # Ok::<(), cfind::CFindError>(())
//! ```

mod association;
pub mod cli;
mod client;
mod error;
mod identifier;
mod query;
mod results;
mod session;
mod settings;
mod verify;

pub use chrono::NaiveDate;
pub use client::{CFindClient, ConnectionCheck};
pub use dimse::{InformationModel, QueryLevel};
pub use error::CFindError;
pub use identifier::{Identifier, Key, keyword};
pub use query::{
    INSTANCE_RETURN_KEYS, InstanceQuery, Query, QueryKeys, SERIES_RETURN_KEYS, STUDY_RETURN_KEYS,
    SeriesQuery, StudyQuery, dicom_date,
};
pub use results::{InstanceResult, Match, ModelFallback, QueryResult, SeriesResult, StudyResult};
pub use session::Session;
pub use settings::{
    BatchLimits, CFindClientBuilder, DEFAULT_CALLED_AE_TITLE, DEFAULT_CALLING_AE_TITLE,
    DEFAULT_MAX_UID_LIST_BYTES, DEFAULT_MAX_UIDS_PER_QUERY, Polling,
};
pub use verify::{
    Delivery, Expectation, InstanceCountSource, SentStudy, StudySighting, StudyVerification,
    VerificationReport,
};
