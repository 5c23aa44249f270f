//! The client's own CPU use, so a report shows when `ssectl bench` itself was near its
//! limit (it may then fall behind the server, and without kernel receive times its own
//! queueing is part of the latency it reports).

use sse_cli::bench_report::ClientCpu;

/// Above this share of the cores the client can use, its figures are suspect.
pub(super) const NEAR_LIMIT_SHARE: f64 = 0.8;

/// Above this share of the window spent waiting for a core, the machine is too busy for
/// the latency figures to be the server's.
pub(super) const BUSY_MACHINE_WAIT_PERCENT: f64 = 20.0;

/// Linux reports process CPU times in these ticks per second (`USER_HZ`, fixed by the
/// kernel's interface on every architecture).
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system CPU time of this process so far, in seconds; `None` where
/// `/proc/self/stat` cannot be read (not Linux).
pub(super) fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_from_stat(&stat)
}

/// `utime + stime` of a `/proc/PID/stat` line, in seconds.
fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

/// Time all threads of this process spent ready to run but waiting for a core, in
/// seconds; `None` where the kernel's scheduler statistics cannot be read.
pub(super) fn run_queue_wait_seconds() -> Option<f64> {
    let mut total_ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread may end between listing and reading: it no longer waits.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        total_ns += wait_ns_from_schedstat(&text)?;
    }
    Some(total_ns as f64 / 1e9)
}

/// The second field of a `schedstat` line: nanoseconds spent waiting on a run queue.
fn wait_ns_from_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The cores the client can use: the cores this process may run on (its affinity mask
/// and CPU quota), but no more than its runtime's threads.
pub(super) fn usable_cores(threads: Option<usize>) -> u64 {
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads.map_or(available, |t| t.clamp(1, available)) as u64
}

/// What the client spent: `seconds` of CPU over `window` seconds of wall time, on
/// `cores` usable cores, having waited `waited` seconds for a core.
pub(super) fn client_cpu(seconds: f64, window: f64, cores: u64, waited: Option<f64>) -> ClientCpu {
    let share = |part: f64| {
        if window > 0.0 {
            part / window * 100.0
        } else {
            0.0
        }
    };
    let percent = share(seconds);
    ClientCpu {
        seconds,
        percent_of_one_core: percent,
        cores,
        near_limit: percent > NEAR_LIMIT_SHARE * 100.0 * cores as f64,
        run_queue_wait_percent: waited.map(share),
    }
}

/// The warnings to print: the client near its limit, its threads kept waiting for a
/// core by other processes; none when neither.
pub(super) fn warnings(cpu: &ClientCpu) -> Vec<String> {
    let mut warnings: Vec<String> = near_limit_warning(cpu).into_iter().collect();
    if let Some(wait) = cpu
        .run_queue_wait_percent
        .filter(|wait| *wait > BUSY_MACHINE_WAIT_PERCENT)
    {
        warnings.push(format!(
            "the client's threads waited for a core {wait:.0}% of the window (other processes \
             had it): the machine is busy, and other processes shaped the latency reported"
        ));
    }
    warnings
}

/// The warning when the client was near its limit, or `None`.
fn near_limit_warning(cpu: &ClientCpu) -> Option<String> {
    cpu.near_limit.then(|| {
        format!(
            "the client used {:.0}% of a core on {} usable core(s) while measuring (over {:.0}% of \
             them): it was near its own limit and may fall behind the server (full socket \
             buffers then hold the server's writes back); give it more cores (--threads) or \
             fewer connections",
            cpu.percent_of_one_core,
            cpu.cores,
            NEAR_LIMIT_SHARE * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_user_plus_system_time() {
        let stat = "4242 (ssectl (x) y) S 1 2 3 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1 2 3";
        assert_eq!(cpu_seconds_from_stat(stat), Some(3.25));
        assert_eq!(cpu_seconds_from_stat("no fields"), None);
    }

    #[test]
    fn this_process_cpu_time_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu_seconds().is_some_and(|s| s >= 0.0));
        }
    }

    #[test]
    fn near_limit_is_over_eighty_percent_of_the_usable_cores() {
        assert!(!client_cpu(0.79, 1.0, 1, None).near_limit);
        assert!(client_cpu(0.81, 1.0, 1, None).near_limit);
        assert!(!client_cpu(1.5, 1.0, 2, None).near_limit);
        assert!(client_cpu(1.7, 1.0, 2, None).near_limit);
        let near = warnings(&client_cpu(0.9, 1.0, 1, None));
        assert!(near.len() == 1 && near[0].contains("90%"), "{near:?}");
        assert!(warnings(&client_cpu(0.5, 1.0, 1, Some(0.1))).is_empty());
    }

    #[test]
    fn run_queue_waits_are_the_second_schedstat_field_in_percent_of_the_window() {
        assert_eq!(
            wait_ns_from_schedstat("123456 2500000000 42\n"),
            Some(2_500_000_000)
        );
        assert_eq!(wait_ns_from_schedstat("123456"), None);
        let cpu = client_cpu(1.0, 10.0, 1, Some(2.5));
        assert_eq!(cpu.run_queue_wait_percent, Some(25.0));
        let busy = warnings(&cpu);
        assert!(busy.len() == 1 && busy[0].contains("25%"), "{busy:?}");
        if cfg!(target_os = "linux") {
            assert!(run_queue_wait_seconds().is_some_and(|s| s >= 0.0));
        }
    }

    #[test]
    fn usable_cores_are_capped_by_the_threads() {
        assert_eq!(usable_cores(Some(1)), 1);
        assert!(usable_cores(None) >= 1);
        assert!(usable_cores(Some(10_000)) <= usable_cores(None));
    }
}
