//! The old `test_routing_throughput.py`: at the site's peak rate (`PEAK_IMAGES_PER_SECOND`)
//! for `TEST_DURATION_SECONDS`, the router must keep up: the delivered rate within 5 % of
//! the target, and p95 latency under `MAX_P95_LATENCY_MS_SHORT`. Behind the `load` feature.

use rstest::rstest;
use tests_suite::fixtures::*;
use tests_suite::load;
use tests_suite::record::TestReport;

/// How far below the target the delivered rate may fall. Counted over the run's wall
/// time (first intended send to last response), so a router that falls behind and
/// drains its backlog late shows up here even when it loses nothing.
const RATE_TOLERANCE: f64 = 0.05;

#[rstest]
fn peak_rate_is_sustained(mut report: TestReport, session: &'static Session) {
    let target = load::target(session);
    let config = &target.config;
    let peak = config.load.peak_images_per_second;
    let plan = campaign::options::sender::load_plan(config, load::prepare_samples(session))
        .rate(Some(peak));

    let run = load::run(&mut report, &target, &plan);
    let verified = load::verify_and_attach(&mut report, &target, &run);

    assert_eq!(
        run.metrics.counts.failed + run.metrics.counts.unknown,
        0,
        "sends failed at the peak rate: {:?}",
        run.metrics.errors
    );
    let delivered = run.metrics.images_per_s.expect("images delivered");
    assert!(
        delivered >= peak * (1.0 - RATE_TOLERANCE),
        "delivered {delivered:.1} images/s, below the peak rate {peak:.1} - {:.0} %",
        RATE_TOLERANCE * 100.0
    );
    let p95 = run.metrics.p95_latency_ms().expect("latencies recorded");
    let limit = config.thresholds.max_p95_latency_short.as_secs_f64() * 1000.0;
    assert!(
        p95 <= limit,
        "p95 latency {p95:.1} ms above MAX_P95_LATENCY_MS_SHORT {limit:.0} ms"
    );
    load::assert_delivered(&verified);
}
