//! Loopback tests of the acceptor: dicom-ul's client (plain and TLS, with the
//! throwaway certificates of `test-pki`) against `dimse::scp`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::ClientAssociationOptions;
use dicom_ul::Pdu;
use dicom_ul::pdu::{
    AssociationRQ, PresentationContextProposed, PresentationContextResultReason, UserIdentityType,
    UserVariableItem,
};
use test_pki::TestPki;

use super::*;
use crate::tls::{TlsClientOptions, TlsFailure, TlsServerOptions};
use crate::{Command, Incoming, MessageReader, Status};
use crate::{IdentityKind, UserIdentity};

const DEADLINE: Duration = Duration::from_secs(5);

/// What the server thread saw.
#[derive(Debug)]
struct Served {
    calling: String,
    identity: Option<UserIdentity>,
    tls: Option<crate::tls::TlsSession>,
    echoes: usize,
    released: bool,
}

/// Accepts one connection (over TLS when `tls` is given), accepts every context
/// with its first transfer syntax and answers C-ECHOs until the release.
fn serve_one(
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, JoinHandle<Result<Served, ScpError>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        tcp.set_write_timeout(Some(DEADLINE)).unwrap();
        let mut stream = match tls {
            Some(config) => ScpStream::accept_tls(tcp, config, DEADLINE)?,
            None => ScpStream::Plain(tcp),
        };
        let request = read_associate_request(&mut stream, Instant::now() + DEADLINE)?;
        assert!(standard_refusal(&request).is_none());
        let options = AcceptOptions::new().max_pdu_length(16_384);
        let mut association = accept(stream, &request, &options, |pc| ContextDecision::Accept {
            transfer_syntax: pc.transfer_syntaxes[0].clone(),
        })?;
        let mut served = Served {
            calling: association.calling_ae_title().to_string(),
            identity: association.user_identity().cloned(),
            tls: association.tls_session().cloned(),
            echoes: 0,
            released: false,
        };
        let mut reader = MessageReader::new();
        loop {
            match reader.receive(&mut association) {
                Ok(Incoming::Message(message)) => {
                    let response =
                        Command::response_to(&message.command, Status::SUCCESS, false).unwrap();
                    crate::send_message(
                        &mut association,
                        message.presentation_context_id,
                        &response,
                        None,
                    )
                    .unwrap();
                    served.echoes += 1;
                }
                Ok(Incoming::ReleaseRequested) => {
                    crate::PduChannel::send_pdu(&mut association, &Pdu::ReleaseRP).unwrap();
                    served.released = true;
                    return Ok(served);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    (addr, handle)
}

fn client() -> ClientAssociationOptions<'static> {
    ClientAssociationOptions::new()
        .calling_ae_title("TEST-SCU")
        .called_ae_title("TEST-SCP")
        .with_presentation_context(uids::VERIFICATION, vec![uids::IMPLICIT_VR_LITTLE_ENDIAN])
        .read_timeout(DEADLINE)
        .write_timeout(DEADLINE)
}

/// One C-ECHO over any dicom-ul client association.
fn echo<A: crate::PduChannel>(association: &mut A, pc_id: u8) -> Status {
    crate::send_message(association, pc_id, &Command::c_echo_rq(1), None).unwrap();
    match MessageReader::new().receive(association).unwrap() {
        Incoming::Message(message) => message.command.status.unwrap(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_plain_client_negotiates_echoes_and_releases() {
    let (addr, server) = serve_one(None);
    let mut association = client()
        .username_password("modality1", "s3cret")
        .establish(addr)
        .unwrap();
    let pc_id = association.presentation_contexts()[0].id;
    assert_eq!(echo(&mut association, pc_id), Status::SUCCESS);
    assert_eq!(echo(&mut association, pc_id), Status::SUCCESS);
    association.release().unwrap();
    let served = server.join().unwrap().unwrap();
    assert_eq!(served.calling, "TEST-SCU");
    assert_eq!(served.echoes, 2);
    assert!(served.released);
    assert!(served.tls.is_none());
    let identity = served.identity.unwrap();
    assert_eq!(identity.kind(), IdentityKind::UsernamePasscode);
    assert_eq!(identity.user_name(), Some("modality1"));
    assert!(identity.secret_matches(b"s3cret"));
    assert!(!format!("{identity:?}").contains("s3cret"));
}

#[test]
fn a_tls_client_with_a_certificate_negotiates_echoes_and_releases() {
    let pki = TestPki::new().unwrap();
    let server_config = TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .client_ca_bundle(pki.ca())
        .require_client_certificate(true)
        .server_config()
        .unwrap();
    let (addr, server) = serve_one(Some(server_config));
    let client_config = TlsClientOptions::new()
        .ca_bundle(pki.ca())
        .client_certificate(pki.client().certificate, pki.client().key)
        .client_config()
        .unwrap();
    let mut association = client()
        .jwt("eyJ.token.sig")
        .server_name("localhost")
        .tls_config(client_config)
        .establish_tls(addr)
        .unwrap();
    let pc_id = association.presentation_contexts()[0].id;
    assert_eq!(echo(&mut association, pc_id), Status::SUCCESS);
    association.release().unwrap();
    let served = server.join().unwrap().unwrap();
    assert_eq!(served.echoes, 1);
    let session = served.tls.unwrap();
    assert!(session.protocol_version.starts_with("TLSv1_"), "{session}");
    let identity = served.identity.unwrap();
    assert_eq!(identity.kind(), IdentityKind::Jwt);
    assert!(identity.secret_matches(b"eyJ.token.sig"));
}

#[test]
fn a_tls_client_on_the_plain_port_is_recognised_within_the_deadline() {
    let pki = TestPki::new().unwrap();
    let (addr, server) = serve_one(None);
    let client_config = TlsClientOptions::new()
        .ca_bundle(pki.ca())
        .client_config()
        .unwrap();
    let start = Instant::now();
    let result = client()
        .server_name("localhost")
        .tls_config(client_config)
        .establish_tls(addr);
    assert!(result.is_err());
    let error = server.join().unwrap().unwrap_err();
    assert!(matches!(error, ScpError::TlsClientOnPlainPort), "{error}");
    assert!(error.abort_source().is_none());
    assert!(start.elapsed() < DEADLINE);
}

#[test]
fn a_plain_client_on_the_tls_port_is_not_tls() {
    let pki = TestPki::new().unwrap();
    let server_config = TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .server_config()
        .unwrap();
    let (addr, server) = serve_one(Some(server_config));
    let start = Instant::now();
    assert!(client().establish(addr).is_err());
    let error = server.join().unwrap().unwrap_err();
    assert!(
        matches!(error, ScpError::Tls(TlsFailure::NotTls)),
        "{error}"
    );
    assert!(start.elapsed() < DEADLINE);
}

#[test]
fn a_client_without_a_certificate_is_refused_when_one_is_required() {
    let pki = TestPki::new().unwrap();
    let server_config = TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .client_ca_bundle(pki.ca())
        .require_client_certificate(true)
        .server_config()
        .unwrap();
    let (addr, server) = serve_one(Some(server_config));
    let client_config = TlsClientOptions::new()
        .ca_bundle(pki.ca())
        .client_config()
        .unwrap();
    let result = client()
        .server_name("localhost")
        .tls_config(client_config)
        .establish_tls(addr);
    assert!(result.is_err());
    let error = server.join().unwrap().unwrap_err();
    assert!(
        matches!(
            error,
            ScpError::Tls(TlsFailure::ClientCertificateRefused(_))
        ),
        "{error}"
    );
}

#[test]
fn a_silent_tls_client_times_out_the_handshake() {
    let pki = TestPki::new().unwrap();
    let config = TlsServerOptions::new(pki.server().certificate, pki.server().key)
        .server_config()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let _silent = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (tcp, _) = listener.accept().unwrap();
    let start = Instant::now();
    let error = ScpStream::accept_tls(tcp, config, Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(error, ScpError::Tls(TlsFailure::TimedOut)),
        "{error}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// A raw requestor: writes `rq`, returns the decoded answer.
fn raw_exchange(rq: &AssociationRQ, server: impl FnOnce(ScpStream) + Send + 'static) -> Pdu {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        server(ScpStream::Plain(tcp));
    });
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut out = Vec::new();
    dicom_ul::pdu::write_pdu(&mut out, &Pdu::AssociationRQ(rq.clone())).unwrap();
    tcp.write_all(&out).unwrap();
    let mut header = [0u8; 6];
    tcp.read_exact(&mut header).unwrap();
    let length = u32::from_be_bytes(header[2..6].try_into().unwrap()) as usize;
    let mut pdu = header.to_vec();
    pdu.resize(6 + length, 0);
    tcp.read_exact(&mut pdu[6..]).unwrap();
    drop(tcp);
    thread.join().unwrap();
    dicom_ul::pdu::read_pdu(&pdu[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false)
        .unwrap()
        .unwrap()
}

fn request(identity: Option<dicom_ul::pdu::UserIdentity>) -> AssociationRQ {
    let mut user_variables = vec![UserVariableItem::MaxLength(32_768)];
    user_variables.extend(identity.map(UserVariableItem::UserIdentityItem));
    AssociationRQ {
        protocol_version: 1,
        calling_ae_title: "RAW".into(),
        called_ae_title: "TEST-SCP".into(),
        application_context_name: DICOM_APPLICATION_CONTEXT.into(),
        presentation_contexts: vec![
            PresentationContextProposed {
                id: 1,
                abstract_syntax: uids::VERIFICATION.into(),
                transfer_syntaxes: vec![uids::IMPLICIT_VR_LITTLE_ENDIAN.into()],
            },
            PresentationContextProposed {
                id: 3,
                abstract_syntax: "1.2.3.4".into(),
                transfer_syntaxes: vec![uids::IMPLICIT_VR_LITTLE_ENDIAN.into()],
            },
        ],
        user_variables,
    }
}

fn accept_verification_only(mut stream: ScpStream) {
    let rq = read_associate_request(&mut stream, Instant::now() + DEADLINE).unwrap();
    let options = AcceptOptions::new().identity_accepted(Vec::new());
    let association = accept(stream, &rq, &options, |pc| {
        if pc.abstract_syntax == uids::VERIFICATION {
            ContextDecision::Accept {
                transfer_syntax: pc.transfer_syntaxes[0].clone(),
            }
        } else {
            ContextDecision::Refuse(PresentationContextResultReason::AbstractSyntaxNotSupported)
        }
    })
    .unwrap();
    assert_eq!(association.peer_max_pdu_length_for_test(), 32_768);
    assert!(association.accepted_context(1).is_some());
    assert!(association.accepted_context(3).is_none());
}

impl ScpAssociation {
    fn peer_max_pdu_length_for_test(&self) -> u32 {
        crate::PduChannel::peer_max_pdu_length(self)
    }
}

#[test]
fn a_positive_identity_response_is_sent_when_asked_for() {
    let identity = dicom_ul::pdu::UserIdentity::new(
        true,
        UserIdentityType::UsernamePassword,
        b"modality1".to_vec(),
        b"pw".to_vec(),
    );
    let Pdu::AssociationAC(ac) = raw_exchange(&request(Some(identity)), accept_verification_only)
    else {
        panic!("expected an A-ASSOCIATE-AC");
    };
    assert!(
        ac.user_variables
            .contains(&UserVariableItem::Unknown(0x59, vec![0, 0])),
        "{:?}",
        ac.user_variables
    );
    assert_eq!(ac.presentation_contexts.len(), 2);
    assert_eq!(
        ac.presentation_contexts[1].reason,
        PresentationContextResultReason::AbstractSyntaxNotSupported
    );
}

#[test]
fn no_identity_response_is_sent_unless_asked_for() {
    let identity = dicom_ul::pdu::UserIdentity::new(
        false,
        UserIdentityType::Username,
        b"modality1".to_vec(),
        Vec::new(),
    );
    let Pdu::AssociationAC(ac) = raw_exchange(&request(Some(identity)), accept_verification_only)
    else {
        panic!("expected an A-ASSOCIATE-AC");
    };
    assert!(
        !ac.user_variables
            .iter()
            .any(|item| matches!(item, UserVariableItem::Unknown(0x59, _)))
    );
}

#[test]
fn a_rejection_reaches_the_peer() {
    let rejection = dicom_ul::pdu::AssociationRJ {
        result: dicom_ul::pdu::AssociationRJResult::Permanent,
        source: dicom_ul::pdu::AssociationRJSource::ServiceUser(
            dicom_ul::pdu::AssociationRJServiceUserReason::NoReasonGiven,
        ),
    };
    let expected = rejection.clone();
    let answer = raw_exchange(&request(None), move |mut stream| {
        read_associate_request(&mut stream, Instant::now() + DEADLINE).unwrap();
        reject(stream, rejection);
    });
    assert_eq!(answer, Pdu::AssociationRJ(expected));
}

#[test]
fn a_foreign_application_context_gets_the_standard_refusal() {
    let mut rq = request(None);
    assert!(standard_refusal(&rq).is_none());
    rq.application_context_name = "1.2.3".into();
    assert!(standard_refusal(&rq).is_some());
    rq = request(None);
    rq.protocol_version = 2;
    assert!(standard_refusal(&rq).is_some());
}

#[test]
fn garbage_first_bytes_are_typed_errors() {
    for (bytes, expect_abort) in [
        (&[0x07u8, 0, 0, 0, 0, 4, 0, 0, 0, 0][..], true),
        (&[0x01u8, 0, 0, 0, 0, 4, 1, 2, 3, 4][..], true),
        (&[0x01u8, 0, 0xFF, 0xFF, 0xFF, 0xFF][..], true),
        (&[0x16u8, 3, 1, 0, 5][..], false),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.write_all(bytes).unwrap();
        let (tcp, _) = listener.accept().unwrap();
        let mut stream = ScpStream::Plain(tcp);
        let start = Instant::now();
        let error =
            read_associate_request(&mut stream, Instant::now() + Duration::from_millis(500))
                .unwrap_err();
        assert_eq!(
            error.abort_source().is_some(),
            expect_abort,
            "{bytes:?}: {error}"
        );
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}

/// The next plain connection to `listener` and its A-ASSOCIATE-RQ.
fn next_request(listener: &TcpListener) -> (ScpStream, AssociationRQ) {
    let (tcp, _) = listener.accept().unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut stream = ScpStream::Plain(tcp);
    let request = read_associate_request(&mut stream, Instant::now() + DEADLINE).unwrap();
    (stream, request)
}

#[test]
fn requested_scp_roles_are_granted_only_for_accepted_contexts_and_only_when_asked() {
    for grant in [true, false] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, request) = next_request(&listener);
            let mut options = AcceptOptions::new();
            if grant {
                options = options.grant_requested_roles();
            }
            let mut association = accept(stream, &request, &options, |pc| {
                if pc.abstract_syntax.trim_end_matches('\0') == uids::MR_IMAGE_STORAGE {
                    ContextDecision::Refuse(
                        PresentationContextResultReason::AbstractSyntaxNotSupported,
                    )
                } else {
                    ContextDecision::Accept {
                        transfer_syntax: pc.transfer_syntaxes[0].clone(),
                    }
                }
            })
            .unwrap();
            let roles = (
                association.requestor_is_scp(uids::CT_IMAGE_STORAGE),
                association.requestor_is_scp(uids::MR_IMAGE_STORAGE),
            );
            let mut reader = MessageReader::new();
            while let Ok(Incoming::Message(_)) = reader.receive(&mut association) {}
            let _ = crate::PduChannel::send_pdu(&mut association, &Pdu::ReleaseRP);
            roles
        });
        let options = crate::ScuOptions::new(
            crate::PeerAddress::new("127.0.0.1", addr.port()),
            "TEST-SCU".parse().unwrap(),
            "TEST-SCP".parse().unwrap(),
        )
        .propose_verification()
        .propose(
            uids::CT_IMAGE_STORAGE,
            [uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string()],
        )
        .propose(
            uids::MR_IMAGE_STORAGE,
            [uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string()],
        )
        .offer_scp_role(uids::CT_IMAGE_STORAGE)
        .offer_scp_role(uids::MR_IMAGE_STORAGE);
        let association = options.establish().unwrap();
        assert_eq!(
            association.peer_accepted_scp_role(uids::CT_IMAGE_STORAGE),
            grant
        );
        assert!(!association.peer_accepted_scp_role(uids::MR_IMAGE_STORAGE));
        association.release().unwrap();
        assert_eq!(server.join().unwrap(), (grant, false));
    }
}

#[test]
fn an_scp_reads_a_data_set_over_many_pdus_then_refuses_a_pdu_above_its_maximum() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, request) = next_request(&listener);
        let options = AcceptOptions::new().max_pdu_length(16_384);
        let mut association = accept(stream, &request, &options, |pc| ContextDecision::Accept {
            transfer_syntax: pc.transfer_syntaxes[0].clone(),
        })
        .unwrap();
        let mut reader = MessageReader::new();
        let first = match reader.receive(&mut association).unwrap() {
            Incoming::Message(message) => message.data.unwrap(),
            other => panic!("unexpected {other:?}"),
        };
        (first, reader.receive(&mut association))
    });
    let mut association = ClientAssociationOptions::new()
        .calling_ae_title("TEST-SCU")
        .called_ae_title("TEST-SCP")
        .with_presentation_context(
            uids::CT_IMAGE_STORAGE,
            vec![uids::IMPLICIT_VR_LITTLE_ENDIAN],
        )
        .read_timeout(DEADLINE)
        .establish(addr)
        .unwrap();
    let pc_id = association.presentation_contexts()[0].id;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let command = Command::c_store_rq(1, uids::CT_IMAGE_STORAGE, "2.25.7", crate::Priority::Medium);
    crate::send_message(&mut association, pc_id, &command, Some(&data)).unwrap();
    // A P-DATA-TF announcing a million bytes, against the SCP's 16 KiB maximum.
    association
        .inner_stream()
        .write_all(&[0x04, 0x00, 0x00, 0x0F, 0x42, 0x40])
        .unwrap();
    let (first, second) = server.join().unwrap();
    assert_eq!(first, data, "the data set, reassembled from 16 KiB PDUs");
    let error = second.unwrap_err();
    assert!(
        matches!(&error, crate::DimseError::Protocol(text) if text.contains("1000000")),
        "{error}"
    );
}
