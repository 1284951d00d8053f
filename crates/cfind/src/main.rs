//! `cfind`: query a C-FIND SCP from the command line.
//!
//! Settings come from `.env` and the environment (`CFIND_HOST`, `CFIND_PORT`,
//! `CFIND_AE_TITLE`, `DICOM_*` timeouts...), like every dicom-auto tool; the options
//! override them for one run.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use cfind::{
    CFindClient, Expectation, InformationModel, InstanceQuery, Key, Match, NaiveDate, Query,
    QueryResult, SeriesQuery, StudyQuery,
};
use clap::{Parser, Subcommand, ValueEnum};
use config::TestConfig;
use dicom_dictionary_std::tags;

#[derive(Debug, Parser)]
#[command(
    name = "cfind",
    version,
    about = "Query a DICOM C-FIND SCP (the router's archive or a PACS) and check delivery",
    long_about = "Query a DICOM C-FIND SCP (the router's archive or a PACS) and check delivery.\n\n\
        Settings come from .env and the environment (CFIND_HOST, CFIND_PORT, CFIND_AE_TITLE, \
        LOCAL_AE_TITLE, DICOM_*_TIMEOUT, CFIND_TIMEOUT...); the options below override them. \
        A query that matches nothing prints an empty result and exits 0; a failed query or an \
        unreachable peer exits 1 with the reason."
)]
struct Cli {
    /// Query SCP host (overrides CFIND_HOST).
    #[arg(long, global = true)]
    host: Option<String>,
    /// Query SCP port (overrides CFIND_PORT).
    #[arg(long, global = true)]
    port: Option<u16>,
    /// Called AE title, the SCP's (overrides CFIND_AE_TITLE).
    #[arg(long, global = true)]
    aec: Option<String>,
    /// Calling AE title, ours (overrides LOCAL_AE_TITLE).
    #[arg(long, global = true)]
    aet: Option<String>,
    /// Information model; `auto` tries Study Root, then Patient Root.
    #[arg(long, global = true, value_enum, default_value_t = ModelChoice::Auto)]
    model: ModelChoice,
    /// Extra return key, by keyword or tag, e.g. `--key InstitutionName --key 0008,1010`.
    #[arg(long = "key", global = true, value_name = "KEY")]
    keys: Vec<String>,
    /// Stop after this many matches (the rest is cancelled with C-CANCEL).
    #[arg(long, global = true)]
    limit: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelChoice {
    Auto,
    Study,
    Patient,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Test the connection: associate, C-ECHO, release.
    Ping,
    /// The study with this StudyInstanceUID.
    Study { study_instance_uid: String },
    /// The studies of a PatientID (`*` and `?` are wildcards).
    Patient { patient_id: String },
    /// Studies dated today (local time).
    Today,
    /// Studies dated from FROM to TO, both included (YYYYMMDD or YYYY-MM-DD).
    Dates { from: String, to: String },
    /// Studies with a series of this modality (ModalitiesInStudy).
    Modality { modality: String },
    /// The series of a study.
    Series { study_instance_uid: String },
    /// The instances of a study, or of one of its series.
    Images {
        study_instance_uid: String,
        series_instance_uid: Option<String>,
    },
    /// Poll until a study is visible (CFIND_INITIAL_DELAY, CFIND_POLL_INTERVAL, CFIND_TIMEOUT).
    Wait {
        study_instance_uid: String,
        /// Also wait until it has at least this many instances.
        #[arg(long)]
        instances: Option<u32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cfind: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn client(cli: &Cli) -> Result<CFindClient> {
    let config =
        TestConfig::from_env().context("reading the configuration (.env and environment)")?;
    let mut builder = CFindClient::builder_from_config(&config);
    if let Some(host) = &cli.host {
        builder = builder.host(host);
    }
    if let Some(port) = cli.port {
        builder = builder.port(port);
    }
    if let Some(aec) = &cli.aec {
        builder = builder.called_ae_title(aec);
    }
    if let Some(aet) = &cli.aet {
        builder = builder.calling_ae_title(aet);
    }
    builder = match cli.model {
        ModelChoice::Auto => builder,
        ModelChoice::Study => builder.models([InformationModel::StudyRoot]),
        ModelChoice::Patient => builder.models([InformationModel::PatientRoot]),
    };
    Ok(builder.build()?)
}

fn date(text: &str) -> Result<NaiveDate> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    NaiveDate::parse_from_str(&digits, "%Y%m%d")
        .with_context(|| format!("{text:?} is not a date (YYYYMMDD or YYYY-MM-DD)"))
}

fn prepare<Q: Query>(cli: &Cli, query: Q) -> Result<(Q, Vec<Key>)> {
    let extra = cli
        .keys
        .iter()
        .map(|k| Key::parse(k))
        .collect::<Result<Vec<_>, _>>()?;
    let mut query = query.with_return_keys(extra.iter().copied());
    if let Some(limit) = cli.limit {
        query = query.with_limit(limit);
    }
    Ok((query, extra))
}

fn run(cli: &Cli) -> Result<()> {
    let client = client(cli)?;
    let peer = client.peer();
    match &cli.command {
        Command::Ping => {
            let check = client
                .test_connection()
                .with_context(|| format!("C-ECHO to {peer} failed"))?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&check)?);
            } else {
                let models: Vec<&str> = check.models_accepted.iter().map(|m| m.name()).collect();
                println!(
                    "{peer}: C-ECHO ok in {:.2} ms (association {:.2} ms); query models accepted: {}",
                    ms(check.echo_rtt),
                    ms(check.association_time),
                    if models.is_empty() {
                        "none".to_string()
                    } else {
                        models.join(", ")
                    }
                );
            }
            Ok(())
        }
        Command::Study { study_instance_uid } => studies(
            cli,
            &client,
            StudyQuery::by_study_instance_uid(study_instance_uid),
        ),
        Command::Patient { patient_id } => {
            studies(cli, &client, StudyQuery::by_patient_id(patient_id))
        }
        Command::Today => studies(cli, &client, StudyQuery::today()),
        Command::Dates { from, to } => studies(
            cli,
            &client,
            StudyQuery::by_study_dates(date(from)?, date(to)?),
        ),
        Command::Modality { modality } => studies(cli, &client, StudyQuery::by_modality(modality)),
        Command::Series { study_instance_uid } => {
            let (query, extra) = prepare(cli, SeriesQuery::in_study(study_instance_uid))?;
            let result = find(&client, &query)?;
            print(cli, &result, ("series", "series"), &extra, &SERIES_COLUMNS)
        }
        Command::Images {
            study_instance_uid,
            series_instance_uid,
        } => {
            let query = match series_instance_uid {
                Some(series) => InstanceQuery::in_series(study_instance_uid, series),
                None => InstanceQuery::in_study(study_instance_uid),
            };
            let (query, extra) = prepare(cli, query)?;
            let result = find(&client, &query)?;
            print(
                cli,
                &result,
                ("instance", "instances"),
                &extra,
                &INSTANCE_COLUMNS,
            )
        }
        Command::Wait {
            study_instance_uid,
            instances,
        } => {
            let mut expectation = Expectation::visible();
            if let Some(n) = instances {
                expectation = expectation.at_least_instances(*n);
            }
            let sighting = client
                .wait_for_study(study_instance_uid, &expectation)
                .with_context(|| format!("waiting for study {study_instance_uid} at {peer}"))?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&sighting.study)?);
            } else {
                println!(
                    "study {study_instance_uid} visible after {:.1} s ({} queries, {} model){}",
                    sighting.waited.as_secs_f64(),
                    sighting.polls,
                    sighting.model,
                    sighting
                        .instances
                        .map(|n| format!(", {n} instances"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}

fn find<Q: Query>(client: &CFindClient, query: &Q) -> Result<QueryResult<Q::Match>> {
    client
        .find(query)
        .with_context(|| format!("C-FIND to {} failed", client.peer()))
}

fn studies(cli: &Cli, client: &CFindClient, query: StudyQuery) -> Result<()> {
    let (query, extra) = prepare(cli, query)?;
    let result = find(client, &query)?;
    print(cli, &result, ("study", "studies"), &extra, &STUDY_COLUMNS)
}

/// A table column: header and the attribute it shows.
type Column = (&'static str, dicom_core::Tag);

const STUDY_COLUMNS: [Column; 10] = [
    ("StudyInstanceUID", tags::STUDY_INSTANCE_UID),
    ("PatientID", tags::PATIENT_ID),
    ("PatientName", tags::PATIENT_NAME),
    ("Date", tags::STUDY_DATE),
    ("Time", tags::STUDY_TIME),
    ("Modalities", tags::MODALITIES_IN_STUDY),
    ("Accession", tags::ACCESSION_NUMBER),
    ("Description", tags::STUDY_DESCRIPTION),
    ("Series", tags::NUMBER_OF_STUDY_RELATED_SERIES),
    ("Instances", tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
];

const SERIES_COLUMNS: [Column; 5] = [
    ("SeriesInstanceUID", tags::SERIES_INSTANCE_UID),
    ("Number", tags::SERIES_NUMBER),
    ("Modality", tags::MODALITY),
    ("Description", tags::SERIES_DESCRIPTION),
    ("Instances", tags::NUMBER_OF_SERIES_RELATED_INSTANCES),
];

const INSTANCE_COLUMNS: [Column; 4] = [
    ("SOPInstanceUID", tags::SOP_INSTANCE_UID),
    ("Number", tags::INSTANCE_NUMBER),
    ("SeriesInstanceUID", tags::SERIES_INSTANCE_UID),
    ("SOPClassUID", tags::SOP_CLASS_UID),
];

fn print<T: Match + serde::Serialize>(
    cli: &Cli,
    result: &QueryResult<T>,
    (one, many): (&str, &str),
    extra: &[Key],
    columns: &[Column],
) -> Result<()> {
    if cli.json {
        println!("{}", serde_json::to_string_pretty(result)?);
        return Ok(());
    }
    let mut headers: Vec<String> = columns.iter().map(|(h, _)| h.to_string()).collect();
    headers.extend(extra.iter().map(|k| k.keyword()));
    let tags_shown: Vec<dicom_core::Tag> = columns
        .iter()
        .map(|(_, t)| *t)
        .chain(extra.iter().map(|k| k.tag()))
        .collect();
    let rows: Vec<Vec<String>> = result
        .matches
        .iter()
        .map(|m| {
            tags_shown
                .iter()
                .map(|t| m.identifier().get(*t).unwrap_or("-").to_string())
                .collect()
        })
        .collect();
    println!(
        "{} {} ({} model, {:.1} ms){}{}",
        result.len(),
        if result.len() == 1 { one } else { many },
        result.model,
        ms(result.elapsed),
        if result.truncated {
            ", limit reached: more may match"
        } else {
            ""
        },
        result
            .fallbacks
            .iter()
            .map(|f| format!("; {} refused: {}", f.refused, f.reason))
            .collect::<String>()
    );
    if rows.is_empty() {
        return Ok(());
    }
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(&headers));
    for row in &rows {
        println!("{}", line(row));
    }
    if result.optional_keys_unsupported > 0 {
        println!(
            "note: {} matches came with status FF01 (some optional keys not supported for matching)",
            result.optional_keys_unsupported
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
