//! `ssectl tail NAMESPACE|URL`: follows an event stream as a browser's `EventSource`
//! does, and prints each event.
//!
//! Like a browser it sends `Accept: text/event-stream` and `Cache-Control: no-cache`,
//! follows redirects, decodes with the WHATWG algorithm (`sse-core`'s decoder), and when
//! the stream ends reconnects after the server's `retry:` time (3 s until one is sent)
//! with `Last-Event-ID`. Like a browser it gives up for good on any answer other than
//! `200 text/event-stream` (HTTP 204 is how a server says "stop"), and says why.

use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};
use sse_core::{Decoder, EventRef, Namespace};
use tokio::time::Instant;

use crate::client::{describe_request_error, http_client, runtime, ServerArg};

/// How long to wait before reconnecting until the server sends `retry:`.
const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// Options of `ssectl tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    server: ServerArg,

    /// A namespace on the server (such as /pets), or the full URL of any event stream.
    #[arg(value_name = "NAMESPACE|URL")]
    target: String,

    /// Bearer token to send (such as one from `ssectl token`).
    #[arg(long)]
    token: Option<String>,

    /// Resume after this event id (sent as Last-Event-ID).
    #[arg(long)]
    last_event_id: Option<String>,

    /// How to print events: `text` for people, `json` one object per line
    /// ({"type", "data", "id"}), `raw` the bytes as received.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Exit after this many events.
    #[arg(long)]
    count: Option<u64>,

    /// Exit after this long (non-zero if --count was not reached).
    #[arg(long, value_parser = humantime::parse_duration)]
    timeout: Option<Duration>,

    /// Do not reconnect: exit 0 when the stream ends.
    #[arg(long)]
    once: bool,
}

/// Output formats of `ssectl tail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: the type and id, then the data.
    Text,
    /// One JSON object per event: {"type", "data", "id"}.
    Json,
    /// The stream's bytes as received.
    Raw,
}

/// Why tailing stopped, other than by an error.
enum Stop {
    CountReached,
    StreamEnded,
    TimedOut,
    OutputClosed,
}

/// Follows the stream until --count, --timeout, --once or a fatal answer.
pub fn run(args: TailArgs) -> Result<(), String> {
    let url = target_url(&args)?;
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let runtime = runtime()?;
    let stop = runtime.block_on(async {
        match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, follow(&args, &url)).await {
                Ok(result) => result,
                Err(_) => Ok(Stop::TimedOut),
            },
            None => follow(&args, &url).await,
        }
    })?;
    match stop {
        Stop::TimedOut if args.count.is_some() => Err(format!(
            "timed out after {} before receiving {} events",
            humantime::format_duration(args.timeout.unwrap_or_default()),
            args.count.unwrap_or_default()
        )),
        Stop::CountReached | Stop::StreamEnded | Stop::TimedOut | Stop::OutputClosed => Ok(()),
    }
}

fn target_url(args: &TailArgs) -> Result<String, String> {
    let target = args.target.as_str();
    if target.starts_with("http://") || target.starts_with("https://") {
        return Ok(target.to_owned());
    }
    let namespace =
        Namespace::parse(target).map_err(|e| format!("{e} (or give a full http:// URL)"))?;
    Ok(args.server.url(&format!("/subscribe{namespace}")))
}

async fn follow(args: &TailArgs, url: &str) -> Result<Stop, String> {
    let client = http_client()?;
    let mut decoder =
        Decoder::new().with_last_event_id(args.last_event_id.clone().unwrap_or_default());
    let mut printed = 0u64;
    let mut out = std::io::stdout().lock();
    loop {
        let mut request = client
            .get(url)
            .header("accept", "text/event-stream")
            .header("cache-control", "no-cache");
        if let Some(token) = &args.token {
            request = request.bearer_auth(token);
        }
        if !decoder.last_event_id().is_empty() {
            // From bytes: an id may be any UTF-8 text, which `from_str` would refuse.
            if let Ok(value) =
                reqwest::header::HeaderValue::from_bytes(decoder.last_event_id().as_bytes())
            {
                request = request.header("last-event-id", value);
            }
        }
        match request.send().await {
            Err(error) if args.once => return Err(describe_request_error(url, &error)),
            Err(error) => eprintln!("ssectl: {}", describe_request_error(url, &error)),
            Ok(response) => {
                check_response(&response)?;
                decoder.start_new_stream();
                let mut response = response;
                loop {
                    let chunk = match response.chunk().await {
                        Ok(Some(chunk)) => chunk,
                        Ok(None) => break,
                        Err(error) => {
                            eprintln!("ssectl: {}", describe_request_error(url, &error));
                            break;
                        }
                    };
                    if args.format == Format::Raw && write_raw(&mut out, &chunk).is_err() {
                        return Ok(Stop::OutputClosed);
                    }
                    let limit = args.count.map_or(u64::MAX, |count| count - printed);
                    let mut this_chunk = 0u64;
                    let mut write_failed = false;
                    let fed = decoder.feed(&chunk, |event| {
                        if this_chunk == limit || write_failed {
                            return;
                        }
                        this_chunk += 1;
                        if args.format != Format::Raw
                            && print_event(&mut out, args.format, &event).is_err()
                        {
                            write_failed = true;
                        }
                    });
                    fed.map_err(|e| format!("{url}: {e}"))?;
                    printed += this_chunk;
                    if write_failed {
                        return Ok(Stop::OutputClosed);
                    }
                    if args.count.is_some_and(|count| printed >= count) {
                        return Ok(Stop::CountReached);
                    }
                }
                if args.once {
                    return Ok(Stop::StreamEnded);
                }
            }
        }
        let wait = decoder.retry().map_or(DEFAULT_RETRY, Duration::from_millis);
        eprintln!(
            "ssectl: reconnecting in {}",
            humantime::format_duration(wait)
        );
        tokio::time::sleep(wait).await;
    }
}

/// Fails the connection, as a browser does, unless it is `200 text/event-stream`.
fn check_response(response: &reqwest::Response) -> Result<(), String> {
    let url = response.url().to_string();
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Err(format!("{url}: the server answered 204 No Content, which tells clients to stop; not reconnecting"));
    }
    if status != reqwest::StatusCode::OK {
        return Err(format!(
            "{url}: the server answered {status}; an event stream needs 200"
        ));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("text/event-stream") {
        return Err(format!(
            "{url}: not an event stream (Content-Type {content_type:?})"
        ));
    }
    Ok(())
}

fn write_raw(out: &mut impl Write, chunk: &[u8]) -> std::io::Result<()> {
    out.write_all(chunk)?;
    out.flush()
}

fn print_event(out: &mut impl Write, format: Format, event: &EventRef<'_>) -> std::io::Result<()> {
    match format {
        Format::Json => {
            let line = serde_json::json!({ "type": event.event_type, "data": event.data, "id": event.last_event_id });
            writeln!(out, "{line}")?;
        }
        Format::Text | Format::Raw => {
            if event.last_event_id.is_empty() {
                writeln!(out, "[{}]", event.event_type)?;
            } else {
                writeln!(out, "[{}] id {}", event.event_type, event.last_event_id)?;
            }
            for line in event.data.split('\n') {
                writeln!(out, "  {line}")?;
            }
        }
    }
    out.flush()
}
