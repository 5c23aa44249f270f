//! A load source for measuring fan-out: serves the normal HTTP API and, after `--delay`,
//! publishes in-process to `--namespace` as fast as the hub accepts (or at `--rate`
//! events per second) for `--count` events. Each event's data is its send time in
//! nanoseconds since the UNIX epoch as decimal digits, padded with spaces to `--size`
//! bytes, so a client can measure publish-to-receive latency (`ssectl bench` does).
//!
//! ```sh
//! cargo run --release -p examples --example firehose -- --listen 127.0.0.1:8001 --count 1000000
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sse_core::{Event, Namespace};
use sse_hyper::Server;

struct Options {
    listen: String,
    namespace: String,
    delay: Duration,
    rate: u64,
    count: u64,
    size: usize,
    threads: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        listen: "127.0.0.1:8001".into(),
        namespace: "/bench".into(),
        delay: Duration::from_secs(5),
        rate: 0,
        count: 1_000_000,
        size: 64,
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| text.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--listen" => options.listen = value()?,
            "--namespace" => options.namespace = value()?,
            "--delay" => {
                options.delay =
                    Duration::from_secs_f64(value()?.parse().map_err(|e| format!("--delay: {e}"))?)
            }
            "--rate" => options.rate = number(value()?)?,
            "--count" => options.count = number(value()?)?,
            "--size" => options.size = number(value()?)? as usize,
            "--threads" => options.threads = number(value()?)?.max(1) as usize,
            other => {
                return Err(format!(
                    "unknown option {other}; see the source for the options"
                ))
            }
        }
    }
    Ok(options)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_options()?;
    let runtime = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::builder().history_capacity(0).build();
    let hub = server.hub().clone();
    let namespace = Namespace::parse(&options.namespace)?;
    let listener = tokio::net::TcpListener::bind(&options.listen).await?;
    println!("firehose: listening on http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        result = publish(&options, &hub, &namespace) => result?,
        _ = tokio::signal::ctrl_c() => println!("firehose: interrupted"),
    }
    let _ = stop_tx.send(());
    serving.await??;
    Ok(())
}

async fn publish(
    options: &Options,
    hub: &sse_core::Hub,
    namespace: &Namespace,
) -> Result<(), Box<dyn std::error::Error>> {
    tokio::time::sleep(options.delay).await;
    let started = Instant::now();
    let mut delivered = 0u64;
    for sent in 0..options.count {
        if options.rate > 0 {
            let due = started + Duration::from_secs_f64(sent as f64 / options.rate as f64);
            tokio::time::sleep_until(due.into()).await;
        } else if sent % 64 == 0 {
            // Let the connections write between bursts on a single-threaded runtime.
            tokio::task::yield_now().await;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let data = format!("{now:<width$}", width = options.size);
        delivered += hub.publish(namespace, Event::new(data))?.subscribers as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "firehose: published {} events in {elapsed:.2}s ({:.0}/s), {delivered} deliveries ({:.0}/s), {} subscribers cut off",
        options.count,
        options.count as f64 / elapsed,
        delivered as f64 / elapsed,
        hub.stats().lagged_cutoffs
    );
    Ok(())
}
