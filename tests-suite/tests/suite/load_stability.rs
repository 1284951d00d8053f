//! The old `test_load_stability.py` (`test_load_stability_3x_peak`): sustained load at
//! `PEAK_IMAGES_PER_SECOND` x `LOAD_MULTIPLIER` for `TEST_DURATION_SECONDS`; the error rate
//! and p95 latency (from each send's intended time) must stay within their thresholds, and
//! every study sent must then be found at the destination by C-FIND (all of them, not a
//! sample, with their transit times in the report), and, where the destination is the
//! sink (`VERIFY_AT`; the embedded default), every instance must have arrived there once
//! and unaltered. Behind the `load` feature.

use rstest::rstest;
use tests_suite::fixtures::*;
use tests_suite::load;
use tests_suite::record::TestReport;

#[rstest]
fn load_stability_3x_peak(mut report: TestReport, session: &'static Session) {
    let target = load::target(session);
    let config = &target.config;
    let plan = campaign::options::sender::load_plan(config, load::prepare_samples(session));

    let run = load::run(&mut report, &target, &plan);
    let verified = load::verify_and_attach(&mut report, &target, &run);

    let error_rate = run.metrics.error_rate.expect("a load run attempts sends");
    assert!(
        error_rate <= config.thresholds.max_error_rate,
        "error rate {:.2} % above MAX_ERROR_RATE {:.2} % ({} failed, {} unknown of {})",
        error_rate * 100.0,
        config.thresholds.max_error_rate * 100.0,
        run.metrics.counts.failed,
        run.metrics.counts.unknown,
        run.metrics.counts.attempted
    );
    let p95 = run.metrics.p95_latency_ms().expect("latencies recorded");
    let limit = config.thresholds.max_p95_latency.as_secs_f64() * 1000.0;
    assert!(
        p95 <= limit,
        "p95 latency {p95:.1} ms above MAX_P95_LATENCY_MS {limit:.0} ms"
    );
    load::assert_delivered(&verified);
}
