//! A real association over loopback TCP: dicom-ul client and server, DIMSE messages
//! from this crate on both ends.

use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use dicom_dictionary_std::uids;
use dicom_ul::{ClientAssociationOptions, Pdu, ServerAssociationOptions};
use dimse::{
    AeTitle, Command, CommandField, Incoming, MessageReader, PeerAddress, Priority, ScuOptions,
    Status, Timeouts, send_message,
};

/// Starts a one-association SCP that answers every request with `status` and hands
/// back the data sets it received.
fn one_shot_scp(status: Status) -> (String, thread::JoinHandle<Vec<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let options = ServerAssociationOptions::new()
            .accept_any()
            .with_abstract_syntax(uids::VERIFICATION)
            .with_abstract_syntax(uids::CT_IMAGE_STORAGE)
            .max_pdu_length(16_384)
            .read_timeout(Duration::from_secs(10));
        let mut association = options.establish(stream).unwrap();
        let mut reader = MessageReader::new();
        let mut received = Vec::new();
        loop {
            match reader.receive(&mut association).unwrap() {
                Incoming::Message(message) => {
                    let rsp = Command::response_to(&message.command, status, false).unwrap();
                    if let Some(data) = message.data {
                        received.push(data);
                    }
                    send_message(
                        &mut association,
                        message.presentation_context_id,
                        &rsp,
                        None,
                    )
                    .unwrap();
                }
                Incoming::ReleaseRequested => {
                    association.send(&Pdu::ReleaseRP).unwrap();
                    break;
                }
                Incoming::Aborted(_) => break,
                _ => break,
            }
        }
        received
    });
    (addr, handle)
}

fn options(addr: &str, timeouts: Timeouts) -> ScuOptions {
    ScuOptions::new(
        addr.parse::<PeerAddress>().unwrap(),
        AeTitle::new("LOOPBACK-SCU").unwrap(),
        AeTitle::new("LOOPBACK-SCP").unwrap(),
    )
    .timeouts(timeouts)
}

#[test]
fn echo_and_large_store_cross_a_real_association() {
    let (addr, scp) = one_shot_scp(Status::SUCCESS);
    let mut association = options(&addr, Timeouts::all(Duration::from_secs(10)))
        .propose_verification()
        .propose(uids::CT_IMAGE_STORAGE, [uids::EXPLICIT_VR_LITTLE_ENDIAN])
        .establish()
        .unwrap();
    let store_pc = association
        .accepted_context(uids::CT_IMAGE_STORAGE)
        .unwrap()
        .id;

    assert_eq!(association.echo().unwrap(), Status::SUCCESS);

    // 100 KB through a 16 KB maximum PDU: seven fragments reassembled on the far side.
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let id = association.next_message_id();
    let rq = Command::c_store_rq(id, uids::CT_IMAGE_STORAGE, "2.25.42", Priority::Medium);
    association.send(store_pc, &rq, Some(&body)).unwrap();
    let rsp = association
        .expect_response(id, CommandField::CStoreRsp)
        .unwrap();
    assert_eq!(rsp.status, Status::SUCCESS);
    assert_eq!(rsp.command.message_id_being_responded_to, Some(id));
    assert_eq!(rsp.command.sop_instance_uid.as_deref(), Some("2.25.42"));

    association.release().unwrap();
    let received = scp.join().unwrap();
    assert_eq!(received, vec![body]);
}

#[test]
fn a_command_and_its_data_set_in_one_pdu_are_reassembled() {
    use dicom_ul::pdu::{PDataValue, PDataValueType};
    let (addr, scp) = one_shot_scp(Status(0xA700));
    let mut association = ClientAssociationOptions::new()
        .with_presentation_context(
            uids::CT_IMAGE_STORAGE,
            vec![uids::EXPLICIT_VR_LITTLE_ENDIAN],
        )
        .read_timeout(Duration::from_secs(10))
        .establish(addr.as_str())
        .unwrap();
    let pc = association.presentation_contexts()[0].id;
    let rq = Command::c_store_rq(3, uids::CT_IMAGE_STORAGE, "2.25.7", Priority::Medium);
    association
        .send(&Pdu::PData {
            data: vec![
                PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: rq.encode(),
                },
                PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Data,
                    is_last: true,
                    data: vec![1, 2, 3, 4],
                },
            ],
        })
        .unwrap();
    let Incoming::Message(rsp) = MessageReader::new().receive(&mut association).unwrap() else {
        panic!("no response")
    };
    assert_eq!(rsp.command.status, Some(Status(0xA700)));
    association.release().unwrap();
    assert_eq!(scp.join().unwrap(), vec![vec![1, 2, 3, 4]]);
}

#[test]
fn a_silent_peer_is_a_timeout_not_a_hang() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let scp = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let association = ServerAssociationOptions::new()
            .accept_any()
            .with_abstract_syntax(uids::VERIFICATION)
            .establish(stream)
            .unwrap();
        // Hold the association open and never answer.
        thread::sleep(Duration::from_secs(2));
        drop(association);
    });
    // The ACSE wait is generous; the DIMSE wait is what must bound the silence.
    let mut association = options(
        &addr,
        Timeouts {
            dimse: Duration::from_millis(300),
            ..Timeouts::all(Duration::from_secs(10))
        },
    )
    .propose_verification()
    .establish()
    .unwrap();
    let err = association.echo().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    association.abort();
    scp.join().unwrap();
}
