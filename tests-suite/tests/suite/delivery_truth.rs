//! Delivery truth at the destination: the sink the router delivers to sees what C-FIND
//! cannot. A router that answers success and drops an instance, delivers it twice,
//! flips bytes of its pixel data or rewrites an attribute no rule names is caught, with
//! the instance named; a clean router over every sample shows zero differences (no
//! false alarm).
//!
//! The faults are the embedded simulator's (its route forwarding to the sink); against
//! a remote router (`COMPASS_HOST` set) those tests skip, as its faults cannot be
//! switched on from here.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use campaign::LoadTarget;
use config::{TestConfig, UidStrategy, VerifyAt};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;
use dimse::Attribute;
use loader::synth::{Encoding, InstanceBuilder, Modality, SynthError};
use rstest::rstest;
use sender::{LoadPlan, PreparedInstance};
use simulator::{AttributeAlteration, FaultPlan, ResponseDelay, SilentFaultKind};
use sink::{DeliveryReport, DifferenceKind, ProblemKind};
use tests_suite::fixtures::*;
use tests_suite::load;
use tests_suite::record::TestReport;

/// How long an instance not at the sink after the last send still counts as in transit:
/// short, as a dropped instance is awaited this long.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(3);

/// An embedded target whose route forwards to a sink of its own, with `faults` on.
fn faulty_router(session: &'static Session, faults: FaultPlan) -> LoadTarget {
    load::faulty_target(session, faults, |config| {
        config.sink.verify_at = VerifyAt::SINK;
        config.sink.delivery_timeout = DELIVERY_TIMEOUT;
    })
}

/// Sends `plan` through `target` and takes the sink's verdict.
fn delivered(report: &mut TestReport, target: &LoadTarget, plan: &LoadPlan) -> DeliveryReport {
    let run = load::run(report, target, plan);
    let verified = load::verify_and_attach(report, target, &run);
    let at_sink = verified.at_sink.expect("the target has a sink");
    assert!(at_sink.consistent, "{}", at_sink.counts.invariant());
    at_sink
}

/// The SOP Instance UIDs the simulator says it hit with `kind`.
fn hit_by(target: &LoadTarget, kind: SilentFaultKind) -> BTreeSet<String> {
    let faults = target.simulator.as_ref().unwrap().silent_faults();
    let hit: BTreeSet<String> = faults
        .into_iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.sop_instance_uid)
        .collect();
    assert!(!hit.is_empty(), "the fault {kind:?} hit no instance");
    hit
}

/// The SOP Instance UIDs the sink names with a problem `kind`.
fn named(report: &DeliveryReport, kind: &str) -> BTreeSet<String> {
    report
        .problems_named(kind)
        .into_iter()
        .map(|p| p.sop_instance_uid.clone())
        .collect()
}

/// The check the load tests and `dicom-auto run` apply fails, naming one of `uids`.
fn assert_check_fails_naming(report: &DeliveryReport, uids: &BTreeSet<String>) {
    let check = campaign::checks::delivery_at_sink(report);
    assert!(!check.passed, "{}", check.message);
    assert!(
        uids.iter().any(|uid| check.message.contains(uid.as_str())),
        "the failure names none of {uids:?}: {}",
        check.message
    );
}

fn skip_unless_embedded(report: &mut TestReport, session: &Session) -> bool {
    load::skip_unless_embedded(report, session, "silent router faults")
}

#[rstest]
fn a_clean_router_delivers_every_sample_unaltered_with_fresh_uids_and_as_is(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    for uids in [UidStrategy::Fresh, UidStrategy::AsIs] {
        let target = faulty_router(session, FaultPlan::default());
        let at_sink = delivered(&mut report, &target, &load::each_sample_once(session, uids));
        assert!(
            at_sink.clean,
            "{uids:?}: {}",
            campaign::checks::delivery_at_sink(&at_sink).message
        );
        assert_eq!(
            at_sink.counts.delivered,
            session.samples.paths().len() as u64,
            "{uids:?}"
        );
        // Every delivery has its transit measured, unless it overtook the router's
        // answer to its send (the simulator forwards on another thread, so on a busy
        // machine a copy can arrive first): then there is no transit to measure.
        assert_eq!(
            at_sink.transit_histogram.len() + at_sink.counts.arrived_before_response,
            at_sink.counts.delivered,
            "{uids:?}"
        );
    }
}

#[rstest]
fn a_router_that_drops_every_fifth_instance_while_answering_success_is_caught(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        drop_forward_every_nth: Some(5),
        ..FaultPlan::default()
    };
    let target = faulty_router(session, faults);
    let at_sink = delivered(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    let dropped = hit_by(&target, SilentFaultKind::Dropped);
    assert_eq!(named(&at_sink, "undelivered"), dropped);
    assert_eq!(at_sink.counts.undelivered, dropped.len() as u64);
    assert_eq!(at_sink.counts.refused, 0, "the router answered success");
    assert_check_fails_naming(&at_sink, &dropped);
}

#[rstest]
fn a_router_that_delivers_an_instance_twice_is_caught(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        duplicate_forward_every_nth: Some(4),
        ..FaultPlan::default()
    };
    let target = faulty_router(session, faults);
    let at_sink = delivered(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    let duplicated = hit_by(&target, SilentFaultKind::Duplicated);
    assert_eq!(named(&at_sink, "duplicated"), duplicated);
    assert_eq!(at_sink.counts.duplicate_arrivals, duplicated.len() as u64);
    assert_eq!(at_sink.counts.undelivered, 0);
    assert_check_fails_naming(&at_sink, &duplicated);
}

#[rstest]
fn a_router_that_flips_bytes_of_pixel_data_is_caught(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        corrupt_pixels_every_nth: Some(3),
        ..FaultPlan::default()
    };
    let target = faulty_router(session, faults);
    let at_sink = delivered(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    let corrupted = hit_by(&target, SilentFaultKind::PixelsCorrupted);
    let altered = named(&at_sink, "altered");
    assert_eq!(altered, corrupted);
    for problem in at_sink.problems_named("altered") {
        let ProblemKind::Altered { differences } = &problem.kind else {
            unreachable!("named altered");
        };
        assert!(
            differences.iter().any(|d| matches!(
                d.kind,
                DifferenceKind::PixelData
                    | DifferenceKind::LossyPixels
                    | DifferenceKind::PixelsNotDecodable
            ) && d.path == "PixelData"),
            "{}: {differences:?}",
            problem.sop_instance_uid
        );
    }
    assert_check_fails_naming(&at_sink, &corrupted);
}

#[rstest]
fn a_router_that_rewrites_an_attribute_no_rule_names_is_caught(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        alter_attribute: Some(AttributeAlteration {
            every_nth: 2,
            attribute: "InstitutionName".parse::<Attribute>().unwrap(),
            value: Some("ALTERED BY ROUTER".into()),
        }),
        ..FaultPlan::default()
    };
    let target = faulty_router(session, faults);
    let at_sink = delivered(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    let rewritten = hit_by(&target, SilentFaultKind::AttributeAltered);
    assert_eq!(named(&at_sink, "altered"), rewritten);
    let first = at_sink.first_differences(usize::MAX);
    assert!(
        first.iter().all(|(_, d)| d.path == "InstitutionName"
            && d.received.as_deref() == Some("ALTERED BY ROUTER")),
        "{first:?}"
    );
    assert_check_fails_naming(&at_sink, &rewritten);
}

#[rstest]
fn a_router_that_holds_instances_shows_it_in_the_transit_time(
    mut report: TestReport,
    session: &'static Session,
) {
    const HELD: Duration = Duration::from_millis(400);
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let faults = FaultPlan {
        forward_delay: Some(ResponseDelay::Fixed(HELD)),
        ..FaultPlan::default()
    };
    let target = faulty_router(session, faults);
    let at_sink = delivered(
        &mut report,
        &target,
        &load::each_sample_once(session, UidStrategy::Fresh),
    );
    assert!(
        at_sink.clean,
        "{}",
        campaign::checks::delivery_at_sink(&at_sink).message
    );
    let fastest = at_sink.transit_histogram.min().expect("transit recorded");
    // The hold starts when the router queues the instance, just before it answers.
    assert!(
        fastest >= HELD - Duration::from_millis(50),
        "fastest transit {fastest:?}, the router held each instance {HELD:?}"
    );
}

/// Every modality in every encoding the generator writes (native explicit and implicit
/// VR, RLE, JPEG; multi-frame OCT and ultrasound), each with a private sequence and a
/// private binary element, plus one in Explicit VR Big Endian.
fn varied_instances() -> Vec<Arc<PreparedInstance>> {
    let mut objects = Vec::new();
    for modality in Modality::ALL {
        for encoding in Encoding::ALL {
            match InstanceBuilder::new(modality).encoding(encoding).build() {
                Ok(object) => objects.push(object),
                // JPEG Baseline is 8-bit only: a 16-bit CT cannot be written in it.
                Err(SynthError::UnsupportedEncoding { .. }) => {}
                Err(e) => panic!("{modality:?} {encoding:?}: {e}"),
            }
        }
    }
    let mut big_endian = InstanceBuilder::new(Modality::Ct).build().unwrap();
    big_endian
        .meta_mut()
        .set_transfer_syntax(&dicom_transfer_syntax_registry::entries::EXPLICIT_VR_BIG_ENDIAN);
    objects.push(big_endian);
    objects
        .into_iter()
        .map(|mut object| {
            let mut item = InMemDicomObject::new_empty();
            item.put_str(Tag(0x0029, 0x0010), VR::LO, "ACME IMAGING");
            item.put_str(Tag(0x0029, 0x1001), VR::LO, "inside a private item");
            object.put_str(Tag(0x0029, 0x0010), VR::LO, "ACME IMAGING");
            object.put(DataElement::new(
                Tag(0x0029, 0x1010),
                VR::SQ,
                DataSetSequence::from(vec![item]),
            ));
            object.put(DataElement::new(
                Tag(0x0029, 0x1020),
                VR::OB,
                PrimitiveValue::U8((0u8..=255).collect()),
            ));
            Arc::new(
                PreparedInstance::from_object(&object, UidStrategy::Fresh)
                    .unwrap_or_else(|e| panic!("{e}")),
            )
        })
        .collect()
}

#[rstest]
fn a_clean_router_shows_no_difference_over_varied_encodings_private_sequences_and_multi_frame(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let instances = varied_instances();
    let count = instances.len() as u64;
    let target = faulty_router(session, FaultPlan::default());
    let at_sink = delivered(
        &mut report,
        &target,
        &LoadPlan::new(instances).concurrency(2),
    );
    assert!(
        at_sink.clean,
        "{}",
        campaign::checks::delivery_at_sink(&at_sink).message
    );
    assert_eq!(at_sink.counts.delivered, count);
    assert_eq!(at_sink.counts.refused, 0);
}

#[rstest]
fn the_shipped_delivery_expectations_allow_exactly_what_the_embedded_rules_change(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let built_in = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("expectations");
    let mut config = session.config.clone();
    config.integration.expectations_dir = Some(built_in);
    let rules = campaign::embedded::embedded_rules(&config).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        config.routes.len() >= 3,
        "the embedded target has the three built-in routes: {:?}",
        config.routes
    );
    let attributes = |policy: sink::RoutePolicy| -> BTreeSet<String> {
        policy
            .allowed_changes
            .iter()
            .map(|c| c.attribute.to_string())
            .collect()
    };
    for route in &config.routes {
        let called = route.called_ae_title.as_str();
        let from_file =
            campaign::delivery::policy_for(&config, called).unwrap_or_else(|e| panic!("{e}"));
        let from_rules = campaign::delivery::route_policy(rules.route_for(called));
        assert_eq!(
            attributes(from_file),
            attributes(from_rules),
            "route {} ({called}): expectations/delivery.toml against the simulator's rules",
            route.name
        );
    }
}

/// A route of the embedded router that gives every instance a new SOP Instance UID (as
/// a router de-identifying on the way does), with `also` appended to its morphs.
fn uid_replacing_router(
    session: &'static Session,
    dir: &std::path::Path,
    also: &str,
) -> (LoadTarget, TestConfig) {
    let default_rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/simulator/rules/default.toml");
    let rules = dir.join("reuid.toml");
    let route = format!(
        r#"
[[route]]
name = "REUID"
called_ae_title = "LB-REUID"
deliver_to = "store"

[[route.morph]]
name = "new SOP Instance UID"
actions = [{{ append = "SOPInstanceUID", value = ".9" }}]
{also}
"#
    );
    std::fs::write(
        &rules,
        std::fs::read_to_string(default_rules).unwrap() + &route,
    )
    .unwrap();
    let mut config: TestConfig = session.config.clone();
    config.integration.simulator_rules = Some(rules);
    config.endpoint.called_ae_title = dimse::AeTitle::new("LB-REUID").unwrap();
    config.sending.uid_strategy = UidStrategy::Fresh;
    config.sink.verify_at = VerifyAt::SINK;
    config.sink.match_by = config::DeliveryMatch::Trace;
    config.sink.delivery_timeout = DELIVERY_TIMEOUT;
    let target = LoadTarget::new(&config).unwrap_or_else(|e| panic!("{e}"));
    (target, config)
}

#[rstest]
fn a_router_that_replaces_uids_is_still_matched_send_by_send_through_the_trace(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (target, config) = uid_replacing_router(session, dir.path(), "");
    let prepared = campaign::load::prepare(&config, &session.samples.paths())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(prepared.instances.iter().all(|i| i.is_traced()));
    let count = prepared.instances.len() as u64;
    let plan = LoadPlan::new(prepared.instances).concurrency(2);
    let run = load::run(&mut report, &target, &plan);
    let at_sink = load::verify_and_attach(&mut report, &target, &run)
        .at_sink
        .expect("the target has a sink");
    assert!(
        at_sink.clean && at_sink.consistent,
        "{}",
        campaign::checks::delivery_at_sink(&at_sink).message
    );
    assert_eq!(at_sink.counts.delivered, count);
    assert_eq!(at_sink.counts.trace_stripped, 0);
    // The router did replace them: the first send's UID is not in its store, its
    // replacement is.
    let root: sender::UidRoot = run.uid_root.as_deref().unwrap().parse().unwrap();
    let first = root.uid(sender::UidLevel::Instance, 0);
    let router = target.simulator.as_ref().unwrap();
    assert!(!router.contains_instance(first.as_str()));
    assert!(router.contains_instance(&format!("{}.9", first.as_str())));
}

#[rstest]
fn a_router_that_replaces_uids_and_strips_the_trace_is_reported(
    mut report: TestReport,
    session: &'static Session,
) {
    if skip_unless_embedded(&mut report, session) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let strip = r#"
[[route.morph]]
name = "strip private elements"
actions = [{ remove = "(0099,1001)" }]
"#;
    let (target, config) = uid_replacing_router(session, dir.path(), strip);
    let prepared = campaign::load::prepare(&config, &session.samples.paths())
        .unwrap_or_else(|e| panic!("{e}"));
    let count = prepared.instances.len() as u64;
    let at_sink = delivered(
        &mut report,
        &target,
        &LoadPlan::new(prepared.instances).concurrency(2),
    );
    // Neither the trace nor the new UID finds a send: every send is undelivered, every
    // arrival unexpected, and each stripped trace is said.
    assert_eq!(at_sink.counts.trace_stripped, count);
    assert_eq!(at_sink.counts.undelivered, count);
    assert_eq!(at_sink.counts.unexpected, count);
    assert!(!campaign::checks::delivery_at_sink(&at_sink).passed);
}
