//! `simulator-bench`: how many C-STOREs per second the simulator absorbs in load
//! mode, and how much memory each stored instance costs.
//!
//! ```text
//! cargo run --release -p simulator --bin simulator-bench -- --associations 8 --stores 200000
//! ```
//!
//! N associations send closed-loop (each waits for its response before the next
//! request) C-STOREs of a pre-encoded data set of `--size` bytes whose UIDs are
//! patched per store, to the simulator in the same process. Rates come from counted
//! responses over the measured wall time. Memory is the process's VmRSS growth
//! between before and after the run divided by the stores (the client's buffers
//! are allocated before the first measurement), and VmHWM (peak RSS).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use simulator::scu::{ScuOptions, StoreScu};
use simulator::{Simulator, SimulatorConfig, StoreMode};

#[derive(Debug, Parser)]
struct Args {
    /// Concurrent associations.
    #[arg(long, default_value_t = 8)]
    associations: usize,
    /// Total C-STOREs.
    #[arg(long, default_value_t = 200_000)]
    stores: u64,
    /// Data set size in bytes (pixel data makes up the rest).
    #[arg(long, default_value_t = 50_000)]
    size: usize,
    /// Instances per study.
    #[arg(long, default_value_t = 100)]
    per_study: u64,
    /// Called AE title (a route of the default rules).
    #[arg(long, default_value = "LB-HTM-OPH")]
    called_ae_title: String,
}

/// UIDs with fixed-width numeric tails, so that each store patches bytes in place.
const SOP_PREFIX: &str = "1.2.826.0.1.3680043.10.1.";
const SERIES_PREFIX: &str = "1.2.826.0.1.3680043.10.2.";
const STUDY_PREFIX: &str = "1.2.826.0.1.3680043.10.3.";
const TAIL: usize = 12;

fn uid(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:0TAIL$}")
}

fn template(size: usize) -> anyhow::Result<Vec<u8>> {
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |tag, vr, v: &str| obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    put(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
    );
    put(tags::SOP_INSTANCE_UID, VR::UI, &uid(SOP_PREFIX, 0));
    put(tags::STUDY_INSTANCE_UID, VR::UI, &uid(STUDY_PREFIX, 0));
    put(tags::SERIES_INSTANCE_UID, VR::UI, &uid(SERIES_PREFIX, 0));
    put(tags::PATIENT_ID, VR::LO, "BENCH0001");
    put(tags::PATIENT_NAME, VR::PN, "BENCH^PATIENT");
    put(tags::STUDY_DATE, VR::DA, "20240105");
    put(tags::ACCESSION_NUMBER, VR::SH, "BENCH0001");
    put(tags::MODALITY, VR::CS, "OP");
    put(tags::SERIES_DESCRIPTION, VR::LO, "Fundus colour");
    put(tags::INSTANCE_NUMBER, VR::IS, "1");
    let mut header = Vec::new();
    obj.write_dataset_with_ts(&mut header, &EXPLICIT_VR_LITTLE_ENDIAN.erased())?;
    let pixels = size.saturating_sub(header.len() + 12) & !1;
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(vec![0x55u8; pixels]),
    ));
    let mut out = Vec::with_capacity(size);
    obj.write_dataset_with_ts(&mut out, &EXPLICIT_VR_LITTLE_ENDIAN.erased())?;
    Ok(out)
}

fn offset_of(haystack: &[u8], needle: &str) -> anyhow::Result<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .context("UID not found in the encoded template")
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.associations == 0 || args.per_study == 0 {
        bail!("--associations and --per-study must be at least 1");
    }
    let sim = Simulator::start(SimulatorConfig {
        store_mode: StoreMode::Load,
        ..SimulatorConfig::default()
    })?;
    let peer = dimse::PeerAddress::new(sim.addr().ip().to_string(), sim.addr().port());
    let template = template(args.size)?;
    let sop_at = offset_of(&template, &uid(SOP_PREFIX, 0))? + SOP_PREFIX.len();
    let series_at = offset_of(&template, &uid(SERIES_PREFIX, 0))? + SERIES_PREFIX.len();
    let study_at = offset_of(&template, &uid(STUDY_PREFIX, 0))? + STUDY_PREFIX.len();
    let options = ScuOptions {
        called_ae_title: args.called_ae_title.clone(),
        calling_ae_title: "BENCH-SCU".into(),
        ..ScuOptions::default()
    };
    let contexts = vec![(
        uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE.to_string(),
        vec![uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string()],
    )];
    let mut clients = Vec::new();
    for _ in 0..args.associations {
        clients.push((
            StoreScu::connect(&peer, &options, &contexts)?,
            template.clone(),
        ));
    }
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let rss_before = rss_kib("VmRSS:");
    let start = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|(mut scu, mut data)| {
            let next = next.clone();
            let failures = failures.clone();
            let total = args.stores;
            let per_study = args.per_study;
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let (pc, _) = scu.context_for(
                    uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
                    uids::EXPLICIT_VR_LITTLE_ENDIAN,
                    |_| false,
                )?;
                let mut sent = 0;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let patch = |data: &mut Vec<u8>, at: usize, v: u64| {
                        data[at..at + TAIL].copy_from_slice(format!("{v:0TAIL$}").as_bytes());
                    };
                    patch(&mut data, sop_at, n + 1);
                    patch(&mut data, series_at, n / per_study + 1);
                    patch(&mut data, study_at, n / per_study + 1);
                    let sop = uid(SOP_PREFIX, n + 1);
                    let rsp = scu.store(
                        pc,
                        uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
                        &sop,
                        &data,
                    )?;
                    if !rsp.status.is_delivered() {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    sent += 1;
                }
                scu.release()?;
                Ok(sent)
            })
        })
        .collect();
    let mut sent = 0;
    for w in workers {
        sent += w
            .join()
            .map_err(|_| anyhow::anyhow!("a sender thread panicked"))??;
    }
    let elapsed = start.elapsed();
    // Let the association threads finish their bookkeeping.
    std::thread::sleep(Duration::from_millis(100));
    let rss_after = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    let stats = sim.stats();
    let rate = sent as f64 / elapsed.as_secs_f64();
    let growth = rss_after.saturating_sub(rss_before) * 1024;
    println!(
        "simulator-bench: {} associations, {} C-STOREs of {} bytes, load mode",
        args.associations,
        sent,
        template.len()
    );
    println!("  elapsed            {:.2} s", elapsed.as_secs_f64());
    println!(
        "  throughput         {rate:.0} stores/s ({:.1} MB/s)",
        rate * template.len() as f64 / 1e6
    );
    println!(
        "  acknowledged       {} (failures {})",
        stats.stores.acknowledged(),
        failures.load(Ordering::Relaxed)
    );
    println!(
        "  instances in store {} in {} studies",
        stats.instances_in_store, stats.studies_in_store
    );
    println!(
        "  RSS before/after   {} / {} KiB; peak (VmHWM) {} KiB",
        rss_before, rss_after, peak
    );
    println!(
        "  memory per stored instance {:.0} bytes (RSS growth / instances)",
        growth as f64 / stats.instances_in_store.max(1) as f64
    );
    let _ = sim.shutdown();
    Ok(())
}
