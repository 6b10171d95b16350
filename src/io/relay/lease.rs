//! The driver's half of held requests: an Allocate the core holds for its fleet lease (issue #16)
//! is taken to the fleet's [`AllocationLedger`], a request whose user the embedder's credential
//! hook is looking up (issue #18) to the hook's fetch — on a task of its own, never on the worker
//! that read it — and the answer goes to the client when the verdict is in.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::debug;

use super::{TurnServer, UdpRelay};
use crate::proto::stun::MAX_MESSAGE_LEN;
use crate::server::{AllocationLedger, Hold, LeaseVerdict, Outcome};

/// How long the ledger may take before the Allocate goes on under the node's own quota
/// ([`LeaseVerdict::Unavailable`]): well under a client's first retransmission timeout's worth
/// of waiting (RFC 8489 §6.2.1: 500 ms, then doubling).
pub const LEDGER_TIMEOUT: Duration = Duration::from_millis(1500);

/// The ledger a driver asks, set once.
#[derive(Default)]
pub struct LedgerSlot(OnceLock<Arc<dyn AllocationLedger>>);

impl std::fmt::Debug for LedgerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "LedgerSlot(set)" } else { "LedgerSlot(empty)" })
    }
}

impl LedgerSlot {
    /// Sets the ledger; false when one was set already.
    pub fn set(&self, ledger: Arc<dyn AllocationLedger>) -> bool {
        self.0.set(ledger).is_ok()
    }

    /// The ledger, if set.
    pub fn get(&self) -> Option<&Arc<dyn AllocationLedger>> {
        self.0.get()
    }
}

/// Turns fleet leases on for `server`: every new Allocate asks `ledger` first. Returns false when
/// a ledger was set already (the first stays).
pub fn use_ledger(server: &TurnServer, ledger: Arc<dyn AllocationLedger>) -> bool {
    let set = server.driver().ledger.set(ledger);
    if set {
        server.set_fleet_leases(true);
    }
    set
}

impl UdpRelay {
    /// Resolves held request `id` ([`Outcome::Pending`]) on a task of its own — asks the fleet's
    /// ledger for an Allocate's lease, or runs the credential hook's lookup — then runs it again
    /// and sends the answer to its client (through the UDP listener or the client's stream, as
    /// peer data goes). Must run inside a tokio runtime. Without a ledger an Allocate goes on at
    /// once under the node's own quota.
    pub(crate) fn resolve_held(server: &Arc<TurnServer>, id: u64) {
        ask(server, id);
    }
}

/// How long the embedder's credential hook may take to look a user up before the request is
/// answered as from an unknown user (401).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

fn ask(server: &Arc<TurnServer>, id: u64) {
    match server.held(id) {
        Some(Hold::Lease(_)) => ask_lease(server, id),
        Some(Hold::Credentials { username, client, unix_now }) => look_up(server, id, username, client, unix_now),
        None => {}
    }
}

/// Runs the credential hook's fetch for held request `id`, then the request again.
fn look_up(server: &Arc<TurnServer>, id: u64, username: String, client: std::net::SocketAddr, unix_now: u64) {
    let hook = server.authenticator().and_then(|a| a.config().hook.clone());
    let server = Arc::clone(server);
    tokio::spawn(async move {
        if let Some(hook) = hook {
            let _ = tokio::time::timeout(LOOKUP_TIMEOUT, hook.0.fetch(username, client, unix_now)).await;
        }
        let mut out = vec![0u8; MAX_MESSAGE_LEN];
        let Some(resumed) = server.resume(Instant::now(), id, &mut out) else { return };
        match resumed.outcome {
            // An Allocate now waits for its fleet lease.
            Outcome::Pending(next) => ask(&server, next),
            Outcome::Reply(n) => {
                if let Some(reply) = out.get(..n)
                    && !server.driver().send_to_client(&resumed.five_tuple, reply)
                {
                    debug!(client = %resumed.five_tuple.client, "the answer to a held request could not be sent");
                }
            }
            _ => {}
        }
    });
}

fn ask_lease(server: &Arc<TurnServer>, id: u64) {
    let Some(request) = server.lease_request(id) else { return };
    let ledger = server.driver().ledger.get().cloned();
    let server = Arc::clone(server);
    tokio::spawn(async move {
        let verdict = match &ledger {
            Some(ledger) => tokio::time::timeout(LEDGER_TIMEOUT, ledger.admit(request.clone()))
                .await
                .unwrap_or(LeaseVerdict::Unavailable),
            None => LeaseVerdict::Unavailable,
        };
        let mut out = vec![0u8; MAX_MESSAGE_LEN];
        let resumed = server.resume_allocate(Instant::now(), id, verdict, &mut out);
        let allocated = resumed.is_some_and(|r| r.allocated);
        if verdict == LeaseVerdict::Granted
            && !allocated
            && let Some(ledger) = &ledger
        {
            ledger.release(request.clone()).await;
        }
        let Some(resumed) = resumed else { return };
        let Outcome::Reply(n) = resumed.outcome else { return };
        let Some(reply) = out.get(..n) else { return };
        if !server.driver().send_to_client(&resumed.five_tuple, reply) {
            debug!(client = %resumed.five_tuple.client, "the answer to a held Allocate could not be sent");
        }
    });
}
