//! DICOM over TLS through `ScuOptions::tls`, against a dicom-ul TLS acceptor on
//! loopback, with certificates made at test time: the good case, mutual TLS, and
//! each bad case ending in its typed error and its advice, never in a hang.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderASCEReason,
    AssociationRJSource, UserVariableItem,
};
use dicom_ul::{Pdu, ServerAssociationOptions};
use dimse::tls::{TlsClientOptions, TlsFailure, TlsServerOptions, TlsVersions};
use dimse::{
    AeTitle, AssociateError, IdentityKind, Incoming, MessageReader, PeerAddress, ScuOptions,
    Status, Timeouts, UserIdentity,
};
use test_pki::{CertifiedKey, TestPki};

/// A TLS acceptor for one association that answers C-ECHO until released. Its
/// handshake error, if any, is what the thread returns.
fn tls_scp(server: Arc<rustls::ServerConfig>) -> (String, thread::JoinHandle<Result<(), String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        let options = ServerAssociationOptions::new()
            .accept_any()
            .with_abstract_syntax(uids::VERIFICATION)
            .read_timeout(Duration::from_secs(5))
            .write_timeout(Duration::from_secs(5))
            .tls_config(server);
        let mut association = options.establish_tls(stream).map_err(|e| e.to_string())?;
        let mut reader = MessageReader::new();
        loop {
            match reader
                .receive(&mut association)
                .map_err(|e| e.to_string())?
            {
                Incoming::Message(message) => {
                    let rsp = dimse::Command::response_to(&message.command, Status::SUCCESS, false)
                        .unwrap();
                    dimse::send_message(
                        &mut association,
                        message.presentation_context_id,
                        &rsp,
                        None,
                    )
                    .map_err(|e| e.to_string())?;
                }
                Incoming::ReleaseRequested => {
                    association
                        .send(&Pdu::ReleaseRP)
                        .map_err(|e| e.to_string())?;
                    return Ok(());
                }
                other => return Err(format!("{other:?}")),
            }
        }
    });
    (addr, handle)
}

fn server_config(certificate: &CertifiedKey) -> Arc<rustls::ServerConfig> {
    TlsServerOptions::new(&certificate.certificate, &certificate.key)
        .server_config()
        .unwrap()
}

/// The test server's configuration, requiring a client certificate from the test CA.
fn requiring_client_certificates(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .client_ca_bundle(pki.ca())
        .require_client_certificate(true)
        .server_config()
        .unwrap()
}

fn echo_options(addr: &str) -> ScuOptions {
    ScuOptions::new(
        addr.parse::<PeerAddress>().unwrap(),
        AeTitle::new("SECURE-SCU").unwrap(),
        AeTitle::new("SECURE-SCP").unwrap(),
    )
    .timeouts(Timeouts::all(Duration::from_secs(5)))
    .propose_verification()
}

/// Opens a TLS association, echoes, releases, and checks the acceptor saw it through.
fn echo_over(addr: &str, tls: dimse::tls::TlsClient, scp: thread::JoinHandle<Result<(), String>>) {
    let mut association = echo_options(addr).tls(tls).establish().unwrap();
    assert_eq!(association.echo().unwrap(), Status::SUCCESS);
    association.release().unwrap();
    scp.join().unwrap().unwrap();
}

fn trusting(pki: &TestPki) -> TlsClientOptions {
    TlsClientOptions::new().ca_bundle(pki.ca())
}

fn tls_failure(result: Result<dimse::ScuAssociation, AssociateError>) -> (TlsFailure, String) {
    match result {
        Err(AssociateError::Tls { failure, peer }) => {
            let message = AssociateError::Tls {
                failure: failure.clone(),
                peer,
            }
            .to_string();
            (failure, message)
        }
        Err(other) => panic!("expected a TLS failure, got {other}"),
        Ok(_) => panic!("expected a TLS failure, the association was opened"),
    }
}

#[test]
fn an_echo_crosses_tls_and_the_session_is_reported() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(server_config(&pki.server()));
    let tls = trusting(&pki).build().unwrap();
    let mut association = echo_options(&addr).tls(tls).establish().unwrap();
    let session = association.tls_session().cloned().unwrap();
    assert_eq!(session.protocol_version, "TLSv1_3");
    assert!(session.cipher_suite.starts_with("TLS13_"), "{session}");
    assert_eq!(association.echo().unwrap(), Status::SUCCESS);
    // TLS 1.3 session tickets sit on the socket: they do not make the association look dead.
    thread::sleep(Duration::from_millis(50));
    assert!(association.is_alive());
    assert_eq!(association.echo().unwrap(), Status::SUCCESS);
    association.release().unwrap();
    scp.join().unwrap().unwrap();
}

#[test]
fn tls_1_2_is_negotiated_when_it_is_all_the_client_allows() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(server_config(&pki.server()));
    let tls = trusting(&pki)
        .versions(TlsVersions::TLS12_ONLY)
        .build()
        .unwrap();
    let mut association = echo_options(&addr).tls(tls).establish().unwrap();
    assert_eq!(
        association.tls_session().unwrap().protocol_version,
        "TLSv1_2"
    );
    assert_eq!(association.echo().unwrap(), Status::SUCCESS);
    association.release().unwrap();
    scp.join().unwrap().unwrap();
}

#[test]
fn mutual_tls_admits_a_client_certificate_signed_by_the_trusted_ca() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(requiring_client_certificates(&pki));
    let client = pki.client();
    let tls = trusting(&pki)
        .client_certificate(client.certificate, client.key)
        .build()
        .unwrap();
    echo_over(&addr, tls, scp);
}

#[test]
fn a_missing_client_certificate_is_refused_and_said_so() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(requiring_client_certificates(&pki));
    let (failure, message) = tls_failure(
        echo_options(&addr)
            .tls(trusting(&pki).build().unwrap())
            .establish(),
    );
    assert!(
        matches!(failure, TlsFailure::ClientCertificateRefused(_)),
        "{failure:?}"
    );
    assert!(message.contains("SECURE-SCP@127.0.0.1"), "{message}");
    assert!(message.contains("give a client certificate"), "{message}");
    assert!(scp.join().unwrap().is_err());
}

#[test]
fn a_client_certificate_from_an_untrusted_ca_is_refused() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(requiring_client_certificates(&pki));
    let stranger = pki.stranger_client();
    let tls = trusting(&pki)
        .client_certificate(stranger.certificate, stranger.key)
        .build()
        .unwrap();
    let (failure, _) = tls_failure(echo_options(&addr).tls(tls).establish());
    assert!(
        matches!(failure, TlsFailure::ClientCertificateRefused(_)),
        "{failure:?}"
    );
    assert!(scp.join().unwrap().is_err());
}

/// The server presents `certificate`; the client trusts only the test CA.
fn failure_against(certificate: fn(&TestPki) -> CertifiedKey) -> (TlsFailure, String) {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(server_config(&certificate(&pki)));
    let outcome = tls_failure(
        echo_options(&addr)
            .tls(trusting(&pki).build().unwrap())
            .establish(),
    );
    assert!(scp.join().unwrap().is_err());
    outcome
}

#[test]
fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let (failure, message) = failure_against(TestPki::stranger_server);
    assert_eq!(failure, TlsFailure::UnknownIssuer);
    assert!(message.contains("CA bundle"), "{message}");
}

#[test]
fn an_expired_server_certificate_is_refused() {
    let (failure, message) = failure_against(TestPki::expired_server);
    assert_eq!(failure, TlsFailure::CertificateExpired);
    assert!(message.contains("renew"), "{message}");
}

#[test]
fn a_server_certificate_for_another_host_is_refused() {
    let (failure, message) = failure_against(TestPki::other_name_server);
    assert_eq!(failure, TlsFailure::NameMismatch);
    assert!(message.contains("server name"), "{message}");
}

#[test]
fn the_server_name_option_verifies_the_name_the_certificate_carries() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(server_config(&pki.other_name_server()));
    let tls = trusting(&pki).server_name("pacs.invalid").build().unwrap();
    echo_over(&addr, tls, scp);
}

#[test]
fn the_insecure_switch_accepts_a_certificate_nobody_vouches_for() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(server_config(&pki.stranger_server()));
    let tls = TlsClientOptions::new()
        .accept_invalid_certificates(true)
        .build()
        .unwrap();
    echo_over(&addr, tls, scp);
}

#[test]
fn no_common_protocol_version_is_named() {
    let pki = TestPki::new().unwrap();
    let server = TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .versions(TlsVersions::TLS12_ONLY)
        .server_config()
        .unwrap();
    let (addr, scp) = tls_scp(server);
    let tls = trusting(&pki)
        .versions(TlsVersions::TLS13_ONLY)
        .build()
        .unwrap();
    let (failure, message) = tls_failure(echo_options(&addr).tls(tls).establish());
    assert_eq!(failure, TlsFailure::NoCommonVersion);
    assert!(message.contains("allow a TLS version"), "{message}");
    assert!(scp.join().unwrap().is_err());
}

#[test]
fn a_tls_client_on_a_plaintext_port_fails_fast_with_tls_named() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let scp = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let options = ServerAssociationOptions::new()
            .accept_any()
            .with_abstract_syntax(uids::VERIFICATION)
            .read_timeout(Duration::from_secs(5));
        options
            .establish(stream)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let pki = TestPki::new().unwrap();
    let started = std::time::Instant::now();
    let (failure, message) = tls_failure(
        echo_options(&addr)
            .tls(trusting(&pki).build().unwrap())
            .establish(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no wait for a timeout"
    );
    assert!(
        matches!(failure, TlsFailure::Closed | TlsFailure::NotTls),
        "{failure:?}"
    );
    assert!(
        message.contains("may not speak TLS on this port"),
        "{message}"
    );
    assert!(scp.join().unwrap().is_err());
}

#[test]
fn a_plaintext_client_on_a_tls_port_is_told_to_turn_tls_on() {
    let pki = TestPki::new().unwrap();
    let (addr, scp) = tls_scp(server_config(&pki.server()));
    let error = echo_options(&addr).establish().expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(error, AssociateError::PeerSpeaksTls { .. }),
        "{error:?}: {message}"
    );
    assert!(message.contains("turn TLS on"), "{message}");
    assert!(scp.join().unwrap().is_err());
}

#[test]
fn a_missing_ca_bundle_is_named_before_any_connection() {
    let error = TlsClientOptions::new()
        .ca_bundle("/nonexistent/ca.pem")
        .build()
        .expect_err("no file");
    let message = error.to_string();
    assert!(
        message.contains("CA bundle /nonexistent/ca.pem"),
        "{message}"
    );
}

/// A one-shot acceptor that reads the A-ASSOCIATE-RQ, hands it back, and rejects it
/// the way PS3.7 D.3.3.7 says an acceptor refuses a user identity.
fn identity_refusing_scp() -> (String, thread::JoinHandle<Vec<UserVariableItem>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut header = [0u8; 6];
        stream.read_exact(&mut header).unwrap();
        let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
        let mut pdu = header.to_vec();
        pdu.resize(6 + len, 0);
        stream.read_exact(&mut pdu[6..]).unwrap();
        let Ok(Some(Pdu::AssociationRQ(rq))) =
            dicom_ul::pdu::read_pdu(&pdu[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false)
        else {
            panic!("not an A-ASSOCIATE-RQ");
        };
        let rj = Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Permanent,
            source: AssociationRJSource::ServiceProviderASCE(
                AssociationRJServiceProviderASCEReason::NoReasonGiven,
            ),
        });
        let mut out = Vec::new();
        dicom_ul::pdu::write_pdu(&mut out, &rj).unwrap();
        stream.write_all(&out).unwrap();
        rq.user_variables
    });
    (addr, handle)
}

#[test]
fn the_user_identity_is_sent_and_its_refusal_is_explained_without_the_secret() {
    let (addr, scp) = identity_refusing_scp();
    let error = echo_options(&addr)
        .identity(UserIdentity::username_passcode("modality1", "hunter2"))
        .establish()
        .expect_err("rejected");
    let message = error.to_string();
    assert!(
        matches!(error, AssociateError::Rejected { .. }),
        "{error:?}"
    );
    assert!(message.contains("user identity"), "{message}");
    assert!(message.contains("modality1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    let sent = scp.join().unwrap();
    let identity = sent
        .iter()
        .find_map(|item| match item {
            UserVariableItem::UserIdentityItem(identity) => Some(identity.clone()),
            _ => None,
        })
        .expect("a user identity item");
    let received =
        UserIdentity::from_fields(2, &identity.primary_field(), &identity.secondary_field())
            .unwrap();
    assert_eq!(received.kind(), IdentityKind::UsernamePasscode);
    assert_eq!(received.user_name(), Some("modality1"));
    assert_eq!(received.passcode(), Some("hunter2"));
}

#[test]
fn each_token_kind_travels_as_given() {
    for kind in [
        IdentityKind::Jwt,
        IdentityKind::SamlAssertion,
        IdentityKind::KerberosTicket,
        IdentityKind::Username,
    ] {
        let (addr, scp) = identity_refusing_scp();
        let _ = echo_options(&addr)
            .identity(UserIdentity::token(kind, "opaque-token").unwrap())
            .establish();
        let sent = scp.join().unwrap();
        let identity = sent
            .iter()
            .find_map(|item| match item {
                UserVariableItem::UserIdentityItem(identity) => Some(identity.clone()),
                _ => None,
            })
            .expect("a user identity item");
        assert_eq!(identity.primary_field(), b"opaque-token", "{kind:?}");
        assert!(!identity.positive_response_requested());
    }
}

#[test]
fn a_silent_tls_peer_is_a_handshake_timeout_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // Accepts and says nothing, until the client gives up.
    let silent = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    let pki = TestPki::new().unwrap();
    let started = std::time::Instant::now();
    let error = echo_options(&addr)
        .timeouts(Timeouts::all(Duration::from_secs(1)))
        .tls(trusting(&pki).build().unwrap())
        .establish()
        .expect_err("no handshake");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_timeout(), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
    silent.join().unwrap();
}
