//! Churn: many short-lived connections against one `ssectl serve`, ended in every way a
//! client ends one, then the server's resources are checked against its rest state.
//!
//! A fixed number of workers run the cycles; cycle `i` is of kind `i mod 5`:
//!
//! - clean close: subscribe, read the first bytes of the stream, close (FIN);
//! - reset: the same, closed with `SO_LINGER` 0 (RST);
//! - half close: subscribe, read the first bytes, shut down the write side only, then
//!   wait (bounded) for the server to close its side;
//! - stop reading: subscribe and never read; close once the server has written (the
//!   unread bytes make the kernel send RST);
//! - mid-head: send part of a request head (from none of it to all but its last byte),
//!   then close with FIN or RST.
//!
//! Meanwhile a feed publishes to the namespace the streams subscribe to, so the server
//! is writing to each stream when its client goes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::check::Check;
use super::feed::{fill, Feed};
use super::probes::{open_fds, rss, streams, wait_for, Streams};
use super::wire::{read_head, subscribe_request};
use crate::bench::processes::{ServerProcess, Tools};

/// The namespace the churn subscribes to (below it: where the feed publishes).
const NAMESPACE: &str = "/churn";
const FEED_NAMESPACE: &str = "/churn/feed";

/// The bound on one cycle; a cycle that takes longer counts as an error.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a half-closed client waits for the server to close its side.
const HALF_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// How long the server has to return to rest after the clients are gone.
const SETTLE: Duration = Duration::from_secs(30);

/// The most errors whose message the report keeps.
const KEPT_ERRORS: usize = 5;

/// The ways a cycle ends a connection, in the order cycles take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    CleanClose,
    Reset,
    HalfClose,
    StopReading,
    MidHead,
}

const KINDS: [Kind; 5] = [
    Kind::CleanClose,
    Kind::Reset,
    Kind::HalfClose,
    Kind::StopReading,
    Kind::MidHead,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::CleanClose => "clean close after the first bytes",
            Kind::Reset => "reset (SO_LINGER 0) after the first bytes",
            Kind::HalfClose => "half close (write side shut down)",
            Kind::StopReading => "never reads, then closes",
            Kind::MidHead => "closes mid-head (FIN or RST)",
        }
    }
}

/// The sizes of a churn run.
#[derive(Debug, Clone)]
pub(super) struct ChurnPlan {
    pub(super) cycles: u64,
    pub(super) warmup_cycles: u64,
    /// Connections in flight at once.
    pub(super) concurrency: u64,
    /// Events per second the feed publishes during the rounds.
    pub(super) feed_rate: u64,
    /// The server's replay history, filled before the warm-up round.
    pub(super) history: u64,
}

/// What a churn run measured.
#[derive(Debug, Serialize)]
pub(super) struct ChurnReport {
    pub(super) cycles: u64,
    pub(super) warmup_cycles: u64,
    pub(super) concurrency: u64,
    pub(super) feed_rate: u64,
    pub(super) seconds: f64,
    /// Cycles per kind, by the kind's description.
    pub(super) kinds: Vec<(&'static str, u64)>,
    pub(super) errors: u64,
    /// The first few errors' messages.
    pub(super) error_samples: Vec<String>,
    /// Half-closed clients whose connection the server had not closed within
    /// [`HALF_CLOSE_WAIT`].
    pub(super) half_closes_left_open: u64,
    pub(super) fds_at_start: u64,
    pub(super) fds_after_warmup: u64,
    pub(super) fds_after: u64,
    pub(super) rss_baseline_kib: u64,
    pub(super) rss_after_kib: u64,
    pub(super) streams_after: u64,
    pub(super) subscribers_after: u64,
}

/// What one round of cycles counted.
#[derive(Debug, Default)]
struct Round {
    per_kind: [u64; 5],
    errors: u64,
    error_samples: Vec<String>,
    half_closes_left_open: u64,
}

impl Round {
    fn add(&mut self, other: Round) {
        for (total, count) in self.per_kind.iter_mut().zip(other.per_kind) {
            *total += count;
        }
        self.errors += other.errors;
        self.half_closes_left_open += other.half_closes_left_open;
        for sample in other.error_samples {
            if self.error_samples.len() < KEPT_ERRORS {
                self.error_samples.push(sample);
            }
        }
    }
}

/// Runs the warm-up round and the measured round against a fresh server, then checks
/// that the server returned to rest.
pub(super) async fn churn(
    tools: &Tools,
    plan: &ChurnPlan,
) -> Result<(ChurnReport, Vec<Check>), String> {
    let mut command = tools.command(&tools.ssectl, 0);
    command.args(["serve", "--listen", "127.0.0.1:0"]);
    command.args(["--history", &plan.history.to_string()]);
    let server = ServerProcess::start(command)?;
    let addr = super::wire::address(&server.base)?;
    let pid = server.pid();
    let fds_at_start = open_fds(pid)?;
    fill(addr, FEED_NAMESPACE, plan.history).await?;

    eprintln!("xtask: churn warm-up, {} cycles", plan.warmup_cycles);
    let warmup = round_with_feed(addr, plan, plan.warmup_cycles).await?;
    let (rest, at_rest) = wait_for(SETTLE, || streams(addr), is_rest).await?;
    if !at_rest {
        return Err(format!(
            "after the warm-up round the server still reports {rest:?}"
        ));
    }
    let fds_after_warmup = open_fds(pid)?;
    let rss_baseline_kib = rss(pid)?;

    eprintln!("xtask: churn, {} cycles", plan.cycles);
    let start = Instant::now();
    let measured = round_with_feed(addr, plan, plan.cycles).await?;
    let seconds = start.elapsed().as_secs_f64();

    let (rest, streams_closed) = wait_for(SETTLE, || streams(addr), is_rest).await?;
    let (fds_after, fds_back) = wait_for(
        SETTLE,
        || async { open_fds(pid) },
        |&fds| fds <= fds_at_start,
    )
    .await?;
    let rss_limit = rss_baseline_kib + rss_baseline_kib / 10;
    let (rss_after_kib, rss_back) = wait_for(
        Duration::from_secs(10),
        || async { rss(pid) },
        |&kib| kib <= rss_limit,
    )
    .await?;
    drop(server);

    let mut round = warmup;
    round.add(measured);
    let checks = vec![
        Check::new(
            "churn: every cycle behaved",
            round.errors == 0,
            format!(
                "{} errors in {} cycles",
                round.errors,
                plan.cycles + plan.warmup_cycles
            ),
        ),
        Check::new(
            "churn: 0 open streams and 0 subscribers afterwards",
            streams_closed,
            format!(
                "{} open streams, {} subscribers",
                rest.open, rest.subscribers
            ),
        ),
        Check::new(
            "churn: file descriptors back to the server's at start",
            fds_back,
            format!("{fds_after} open (at start {fds_at_start}, after warm-up {fds_after_warmup})"),
        ),
        Check::new(
            "churn: RSS within 10% of the baseline after warm-up",
            rss_back,
            format!("{rss_after_kib} KiB (baseline {rss_baseline_kib} KiB, limit {rss_limit} KiB)"),
        ),
    ];
    let report = ChurnReport {
        cycles: plan.cycles,
        warmup_cycles: plan.warmup_cycles,
        concurrency: plan.concurrency,
        feed_rate: plan.feed_rate,
        seconds,
        kinds: KINDS.iter().map(|k| k.name()).zip(round.per_kind).collect(),
        errors: round.errors,
        error_samples: round.error_samples,
        half_closes_left_open: round.half_closes_left_open,
        fds_at_start,
        fds_after_warmup,
        fds_after,
        rss_baseline_kib,
        rss_after_kib,
        streams_after: rest.open,
        subscribers_after: rest.subscribers,
    };
    Ok((report, checks))
}

fn is_rest(streams: &Streams) -> bool {
    streams.open == 0 && streams.subscribers == 0
}

/// One round of `cycles` cycles while the feed publishes.
async fn round_with_feed(addr: SocketAddr, plan: &ChurnPlan, cycles: u64) -> Result<Round, String> {
    let (stop, stopped) = watch::channel(false);
    let feed = Feed {
        addr,
        namespace: FEED_NAMESPACE,
        rate: plan.feed_rate,
    };
    let feeding = tokio::spawn(async move { feed.run(None, stopped).await });
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..plan.concurrency)
        .map(|_| tokio::spawn(worker(addr, Arc::clone(&next), cycles)))
        .collect();
    let mut round = Round::default();
    for worker in workers {
        round.add(
            worker
                .await
                .map_err(|e| format!("a churn worker failed: {e}"))?,
        );
    }
    let _ = stop.send(true);
    feeding
        .await
        .map_err(|e| format!("the churn feed failed: {e}"))??;
    Ok(round)
}

/// Takes cycle numbers until `cycles` have been taken, running each.
async fn worker(addr: SocketAddr, next: Arc<AtomicU64>, cycles: u64) -> Round {
    let mut round = Round::default();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= cycles {
            return round;
        }
        let kind_index = (index % KINDS.len() as u64) as usize;
        let kind = KINDS[kind_index];
        round.per_kind[kind_index] += 1;
        let result = match tokio::time::timeout(CYCLE_TIMEOUT, cycle(addr, kind, index)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no end within {CYCLE_TIMEOUT:?}")),
        };
        match result {
            Ok(Ending::AsPlanned) => {}
            Ok(Ending::LeftOpenByServer) => round.half_closes_left_open += 1,
            Err(message) => {
                round.errors += 1;
                if round.error_samples.len() < KEPT_ERRORS {
                    round
                        .error_samples
                        .push(format!("cycle {index} ({}): {message}", kind.name()));
                }
            }
        }
    }
}

/// How a cycle ended, when nothing went wrong.
enum Ending {
    AsPlanned,
    /// A half-closed client's connection that the server kept open.
    LeftOpenByServer,
}

/// One connection, ended the way `kind` says.
async fn cycle(addr: SocketAddr, kind: Kind, index: u64) -> Result<Ending, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = subscribe_request(addr, NAMESPACE, None);
    if kind == Kind::MidHead {
        // From none of the head to all but its last byte; FIN and RST alternate.
        let round = index / KINDS.len() as u64;
        let cut = (round % (request.len() as u64 - 1)) as usize;
        stream
            .write_all(&request.as_bytes()[..cut])
            .await
            .map_err(|e| format!("writing part of a head: {e}"))?;
        if round % 2 == 1 {
            stream.set_zero_linger().map_err(|e| e.to_string())?;
        }
        return Ok(Ending::AsPlanned);
    }
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("writing the request: {e}"))?;
    if kind == Kind::StopReading {
        stream
            .readable()
            .await
            .map_err(|e| format!("waiting for the answer: {e}"))?;
        return Ok(Ending::AsPlanned);
    }
    let head = read_head(&mut stream).await?;
    if head.status != 200 || !head.chunked {
        return Err(format!(
            "answered {} ({}chunked) instead of a 200 event stream",
            head.status,
            if head.chunked { "" } else { "not " }
        ));
    }
    match kind {
        Kind::CleanClose => {
            drain(&stream);
            stream
                .shutdown()
                .await
                .map_err(|e| format!("closing: {e}"))?;
            Ok(Ending::AsPlanned)
        }
        Kind::Reset => {
            stream.set_zero_linger().map_err(|e| e.to_string())?;
            Ok(Ending::AsPlanned)
        }
        Kind::HalfClose => half_close(stream).await,
        Kind::StopReading | Kind::MidHead => unreachable!("handled above"),
    }
}

/// Reads and drops whatever has arrived, so that closing sends FIN rather than RST.
fn drain(stream: &TcpStream) {
    let mut discard = [0u8; 4096];
    while let Ok(count) = stream.try_read(&mut discard) {
        if count == 0 {
            break;
        }
    }
}

/// Shuts the write side down, then reads until the server closes its side.
async fn half_close(mut stream: TcpStream) -> Result<Ending, String> {
    stream
        .shutdown()
        .await
        .map_err(|e| format!("shutting down the write side: {e}"))?;
    let until_closed = async {
        let mut discard = [0u8; 4096];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut discard) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if super::wire::is_hang_up(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    match tokio::time::timeout(HALF_CLOSE_WAIT, until_closed).await {
        Ok(Ok(())) => Ok(Ending::AsPlanned),
        Ok(Err(e)) => Err(format!("reading after the half close: {e}")),
        Err(_) => Ok(Ending::LeftOpenByServer),
    }
}
