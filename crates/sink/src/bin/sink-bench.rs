//! sink-bench: how fast the sink matches and compares arrivals, and what each tracked
//! send costs in memory.
//!
//! Default mode: a [`Sink`] on loopback, N sends of a small (~2 KB) instance with
//! fresh UIDs tracked with `Ledger::expect`, stored from client threads, settled.
//! `--ledger-only`: no network, `expect`/`answered`/`record` in process.
//!
//! ```text
//! cargo run --release -p sink --features bench --bin sink-bench -- [--sends N] [--ledger-only]
//! ```

use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::{AeTitle, Command, CommandField, PeerAddress, Priority, ScuOptions, Status, Timeouts};
use metrics::Outcome;
use sink::{
    Arrival, ExpectedSend, Ledger, LedgerOptions, OriginalId, OriginalSource, SentInstance, Sink,
    SinkOptions, Substitution, Ticket,
};

/// Throughput and memory of the sink's ledger.
#[derive(Debug, Parser)]
#[command(name = "sink-bench")]
struct Args {
    /// Sends to track (default 20,000 over the network, 100,000 with --ledger-only).
    #[arg(long)]
    sends: Option<usize>,
    /// Client threads storing to the sink.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Only call expect/answered/record in process (no network).
    #[arg(long)]
    ledger_only: bool,
}

const ROUTE: &str = "BENCH";

fn main() {
    let args = Args::parse();
    let sends = args
        .sends
        .unwrap_or(if args.ledger_only { 100_000 } else { 20_000 });
    println!(
        "sink-bench: {} sends of a {} B data set, {}",
        thousands(sends as u64),
        encoded(&instance(&uids_of(0))).len(),
        if args.ledger_only {
            "ledger only (no network)".to_string()
        } else {
            format!("{} client threads over loopback", args.clients)
        }
    );
    if args.ledger_only {
        ledger_only(sends);
    } else {
        over_the_network(sends, args.clients.max(1));
    }
    let status = proc_status();
    println!(
        "peak RSS: {} (VmHWM), RSS now {}",
        kib(status.hwm_kib),
        kib(status.rss_kib)
    );
}

/// The fresh UIDs of send `i`: study, series, instance.
fn uids_of(i: usize) -> [String; 3] {
    [
        format!("2.25.7000{}", i / 1000),
        format!("2.25.8000{}", i / 100),
        format!("2.25.9000{i}"),
    ]
}

/// A small CT-like instance: a few attributes and 32x32 16-bit pixels (2 KB).
fn instance(uids: &[String; 3]) -> InMemDicomObject {
    let mut object = InMemDicomObject::new_empty();
    object.put_str(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE);
    object.put_str(tags::STUDY_INSTANCE_UID, VR::UI, uids[0].as_str());
    object.put_str(tags::SERIES_INSTANCE_UID, VR::UI, uids[1].as_str());
    object.put_str(tags::SOP_INSTANCE_UID, VR::UI, uids[2].as_str());
    object.put_str(tags::PATIENT_NAME, VR::PN, "Bench^Patient");
    object.put_str(tags::PATIENT_ID, VR::LO, "BENCH-1");
    object.put_str(tags::STUDY_DESCRIPTION, VR::LO, "SINK BENCH");
    object.put_str(tags::MODALITY, VR::CS, "CT");
    for (tag, value) in [
        (tags::ROWS, 32u16),
        (tags::COLUMNS, 32),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 12),
        (tags::HIGH_BIT, 11),
        (tags::PIXEL_REPRESENTATION, 0),
        (tags::SAMPLES_PER_PIXEL, 1),
    ] {
        object.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
    }
    object.put_str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16((0..1024u16).map(|i| i % 4096).collect()),
    ));
    object
}

fn encoded(object: &InMemDicomObject) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(2400);
    object
        .write_dataset_with_ts(&mut bytes, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("the bench instance encodes");
    bytes
}

/// The one original every send carries (with its own fresh UIDs).
fn register(ledger: &Ledger) -> OriginalId {
    let original_uids = ["2.25.1".into(), "2.25.2".into(), "2.25.3".into()];
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
        .media_storage_sop_instance_uid("2.25.3")
        .build()
        .expect("a valid meta group");
    let original = SentInstance::from_object(instance(&original_uids).with_exact_meta(meta))
        .expect("a valid original");
    ledger.add_original(OriginalSource::Loaded(original))
}

/// Tracks `sends` sends with `expect` only, and prints what they cost in memory.
fn track(ledger: &Ledger, original: OriginalId, sends: usize) -> Vec<Ticket> {
    let route: Arc<str> = Arc::from(ROUTE);
    let before = proc_status();
    let started = Instant::now();
    let mut tickets = Vec::with_capacity(sends);
    for i in 0..sends {
        let [study, series, sop] = uids_of(i);
        let ticket = ledger
            .expect(ExpectedSend {
                original,
                substitutions: Substitution::fresh_uids(&study, &series, &sop).to_vec(),
                route: route.clone(),
                trace: None,
            })
            .expect("matching by SOP Instance UID needs no trace");
        tickets.push(ticket);
    }
    let elapsed = started.elapsed();
    let after = proc_status();
    let grown_kib = after.rss_kib.saturating_sub(before.rss_kib);
    println!(
        "tracked {} sends in {:.2} s ({}/s); RSS {} -> {} (VmHWM {} -> {})",
        thousands(sends as u64),
        elapsed.as_secs_f64(),
        thousands((sends as f64 / elapsed.as_secs_f64()) as u64),
        kib(before.rss_kib),
        kib(after.rss_kib),
        kib(before.hwm_kib),
        kib(after.hwm_kib),
    );
    println!(
        "memory per tracked send: {} B (RSS growth over expect() only / sends; includes the caller's {} B ticket)",
        thousands(grown_kib * 1024 / sends.max(1) as u64),
        std::mem::size_of::<Ticket>()
    );
    tickets
}

fn over_the_network(sends: usize, clients: usize) {
    let ledger = Ledger::new(LedgerOptions::new());
    let original = register(&ledger);
    let tickets = track(&ledger, original, sends);
    let sink = Sink::start(SinkOptions::new(), ledger.clone()).expect("the sink starts");
    let port = sink.port();
    let called = sink.ae_title().clone();
    let first_answer: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let started = Instant::now();
    let chunk = sends.div_ceil(clients);
    let workers: Vec<_> = tickets
        .chunks(chunk)
        .enumerate()
        .map(|(worker, share)| {
            let share = share.to_vec();
            let ledger = ledger.clone();
            let called = called.clone();
            let first_answer = first_answer.clone();
            thread::spawn(move || {
                let options = ScuOptions::new(
                    PeerAddress::new("127.0.0.1", port),
                    AeTitle::new(ROUTE).expect("a valid AE title"),
                    called,
                )
                .timeouts(Timeouts {
                    connect: Duration::from_secs(10),
                    acse: Duration::from_secs(10),
                    dimse: Duration::from_secs(30),
                    write: Duration::from_secs(30),
                })
                .propose(uids::CT_IMAGE_STORAGE, [uids::EXPLICIT_VR_LITTLE_ENDIAN]);
                let mut association = options.establish().expect("the sink accepts");
                let context = association
                    .accepted_context(uids::CT_IMAGE_STORAGE)
                    .expect("CT storage accepted")
                    .id;
                for (k, ticket) in share.into_iter().enumerate() {
                    let i = worker * chunk + k;
                    let send_uids = uids_of(i);
                    let data = encoded(&instance(&send_uids));
                    let id = association.next_message_id();
                    let rq = Command::c_store_rq(
                        id,
                        uids::CT_IMAGE_STORAGE,
                        send_uids[2].as_str(),
                        Priority::Medium,
                    );
                    association
                        .send(context, &rq, Some(&data))
                        .expect("the store goes out");
                    let response = association
                        .expect_response(id, CommandField::CStoreRsp)
                        .expect("the sink answers");
                    let at = Instant::now();
                    let _ = first_answer.set(at);
                    let outcome = if response.status == Status::SUCCESS {
                        Outcome::Success
                    } else {
                        Outcome::Failure
                    };
                    ledger.answered(ticket, outcome, at);
                }
                let _ = association.release();
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a client thread");
    }
    let stored = started.elapsed();
    let report = ledger.settle(Duration::from_secs(60));
    let settled = Instant::now();
    let from_first = settled.duration_since(*first_answer.get().unwrap_or(&started));
    let arrivals = sink.stats().stores;
    sink.shutdown();
    println!(
        "stored: {} C-STOREs in {:.2} s ({}/s)",
        thousands(arrivals),
        stored.as_secs_f64(),
        thousands((arrivals as f64 / stored.as_secs_f64()) as u64)
    );
    println!(
        "matched+compared: {} instances/s ({} in {:.2} s, first arrival to settle done, {} ms quiet period included)",
        thousands((arrivals as f64 / from_first.as_secs_f64()) as u64),
        thousands(arrivals),
        from_first.as_secs_f64(),
        sink::QUIET_PERIOD.as_millis()
    );
    summarise(&report);
}

fn ledger_only(sends: usize) {
    let ledger = Ledger::new(LedgerOptions::new());
    let original = register(&ledger);
    let tickets = track(&ledger, original, sends);
    let mut recording = Duration::ZERO;
    let mut batch = Vec::with_capacity(1000);
    for (start, tickets) in tickets.chunks(1000).enumerate() {
        // Encoding is the sender's work, not the sink's: outside the timing.
        batch.clear();
        for (k, _) in tickets.iter().enumerate() {
            let send_uids = uids_of(start * 1000 + k);
            batch.push((send_uids[2].clone(), encoded(&instance(&send_uids))));
        }
        let timed = Instant::now();
        for (ticket, (sop_instance_uid, data)) in tickets.iter().zip(batch.drain(..)) {
            ledger.answered(*ticket, Outcome::Success, Instant::now());
            ledger.record(Arrival {
                at: Instant::now(),
                calling_ae_title: ROUTE.into(),
                sop_instance_uid,
                transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into(),
                data,
            });
        }
        recording += timed.elapsed();
    }
    println!(
        "matched+compared: {} instances/s ({} in {:.2} s, one thread, answered+record only)",
        thousands((sends as f64 / recording.as_secs_f64()) as u64),
        thousands(sends as u64),
        recording.as_secs_f64()
    );
    let report = ledger.snapshot();
    summarise(&report);
}

fn summarise(report: &sink::DeliveryReport) {
    println!(
        "report: {}; clean {}, altered {}, duplicates {}, unexpected {}, arrived before the answer {}",
        report.counts.invariant(),
        report.clean,
        report.counts.altered,
        report.counts.duplicate_arrivals,
        report.counts.unexpected,
        report.counts.arrived_before_response
    );
    if let Some(transit) = &report.transit_ms {
        println!("transit: {transit:?}");
    }
    for problem in report.problems.iter().take(3) {
        println!("problem: {problem:?}");
    }
}

#[derive(Debug, Clone, Copy)]
struct ProcStatus {
    rss_kib: u64,
    hwm_kib: u64,
}

/// VmRSS and VmHWM from /proc/self/status (zero where unavailable).
fn proc_status() -> ProcStatus {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    ProcStatus {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

fn kib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
