//! A minimal C-STORE SCU: what the simulator forwards with, and what its benchmark
//! drives load with. It is not the project's sender (that is the `sender` crate,
//! which the simulator must not depend on): one association, one request at a time.

use std::net::TcpStream;
use std::time::Duration;

use dicom_ul::ClientAssociationOptions;
use dicom_ul::association::ClientAssociation;
use dicom_ul::pdu::PresentationContextResultReason;
use dimse::{Command, DimseError, Incoming, MessageReader, Priority};

/// How to reach the SCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScuOptions {
    /// Our AE title.
    pub calling_ae_title: String,
    /// The SCP's AE title.
    pub called_ae_title: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Read and write timeout on the association.
    pub io_timeout: Duration,
    /// Largest PDU we accept.
    pub max_pdu_length: u32,
}

impl Default for ScuOptions {
    fn default() -> Self {
        ScuOptions {
            calling_ae_title: "SIM-SCU".into(),
            called_ae_title: "ANY-SCP".into(),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            max_pdu_length: 131_072,
        }
    }
}

/// What went wrong talking to the SCP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScuError {
    /// The association could not be established (refused, unreachable...).
    #[error("cannot associate with {called_ae_title}@{addr}: {source}")]
    Associate {
        /// `host:port`.
        addr: String,
        /// The called AE title.
        called_ae_title: String,
        /// What failed: negotiation (dicom-ul's error) or the socket's configuration.
        source: dimse::EstablishError,
    },
    /// The SCP accepted no presentation context for this SOP class and transfer syntax.
    #[error(
        "no accepted presentation context for SOP class {sop_class_uid} in transfer syntax {transfer_syntax_uid}"
    )]
    NoContext {
        /// SOP class.
        sop_class_uid: String,
        /// Transfer syntax.
        transfer_syntax_uid: String,
    },
    /// The exchange failed.
    #[error(transparent)]
    Dimse(#[from] DimseError),
    /// The SCP answered something other than the response expected.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// The response to a C-STORE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreResponse {
    /// Status.
    pub status: dimse::Status,
    /// ErrorComment, when the SCP sent one.
    pub error_comment: Option<String>,
}

/// One open association for C-STOREs.
#[derive(Debug)]
pub struct StoreScu {
    association: ClientAssociation<TcpStream>,
    reader: MessageReader,
    next_message_id: u16,
}

impl StoreScu {
    /// Associates with `addr` (`host:port`), proposing one presentation context per
    /// `(SOP class, transfer syntaxes)` pair.
    pub fn connect(
        addr: &str,
        options: &ScuOptions,
        contexts: &[(String, Vec<String>)],
    ) -> Result<StoreScu, ScuError> {
        let mut builder = ClientAssociationOptions::new()
            .calling_ae_title(options.calling_ae_title.clone())
            .called_ae_title(options.called_ae_title.clone())
            .max_pdu_length(options.max_pdu_length);
        for (sop_class, syntaxes) in contexts {
            builder = builder.with_presentation_context(sop_class.clone(), syntaxes.clone());
        }
        let timeouts = dimse::ScuTimeouts {
            connect: options.connect_timeout,
            acse: options.io_timeout,
            dimse: options.io_timeout,
            write: options.io_timeout,
        };
        let association =
            dimse::establish(builder, addr, timeouts).map_err(|source| ScuError::Associate {
                addr: addr.to_string(),
                called_ae_title: options.called_ae_title.clone(),
                source,
            })?;
        Ok(StoreScu {
            association,
            reader: MessageReader::new(),
            next_message_id: 1,
        })
    }

    /// The accepted context for a SOP class: the one in `transfer_syntax_uid` if
    /// accepted, else any accepted one for which `fallback` says yes. Returns the
    /// context ID and its transfer syntax.
    pub fn context_for(
        &self,
        sop_class_uid: &str,
        transfer_syntax_uid: &str,
        fallback: impl Fn(&str) -> bool,
    ) -> Result<(u8, String), ScuError> {
        let accepted: Vec<_> = self
            .association
            .presentation_contexts()
            .iter()
            .filter(|pc| {
                pc.reason == PresentationContextResultReason::Acceptance
                    && pc.abstract_syntax == sop_class_uid
            })
            .collect();
        accepted
            .iter()
            .find(|pc| pc.transfer_syntax == transfer_syntax_uid)
            .or_else(|| accepted.iter().find(|pc| fallback(&pc.transfer_syntax)))
            .map(|pc| (pc.id, pc.transfer_syntax.clone()))
            .ok_or_else(|| ScuError::NoContext {
                sop_class_uid: sop_class_uid.to_string(),
                transfer_syntax_uid: transfer_syntax_uid.to_string(),
            })
    }

    /// Sends one C-STORE on context `context_id` and waits for its response.
    pub fn store(
        &mut self,
        context_id: u8,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        data_set: &[u8],
    ) -> Result<StoreResponse, ScuError> {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1).max(1);
        let rq = Command::c_store_rq(id, sop_class_uid, sop_instance_uid, Priority::Medium);
        dimse::send_message(&mut self.association, context_id, &rq, Some(data_set))?;
        match self.reader.receive(&mut self.association)? {
            Incoming::Message(m) if m.command.message_id_being_responded_to == Some(id) => {
                let status = m
                    .command
                    .status
                    .ok_or_else(|| ScuError::Unexpected("C-STORE-RSP without status".into()))?;
                Ok(StoreResponse {
                    status,
                    error_comment: m.command.error_comment,
                })
            }
            Incoming::Message(m) => Err(ScuError::Unexpected(format!(
                "{} for message {:?} while waiting for the response to {id}",
                m.command.field, m.command.message_id_being_responded_to
            ))),
            Incoming::Aborted(_) => Err(ScuError::Unexpected(
                "association aborted by the SCP".into(),
            )),
            other => Err(ScuError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Releases the association.
    pub fn release(self) -> Result<(), ScuError> {
        self.association
            .release()
            .map_err(|e| ScuError::Dimse(DimseError::from_association(e)))
    }

    /// Aborts the association.
    pub fn abort(self) {
        let _ = self.association.abort();
    }
}
