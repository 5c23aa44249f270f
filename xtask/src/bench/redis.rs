//! The `redis-server` of the cluster scenarios: found on this machine (or not, and why),
//! started on a free loopback port with persistence off, pinned beside the servers, asked
//! for its CPU time, and killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::processes::Tools;

/// Where Debian's `redis-server` package puts the server.
const DEBIAN_PATH: &str = "/usr/bin/redis-server";
/// How long Redis may take to answer its first `PING`.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long one question to Redis may take.
const ANSWER_DEADLINE: Duration = Duration::from_secs(5);

/// The `redis-server` binary: `$REDIS_SERVER`, Debian's path, or the first on `PATH`.
///
/// # Errors
///
/// Why none was found, in words for the report.
pub(super) fn find() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "REDIS_SERVER={} is not a file",
                path.to_string_lossy()
            ))
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("redis-server"));
    std::iter::once(PathBuf::from(DEBIAN_PATH))
        .chain(on_path)
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "redis-server was not found ({DEBIAN_PATH}, PATH or $REDIS_SERVER); \
                 install Debian's redis-server package to measure cluster mode"
            )
        })
}

/// A running `redis-server` of the benchmark's own.
pub(super) struct RedisProcess {
    child: Child,
    port: u16,
    /// The server's own `--version` line.
    pub(super) version: String,
    /// The arguments it was started with, for the report.
    pub(super) args: Vec<String>,
}

impl RedisProcess {
    /// Starts `binary` on a free loopback port, pinned to `core` when pinning is possible,
    /// and waits until it answers.
    pub(super) fn start(tools: &Tools, binary: &Path, core: u8) -> Result<RedisProcess, String> {
        let version = Command::new(binary)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free loopback port for Redis: {e}"))?
            .port();
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let child = tools
            .command(binary, core)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut redis = RedisProcess {
            child,
            port,
            version,
            args,
        };
        let deadline = Instant::now() + START_DEADLINE;
        while redis.ask(&["PING"]).as_deref() != Some("PONG") {
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server did not answer on port {port} in time"
                ));
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!("redis-server exited at start ({status})"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    /// The URL the nodes connect to.
    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The CPU time Redis has used (user plus system, all its threads), from
    /// `INFO cpu`; `None` when it cannot be read.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        let info = self.ask(&["INFO", "cpu"])?;
        let field = |name: &str| -> Option<f64> {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?
                .trim()
                .parse()
                .ok()
        };
        Some(field("used_cpu_user")? + field("used_cpu_sys")?)
    }

    /// Sends one command and returns its answer when it is a simple or bulk string.
    fn ask(&self, command: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(ANSWER_DEADLINE)).ok()?;
        stream.write_all(&encode_command(command)).ok()?;
        read_string_reply(&mut BufReader::new(stream))
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command as a RESP array of bulk strings.
fn encode_command(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n{part}\r\n", part.len()).as_bytes());
    }
    out
}

/// Reads a RESP simple string (`+OK`) or bulk string (`$5\r\nhello`); `None` for
/// anything else (an error, a nil, a broken answer).
fn read_string_reply(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let line = line.strip_suffix("\r\n")?;
    if let Some(simple) = line.strip_prefix('+') {
        return Some(simple.to_owned());
    }
    let length: usize = line.strip_prefix('$')?.parse().ok()?;
    let mut body = vec![0; length + 2];
    reader.read_exact(&mut body).ok()?;
    body.truncate(length);
    String::from_utf8(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            encode_command(&["INFO", "cpu"]),
            b"*2\r\n$4\r\nINFO\r\n$3\r\ncpu\r\n"
        );
    }

    #[test]
    fn simple_and_bulk_strings_are_read_and_the_rest_refused() {
        let read = |bytes: &[u8]| read_string_reply(&mut &bytes[..]);
        assert_eq!(read(b"+PONG\r\n").as_deref(), Some("PONG"));
        assert_eq!(
            read(b"$12\r\nused_cpu:1\r\n\r\n").as_deref(),
            Some("used_cpu:1\r\n")
        );
        assert_eq!(read(b"-ERR unknown\r\n"), None);
        assert_eq!(read(b"$-1\r\n"), None, "nil");
        assert_eq!(read(b"$10\r\nshort\r\n"), None, "cut short");
    }
}
