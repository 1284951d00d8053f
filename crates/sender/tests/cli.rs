//! The `sender` command line against the simulator.

mod common;

use std::process::{Command, Output};

use common::{
    CALLED_AE_TITLE, OriginalStudy, associations, ct_files, simulator, stored_data_sets,
    study_files,
};
use dimse::Status;
use loader::synth::Encoding;
use simulator::{FaultPlan, SimulatorHandle, StatusOverride, StoreSelection};

/// Runs `sender COMMAND HOST PORT ARGS...` against `sim`.
fn sender_on(sim: &SimulatorHandle, command: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sender"))
        .arg(command)
        .arg(sim.addr().ip().to_string())
        .arg(sim.addr().port().to_string())
        .args(args)
        .output()
        .unwrap()
}

/// Asserts that `sender` succeeded, showing its output when not.
fn succeeded(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn store_prints_the_summary_and_writes_json_under_the_same_names() {
    let dir = tempfile::tempdir().unwrap();
    ct_files(dir.path(), 3, Encoding::ExplicitVrLittleEndian);
    let sim = simulator(FaultPlan::default());
    let json = dir.path().join("out").join("summary.json");
    std::fs::create_dir(json.parent().unwrap()).unwrap();
    let out = succeeded(sender_on(
        &sim,
        "store",
        &[
            dir.path().to_str().unwrap(),
            "--aec",
            CALLED_AE_TITLE,
            "--quiet",
            "--json",
            json.to_str().unwrap(),
        ],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for name in [
        "attempted",
        "succeeded",
        "warnings",
        "failed",
        "unknown",
        "images_per_s",
        "mb_per_s",
    ] {
        assert!(stdout.contains(name), "table lacks {name}:\n{stdout}");
        assert!(value.get(name).is_some(), "JSON lacks {name}");
    }
    assert_eq!(value["attempted"], 3);
    assert_eq!(value["succeeded"], 3);
    for name in ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"] {
        assert!(
            stdout.contains(&format!("latency_ms.{name}")),
            "table lacks {name}"
        );
        assert!(
            value["latency_ms"].get(name).is_some(),
            "JSON lacks latency_ms.{name}"
        );
    }
    assert_eq!(sim.stats().stores.received, 3);
}

#[test]
fn a_refused_store_makes_the_exit_status_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    ct_files(dir.path(), 1, Encoding::ExplicitVrLittleEndian);
    let sim = simulator(FaultPlan {
        status_override: Some(StatusOverride {
            status: Status(0xA700),
            selection: StoreSelection::EveryNth(1),
        }),
        ..FaultPlan::default()
    });
    let out = sender_on(&sim, "store", &[dir.path().to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("A700"), "{stdout}");
}

#[test]
fn load_sends_the_requested_count_over_several_associations() {
    let dir = tempfile::tempdir().unwrap();
    ct_files(dir.path(), 2, Encoding::ExplicitVrLittleEndian);
    let sim = simulator(FaultPlan::default());
    succeeded(sender_on(
        &sim,
        "load",
        &[
            dir.path().to_str().unwrap(),
            "--count",
            "12",
            "--concurrency",
            "3",
            "--reuid",
            "--quiet",
        ],
    ));
    assert_eq!(sim.stats().stores.received, 12);
    assert_eq!(associations(&sim), 3);
}

#[test]
fn load_with_a_series_size_cuts_each_original_study_into_smaller_fresh_studies() {
    let dir = tempfile::tempdir().unwrap();
    study_files(dir.path(), &[OriginalStudy::new(1, &[4])]);
    let sim = simulator(FaultPlan::default());
    succeeded(sender_on(
        &sim,
        "load",
        &[
            dir.path().to_str().unwrap(),
            "--aec",
            CALLED_AE_TITLE,
            "--count",
            "8",
            "--reuid",
            "--series-size",
            "2",
            "--series-per-study",
            "1",
            "--quiet",
        ],
    ));
    // Every send arrived, none as a copy of another (the store keeps one per UID).
    assert_eq!(sim.stats().stores.received, 8);
    let mut studies: Vec<String> = stored_data_sets(&sim)
        .iter()
        .map(|object| {
            let uid = object.element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID);
            uid.unwrap().to_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(studies.len(), 8);
    studies.sort();
    studies.dedup();
    // Two passes over a 4-instance study, each cut into two studies of 2.
    assert_eq!(studies.len(), 4);
}

#[test]
fn echo_reports_the_round_trip_and_a_missing_path_is_a_usage_error() {
    let sim = simulator(FaultPlan::default());
    let out = sender_on(&sim, "echo", &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0000 (success)"));
    let out = sender_on(&sim, "store", &["/no/such/folder"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/folder"));
}

/// A simulator whose TLS port requires client certificates from `pki`'s CA and whose
/// route `SECURE` requires the user `modality1` with its passcode.
fn secure_simulator(pki: &test_pki::TestPki) -> SimulatorHandle {
    let rules = simulator::Rules::from_toml_str(
        "[[route]]\nname = \"SECURE\"\ncalled_ae_title = \"SECURE\"\n\
         [route.identity]\nusers = [{ name = \"modality1\", passcode = \"s3cret\" }]\n",
        "secure.toml",
    )
    .unwrap();
    let tls = dimse::tls::TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .client_ca_bundle(pki.ca())
        .require_client_certificate(true);
    simulator::Simulator::start(simulator::SimulatorConfig {
        tls: Some(simulator::TlsListener::on_free_port(tls)),
        ..simulator::SimulatorConfig::with_rules(rules)
    })
    .unwrap()
}

/// `sender echo` at the simulator's TLS port with `args`, the passcode in the
/// environment variable `SENDER_TEST_PASSCODE`.
fn echo_tls(sim: &SimulatorHandle, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sender"))
        .arg("echo")
        .arg("127.0.0.1")
        .arg(sim.tls_addr().unwrap().port().to_string())
        .args(["--aec", "SECURE"])
        .args(args)
        .env("SENDER_TEST_PASSCODE", "s3cret")
        .output()
        .unwrap()
}

#[test]
fn echo_goes_over_mutual_tls_with_the_identity_the_flags_give() {
    let pki = test_pki::TestPki::new().unwrap();
    let sim = secure_simulator(&pki);
    let flags = pki.mutual_tls_flags();
    let tls: Vec<&str> = flags.iter().map(String::as_str).collect();
    let identity = [
        "--user",
        "modality1",
        "--passcode-env",
        "SENDER_TEST_PASSCODE",
    ];
    let out = succeeded(echo_tls(&sim, &[&tls[..], &identity[..]].concat()));
    assert!(String::from_utf8_lossy(&out.stdout).contains("C-ECHO"));
    let stats = sim.stats();
    assert_eq!(stats.tls.associations, 1);
    assert_eq!(stats.identities.by_user["modality1"], 1);

    // Plaintext at the TLS port, and TLS without the identity: each told why, exit 1.
    let out = echo_tls(&sim, &identity);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("answered in TLS"));
    let out = echo_tls(&sim, &tls);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rejected"));
}

#[test]
fn a_bad_tls_flag_names_the_flag_and_the_file_and_nothing_is_sent() {
    let pki = test_pki::TestPki::new().unwrap();
    let sim = secure_simulator(&pki);
    let out = echo_tls(&sim, &["--tls-ca", "/nonexistent/ca.pem"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-ca"), "{stderr}");
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
    // A certificate without its key is refused by the parser.
    let out = echo_tls(&sim, &["--tls-cert", "/x.pem"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
    // An unset passcode variable.
    let out = echo_tls(
        &sim,
        &["--user", "u", "--passcode-env", "NO_SUCH_VARIABLE_SET"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NO_SUCH_VARIABLE_SET"));
    assert_eq!(sim.stats().associations.accepted, 0);
}
