//! [`Session`]: one established association, used for C-ECHO and C-STORE requests
//! one at a time (dicom-ul negotiates no asynchronous operations window).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::PresentationContextNegotiated;
use dicom_ul::{ClientAssociation, ClientAssociationOptions};
use dimse::{
    Command, CommandField, DimseError, EstablishError, Incoming, MessageReader, Patch, Status,
    StatusClass,
};

use crate::SenderError;
use crate::contexts::{Proposal, choose_context};
use crate::instance::{InstanceUids, PreparedInstance};
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
    association: Option<ClientAssociation<TcpStream>>,
    reader: MessageReader,
    peer: String,
    timeouts: crate::Timeouts,
    priority: dimse::Priority,
    next_message_id: u16,
    operations: u64,
    command_buffer: Vec<u8>,
    established_in: Duration,
}

impl Session {
    pub(crate) fn establish(
        options: &SenderOptions,
        proposal: &Proposal,
    ) -> Result<Self, SenderError> {
        let started = Instant::now();
        let timeouts = options.timeouts;
        let mut ul = ClientAssociationOptions::new()
            .calling_ae_title(options.calling_ae_title.as_str())
            .called_ae_title(options.called_ae_title.as_str())
            .max_pdu_length(options.max_pdu_length);
        for (abstract_syntax, ts) in proposal.contexts() {
            ul = ul.with_presentation_context(abstract_syntax.as_str(), vec![ts.as_str()]);
        }
        let peer = options.address.clone();
        let scu_timeouts = dimse::ScuTimeouts {
            connect: timeouts.connect,
            acse: timeouts.acse,
            dimse: timeouts.dimse,
            write: timeouts.network,
        };
        let association =
            dimse::establish(ul, peer.as_str(), scu_timeouts).map_err(|e| match e {
                EstablishError::Association(e) => match *e {
                    UlError::Connect { source, .. } | UlError::ToAddress { source, .. } => {
                        SenderError::Connect {
                            peer: peer.clone(),
                            source,
                        }
                    }
                    UlError::Rejected { association_rj, .. } => SenderError::Rejected {
                        peer: peer.clone(),
                        calling: options.calling_ae_title.clone(),
                        called: options.called_ae_title.clone(),
                        description: dimse::describe_rejection(&association_rj),
                        rejection: association_rj,
                    },
                    UlError::NoAcceptedPresentationContexts { .. } => {
                        SenderError::NoAcceptedContexts {
                            peer: peer.clone(),
                            calling: options.calling_ae_title.clone(),
                            called: options.called_ae_title.clone(),
                            proposed: proposal.abstract_syntaxes(),
                        }
                    }
                    other => SenderError::Association {
                        peer: peer.clone(),
                        stage: "negotiating",
                        source: DimseError::from_association(other),
                    },
                },
                EstablishError::Socket(source) => SenderError::Association {
                    peer: peer.clone(),
                    stage: "configuring the socket",
                    source: DimseError::Io(source),
                },
                // EstablishError is non-exhaustive.
                other => SenderError::Association {
                    peer: peer.clone(),
                    stage: "establishing",
                    source: DimseError::Protocol(other.to_string()),
                },
            })?;
        Ok(Session {
            association: Some(association),
            reader: MessageReader::new(),
            peer,
            timeouts,
            priority: options.priority,
            next_message_id: 1,
            operations: 0,
            command_buffer: Vec::with_capacity(256),
            established_in: started.elapsed(),
        })
    }

    /// The accepted presentation contexts.
    pub fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        self.association
            .as_ref()
            .map_or(&[], |a| a.presentation_contexts())
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
        use dicom_ul::association::Association;
        self.association
            .as_ref()
            .map_or(0, |a| a.peer_max_pdu_length())
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
        let Some(association) = self.association.as_mut() else {
            return false;
        };
        let stream = association.inner_stream();
        if stream.set_nonblocking(true).is_err() {
            self.drop_connection();
            return false;
        }
        let mut probe = [0u8; 1];
        let alive = match stream.peek(&mut probe) {
            // Nothing to read: the peer is quietly waiting, as it should be.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            // EOF (closed), an error, or an unsolicited PDU (A-ABORT, A-RELEASE-RQ):
            // the association cannot carry another request.
            _ => false,
        };
        if stream.set_nonblocking(false).is_err() || !alive {
            self.drop_connection();
            return false;
        }
        true
    }

    fn take_message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        // Message IDs only need to be unique among outstanding requests (one here).
        self.next_message_id = self.next_message_id.checked_add(1).unwrap_or(1);
        id
    }

    /// Sends a C-ECHO and waits for its response.
    ///
    /// # Errors
    /// [`SenderError::NoAcceptedContexts`] when Verification was not accepted;
    /// [`SenderError::Association`] on timeout, abort or lost connection (the session
    /// is then broken).
    pub fn echo(&mut self) -> Result<(Status, Duration), SenderError> {
        let peer = self.peer.clone();
        let fail = |source| SenderError::Association {
            peer: peer.clone(),
            stage: "sending a C-ECHO",
            source,
        };
        let pc = self
            .presentation_contexts()
            .iter()
            .find(|pc| {
                pc.abstract_syntax.trim_end_matches('\0')
                    == dicom_dictionary_std::uids::VERIFICATION
            })
            .map(|pc| pc.id)
            .ok_or_else(|| SenderError::NoAcceptedContexts {
                peer: self.peer.clone(),
                calling: String::new(),
                called: String::new(),
                proposed: "Verification was not accepted on this association".into(),
            })?;
        let message_id = self.take_message_id();
        let Some(association) = self.association.as_mut() else {
            return Err(fail(DimseError::ConnectionClosed));
        };
        let started = Instant::now();
        self.operations += 1;
        if let Err(e) = dimse::send_message(association, pc, &Command::c_echo_rq(message_id), None)
        {
            self.drop_connection();
            return Err(fail(e));
        }
        match self.await_response(message_id, CommandField::CEchoRsp) {
            Ok((status, _)) => Ok((status, started.elapsed())),
            Err(e) => Err(fail(e)),
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
        let variant = match instance.variant(&choice.transfer_syntax) {
            Ok(v) => v,
            Err(detail) => return not_sent(detail),
        };
        let message_id = self.take_message_id();
        let template = instance.command_template(self.priority);
        template.fill(
            &mut self.command_buffer,
            message_id,
            uids.map(|u| &u.instance),
        );
        // On the stack: no allocation per send.
        let patch_set: [Patch<'_>; 3];
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
                ];
                &patch_set
            }
            _ => &[],
        };
        let bytes = variant.bytes().len() as u64;
        let association = self.association.as_mut().expect("checked above");
        self.operations += 1;
        let max_pdv = dimse::max_pdv_payload(
            dicom_ul::association::Association::peer_max_pdu_length(association),
        );
        let sent = dimse::write_fragments(
            association.inner_stream(),
            choice.id,
            dicom_ul::pdu::PDataValueType::Command,
            &self.command_buffer,
            max_pdv,
        )
        .and_then(|()| dimse::send_data_patched(association, choice.id, variant.bytes(), patches));
        if let Err(e) = sent {
            // The last PDU did not fully leave: the peer cannot hold the complete data set.
            self.drop_connection();
            let mut outcome = not_sent(format!("sending the data set failed: {e}"));
            outcome.bytes = bytes;
            return outcome;
        }
        let result = self.await_response(message_id, CommandField::CStoreRsp);
        match result {
            Ok((status, comment)) => {
                let outcome = match status.class() {
                    StatusClass::Success => Outcome::Success,
                    StatusClass::Warning => Outcome::Warning,
                    _ => Outcome::Failure,
                };
                let error = (outcome != Outcome::Success).then(|| match comment {
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
            Err(e) => SendOutcome {
                status: None,
                outcome: Outcome::Unknown,
                latency: started.elapsed(),
                bytes,
                error: Some(format!("no C-STORE response: {e}")),
                started,
            },
        }
    }

    /// Waits for the response to `message_id`; any other ending breaks the session.
    fn await_response(
        &mut self,
        message_id: u16,
        expected: CommandField,
    ) -> Result<(Status, Option<String>), DimseError> {
        let association = self
            .association
            .as_mut()
            .ok_or(DimseError::ConnectionClosed)?;
        let received = self.reader.receive(association);
        let failure = match received {
            Ok(Incoming::Message(message)) => {
                let command = message.command;
                if command.field != expected {
                    DimseError::Protocol(format!("expected {expected}, received {}", command.field))
                } else if command.message_id_being_responded_to != Some(message_id) {
                    DimseError::Protocol(format!(
                        "response to message {:?}, expected {message_id}",
                        command.message_id_being_responded_to
                    ))
                } else if let Some(status) = command.status {
                    return Ok((status, command.error_comment));
                } else {
                    DimseError::Protocol(format!("{expected} without a status"))
                }
            }
            Ok(Incoming::Aborted(source)) => {
                // The peer already tore the association down: just close the socket.
                self.association = None;
                return Err(DimseError::Protocol(format!(
                    "association aborted by the peer ({source:?})"
                )));
            }
            Ok(Incoming::ReleaseRequested) => DimseError::Protocol(
                "peer asked to release the association instead of answering".into(),
            ),
            Ok(_) => DimseError::Protocol("unexpected message".into()),
            Err(e) => e,
        };
        self.drop_connection();
        Err(failure)
    }

    /// Aborts the association (A-ABORT) and forgets it.
    fn drop_connection(&mut self) {
        if let Some(association) = self.association.take() {
            let _ = association.abort();
        }
    }

    /// Releases the association (A-RELEASE), waiting at most the ACSE timeout.
    ///
    /// # Errors
    /// [`SenderError::Association`] when the peer does not answer the release properly
    /// (the connection is closed anyway).
    pub fn release(mut self) -> Result<(), SenderError> {
        let Some(mut association) = self.association.take() else {
            return Ok(());
        };
        let _ = association
            .inner_stream()
            .set_read_timeout(Some(self.timeouts.acse));
        association.release().map_err(|e| SenderError::Association {
            peer: self.peer.clone(),
            stage: "releasing",
            source: DimseError::from_association(e),
        })
    }

    /// Aborts the association (A-ABORT) and closes the connection.
    pub fn abort(mut self) {
        self.drop_connection();
    }
}
