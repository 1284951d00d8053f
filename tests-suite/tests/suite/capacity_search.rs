//! Issue 16, item 3: a capacity search finds the highest rate a router sustains. Against
//! the embedded simulator answering every C-STORE after a fixed delay D, over C
//! associations that each wait for their answer, the router can take at most C / D
//! stores per second (Little's law with C in service); the search must find that limit
//! within 10 %. Below it latency is about D; above it the open-loop queue grows for the
//! whole step, so a p95 threshold of 3 x D tells the two apart sharply. Behind the
//! `load` feature.

use std::time::Duration;

use campaign::capacity::{CapacityOptions, RateSteps, search};
use rstest::rstest;
use simulator::{FaultPlan, ResponseDelay};
use tests_suite::fixtures::*;
use tests_suite::load;
use tests_suite::record::TestReport;

/// The simulator's answer to every C-STORE waits this long: the service time. Long
/// beside what a store itself costs (a few milliseconds in a debug build on a busy
/// 2-core machine, which a 20 ms delay already felt as 15 %), so the limit is the
/// delay's.
const SERVICE_TIME: Duration = Duration::from_millis(100);
/// Associations the sender keeps busy.
const CONCURRENCY: usize = 16;
/// How far the found rate may be from the analytic limit.
const TOLERANCE: f64 = 0.10;

#[rstest]
fn the_capacity_found_matches_concurrency_over_service_time(
    mut report: TestReport,
    session: &'static Session,
) {
    if !session.config.endpoint.target.is_embedded() {
        return report.skip(format!(
            "the analytic limit needs a router whose service time the test sets (the embedded \
             simulator's response delay); the remote router at {} cannot be made to take one \
             (unset COMPASS_HOST to run this test)",
            session.config.endpoint.address()
        ));
    }
    let mut config = session.config.clone();
    config.load.concurrency = CONCURRENCY;
    // What the router accepts is measured; delivery is not checked, so no sink.
    config.sink.verify_at = config::VerifyAt::CFIND;
    let target = load::LoadTarget::new(&config).unwrap_or_else(|e| panic!("{e}"));
    target
        .simulator
        .as_ref()
        .expect("an embedded target has its own simulator")
        .set_faults(FaultPlan {
            response_delay: Some(ResponseDelay::Fixed(SERVICE_TIME)),
            ..FaultPlan::default()
        });
    let limit = CONCURRENCY as f64 / SERVICE_TIME.as_secs_f64();
    // From half the limit, x1.25 a step (80, 100, 125, 156, 195 /s for D = 100 ms,
    // C = 16), 3 s each after 0.5 s of warm-up, then three bisections between the
    // last pass and the first failure: about 30 s in all.
    let options = CapacityOptions::from_config(&target.config)
        .start_rate(limit / 2.0)
        .rate_steps(RateSteps::Factor(1.25))
        .max_steps(6)
        .step_duration(Duration::from_secs(3))
        .warm_up(Duration::from_millis(500))
        .bisect(3)
        .max_p95_latency(SERVICE_TIME * 3);

    let found = search(
        &target,
        &load::prepare_samples(session),
        &options,
        &sender::NoObserver,
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let curve = found.curve();
    report.figure(
        "analytic limit (concurrency / service time)",
        format!("{limit:.1} sends/s"),
    );
    report.figure(
        "highest sustained rate",
        curve
            .highest_sustained_rate
            .map_or_else(|| "none".into(), |r| format!("{r:.1} sends/s")),
    );
    report.figure("steps", curve.steps.len());
    report.attach_load(found.load_result());
    let steps: Vec<String> = curve
        .steps
        .iter()
        .map(|s| format!("{:.1}/s: {}", s.offered_rate, s.verdict))
        .collect();
    let sustained = curve
        .highest_sustained_rate
        .unwrap_or_else(|| panic!("no step was sustained: {steps:#?}"));
    assert!(
        (sustained - limit).abs() <= limit * TOLERANCE,
        "highest sustained rate {sustained:.1} sends/s is not within {:.0} % of the analytic \
         limit {limit:.1} sends/s ({CONCURRENCY} associations / {} ms); steps: {steps:#?}",
        TOLERANCE * 100.0,
        SERVICE_TIME.as_millis()
    );
}
