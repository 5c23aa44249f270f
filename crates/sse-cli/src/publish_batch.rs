//! `ssectl publish --batch`: publishes NDJSON read from standard input.
//!
//! Each non-blank line is one JSON object with its `namespace` and `data` (and optionally
//! `event`, `id`, `retry`), as `POST /publish` takes them. Lines are sent in order, in
//! requests of at most `--batch-size` events and [`MAX_REQUEST_BYTES`] bytes, each of
//! which the server publishes whole or not at all; input is read as it arrives, so a
//! long-running producer can pipe into it.
//!
//! A bad line stops the run: the events before it are published, none from it on, and
//! the error names the line (counted on standard input, blank lines included) and how
//! many were published. A line that is not an object with a valid namespace and data is
//! caught here; what only the server checks (field values, duplicate ids, permissions)
//! refuses that line's whole request, and the server's line number is translated back.

use std::io::BufRead;

use serde_json::Value;
use sse_core::Namespace;

use crate::client::{excerpt, http_client, refusal, runtime, send_for_text, ServerArg};
use crate::tls_client::TlsArgs;

/// Events per request unless `--batch-size` says otherwise (the help text repeats it).
pub const DEFAULT_BATCH_SIZE: u64 = 500;

/// Bytes per request at most, so a batch fits a server's default body limit (1 MiB) with
/// room to spare. A single line larger than this is sent alone.
pub const MAX_REQUEST_BYTES: usize = 512 * 1024;

/// Where and how `ssectl publish --batch` publishes.
pub struct Target<'a> {
    /// The server's base URL.
    pub server: &'a ServerArg,
    /// Certificates to trust, for `https://`.
    pub tls: &'a TlsArgs,
    /// Sent as a bearer token.
    pub token: Option<String>,
    /// Events per request at most (default [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: Option<u64>,
}

/// Publishes standard input and prints how many events were published.
pub fn run(args: &Target<'_>) -> Result<(), String> {
    let mut sender = Sender {
        client: http_client(args.tls)?,
        url: args.server.url("/publish"),
        token: args.token.clone(),
        runtime: runtime()?,
        published: 0,
    };
    let limit = args.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut batch = Batch::default();
    for (index, line) in std::io::stdin().lock().lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| {
            format!(
                "standard input, line {number}: cannot read: {e}; {}",
                sender.outcome()
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(problem) = check_line(&line) {
            sender.send(&mut batch)?;
            return Err(format!("line {number}: {problem}; {}", sender.outcome()));
        }
        if !batch.is_empty()
            && (batch.len() >= limit || batch.body.len() + line.len() + 1 > MAX_REQUEST_BYTES)
        {
            sender.send(&mut batch)?;
        }
        batch.push(number, &line);
    }
    sender.send(&mut batch)?;
    if sender.published == 0 {
        return Err("no events on standard input: give one JSON object per line".into());
    }
    println!("published {} events", sender.published);
    Ok(())
}

/// Lines waiting to be sent, with their line numbers on standard input.
#[derive(Default)]
struct Batch {
    body: String,
    lines: Vec<usize>,
}

impl Batch {
    fn push(&mut self, number: usize, line: &str) {
        self.body.push_str(line);
        self.body.push('\n');
        self.lines.push(number);
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The standard-input line of the batch's line `line` (from 1), if it has one.
    fn input_line(&self, line: usize) -> Option<usize> {
        line.checked_sub(1).and_then(|i| self.lines.get(i).copied())
    }
}

/// Sends batches and counts what the server accepted.
struct Sender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    runtime: tokio::runtime::Runtime,
    published: u64,
}

impl Sender {
    /// "N published" and, when something failed, that nothing after it was.
    fn outcome(&self) -> String {
        format!(
            "{} events published before it, none from it on",
            self.published
        )
    }

    /// Sends `batch` (when it holds anything) and empties it.
    fn send(&mut self, batch: &mut Batch) -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = std::mem::take(&mut batch.body);
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/x-ndjson")
            .body(body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let url = &self.url;
        let (first, last) = (
            batch.lines.first().copied().unwrap_or_default(),
            batch.lines.last().copied().unwrap_or_default(),
        );
        let published = self.published;
        let unsure = |error: String| {
            format!(
                "lines {first}-{last}: {error}; {published} events published before them, \
                 these perhaps (the answer did not arrive), none after them"
            )
        };
        let (status, reply) = send_for_text(&self.runtime, url, request).map_err(unsure)?;
        if !status.is_success() {
            let (line, problem) = match refused_line(&reply).and_then(|l| batch.input_line(l)) {
                Some(line) => (line, refusal(status.as_u16(), &without_line(&reply))),
                None => (first, refusal(status.as_u16(), &reply)),
            };
            batch.lines.clear();
            return Err(format!(
                "line {line}: {problem}; the request with lines {first}-{last} was refused \
                 whole; {}",
                self.outcome()
            ));
        }
        let json: Value = serde_json::from_str(&reply)
            .map_err(|_| format!("{url}: unexpected reply {status}: {}", excerpt(&reply)))?;
        let count = json["count"].as_u64().ok_or_else(|| {
            format!(
                "{url}: the reply does not say how many were published: {}",
                excerpt(&reply)
            )
        })?;
        self.published += count;
        batch.lines.clear();
        Ok(())
    }
}

/// What is wrong with a line that cannot be an event, before anything is sent.
fn check_line(line: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(object) = value else {
        return Err(
            "not a JSON object such as {\"namespace\": \"/pets\", \"data\": \"...\"}".into(),
        );
    };
    match object.get("namespace") {
        Some(Value::String(text)) => {
            Namespace::parse(text).map_err(|e| format!("namespace {text:?}: {e}"))?;
        }
        Some(_) => return Err("\"namespace\" must be a string".into()),
        None => return Err("each line needs a \"namespace\"".into()),
    }
    if !object.contains_key("data") {
        return Err("each line needs a \"data\" member".into());
    }
    Ok(())
}

/// The batch line a refusal's `detail` names (`line 3: ...`, `line 3 (...)`).
fn refused_line(reply: &str) -> Option<usize> {
    let json: Value = serde_json::from_str(reply).ok()?;
    let rest = json["detail"].as_str()?.strip_prefix("line ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The refusal with the batch's line number taken out of its `detail`, since the caller
/// names the line on standard input instead.
fn without_line(reply: &str) -> String {
    let Ok(mut json) = serde_json::from_str::<Value>(reply) else {
        return reply.to_owned();
    };
    if let Some(detail) = json["detail"].as_str() {
        let mut rest = detail
            .trim_start_matches("line ")
            .trim_start_matches(|c: char| c.is_ascii_digit());
        if let Some(note) = rest.strip_prefix(" (") {
            rest = note.split_once(')').map_or(note, |(_, after)| after);
        }
        let rest = rest.trim_start_matches(':').trim_start();
        json["detail"] = Value::String(rest.to_owned());
    }
    json.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_without_an_event_are_named() {
        assert!(check_line(r#"{"namespace": "/pets", "data": 1}"#).is_ok());
        let cases = [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "not a JSON object"),
            (r#"{"data": "x"}"#, "needs a \"namespace\""),
            (r#"{"namespace": 7, "data": "x"}"#, "must be a string"),
            (
                r#"{"namespace": "/a//b", "data": "x"}"#,
                "namespace \"/a//b\"",
            ),
            (r#"{"namespace": "/pets"}"#, "needs a \"data\""),
        ];
        for (line, expected) in cases {
            let problem = check_line(line).unwrap_err();
            assert!(problem.contains(expected), "{line}: {problem}");
        }
    }

    #[test]
    fn a_refusal_line_maps_back_to_standard_input() {
        let reply = r#"{"error": "duplicate_id", "detail": "line 2 (nothing was published): id \"a\" is in use"}"#;
        assert_eq!(refused_line(reply), Some(2));
        let mut batch = Batch::default();
        batch.push(4, "{}");
        batch.push(7, "{}");
        assert_eq!(batch.input_line(2), Some(7));
        assert_eq!(batch.input_line(3), None);
        let detail: Value = serde_json::from_str(&without_line(reply)).unwrap();
        assert_eq!(detail["detail"], "id \"a\" is in use");
    }
}
