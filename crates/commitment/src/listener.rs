//! The report listener: an SCP of our own that Storage Commitment SCPs open
//! associations to, to send their N-EVENT-REPORTs. One listener serves a whole run:
//! each report goes to the commitment waiting for its transaction UID.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::Pdu;
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, PresentationContextProposed,
    PresentationContextResultReason,
};
use dimse::scp::{
    AcceptOptions, Acceptor, Admitted, ContextDecision, Gate, NotAdmitted, ScpAssociation,
};
use dimse::{
    AeTitle, Command, CommandField, DimseError, Incoming, MessageReader, PduChannel, Status,
};
use parking_lot::Mutex;
use serde::Serialize;

use crate::report::{EventReport, judge};
use crate::{CommitmentError, ListenerOptions, ReportVia};

/// A report the listener received for a transaction no commitment was waiting for
/// (one that timed out already, a second report for the same transaction, or
/// another tool's): answered with success and kept here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnknownReport {
    /// The transaction UID it names.
    pub transaction_uid: String,
    /// Who sent it (calling AE title), or `same association` when it came on a
    /// commitment's own association.
    pub from: String,
    /// Its event type.
    pub event_type: u16,
    /// Instances it says are committed.
    pub committed: usize,
    /// Instances it says are not.
    pub failed: usize,
}

/// A report the listener could not use (unreadable event information, no
/// Transaction UID, an unknown event type): answered with a failure status and
/// kept here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MalformedReport {
    /// Who sent it (calling AE title).
    pub from: String,
    /// The status we answered with.
    pub answered: Status,
    /// What is wrong with it.
    pub problem: String,
}

/// What the listener has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ListenerStats {
    /// Associations accepted.
    pub associations: u64,
    /// Associations refused (wrong called AE title, malformed request, failed TLS
    /// handshake, silence within the ARTIM timeout).
    pub refused: u64,
    /// N-EVENT-REPORT-RQs received, readable or not.
    pub reports: u64,
    /// Those delivered to a waiting commitment.
    pub delivered: u64,
}

/// A report handed to the commitment waiting for it.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub(crate) report: EventReport,
    pub(crate) via: ReportVia,
    pub(crate) at: Instant,
}

#[derive(Debug)]
struct Shared {
    gate: Gate,
    waiting: Mutex<HashMap<String, mpsc::Sender<Arrival>>>,
    unknown: Mutex<Vec<UnknownReport>>,
    malformed: Mutex<Vec<MalformedReport>>,
    /// Set when the listener stops (its acceptor's flag).
    shutdown: Arc<AtomicBool>,
    associations: AtomicU64,
    refused: AtomicU64,
    reports: AtomicU64,
    delivered: AtomicU64,
}

impl Shared {
    /// Hands `arrival` to the commitment waiting for its transaction, or records it
    /// as unknown.
    fn dispatch(&self, arrival: Arrival) {
        let uid = arrival.report.transaction_uid.clone();
        let waiter = self.waiting.lock().remove(&uid);
        let unknown = UnknownReport {
            transaction_uid: uid,
            from: match &arrival.via {
                ReportVia::SameAssociation => "same association".into(),
                ReportVia::NewAssociation { calling_ae_title } => calling_ae_title.clone(),
            },
            event_type: arrival.report.event_type,
            committed: arrival.report.committed.len(),
            failed: arrival.report.failed.len(),
        };
        let Some(tx) = waiter else {
            self.unknown.lock().push(unknown);
            return;
        };
        // Counted before the hand-over: the waiter may read the stats the moment it
        // has its report, and must find it counted. A waiter gone meanwhile (it
        // timed out) takes the count back.
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if tx.send(arrival).is_err() {
            self.delivered.fetch_sub(1, Ordering::Relaxed);
            self.unknown.lock().push(unknown);
        }
    }
}

/// A running report listener. Dropping it stops it (as [`shutdown`](Self::shutdown)
/// does).
///
/// Share it between committers with an `Arc` ([`Committer::with_listener`](crate::Committer::with_listener)).
#[derive(Debug)]
pub struct ReportListener {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    acceptor: Mutex<Acceptor>,
}

impl ReportListener {
    /// Binds and starts listening.
    ///
    /// # Errors
    /// An invalid option, the address cannot be bound, the TLS files cannot be read,
    /// or the accept thread cannot start.
    pub fn start(options: ListenerOptions) -> Result<ReportListener, CommitmentError> {
        let (gate, listener) = Gate::open(options.listen)?;
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            gate,
            waiting: Mutex::new(HashMap::new()),
            unknown: Mutex::new(Vec::new()),
            malformed: Mutex::new(Vec::new()),
            shutdown: stopping.clone(),
            associations: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            reports: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        });
        let serving = shared.clone();
        let acceptor = Acceptor::start(listener, "commitment-report", stopping, move |stream| {
            serve(&serving, stream)
        })
        .map_err(|source| CommitmentError::Thread {
            what: "accept",
            source,
        })?;
        Ok(ReportListener {
            shared,
            local_addr: acceptor.local_addr(),
            acceptor: Mutex::new(acceptor),
        })
    }

    /// The address it listens on (with the port the system picked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The AE title it answers to.
    pub fn ae_title(&self) -> &AeTitle {
        &self.shared.gate.options().ae_title
    }

    /// Reports received for a transaction nobody was waiting for.
    pub fn unknown_reports(&self) -> Vec<UnknownReport> {
        self.shared.unknown.lock().clone()
    }

    /// Reports that could not be read.
    pub fn malformed_reports(&self) -> Vec<MalformedReport> {
        self.shared.malformed.lock().clone()
    }

    /// What the listener has seen so far.
    pub fn stats(&self) -> ListenerStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.shared;
        ListenerStats {
            associations: get(&s.associations),
            refused: get(&s.refused),
            reports: get(&s.reports),
            delivered: get(&s.delivered),
        }
    }

    /// Stops listening and closes the open associations; waits for their threads.
    pub fn shutdown(&self) {
        self.acceptor.lock().stop();
    }

    /// Registers a commitment waiting for `transaction_uid`: done before its
    /// N-ACTION is sent, so that a report arriving at once finds its waiter.
    pub(crate) fn expect(&self, transaction_uid: &str) -> Waiting {
        let (tx, rx) = mpsc::channel();
        self.shared
            .waiting
            .lock()
            .insert(transaction_uid.to_string(), tx);
        Waiting {
            shared: self.shared.clone(),
            transaction_uid: transaction_uid.to_string(),
            rx,
        }
    }

    /// Routes a report that came on a commitment's own association but names
    /// another transaction.
    pub(crate) fn dispatch_foreign(&self, report: EventReport) {
        self.shared.dispatch(Arrival {
            report,
            via: ReportVia::SameAssociation,
            at: Instant::now(),
        });
    }
}

impl Drop for ReportListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A commitment's registration with the listener; dropping it unregisters, so that
/// a late report is recorded as unknown.
#[derive(Debug)]
pub(crate) struct Waiting {
    shared: Arc<Shared>,
    transaction_uid: String,
    pub(crate) rx: mpsc::Receiver<Arrival>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.shared.waiting.lock().remove(&self.transaction_uid);
    }
}

fn refuse(shared: &Shared) {
    shared.refused.fetch_add(1, Ordering::Relaxed);
}

fn serve(shared: &Shared, stream: TcpStream) {
    let Admitted { stream, request } = match shared.gate.admit(stream) {
        Ok(admitted) => admitted,
        // A connection cut by our own stop was not refused.
        Err(NotAdmitted::Unreadable(_)) if shared.shutdown.load(Ordering::Acquire) => return,
        Err(_) => return refuse(shared),
    };
    // The SCP sends the N-EVENT-REPORT, so it asks (usually) for the SCP role of
    // the Push Model with SCU=0/SCP=1: grant what it asks. Without role selection
    // the default roles apply, and the report is accepted all the same.
    let accept = AcceptOptions::new()
        .max_pdu_length(shared.gate.options().max_pdu_length)
        .grant_requested_roles();
    let Ok(mut association) = dimse::scp::accept(stream, &request, &accept, decide) else {
        return refuse(shared);
    };
    shared.associations.fetch_add(1, Ordering::Relaxed);
    run(shared, &mut association);
}

/// The Storage Commitment Push Model and Verification, each with the first
/// proposed transfer syntax dicom-rs can read.
fn decide(pc: &PresentationContextProposed) -> ContextDecision {
    let abstract_syntax = dimse::trim_value(&pc.abstract_syntax);
    if abstract_syntax != uids::STORAGE_COMMITMENT_PUSH_MODEL
        && abstract_syntax != uids::VERIFICATION
    {
        return ContextDecision::Refuse(
            PresentationContextResultReason::AbstractSyntaxNotSupported,
        );
    }
    pc.transfer_syntaxes
        .iter()
        .map(|ts| dimse::trim_value(ts))
        .find(|ts| {
            TransferSyntaxRegistry
                .get(ts)
                .is_some_and(|ts| !ts.is_unsupported())
        })
        .map_or(
            ContextDecision::Refuse(PresentationContextResultReason::TransferSyntaxesNotSupported),
            |ts| ContextDecision::Accept {
                transfer_syntax: ts.to_string(),
            },
        )
}

fn run(shared: &Shared, association: &mut ScpAssociation) {
    let mut reader = MessageReader::new().with_max_data_set_len(16 << 20);
    let calling = association.calling_ae_title().to_string();
    loop {
        let message = match reader.receive(association) {
            Ok(Incoming::Message(message)) => message,
            Ok(Incoming::ReleaseRequested) => {
                let _ = association.send_pdu(&Pdu::ReleaseRP);
                return;
            }
            Ok(Incoming::Aborted(_)) | Err(DimseError::ConnectionClosed) => return,
            Err(DimseError::Timeout) => {
                return association.abort(AbortRQSource::ServiceUser);
            }
            Err(_) if shared.shutdown.load(Ordering::Acquire) => return,
            Ok(_) | Err(_) => return protocol_abort(association),
        };
        let pc_id = message.presentation_context_id;
        let Some(context) = association.accepted_context(pc_id) else {
            return protocol_abort(association);
        };
        let transfer_syntax = context.transfer_syntax.clone();
        let command = message.command;
        let (status, comment) = match command.field {
            CommandField::CEchoRq => (Status::SUCCESS, None),
            CommandField::NEventReportRq => {
                shared.reports.fetch_add(1, Ordering::Relaxed);
                match judge(&command, message.data.as_deref(), &transfer_syntax) {
                    Ok(report) => {
                        shared.dispatch(Arrival {
                            report,
                            via: ReportVia::NewAssociation {
                                calling_ae_title: calling.clone(),
                            },
                            at: Instant::now(),
                        });
                        (Status::SUCCESS, None)
                    }
                    Err((status, problem)) => {
                        shared.malformed.lock().push(MalformedReport {
                            from: calling.clone(),
                            answered: status,
                            problem: problem.clone(),
                        });
                        (status, Some(problem))
                    }
                }
            }
            field if field.is_response() => return protocol_abort(association),
            _ => (Status::UNRECOGNIZED_OPERATION, None),
        };
        if let Some(mut response) = Command::response_to(&command, status, false) {
            if let Some(comment) = comment {
                response = response.with_error_comment(comment);
            }
            match dimse::send_message(association, pc_id, &response, None) {
                Ok(()) => {}
                Err(DimseError::Timeout) => return association.abort(AbortRQSource::ServiceUser),
                Err(_) => return,
            }
        }
    }
}

fn protocol_abort(association: &mut ScpAssociation) {
    association.abort(AbortRQSource::ServiceProvider(
        AbortRQServiceProviderReason::UnexpectedPdu,
    ));
}
