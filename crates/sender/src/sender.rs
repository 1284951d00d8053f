//! [`DicomSender`]: C-ECHO and C-STORE to one peer.

use std::path::Path;
use std::time::Instant;

use dicom_object::DefaultDicomObject;
use dimse::StatusClass;

use crate::association::Session;
use crate::contexts::{Conversion, Proposal, choose_context};
use crate::instance::PreparedInstance;
use crate::options::SenderOptions;
use crate::outcome::{EchoOutcome, SendOutcome};
use crate::{SenderError, UidStrategy};

/// A DICOM storage SCU for one peer (address and AE titles).
///
/// Each call opens its own association and releases it; for many instances on one
/// association use [`DicomSender::open`], and for load runs [`run_load`](crate::run_load).
/// The sender holds no connection, so it is cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct DicomSender {
    options: SenderOptions,
}

impl DicomSender {
    /// A sender with checked options.
    ///
    /// # Errors
    /// See [`SenderOptions::build`].
    pub fn new(options: SenderOptions) -> Result<Self, SenderError> {
        options.validate()?;
        Ok(DicomSender { options })
    }

    /// Starts options for a peer at `address` (`host:port`); finish with
    /// [`SenderOptions::build`].
    pub fn builder(address: impl AsRef<str>) -> SenderOptions {
        SenderOptions::new(address)
    }

    /// The options in force.
    pub fn options(&self) -> &SenderOptions {
        &self.options
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> dimse::Timeouts {
        self.options.current_timeouts()
    }

    /// Opens an association proposing `proposal`'s presentation contexts.
    ///
    /// # Errors
    /// [`SenderError::Connect`], [`SenderError::Rejected`] (with result, source and
    /// reason in words), [`SenderError::NoAcceptedContexts`], or
    /// [`SenderError::Association`] for a timeout or a broken negotiation.
    pub fn open(&self, proposal: &Proposal) -> Result<Session, SenderError> {
        self.open_with(&self.options.scu_options(proposal))
    }

    /// Opens an association with options already made by
    /// [`SenderOptions::scu_options`]: a load run makes them once, not per association.
    pub(crate) fn open_with(&self, scu: &dimse::ScuOptions) -> Result<Session, SenderError> {
        Session::establish(&self.options, scu)
    }

    /// C-ECHO: opens an association for Verification, sends one C-ECHO, releases.
    ///
    /// # Errors
    /// As [`DicomSender::open`]; [`SenderError::EchoRefused`] when the response is not
    /// a success; [`SenderError::Association`] on a timeout or abort.
    pub fn ping(&self) -> Result<EchoOutcome, SenderError> {
        let mut session = self.open(&Proposal::verification())?;
        let association_time = session.established_in();
        let tls_session = session.tls_session().cloned();
        let (status, round_trip) = session.echo()?;
        // The echo is answered: a peer that then botches the release is still alive.
        let _ = session.release();
        if status.class() != StatusClass::Success {
            return Err(SenderError::EchoRefused {
                peer: self.options.address().to_string(),
                status,
            });
        }
        Ok(EchoOutcome {
            status,
            round_trip,
            association_time,
            tls_session,
        })
    }

    /// Stores one file on an association of its own.
    ///
    /// # Errors
    /// [`SenderError::File`] / [`SenderError::Prepare`] when the file cannot be read,
    /// and the errors of [`DicomSender::open`]. Once the association is up, every
    /// ending is a [`SendOutcome`] (failure and unknown included).
    pub fn send_file(&self, path: impl AsRef<Path>) -> Result<SendOutcome, SenderError> {
        let instance = PreparedInstance::from_file(path, UidStrategy::AsIs)?;
        self.send_prepared(&instance)
    }

    /// Stores a prepared instance on an association of its own. For an instance with
    /// fresh UIDs, a fresh set is made for this one send.
    ///
    /// # Errors
    /// As [`DicomSender::open`].
    pub fn send_prepared(&self, instance: &PreparedInstance) -> Result<SendOutcome, SenderError> {
        let proposal =
            Proposal::for_instances([(instance.sop_class_uid(), instance.transfer_syntax())])?;
        let mut session = self.open(&proposal)?;
        let uids = instance.has_fresh_uids().then(|| {
            let root = crate::uid::UidRoot::random();
            crate::InstanceUids {
                study: root.uid(crate::UidLevel::Study, 0),
                series: root.uid(crate::UidLevel::Series, 0),
                instance: root.uid(crate::UidLevel::Instance, 0),
            }
        });
        let outcome = session.store(instance, uids.as_ref());
        finish(session);
        Ok(outcome)
    }

    /// Stores an in-memory object (in its meta group's transfer syntax, decompressed
    /// if the peer only takes uncompressed data) on an association of its own.
    ///
    /// # Errors
    /// [`SenderError::Prepare`] when the object lacks its SOP Class or Instance UID or
    /// cannot be encoded, and the errors of [`DicomSender::open`].
    pub fn send_dataset(&self, object: &DefaultDicomObject) -> Result<SendOutcome, SenderError> {
        let started = Instant::now();
        let class = dimse::trim_value(object.meta().media_storage_sop_class_uid()).to_string();
        let ts = dimse::trim_value(object.meta().transfer_syntax()).to_string();
        let class = if class.is_empty() {
            object
                .get(dicom_dictionary_std::tags::SOP_CLASS_UID)
                .and_then(|e| e.to_str().ok())
                .map(|s| dimse::trim_value(&s).to_string())
                .unwrap_or_default()
        } else {
            class
        };
        let proposal = Proposal::for_instances([(class.as_str(), ts.as_str())])?;
        let mut session = self.open(&proposal)?;
        // Encode only for the syntax the peer took: no copy of the object is kept.
        let outcome = match choose_context(session.presentation_contexts(), &class, &ts) {
            None => SendOutcome::not_sent(
                metrics::Outcome::Failure,
                format!("no accepted presentation context for SOP class {class} in {ts}"),
                started,
            ),
            Some(choice) => {
                match PreparedInstance::for_syntax(
                    object,
                    &choice.transfer_syntax,
                    choice.conversion == Conversion::Decompress,
                ) {
                    Ok(instance) => session.store(&instance, None),
                    Err(e) => {
                        SendOutcome::not_sent(metrics::Outcome::Failure, e.to_string(), started)
                    }
                }
            }
        };
        finish(session);
        Ok(outcome)
    }
}

/// Releases a usable session; a broken one is already closed.
fn finish(session: Session) {
    if session.is_usable() {
        // The outcome is known; a failed release changes nothing about it.
        let _ = session.release();
    }
}
