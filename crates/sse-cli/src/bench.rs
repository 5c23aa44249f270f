//! `ssectl bench`: a load tester for any SSE server.
//!
//! It opens `--connections` subscriber streams (spread over several loopback source
//! addresses when one address's ephemeral ports would not be enough), reads them for
//! `--duration`, and reports connections held, deliveries and bytes per second, errors by
//! reason and disconnects. When an event's data starts with a send time in nanoseconds
//! since the UNIX epoch (as `examples/firehose.rs` sends), it also reports
//! publish-to-receive latency percentiles.
//!
//! With `--publish-rate` it also publishes timestamped events through this project's
//! batch API, so it measures this server end to end; with `--publish-server`, publishing
//! goes to another server than the one read (another node of a cluster), so the latency
//! is that of the path between them.
//!
//! The client is built to report the server, not itself. An event's latency ends when
//! the bytes carrying it reached the client machine's kernel, not when bench got round
//! to reading them: sockets are read with `recvmsg` and the kernel's receive time
//! (`SO_TIMESTAMPNS`, [`crate::arrival`]), so bench's own scheduling and decoding stay
//! out of the figure. Where the kernel gives no time (not Linux, or the first bytes
//! after stamping was turned on), bench reads its clock right after the read; the
//! report says which clock timed the samples (`receive_clock`). Under TLS and HTTP/2
//! the time is that of the newest bytes read from the socket, so never early.
//!
//! It is also built to keep up, since a client that falls behind lets its socket
//! buffers fill, which holds the server's writes back. Each connection is one task that
//! speaks HTTP/1.1 itself (`wire.rs`): every `read` goes into a buffer shared by the
//! tasks of a thread, and the bytes are unframed and decoded with `sse-core`'s decoder
//! (which hands out events without allocating) in that same poll. There is no second
//! task or channel per connection, nothing is copied, and a large read buffer lets one
//! system call take whatever a connection has queued. With `--threads 1` everything
//! runs on one thread (tokio's current-thread runtime). Latency is sampled on at most
//! 100 connections spread evenly over all of them (one histogram each), which keeps
//! memory flat at tens of thousands of connections and does not favour those a server
//! writes first.
//!
//! The client measures its own CPU use over the measurement window (`cpu.rs`) and warns
//! when it used more than 80% of the cores it could use: it may then fall behind (and
//! with its own clock, its queueing is part of the latency). It also warns when its
//! threads waited for a core more than 20% of the window: other processes then shared
//! the machine with the server too.
//!
//! `https://` URLs are read over TLS ([`crate::tls_stream`], trusting what `--cacert` /
//! `--insecure` say). Streams use HTTP/1.1 (one connection per stream, as browsers
//! without HTTP/2 do) unless `--http2` asks for HTTP/2: negotiated through ALPN over TLS,
//! with prior knowledge (h2c) over plain TCP; still one connection per stream. The report
//! names the protocol.
//!
//! `--json` prints a [`BenchReport`], the type the tools reading it deserialise.

mod cpu;
mod wire;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use hdrhistogram::Histogram;
use hyper::Uri;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sse_cli::bench_report::{BenchReport, Latency, ReceiveClock};
use sse_core::Decoder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::arrival::ArrivalClock;
use crate::tls_client::{TlsArgs, ALPN_HTTP1, ALPN_HTTP2};
use crate::tls_stream::{Connector, Stream};
use wire::{Body, Framing};

/// Connections whose latency is recorded at most (a histogram each; the rest only
/// count), spread evenly over all connections.
const LATENCY_SAMPLED_CONNECTIONS: usize = 100;

/// Bytes one `read` may take: what one thread's connections share. Large, so that one
/// system call takes all a connection has queued even when the client fell behind.
const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Connections being opened at once at most. Opening thousands at the same instant
/// overflows the server's accept queue (often 1 024 or 4 096 long); the kernel then drops
/// the extra SYNs and the client retries them 1, 3, 7, 15 s later, so the connect phase
/// measures retransmission timers rather than the server.
const OPENING_AT_ONCE: usize = 256;

/// Connections per loopback source address before the next one is used.
const CONNECTIONS_PER_SOURCE_ADDRESS: usize = 25_000;

/// Options of `ssectl bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server's base URL.
    #[arg(long, env = "SSECTL_SERVER", default_value = "http://127.0.0.1:8001")]
    server: String,

    /// The namespace to subscribe to (on this project's API).
    #[arg(long, default_value = "/bench")]
    namespace: String,

    /// A full event-stream URL to read instead, on any SSE server.
    #[arg(long)]
    url: Option<String>,

    /// Subscriber connections to open.
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,

    /// How long to measure once the connections are open.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// How long to read before measuring (lets a publisher get going).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    warmup: Duration,

    /// How long opening all connections may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,

    /// Publish this many events per second to --namespace while measuring (through
    /// `POST /publish` batches; 0 only listens, for servers that publish by themselves).
    /// A rate the server cannot take measures its ceiling: requests then go back to back.
    #[arg(long, default_value_t = 0)]
    publish_rate: u64,

    /// Where to publish (base URL): another node of the same cluster measures the
    /// latency between nodes. Default: --server.
    #[arg(long)]
    publish_server: Option<String>,

    /// Events per publish request at most: NDJSON batches of up to this many, or with 1,
    /// one `POST /publish/{namespace}` per event.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    publish_batch: u64,

    /// Bytes of data per published event (a send timestamp, padded).
    #[arg(long, default_value_t = 64)]
    size: usize,

    /// Bearer token sent when subscribing and publishing (the static publish token, or a
    /// signed one from `ssectl token`).
    #[arg(long, env = "SSE_PUBLISH_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Worker threads for the client (default: one per core).
    #[arg(long)]
    threads: Option<usize>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,

    /// Read the streams over HTTP/2 (ALPN `h2` over TLS, prior knowledge over plain TCP)
    /// instead of HTTP/1.1; one connection per stream either way.
    #[arg(long)]
    http2: bool,

    #[command(flatten)]
    tls: TlsArgs,
}

/// Counters every connection task adds to while it runs.
#[derive(Debug)]
struct Live {
    /// Limits connections being opened at once (see [`OPENING_AT_ONCE`]).
    opening: Semaphore,
    held: AtomicU64,
    published: AtomicU64,
    events: AtomicU64,
    bytes: AtomicU64,
    disconnects: AtomicU64,
    /// Latency samples timed by the kernel's arrival time, and by bench's own clock
    /// (when a read carried no kernel time).
    kernel_timed: AtomicU64,
    user_timed: AtomicU64,
}

/// What one connection task hands back.
struct Outcome {
    latency: Option<Histogram<u64>>,
    error: Option<String>,
}

struct Target {
    addr: SocketAddr,
    uri: Uri,
    host: String,
    /// The `Authorization` header's value, when a token is given.
    authorization: Option<String>,
    /// Plain TCP, or TLS for `https://`.
    connector: Connector,
    /// HTTP/2 instead of HTTP/1.1.
    http2: bool,
}

/// Runs the benchmark and prints its report.
pub fn run(args: BenchArgs) -> Result<(), String> {
    // One thread: the current-thread runtime, with no hand-off between threads at all.
    let mut runtime = if args.threads == Some(1) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        if let Some(threads) = args.threads {
            runtime.worker_threads(threads.max(1));
        }
        runtime
    };
    let runtime = runtime
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = runtime.block_on(measure(&args))?;
    for warning in report.client_cpu.iter().flat_map(cpu::warnings) {
        eprintln!("ssectl bench: warning: {warning}");
    }
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print_report(&report);
    }
    Ok(())
}

async fn measure(args: &BenchArgs) -> Result<BenchReport, String> {
    raise_open_file_limit(args.connections);
    let url = match &args.url {
        Some(url) => url.clone(),
        None => format!(
            "{}/subscribe{}",
            args.server.trim_end_matches('/'),
            args.namespace
        ),
    };
    let mut target = resolve(&url).await?;
    target.authorization = args.token.as_ref().map(|token| format!("Bearer {token}"));
    target.http2 = args.http2;
    if target.uri.scheme_str() == Some("https") {
        let alpn = if args.http2 { ALPN_HTTP2 } else { ALPN_HTTP1 };
        let host = target.uri.host().unwrap_or_default();
        target.connector = Connector::tls(args.tls.client_config(&[alpn])?, host)?;
    }
    let target = Arc::new(target);
    let live = Arc::new(Live {
        opening: Semaphore::new(OPENING_AT_ONCE),
        held: AtomicU64::new(0),
        published: AtomicU64::new(0),
        events: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        disconnects: AtomicU64::new(0),
        kernel_timed: AtomicU64::new(0),
        user_timed: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let sample_stride = latency_sample_stride(args.connections);
    let tasks: Vec<_> = (0..args.connections)
        .map(|index| {
            tokio::spawn(subscriber(
                index,
                index % sample_stride == 0,
                Arc::clone(&target),
                Arc::clone(&live),
                stop_rx.clone(),
            ))
        })
        .collect();

    // Connect phase: until every connection is held or failed, or the connect timeout.
    let connect_deadline = Instant::now() + args.connect_timeout;
    while Instant::now() < connect_deadline {
        let settled = live.held.load(Ordering::Relaxed) as usize
            + tasks.iter().filter(|t| t.is_finished()).count();
        if settled >= args.connections {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (publisher_stop_tx, publisher_stop_rx) = watch::channel(false);
    let publisher = (args.publish_rate > 0).then(|| {
        let server = args.publish_server.as_deref().unwrap_or(&args.server);
        tokio::spawn(publish(
            PublishTo {
                server: server.trim_end_matches('/').to_owned(),
                token: args.token.clone(),
                tls: args.tls.clone(),
            },
            args.namespace.clone(),
            Pace {
                rate: args.publish_rate,
                batch: args.publish_batch,
            },
            args.size,
            Arc::clone(&live),
            publisher_stop_rx,
        ))
    });
    let progress = progress_bar(args.warmup + args.duration);
    watch_progress(&progress, &live, args.warmup).await;
    let start = Instant::now();
    let cpu_before = cpu::process_cpu_seconds();
    let waited_before = cpu::run_queue_wait_seconds();
    let (events_before, bytes_before) = (
        live.events.load(Ordering::Relaxed),
        live.bytes.load(Ordering::Relaxed),
    );
    watch_progress(&progress, &live, args.duration).await;
    let measured = start.elapsed().as_secs_f64();
    let cpu_after = cpu::process_cpu_seconds();
    let waited = waited_before
        .zip(cpu::run_queue_wait_seconds())
        .map(|(before, after)| after - before);
    progress.finish_and_clear();
    let client_cpu = cpu_before.zip(cpu_after).map(|(before, after)| {
        cpu::client_cpu(
            after - before,
            measured,
            cpu::usable_cores(args.threads),
            waited,
        )
    });
    let events = live.events.load(Ordering::Relaxed) - events_before;
    let bytes = live.bytes.load(Ordering::Relaxed) - bytes_before;
    let held = live.held.load(Ordering::Relaxed);
    let _ = publisher_stop_tx.send(true);
    let publish_result = match publisher {
        Some(publisher) => Some(publisher.await),
        None => None,
    };
    if publish_result.is_some() {
        drain_in_flight(&live).await;
    }
    let _ = stop_tx.send(true);
    let events_total = live.events.load(Ordering::Relaxed);

    let mut latency = new_histogram();
    let mut errors = BTreeMap::new();
    if let Some(result) = publish_result {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => *errors.entry(format!("publish: {error}")).or_insert(0) += 1,
            Err(error) => {
                *errors
                    .entry(format!("publisher failed: {error}"))
                    .or_insert(0) += 1
            }
        }
    }
    for task in tasks {
        match task.await {
            Ok(outcome) => {
                if let Some(sampled) = &outcome.latency {
                    let _ = latency.add(sampled);
                }
                if let Some(error) = outcome.error {
                    *errors.entry(error).or_insert(0) += 1;
                }
            }
            Err(error) => *errors.entry(format!("task failed: {error}")).or_insert(0) += 1,
        }
    }
    Ok(BenchReport {
        url,
        protocol: if args.http2 { "HTTP/2" } else { "HTTP/1.1" }.to_owned(),
        connections_requested: args.connections as u64,
        connections_held: held,
        measured_seconds: measured,
        events,
        events_total,
        events_published: live.published.load(Ordering::Relaxed),
        deliveries_per_second: events as f64 / measured,
        bytes,
        bytes_per_second: bytes as f64 / measured,
        latency_ms: (!latency.is_empty()).then(|| Latency {
            samples: latency.len(),
            p50: micros_to_ms(latency.value_at_quantile(0.50)),
            p90: micros_to_ms(latency.value_at_quantile(0.90)),
            p99: micros_to_ms(latency.value_at_quantile(0.99)),
            p999: micros_to_ms(latency.value_at_quantile(0.999)),
            max: micros_to_ms(latency.max()),
            receive_clock: ReceiveClock::from_counts(
                live.kernel_timed.load(Ordering::Relaxed),
                live.user_timed.load(Ordering::Relaxed),
            ),
        }),
        errors,
        disconnects: live.disconnects.load(Ordering::Relaxed),
        client_cpu,
    })
}

/// Every how many connections one is latency-sampled, so that at most
/// [`LATENCY_SAMPLED_CONNECTIONS`] are, spread evenly.
fn latency_sample_stride(connections: usize) -> usize {
    connections.div_ceil(LATENCY_SAMPLED_CONNECTIONS).max(1)
}

/// After publishing stops, waits (up to two seconds) until every held connection has
/// received every published event, so the totals can be compared.
async fn drain_in_flight(live: &Live) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let expected = live.published.load(Ordering::Relaxed) * live.held.load(Ordering::Relaxed);
        if live.events.load(Ordering::Relaxed) >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A progress bar on a terminal (indicatif draws nothing when stderr is not one).
fn progress_bar(total: Duration) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {elapsed}/{duration} {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Waits `span`, updating the progress bar with connections held and events received.
async fn watch_progress(bar: &indicatif::ProgressBar, live: &Live, span: Duration) {
    let end = Instant::now() + span;
    let mut last_events = live.events.load(Ordering::Relaxed);
    let mut last_time = Instant::now();
    while Instant::now() < end {
        tokio::time::sleep(
            Duration::from_millis(250).min(end.saturating_duration_since(Instant::now())),
        )
        .await;
        let events = live.events.load(Ordering::Relaxed);
        let rate = (events - last_events) as f64 / last_time.elapsed().as_secs_f64().max(1e-9);
        (last_events, last_time) = (events, Instant::now());
        bar.inc(250);
        bar.set_message(format!(
            "{} streams, {events} events, {rate:.0}/s",
            live.held.load(Ordering::Relaxed)
        ));
    }
}

/// How a publisher paces itself.
struct Pace {
    /// Events per second.
    rate: u64,
    /// Events per request at most.
    batch: u64,
}

/// Where a publisher sends, and how it authenticates.
struct PublishTo {
    /// The server's base URL.
    server: String,
    /// Bearer token.
    token: Option<String>,
    /// Which HTTPS servers to trust.
    tls: TlsArgs,
}

/// Publishes `pace.rate` events per second until stopped: every 10 ms, what is due, in
/// requests of at most `pace.batch` events, sent one after another with no pause while
/// behind. Each event's data is its send time in ns, padded to `size` bytes.
async fn publish(
    to: PublishTo,
    namespace: String,
    pace: Pace,
    size: usize,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let PublishTo { server, token, tls } = to;
    let client = crate::client::http_client(&tls)?;
    let (url, single) = if pace.batch == 1 {
        let path = namespace.trim_start_matches('/');
        (format!("{server}/publish/{path}"), true)
    } else {
        (format!("{server}/publish"), false)
    };
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut sent = 0u64;
    loop {
        let due = (started.elapsed().as_secs_f64() * pace.rate as f64) as u64;
        if due <= sent {
            tokio::select! {
                _ = tick.tick() => continue,
                _ = stop.changed() => return Ok(()),
            }
        }
        if *stop.borrow() {
            return Ok(());
        }
        let count = (due - sent).min(pace.batch);
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let data = format!("{now_ns:<size$}");
        let mut request = if single {
            client
                .post(&url)
                .header("content-type", "text/plain")
                .body(data)
        } else {
            let line = serde_json::json!({ "namespace": namespace, "data": data }).to_string();
            let batch: String = (0..count).map(|_| format!("{line}\n")).collect();
            client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(batch)
        };
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        live.published.fetch_add(count, Ordering::Relaxed);
        sent += count;
    }
}

fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, up to ten minutes, three significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

async fn resolve(url: &str) -> Result<Target, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => {
            return Err(format!(
                "{url}: only http:// and https:// URLs are supported"
            ))
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("{url}: no host"))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(default_port);
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let authority = uri.authority().map_or(host, |a| a.to_string());
    Ok(Target {
        addr,
        uri,
        host: authority,
        authorization: None,
        connector: Connector::Plain,
        http2: false,
    })
}

fn raise_open_file_limit(connections: usize) {
    let wanted = connections as u64 + 256;
    if let Ok(limit) = rlimit::increase_nofile_limit(wanted) {
        if limit < wanted {
            eprintln!("ssectl bench: the open-file limit is {limit}; at most about that many connections can open");
        }
    }
}

/// The source address for connection `index`: spread over 127.0.0.x when the target is
/// on loopback and one address's ephemeral ports would run out.
fn source_address(target: &SocketAddr, index: usize) -> Option<SocketAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let spread = (index / CONNECTIONS_PER_SOURCE_ADDRESS) as u32;
            if spread == 0 {
                return None;
            }
            let base = u32::from(Ipv4Addr::new(127, 0, 0, 1));
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(base + spread)),
                0,
            ))
        }
        _ => None,
    }
}

async fn subscriber(
    index: usize,
    sampled: bool,
    target: Arc<Target>,
    live: Arc<Live>,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut latency = sampled.then(new_histogram);
    let error = stream(index, &target, &live, &mut stop, latency.as_mut())
        .await
        .err();
    Outcome { latency, error }
}

async fn stream(
    index: usize,
    target: &Target,
    live: &Live,
    stop: &mut watch::Receiver<bool>,
    latency: Option<&mut Histogram<u64>>,
) -> Result<(), String> {
    // Held until the response head has arrived (or opening failed).
    let opening = live
        .opening
        .acquire()
        .await
        .map_err(|_| "the bench is ending".to_owned())?;
    let tcp = connect(index, target).await?;
    let mut io = target.connector.connect(tcp).await?;
    if target.http2 {
        return stream_http2(io, target, live, opening, stop, latency).await;
    }
    let (framing, body_start) = open_stream(&mut io, target).await?;
    live.held.fetch_add(1, Ordering::Relaxed);
    drop(opening);
    let mut reader = Reader {
        framing,
        decoder: Decoder::new(),
        latency,
        live,
        clock: io.arrival_clock(),
    };
    let result = match reader.take(&body_start) {
        Ok(Body::Continues) => read_events(&mut io, &mut reader, stop).await,
        Ok(Body::Ended) => {
            live.disconnects.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(error) => Err(error),
    };
    live.held.fetch_sub(1, Ordering::Relaxed);
    result
}

/// Opens the TCP connection of connection `index`.
async fn connect(index: usize, target: &Target) -> Result<TcpStream, String> {
    let socket = if target.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(source) = source_address(&target.addr, index) {
        socket
            .bind(source)
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    let tcp = socket
        .connect(target.addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Sends the subscribe request on `io` and reads the response head: the body's framing
/// and the body bytes read along with the head. Fails unless the answer is a `200`
/// event stream.
async fn open_stream<S>(io: &mut S, target: &Target) -> Result<(Framing, Vec<u8>), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let path = target.uri.path_and_query().map_or("/", |p| p.as_str());
    let request = wire::request(path, &target.host, target.authorization.as_deref());
    io.write_all(&request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let mut buffer = Vec::with_capacity(1024);
    let head = loop {
        if io
            .read_buf(&mut buffer)
            .await
            .map_err(|e| format!("response: {e}"))?
            == 0
        {
            return Err("response: connection closed before the response head".to_owned());
        }
        if let Some(head) = wire::parse_head(&buffer)? {
            break head;
        }
        if buffer.len() == buffer.capacity() {
            buffer.reserve(buffer.len());
        }
    };
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    if !head
        .content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        return Err(format!("content type {:?}", head.content_type));
    }
    buffer.drain(..head.length);
    Ok((head.framing, buffer))
}

thread_local! {
    /// The read buffer of the connections a thread runs, one `read` at a time.
    static READ_BUFFER: RefCell<Box<[u8]>> =
        RefCell::new(vec![0; READ_BUFFER_BYTES].into_boxed_slice());
}

/// The state of one stream's reader: its framing, decoder and latency histogram.
struct Reader<'a> {
    framing: Framing,
    decoder: Decoder,
    latency: Option<&'a mut Histogram<u64>>,
    live: &'a Live,
    /// The kernel's arrival time of what the connection read last.
    clock: ArrivalClock,
}

impl Reader<'_> {
    /// Takes `bytes`, just read: unframes, decodes, counts and times them. They are
    /// timed to the kernel's arrival time when it gave one, otherwise to now.
    fn take(&mut self, bytes: &[u8]) -> Result<Body, String> {
        let kernel_ns = self.clock.last_ns();
        let received_ns = kernel_ns.unwrap_or_else(now_ns);
        let mut timed = 0u64;
        let mut events = 0u64;
        let mut decoded = Ok(());
        let latency = &mut self.latency;
        let decoder = &mut self.decoder;
        let body = self.framing.feed(bytes, |data| {
            if decoded.is_ok() {
                decoded = decoder.feed(data, |event| {
                    events += 1;
                    if let (Some(histogram), Some(sent_ns)) =
                        (latency.as_deref_mut(), leading_number(event.data))
                    {
                        histogram.saturating_record(received_ns.saturating_sub(sent_ns) / 1000);
                        timed += 1;
                    }
                });
            }
        });
        self.live.events.fetch_add(events, Ordering::Relaxed);
        if timed > 0 {
            let by_clock = match kernel_ns {
                Some(_) => &self.live.kernel_timed,
                None => &self.live.user_timed,
            };
            by_clock.fetch_add(timed, Ordering::Relaxed);
        }
        self.live
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let body = body.map_err(|e| format!("read: {e}"))?;
        decoded.map_err(|e| format!("decode: {e}"))?;
        Ok(body)
    }

    /// One `read` from `io` into the thread's buffer, taken at once. `Ready(Ok(true))`
    /// while the stream goes on.
    fn poll_read_some<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<bool, String>> {
        READ_BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            let mut read = ReadBuf::new(&mut buffer[..]);
            if let Err(error) = ready!(Pin::new(io).poll_read(cx, &mut read)) {
                self.live.disconnects.fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(Err(format!("read: {error}")));
            }
            let bytes = read.filled();
            if bytes.is_empty() {
                self.live.disconnects.fetch_add(1, Ordering::Relaxed);
                return Poll::Ready(Ok(false));
            }
            Poll::Ready(match self.take(bytes) {
                Ok(Body::Continues) => Ok(true),
                Ok(Body::Ended) => {
                    self.live.disconnects.fetch_add(1, Ordering::Relaxed);
                    Ok(false)
                }
                Err(error) => Err(error),
            })
        })
    }
}

/// Reads the stream until it ends or the bench stops.
async fn read_events<S: AsyncRead + Unpin>(
    io: &mut S,
    reader: &mut Reader<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    // Registered once, not once per read.
    let stopped = stop.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            read = poll_fn(|cx| reader.poll_read_some(io, cx)) => {
                if !read? {
                    return Ok(());
                }
            }
            _ = &mut stopped => return Ok(()),
        }
    }
}

/// The time now in nanoseconds since the UNIX epoch, as the event data's send times.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads one stream over HTTP/2 (`--http2`), through hyper's client: the same counting,
/// decoding and timing as the HTTP/1.1 reader, one DATA frame at a time.
async fn stream_http2(
    io: Stream,
    target: &Target,
    live: &Live,
    opening: tokio::sync::SemaphorePermit<'_>,
    stop: &mut watch::Receiver<bool>,
    latency: Option<&mut Histogram<u64>>,
) -> Result<(), String> {
    if matches!(target.connector, Connector::Tls { .. }) && !io.negotiated_http2() {
        return Err("the server did not agree to HTTP/2 (ALPN h2)".to_owned());
    }
    let clock = io.arrival_clock();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(connection);
    // HTTP/2 carries the scheme and authority as pseudo-headers, from the full URI.
    let mut request = hyper::Request::get(target.uri.to_string())
        .header("accept", "text/event-stream")
        .header("cache-control", "no-cache");
    if let Some(authorization) = &target.authorization {
        request = request.header("authorization", authorization);
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status().as_u16()));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("text/event-stream")
    {
        return Err(format!("content type {content_type:?}"));
    }
    live.held.fetch_add(1, Ordering::Relaxed);
    drop(opening);
    let mut reader = Reader {
        framing: Framing::UntilClose,
        decoder: Decoder::new(),
        latency,
        live,
        clock,
    };
    let mut body = response.into_body();
    let stopped = stop.changed();
    tokio::pin!(stopped);
    let result = loop {
        let frame = tokio::select! {
            biased;
            frame = http_body_util::BodyExt::frame(&mut body) => frame,
            _ = &mut stopped => break Ok(()),
        };
        match frame {
            None => {
                live.disconnects.fetch_add(1, Ordering::Relaxed);
                break Ok(());
            }
            Some(Err(error)) => {
                live.disconnects.fetch_add(1, Ordering::Relaxed);
                break Err(format!("read: {error}"));
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    if let Err(error) = reader.take(data) {
                        break Err(error);
                    }
                }
            }
        }
    };
    live.held.fetch_sub(1, Ordering::Relaxed);
    result
}

/// The decimal number an event's data starts with, if it looks like a send time in ns
/// (at least 16 digits). Hand-rolled: this runs once per received event.
fn leading_number(data: &str) -> Option<u64> {
    let mut value: u64 = 0;
    let mut digits = 0;
    for byte in data.bytes() {
        if !byte.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
        digits += 1;
    }
    (digits >= 16).then_some(value)
}

fn print_report(report: &BenchReport) {
    println!("url:          {}", report.url);
    println!("protocol:     {}", report.protocol);
    println!(
        "connections:  {} held of {} requested",
        report.connections_held, report.connections_requested
    );
    println!(
        "deliveries:   {} in {:.2} s = {:.0} events/s, {:.1} MiB/s",
        report.events,
        report.measured_seconds,
        report.deliveries_per_second,
        report.bytes_per_second / (1024.0 * 1024.0)
    );
    match &report.latency_ms {
        Some(l) => println!(
            "latency:      p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} samples, {})",
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.samples,
            match l.receive_clock {
                ReceiveClock::Kernel => "until the kernel received them",
                ReceiveClock::User => "until bench read them",
                ReceiveClock::Mixed => "until the kernel received or bench read them",
            }
        ),
        None => println!("latency:      n/a (event data carries no send timestamps)"),
    }
    if report.events_published > 0 {
        println!("published:    {} events", report.events_published);
    }
    println!("disconnects:  {}", report.disconnects);
    match &report.client_cpu {
        Some(cpu) => {
            println!(
                "client cpu:   {:.0}% of one core over the window, {} usable core(s), waited {} for a core{}",
                cpu.percent_of_one_core,
                cpu.cores,
                cpu.run_queue_wait_percent
                    .map_or_else(|| "n/a".to_owned(), |w| format!("{w:.0}% of the window")),
                if cpu.near_limit {
                    " (near its limit)"
                } else {
                    ""
                }
            );
            for warning in cpu::warnings(cpu) {
                println!("warning:      {warning}");
            }
        }
        None => println!("client cpu:   n/a (/proc/self/stat unreadable)"),
    }
    if report.errors.is_empty() {
        println!("errors:       none");
    } else {
        for (reason, count) in &report.errors {
            println!("error:        {count} × {reason}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_time_is_read_from_the_start_of_the_data() {
        assert_eq!(
            leading_number("1764078205000000001      "),
            Some(1_764_078_205_000_000_001)
        );
        assert_eq!(leading_number("42"), None, "too short to be a time in ns");
        assert_eq!(leading_number("Corgi"), None);
    }

    #[test]
    fn latency_samples_spread_over_every_connection() {
        for connections in [1, 5, 100, 101, 1_000, 25_000] {
            let stride = latency_sample_stride(connections);
            let sampled: Vec<usize> = (0..connections).filter(|i| i % stride == 0).collect();
            assert!(
                sampled.len() <= LATENCY_SAMPLED_CONNECTIONS,
                "{connections}"
            );
            if connections <= LATENCY_SAMPLED_CONNECTIONS {
                assert_eq!(sampled.len(), connections, "all of few connections");
            } else {
                assert!(
                    sampled.len() > LATENCY_SAMPLED_CONNECTIONS / 2,
                    "{connections}"
                );
            }
            let last = sampled.last().copied().unwrap_or(0);
            assert!(
                connections - last <= stride,
                "{connections}: the last sampled is {last}, the stride {stride}"
            );
        }
    }

    #[test]
    fn source_addresses_spread_only_past_one_address_worth() {
        let target: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        assert_eq!(source_address(&target, 0), None);
        assert_eq!(
            source_address(&target, CONNECTIONS_PER_SOURCE_ADDRESS),
            Some("127.0.0.2:0".parse().unwrap())
        );
        let remote: SocketAddr = "[::1]:8001".parse().unwrap();
        assert_eq!(source_address(&remote, 100_000), None);
    }
}
