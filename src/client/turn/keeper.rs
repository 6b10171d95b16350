//! The background task that keeps an allocation alive (RFC 8656 §8), with its permissions (§9) and
//! channel bindings (§12), and reports what it cannot keep (`state.rs`): a Refresh answered with
//! an error fails the allocation at once, one that gets no answer is tried again with backoff
//! until the lifetime the server last granted runs out. The periods are the sans-IO core's
//! ([`crate::client_core`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::state::{LostReason, verdict};
use super::{Inner, lock};
use crate::client_core::refresh_period;
use crate::client_core::{CHANNEL_REFRESH, FIRST_BACKOFF, MAX_BACKOFF, PERMISSION_REFRESH};

/// Refreshes the allocation every [`refresh_period`] (at once when the reader saw ICMP port
/// unreachable: the Refresh tells whether the server is gone), permissions every 4 minutes and
/// channels every 8; ends when the client fails or is dropped (which aborts it).
pub(super) async fn keep_alive(inner: Arc<Inner>, lifetime: u32, every: Option<Duration>) {
    let mut changes = inner.health.subscribe();
    let start = Instant::now();
    let mut granted = lifetime;
    let mut expires = start + Duration::from_secs(u64::from(granted));
    let mut next_refresh = start + refresh_period(every, granted);
    let (mut next_perm, mut next_chan) = (start + PERMISSION_REFRESH, start + CHANNEL_REFRESH);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let wake = next_refresh.min(next_perm).min(next_chan);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = inner.wake.notified() => next_refresh = Instant::now(),
            _ = changes.changed() => {}
        }
        if inner.health.check().is_err() {
            return;
        }
        let now = Instant::now();
        if now >= next_refresh {
            match inner.refresh(granted).await {
                Ok(lifetime) => {
                    granted = lifetime;
                    expires = now + Duration::from_secs(u64::from(granted));
                    next_refresh = now + refresh_period(every, granted);
                    backoff = FIRST_BACKOFF;
                }
                Err(e) => match verdict(&e) {
                    Some(reason) => return inner.health.fail(reason),
                    None if Instant::now() >= expires => return inner.health.fail(LostReason::Expired),
                    None => {
                        next_refresh = (Instant::now() + backoff).min(expires);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
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
