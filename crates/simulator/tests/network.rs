//! The simulator over real TCP: negotiation, storage, rules, C-FIND, faults,
//! forwarding and shutdown, as a DICOM sender sees them.

mod common;

use std::time::Duration;

use common::*;
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_ul::pdu::{
    AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJServiceUserReason, AssociationRJSource,
};
use dimse::Status;
use simulator::{
    FaultPlan, ResponseDelay, Rules, Simulator, SimulatorConfig, StatusOverride, StoreMode,
    StoreSelection,
};

const STUDY_ROOT: &str = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND;
const PATIENT_ROOT: &str = uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_FIND;

fn rejection(result: Result<Client, dicom_ul::association::Error>) -> dicom_ul::pdu::AssociationRJ {
    match result {
        Err(dicom_ul::association::Error::Rejected { association_rj, .. }) => association_rj,
        Err(other) => panic!("expected a rejection, got {other}"),
        Ok(_) => panic!("expected a rejection, the association was accepted"),
    }
}

fn rules(toml: &str) -> Rules {
    Rules::from_toml_str(toml, "test.toml").unwrap()
}

#[test]
fn echo_succeeds_on_every_route_and_on_the_query_ae() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    for ae in ["LB-HTM-GI", "LB-HTM-OPH", "LB-HTM-ORTHO", "LB-QUERY"] {
        let mut client = connect(sim.addr(), ae).unwrap();
        assert_eq!(client.echo().unwrap(), Status::SUCCESS, "{ae}");
        client.release();
    }
    let stats = sim.shutdown();
    assert_eq!(stats.echoes, 4);
    assert_eq!(stats.associations.accepted, 4);
    assert_eq!(stats.associations.released, 4);
}

#[test]
fn an_unknown_called_ae_title_is_rejected_permanently_with_reason_7() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let rj = rejection(connect(sim.addr(), "NOBODY"));
    assert_eq!(rj.result, AssociationRJResult::Permanent);
    assert_eq!(
        rj.source,
        AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CalledAETitleNotRecognized
        )
    );
    // The simulator keeps serving.
    assert_eq!(
        connect(sim.addr(), "LB-HTM-GI").unwrap().echo().unwrap(),
        Status::SUCCESS
    );
    assert_eq!(sim.stats().associations.rejected_total(), 1);
}

#[test]
fn a_calling_ae_title_outside_the_allow_list_is_rejected_with_reason_3() {
    let config = SimulatorConfig::with_rules(rules(
        "[[route]]\nname = \"R\"\ncalled_ae_title = \"ROUTER\"\nallowed_calling_ae_titles = [\"MODALITY1\"]\n",
    ));
    let sim = Simulator::start(config).unwrap();
    let rj = rejection(connect_as(sim.addr(), "ROUTER", "STRANGER"));
    assert_eq!(rj.result, AssociationRJResult::Permanent);
    assert_eq!(
        rj.source,
        AssociationRJSource::ServiceUser(
            AssociationRJServiceUserReason::CallingAETitleNotRecognized
        )
    );
    connect_as(sim.addr(), "ROUTER", "MODALITY1")
        .unwrap()
        .release();
}

#[test]
fn one_association_over_the_limit_is_rejected_transiently_with_reason_2() {
    let config = SimulatorConfig {
        max_associations: 1,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config).unwrap();
    let first = connect(sim.addr(), "LB-HTM-GI").unwrap();
    let rj = rejection(connect(sim.addr(), "LB-HTM-GI"));
    assert_eq!(rj.result, AssociationRJResult::Transient);
    assert_eq!(
        rj.source,
        AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded
        )
    );
    first.release();
    // The slot is free again once the first association is gone.
    assert!(eventually(|| connect(sim.addr(), "LB-HTM-GI")
        .map(|c| c.release())
        .is_ok()));
}

#[test]
fn an_opv_gpa_series_is_stored_as_visual_fields_gpa_and_found_by_c_find() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-OPH").unwrap();
    for i in 1..=3 {
        let obj = instance(
            "1.2.826.0.1.1",
            "1.2.826.0.1.1.1",
            &format!("1.2.826.0.1.1.1.{i}"),
            "OPV",
            "24-2 GPA",
        );
        assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    }
    client.release();

    let stored = sim.stored_instance("1.2.826.0.1.1.1.2").unwrap();
    assert_eq!(stored.route, "HTM_OPH");
    assert_eq!(
        stored.attributes["StudyDescription"],
        "Visual Fields (VF) GPA"
    );
    let dataset = stored.dataset.expect("full mode keeps the data set");
    assert_eq!(
        text(&dataset, tags::INSTITUTIONAL_DEPARTMENT_NAME),
        "Ophthalmology"
    );

    let mut finder = connect(sim.addr(), "LB-QUERY").unwrap();
    let (found, status) = finder
        .find(
            STUDY_ROOT,
            &query(
                "STUDY",
                &[
                    (tags::PATIENT_ID, VR::LO, "PID001"),
                    (tags::STUDY_INSTANCE_UID, VR::UI, ""),
                    (tags::STUDY_DESCRIPTION, VR::LO, ""),
                    (tags::MODALITIES_IN_STUDY, VR::CS, ""),
                    (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, ""),
                ],
            ),
        )
        .unwrap();
    assert_eq!(status, Status::SUCCESS);
    assert_eq!(found.len(), 1);
    assert_eq!(
        text(&found[0], tags::STUDY_DESCRIPTION),
        "Visual Fields (VF) GPA"
    );
    assert_eq!(text(&found[0], tags::MODALITIES_IN_STUDY), "OPV");
    assert_eq!(
        text(&found[0], tags::NUMBER_OF_STUDY_RELATED_INSTANCES),
        "3"
    );

    let (series, _) = finder
        .find(
            PATIENT_ROOT,
            &query(
                "SERIES",
                &[
                    (tags::SERIES_DESCRIPTION, VR::LO, "*GPA*"),
                    (tags::SERIES_INSTANCE_UID, VR::UI, ""),
                ],
            ),
        )
        .unwrap();
    assert_eq!(series.len(), 1);
    let (patients, _) = finder
        .find(
            PATIENT_ROOT,
            &query(
                "PATIENT",
                &[
                    (tags::PATIENT_NAME, VR::PN, "DOE*"),
                    (tags::NUMBER_OF_PATIENT_RELATED_INSTANCES, VR::IS, ""),
                ],
            ),
        )
        .unwrap();
    assert_eq!(patients.len(), 1);
    assert_eq!(
        text(&patients[0], tags::NUMBER_OF_PATIENT_RELATED_INSTANCES),
        "3"
    );
    finder.release();
}

#[test]
fn a_rejected_instance_gets_the_rule_status_and_a_comment_and_is_not_stored() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-ORTHO").unwrap();
    let mut obj = instance("1.2.3", "1.2.3.1", "1.2.3.1.1", "DX", "Knee AP");
    obj.put_str(tags::ACCESSION_NUMBER, VR::SH, "ACC/WITH/SLASHES");
    let (status, comment) = client.store(&obj).unwrap();
    assert_eq!(status, Status(0xC000));
    assert!(comment.unwrap().contains("AccessionNumber"));
    assert!(!sim.contains_instance("1.2.3.1.1"));
    let stats = sim.stats();
    assert_eq!(stats.routes["HTM_ORTHO"].stores.rejected_by_rules, 1);
    assert_eq!(stats.stores.with_status(Status(0xC000)), 1);
}

#[test]
fn every_stored_instance_is_listed_study_by_study_in_order_of_arrival() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    for (study, series, sop) in [
        ("2.1", "2.1.1", "2.1.1.1"),
        ("2.2", "2.2.1", "2.2.1.1"),
        ("2.1", "2.1.2", "2.1.2.1"),
        ("2.1", "2.1.1", "2.1.1.2"),
    ] {
        let obj = instance(study, series, sop, "ES", "Colon");
        assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    }
    client.release();
    let listed: Vec<(String, String)> = sim
        .stored_instances()
        .into_iter()
        .map(|i| {
            assert!(i.dataset.is_some(), "full mode keeps the data set");
            (i.study_instance_uid, i.sop_instance_uid)
        })
        .collect();
    let expected = [
        ("2.1", "2.1.1.1"),
        ("2.1", "2.1.1.2"),
        ("2.1", "2.1.2.1"),
        ("2.2", "2.2.1.1"),
    ]
    .map(|(study, sop)| (study.to_string(), sop.to_string()));
    assert_eq!(listed, expected);
}

#[test]
fn a_duplicate_is_acknowledged_but_stored_once_by_default() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    let obj = instance("1.9", "1.9.1", "1.9.1.1", "ES", "Colon");
    assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    client.release();
    let stats = sim.stats();
    assert_eq!(stats.instances_in_store, 1);
    assert_eq!(stats.stores.duplicates_kept, 1);
    assert_eq!(
        stats.stores.acknowledged(),
        stats.stores.stored + stats.stores.duplicates_kept
    );
}

#[test]
fn a_duplicate_is_refused_with_the_configured_status() {
    let config = SimulatorConfig::with_rules(rules(
        "[[route]]\nname = \"R\"\ncalled_ae_title = \"ROUTER\"\nduplicates = { policy = \"reject\", status = 0xA770 }\n",
    ));
    let sim = Simulator::start(config).unwrap();
    let mut client = connect(sim.addr(), "ROUTER").unwrap();
    let obj = instance("1.9", "1.9.1", "1.9.1.1", "CT", "x");
    assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    assert_eq!(client.store(&obj).unwrap().0, Status(0xA770));
}

#[test]
fn a_study_stays_invisible_to_c_find_until_it_is_stable() {
    let config = SimulatorConfig::with_rules(rules(
        "[settings]\nquery_ae_title = \"Q\"\n[[route]]\nname = \"R\"\ncalled_ae_title = \"ROUTER\"\nstable_study_seconds = 0.4\n",
    ));
    let sim = Simulator::start(config).unwrap();
    let mut client = connect(sim.addr(), "ROUTER").unwrap();
    client
        .store(&instance("1.5", "1.5.1", "1.5.1.1", "CT", "x"))
        .unwrap();
    let study_query = query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, "1.5")]);
    let (now, _) = client.find(STUDY_ROOT, &study_query).unwrap();
    assert!(now.is_empty());
    assert!(!sim.studies()[0].visible);
    std::thread::sleep(Duration::from_millis(500));
    let (later, _) = client.find(STUDY_ROOT, &study_query).unwrap();
    assert_eq!(later.len(), 1);
}

#[test]
fn c_cancel_ends_a_c_find_with_fe00() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    for i in 0..5 {
        client
            .store(&instance(
                &format!("1.7.{i}"),
                &format!("1.7.{i}.1"),
                &format!("1.7.{i}.1.1"),
                "ES",
                "Colon",
            ))
            .unwrap();
    }
    sim.set_faults(FaultPlan {
        response_delay: Some(ResponseDelay::Fixed(Duration::from_millis(100))),
        ..FaultPlan::default()
    });
    let pc = client.context(STUDY_ROOT).unwrap();
    let rq = dimse::Command::c_find_rq(77, STUDY_ROOT, dimse::Priority::Medium);
    dimse::send_message(
        &mut client.association,
        pc,
        &rq,
        Some(&encode(&query(
            "STUDY",
            &[(tags::STUDY_INSTANCE_UID, VR::UI, "")],
        ))),
    )
    .unwrap();
    dimse::send_message(
        &mut client.association,
        pc,
        &dimse::Command::c_cancel_rq(77),
        None,
    )
    .unwrap();
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
    assert_eq!(sim.stats().finds.cancelled, 1);
}

#[test]
fn every_third_store_gets_the_override_status_and_is_discarded() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        status_override: Some(StatusOverride {
            status: Status(0xA700),
            selection: StoreSelection::EveryNth(3),
        }),
        ..FaultPlan::default()
    });
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    let statuses: Vec<u16> = (0..6)
        .map(|i| {
            client
                .store(&instance("1.8", "1.8.1", &format!("1.8.1.{i}"), "ES", "x"))
                .unwrap()
                .0
                .0
        })
        .collect();
    assert_eq!(statuses, [0, 0, 0xA700, 0, 0, 0xA700]);
    assert_eq!(sim.stats().instances_in_store, 4);
}

#[test]
fn the_association_is_aborted_after_n_stores() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        abort_after_stores: Some(2),
        ..FaultPlan::default()
    });
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    assert_eq!(
        client
            .store(&instance("1.6", "1.6.1", "1.6.1.1", "ES", "x"))
            .unwrap()
            .0,
        Status::SUCCESS
    );
    assert_eq!(
        client
            .store(&instance("1.6", "1.6.1", "1.6.1.2", "ES", "x"))
            .unwrap()
            .0,
        Status::SUCCESS
    );
    assert!(
        client
            .store(&instance("1.6", "1.6.1", "1.6.1.3", "ES", "x"))
            .is_err()
    );
    // Both acknowledged stores are kept.
    assert_eq!(sim.stats().instances_in_store, 2);
    assert!(eventually(|| sim.stats().associations.aborted_by_fault == 1));
}

#[test]
fn a_stalled_store_is_never_answered_and_not_stored() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        stall_stores: true,
        ..FaultPlan::default()
    });
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    client
        .association
        .inner_stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let err = client
        .store(&instance("1.4", "1.4.1", "1.4.1.1", "ES", "x"))
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(sim.stats().stores.stalled, 1);
    assert_eq!(sim.stats().instances_in_store, 0);
}

#[test]
fn an_idle_association_is_aborted_after_the_idle_timeout() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        idle_timeout: Some(Duration::from_millis(200)),
        ..FaultPlan::default()
    });
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    assert_eq!(client.echo().unwrap(), Status::SUCCESS);
    std::thread::sleep(Duration::from_millis(500));
    assert!(client.echo().is_err());
    assert!(eventually(|| sim.stats().associations.aborted_by_fault == 1));
}

#[test]
fn refused_associations_come_back_after_the_refusal_period() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.refuse_associations_for(Duration::from_millis(300));
    let rj = rejection(connect(sim.addr(), "LB-HTM-GI"));
    assert_eq!(rj.result, AssociationRJResult::Transient);
    std::thread::sleep(Duration::from_millis(400));
    connect(sim.addr(), "LB-HTM-GI").unwrap().release();
}

#[test]
fn a_response_delay_slows_every_answer() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    sim.set_faults(FaultPlan {
        response_delay: Some(ResponseDelay::Fixed(Duration::from_millis(150))),
        ..FaultPlan::default()
    });
    let mut client = connect(sim.addr(), "LB-HTM-GI").unwrap();
    let start = std::time::Instant::now();
    client.echo().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(150));
}

#[test]
fn uncompressed_only_refuses_a_jpeg_context() {
    let config = SimulatorConfig {
        transfer_syntaxes: simulator::TransferSyntaxPolicy::UncompressedOnly,
        ..SimulatorConfig::default()
    };
    let sim = Simulator::start(config).unwrap();
    let association = dicom_ul::ClientAssociationOptions::new()
        .called_ae_title("LB-HTM-GI")
        .with_presentation_context(SECONDARY_CAPTURE, vec![uids::JPEG_BASELINE8_BIT])
        .with_presentation_context(uids::VERIFICATION, vec![uids::IMPLICIT_VR_LITTLE_ENDIAN])
        .read_timeout(Duration::from_secs(5))
        .establish(sim.addr())
        .unwrap();
    let contexts = association.presentation_contexts();
    assert_eq!(contexts.len(), 1);
    assert_eq!(contexts[0].abstract_syntax, uids::VERIFICATION);
    association.release().unwrap();

    // The default accepts it as it is.
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let association = dicom_ul::ClientAssociationOptions::new()
        .called_ae_title("LB-HTM-GI")
        .with_presentation_context(SECONDARY_CAPTURE, vec![uids::JPEG_BASELINE8_BIT])
        .read_timeout(Duration::from_secs(5))
        .establish(sim.addr())
        .unwrap();
    assert_eq!(
        association.presentation_contexts()[0].transfer_syntax,
        uids::JPEG_BASELINE8_BIT
    );
    association.release().unwrap();
}

#[test]
fn the_query_ae_does_not_offer_storage() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let client = connect(sim.addr(), "LB-QUERY").unwrap();
    assert!(client.context(SECONDARY_CAPTURE).is_none());
    assert!(client.context(STUDY_ROOT).is_some());
    client.release();
}

#[test]
fn forwarding_delivers_every_acknowledged_instance_through_refusals_and_failures() {
    // The destination refuses associations for a while, then fails every other store.
    let destination = Simulator::start(SimulatorConfig::with_rules(rules(
        "[[route]]\nname = \"PACS\"\ncalled_ae_title = \"PACS\"\n[faults]\nrefuse_associations_seconds = 0.5\nstatus_override = { status = 0xA700, every_nth = 2 }\n",
    )))
    .unwrap();
    let router_rules = format!(
        "[[route]]\nname = \"R\"\ncalled_ae_title = \"ROUTER\"\ndeliver_to = \"both\"\n[route.forward]\nhost = \"127.0.0.1\"\nport = {}\ncalled_ae_title = \"PACS\"\nretry_initial_ms = 50\nretry_max_ms = 200\n",
        destination.addr().port()
    );
    let router = Simulator::start(SimulatorConfig {
        store_mode: StoreMode::Load,
        ..SimulatorConfig::with_rules(rules(&router_rules))
    })
    .unwrap();
    let mut client = connect(router.addr(), "ROUTER").unwrap();
    for i in 0..10 {
        assert_eq!(
            client
                .store(&instance("2.1", "2.1.1", &format!("2.1.1.{i}"), "CT", "x"))
                .unwrap()
                .0,
            Status::SUCCESS
        );
    }
    client.release();
    // Acknowledged means stored here and queued or delivered there.
    let stats = router.stats();
    assert_eq!(stats.forwarding.enqueued, 10);
    assert_eq!(stats.forwarding.delivered + stats.forwarding.queued(), 10);
    assert!(
        router.wait_for_forwarding(Duration::from_secs(20)),
        "{:?}",
        router.stats().forwarding
    );
    let stats = router.stats();
    assert_eq!(stats.forwarding.delivered, 10);
    assert!(stats.forwarding.failed_attempts > 0);
    for i in 0..10 {
        assert!(
            destination.contains_instance(&format!("2.1.1.{i}")),
            "2.1.1.{i} missing"
        );
    }
}

#[test]
fn instances_still_queued_at_shutdown_are_counted_not_lost() {
    // Nothing listens at the destination: forwarding can only fail.
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let router_rules = format!(
        "[[route]]\nname = \"R\"\ncalled_ae_title = \"ROUTER\"\ndeliver_to = \"forward\"\n[route.forward]\nhost = \"127.0.0.1\"\nport = {closed_port}\ncalled_ae_title = \"PACS\"\nretry_initial_ms = 20\n"
    );
    let router = Simulator::start(SimulatorConfig::with_rules(rules(&router_rules))).unwrap();
    let mut client = connect(router.addr(), "ROUTER").unwrap();
    for i in 0..3 {
        assert_eq!(
            client
                .store(&instance("3.1", "3.1.1", &format!("3.1.1.{i}"), "CT", "x"))
                .unwrap()
                .0,
            Status::SUCCESS
        );
    }
    client.release();
    std::thread::sleep(Duration::from_millis(200));
    let stats = router.shutdown();
    assert_eq!(stats.forwarding.queued(), 3);
    assert_eq!(stats.forwarding.delivered, 0);
    assert!(stats.forwarding.failed_attempts >= 1);
    assert_eq!(
        stats.instances_in_store, 0,
        "forward-only routes do not store"
    );
}

#[test]
fn shutdown_ends_open_associations_and_stops_listening() {
    let sim = Simulator::start(SimulatorConfig::default()).unwrap();
    let addr = sim.addr();
    let mut client = connect(addr, "LB-HTM-GI").unwrap();
    client.echo().unwrap();
    let stats = sim.shutdown();
    assert_eq!(stats.associations.closed_by_shutdown, 1);
    assert!(client.echo().is_err());
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn load_mode_indexes_without_keeping_data_sets() {
    let sim = Simulator::start(SimulatorConfig {
        store_mode: StoreMode::Load,
        ..SimulatorConfig::default()
    })
    .unwrap();
    let mut client = connect(sim.addr(), "LB-HTM-OPH").unwrap();
    client
        .store(&instance("4.1", "4.1.1", "4.1.1.1", "OPT", "Macula cube"))
        .unwrap();
    let stored = sim.stored_instance("4.1.1.1").unwrap();
    assert!(stored.dataset.is_none());
    assert_eq!(stored.attributes["StudyDescription"], "OCT Macula");
    assert_eq!(sim.studies()[0].modalities, ["OPT"]);
}
