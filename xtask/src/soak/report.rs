//! The soak's report: its checks, `soak.json`, `soak.md` and `soak-rss.svg`.

use std::fmt::Write as _;

use serde::Serialize;

use super::check::Check;
use super::churn::ChurnReport;
use super::delivery::DeliveryReport;
use crate::bench::charts::{compact, line_chart};

/// The whole soak report.
#[derive(Debug, Serialize)]
pub(super) struct SoakReport {
    /// `"quick"` or `"full"`.
    pub(super) mode: &'static str,
    /// The command line's options, as given.
    pub(super) options: String,
    /// Whether the server was pinned to core 0 and the load to core 1.
    pub(super) pinned: bool,
    pub(super) cores: usize,
    pub(super) checks: Vec<Check>,
    pub(super) churn: ChurnReport,
    pub(super) delivery: DeliveryReport,
}

impl SoakReport {
    /// The checks that failed.
    pub(super) fn failures(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

// Writing to a String cannot fail, so the `fmt::Result` of `writeln!` is ignored
// throughout.

/// `soak.md`: one section, beside the benchmark report.
pub(super) fn markdown(report: &SoakReport) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Soak and churn ({} mode)\n", report.mode);
    let _ = writeln!(
        md,
        "{} cores; server {}. Produced by `cargo xtask soak{}`.\n",
        report.cores,
        if report.pinned {
            "pinned to core 0, load (this process) to core 1"
        } else {
            "and load not pinned"
        },
        report.options
    );
    checks_table(&mut md, &report.checks);
    churn_section(&mut md, &report.churn);
    delivery_section(&mut md, &report.delivery);
    let _ = writeln!(md, "\nRaw data: `soak.json`.");
    md
}

fn checks_table(md: &mut String, checks: &[Check]) {
    let _ = writeln!(md, "| check | result | measured |\n|---|---|---|");
    for check in checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            check.name,
            if check.passed { "pass" } else { "**FAIL**" },
            check.detail
        );
    }
}

fn churn_section(md: &mut String, churn: &ChurnReport) {
    let _ = writeln!(md, "\n### Churn\n");
    let _ = writeln!(
        md,
        "{} cycles after a warm-up of {}, {} connections at a time, while {} events/s are \
         published to the streams' namespace: {:.1} s, {:.0} cycles/s. {} errors; {} \
         half-closed clients whose connection the server kept open.\n",
        churn.cycles,
        churn.warmup_cycles,
        churn.concurrency,
        churn.feed_rate,
        churn.seconds,
        churn.cycles as f64 / churn.seconds.max(1e-9),
        churn.errors,
        churn.half_closes_left_open
    );
    let _ = writeln!(md, "| cycle kind | cycles |\n|---|---:|");
    for (kind, count) in &churn.kinds {
        let _ = writeln!(md, "| {kind} | {count} |");
    }
    let _ = writeln!(
        md,
        "\n| server | at start | after warm-up | after churn |\n|---|---:|---:|---:|\n\
         | file descriptors | {} | {} | {} |\n| RSS (KiB) | | {} | {} |\n\
         | open streams / subscribers | | 0 / 0 | {} / {} |",
        churn.fds_at_start,
        churn.fds_after_warmup,
        churn.fds_after,
        churn.rss_baseline_kib,
        churn.rss_after_kib,
        churn.streams_after,
        churn.subscribers_after
    );
    for sample in &churn.error_samples {
        let _ = writeln!(md, "\n- error: {sample}");
    }
}

fn delivery_section(md: &mut String, soak: &DeliveryReport) {
    let _ = writeln!(md, "\n### Delivery soak\n");
    let _ = writeln!(
        md,
        "{} events/s for {:.0} s (replay history {} events) to {} healthy, {} churning and \
         {} stalled subscribers: {} events published in {:.1} s, **{} deliveries/s** to \
         healthy and churning subscribers. Churning subscribers reconnected {} times. \
         The server cut off {} subscribers for lagging; it still held {} streams after the \
         readers left while the {} stalled clients stayed connected.\n",
        soak.rate,
        soak.duration_seconds,
        soak.history,
        soak.healthy,
        soak.churning,
        soak.stalled,
        soak.published,
        soak.publish_seconds,
        compact(soak.deliveries_per_second),
        soak.churn_reconnects,
        soak.lagged_cutoffs,
        soak.stalled_streams_held,
        soak.stalled
    );
    let _ = writeln!(
        md,
        "| subscribers | received | lost | duplicates | ids out of order | foreign |\n|---|---:|---:|---:|---:|---:|"
    );
    for (name, tally, lost) in [
        ("healthy", &soak.healthy_tally, soak.healthy_lost),
        ("churning", &soak.churning_tally, soak.churning_lost),
    ] {
        let _ = writeln!(
            md,
            "| {name} | {} | {lost} | {} | {} | {} |",
            tally.received, tally.duplicates, tally.ids_out_of_order, tally.foreign
        );
    }
    let kib = |v: Option<u64>| v.map_or_else(|| "n/a".to_owned(), |v| v.to_string());
    let _ = writeln!(
        md,
        "\nServer RSS (KiB), sampled every second: {} before publishing; after the {:.0} s \
         warm-up: start {}, peak {}, end {}.\n\n![server RSS over time](soak-rss.svg)",
        soak.rss_before_publishing_kib,
        soak.warmup_seconds,
        kib(soak.rss_start_kib),
        kib(soak.rss_peak_kib),
        kib(soak.rss_end_kib)
    );
    for reason in &soak.interruptions {
        let _ = writeln!(md, "\n- interrupted: {reason}");
    }
}

/// `soak-rss.svg`: the server's RSS in MiB against seconds of publishing.
pub(super) fn rss_chart(soak: &DeliveryReport) -> String {
    let points = soak
        .rss_samples
        .iter()
        .map(|&(at, kib)| (at, kib as f64 / 1024.0))
        .collect();
    line_chart(
        "Server RSS during the delivery soak",
        "seconds since publishing started",
        "RSS (MiB)",
        &[("RSS", points)],
    )
}
