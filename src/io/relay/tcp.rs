//! RFC 6062 on the relay side: connecting to peers from the relayed address (Connect, §5.2)
//! and accepting peers on it (§5.3).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::net::{TcpSocket, TcpStream};

use crate::alloc::Allocation;

use super::{RelayKind, RelaySocket, TurnServer};

/// Backlog of a TCP relayed address (peers connecting to it).
pub(super) const TCP_RELAY_BACKLOG: i32 = 64;

/// A TCP connection from the relayed address `local` to `peer` (RFC 6062 §5.2).
pub(super) async fn connect_from(local: SocketAddr, peer: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if local.is_ipv6() { TcpSocket::new_v6()? } else { TcpSocket::new_v4()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(local)?;
    socket.connect(peer).await
}

/// Accepts peer connections on a TCP relayed address until the allocation is deleted (RFC 6062
/// §5.3): each with a permission is announced to the client with a ConnectionAttempt and waits
/// for its ConnectionBind; the others are closed at once.
pub(super) async fn accept_loop(server: Arc<TurnServer>, allocation: Arc<Allocation<RelaySocket>>) {
    let RelayKind::Tcp { listener, .. } = &allocation.socket.kind else { return };
    let listener = Arc::clone(listener);
    let control = allocation.info().five_tuple;
    loop {
        if allocation.is_deleted() {
            break;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = allocation.socket.stop.notified() => break,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let mut out = [0u8; 128];
        let Some((id, n)) = server.peer_connected(Instant::now(), &allocation, peer, &mut out) else {
            continue;
        };
        let driver = server.driver();
        let _ = stream.set_nodelay(true);
        driver.lock_peer_connections().insert(id, stream);
        if !out.get(..n).is_some_and(|m| driver.send_on_stream(&control, m)) {
            driver.client_queue_drops.fetch_add(1, Relaxed);
        }
    }
}
