//! The driver's half of fleet leases (issue #16): an Allocate the core holds
//! ([`Outcome::Pending`]) is taken to the fleet's [`AllocationLedger`] on a task of its own, never
//! on the worker that read it, and its answer goes to the client when the verdict is in.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::debug;

use super::{TurnServer, UdpRelay};
use crate::proto::stun::MAX_MESSAGE_LEN;
use crate::server::{AllocationLedger, LeaseVerdict, Outcome};

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
    /// Asks the ledger for held Allocate `id` ([`Outcome::Pending`]) on a task of its own and
    /// sends the answer to its client (through the UDP listener or the client's stream, as peer
    /// data goes). Must run inside a tokio runtime. Without a ledger the Allocate goes on at once
    /// under the node's own quota.
    pub(crate) fn ask_ledger(server: &Arc<TurnServer>, id: u64) {
        ask(server, id);
    }
}

fn ask(server: &Arc<TurnServer>, id: u64) {
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
