//! `ssectl publish` and `ssectl tail` against a live `ssectl serve`.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{run, serve, ssectl, wait_for_subscribers, wait_with_deadline};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn publish_then_tail_round_trip_in_json() {
    let server = serve(&[]);
    let tail = ssectl()
        .args([
            "tail",
            "--server",
            &server.base,
            "/pets",
            "--count",
            "3",
            "--format",
            "json",
            "--timeout",
            "30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_subscribers(&server.base, 1);

    let first = run(&[
        "publish",
        "--server",
        &server.base,
        "/pets/dogs",
        "new-dog",
        "Corgi",
    ]);
    assert!(first.status.success(), "{}", stderr(&first));
    let first_id = stdout(&first).trim().to_owned();
    assert!(
        first_id.parse::<u64>().is_ok(),
        "prints the assigned id: {first_id:?}"
    );

    let mut piped = ssectl()
        .args([
            "publish",
            "--server",
            &server.base,
            "--id",
            "cat-1",
            "/pets/cats",
            "new-cat",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    piped
        .stdin
        .take()
        .unwrap()
        .write_all(b"Persian\nwhite")
        .unwrap();
    let second = wait_with_deadline(piped);
    assert_eq!(stdout(&second).trim(), "cat-1");

    let third = run(&[
        "publish",
        "--server",
        &server.base,
        "--json",
        "/pets",
        r#"{"legs": 4}"#,
    ]);
    assert!(third.status.success(), "{}", stderr(&third));

    let output = wait_with_deadline(tail);
    assert!(output.status.success(), "{}", stderr(&output));
    let events = json_lines(&stdout(&output));
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[0],
        serde_json::json!({"type": "new-dog", "data": "Corgi", "id": first_id})
    );
    assert_eq!(
        events[1],
        serde_json::json!({"type": "new-cat", "data": "Persian\nwhite", "id": "cat-1"})
    );
    assert_eq!(events[2]["type"], "message");
    assert_eq!(events[2]["data"], r#"{"legs":4}"#);
}

#[test]
fn tail_resumes_after_last_event_id_and_prints_text() {
    let server = serve(&[]);
    let ids: Vec<String> = ["one", "two", "three"]
        .iter()
        .map(|data| {
            stdout(&run(&["publish", "--server", &server.base, "/log", data]))
                .trim()
                .to_owned()
        })
        .collect();
    let output = run(&[
        "tail",
        "--server",
        &server.base,
        "/log",
        "--last-event-id",
        &ids[0],
        "--count",
        "2",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(
        text,
        format!(
            "[message] id {}\n  two\n[message] id {}\n  three\n",
            ids[1], ids[2]
        )
    );
}

#[test]
fn tail_raw_copies_the_bytes() {
    let server = serve(&[]);
    run(&[
        "publish",
        "--server",
        &server.base,
        "--id",
        "r1",
        "/raw",
        "kind",
        "payload",
    ]);
    let output = run(&[
        "tail",
        "--server",
        &server.base,
        "/raw",
        "--last-event-id",
        "none",
        "--format",
        "raw",
        "--count",
        "2",
    ]);
    let text = stdout(&output);
    assert!(text.starts_with(": ok\n"), "{text:?}");
    assert!(text.contains("event: sse-gap\n"), "{text:?}");
    assert!(
        text.ends_with("id: r1\nevent: kind\ndata: payload\n\n"),
        "{text:?}"
    );
}

#[test]
fn tail_timeout_without_count_exits_zero_and_with_count_fails() {
    let server = serve(&[]);
    let output = run(&[
        "tail",
        "--server",
        &server.base,
        "/quiet",
        "--timeout",
        "300ms",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = run(&[
        "tail",
        "--server",
        &server.base,
        "/quiet",
        "--timeout",
        "300ms",
        "--count",
        "1",
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("timed out"), "{}", stderr(&output));
}

#[test]
fn publish_errors_are_one_readable_line_and_non_zero() {
    let server = serve(&["--publish-token", "tok", "--max-body", "16"]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["publish", "--server", &server.base, "/a//b", "x"],
            "empty segment",
        ),
        (
            vec!["publish", "--server", &server.base, "/a", "x"],
            "401 unauthorized",
        ),
        (
            vec![
                "publish",
                "--server",
                &server.base,
                "--token",
                "tok",
                "/a",
                "x".repeat(17).leak(),
            ],
            "413 payload_too_large",
        ),
        (
            vec![
                "publish",
                "--server",
                &server.base,
                "--token",
                "tok",
                "/a",
                "bad\nname",
                "x",
            ],
            "invalid event",
        ),
        (
            vec![
                "publish",
                "--server",
                &server.base,
                "--token",
                "tok",
                "--json",
                "/a",
                "{nope",
            ],
            "not valid JSON",
        ),
        (
            vec!["publish", "--server", "http://127.0.0.1:1", "/a", "x"],
            "cannot reach",
        ),
    ];
    for (args, expected) in cases {
        let output = run(&args);
        assert!(!output.status.success(), "{args:?}");
        let message = stderr(&output);
        assert!(message.starts_with("ssectl: "), "{message}");
        assert_eq!(message.trim_end().lines().count(), 1, "one line: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    let ok = run(&[
        "publish",
        "--server",
        &server.base,
        "--token",
        "tok",
        "/a",
        "fine",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

#[test]
fn tail_refuses_a_bad_namespace_before_connecting() {
    let output = run(&["tail", "/a/../b", "--once"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("'.' or '..'"),
        "{}",
        stderr(&output)
    );
}
