//! The old `test_data_validation.py`: blank study dates, accession number formats and
//! study date rules. One test per case of `tests-suite/expectations/data_validation.toml`.

use std::time::Duration;

use cfind::CFindClient;
use config::TestConfig;
use tests_suite::expectations::{Verdict, data_validation};
use tests_suite::fixtures::*;
use tests_suite::record::TestReport;
use tests_suite::routing;

fn today() -> String {
    // The simulator and the expectations agree on UTC; a real router's local date can
    // differ around midnight, which only matters for `{today}` expectations.
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default() as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}")
}

fn run_case(mut report: TestReport, config: &TestConfig, cfind: &CFindClient, name: &str) {
    let cases = data_validation().case;
    let case = cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("case {name} vanished from the expectations file"));
    let route = match routing::route(config, &case.route) {
        Ok(route) => route,
        Err(reason) => return report.skip(reason),
    };
    let mut factory = test_dicom_with_attributes();
    let attributes: Vec<(&str, &str)> = case
        .send
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
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
            let expected = case
                .expect_study
                .iter()
                .map(|(k, v)| (k.clone(), v.replace("{today}", &today())))
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
