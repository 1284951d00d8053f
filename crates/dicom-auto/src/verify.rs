//! `dicom-auto verify`: is everything a load run delivered at the destination?

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cfind::Delivery;
use clap::Args;
use sender::UidStrategy;

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
    let config = crate::configuration()?;
    let load = SentLoad::read(&args.load)?;
    let uids = if load.counts_instances() {
        UidStrategy::Fresh
    } else {
        UidStrategy::AsIs
    };
    let sent = campaign::load::sent_studies(&load.studies, uids);
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
    if let Some(path) = &args.json {
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
