//! The event sink of the stateful harness: it keeps the ids of the allocations the events say are
//! live, so `check` can hold them against the table — every allocation is announced once when made
//! and once when it ends, and nothing is reported about one that does not exist.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::server::{Event, EventSink};

/// What the events said, and what they got wrong.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    live: HashSet<u64>,
    violations: Vec<String>,
}

impl Ledger {
    /// The ids the events say are live, and the violations seen so far.
    pub(super) fn read(&self) -> (HashSet<u64>, Vec<String>) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.live.clone(), state.violations.clone())
    }
}

impl EventSink for Ledger {
    fn event(&self, event: &Event<'_>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let violation = match event {
            Event::Allocated { session, .. } => {
                (!state.live.insert(session.id.0)).then(|| format!("{} announced twice", session.id))
            }
            Event::Deleted { session, at_ms, .. } => {
                let gone = !state.live.remove(&session.id.0);
                let early = *at_ms < session.started_ms;
                (gone || early).then(|| format!("{} ended (gone {gone}, before its start {early})", session.id))
            }
            Event::Refreshed { session, .. }
            | Event::Permission { session, .. }
            | Event::Channel { session, .. }
            | Event::PeerDenied { session, .. }
            | Event::TcpConnectionBound { session, .. }
            | Event::TcpConnectionClosed { session, .. } => {
                (!state.live.contains(&session.id.0)).then(|| format!("event about {}, which is not live", session.id))
            }
            Event::AuthFailed { .. } => None,
        };
        if let Some(v) = violation {
            state.violations.push(v);
        }
    }
}
