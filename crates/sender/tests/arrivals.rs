//! Arrival-driven runs against the simulator: each study on its own association under
//! its modality's AE titles, images at their intended times, latency measured from
//! them (no coordinated omission), per-group figures that add up to the run's.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{CALLED_AE_TITLE, ct_files, options, simulator};
use dimse::{AeTitle, Status};
use loader::synth::Encoding;
use parking_lot::Mutex;
use sender::{
    ImageArrival, LoadPlan, LoadReport, NoObserver, PlannedSend, PreparedInstance, SendOutcome,
    SendWatch, StopAfter, StudyArrival, UidStrategy, WatchToken, run_load,
};
use simulator::{
    FaultPlan, ResponseDelay, Route, Rules, Simulator, SimulatorConfig, SimulatorHandle,
    StatusOverride, StoreSelection, TransferSyntaxPolicy,
};

/// Two fresh-UID CT templates of about 50 KB.
fn templates() -> (tempfile::TempDir, Vec<Arc<PreparedInstance>>) {
    let dir = tempfile::tempdir().unwrap();
    let instances = ct_files(dir.path(), 2, Encoding::ExplicitVrLittleEndian)
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, UidStrategy::Fresh).unwrap()))
        .collect();
    (dir, instances)
}

fn ae(title: &str) -> AeTitle {
    AeTitle::new(title).unwrap()
}

/// A study from `calling` arriving at `at_ms`, of `images` images `gap_ms` apart,
/// alternating between the two templates, the first three in series 1, the rest in 2.
fn study(at_ms: u64, calling: &str, group: &str, images: u64, gap_ms: u64) -> StudyArrival {
    StudyArrival::new(Duration::from_millis(at_ms), ae(calling), group).images(
        (0..images)
            .map(|i| {
                let series = if i < 3 { 1 } else { 2 };
                ImageArrival::new(Duration::from_millis(i * gap_ms), (i % 2) as usize, series)
            })
            .collect(),
    )
}

/// Runs `plan` with the test options against `sim` and checks that the books balance.
fn run(sim: &SimulatorHandle, plan: &LoadPlan) -> LoadReport {
    let report = run_load(&options(sim.addr()).build().unwrap(), plan, &NoObserver).unwrap();
    assert!(
        report.is_consistent(),
        "accounting broken: {:?} / {:?}",
        report.metrics.counts,
        report
            .groups
            .iter()
            .map(|g| (&g.name, &g.metrics.counts))
            .collect::<Vec<_>>()
    );
    report
}

/// A simulator whose route `called` takes only `calling`'s associations, for each pair.
fn simulator_with_routes(pairs: &[(&str, &str)]) -> SimulatorHandle {
    let routes = pairs
        .iter()
        .map(|(calling, called)| {
            let mut route = Route::store_only(*called, *called);
            route.allowed_calling_ae_titles = Some(vec![calling.to_string()]);
            route
        })
        .collect();
    let rules = Rules {
        settings: Default::default(),
        faults: FaultPlan::default(),
        move_destinations: Vec::new(),
        routes,
    };
    Simulator::start(SimulatorConfig {
        transfer_syntaxes: TransferSyntaxPolicy::UncompressedOnly,
        ..SimulatorConfig::with_rules(rules)
    })
    .unwrap()
}

#[test]
fn each_study_goes_on_its_own_association_under_its_modalitys_ae_titles_as_a_fresh_study() {
    let pairs = [
        ("CT01", "ROUTE-CT"),
        ("MR01", "ROUTE-MR"),
        ("US01", "ROUTE-US"),
    ];
    let sim = simulator_with_routes(&pairs);
    let (_dir, instances) = templates();
    let template_study = instances[0].study_instance_uid().unwrap().to_string();
    let studies = pairs
        .iter()
        .enumerate()
        .map(|(i, (calling, called))| {
            study(100 * i as u64, calling, &calling[..2], 5, 10).called_ae_title(Some(ae(called)))
        })
        .collect();
    let report = run(&sim, &LoadPlan::arrivals(instances, studies).concurrency(3));

    assert_eq!(report.metrics.counts.succeeded, 15);
    assert_eq!(report.associations.opened, 3);
    let stats = sim.stats();
    // Each route takes only its modality's calling AE title: 5 stores on each means
    // each study went to its called AE title under its calling one.
    assert_eq!(stats.associations.accepted, 3);
    assert_eq!(stats.associations.rejected_total(), 0);
    for (_, called) in pairs {
        assert_eq!(stats.routes[called].stores.received, 5, "{called}");
    }
    let mut series_by_study: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut instances_by_study: BTreeMap<String, usize> = BTreeMap::new();
    for stored in sim.stored_instances() {
        series_by_study
            .entry(stored.study_instance_uid.clone())
            .or_default()
            .insert(stored.series_instance_uid.clone());
        *instances_by_study
            .entry(stored.study_instance_uid)
            .or_default() += 1;
    }
    assert_eq!(instances_by_study.len(), 3);
    assert!(!instances_by_study.contains_key(&template_study));
    assert!(instances_by_study.values().all(|&n| n == 5));
    assert!(series_by_study.values().all(|s| s.len() == 2));
    let recorded: BTreeSet<_> = report
        .studies
        .iter()
        .map(|s| s.study_instance_uid.clone())
        .collect();
    assert_eq!(recorded, instances_by_study.keys().cloned().collect());
    let groups: Vec<_> = report.studies.iter().map(|s| s.group.clone()).collect();
    assert_eq!(
        groups,
        [Some("CT".into()), Some("MR".into()), Some("US".into())]
    );
}

/// Records the wall-clock time each send went out, and the SOP Instance UID it
/// carried.
#[derive(Default)]
struct SendTimes(Mutex<Vec<(u64, SystemTime, String)>>);

impl SendWatch for SendTimes {
    fn before_send(&self, send: &PlannedSend<'_>) -> WatchToken {
        let uid = send
            .uids
            .map(|u| u.instance.to_string())
            .unwrap_or_default();
        self.0.lock().push((send.number, SystemTime::now(), uid));
        WatchToken(send.number)
    }

    fn after_send(&self, _: WatchToken, _: &SendOutcome) {}
}

#[test]
fn no_image_goes_before_its_intended_time_and_the_watch_sees_each_with_its_fresh_uids() {
    let sim = simulator(FaultPlan::default());
    let (_dir, instances) = templates();
    // Overlapping studies: three associations at once.
    let studies = vec![
        study(0, "CT01", "CT", 6, 15),
        study(20, "MR01", "MR", 6, 15),
        study(40, "US01", "US", 6, 15),
    ];
    let offsets: Vec<Duration> = studies
        .iter()
        .flat_map(|s| s.images.iter().map(move |i| s.at + i.offset))
        .collect();
    let watch = Arc::new(SendTimes::default());
    // A fixed start: the run's clock starts at this wall-clock instant.
    let start = SystemTime::now() + Duration::from_millis(300);
    let plan = LoadPlan::arrivals(instances, studies)
        .concurrency(3)
        .start_at(Some(start))
        .watch_sends(watch.clone());
    let report = run(&sim, &plan);
    assert_eq!(report.metrics.counts.succeeded, 18);

    let sends = watch.0.lock().clone();
    assert_eq!(sends.len(), 18);
    for (k, at, _) in &sends {
        let after_start = at.duration_since(start).unwrap_or_default();
        // Both clocks read within microseconds of each other: a millisecond covers it.
        assert!(
            after_start + Duration::from_millis(1) >= offsets[*k as usize],
            "send {k} at {after_start:?}, intended {:?}",
            offsets[*k as usize]
        );
    }
    let watched: BTreeSet<_> = sends.into_iter().map(|(_, _, uid)| uid).collect();
    let stored: BTreeSet<_> = sim
        .stored_instances()
        .into_iter()
        .map(|i| i.sop_instance_uid)
        .collect();
    assert_eq!(watched, stored);
}

#[test]
fn studies_queued_behind_a_slow_router_are_late_and_measured_from_their_arrival() {
    let delay = Duration::from_millis(50);
    let sim = simulator(FaultPlan {
        response_delay: Some(ResponseDelay::Fixed(delay)),
        ..FaultPlan::default()
    });
    let (_dir, instances) = templates();
    // Four studies of 3 images 10 ms apart, 10 ms apart: one association serves a
    // study in at least 150 ms, so each study waits for the ones before it.
    let studies: Vec<_> = (0..4)
        .map(|i| study(10 * i, &format!("MOD{i}"), &format!("study{i}"), 3, 10))
        .collect();
    let report = run(&sim, &LoadPlan::arrivals(instances, studies).concurrency(1));
    assert_eq!(report.metrics.counts.succeeded, 12);

    // The last image is due at 30 + 20 ms and cannot end before the twelve
    // responses, 12 x 50 ms, have come: its latency holds that backlog.
    let backlog = 12.0 * delay.as_secs_f64() * 1e3 - 50.0;
    let latency = report.metrics.latency_ms.unwrap();
    assert!(latency.max_ms >= backlog, "max {} ms", latency.max_ms);
    // Served at the router's pace all along: the wait is the queue, not the service.
    let service = report.metrics.service_time_ms.unwrap();
    assert!(service.max_ms < latency.max_ms / 2.0, "{service:?}");
    let medians: Vec<f64> = report
        .groups
        .iter()
        .map(|g| g.metrics.latency_ms.unwrap().p50_ms)
        .collect();
    assert!(medians.windows(2).all(|w| w[0] < w[1]), "{medians:?}");
}

#[test]
fn groups_count_their_own_sends_and_add_up_to_the_run_exactly() {
    let sim = simulator(FaultPlan {
        status_override: Some(StatusOverride {
            status: Status(0xA700),
            selection: StoreSelection::EveryNth(3),
        }),
        ..FaultPlan::default()
    });
    let (_dir, instances) = templates();
    let studies = vec![
        study(0, "CT01", "CT", 3, 5),
        study(10, "MR01", "MR", 4, 5),
        study(20, "CT02", "CT", 3, 5),
    ];
    let report = run(&sim, &LoadPlan::arrivals(instances, studies).concurrency(2));
    let counts = &report.metrics.counts;
    assert_eq!((counts.attempted, counts.failed), (10, 3));

    let groups: Vec<_> = report
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.studies, g.metrics.counts.attempted))
        .collect();
    assert_eq!(groups, [("CT", 2, 6), ("MR", 1, 4)]);
    let failed: u64 = report.groups.iter().map(|g| g.metrics.counts.failed).sum();
    assert_eq!(failed, 3);
    let mut merged = report.groups[0].metrics.clone();
    merged.merge(&report.groups[1].metrics).unwrap();
    assert_eq!(merged.histograms.latency, report.metrics.histograms.latency);
    assert_eq!(
        merged.histograms.service_time,
        report.metrics.histograms.service_time
    );
    assert_eq!(merged.counts, report.metrics.counts);
    assert!(
        report
            .groups
            .iter()
            .all(|g| g.metrics.images_per_s.is_some())
    );
}

#[test]
fn a_refused_association_fails_every_image_of_its_study_and_the_others_go_on() {
    let sim = simulator(FaultPlan::default());
    let (_dir, instances) = templates();
    let studies = vec![
        study(0, "CT01", "CT", 3, 5),
        study(10, "CT02", "lost", 4, 5).called_ae_title(Some(ae("NOBODY"))),
        study(20, "CT03", "CT", 3, 5).called_ae_title(Some(ae(CALLED_AE_TITLE))),
    ];
    let report = run(&sim, &LoadPlan::arrivals(instances, studies));
    let lost = report.groups.iter().find(|g| g.name == "lost").unwrap();
    assert_eq!(
        (lost.metrics.counts.attempted, lost.metrics.counts.failed),
        (4, 4)
    );
    let ct = report.groups.iter().find(|g| g.name == "CT").unwrap();
    assert_eq!(ct.metrics.counts.succeeded, 6);
    assert_eq!(report.associations.opened, 2);
    assert!(report.associations.failed_to_open >= 1);
    assert!(
        lost.metrics
            .errors
            .iter()
            .any(|e| e.message.contains("NOBODY")),
        "{:?}",
        lost.metrics.errors
    );
}

#[test]
fn studies_arriving_after_the_duration_are_not_started() {
    let sim = simulator(FaultPlan::default());
    let (_dir, instances) = templates();
    let studies = vec![
        study(0, "CT01", "CT", 3, 50),
        study(100, "CT02", "CT", 3, 50),
        study(300, "CT03", "CT", 3, 50),
    ];
    let plan = LoadPlan::arrivals(instances, studies)
        .concurrency(3)
        .stop_after(StopAfter::Duration(Duration::from_millis(200)));
    let report = run(&sim, &plan);
    // The second study arrives within the time and is sent whole, past it.
    assert_eq!(report.metrics.counts.succeeded, 6);
    assert_eq!(report.studies.len(), 2);
    assert_eq!(report.groups[0].studies, 2);
}

#[test]
fn an_arrival_plan_refuses_as_is_templates_and_a_rate() {
    let sim = simulator(FaultPlan::default());
    let sender = options(sim.addr()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let as_is = ct_files(dir.path(), 1, Encoding::ExplicitVrLittleEndian)
        .iter()
        .map(|f| Arc::new(PreparedInstance::from_file(f, UidStrategy::AsIs).unwrap()))
        .collect();
    let plan = LoadPlan::arrivals(as_is, vec![study(0, "CT01", "CT", 1, 0)]);
    let err = run_load(&sender, &plan, &NoObserver).unwrap_err();
    assert!(err.to_string().contains("fresh UIDs"), "{err}");

    let (_dir, instances) = templates();
    let plan = LoadPlan::arrivals(instances, vec![study(0, "CT01", "CT", 1, 0)]).rate(Some(5.0));
    let err = run_load(&sender, &plan, &NoObserver).unwrap_err();
    assert!(err.to_string().contains("rate"), "{err}");
}
