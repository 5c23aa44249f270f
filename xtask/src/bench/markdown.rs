//! `report.md`: the report's tables as Markdown.

use std::fmt::{Display, Write as _};

use sse_cli::bench_report::BenchReport;

use super::charts::compact;
use super::report::{CriterionMean, Fanout, FirehoseRun, HttpPublish, Idle, Report};
use super::scenarios::Plan;

// Writing to a String cannot fail, so the `fmt::Result` of `writeln!` is ignored
// throughout.

/// The whole Markdown report.
pub(super) fn markdown(report: &Report, plan: &Plan) -> String {
    let mut md = String::new();
    heading(&mut md, report, plan);
    fanout_table(&mut md, &report.fanout);
    latency_table(&mut md, &report.latency, plan);
    spread_table(&mut md, &report.latency_spread, plan);
    idle_section(&mut md, &report.idle);
    http_publish_table(&mut md, &report.http_publish);
    criterion_table(&mut md, &report.criterion);
    let _ = writeln!(
        md,
        "\nCharts: `deliveries.svg`, `latency.svg`. Raw data: `report.json`."
    );
    md
}

fn heading(md: &mut String, report: &Report, plan: &Plan) {
    let _ = writeln!(md, "# Benchmark report ({} mode)\n", report.mode);
    let _ = writeln!(
        md,
        "{} cores; server and client {}. Produced by `cargo xtask bench{}`.\n",
        report.cores,
        if report.pinned {
            "pinned to cores 0 and 1"
        } else {
            "not pinned"
        },
        if plan.quick { " --quick" } else { "" }
    );
    if plan.quick {
        let _ = writeln!(md, "Quick mode: brief and small runs that check the harness; do not quote these numbers.\n");
    }
}

fn fanout_table(md: &mut String, rows: &[Fanout]) {
    let _ = writeln!(
        md,
        "## Fan-out (firehose, 64-byte events): the most with no subscriber cut off\n"
    );
    let _ = writeln!(
        md,
        "Events/s \"max\" means as fast as the hub accepts; a number is the highest rate found \
         that kept every subscriber (the unthrottled run outran the reader and lagging \
         subscribers were cut off). Runs lists every try as events/s → deliveries/s (disconnects).\n"
    );
    let _ = writeln!(
        md,
        "| subscribers | events/s | held | deliveries/s | MiB/s | disconnects | runs |\n|---:|---:|---:|---:|---:|---:|---|"
    );
    for row in rows {
        let runs: Vec<String> = row
            .attempts
            .iter()
            .map(|a| {
                format!(
                    "{} → {} ({})",
                    rate_name(Some(a.rate)),
                    compact(a.deliveries_per_second),
                    a.disconnects
                )
            })
            .collect();
        let Some(b) = &row.bench else {
            let _ = writeln!(
                md,
                "| {} | none clean | | | | | {} |",
                row.subscribers,
                runs.join("; ")
            );
            continue;
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.1} | {} | {} |",
            row.subscribers,
            rate_name(Some(row.rate)),
            b.connections_held,
            b.deliveries_per_second,
            b.bytes_per_second / 1048576.0,
            b.disconnects,
            runs.join("; ")
        );
    }
}

fn latency_table(md: &mut String, rows: &[FirehoseRun], plan: &Plan) {
    let _ = writeln!(
        md,
        "\n## Latency against load ({} subscribers)\n",
        plan.latency_subscribers
    );
    let _ = writeln!(md, "| events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects |\n|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(md, "| {} | {} |", row.rate, latency_cells(&row.bench));
    }
}

fn spread_table(md: &mut String, rows: &[FirehoseRun], plan: &Plan) {
    let _ = writeln!(
        md,
        "\n## The same load over fewer or more subscribers ({} deliveries/s)\n",
        plan.spread_deliveries
    );
    let _ = writeln!(md, "| subscribers | events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            row.subscribers,
            row.rate,
            latency_cells(&row.bench)
        );
    }
}

fn idle_section(md: &mut String, idle: &Idle) {
    let _ = writeln!(md, "\n## Idle connections (keepalive 1 s)\n");
    let _ = writeln!(
        md,
        "{} of {} streams held; server RSS {} → {} KiB = **{} KiB per connection**; server CPU {}% of one core.",
        idle.held,
        idle.connections,
        or_na(idle.rss_before_kib),
        or_na(idle.rss_during_kib),
        or_na(idle.rss_per_connection_kib.map(|kib| format!("{kib:.1}"))),
        or_na(idle.cpu_percent_of_one_core.map(|cpu| format!("{cpu:.1}")))
    );
}

fn http_publish_table(md: &mut String, rows: &[HttpPublish]) {
    let _ = writeln!(
        md,
        "\n## HTTP publishing (one client, one request at a time)\n\n| run | offered events/s | events per request | published events/s | errors |\n|---|---:|---:|---:|---|"
    );
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | **{:.0}** | {} |",
            row.name,
            rate_name(row.offered_rate),
            row.events_per_request,
            row.published_per_second,
            errors_json(&row.bench)
        );
    }
}

fn criterion_table(md: &mut String, rows: &[CriterionMean]) {
    let _ = writeln!(
        md,
        "\n## Criterion (mean)\n\n| benchmark | mean |\n|---|---:|"
    );
    for row in rows {
        let ns = row.mean_ns;
        let shown = if ns >= 1e6 {
            format!("{:.2} ms", ns / 1e6)
        } else if ns >= 1e3 {
            format!("{:.2} µs", ns / 1e3)
        } else {
            format!("{ns:.1} ns")
        };
        let _ = writeln!(md, "| {} | {shown} |", row.id);
    }
}

/// The cells "deliveries/s | p50 | p90 | p99 | p99.9 | max | disconnects" of one run;
/// the percentiles are "n/a" when no event carried a send time.
fn latency_cells(bench: &BenchReport) -> String {
    let percentiles = match &bench.latency_ms {
        Some(l) => format!(
            "{:.2} | {:.2} | {:.2} | {:.2} | {:.2}",
            l.p50, l.p90, l.p99, l.p999, l.max
        ),
        None => ["n/a"; 5].join(" | "),
    };
    format!(
        "{:.0} | {percentiles} | {}",
        bench.deliveries_per_second, bench.disconnects
    )
}

/// A run's errors as compact JSON, `{}` when there were none.
fn errors_json(bench: &BenchReport) -> String {
    serde_json::to_string(&bench.errors).expect("a map of strings to numbers always serialises")
}

/// An offered rate for the report: "max" when unthrottled (0) or unbounded (`None`).
fn rate_name(rate: Option<u64>) -> String {
    match rate {
        Some(0) | None => "max".to_owned(),
        Some(rate) => rate.to_string(),
    }
}

/// A measurement, or "n/a" where it could not be taken.
fn or_na(value: Option<impl Display>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(latency: Option<sse_cli::bench_report::Latency>) -> BenchReport {
        BenchReport {
            url: "http://127.0.0.1:1/subscribe/bench".to_owned(),
            connections_requested: 10,
            connections_held: 10,
            measured_seconds: 1.0,
            events: 2_000,
            events_total: 2_000,
            events_published: 0,
            deliveries_per_second: 2_000.0,
            bytes: 0,
            bytes_per_second: 0.0,
            latency_ms: latency,
            errors: Default::default(),
            disconnects: 3,
        }
    }

    #[test]
    fn latency_cells_show_percentiles_in_order() {
        let latency = sse_cli::bench_report::Latency {
            samples: 2_000,
            p50: 0.5,
            p90: 0.9,
            p99: 1.5,
            p999: 2.0,
            max: 3.25,
        };
        assert_eq!(
            latency_cells(&run(Some(latency))),
            "2000 | 0.50 | 0.90 | 1.50 | 2.00 | 3.25 | 3"
        );
    }

    #[test]
    fn latency_cells_without_samples_say_so_instead_of_zero() {
        assert_eq!(
            latency_cells(&run(None)),
            "2000 | n/a | n/a | n/a | n/a | n/a | 3"
        );
    }
}
