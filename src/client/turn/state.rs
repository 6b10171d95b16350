//! What an application sees of a TURN client's health: [`ClientState`] (Live, or Failed with a
//! [`LostReason`]) on a `watch` channel, and the permissions and channel bindings the background
//! refresh could not renew ([`PeerFailure`]). The keeper (`keeper.rs`), the reader and the requests
//! report here; `recv_from` and `send_to` read it and return [`ClientError::AllocationLost`] once
//! the client has failed instead of waiting for data that cannot come.

use std::net::SocketAddr;

use tokio::sync::watch;

use super::TurnClient;
use crate::client::ClientError;
use crate::proto::stun::codes;

pub use crate::client_core::LostReason;

/// The state of a [`TurnClient`](super::TurnClient)'s allocation, as its background tasks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientState {
    /// The allocation was made and its refreshes are answered (or not yet due).
    Live,
    /// The allocation is lost, for good: [`TurnClient::recv_from`](super::TurnClient::recv_from)
    /// (once the data already queued is read), `send_to` and every request return
    /// [`ClientError::AllocationLost`]. Make a new allocation.
    Failed(LostReason),
}

/// A permission (RFC 8656 §9) or channel binding (§12) the background refresh could not renew.
/// It does not fail the allocation (a refused permission — 403 peer policy, 508 over quota — says
/// nothing about the allocation; a 437 does, and fails it): the peer is retried at the next period,
/// and until one succeeds the server lets the permission lapse after 300 s and the binding after
/// 600 s, so data to and from that peer stops.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerFailure {
    /// The peer: its IP with port 0 for a permission, its transport address for a channel.
    pub peer: SocketAddr,
    /// The channel number, for a channel binding.
    pub channel: Option<u16>,
    /// What the request returned.
    pub error: String,
}

/// The allocation's state and the peers whose refresh failed, shared by the tasks that report them.
pub(super) struct Health {
    state: watch::Sender<ClientState>,
    peers: std::sync::Mutex<Vec<PeerFailure>>,
}

impl Health {
    pub(super) fn new() -> Self {
        Health { state: watch::Sender::new(ClientState::Live), peers: std::sync::Mutex::new(Vec::new()) }
    }

    /// The state now.
    pub(super) fn state(&self) -> ClientState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of state.
    pub(super) fn subscribe(&self) -> watch::Receiver<ClientState> {
        self.state.subscribe()
    }

    /// The allocation is lost for `reason`; the first reason stays (a failed state never changes).
    pub(super) fn fail(&self, reason: LostReason) {
        self.state.send_if_modified(|state| match state {
            ClientState::Live => {
                *state = ClientState::Failed(reason);
                true
            }
            ClientState::Failed(_) => false,
        });
    }

    /// `Ok` while live, else the error every call returns from now on.
    pub(super) fn check(&self) -> Result<(), ClientError> {
        match &*self.state.borrow() {
            ClientState::Live => Ok(()),
            ClientState::Failed(reason) => Err(ClientError::AllocationLost { reason: reason.clone() }),
        }
    }

    /// Fails the allocation when `error` (to a request on it) says it is gone: a 437 (RFC 8656
    /// §8.3), or a closed stream (§3.1). Other errors leave it as it is.
    pub(super) fn judge(&self, error: &ClientError) {
        match error {
            ClientError::ErrorResponse { code: codes::ALLOCATION_MISMATCH, .. } => self.fail(LostReason::Gone),
            ClientError::Closed => self.fail(LostReason::ConnectionClosed),
            _ => {}
        }
    }

    /// Records the outcome of a background permission or channel refresh of `peer`.
    pub(super) fn peer_refreshed(&self, peer: SocketAddr, channel: Option<u16>, outcome: Result<(), ClientError>) {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.retain(|f| !(f.peer == peer && f.channel == channel));
        if let Err(e) = outcome {
            self.judge(&e);
            peers.push(PeerFailure { peer, channel, error: e.to_string() });
        }
    }

    /// The permissions and channels whose latest background refresh failed.
    pub(super) fn peer_failures(&self) -> Vec<PeerFailure> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl TurnClient {
    /// The allocation's state now: [`ClientState::Live`], or [`ClientState::Failed`] with what the
    /// background refresh or the connection saw.
    pub fn state(&self) -> ClientState {
        self.inner.health.state()
    }

    /// A receiver of every change of [`TurnClient::state`], to learn that the allocation is lost
    /// without a call failing (`changed().await`, then `borrow()`).
    pub fn state_changes(&self) -> watch::Receiver<ClientState> {
        self.inner.health.subscribe()
    }

    /// The permissions and channel bindings whose latest background refresh failed without
    /// failing the allocation (see [`PeerFailure`]); a later success removes the entry.
    pub fn peer_failures(&self) -> Vec<PeerFailure> {
        self.inner.health.peer_failures()
    }
}

/// What a failed keep-alive Refresh means (RFC 8656 §8.3): `Some` reason to give up now, `None` to
/// try again with backoff (no answer in time, or an I/O error that may pass).
pub(super) fn verdict(error: &ClientError) -> Option<LostReason> {
    Some(match error {
        ClientError::Timeout(_) => return None,
        ClientError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => LostReason::Unreachable,
        ClientError::Io(_) => return None,
        ClientError::ErrorResponse { code: codes::ALLOCATION_MISMATCH, .. } => LostReason::Gone,
        ClientError::ErrorResponse { code, reason } => LostReason::Refused { code: *code, reason: reason.clone() },
        ClientError::Closed => LostReason::ConnectionClosed,
        ClientError::AllocationLost { reason } => reason.clone(),
        other => LostReason::Local(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_stays() {
        let health = Health::new();
        let changes = health.subscribe();
        assert!(health.check().is_ok());
        health.fail(LostReason::Gone);
        health.fail(LostReason::ConnectionClosed);
        assert_eq!(health.state(), ClientState::Failed(LostReason::Gone));
        assert!(changes.has_changed().unwrap());
        let err = health.check().unwrap_err();
        assert!(matches!(err, ClientError::AllocationLost { reason: LostReason::Gone }), "{err:?}");
    }

    #[test]
    fn a_refused_permission_is_recorded_a_437_fails() {
        let health = Health::new();
        let peer = "192.0.2.9:0".parse().unwrap();
        let forbidden = ClientError::ErrorResponse { code: 403, reason: "Forbidden".into() };
        health.peer_refreshed(peer, None, Err(forbidden));
        assert_eq!(health.peer_failures().len(), 1);
        assert_eq!(health.state(), ClientState::Live);
        health.peer_refreshed(peer, None, Ok(()));
        assert!(health.peer_failures().is_empty());
        let gone = ClientError::ErrorResponse { code: 437, reason: "Allocation Mismatch".into() };
        health.peer_refreshed(peer, None, Err(gone));
        assert_eq!(health.state(), ClientState::Failed(LostReason::Gone));
    }

    #[test]
    fn timeouts_are_retried_the_rest_is_final() {
        assert_eq!(verdict(&ClientError::Timeout(std::time::Duration::from_secs(1))), None);
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(verdict(&ClientError::Io(refused)), Some(LostReason::Unreachable));
        let unreachable = std::io::Error::from(std::io::ErrorKind::NetworkUnreachable);
        assert_eq!(verdict(&ClientError::Io(unreachable)), None);
        let stale = ClientError::ErrorResponse { code: 401, reason: String::new() };
        assert_eq!(verdict(&stale), Some(LostReason::Refused { code: 401, reason: String::new() }));
        let gone = ClientError::ErrorResponse { code: 437, reason: String::new() };
        assert_eq!(verdict(&gone), Some(LostReason::Gone));
    }
}
