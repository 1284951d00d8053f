//! The old `test_data_validation.py`: blank study dates, accession number formats and
//! study date rules. One test per case of `tests-suite/expectations/data_validation.toml`.

use std::time::Duration;

use cfind::CFindClient;
use config::TestConfig;
use tests_suite::expectations::{Verdict, data_validation, named, pairs};
use tests_suite::fixtures::*;
use tests_suite::record::TestReport;
use tests_suite::routing;

fn run_case(mut report: TestReport, config: &TestConfig, cfind: &CFindClient, name: &str) {
    let cases = data_validation().case;
    let case = named(&cases, name, |c| &c.name);
    let route = match routing::route(config, &case.route) {
        Ok(route) => route,
        Err(reason) => return report.skip(reason),
    };
    let mut factory = test_dicom_with_attributes();
    let attributes = pairs(&case.send);
    let removed: Vec<&str> = case.remove.iter().map(String::as_str).collect();
    let (_, object) = factory.create_without(case.modality.0, &attributes, &removed);
    let sender = routing::sender_for_route(config, route);

    let outcome = routing::send(&sender, &object);

    let study = routing::study_uid(&object);
    report.figure("route", &route.called_ae_title);
    report.figure(
        "status",
        outcome
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "none".into()),
    );
    match case.expect {
        Verdict::Stored => {
            assert!(
                outcome.is_delivered(),
                "{} refused the image: {:?} {}",
                route.called_ae_title,
                outcome.status,
                outcome.error.unwrap_or_default()
            );
            let today = routing::today();
            let expected = case
                .expect_study
                .iter()
                .map(|(k, v)| (k.clone(), v.replace("{today}", &today)))
                .collect();
            routing::wait_for_study(cfind, &study, &expected);
        }
        Verdict::Rejected => {
            let status = outcome.status.unwrap_or_else(|| {
                panic!(
                    "expected a refusal status, got no status: {}",
                    outcome.error.clone().unwrap_or_default()
                )
            });
            assert_eq!(
                status.class(),
                dimse::StatusClass::Failure,
                "expected the router to refuse the image, got {status}"
            );
            if let Some(code) = case.status_code() {
                assert_eq!(status.code(), code, "refusal status: got {status}");
            }
            // A refused image must not show up at the destination, not even later.
            let settle = config.cfind.initial_delay.max(Duration::from_millis(300));
            routing::assert_study_absent(cfind, &study, settle);
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/data_validation_cases.rs"));
