//! The old `test_calling_aet_routing.py`: every route's called AE title accepts images and
//! delivers them; a called AE title the router does not know is refused.
//! `tests-suite/expectations/calling_aet_routing.toml` (or the one in `EXPECTATIONS_DIR`)
//! says what to send per route, and how the router refuses an unknown called AE title.

use cfind::CFindClient;
use config::TestConfig;
use loader::synth::Modality;
use rstest::rstest;
use tests_suite::expectations::{CalledAeRefusal, calling_aet_routing, pairs, route_delivery};
use tests_suite::fixtures::*;
use tests_suite::record::TestReport;
use tests_suite::routing;

fn deliver_through(
    report: &mut TestReport,
    config: &TestConfig,
    cfind: &CFindClient,
    route: &config::Route,
    modality: Modality,
    send: &[(&str, &str)],
    expect_study: &std::collections::BTreeMap<String, String>,
) {
    let mut factory = test_dicom_with_attributes();
    let (_, object) = factory.create(modality, send);
    let sender = routing::sender_for_route(config, route);
    let echo = sender
        .ping()
        .unwrap_or_else(|e| panic!("{} does not answer C-ECHO: {e}", route.called_ae_title));
    assert!(echo.status.is_delivered(), "C-ECHO status {}", echo.status);
    // With DICOM_TLS on, every association of the run must really be secured.
    if config.security.tls.is_some() {
        let session = echo.tls_session.as_ref().unwrap_or_else(|| {
            panic!(
                "DICOM_TLS is on but the association with {} was plaintext",
                route.called_ae_title
            )
        });
        report.figure("TLS", session);
    }

    routing::send_expecting_delivery(&sender, route, &object);
    routing::wait_for_study(cfind, &routing::study_uid(&object), expect_study);
    report.figure(&route.name, &route.called_ae_title);
}

fn run_route(mut report: TestReport, config: &TestConfig, cfind: &CFindClient, name: &str) {
    let entry = match route_delivery(config, name) {
        Ok(entry) => entry,
        Err(reason) => return report.skip(reason),
    };
    let route = match routing::route(config, &entry.name) {
        Ok(route) => route,
        Err(reason) => return report.skip(reason),
    };
    let send = pairs(&entry.send);
    deliver_through(
        &mut report,
        config,
        cfind,
        route,
        entry.modality.0,
        &send,
        &entry.expect_study,
    );
}

include!(concat!(env!("OUT_DIR"), "/calling_aet_routing_cases.rs"));

#[rstest]
fn every_configured_route_accepts_and_delivers(
    mut report: TestReport,
    perf_config: &TestConfig,
    cfind_client: CFindClient,
) {
    if perf_config.routes.is_empty() {
        return report.skip("no route configured (REMOTE_AE_<NAME>/LOCAL_AE_<NAME>)");
    }
    for route in &perf_config.routes {
        deliver_through(
            &mut report,
            perf_config,
            &cfind_client,
            route,
            Modality::Ct,
            &[],
            &Default::default(),
        );
    }
}

#[rstest]
fn unknown_called_ae_title_is_rejected(
    mut report: TestReport,
    perf_config: &TestConfig,
    cfind_client: CFindClient,
) {
    let expectations = match calling_aet_routing(perf_config) {
        Ok(expectations) => expectations,
        Err(reason) => return report.skip(reason),
    };
    let unknown = expectations.unknown_called_ae_title;
    let sender = routing::sender_with_titles(
        perf_config,
        perf_config.endpoint.calling_ae_title.as_str(),
        &unknown,
    );
    report.figure(
        "expected refusal",
        match expectations.unknown_called_ae_refusal {
            CalledAeRefusal::Association => "association rejected",
            CalledAeRefusal::Store => "every C-STORE refused",
        },
    );
    if expectations.unknown_called_ae_refusal == CalledAeRefusal::Store {
        return refused_at_every_store(&mut report, perf_config, &cfind_client, &sender);
    }

    let result = sender.ping();

    match result {
        Err(sender::SenderError::Rejected { description, .. }) => {
            report.figure("rejection", &description);
            assert!(
                description.contains("called AE title not recognized"),
                "rejected, but not for the called AE title: {description}"
            );
        }
        Err(other) => panic!("expected an association rejection, got: {other}"),
        Ok(echo) => panic!("the router accepted unknown called AE title {unknown}: {echo:?}"),
    }
}

/// A router that cannot refuse the association (Orthanc) must refuse the image instead:
/// an image every route accepts (a plain CT, as `every_configured_route_accepts_and_delivers`
/// sends) is refused with a failure status and never reaches the destination.
fn refused_at_every_store(
    report: &mut TestReport,
    config: &TestConfig,
    cfind: &CFindClient,
    sender: &sender::DicomSender,
) {
    let mut factory = test_dicom_with_attributes();
    let (_, object) = factory.create(Modality::Ct, &[]);

    let outcome = match sender.send_dataset(&object) {
        Ok(outcome) => outcome,
        Err(sender::SenderError::Rejected { description, .. }) => panic!(
            "the expectations say this router accepts the association and refuses each \
             C-STORE, but it rejected the association: {description} (set \
             unknown_called_ae_refusal = \"association\")"
        ),
        Err(other) => {
            panic!("C-STORE to an unknown called AE title failed before any status: {other}")
        }
    };

    report.figure(
        "status",
        outcome
            .status
            .map_or_else(|| "none".to_string(), |s| s.to_string()),
    );
    routing::assert_refused_and_absent(config, cfind, &outcome, &routing::study_uid(&object), None);
}
