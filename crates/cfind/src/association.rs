//! One open association of the C-FIND client: the query contexts the peer accepted,
//! and the C-ECHO and C-FIND exchanges on them.
//!
//! The association itself is the workspace's one SCU association
//! ([`dimse::ScuAssociation`]): message IDs, the response rule (the expected command,
//! naming its request, with a status) and the establish errors come from there. What
//! is C-FIND's own lives here: the query deadline beside the DIMSE timeout, the
//! C-CANCEL at a result limit, and the final status some SCPs embed in the last
//! identifier.

use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::{TransferSyntax, TransferSyntaxIndex, TransferSyntaxRegistry};
use dimse::qr::InformationModel;
use dimse::{
    AssociateError, Command, CommandField, DimseError, ErrorChain, Priority, Response,
    ScuAssociation, ScuOptions, Status, StatusClass,
};

use crate::client::CFindClient;
use crate::error::{CFindError, find_operation};
use crate::identifier::Identifier;
use crate::query::Query;
use crate::results::{Match, QueryResult};

/// An accepted query context: the model, its presentation context and the transfer
/// syntax identifiers travel in.
#[derive(Clone, Copy)]
pub(crate) struct QueryContext {
    pub(crate) model: InformationModel,
    id: u8,
    transfer_syntax: &'static TransferSyntax,
}

impl std::fmt::Debug for QueryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryContext")
            .field("model", &self.model)
            .field("id", &self.id)
            .field("transfer_syntax", &self.transfer_syntax.uid())
            .finish()
    }
}

/// An established association with the query SCP.
#[derive(Debug)]
pub(crate) struct OpenAssociation {
    association: ScuAssociation,
    /// Accepted query contexts in order of preference.
    pub(crate) contexts: Vec<QueryContext>,
    /// Whether an exchange happened on it: a failure on a used association may just
    /// mean the peer closed it while idle.
    pub(crate) used: bool,
}

/// Opens an association for `client` proposing `models` (plus Verification).
pub(crate) fn establish(
    client: &CFindClient,
    models: &[InformationModel],
) -> Result<OpenAssociation, CFindError> {
    let mut options = ScuOptions::new(
        client.peer_address().clone(),
        client.calling_ae_title().clone(),
        client.called_ae_title().clone(),
    )
    .timeouts(client.timeouts())
    .max_pdu_length(client.max_pdu_length())
    .security(client.security().clone())
    .quick_ack(client.has_quick_ack())
    .propose_verification();
    for model in models {
        options = options.propose(
            model.sop_class_uid(),
            [
                uids::EXPLICIT_VR_LITTLE_ENDIAN,
                uids::IMPLICIT_VR_LITTLE_ENDIAN,
            ],
        );
    }
    let association = options
        .establish()
        .map_err(|e| associate_error(e, models))?;
    let contexts = models
        .iter()
        .filter_map(|model| {
            let pc = association.accepted_context(model.sop_class_uid())?;
            let transfer_syntax = TransferSyntaxRegistry.get(&pc.transfer_syntax)?;
            Some(QueryContext {
                model: *model,
                id: pc.id,
                transfer_syntax,
            })
        })
        .collect();
    Ok(OpenAssociation {
        association,
        contexts,
        used: false,
    })
}

/// The one translation of why an association could not be opened into the client's
/// error.
fn associate_error(error: AssociateError, models: &[InformationModel]) -> CFindError {
    let peer = error.peer().to_string();
    match error {
        AssociateError::Connect { source, .. } => CFindError::Connect {
            peer,
            detail: source.to_string(),
        },
        ref rejected @ AssociateError::Rejected {
            ref description, ..
        } => CFindError::Rejected {
            transient: rejected.is_transient(),
            reason: description.clone(),
            peer,
        },
        AssociateError::NoAcceptedContexts { .. } => CFindError::NoModelAccepted {
            peer,
            models: models.to_vec(),
        },
        other => CFindError::Association {
            timed_out: other.is_timeout(),
            detail: ErrorChain(&other).to_string(),
            peer,
        },
    }
}

/// What a wait for a response is bounded by, for the error that says it ran out.
struct Wait {
    /// How long the next read may block.
    wait: Duration,
    /// `DIMSE timeout` or `query deadline`.
    what: &'static str,
    /// When the wait being reported began: the request for a DIMSE timeout (the wait
    /// for that one response), the query's start for the deadline (what it bounds).
    since: Instant,
}

impl Wait {
    /// The nearer of the DIMSE timeout and the query deadline.
    fn until(
        dimse_timeout: Duration,
        started: Instant,
        deadline: Instant,
    ) -> Result<Wait, &'static str> {
        let now = Instant::now();
        if now >= deadline {
            return Err("query deadline");
        }
        let remaining = deadline - now;
        Ok(if remaining < dimse_timeout {
            Wait {
                wait: remaining,
                what: "query deadline",
                since: started,
            }
        } else {
            Wait {
                wait: dimse_timeout,
                what: "DIMSE timeout",
                since: now,
            }
        })
    }
}

impl OpenAssociation {
    /// Waits for the response to `id` within `min(DIMSE timeout, deadline)`, checked
    /// by the one response rule of [`ScuAssociation::expect_response_within`].
    fn response(
        &mut self,
        client: &CFindClient,
        operation: &str,
        id: u16,
        expected: CommandField,
        (started, deadline): (Instant, Instant),
    ) -> Result<Response, CFindError> {
        let timeout = |what, waited| CFindError::Timeout {
            peer: client.peer(),
            operation: operation.to_string(),
            what,
            waited,
        };
        let wait = Wait::until(client.timeouts().dimse, started, deadline)
            .map_err(|what| timeout(what, started.elapsed()))?;
        self.association
            .expect_response_within(id, expected, wait.wait)
            .map_err(|source| match source {
                e if e.is_timeout() => timeout(wait.what, wait.since.elapsed()),
                source => exchange_error(client, operation, source),
            })
    }

    pub(crate) fn echo(&mut self, client: &CFindClient) -> Result<Duration, CFindError> {
        let operation = "C-ECHO";
        let context = self
            .association
            .accepted_context(uids::VERIFICATION)
            .map(|pc| pc.id)
            .ok_or_else(|| CFindError::EchoNotAccepted {
                peer: client.peer(),
            })?;
        self.used = true;
        let id = self.association.next_message_id();
        let started = Instant::now();
        self.association
            .send(context, &Command::c_echo_rq(id), None)
            .map_err(|source| exchange_error(client, operation, source))?;
        let response = self.response(
            client,
            operation,
            id,
            CommandField::CEchoRsp,
            (started, started + client.timeouts().dimse),
        )?;
        let rtt = started.elapsed();
        if response.status.is_delivered() {
            Ok(rtt)
        } else {
            Err(CFindError::Failed {
                peer: client.peer(),
                operation: operation.into(),
                status: response.status,
                error_comment: response.command.error_comment,
            })
        }
    }

    /// One C-FIND on `context` until its final response.
    pub(crate) fn find<Q: Query>(
        &mut self,
        client: &CFindClient,
        context: usize,
        query: &Q,
        deadline: Instant,
    ) -> Result<QueryResult<Q::Match>, CFindError> {
        let QueryContext {
            model,
            id: context_id,
            transfer_syntax,
        } = self.contexts[context];
        let keys = query.keys();
        let operation = find_operation(model, keys.level());
        let identifier = keys.encode(model, transfer_syntax)?;
        self.used = true;
        let id = self.association.next_message_id();
        let request = Command::c_find_rq(id, model.sop_class_uid(), Priority::Medium);
        let started = Instant::now();
        let exchange = |source| exchange_error(client, &operation, source);
        self.association
            .send(context_id, &request, Some(&identifier))
            .map_err(exchange)?;
        let mut matches = Vec::new();
        let mut optional_keys_unsupported = 0;
        let mut cancelled = false;
        loop {
            let response = self.response(
                client,
                &operation,
                id,
                CommandField::CFindRsp,
                (started, deadline),
            )?;
            let mut status = response.status;
            if status.class() == StatusClass::Pending {
                let Some(data) = response.data else {
                    // A pending response must carry a match; one without is useless but
                    // harmless, so it is skipped rather than failing the query.
                    continue;
                };
                let decoded = Identifier::decode(&data, transfer_syntax).map_err(|e| {
                    CFindError::Protocol {
                        peer: client.peer(),
                        operation: operation.clone(),
                        detail: format!("undecodable identifier: {e}"),
                    }
                })?;
                let has_keys = decoded
                    .identifier
                    .iter()
                    .any(|(tag, _)| tag != dicom_dictionary_std::tags::QUERY_RETRIEVE_LEVEL);
                if has_keys && !cancelled {
                    if status == Status::PENDING_WARNING {
                        optional_keys_unsupported += 1;
                    }
                    matches.push(Q::Match::from_identifier(decoded.identifier));
                }
                match decoded.embedded_status {
                    // dicom-rs #434: some SCPs put the final status in the last
                    // identifier and send nothing more.
                    Some(embedded) if embedded.class() != StatusClass::Pending => {
                        status = embedded;
                    }
                    _ => {
                        if !cancelled && keys.limit().is_some_and(|limit| matches.len() >= limit) {
                            self.association
                                .send(context_id, &Command::c_cancel_rq(id), None)
                                .map_err(exchange)?;
                            cancelled = true;
                        }
                        continue;
                    }
                }
            }
            return match status.class() {
                StatusClass::Failure => Err(CFindError::Failed {
                    peer: client.peer(),
                    operation,
                    status,
                    error_comment: response.command.error_comment,
                }),
                _ => Ok(QueryResult {
                    model,
                    fallbacks: Vec::new(),
                    matches,
                    status,
                    truncated: cancelled,
                    optional_keys_unsupported,
                    elapsed: started.elapsed(),
                }),
            };
        }
    }

    /// Releases the association, waiting at most the ACSE timeout.
    pub(crate) fn release(self) -> Result<(), DimseError> {
        self.association.release()
    }

    /// Aborts the association.
    pub(crate) fn abort(self) {
        self.association.abort();
    }
}

/// An exchange that broke: the peer ended the association, broke the protocol, or
/// the connection failed.
fn exchange_error(client: &CFindClient, operation: &str, source: DimseError) -> CFindError {
    let peer = client.peer();
    let operation = operation.to_string();
    match source {
        DimseError::PeerReleased => CFindError::Ended {
            peer,
            operation,
            what: "released",
        },
        DimseError::PeerAborted(_) => CFindError::Ended {
            peer,
            operation,
            what: "aborted",
        },
        DimseError::Protocol(detail) => CFindError::Protocol {
            peer,
            operation,
            detail,
        },
        source => CFindError::Dimse {
            peer,
            operation,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::{
        AssociationRJ, AssociationRJResult, AssociationRJServiceUserReason, AssociationRJSource,
    };
    use dimse::AeTitle;

    const PEER: &str = "PACS@127.0.0.1:104";

    #[test]
    fn each_establish_failure_becomes_the_clients_error_naming_the_peer() {
        let models = [InformationModel::StudyRoot];
        let refused = AssociateError::Connect {
            peer: PEER.into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let error = associate_error(refused, &models);
        assert!(matches!(error, CFindError::Connect { .. }), "{error}");
        assert!(error.to_string().contains(PEER), "{error}");

        let rejection = AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CalledAETitleNotRecognized,
            ),
        };
        let rejected = AssociateError::Rejected {
            peer: PEER.into(),
            calling: AeTitle::new("DICOM-AUTO").unwrap(),
            description: dimse::describe_rejection(&rejection),
            rejection,
        };
        let error = associate_error(rejected, &models);
        assert!(
            matches!(&error, CFindError::Rejected { transient: true, reason, .. } if reason.contains("transient")),
            "{error}"
        );
        assert!(error.is_transient());

        let none = AssociateError::NoAcceptedContexts {
            peer: PEER.into(),
            proposed: vec![models[0].sop_class_uid().into()],
        };
        let error = associate_error(none, &models);
        assert!(matches!(&error, CFindError::NoModelAccepted { models: m, .. } if m == &models));

        let silent = AssociateError::Negotiation {
            peer: PEER.into(),
            stage: "negotiating",
            source: DimseError::Timeout,
        };
        let error = associate_error(silent, &models);
        assert!(
            matches!(
                error,
                CFindError::Association {
                    timed_out: true,
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.is_timeout() && error.to_string().contains(PEER));
    }

    #[test]
    fn the_nearer_of_the_dimse_timeout_and_the_deadline_bounds_a_wait() {
        let started = Instant::now();
        let near = Wait::until(
            Duration::from_secs(60),
            started,
            started + Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(near.what, "query deadline");
        assert!(near.wait <= Duration::from_secs(1));
        let far = Wait::until(
            Duration::from_secs(1),
            started,
            started + Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            (far.what, far.wait),
            ("DIMSE timeout", Duration::from_secs(1))
        );
        let past = Wait::until(Duration::from_secs(1), started, started);
        assert_eq!(past.err(), Some("query deadline"));
    }
}
