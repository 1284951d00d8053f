//! `dicom-auto commit`: ask the destination archive, by Storage Commitment, to take
//! responsibility for instances, and say whether it did.
//!
//! The archive is the C-FIND peer of the configuration (`CFIND_HOST`, `CFIND_PORT`,
//! `CFIND_AE_TITLE`), unless `--host`/`--port`/`--called` say otherwise; its reports
//! are awaited `COMMIT_TIMEOUT` at `SINK_BIND`:`COMMIT_PORT` under our
//! `LOCAL_AE_TITLE`, where the archive must be configured to send them. The instances
//! are those of DICOM files (as they are: what `dicom-auto send` stored), or those
//! the archive lists by C-FIND for a study or for every study of a load's JSON (then
//! the count listed is checked against what the load sent).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use campaign::commitment::{StudyCommitment, commit_studies};
use cfind::InstanceQuery;
use clap::Args;
use commitment::{Committer, ReferencedInstance, ReportListener};
use serde::Serialize;

use crate::sent_load::SentLoad;
use crate::{CHECKS_FAILED, configuration};

/// Options of `dicom-auto commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// DICOM files or folders whose instances to commit (as they are, by the UIDs in
    /// the files).
    #[arg(value_name = "PATH", conflicts_with_all = ["studies", "load"])]
    paths: Vec<PathBuf>,
    /// Study Instance UIDs whose instances, as the archive lists them by C-FIND, to
    /// commit (each study its own request).
    #[arg(long = "study", value_name = "UID", conflicts_with = "load")]
    studies: Vec<String>,
    /// Every study a load delivered to (the JSON of `dicom-auto load ... --json`),
    /// its instances listed by C-FIND and, with fresh UIDs, counted against the sends.
    #[arg(long, value_name = "LOAD_JSON")]
    load: Option<PathBuf>,
    #[command(flatten)]
    archive: crate::archive::ArchiveArgs,
    /// Our AE title, asking and called with the reports (default LOCAL_AE_TITLE).
    #[arg(long, value_name = "AE")]
    calling: Option<dimse::AeTitle>,
    /// Listen for the reports on this port (default COMMIT_PORT; 0 picks one, which
    /// only helps an archive that reports on the N-ACTION's association).
    #[arg(long, value_name = "PORT")]
    listen_port: Option<u16>,
    /// Address the report listener listens on (default SINK_BIND).
    #[arg(long, value_name = "ADDRESS")]
    bind: Option<IpAddr>,
    /// Seconds each report may take (default COMMIT_TIMEOUT).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Keep the N-ACTION's association open for the report (some archives report
    /// on it); the listener takes it either way.
    #[arg(long)]
    keep_open: bool,
    /// Write every commitment (per study: N-ACTION status, committed and failed
    /// instances with reasons, how the report came) as JSON here, atomically.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// One study to commit: its instances and, when known, how many were sent.
struct Wanted {
    study: String,
    instances: Vec<ReferencedInstance>,
    sent: Option<u64>,
}

/// One study's commitment, as `--json` writes it.
#[derive(Debug, Serialize)]
struct Committed<'a> {
    #[serde(flatten)]
    commitment: &'a StudyCommitment,
    /// Instances the load sent to the study, when known (fresh UIDs).
    sent: Option<u64>,
}

/// The instances of DICOM files, by study, in file order.
fn from_files(paths: &[PathBuf]) -> Result<Vec<Wanted>> {
    let mut files = Vec::new();
    for path in paths {
        let scan = loader::find_dicom_files(path)
            .with_context(|| format!("scanning {}", path.display()))?;
        for skipped in &scan.skipped {
            eprintln!(
                "dicom-auto commit: skipped {}: {}",
                skipped.path.display(),
                skipped.reason
            );
        }
        files.extend(scan.files);
    }
    let infos = loader::scan_infos(&files);
    for failure in &infos.failures {
        eprintln!("dicom-auto commit: skipped {failure}");
    }
    let mut order: Vec<String> = Vec::new();
    let mut by_study: HashMap<String, Vec<ReferencedInstance>> = HashMap::new();
    for info in infos.infos {
        let study = info.study_instance_uid.clone().unwrap_or_default();
        let instance = ReferencedInstance::new(info.sop_class_uid, info.sop_instance_uid);
        let list = by_study.entry(study.clone()).or_insert_with(|| {
            order.push(study);
            Vec::new()
        });
        if !list.contains(&instance) {
            list.push(instance);
        }
    }
    if order.is_empty() {
        bail!("no DICOM file to commit in the paths given");
    }
    Ok(order
        .into_iter()
        .map(|study| Wanted {
            instances: by_study.remove(&study).unwrap_or_default(),
            study,
            sent: None,
        })
        .collect())
}

/// The instances the archive lists for each study.
fn listed_by_archive(
    config: &config::TestConfig,
    studies: Vec<(String, Option<u64>)>,
) -> Result<Vec<Wanted>> {
    let client = campaign::options::cfind::cfind_client(config)?;
    let mut wanted = Vec::with_capacity(studies.len());
    for (study, sent) in studies {
        let listed = client
            .find(&InstanceQuery::in_study(&study))
            .with_context(|| format!("listing the instances of {study} at {}", client.peer()))?;
        let mut unnamed = 0usize;
        let instances: Vec<ReferencedInstance> = listed
            .matches
            .into_iter()
            .filter_map(|m| match m.sop_class_uid {
                Some(class) if !m.sop_instance_uid.is_empty() => {
                    Some(ReferencedInstance::new(class, m.sop_instance_uid))
                }
                _ => {
                    unnamed += 1;
                    None
                }
            })
            .collect();
        if unnamed > 0 {
            eprintln!(
                "dicom-auto commit: {study}: {unnamed} instance(s) listed without SOP Class or Instance UID cannot be asked"
            );
        }
        wanted.push(Wanted {
            study,
            instances,
            sent,
        });
    }
    Ok(wanted)
}

/// The studies the arguments name, with their instances.
fn wanted(args: &CommitArgs, config: &config::TestConfig) -> Result<Vec<Wanted>> {
    if !args.paths.is_empty() {
        return from_files(&args.paths);
    }
    if let Some(path) = &args.load {
        let load = SentLoad::read(path)?;
        let counted = load.counts_instances();
        let studies = load
            .delivered()
            .map(|s| {
                (
                    s.study_instance_uid.clone(),
                    counted.then(|| s.counts.delivered()),
                )
            })
            .collect();
        return listed_by_archive(config, studies);
    }
    if args.studies.is_empty() {
        bail!(
            "name what to commit: DICOM files or folders, --study UID (repeatable), or --load LOAD_JSON"
        );
    }
    listed_by_archive(
        config,
        args.studies.iter().map(|s| (s.clone(), None)).collect(),
    )
}

/// Runs the commitments; exit status 1 when the archive did not commit everything.
pub fn commit(args: &CommitArgs) -> Result<ExitCode> {
    let mut config = configuration()?;
    args.archive.apply(&mut config);
    if let Some(calling) = &args.calling {
        config.cfind.calling_ae_title = calling.clone();
    }
    if let Some(port) = args.listen_port {
        config.commit.port = port;
    }
    if let Some(bind) = args.bind {
        config.sink.bind = bind;
    }
    if let Some(seconds) = args.timeout {
        config.commit.timeout = Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| {
                format!("--timeout {seconds}: expected a number of seconds above zero")
            })?;
    }
    let wanted = wanted(args, &config)?;
    let listener = ReportListener::start(campaign::options::commitment::listener_options(&config))
        .context("starting the report listener (--listen-port, --bind, COMMIT_PORT, SINK_BIND)")?;
    let options = campaign::options::commitment::commitment_options(&config)?
        .keep_association_open(args.keep_open);
    let committer = Committer::with_listener(options, Arc::new(listener))?;
    let listener = committer.listener().expect("made with a listener");
    eprintln!(
        "dicom-auto: committing {} instance(s) of {} study(ies) with {}, reports awaited as {} at {}",
        wanted.iter().map(|w| w.instances.len()).sum::<usize>(),
        wanted.len(),
        committer.options().scu().peer(),
        listener.ae_title(),
        listener.local_addr(),
    );
    let (askable, empty): (Vec<&Wanted>, Vec<&Wanted>) =
        wanted.iter().partition(|w| !w.instances.is_empty());
    let studies: Vec<(String, Vec<ReferencedInstance>)> = askable
        .iter()
        .map(|w| (w.study.clone(), w.instances.clone()))
        .collect();
    let results = commit_studies(&committer, &studies);
    let mut all_good = true;
    for w in &empty {
        all_good = false;
        println!(
            "FAIL  {}: the archive lists no instance of it{}",
            w.study,
            w.sent.map(|n| format!("; {n} sent")).unwrap_or_default()
        );
    }
    for (study, w) in results.iter().zip(&askable) {
        let counts_match = w.sent.is_none_or(|sent| study.requested as u64 == sent);
        let good = study.is_committed() && counts_match;
        all_good &= good;
        let mark = if good { "pass" } else { "FAIL" };
        let mut line = format!("{mark}  {}: {}", study.study_instance_uid, study.summary());
        if let Some(sent) = w.sent {
            line.push_str(&format!("; {} listed of {sent} sent", study.requested));
        }
        println!("{line}");
        if let Some(outcome) = &study.outcome {
            for failed in outcome.failed.iter().take(10) {
                let reason = failed
                    .reason
                    .map_or_else(|| "no reason given".to_string(), |r| r.to_string());
                println!("      failed: {} ({reason})", failed.instance);
            }
            for anomaly in &outcome.anomalies {
                println!("      anomaly: {anomaly}");
            }
            if outcome.timed_out {
                println!(
                    "      no report came: is the archive told to send Storage Commitment reports to {} at {} (COMMIT_PORT, --listen-port)?",
                    listener.ae_title(),
                    listener.local_addr()
                );
            }
        }
    }
    let unknown = listener.unknown_reports();
    if !unknown.is_empty() {
        all_good = false;
        println!(
            "FAIL  {} report(s) for a transaction nobody asked about, e.g. {} from {}",
            unknown.len(),
            unknown[0].transaction_uid,
            unknown[0].from
        );
    }
    let malformed = listener.malformed_reports();
    if !malformed.is_empty() {
        all_good = false;
        println!(
            "FAIL  {} unreadable report(s), e.g. from {}: {}",
            malformed.len(),
            malformed[0].from,
            malformed[0].problem
        );
    }
    if let Some(path) = &args.json {
        let rows: Vec<Committed<'_>> = results
            .iter()
            .zip(&askable)
            .map(|(commitment, w)| Committed {
                commitment,
                sent: w.sent,
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).context("encoding the commitments")?;
        loader::AtomicFile::new(path)
            .write_bytes(text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    listener.shutdown();
    Ok(if all_good {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECKS_FAILED)
    })
}
