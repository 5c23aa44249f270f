//! The cluster scenarios: `ssectl serve --redis` nodes and one `redis-server`, pinned to
//! the servers' core (Redis is part of the serving side), with `ssectl bench` alone on
//! the client's core.
//!
//! - publishing through Redis: the HTTP publishing ceiling (NDJSON batches of 1 000, one
//!   request at a time) against a cluster node;
//! - fan-out fed from Redis: the same publishing client and subscribers against an
//!   in-memory node, then a cluster node whose events come back from Redis;
//! - cross-node latency: published on node A, read on node B, beside the same load on one
//!   in-memory node;
//! - Redis CPU per event, over each of those runs (from `INFO cpu`).
//!
//! Each scenario uses a cluster name of its own, so no history or channel is shared
//! between them.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::processes::{
    cpu_seconds, healthy, ssectl_bench, ServerProcess, Tools, BENCH_FIXED_ARGS,
};
use super::redis::{self, RedisProcess};
use super::report::{ClusterFanout, ClusterLatency, ClusterReport, ClusterRun, ClusterSection};
use super::scenarios::{listen_args, strings, Plan, UNREACHABLE};

/// The servers' core, Redis included; the client has core 1.
const SERVER_CORE: u8 = 0;
/// How long a node may take to reach Redis after it printed its address.
const NODE_READY_DEADLINE: Duration = Duration::from_secs(20);
/// Events per request when publishing as fast as possible, as in the HTTP publishing
/// scenario.
const CEILING_BATCH: u64 = 1000;

/// Runs the cluster scenarios, or says why they cannot run here.
pub(super) fn cluster(tools: &Tools, plan: &Plan) -> Result<ClusterSection, String> {
    let binary = match redis::find() {
        Ok(binary) => binary,
        Err(reason) => {
            eprintln!("xtask: cluster section skipped: {reason}");
            return Ok(ClusterSection::Skipped { reason });
        }
    };
    let redis = RedisProcess::start(tools, &binary, SERVER_CORE)?;
    eprintln!("xtask: cluster: {} at {}", redis.version, redis.url());
    let report = ClusterReport {
        redis_version: redis.version.clone(),
        redis_command: command_line(&binary, &redis.args),
        redis_core: tools.pinned.then_some(SERVER_CORE),
        publish: publish_ceiling(tools, plan, &redis)?,
        fanout: fanout(tools, plan, &redis)?,
        latency: cross_node_latency(tools, plan, &redis)?,
    };
    Ok(ClusterSection::Measured(Box::new(report)))
}

/// One client publishing batches back to back through a cluster node (which also
/// delivers them to the client's one stream, as in the HTTP publishing scenario).
fn publish_ceiling(tools: &Tools, plan: &Plan, redis: &RedisProcess) -> Result<ClusterRun, String> {
    eprintln!("xtask: cluster: publishing batches back to back through Redis");
    let node = Node::cluster(tools, redis, "bench-publish")?;
    let mut args = strings(&[
        "--server",
        &node.process.base,
        "--duration",
        plan.duration,
        "--connections",
        "1",
    ]);
    args.extend(publish_args(UNREACHABLE, CEILING_BATCH));
    measure(tools, &[&node], Some(redis), &args)
}

/// The plan's publishing rate to its subscribers, on an in-memory node and then on a
/// cluster node; the same client both times.
fn fanout(tools: &Tools, plan: &Plan, redis: &RedisProcess) -> Result<ClusterFanout, String> {
    let (rate, subscribers) = (plan.cluster_fanout_rate, plan.cluster_fanout_subscribers);
    let run = |node: &Node, redis: Option<&RedisProcess>| {
        let mut args = listen_args(plan, &node.process.base, subscribers);
        args.extend(publish_args(rate, CEILING_BATCH));
        measure(tools, &[node], redis, &args)
    };
    eprintln!("xtask: cluster: fan-out at {rate} events/s to {subscribers} subscribers, in memory");
    let in_memory = run(&Node::in_memory(tools)?, None)?;
    eprintln!("xtask: cluster: the same fed from Redis");
    let cluster = run(&Node::cluster(tools, redis, "bench-fanout")?, Some(redis))?;
    let deliveries_ratio = ratio(
        cluster.bench.deliveries_per_second,
        in_memory.bench.deliveries_per_second,
    )
    .unwrap_or(0.0);
    Ok(ClusterFanout {
        rate,
        subscribers,
        in_memory,
        cluster,
        deliveries_ratio,
    })
}

/// Latency at the plan's rate: publisher and subscribers on one in-memory node, then
/// publishing on node A while the subscribers read node B.
fn cross_node_latency(
    tools: &Tools,
    plan: &Plan,
    redis: &RedisProcess,
) -> Result<ClusterLatency, String> {
    let (rate, subscribers) = (plan.cluster_latency_rate, plan.cluster_latency_subscribers);
    eprintln!("xtask: cluster: latency at {rate} events/s to {subscribers} subscribers, one in-memory node");
    let one = Node::in_memory(tools)?;
    let mut args = listen_args(plan, &one.process.base, subscribers);
    args.extend(publish_args(rate, CEILING_BATCH));
    let one_node = measure(tools, &[&one], None, &args)?;
    drop(one);

    eprintln!("xtask: cluster: the same published on node A, read on node B");
    let a = Node::cluster(tools, redis, "bench-latency")?;
    let b = Node::cluster(tools, redis, "bench-latency")?;
    let mut args = listen_args(plan, &b.process.base, subscribers);
    args.extend(strings(&["--publish-server", &a.process.base]));
    args.extend(publish_args(rate, CEILING_BATCH));
    let cross_node = measure(tools, &[&a, &b], Some(redis), &args)?;
    Ok(ClusterLatency {
        rate,
        subscribers,
        one_node,
        cross_node,
    })
}

/// `ssectl bench` arguments publishing `rate` events/s in requests of up to `batch`.
fn publish_args(rate: u64, batch: u64) -> Vec<String> {
    vec![
        "--publish-rate".into(),
        rate.to_string(),
        "--publish-batch".into(),
        batch.to_string(),
    ]
}

/// A running `ssectl serve` and how it was started.
struct Node {
    process: ServerProcess,
    command: String,
}

impl Node {
    fn in_memory(tools: &Tools) -> Result<Node, String> {
        Node::start(tools, &strings(&["serve", "--listen", "127.0.0.1:0"]))
    }

    /// A node of cluster `name`, once it is connected to Redis.
    fn cluster(tools: &Tools, redis: &RedisProcess, name: &str) -> Result<Node, String> {
        let args = strings(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--redis",
            &redis.url(),
            "--cluster",
            name,
        ]);
        let node = Node::start(tools, &args)?;
        let deadline = Instant::now() + NODE_READY_DEADLINE;
        while !healthy(&node.process.base) {
            if Instant::now() > deadline {
                return Err(format!(
                    "the node at {} did not reach Redis in time",
                    node.process.base
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(node)
    }

    fn start(tools: &Tools, args: &[String]) -> Result<Node, String> {
        let mut command: Command = tools.command(&tools.ssectl, SERVER_CORE);
        command.args(args);
        Ok(Node {
            process: ServerProcess::start(command)?,
            command: command_line(&tools.ssectl, args),
        })
    }
}

/// Runs `ssectl bench` with `args` and charges it the CPU time `servers` and `redis`
/// spent meanwhile.
fn measure(
    tools: &Tools,
    servers: &[&Node],
    redis: Option<&RedisProcess>,
    args: &[String],
) -> Result<ClusterRun, String> {
    let servers_cpu = || -> Option<f64> {
        servers
            .iter()
            .map(|node| cpu_seconds(node.process.pid()))
            .sum()
    };
    let redis_cpu = || redis.and_then(RedisProcess::cpu_seconds);
    let (servers_before, redis_before) = (servers_cpu(), redis_cpu());
    let bench = ssectl_bench(tools, args)?;
    let servers_cpu_seconds = difference(servers_before, servers_cpu());
    let redis_cpu_seconds = difference(redis_before, redis_cpu());
    let mut client_args: Vec<String> = vec!["bench".into()];
    client_args.extend_from_slice(args);
    client_args.extend(strings(&BENCH_FIXED_ARGS));
    Ok(ClusterRun {
        client_command: command_line(&tools.ssectl, &client_args),
        server_commands: servers.iter().map(|node| node.command.clone()).collect(),
        published_per_second: ratio(bench.events_published as f64, bench.measured_seconds)
            .unwrap_or(0.0),
        servers_cpu_us_per_delivery: servers_cpu_seconds
            .and_then(|cpu| ratio(cpu * 1e6, bench.events_total as f64)),
        servers_cpu_seconds,
        redis_cpu_us_per_event: redis_cpu_seconds
            .and_then(|cpu| ratio(cpu * 1e6, bench.events_published as f64)),
        redis_cpu_seconds,
        bench,
    })
}

fn difference(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// `numerator / denominator`, or `None` when there is nothing to divide by.
fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

/// A command as one would type it: the program's file name, then the arguments,
/// quoted where a shell would need it (empty, or with spaces).
fn command_line(program: &Path, args: &[String]) -> String {
    let name = program
        .file_name()
        .map_or_else(|| program.to_string_lossy(), |n| n.to_string_lossy());
    let mut line = name.into_owned();
    for arg in args {
        line.push(' ');
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            line.push_str(&format!("'{arg}'"));
        } else {
            line.push_str(arg);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_what_a_shell_would_split_or_drop() {
        let args = strings(&["--save", "", "--bind", "127.0.0.1", "--note", "a b"]);
        assert_eq!(
            command_line(Path::new("/usr/bin/redis-server"), &args),
            "redis-server --save '' --bind 127.0.0.1 --note 'a b'"
        );
    }

    #[test]
    fn nothing_to_divide_by_is_no_figure_rather_than_infinity() {
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(difference(Some(1.0), None), None);
        assert_eq!(difference(Some(1.0), Some(3.5)), Some(2.5));
    }
}
