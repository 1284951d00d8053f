//! DICOM over TLS against DCMTK 3.6.7 (OpenSSL): our sender into `storescp +tls`, with
//! and without client certificates, and each bad case DCMTK can produce ending in its
//! typed error and its advice, within the timeouts. Certificates come from
//! [`test_pki`], made when the tests run.

use std::time::Duration;

use dimse::Security;
use dimse::tls::{TlsClientOptions, TlsVersions};
use sender::{DicomSender, SenderError, SenderOptions};
use test_pki::{CertifiedKey, TestPki};
use tests_suite::peers::{Peer, StorescpOptions, StorescpTls};

use crate::common::{require_peers, samples, send_each_once};

/// `storescp +tls` with `certificate`, requiring a client certificate from the test CA
/// when `mutual`.
fn tls_storescp(pki: &TestPki, certificate: CertifiedKey, mutual: bool) -> Peer {
    tls_storescp_accepting(pki, certificate, mutual, false)
}

/// As [`tls_storescp`]; `accept_all`: compressed transfer syntaxes too.
fn tls_storescp_accepting(
    pki: &TestPki,
    certificate: CertifiedKey,
    mutual: bool,
    accept_all: bool,
) -> Peer {
    require_peers();
    let client = pki.client();
    let options = StorescpOptions {
        tls: Some(StorescpTls {
            key: certificate.key,
            certificate: certificate.certificate,
            client_ca: mutual.then(|| pki.ca()),
            probe: mutual.then_some((client.key, client.certificate)),
            profile: None,
        }),
        accept_all,
        ..StorescpOptions::default()
    };
    Peer::storescp(&options).expect("storescp +tls starts")
}

fn sender(peer: &Peer, tls: Option<TlsClientOptions>) -> DicomSender {
    SenderOptions::for_peer(dimse::PeerAddress::new("127.0.0.1", peer.port()))
        .calling_ae_title("DICOM-AUTO")
        .called_ae_title(peer.ae_title())
        .timeouts(dimse::Timeouts::all(Duration::from_secs(10)))
        .security(Security {
            tls: tls.map(|options| options.build().expect("the TLS files are readable")),
            identity: None,
        })
        .build()
        .expect("a valid sender")
}

fn trusting(pki: &TestPki) -> TlsClientOptions {
    TlsClientOptions::new().ca_bundle(pki.ca())
}

fn with_client_certificate(pki: &TestPki) -> TlsClientOptions {
    let client = pki.client();
    trusting(pki).client_certificate(client.certificate, client.key)
}

/// Every sample once, over TLS, on one persistent association.
fn store_every_sample(sender: &DicomSender) -> sender::LoadReport {
    let paths: Vec<_> = samples().iter().map(|i| i.path.clone()).collect();
    let files = sender::prepare_paths(&paths, config::UidStrategy::AsIs).expect("samples prepare");
    send_each_once(sender, files.instances)
}

fn received_files(peer: &Peer) -> usize {
    let dir = peer.received_dir().expect("storescp keeps files");
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn every_sample_is_stored_over_tls_into_dcmtk() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.server(), false);
    let report = store_every_sample(&sender(&storescp, Some(trusting(&pki))));
    let summary = report.summary();
    assert_eq!(summary.succeeded, samples().len() as u64, "{summary:?}");
    assert_eq!(received_files(&storescp), samples().len());
    let sessions = &report.associations.tls_sessions;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(
        sessions[0].session.protocol_version.starts_with("TLSv1_"),
        "{sessions:?}"
    );
}

#[test]
fn mutual_tls_with_dcmtk_admits_our_client_certificate() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.server(), true);
    let echo = sender(&storescp, Some(with_client_certificate(&pki)))
        .ping()
        .expect("the echo is answered");
    assert!(echo.tls_session.is_some());
    let report = store_every_sample(&sender(&storescp, Some(with_client_certificate(&pki))));
    assert_eq!(report.summary().succeeded, samples().len() as u64);
}

#[test]
fn tls_1_3_alone_reaches_dcmtk_in_its_default_profile() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.server(), false);
    let echo = sender(
        &storescp,
        Some(trusting(&pki).versions(TlsVersions::TLS13_ONLY)),
    )
    .ping()
    .expect("the echo is answered");
    assert_eq!(echo.tls_session.unwrap().protocol_version, "TLSv1_3");
}

/// DCMTK's BCP 195 profiles (`+py`, the default, and `+px`) offer only RSA cipher
/// suites in TLS 1.2, so a TLS 1.2 client meets an ECDSA certificate (the test CA's)
/// with no suite in common; the extended profile (`+pz`) has ECDSA suites.
#[test]
fn tls_1_2_alone_reaches_dcmtk_with_ecdsa_suites_and_says_why_when_it_has_none() {
    let pki = TestPki::new().unwrap();
    let default_profile = tls_storescp(&pki, pki.server(), false);
    let tls12 = || Some(trusting(&pki).versions(TlsVersions::TLS12_ONLY));
    let (error, message) = ping_error(&sender(&default_profile, tls12()));
    assert!(matches!(error, SenderError::Tls { .. }), "{error:?}");
    assert!(
        message.contains("no common cipher suite or version"),
        "{message}"
    );
    let server = pki.server();
    let extended = Peer::storescp(&StorescpOptions {
        tls: Some(StorescpTls {
            key: server.key,
            certificate: server.certificate,
            client_ca: None,
            probe: None,
            profile: Some("+pz".into()),
        }),
        ..StorescpOptions::default()
    })
    .expect("storescp +tls +pz starts");
    let echo = sender(&extended, tls12())
        .ping()
        .expect("the echo is answered");
    let session = echo.tls_session.unwrap();
    assert_eq!(session.protocol_version, "TLSv1_2");
    assert!(session.cipher_suite.contains("ECDHE_ECDSA"), "{session}");
}

/// The error a ping to `peer` ends in, as the user reads it.
fn ping_error(sender: &DicomSender) -> (SenderError, String) {
    let started = std::time::Instant::now();
    let error = sender.ping().expect_err("the echo must fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed only after {:?}: a timeout, not a diagnosis",
        started.elapsed()
    );
    let message = error.to_string();
    (error, message)
}

#[test]
fn dcmtk_refusing_a_missing_client_certificate_is_said_so() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.server(), true);
    let (error, message) = ping_error(&sender(&storescp, Some(trusting(&pki))));
    assert!(matches!(error, SenderError::Tls { .. }), "{error:?}");
    assert!(message.contains("client certificate"), "{message}");
}

#[test]
fn dcmtk_refusing_a_client_certificate_from_an_unknown_ca_is_said_so() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.server(), true);
    let stranger = pki.stranger_client();
    let tls = trusting(&pki).client_certificate(stranger.certificate, stranger.key);
    let (error, message) = ping_error(&sender(&storescp, Some(tls)));
    assert!(matches!(error, SenderError::Tls { .. }), "{error:?}");
    assert!(message.contains("client certificate"), "{message}");
}

#[test]
fn a_dcmtk_certificate_from_an_unknown_ca_is_refused() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.stranger_server(), false);
    let (_, message) = ping_error(&sender(&storescp, Some(trusting(&pki))));
    assert!(message.contains("signed by an unknown CA"), "{message}");
    assert!(message.contains("CA bundle"), "{message}");
}

#[test]
fn an_expired_dcmtk_certificate_is_refused() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.expired_server(), false);
    let (_, message) = ping_error(&sender(&storescp, Some(trusting(&pki))));
    assert!(message.contains("expired"), "{message}");
}

#[test]
fn a_dcmtk_certificate_for_another_host_is_refused_unless_its_name_is_given() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.other_name_server(), false);
    let (_, message) = ping_error(&sender(&storescp, Some(trusting(&pki))));
    assert!(message.contains("for another name"), "{message}");
    let named = trusting(&pki).server_name("pacs.invalid");
    sender(&storescp, Some(named))
        .ping()
        .expect("the certificate's own name verifies");
}

#[test]
fn a_plaintext_sender_at_a_dcmtk_tls_port_is_told_about_tls() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp(&pki, pki.server(), false);
    let (error, message) = ping_error(&sender(&storescp, None));
    assert!(
        matches!(error, SenderError::PeerSpeaksTls { .. }),
        "{error:?}"
    );
    assert!(message.contains("turn TLS on"), "{message}");
}

#[test]
fn a_tls_sender_at_a_plaintext_dcmtk_port_is_told_about_tls() {
    require_peers();
    let pki = TestPki::new().unwrap();
    let storescp = Peer::storescp(&StorescpOptions::default()).expect("storescp starts");
    let (error, message) = ping_error(&sender(&storescp, Some(trusting(&pki))));
    assert!(matches!(error, SenderError::Tls { .. }), "{error:?}");
    assert!(
        message.contains("may not speak TLS on this port"),
        "{message}"
    );
}

/// The embedded router's forwarding, secured: every sample arrives on a plain route
/// of the simulator and is forwarded over mutual TLS into DCMTK `storescp +tls`
/// (accepting compressed syntaxes: the simulator forwards as received).
#[test]
fn the_simulator_forwards_every_sample_into_dcmtk_over_mutual_tls() {
    let pki = TestPki::new().unwrap();
    let storescp = tls_storescp_accepting(&pki, pki.server(), true, true);
    let client = pki.client();
    let rules = format!(
        "[[route]]\nname = \"ROUTER\"\ncalled_ae_title = \"ROUTER\"\ndeliver_to = \"forward\"\n\
         [route.forward]\nhost = \"127.0.0.1\"\nport = {}\ncalled_ae_title = \"{}\"\n\
         max_attempts = 3\nretry_initial_ms = 50\n\
         [route.forward.tls]\nca_file = {:?}\ncertificate_file = {:?}\nkey_file = {:?}\n",
        storescp.port(),
        storescp.ae_title(),
        pki.ca(),
        client.certificate,
        client.key,
    );
    let rules = simulator::Rules::from_toml_str(&rules, "forward-tls.toml").unwrap();
    let router =
        simulator::Simulator::start(simulator::SimulatorConfig::with_rules(rules)).unwrap();
    let to_router =
        SenderOptions::for_peer(dimse::PeerAddress::new("127.0.0.1", router.addr().port()))
            .called_ae_title("ROUTER")
            .timeouts(dimse::Timeouts::all(Duration::from_secs(10)))
            .build()
            .unwrap();
    let report = store_every_sample(&to_router);
    assert_eq!(report.summary().succeeded, samples().len() as u64);
    assert!(
        router.wait_for_forwarding(Duration::from_secs(60)),
        "{:?}",
        router.failed_forwards()
    );
    let failed = router.failed_forwards();
    let forwarded = router.shutdown().forwarding;
    assert_eq!(forwarded.delivered, samples().len() as u64, "{failed:#?}");
    assert_eq!(forwarded.tls_associations, forwarded.associations);
    assert_eq!(received_files(&storescp), samples().len());
}
