//! `report.md`: the report's tables as Markdown.

use std::fmt::{Display, Write as _};

use sse_cli::bench_report::{BenchReport, ReceiveClock};

use super::charts::compact;
use super::report::{
    ClientCheck, ClusterFanout, ClusterLatency, ClusterReport, ClusterRun, ClusterSection,
    CriterionMean, Fanout, FirehoseRun, HttpPublish, Idle, IdleMemory, NchanSection, Report,
    WrkRun,
};
use super::scenarios::Plan;

// Writing to a String cannot fail, so the `fmt::Result` of `writeln!` is ignored
// throughout.

/// The whole Markdown report.
pub(super) fn markdown(report: &Report, plan: &Plan) -> String {
    let mut md = String::new();
    heading(&mut md, report, plan);
    if let Some(check) = &report.client_check {
        client_check_section(&mut md, check);
    }
    if let Some(rows) = &report.fanout {
        fanout_table(&mut md, rows);
    }
    if let Some(rows) = &report.latency {
        latency_table(&mut md, rows, plan);
    }
    if let Some(rows) = &report.latency_spread {
        spread_table(&mut md, rows, plan);
    }
    if let Some(idle) = &report.idle {
        idle_section(&mut md, idle);
    }
    if let Some(rows) = &report.idle_memory {
        idle_memory_table(&mut md, rows);
    }
    if let Some(rows) = &report.http_publish {
        http_publish_table(&mut md, rows);
    }
    if let Some(nchan) = &report.http_publish_nchan {
        nchan_section(&mut md, nchan);
    }
    if let Some(cluster) = &report.cluster {
        cluster_section(&mut md, cluster);
    }
    if let Some(rows) = &report.criterion {
        criterion_table(&mut md, rows);
    }
    let charts: Vec<&str> = [
        (report.fanout.is_some(), "`deliveries.svg`"),
        (report.latency.is_some(), "`latency.svg`"),
    ]
    .into_iter()
    .filter_map(|(drawn, name)| drawn.then_some(name))
    .collect();
    if !charts.is_empty() {
        let _ = write!(md, "\nCharts: {}.", charts.join(", "));
    }
    let _ = writeln!(md, "\nRaw data: `report.json`.");
    md
}

fn heading(md: &mut String, report: &Report, plan: &Plan) {
    let _ = writeln!(md, "# Benchmark report ({} mode)\n", report.mode);
    let _ = writeln!(
        md,
        "{} cores; server and client {}. Produced by `cargo xtask bench{}{}`.\n",
        report.cores,
        if report.pinned {
            "pinned to cores 0 and 1"
        } else {
            "not pinned"
        },
        if plan.quick { " --quick" } else { "" },
        report
            .only
            .as_ref()
            .map_or_else(String::new, |only| format!(" --only {}", only.join(",")))
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
    let _ = writeln!(
        md,
        "Read by `ssectl bench --threads 1` on the client's core. Client CPU is its own use \
         in % of one core and, as \"wait\", how long it was ready but other processes had \
         its core; a high wait means a busy machine, not a slow server. The client \
         self-check shows what the client itself adds.\n"
    );
    let _ = writeln!(md, "| events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects | client CPU |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            row.rate,
            latency_cells(&row.bench),
            client_cpu_cell(&row.bench)
        );
    }
    client_cpu_note(md, rows);
}

fn spread_table(md: &mut String, rows: &[FirehoseRun], plan: &Plan) {
    let _ = writeln!(
        md,
        "\n## The same load over fewer or more subscribers ({} deliveries/s)\n",
        plan.spread_deliveries
    );
    let _ = writeln!(md, "| subscribers | events/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects | client CPU |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.subscribers,
            row.rate,
            latency_cells(&row.bench),
            client_cpu_cell(&row.bench)
        );
    }
    client_cpu_note(md, rows);
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

fn idle_memory_table(md: &mut String, rows: &[IdleMemory]) {
    let _ = writeln!(
        md,
        "\n## Idle memory per protocol (server peak RSS over RSS before, per stream held)\n\n| protocol | streams held | KiB per stream | connections per GiB |\n|---|---:|---:|---:|"
    );
    for row in rows {
        if let Some(why) = &row.skipped {
            let _ = writeln!(md, "| {} | skipped: {why} | | |", row.protocol);
            continue;
        }
        let _ = writeln!(
            md,
            "| {} | {} of {} | {} | **{}** |",
            row.protocol,
            row.held,
            row.connections,
            or_na(row.rss_per_connection_kib.map(|kib| format!("{kib:.2}"))),
            or_na(row.connections_per_gib.map(|n| format!("{n:.0}")))
        );
    }
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

fn nchan_section(md: &mut String, section: &NchanSection) {
    let _ = writeln!(
        md,
        "\n### Single events against nginx + nchan (same client, alternating)\n"
    );
    let comparison = match section {
        NchanSection::Skipped { reason } => {
            let _ = writeln!(md, "Skipped: {reason}.");
            return;
        }
        NchanSection::Measured(comparison) => comparison,
    };
    let wrk = comparison.wrk_command.as_deref().map_or_else(
        || "`wrk` is not installed, so there is no figure at 32 connections".to_owned(),
        |command| format!("and `{command}`"),
    );
    let _ = writeln!(
        md,
        "{}, one worker pinned to the core of our server; client: `{}`, {wrk}.\n\n\
         | round | ours events/s | nchan events/s | ours/nchan | wrk: ours req/s | wrk: nchan req/s | wrk: floor req/s | server µs/request (ours; nchan; floor) | errors (ours; nchan) |\n\
         |---:|---:|---:|---:|---:|---:|---:|---|---|",
        comparison.nginx_version, comparison.client_command
    );
    let ratio = |ours: f64, nchan: f64| (nchan > 0.0).then(|| format!("{:.2}x", ours / nchan));
    let rate = |run: &Option<WrkRun>| or_na(run.as_ref().map(|r| format!("{:.0}", r.per_second)));
    let cpu = |run: &Option<WrkRun>| {
        or_na(
            run.as_ref()
                .and_then(|r| r.server_us)
                .map(|us| format!("{us:.2}")),
        )
    };
    for (index, round) in comparison.rounds.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {} | {:.0} | {:.0} | {} | {} | {} | {} | {}; {}; {} | {}; {} |",
            index + 1,
            round.ours_per_second,
            round.nchan_per_second,
            or_na(ratio(round.ours_per_second, round.nchan_per_second)),
            rate(&round.ours_wrk),
            rate(&round.nchan_wrk),
            rate(&round.floor_wrk),
            cpu(&round.ours_wrk),
            cpu(&round.nchan_wrk),
            cpu(&round.floor_wrk),
            errors_json(&round.ours),
            errors_json(&round.nchan)
        );
    }
    let _ = writeln!(
        md,
        "\nMedians: ours **{:.0}**, nchan **{:.0}** events/s; ours/nchan, median of the \
         rounds: **{}** (target {:.1}x: {}); with wrk: {}.",
        comparison.ours_median,
        comparison.nchan_median,
        or_na(comparison.ratio.map(|r| format!("{r:.2}x"))),
        comparison.target_ratio,
        if comparison.met { "met" } else { "not met" },
        or_na(comparison.wrk_ratio.map(|r| format!("{r:.2}x")))
    );
    if let (Some(round_trip), Some(work)) = (comparison.round_trip_us, comparison.ours_server_us) {
        // Far above the server's work, the round trip is mostly waking up either side.
        let waiting = round_trip > 3.0 * work;
        let _ = writeln!(
            md,
            "\nThe project's client sends one request at a time: a round trip to ours took \
             {round_trip:.1} µs (median), of which our server's work is about {work:.2} µs \
             (its CPU time per request under wrk){}.",
            if waiting {
                "; its figure measures the round trip of this machine (waking the client \
                 and the server) more than either server"
            } else {
                ""
            }
        );
    }
    if let Some(cpu) = comparison.cpu_ratio {
        let _ = writeln!(
            md,
            "\nBy server CPU time per request under wrk (requests per CPU second, whatever \
             limits the client): ours/nchan **{cpu:.2}x** (median of the rounds){}.",
            comparison
                .floor_cpu_ratio
                .map(|floor| format!("; the floor/nchan {floor:.2}x"))
                .unwrap_or_default()
        );
    }
    if let Some(floor) = comparison.floor_ratio {
        let _ = writeln!(
            md,
            "\nThe floor (`cargo xtask publish-floor`: on tokio like ours, one read and one \
             write per request, a fixed `202`, nothing stored or checked) reached **{floor:.2}x** \
             nchan under wrk (median of the rounds): the most this client measures of a \
             server here, whatever it does (wrk's own core is then the limit){}.",
            if floor < comparison.target_ratio {
                format!(
                    ", so the {:.1}x target is out of reach of this measurement on this machine",
                    comparison.target_ratio
                )
            } else {
                String::new()
            }
        );
    }
}

fn cluster_section(md: &mut String, section: &ClusterSection) {
    let _ = writeln!(md, "\n## Cluster (Redis)\n");
    let cluster = match section {
        ClusterSection::Skipped { reason } => {
            let _ = writeln!(md, "Skipped: {reason}.");
            return;
        }
        ClusterSection::Measured(cluster) => cluster,
    };
    let _ = writeln!(
        md,
        "{}, started as `{}`, {}; the nodes are `ssectl serve --redis` on the same core, \
         one cluster name per scenario; `ssectl bench` alone on the other core. CPU figures \
         cover the client's whole run (connecting and draining included): servers from \
         /proc, Redis from `INFO cpu` (user + system).\n",
        cluster.redis_version,
        cluster.redis_command,
        match cluster.redis_core {
            Some(core) => format!("pinned to core {core}"),
            None => "not pinned".to_owned(),
        }
    );
    cluster_publish(md, &cluster.publish);
    cluster_fanout(md, &cluster.fanout);
    cluster_latency(md, &cluster.latency);
    redis_cpu_table(md, cluster);
}

fn cluster_publish(md: &mut String, run: &ClusterRun) {
    let _ = writeln!(
        md,
        "### Publishing through Redis (one client, NDJSON batches back to back)\n\n\
         | published events/s | Redis CPU µs/event | node CPU s | errors |\n|---:|---:|---:|---|"
    );
    let _ = writeln!(
        md,
        "| **{:.0}** | {} | {} | {} |\n",
        run.published_per_second,
        decimals(run.redis_cpu_us_per_event, 2),
        decimals(run.servers_cpu_seconds, 2),
        errors_json(&run.bench)
    );
    commands(md, run);
}

fn cluster_fanout(md: &mut String, fanout: &ClusterFanout) {
    let _ = writeln!(
        md,
        "\n### Fan-out fed from Redis ({} events/s published to the node its {} subscribers read)\n\n\
         | node | held | deliveries/s | disconnects | server CPU s | server µs/delivery | p50 ms | p99 ms | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|",
        fanout.rate, fanout.subscribers
    );
    for (name, run) in [
        ("in memory", &fanout.in_memory),
        ("cluster", &fanout.cluster),
    ] {
        let b = &run.bench;
        let (p50, p99) = b
            .latency_ms
            .as_ref()
            .map_or(("n/a".to_owned(), "n/a".to_owned()), |l| {
                (format!("{:.2}", l.p50), format!("{:.2}", l.p99))
            });
        let _ = writeln!(
            md,
            "| {name} | {} | {:.0} | {} | {} | {} | {p50} | {p99} | {} |",
            b.connections_held,
            b.deliveries_per_second,
            b.disconnects,
            decimals(run.servers_cpu_seconds, 2),
            decimals(run.servers_cpu_us_per_delivery, 3),
            errors_json(b)
        );
    }
    let _ = writeln!(
        md,
        "\nCluster deliveries/s are **{:.1}%** of in memory.\n",
        fanout.deliveries_ratio * 100.0
    );
    commands(md, &fanout.in_memory);
    commands(md, &fanout.cluster);
}

fn cluster_latency(md: &mut String, latency: &ClusterLatency) {
    let _ = writeln!(
        md,
        "\n### Publish-to-receive latency across nodes ({} events/s, {} subscribers)\n\n\
         | path | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | disconnects |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        latency.rate, latency.subscribers
    );
    for (name, run) in [
        ("one in-memory node", &latency.one_node),
        ("node A → Redis → node B", &latency.cross_node),
    ] {
        let _ = writeln!(md, "| {name} | {} |", latency_cells(&run.bench));
    }
    let _ = writeln!(md);
    commands(md, &latency.one_node);
    commands(md, &latency.cross_node);
}

fn redis_cpu_table(md: &mut String, cluster: &ClusterReport) {
    let _ = writeln!(
        md,
        "\n### Redis CPU per event\n\n\
         | run | events published | Redis CPU s | µs per event | events/s per Redis core |\n\
         |---|---:|---:|---:|---:|"
    );
    for (name, run) in [
        ("publishing, back to back", &cluster.publish),
        ("fan-out, one node listening", &cluster.fanout.cluster),
        ("latency, node B listening", &cluster.latency.cross_node),
    ] {
        let per_core = run
            .redis_cpu_us_per_event
            .filter(|us| *us > 0.0)
            .map(|us| 1e6 / us);
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} |",
            run.bench.events_published,
            decimals(run.redis_cpu_seconds, 2),
            decimals(run.redis_cpu_us_per_event, 2),
            decimals(per_core, 0)
        );
    }
    let _ = writeln!(
        md,
        "\nBack to back, Redis is busy with events and the figure is its cost per event; at \
         fixed low rates its own background work (timers, the nodes' heartbeats) is spread \
         over few events and inflates it."
    );
}

/// The commands of one run, as a list.
fn commands(md: &mut String, run: &ClusterRun) {
    for server in &run.server_commands {
        let _ = writeln!(md, "- server: `{server}`");
    }
    let _ = writeln!(md, "- client: `{}`", run.client_command);
}

/// A measurement with `places` decimals, or "n/a".
fn decimals(value: Option<f64>, places: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.places$}"))
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

/// Above this share of the window spent waiting for a core, a run's latency is not the
/// server's alone (as `ssectl bench` warns).
const BUSY_MACHINE_WAIT_PERCENT: f64 = 20.0;

/// The client's CPU over the window, in % of one core, marked when near its limit,
/// and how long it waited for a core ("wait").
fn client_cpu_cell(bench: &BenchReport) -> String {
    let Some(cpu) = &bench.client_cpu else {
        return "n/a".to_owned();
    };
    let used = if cpu.near_limit {
        format!("**{:.0}%** (near limit)", cpu.percent_of_one_core)
    } else {
        format!("{:.0}%", cpu.percent_of_one_core)
    };
    match cpu.run_queue_wait_percent {
        Some(wait) => format!("{used}, wait {wait:.0}%"),
        None => used,
    }
}

/// A line saying which clock ended the latencies of `benches` (see
/// [`sse_cli::bench_report::ReceiveClock`]).
fn receive_clock_note<'a>(md: &mut String, benches: impl IntoIterator<Item = &'a BenchReport>) {
    let clocks: Vec<ReceiveClock> = benches
        .into_iter()
        .filter_map(|bench| bench.latency_ms.as_ref().map(|l| l.receive_clock))
        .collect();
    if clocks.is_empty() {
        return;
    }
    let line = if clocks.iter().all(|c| *c == ReceiveClock::Kernel) {
        "Latencies end when the client machine's kernel received the bytes \
         (`SO_TIMESTAMPNS`): the client's own scheduling and decoding are not in them."
    } else {
        "Latencies end (in some runs or all) when the client read the bytes, by its own \
         clock, because the kernel gave no receive time: the client's own queueing is in \
         them."
    };
    let _ = writeln!(md, "\n{line}");
}

/// A line under a table whose client was near its limit in some run.
fn client_cpu_note(md: &mut String, rows: &[FirehoseRun]) {
    receive_clock_note(md, rows.iter().map(|row| &row.bench));
    let busy = rows.iter().any(|row| {
        row.bench.client_cpu.as_ref().is_some_and(|cpu| {
            cpu.run_queue_wait_percent
                .is_some_and(|wait| wait > BUSY_MACHINE_WAIT_PERCENT)
        })
    });
    if busy {
        let _ = writeln!(
            md,
            "\nIn some runs the client waited for its core over {BUSY_MACHINE_WAIT_PERCENT:.0}% \
             of the window: other processes shared the machine, and their latency is not the \
             server's alone."
        );
    }
    if rows.iter().any(|row| {
        row.bench
            .client_cpu
            .as_ref()
            .is_some_and(|cpu| cpu.near_limit)
    }) {
        let _ = writeln!(
            md,
            "\nThe client used over 80% of its cores in a run marked \"near limit\": it may \
             have fallen behind the server there (with its own receive clock, its queueing \
             is part of that run's latency)."
        );
    }
}

/// The client self-check: bench's latency against the broadcaster's own timing.
fn client_check_section(md: &mut String, check: &ClientCheck) {
    let b = &check.broadcaster;
    let _ = writeln!(
        md,
        "## Client self-check ({} events/s to {} connections, no hub)\n",
        check.rate, check.connections
    );
    let _ = writeln!(
        md,
        "`ssectl bench` reads a broadcaster of the harness's own that writes the same \
         pre-encoded chunk to every socket each round, and times itself: how long after \
         the send time in the data each round's last write finished. No client can see \
         less; what bench reports beyond it is the client's own. Goal: bench's p99 at most \
         {:.1} ms above the broadcaster's p99.\n",
        check.goal_added_p99_ms
    );
    let _ = writeln!(
        md,
        "| | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        md,
        "| broadcaster (round finished) | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
        b.deliveries_per_second, b.round_p50_ms, b.round_p99_ms, b.round_p999_ms, b.round_max_ms
    );
    let bench = &check.bench;
    match &bench.latency_ms {
        Some(l) => {
            let _ = writeln!(
                md,
                "| `ssectl bench` (received) | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                bench.deliveries_per_second, l.p50, l.p99, l.p999, l.max
            );
        }
        None => {
            let _ = writeln!(
                md,
                "| `ssectl bench` (received) | {:.0} | n/a | n/a | n/a | n/a |",
                bench.deliveries_per_second
            );
        }
    }
    receive_clock_note(md, [bench]);
    let _ = writeln!(
        md,
        "\nAdded by the client: p50 {} ms, **p99 {} ms** ({}). Client CPU {}; broadcaster \
         writes that found a full socket buffer: {}; connections held {} of {}, disconnects {}.\n",
        or_na(check.added_p50_ms.map(|v| format!("{v:+.2}"))),
        or_na(check.added_p99_ms.map(|v| format!("{v:+.2}"))),
        if check.met {
            "goal met"
        } else {
            "goal **not met**"
        },
        client_cpu_cell(bench),
        b.backlogged_writes,
        bench.connections_held,
        check.connections,
        bench.disconnects
    );
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
    use crate::bench::report::{NchanComparison, NchanRound};

    fn run(latency: Option<sse_cli::bench_report::Latency>) -> BenchReport {
        BenchReport {
            url: "http://127.0.0.1:1/subscribe/bench".to_owned(),
            protocol: "HTTP/1.1".to_owned(),
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
            client_cpu: None,
        }
    }

    /// A comparison of `rounds`, with made-up commands.
    fn comparison(
        rounds: Vec<super::super::report::NchanRound>,
    ) -> super::super::report::NchanComparison {
        super::super::report::NchanComparison::new(
            "nginx version: nginx/1.22.1".to_owned(),
            String::new(),
            "ssectl bench --publish-batch 1".to_owned(),
            Some("wrk -t1 -c32".to_owned()),
            rounds,
        )
    }

    /// The nchan section of a report on `comparison`.
    fn rendered(comparison: NchanComparison) -> String {
        let mut md = String::new();
        nchan_section(&mut md, &NchanSection::Measured(Box::new(comparison)));
        md
    }

    #[test]
    fn the_nchan_comparison_shows_each_round_and_the_median_of_the_ratios() {
        let published = |events_published| BenchReport {
            events_published,
            ..run(None)
        };
        // Round by round 1.2x, 1.5x and 0.93x: the median ratio is 1.2x, while the
        // ratio of the medians (1300 / 1400) would be 0.93x.
        let mut rounds = vec![
            NchanRound::new(published(2400), published(2000)),
            NchanRound::new(published(900), published(600)),
            NchanRound::new(published(1300), published(1400)),
        ];
        let wrk = |per_second, server_us| {
            Some(WrkRun {
                per_second,
                server_us,
            })
        };
        rounds[0].ours_wrk = wrk(3000.0, Some(8.0));
        rounds[0].nchan_wrk = wrk(2000.0, Some(10.0));
        rounds[0].floor_wrk = wrk(3300.0, Some(5.0));
        let comparison = comparison(rounds);
        assert_eq!(comparison.ratio, Some(1.2));
        assert_eq!(comparison.wrk_ratio, Some(1.5));
        assert_eq!(comparison.floor_ratio, Some(1.65));
        assert_eq!(comparison.cpu_ratio, Some(1.25));
        assert_eq!(comparison.floor_cpu_ratio, Some(2.0));
        assert!(comparison.met);
        let md = rendered(comparison);
        assert!(
            md.contains("| 1 | 2400 | 2000 | 1.20x | 3000 | 2000 | 3300 | 8.00; 10.00; 5.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| 2 | 900 | 600 | 1.50x | n/a | n/a | n/a | n/a; n/a; n/a |"),
            "{md}"
        );
        assert!(
            md.contains("ours/nchan **1.25x** (median of the rounds); the floor/nchan 2.00x."),
            "{md}"
        );
        assert!(
            md.contains("**1.20x** (target 1.2x: met); with wrk: 1.50x"),
            "{md}"
        );
        assert!(md.contains("reached **1.65x** nchan under wrk"), "{md}");
        assert!(!md.contains("out of reach"), "{md}");
        // Our median 1300 events/s over 1 s: 769.2 µs a round trip, of 8 µs of work.
        assert!(
            md.contains("a round trip to ours took 769.2 µs (median), of which our server's work is about 8.00 µs"),
            "{md}"
        );
        assert!(
            md.contains("measures the round trip of this machine"),
            "{md}"
        );
        let mut md = String::new();
        let reason = "nginx is not installed".to_owned();
        nchan_section(&mut md, &NchanSection::Skipped { reason });
        assert!(md.contains("Skipped: nginx is not installed."), "{md}");
    }

    #[test]
    fn a_floor_below_the_target_says_the_target_is_out_of_reach() {
        let mut round = NchanRound::new(run(None), run(None));
        let wrk = |per_second| {
            Some(WrkRun {
                per_second,
                server_us: None,
            })
        };
        round.ours_wrk = wrk(1900.0);
        round.nchan_wrk = wrk(2000.0);
        round.floor_wrk = wrk(2200.0);
        let comparison = comparison(vec![round]);
        let md = rendered(comparison);
        assert!(
            md.contains("reached **1.10x** nchan under wrk (median of the rounds)"),
            "{md}"
        );
        assert!(
            md.contains("so the 1.2x target is out of reach of this measurement on this machine"),
            "{md}"
        );
        assert!(!md.contains("By server CPU time"), "{md}");
        assert!(
            !md.contains("a round trip"),
            "nothing published, nothing timed: {md}"
        );
    }

    #[test]
    fn a_round_trip_near_the_server_s_work_is_not_called_waiting() {
        let published = BenchReport {
            events_published: 100_000,
            ..run(None)
        };
        let mut round = NchanRound::new(published.clone(), published);
        round.ours_wrk = Some(WrkRun {
            per_second: 120_000.0,
            server_us: Some(8.0),
        });
        let comparison = comparison(vec![round]);
        let md = rendered(comparison);
        assert!(
            md.contains("a round trip to ours took 10.0 µs (median), of which our server's work is about 8.00 µs (its CPU time per request under wrk)."),
            "{md}"
        );
        assert!(!md.contains("measures the round trip"), "{md}");
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
            receive_clock: ReceiveClock::Kernel,
        };
        assert_eq!(
            latency_cells(&run(Some(latency))),
            "2000 | 0.50 | 0.90 | 1.50 | 2.00 | 3.25 | 3"
        );
    }

    #[test]
    fn idle_memory_rows_give_connections_per_gib_or_why_skipped() {
        let measured = IdleMemory {
            protocol: "HTTP/1.1",
            connections: 19_000,
            held: 19_000,
            rss_before_kib: Some(6_000),
            rss_peak_kib: Some(63_000),
            rss_per_connection_kib: Some(3.0),
            connections_per_gib: crate::bench::report::connections_per_gib(3.0),
            skipped: None,
        };
        let skipped = IdleMemory::skipped(
            "HTTP/1.1 over TLS",
            19_000,
            "no openssl to make a certificate".to_owned(),
        );
        let mut md = String::new();
        idle_memory_table(&mut md, &[measured, skipped]);
        assert!(
            md.contains("| HTTP/1.1 | 19000 of 19000 | 3.00 | **349525** |"),
            "{md}"
        );
        assert!(
            md.contains("| HTTP/1.1 over TLS | skipped: no openssl to make a certificate | | |"),
            "{md}"
        );
        assert_eq!(crate::bench::report::connections_per_gib(0.0), None);
    }

    #[test]
    fn a_skipped_cluster_section_says_why() {
        let mut md = String::new();
        cluster_section(
            &mut md,
            &ClusterSection::Skipped {
                reason: "redis-server was not found".to_owned(),
            },
        );
        assert_eq!(
            md,
            "\n## Cluster (Redis)\n\nSkipped: redis-server was not found.\n"
        );
    }

    #[test]
    fn the_client_check_compares_bench_with_the_broadcaster() {
        let check = ClientCheck {
            connections: 1_000,
            rate: 1_000,
            goal_added_p99_ms: 1.0,
            met: false,
            added_p50_ms: Some(0.25),
            added_p99_ms: Some(1.5),
            broadcaster: crate::bench::broadcaster::BroadcasterTiming {
                connections: 1_000,
                rounds: 10_000,
                events_per_second: 1_000.0,
                deliveries_per_second: 1_000_000.0,
                round_p50_ms: 0.25,
                round_p99_ms: 1.0,
                round_p999_ms: 2.0,
                round_max_ms: 3.0,
                backlogged_writes: 0,
            },
            bench: BenchReport {
                client_cpu: Some(sse_cli::bench_report::ClientCpu {
                    seconds: 9.0,
                    percent_of_one_core: 90.0,
                    cores: 1,
                    near_limit: true,
                    run_queue_wait_percent: Some(30.0),
                }),
                ..run(Some(sse_cli::bench_report::Latency {
                    samples: 2_000,
                    p50: 0.5,
                    p90: 0.9,
                    p99: 2.5,
                    p999: 3.0,
                    max: 4.0,
                    receive_clock: ReceiveClock::User,
                }))
            },
        };
        let mut md = String::new();
        client_check_section(&mut md, &check);
        assert!(
            md.contains("| broadcaster (round finished) | 1000000 | 0.25 | 1.00 | 2.00 | 3.00 |"),
            "{md}"
        );
        assert!(
            md.contains("| `ssectl bench` (received) | 2000 | 0.50 | 2.50 | 3.00 | 4.00 |"),
            "{md}"
        );
        assert!(
            md.contains("p50 +0.25 ms, **p99 +1.50 ms** (goal **not met**). Client CPU **90%** (near limit), wait 30%"),
            "{md}"
        );
    }

    #[test]
    fn latency_cells_without_samples_say_so_instead_of_zero() {
        assert_eq!(
            latency_cells(&run(None)),
            "2000 | n/a | n/a | n/a | n/a | n/a | 3"
        );
    }

    #[test]
    fn the_receive_clock_is_named_under_latencies() {
        let timed = |clock| {
            run(Some(sse_cli::bench_report::Latency {
                samples: 1,
                p50: 1.0,
                p90: 1.0,
                p99: 1.0,
                p999: 1.0,
                max: 1.0,
                receive_clock: clock,
            }))
        };
        let note = |benches: &[BenchReport]| {
            let mut md = String::new();
            receive_clock_note(&mut md, benches);
            md
        };
        let kernel = timed(ReceiveClock::Kernel);
        let user = timed(ReceiveClock::User);
        assert!(note(&[kernel.clone(), kernel.clone()]).contains("kernel received the bytes"));
        assert!(note(&[kernel, user]).contains("by its own clock"));
        assert!(note(&[run(None)]).is_empty(), "no latency, nothing to say");
    }
}
