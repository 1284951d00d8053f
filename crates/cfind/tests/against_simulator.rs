//! The client against the `simulator` crate (the embedded router), queried on its
//! query-only AE title after studies were stored through a route: every query kind,
//! both information models and the fallbacks, failures, timeouts, cancellation and
//! verification. Each misbehaving peer is the simulator with the fault that makes it
//! misbehave that way; what the simulator cannot be is in `against_hand_made_peers.rs`.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use cfind::{
    BatchLimits, CFindClient, CFindClientBuilder, CFindError, Delivery, Expectation,
    InformationModel, InstanceCountSource, InstanceQuery, Key, NaiveDate, Polling, Query,
    SentStudy, SeriesQuery, StudyQuery,
};
use dicom_dictionary_std::tags;
use dimse::Status;
use simulator::{
    FaultPlan, FindRefusal, ReceivedFind, ResponseDelay, Rules, Simulator, SimulatorConfig,
    SimulatorHandle,
};
use support::archive::ArchiveStudy;
use support::instances::{QUERY_AE, ROUTE, simulator_holding, store_into_simulator};

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

/// A simulator holding `studies` that injects `faults` from then on (set after the
/// stores, which a response delay would slow down too).
fn simulator_with_faults(studies: &[ArchiveStudy], faults: FaultPlan) -> SimulatorHandle {
    let simulator = simulator_holding(studies);
    simulator.set_faults(faults);
    simulator
}

/// The plan that injects no fault but what `set` changes.
fn faults(set: impl FnOnce(&mut FaultPlan)) -> FaultPlan {
    let mut plan = FaultPlan::default();
    set(&mut plan);
    plan
}

/// Waits `delay` before every response.
fn delayed(delay: Duration) -> FaultPlan {
    faults(|f| f.response_delay = Some(ResponseDelay::Fixed(delay)))
}

/// Answers C-FIND on `models` (empty: every model) with `status` only.
fn refusing(models: Vec<InformationModel>, status: u16) -> FaultPlan {
    faults(|f| {
        f.refuse_find = Some(FindRefusal {
            models,
            status: Status(status),
        })
    })
}

/// Associations the simulator accepted so far (the stores' included).
fn associations(simulator: &SimulatorHandle) -> u64 {
    simulator.stats().associations.accepted
}

/// A key of a received C-FIND identifier, padding trimmed.
fn key(find: &ReceivedFind, tag: dicom_core::Tag) -> String {
    find.identifier
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|v| dimse::trim_value(&v).to_string())
        .unwrap_or_default()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn sent(studies: &[ArchiveStudy], at: Instant) -> Vec<SentStudy> {
    studies
        .iter()
        .map(|s| SentStudy::new(&s.study_instance_uid, s.instance_count() as u32, at))
        .collect()
}

// Queries.

#[test]
fn ping_measures_the_echo_round_trip_and_lists_accepted_models() {
    let simulator = simulator_holding(&[]);
    let client = client(&simulator).build().unwrap();
    let check = client.test_connection().unwrap();
    assert!(check.echo_rtt > Duration::ZERO);
    assert_eq!(
        check.models_accepted,
        [InformationModel::StudyRoot, InformationModel::PatientRoot]
    );
    assert!(check.released);
    assert_eq!(simulator.stats().echoes, 1);
}

#[test]
fn a_study_is_found_by_its_uid_with_typed_fields_and_every_returned_key() {
    let studies = archive(5, 2, 2);
    let wanted = studies[3].clone();
    let simulator = simulator_holding(&studies);
    let client = client(&simulator).build().unwrap();
    let result = client
        .find(
            &StudyQuery::by_study_instance_uid(&wanted.study_instance_uid)
                .with_return_key(Key::parse("InstitutionName").unwrap())
                .with_return_key(Key::parse("InstitutionalDepartmentName").unwrap()),
        )
        .unwrap();
    assert_eq!(result.model, InformationModel::StudyRoot);
    assert!(result.fallbacks.is_empty());
    assert_eq!(result.len(), 1);
    let study = &result.matches[0];
    assert_eq!(study.study_instance_uid, wanted.study_instance_uid);
    assert_eq!(
        study.patient_id.as_deref(),
        Some(wanted.patient_id.as_str())
    );
    assert_eq!(study.patient_name.as_deref(), Some("Test^Patient3"));
    assert_eq!(study.study_date.as_deref(), Some("20240104"));
    assert_eq!(study.accession_number.as_deref(), Some("ACC000003"));
    assert_eq!(study.modalities_in_study, ["CT", "MR"]);
    assert_eq!(
        study.referring_physician_name.as_deref(),
        Some("Ref^Doctor")
    );
    assert_eq!(study.number_of_study_related_instances, Some(4));
    assert_eq!(study.number_of_study_related_series, Some(2));
    // Asked for, not in the stored instances: returned empty, which is kept.
    assert_eq!(study.identifier.get(tags::INSTITUTION_NAME), Some(""));
    // The route's morphing, seen through the other extra key.
    assert_eq!(
        study.identifier.get_by_name("InstitutionalDepartmentName"),
        Some("Ophthalmology")
    );
}

#[test]
fn studies_are_found_by_patient_id() {
    let simulator = simulator_holding(&archive(30, 2, 2));
    let client = client(&simulator).build().unwrap();
    let result = client.find(&StudyQuery::by_patient_id("PID-7")).unwrap();
    assert_eq!(result.len(), 3);
    assert!(
        result
            .matches
            .iter()
            .all(|s| s.patient_id.as_deref() == Some("PID-7"))
    );
}

#[test]
fn studies_are_found_by_study_date_range() {
    let simulator = simulator_holding(&archive(28, 2, 2));
    let client = client(&simulator).build().unwrap();
    let result = client
        .find(&StudyQuery::by_study_dates(
            date(2024, 1, 5),
            date(2024, 1, 7),
        ))
        .unwrap();
    let mut dates: Vec<String> = result
        .matches
        .iter()
        .map(|s| s.study_date.clone().unwrap())
        .collect();
    dates.sort();
    assert_eq!(dates, ["20240105", "20240106", "20240107"]);
}

#[test]
fn studies_are_found_by_modality() {
    let mut studies = archive(4, 2, 2);
    studies.push(ArchiveStudy::synthetic(99, 1, 3)); // CT only
    let simulator = simulator_holding(&studies);
    let client = client(&simulator).build().unwrap();
    assert_eq!(
        client.find(&StudyQuery::by_modality("MR")).unwrap().len(),
        4
    );
    assert_eq!(
        client.find(&StudyQuery::by_modality("CT")).unwrap().len(),
        5
    );
    assert_eq!(
        client.find(&StudyQuery::by_modality("US")).unwrap().len(),
        0
    );
}

#[test]
fn todays_studies_are_found() {
    let mut studies = archive(3, 2, 2);
    let mut today = ArchiveStudy::synthetic(50, 1, 1);
    today.study_date = cfind::dicom_date(chrono::Local::now().date_naive());
    studies.push(today.clone());
    let simulator = simulator_holding(&studies);
    let client = client(&simulator).build().unwrap();
    let result = client.find(&StudyQuery::today()).unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(
        result.matches[0].study_instance_uid,
        today.study_instance_uid
    );
}

#[test]
fn a_query_matching_nothing_is_an_empty_success() {
    let simulator = simulator_holding(&archive(3, 2, 2));
    let client = client(&simulator).build().unwrap();
    let result = client.find(&StudyQuery::by_patient_id("NOBODY")).unwrap();
    assert!(result.is_empty());
    assert_eq!(result.status, Status::SUCCESS);
}

#[test]
fn series_and_instances_are_listed_under_a_study() {
    let studies = archive(3, 2, 2);
    let study = studies[1].clone();
    let simulator = simulator_holding(&studies);
    let client = client(&simulator).build().unwrap();
    let series = client
        .find(&SeriesQuery::in_study(&study.study_instance_uid))
        .unwrap();
    assert_eq!(series.len(), 2);
    assert_eq!(series.matches[0].modality.as_deref(), Some("CT"));
    assert_eq!(
        series.matches[1].number_of_series_related_instances,
        Some(2)
    );
    let ct_only = client
        .find(&SeriesQuery::in_study(&study.study_instance_uid).modality("CT"))
        .unwrap();
    assert_eq!(ct_only.len(), 1);

    let first_series = &series.matches[0].series_instance_uid;
    let instances = client
        .find(&InstanceQuery::in_series(
            &study.study_instance_uid,
            first_series,
        ))
        .unwrap();
    assert_eq!(instances.len(), 2);
    assert!(
        instances
            .matches
            .iter()
            .all(|i| &i.series_instance_uid == first_series)
    );
    assert_eq!(
        instances.matches[0].sop_class_uid.as_deref(),
        Some(study.series[0].instances[0].sop_class_uid.as_str())
    );
    let whole_study = client
        .find(&InstanceQuery::in_study(&study.study_instance_uid))
        .unwrap();
    assert_eq!(whole_study.len(), 4);
}

// Information models.

#[test]
fn patient_root_is_used_when_study_root_is_not_accepted() {
    let studies = archive(2, 2, 2);
    let uid = studies[0].study_instance_uid.clone();
    let simulator = simulator_with_faults(
        &studies,
        faults(|f| f.withheld_find_models = vec![InformationModel::StudyRoot]),
    );
    let client = client(&simulator).build().unwrap();
    let result = client
        .find(&StudyQuery::by_study_instance_uid(&uid))
        .unwrap();
    assert_eq!(result.model, InformationModel::PatientRoot);
    assert_eq!(result.len(), 1);
    let sent = &simulator.received_finds()[0];
    assert_eq!(sent.model, InformationModel::PatientRoot);
    assert!(
        sent.identifier.get(tags::PATIENT_ID).is_some(),
        "Patient Root needs a PatientID key"
    );
}

#[test]
fn patient_root_is_used_when_study_root_queries_fail_and_the_session_remembers_it() {
    let simulator = simulator_with_faults(
        &archive(3, 2, 2),
        refusing(vec![InformationModel::StudyRoot], 0xC000),
    );
    let client = client(&simulator).build().unwrap();
    let mut session = client.session();
    let first = session.find(&StudyQuery::new()).unwrap();
    assert_eq!(first.model, InformationModel::PatientRoot);
    assert_eq!(first.len(), 3);
    assert!(first.fallbacks[0].reason.contains("C000"));
    let second = session.find(&StudyQuery::by_patient_id("PID-1")).unwrap();
    assert_eq!(second.model, InformationModel::PatientRoot);
    session.close();
    // Study Root once, Patient Root twice: the refusal is not retried.
    let models: Vec<InformationModel> = simulator
        .received_finds()
        .into_iter()
        .map(|q| q.model)
        .collect();
    assert_eq!(
        models,
        [
            InformationModel::StudyRoot,
            InformationModel::PatientRoot,
            InformationModel::PatientRoot
        ]
    );
}

#[test]
fn patient_root_can_be_preferred() {
    let studies = archive(3, 1, 1);
    let simulator = simulator_holding(&studies);
    let client = client(&simulator)
        .models([InformationModel::PatientRoot, InformationModel::StudyRoot])
        .build()
        .unwrap();
    let result = client
        .find(&StudyQuery::by_study_instance_uid(
            &studies[1].study_instance_uid,
        ))
        .unwrap();
    assert_eq!(result.model, InformationModel::PatientRoot);
    assert_eq!(result.len(), 1);
    assert_eq!(
        simulator.received_finds()[0].model,
        InformationModel::PatientRoot
    );
}

// Failures.

#[test]
fn a_failure_status_is_a_typed_error_naming_the_peer_and_status() {
    let simulator = simulator_with_faults(&archive(2, 2, 2), refusing(vec![], 0xA700));
    let client = client(&simulator).build().unwrap();
    let error = client.find(&StudyQuery::new()).unwrap_err();
    assert_eq!(error.status(), Some(Status(0xA700)));
    assert!(error.is_transient(), "out of resources may pass");
    let text = error.to_string();
    assert!(
        text.contains("A700") && text.contains("LB-QUERY@127.0.0.1"),
        "{text}"
    );
}

#[test]
fn a_failure_on_every_model_is_reported_not_hidden_by_the_fallback() {
    let simulator = simulator_with_faults(&archive(1, 2, 2), refusing(vec![], 0xA900));
    let client = client(&simulator).build().unwrap();
    let error = client.find(&StudyQuery::new()).unwrap_err();
    assert_eq!(error.status(), Some(Status(0xA900)));
    assert_eq!(simulator.stats().finds.requests, 2, "both models tried");
}

#[test]
fn a_failure_status_shows_the_peer_s_error_comment() {
    let simulator = simulator_holding(&archive(1, 1, 1));
    let client = client(&simulator).build().unwrap();
    // An unknown level: A900 under both models, with an ErrorComment saying why.
    let query = StudyQuery::new().with_match(Key::parse("QueryRetrieveLevel").unwrap(), "BOGUS");
    let error = client.find(&query).unwrap_err();
    assert_eq!(error.status(), Some(Status(0xA900)), "{error}");
    assert!(
        error.to_string().contains("unknown QueryRetrieveLevel"),
        "{error}"
    );
}

// Timeouts and cancellation.

#[test]
fn a_silent_or_slow_peer_is_a_transient_timeout_after_the_dimse_timeout() {
    let silent = faults(|f| f.stall_finds = true);
    let slow = delayed(Duration::from_secs(3));
    for faults in [silent, slow] {
        let simulator = simulator_with_faults(&archive(1, 1, 1), faults.clone());
        let client = client(&simulator)
            .dimse_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let error = client.find(&StudyQuery::new()).unwrap_err();
        match &error {
            CFindError::Timeout { what, waited, .. } => {
                assert_eq!(*what, "DIMSE timeout", "{faults:?}");
                assert!(*waited >= Duration::from_millis(300), "{faults:?}");
            }
            other => panic!("expected a timeout with {faults:?}, got {other}"),
        }
        assert!(error.is_transient());
    }
}

#[test]
fn the_query_deadline_bounds_a_peer_that_trickles_matches() {
    let simulator = simulator_with_faults(&archive(40, 2, 2), delayed(Duration::from_millis(100)));
    let client = client(&simulator)
        .query_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let error = client.find(&StudyQuery::new()).unwrap_err();
    assert!(
        matches!(
            error,
            CFindError::Timeout {
                what: "query deadline",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_result_limit_cancels_the_rest_and_keeps_the_association_usable() {
    let simulator = simulator_with_faults(&archive(60, 2, 2), delayed(Duration::from_millis(5)));
    let before = associations(&simulator);
    let client = client(&simulator).build().unwrap();
    let mut session = client.session();
    let limited = session.find(&StudyQuery::new().with_limit(5)).unwrap();
    assert_eq!(limited.len(), 5);
    assert!(limited.truncated);
    assert_eq!(limited.status, Status::CANCEL);
    assert_eq!(simulator.stats().finds.cancelled, 1);
    let next = session.find(&StudyQuery::by_patient_id("PID-1")).unwrap();
    assert_eq!(next.len(), 6);
    session.close();
    assert_eq!(associations(&simulator) - before, 1);
}

#[test]
fn a_final_status_inside_the_last_identifier_ends_the_query() {
    let simulator = simulator_with_faults(
        &archive(3, 2, 2),
        faults(|f| f.status_in_last_identifier = true),
    );
    let client = client(&simulator).build().unwrap();
    let result = client.find(&StudyQuery::new()).unwrap();
    assert_eq!(result.len(), 3, "the last identifier is still a match");
    assert_eq!(result.status, Status::SUCCESS);
}

// Associations.

#[test]
fn one_association_serves_a_session_of_queries() {
    let simulator = simulator_holding(&archive(10, 2, 2));
    let before = associations(&simulator);
    let client = client(&simulator).build().unwrap();
    let mut session = client.session();
    session.echo().unwrap();
    for n in 0..5 {
        session
            .find(&StudyQuery::by_patient_id(&format!("PID-{n}")))
            .unwrap();
    }
    session.close();
    assert_eq!(associations(&simulator) - before, 1);
    assert_eq!(session.queries_sent(), 5);
}

#[test]
fn a_session_reopens_its_association_after_the_peer_drops_it_while_idle() {
    let simulator = simulator_with_faults(
        &archive(2, 1, 1),
        faults(|f| f.idle_timeout = Some(Duration::from_millis(150))),
    );
    let client = client(&simulator).build().unwrap();
    let mut session = client.session();
    assert_eq!(session.find(&StudyQuery::new()).unwrap().len(), 2);
    thread::sleep(Duration::from_millis(500));
    // The simulator aborted the idle association; the query still gets its answer.
    assert_eq!(session.find(&StudyQuery::new()).unwrap().len(), 2);
    assert_eq!(session.associations_opened(), 2);
    session.close();
}

#[test]
fn a_wrong_called_ae_title_is_a_rejection_that_is_not_retried_forever() {
    let simulator = simulator_holding(&archive(1, 2, 2));
    let client = client(&simulator)
        .called_ae_title("NOT-THE-SCP")
        .build()
        .unwrap();
    let error = client.find(&StudyQuery::new()).unwrap_err();
    assert!(matches!(error, CFindError::Rejected { .. }), "{error}");
    assert!(!error.is_transient());
    let error = client
        .wait_for_study("1.2.3", &Expectation::visible())
        .unwrap_err();
    assert!(matches!(error, CFindError::Rejected { .. }), "{error}");
}

// Waiting for one study.

#[test]
fn wait_for_study_returns_once_the_study_arrives_complete() {
    let simulator = simulator_holding(&archive(2, 2, 2));
    let study = ArchiveStudy::synthetic(500, 2, 2);
    let uid = study.study_instance_uid.clone();
    let mut first_series = study.clone();
    first_series.series.truncate(1);
    let mut second_series = study.clone();
    second_series.series.remove(0);
    let client = client(&simulator)
        .polling(Polling {
            initial_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(30),
            timeout: Duration::from_secs(10),
        })
        .build()
        .unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_millis(150));
            store_into_simulator(simulator.addr(), ROUTE, &[first_series]);
            thread::sleep(Duration::from_millis(150));
            store_into_simulator(simulator.addr(), ROUTE, &[second_series]);
        });
        let expectation = Expectation::visible()
            .at_least_instances(4)
            .with_attribute(Key::parse("PatientName").unwrap(), "Test^Patient0");
        let sighting = client.wait_for_study(&uid, &expectation).unwrap();
        assert_eq!(sighting.instances, Some(4));
        assert_eq!(
            sighting.instance_count_source,
            InstanceCountSource::StudyAttribute
        );
        assert!(sighting.polls > 2, "polled while absent and while partial");
        assert!(sighting.waited >= Duration::from_millis(250));
    });
}

#[test]
fn wait_for_study_counts_images_when_the_peer_reports_no_count() {
    let studies = archive(3, 2, 2);
    let uid = studies[2].study_instance_uid.clone();
    let simulator = simulator_with_faults(&studies, faults(|f| f.omit_instance_counts = true));
    let client = client(&simulator).build().unwrap();
    let sighting = client
        .wait_for_study(&uid, &Expectation::visible().at_least_instances(4))
        .unwrap();
    assert_eq!(sighting.instances, Some(4));
    assert_eq!(
        sighting.instance_count_source,
        InstanceCountSource::ImageQuery
    );
}

#[test]
fn a_study_that_never_arrives_times_out_with_the_last_answer() {
    let simulator = simulator_holding(&archive(2, 2, 2));
    let client = client(&simulator).build().unwrap();
    let never_sent = "1.2.826.0.1.3680043.8.498.4242";
    let error = client
        .wait_for_study(never_sent, &Expectation::visible())
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, CFindError::StudyNotVisible { .. }),
        "{text}"
    );
    assert!(
        text.contains(never_sent) && text.contains("not visible"),
        "{text}"
    );
    assert!(text.contains("last answer: no match"), "{text}");
    let report = client
        .verify_studies(&[SentStudy::new(never_sent, 1, Instant::now())])
        .unwrap();
    assert_eq!(report.studies[0].delivery, Delivery::Missing);
}

#[test]
fn a_study_that_stays_incomplete_times_out_showing_what_was_seen() {
    let studies = archive(2, 2, 2);
    let uid = studies[1].study_instance_uid.clone();
    let simulator = simulator_holding(&studies);
    let client = client(&simulator).build().unwrap();
    let error = client
        .wait_for_study(&uid, &Expectation::visible().at_least_instances(10))
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("4 of 10 instances"), "{text}");
    assert!(text.contains("NumberOfStudyRelatedInstances=4"), "{text}");
    assert!(text.contains("PatientName=Test^Patient1"), "{text}");
}

// Verifying a load run.

#[test]
fn hundreds_of_studies_are_verified_in_a_few_batched_queries() {
    let studies = archive(500, 2, 2);
    let simulator = simulator_holding(&studies);
    let before = associations(&simulator);
    let client = client(&simulator).build().unwrap();
    let report = client
        .verify_studies(&sent(&studies, Instant::now()))
        .unwrap();
    assert!(report.all_complete());
    assert_eq!(report.studies.len(), 500);
    assert_eq!(report.queries, 3, "200 + 200 + 100 UIDs");
    assert_eq!(simulator.stats().finds.requests, 3);
    assert_eq!(associations(&simulator) - before, 1);
    assert_eq!(report.transit.len(), 500);
    assert!(report.studies.iter().all(|s| s.instance_count_source
        == InstanceCountSource::StudyAttribute
        && s.instances_seen == Some(4)));
    assert_eq!(report.model, Some(InformationModel::StudyRoot));
}

#[test]
fn verification_polls_only_what_is_not_complete_and_reports_each_study() {
    let studies = archive(300, 2, 2);
    // In the simulator at first: everything but 10..30 (late: in the first batch) and
    // 270..300 (never), with 240..250 short of one series.
    let mut initial: Vec<ArchiveStudy> = studies[..270].to_vec();
    for study in &mut initial[240..250] {
        study.series.truncate(1);
    }
    let late: Vec<ArchiveStudy> = initial.drain(10..30).collect();
    let simulator = simulator_holding(&initial);
    let client = client(&simulator)
        .polling(Polling {
            initial_delay: Duration::ZERO,
            poll_interval: Duration::from_millis(200),
            timeout: Duration::from_millis(700),
        })
        .batch_limits(BatchLimits {
            max_uids_per_query: 100,
            max_uid_list_bytes: 64 * 1024,
        })
        .build()
        .unwrap();
    let report = thread::scope(|s| {
        s.spawn(|| {
            // The client is sequential: a second query means the first (holding the
            // late studies) has been answered.
            while simulator.stats().finds.requests < 2 {
                thread::sleep(Duration::from_millis(1));
            }
            store_into_simulator(simulator.addr(), ROUTE, &late);
        });
        client
            .verify_studies(&sent(&studies, Instant::now()))
            .unwrap()
    });
    assert_eq!(report.count(Delivery::Complete), 240 + 20);
    assert_eq!(report.count(Delivery::Incomplete), 10);
    assert_eq!(report.count(Delivery::Missing), 30);
    let incomplete = report
        .studies
        .iter()
        .find(|s| s.delivery == Delivery::Incomplete)
        .unwrap();
    assert_eq!(
        (incomplete.instances_seen, incomplete.instances_sent),
        (Some(2), 4)
    );
    assert_eq!(incomplete.time_to_visible, None);
    // Round 1 asks about all 300 (3 queries); later rounds only about the rest.
    let asked: Vec<usize> = simulator
        .received_finds()
        .iter()
        .map(|q| key(q, tags::STUDY_INSTANCE_UID).split('\\').count())
        .collect();
    assert_eq!(&asked[..3], [100, 100, 100]);
    assert_eq!(asked[3], 60, "round 2: 20 late + 10 incomplete + 30 absent");
    assert!(
        asked[4..].iter().all(|&n| n == 40),
        "then 10 incomplete + 30 missing: {asked:?}"
    );
    assert_eq!(report.transit.len(), 260);
}

#[test]
fn verification_counts_images_in_batches_when_the_peer_reports_no_count() {
    let studies = archive(250, 2, 2);
    let simulator = simulator_with_faults(&studies, faults(|f| f.omit_instance_counts = true));
    let client = client(&simulator).build().unwrap();
    let report = client
        .verify_studies(&sent(&studies, Instant::now()))
        .unwrap();
    assert!(report.all_complete());
    assert!(report.studies.iter().all(|s| s.instance_count_source
        == InstanceCountSource::ImageQuery
        && s.instances_seen == Some(4)));
    let levels: Vec<String> = simulator
        .received_finds()
        .iter()
        .map(|q| key(q, tags::QUERY_RETRIEVE_LEVEL))
        .collect();
    assert_eq!(levels, ["STUDY", "IMAGE", "STUDY", "IMAGE"]);
}

#[test]
fn verification_marks_studies_unverified_while_the_peer_fails() {
    let studies = archive(5, 2, 2);
    let simulator = simulator_with_faults(&studies, refusing(vec![], 0xA700));
    let client = client(&simulator).build().unwrap();
    let report = client
        .verify_studies(&sent(&studies, Instant::now()))
        .unwrap();
    assert_eq!(report.count(Delivery::Unverified), 5);
    assert!(report.errors[0].0.contains("A700"), "{:?}", report.errors);
    assert!(
        report.studies[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("A700")
    );
}

#[test]
fn verification_stops_at_once_when_no_query_model_is_accepted() {
    let studies = archive(1, 2, 2);
    let simulator = simulator_with_faults(
        &studies,
        faults(|f| {
            f.withheld_find_models =
                vec![InformationModel::StudyRoot, InformationModel::PatientRoot]
        }),
    );
    let client = client(&simulator).build().unwrap();
    let error = client
        .verify_studies(&sent(&studies, Instant::now()))
        .unwrap_err();
    assert!(
        matches!(error, CFindError::NoModelAccepted { .. }),
        "{error}"
    );
}

#[test]
fn time_to_visible_is_measured_from_the_last_send_of_each_study() {
    let studies = archive(2, 2, 2);
    let simulator = simulator_holding(&studies);
    let client = client(&simulator).build().unwrap();
    let now = Instant::now();
    let mut sent = sent(&studies, now);
    sent[0].last_send_at = now - Duration::from_secs(3);
    // The same study sent in two parts: counts add up, the latest send counts.
    sent.push(SentStudy::new(
        &studies[1].study_instance_uid,
        0,
        now - Duration::from_secs(9),
    ));
    let report = client.verify_studies(&sent).unwrap();
    assert_eq!(report.studies.len(), 2);
    let first = report.studies[0].time_to_visible.unwrap();
    let second = report.studies[1].time_to_visible.unwrap();
    assert!(
        first >= Duration::from_secs(3) && first < Duration::from_secs(4),
        "{first:?}"
    );
    assert!(second < Duration::from_secs(1), "{second:?}");
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
    let report = client.verify_studies(&sent(&studies, last_send)).unwrap();
    assert!(report.all_complete());
    assert!(report.rounds > 1, "polled while the studies were held back");
    let p50 = report.transit.percentile(50.0).unwrap();
    assert!(p50 >= Duration::from_millis(350), "{p50:?}");
}
