//! The simulator's TLS listener and user identity checks, as a dicom-ul client
//! sees them: echo, store and find over TLS, mutual TLS required and missing, the
//! wrong kind of client on each port, identities accepted and refused.

mod common;

use std::sync::Arc;

use common::*;
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_ul::pdu::{
    AssociationRJResult, AssociationRJServiceProviderASCEReason, AssociationRJSource,
};
use dimse::IdentityKind;
use dimse::Status;
use dimse::tls::{TlsClientOptions, TlsServerOptions};
use simulator::{RejectionReason, Rules, Simulator, SimulatorConfig, SimulatorHandle, TlsListener};
use test_pki::TestPki;

/// A simulator with a TLS listener (`mutual`: client certificates required).
fn tls_simulator(pki: &TestPki, mutual: bool, rules: Rules) -> SimulatorHandle {
    let mut options = TlsServerOptions::new(pki.server().certificate, pki.server().key);
    if mutual {
        options = options
            .client_ca_bundle(pki.ca())
            .require_client_certificate(true);
    }
    Simulator::start(SimulatorConfig {
        tls: Some(TlsListener::on_free_port(options)),
        ..SimulatorConfig::with_rules(rules)
    })
    .unwrap()
}

fn client_config(pki: &TestPki, certificate: bool) -> Arc<rustls::ClientConfig> {
    let mut options = TlsClientOptions::new().ca_bundle(pki.ca());
    if certificate {
        options = options.client_certificate(pki.client().certificate, pki.client().key);
    }
    options.client_config().unwrap()
}

fn rejection<S>(
    result: Result<Client<S>, dicom_ul::association::Error>,
) -> dicom_ul::pdu::AssociationRJ {
    match result {
        Err(dicom_ul::association::Error::Rejected { association_rj, .. }) => association_rj,
        Err(other) => panic!("expected a rejection, got {other}"),
        Ok(_) => panic!("expected a rejection, the association was accepted"),
    }
}

#[test]
fn echo_store_and_find_work_over_tls_and_the_plain_port_still_serves() {
    let pki = TestPki::new().unwrap();
    let sim = tls_simulator(&pki, false, Rules::default_rules());
    let tls_addr = sim.tls_addr().expect("a TLS listener");
    assert_ne!(tls_addr, sim.addr());
    let mut client = connect_tls_with(
        tls_addr,
        options("LB-HTM-GI", "TLS-SCU"),
        client_config(&pki, false),
    )
    .unwrap();
    assert_eq!(client.echo().unwrap(), Status::SUCCESS);
    for i in 1..=3 {
        let obj = instance("7.1", "7.1.1", &format!("7.1.1.{i}"), "ES", "Colon");
        assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    }
    let (found, status) = client
        .find(
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
            &query(
                "STUDY",
                &[
                    (tags::STUDY_INSTANCE_UID, VR::UI, "7.1"),
                    (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, ""),
                ],
            ),
        )
        .unwrap();
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(found.len(), 1);
    assert_eq!(
        text(&found[0], tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
        "3"
    );
    client.release();

    let mut plain = connect(sim.addr(), "LB-HTM-GI").unwrap();
    assert_eq!(plain.echo().unwrap(), Status::SUCCESS);
    plain.release();

    assert!(eventually(|| sim.stats().associations.released == 2));
    let stats = sim.shutdown();
    assert_eq!(stats.tls.associations, 1);
    assert_eq!(stats.associations.accepted, 2);
    assert_eq!(stats.tls.sessions.values().sum::<u64>(), 1);
    let (version, suite) = stats.tls.sessions.keys().next().unwrap();
    assert!(version.starts_with("TLSv1_"), "{version} {suite}");
    assert_eq!(stats.instances_in_store, 3);
}

#[test]
fn c_cancel_is_noticed_over_tls() {
    use simulator::{FaultPlan, ResponseDelay};
    use std::time::Duration;
    const STUDY_ROOT: &str = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND;
    let pki = TestPki::new().unwrap();
    let sim = tls_simulator(&pki, false, Rules::default_rules());
    let mut client = connect_tls_with(
        sim.tls_addr().unwrap(),
        options("LB-HTM-GI", "TLS-SCU"),
        client_config(&pki, false),
    )
    .unwrap();
    for i in 0..5 {
        let obj = instance(
            &format!("7.7.{i}"),
            &format!("7.7.{i}.1"),
            &format!("7.7.{i}.1.1"),
            "ES",
            "Colon",
        );
        client.store(&obj).unwrap();
    }
    sim.set_faults(FaultPlan {
        response_delay: Some(ResponseDelay::Fixed(Duration::from_millis(100))),
        ..FaultPlan::default()
    });
    let pc = client.context(STUDY_ROOT).unwrap();
    let rq = dimse::Command::c_find_rq(77, STUDY_ROOT, dimse::Priority::Medium);
    let identifier = encode(&query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, "")]));
    dimse::send_message(&mut client.association, pc, &rq, Some(&identifier)).unwrap();
    // In the same TLS flight as the request, so the cancel sits in the simulator's
    // buffers rather than on the socket.
    let cancel = dimse::Command::c_cancel_rq(77);
    dimse::send_message(&mut client.association, pc, &cancel, None).unwrap();
    let mut pending = 0;
    let final_status = loop {
        let dimse::Incoming::Message(m) = client.reader.receive(&mut client.association).unwrap()
        else {
            panic!("association ended")
        };
        let status = m.command.status.unwrap();
        if status.class() == dimse::StatusClass::Pending {
            pending += 1;
        } else {
            break status;
        }
    };
    assert_eq!(final_status, Status::CANCEL);
    assert!(pending < 5, "{pending} matches sent despite the cancel");
    client.release();
    assert_eq!(sim.shutdown().finds.cancelled, 1);
}

#[test]
fn mutual_tls_lets_a_client_certificate_in_and_refuses_a_client_without_one() {
    let pki = TestPki::new().unwrap();
    let sim = tls_simulator(&pki, true, Rules::default_rules());
    let tls_addr = sim.tls_addr().unwrap();
    let mut client = connect_tls_with(
        tls_addr,
        options("LB-HTM-OPH", "TLS-SCU"),
        client_config(&pki, true),
    )
    .unwrap();
    assert_eq!(client.echo().unwrap(), Status::SUCCESS);
    client.release();

    // Without a certificate: the TLS 1.3 client may finish its side of the
    // handshake, but no association follows.
    let refused = connect_tls_with(
        tls_addr,
        options("LB-HTM-OPH", "TLS-SCU"),
        client_config(&pki, false),
    );
    if let Ok(mut client) = refused {
        assert!(client.echo().is_err());
    }
    assert!(eventually(|| {
        sim.stats()
            .tls
            .handshake_failures
            .get("client_certificate_refused")
            == Some(&1)
    }));
    let stats = sim.shutdown();
    assert_eq!(stats.tls.associations, 1);
}

#[test]
fn a_client_certificate_from_an_unknown_ca_is_refused() {
    let pki = TestPki::new().unwrap();
    let sim = tls_simulator(&pki, true, Rules::default_rules());
    let stranger = TlsClientOptions::new()
        .ca_bundle(pki.ca())
        .client_certificate(pki.stranger_client().certificate, pki.stranger_client().key)
        .client_config()
        .unwrap();
    let refused = connect_tls_with(
        sim.tls_addr().unwrap(),
        options("LB-HTM-OPH", "TLS-SCU"),
        stranger,
    );
    if let Ok(mut client) = refused {
        assert!(client.echo().is_err());
    }
    assert!(eventually(|| {
        sim.stats().tls.handshake_failures.get("unknown_issuer") == Some(&1)
    }));
    assert_eq!(sim.shutdown().tls.associations, 0);
}

#[test]
fn the_wrong_kind_of_client_on_each_port_is_counted_and_sent_away() {
    let pki = TestPki::new().unwrap();
    let sim = tls_simulator(&pki, false, Rules::default_rules());
    // A plaintext DICOM client on the TLS port.
    assert!(connect(sim.tls_addr().unwrap(), "LB-HTM-GI").is_err());
    // A TLS client on the plain port.
    assert!(
        connect_tls_with(
            sim.addr(),
            options("LB-HTM-GI", "TLS-SCU"),
            client_config(&pki, false)
        )
        .is_err()
    );
    assert!(eventually(|| {
        let stats = sim.stats();
        stats.tls.handshake_failures.get("not_tls") == Some(&1)
            && stats.tls.clients_on_plain_port == 1
    }));
    let stats = sim.shutdown();
    assert_eq!(stats.associations.accepted, 0);
    assert_eq!(stats.associations.panicked, 0);
}

#[test]
fn random_bytes_on_the_tls_port_never_take_the_simulator_down() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::io::Write;
    let pki = TestPki::new().unwrap();
    let sim = Simulator::start(SimulatorConfig {
        artim_timeout: std::time::Duration::from_millis(300),
        tls: Some(TlsListener::on_free_port(TlsServerOptions::new(
            pki.server().certificate,
            pki.server().key,
        ))),
        ..SimulatorConfig::default()
    })
    .unwrap();
    let mut rng = StdRng::seed_from_u64(0x7150);
    for round in 0..100 {
        let mut stream = std::net::TcpStream::connect(sim.tls_addr().unwrap()).unwrap();
        let len = rng.random_range(0..1500);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if round % 2 == 0 {
            // A plausible TLS handshake record header, then noise.
            let header = [
                0x16,
                0x03,
                rng.random_range(0..=4u8),
                rng.random(),
                rng.random(),
            ];
            bytes = [&header[..], &bytes[..]].concat();
        }
        let _ = stream.write_all(&bytes);
    }
    let mut client = connect_tls_with(
        sim.tls_addr().unwrap(),
        options("LB-HTM-GI", "TLS-SCU"),
        client_config(&pki, false),
    )
    .unwrap();
    assert_eq!(client.echo().unwrap(), Status::SUCCESS);
    client.release();
    assert!(eventually(
        || sim.stats().tls.handshake_failures_total() == 100
    ));
    let stats = sim.shutdown();
    assert_eq!(stats.associations.panicked, 0);
    assert_eq!(stats.tls.associations, 1);
}

const IDENTITY_RULES: &str = r#"
[[route]]
name = "SECURE"
called_ae_title = "SECURE"

[route.identity]
required = true
users = [{ name = "modality1", passcode = "s3cret" }, { name = "viewer" }]
tokens = ["jwt-token-1"]

[[route]]
name = "OPEN"
called_ae_title = "OPEN"
"#;

fn identity_rules() -> Rules {
    Rules::from_toml_str(IDENTITY_RULES, "identity.toml").unwrap()
}

fn assert_identity_refused(rejection: dicom_ul::pdu::AssociationRJ) {
    assert_eq!(rejection.result, AssociationRJResult::Permanent);
    assert_eq!(
        rejection.source,
        AssociationRJSource::ServiceProviderASCE(
            AssociationRJServiceProviderASCEReason::NoReasonGiven
        )
    );
}

#[test]
fn a_route_requiring_identity_accepts_its_users_and_tokens_and_refuses_the_rest() {
    let pki = TestPki::new().unwrap();
    let sim = tls_simulator(&pki, false, identity_rules());
    let accepted = [
        options("SECURE", "MOD").username_password("modality1", "s3cret"),
        options("SECURE", "MOD").username("viewer"),
        options("SECURE", "MOD").jwt("jwt-token-1"),
    ];
    for opts in accepted {
        let mut client = connect_with(sim.addr(), opts).unwrap();
        assert_eq!(client.echo().unwrap(), Status::SUCCESS);
        client.release();
    }
    // Over TLS as well.
    let mut client = connect_tls_with(
        sim.tls_addr().unwrap(),
        options("SECURE", "MOD").username_password("modality1", "s3cret"),
        client_config(&pki, false),
    )
    .unwrap();
    assert_eq!(client.echo().unwrap(), Status::SUCCESS);
    client.release();

    let refused = [
        options("SECURE", "MOD"),
        options("SECURE", "MOD").username_password("modality1", "wrong"),
        options("SECURE", "MOD").username("modality1"),
        options("SECURE", "MOD").username("stranger"),
        options("SECURE", "MOD").jwt("jwt-token-2"),
    ];
    for opts in refused {
        assert_identity_refused(rejection(connect_with(sim.addr(), opts)));
    }
    // A route without an identity policy ignores identities.
    let mut open = connect_with(sim.addr(), options("OPEN", "MOD").username("anyone")).unwrap();
    assert_eq!(open.echo().unwrap(), Status::SUCCESS);
    open.release();

    assert!(eventually(|| sim.stats().associations.released == 5));
    let stats = sim.shutdown();
    assert_eq!(
        stats.associations.rejected[&RejectionReason::IdentityRefused],
        5
    );
    let kinds = &stats.identities.by_kind;
    assert_eq!(kinds[&IdentityKind::UsernamePasscode], 3);
    assert_eq!(kinds[&IdentityKind::Username], 4);
    assert_eq!(kinds[&IdentityKind::Jwt], 2);
    assert_eq!(stats.identities.by_user["modality1"], 4);
    assert_eq!(stats.identities.by_user["anyone"], 1);
    assert!(!format!("{stats:?}").contains("s3cret"));
}

/// A destination whose route `PACS` takes only the user `router` with its passcode.
const DESTINATION_RULES: &str = r#"
[[route]]
name = "PACS"
called_ae_title = "PACS"

[route.identity]
users = [{ name = "router", passcode = "fwd-s3cret" }]
"#;

/// A router whose route `ROUTER` forwards everything to `port` as `[route.forward]`
/// plus `extra` (the TLS and identity tables), giving up after `max_attempts`.
fn forwarding_router(port: u16, max_attempts: u32, extra: &str) -> SimulatorHandle {
    let rules = format!(
        "[[route]]\nname = \"ROUTER\"\ncalled_ae_title = \"ROUTER\"\ndeliver_to = \"forward\"\n\
         [route.forward]\nhost = \"127.0.0.1\"\nport = {port}\ncalled_ae_title = \"PACS\"\n\
         max_attempts = {max_attempts}\nretry_initial_ms = 20\nretry_max_ms = 100\n{extra}"
    );
    let rules = Rules::from_toml_str(&rules, "router.toml").unwrap();
    Simulator::start(SimulatorConfig::with_rules(rules)).unwrap()
}

fn store_to_router(router: &SimulatorHandle, count: usize) {
    let mut client = connect(router.addr(), "ROUTER").unwrap();
    for i in 1..=count {
        let obj = instance("9.1", "9.1.1", &format!("9.1.1.{i}"), "CT", "Chest");
        assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    }
    client.release();
}

#[test]
fn forwarding_goes_over_mutual_tls_with_the_identity_the_destination_requires() {
    let pki = TestPki::new().unwrap();
    let destination = tls_simulator(
        &pki,
        true,
        Rules::from_toml_str(DESTINATION_RULES, "destination.toml").unwrap(),
    );
    let tls = format!(
        "[route.forward.tls]\nca_file = {:?}\ncertificate_file = {:?}\nkey_file = {:?}\n\
         [route.forward.identity]\nuser = \"router\"\npasscode = \"fwd-s3cret\"\n",
        pki.ca(),
        pki.client().certificate,
        pki.client().key,
    );
    let router = forwarding_router(destination.tls_addr().unwrap().port(), 3, &tls);
    store_to_router(&router, 3);
    assert!(
        router.wait_for_forwarding(std::time::Duration::from_secs(20)),
        "{:?} {:?}",
        router.stats().forwarding,
        router.failed_forwards()
    );
    let forwarded = router.shutdown().forwarding;
    assert_eq!(forwarded.delivered, 3);
    assert!(forwarded.associations >= 1);
    assert_eq!(forwarded.tls_associations, forwarded.associations);

    let received = destination.shutdown();
    assert_eq!(received.routes["PACS"].stores.stored, 3);
    assert_eq!(received.tls.associations, forwarded.associations);
    assert_eq!(
        received.identities.by_user["router"],
        forwarded.associations
    );
    assert!(received.associations.rejected.is_empty());
}

#[test]
fn forwarding_to_a_tls_destination_fails_with_the_reason_when_tls_or_identity_is_wrong() {
    let pki = TestPki::new().unwrap();
    let destination = tls_simulator(
        &pki,
        true,
        Rules::from_toml_str(DESTINATION_RULES, "destination.toml").unwrap(),
    );
    let port = destination.tls_addr().unwrap().port();
    let client = pki.client();
    let cases = [
        // Plaintext to the TLS port.
        ("".to_string(), "answered in TLS"),
        // The destination's CA is not the one we trust.
        (
            format!(
                "[route.forward.tls]\nca_file = {:?}\ncertificate_file = {:?}\nkey_file = {:?}\n",
                pki.stranger_ca(),
                client.certificate,
                client.key
            ),
            "unknown CA",
        ),
        // No client certificate for a destination that requires one.
        (
            format!("[route.forward.tls]\nca_file = {:?}\n", pki.ca()),
            "client certificate",
        ),
        // TLS right, identity wrong.
        (
            format!(
                "[route.forward.tls]\nca_file = {:?}\ncertificate_file = {:?}\nkey_file = {:?}\n\
                 [route.forward.identity]\nuser = \"router\"\npasscode = \"wrong-one\"\n",
                pki.ca(),
                client.certificate,
                client.key
            ),
            "rejected",
        ),
    ];
    for (extra, reason) in cases {
        let router = forwarding_router(port, 2, &extra);
        store_to_router(&router, 2);
        assert!(eventually(|| router.stats().forwarding.failed == 2));
        let failed = router.failed_forwards();
        assert_eq!(failed.len(), 2, "{extra}");
        for forward in &failed {
            assert_eq!(forward.attempts, 2);
            assert!(
                forward.last_error.contains(reason),
                "expected {reason:?} in {:?}",
                forward.last_error
            );
            assert!(!forward.last_error.contains("wrong-one"));
        }
        let forwarded = router.shutdown().forwarding;
        assert_eq!(forwarded.delivered, 0);
        assert_eq!(forwarded.enqueued, 2);
    }
    assert_eq!(destination.shutdown().routes["PACS"].stores.stored, 0);
}
