//! Hostile and broken peers: random bytes, truncated and oversized PDUs, peers that
//! vanish mid-data-set. The association at fault ends; the simulator keeps serving
//! the others, never panics, and every acknowledged store is accounted for.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::*;
use dimse::Status;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use simulator::{Simulator, SimulatorConfig, SimulatorHandle};

fn quick_config() -> SimulatorConfig {
    SimulatorConfig {
        read_timeout: Duration::from_secs(2),
        artim_timeout: Duration::from_millis(500),
        max_associations: 512,
        max_pdu_length: 16_384,
        ..SimulatorConfig::default()
    }
}

/// A well-behaved sender storing `n` instances while the test misbehaves; returns
/// how many were acknowledged.
fn good_sender(sim: &SimulatorHandle, prefix: &'static str, n: usize) -> thread::JoinHandle<usize> {
    let addr = sim.addr();
    thread::spawn(move || {
        let mut client = connect(addr, "LB-HTM-GI").unwrap();
        let mut acknowledged = 0;
        for i in 0..n {
            let obj = instance(
                &format!("{prefix}.1"),
                &format!("{prefix}.1.1"),
                &format!("{prefix}.1.1.{i}"),
                "ES",
                "Colon",
            );
            if client.store(&obj).unwrap().0 == Status::SUCCESS {
                acknowledged += 1;
            }
        }
        client.release();
        acknowledged
    })
}

fn valid_associate_rq() -> Vec<u8> {
    use dicom_ul::pdu::{AssociationRQ, PresentationContextProposed, UserVariableItem};
    let rq = AssociationRQ {
        protocol_version: 1,
        calling_ae_title: "FUZZ".into(),
        called_ae_title: "LB-HTM-GI".into(),
        application_context_name: "1.2.840.10008.3.1.1.1".into(),
        presentation_contexts: vec![PresentationContextProposed {
            id: 1,
            abstract_syntax: dicom_dictionary_std::uids::VERIFICATION.into(),
            transfer_syntaxes: vec![dicom_dictionary_std::uids::IMPLICIT_VR_LITTLE_ENDIAN.into()],
        }],
        user_variables: vec![UserVariableItem::MaxLength(16_384)],
    };
    let mut out = Vec::new();
    dicom_ul::pdu::write_pdu(&mut out, &dicom_ul::Pdu::AssociationRQ(rq)).unwrap();
    out
}

#[test]
fn random_byte_streams_never_take_the_simulator_down() {
    let sim = Simulator::start(quick_config()).unwrap();
    let sender = good_sender(&sim, "5.1", 40);
    let rq = valid_associate_rq();
    let mut rng = StdRng::seed_from_u64(0x5EED);
    for round in 0..300 {
        let Ok(mut stream) = TcpStream::connect(sim.addr()) else {
            panic!("connection {round} refused: the simulator stopped listening");
        };
        let len = rng.random_range(0..2048);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        match round % 3 {
            // Pure noise.
            0 => {}
            // A valid A-ASSOCIATE-RQ cut short, or with its tail replaced by noise.
            1 => {
                let cut = rng.random_range(0..rq.len());
                bytes = [&rq[..cut], &bytes[..]].concat();
            }
            // A plausible PDU header (type 1..=7) with a random length, then noise.
            _ => {
                let header = [
                    rng.random_range(1..=7u8),
                    0,
                    0,
                    0,
                    rng.random(),
                    rng.random(),
                ];
                bytes = [&header[..], &bytes[..]].concat();
            }
        }
        let _ = stream.write_all(&bytes);
        drop(stream);
    }
    assert_eq!(sender.join().unwrap(), 40);
    let mut client = connect(sim.addr(), "LB-HTM-OPH").unwrap();
    assert_eq!(client.echo().unwrap(), Status::SUCCESS);
    client.release();
    let stats = sim.shutdown();
    assert_eq!(stats.associations.panicked, 0);
    assert_eq!(stats.stores.acknowledged(), 40);
    assert_eq!(stats.instances_in_store, 40);
}

#[test]
fn random_p_data_on_an_open_association_ends_only_that_association() {
    let sim = Simulator::start(quick_config()).unwrap();
    let sender = good_sender(&sim, "5.2", 40);
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..50 {
        let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
        let len = rng.random_range(1..600usize);
        // A P-DATA-TF header announcing exactly the noise that follows, or raw noise.
        let noise: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let mut bytes = Vec::new();
        if rng.random_bool(0.5) {
            bytes.extend_from_slice(&[0x04, 0x00]);
            bytes.extend_from_slice(&(len as u32).to_be_bytes());
        }
        bytes.extend_from_slice(&noise);
        let _ = client.association.inner_stream().write_all(&bytes);
        // Whatever happens, the next request on this association must not hang.
        let _ = client
            .association
            .inner_stream()
            .set_read_timeout(Some(Duration::from_secs(3)));
        let _ = client.echo();
    }
    assert_eq!(sender.join().unwrap(), 40);
    let stats = sim.shutdown();
    assert_eq!(stats.associations.panicked, 0);
    assert!(stats.associations.protocol_errors > 0);
    assert_eq!(stats.instances_in_store, 40);
}

#[test]
fn a_pdu_larger_than_negotiated_aborts_that_association() {
    let sim = Simulator::start(quick_config()).unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    // 20,000 bytes of P-DATA against a negotiated maximum of 16,384.
    let mut pdu = vec![0x04, 0x00];
    pdu.extend_from_slice(&20_000u32.to_be_bytes());
    pdu.extend_from_slice(&(19_996u32).to_be_bytes());
    pdu.extend_from_slice(&[1, 0x00]);
    pdu.extend(std::iter::repeat_n(0u8, 19_994));
    client.association.inner_stream().write_all(&pdu).unwrap();
    match client.reader.receive(&mut client.association) {
        Ok(dimse::Incoming::Aborted(_)) | Err(_) => {}
        Ok(other) => panic!("expected an abort, got {other:?}"),
    }
    assert!(eventually(|| sim.stats().associations.protocol_errors == 1));
    // Others are still served.
    let mut other = connect(sim.addr(), "LB-HTM-GI").unwrap();
    assert_eq!(other.echo().unwrap(), Status::SUCCESS);
}

#[test]
fn a_peer_vanishing_mid_data_set_loses_only_its_unacknowledged_instance() {
    let sim = Simulator::start(quick_config()).unwrap();
    let sender = good_sender(&sim, "5.3", 30);
    for i in 0..10 {
        let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
        let obj = instance("5.4.1", "5.4.1.1", &format!("5.4.1.1.{i}"), "ES", "x");
        let data = encode(&obj);
        let pc = client.context(SECONDARY_CAPTURE).unwrap();
        let rq = dimse::Command::c_store_rq(
            1,
            SECONDARY_CAPTURE,
            format!("5.4.1.1.{i}"),
            dimse::Priority::Medium,
        );
        dimse::send_command(&mut client.association, pc, &rq).unwrap();
        // Half of the data set, not marked last, then the connection goes away.
        let half = &data[..data.len() / 2];
        let mut pdu = vec![0x04, 0x00];
        pdu.extend_from_slice(&((half.len() + 6) as u32).to_be_bytes());
        pdu.extend_from_slice(&((half.len() + 2) as u32).to_be_bytes());
        pdu.extend_from_slice(&[pc, 0x00]);
        pdu.extend_from_slice(half);
        client.association.inner_stream().write_all(&pdu).unwrap();
        drop(client);
    }
    assert_eq!(sender.join().unwrap(), 30);
    assert!(eventually(|| sim.stats().associations.connection_lost == 10));
    let stats = sim.shutdown();
    assert_eq!(stats.associations.panicked, 0);
    // Only the acknowledged instances are stored, and all of them are.
    assert_eq!(stats.stores.acknowledged(), 30);
    assert_eq!(stats.instances_in_store, 30);
}

#[test]
fn a_silent_connection_is_dropped_after_the_artim_timeout() {
    let sim = Simulator::start(quick_config()).unwrap();
    let silent = TcpStream::connect(sim.addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut &silent, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the simulator should close, not answer");
    assert!(start.elapsed() < Duration::from_secs(4));
}
