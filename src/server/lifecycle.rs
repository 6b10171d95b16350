//! How allocations end and what the event sink hears: the sweep (expiry, reservations, RFC 6062
//! connections, revocation and strict expiry), the deletions a driver or operator asks for, and
//! `Server::end`, the one place an allocation ends (its relay stops, its totals retire, the sink
//! hears the reason once).

use std::time::Instant;

use super::{EndReason, Event, EventSink, RelayDriver, Server, Session, Usage, allocate};
use crate::alloc::{Allocation, FiveTuple, Millis};
use crate::policy::revocation::Revocations;

impl<D: RelayDriver> Server<D> {
    /// Sends lifecycle events to `sink` from now on (once: `false`, and `sink` unused, when a sink
    /// is set already). Fan out to several consumers inside the sink.
    pub fn set_events(&self, sink: std::sync::Arc<dyn EventSink>) -> bool {
        self.events.set(sink).is_ok()
    }

    /// Whether an event sink is set (a caller may skip building what only an event needs).
    pub(super) fn has_events(&self) -> bool {
        self.events.get().is_some()
    }

    /// Emits the event `make` builds from `allocation`'s session, if a sink is set.
    pub(super) fn emit<S>(&self, allocation: &Allocation<S>, make: impl for<'s> FnOnce(Session<'s>) -> Event<'s>) {
        let Some(sink) = self.events.get() else { return };
        let auth = self.auth.load();
        let realm = auth.as_deref().map_or("", |a| a.realm());
        let session = Session::of(allocation, realm, self.unix_ms(allocation.created()));
        sink.event(&make(session));
    }

    /// Emits an event that concerns no allocation, if a sink is set.
    pub(super) fn emit_plain(&self, event: &Event<'_>) {
        if let Some(sink) = self.events.get() {
            sink.event(event);
        }
    }

    /// Core milliseconds as milliseconds since the Unix epoch.
    pub fn unix_ms(&self, at: Millis) -> u64 {
        self.epoch_unix.saturating_mul(1000).saturating_add(at)
    }

    /// An allocation already taken out of the table ends: its relay sockets stop, its totals move
    /// to the retired counters, its lifetime and bytes into the histograms of
    /// [`Stats::ended`], and the sink hears why with its usage.
    pub(super) fn end(&self, allocation: &Allocation<D::Socket>, reason: EndReason, at: Millis) {
        self.driver.stop(allocation);
        self.stats.allocation_deleted(&allocation.counters, at.saturating_sub(allocation.created()));
        self.emit(allocation, |session| Event::Deleted {
            session,
            reason,
            at_ms: self.unix_ms(at),
            usage: Usage::of(&allocation.counters),
        });
    }

    /// Expires allocations, permissions, channels and port reservations, and tears down the
    /// allocations of revoked users (and, with `strict_expiry`, of expired REST credentials). Call
    /// about once a second.
    pub fn sweep(&self, now: Instant) {
        let at = self.millis(now);
        for a in self.table.sweep(at, |a, socket| self.driver.stop_relay(a, socket)) {
            self.end(&a, EndReason::Expired, at);
        }
        allocate::sweep_reservations(self, at);
        self.tickets.sweep();
        self.pending.sweep(at);
        self.sweep_connections(at);
        // Revoked users, and with strict expiry expired REST credentials.
        self.tear_down(now, self.options.strict_expiry);
        self.bandwidth.sweep();
    }

    /// Deletes the allocation of a 5-tuple, if any, for `reason`: its TCP/TLS connection closed
    /// (RFC 8656 §3.1), an operator deleted it, or its lifetime ran out. Returns whether one was.
    pub fn close_allocation(&self, now: Instant, five_tuple: &FiveTuple, reason: EndReason) -> bool {
        match self.table.remove(five_tuple) {
            Some(a) => {
                self.end(&a, reason, self.millis(now));
                true
            }
            None => false,
        }
    }

    /// Deletes every allocation (shutdown).
    pub fn close_all(&self, now: Instant) {
        let at = self.millis(now);
        for a in self.table.all() {
            if let Some(a) = self.table.remove(&a.info().five_tuple) {
                self.end(&a, EndReason::Shutdown, at);
            }
        }
    }

    /// Replaces the revocation list (the daemon does on SIGHUP). New requests of a revoked user are
    /// refused at once; its live allocations go at the next sweep, or now with [`Server::revoke_now`].
    pub fn set_revocations(&self, revocations: impl Revocations + 'static) {
        self.revocations.store(std::sync::Arc::new(Box::new(revocations)));
    }

    /// Tears down every live allocation of a revoked user now (its relay socket closes); returns
    /// how many.
    pub fn revoke_now(&self, now: Instant) -> usize {
        self.tear_down(now, false)
    }

    /// Whether the user behind `username` (see [`crate::auth::Authenticator::user_of`]) is revoked.
    pub fn is_revoked(&self, username: &str) -> bool {
        let revocations = self.revocations.load();
        revocations.may_revoke() && self.revoked_by(&***revocations, username)
    }

    /// Whether `entry` itself (a user name or an access token's `jti`) is on the revocation list,
    /// as the token service asks (`http::api`).
    pub fn is_revoked_entry(&self, entry: &str) -> bool {
        let revocations = self.revocations.load();
        revocations.may_revoke() && revocations.is_revoked(entry, entry)
    }

    pub(super) fn revoked_by(&self, revocations: &dyn Revocations, username: &str) -> bool {
        let auth = self.auth.load();
        let user = auth.as_ref().map_or(username, |a| a.user_of(username));
        revocations.is_revoked(user, username)
    }

    /// Removes the allocations of revoked users and, with `strict_expiry`, those whose REST
    /// credential has expired (valid through its expiry second, as authentication judges it).
    pub(super) fn tear_down(&self, now: Instant, strict_expiry: bool) -> usize {
        let revocations = self.revocations.load();
        let revoking = revocations.may_revoke();
        if !revoking && !strict_expiry {
            return 0;
        }
        let unix = self.unix(now);
        let mut removed = 0;
        for a in self.table.all() {
            let info = a.info();
            let expired = strict_expiry && info.rest_expiry.is_some_and(|e| e < unix);
            let revoked = !expired && revoking && self.revoked_by(&***revocations, &info.username);
            if !(expired || revoked) {
                continue;
            }
            if let Some(a) = self.table.remove(&info.five_tuple) {
                let reason = if revoked {
                    self.stats.allocation_revoked();
                    EndReason::Revoked
                } else {
                    self.stats.allocation_credential_expired();
                    EndReason::CredentialExpired
                };
                self.end(&a, reason, self.millis(now));
                removed += 1;
            }
        }
        removed
    }
}
