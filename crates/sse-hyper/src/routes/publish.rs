//! `POST /publish/{namespace}` (one event) and `POST /publish` (an NDJSON batch).
//!
//! Each request is admitted (counted, refused while draining or without a token that
//! lets it publish), read within the body limit, parsed whole by `publish.rs`, checked
//! against what its token covers, and only then published, so a refused request
//! publishes nothing: a batch with one line outside the token's namespaces is refused
//! whole.

use std::sync::Arc;

use http::{header, HeaderMap, Request, Response, StatusCode};
use serde::Serialize;
use sse_core::{Event, Namespace, NamespaceError};

use crate::auth;
use crate::body::SseBody;
use crate::browser;
use crate::error::{ApiError, ErrorCode};
use crate::json_text;
use crate::jwt::{Action, Grant, TokenError};
use crate::publish::{batch_events, body_kind, single_event, BodyKind, QueryFields};
use crate::request_body::{read_limited, RequestBody};
use crate::response;
use crate::state::State;

/// The answer to a single publish: `{"id": ..., "namespace": ..., "subscribers": N}`,
/// written directly (the reply of the hottest route), as `serde_json` would write it.
fn accepted(id: &str, namespace: &str, subscribers: usize) -> Response<SseBody> {
    let mut body = Vec::with_capacity(48 + id.len() + namespace.len());
    body.extend_from_slice(b"{\"id\":");
    json_text::push_string(&mut body, id);
    body.extend_from_slice(b",\"namespace\":");
    json_text::push_string(&mut body, namespace);
    body.extend_from_slice(b",\"subscribers\":");
    json_text::push_unsigned(&mut body, u64::try_from(subscribers).unwrap_or(u64::MAX));
    body.push(b'}');
    response::with_type(StatusCode::ACCEPTED, body, "application/json")
}

/// The answer to a batch.
#[derive(Debug, Serialize)]
struct BatchAccepted<'a> {
    count: usize,
    ids: Vec<&'a str>,
    subscribers: usize,
}

/// Publishes the request's one event to the namespace of its path (parsed by the
/// router, refused here only once the publisher is admitted).
pub(crate) async fn handle_single(
    state: &State,
    request: Request<impl RequestBody>,
    namespace: Result<Namespace, NamespaceError>,
) -> Result<Response<SseBody>, ApiError> {
    let publisher = admit(state, &request)?;
    let namespace = namespace?;
    publisher.check(std::slice::from_ref(&namespace))?;
    let kind = content_kind(request.headers())?;
    let query = QueryFields::parse(request.uri().query())?;
    let body = read_limited(
        request,
        state.config().max_body_bytes,
        state.config().body_timeout,
    )
    .await?;
    let event = single_event(kind, &body, &query)?;
    let (id, subscribers) = publish_one(state, &namespace, event).await?;
    Ok(accepted(&id, namespace.as_str(), subscribers))
}

/// Publishes every event of the request's NDJSON batch, in order, or none.
pub(crate) async fn handle_batch(
    state: &State,
    request: Request<impl RequestBody>,
) -> Result<Response<SseBody>, ApiError> {
    let publisher = admit(state, &request)?;
    if content_kind(request.headers())? != BodyKind::NdJson {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "POST /publish takes a batch as 'Content-Type: application/x-ndjson'; \
             to publish one event, POST /publish/{namespace}",
        ));
    }
    let body = read_limited(
        request,
        state.config().max_body_bytes,
        state.config().body_timeout,
    )
    .await?;
    let events = batch_events(&body)?;
    for (index, (namespace, _)) in events.iter().enumerate() {
        publisher
            .check([namespace])
            .map_err(|e| e.prefixed(format_args!("line {} (nothing was published)", index + 1)))?;
    }
    let count = events.len();
    let published = publish(state, events, Numbered::ByLine).await?;
    let accepted = BatchAccepted {
        count,
        subscribers: published.iter().map(|(_, subscribers)| subscribers).sum(),
        ids: published.iter().map(|(id, _)| &**id).collect(),
    };
    Ok(response::json(StatusCode::ACCEPTED, &accepted))
}

/// Whether a refusal names the line of the batch it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Numbered {
    No,
    ByLine,
}

impl Numbered {
    /// The answer to a refused publish, naming the line of a batch.
    fn refusal(self, error: sse_core::PublishError) -> ApiError {
        let line = error.index() + 1;
        let refusal = ApiError::from(error);
        match self {
            Numbered::No => refusal,
            Numbered::ByLine => {
                refusal.prefixed(format_args!("line {line} (nothing was published)"))
            }
        }
    }
}

/// Publishes validated events in order, all or none; gives each one's id and how many it
/// reached: local subscribers, or in cluster mode the nodes' channel subscriptions (a
/// node counted once per level it listens at). A publisher's id that a retained event
/// (or an earlier line) has refuses the whole request with 409 `duplicate_id`.
async fn publish(
    state: &State,
    events: Vec<(Namespace, Event)>,
    numbered: Numbered,
) -> Result<Vec<(Arc<str>, usize)>, ApiError> {
    #[cfg(feature = "redis")]
    if let Some(cluster) = state.cluster() {
        let accepted = cluster
            .publish(&events)
            .await
            .map_err(|error| match error {
                sse_redis::PublishError::DuplicateId { index, id } => {
                    numbered.refusal(sse_core::PublishError::DuplicateId { index, id })
                }
                sse_redis::PublishError::TooLarge {
                    index,
                    bytes,
                    limit,
                } => numbered.refusal(sse_core::PublishError::TooLarge {
                    index,
                    bytes,
                    limit,
                }),
                other => ApiError::from(other),
            })?;
        return Ok(accepted
            .into_iter()
            .map(|a| {
                (
                    a.id.into(),
                    usize::try_from(a.receivers).unwrap_or(usize::MAX),
                )
            })
            .collect());
    }
    let published = state
        .hub()
        .publish_batch(events)
        .map_err(|error| numbered.refusal(error))?;
    Ok(published
        .into_iter()
        .map(|outcome| (outcome.id, outcome.subscribers))
        .collect())
}

/// Publishes one validated event as [`publish`] does, without the batch's bookkeeping
/// when the hub is local.
async fn publish_one(
    state: &State,
    namespace: &Namespace,
    event: Event,
) -> Result<(Arc<str>, usize), ApiError> {
    #[cfg(feature = "redis")]
    if state.cluster().is_some() {
        let published = publish(state, vec![(namespace.clone(), event)], Numbered::No).await?;
        return Ok(published
            .into_iter()
            .next()
            .expect("publishing one event gives one outcome"));
    }
    let published = state
        .hub()
        .publish(namespace, event)
        .map_err(|error| Numbered::No.refusal(error))?;
    Ok((published.id, published.subscribers))
}

/// Who is publishing, as far as the namespaces go.
enum Publisher {
    /// Anyone, or the holder of the static publish token: every namespace.
    Unrestricted,
    /// The holder of a signed token: the namespaces its `sse.publish` covers.
    Granted(Grant),
}

impl Publisher {
    /// Refuses with 403 unless every namespace may be published to.
    fn check<'a>(
        &self,
        namespaces: impl IntoIterator<Item = &'a Namespace>,
    ) -> Result<(), ApiError> {
        match self {
            Publisher::Unrestricted => Ok(()),
            Publisher::Granted(grant) => grant.check(Action::Publish, namespaces),
        }
    }
}

/// Counts a publish request and refuses it while draining or without a token that lets
/// it publish: the static publish token, or a signed one (whose namespaces are checked
/// once the request is read). Without either configured, or with only a JWT key and
/// anonymous publishing allowed, anyone may publish, but only through a loopback `Host`
/// and not from a web page of an unlisted origin (`browser.rs`).
fn admit<B>(state: &State, request: &Request<B>) -> Result<Publisher, ApiError> {
    state.count_publish_request();
    if state.is_draining() {
        return Err(ApiError::draining());
    }
    let config = state.config();
    let needs_token =
        config.publish_token.is_some() || (config.jwt.is_some() && !config.allow_anonymous_publish);
    if !needs_token {
        browser::check_anonymous_publish(&config.cors, request)?;
        return Ok(Publisher::Unrestricted);
    }
    let headers = request.headers();
    if let Some(token) = &config.publish_token {
        if auth::bearer_matches(headers, token) {
            return Ok(Publisher::Unrestricted);
        }
    }
    let Some(verifier) = &config.jwt else {
        return Err(ApiError::unauthorized("publishing"));
    };
    let token = auth::bearer_token(headers)
        .ok_or_else(|| TokenError::Missing.into_api_error("publishing"))?;
    let token = std::str::from_utf8(token).map_err(|_| {
        TokenError::Malformed {
            reason: "it is not text",
        }
        .into_api_error("publishing")
    })?;
    let grant = verifier
        .verify(token)
        .map_err(|e| e.into_api_error("publishing"))?;
    Ok(Publisher::Granted(grant))
}

fn content_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    // Borrowed, not copied, when the value is UTF-8 (as it nearly always is).
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    body_kind(content_type.as_deref()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type {:?} is not accepted; send text (the body is the data), \
                 application/json, or application/x-ndjson to POST /publish",
                content_type.unwrap_or_default()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_single_reply_is_the_json_object_of_the_design() {
        let response = accepted("7 \"quoted\"\t", "/pets/dogs", 3);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body().into_full();
        let expected = serde_json::json!({
            "id": "7 \"quoted\"\t",
            "namespace": "/pets/dogs",
            "subscribers": 3,
        });
        assert_eq!(body, serde_json::to_vec(&expected).unwrap());
    }
}
