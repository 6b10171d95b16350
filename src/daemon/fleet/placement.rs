//! Placement in fleet mode (RFC 8489 §10, RFC 8656 §7.2): the alternate servers the core redirects
//! new allocations to — the least-loaded live sibling of each family from the last heartbeat, the
//! static `alternate-server` list where there is none.

use std::net::SocketAddr;
use std::sync::Mutex;

use crate::config::Config;
use crate::io::TurnServer;

/// The alternates in force: the static ones (`alternate-server`, `alternate-threshold`, swapped by
/// a reload) and the live siblings of the last heartbeat.
#[derive(Debug, Default)]
pub struct Placement {
    inner: Mutex<PlacementState>,
}

#[derive(Debug, Default)]
struct PlacementState {
    statics: Vec<SocketAddr>,
    threshold: u32,
    siblings: Vec<SocketAddr>,
}

impl Placement {
    pub(super) fn new(config: &Config) -> Placement {
        let state = PlacementState {
            statics: config.alternate_server.clone(),
            threshold: config.alternate_threshold,
            siblings: Vec::new(),
        };
        Placement { inner: Mutex::new(state) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlacementState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reload's `alternate-server` and `alternate-threshold`, applied to `server` at once.
    pub(in crate::daemon) fn set_static(&self, server: &TurnServer, statics: Vec<SocketAddr>, threshold: u32) {
        let mut state = self.lock();
        state.statics = statics;
        state.threshold = threshold;
        Self::apply(&state, server);
    }

    pub(super) fn set_siblings(&self, server: &TurnServer, siblings: Vec<SocketAddr>) {
        let mut state = self.lock();
        state.siblings = siblings;
        Self::apply(&state, server);
    }

    /// Siblings first; a family without one falls back to the static alternate.
    fn apply(state: &PlacementState, server: &TurnServer) {
        let mut chosen = state.siblings.clone();
        for v4 in [true, false] {
            if !chosen.iter().any(|a| a.is_ipv4() == v4)
                && let Some(s) = state.statics.iter().find(|a| a.is_ipv4() == v4)
            {
                chosen.push(*s);
            }
        }
        server.admission().set_alternate(&chosen, state.threshold);
    }
}
