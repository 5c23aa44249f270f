//! Signed tokens (design.md §5) over real loopback sockets. Most tokens here are made by
//! hand — base64url JSON and an HMAC-SHA256 from the `hmac` and `sha2` crates — so the
//! server's JWT library is checked against an independent implementation, not against
//! itself. The keys in `tests/keys/` were made with `openssl genpkey` for these tests only.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::{client, refused, wait_until, EventReader, TestServer};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sse_core::Namespace;
use sse_hyper::{ErrorCode, JwtKey, Server, ServerBuilder, SigningKey};

const SECRET: &str = "correct horse battery staple";
const PUBLISHER: &str = "backend-publisher";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS built by hand: `header.claims.HMAC-SHA256(secret)`.
fn hand_signed(header: serde_json::Value, claims: serde_json::Value, secret: &str) -> String {
    let message = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(message.as_bytes());
    format!("{message}.{}", b64(mac.finalize().into_bytes()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token made by hand, valid for a minute.
fn token(subscribe: &[&str], publish: &[&str]) -> String {
    hand_signed(
        json!({"alg": "HS256", "typ": "JWT"}),
        json!({"exp": now() + 60, "iat": now(), "sse": {"subscribe": subscribe, "publish": publish}}),
        SECRET,
    )
}

fn with_jwt() -> ServerBuilder {
    Server::builder()
        .jwt(JwtKey::hs256_secret(SECRET).unwrap())
        .publish_token(PUBLISHER)
}

async fn publish_as(
    server: &TestServer,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = client().post(server.url(path)).body(body.to_owned());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("publish request")
}

#[tokio::test]
async fn a_hand_made_token_opens_a_stream_of_what_it_covers() {
    let server = TestServer::start(with_jwt()).await;
    let bearer = token(&["/users/42"], &[]);
    let mut stream = EventReader::open(
        client()
            .get(server.url("/subscribe/users/42"))
            .bearer_auth(&bearer),
    )
    .await;
    server.wait_for_subscribers(1).await;
    for (path, data) in [
        ("/publish/users/420", "not mine"),
        ("/publish/users/42/inbox", "mine"),
    ] {
        let response = publish_as(&server, path, Some(PUBLISHER), data).await;
        assert_eq!(
            response.status(),
            202,
            "the static publish token still works"
        );
    }
    assert_eq!(stream.take(1).await[0].data, "mine");
}

#[tokio::test]
async fn a_query_token_works_and_shows_nowhere_in_the_status() {
    let server = TestServer::start(with_jwt()).await;
    let bearer = token(&["/users/42"], &[]);
    let _stream = EventReader::open(
        client().get(server.url(&format!("/subscribe/users/42?token={bearer}&lastEventId=x"))),
    )
    .await;
    server.wait_for_subscribers(1).await;
    let status = server.get_text("/admin/status.json").await;
    assert!(!status.contains(&bearer), "the token is not in {status}");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        status["connections"][0]["request_path"],
        "/subscribe/users/42"
    );
    assert_eq!(status["authenticated_streams"], 1);
    let page = server.get_text("/admin/").await;
    assert!(
        page.contains("authenticated_streams"),
        "the page shows the count"
    );
}

#[tokio::test]
async fn every_bad_token_is_refused_401_naming_the_reason() {
    let server = TestServer::start(with_jwt()).await;
    let claims = json!({"exp": now() + 60, "sse": {"subscribe": ["/"]}});
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64(claims.to_string())
    );
    let cases = [
        (None, "requires a token"),
        (Some("not.a.jwt".to_owned()), "malformed"),
        (Some(unsigned), "malformed"),
        (
            Some(hand_signed(hs256.clone(), claims.clone(), "another secret")),
            "signature",
        ),
        (
            Some(hand_signed(json!({"alg": "HS512"}), claims.clone(), SECRET)),
            "signed with HS512",
        ),
        (
            Some(hand_signed(
                hs256.clone(),
                json!({"exp": now() - 60, "sse": {"subscribe": ["/"]}}),
                SECRET,
            )),
            "expired",
        ),
        (
            Some(hand_signed(
                hs256.clone(),
                json!({"exp": now() + 120, "nbf": now() + 60, "sse": {"subscribe": ["/"]}}),
                SECRET,
            )),
            "not valid yet",
        ),
        (
            Some(hand_signed(
                hs256.clone(),
                json!({"sse": {"subscribe": ["/"]}}),
                SECRET,
            )),
            "no exp",
        ),
    ];
    for (bearer, reason) in cases {
        let mut request = client().get(server.url("/subscribe/pets"));
        if let Some(token) = &bearer {
            request = request.bearer_auth(token);
        }
        let body = refused(request.send().await.unwrap(), 401, ErrorCode::Unauthorized).await;
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{reason}: {body}");
        assert!(!body.to_string().contains(SECRET), "never the secret");
        // Publishing refuses the same tokens the same way.
        let response = publish_as(&server, "/publish/pets", bearer.as_deref(), "x").await;
        refused(response, 401, ErrorCode::Unauthorized).await;
    }
    assert_eq!(server.hub.stats().events_published, 0);
}

#[tokio::test]
async fn a_stream_needs_every_namespace_covered_segment_wise() {
    let server = TestServer::start(with_jwt()).await;
    let bearer = token(&["/users/42", "/public"], &[]);
    for path in [
        "/subscribe/users/420",
        "/subscribe/users",
        "/subscribe?ns=/users/42&ns=/users/420",
        "/subscribe/public?ns=/private",
    ] {
        let response = client()
            .get(server.url(path))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap();
        let body = refused(response, 403, ErrorCode::Forbidden).await;
        assert!(
            body["detail"].as_str().unwrap().contains("does not allow"),
            "{body}"
        );
    }
    let mut both = EventReader::open(
        client()
            .get(server.url("/subscribe?ns=/users/42/inbox&ns=/public"))
            .bearer_auth(&bearer),
    )
    .await;
    server.wait_for_subscribers(1).await;
    server_publish(&server, "/publish/public/news", "hello").await;
    assert_eq!(both.take(1).await[0].data, "hello");
}

async fn server_publish(server: &TestServer, path: &str, data: &str) -> serde_json::Value {
    let response = publish_as(server, path, Some(PUBLISHER), data).await;
    assert_eq!(response.status(), 202);
    response.json().await.unwrap()
}

#[tokio::test]
async fn publishing_needs_a_token_covering_the_namespace_even_on_loopback() {
    let server =
        TestServer::start(Server::builder().jwt(JwtKey::hs256_secret(SECRET).unwrap())).await;
    let publisher = token(&[], &["/users/42"]);
    let response = publish_as(&server, "/publish/users/42/inbox", Some(&publisher), "ok").await;
    assert_eq!(response.status(), 202);
    let response = publish_as(&server, "/publish/users/420", Some(&publisher), "no").await;
    refused(response, 403, ErrorCode::Forbidden).await;
    let subscriber_only = token(&["/users/42"], &[]);
    let response = publish_as(&server, "/publish/users/42", Some(&subscriber_only), "no").await;
    refused(response, 403, ErrorCode::Forbidden).await;
    let response = publish_as(&server, "/publish/users/42", None, "anonymous").await;
    let body = refused(response, 401, ErrorCode::Unauthorized).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("requires a token"),
        "{body}"
    );
    assert_eq!(server.hub.stats().events_published, 1);
}

#[tokio::test]
async fn a_batch_with_one_line_not_covered_is_refused_whole() {
    let server = TestServer::start(with_jwt()).await;
    let publisher = token(&[], &["/a"]);
    let batch =
        "{\"namespace\": \"/a/1\", \"data\": \"x\"}\n{\"namespace\": \"/b\", \"data\": \"y\"}\n";
    let response = client()
        .post(server.url("/publish"))
        .bearer_auth(&publisher)
        .header("content-type", "application/x-ndjson")
        .body(batch)
        .send()
        .await
        .unwrap();
    let body = refused(response, 403, ErrorCode::Forbidden).await;
    assert!(
        body["detail"].as_str().unwrap().starts_with("line 2"),
        "{body}"
    );
    assert_eq!(
        server.hub.stats().events_published,
        0,
        "nothing was published"
    );
    let response = client()
        .post(server.url("/publish"))
        .bearer_auth(&publisher)
        .header("content-type", "application/x-ndjson")
        .body(batch.replace("/b", "/a/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(server.hub.stats().events_published, 2);
}

#[tokio::test]
async fn anonymous_publishing_can_be_allowed_beside_tokens() {
    let server = TestServer::start(
        Server::builder()
            .jwt(JwtKey::hs256_secret(SECRET).unwrap())
            .allow_anonymous_publish(true),
    )
    .await;
    let response = publish_as(&server, "/publish/anything", None, "x").await;
    assert_eq!(response.status(), 202);
    let response = client()
        .get(server.url("/subscribe/anything"))
        .send()
        .await
        .unwrap();
    refused(response, 401, ErrorCode::Unauthorized).await;
}

#[tokio::test]
async fn a_stream_ends_at_expiry_and_resumes_with_a_fresh_token_losing_nothing() {
    let server = TestServer::start(with_jwt().jwt_leeway(Duration::ZERO)).await;
    let short = hand_signed(
        json!({"alg": "HS256"}),
        json!({"exp": now() + 2, "sse": {"subscribe": ["/feed"]}}),
        SECRET,
    );
    let mut first = EventReader::open(
        client()
            .get(server.url("/subscribe/feed"))
            .bearer_auth(&short),
    )
    .await;
    server.wait_for_subscribers(1).await;
    let before = server_publish(&server, "/publish/feed", "before").await;
    assert_eq!(first.take(1).await[0].data, "before");
    let opened = std::time::Instant::now();
    let rest = first.read_to_end().await;
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        opened.elapsed() < Duration::from_secs(5),
        "ended within a second or so of exp, after {:?}",
        opened.elapsed()
    );
    let hub = server.hub.clone();
    wait_until("the stream to be gone", || {
        let hub = hub.clone();
        async move { hub.stats().subscribers == 0 }
    })
    .await;
    // Published while the client has no stream.
    let mut missed = Vec::new();
    for data in ["gap 1", "gap 2"] {
        missed.push(server_publish(&server, "/publish/feed/x", data).await["id"].clone());
    }
    let fresh = token(&["/feed"], &[]);
    let mut second = EventReader::open(
        client()
            .get(server.url("/subscribe/feed"))
            .bearer_auth(&fresh)
            .header("last-event-id", before["id"].as_str().unwrap()),
    )
    .await;
    server.wait_for_subscribers(1).await;
    let after = server_publish(&server, "/publish/feed", "after").await;
    let got = second.take(3).await;
    let got: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.last_event_id.as_str(), e.data.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (missed[0].as_str().unwrap(), "gap 1"),
            (missed[1].as_str().unwrap(), "gap 2"),
            (after["id"].as_str().unwrap(), "after"),
        ]
    );
    let refused_again = client()
        .get(server.url("/subscribe/feed"))
        .bearer_auth(&short)
        .send()
        .await
        .unwrap();
    refused(refused_again, 401, ErrorCode::Unauthorized).await;
}

#[tokio::test]
async fn public_keys_accept_only_their_own_algorithm() {
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys");
    for (kind, algorithm) in [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")] {
        let public = std::fs::read(format!("{keys}/{kind}-public.pem")).unwrap();
        let key = JwtKey::from_public_pem(&public).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let signer =
            SigningKey::from_private_pem_file(format!("{keys}/{kind}-private.pem")).unwrap();
        assert_eq!(signer.algorithm(), algorithm);
        let server = TestServer::start(Server::builder().jwt(key)).await;
        let good = signer
            .sign(
                &[Namespace::parse("/k").unwrap()],
                &[],
                Duration::from_secs(60),
            )
            .unwrap();
        let _stream =
            EventReader::open(client().get(server.url("/subscribe/k")).bearer_auth(&good)).await;
        // The public key used as an HMAC secret: the classic confusion, refused.
        let confused = hand_signed(
            json!({"alg": "HS256"}),
            json!({"exp": now() + 60, "sse": {"subscribe": ["/"]}}),
            std::str::from_utf8(&public).unwrap(),
        );
        let response = client()
            .get(server.url("/subscribe/k"))
            .bearer_auth(&confused)
            .send()
            .await
            .unwrap();
        let body = refused(response, 401, ErrorCode::Unauthorized).await;
        assert!(
            body["detail"].as_str().unwrap().contains(algorithm),
            "{body}"
        );
    }
}
