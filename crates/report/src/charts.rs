//! Charts drawn with plotters into inline SVG strings: the report needs no script,
//! style sheet or font from anywhere.

use plotters::coord::Shift;
use plotters::prelude::*;

use metrics::{LatencyBucket, LatencyPoint, Outcome, TimelinePoint};

use crate::model::{CapacityStep, OutcomeTotals, TestOutcome, TestRecord};

const PASSED: RGBColor = RGBColor(46, 160, 67);
const FAILED: RGBColor = RGBColor(207, 34, 46);
const SKIPPED: RGBColor = RGBColor(154, 103, 0);
const UNKNOWN: RGBColor = RGBColor(130, 80, 223);
const NEUTRAL: RGBColor = RGBColor(9, 105, 218);

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// Draws into a fresh SVG of the given size. A drawing error (which plotters reports
/// only for impossible ranges) becomes a note in the report instead of a missing page.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> ChartResult,
) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let result = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root));
        result.and_then(|()| root.present().map_err(Into::into))
    };
    match result {
        Ok(()) => out,
        Err(e) => format!(
            "<p class=\"note\">chart unavailable: {}</p>",
            escape(&e.to_string())
        ),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Outcome donut: passed, failed, skipped.
pub fn outcome_donut(totals: &OutcomeTotals) -> String {
    svg((340, 220), |root| {
        let sizes: Vec<f64> = [totals.passed, totals.failed, totals.skipped]
            .iter()
            .map(|&n| n as f64)
            .collect();
        if totals.total == 0 {
            root.draw(&Text::new("no tests", (100, 100), ("sans-serif", 14)))?;
            return Ok(());
        }
        // Pie skips zero-sized slices badly (a zero slice still gets a label): keep only
        // the outcomes that occurred.
        let mut kept_sizes = Vec::new();
        let mut colors = Vec::new();
        let mut labels = Vec::new();
        for ((size, color), label) in sizes
            .iter()
            .zip([PASSED, FAILED, SKIPPED])
            .zip(["passed", "failed", "skipped"])
        {
            if *size > 0.0 {
                kept_sizes.push(*size);
                colors.push(color);
                labels.push(format!("{label} {}", *size as u64));
            }
        }
        let center = (170, 110);
        let mut pie = Pie::new(&center, &75.0, &kept_sizes, &colors, &labels);
        pie.donut_hole(42.0);
        pie.label_style(("sans-serif", 12).into_font().color(&BLACK));
        pie.label_offset(15.0);
        root.draw(&pie)?;
        Ok(())
    })
}

/// Horizontal bars of the slowest tests (at most `limit`).
pub fn duration_bars(tests: &[TestRecord], limit: usize) -> String {
    let mut slowest: Vec<&TestRecord> = tests.iter().collect();
    slowest.sort_by(|a, b| b.duration_ms.total_cmp(&a.duration_ms));
    slowest.truncate(limit);
    let rows = slowest.len().max(1);
    let height = 40 + 18 * rows as u32;
    svg((980, height), |root| {
        let max_s = slowest
            .first()
            .map(|t| t.duration_ms / 1000.0)
            .unwrap_or(1.0)
            .max(0.001);
        let mut chart = ChartBuilder::on(root)
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(540)
            .build_cartesian_2d(0.0..max_s * 1.05, (0..rows).into_segmented())?;
        let names: Vec<String> = slowest.iter().map(|t| t.name.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(8)
            .y_labels(rows)
            .y_label_formatter(&|v| match v {
                // Slowest at the top: plotters counts rows from the bottom.
                SegmentValue::CenterOf(i) => (rows - 1)
                    .checked_sub(*i)
                    .and_then(|rank| names.get(rank).cloned())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc("seconds")
            .label_style(("sans-serif", 11))
            .draw()?;
        chart.draw_series(slowest.iter().enumerate().map(|(rank, t)| {
            let i = rows - 1 - rank;
            let color = match t.outcome {
                TestOutcome::Passed => PASSED,
                TestOutcome::Failed => FAILED,
                TestOutcome::Skipped => SKIPPED,
            };
            Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (t.duration_ms / 1000.0, SegmentValue::Exact(i + 1)),
                ],
                color.mix(0.8).filled(),
            )
        }))?;
        Ok(())
    })
}

/// Latency (or transit-time) histogram over the snapshot's 1-2-5 ms buckets.
pub fn latency_histogram(buckets: &[LatencyBucket], caption: &str) -> String {
    let used: Vec<&LatencyBucket> = buckets.iter().filter(|b| b.count > 0).collect();
    svg((560, 260), |root| {
        if used.is_empty() {
            root.draw(&Text::new("no samples", (240, 120), ("sans-serif", 14)))?;
            return Ok(());
        }
        // Show the span from the first to the last non-empty bucket, gaps included.
        let first = buckets.iter().position(|b| b.count > 0).unwrap_or(0);
        let last = buckets.iter().rposition(|b| b.count > 0).unwrap_or(0);
        let shown = &buckets[first..=last];
        let max = shown.iter().map(|b| b.count).max().unwrap_or(1);
        let mut chart = ChartBuilder::on(root)
            .caption(caption, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0..shown.len()).into_segmented(), 0..(max + max / 10 + 1))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(shown.len().min(12))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => shown
                    .get(*i)
                    .map(|b| format!("≤{}", short_ms(b.upper_ms)))
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc("latency (ms)")
            .y_desc("sends")
            .label_style(("sans-serif", 10))
            .draw()?;
        chart.draw_series(shown.iter().enumerate().map(|(i, b)| {
            Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0),
                    (SegmentValue::Exact(i + 1), b.count),
                ],
                NEUTRAL.mix(0.75).filled(),
            )
        }))?;
        Ok(())
    })
}

fn short_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{}s", trim(ms / 1000.0))
    } else {
        trim(ms)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Sends per second over the run: attempted, delivered and failed (failed + unknown).
pub fn throughput_timeline(timeline: &[TimelinePoint]) -> String {
    svg((560, 260), |root| {
        if timeline.is_empty() {
            root.draw(&Text::new("no samples", (240, 120), ("sans-serif", 14)))?;
            return Ok(());
        }
        let max = timeline.iter().map(|p| p.sent).max().unwrap_or(1).max(1);
        let last = timeline.len() as i64;
        let mut chart = ChartBuilder::on(root)
            .caption("Throughput (per second)", ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0..last, 0..(max + max / 10 + 1))?;
        chart
            .configure_mesh()
            .x_desc("second of run")
            .y_desc("images/s")
            .label_style(("sans-serif", 10))
            .draw()?;
        let series = |pick: fn(&TimelinePoint) -> u64| {
            timeline
                .iter()
                .enumerate()
                .map(move |(i, p)| (i as i64, pick(p)))
        };
        chart
            .draw_series(LineSeries::new(series(|p| p.sent), NEUTRAL.stroke_width(2)))?
            .label("sent")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], NEUTRAL));
        chart
            .draw_series(LineSeries::new(
                series(|p| p.succeeded + p.warnings),
                PASSED.stroke_width(2),
            ))?
            .label("delivered")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], PASSED));
        chart
            .draw_series(LineSeries::new(
                series(|p| p.failed + p.unknown),
                FAILED.stroke_width(2),
            ))?
            .label("failed or unknown")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], FAILED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 10))
            .draw()?;
        Ok(())
    })
}

/// Arrivals at the destination sink per second, with the mean and longest transit of
/// each second on the right axis.
pub fn arrival_timeline(timeline: &[crate::model::ArrivalSecond]) -> String {
    svg((560, 260), |root| {
        if timeline.is_empty() {
            root.draw(&Text::new("no arrivals", (240, 120), ("sans-serif", 14)))?;
            return Ok(());
        }
        let last = timeline.iter().map(|p| p.second).max().unwrap_or(0) as i64 + 1;
        let max_n = timeline
            .iter()
            .map(|p| p.arrivals)
            .max()
            .unwrap_or(1)
            .max(1);
        let max_ms = timeline
            .iter()
            .filter_map(|p| p.max_transit_ms)
            .fold(0.0, f64::max)
            .max(0.001);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Arrivals at the sink (per second) and transit",
                ("sans-serif", 14),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .right_y_label_area_size(50)
            .build_cartesian_2d(0..last, 0..(max_n + max_n / 10 + 1))?
            .set_secondary_coord(0..last, 0.0..max_ms * 1.1);
        chart
            .configure_mesh()
            .x_desc("second of run")
            .y_desc("arrivals/s")
            .label_style(("sans-serif", 10))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("transit (ms)")
            .label_style(("sans-serif", 10))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                timeline.iter().map(|p| (p.second as i64, p.arrivals)),
                PASSED.stroke_width(2),
            ))?
            .label("arrivals")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], PASSED));
        chart
            .draw_secondary_series(LineSeries::new(
                timeline
                    .iter()
                    .filter_map(|p| p.mean_transit_ms.map(|ms| (p.second as i64, ms))),
                NEUTRAL.stroke_width(2),
            ))?
            .label("mean transit")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], NEUTRAL));
        chart
            .draw_secondary_series(LineSeries::new(
                timeline
                    .iter()
                    .filter_map(|p| p.max_transit_ms.map(|ms| (p.second as i64, ms))),
                FAILED.stroke_width(1),
            ))?
            .label("longest transit")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], FAILED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 10))
            .draw()?;
        Ok(())
    })
}

/// Latency of each sampled send against its intended start time.
pub fn latency_scatter(points: &[LatencyPoint]) -> String {
    svg((560, 260), |root| {
        if points.is_empty() {
            root.draw(&Text::new("no samples", (240, 120), ("sans-serif", 14)))?;
            return Ok(());
        }
        let max_t = points.iter().map(|p| p.t_s).fold(0.0, f64::max).max(0.001);
        let max_l = points
            .iter()
            .map(|p| p.latency_ms)
            .fold(0.0, f64::max)
            .max(0.001);
        let mut chart = ChartBuilder::on(root)
            .caption("Latency over time (sampled sends)", ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..max_t * 1.02, 0.0..max_l * 1.1)?;
        chart
            .configure_mesh()
            .x_desc("intended start (s)")
            .y_desc("latency (ms)")
            .label_style(("sans-serif", 10))
            .draw()?;
        chart.draw_series(points.iter().map(|p| {
            let color = match p.outcome {
                Outcome::Success | Outcome::Warning => NEUTRAL,
                Outcome::Failure => FAILED,
                Outcome::Unknown => UNKNOWN,
            };
            Circle::new((p.t_s, p.latency_ms), 2, color.mix(0.7).filled())
        }))?;
        Ok(())
    })
}

/// A capacity search's throughput curve: achieved (delivered/s) against offered rate,
/// each step a point (red when it failed), with the line where achieved = offered.
pub fn capacity_rates(steps: &[&CapacityStep]) -> String {
    svg((560, 280), |root| {
        if steps.is_empty() {
            root.draw(&Text::new("no steps", (240, 120), ("sans-serif", 14)))?;
            return Ok(());
        }
        let max = steps
            .iter()
            .map(|s| s.offered_rate.max(s.achieved_rate.unwrap_or(0.0)))
            .fold(0.0, f64::max)
            .max(0.001)
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption("Achieved against offered rate", ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..max, 0.0..max)?;
        chart
            .configure_mesh()
            .x_desc("offered (sends/s)")
            .y_desc("achieved (delivered/s)")
            .label_style(("sans-serif", 10))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (max, max)],
                BLACK.mix(0.3).stroke_width(1),
            ))?
            .label("achieved = offered")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.mix(0.3)));
        let achieved: Vec<(f64, f64)> = steps
            .iter()
            .filter_map(|s| s.achieved_rate.map(|a| (s.offered_rate, a)))
            .collect();
        chart
            .draw_series(LineSeries::new(achieved, NEUTRAL.stroke_width(2)))?
            .label("achieved")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], NEUTRAL));
        chart.draw_series(steps.iter().filter_map(|s| {
            let color = if s.passed { PASSED } else { FAILED };
            s.achieved_rate
                .map(|a| Circle::new((s.offered_rate, a), 4, color.filled()))
        }))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 10))
            .draw()?;
        Ok(())
    })
}

/// A capacity search's latency curve: p50, p95 and p99 (from intended start) against
/// offered rate on a logarithmic axis (past the limit the queue grows and the
/// percentiles leave the scale of the service time), with the p95 threshold.
pub fn capacity_latency(steps: &[&CapacityStep], max_p95_ms: f64) -> String {
    svg((560, 280), |root| {
        if steps.iter().all(|s| s.p99_ms.is_none()) {
            root.draw(&Text::new("no latencies", (240, 120), ("sans-serif", 14)))?;
            return Ok(());
        }
        let max_x = steps
            .iter()
            .map(|s| s.offered_rate)
            .fold(0.0, f64::max)
            .max(0.001)
            * 1.05;
        let values = steps
            .iter()
            .flat_map(|s| [s.p50_ms, s.p95_ms, s.p99_ms])
            .flatten()
            .chain([max_p95_ms]);
        let (lo, hi) = values.fold((f64::MAX, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let lo = (lo * 0.8).max(0.01);
        let hi = (hi * 1.25).max(lo * 10.0);
        let mut chart = ChartBuilder::on(root)
            .caption("Latency against offered rate", ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..max_x, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("offered (sends/s)")
            .y_desc("latency (ms, log)")
            .label_style(("sans-serif", 10))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, max_p95_ms), (max_x, max_p95_ms)],
                FAILED.mix(0.5).stroke_width(1),
            ))?
            .label("p95 threshold")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], FAILED.mix(0.5)));
        let series = [
            (
                "p50",
                PASSED,
                (|s: &CapacityStep| s.p50_ms) as fn(&CapacityStep) -> Option<f64>,
            ),
            ("p95", NEUTRAL, |s: &CapacityStep| s.p95_ms),
            ("p99", UNKNOWN, |s: &CapacityStep| s.p99_ms),
        ];
        for (label, color, pick) in series {
            let points: Vec<(f64, f64)> = steps
                .iter()
                .filter_map(|s| pick(s).map(|v| (s.offered_rate, v.max(lo))))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color));
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 10))
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn donut_is_an_svg_with_each_outcome_label() {
        let totals = OutcomeTotals {
            total: 5,
            passed: 3,
            failed: 1,
            skipped: 1,
        };
        let svg = outcome_donut(&totals);
        assert!(svg.starts_with("<svg"), "{svg}");
        for label in ["passed 3", "failed 1", "skipped 1"] {
            assert!(svg.contains(label), "missing {label}");
        }
    }

    #[test]
    fn empty_inputs_still_render() {
        assert!(outcome_donut(&OutcomeTotals::default()).contains("no tests"));
        assert!(latency_histogram(&[], "x").contains("no samples"));
        assert!(throughput_timeline(&[]).contains("no samples"));
        assert!(latency_scatter(&[]).contains("no samples"));
        assert!(duration_bars(&[], 10).starts_with("<svg"));
        assert!(capacity_rates(&[]).contains("no steps"));
        assert!(capacity_latency(&[], 60.0).contains("no latencies"));
    }
}
