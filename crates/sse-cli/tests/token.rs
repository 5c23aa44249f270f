//! Signed tokens end to end with real processes: `ssectl token` makes them, `ssectl
//! serve --jwt-secret/--jwt-key` checks them, `ssectl tail|publish|bench --token` send
//! them.

mod common;

use std::process::{Output, Stdio};

use common::{run, serve, ssectl, wait_for_subscribers, wait_with_deadline};
use sse_cli::bench_report::BenchReport;

const SECRET: &str = "correct horse battery staple";
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sse-hyper/tests/keys");

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `ssectl token ARGS`, which must succeed; the token it printed.
fn token(args: &[&str]) -> String {
    let output = run(&[&["token"], args].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    let token = stdout(&output);
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token:?}");
    token
}

/// Tails `namespace` for one event with `token`, publishes `data` with `publisher`, and
/// gives what the tail printed.
fn round_trip(base: &str, namespace: &str, token: &str, publisher: &str, data: &str) -> String {
    let tail = ssectl()
        .args(["tail", "--server", base, namespace, "--token", token])
        .args(["--count", "1", "--format", "json", "--timeout", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_subscribers(base, 1);
    let published = run(&[
        "publish", "--server", base, "--token", publisher, namespace, data,
    ]);
    assert!(published.status.success(), "{}", stderr(&published));
    let output = wait_with_deadline(tail);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn tokens_from_ssectl_token_subscribe_and_publish_where_they_allow() {
    let server = serve(&["--jwt-secret", SECRET]);
    let user = token(&[
        "--secret",
        SECRET,
        "--subscribe",
        "/users/42",
        "--publish",
        "/users/42",
        "--ttl",
        "10m",
    ]);
    let printed = round_trip(&server.base, "/users/42", &user, &user, "hello");
    let event: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(event["data"], "hello");

    let denied = run(&[
        "publish",
        "--server",
        &server.base,
        "--token",
        &user,
        "/users/420",
        "x",
    ]);
    assert!(!denied.status.success());
    assert!(
        stderr(&denied).contains("403 forbidden"),
        "{}",
        stderr(&denied)
    );
    let anonymous = run(&["publish", "--server", &server.base, "/users/42", "x"]);
    assert!(
        stderr(&anonymous).contains("401 unauthorized"),
        "{}",
        stderr(&anonymous)
    );
    let tail = run(&["tail", "--server", &server.base, "/users/42", "--once"]);
    assert!(!tail.status.success());
    assert!(stderr(&tail).contains("401"), "{}", stderr(&tail));
    let wrong_secret = token(&["--secret", "another", "--subscribe", "/users/42"]);
    let tail = run(&[
        "tail",
        "--server",
        &server.base,
        "/users/42",
        "--once",
        "--token",
        &wrong_secret,
    ]);
    assert!(stderr(&tail).contains("401"), "{}", stderr(&tail));
}

#[test]
fn a_private_key_signs_for_a_server_with_its_public_key() {
    for kind in ["ec", "ed", "rsa"] {
        let public = format!("{KEYS}/{kind}-public.pem");
        let private = format!("{KEYS}/{kind}-private.pem");
        let server = serve(&["--jwt-key", &public]);
        let both = token(&["--key", &private, "--subscribe", "/k", "--publish", "/k"]);
        let printed = round_trip(&server.base, "/k", &both, &both, kind);
        assert!(printed.contains(kind), "{printed}");
    }
}

#[test]
fn token_refuses_bad_input_with_a_reason() {
    for (args, reason) in [
        (vec!["--subscribe", "/a"], "--secret"),
        (vec!["--secret", SECRET], "at least one"),
        (
            vec!["--secret", SECRET, "--subscribe", "/a//b"],
            "--subscribe",
        ),
        (
            vec!["--key", "/nonexistent.pem", "--subscribe", "/a"],
            "cannot read",
        ),
    ] {
        let output = run(&[&["token"], args.as_slice()].concat());
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains(reason),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let public_as_private = format!("{KEYS}/ec-public.pem");
    let output = run(&["token", "--key", &public_as_private, "--subscribe", "/a"]);
    assert!(
        stderr(&output).contains("private key"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bench_sends_its_token_on_streams_and_publishing() {
    let server = serve(&["--jwt-secret", SECRET]);
    let bench_token = token(&[
        "--secret",
        SECRET,
        "--subscribe",
        "/load",
        "--publish",
        "/load",
    ]);
    let output = run(&[
        "bench",
        "--server",
        &server.base,
        "--namespace",
        "/load",
        "--connections",
        "3",
        "--duration",
        "1s",
        "--publish-rate",
        "50",
        "--json",
        "--token",
        &bench_token,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: BenchReport = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.connections_held, 3, "{report:?}");
    assert!(
        report.events_published > 0 && report.errors.is_empty(),
        "{report:?}"
    );
}
