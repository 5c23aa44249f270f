//! `POST /publish/{namespace}` (one event) and `POST /publish` (an NDJSON batch).
//!
//! Each request is admitted (counted, refused while draining or without a token that
//! lets it publish), read within the body limit, parsed whole by `publish.rs`, checked
//! against what its token covers, and only then published, so a refused request
//! publishes nothing: a batch with one line outside the token's namespaces is refused
//! whole.
//!
//! A single event comes two ways: as a request hyper built ([`handle_single`]), or, read
//! by the direct HTTP/1.1 path with the local hub, as its head where it lies
//! ([`publish_from_head`], answered without waiting for anything). Both read the head
//! through [`PublishHead`] and are admitted by [`admit_single`], so they check, refuse
//! and count alike.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use serde::Serialize;
use sse_core::{Event, Namespace};

use crate::auth;
use crate::body::SseBody;
use crate::browser::{self, Addressed};
use crate::direct_head::DirectHead;
use crate::error::{ApiError, ErrorCode};
use crate::json_text;
use crate::jwt::{Action, Grant, TokenError};
use crate::publish::{batch_events, body_kind, single_event, BodyKind, QueryFields};
use crate::request_body::{read_limited, RequestBody};
use crate::response;
use crate::state::State;

/// What a single publish is answered with, `202` and `{"id": ..., "namespace": ...,
/// "subscribers": N}`.
#[derive(Debug)]
pub(crate) struct Accepted {
    id: Arc<str>,
    namespace: Namespace,
    subscribers: usize,
}

impl Accepted {
    /// The `Content-Type` of [`json`](Accepted::json).
    pub(crate) const CONTENT_TYPE: &'static str = "application/json";

    /// The answer's body, written directly (the reply of the hottest route), as
    /// `serde_json` would write it.
    pub(crate) fn json(&self) -> Vec<u8> {
        let (id, namespace) = (&*self.id, self.namespace.as_str());
        let mut body = Vec::with_capacity(48 + id.len() + namespace.len());
        body.extend_from_slice(b"{\"id\":");
        json_text::push_string(&mut body, id);
        body.extend_from_slice(b",\"namespace\":");
        json_text::push_string(&mut body, namespace);
        body.extend_from_slice(b",\"subscribers\":");
        json_text::push_unsigned(
            &mut body,
            u64::try_from(self.subscribers).unwrap_or(u64::MAX),
        );
        body.push(b'}');
        body
    }

    fn into_response(self) -> Response<SseBody> {
        response::with_type(StatusCode::ACCEPTED, self.json(), Accepted::CONTENT_TYPE)
    }
}

/// What publishing one event reads of its request's head, whichever parser read it:
/// hyper's ([`of_request`](PublishHead::of_request)) or the direct path's
/// ([`of_direct`](PublishHead::of_direct)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishHead<'a> {
    /// The namespace, as the path spells it.
    namespace: &'a str,
    query: Option<&'a str>,
    content_type: Option<&'a [u8]>,
    caller: Caller<'a>,
}

impl<'a> PublishHead<'a> {
    /// What `request`, for `/publish{namespace}`, says.
    pub(crate) fn of_request<B>(request: &'a Request<B>, namespace: &'a str) -> Self {
        PublishHead {
            namespace,
            query: request.uri().query(),
            content_type: request
                .headers()
                .get(header::CONTENT_TYPE)
                .map(HeaderValue::as_bytes),
            caller: Caller::of(request),
        }
    }

    /// What `head`, read on the direct path for `/publish{namespace}`, says.
    pub(crate) fn of_direct(head: &'a DirectHead, namespace: &'a str) -> Self {
        let [content_type, host, origin, authorization] =
            head.first_values(["content-type", "host", "origin", "authorization"]);
        PublishHead {
            namespace,
            query: head.uri().query(),
            content_type,
            caller: Caller {
                addressed: Addressed {
                    authority: head.uri().authority(),
                    host,
                },
                origin,
                authorization,
            },
        }
    }

    /// The value of the request's `Origin` header.
    pub(crate) fn origin(&self) -> Option<&'a [u8]> {
        self.caller.origin
    }
}

/// What a publish request says of who sends it, and from where.
#[derive(Debug, Clone, Copy)]
struct Caller<'a> {
    addressed: Addressed<'a>,
    origin: Option<&'a [u8]>,
    authorization: Option<&'a [u8]>,
}

impl<'a> Caller<'a> {
    fn of<B>(request: &'a Request<B>) -> Self {
        let headers = request.headers();
        Caller {
            addressed: Addressed::of(request),
            origin: headers.get(header::ORIGIN).map(HeaderValue::as_bytes),
            authorization: auth::authorization(headers),
        }
    }
}

/// A single publish admitted, its namespace, body type and query read, before its body
/// is.
pub(crate) struct Admitted {
    namespace: Namespace,
    kind: BodyKind,
    query: QueryFields,
}

/// Admits a single publish ([`admit`]), then reads its namespace (refused only once the
/// publisher is admitted: an unauthorised request learns nothing about namespaces), which
/// the publisher must be allowed, its body type and its query.
pub(crate) fn admit_single(state: &State, head: &PublishHead<'_>) -> Result<Admitted, ApiError> {
    let publisher = admit(state, head.caller)?;
    let namespace = Namespace::parse(head.namespace)?;
    publisher.check(std::slice::from_ref(&namespace))?;
    Ok(Admitted {
        namespace,
        kind: content_kind(head.content_type)?,
        query: QueryFields::parse(head.query)?,
    })
}

/// The answer to a batch.
#[derive(Debug, Serialize)]
struct BatchAccepted<'a> {
    count: usize,
    ids: Vec<&'a str>,
    subscribers: usize,
}

/// Publishes the request's one event, once admitted ([`admit_single`]).
pub(crate) async fn handle_single(
    state: &State,
    request: Request<impl RequestBody>,
    admitted: Admitted,
) -> Result<Response<SseBody>, ApiError> {
    let body = read_limited(
        request,
        state.config().max_body_bytes,
        state.config().body_timeout,
    )
    .await?;
    let event = single_event(admitted.kind, &body, &admitted.query)?;
    let (id, subscribers) = publish_one(state, &admitted.namespace, event).await?;
    let accepted = Accepted {
        id,
        namespace: admitted.namespace,
        subscribers,
    };
    Ok(accepted.into_response())
}

/// Publishes one event to the local hub as [`handle_single`] does, from a head the
/// direct path read and the body it read after it (or the refusal of that body): no
/// `http::Request`, and nothing to wait for. Not for cluster mode, whose publishes go
/// through Redis.
pub(crate) fn publish_from_head(
    state: &State,
    head: &PublishHead<'_>,
    body: Result<Bytes, ApiError>,
) -> Result<Accepted, ApiError> {
    #[cfg(feature = "redis")]
    debug_assert!(
        state.cluster().is_none(),
        "a cluster publishes through Redis"
    );
    let admitted = admit_single(state, head)?;
    let event = single_event(admitted.kind, &body?, &admitted.query)?;
    let (id, subscribers) = publish_locally(state, &admitted.namespace, event)?;
    Ok(Accepted {
        id,
        namespace: admitted.namespace,
        subscribers,
    })
}

/// Publishes every event of the request's NDJSON batch, in order, or none.
pub(crate) async fn handle_batch(
    state: &State,
    request: Request<impl RequestBody>,
) -> Result<Response<SseBody>, ApiError> {
    let publisher = admit(state, Caller::of(&request))?;
    let content_type = request.headers().get(header::CONTENT_TYPE);
    if content_kind(content_type.map(HeaderValue::as_bytes))? != BodyKind::NdJson {
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
    publish_locally(state, namespace, event)
}

/// Publishes one validated event to the local hub: its id and how many it reached.
fn publish_locally(
    state: &State,
    namespace: &Namespace,
    event: Event,
) -> Result<(Arc<str>, usize), ApiError> {
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
fn admit(state: &State, caller: Caller<'_>) -> Result<Publisher, ApiError> {
    state.count_publish_request();
    if state.is_draining() {
        return Err(ApiError::draining());
    }
    let config = state.config();
    let needs_token =
        config.publish_token.is_some() || (config.jwt.is_some() && !config.allow_anonymous_publish);
    if !needs_token {
        browser::check_anonymous_publish(&config.cors, caller.addressed, caller.origin)?;
        return Ok(Publisher::Unrestricted);
    }
    if let Some(token) = &config.publish_token {
        if auth::bearer_matches(caller.authorization, token) {
            return Ok(Publisher::Unrestricted);
        }
    }
    let Some(verifier) = &config.jwt else {
        return Err(ApiError::unauthorized("publishing"));
    };
    let token = auth::bearer_token(caller.authorization)
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

/// The kind of body a `Content-Type` value names.
fn content_kind(content_type: Option<&[u8]>) -> Result<BodyKind, ApiError> {
    // Borrowed, not copied, when the value is UTF-8 (as it nearly always is).
    let content_type = content_type.map(String::from_utf8_lossy);
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
        let accepted = Accepted {
            id: Arc::from("7 \"quoted\"\t"),
            namespace: Namespace::parse("/pets/dogs").unwrap(),
            subscribers: 3,
        };
        let response = accepted.into_response();
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
