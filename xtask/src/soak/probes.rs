//! What the soak reads about the server: its streams and subscribers from `/metrics`,
//! its file descriptors and resident memory from /proc, and waiting on such a reading
//! with a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bench::processes::rss_kib;

/// How often a condition is read again while waiting for it.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The server's open event streams and registered subscriptions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Streams {
    pub(super) open: u64,
    pub(super) subscribers: u64,
}

/// The text of `/metrics`.
pub(super) async fn metrics(addr: SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting for /metrics: {e}"))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("asking for /metrics: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("reading /metrics: {e}"))?;
    let text = String::from_utf8(answer).map_err(|_| "/metrics is not UTF-8")?;
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
        _ => Err(format!(
            "/metrics answered {:?}",
            text.lines().next().unwrap_or("nothing")
        )),
    }
}

/// The value of the metric `name` (a gauge, or a counter with its `_total`), which
/// must be present: a missing metric is an error, never a zero.
pub(super) fn metric(text: &str, name: &str) -> Result<u64, String> {
    text.lines()
        .find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(' ')?;
            value.trim().parse::<f64>().ok()
        })
        .map(|value| value as u64)
        .ok_or_else(|| format!("/metrics has no {name}"))
}

/// Open streams and subscribers, from `/metrics`.
pub(super) async fn streams(addr: SocketAddr) -> Result<Streams, String> {
    let text = metrics(addr).await?;
    Ok(Streams {
        open: metric(&text, "sse_streams_open")?,
        subscribers: metric(&text, "sse_subscribers")?,
    })
}

/// Open file descriptors of process `pid` (Linux: the entries of /proc/PID/fd).
pub(super) fn open_fds(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(entries.count() as u64)
}

/// Resident memory of process `pid` in KiB (Linux: VmRSS of /proc/PID/status).
pub(super) fn rss(pid: u32) -> Result<u64, String> {
    rss_kib(pid).ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// Reads `probe` until it gives a value `done` accepts or `deadline` has passed; returns
/// the last value read and whether it was accepted.
pub(super) async fn wait_for<T, F, Fut>(
    deadline: Duration,
    mut probe: F,
    done: impl Fn(&T) -> bool,
) -> Result<(T, bool), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let until = Instant::now() + deadline;
    loop {
        let value = probe().await?;
        if done(&value) {
            return Ok((value, true));
        }
        if Instant::now() >= until {
            return Ok((value, false));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# TYPE sse_streams_open gauge\nsse_streams_open 3\n\
        sse_streams_opened_total 10\nsse_subscribers 2\nsse_subscribers_lagged_total 1\n# EOF\n";

    #[test]
    fn metrics_are_read_by_their_exact_name() {
        assert_eq!(metric(METRICS, "sse_streams_open"), Ok(3));
        assert_eq!(metric(METRICS, "sse_subscribers"), Ok(2));
        assert_eq!(metric(METRICS, "sse_subscribers_lagged_total"), Ok(1));
    }

    #[test]
    fn a_missing_metric_is_an_error_not_zero() {
        assert!(metric(METRICS, "sse_streams").is_err());
        assert!(metric("", "sse_streams_open").is_err());
    }

    #[test]
    fn this_process_has_descriptors_and_memory() {
        let pid = std::process::id();
        assert!(
            open_fds(pid).unwrap() >= 3,
            "stdin, stdout, stderr at least"
        );
        assert!(rss(pid).unwrap() > 0);
    }
}
