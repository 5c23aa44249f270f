//! The few pieces of HTTP/1.1 the soak's raw-socket clients speak: subscribe requests,
//! reading a response head, undoing the chunked coding of an event stream, and
//! publishing batches over one kept-alive connection.
//!
//! Kept this small on purpose: the load must cost the client core little, and the
//! server's answers are known (its direct subscribe path always answers `200` with a
//! chunked event stream; publishing answers `202` with a `Content-Length`).

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// `host:port` of a server base URL such as `http://127.0.0.1:8001`.
pub(super) fn address(base: &str) -> Result<SocketAddr, String> {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .map_err(|e| format!("{base} is not an http://IP:PORT address: {e}"))
}

/// A subscribe request for `namespace`, resuming after `last_event_id` when given.
pub(super) fn subscribe_request(
    addr: SocketAddr,
    namespace: &str,
    last_event_id: Option<&str>,
) -> String {
    let mut request = format!(
        "GET /subscribe{namespace} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n"
    );
    if let Some(id) = last_event_id {
        let _ = write!(request, "Last-Event-ID: {id}\r\n");
    }
    request.push_str("\r\n");
    request
}

/// A response head: its status code and whether the body is chunked, plus the body
/// bytes that arrived with it.
pub(super) struct ResponseHead {
    pub(super) status: u16,
    pub(super) chunked: bool,
    pub(super) content_length: Option<usize>,
    pub(super) body_start: Vec<u8>,
}

/// Reads until a whole response head has arrived.
pub(super) async fn read_head(stream: &mut TcpStream) -> Result<ResponseHead, String> {
    let mut buffer = Vec::with_capacity(1024);
    let mut read = [0u8; 4096];
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end])
                .map_err(|_| "the response head is not UTF-8".to_owned())?;
            let parsed = parse_head(head)?;
            return Ok(ResponseHead {
                body_start: buffer[end + 4..].to_vec(),
                ..parsed
            });
        }
        if buffer.len() > MAX_HEAD {
            return Err(format!("no response head within {MAX_HEAD} bytes"));
        }
        let count = stream
            .read(&mut read)
            .await
            .map_err(|e| format!("reading the response head: {e}"))?;
        if count == 0 {
            return Err(format!(
                "the server closed the connection after {} bytes of response head",
                buffer.len()
            ));
        }
        buffer.extend_from_slice(&read[..count]);
    }
}

fn parse_head(head: &str) -> Result<ResponseHead, String> {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 status line: {status_line:?}"))?;
    let mut chunked = false;
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse()
                    .map_err(|_| format!("a Content-Length of {value:?}"))?,
            );
        }
    }
    Ok(ResponseHead {
        status,
        chunked,
        content_length,
        body_start: Vec::new(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Undoes the chunked transfer coding incrementally: bytes of the wire in, the body's
/// bytes out, whatever the read boundaries.
#[derive(Debug, Default)]
pub(super) struct Dechunker {
    state: ChunkState,
    /// Hex digits (and any extension) of a size line not yet complete.
    size_line: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum ChunkState {
    /// Reading a size line up to its LF.
    #[default]
    Size,
    /// This many bytes of chunk data remain.
    Data(usize),
    /// The CRLF after a chunk's data: how many of its bytes remain.
    DataEnd(u8),
    /// The last chunk (size 0) has been read: the body is complete.
    Done,
}

impl Dechunker {
    /// Feeds wire bytes, handing each run of body bytes to `body`. Returns whether the
    /// last chunk has been read (the server ended the stream).
    pub(super) fn feed(
        &mut self,
        mut input: &[u8],
        mut body: impl FnMut(&[u8]),
    ) -> Result<bool, String> {
        while !input.is_empty() {
            match self.state {
                ChunkState::Done => return Ok(true),
                ChunkState::Size => match input.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        self.size_line.extend_from_slice(&input[..end]);
                        input = &input[end + 1..];
                        let size = self.chunk_size()?;
                        self.size_line.clear();
                        self.state = if size == 0 {
                            ChunkState::Done
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    None => {
                        if self.size_line.len() + input.len() > 64 {
                            return Err("a chunk size line longer than 64 bytes".into());
                        }
                        self.size_line.extend_from_slice(input);
                        input = &[];
                    }
                },
                ChunkState::Data(remaining) => {
                    let take = remaining.min(input.len());
                    body(&input[..take]);
                    input = &input[take..];
                    self.state = if take == remaining {
                        ChunkState::DataEnd(2)
                    } else {
                        ChunkState::Data(remaining - take)
                    };
                }
                ChunkState::DataEnd(remaining) => {
                    let expected = if remaining == 2 { b'\r' } else { b'\n' };
                    if input[0] != expected {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    input = &input[1..];
                    self.state = if remaining == 1 {
                        ChunkState::Size
                    } else {
                        ChunkState::DataEnd(remaining - 1)
                    };
                }
            }
        }
        Ok(self.state == ChunkState::Done)
    }

    fn chunk_size(&self) -> Result<usize, String> {
        let line = self
            .size_line
            .strip_suffix(b"\r")
            .unwrap_or(&self.size_line);
        let digits = line.split(|&b| b == b';').next().unwrap_or_default();
        let text = std::str::from_utf8(digits).map_err(|_| "a chunk size that is not text")?;
        usize::from_str_radix(text.trim(), 16).map_err(|_| format!("a chunk size of {text:?}"))
    }
}

/// One kept-alive connection that publishes NDJSON batches, one request at a time.
pub(super) struct Publisher {
    stream: TcpStream,
    addr: SocketAddr,
    request: String,
    body: String,
}

impl Publisher {
    pub(super) async fn connect(addr: SocketAddr) -> Result<Publisher, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connecting the publisher: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Publisher {
            stream,
            addr,
            request: String::new(),
            body: String::new(),
        })
    }

    /// Publishes events `sequence`, `sequence + 1`, … (`count` of them) to `namespace`
    /// as one batch; each event's data is its sequence number, then `padding`.
    pub(super) async fn publish(
        &mut self,
        namespace: &str,
        sequence: u64,
        count: u64,
        padding: &str,
    ) -> Result<(), String> {
        self.body.clear();
        for number in sequence..sequence + count {
            let _ = writeln!(
                self.body,
                r#"{{"namespace":"{namespace}","data":"{number} {padding}"}}"#
            );
        }
        self.request.clear();
        let _ = write!(
            self.request,
            "POST /publish HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            self.body.len()
        );
        self.request.push_str(&self.body);
        self.stream
            .write_all(self.request.as_bytes())
            .await
            .map_err(|e| format!("publishing: {e}"))?;
        let head = read_head(&mut self.stream).await?;
        let length = head
            .content_length
            .ok_or("a publish answer without Content-Length")?;
        let mut answer = head.body_start;
        if answer.len() < length {
            let start = answer.len();
            answer.resize(length, 0);
            self.stream
                .read_exact(&mut answer[start..])
                .await
                .map_err(|e| format!("reading the publish answer: {e}"))?;
        }
        if head.status != 202 {
            return Err(format!(
                "publishing answered {}: {}",
                head.status,
                String::from_utf8_lossy(&answer)
            ));
        }
        Ok(())
    }
}

/// Whether an I/O error is the peer resetting or closing the connection.
pub(super) fn is_hang_up(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk_in_pieces(wire: &[u8], piece: usize) -> (Vec<u8>, bool) {
        let mut dechunker = Dechunker::default();
        let mut body = Vec::new();
        let mut done = false;
        for part in wire.chunks(piece) {
            done = dechunker
                .feed(part, |bytes| body.extend_from_slice(bytes))
                .unwrap();
        }
        (body, done)
    }

    #[test]
    fn chunked_bodies_come_out_whole_at_any_read_boundary() {
        let wire = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
        for piece in 1..wire.len() {
            let (body, done) = dechunk_in_pieces(wire, piece);
            assert_eq!(
                body, b"helloabcdefghijklmnopqrstuvwxyz",
                "pieces of {piece}"
            );
            assert!(done, "pieces of {piece}");
        }
    }

    #[test]
    fn a_stream_is_not_done_before_its_last_chunk() {
        let (body, done) = dechunk_in_pieces(b"3\r\nabc\r\n", 2);
        assert_eq!(body, b"abc");
        assert!(!done);
    }

    #[test]
    fn broken_chunk_framing_is_an_error() {
        let mut dechunker = Dechunker::default();
        assert!(dechunker.feed(b"3\r\nabcX", |_| {}).is_err());
        assert!(Dechunker::default().feed(b"zz\r\n", |_| {}).is_err());
    }

    #[test]
    fn heads_give_status_coding_and_length() {
        let head = parse_head("HTTP/1.1 202 Accepted\r\ncontent-length: 17\r\nX: y").unwrap();
        assert_eq!(
            (head.status, head.chunked, head.content_length),
            (202, false, Some(17))
        );
        let head = parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked").unwrap();
        assert_eq!((head.status, head.chunked), (200, true));
        assert!(parse_head("HTTP/1.0 200 OK").is_err());
    }
}
