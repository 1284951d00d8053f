//! [`Session`]: one association for many exchanges, reopened when it breaks, with
//! the fallback from one information model to the next.

use std::time::{Duration, Instant};

use dimse::DimseError;
use dimse::Status;
use dimse::qr::InformationModel;

use crate::association::OpenAssociation;
use crate::client::CFindClient;
use crate::error::CFindError;
use crate::query::Query;
use crate::results::{ModelFallback, QueryResult};

/// Whether a failure status may mean "not this information model": the identifier
/// does not match the SOP class (A9xx), the SCP cannot process it (Cxxx), or the SOP
/// class is not supported (0122).
fn refuses_model(status: Status) -> bool {
    status.is_data_set_mismatch()
        || status.is_cannot_understand()
        || status == Status::SOP_CLASS_NOT_SUPPORTED
}

/// Whether an error leaves the association unusable (so it must be aborted).
fn breaks_association(error: &CFindError) -> bool {
    matches!(
        error,
        CFindError::Timeout { .. }
            | CFindError::Dimse { .. }
            | CFindError::Ended { .. }
            | CFindError::Protocol { .. }
    )
}

/// Whether an error on a reused association may only mean that the peer closed it
/// while it was idle, so one retry on a new association is worth it.
fn idle_close(error: &CFindError) -> bool {
    match error {
        CFindError::Ended { .. } => true,
        CFindError::Dimse { source, .. } => matches!(
            source,
            DimseError::ConnectionClosed | DimseError::Io(_) | DimseError::Association(_)
        ),
        _ => false,
    }
}

/// One association used for many exchanges.
///
/// The association is opened on first use and reopened after an error that broke it
/// (timeout, abort, closed connection), so a long polling loop survives a peer that
/// restarts or closes idle associations. Models the peer refused are remembered for
/// the session's later queries. Release it with [`Session::close`]; dropping it
/// releases it too.
#[derive(Debug)]
pub struct Session {
    client: CFindClient,
    open: Option<OpenAssociation>,
    refused: Vec<ModelFallback>,
    queries_sent: u64,
    associations_opened: u64,
}

impl Session {
    pub(crate) fn new(client: CFindClient) -> Self {
        Session {
            client,
            open: None,
            refused: Vec::new(),
            queries_sent: 0,
            associations_opened: 0,
        }
    }

    /// The client this session belongs to.
    pub fn client(&self) -> &CFindClient {
        &self.client
    }

    /// C-FIND requests sent so far (fallback retries included).
    pub fn queries_sent(&self) -> u64 {
        self.queries_sent
    }

    /// Associations opened so far.
    pub fn associations_opened(&self) -> u64 {
        self.associations_opened
    }

    /// Sends a C-ECHO and returns its round-trip time.
    pub fn echo(&mut self) -> Result<Duration, CFindError> {
        let client = self.client.clone();
        let open = self.ensure_open(false)?;
        let result = open.echo(&client);
        if let Err(e) = &result
            && breaks_association(e)
        {
            self.abort();
        }
        result
    }

    /// Runs a query within the client's query timeout.
    pub fn find<Q: Query>(&mut self, query: &Q) -> Result<QueryResult<Q::Match>, CFindError> {
        let deadline = Instant::now() + self.client.query_timeout();
        self.find_until(query, deadline)
    }

    /// Runs a query that must be complete by `deadline` (or the client's query timeout,
    /// whichever is sooner).
    ///
    /// Falls back to the next information model when the peer refuses one (not
    /// accepted at negotiation, association rejected, or a failure status such as
    /// A900/C000 with no match), and reports the model used in the result.
    pub fn find_until<Q: Query>(
        &mut self,
        query: &Q,
        deadline: Instant,
    ) -> Result<QueryResult<Q::Match>, CFindError> {
        let deadline = deadline.min(Instant::now() + self.client.query_timeout());
        let reused = self.open.as_ref().is_some_and(|open| open.used);
        match self.find_on_association(query, deadline) {
            Err(error) if reused && idle_close(&error) => {
                self.abort();
                self.find_on_association(query, deadline)
            }
            result => result,
        }
    }

    fn find_on_association<Q: Query>(
        &mut self,
        query: &Q,
        deadline: Instant,
    ) -> Result<QueryResult<Q::Match>, CFindError> {
        let client = self.client.clone();
        let models: Vec<InformationModel> = self
            .ensure_open(true)?
            .contexts
            .iter()
            .map(|c| c.model)
            .collect();
        let mut tried: Vec<ModelFallback> = Vec::new();
        let mut last_error = None;
        for (index, model) in models.into_iter().enumerate() {
            if self.refused.iter().any(|r| r.refused == model) {
                continue;
            }
            self.queries_sent += 1;
            let open = self.open.as_mut().expect("opened above");
            match open.find(&client, index, query, deadline) {
                Ok(mut result) => {
                    self.refused.append(&mut tried);
                    result.fallbacks = self.refused.clone();
                    return Ok(result);
                }
                Err(error) => {
                    if breaks_association(&error) {
                        self.abort();
                        return Err(error);
                    }
                    match error.status() {
                        Some(status) if refuses_model(status) => {
                            tried.push(ModelFallback {
                                refused: model,
                                reason: format!("C-FIND answered {status}"),
                            });
                            last_error = Some(error);
                        }
                        _ => return Err(error),
                    }
                }
            }
        }
        // Every usable model failed the same way: the query itself is at fault, not
        // a model, so nothing is remembered as refused.
        Err(last_error.unwrap_or_else(|| CFindError::NoModelAccepted {
            peer: client.peer(),
            models: client.models().to_vec(),
        }))
    }

    fn ensure_open(&mut self, need_model: bool) -> Result<&mut OpenAssociation, CFindError> {
        if self.open.is_none() {
            let open = self.open_with_fallback(need_model)?;
            self.associations_opened += 1;
            self.open = Some(open);
        }
        Ok(self.open.as_mut().expect("just opened"))
    }

    /// Proposes every model at once; when the peer rejects that association, proposes
    /// them one at a time, since some peers reject an association for a context they
    /// do not know instead of refusing just that context.
    fn open_with_fallback(&mut self, need_model: bool) -> Result<OpenAssociation, CFindError> {
        let client = &self.client;
        let models: Vec<InformationModel> = client
            .models()
            .iter()
            .copied()
            .filter(|m| !self.refused.iter().any(|r| r.refused == *m))
            .collect();
        let models = if models.is_empty() {
            client.models().to_vec()
        } else {
            models
        };
        let first = match client.establish(&models) {
            Ok(open) if !need_model || !open.contexts.is_empty() => return Ok(open),
            Ok(open) => {
                let _ = open.release();
                return Err(CFindError::NoModelAccepted {
                    peer: client.peer(),
                    models,
                });
            }
            Err(error @ CFindError::Rejected { .. }) if models.len() > 1 => error,
            Err(error) => return Err(error),
        };
        let mut refused = Vec::new();
        for model in &models {
            match client.establish(std::slice::from_ref(model)) {
                Ok(open) if !open.contexts.is_empty() => {
                    self.refused.append(&mut refused);
                    return Ok(open);
                }
                Ok(open) => {
                    let _ = open.release();
                    refused.push(ModelFallback {
                        refused: *model,
                        reason: "presentation context not accepted".into(),
                    });
                }
                Err(CFindError::Rejected { reason, .. }) => refused.push(ModelFallback {
                    refused: *model,
                    reason: format!("association rejected: {reason}"),
                }),
                Err(other) => return Err(other),
            }
        }
        Err(first)
    }

    /// Aborts the association (if open); the next exchange opens a new one.
    fn abort(&mut self) {
        if let Some(open) = self.open.take() {
            open.abort();
        }
    }

    /// Releases the association, if one is open. Errors are ignored: the queries are
    /// done and the peer has answered them.
    pub fn close(&mut self) {
        if let Some(open) = self.open.take() {
            let _ = open.release();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refusal_statuses() {
        for code in [0xA900, 0xC000, 0xC001, 0x0122] {
            assert!(refuses_model(Status(code)), "{code:04X}");
        }
        for code in [0xA700, 0x0110, 0xFE00] {
            assert!(!refuses_model(Status(code)), "{code:04X}");
        }
    }
}
