//! The self-check's broadcaster (`cargo xtask broadcaster`, started by `cargo xtask
//! bench`): the least a server can do to stream events, so that what `ssectl bench`
//! measures beyond the broadcaster's own timing is the client's.
//!
//! It accepts `--connections` subscribers (any request: it reads the head and answers
//! `200 text/event-stream`, chunked), then every round writes the same pre-encoded chunk
//! to every socket with non-blocking writes, from one thread: the events due since the
//! last round (`--rate` a second), each one's data its send time in nanoseconds since the
//! UNIX epoch, padded to `--size` bytes, as `examples/firehose.rs` sends them. No hub, no
//! queue per subscriber. It times itself: how late each round's last write finished after
//! the send time the round wrote, which bounds what any client can see.
//!
//! After `--warmup` it records those round times until the first subscriber goes away
//! (the client ending), and when every subscriber is gone (or after `--max-seconds`) it
//! writes its [`BroadcasterTiming`] as JSON to `--stats`.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the broadcaster measured of itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BroadcasterTiming {
    /// Subscribers that were written to.
    pub(crate) connections: u64,
    /// Write rounds recorded (after the warm-up, until the first subscriber left).
    pub(crate) rounds: u64,
    /// Events sent per second over the recorded rounds.
    pub(crate) events_per_second: f64,
    /// Deliveries (events × subscribers) per second over the recorded rounds.
    pub(crate) deliveries_per_second: f64,
    /// How long after its send time a round's last write finished, in ms.
    pub(crate) round_p50_ms: f64,
    pub(crate) round_p99_ms: f64,
    pub(crate) round_p999_ms: f64,
    pub(crate) round_max_ms: f64,
    /// Writes that could not be completed at once (a subscriber's socket buffer full:
    /// the client fell behind); their bytes were kept and sent first in later rounds.
    pub(crate) backlogged_writes: u64,
}

/// The broadcaster's options.
struct Options {
    listen: String,
    connections: usize,
    rate: u64,
    size: usize,
    warmup: Duration,
    max: Duration,
    stats: PathBuf,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            listen: "127.0.0.1:0".to_owned(),
            connections: 1,
            rate: 1_000,
            size: 64,
            warmup: Duration::from_secs(1),
            max: Duration::from_secs(120),
            stats: PathBuf::new(),
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| format!("broadcaster: {flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("broadcaster: {flag} {value:?}: {e}"))
            };
            match flag.as_str() {
                "--listen" => options.listen.clone_from(value),
                "--connections" => options.connections = number()?.max(1) as usize,
                "--rate" => options.rate = number()?.max(1),
                "--size" => options.size = number()? as usize,
                "--warmup-ms" => options.warmup = Duration::from_millis(number()?),
                "--max-seconds" => options.max = Duration::from_secs(number()?),
                "--stats" => options.stats = PathBuf::from(value),
                other => return Err(format!("broadcaster: unknown option {other}")),
            }
        }
        if options.stats.as_os_str().is_empty() {
            return Err("broadcaster: --stats PATH is required".to_owned());
        }
        Ok(options)
    }
}

/// `cargo xtask broadcaster ...`: runs until every subscriber left, then writes the
/// timing to `--stats`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("broadcaster: runtime: {e}"))?;
    let timing = runtime.block_on(async {
        let listener = TcpListener::bind(&options.listen)
            .await
            .map_err(|e| format!("broadcaster: bind {}: {e}", options.listen))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        // The harness reads this line to find the address.
        println!("broadcaster: listening on http://{address}");
        broadcast(listener, &options).await
    })?;
    let json = serde_json::to_string(&timing).map_err(|e| e.to_string())?;
    std::fs::write(&options.stats, json)
        .map_err(|e| format!("broadcaster: {}: {e}", options.stats.display()))
}

/// One subscriber: its socket and the bytes it could not take yet.
struct Subscriber {
    socket: TcpStream,
    backlog: Vec<u8>,
}

const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

/// A subscriber whose backlog grows past this is dropped (the client stopped reading).
const MAX_BACKLOG_BYTES: usize = 8 * 1024 * 1024;

async fn broadcast(listener: TcpListener, options: &Options) -> Result<BroadcasterTiming, String> {
    let deadline = Instant::now() + options.max;
    let mut subscribers = Vec::with_capacity(options.connections);
    while subscribers.len() < options.connections {
        let accepted = tokio::time::timeout_at(deadline.into(), listener.accept()).await;
        let Ok(Ok((socket, _))) = accepted else {
            break;
        };
        if let Some(subscriber) = answer(socket).await {
            subscribers.push(subscriber);
        }
    }
    let connections = subscribers.len() as u64;

    let interval = Duration::from_secs_f64(1.0 / options.rate as f64);
    let started = Instant::now();
    let recording_from = started + options.warmup;
    let mut rounds = new_histogram();
    let mut sent = 0u64;
    let mut recorded_events = 0u64;
    let mut recorded_since: Option<Instant> = None;
    let mut recorded_until = started;
    let mut backlogged_writes = 0u64;
    let mut someone_left = false;
    let mut chunk = Vec::new();
    while !subscribers.is_empty() && Instant::now() < deadline {
        tokio::time::sleep_until((started + interval * (sent as u32 + 1)).into()).await;
        let round_start = Instant::now();
        let due = (round_start.duration_since(started).as_secs_f64() * options.rate as f64) as u64;
        let events = due.saturating_sub(sent).max(1);
        let send_ns = now_ns();
        encode_chunk(&mut chunk, events, send_ns, options.size);
        let before = subscribers.len();
        subscribers.retain_mut(|subscriber| match write(subscriber, &chunk) {
            Write::Done => true,
            Write::Backlogged => {
                backlogged_writes += 1;
                subscriber.backlog.len() <= MAX_BACKLOG_BYTES
            }
            Write::Gone => false,
        });
        let finished_ns = now_ns();
        someone_left |= subscribers.len() < before;
        sent += events;
        if round_start >= recording_from && !someone_left {
            rounds.saturating_record(finished_ns.saturating_sub(send_ns) / 1_000);
            recorded_events += events;
            recorded_since.get_or_insert(round_start);
            recorded_until = Instant::now();
        }
    }
    let seconds = recorded_since.map_or(0.0, |since| {
        recorded_until.duration_since(since).as_secs_f64()
    });
    let per_second = |count: f64| if seconds > 0.0 { count / seconds } else { 0.0 };
    let ms = |micros: u64| micros as f64 / 1_000.0;
    Ok(BroadcasterTiming {
        connections,
        rounds: rounds.len(),
        events_per_second: per_second(recorded_events as f64),
        deliveries_per_second: per_second((recorded_events * connections) as f64),
        round_p50_ms: ms(rounds.value_at_quantile(0.50)),
        round_p99_ms: ms(rounds.value_at_quantile(0.99)),
        round_p999_ms: ms(rounds.value_at_quantile(0.999)),
        round_max_ms: ms(rounds.max()),
        backlogged_writes,
    })
}

/// Reads a request head from a new connection and answers it with the stream's head.
async fn answer(mut socket: TcpStream) -> Option<Subscriber> {
    let _ = socket.set_nodelay(true);
    let mut head = Vec::with_capacity(512);
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() > 16 * 1024 || socket.read_buf(&mut head).await.ok()? == 0 {
                return None;
            }
        }
        socket.write_all(RESPONSE_HEAD).await.ok()
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    Some(Subscriber {
        socket,
        backlog: Vec::new(),
    })
}

/// What became of one round's write to one subscriber.
enum Write {
    Done,
    /// Some bytes are left in the subscriber's backlog.
    Backlogged,
    Gone,
}

/// Writes `chunk` to `subscriber` without waiting: its backlog first, then the chunk;
/// what the socket does not take is kept.
fn write(subscriber: &mut Subscriber, chunk: &[u8]) -> Write {
    if subscriber.backlog.is_empty() {
        match subscriber.socket.try_write(chunk) {
            Ok(n) if n == chunk.len() => return Write::Done,
            Ok(n) => subscriber.backlog.extend_from_slice(&chunk[n..]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                subscriber.backlog.extend_from_slice(chunk)
            }
            Err(_) => return Write::Gone,
        }
        return Write::Backlogged;
    }
    subscriber.backlog.extend_from_slice(chunk);
    match subscriber.socket.try_write(&subscriber.backlog) {
        Ok(n) => {
            subscriber.backlog.drain(..n);
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(_) => return Write::Gone,
    }
    if subscriber.backlog.is_empty() {
        Write::Done
    } else {
        Write::Backlogged
    }
}

/// One HTTP/1.1 chunk holding `events` events, each `data: <send_ns padded to size>`.
fn encode_chunk(chunk: &mut Vec<u8>, events: u64, send_ns: u64, size: usize) {
    use std::io::Write as _;
    let mut body = Vec::with_capacity((size + 8) * events as usize);
    for _ in 0..events {
        // Writing to a Vec cannot fail.
        let _ = write!(body, "data: {send_ns:<size$}\n\n");
    }
    chunk.clear();
    let _ = write!(chunk, "{:x}\r\n", body.len());
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(b"\r\n");
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn new_histogram() -> Histogram<u64> {
    // Microseconds, up to a minute, three significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_holds_each_event_with_its_send_time() {
        let mut chunk = Vec::new();
        encode_chunk(&mut chunk, 2, 1_764_000_000_000_000_001, 24);
        let event = "data: 1764000000000000001     \n\n";
        assert_eq!(event.len(), 32);
        let expected = format!("40\r\n{event}{event}\r\n");
        assert_eq!(String::from_utf8(chunk).unwrap(), expected);
    }

    /// Reads from `socket` until `text` holds `wanted`, within ten seconds.
    async fn read_until(socket: &mut TcpStream, text: &mut String, wanted: &str) {
        let mut buffer = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !text.contains(wanted) {
            let read = tokio::time::timeout_at(deadline.into(), socket.read(&mut buffer))
                .await
                .expect("the broadcaster wrote in time")
                .unwrap();
            assert!(read > 0, "closed early: {text:?}");
            text.push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
    }

    #[test]
    fn subscribers_get_timed_events_and_the_broadcaster_ends_when_they_leave() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let options = Options {
                listen: address.to_string(),
                connections: 2,
                rate: 1_000,
                size: 64,
                warmup: Duration::ZERO,
                max: Duration::from_secs(60),
                stats: PathBuf::from("unused"),
            };
            let broadcaster = tokio::spawn(async move { broadcast(listener, &options).await });
            let mut texts = Vec::new();
            let mut sockets = Vec::new();
            for _ in 0..2 {
                let mut socket = TcpStream::connect(address).await.unwrap();
                socket
                    .write_all(b"GET /subscribe/bench HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await
                    .unwrap();
                sockets.push(socket);
            }
            for socket in &mut sockets {
                let mut text = String::new();
                read_until(socket, &mut text, "\n\n\r\n").await;
                texts.push(text);
            }
            let started_ns = now_ns() - 60_000_000_000;
            for text in &texts {
                let (head, body) = text.split_once("\r\n\r\n").unwrap();
                assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
                assert!(head.contains("content-type: text/event-stream"), "{head}");
                assert!(head.contains("transfer-encoding: chunked"), "{head}");
                let data = body.split("data: ").nth(1).expect("an event");
                let sent_ns: u64 = data.split_whitespace().next().unwrap().parse().unwrap();
                assert!(sent_ns > started_ns && sent_ns <= now_ns(), "{data:?}");
            }
            drop(sockets);
            let timing = tokio::time::timeout(Duration::from_secs(30), broadcaster)
                .await
                .expect("the broadcaster ends once its subscribers left")
                .unwrap()
                .unwrap();
            assert_eq!(timing.connections, 2);
            assert!(timing.rounds >= 1, "{timing:?}");
            assert!(timing.round_p50_ms <= timing.round_max_ms, "{timing:?}");
        });
    }

    #[test]
    fn options_need_a_stats_path_and_known_flags() {
        let args = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(Options::parse(&args(&["--connections", "10"])).is_err());
        assert!(Options::parse(&args(&["--stats", "x", "--colour", "red"])).is_err());
        let options = Options::parse(&args(&[
            "--stats",
            "x",
            "--connections",
            "10",
            "--warmup-ms",
            "5",
        ]))
        .unwrap();
        assert_eq!(
            (options.connections, options.warmup),
            (10, Duration::from_millis(5))
        );
    }
}
