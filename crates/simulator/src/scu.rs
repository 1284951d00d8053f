//! A minimal C-STORE SCU: what the simulator forwards with, and what its benchmark
//! drives load with. It is not the project's sender (that is the `sender` crate,
//! which the simulator must not depend on) but it rides on the workspace's one SCU
//! association ([`dimse::ScuAssociation`]): the same message-ID rule, response
//! check and bounded waits as every other client. What it adds is C-STORE only:
//! picking an accepted context for an instance (with a fallback between native
//! transfer syntaxes) and one request at a time.

use dimse::{
    AeTitle, AeTitleError, AssociateError, CommandField, DimseError, PeerAddress, Priority,
    ScuAssociation, Timeouts,
};
use std::time::Duration;

/// How to reach the SCP: a small set of plain fields with defaults, turned into a
/// [`dimse::ScuOptions`] by [`StoreScu::connect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScuOptions {
    /// Our AE title.
    pub calling_ae_title: String,
    /// The SCP's AE title.
    pub called_ae_title: String,
    /// Every wait of the association. The default connects within 5 s (a
    /// destination that is down should fail a forwarding attempt fast, not hold
    /// its queue for the configuration's 30 s) and waits 30 s for everything else.
    pub timeouts: Timeouts,
    /// Largest PDU we accept.
    pub max_pdu_length: u32,
    /// TLS and user identity (plaintext, no identity by default).
    pub security: dimse::Security,
}

impl Default for ScuOptions {
    fn default() -> Self {
        ScuOptions {
            calling_ae_title: "SIM-SCU".into(),
            called_ae_title: "ANY-SCP".into(),
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                ..Timeouts::all(Duration::from_secs(30))
            },
            max_pdu_length: 131_072,
            security: dimse::Security::plain(),
        }
    }
}

/// What went wrong talking to the SCP.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScuError {
    /// An AE title of the options is not a valid AE title.
    #[error("invalid AE title in the C-STORE SCU options: {0}")]
    AeTitle(#[from] AeTitleError),
    /// The association could not be established (unreachable, rejected, no
    /// context accepted...).
    #[error(transparent)]
    Associate(#[from] AssociateError),
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
    /// The exchange failed (timeout, abort, wrong or unexpected response): the
    /// association is no longer usable.
    #[error("C-STORE to {peer}: {source}")]
    Dimse {
        /// `CALLED@host:port`.
        peer: String,
        /// What failed.
        #[source]
        source: DimseError,
    },
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
    association: ScuAssociation,
}

impl StoreScu {
    /// Associates with `peer`, proposing one presentation context per
    /// `(SOP class, transfer syntaxes)` pair.
    pub fn connect(
        peer: &PeerAddress,
        options: &ScuOptions,
        contexts: &[(String, Vec<String>)],
    ) -> Result<StoreScu, ScuError> {
        let mut dimse_options = dimse::ScuOptions::new(
            peer.clone(),
            AeTitle::new(&options.calling_ae_title)?,
            AeTitle::new(&options.called_ae_title)?,
        )
        .timeouts(options.timeouts)
        .max_pdu_length(options.max_pdu_length)
        .security(options.security.clone());
        for (sop_class, syntaxes) in contexts {
            dimse_options = dimse_options.propose(sop_class.as_str(), syntaxes);
        }
        Ok(StoreScu {
            association: dimse_options.establish()?,
        })
    }

    /// The peer, `CALLED@host:port`.
    pub fn peer(&self) -> &str {
        self.association.peer()
    }

    /// The TLS version and cipher suite negotiated, when the association runs over TLS.
    pub fn tls_session(&self) -> Option<&dimse::tls::TlsSession> {
        self.association.tls_session()
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
        // dicom-ul keeps only accepted contexts after negotiation.
        let accepted: Vec<_> = self
            .association
            .presentation_contexts()
            .iter()
            .filter(|pc| dimse::trim_value(&pc.abstract_syntax) == sop_class_uid)
            .collect();
        accepted
            .iter()
            .find(|pc| dimse::trim_value(&pc.transfer_syntax) == transfer_syntax_uid)
            .or_else(|| {
                accepted
                    .iter()
                    .find(|pc| fallback(dimse::trim_value(&pc.transfer_syntax)))
            })
            .map(|pc| (pc.id, dimse::trim_value(&pc.transfer_syntax).to_string()))
            .ok_or_else(|| ScuError::NoContext {
                sop_class_uid: sop_class_uid.to_string(),
                transfer_syntax_uid: transfer_syntax_uid.to_string(),
            })
    }

    /// Sends one C-STORE on context `context_id` and waits for its response.
    ///
    /// # Errors
    /// [`ScuError::Dimse`] when the exchange failed; the association should then be
    /// [aborted](Self::abort).
    pub fn store(
        &mut self,
        context_id: u8,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        data_set: &[u8],
    ) -> Result<StoreResponse, ScuError> {
        self.store_for(context_id, sop_class_uid, sop_instance_uid, data_set, None)
    }

    /// [`store`](Self::store) as a C-STORE sub-operation of a C-MOVE when
    /// `move_originator` is given: the request names the C-MOVE's requestor AE
    /// title and message ID (MoveOriginatorApplicationEntityTitle/MessageID).
    pub fn store_for(
        &mut self,
        context_id: u8,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        data_set: &[u8],
        move_originator: Option<(&str, u16)>,
    ) -> Result<StoreResponse, ScuError> {
        let id = self.association.next_message_id();
        let mut rq =
            dimse::Command::c_store_rq(id, sop_class_uid, sop_instance_uid, Priority::Medium);
        if let Some((ae_title, message_id)) = move_originator {
            rq = rq.moved_by(ae_title, message_id);
        }
        let response = self
            .association
            .send(context_id, &rq, Some(data_set))
            .and_then(|()| {
                self.association
                    .expect_response(id, CommandField::CStoreRsp)
            })
            .map_err(|source| self.dimse_error(source))?;
        Ok(StoreResponse {
            status: response.status,
            error_comment: response.command.error_comment,
        })
    }

    /// Releases the association.
    pub fn release(self) -> Result<(), ScuError> {
        let peer = self.association.peer().to_string();
        self.association
            .release()
            .map_err(|source| ScuError::Dimse { peer, source })
    }

    /// Aborts the association.
    pub fn abort(self) {
        self.association.abort();
    }

    fn dimse_error(&self, source: DimseError) -> ScuError {
        ScuError::Dimse {
            peer: self.association.peer().to_string(),
            source,
        }
    }
}
