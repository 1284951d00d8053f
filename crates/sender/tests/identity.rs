//! The sender's user identity (dimse::Security) against the simulator's identity
//! policy: the right passcode is let in, a wrong one is refused with the reason in
//! words, and the passcode never appears in what the user reads.

use std::time::Duration;

use dimse::{Security, UserIdentity};
use sender::{DicomSender, SenderError, SenderOptions};
use simulator::{Rules, Simulator, SimulatorConfig, SimulatorHandle};

const RULES: &str = r#"
[[route]]
name = "SECURE"
called_ae_title = "SECURE"

[route.identity]
required = true
users = [{ name = "modality1", passcode = "s3cret" }]
"#;

fn simulator() -> SimulatorHandle {
    let rules = Rules::from_toml_str(RULES, "identity.toml").unwrap();
    Simulator::start(SimulatorConfig::with_rules(rules)).unwrap()
}

fn sender(sim: &SimulatorHandle, identity: Option<UserIdentity>) -> DicomSender {
    SenderOptions::new(sim.addr().to_string())
        .called_ae_title("SECURE")
        .timeouts(dimse::Timeouts::all(Duration::from_secs(5)))
        .security(Security {
            tls: None,
            identity,
        })
        .build()
        .unwrap()
}

#[test]
fn the_right_passcode_is_let_in_and_counted_by_user_name() {
    let sim = simulator();
    let identity = UserIdentity::username_passcode("modality1", "s3cret");
    sender(&sim, Some(identity)).ping().expect("admitted");
    let stats = sim.shutdown();
    assert_eq!(stats.associations.accepted, 1);
    let shown = format!("{stats:?}");
    assert!(shown.contains("modality1"), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn a_wrong_passcode_is_refused_and_the_refusal_names_the_identity_not_its_secret() {
    let sim = simulator();
    let identity = UserIdentity::username_passcode("modality1", "guess-1");
    let error = sender(&sim, Some(identity)).ping().expect_err("refused");
    let message = error.to_string();
    assert!(matches!(error, SenderError::Rejected { .. }), "{error:?}");
    assert!(
        message.contains("may have refused the user identity"),
        "{message}"
    );
    assert!(message.contains("modality1"), "{message}");
    assert!(!message.contains("guess-1"), "{message}");
    let _ = sim.shutdown();
}

#[test]
fn no_identity_at_a_route_that_requires_one_is_refused() {
    let sim = simulator();
    let error = sender(&sim, None).ping().expect_err("refused");
    assert!(matches!(error, SenderError::Rejected { .. }), "{error:?}");
    let stats = sim.shutdown();
    assert_eq!(stats.associations.accepted, 0);
}
