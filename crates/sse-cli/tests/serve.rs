//! `ssectl serve` as a real process: it prints where it listens, serves the API, and
//! exits 0 after a graceful shutdown on SIGTERM.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{serve, DEADLINE};

fn wait_for_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "ssectl did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn serve_publishes_and_streams_then_exits_zero_on_sigterm() {
    let mut serving = serve(&["--retry", "2s", "--publish-token", "tok"]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut stream = client
        .get(format!("{}/subscribe/pets", serving.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(DEADLINE, stream.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b": ok\nretry: 2000\n\n");

    let refused = client
        .post(format!("{}/publish/pets/dogs", serving.base))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let reply = client
        .post(format!("{}/publish/pets/dogs?event=new-dog", serving.base))
        .bearer_auth("tok")
        .body("Corgi")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 202);
    let mut received = String::new();
    tokio::time::timeout(DEADLINE, async {
        while !received.contains("event: new-dog\ndata: Corgi\n\n") {
            let chunk = stream.chunk().await.unwrap().expect("stream open");
            received.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event in {received:?}"));

    let pid = serving.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The stream ends cleanly, then the process exits 0.
    let end = tokio::time::timeout(DEADLINE, async {
        while let Some(_chunk) = stream.chunk().await.unwrap() {}
    })
    .await;
    assert!(end.is_ok(), "the stream did not end");
    assert!(wait_for_exit(&mut serving.child).success());
}

/// Runs `ssectl` with `args` and without the variables `unset`; it must refuse to start.
/// Returns its stderr. A server that starts anyway is killed and the test fails.
fn refused_start(args: &[&str], unset: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ssectl"));
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for name in unset {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("start ssectl");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ssectl {args:?} started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "ssectl {args:?} exited 0");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    stderr
}

#[test]
fn serve_refuses_a_public_address_without_an_admin_token() {
    let stderr = refused_start(
        &["serve", "--listen", "0.0.0.0:0", "--publish-token", "p"],
        &[
            "SSE_ADMIN_TOKEN",
            "SSE_NO_ADMIN",
            "SSE_ALLOW_ANONYMOUS_ADMIN",
        ],
    );
    assert!(
        stderr.contains("--admin-token")
            && stderr.contains("--no-admin")
            && stderr.contains("--allow-anonymous-admin"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_a_public_address_without_a_publish_token() {
    let stderr = refused_start(
        &["serve", "--listen", "0.0.0.0:0"],
        &["SSE_PUBLISH_TOKEN", "SSE_ALLOW_ANONYMOUS_PUBLISH"],
    );
    assert!(
        stderr.contains("--publish-token") && stderr.contains("--allow-anonymous-publish"),
        "{stderr}"
    );
}

#[test]
fn serve_reads_options_from_the_environment_and_rejects_bad_values() {
    let output = Command::new(env!("CARGO_BIN_EXE_ssectl"))
        .args(["serve"])
        .env("SSE_KEEPALIVE", "soon")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("keepalive"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_ssectl"))
        .args(["serve", "--cors-origin", "*,https://a.example"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be combined"));
}

#[test]
fn serve_names_a_bad_tls_file() {
    let output = Command::new(env!("CARGO_BIN_EXE_ssectl"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/cert.pem"));
    let output = Command::new(env!("CARGO_BIN_EXE_ssectl"))
        .args(["serve", "--tls-cert", "cert.pem"])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "--tls-cert without --tls-key is refused"
    );
}

#[test]
fn every_subcommand_has_help() {
    for args in [&["--help"][..], &["serve", "--help"], &["bench", "--help"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_ssectl"))
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

/// The memory flags reach the server: sizes with units, the event limit on the encoded
/// size, the history's bytes in the status.
#[tokio::test]
async fn serve_takes_the_memory_limits_with_units() {
    let serving = serve(&[
        "--max-event-bytes",
        "1KiB",
        "--history-bytes",
        "4KiB",
        "--queue-bytes",
        "64KiB",
        "--write-timeout",
        "5s",
    ]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let post = |body: String| {
        client
            .post(format!("{}/publish/limits", serving.base))
            .body(body)
            .send()
    };
    // 200 line breaks: 200 bytes of body, over 1 KiB on the wire.
    let refused = post("\n".repeat(200)).await.unwrap();
    assert_eq!(refused.status(), 413);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large");
    for _ in 0..10 {
        assert_eq!(post("x".repeat(900)).await.unwrap().status(), 202);
    }
    let status: serde_json::Value =
        serde_json::from_str(&common::http_get(&serving.base, "/admin/status.json")).unwrap();
    let retained = status["history_bytes"].as_u64().unwrap();
    assert!((3000..=4096).contains(&retained), "{retained}");
}
