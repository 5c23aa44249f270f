//! `report.md`: the report's tables as Markdown.

use std::fmt::Write as _;

use serde_json::Value;

use super::charts::{compact, number};
use super::scenarios::Plan;

/// The cells "deliveries/s | p50 | p90 | p99 | p99.9 | max | disconnects" of one run.
fn latency_cells(bench: &Value) -> String {
    let l = &bench["latency_ms"];
    format!(
        "{:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {}",
        number(&bench["deliveries_per_second"]),
        number(&l["p50"]),
        number(&l["p90"]),
        number(&l["p99"]),
        number(&l["p999"]),
        number(&l["max"]),
        bench["disconnects"]
    )
}

/// An offered rate for the report: "max" when unthrottled or unbounded.
fn rate_name(rate: &Value) -> String {
    match rate.as_u64() {
        Some(0) | None => "max".to_owned(),
        Some(rate) => rate.to_string(),
    }
}

pub(super) fn markdown(report: &Value, plan: &Plan) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Benchmark report ({} mode)\n",
        report["mode"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        md,
        "{} cores; server and client {}. Produced by `cargo xtask bench{}`.\n",
        report["cores"],
        if report["pinned"] == true {
            "pinned to cores 0 and 1"
        } else {
            "not pinned"
        },
        if plan.quick { " --quick" } else { "" }
    );
    if plan.quick {
        let _ = writeln!(md, "Quick mode: brief and small runs that check the harness; do not quote these numbers.\n");
    }
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
    for row in report["fanout"].as_array().into_iter().flatten() {
        let b = &row["bench"];
        let runs: Vec<String> = row["attempts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{} → {} ({})",
                    rate_name(&a["rate"]),
                    compact(number(&a["deliveries_per_second"])),
                    a["disconnects"]
                )
            })
            .collect();
        if b.is_null() {
            let _ = writeln!(
                md,
                "| {} | none clean | | | | | {} |",
                row["subscribers"],
                runs.join("; ")
            );
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {:.1} | {} | {} |",
            row["subscribers"],
            rate_name(&row["rate"]),
            b["connections_held"],
            number(&b["deliveries_per_second"]),
            number(&b["bytes_per_second"]) / 1048576.0,
            b["disconnects"],
            runs.join("; ")
        );
    }
    let _ = writeln!(
        md,
        "\n## Latency against load ({} subscribers)\n",
        plan.latency_subscribers
    );
    let _ = writeln!(md, "| events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects |\n|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in report["latency"].as_array().into_iter().flatten() {
        let _ = writeln!(md, "| {} | {} |", row["rate"], latency_cells(&row["bench"]));
    }
    let _ = writeln!(
        md,
        "\n## The same load over fewer or more subscribers ({} deliveries/s)\n",
        plan.spread_deliveries
    );
    let _ = writeln!(md, "| subscribers | events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in report["latency_spread"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            row["subscribers"],
            row["rate"],
            latency_cells(&row["bench"])
        );
    }
    let idle = &report["idle"];
    let _ = writeln!(md, "\n## Idle connections (keepalive 1 s)\n");
    let _ = writeln!(
        md,
        "{} of {} streams held; server RSS {} → {} KiB = **{:.1} KiB per connection**; server CPU {:.1}% of one core.",
        idle["held"],
        idle["connections"],
        idle["rss_before_kib"],
        idle["rss_during_kib"],
        number(&idle["rss_per_connection_kib"]),
        number(&idle["cpu_percent_of_one_core"])
    );
    let _ = writeln!(
        md,
        "\n## HTTP publishing (one client, one request at a time)\n\n| run | offered events/s | events per request | published events/s | errors |\n|---|---:|---:|---:|---|"
    );
    for row in report["http_publish"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| {} | {} | {} | **{:.0}** | {} |",
            row["name"].as_str().unwrap_or("?"),
            rate_name(&row["offered_rate"]),
            row["events_per_request"],
            number(&row["published_per_second"]),
            row["bench"]["errors"]
        );
    }
    let _ = writeln!(
        md,
        "\n## Criterion (mean)\n\n| benchmark | mean |\n|---|---:|"
    );
    for row in report["criterion"].as_array().into_iter().flatten() {
        let ns = number(&row["mean_ns"]);
        let shown = if ns >= 1e6 {
            format!("{:.2} ms", ns / 1e6)
        } else if ns >= 1e3 {
            format!("{:.2} µs", ns / 1e3)
        } else {
            format!("{ns:.1} ns")
        };
        let _ = writeln!(md, "| {} | {shown} |", row["id"].as_str().unwrap_or("?"));
    }
    let _ = writeln!(
        md,
        "\nCharts: `deliveries.svg`, `latency.svg`. Raw data: `report.json`."
    );
    md
}
