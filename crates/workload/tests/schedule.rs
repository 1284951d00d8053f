//! Schedules: deterministic for a seed, Poisson counts where expected, curve, bursts, templates.

use std::time::Duration;

use workload::{Profile, Schedule, TemplateSource};

const HOUR: Duration = Duration::from_secs(3600);

fn profile(extra_run: &str, groups: &str) -> Profile {
    Profile::from_toml_str(&format!("[run]\n{extra_run}\n{groups}"), "test.toml").unwrap()
}

const TWO_GROUPS: &str = r#"
[[modality]]
name = "CT"
modality = "CT"
calling_ae_titles = ["CT_1", "CT_2", "CT_3"]
studies_per_hour = 30
series = { min = 1, max = 3 }
images_per_series = { min = 5, max = 20 }
image_interval_ms = 25
size = "mr-256"

[[modality]]
name = "OPV"
modality = "OPV"
calling_ae_titles = ["PERIMETER"]
studies_per_hour = 200
images_per_series = 2
"#;

fn count(schedule: &Schedule, group: &str) -> usize {
    schedule.studies.iter().filter(|s| s.group == group).count()
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let p = profile("seed = 3", TWO_GROUPS);
    assert_eq!(p.schedule(HOUR), p.schedule(HOUR));
}

#[test]
fn another_seed_gives_another_schedule() {
    let p = profile("seed = 3", TWO_GROUPS);
    let a = p.schedule(HOUR);
    let b = p.schedule_with_seed(HOUR, 4);
    assert_eq!(b.seed, 4);
    assert_ne!(a.studies, b.studies);
}

#[test]
fn studies_are_sorted_by_arrival_and_inside_the_run() {
    let s = profile("", TWO_GROUPS).schedule(HOUR);
    assert!(s.studies.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    assert!(s.studies.iter().all(|st| st.arrival < HOUR));
}

#[test]
fn arrival_counts_are_within_five_standard_deviations_of_the_rate() {
    // 100 hours at 30 and 200 per hour: expected 3,000 and 20,000, sd = sqrt(expected).
    let s = profile("seed = 11", TWO_GROUPS).schedule(HOUR * 100);
    for (group, expected) in [("CT", 3_000.0_f64), ("OPV", 20_000.0)] {
        let n = count(&s, group) as f64;
        assert!(
            (n - expected).abs() < 5.0 * expected.sqrt(),
            "{group}: {n} arrivals, expected {expected}"
        );
    }
}

#[test]
fn the_daily_curve_moves_arrivals_into_the_peak_hours() {
    // Hours 8 to 11 at factor 2, the rest at 0.5: expected share of those hours 8/(8+10) = 4/9.
    let mut curve = vec!["0.5"; 24];
    for f in &mut curve[8..12] {
        *f = "2.0";
    }
    let p = profile(
        &format!("seed = 5\ndaily_curve = [{}]", curve.join(",")),
        TWO_GROUPS,
    );
    let run = HOUR * 24;
    let s = p.schedule(run);
    let opv: Vec<_> = s.studies.iter().filter(|st| st.group == "OPV").collect();
    let total = opv.len() as f64;
    // Expected count: 200/h × 24 h × mean factor (18/24).
    let expected_total = 200.0 * 24.0 * 0.75;
    assert!((total - expected_total).abs() < 5.0 * expected_total.sqrt());
    let peak = opv
        .iter()
        .filter(|st| (8..12).contains(&(st.arrival.as_secs() / 3600)))
        .count() as f64;
    let share = peak / total;
    // Binomial sd of the share: sqrt(p(1-p)/n).
    let p_peak = 4.0 / 9.0;
    let sd = (p_peak * (1.0 - p_peak) / total).sqrt();
    assert!((share - p_peak).abs() < 5.0 * sd, "peak share {share}");
}

#[test]
fn the_curve_is_compressed_into_a_short_run() {
    // All traffic in hour 12 of the day: in a 240-second run, seconds 120 to 130.
    let mut curve = vec!["0"; 24];
    curve[12] = "1";
    let p = profile(&format!("daily_curve = [{}]", curve.join(",")), TWO_GROUPS);
    let s = p.schedule(Duration::from_secs(240));
    let secs = Duration::from_secs;
    assert!(
        s.studies
            .iter()
            .all(|st| st.arrival >= secs(120) && st.arrival < secs(130))
    );
}

#[test]
fn images_are_spaced_by_the_image_interval_and_numbered_by_series() {
    let s = profile("", TWO_GROUPS).schedule(HOUR);
    for study in s.studies.iter().filter(|st| st.group == "CT") {
        for (k, image) in study.images.iter().enumerate() {
            assert_eq!(image.offset, Duration::from_millis(25) * k as u32);
        }
        assert!(study.images.windows(2).all(|w| w[0].series <= w[1].series));
        let series = study.images.last().unwrap().series;
        assert!((1..=3).contains(&series));
        assert!((5..=60).contains(&study.images.len()));
        assert!(
            study
                .images
                .iter()
                .all(|i| s.templates[i.template].series == i.series)
        );
    }
}

#[test]
fn calling_ae_titles_go_round_robin_in_arrival_order() {
    let s = profile("", TWO_GROUPS).schedule(HOUR);
    let titles: Vec<&str> = s
        .studies
        .iter()
        .filter(|st| st.group == "CT")
        .map(|st| st.calling_ae_title.as_str())
        .take(6)
        .collect();
    assert_eq!(titles, ["CT_1", "CT_2", "CT_3", "CT_1", "CT_2", "CT_3"]);
}

#[test]
fn a_burst_arrives_at_its_time_with_its_image_count() {
    let burst = "\n[[burst]]\nat_seconds = 120\nmodality = \"CT\"\nimages = 2001\nseries = 4\n";
    let s = profile("", &format!("{TWO_GROUPS}{burst}")).schedule(Duration::from_secs(600));
    let bursts: Vec<_> = s.studies.iter().filter(|st| st.burst).collect();
    assert_eq!(bursts.len(), 1);
    let b = bursts[0];
    assert_eq!(
        (b.arrival, b.group.as_str()),
        (Duration::from_secs(120), "CT")
    );
    assert_eq!(b.images.len(), 2001);
    let per_series: Vec<usize> = (1..=4)
        .map(|n| b.images.iter().filter(|i| i.series == n).count())
        .collect();
    assert_eq!(per_series, [501, 500, 500, 500]);
    assert_eq!(b.images[2000].offset, Duration::from_millis(25 * 2000));
    // One template per series number, not one per image.
    let ct_templates = s.templates.iter().filter(|t| t.group == "CT").count();
    assert_eq!(ct_templates, 4);
    assert_eq!(s.summary().groups[0].bursts, 1);
}

#[test]
fn a_burst_does_not_move_the_poisson_arrivals() {
    let burst = "\n[[burst]]\nat_seconds = 120\nmodality = \"CT\"\nimages = 50\n";
    let without = profile("", TWO_GROUPS).schedule(HOUR);
    let with = profile("", &format!("{TWO_GROUPS}{burst}")).schedule(HOUR);
    let arrivals = |s: &Schedule| -> Vec<Duration> {
        s.studies
            .iter()
            .filter(|st| !st.burst)
            .map(|st| st.arrival)
            .collect()
    };
    assert_eq!(arrivals(&without), arrivals(&with));
}

#[test]
fn a_burst_after_a_shorter_run_is_left_out() {
    let burst = "\n[[burst]]\nat_seconds = 500\nmodality = \"CT\"\nimages = 50\n";
    let s = profile("", &format!("{TWO_GROUPS}{burst}")).schedule(Duration::from_secs(100));
    assert!(s.studies.iter().all(|st| !st.burst));
}

#[test]
fn folder_templates_cycle_through_the_real_files() {
    let dir = tempfile::tempdir().unwrap();
    for (i, m) in [
        loader::synth::Modality::Cr,
        loader::synth::Modality::Dx,
        loader::synth::Modality::Cr,
    ]
    .into_iter()
    .enumerate()
    {
        loader::synth::InstanceBuilder::new(m)
            .seed(i as u64)
            .write_to(dir.path().join(format!("IM{i}")))
            .unwrap();
    }
    let group = format!(
        "[[modality]]\nname = \"Real\"\nmodality = \"CR\"\ncalling_ae_titles = [\"CR_1\"]\nstudies_per_hour = 600\nimages_per_series = 2\nfolder = {:?}\n",
        dir.path().display().to_string()
    );
    let s = profile("", &group).schedule(HOUR);
    assert_eq!(s.templates.len(), 3);
    assert!(
        s.templates
            .iter()
            .all(|t| matches!(t.source, TemplateSource::File(_)))
    );
    let used: Vec<usize> = s
        .studies
        .iter()
        .flat_map(|st| st.images.iter().map(|i| i.template))
        .take(7)
        .collect();
    assert_eq!(used, [0, 1, 2, 0, 1, 2, 0]);
    let object = s.templates[1].build().unwrap();
    assert_eq!(
        object
            .element_by_name("Modality")
            .unwrap()
            .to_str()
            .unwrap(),
        "DX"
    );
}

#[test]
fn synthetic_templates_build_valid_instances_of_their_modality_and_series() {
    let s = profile("", TWO_GROUPS).schedule(HOUR);
    let template = s
        .templates
        .iter()
        .find(|t| t.group == "CT" && t.series == 2)
        .unwrap();
    let object = template.build().unwrap();
    assert_eq!(
        object
            .element_by_name("Modality")
            .unwrap()
            .to_str()
            .unwrap(),
        "CT"
    );
    assert_eq!(
        object
            .element_by_name("SeriesNumber")
            .unwrap()
            .to_str()
            .unwrap(),
        "2"
    );
    assert_eq!(
        object
            .element_by_name("Rows")
            .unwrap()
            .to_int::<u16>()
            .unwrap(),
        256
    );
    assert_eq!(object.meta().transfer_syntax(), "1.2.840.10008.1.2.1");
    let opv = s
        .templates
        .iter()
        .find(|t| t.group == "OPV")
        .unwrap()
        .build()
        .unwrap();
    assert!(opv.element_by_name("PixelData").is_err());
}

#[test]
fn the_summary_counts_studies_images_and_rates() {
    let s = profile("", TWO_GROUPS).schedule(HOUR);
    let summary = s.summary();
    let opv = &summary.groups[1];
    assert_eq!(opv.group, "OPV");
    assert_eq!(opv.studies, count(&s, "OPV"));
    assert_eq!(opv.images, 2 * opv.studies);
    assert!((opv.offered_images_per_second - opv.images as f64 / 3600.0).abs() < 1e-9);
    let ct = &summary.groups[0];
    assert_eq!(ct.estimated_bytes, ct.images as u64 * (131_072 + 2_048));
    assert_eq!(summary.total().images, ct.images + opv.images);
    assert!(summary.to_string().contains("OPV"));
}

#[test]
fn a_schedule_serialises_to_json() {
    let s = profile("", TWO_GROUPS).schedule(Duration::from_secs(600));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["duration_seconds"], 600.0);
    let first = &json["studies"][0];
    assert!(first["arrival_seconds"].is_number());
    assert!(first["images"][0]["offset_ms"].is_number());
    assert_eq!(
        json["templates"][0]["source"]["synthetic"]["modality"],
        "CT"
    );
}
