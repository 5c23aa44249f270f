//! `ssectl status`: a node's status (and, in cluster mode, its cluster's nodes) as a
//! table for people, or the server's JSON with `--json`.
//!
//! It reads `GET /admin/status.json`, sending `--token` (the server's admin token) as a
//! bearer token.

use std::fmt::Write as _;

use clap::Args;
use serde::Deserialize;

use crate::client::{excerpt, http_client, runtime, send_for_text, ServerArg};
use crate::tls_client::TlsArgs;

/// Options of `ssectl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    server: ServerArg,

    #[command(flatten)]
    tls: TlsArgs,

    /// The server's admin token, for a server started with --admin-token.
    #[arg(long, env = "SSE_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Print the server's status JSON (pretty-printed) instead of a table.
    #[arg(long)]
    json: bool,
}

/// The parts of `/admin/status.json` the table shows.
#[derive(Debug, Deserialize)]
struct Status {
    node: String,
    status: String,
    uptime_seconds: f64,
    msgs_broadcast: u64,
    deliveries: u64,
    lagged_cutoffs: u64,
    subscribers: u64,
    authenticated_streams: u64,
    connections: Vec<serde_json::Value>,
    namespaces: Vec<NamespaceRow>,
    rates: Rates,
    bytes_sent: u64,
    keepalives_sent: u64,
    #[serde(default)]
    cluster: Option<Cluster>,
}

#[derive(Debug, Deserialize)]
struct NamespaceRow {
    namespace: String,
    subscribers: u64,
}

#[derive(Debug, Deserialize)]
struct Rates {
    publish_per_second: f64,
    deliveries_per_second: f64,
}

#[derive(Debug, Deserialize)]
struct Cluster {
    name: String,
    connected: bool,
    nodes: Vec<ClusterNode>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ClusterNode {
    node: String,
    connections: u64,
    subscribers: u64,
    publish_per_second: f64,
    deliveries_per_second: f64,
    last_seen: f64,
}

/// Fetches the status and prints it.
pub fn run(args: StatusArgs) -> Result<(), String> {
    let url = args.server.url("/admin/status.json");
    let client = http_client(&args.tls)?;
    let mut request = client.get(&url).header("accept", "application/json");
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let (status, body) = send_for_text(&runtime()?, &url, request)?;
    if !status.is_success() {
        return Err(refused(&url, status.as_u16(), &body));
    }
    let json: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| format!("{url}: not a JSON status: {}", excerpt(&body)))?;
    if args.json {
        let pretty = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        println!("{pretty}");
        return Ok(());
    }
    let parsed: Status =
        serde_json::from_value(json).map_err(|e| format!("{url}: not an ssectl status ({e})"))?;
    print!("{}", render(&parsed, unix_now()));
    Ok(())
}

fn refused(url: &str, status: u16, body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let detail = json["detail"].as_str().unwrap_or_default();
    let hint = match status {
        401 | 403 => "; give the server's admin token with --token (or SSE_ADMIN_TOKEN)",
        404 => "; is the admin API turned off (--no-admin)?",
        _ => "",
    };
    if detail.is_empty() {
        format!("{url}: the server answered {status}{hint}")
    } else {
        format!("{url}: the server answered {status}: {detail}{hint}")
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The status as text: a summary, the namespaces, and the cluster's nodes.
fn render(status: &Status, now: f64) -> String {
    let mut out = String::new();
    let uptime = std::time::Duration::from_secs(status.uptime_seconds.max(0.0) as u64);
    let summary = [
        ("node", format!("{} ({})", status.node, status.status)),
        ("uptime", humantime::format_duration(uptime).to_string()),
        (
            "published",
            format!(
                "{} events, {:.1}/s now",
                status.msgs_broadcast, status.rates.publish_per_second
            ),
        ),
        (
            "deliveries",
            format!(
                "{}, {:.1}/s now",
                status.deliveries, status.rates.deliveries_per_second
            ),
        ),
        (
            "streams",
            format!(
                "{} open ({} with a signed token), {} subscriptions",
                status.connections.len(),
                status.authenticated_streams,
                status.subscribers
            ),
        ),
        (
            "cut off",
            format!("{} lagging subscribers", status.lagged_cutoffs),
        ),
        (
            "sent",
            format!(
                "{} bytes, {} keepalives",
                status.bytes_sent, status.keepalives_sent
            ),
        ),
    ];
    for (label, value) in summary {
        let _ = writeln!(out, "{label:<12}{value}");
    }
    if !status.namespaces.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = status
            .namespaces
            .iter()
            .map(|row| vec![row.namespace.clone(), row.subscribers.to_string()])
            .collect();
        out.push_str(&table(&["NAMESPACE", "SUBSCRIBERS"], &rows));
    }
    if let Some(cluster) = &status.cluster {
        out.push('\n');
        let state = if cluster.connected {
            "connected"
        } else {
            "NOT connected to Redis"
        };
        let _ = writeln!(out, "cluster {:?}: {state}", cluster.name);
        if let Some(error) = &cluster.error {
            let _ = writeln!(out, "nodes unknown: {error}");
        }
        let rows: Vec<Vec<String>> = cluster
            .nodes
            .iter()
            .map(|node| {
                vec![
                    node.node.clone(),
                    node.connections.to_string(),
                    node.subscribers.to_string(),
                    format!("{:.1}", node.publish_per_second),
                    format!("{:.1}", node.deliveries_per_second),
                    format!("{:.0}s ago", (now - node.last_seen).max(0.0)),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "NODE",
                "CONNECTIONS",
                "SUBSCRIBERS",
                "PUBLISH/S",
                "DELIVERIES/S",
                "LAST SEEN",
            ],
            &rows,
        ));
    }
    out
}

/// Left-aligned columns, two spaces apart, under a header line.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_node_lists_every_node_of_the_cluster() {
        let json = serde_json::json!({
            "node": "edge-1", "status": "OK", "uptime_seconds": 3725.0,
            "msgs_broadcast": 10, "deliveries": 20, "lagged_cutoffs": 0, "subscribers": 2,
            "authenticated_streams": 0, "connections": [{}, {}], "bytes_sent": 100,
            "keepalives_sent": 1, "namespaces": [{"namespace": "/pets", "subscribers": 2}],
            "rates": {"publish_per_second": 1.5, "deliveries_per_second": 3.0},
            "cluster": {"name": "sse", "node": "edge-1", "connected": true, "nodes": [
                {"node": "edge-1", "connections": 2, "subscribers": 2, "publish_per_second": 1.5,
                 "deliveries_per_second": 3.0, "started_at": 0, "last_seen": 998.0},
                {"node": "edge-2", "connections": 7, "subscribers": 9, "publish_per_second": 0.0,
                 "deliveries_per_second": 4.0, "started_at": 0, "last_seen": 1000.0}
            ]}
        });
        let status: Status = serde_json::from_value(json).unwrap();
        let text = render(&status, 1000.0);
        assert!(text.contains("uptime      1h 2m 5s"), "{text}");
        assert!(text.contains("cluster \"sse\": connected"), "{text}");
        let row = |name: &str| -> Vec<String> {
            let line = text.lines().find(|l| l.starts_with(name)).unwrap();
            line.split_whitespace().map(str::to_owned).collect()
        };
        assert_eq!(row("NODE")[0..3], ["NODE", "CONNECTIONS", "SUBSCRIBERS"]);
        assert_eq!(
            row("edge-2 "),
            ["edge-2", "7", "9", "0.0", "4.0", "0s", "ago"]
        );
        assert_eq!(
            row("edge-1 "),
            ["edge-1", "2", "2", "1.5", "3.0", "2s", "ago"]
        );
    }

    #[test]
    fn columns_line_up_under_the_header() {
        let text = table(
            &["NODE", "CONNECTIONS"],
            &[
                vec!["edge-long-name".into(), "3".into()],
                vec!["b".into(), "12345678901234".into()],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NODE            CONNECTIONS");
        assert_eq!(lines[1], "edge-long-name  3");
        assert_eq!(lines[2], "b               12345678901234");
    }
}
