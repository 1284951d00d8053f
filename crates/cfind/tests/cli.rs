//! The `cfind` command line against the simulator's query AE title: exit codes,
//! tables, JSON.

mod support;

use std::process::{Command, Output};

use clap::Parser;

use dimse::{InformationModel, Status};
use simulator::{FaultPlan, FindRefusal, SimulatorHandle};
use support::archive::ArchiveStudy;
use support::instances::{QUERY_AE, simulator_holding};

/// Runs `cfind` against `port` on loopback, calling the simulator's query AE title
/// (the binary has no `.env` and reads no environment: the options say everything).
fn cfind(port: u16, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let port = port.to_string();
    Command::new(env!("CARGO_BIN_EXE_cfind"))
        .args(["--host", "127.0.0.1", "--port", &port, "--aec", QUERY_AE])
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run cfind")
}

/// Runs `cfind::cli::run` in this process with `defaults`, as `dicom-auto find` does.
fn run_with(defaults: cfind::CFindClientBuilder, args: &[&str]) -> anyhow::Result<String> {
    let args =
        cfind::cli::Args::try_parse_from(std::iter::once("cfind").chain(args.iter().copied()))?;
    let mut out = Vec::new();
    cfind::cli::run(&args, defaults, &mut out)?;
    Ok(String::from_utf8(out)?)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A simulator holding three studies of two single-instance series, and the studies.
fn scp() -> (SimulatorHandle, Vec<ArchiveStudy>) {
    let studies: Vec<ArchiveStudy> = (0..3).map(|n| ArchiveStudy::synthetic(n, 2, 1)).collect();
    (simulator_holding(&studies), studies)
}

fn port(simulator: &SimulatorHandle) -> u16 {
    simulator.addr().port()
}

#[test]
fn ping_reports_the_echo_and_exits_zero() {
    let (scp, _) = scp();
    let output = cfind(port(&scp), &["ping"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("C-ECHO ok") && text.contains("Study Root, Patient Root"),
        "{text}"
    );
}

#[test]
fn a_study_query_prints_a_table_with_extra_keys() {
    let (scp, studies) = scp();
    let uid = &studies[1].study_instance_uid;
    let output = cfind(port(&scp), &["study", uid, "--key", "InstitutionName"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.starts_with("1 study (Study Root model"), "{text}");
    assert!(
        text.contains("InstitutionName") && text.contains(uid.as_str()),
        "{text}"
    );
    assert!(text.contains("Test^Patient1"), "{text}");
}

#[test]
fn json_output_carries_the_model_and_every_returned_key() {
    let (scp, _) = scp();
    let output = cfind(port(&scp), &["--json", "patient", "PID-2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["model"], "study_root");
    assert_eq!(json["matches"][0]["identifier"]["PatientID"], "PID-2");
    assert_eq!(json["matches"][0]["number_of_study_related_instances"], 2);
}

#[test]
fn a_query_matching_nothing_prints_an_empty_result_and_exits_zero() {
    let (scp, _) = scp();
    let output = cfind(port(&scp), &["dates", "1999-01-01", "19991231"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("0 studies"),
        "{}",
        stdout(&output)
    );
    let json = cfind(port(&scp), &["modality", "US", "--json"]);
    assert!(json.status.success());
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["matches"].as_array().unwrap().len(), 0);
}

#[test]
fn series_and_images_are_listed() {
    let (scp, studies) = scp();
    let uid = &studies[0].study_instance_uid;
    let series = cfind(port(&scp), &["series", uid]);
    assert!(
        stdout(&series).starts_with("2 series"),
        "{}",
        stdout(&series)
    );
    let images = cfind(port(&scp), &["images", uid]);
    assert!(
        stdout(&images).starts_with("2 instances"),
        "{}",
        stdout(&images)
    );
}

#[test]
fn an_unreachable_peer_exits_non_zero_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = cfind(port, &["today"]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains(&format!("cannot connect to {QUERY_AE}@127.0.0.1")),
        "{text}"
    );
}

#[test]
fn a_failed_query_exits_non_zero_with_the_status() {
    let scp = simulator_holding(&[]);
    scp.set_faults(FaultPlan {
        refuse_find: Some(FindRefusal {
            models: vec![InformationModel::StudyRoot, InformationModel::PatientRoot],
            status: Status(0xA700),
        }),
        ..FaultPlan::default()
    });
    let output = cfind(port(&scp), &["today"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("A700"), "{}", stderr(&output));
}

#[test]
fn options_beat_the_defaults_and_bad_input_is_named() {
    let (scp, _) = scp();
    let wrong_port = cfind::CFindClient::builder("127.0.0.1", 1).called_ae_title(QUERY_AE);
    let text = run_with(wrong_port, &["--port", &port(&scp).to_string(), "ping"]);
    assert!(text.is_ok(), "{:#}", text.unwrap_err());
    let wrong_ae = cfind(port(&scp), &["--aec", "SOMEONE-ELSE", "ping"]);
    assert!(!wrong_ae.status.success());
    assert!(
        stderr(&wrong_ae).contains("association rejected"),
        "{}",
        stderr(&wrong_ae)
    );
    let bad_date = cfind(port(&scp), &["dates", "2024-13-01", "2024-12-31"]);
    assert!(!bad_date.status.success());
    assert!(
        stderr(&bad_date).contains("2024-13-01"),
        "{}",
        stderr(&bad_date)
    );
}

#[test]
fn the_defaults_given_to_run_name_the_peer() {
    let (scp, _) = scp();
    let defaults = cfind::CFindClient::builder("127.0.0.1", port(&scp)).called_ae_title(QUERY_AE);
    let text = run_with(defaults, &["ping"]).unwrap();
    assert!(
        text.starts_with(&format!("{QUERY_AE}@127.0.0.1:{}: C-ECHO ok", port(&scp))),
        "{text}"
    );
}

#[test]
fn a_study_is_found_over_mutual_tls_with_the_flags_and_plaintext_is_told_why_it_failed() {
    let pki = test_pki::TestPki::new().unwrap();
    let tls = dimse::tls::TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .client_ca_bundle(pki.ca())
        .require_client_certificate(true);
    let scp = simulator::Simulator::start(simulator::SimulatorConfig {
        tls: Some(simulator::TlsListener::on_free_port(tls)),
        ..simulator::SimulatorConfig::default()
    })
    .unwrap();
    let studies = [ArchiveStudy::synthetic(7, 1, 2)];
    support::instances::store_into_simulator(scp.addr(), support::instances::ROUTE, &studies);
    let tls_port = scp.tls_addr().unwrap().port();
    let uid = studies[0].study_instance_uid.as_str();
    // The flags after the subcommand, as a user types them.
    let flags = pki.mutual_tls_flags();
    let mut args = vec!["study", uid, "--user", "qa"];
    args.extend(flags.iter().map(String::as_str));
    let output = cfind(tls_port, &args);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains(uid), "{}", stdout(&output));
    let stats = scp.stats();
    assert!(stats.tls.associations >= 1);
    assert_eq!(stats.identities.by_user["qa"], 1);

    let output = cfind(tls_port, &["study", uid]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("answered in TLS"),
        "{}",
        stderr(&output)
    );
}
