//! The self-contained HTML report (Askama template, inline SVG charts, inline script
//! for filtering: nothing is fetched from the network).

use askama::Template;

use crate::charts;
use crate::model::{ConfigItem, Figure, OutcomeTotals, RunReport};

/// How many tests the duration chart shows.
const SLOWEST_SHOWN: usize = 25;

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    title: &'a str,
    target: &'a str,
    started: String,
    finished: String,
    duration: String,
    totals: OutcomeTotals,
    donut_svg: String,
    duration_svg: String,
    configuration: &'a [ConfigItem],
    rows: Vec<Row>,
    panels: Vec<Panel>,
}

struct Row {
    name: String,
    group: String,
    outcome: &'static str,
    duration: String,
    message: Option<String>,
    figures: String,
    has_load: bool,
    anchor: String,
}

struct Panel {
    name: String,
    anchor: String,
    figures: Vec<Figure>,
    histogram_svg: String,
    timeline_svg: String,
    scatter_svg: String,
    transit_svg: Option<String>,
    errors: Vec<metrics::ErrorCount>,
    delivery: Option<DeliveryView>,
    retrieval: Option<RetrievalView>,
    commitment: Option<CommitmentView>,
    capacity: Option<CapacityView>,
    groups: Vec<crate::model::GroupRow>,
}

/// A capacity search's part of a load panel: the steps and the two curves.
struct CapacityView {
    highest: String,
    curve: crate::model::CapacityCurve,
    rates_svg: String,
    latency_svg: String,
}

/// The archive's part of a load panel: what it committed to keep.
struct CommitmentView {
    verdict: &'static str,
    commitment: crate::model::ArchiveCommitment,
}

/// The archive's part of a load panel: what a retrieve brought back.
struct RetrievalView {
    verdict: &'static str,
    method: String,
    peer: String,
    studies_delivered: u64,
    studies: Vec<crate::model::StudyRetrievalRow>,
    judged: DeliveryView,
}

/// The sink's part of a load panel.
struct DeliveryView {
    verdict: &'static str,
    invariant: String,
    accounting: Vec<Figure>,
    transit_svg: Option<String>,
    timeline_svg: Option<String>,
    differences: Vec<crate::model::DifferenceRow>,
    problems: Vec<crate::model::ProblemRow>,
    problems_total: u64,
}

/// The view of one judged set of arrivals; `transit_title` names the transit chart
/// (none for a retrieve, whose transit from the router's answer means nothing).
fn delivery_view(d: &crate::model::SinkDelivery, transit_title: Option<&str>) -> DeliveryView {
    DeliveryView {
        verdict: match (d.consistent, d.clean) {
            (false, _) => "accounting broken",
            (true, true) => "everything arrived once, unaltered",
            (true, false) => "problems found",
        },
        invariant: d.invariant.clone(),
        accounting: d.accounting.clone(),
        transit_svg: transit_title
            .filter(|_| !d.transit_buckets.is_empty())
            .map(|title| charts::latency_histogram(&d.transit_buckets, title)),
        timeline_svg: (transit_title.is_some() && !d.timeline.is_empty())
            .then(|| charts::arrival_timeline(&d.timeline)),
        differences: d.differences.clone(),
        problems: d.problems.clone(),
        problems_total: d.problems_total,
    }
}

/// Renders the report as one HTML page.
pub fn render_html(report: &RunReport) -> Result<String, askama::Error> {
    let rows = report
        .tests
        .iter()
        .map(|t| Row {
            name: t.name.clone(),
            group: t.group.clone(),
            outcome: t.outcome.as_str(),
            duration: format_duration_ms(t.duration_ms),
            message: t.message.clone(),
            figures: t
                .figures
                .iter()
                .map(|f| format!("{}: {}", f.label, f.value))
                .collect::<Vec<_>>()
                .join(" · "),
            has_load: t.load.is_some(),
            anchor: anchor(&t.name),
        })
        .collect();
    let panels = report
        .tests
        .iter()
        .filter_map(|t| t.load.as_ref().map(|load| (t, load)))
        .map(|(t, load)| {
            let m = &load.metrics;
            let mut figures = vec![
                ("outcome".to_string(), t.outcome.as_str().to_string()),
                (
                    "attempted / succeeded / warnings / failed / unknown".to_string(),
                    format!(
                        "{} / {} / {} / {} / {}",
                        m.counts.attempted,
                        m.counts.succeeded,
                        m.counts.warnings,
                        m.counts.failed,
                        m.counts.unknown
                    ),
                ),
                (
                    "error rate".into(),
                    opt(m.error_rate.map(|r| format!("{:.3} %", r * 100.0))),
                ),
                (
                    "images/s (delivered)".into(),
                    opt(m.images_per_s.map(|v| format!("{v:.1}"))),
                ),
                (
                    "sends/s (attempted)".into(),
                    opt(m.attempts_per_s.map(|v| format!("{v:.1}"))),
                ),
                ("MB/s".into(), opt(m.mb_per_s.map(|v| format!("{v:.2}")))),
                ("wall time".into(), format!("{:.1} s", m.wall_time_s)),
            ];
            if let Some(l) = &m.latency_ms {
                figures.push((
                    "latency from intended start p50 / p90 / p95 / p99 / p99.9 / max".into(),
                    format!(
                        "{:.1} / {:.1} / {:.1} / {:.1} / {:.1} / {:.1} ms",
                        l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms
                    ),
                ));
            }
            if let Some(s) = &m.service_time_ms {
                figures.push((
                    "service time p50 / p95 / p99".into(),
                    format!("{:.1} / {:.1} / {:.1} ms", s.p50_ms, s.p95_ms, s.p99_ms),
                ));
            }
            let status: Vec<String> = m
                .status_counts
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            if !status.is_empty() {
                figures.push(("responses by status".into(), status.join(", ")));
            }
            let transit_svg = load.transit.as_ref().map(|transit| {
                let summary = transit
                    .summary
                    .as_ref()
                    .map(|s| {
                        format!(
                            "p50 {:.0} ms · p95 {:.0} ms · max {:.0} ms",
                            s.p50_ms, s.p95_ms, s.max_ms
                        )
                    })
                    .unwrap_or_else(|| "no study became visible".into());
                figures.push((
                    "C-FIND verification (studies verified / missing)".into(),
                    format!("{} / {}", transit.verified, transit.missing),
                ));
                figures.push(("transit time (last send to visible)".into(), summary));
                charts::latency_histogram(
                    &transit.buckets,
                    "Transit time (last send → visible by C-FIND)",
                )
            });
            let retrieval = load.retrieval.as_ref().map(|r| RetrievalView {
                verdict: match (r.judged.consistent, r.clean) {
                    (false, _) => "accounting broken",
                    (true, true) => "every study came back whole, as sent",
                    (true, false) => "problems found",
                },
                method: r.method.clone(),
                peer: r.peer.clone(),
                studies_delivered: r.studies_delivered,
                studies: r.studies.clone(),
                judged: delivery_view(&r.judged, None),
            });
            let commitment = load.commitment.as_ref().map(|c| CommitmentView {
                verdict: if c.clean {
                    "every instance committed"
                } else {
                    "not everything committed"
                },
                commitment: c.clone(),
            });
            let delivery = load.delivery.as_ref().map(|d| {
                if let Some(t) = &d.transit {
                    figures.push((
                        "transit to the sink p50 / p95 / p99 / max".into(),
                        format!(
                            "{:.1} / {:.1} / {:.1} / {:.1} ms",
                            t.p50_ms, t.p95_ms, t.p99_ms, t.max_ms
                        ),
                    ));
                }
                delivery_view(
                    d,
                    Some("Transit time (router's answer → arrival at the sink)"),
                )
            });
            let capacity = load.capacity.as_ref().map(|c| {
                let steps = c.by_offered_rate();
                CapacityView {
                    highest: c.highest_sustained_rate.map_or_else(
                        || "none: the first step already failed".into(),
                        |r| format!("{r:.1} sends/s"),
                    ),
                    curve: c.clone(),
                    rates_svg: charts::capacity_rates(&steps),
                    latency_svg: charts::capacity_latency(&steps, c.max_p95_latency_ms),
                }
            });
            let figures = figures
                .into_iter()
                .map(|(label, value)| Figure { label, value })
                .collect();
            Panel {
                name: t.name.clone(),
                anchor: anchor(&t.name),
                figures,
                histogram_svg: charts::latency_histogram(
                    &m.latency_buckets,
                    "Latency from intended start",
                ),
                timeline_svg: charts::throughput_timeline(&m.timeline),
                scatter_svg: charts::latency_scatter(&m.latency_series),
                transit_svg,
                errors: m.errors.clone(),
                delivery,
                retrieval,
                commitment,
                capacity,
                groups: load.groups.clone(),
            }
        })
        .collect();
    let page = ReportPage {
        title: &report.title,
        target: &report.target,
        started: format_unix_ms(report.started_unix_ms),
        finished: format_unix_ms(report.finished_unix_ms),
        duration: format!("{:.1} s", report.duration_s()),
        totals: report.totals(),
        donut_svg: charts::outcome_donut(&report.totals()),
        duration_svg: charts::duration_bars(&report.tests, SLOWEST_SHOWN),
        configuration: &report.configuration,
        rows,
        panels,
    };
    page.render()
}

fn opt(value: Option<String>) -> String {
    value.unwrap_or_else(|| "n/a".into())
}

fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn format_duration_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}

/// `2026-11-27 20:45:13 UTC`.
pub(crate) fn format_unix_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms after the Unix epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_format_as_utc_dates() {
        assert_eq!(format_unix_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_ms(1_795_812_313_000), "2026-11-27 20:45:13 UTC");
    }
}
