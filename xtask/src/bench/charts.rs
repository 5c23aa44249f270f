//! `deliveries.svg` and `latency.svg`: line charts drawn as SVG text.

use std::fmt::Write as _;

use super::report::{Fanout, FirehoseRun};

// Chart size and margins, in SVG user units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Series longer than this are drawn as bare lines, with evenly spaced x labels instead
/// of one label and one dot per point (a time series of many samples).
const MARKED_POINTS: usize = 30;

/// A line chart: one series per (name, points) on shared axes.
pub(crate) fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> String {
    let colors = ["#2e6fdb", "#d9822b", "#0f9960", "#c23030"];
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max).max(1.0);
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.1;
    let x = |v: f64| LEFT + v / x_max * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - v / y_max * (HEIGHT - TOP - BOTTOM);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#333\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{x_label}</text>\n\
         <text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{y_label}</text>\n",
        WIDTH / 2.0, HEIGHT - BOTTOM, WIDTH - RIGHT, HEIGHT - BOTTOM, HEIGHT - BOTTOM, (LEFT + WIDTH - RIGHT) / 2.0, HEIGHT - 12.0, (TOP + HEIGHT - BOTTOM) / 2.0, (TOP + HEIGHT - BOTTOM) / 2.0
    );
    for i in 0..=4 {
        let value = y_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y(value) + 4.0,
            compact(value)
        );
    }
    for vx in x_labels(series.first().map(|s| s.1.as_slice()).unwrap_or(&[]), x_max) {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x(vx),
            HEIGHT - BOTTOM + 16.0,
            compact(vx)
        );
    }
    for (index, (name, points)) in series.iter().enumerate() {
        let color = colors[index % colors.len()];
        let path: Vec<String> = points
            .iter()
            .map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for &(px, py) in points.iter().filter(|_| points.len() <= MARKED_POINTS) {
            let _ = writeln!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                x(px),
                y(py)
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"{color}\">{name}</text>",
            LEFT + 10.0,
            TOP + 14.0 * (index as f64 + 1.0)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Where the x axis is labelled: at each point of a short series, else at five evenly
/// spaced values from 0 to `x_max`.
fn x_labels(points: &[(f64, f64)], x_max: f64) -> Vec<f64> {
    if points.len() <= MARKED_POINTS {
        points.iter().map(|p| p.0).collect()
    } else {
        (0..=4).map(|i| x_max * f64::from(i) / 4.0).collect()
    }
}

/// A number in few characters: `1.2M`, `35k`, `120`, `0.75`.
pub(crate) fn compact(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.0}k", value / 1e3)
    } else if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// Deliveries per second of the best clean fan-out run against subscribers; subscriber
/// counts with no clean run have no point.
pub(super) fn deliveries_chart(fanout: &[Fanout]) -> String {
    let points: Vec<(f64, f64)> = fanout
        .iter()
        .filter_map(|row| {
            let bench = row.bench.as_ref()?;
            Some((row.subscribers as f64, bench.deliveries_per_second))
        })
        .collect();
    line_chart(
        "Deliveries per second against subscribers",
        "subscribers",
        "deliveries/s",
        &[("deliveries/s", points)],
    )
}

/// p50, p90 and p99 latency against deliveries per second; runs without latency
/// samples have no point.
pub(super) fn latency_chart(runs: &[FirehoseRun]) -> String {
    let (mut p50, mut p90, mut p99) = (Vec::new(), Vec::new(), Vec::new());
    for run in runs {
        let Some(latency) = &run.bench.latency_ms else {
            continue;
        };
        let load = run.bench.deliveries_per_second;
        p50.push((load, latency.p50));
        p90.push((load, latency.p90));
        p99.push((load, latency.p99));
    }
    let series = [("p50", p50), ("p90", p90), ("p99", p99)];
    line_chart(
        "Publish-to-receive latency against load",
        "deliveries/s",
        "latency (ms)",
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_series_gets_five_x_labels_and_no_dots() {
        let points: Vec<(f64, f64)> = (0..=180).map(|s| (f64::from(s), 20.0)).collect();
        let svg = line_chart("RSS", "s", "MiB", &[("RSS", points)]);
        assert_eq!(svg.matches("<circle").count(), 0);
        let x_labels = svg.matches("y=\"366\"").count();
        assert_eq!(x_labels, 5, "{svg}");
        assert!(svg.contains(">180<"), "the last label is the last second");
    }

    #[test]
    fn a_short_series_labels_and_marks_every_point() {
        let points = vec![(10.0, 1.0), (100.0, 2.0), (1000.0, 3.0)];
        let svg = line_chart("fan-out", "subscribers", "deliveries/s", &[("d", points)]);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("y=\"366\"").count(), 3);
    }
}
