//! The client against the peers the simulator cannot be, each as small as it can be
//! and written with dicom-ul and dimse directly: one that rejects a whole association
//! for proposing a model, one that forgets MessageIDBeingRespondedTo, and none at all.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use cfind::{CFindClient, CFindError, InformationModel, StudyQuery};
use dicom_dictionary_std::uids;
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceUserReason, AssociationRJSource,
};
use dicom_ul::{Pdu, ServerAssociationOptions};
use dimse::{Command, Incoming, MessageReader, Status};
use support::archive::ArchiveStudy;
use support::instances::{QUERY_AE, simulator_holding};

/// A loopback listener and its port.
fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A client of `called_ae_title` on loopback `port`, with short waits.
fn client(port: u16, called_ae_title: &str) -> CFindClient {
    CFindClient::builder("127.0.0.1", port)
        .called_ae_title(called_ae_title)
        .calling_ae_title("CFIND-TEST")
        .connect_timeout(Duration::from_secs(2))
        .acse_timeout(Duration::from_secs(2))
        .dimse_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// Rejects (A-ASSOCIATE-RJ permanent, service user, no reason given) every association
/// that proposes `model` and passes the others through to `behind`, byte for byte.
/// Hand-made because the simulator refuses a model only by its presentation context
/// (`withheld_find_models`), never the whole association proposing it, as some PACS do.
/// Returns the port and the count of rejections.
fn front_rejecting_associations_proposing(
    model: &'static str,
    behind: SocketAddr,
) -> (u16, Arc<AtomicUsize>) {
    let (listener, port) = listen();
    let rejected = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&rejected);
    thread::spawn(move || {
        for mut peer in listener.incoming().flatten() {
            let mut header = [0_u8; 6];
            if peer.read_exact(&mut header).is_err() {
                continue;
            }
            let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
            let mut rq = header.to_vec();
            rq.resize(6 + len as usize, 0);
            if peer.read_exact(&mut rq[6..]).is_err() {
                continue;
            }
            let Ok(Some(Pdu::AssociationRQ(request))) = dicom_ul::read_pdu(&rq[..], 1 << 20, false)
            else {
                continue;
            };
            let proposes = request
                .presentation_contexts
                .iter()
                .any(|pc| pc.abstract_syntax.trim_end_matches('\0') == model);
            if proposes {
                let mut rj = Vec::new();
                dicom_ul::write_pdu(
                    &mut rj,
                    &Pdu::AssociationRJ(AssociationRJ {
                        result: AssociationRJResult::Permanent,
                        source: AssociationRJSource::ServiceUser(
                            AssociationRJServiceUserReason::NoReasonGiven,
                        ),
                    }),
                )
                .unwrap();
                let _ = peer.write_all(&rj);
                counter.fetch_add(1, Ordering::SeqCst);
                continue;
            }
            let mut simulator = TcpStream::connect(behind).unwrap();
            simulator.write_all(&rq).unwrap();
            let (mut up, mut down) = (peer.try_clone().unwrap(), simulator.try_clone().unwrap());
            thread::spawn(move || {
                let _ = io::copy(&mut down, &mut up);
                let _ = up.shutdown(Shutdown::Write);
            });
            thread::spawn(move || {
                let _ = io::copy(&mut peer, &mut simulator);
                let _ = simulator.shutdown(Shutdown::Write);
            });
        }
    });
    (port, rejected)
}

/// Accepts one association and answers its first C-FIND with a final C-FIND-RSP
/// that names no request (MessageIDBeingRespondedTo left out). Hand-made because the
/// simulator always answers by the rules: no fault breaks the response's command set.
fn peer_answering_without_message_id_being_responded_to() -> u16 {
    let (listener, port) = listen();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut association = ServerAssociationOptions::new()
            .accept_any()
            .with_abstract_syntax(uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND)
            .with_abstract_syntax(uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND)
            .establish(stream)
            .unwrap();
        let mut reader = MessageReader::new();
        let Ok(Incoming::Message(request)) = reader.receive(&mut association) else {
            return;
        };
        let mut response = Command::response_to(&request.command, Status::SUCCESS, false).unwrap();
        response.message_id_being_responded_to = None;
        dimse::send_message(
            &mut association,
            request.presentation_context_id,
            &response,
            None,
        )
        .unwrap();
        // Until the client gives up on the association.
        let _ = reader.receive(&mut association);
    });
    port
}

#[test]
fn patient_root_is_used_when_the_association_proposing_study_root_is_rejected() {
    let studies: Vec<ArchiveStudy> = (0..2).map(|n| ArchiveStudy::synthetic(n, 2, 2)).collect();
    let simulator = simulator_holding(&studies);
    let (port, rejected) = front_rejecting_associations_proposing(
        uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND,
        simulator.addr(),
    );
    let client = client(port, QUERY_AE);
    let result = client.find(&StudyQuery::new()).unwrap();
    assert_eq!(result.model, InformationModel::PatientRoot);
    assert_eq!(result.len(), 2);
    assert_eq!(result.fallbacks.len(), 1);
    assert_eq!(result.fallbacks[0].refused, InformationModel::StudyRoot);
    assert!(result.fallbacks[0].reason.contains("association rejected"));
    // Both models together, then Study Root alone: two rejections before the one that works.
    assert_eq!(rejected.load(Ordering::SeqCst), 2);
}

#[test]
fn a_c_find_response_without_message_id_being_responded_to_is_a_protocol_error() {
    let port = peer_answering_without_message_id_being_responded_to();
    let client = client(port, "ANY-SCP");
    let error = client.find(&StudyQuery::new()).unwrap_err();
    assert!(matches!(error, CFindError::Protocol { .. }), "{error}");
    assert!(
        error.to_string().contains("MessageIDBeingRespondedTo"),
        "{error}"
    );
}

#[test]
fn an_unreachable_peer_is_a_connect_error() {
    let port = listen().1;
    let client = CFindClient::builder("127.0.0.1", port)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let error = client.test_connection().unwrap_err();
    assert!(matches!(error, CFindError::Connect { .. }), "{error}");
    assert!(error.to_string().contains(&format!("127.0.0.1:{port}")));
}
