//! `ssectl tail NAMESPACE...|URL`: follows an event stream as a browser's `EventSource`
//! does, and prints each event.
//!
//! One namespace is read from `/subscribe/{namespace}`; several (`ssectl tail /pets
//! /time`) share one stream, `/subscribe?ns=/pets&ns=/time`, on which an event that
//! matches more than one of them still arrives once. A full `http://` or `https://` URL
//! reads any event stream.
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
use crate::tls_client::{describe_tls_error, TlsArgs};

/// How long to wait before reconnecting until the server sends `retry:`.
const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// Options of `ssectl tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    server: ServerArg,

    #[command(flatten)]
    tls: TlsArgs,

    /// Namespaces on the server (such as /pets /time: one stream for all of them), or the
    /// full URL of any event stream.
    #[arg(value_name = "NAMESPACE...|URL", required = true, num_args = 1..)]
    targets: Vec<String>,

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
    let is_url = |target: &str| target.starts_with("http://") || target.starts_with("https://");
    match args.targets.as_slice() {
        [target] if is_url(target) => return Ok(target.clone()),
        targets if targets.iter().any(|t| is_url(t)) => {
            return Err("give either one URL or one or more namespaces, not both".into())
        }
        _ => {}
    }
    let namespaces = args
        .targets
        .iter()
        .map(|target| {
            Namespace::parse(target)
                .map_err(|e| format!("{target:?}: {e} (or give a full http:// URL)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match namespaces.as_slice() {
        [namespace] => args.server.url(&format!("/subscribe{namespace}")),
        // Namespaces are made of unreserved characters and `/`, which a query may hold.
        several => {
            let query: Vec<String> = several.iter().map(|ns| format!("ns={ns}")).collect();
            args.server.url(&format!("/subscribe?{}", query.join("&")))
        }
    })
}

async fn follow(args: &TailArgs, url: &str) -> Result<Stop, String> {
    let client = http_client(&args.tls)?;
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
            // A refused certificate will be refused again: no point reconnecting.
            Err(error) if args.once || describe_tls_error(&error).is_some() => {
                return Err(describe_request_error(url, &error))
            }
            Err(error) => eprintln!("ssectl: {}", describe_request_error(url, &error)),
            Ok(response) => {
                let response = check_response(response).await?;
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

/// Fails the connection, as a browser does, unless it is `200 text/event-stream`. A
/// refusal says what the server said (its JSON error, or the start of its answer).
async fn check_response(response: reqwest::Response) -> Result<reqwest::Response, String> {
    let url = response.url().to_string();
    let status = response.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Err(format!("{url}: the server answered 204 No Content, which tells clients to stop; not reconnecting"));
    }
    if status != reqwest::StatusCode::OK {
        let said = answer_excerpt(response).await;
        return Err(format!(
            "{url}: the server answered {status}{said}; an event stream needs 200"
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
    Ok(response)
}

/// `: ` and the `detail` of a JSON error body, or the start of the body's first line;
/// empty when there is nothing to show. Reads at most a few kilobytes.
async fn answer_excerpt(mut response: reqwest::Response) -> String {
    const MOST: usize = 4096;
    let mut body = Vec::new();
    while body.len() < MOST {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(detail) = json["detail"].as_str().or(json["error"].as_str()) {
            return format!(" ({detail})");
        }
    }
    let text = String::from_utf8_lossy(&body);
    let line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    if line.trim().is_empty() {
        String::new()
    } else {
        format!(" ({})", line.trim())
    }
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
