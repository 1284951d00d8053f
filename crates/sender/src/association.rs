//! [`Session`]: one established association, used for C-ECHO and C-STORE requests
//! one at a time (dicom-ul negotiates no asynchronous operations window).
//!
//! The association itself is the workspace's one SCU association
//! ([`dimse::ScuAssociation`]): message IDs, the response check, timeouts and the
//! establish errors are its rules. A session adds what a load run needs: a command
//! buffer reused by every store, the count of operations, and *broken* semantics:
//! after any failure the association is aborted and forgotten, so no later request
//! can go into a socket in an unknown state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_ul::pdu::PresentationContextNegotiated;
use dimse::{CommandField, DimseError, Patch, ScuAssociation, ScuOptions, Status, StatusClass};

use crate::SenderError;
use crate::contexts::choose_context;
use crate::instance::{InstanceUids, PreparedInstance, Variant};
use crate::options::SenderOptions;
use crate::outcome::{Outcome, SendOutcome};

/// An established association.
///
/// Made by [`DicomSender::open`](crate::DicomSender::open). Requests go one at a time;
/// after an abort, a lost connection or a timeout the session is *broken*
/// ([`Session::is_usable`] is false) and every further request fails without touching
/// the network. End it with [`Session::release`] (or [`Session::abort`]); dropping it
/// closes the socket without a release.
#[derive(Debug)]
pub struct Session {
    association: Option<ScuAssociation>,
    /// `host:port`, for errors.
    peer: String,
    priority: dimse::Priority,
    operations: u64,
    /// The C-STORE-RQ of the current send: the instance's pre-encoded template with
    /// the message ID (and fresh SOP Instance UID) written in. Reused, so a send
    /// allocates nothing.
    command_buffer: Vec<u8>,
    /// The chunk a data set left in its file is read into on its way to the socket
    /// ([`dimse::STREAM_CHUNK`]); allocated on first use, reused by every send.
    stream_buffer: Vec<u8>,
    established_in: Duration,
}

impl Session {
    /// Opens an association with `scu` (made by [`SenderOptions::scu_options`]),
    /// errors named after `options`.
    pub(crate) fn establish(
        options: &SenderOptions,
        scu: &ScuOptions,
    ) -> Result<Self, SenderError> {
        let association = scu
            .establish()
            .map_err(|e| SenderError::from_associate(e, options))?;
        Ok(Session {
            established_in: association.established_in(),
            association: Some(association),
            peer: options.address().to_string(),
            priority: options.current_priority(),
            operations: 0,
            command_buffer: Vec::with_capacity(256),
            stream_buffer: Vec::new(),
        })
    }

    /// The accepted presentation contexts.
    pub fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        self.association
            .as_ref()
            .map_or(&[], |a| a.presentation_contexts())
    }

    /// What TLS negotiated, when the association runs over TLS.
    pub fn tls_session(&self) -> Option<&dimse::tls::TlsSession> {
        self.association.as_ref().and_then(|a| a.tls_session())
    }

    /// How long the association took to establish (TCP connect plus negotiation).
    pub fn established_in(&self) -> Duration {
        self.established_in
    }

    /// Requests made on this association so far.
    pub fn operations(&self) -> u64 {
        self.operations
    }

    /// The peer's maximum PDU length (what our PDUs are cut to).
    pub fn peer_max_pdu_length(&self) -> u32 {
        self.association
            .as_ref()
            .map_or(0, ScuAssociation::peer_max_pdu_length)
    }

    /// Whether requests can still be made: false after an abort, a lost connection,
    /// a timeout or a protocol error.
    pub fn is_usable(&self) -> bool {
        self.association.is_some()
    }

    /// Checks, without waiting, that the peer has not closed or aborted the
    /// association while it sat idle; a session found dead becomes unusable.
    ///
    /// A reused association that the peer closed would otherwise take the next
    /// request's bytes into a dead socket and turn a send that never started into an
    /// "unknown" outcome.
    pub fn check_alive(&mut self) -> bool {
        let alive = self
            .association
            .as_mut()
            .is_some_and(ScuAssociation::is_alive);
        if !alive {
            self.drop_connection();
        }
        alive
    }

    /// Sends a C-ECHO and waits for its response.
    ///
    /// # Errors
    /// [`SenderError::Association`] when Verification was not accepted (the session
    /// stays usable), or on timeout, abort or lost connection (the session is then
    /// broken).
    pub fn echo(&mut self) -> Result<(Status, Duration), SenderError> {
        let Some(association) = self.association.as_mut() else {
            return Err(self.failed("sending a C-ECHO", DimseError::ConnectionClosed));
        };
        let started = Instant::now();
        self.operations += 1;
        match association.echo() {
            Ok(status) => Ok((status, started.elapsed())),
            Err(e) => {
                // Without a Verification context nothing was sent: the association is
                // as good as before.
                if !matches!(e, DimseError::ContextNotAccepted { .. }) {
                    self.break_after(&e);
                }
                Err(self.failed("sending a C-ECHO", e))
            }
        }
    }

    fn failed(&self, stage: &'static str, source: DimseError) -> SenderError {
        SenderError::Association {
            peer: self.peer.clone(),
            stage,
            source,
        }
    }

    /// Stores one instance and classifies the result.
    ///
    /// Never fails: every way a store can end is a [`SendOutcome`]. `uids` must be
    /// given for an instance prepared with fresh UIDs.
    pub fn store(
        &mut self,
        instance: &PreparedInstance,
        uids: Option<&InstanceUids>,
    ) -> SendOutcome {
        self.store_loaded(instance, None, uids)
    }

    /// As [`store`](Self::store), with the instance's primary encoding already in
    /// memory (`loaded`, a load run's feed): used when the peer accepts its syntax.
    pub(crate) fn store_loaded(
        &mut self,
        instance: &PreparedInstance,
        loaded: Option<&Arc<Variant>>,
        uids: Option<&InstanceUids>,
    ) -> SendOutcome {
        let started = Instant::now();
        let not_sent = |detail: String| SendOutcome::not_sent(Outcome::Failure, detail, started);
        if self.association.is_none() {
            return not_sent("association no longer usable".into());
        }
        if instance.has_fresh_uids() && uids.is_none() {
            return not_sent("instance prepared for fresh UIDs but none given".into());
        }
        let Some(choice) = choose_context(
            self.presentation_contexts(),
            instance.sop_class_uid(),
            instance.transfer_syntax(),
        ) else {
            return not_sent(format!(
                "no accepted presentation context for SOP class {} in {} (nor an uncompressed one it can be converted to)",
                instance.sop_class_uid(),
                instance.transfer_syntax()
            ));
        };
        let variant = match loaded.filter(|v| v.transfer_syntax() == choice.transfer_syntax) {
            Some(v) => v.clone(),
            None => match instance.variant(&choice.transfer_syntax) {
                Ok(v) => v,
                Err(detail) => return not_sent(detail),
            },
        };
        let association = self.association.as_mut().expect("checked above");
        let message_id = association.next_message_id();
        // The command set was encoded once per instance; only its message ID and
        // (with fresh UIDs) its Affected SOP Instance UID change per send.
        instance.command_template(self.priority).fill(
            &mut self.command_buffer,
            message_id,
            uids.map(|u| &u.instance),
        );
        // On the stack: no allocation per send.
        let patch_set: [Patch<'_>; 4];
        let patches: &[Patch<'_>] = match (variant.slots(), uids) {
            (Some(slots), Some(u)) => {
                patch_set = [
                    Patch {
                        offset: slots.study,
                        bytes: u.study.as_bytes(),
                    },
                    Patch {
                        offset: slots.series,
                        bytes: u.series.as_bytes(),
                    },
                    Patch {
                        offset: slots.instance,
                        bytes: u.instance.as_bytes(),
                    },
                    // The trace carries the send's SOP Instance UID too.
                    Patch {
                        offset: slots.trace.unwrap_or(slots.instance),
                        bytes: u.instance.as_bytes(),
                    },
                ];
                &patch_set[..if slots.trace.is_some() { 4 } else { 3 }]
            }
            _ => &[],
        };
        let bytes = variant.len();
        self.operations += 1;
        let sent = match variant.in_file() {
            // A file sent as it is (no UIDs to patch): read as it goes out, never held
            // whole in memory.
            Some(body) => association
                .send_encoded_from(
                    choice.id,
                    &self.command_buffer,
                    &mut body.reader(),
                    body.len,
                    &mut self.stream_buffer,
                )
                .map_err(|e| match e {
                    DimseError::Source(e) => format!("{}: {e}", body.path.display()),
                    e => e.to_string(),
                }),
            None => association
                .send_encoded(choice.id, &self.command_buffer, variant.bytes(), patches)
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = sent {
            // The last PDU did not fully leave: the peer cannot hold the complete data set.
            self.drop_connection();
            let mut outcome = not_sent(format!("sending the data set failed: {e}"));
            outcome.bytes = bytes;
            return outcome;
        }
        match association.expect_response(message_id, CommandField::CStoreRsp) {
            Ok(response) => {
                let status = response.status;
                let outcome = match status.class() {
                    StatusClass::Success => Outcome::Success,
                    StatusClass::Warning => Outcome::Warning,
                    _ => Outcome::Failure,
                };
                let error =
                    (outcome != Outcome::Success).then(|| match response.command.error_comment {
                        Some(c) => format!("{status}: {c}"),
                        None => status.to_string(),
                    });
                SendOutcome {
                    status: Some(status),
                    outcome,
                    latency: started.elapsed(),
                    bytes,
                    error,
                    started,
                }
            }
            // The whole request went out and no answer came: the instance may or may
            // not be stored, and the association is in an unknown state.
            Err(e) => {
                let outcome = SendOutcome {
                    status: None,
                    outcome: Outcome::Unknown,
                    latency: started.elapsed(),
                    bytes,
                    error: Some(format!("no C-STORE response: {e}")),
                    started,
                };
                self.break_after(&e);
                outcome
            }
        }
    }

    /// Forgets the association after `error`: an association the peer aborted is
    /// only closed, any other is aborted first.
    fn break_after(&mut self, error: &DimseError) {
        if matches!(error, DimseError::PeerAborted(_)) {
            self.association = None;
        } else {
            self.drop_connection();
        }
    }

    /// Aborts the association (A-ABORT) and forgets it.
    fn drop_connection(&mut self) {
        if let Some(association) = self.association.take() {
            association.abort();
        }
    }

    /// Releases the association (A-RELEASE), waiting at most the ACSE timeout.
    ///
    /// # Errors
    /// [`SenderError::Association`] when the peer does not answer the release properly
    /// (the connection is closed anyway).
    pub fn release(mut self) -> Result<(), SenderError> {
        let Some(association) = self.association.take() else {
            return Ok(());
        };
        association
            .release()
            .map_err(|source| self.failed("releasing", source))
    }

    /// Aborts the association (A-ABORT) and closes the connection.
    pub fn abort(mut self) {
        self.drop_connection();
    }
}
