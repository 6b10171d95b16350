//! The background task that keeps an allocation alive (RFC 8656 §8), with its permissions (§9) and
//! channel bindings (§12), and reports what it cannot keep (`state.rs`): a Refresh answered with
//! an error fails the allocation at once, one that gets no answer is tried again with backoff
//! until the lifetime the server last granted runs out. The periods are the sans-IO core's
//! ([`crate::client_core`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::state::verdict;
use super::{Inner, lock};
use crate::client_core::{CHANNEL_REFRESH, PERMISSION_REFRESH, RefreshSchedule};

/// Refreshes the allocation every [`refresh_period`] (at once when the reader saw ICMP port
/// unreachable: the Refresh tells whether the server is gone), permissions every 4 minutes and
/// channels every 8; ends when the client fails or is dropped (which aborts it).
pub(super) async fn keep_alive(inner: Arc<Inner>, lifetime: u32, every: Option<Duration>) {
    let mut changes = inner.health.subscribe();
    let start = Instant::now();
    let mut schedule = RefreshSchedule::new(start.into_std(), lifetime, every);
    let (mut next_perm, mut next_chan) = (start + PERMISSION_REFRESH, start + CHANNEL_REFRESH);
    loop {
        let wake = Instant::from_std(schedule.next()).min(next_perm).min(next_chan);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = inner.wake.notified() => schedule.refresh_now(Instant::now().into_std()),
            _ = changes.changed() => {}
        }
        if inner.health.check().is_err() {
            return;
        }
        let now = Instant::now();
        if now.into_std() >= schedule.next() {
            match inner.refresh(schedule.granted()).await {
                Ok(lifetime) => schedule.refreshed(now.into_std(), lifetime),
                Err(e) => match verdict(&e) {
                    Some(reason) => return inner.health.fail(reason),
                    None => {
                        if let Err(reason) = schedule.unanswered(Instant::now().into_std()) {
                            return inner.health.fail(reason);
                        }
                    }
                },
            }
        }
        if now >= next_chan {
            let channels: Vec<(SocketAddr, u16)> = lock(&inner.peers).channels.iter().map(|(p, n)| (*p, *n)).collect();
            for (peer, n) in channels {
                let outcome = inner.channel_bind(n, peer).await;
                inner.health.peer_refreshed(peer, Some(n), outcome);
            }
            next_chan = now + CHANNEL_REFRESH;
        }
        if now >= next_perm {
            let ips: Vec<IpAddr> = lock(&inner.peers).permissions.clone();
            for ip in ips {
                let peer = SocketAddr::new(ip, 0);
                let outcome = inner.create_permission(peer).await;
                inner.health.peer_refreshed(peer, None, outcome);
            }
            next_perm = now + PERMISSION_REFRESH;
        }
    }
}
