//! Turning publish requests into events: the single form (`POST /publish/{namespace}`)
//! and the batch form (`POST /publish` with NDJSON). Pure parsing: no I/O, no hub.
//!
//! Single form, by `Content-Type`:
//! - none, `text/*`, `application/octet-stream` or `application/x-www-form-urlencoded`
//!   (what `curl -d` sends): the body, which must be UTF-8, is the data, taken verbatim;
//!   `?event=`, `?id=` and `?retry=` set the other fields;
//! - `application/json` (or `+json`): an object `{"event", "data", "id", "retry"}`, where a
//!   string `data` is sent as is and any other JSON value as compact JSON. Query
//!   parameters fill in the fields the object leaves out.
//!
//! Batch form: `application/x-ndjson`, one such object per line plus its `namespace`.
//! The whole batch is checked before anything is published, so a bad line rejects the
//! batch and nothing is half-sent.

use serde_json::{Map, Value};
use sse_core::{Event, Namespace};

use crate::error::{ApiError, ErrorCode};

/// How a body is to be read, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Raw,
    Json,
    NdJson,
}

/// Classifies a `Content-Type` header value; `None` for an unsupported type. The media
/// type is compared without regard to case, and its parameters are ignored.
pub(crate) fn body_kind(content_type: Option<&str>) -> Option<BodyKind> {
    let Some(content_type) = content_type else {
        return Some(BodyKind::Raw);
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let is = |name: &str| essence.eq_ignore_ascii_case(name);
    if essence.is_empty()
        || is("application/octet-stream")
        || is("application/x-www-form-urlencoded")
    {
        Some(BodyKind::Raw)
    } else if is("application/json") {
        Some(BodyKind::Json)
    } else if is("application/x-ndjson")
        || is("application/ndjson")
        || is("application/jsonl")
        || is("application/x-jsonlines")
    {
        Some(BodyKind::NdJson)
    } else if starts_with_ignoring_case(essence, "text/") {
        Some(BodyKind::Raw)
    } else if starts_with_ignoring_case(essence, "application/")
        && ends_with_ignoring_case(essence, "+json")
    {
        Some(BodyKind::Json)
    } else {
        None
    }
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn ends_with_ignoring_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.as_bytes()[text.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// The event fields given in the query string.
#[derive(Debug, Default, Clone)]
pub(crate) struct QueryFields {
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
}

impl QueryFields {
    /// Reads `event`, `id` and `retry` from a query string; other parameters are ignored.
    pub(crate) fn parse(query: Option<&str>) -> Result<QueryFields, ApiError> {
        let mut fields = QueryFields::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "event" => fields.event = Some(value.into_owned()),
                "id" => fields.id = Some(value.into_owned()),
                "retry" => fields.retry = Some(parse_retry(&value)?),
                _ => {}
            }
        }
        Ok(fields)
    }

    fn apply(&self, mut event: Event) -> Event {
        if let (None, Some(kind)) = (event.event(), &self.event) {
            event = event.with_event(kind.clone());
        }
        if let (None, Some(id)) = (event.id(), &self.id) {
            event = event.with_id(id.clone());
        }
        if let (None, Some(retry)) = (event.retry(), self.retry) {
            event = event.with_retry(retry);
        }
        event
    }
}

fn parse_retry(text: &str) -> Result<u64, ApiError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_retry());
    }
    text.parse().map_err(|_| invalid_retry())
}

fn invalid_retry() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidField,
        "field \"retry\": must be a non-negative integer number of milliseconds",
    )
}

/// Builds the event of a single publish.
pub(crate) fn single_event(
    kind: BodyKind,
    body: &[u8],
    query: &QueryFields,
) -> Result<Event, ApiError> {
    let event = match kind {
        BodyKind::Raw => Event::new(utf8(body)?),
        BodyKind::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("the body is not valid JSON: {e}"),
                )
            })?;
            event_from_object(value, false)?.1
        }
        BodyKind::NdJson => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "NDJSON batches go to POST /publish (without a namespace in the path)",
            ))
        }
    };
    let event = query.apply(event);
    event.validate()?;
    Ok(event)
}

/// Parses and checks a whole NDJSON batch.
pub(crate) fn batch_events(body: &[u8]) -> Result<Vec<(Namespace, Event)>, ApiError> {
    let text = utf8(body)?;
    let mut events = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at_line = |error: ApiError| error.prefixed(format_args!("line {line_number}"));
        let value: Value = serde_json::from_str(line).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidJson,
                format!("line {line_number}: not valid JSON: {e}"),
            )
        })?;
        let (namespace, event) = event_from_object(value, true).map_err(at_line)?;
        let namespace = namespace.ok_or_else(|| {
            at_line(ApiError::new(
                ErrorCode::MissingField,
                "each line needs a \"namespace\"",
            ))
        })?;
        event.validate().map_err(|e| at_line(e.into()))?;
        events.push((namespace, event));
    }
    if events.is_empty() {
        return Err(ApiError::new(
            ErrorCode::EmptyBatch,
            "the batch holds no events: send one JSON object per line",
        ));
    }
    Ok(events)
}

fn utf8(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidData,
            format!(
                "event data must be UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Reads `{"namespace"?, "event", "data", "id", "retry"}`.
fn event_from_object(
    value: Value,
    with_namespace: bool,
) -> Result<(Option<Namespace>, Event), ApiError> {
    let Value::Object(mut object) = value else {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "the JSON must be an object such as {\"event\": \"...\", \"data\": ...}",
        ));
    };
    let namespace = if with_namespace {
        optional_string(&mut object, "namespace")?
            .map(|text| Namespace::parse(&text))
            .transpose()?
    } else {
        None
    };
    let data = match object.remove("data") {
        None => {
            return Err(ApiError::new(
                ErrorCode::MissingField,
                "the JSON object needs a \"data\" member",
            ))
        }
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
    };
    let mut event = Event::new(data);
    if let Some(kind) = optional_string(&mut object, "event")? {
        event = event.with_event(kind);
    }
    if let Some(id) = optional_string(&mut object, "id")? {
        event = event.with_id(id);
    }
    match object.remove("retry") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => match n.as_u64() {
            Some(milliseconds) => event = event.with_retry(milliseconds),
            None => return Err(invalid_retry()),
        },
        Some(_) => return Err(invalid_retry()),
    }
    if let Some(unknown) = object.keys().next() {
        let known = if with_namespace {
            "namespace, event, data, id, retry"
        } else {
            "event, data, id, retry"
        };
        return Err(ApiError::new(
            ErrorCode::UnknownField,
            format!("unknown member {unknown:?}; known members are {known}"),
        ));
    }
    Ok((namespace, event))
}

fn optional_string(
    object: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, ApiError> {
    match object.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("field {name:?}: must be a string"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> QueryFields {
        QueryFields::parse(Some(q)).unwrap()
    }

    #[test]
    fn content_types_are_classified() {
        assert_eq!(body_kind(None), Some(BodyKind::Raw));
        assert_eq!(
            body_kind(Some("text/plain; charset=utf-8")),
            Some(BodyKind::Raw)
        );
        assert_eq!(
            body_kind(Some("application/x-www-form-urlencoded")),
            Some(BodyKind::Raw)
        );
        assert_eq!(body_kind(Some("Application/JSON")), Some(BodyKind::Json));
        assert_eq!(
            body_kind(Some("application/merge-patch+json")),
            Some(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some("application/x-ndjson")),
            Some(BodyKind::NdJson)
        );
        assert_eq!(body_kind(Some("TEXT/Plain")), Some(BodyKind::Raw));
        assert_eq!(
            body_kind(Some("Application/Merge-Patch+JSON; charset=utf-8")),
            Some(BodyKind::Json)
        );
        assert_eq!(
            body_kind(Some("APPLICATION/X-NDJSON")),
            Some(BodyKind::NdJson)
        );
        assert_eq!(body_kind(Some(" ; charset=utf-8")), Some(BodyKind::Raw));
        assert_eq!(body_kind(Some("application/+jso")), None);
        assert_eq!(body_kind(Some("image/png")), None);
        assert_eq!(body_kind(Some("multipart/form-data; boundary=x")), None);
    }

    #[test]
    fn raw_body_with_query_fields() {
        let event = single_event(
            BodyKind::Raw,
            b"Corgi",
            &query("event=new-dog&id=7&retry=100"),
        )
        .unwrap();
        assert_eq!(event.data(), Some("Corgi"));
        assert_eq!(event.event(), Some("new-dog"));
        assert_eq!(event.id(), Some("7"));
        assert_eq!(event.retry(), Some(100));
    }

    #[test]
    fn json_string_data_is_sent_as_is_and_other_values_as_compact_json() {
        let event = single_event(BodyKind::Json, br#"{"data": "a b"}"#, &query("")).unwrap();
        assert_eq!(event.data(), Some("a b"));
        let event = single_event(
            BodyKind::Json,
            br#"{"data": {"k": [1, 2]}, "event": "e"}"#,
            &query(""),
        )
        .unwrap();
        assert_eq!(event.data(), Some(r#"{"k":[1,2]}"#));
        assert_eq!(event.event(), Some("e"));
    }

    #[test]
    fn json_fields_win_over_query_fields() {
        let event = single_event(
            BodyKind::Json,
            br#"{"data": "x", "event": "json"}"#,
            &query("event=query&id=9"),
        )
        .unwrap();
        assert_eq!(event.event(), Some("json"));
        assert_eq!(event.id(), Some("9"));
    }

    #[test]
    fn bad_inputs_name_the_problem() {
        let cases: &[(BodyKind, &[u8], &str, ErrorCode)] = &[
            (BodyKind::Raw, b"\xff", "", ErrorCode::InvalidData),
            (BodyKind::Json, b"{", "", ErrorCode::InvalidJson),
            (BodyKind::Json, b"[1]", "", ErrorCode::InvalidJson),
            (
                BodyKind::Json,
                br#"{"event": "x"}"#,
                "",
                ErrorCode::MissingField,
            ),
            (
                BodyKind::Json,
                br#"{"data": "x", "evnet": "typo"}"#,
                "",
                ErrorCode::UnknownField,
            ),
            (
                BodyKind::Json,
                br#"{"data": "x", "retry": -1}"#,
                "",
                ErrorCode::InvalidField,
            ),
            (
                BodyKind::Json,
                br#"{"data": "x", "id": 5}"#,
                "",
                ErrorCode::InvalidField,
            ),
            (
                BodyKind::Json,
                br#"{"data": "x", "event": "a\nb"}"#,
                "",
                ErrorCode::InvalidField,
            ),
            (BodyKind::Raw, b"x", "id=a%0Ab", ErrorCode::InvalidField),
        ];
        for (kind, body, q, code) in cases {
            let result = QueryFields::parse(Some(q)).and_then(|q| single_event(*kind, body, &q));
            assert_eq!(result.unwrap_err().code(), *code, "{body:?} {q}");
        }
        assert_eq!(
            QueryFields::parse(Some("retry=-5")).unwrap_err().code(),
            ErrorCode::InvalidField
        );
        assert_eq!(
            QueryFields::parse(Some("retry=+5")).unwrap_err().code(),
            ErrorCode::InvalidField
        );
    }

    #[test]
    fn batch_parses_every_line_and_skips_blank_ones() {
        let body = b"{\"namespace\": \"/a\", \"data\": \"1\"}\n\n{\"namespace\": \"/b/c\", \"data\": 2, \"event\": \"e\"}\n";
        let events = batch_events(body).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].0.as_str(), "/b/c");
        assert_eq!(events[1].1.data(), Some("2"));
    }

    #[test]
    fn batch_error_names_the_line_and_rejects_everything() {
        let body = b"{\"namespace\": \"/a\", \"data\": \"1\"}\n{\"namespace\": \"/a//b\", \"data\": \"2\"}\n";
        let error = batch_events(body).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidNamespace);
        assert!(error.detail().starts_with("line 2:"), "{}", error.detail());
        let error = batch_events(b"{\"data\": \"1\"}").unwrap_err();
        assert_eq!(error.code(), ErrorCode::MissingField);
        assert_eq!(
            batch_events(b"\n\n").unwrap_err().code(),
            ErrorCode::EmptyBatch
        );
    }
}
