//! The delivery soak's subscribers: healthy and churning readers that count what they
//! receive (through the chunked coding and the project's event decoder, into a
//! [`Tally`]), and stalled ones that never read.

use std::net::SocketAddr;

use sse_core::Decoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

use super::tally::Tally;
use super::wire::{read_head, subscribe_request, Dechunker};

/// The namespace the soak's subscribers read (the feed publishes below it).
pub(super) const NAMESPACE: &str = "/soak";

/// The receive buffer a stalled subscriber asks for, so the server meets a full socket
/// soon.
const STALLED_RECEIVE_BUFFER: u32 = 4096;

/// What each reader hands back.
pub(super) struct ReaderOutcome {
    pub(super) tally: Tally,
    pub(super) reconnects: u64,
    /// Why the reader stopped before the last event, if it did.
    pub(super) interrupted: Option<String>,
}

/// What readers are told as the run goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Publishing,
    /// Publishing ended with events `0..n`: read up to the last one.
    Published(u64),
    /// Deadline passed: stop now.
    Abort,
}

/// A subscriber that never reads: connected with a small receive buffer, its request
/// sent.
pub(super) async fn stall(addr: SocketAddr) -> Result<TcpStream, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .set_recv_buffer_size(STALLED_RECEIVE_BUFFER)
        .map_err(|e| e.to_string())?;
    let mut stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connecting a stalled subscriber: {e}"))?;
    stream
        .write_all(subscribe_request(addr, NAMESPACE, None).as_bytes())
        .await
        .map_err(|e| format!("subscribing a stalled subscriber: {e}"))?;
    Ok(stream)
}

/// Events a churning reader takes on connection `reconnects` before it hangs up:
/// between 50 and 999, varied so that readers do not move in step.
fn churn_quota(index: u64, reconnects: u64) -> u64 {
    50 + (index * 7_919 + reconnects * 104_729) % 950
}

/// One healthy or churning subscriber, from its first connection until it has
/// received the last event published (or is told to stop).
pub(super) async fn read(
    addr: SocketAddr,
    churning: bool,
    index: u64,
    mut phase: watch::Receiver<Phase>,
) -> ReaderOutcome {
    let mut outcome = ReaderOutcome {
        tally: Tally::default(),
        reconnects: 0,
        interrupted: None,
    };
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let last_id = outcome.tally.last_id.map(|id| id.to_string());
        let quota = churning.then(|| churn_quota(index, outcome.reconnects));
        match connection(
            addr,
            last_id.as_deref(),
            quota,
            &mut outcome.tally,
            &mut buffer,
            &mut phase,
        )
        .await
        {
            Ok(Until::Done) => return outcome,
            Ok(Until::Quota) => outcome.reconnects += 1,
            Err(reason) => {
                outcome.interrupted = Some(format!(
                    "{} subscriber {index}: {reason}",
                    if churning { "churning" } else { "healthy" }
                ));
                return outcome;
            }
        }
    }
}

/// Why a connection of a reader ended.
enum Until {
    /// The last event was received, or the run was aborted.
    Done,
    /// A churning reader took its quota and hung up.
    Quota,
}

/// One connection of a reader: subscribe (resuming after `last_id`), count events
/// until done or until `quota` events, then hang up (FIN or RST, alternating).
async fn connection(
    addr: SocketAddr,
    last_id: Option<&str>,
    quota: Option<u64>,
    tally: &mut Tally,
    buffer: &mut [u8],
    phase: &mut watch::Receiver<Phase>,
) -> Result<Until, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(subscribe_request(addr, NAMESPACE, last_id).as_bytes())
        .await
        .map_err(|e| format!("subscribing: {e}"))?;
    let head = read_head(&mut stream).await?;
    if head.status != 200 || !head.chunked {
        return Err(format!(
            "answered {} instead of a chunked event stream",
            head.status
        ));
    }
    let mut dechunker = Dechunker::default();
    let mut decoder = Decoder::new();
    let start = tally.received;
    let mut pending = head.body_start;
    loop {
        let ended = feed_bytes(&pending, &mut dechunker, &mut decoder, tally)?;
        let done = match *phase.borrow() {
            Phase::Publishing => false,
            Phase::Published(events) => tally.caught_up(events),
            Phase::Abort => return Ok(Until::Done),
        };
        if done {
            return Ok(Until::Done);
        }
        if ended {
            return Err("the server ended the stream".into());
        }
        if quota.is_some_and(|quota| tally.received - start >= quota) {
            if tally.received % 2 == 1 {
                stream.set_zero_linger().map_err(|e| e.to_string())?;
            }
            return Ok(Until::Quota);
        }
        let count = tokio::select! {
            read = stream.read(buffer) => {
                read.map_err(|e| format!("reading: {e}"))?
            }
            changed = phase.changed() => {
                changed.map_err(|_| "the run ended without a word")?;
                pending = Vec::new();
                continue;
            }
        };
        if count == 0 {
            return Err("the server closed the connection".into());
        }
        pending.clear();
        pending.extend_from_slice(&buffer[..count]);
    }
}

/// Feeds wire bytes through the chunked coding and the event decoder into the tally;
/// returns whether the stream's last chunk came.
fn feed_bytes(
    wire: &[u8],
    dechunker: &mut Dechunker,
    decoder: &mut Decoder,
    tally: &mut Tally,
) -> Result<bool, String> {
    let mut failure = None;
    let ended = dechunker.feed(wire, |body| {
        if failure.is_some() {
            return;
        }
        if let Err(error) =
            decoder.feed(body, |event| tally.record(event.data, event.last_event_id))
        {
            failure = Some(error.to_string());
        }
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_quotas_vary_within_bounds() {
        let quotas: Vec<u64> = (0..20).map(|r| churn_quota(3, r)).collect();
        assert!(quotas.iter().all(|q| (50..1_000).contains(q)));
        assert!(quotas.windows(2).any(|w| w[0] != w[1]));
    }
}
