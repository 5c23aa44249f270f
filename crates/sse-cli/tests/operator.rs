//! The operator commands through the real binary: `tail` over several namespaces,
//! `status`, `publish --batch`, `completions`, `man` and `--version`.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::{http_get, run, serve, ssectl, wait_with_deadline, DEADLINE};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn status(base: &str) -> serde_json::Value {
    serde_json::from_str(&http_get(base, "/admin/status.json")).unwrap_or_default()
}

/// Waits until the server holds `n` open event streams.
fn wait_for_streams(base: &str, n: usize) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let open = status(base)["connections"]
            .as_array()
            .map_or(0, |streams| streams.len());
        if open >= n {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {n} open streams");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn publish(base: &str, namespace: &str, data: &str) {
    let output = run(&["publish", "--server", base, namespace, data]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// Runs `ssectl publish --batch` with `input` on standard input.
fn publish_batch(base: &str, extra: &[&str], input: &str) -> Output {
    let mut child = ssectl()
        .args(["publish", "--batch", "--server", base])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    wait_with_deadline(child)
}

#[test]
fn tail_of_several_namespaces_gets_each_of_them_and_nothing_else() {
    let server = serve(&[]);
    let tail = ssectl()
        .args(["tail", "--server", &server.base, "/pets", "/time"])
        .args(["--count", "2", "--format", "json", "--timeout", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_streams(&server.base, 1);
    // What the stream must not get comes first: had it leaked, it would be among the
    // two events tail prints before exiting.
    publish(&server.base, "/petsitters", "not a pet");
    publish(&server.base, "/weather", "not the time");
    publish(&server.base, "/pets/dogs", "Corgi");
    publish(&server.base, "/time", "noon");
    let output = wait_with_deadline(tail);
    assert!(output.status.success(), "{}", stderr(&output));
    let data: Vec<String> = stdout(&output)
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["data"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(data, ["Corgi", "noon"]);
}

#[test]
fn tail_refuses_a_mix_of_url_and_namespaces() {
    let output = run(&["tail", "http://127.0.0.1:1/subscribe/a", "/b"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("not both"), "{}", stderr(&output));
}

#[test]
fn status_prints_a_table_and_the_json_with_the_admin_token() {
    let server = serve(&["--node-name", "edge-7", "--admin-token", "s3cret"]);
    let tail = ssectl()
        .args([
            "tail",
            "--server",
            &server.base,
            "/pets",
            "--timeout",
            "30s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut tail = KillOnDrop(tail);
    publish(&server.base, "/pets", "one");
    let deadline = Instant::now() + DEADLINE;
    let table = loop {
        let output = run(&["status", "--server", &server.base, "--token", "s3cret"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let table = stdout(&output);
        if table.contains("/pets") {
            break table;
        }
        assert!(Instant::now() < deadline, "the tail never showed: {table}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(table.contains("edge-7 (OK)"), "{table}");
    assert!(table.contains("published   1 events"), "{table}");
    let row = table
        .lines()
        .find(|line| line.starts_with("/pets"))
        .unwrap();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["/pets", "1"]);

    let json = run(&[
        "status",
        "--server",
        &server.base,
        "--token",
        "s3cret",
        "--json",
    ]);
    assert!(json.status.success(), "{}", stderr(&json));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["node"], "edge-7");
    assert_eq!(json["msgs_broadcast"], 1);

    let refused = run(&["status", "--server", &server.base]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("401"), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--token"), "{}", stderr(&refused));
    tail.kill();
}

/// Kills the child when dropped, so a failing assertion leaves no process behind.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn publish_batch_sends_stdin_in_batches_and_counts_them() {
    let server = serve(&[]);
    let input: String = (1..=5)
        .map(|i| format!("{{\"namespace\": \"/batch/{i}\", \"data\": {i}, \"event\": \"n\"}}\n"))
        .collect();
    let input = format!("{input}\n   \n");
    let output = publish_batch(&server.base, &["--batch-size", "2"], &input);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).trim(), "published 5 events");
    assert_eq!(status(&server.base)["msgs_broadcast"], 5);
}

#[test]
fn publish_batch_stops_at_a_bad_line_and_names_it() {
    let server = serve(&[]);
    let input = concat!(
        "{\"namespace\": \"/a\", \"data\": 1}\n",
        "{\"namespace\": \"/a\", \"data\": 2}\n",
        "\n",
        "{\"namespace\": \"/a\", \"data\": 3}\n",
        "{\"namespace\": \"/a\", \"data\": \n",
        "{\"namespace\": \"/a\", \"data\": 6}\n",
    );
    let output = publish_batch(&server.base, &["--batch-size", "2"], input);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("line 5: not valid JSON"), "{text}");
    assert!(text.contains("3 events published before it"), "{text}");
    assert_eq!(status(&server.base)["msgs_broadcast"], 3);
}

#[test]
fn publish_batch_names_the_input_line_the_server_refused() {
    let server = serve(&[]);
    // Line 4 repeats line 2's id, which the server refuses (409) with its whole request.
    let input = concat!(
        "{\"namespace\": \"/a\", \"data\": 1, \"id\": \"first\"}\n",
        "{\"namespace\": \"/a\", \"data\": 2, \"id\": \"taken\"}\n",
        "\n",
        "{\"namespace\": \"/a\", \"data\": 3, \"id\": \"taken\"}\n",
    );
    let output = publish_batch(&server.base, &["--batch-size", "10"], input);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.starts_with("ssectl: line 4:"), "{text}");
    assert!(text.contains("duplicate_id"), "{text}");
    assert!(text.contains("lines 1-4 was refused whole"), "{text}");
    assert!(text.contains("0 events published"), "{text}");
    assert_eq!(status(&server.base)["msgs_broadcast"], 0);
}

#[test]
fn publish_batch_to_an_unreachable_server_names_the_lines_in_doubt() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let input = "\n{\"namespace\": \"/a\", \"data\": 1}\n{\"namespace\": \"/a\", \"data\": 2}\n";
    let output = publish_batch(&base, &[], input);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.starts_with("ssectl: lines 2-3: cannot reach"),
        "{text}"
    );
    assert!(text.contains("0 events published before them"), "{text}");
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _ssectl"),
        ("zsh", "#compdef ssectl"),
        ("fish", "complete -c ssectl"),
    ] {
        let output = run(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for word in ["status", "completions", "cacert", "batch-size"] {
            assert!(script.contains(word), "{shell}: no {word:?}");
        }
    }
}

#[test]
fn man_pages_are_roff_for_the_command_and_its_subcommands() {
    let main = run(&["man"]);
    assert!(main.status.success(), "{}", stderr(&main));
    let page = stdout(&main);
    assert!(page.contains(".TH ssectl 1"), "{page}");
    assert!(page.contains("completions"), "lists the subcommands");
    let tail = run(&["man", "tail"]);
    let page = stdout(&tail);
    assert!(page.contains(".TH ssectl-tail 1"), "{page}");
    assert!(page.contains("cacert"), "{page}");
    let unknown = run(&["man", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let output = run(&["--version"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let version = stdout(&output);
    let commit = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let expected = match commit {
        Some(commit) => format!("ssectl {} ({commit}", env!("CARGO_PKG_VERSION")),
        // Not a checkout: the package version alone.
        None => format!("ssectl {}\n", env!("CARGO_PKG_VERSION")),
    };
    assert!(
        version.starts_with(&expected),
        "{version:?} vs {expected:?}"
    );
}
