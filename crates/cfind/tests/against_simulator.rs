//! The client against the `simulator` crate (the embedded router), queried on its
//! query-only AE title after studies were stored through a route.

mod support;

use std::time::{Duration, Instant};

use cfind::{
    CFindClient, CFindClientBuilder, CFindError, Delivery, Expectation, InformationModel,
    InstanceCountSource, InstanceQuery, Key, NaiveDate, Polling, Query, SentStudy, SeriesQuery,
    StudyQuery,
};
use simulator::{FaultPlan, ResponseDelay, Rules, Simulator, SimulatorConfig, SimulatorHandle};
use support::instances::store_into_simulator;
use support::scp::ArchiveStudy;

const ROUTE: &str = "LB-HTM-OPH";
const QUERY_AE: &str = "LB-QUERY";

fn client(simulator: &SimulatorHandle) -> CFindClientBuilder {
    CFindClient::builder("127.0.0.1", simulator.addr().port())
        .called_ae_title(QUERY_AE)
        .calling_ae_title("CFIND-TEST")
        .connect_timeout(Duration::from_secs(2))
        .acse_timeout(Duration::from_secs(2))
        .dimse_timeout(Duration::from_secs(5))
        .query_timeout(Duration::from_secs(10))
        .polling(Polling {
            initial_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(50),
            timeout: Duration::from_millis(500),
        })
}

fn archive(count: usize, series: usize, per_series: usize) -> Vec<ArchiveStudy> {
    (0..count)
        .map(|n| ArchiveStudy::synthetic(n, series, per_series))
        .collect()
}

fn simulator_with(studies: &[ArchiveStudy]) -> SimulatorHandle {
    let simulator = Simulator::start(SimulatorConfig::default()).unwrap();
    store_into_simulator(simulator.addr(), ROUTE, studies);
    simulator
}

#[test]
fn the_simulator_answers_every_query_kind() {
    let mut studies = archive(20, 2, 2);
    let mut today = ArchiveStudy::synthetic(77, 1, 1);
    today.study_date = cfind::dicom_date(chrono::Local::now().date_naive());
    studies.push(today.clone());
    let simulator = simulator_with(&studies);
    let client = client(&simulator).build().unwrap();
    let study = &studies[3];

    let by_uid = client
        .find(
            &StudyQuery::by_study_instance_uid(&study.study_instance_uid)
                .with_return_key(Key::parse("InstitutionalDepartmentName").unwrap()),
        )
        .unwrap();
    assert_eq!(by_uid.model, InformationModel::StudyRoot);
    let found = &by_uid.matches[0];
    assert_eq!(found.patient_id.as_deref(), Some("PID-3"));
    assert_eq!(found.modalities_in_study, ["CT", "MR"]);
    assert_eq!(found.number_of_study_related_instances, Some(4));
    // The route's morphing, seen through the extra key.
    assert_eq!(
        found.identifier.get_by_name("InstitutionalDepartmentName"),
        Some("Ophthalmology")
    );

    assert_eq!(
        client
            .find(&StudyQuery::by_patient_id("PID-3"))
            .unwrap()
            .len(),
        2
    );
    let jan = |d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
    assert_eq!(
        client
            .find(&StudyQuery::by_study_dates(jan(1), jan(3)))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        client.find(&StudyQuery::by_modality("MR")).unwrap().len(),
        20
    );
    let today_found = client.find(&StudyQuery::today()).unwrap();
    assert_eq!(today_found.len(), 1);
    assert_eq!(
        today_found.matches[0].study_instance_uid,
        today.study_instance_uid
    );

    let series = client
        .find(&SeriesQuery::in_study(&study.study_instance_uid))
        .unwrap();
    assert_eq!(series.len(), 2);
    let instances = client
        .find(&InstanceQuery::in_series(
            &study.study_instance_uid,
            &series.matches[1].series_instance_uid,
        ))
        .unwrap();
    assert_eq!(instances.len(), 2);
    assert_eq!(
        client
            .find(&InstanceQuery::in_study(&study.study_instance_uid))
            .unwrap()
            .len(),
        4
    );
    assert!(
        client
            .find(&StudyQuery::by_patient_id("NOBODY"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_simulator_answers_under_patient_root_too() {
    let studies = archive(3, 1, 1);
    let simulator = simulator_with(&studies);
    let client = client(&simulator)
        .models([InformationModel::PatientRoot])
        .build()
        .unwrap();
    let result = client
        .find(&StudyQuery::by_study_instance_uid(
            &studies[1].study_instance_uid,
        ))
        .unwrap();
    assert_eq!(result.model, InformationModel::PatientRoot);
    assert_eq!(result.len(), 1);
}

#[test]
fn hundreds_of_simulator_studies_are_verified_in_a_few_batched_queries() {
    let studies = archive(400, 1, 1);
    let simulator = simulator_with(&studies);
    let client = client(&simulator).build().unwrap();
    let sent: Vec<SentStudy> = studies
        .iter()
        .map(|s| SentStudy::new(&s.study_instance_uid, 1, Instant::now()))
        .collect();
    let finds_before = simulator.stats().finds.requests;
    let report = client.verify_studies(&sent).unwrap();
    assert!(report.all_complete());
    assert_eq!(report.queries, 2);
    assert_eq!(simulator.stats().finds.requests - finds_before, 2);
    assert!(report.studies.iter().all(|s| s.instance_count_source
        == InstanceCountSource::StudyAttribute
        && s.instances_seen == Some(1)));
}

#[test]
fn the_stable_study_time_shows_up_as_transit_time() {
    let mut rules = Rules::default_rules();
    let hold = Duration::from_millis(400);
    for route in &mut rules.routes {
        route.stable_study_time = hold;
    }
    let simulator = Simulator::start(SimulatorConfig::with_rules(rules)).unwrap();
    let studies = archive(3, 1, 2);
    store_into_simulator(simulator.addr(), ROUTE, &studies);
    let last_send = Instant::now();
    let client = client(&simulator)
        .polling(Polling {
            initial_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(20),
            timeout: Duration::from_secs(10),
        })
        .build()
        .unwrap();
    let sent: Vec<SentStudy> = studies
        .iter()
        .map(|s| SentStudy::new(&s.study_instance_uid, 2, last_send))
        .collect();
    let report = client.verify_studies(&sent).unwrap();
    assert!(report.all_complete());
    assert!(report.rounds > 1, "polled while the studies were held back");
    let p50 = report.transit.percentile(50.0).unwrap();
    assert!(p50 >= Duration::from_millis(350), "{p50:?}");
}

#[test]
fn a_study_never_sent_to_the_simulator_times_out_with_the_last_answer() {
    let simulator = simulator_with(&archive(2, 1, 1));
    let client = client(&simulator).build().unwrap();
    let error = client
        .wait_for_study("1.2.826.0.1.3680043.8.498.4242", &Expectation::visible())
        .unwrap_err();
    assert!(
        matches!(error, CFindError::StudyNotVisible { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("last answer: no match"),
        "{error}"
    );
    let report = client
        .verify_studies(&[SentStudy::new(
            "1.2.826.0.1.3680043.8.498.4242",
            1,
            Instant::now(),
        )])
        .unwrap();
    assert_eq!(report.studies[0].delivery, Delivery::Missing);
}

#[test]
fn a_simulator_failure_status_is_a_typed_error() {
    let simulator = simulator_with(&archive(1, 1, 1));
    let client = client(&simulator).build().unwrap();
    // An unknown level: A900 under both models.
    let query = StudyQuery::new().with_match(Key::parse("QueryRetrieveLevel").unwrap(), "BOGUS");
    let error = client.find(&query).unwrap_err();
    assert_eq!(error.status(), Some(dimse::Status(0xA900)), "{error}");
    assert!(
        error.to_string().contains("unknown QueryRetrieveLevel"),
        "{error}"
    );
}

#[test]
fn a_slow_simulator_is_bounded_by_the_dimse_timeout() {
    let simulator = simulator_with(&archive(1, 1, 1));
    simulator.set_faults(FaultPlan {
        response_delay: Some(ResponseDelay::Fixed(Duration::from_secs(3))),
        ..FaultPlan::default()
    });
    let client = client(&simulator)
        .dimse_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = client.find(&StudyQuery::new()).unwrap_err();
    assert!(
        matches!(
            error,
            CFindError::Timeout {
                what: "DIMSE timeout",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_session_reopens_its_association_after_the_peer_drops_it_while_idle() {
    let studies = archive(2, 1, 1);
    let simulator = simulator_with(&studies);
    simulator.set_faults(FaultPlan {
        idle_timeout: Some(Duration::from_millis(150)),
        ..FaultPlan::default()
    });
    let client = client(&simulator).build().unwrap();
    let mut session = client.session();
    assert_eq!(session.find(&StudyQuery::new()).unwrap().len(), 2);
    std::thread::sleep(Duration::from_millis(500));
    // The simulator aborted the idle association; the query still gets its answer.
    assert_eq!(session.find(&StudyQuery::new()).unwrap().len(), 2);
    assert_eq!(session.associations_opened(), 2);
    session.close();
}
