//! The faults that stand in for the clients' hand-made test peers, each checked
//! against a client written here with dicom-ul and dimse only (not with the
//! project's sender or C-FIND client, so that a bug shared by twins cannot hide).

mod common;

use std::time::Duration;

use common::*;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::{Command, Incoming, InformationModel, Priority, Status, StatusClass};
use simulator::{FaultPlan, FindRefusal, Simulator, SimulatorConfig, SimulatorHandle};

const STUDY_ROOT: &str = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND;
const PATIENT_ROOT: &str = uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND;

/// A simulator holding one study of two series (CT x2, MR x1), visible to C-FIND.
fn simulator_with_a_study() -> SimulatorHandle {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    for (series, sop, modality) in [
        ("2.25.10.1", "2.25.10.1.1", "CT"),
        ("2.25.10.1", "2.25.10.1.2", "CT"),
        ("2.25.10.2", "2.25.10.2.1", "MR"),
    ] {
        let obj = instance("2.25.10", series, sop, modality, "x");
        assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    }
    client.release();
    sim
}

/// Refuses C-FIND on `models` (empty: every model) with `status`.
fn refuse_find(sim: &SimulatorHandle, models: Vec<InformationModel>, status: Status) {
    sim.set_faults(FaultPlan {
        refuse_find: Some(FindRefusal { models, status }),
        ..FaultPlan::default()
    });
}

fn study_query() -> InMemDicomObject {
    query(
        "STUDY",
        &[
            (tags::STUDY_INSTANCE_UID, VR::UI, ""),
            (tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, ""),
            (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, ""),
            (tags::MODALITIES_IN_STUDY, VR::CS, ""),
        ],
    )
}

/// An instance whose data set spans many 16 KB PDUs (the test client's maximum).
fn large_instance(sop: &str) -> InMemDicomObject {
    let mut obj = instance("2.25.20", "2.25.20.1", sop, "CT", "x");
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::from(vec![3u8; 400_000]),
    ));
    obj
}

#[test]
fn a_store_is_aborted_in_the_middle_of_its_data_set() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        abort_mid_data_set: Some(32 * 1024),
        ..FaultPlan::default()
    });
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    let outcome = client.store(&large_instance("2.25.20.1.1"));
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(eventually(|| sim.stats().associations.aborted_by_fault == 1));
    assert_eq!(sim.stats().instances_in_store, 0);
    // Queries are not hit while their identifiers stay under the limit.
    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    let (_, status) = finder.find(STUDY_ROOT, &study_query()).unwrap();
    assert_eq!(status, Status::SUCCESS);
}

#[test]
fn a_data_set_below_the_abort_threshold_is_stored() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        abort_mid_data_set: Some(1024 * 1024),
        ..FaultPlan::default()
    });
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    let (status, _) = client.store(&large_instance("2.25.20.1.2")).unwrap();
    assert_eq!(status, Status::SUCCESS);
    client.release();
    assert_eq!(sim.stats().associations.aborted_by_fault, 0);
}

#[test]
fn c_find_answers_without_counts_when_told_to() {
    let sim = simulator_with_a_study();
    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    let (found, _) = finder.find(STUDY_ROOT, &study_query()).unwrap();
    assert_eq!(
        text(&found[0], tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
        "3"
    );

    sim.set_faults(FaultPlan {
        omit_instance_counts: true,
        ..FaultPlan::default()
    });
    let (found, status) = finder.find(STUDY_ROOT, &study_query()).unwrap();
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(found.len(), 1);
    for count in [
        tags::NUMBER_OF_STUDY_RELATED_SERIES,
        tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
    ] {
        assert!(found[0].get(count).is_none(), "{count} still answered");
    }
    assert_eq!(text(&found[0], tags::MODALITIES_IN_STUDY), "CT\\MR");
    let series = query(
        "SERIES",
        &[
            (tags::STUDY_INSTANCE_UID, VR::UI, "2.25.10"),
            (tags::SERIES_INSTANCE_UID, VR::UI, ""),
            (tags::NUMBER_OF_SERIES_RELATED_INSTANCES, VR::IS, ""),
        ],
    );
    let (found, _) = finder.find(STUDY_ROOT, &series).unwrap();
    assert_eq!(found.len(), 2);
    assert!(
        found
            .iter()
            .all(|s| s.get(tags::NUMBER_OF_SERIES_RELATED_INSTANCES).is_none())
    );
}

#[test]
fn a_refused_model_gets_its_status_and_the_other_model_still_answers() {
    let sim = simulator_with_a_study();
    refuse_find(&sim, vec![InformationModel::StudyRoot], Status(0xA900));
    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    let (found, status) = finder.find(STUDY_ROOT, &study_query()).unwrap();
    assert_eq!((found.len(), status), (0, Status(0xA900)));
    let (found, status) = finder.find(PATIENT_ROOT, &study_query()).unwrap();
    assert_eq!((found.len(), status), (1, Status::SUCCESS));
    assert_eq!(sim.stats().finds.failed, 1);
}

#[test]
fn a_refusal_without_models_refuses_every_c_find() {
    let sim = simulator_with_a_study();
    refuse_find(&sim, Vec::new(), Status(0xC000));
    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    for model in [STUDY_ROOT, PATIENT_ROOT] {
        let (found, status) = finder.find(model, &study_query()).unwrap();
        assert_eq!((found.len(), status), (0, Status(0xC000)));
    }
}

#[test]
fn received_c_finds_are_kept_with_their_model_and_keys_refused_ones_too() {
    let sim = simulator_with_a_study();
    refuse_find(&sim, vec![InformationModel::StudyRoot], Status(0xA900));
    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    finder.find(STUDY_ROOT, &study_query()).unwrap();
    let series = query(
        "SERIES",
        &[
            (tags::STUDY_INSTANCE_UID, VR::UI, "2.25.10\\2.25.11"),
            (tags::SERIES_INSTANCE_UID, VR::UI, ""),
        ],
    );
    finder.find(PATIENT_ROOT, &series).unwrap();
    let received = sim.received_finds();
    let models: Vec<InformationModel> = received.iter().map(|f| f.model).collect();
    assert_eq!(
        models,
        [InformationModel::StudyRoot, InformationModel::PatientRoot]
    );
    assert_eq!(
        text(&received[0].identifier, tags::QUERY_RETRIEVE_LEVEL),
        "STUDY"
    );
    assert_eq!(
        text(&received[1].identifier, tags::STUDY_INSTANCE_UID),
        "2.25.10\\2.25.11"
    );
}

#[test]
fn the_final_status_comes_inside_the_last_identifier_and_no_final_response_follows() {
    let sim = simulator_with_a_study();
    sim.set_faults(FaultPlan {
        status_in_last_identifier: true,
        ..FaultPlan::default()
    });
    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    let series = query(
        "SERIES",
        &[
            (tags::STUDY_INSTANCE_UID, VR::UI, "2.25.10"),
            (tags::SERIES_INSTANCE_UID, VR::UI, ""),
        ],
    );
    let pc = finder.context(STUDY_ROOT).unwrap();
    let rq = Command::c_find_rq(7, STUDY_ROOT, Priority::Medium);
    dimse::send_message(&mut finder.association, pc, &rq, Some(&encode(&series))).unwrap();
    let mut identifiers = Vec::new();
    for _ in 0..2 {
        let Incoming::Message(m) = finder.reader.receive(&mut finder.association).unwrap() else {
            panic!("the association ended");
        };
        assert_eq!(m.command.status.unwrap().class(), StatusClass::Pending);
        let data = m.data.expect("an identifier");
        identifiers.push(
            InMemDicomObject::read_dataset_with_ts(&data[..], &EXPLICIT_VR_LITTLE_ENDIAN.erased())
                .unwrap(),
        );
    }
    assert!(identifiers[0].get(tags::STATUS).is_none());
    let status = identifiers[1]
        .get(tags::STATUS)
        .expect("(0000,0900) inside");
    assert_eq!(status.to_int::<u16>().unwrap(), 0x0000);
    finder
        .association
        .inner_stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let after = finder.reader.receive(&mut finder.association);
    assert!(
        matches!(&after, Err(e) if e.is_timeout()),
        "a final response followed: {after:?}"
    );
}

#[test]
fn a_stalled_c_find_is_never_answered_while_stores_still_are() {
    let sim = simulator_with_a_study();
    sim.set_faults(FaultPlan {
        stall_finds: true,
        ..FaultPlan::default()
    });
    let mut finder = connect(sim.addr(), "LB-HTM-GI").unwrap();
    finder
        .association
        .inner_stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = finder.find(STUDY_ROOT, &study_query()).unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(sim.stats().finds.stalled, 1);
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    let obj = instance("2.25.30", "2.25.30.1", "2.25.30.1.1", "CT", "x");
    assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
}

#[test]
fn a_withheld_model_is_not_accepted_at_negotiation() {
    let sim = simulator_with_a_study();
    sim.set_faults(FaultPlan {
        withheld_find_models: vec![InformationModel::PatientRoot],
        ..FaultPlan::default()
    });
    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    assert_eq!(finder.context(PATIENT_ROOT), None);
    let (found, status) = finder.find(STUDY_ROOT, &study_query()).unwrap();
    assert_eq!((found.len(), status), (1, Status::SUCCESS));
}

#[test]
fn the_first_associations_are_rejected_permanently_then_accepted() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        reject_first_associations: Some(2),
        ..FaultPlan::default()
    });
    for _ in 0..2 {
        let Err(err) = connect(sim.addr(), "LB-HTM-GI") else {
            panic!("association accepted");
        };
        let dicom_ul::association::Error::Rejected { association_rj, .. } = err else {
            panic!("expected a rejection, got {err}");
        };
        assert_eq!(
            association_rj.result,
            dicom_ul::pdu::AssociationRJResult::Permanent
        );
        assert_eq!(
            association_rj.source,
            dicom_ul::pdu::AssociationRJSource::ServiceUser(
                dicom_ul::pdu::AssociationRJServiceUserReason::CalledAETitleNotRecognized
            )
        );
    }
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    assert_eq!(client.echo().unwrap(), Status::SUCCESS);
    assert_eq!(
        sim.stats().associations.rejected[&simulator::RejectionReason::RejectedByFault],
        2
    );
}
