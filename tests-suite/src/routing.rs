//! Sending one image through a route and checking what arrived: the steps the
//! routing, calling-AET and data-validation groups share.

use std::collections::BTreeMap;
use std::time::Duration;

use cfind::{CFindClient, Expectation, Key, Query, SeriesQuery, StudySighting};
use config::{Route, TestConfig};
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use sender::{DicomSender, SendOutcome};

/// The configured route called `name`, or the reason a test must skip: a remote router
/// whose `.env` does not define that route.
pub fn route<'a>(config: &'a TestConfig, name: &str) -> Result<&'a Route, String> {
    config.route(name).ok_or_else(|| {
        let known: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
        format!(
            "route {name} is not configured (set REMOTE_AE_{name} and LOCAL_AE_{name}); known routes: {}",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )
    })
}

/// A sender to the router, calling `route`'s called AE title with its calling AE title.
pub fn sender_for_route(config: &TestConfig, route: &Route) -> DicomSender {
    sender_with_titles(
        config,
        route.calling_ae_title.as_str(),
        route.called_ae_title.as_str(),
    )
}

/// A sender to the router with the given AE titles and the configured timeouts.
pub fn sender_with_titles(config: &TestConfig, calling: &str, called: &str) -> DicomSender {
    campaign::options::sender::sender_options(config)
        .unwrap_or_else(|e| panic!("sender options: {e}"))
        .calling_ae_title(calling)
        .called_ae_title(called)
        .build()
        .unwrap_or_else(|e| panic!("cannot build a sender: {e}"))
}

/// Sends `object` and returns the outcome; a failure to associate panics with the reason.
pub fn send(sender: &DicomSender, object: &DefaultDicomObject) -> SendOutcome {
    sender.send_dataset(object).unwrap_or_else(|e| {
        panic!(
            "C-STORE to {} failed before any status: {e}",
            sender.options().address()
        )
    })
}

/// Sends `object` through `route` and asserts the router accepted it (success or warning).
pub fn send_expecting_delivery(
    sender: &DicomSender,
    route: &Route,
    object: &DefaultDicomObject,
) -> SendOutcome {
    let outcome = send(sender, object);
    assert!(
        outcome.is_delivered(),
        "{} refused the image: {:?} {}",
        route.called_ae_title,
        outcome.status,
        outcome.error.clone().unwrap_or_default()
    );
    outcome
}

/// Today's date as `YYYYMMDD` (UTC, as the simulator's date rules use).
pub fn today() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}

/// The StudyInstanceUID of an object.
pub fn study_uid(object: &DefaultDicomObject) -> String {
    text(object, tags::STUDY_INSTANCE_UID)
}

/// The SeriesInstanceUID of an object.
pub fn series_uid(object: &DefaultDicomObject) -> String {
    text(object, tags::SERIES_INSTANCE_UID)
}

fn text(object: &DefaultDicomObject, tag: dicom_core::Tag) -> String {
    object
        .element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

/// Polls C-FIND until the study is visible with at least one instance and every
/// `expected` study attribute (keyword -> value); panics with the last answer on timeout.
pub fn wait_for_study(
    cfind: &CFindClient,
    study_instance_uid: &str,
    expected: &BTreeMap<String, String>,
) -> StudySighting {
    let mut expectation = Expectation::visible().at_least_instances(1);
    for (keyword, value) in expected {
        let key = Key::parse(keyword).unwrap_or_else(|e| panic!("expectation key: {e}"));
        expectation = expectation.with_attribute(key, value.clone());
    }
    cfind
        .wait_for_study(study_instance_uid, &expectation)
        .unwrap_or_else(|e| panic!("study {study_instance_uid} at {}: {e}", cfind.peer()))
}

/// Checks the series' attributes at the destination (keyword -> value).
pub fn assert_series_attributes(
    cfind: &CFindClient,
    study_instance_uid: &str,
    series_instance_uid: &str,
    expected: &BTreeMap<String, String>,
) {
    if expected.is_empty() {
        return;
    }
    let mut query = SeriesQuery::in_study(study_instance_uid);
    for keyword in expected.keys() {
        query = query.with_return_key(Key::parse(keyword).unwrap_or_else(|e| panic!("{e}")));
    }
    let result = cfind
        .find(&query)
        .unwrap_or_else(|e| panic!("series query at {}: {e}", cfind.peer()));
    let series = result
        .matches
        .iter()
        .find(|s| s.series_instance_uid == series_instance_uid)
        .unwrap_or_else(|| panic!("series {series_instance_uid} not found at {}", cfind.peer()));
    for (keyword, value) in expected {
        let got = series.identifier.get_by_name(keyword).unwrap_or_default();
        assert_eq!(got, value, "series {keyword} at the destination");
    }
}

/// Asserts that the router refused the image with a failure status (`code`, when the
/// expectations name one) and that it never shows up at the destination, not even after
/// the router's visibility delay.
pub fn assert_refused_and_absent(
    config: &TestConfig,
    cfind: &CFindClient,
    outcome: &SendOutcome,
    study_instance_uid: &str,
    code: Option<u16>,
) {
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
    if let Some(code) = code {
        assert_eq!(status.code(), code, "refusal status: got {status}");
    }
    let settle = config.cfind.initial_delay.max(Duration::from_millis(300));
    assert_study_absent(cfind, study_instance_uid, settle);
}

/// Asserts that C-FIND does not show the study, querying once after `settle` (the
/// router's visibility delay): a rejected image must not arrive.
pub fn assert_study_absent(cfind: &CFindClient, study_instance_uid: &str, settle: Duration) {
    std::thread::sleep(settle);
    let result = cfind
        .find(&cfind::StudyQuery::by_study_instance_uid(
            study_instance_uid,
        ))
        .unwrap_or_else(|e| panic!("study query at {}: {e}", cfind.peer()));
    assert!(
        result.matches.is_empty(),
        "study {study_instance_uid} arrived at {} although the router refused it",
        cfind.peer()
    );
}
