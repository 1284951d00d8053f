//! Issue 16, item 2: hospital traffic from a workload profile. Studies arrive as the
//! profile's seeded Poisson schedule says (and its burst), each sent on its own
//! association under its modality's AE title, every image at its intended time; every
//! study must then be at the destination, complete, and every group's figures must
//! add up to the run's. Behind the `load` feature.

use std::collections::BTreeMap;
use std::time::Duration;

use rstest::rstest;
use tests_suite::fixtures::*;
use tests_suite::load;
use tests_suite::record::TestReport;

/// A small mixed day: two CT scanners, an OCT, and a 40-image CT burst, over the run.
const PROFILE: &str = r#"
[run]
seed = 7

[[modality]]
name = "CT"
modality = "CT"
calling_ae_titles = ["CT_SCANNER_1", "CT_SCANNER_2"]
studies_per_hour = 1440
series = { min = 1, max = 2 }
images_per_series = { min = 3, max = 6 }
image_interval_ms = 10
size = "ct-512"

[[modality]]
name = "OCT"
modality = "OPT"
calling_ae_titles = ["OCT_1"]
studies_per_hour = 2160
series = 1
images_per_series = 2
image_interval_ms = 50
size = "opt"

[[burst]]
at_seconds = 3
modality = "CT"
images = 40
"#;

/// The run's length: the schedule is drawn for it.
const RUN: Duration = Duration::from_secs(10);

#[rstest]
fn a_profile_sends_study_by_study_and_every_study_arrives_complete(
    mut report: TestReport,
    session: &'static Session,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("day.toml");
    std::fs::write(&path, PROFILE).unwrap();
    let profile = campaign::profile::read_profile(&path).unwrap_or_else(|e| panic!("{e}"));
    let target = load::target(session);
    let planned = campaign::profile::profile_plan(&target.config, &profile, Some(RUN), &path)
        .unwrap_or_else(|e| panic!("{e}"));
    let expected: BTreeMap<String, (u64, u64)> = planned
        .schedule
        .summary()
        .groups
        .iter()
        .filter(|g| g.studies > 0)
        .map(|g| (g.group.clone(), (g.studies as u64, g.images as u64)))
        .collect();
    assert_eq!(
        expected.len(),
        2,
        "both modalities drew studies: {expected:?}"
    );
    assert!(
        planned
            .schedule
            .studies
            .iter()
            .any(|s| s.burst && s.images.len() == 40),
        "the burst is in the schedule"
    );
    let run = load::run(&mut report, &target, &planned.plan);
    let verified = load::verify_and_attach(&mut report, &target, &run);
    load::assert_delivered(&verified);

    assert_eq!(
        run.studies.len(),
        planned.schedule.studies.len(),
        "one record per arrival"
    );
    let sent: BTreeMap<String, (u64, u64)> = run
        .groups
        .iter()
        .map(|g| (g.name.clone(), (g.studies, g.metrics.counts.attempted)))
        .collect();
    assert_eq!(
        sent, expected,
        "each group sent the studies and images it planned"
    );
    let attempted: u64 = run.groups.iter().map(|g| g.metrics.counts.attempted).sum();
    assert_eq!(attempted, run.metrics.counts.attempted);
    assert!(run.studies.iter().all(|s| s.group.is_some()));
}
