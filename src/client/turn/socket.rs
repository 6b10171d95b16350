//! A relayed socket (issue #18 §4): a [`TurnClient`]'s allocation used like a UDP socket bound at
//! the relayed address. [`RelayedSocket::send_to`] installs what RFC 8656 asks for on first use —
//! the permission for the peer's IP (§9) before the first datagram, a channel (§12) once a peer
//! turns out to be a flow — and the client's keeper refreshes both in the background (permissions
//! every 4 minutes, before their 300 s run out; channels every 8, before 600 s). Failures are the
//! client's: [`TurnClient::state`] and [`TurnClient::peer_failures`].
//!
//! **Permissions** are per peer IP (RFC 8656 §9.1) and awaited: the first datagram to a new IP
//! waits for the CreatePermission, since a datagram sent before it is in would be dropped by the
//! server. Concurrent first sends to one IP share one CreatePermission (a `OnceCell` per IP); one
//! that fails is forgotten, so the next send asks again.
//!
//! **Channels** are per peer transport address (§12) and bound in the background after
//! [`SocketOptions::channel_after`] datagrams to that address (default 3): a ChannelData header is
//! 4 bytes where a Send indication costs 36 (IPv4: 20 header, 12 XOR-PEER-ADDRESS, 4 DATA), but a
//! ChannelBind is a round trip and a channel number (4,096 per allocation), which a one-off peer
//! should not spend. The datagrams before the binding is confirmed go as Send indications, so
//! nothing waits for it; one that fails leaves the peer on Send indications (a 437 fails the
//! client, as every request does).
//!
//! **Bounded**: at most [`SocketOptions::max_peers`] peer transport addresses (default 128, at
//! most 4,096, the channel numbers there are); a send to one more is refused with
//! [`ClientError::TooManyPeers`] and nothing is asked of the server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::OnceCell;

use super::{ClientState, TurnClient, lock};
use crate::client::ClientError;

/// The most peers a [`RelayedSocket`] takes: the channel numbers of RFC 8656 §12 (0x4000–0x4FFF).
pub const MAX_PEERS: usize = 4096;

/// How a [`RelayedSocket`] treats peers.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SocketOptions {
    /// The most peer transport addresses the socket sends to (capped at [`MAX_PEERS`]); a send to
    /// one more returns [`ClientError::TooManyPeers`].
    pub max_peers: usize,
    /// Bind a channel to a peer after this many datagrams to it (RFC 8656 §12; `Some(0)` and
    /// `Some(1)`: from the first one on); `None`: never, every datagram is a Send indication.
    pub channel_after: Option<u32>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions { max_peers: 128, channel_after: Some(3) }
    }
}

impl SocketOptions {
    /// The defaults with at most `max_peers` peers.
    pub fn with_max_peers(mut self, max_peers: usize) -> Self {
        self.max_peers = max_peers;
        self
    }

    /// The defaults with channels after `channel_after` datagrams (`None`: never).
    pub fn with_channel_after(mut self, channel_after: Option<u32>) -> Self {
        self.channel_after = channel_after;
        self
    }
}

/// Where a peer's channel stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Channel {
    None,
    Binding,
    Bound,
    /// The ChannelBind failed: the peer stays on Send indications.
    Failed,
}

/// One peer transport address the socket sent to.
struct Peer {
    sent: u32,
    channel: Channel,
}

#[derive(Default)]
struct Peers {
    /// One cell per peer IP: set once its permission is installed.
    permissions: HashMap<IpAddr, Arc<OnceCell<()>>>,
    addrs: HashMap<SocketAddr, Peer>,
}

struct Shared {
    client: TurnClient,
    options: SocketOptions,
    peers: Mutex<Peers>,
}

/// A TURN allocation used like a UDP socket bound at the relayed address: see the module docs
/// (`turn/socket.rs`). Cloning shares the socket.
#[derive(Clone)]
pub struct RelayedSocket {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RelayedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayedSocket").field("client", &self.shared.client).finish_non_exhaustive()
    }
}

impl TurnClient {
    /// This allocation as a [`RelayedSocket`] with default [`SocketOptions`].
    pub fn into_socket(self) -> RelayedSocket {
        RelayedSocket::new(self, SocketOptions::default())
    }
}

impl RelayedSocket {
    /// Wraps `client`'s allocation.
    pub fn new(client: TurnClient, mut options: SocketOptions) -> Self {
        options.max_peers = options.max_peers.min(MAX_PEERS);
        RelayedSocket { shared: Arc::new(Shared { client, options, peers: Mutex::new(Peers::default()) }) }
    }

    /// The client underneath: its state, failures, credentials, moves.
    pub fn client(&self) -> &TurnClient {
        &self.shared.client
    }

    /// The relayed transport address, where peers send to: this socket's address as they see it.
    pub fn relayed_addr(&self) -> SocketAddr {
        self.shared.client.relayed_addr()
    }

    /// The state of the allocation ([`TurnClient::state`]).
    pub fn state(&self) -> ClientState {
        self.shared.client.state()
    }

    /// Installs the permission for `peer`'s IP now (RFC 8656 §9), as the first send would: for a
    /// peer that sends first (a server waiting for a client). Counts towards
    /// [`SocketOptions::max_peers`].
    pub async fn permit(&self, peer: SocketAddr) -> Result<(), ClientError> {
        match self.admit(peer)?.pending {
            Some(cell) => self.permission(peer, &cell).await,
            None => Ok(()),
        }
    }

    /// Sends `data` to `peer` through the relay, first installing the permission for its IP if this
    /// socket has none (RFC 8656 §9), and binding a channel in the background once the peer has
    /// been sent [`SocketOptions::channel_after`] datagrams (§12). Returns `data.len()`.
    pub async fn send_to(&self, data: &[u8], peer: SocketAddr) -> Result<usize, ClientError> {
        let admitted = self.admit(peer)?;
        if let Some(cell) = &admitted.pending {
            self.permission(peer, cell).await?;
        }
        self.shared.client.send_to(data, peer).await?;
        if admitted.counting {
            self.sent(peer);
        }
        Ok(data.len())
    }

    /// Receives the next datagram a peer sent to the relayed address ([`TurnClient::recv_from`]:
    /// an error, not a wait, once the allocation is lost).
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), ClientError> {
        self.shared.client.recv_from(buf).await
    }

    /// [`RelayedSocket::recv_from`] for poll-based drivers ([`TurnClient::poll_recv_from`]).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Result<(usize, SocketAddr), ClientError>> {
        self.shared.client.poll_recv_from(cx, buf)
    }

    /// The peer transport addresses this socket has sent to (or permitted), at most
    /// [`SocketOptions::max_peers`].
    pub fn peers(&self) -> Vec<SocketAddr> {
        lock(&self.shared.peers).addrs.keys().copied().collect()
    }

    /// Whether a channel is bound to `peer` (RFC 8656 §12) by this socket.
    pub fn has_channel(&self, peer: SocketAddr) -> bool {
        lock(&self.shared.peers).addrs.get(&peer).is_some_and(|p| p.channel == Channel::Bound)
    }

    /// Makes room for `peer` if it is new and the cap allows; one lock, and in the steady state
    /// (permission in, channel bound or not wanted) nothing else: no clone, no second lock.
    fn admit(&self, peer: SocketAddr) -> Result<Admitted, ClientError> {
        let mut peers = lock(&self.shared.peers);
        let max = self.shared.options.max_peers;
        let channel = match peers.addrs.get(&peer) {
            Some(p) => p.channel,
            None => {
                if peers.addrs.len() >= max {
                    return Err(ClientError::TooManyPeers { max });
                }
                peers.addrs.insert(peer, Peer { sent: 0, channel: Channel::None });
                Channel::None
            }
        };
        let counting = channel == Channel::None && self.shared.options.channel_after.is_some();
        let cell = peers.permissions.entry(peer.ip()).or_default();
        let pending = (!cell.initialized()).then(|| Arc::clone(cell));
        Ok(Admitted { pending, counting })
    }

    /// Waits until `cell` (the permission of `peer`'s IP) is set: the first caller sends the
    /// CreatePermission, the others wait for it (RFC 8656 §9.1). A failure forgets the peer, so
    /// that it neither holds a place under the cap nor keeps a failed cell.
    async fn permission(&self, peer: SocketAddr, cell: &Arc<OnceCell<()>>) -> Result<(), ClientError> {
        let client = &self.shared.client;
        let outcome = cell.get_or_try_init(|| client.create_permission(peer)).await.map(|_| ());
        if outcome.is_err() {
            let mut peers = lock(&self.shared.peers);
            if peers.addrs.get(&peer).is_some_and(|p| p.sent == 0) {
                peers.addrs.remove(&peer);
            }
            let unused = !peers.addrs.keys().any(|a| a.ip() == peer.ip());
            if unused && peers.permissions.get(&peer.ip()).is_some_and(|c| Arc::ptr_eq(c, cell) && !c.initialized()) {
                peers.permissions.remove(&peer.ip());
            }
        }
        outcome
    }

    /// Sends `data` to `peer` now if that needs no wait: its permission is in, the client's leg is
    /// UDP and the socket takes it ([`TurnClient::try_send_to`]). `Ok(false)`: it did not go, use
    /// [`RelayedSocket::send_to`]; errors other than "not now" (the allocation lost) come back.
    #[cfg(feature = "quic")]
    pub(crate) fn try_send_now(&self, data: &[u8], peer: SocketAddr) -> Result<bool, ClientError> {
        let counting = {
            let peers = lock(&self.shared.peers);
            let permitted = peers.permissions.get(&peer.ip()).is_some_and(|c| c.initialized());
            match peers.addrs.get(&peer) {
                Some(p) if permitted => p.channel == Channel::None && self.shared.options.channel_after.is_some(),
                _ => return Ok(false),
            }
        };
        match self.shared.client.try_send_to(data, peer) {
            Ok(()) => {
                if counting {
                    self.sent(peer);
                }
                Ok(true)
            }
            Err(ClientError::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Unsupported) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Counts a datagram sent to `peer` and starts its ChannelBind when it is due (RFC 8656 §12.1).
    fn sent(&self, peer: SocketAddr) {
        let Some(after) = self.shared.options.channel_after else { return };
        let due = {
            let mut peers = lock(&self.shared.peers);
            let Some(p) = peers.addrs.get_mut(&peer) else { return };
            p.sent = p.sent.saturating_add(1);
            let due = p.channel == Channel::None && p.sent >= after;
            if due {
                p.channel = Channel::Binding;
            }
            due
        };
        if !due {
            return;
        }
        // Outside a tokio runtime there is nowhere to bind from: stay on Send indications.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.set_channel(peer, Channel::Failed);
            return;
        };
        let socket = self.clone();
        runtime.spawn(async move {
            let channel = match socket.shared.client.bind_channel(peer).await {
                Ok(_) => Channel::Bound,
                Err(e) => {
                    // A 437 fails the client; anything else leaves this peer on Send indications.
                    socket.shared.client.inner.health.judge(&e);
                    Channel::Failed
                }
            };
            socket.set_channel(peer, channel);
        });
    }

    fn set_channel(&self, peer: SocketAddr, channel: Channel) {
        if let Some(p) = lock(&self.shared.peers).addrs.get_mut(&peer) {
            p.channel = channel;
        }
    }
}

/// What [`RelayedSocket::admit`] found for a peer.
struct Admitted {
    /// The permission cell to wait on, when the permission is not in yet.
    pending: Option<Arc<OnceCell<()>>>,
    /// Whether datagrams to the peer still count toward its channel binding.
    counting: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_capped_by_the_channel_numbers() {
        let options = SocketOptions::default().with_max_peers(100_000).with_channel_after(None);
        assert_eq!(options.channel_after, None);
        assert_eq!(options.max_peers.min(MAX_PEERS), MAX_PEERS);
        assert_eq!(SocketOptions::default().max_peers, 128);
    }
}
