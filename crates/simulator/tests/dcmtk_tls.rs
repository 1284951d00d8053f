//! DCMTK's echoscu, storescu and findscu against the simulator's TLS listener and user
//! identity checks. Skipped (with a printed reason) when DCMTK is not installed
//! (`scripts/peers/install`, or `apt-get install dcmtk`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dimse::tls::TlsServerOptions;
use simulator::{RejectionReason, Rules, Simulator, SimulatorConfig, TlsListener};
use test_pki::TestPki;

fn dcmtk_installed() -> bool {
    test_peers::installed(&["/usr/bin/echoscu", "/usr/bin/storescu", "/usr/bin/findscu"])
        .map_err(|why| eprintln!("skipped: {why}"))
        .is_ok()
}

/// Runs a DCMTK tool (bounded: DCMTK's own timeouts are set by the callers).
fn run(tool: &str, args: &[&str]) -> Output {
    Command::new(Path::new("/usr/bin").join(tool))
        .args(args)
        .env("TCP_NODELAY", "1")
        .output()
        .unwrap()
}

fn success(tool: &str, args: &[&str]) -> Output {
    let output = run(tool, args);
    assert!(
        output.status.success(),
        "{tool} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// An uncompressed sample of the repository (US, Explicit VR Little Endian).
fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dicom_samples/MRN8219555/ACC74249173/S02_US_explicit/IM0001.dcm")
}

const RULES: &str = r#"
[[route]]
name = "OPH"
called_ae_title = "LB-HTM-OPH"

[[route]]
name = "SECURE"
called_ae_title = "SECURE"

[route.identity]
users = [{ name = "modality1", passcode = "s3cret" }]
"#;

fn rules() -> Rules {
    Rules::from_toml_str(RULES, "dcmtk-tls.toml").unwrap()
}

#[test]
fn dcmtk_echoes_and_stores_over_mutual_tls() {
    if !dcmtk_installed() {
        return;
    }
    let pki = TestPki::new().unwrap();
    let options = TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .client_ca_bundle(pki.ca())
        .require_client_certificate(true);
    let sim = Simulator::start(SimulatorConfig {
        tls: Some(TlsListener::on_free_port(options)),
        ..SimulatorConfig::with_rules(rules())
    })
    .unwrap();
    let port = sim.tls_addr().unwrap().port().to_string();
    let key = pki.client().key.display().to_string();
    let cert = pki.client().certificate.display().to_string();
    let ca = pki.ca().display().to_string();
    let tls = ["+tls", &key, &cert, "+cf", &ca, "-to", "10", "-ta", "10"];
    let mut echo = tls.to_vec();
    echo.extend(["-aec", "LB-HTM-OPH", "127.0.0.1", &port]);
    success("echoscu", &echo);
    let sample = sample().display().to_string();
    let mut store = tls.to_vec();
    store.extend(["-aec", "LB-HTM-OPH", "127.0.0.1", &port, &sample]);
    success("storescu", &store);
    let mut find = tls.to_vec();
    find.extend([
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "StudyInstanceUID",
        "-k",
        "PatientID",
        "-aec",
        "LB-HTM-OPH",
        "127.0.0.1",
        &port,
    ]);
    let found = success("findscu", &find);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&found.stdout),
        String::from_utf8_lossy(&found.stderr)
    );
    assert!(
        said.contains("Pending"),
        "the stored study is found over TLS:\n{said}"
    );
    assert_eq!(sim.received_finds().len(), 1);
    // Without a client certificate (anonymous TLS) the handshake is refused.
    let anonymous = run(
        "echoscu",
        &[
            "+tla",
            "+cf",
            &ca,
            "-to",
            "10",
            "-aec",
            "LB-HTM-OPH",
            "127.0.0.1",
            &port,
        ],
    );
    assert!(!anonymous.status.success());
    let stats = sim.shutdown();
    assert_eq!(stats.tls.associations, 3);
    assert_eq!(stats.stores.acknowledged(), 1);
    assert_eq!(stats.tls.handshake_failures_total(), 1);
    assert_eq!(stats.associations.panicked, 0);
}

#[test]
fn dcmtk_gets_the_positive_identity_response_it_asks_for() {
    if !dcmtk_installed() {
        return;
    }
    let sim = Simulator::start(SimulatorConfig::with_rules(rules())).unwrap();
    let port = sim.addr().port().to_string();
    let sample = sample().display().to_string();
    let identity = |password: &'static str| {
        [
            "--user",
            "modality1",
            "--password",
            password,
            "--pos-response",
            "-to",
            "10",
            "-aec",
            "SECURE",
        ]
    };
    let mut args = identity("s3cret").to_vec();
    args.extend(["127.0.0.1", &port, &sample]);
    success("storescu", &args);
    let mut args = identity("wrong").to_vec();
    args.extend(["127.0.0.1", &port, &sample]);
    let refused = run("storescu", &args);
    assert!(!refused.status.success());
    // A route without an identity policy sends no response, which DCMTK then
    // refuses: the success above was the simulator's response item.
    let mut args = identity("s3cret").to_vec();
    args.extend(["127.0.0.1", &port, &sample]);
    let aec = args.iter().position(|a| *a == "SECURE").unwrap();
    args[aec] = "LB-HTM-OPH";
    let unanswered = run("storescu", &args);
    assert!(!unanswered.status.success());
    let stats = sim.shutdown();
    assert_eq!(stats.stores.acknowledged(), 1);
    assert_eq!(
        stats.associations.rejected[&RejectionReason::IdentityRefused],
        1
    );
    assert_eq!(stats.identities.by_user["modality1"], 3);
}
