//! `dicom-auto verify`: is everything a load run delivered at the destination?

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cfind::Delivery;
use clap::Args;
use sender::{StudyRecord, UidStrategy};

use crate::CHECKS_FAILED;
use crate::sent_load::SentLoad;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The JSON a load wrote (`dicom-auto load ... --json FILE`).
    #[arg(value_name = "LOAD_JSON")]
    load: PathBuf,
    /// Also write the verification (per study: delivery, instances seen, time to
    /// visible) as JSON here, atomically.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

pub fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    let load = SentLoad::read(&args.load)?;
    verify_sent(&load.studies, load.counts_instances(), args.json.as_deref())
}

/// Verifies by C-FIND that `studies` are at the destination (every instance counted
/// when `fresh`: the run made fresh UIDs), prints one summary, and writes the
/// verification to `json` when given.
pub fn verify_sent(
    studies: &[StudyRecord],
    fresh: bool,
    json: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let config = crate::configuration()?;
    let uids = if fresh {
        UidStrategy::Fresh
    } else {
        UidStrategy::AsIs
    };
    let sent = campaign::load::sent_studies(studies, uids);
    let client = campaign::options::cfind::cfind_client(&config)?;
    eprintln!(
        "dicom-auto: verifying {} studies at {} ({})",
        sent.len(),
        client.peer(),
        if uids == UidStrategy::Fresh {
            "every instance counted"
        } else {
            "files sent as they are: each study's presence"
        }
    );
    let verification = client
        .verify_studies(&sent)
        .with_context(|| format!("C-FIND verification at {}", client.peer()))?;
    if let Some(path) = json {
        let json = serde_json::to_vec_pretty(&verification)?;
        loader::AtomicFile::new(path)
            .write_bytes(&json)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    for delivery in [
        Delivery::Complete,
        Delivery::Incomplete,
        Delivery::Missing,
        Delivery::Unverified,
    ] {
        println!(
            "{:<12}{}",
            format!("{delivery:?}").to_lowercase(),
            verification.count(delivery)
        );
    }
    if let Some(transit) = verification.transit.summary() {
        println!(
            "transit     p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (last send to visible; an upper bound: one poll interval)",
            transit.p50_ms, transit.p95_ms, transit.max_ms
        );
    }
    let check = campaign::checks::delivery(&verification);
    let mark = if check.passed { "pass" } else { "FAIL" };
    println!("{mark}        {}: {}", check.name, check.message);
    Ok(if check.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(CHECKS_FAILED)
    })
}
