//! The silent forwarding faults end to end: a router simulator forwards into a
//! destination simulator, and the destination's store shows what a bad router did
//! while every sender still got a success.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dimse::{Attribute, Status};
use simulator::{
    AttributeAlteration, FaultPlan, Rules, SilentFault, SilentFaultKind, Simulator,
    SimulatorConfig, SimulatorHandle,
};

/// Generous: only a broken forwarder takes this long.
const FORWARDING_WAIT: Duration = Duration::from_secs(20);

fn rules(toml: &str) -> Rules {
    Rules::from_toml_str(toml, "test.toml").unwrap()
}

/// A destination and a router (store and forward) into it, with these `[faults]`
/// lines on the router.
fn router_and_destination(faults: &str) -> (SimulatorHandle, SimulatorHandle) {
    let destination = Simulator::start(SimulatorConfig::with_rules(rules(
        "[[route]]\nname = \"PACS\"\ncalled_ae_title = \"PACS\"\n",
    )))
    .unwrap();
    let router_rules = format!(
        "[faults]\n{faults}\n[[route]]\nname = \"R\"\ncalled_ae_title = \"ROUTER\"\ndeliver_to = \"both\"\n[route.forward]\nhost = \"127.0.0.1\"\nport = {}\ncalled_ae_title = \"PACS\"\nretry_initial_ms = 50\nretry_max_ms = 200\n",
        destination.addr().port()
    );
    let router = Simulator::start(SimulatorConfig::with_rules(rules(&router_rules))).unwrap();
    (router, destination)
}

fn uid(prefix: &str, i: usize) -> String {
    format!("{prefix}.{i}")
}

/// Stores `objects` at the router, each acknowledged with success, and waits for
/// the forwarder to finish with them.
fn send_all(router: &SimulatorHandle, objects: &[InMemDicomObject]) {
    let mut client = connect(router.addr(), "ROUTER").unwrap();
    for obj in objects {
        assert_eq!(client.store(obj).unwrap().0, Status::SUCCESS);
    }
    client.release();
    assert!(
        router.wait_for_forwarding(FORWARDING_WAIT),
        "{:?}",
        router.stats().forwarding
    );
}

fn instances(prefix: &str, n: usize) -> Vec<InMemDicomObject> {
    (0..n)
        .map(|i| instance("9.1", "9.1.1", &uid(prefix, i), "OT", "x"))
        .collect()
}

fn silent(kind: SilentFaultKind, sop_instance_uid: String) -> SilentFault {
    SilentFault {
        kind,
        route: "R".into(),
        sop_instance_uid,
    }
}

fn pixels(sim: &SimulatorHandle, sop: &str) -> Vec<u8> {
    let stored = sim.stored_instance(sop).expect("stored");
    let dataset = stored.dataset.expect("full mode keeps data sets");
    dataset
        .get(tags::PIXEL_DATA)
        .expect("pixel data")
        .to_bytes()
        .unwrap()
        .into_owned()
}

fn dataset(sim: &SimulatorHandle, sop: &str) -> std::sync::Arc<InMemDicomObject> {
    sim.stored_instance(sop)
        .expect("stored")
        .dataset
        .expect("full mode keeps data sets")
}

#[test]
fn every_nth_dropped_instance_never_reaches_the_destination() {
    let (router, destination) = router_and_destination("drop_forward_every_nth = 2");
    send_all(&router, &instances("9.2", 5));
    for i in [0, 2, 4] {
        assert!(destination.contains_instance(&uid("9.2", i)), "{i} missing");
    }
    for i in [1, 3] {
        assert!(
            !destination.contains_instance(&uid("9.2", i)),
            "{i} arrived"
        );
        assert!(
            router.contains_instance(&uid("9.2", i)),
            "the router keeps it"
        );
    }
    let forwarding = router.stats().forwarding;
    assert_eq!(forwarding.enqueued, 5);
    assert_eq!(forwarding.delivered, 3);
    assert_eq!(forwarding.dropped_by_fault, 2);
    assert_eq!(forwarding.failed, 0);
    assert_eq!(forwarding.queued(), 0);
    assert!(router.failed_forwards().is_empty());
    assert_eq!(destination.stats().stores.received, 3);
    assert_eq!(
        router.silent_faults(),
        [
            silent(SilentFaultKind::Dropped, uid("9.2", 1)),
            silent(SilentFaultKind::Dropped, uid("9.2", 3)),
        ]
    );
}

#[test]
fn every_nth_duplicated_instance_is_stored_twice_at_the_destination() {
    let (router, destination) = router_and_destination("duplicate_forward_every_nth = 2");
    send_all(&router, &instances("9.3", 3));
    let received = destination.stats().stores;
    assert_eq!(received.received, 4, "3 instances, the second one twice");
    assert_eq!(received.duplicates_kept, 1);
    let forwarding = router.stats().forwarding;
    assert_eq!(forwarding.delivered, 3);
    assert_eq!(forwarding.duplicated_by_fault, 1);
    assert_eq!(
        router.silent_faults(),
        [silent(SilentFaultKind::Duplicated, uid("9.3", 1))]
    );
}

#[test]
fn corrupted_pixels_differ_at_the_destination_only() {
    let (router, destination) = router_and_destination("corrupt_pixels_every_nth = 2");
    let mut objects = instances("9.4", 4);
    // The 4th has no pixel data: selected, left alone, not recorded.
    objects[3].remove_element(tags::PIXEL_DATA);
    send_all(&router, &objects);
    let original = pixels(&router, &uid("9.4", 1));
    let corrupted = pixels(&destination, &uid("9.4", 1));
    assert_eq!(original, vec![7u8; 4096], "the router's own copy is intact");
    assert_eq!(corrupted.len(), original.len());
    assert_ne!(corrupted, original);
    assert_eq!(pixels(&destination, &uid("9.4", 0)), original);
    assert_eq!(pixels(&destination, &uid("9.4", 2)), original);
    assert!(
        dataset(&destination, &uid("9.4", 3))
            .get(tags::PIXEL_DATA)
            .is_none()
    );
    assert_eq!(router.stats().forwarding.corrupted_by_fault, 1);
    assert_eq!(
        router.silent_faults(),
        [silent(SilentFaultKind::PixelsCorrupted, uid("9.4", 1))]
    );
}

#[test]
fn an_altered_attribute_is_changed_or_removed_at_the_destination() {
    let (router, destination) = router_and_destination(
        "alter_attribute = { every_nth = 2, attribute = \"InstitutionName\", value = \"ALTERED\" }",
    );
    send_all(&router, &instances("9.5", 2));
    let altered = dataset(&destination, &uid("9.5", 1));
    assert_eq!(text(&altered, tags::INSTITUTION_NAME), "ALTERED");
    assert!(
        dataset(&destination, &uid("9.5", 0))
            .get(tags::INSTITUTION_NAME)
            .is_none()
    );
    assert!(
        dataset(&router, &uid("9.5", 1))
            .get(tags::INSTITUTION_NAME)
            .is_none(),
        "the router's own copy is intact"
    );

    // Without a value the attribute goes; a new plan counts from 1 again.
    router.set_faults(FaultPlan {
        alter_attribute: Some(AttributeAlteration {
            every_nth: 2,
            attribute: Attribute::parse("(0020,0013)").unwrap(),
            value: None,
        }),
        ..FaultPlan::default()
    });
    send_all(&router, &instances("9.6", 2));
    assert_eq!(
        text(
            &dataset(&destination, &uid("9.6", 0)),
            tags::INSTANCE_NUMBER
        ),
        "1"
    );
    assert!(
        dataset(&destination, &uid("9.6", 1))
            .get(tags::INSTANCE_NUMBER)
            .is_none()
    );
    assert_eq!(router.stats().forwarding.altered_by_fault, 2);
    assert_eq!(
        router.silent_faults(),
        [
            silent(SilentFaultKind::AttributeAltered, uid("9.5", 1)),
            silent(SilentFaultKind::AttributeAltered, uid("9.6", 1)),
        ]
    );
}

#[test]
fn a_forward_delay_holds_instances_without_delaying_the_response() {
    let (router, destination) = router_and_destination("forward_delay_ms = 3000");
    let mut client = connect(router.addr(), "ROUTER").unwrap();
    // The client's read timeout (10 s) bounds the response wait.
    assert_eq!(
        client.store(&instances("9.7", 1)[0]).unwrap().0,
        Status::SUCCESS
    );
    client.release();
    assert_eq!(router.stats().forwarding.queued(), 1, "held, not yet sent");
    assert!(router.wait_for_forwarding(FORWARDING_WAIT));
    assert!(destination.contains_instance(&uid("9.7", 0)));
    assert!(router.silent_faults().is_empty(), "delays are not listed");

    // A held instance does not hold up shutdown.
    router.set_faults(FaultPlan {
        forward_delay: Some(simulator::ResponseDelay::Fixed(Duration::from_secs(600))),
        ..FaultPlan::default()
    });
    let mut client = connect(router.addr(), "ROUTER").unwrap();
    assert_eq!(
        client.store(&instances("9.8", 1)[0]).unwrap().0,
        Status::SUCCESS
    );
    client.release();
    let started = Instant::now();
    let stats = router.shutdown();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(stats.forwarding.queued(), 1);
    assert!(!destination.contains_instance(&uid("9.8", 0)));
}
