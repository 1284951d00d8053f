//! The sink's storage SCP: it accepts the router's forwarding associations under its
//! own AE title, answers every C-STORE at once and hands each arrival to comparator
//! threads that record it in the [`Ledger`].
//!
//! Its answers never depend on the comparison (every readable C-STORE is answered
//! with success, an unreadable one too: it is recorded as a corrupt delivery), so the
//! sink observes the router without steering it.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::Pdu;
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, PresentationContextProposed,
    PresentationContextResultReason,
};
use dimse::scp::{
    AcceptOptions, Acceptor, Admitted, ContextDecision, Gate, ListenOptions, NotAdmitted,
    ScpAssociation,
};
use dimse::tls::TlsServerOptions;
use dimse::{
    AeTitle, Command, CommandField, DimseError, Incoming, MessageReader, PduChannel, Status,
};
use serde::Serialize;

use crate::error::SinkError;
use crate::ledger::{Arrival, Ledger};

/// The sink's default AE title.
pub const DEFAULT_SINK_AE_TITLE: &str = "DICOM_AUTO_SINK";

/// Arrivals waiting for a comparator: beyond this the listener waits (backpressure on
/// the router rather than unbounded memory).
const ARRIVALS_QUEUED: usize = 64;

/// How the sink listens.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    listen: ListenOptions,
    max_associations: usize,
    max_data_set_len: usize,
    comparators: usize,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions::new()
    }
}

impl SinkOptions {
    /// 127.0.0.1, a port the system picks, AE title [`DEFAULT_SINK_AE_TITLE`], 30 s
    /// to negotiate, 60 s for each read and write, 64 associations, one comparator
    /// per core.
    pub fn new() -> Self {
        SinkOptions {
            listen: ListenOptions::new(
                AeTitle::new(DEFAULT_SINK_AE_TITLE).expect("a valid AE title"),
            ),
            max_associations: 64,
            max_data_set_len: 4 << 30,
            comparators: thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    /// The address to listen on (port 0: one the system picks).
    pub fn bind(mut self, address: SocketAddr) -> Self {
        self.listen.bind = address;
        self
    }

    /// The AE title associations must call; others are refused (called AE title not
    /// recognized).
    pub fn ae_title(mut self, title: AeTitle) -> Self {
        self.listen.ae_title = title;
        self
    }

    /// How long a new connection has for its TLS handshake and A-ASSOCIATE-RQ.
    pub fn artim_timeout(mut self, timeout: Duration) -> Self {
        self.listen.artim_timeout = timeout;
        self
    }

    /// How long an association may stay silent before the sink aborts it.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.listen.read_timeout = timeout;
        self
    }

    /// Longest a single write to the router may block.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.listen.write_timeout = timeout;
        self
    }

    /// The largest PDU the sink receives.
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.listen.max_pdu_length = length;
        self
    }

    /// Associations open at once; more are refused (transient, local limit exceeded).
    pub fn max_associations(mut self, max: usize) -> Self {
        self.max_associations = max;
        self
    }

    /// Threads comparing arrivals with their sends.
    pub fn comparators(mut self, threads: usize) -> Self {
        self.comparators = threads;
        self
    }

    /// Every listening option at once: address, AE title, waits, PDU size, TLS.
    pub fn listen(mut self, listen: ListenOptions) -> Self {
        self.listen = listen;
        self
    }

    /// Listen with DICOM TLS.
    pub fn tls(mut self, tls: TlsServerOptions) -> Self {
        self.listen.tls = Some(tls);
        self
    }

    fn validate(&self) -> Result<(), SinkError> {
        for (name, value) in [
            ("max_associations", self.max_associations),
            ("comparators", self.comparators),
        ] {
            if value == 0 {
                return Err(SinkError::InvalidOption {
                    name,
                    value: "0".into(),
                    expected: "at least 1".into(),
                });
            }
        }
        Ok(())
    }
}

/// What the sink's listener saw (the ledger has what arrived and how it compared).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SinkStats {
    /// Associations accepted.
    pub associations_accepted: u64,
    /// Refused: called AE title not the sink's.
    pub refused_called_ae_title: u64,
    /// Refused: too many associations open.
    pub refused_too_many: u64,
    /// Refused or aborted: a malformed or unacceptable A-ASSOCIATE-RQ, a failed TLS
    /// handshake, nothing said within the ARTIM timeout.
    pub refused_bad_request: u64,
    /// C-STOREs received.
    pub stores: u64,
    /// Their data set bytes.
    pub bytes: u64,
    /// C-ECHOs answered.
    pub echoes: u64,
    /// Associations released by the router.
    pub released: u64,
    /// Associations aborted by the router or lost.
    pub aborted: u64,
    /// Associations aborted by the sink after its read timeout.
    pub timed_out: u64,
    /// Associations aborted for a protocol error.
    pub protocol_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused_called: AtomicU64,
    refused_too_many: AtomicU64,
    refused_bad: AtomicU64,
    stores: AtomicU64,
    bytes: AtomicU64,
    echoes: AtomicU64,
    released: AtomicU64,
    aborted: AtomicU64,
    timed_out: AtomicU64,
    protocol_errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
struct Shared {
    gate: Gate,
    max_associations: usize,
    max_data_set_len: usize,
    ledger: Arc<Ledger>,
    counters: Counters,
    /// Set when the sink stops (its acceptor's flag).
    shutdown: Arc<AtomicBool>,
    active: AtomicUsize,
    arrivals: Sender<Arrival>,
}

/// A running sink. Dropping it stops it (as [`shutdown`](Self::shutdown) does).
#[derive(Debug)]
pub struct Sink {
    shared: Arc<Shared>,
    acceptor: Acceptor,
    comparators: Vec<JoinHandle<()>>,
}

impl Sink {
    /// Binds and starts listening; arrivals go to `ledger`.
    ///
    /// # Errors
    /// An invalid option, the address cannot be bound, the TLS files cannot be read,
    /// or a thread cannot start.
    pub fn start(options: SinkOptions, ledger: Arc<Ledger>) -> Result<Sink, SinkError> {
        options.validate()?;
        let SinkOptions {
            listen,
            max_associations,
            max_data_set_len,
            comparators: comparator_count,
        } = options;
        let (gate, listener) = Gate::open(listen)?;
        let (tx, rx) = crossbeam_channel::bounded(ARRIVALS_QUEUED);
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            gate,
            max_associations,
            max_data_set_len,
            ledger,
            counters: Counters::default(),
            shutdown: stopping.clone(),
            active: AtomicUsize::new(0),
            arrivals: tx,
        });
        let mut comparators = Vec::with_capacity(comparator_count);
        for i in 0..comparator_count {
            let rx: Receiver<Arrival> = rx.clone();
            let ledger = shared.ledger.clone();
            let handle = thread::Builder::new()
                .name(format!("sink-compare-{i}"))
                .spawn(move || {
                    for arrival in rx {
                        ledger.record(arrival);
                    }
                })
                .map_err(|source| SinkError::Thread {
                    what: "comparator",
                    source,
                })?;
            comparators.push(handle);
        }
        let serving = shared.clone();
        let acceptor = Acceptor::start(listener, "sink-association", stopping, move |stream| {
            serve(&serving, stream)
        })
        .map_err(|source| SinkError::Thread {
            what: "accept",
            source,
        })?;
        Ok(Sink {
            shared,
            acceptor,
            comparators,
        })
    }

    /// The address it listens on (with the port the system picked).
    pub fn local_addr(&self) -> SocketAddr {
        self.acceptor.local_addr()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.acceptor.local_addr().port()
    }

    /// The AE title it answers to.
    pub fn ae_title(&self) -> &AeTitle {
        &self.shared.gate.options().ae_title
    }

    /// The ledger its arrivals go to.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.shared.ledger
    }

    /// What the listener saw so far.
    pub fn stats(&self) -> SinkStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SinkStats {
            associations_accepted: get(&c.accepted),
            refused_called_ae_title: get(&c.refused_called),
            refused_too_many: get(&c.refused_too_many),
            refused_bad_request: get(&c.refused_bad),
            stores: get(&c.stores),
            bytes: get(&c.bytes),
            echoes: get(&c.echoes),
            released: get(&c.released),
            aborted: get(&c.aborted),
            timed_out: get(&c.timed_out),
            protocol_errors: get(&c.protocol_errors),
        }
    }

    /// Stops listening, closes open associations, and waits for every arrival already
    /// received to be recorded.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Every association thread is done after this, and with them every other
        // holder of the shared state.
        self.acceptor.stop();
        // The comparators end when every sender of the channel is gone: the shared
        // state's is the last one once the association threads are done.
        let comparators = std::mem::take(&mut self.comparators);
        let (closed, _) = crossbeam_channel::bounded(0);
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.arrivals = closed;
        }
        for comparator in comparators {
            let _ = comparator.join();
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

struct ActiveSlot<'a>(&'a AtomicUsize);

impl Drop for ActiveSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn serve(shared: &Shared, stream: TcpStream) {
    let counters = &shared.counters;
    let Admitted { stream, request } = match shared.gate.admit(stream) {
        Ok(admitted) => admitted,
        Err(NotAdmitted::CalledAeTitle(_)) => return bump(&counters.refused_called),
        Err(_) => return bump(&counters.refused_bad),
    };
    let open = shared.active.fetch_add(1, Ordering::AcqRel) + 1;
    let _slot = ActiveSlot(&shared.active);
    if open > shared.max_associations {
        bump(&counters.refused_too_many);
        dimse::scp::reject(stream, dimse::scp::Refusal::LocalLimitExceeded.rejection());
        return;
    }
    let accept = AcceptOptions::new().max_pdu_length(shared.gate.options().max_pdu_length);
    let mut association = match dimse::scp::accept(stream, &request, &accept, decide) {
        Ok(association) => association,
        Err(_) => {
            bump(&counters.refused_bad);
            return;
        }
    };
    bump(&counters.accepted);
    let end = run(shared, &mut association);
    bump(match end {
        End::Released => &counters.released,
        End::Aborted => &counters.aborted,
        End::TimedOut => &counters.timed_out,
        End::ProtocolError => &counters.protocol_errors,
    });
}

/// Verification, every storage SOP class (and private SOP classes, which routers
/// forward too), each with the first proposed transfer syntax dicom-rs can read.
fn decide(pc: &PresentationContextProposed) -> ContextDecision {
    let abstract_syntax = dimse::trim_value(&pc.abstract_syntax);
    let acceptable = abstract_syntax == uids::VERIFICATION
        || dimse::is_storage_sop_class(abstract_syntax)
        || !dimse::is_standard_sop_class(abstract_syntax);
    if !acceptable {
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

enum End {
    Released,
    Aborted,
    TimedOut,
    ProtocolError,
}

fn run(shared: &Shared, association: &mut ScpAssociation) -> End {
    let counters = &shared.counters;
    let mut reader = MessageReader::new().with_max_data_set_len(shared.max_data_set_len);
    let calling = association.calling_ae_title().to_string();
    loop {
        let message = match reader.receive(association) {
            Ok(Incoming::Message(message)) => message,
            Ok(Incoming::ReleaseRequested) => {
                let _ = association.send_pdu(&Pdu::ReleaseRP);
                return End::Released;
            }
            Ok(Incoming::Aborted(_)) | Err(DimseError::ConnectionClosed) => return End::Aborted,
            Ok(_) => {
                protocol_abort(association);
                return End::ProtocolError;
            }
            Err(DimseError::Timeout) => {
                association.abort(AbortRQSource::ServiceUser);
                return End::TimedOut;
            }
            Err(_) if shared.shutdown.load(Ordering::Acquire) => return End::Aborted,
            Err(_) => {
                protocol_abort(association);
                return End::ProtocolError;
            }
        };
        let at = Instant::now();
        let pc_id = message.presentation_context_id;
        let Some(context) = association.accepted_context(pc_id) else {
            protocol_abort(association);
            return End::ProtocolError;
        };
        let transfer_syntax = context.transfer_syntax.clone();
        let verification = dimse::trim_value(&context.abstract_syntax) == uids::VERIFICATION;
        let command = message.command;
        let status = match command.field {
            CommandField::CEchoRq => {
                bump(&counters.echoes);
                Status::SUCCESS
            }
            CommandField::CStoreRq if !verification => Status::SUCCESS,
            CommandField::CStoreRq => Status::SOP_CLASS_NOT_SUPPORTED,
            field if field.is_response() => {
                protocol_abort(association);
                return End::ProtocolError;
            }
            _ => Status::UNRECOGNIZED_OPERATION,
        };
        let arrival =
            (command.field == CommandField::CStoreRq && status == Status::SUCCESS).then(|| {
                let data = message.data.unwrap_or_default();
                bump(&counters.stores);
                counters
                    .bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                Arrival {
                    at,
                    calling_ae_title: calling.clone(),
                    sop_instance_uid: command.sop_instance_uid.clone().unwrap_or_default(),
                    transfer_syntax,
                    data,
                }
            });
        if arrival.is_some() {
            // Counted before the answer: a settled report taken once the router has
            // its answer waits for this arrival.
            shared.ledger.arrival_in_hand();
        }
        let answered = match Command::response_to(&command, status, false) {
            Some(response) => dimse::send_message(association, pc_id, &response, None),
            None => Ok(()),
        };
        if let Some(arrival) = arrival
            && shared.arrivals.send(arrival).is_err()
        {
            // The comparators are gone (shutdown): nothing can record it.
            shared.ledger.arrival_dropped();
        }
        match answered {
            Ok(()) => {}
            Err(DimseError::Timeout) => {
                association.abort(AbortRQSource::ServiceUser);
                return End::TimedOut;
            }
            Err(_) => return End::Aborted,
        }
    }
}

fn protocol_abort(association: &mut ScpAssociation) {
    association.abort(AbortRQSource::ServiceProvider(
        AbortRQServiceProviderReason::UnexpectedPdu,
    ));
}
