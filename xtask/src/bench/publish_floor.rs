//! The least a server can do to answer single publishes (`cargo xtask publish-floor`,
//! started by `cargo xtask bench` beside nginx + nchan): on the runtime `ssectl serve`
//! uses (tokio, multi-threaded), it reads each request's head and `Content-Length` body
//! and answers a fixed `202` shaped like ours, storing nothing, checking nothing.
//!
//! Per request it makes the same system calls as both servers (one read, one write),
//! so what it reaches is the most the client measures of any server here: a publishing
//! target above the floor is out of reach of the measurement for reasons outside the
//! server (the kernel's share of each request, or the client's own core, which `wrk`
//! nearly fills against the floor on a 2-core machine).
//!
//! It serves until `--max-seconds` pass (default 600) or it is interrupted, and prints
//! `publish-floor: listening on http://ADDR` first, which the bench reads.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The answer to every request: as long as `ssectl serve`'s `202` to a publish.
const REPLY: &[u8] = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\
date: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 61\r\n\r\n\
{\"id\":\"1764390000000-1\",\"namespace\":\"/bench\",\"subscribers\":0}";

/// A request (head and body) longer than this closes its connection.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// `cargo xtask publish-floor [--listen ADDR] [--max-seconds N]`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut listen = "127.0.0.1:0".to_owned();
    let mut max_seconds = 600;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or(format!("publish-floor: {arg} needs a value"))
        };
        match arg.as_str() {
            "--listen" => listen.clone_from(value()?),
            "--max-seconds" => {
                max_seconds = value()?
                    .parse()
                    .map_err(|e| format!("publish-floor: --max-seconds: {e}"))?;
            }
            other => return Err(format!("publish-floor: unknown argument {other:?}")),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("publish-floor: runtime: {e}"))?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|e| format!("publish-floor: bind {listen}: {e}"))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        // The harness reads this line to find the address.
        println!("publish-floor: listening on http://{address}");
        let serving = async {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket));
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(max_seconds), serving).await;
        Ok(())
    })
}

/// Answers every request of one connection, in order, until it closes.
async fn answer(mut socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let mut buffer = vec![0; MAX_REQUEST_BYTES];
    let mut filled = 0;
    loop {
        while let Some(length) = request_length(&buffer[..filled]) {
            if socket.write_all(REPLY).await.is_err() {
                return;
            }
            buffer.copy_within(length..filled, 0);
            filled -= length;
        }
        if filled == buffer.len() {
            return;
        }
        match socket.read(&mut buffer[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(read) => filled += read,
        }
    }
}

/// The length of the first whole request in `bytes` (its head, then as many bytes as
/// its `Content-Length` says), or `None` until it is all there.
fn request_length(bytes: &[u8]) -> Option<usize> {
    let head = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let body = bytes[..head]
        .split(|&byte| byte == b'\n')
        .find_map(|line| {
            let colon = line.iter().position(|&byte| byte == b':')?;
            let (name, value) = line.split_at(colon);
            if !name.eq_ignore_ascii_case(b"content-length") {
                return None;
            }
            std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok()
        })
        .unwrap_or(0);
    let length = head.checked_add(body)?;
    (bytes.len() >= length).then_some(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_whole_once_its_body_is_there() {
        let post = b"POST /publish/bench HTTP/1.1\r\nHost: a\r\ncontent-length: 4\r\n\r\nbody";
        for cut in 0..post.len() {
            assert_eq!(request_length(&post[..cut]), None, "cut at {cut}");
        }
        assert_eq!(request_length(post), Some(post.len()));
        let mut two = post.to_vec();
        two.extend_from_slice(b"GET /healthz HTTP/1.1\r\n\r\n");
        assert_eq!(request_length(&two), Some(post.len()));
        assert_eq!(request_length(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
    }

    #[test]
    fn the_reply_is_one_well_formed_answer() {
        let text = std::str::from_utf8(REPLY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 202 Accepted\r\n"));
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
        let _: serde_json::Value = serde_json::from_str(body).unwrap();
    }

    #[tokio::test]
    async fn pipelined_requests_are_each_answered_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            answer(socket).await;
        });
        let mut client = TcpStream::connect(address).await.unwrap();
        let post = b"POST /publish/bench HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi";
        let mut requests = post.repeat(3);
        requests.truncate(requests.len() - 1);
        client.write_all(&requests).await.unwrap();
        let mut replies = vec![0; REPLY.len() * 2];
        tokio::time::timeout(Duration::from_secs(30), client.read_exact(&mut replies))
            .await
            .expect("two answers within 30 s")
            .unwrap();
        assert_eq!(replies, REPLY.repeat(2));
        // The third request's last byte completes it.
        client.write_all(b"i").await.unwrap();
        let mut third = vec![0; REPLY.len()];
        tokio::time::timeout(Duration::from_secs(30), client.read_exact(&mut third))
            .await
            .expect("the third answer within 30 s")
            .unwrap();
        assert_eq!(third, REPLY);
        drop(client);
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("the connection ends when the client closes")
            .unwrap();
    }
}
