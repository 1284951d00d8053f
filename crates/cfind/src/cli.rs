//! The `cfind` command line as a library: [`Args`] (the options and subcommands) and
//! [`run`], which queries and prints.
//!
//! The defaults (peer, AE titles, timeouts, polling) come from the caller as a
//! [`CFindClientBuilder`]: the `cfind` binary passes the built-in ones
//! ([`builtin_defaults`]), `dicom-auto find` passes the configuration's (via the
//! `campaign` crate); the options override them for one run. So every option is
//! defined once, here.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use dicom_dictionary_std::tags;

use crate::{
    CFindClient, CFindClientBuilder, Expectation, InformationModel, InstanceQuery, Key, Match,
    NaiveDate, Query, QueryResult, SeriesQuery, StudyQuery,
};

/// The built-in defaults of the `cfind` binary: the SCP at 127.0.0.1:11112, called AE
/// `ANY-SCP`, calling AE `DICOM-AUTO`, the default timeouts and polling.
pub fn builtin_defaults() -> CFindClientBuilder {
    CFindClient::builder("127.0.0.1", 11112)
}

#[derive(Debug, Parser)]
#[command(
    name = "cfind",
    version,
    // A later option wins over an earlier one, so a wrapper can put defaults first.
    args_override_self = true,
    about = "Query a DICOM C-FIND SCP (the router's archive or a PACS) and check delivery",
    long_about = "Query a DICOM C-FIND SCP (the router's archive or a PACS) and check delivery.\n\n\
        Without options it queries ANY-SCP at 127.0.0.1:11112 as DICOM-AUTO (dicom-auto find \
        takes these defaults from .env); the options below override them. \
        A query that matches nothing prints an empty result and exits 0; a failed query or an \
        unreachable peer exits 1 with the reason."
)]
pub struct Args {
    /// Query SCP host (default: 127.0.0.1, or CFIND_HOST with dicom-auto).
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// Query SCP port (default: 11112, or CFIND_PORT with dicom-auto).
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Called AE title, the SCP's (default: ANY-SCP, or CFIND_AE_TITLE with dicom-auto).
    #[arg(long, global = true)]
    pub aec: Option<String>,
    /// Calling AE title, ours (default: DICOM-AUTO, or LOCAL_AE_TITLE with dicom-auto).
    #[arg(long, global = true)]
    pub aet: Option<String>,
    /// Information model; `auto` tries Study Root, then Patient Root.
    #[arg(long, global = true, value_enum, default_value_t = ModelChoice::Auto)]
    pub model: ModelChoice,
    /// Extra return key, by keyword or tag, e.g. `--key InstitutionName --key 0008,1010`.
    #[arg(long = "key", global = true, value_name = "KEY")]
    pub keys: Vec<String>,
    /// Stop after this many matches (the rest is cancelled with C-CANCEL).
    #[arg(long, global = true)]
    pub limit: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub security: dimse::cli::SecurityArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The `--model` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelChoice {
    /// Study Root, then Patient Root.
    Auto,
    /// Study Root only.
    Study,
    /// Patient Root only.
    Patient,
}

/// What to ask.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Test the connection: associate, C-ECHO, release.
    Ping,
    /// The study with this StudyInstanceUID.
    Study {
        /// The StudyInstanceUID.
        study_instance_uid: String,
    },
    /// The studies of a PatientID (`*` and `?` are wildcards).
    Patient {
        /// The PatientID.
        patient_id: String,
    },
    /// Studies dated today (local time).
    Today,
    /// Studies dated from FROM to TO, both included (YYYYMMDD or YYYY-MM-DD).
    Dates {
        /// The first date.
        from: String,
        /// The last date.
        to: String,
    },
    /// Studies with a series of this modality (ModalitiesInStudy).
    Modality {
        /// The modality, e.g. CT.
        modality: String,
    },
    /// The series of a study.
    Series {
        /// The StudyInstanceUID.
        study_instance_uid: String,
    },
    /// The instances of a study, or of one of its series.
    Images {
        /// The StudyInstanceUID.
        study_instance_uid: String,
        /// The SeriesInstanceUID, to list one series only.
        series_instance_uid: Option<String>,
    },
    /// Poll until a study is visible (initial delay, poll interval and timeout of the
    /// defaults: CFIND_INITIAL_DELAY, CFIND_POLL_INTERVAL, CFIND_TIMEOUT with dicom-auto).
    Wait {
        /// The StudyInstanceUID.
        study_instance_uid: String,
        /// Also wait until it has at least this many instances.
        #[arg(long)]
        instances: Option<u32>,
    },
}

fn client(cli: &Args, defaults: CFindClientBuilder) -> Result<CFindClient> {
    let mut builder = defaults;
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
    let security = cli.security.apply(builder.current_security())?;
    builder = builder.security(security);
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

fn prepare<Q: Query>(cli: &Args, query: Q) -> Result<(Q, Vec<Key>)> {
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

/// Runs the command `cli` asks for, with `defaults` for what it does not say, and
/// writes the answer (a table, or JSON with `--json`) to `out`.
///
/// # Errors
/// A bad option value, an unreachable or refusing peer, a failed query: the error's
/// chain says which and names the peer.
pub fn run(cli: &Args, defaults: CFindClientBuilder, out: &mut dyn Write) -> Result<()> {
    let client = client(cli, defaults)?;
    let peer = client.peer();
    match &cli.command {
        Command::Ping => {
            let check = client
                .test_connection()
                .with_context(|| format!("C-ECHO to {peer} failed"))?;
            if cli.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&check)?)?;
            } else {
                let models: Vec<&str> = check.models_accepted.iter().map(|m| m.name()).collect();
                writeln!(
                    out,
                    "{peer}: C-ECHO ok in {:.2} ms (association {:.2} ms); query models accepted: {}",
                    ms(check.echo_rtt),
                    ms(check.association_time),
                    if models.is_empty() {
                        "none".to_string()
                    } else {
                        models.join(", ")
                    }
                )?;
            }
            Ok(())
        }
        Command::Study { study_instance_uid } => studies(
            cli,
            &client,
            StudyQuery::by_study_instance_uid(study_instance_uid),
            out,
        ),
        Command::Patient { patient_id } => {
            studies(cli, &client, StudyQuery::by_patient_id(patient_id), out)
        }
        Command::Today => studies(cli, &client, StudyQuery::today(), out),
        Command::Dates { from, to } => studies(
            cli,
            &client,
            StudyQuery::by_study_dates(date(from)?, date(to)?),
            out,
        ),
        Command::Modality { modality } => {
            studies(cli, &client, StudyQuery::by_modality(modality), out)
        }
        Command::Series { study_instance_uid } => {
            let (query, extra) = prepare(cli, SeriesQuery::in_study(study_instance_uid))?;
            let result = find(&client, &query)?;
            print(
                cli,
                &result,
                ("series", "series"),
                &extra,
                &SERIES_COLUMNS,
                out,
            )
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
                out,
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
                writeln!(out, "{}", serde_json::to_string_pretty(&sighting.study)?)?;
            } else {
                writeln!(
                    out,
                    "study {study_instance_uid} visible after {:.1} s ({} queries, {} model){}",
                    sighting.waited.as_secs_f64(),
                    sighting.polls,
                    sighting.model,
                    sighting
                        .instances
                        .map(|n| format!(", {n} instances"))
                        .unwrap_or_default()
                )?;
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

fn studies(cli: &Args, client: &CFindClient, query: StudyQuery, out: &mut dyn Write) -> Result<()> {
    let (query, extra) = prepare(cli, query)?;
    let result = find(client, &query)?;
    print(
        cli,
        &result,
        ("study", "studies"),
        &extra,
        &STUDY_COLUMNS,
        out,
    )
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
    cli: &Args,
    result: &QueryResult<T>,
    (one, many): (&str, &str),
    extra: &[Key],
    columns: &[Column],
    out: &mut dyn Write,
) -> Result<()> {
    if cli.json {
        writeln!(out, "{}", serde_json::to_string_pretty(result)?)?;
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
    writeln!(
        out,
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
    )?;
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
    writeln!(out, "{}", line(&headers))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    if result.optional_keys_unsupported > 0 {
        writeln!(
            out,
            "note: {} matches came with status FF01 (some optional keys not supported for matching)",
            result.optional_keys_unsupported
        )?;
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_option_wins_and_keys_accumulate() {
        let args = Args::try_parse_from([
            "cfind",
            "--port",
            "1",
            "--key",
            "InstitutionName",
            "--port",
            "2",
            "--key",
            "0008,1010",
            "today",
        ])
        .unwrap();
        assert_eq!(args.port, Some(2));
        assert_eq!(args.keys, ["InstitutionName", "0008,1010"]);
    }

    #[test]
    fn the_builtin_defaults_are_loopback_11112_any_scp() {
        let client = builtin_defaults().build().unwrap();
        assert_eq!(client.peer(), "ANY-SCP@127.0.0.1:11112");
        assert_eq!(client.calling_ae_title().as_str(), "DICOM-AUTO");
    }

    #[test]
    fn options_override_the_defaults() {
        let args = Args::try_parse_from([
            "cfind", "--host", "pacs", "--aec", "LB-QUERY", "--aet", "QA", "--model", "patient",
            "ping",
        ])
        .unwrap();
        let client = client(&args, builtin_defaults()).unwrap();
        assert_eq!(client.peer(), "LB-QUERY@pacs:11112");
        assert_eq!(client.calling_ae_title().as_str(), "QA");
        assert_eq!(client.models(), [InformationModel::PatientRoot]);
    }
}
