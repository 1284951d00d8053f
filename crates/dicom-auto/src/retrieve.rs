//! `dicom-auto retrieve`: get studies back from the destination archive by C-MOVE
//! or C-GET, and say whether everything came back.
//!
//! The archive is the C-FIND peer of the configuration (`CFIND_HOST`, `CFIND_PORT`,
//! `CFIND_AE_TITLE`), unless `--host`/`--port`/`--called` say otherwise. With a
//! load's JSON, every study it delivered to is retrieved and the counts are checked
//! against what was sent.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use retrieve::{
    Method, Progress, ReceivedInstance, Receiver, RetrieveOutcome, RetrieveRequest, Retriever,
};
use serde::Serialize;
use sink::{Ledger, LedgerOptions, Sink};

use crate::sent_load::SentLoad;
use crate::{CHECKS_FAILED, configuration};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Model {
    Study,
    Patient,
}

/// Options of `dicom-auto retrieve`.
#[derive(Debug, Args)]
pub struct RetrieveArgs {
    /// C-MOVE to this AE title (the archive must know it, with its address).
    #[arg(
        long,
        value_name = "AE",
        conflicts_with = "get",
        required_unless_present = "get"
    )]
    move_to: Option<dimse::AeTitle>,
    /// C-GET: the instances come back on our association.
    #[arg(long)]
    get: bool,
    /// With --move-to: receive the moved instances ourselves, with a sink listening
    /// on this port under the --move-to AE title (the archive must send there).
    #[arg(long, value_name = "PORT", requires = "move_to")]
    receive_on: Option<u16>,
    /// Address the --receive-on sink listens on (default SINK_BIND).
    #[arg(long, value_name = "ADDRESS", requires = "receive_on")]
    bind: Option<IpAddr>,
    /// With --get: write every instance received into this folder as
    /// `<SOPInstanceUID>.dcm` (atomically).
    #[arg(long, value_name = "DIR", requires = "get")]
    out: Option<PathBuf>,
    /// Study Instance UIDs to retrieve (each its own retrieve).
    #[arg(long = "study", value_name = "UID")]
    studies: Vec<String>,
    /// Series Instance UID to retrieve, of the one --study given.
    #[arg(long = "series", value_name = "UID")]
    series: Vec<String>,
    /// SOP Instance UIDs to retrieve, of the one --study and --series given.
    #[arg(long = "instance", value_name = "UID", requires = "series")]
    instances: Vec<String>,
    /// Every study a load delivered to: the JSON of `dicom-auto load ... --json`.
    #[arg(long, value_name = "LOAD_JSON", conflicts_with = "studies")]
    load: Option<PathBuf>,
    /// PatientID of the entities (needed by the Patient Root model below the patient level).
    #[arg(long, value_name = "ID")]
    patient_id: Option<String>,
    /// The information model, else Study Root then Patient Root.
    #[arg(long, value_enum)]
    model: Option<Model>,
    #[command(flatten)]
    archive: crate::archive::ArchiveArgs,
    /// Cancel when nothing moves for this many seconds (default DICOM_DIMSE_TIMEOUT).
    #[arg(long, value_name = "SECONDS")]
    stall: Option<f64>,
    /// Cancel a retrieve that takes longer than this many seconds.
    #[arg(long, value_name = "SECONDS")]
    deadline: Option<f64>,
    /// Cancel after this many sub-operations (a sample of a large study).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Write every outcome (per retrieve: status, counts, failed instances,
    /// anomalies) as JSON here, atomically.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// One retrieve, as `--json` writes it.
#[derive(Debug, Serialize)]
struct Retrieved {
    #[serde(flatten)]
    outcome: RetrieveOutcome,
    /// Instances sent to the study by the load, when known (fresh UIDs).
    sent: Option<u64>,
    /// Instances that reached our --receive-on sink during this retrieve.
    arrived_at_sink: Option<u64>,
}

fn seconds(value: Option<f64>, flag: &str) -> Result<Option<Duration>> {
    value
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| format!("{flag} {s}: expected a number of seconds above zero"))
        })
        .transpose()
}

/// The requests the arguments name, each with the instances sent to it when known.
fn requests(args: &RetrieveArgs) -> Result<Vec<(RetrieveRequest, Option<u64>)>> {
    let with_patient = |request: RetrieveRequest| match &args.patient_id {
        Some(id) => request.with_patient_id(id.clone()),
        None => request,
    };
    if let Some(path) = &args.load {
        let load = SentLoad::read(path)?;
        let counted = load.counts_instances();
        return Ok(load
            .delivered()
            .map(|s| {
                let mut request = RetrieveRequest::study(s.study_instance_uid.clone());
                if let Some(id) = s.patient_id.clone().or_else(|| args.patient_id.clone()) {
                    request = request.with_patient_id(id);
                }
                (request, counted.then(|| s.counts.delivered()))
            })
            .collect());
    }
    if args.studies.is_empty() && args.patient_id.is_none() {
        bail!(
            "name what to retrieve: --study UID (repeatable), --load LOAD_JSON, or --patient-id ID"
        );
    }
    if !args.series.is_empty() || !args.instances.is_empty() {
        let [study] = args.studies.as_slice() else {
            bail!("--series and --instance need exactly one --study");
        };
        let request = if args.instances.is_empty() {
            RetrieveRequest::series(study.clone(), args.series.clone())
        } else {
            let [series] = args.series.as_slice() else {
                bail!("--instance needs exactly one --series");
            };
            RetrieveRequest::instances(study.clone(), series.clone(), args.instances.clone())
        };
        return Ok(vec![(with_patient(request), None)]);
    }
    if args.studies.is_empty() {
        let id = args.patient_id.clone().unwrap_or_default();
        return Ok(vec![(RetrieveRequest::patient(id), None)]);
    }
    Ok(args
        .studies
        .iter()
        .map(|uid| (with_patient(RetrieveRequest::study(uid.clone())), None))
        .collect())
}

/// The instances of a C-GET: written to `--out` or only counted; a progress bar.
struct Collector {
    out: Option<PathBuf>,
    bar: ProgressBar,
    write_failures: u64,
}

impl Receiver for Collector {
    fn instance(&mut self, instance: ReceivedInstance) -> dimse::Status {
        let Some(dir) = &self.out else {
            return dimse::Status::SUCCESS;
        };
        match write_instance(dir, &instance) {
            Ok(()) => dimse::Status::SUCCESS,
            Err(error) => {
                self.write_failures += 1;
                self.bar.suspend(|| {
                    eprintln!(
                        "dicom-auto retrieve: cannot keep {}: {error:#}",
                        instance.sop_instance_uid
                    )
                });
                dimse::Status::OUT_OF_RESOURCES
            }
        }
    }

    fn progress(&mut self, progress: &Progress) {
        let c = progress.counts;
        self.bar.set_message(format!(
            "completed {} failed {} warning {} remaining {} | received {} ({:.1} MB)",
            c.completed.unwrap_or(0),
            c.failed.unwrap_or(0),
            c.warning.unwrap_or(0),
            c.remaining.map_or("?".into(), |n| n.to_string()),
            progress.received,
            progress.received_bytes as f64 / 1e6
        ));
    }
}

/// Writes a received data set as a DICOM file, once it parses.
fn write_instance(dir: &std::path::Path, instance: &ReceivedInstance) -> Result<()> {
    sink::SentInstance::from_data_set(&instance.data, &instance.transfer_syntax)
        .context("the data set does not parse")?;
    let uid = instance.sop_instance_uid.as_str();
    if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        bail!("SOP Instance UID {uid:?} cannot name a file");
    }
    let bytes = loader::part10_bytes(
        &instance.sop_class_uid,
        uid,
        &instance.transfer_syntax,
        &instance.data,
    )
    .map_err(anyhow::Error::msg)?;
    let path = dir.join(format!("{uid}.dcm"));
    loader::AtomicFile::new(&path)
        .create_parent_dirs(true)
        .write_bytes(&bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Runs the retrieves; exit status 1 when one did not bring everything back.
pub fn retrieve(args: &RetrieveArgs) -> Result<ExitCode> {
    let mut config = configuration()?;
    let requests = requests(args)?;
    args.archive.apply(&mut config);
    let mut options = campaign::options::retrieve::retrieve_options(&config)?;
    if let Some(stall) = seconds(args.stall, "--stall")? {
        options = options.stall_timeout(stall);
    }
    options = options
        .deadline(seconds(args.deadline, "--deadline")?)
        .max_sub_operations(args.limit);
    if let Some(model) = args.model {
        options = options.models([match model {
            Model::Study => dimse::InformationModel::StudyRoot,
            Model::Patient => dimse::InformationModel::PatientRoot,
        }]);
    }
    let method = match &args.move_to {
        Some(destination) => Method::Move {
            destination: destination.clone(),
        },
        None => Method::Get,
    };
    let receiving = match (&args.move_to, args.receive_on) {
        (Some(ae_title), Some(port)) => {
            let ledger = Ledger::new(LedgerOptions::new().observe());
            let bind = SocketAddr::new(args.bind.unwrap_or(config.sink.bind), port);
            let sink = Sink::start(
                campaign::delivery::sink_options(&config)
                    .bind(bind)
                    .ae_title(ae_title.clone()),
                ledger,
            )
            .context("starting the --receive-on sink")?;
            eprintln!(
                "dicom-auto: receiving as {} on {}",
                sink.ae_title(),
                sink.local_addr()
            );
            Some(sink)
        }
        _ => None,
    };
    let peer = options.scu().peer();
    eprintln!(
        "dicom-auto: {} {} retrieve(s) from {peer}",
        requests.len(),
        method
    );
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(requests.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{pos}/{len} {elapsed_precise} {msg}")
            .expect("a valid template"),
    );
    let mut collector = Collector {
        out: args.out.clone(),
        bar: bar.clone(),
        write_failures: 0,
    };
    let mut retriever = Retriever::new(options, method);
    let mut results = Vec::with_capacity(requests.len());
    let mut all_good = true;
    for (request, sent) in &requests {
        let before = receiving.as_ref().map(|s| s.stats().stores);
        let outcome = retriever
            .retrieve(request, &mut collector)
            .with_context(|| format!("retrieving {request} from {peer}"))?;
        let arrived_at_sink = match (&receiving, before) {
            (Some(sink), Some(before)) => {
                // The archive's association to us may still be delivering the
                // last instance as its final response reaches us.
                std::thread::sleep(Duration::from_millis(200));
                Some(sink.stats().stores - before)
            }
            _ => None,
        };
        let counts_match = sent.is_none_or(|sent| u64::from(outcome.reported_retrieved()) == sent);
        let arrived_match =
            arrived_at_sink.is_none_or(|n| n == u64::from(outcome.reported_retrieved()));
        // Nothing matched is complete for the archive, not for a user who named it.
        let found = outcome.reported_retrieved() > 0 || outcome.received > 0;
        let good = outcome.is_complete() && counts_match && arrived_match && found;
        all_good &= good;
        bar.suspend(|| {
            let mark = if good { "pass" } else { "FAIL" };
            let mut line = format!("{mark}  {}", outcome.summary());
            if let Some(sent) = sent {
                line.push_str(&format!("; {sent} sent"));
            }
            if let Some(n) = arrived_at_sink {
                line.push_str(&format!("; {n} arrived at our sink"));
            }
            if !found {
                line.push_str("; nothing matched: the archive holds none of it");
            }
            println!("{line}");
            for anomaly in &outcome.anomalies {
                println!("      anomaly: {anomaly}");
            }
            for uid in outcome.failed_instances.iter().take(10) {
                println!("      failed: {uid}");
            }
        });
        bar.inc(1);
        results.push(Retrieved {
            outcome,
            sent: *sent,
            arrived_at_sink,
        });
    }
    bar.finish_and_clear();
    retriever.release();
    if let Some(sink) = receiving {
        sink.shutdown();
    }
    if collector.write_failures > 0 {
        all_good = false;
        println!(
            "FAIL  {} instances could not be written to {}",
            collector.write_failures,
            args.out
                .as_deref()
                .unwrap_or(std::path::Path::new("?"))
                .display()
        );
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results).context("encoding the outcomes")?;
        loader::AtomicFile::new(path)
            .write_bytes(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECKS_FAILED)
    })
}
