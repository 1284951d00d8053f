//! The old `test_data_validation.py`: blank study dates, accession number formats and
//! study date rules. One test per case of `tests-suite/expectations/data_validation.toml`;
//! the cases themselves come from `EXPECTATIONS_DIR` when it is set.

use cfind::CFindClient;
use config::TestConfig;
use tests_suite::expectations::{Verdict, pairs, validation_case};
use tests_suite::fixtures::*;
use tests_suite::record::TestReport;
use tests_suite::routing;

fn run_case(mut report: TestReport, config: &TestConfig, cfind: &CFindClient, name: &str) {
    let case = match validation_case(config, name) {
        Ok(case) => case,
        Err(reason) => return report.skip(reason),
    };
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
            routing::assert_refused_and_absent(config, cfind, &outcome, &study, case.status_code());
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/data_validation_cases.rs"));
