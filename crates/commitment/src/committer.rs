//! The Storage Commitment SCU: N-ACTION out, N-EVENT-REPORT in.

use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dimse::{Command, CommandField, Incoming, ScuAssociation, Status, StatusClass};

use crate::listener::{ReportListener, Waiting};
use crate::report::{ACTION_REQUEST_COMMITMENT, encode_data_set, judge};
use crate::{CommitmentError, CommitmentOptions, CommitmentOutcome, CommitmentRequest, ReportVia};

/// How long one look at the N-ACTION's association lasts when the listener may
/// deliver the report too: between two looks the listener is checked.
const POLL: Duration = Duration::from_millis(100);

/// Runs Storage Commitment requests, one association per request, with the
/// listener (if any) kept across them.
#[derive(Debug)]
pub struct Committer {
    options: CommitmentOptions,
    listener: Option<Arc<ReportListener>>,
}

impl Committer {
    /// A committer with the options' listener started (when they have one).
    ///
    /// # Errors
    /// An option that cannot work (a zero report timeout, the association released
    /// with no listener for the report), or the listener cannot start.
    pub fn new(options: CommitmentOptions) -> Result<Committer, CommitmentError> {
        options.validate(options.listener.is_some())?;
        let listener = match &options.listener {
            Some(listen) => Some(Arc::new(ReportListener::start(listen.clone())?)),
            None => None,
        };
        Ok(Committer { options, listener })
    }

    /// A committer whose reports on new associations come to `listener`, already
    /// running and perhaps shared with other committers (the options' own
    /// listener options, if any, are ignored).
    ///
    /// # Errors
    /// An option that cannot work (a zero report timeout).
    pub fn with_listener(
        options: CommitmentOptions,
        listener: Arc<ReportListener>,
    ) -> Result<Committer, CommitmentError> {
        options.validate(true)?;
        Ok(Committer {
            options,
            listener: Some(listener),
        })
    }

    /// The listener reports on new associations come to.
    pub fn listener(&self) -> Option<&Arc<ReportListener>> {
        self.listener.as_ref()
    }

    /// The options.
    pub fn options(&self) -> &CommitmentOptions {
        &self.options
    }

    /// Asks the SCP to commit `request`'s instances and waits for its report.
    ///
    /// Opens an association proposing the Storage Commitment Push Model, sends the
    /// N-ACTION-RQ and reads the N-ACTION-RSP; a refusal ends the commitment there.
    /// Then waits, at most the report timeout, for the N-EVENT-REPORT-RQ naming the
    /// request's transaction: on the same association when it is kept open, on the
    /// listener when there is one, whichever comes first. Every N-EVENT-REPORT-RQ
    /// is answered (success, or a failure status for one that cannot be read).
    ///
    /// # Errors
    /// Only for a commitment that could not be run: an invalid request, no
    /// association, no Storage Commitment context, the N-ACTION-RQ not sent. What
    /// the SCP answered, or its silence, is in the [`CommitmentOutcome`].
    pub fn commit(
        &self,
        request: &CommitmentRequest,
    ) -> Result<CommitmentOutcome, CommitmentError> {
        request.validate()?;
        let mut association = self.options.association().establish()?;
        let peer = association.peer().to_string();
        let Some((pc_id, ts)) = association
            .accepted_context(uids::STORAGE_COMMITMENT_PUSH_MODEL)
            .map(|pc| (pc.id, pc.transfer_syntax.clone()))
        else {
            let _ = association.release();
            return Err(CommitmentError::NotSupported { peer });
        };
        let data = match encode_data_set(&request.action_information(), &ts) {
            Ok(data) => data,
            Err(problem) => {
                let _ = association.release();
                return Err(CommitmentError::Request(problem));
            }
        };
        // Registered before the N-ACTION goes: the report may overtake its response.
        let waiting = self
            .listener
            .as_ref()
            .map(|l| l.expect(request.transaction_uid()));
        let id = association.next_message_id();
        let action = Command::n_action_rq(
            id,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
            ACTION_REQUEST_COMMITMENT,
            true,
        );
        let sent_at = Instant::now();
        if let Err(source) = association.send(pc_id, &action, Some(&data)) {
            association.abort();
            return Err(CommitmentError::Send { peer, source });
        }
        let mut outcome =
            CommitmentOutcome::new(request.transaction_uid(), &peer, request.instances().len());
        let dimse_wait = association.timeouts().dimse;
        match association.expect_response_within(id, CommandField::NActionRsp, dimse_wait) {
            Ok(response) => {
                outcome.action_status = Some(response.status);
                outcome.action_error_comment = response.command.error_comment;
            }
            Err(e) => {
                outcome.interrupted = Some(format!("no N-ACTION-RSP: {e}"));
                association.abort();
                return Ok(outcome);
            }
        }
        let accepted = outcome
            .action_status
            .is_some_and(|s| matches!(s.class(), StatusClass::Success | StatusClass::Warning));
        if !accepted {
            let _ = association.release();
            return Ok(outcome);
        }
        let association = if self.options.keep_association_open {
            Some(association)
        } else {
            let _ = association.release();
            None
        };
        let mut wait = Wait {
            committer: self,
            request,
            outcome,
            association,
            waiting,
            sent_at,
            deadline: Instant::now() + self.options.report_timeout,
        };
        wait.run();
        if let Some(association) = wait.association.take() {
            let _ = association.release();
        }
        Ok(wait.outcome)
    }
}

/// The wait for the report.
struct Wait<'a> {
    committer: &'a Committer,
    request: &'a CommitmentRequest,
    outcome: CommitmentOutcome,
    association: Option<ScuAssociation>,
    waiting: Option<Waiting>,
    sent_at: Instant,
    deadline: Instant,
}

impl Wait<'_> {
    fn run(&mut self) {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.outcome.timed_out = true;
                return;
            }
            if self.association.is_some() {
                let slice = if self.waiting.is_some() {
                    left.min(POLL)
                } else {
                    left
                };
                if self.look_at_association(slice) {
                    return;
                }
            }
            if let Some(waiting) = &self.waiting {
                let wait = if self.association.is_some() {
                    Duration::ZERO
                } else {
                    left
                };
                match waiting.rx.recv_timeout(wait) {
                    Ok(arrival) => {
                        let after = arrival.at.saturating_duration_since(self.sent_at);
                        self.outcome.take_report(
                            arrival.report,
                            self.request.instances(),
                            arrival.via,
                            after,
                        );
                        return;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        // The listener is gone (shut down): nothing more can come there.
                        self.waiting = None;
                        if self.association.is_none() {
                            self.outcome.interrupted =
                                Some("the report listener was shut down".into());
                            return;
                        }
                    }
                }
            } else if self.association.is_none() {
                return;
            }
        }
    }

    /// Waits at most `slice` for a message on the association; true once our
    /// report is in.
    fn look_at_association(&mut self, slice: Duration) -> bool {
        let Some(association) = self.association.as_mut() else {
            return false;
        };
        let incoming = association.receive_within(slice);
        let message = match incoming {
            Ok(Incoming::Message(message)) => message,
            Err(e) if e.is_timeout() => return false,
            Ok(Incoming::ReleaseRequested) => {
                // The SCP ends the association: its report will come on a new one.
                let _ = association.confirm_release();
                self.association = None;
                return self.lost("the SCP released the association before reporting");
            }
            Ok(other) => {
                self.association = None;
                return self.lost(&format!("association ended before the report: {other:?}"));
            }
            Err(e) => {
                if let Some(association) = self.association.take() {
                    association.abort();
                }
                return self.lost(&format!(
                    "association lost while waiting for the report: {e}"
                ));
            }
        };
        let command = &message.command;
        if command.field != CommandField::NEventReportRq {
            if command.field.is_response() {
                self.outcome
                    .anomalies
                    .push(format!("unexpected {} on the association", command.field));
            } else if let Some(response) =
                Command::response_to(command, Status::UNRECOGNIZED_OPERATION, false)
            {
                let _ = association.send(message.presentation_context_id, &response, None);
            }
            return false;
        }
        let ts = association
            .presentation_contexts()
            .iter()
            .find(|pc| pc.id == message.presentation_context_id)
            .map(|pc| pc.transfer_syntax.clone())
            .unwrap_or_default();
        let judged = judge(command, message.data.as_deref(), &ts);
        let (status, comment) = match &judged {
            Ok(_) => (Status::SUCCESS, None),
            Err((status, problem)) => (*status, Some(problem.clone())),
        };
        if let Some(mut response) = Command::response_to(command, status, false) {
            if let Some(comment) = comment {
                response = response.with_error_comment(comment);
            }
            let _ = association.send(message.presentation_context_id, &response, None);
        }
        match judged {
            Ok(report) if report.transaction_uid == self.request.transaction_uid() => {
                let after = self.sent_at.elapsed();
                self.outcome.take_report(
                    report,
                    self.request.instances(),
                    ReportVia::SameAssociation,
                    after,
                );
                true
            }
            Ok(report) => {
                self.outcome.anomalies.push(format!(
                    "a report for another transaction ({}) came on the association",
                    report.transaction_uid
                ));
                if let Some(listener) = &self.committer.listener {
                    listener.dispatch_foreign(report);
                }
                false
            }
            Err((status, problem)) => {
                self.outcome.anomalies.push(format!(
                    "unreadable report on the association, answered {:04X}: {problem}",
                    status.0
                ));
                false
            }
        }
    }

    /// The association is gone: the wait goes on at the listener, if any.
    fn lost(&mut self, why: &str) -> bool {
        if self.waiting.is_none() {
            self.outcome.interrupted = Some(why.to_string());
            return true;
        }
        false
    }
}
