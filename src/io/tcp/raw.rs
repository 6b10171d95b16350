//! RFC 6062 §5.4 raw relaying: once a client data connection is bound to a peer connection, the
//! two exchange bytes through the allocation's bandwidth meters until either side closes.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::Close;
use crate::io::{BoundConnection, TurnServer, stopped};

/// RFC 6062 §5.4: the client data connection and the peer connection exchange raw bytes until
/// either closes or the allocation is deleted. Both directions go through the allocation's
/// bandwidth meters (`max-bps`, `user-max-bps`, `bps-capacity`) like UDP relaying, with
/// back-pressure instead of drops (a stream cannot lose bytes), and the bytes are counted as they
/// flow. Bounded buffers on both sides: a slow reader holds back the other end.
pub(super) async fn relay_raw<S: AsyncRead + AsyncWrite + Unpin>(
    server: &TurnServer,
    client: &mut S,
    bound: BoundConnection,
    leftover: &[u8],
    stop: &mut watch::Receiver<bool>,
    bytes: &ConnectionBytes,
) -> Close {
    use crate::policy::bandwidth::Direction;
    let BoundConnection { mut peer, mut deleted, allocation, .. } = bound;
    let (client_read, client_write) = tokio::io::split(client);
    let (peer_read, peer_write) = peer.split();
    let counters = &allocation.counters;
    let (to_peer, to_client) =
        ([&counters.to_peer_bytes, &bytes.to_peer], [&counters.to_client_bytes, &bytes.to_client]);
    let relay = async {
        let mut peer_write = peer_write;
        metered_write(server, &allocation, Direction::ToPeer, &mut peer_write, leftover, to_peer).await?;
        tokio::try_join!(
            pump(server, &allocation, Direction::ToPeer, client_read, peer_write, to_peer),
            pump(server, &allocation, Direction::ToClient, peer_read, client_write, to_client),
        )
    };
    tokio::select! {
        r = relay => match r {
            Ok(_) => Close::PeerClosed,
            Err(e) => Close::Io(e),
        },
        _ = deleted.wait_for(|&d| d) => Close::AllocationDeleted,
        () = stopped(stop) => Close::Stopped,
    }
}

/// The bytes one RFC 6062 connection relayed each way (its allocation's counters get them too),
/// for the event that reports its end.
#[derive(Debug, Default)]
pub(super) struct ConnectionBytes {
    to_peer: std::sync::atomic::AtomicU64,
    to_client: std::sync::atomic::AtomicU64,
}

impl ConnectionBytes {
    pub(super) fn read(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.to_peer.load(Relaxed), self.to_client.load(Relaxed))
    }
}

/// The counters a relayed byte is added to: the allocation's and the connection's.
type Counters<'a> = [&'a std::sync::atomic::AtomicU64; 2];

/// The most bytes metered and written at a time: under every bucket's burst (at least 1500 bytes),
/// so a low rate still lets a chunk through.
const METERED_CHUNK: usize = 1024;

/// How long a metered direction waits before asking its buckets again.
const METER_WAIT: Duration = Duration::from_millis(5);

/// Copies `from` to `to` until `from` ends (then shuts `to` down), through the meters.
async fn pump<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    server: &TurnServer,
    allocation: &crate::alloc::Allocation<crate::io::RelaySocket>,
    direction: crate::policy::bandwidth::Direction,
    mut from: R,
    mut to: W,
    counter: Counters<'_>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
            return to.shutdown().await;
        };
        metered_write(server, allocation, direction, &mut to, data, counter).await?;
    }
}

/// Writes `data` once the meters admit it — all of it in one write when they can (always without
/// limits), else in chunks, each waiting for its bytes; counts what was written.
async fn metered_write<W: AsyncWrite + Unpin>(
    server: &TurnServer,
    allocation: &crate::alloc::Allocation<crate::io::RelaySocket>,
    direction: crate::policy::bandwidth::Direction,
    to: &mut W,
    data: &[u8],
    counter: Counters<'_>,
) -> std::io::Result<()> {
    let count = |n: usize| {
        for c in counter {
            c.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    };
    if server.bandwidth().admit(allocation.bandwidth(), direction, server.millis(Instant::now()), data.len()) {
        to.write_all(data).await?;
        count(data.len());
        return Ok(());
    }
    for chunk in data.chunks(METERED_CHUNK) {
        while !server.bandwidth().admit(allocation.bandwidth(), direction, server.millis(Instant::now()), chunk.len()) {
            tokio::time::sleep(METER_WAIT).await;
        }
        to.write_all(chunk).await?;
        count(chunk.len());
    }
    Ok(())
}
