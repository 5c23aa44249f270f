//! `ssectl publish NAMESPACE [EVENT] DATA`: publishes one event and prints its id;
//! `ssectl publish --batch` publishes NDJSON from standard input ([`crate::publish_batch`]).

use std::io::Read;

use clap::Args;
use sse_core::{Event, Namespace};

use crate::client::{excerpt, http_client, refusal, runtime, send_for_text, ServerArg};
use crate::publish_batch;
use crate::tls_client::TlsArgs;

/// Options of `ssectl publish`.
#[derive(Debug, Args)]
#[command(
    override_usage = "ssectl publish [OPTIONS] NAMESPACE [EVENT] DATA\n       \
                            ssectl publish [OPTIONS] --batch < EVENTS.ndjson"
)]
pub struct PublishArgs {
    #[command(flatten)]
    pub(crate) server: ServerArg,

    #[command(flatten)]
    pub(crate) tls: TlsArgs,

    /// Bearer token for a server that requires one: its publish token, or a signed one
    /// from `ssectl token`.
    #[arg(long, env = "SSE_PUBLISH_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,

    /// Publish many events: read NDJSON from standard input, one JSON object per line
    /// with its `namespace` and `data` (and optionally `event`, `id`, `retry`), and send
    /// them through `POST /publish` in batches.
    #[arg(long, conflicts_with_all = ["words", "id", "retry", "json"])]
    batch: bool,

    /// With --batch: events per request at most (default 500; requests also stay under
    /// 512 KiB).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub(crate) batch_size: Option<u64>,

    /// The event id (default: the server assigns one).
    #[arg(long)]
    id: Option<String>,

    /// The clients' reconnection time, in milliseconds.
    #[arg(long)]
    retry: Option<u64>,

    /// DATA is a JSON value, sent as compact JSON (a JSON string is sent as its text).
    #[arg(long)]
    json: bool,

    /// Where to publish, then optionally the event type, then the data (`-` reads it from
    /// standard input).
    #[arg(
        value_name = "NAMESPACE [EVENT] DATA",
        num_args = 2..=3,
        required_unless_present = "batch"
    )]
    words: Vec<String>,
}

/// Publishes and prints the assigned id (with `--batch`: the count published).
pub fn run(args: PublishArgs) -> Result<(), String> {
    if args.batch {
        return publish_batch::run(&publish_batch::Target {
            server: &args.server,
            tls: &args.tls,
            token: args.token.clone(),
            batch_size: args.batch_size,
        });
    }
    if args.batch_size.is_some() {
        return Err("--batch-size goes with --batch".into());
    }
    let (namespace, event_type, data) = match args.words.as_slice() {
        [namespace, data] => (namespace, None, data),
        [namespace, event_type, data] => (namespace, Some(event_type), data),
        _ => return Err("expected NAMESPACE [EVENT] DATA".into()),
    };
    let namespace = Namespace::parse(namespace).map_err(|e| e.to_string())?;
    let data = if data == "-" {
        read_stdin()?
    } else {
        data.clone()
    };

    // Check the fields here so a mistake is reported before anything is sent.
    let mut event = Event::new(String::new());
    if let Some(kind) = event_type {
        event = event.with_event(kind.clone());
    }
    if let Some(id) = &args.id {
        event = event.with_id(id.clone());
    }
    event
        .validate()
        .map_err(|e| format!("invalid {}: {e}", e.field()))?;
    let json_data: Option<serde_json::Value> = if args.json {
        Some(
            serde_json::from_str(&data)
                .map_err(|e| format!("--json: DATA is not valid JSON: {e}"))?,
        )
    } else {
        None
    };

    let url = args.server.url(&format!("/publish{namespace}"));
    let client = http_client(&args.tls)?;
    let mut request = client.post(&url);
    request = match json_data {
        Some(value) => {
            let mut body = serde_json::Map::new();
            body.insert("data".into(), value);
            if let Some(kind) = event_type {
                body.insert("event".into(), kind.clone().into());
            }
            if let Some(id) = &args.id {
                body.insert("id".into(), id.clone().into());
            }
            if let Some(retry) = args.retry {
                body.insert("retry".into(), retry.into());
            }
            request.json(&body)
        }
        None => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(kind) = event_type {
                query.push(("event", kind.clone()));
            }
            if let Some(id) = &args.id {
                query.push(("id", id.clone()));
            }
            if let Some(retry) = args.retry {
                query.push(("retry", retry.to_string()));
            }
            request
                .query(&query)
                .header("content-type", "text/plain; charset=utf-8")
                .body(data)
        }
    };
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let (status, body) = send_for_text(&runtime()?, &url, request)?;
    if !status.is_success() {
        return Err(refusal(status.as_u16(), &body));
    }
    let json: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| format!("{url}: unexpected reply {status}: {}", excerpt(&body)))?;
    match json["id"].as_str() {
        Some(id) => {
            println!("{id}");
            Ok(())
        }
        None => Err(format!("{url}: the reply has no id: {}", excerpt(&body))),
    }
}

fn read_stdin() -> Result<String, String> {
    let mut data = String::new();
    std::io::stdin()
        .read_to_string(&mut data)
        .map_err(|e| format!("cannot read DATA from standard input: {e}"))?;
    Ok(data)
}
