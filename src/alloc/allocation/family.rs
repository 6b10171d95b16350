//! A dual allocation's two families (RFC 8656 §7.2, §8): each relayed address with its own
//! lifetime, the socket of a peer's family, and a family deleted or expired alone.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{Allocation, ExtraRelay, refresh_expiry};
use crate::time::Millis;

impl<S> Allocation<S> {
    /// Makes it a dual allocation (RFC 8656 §7.2): `extra` is its relay of the other family, granted
    /// the same lifetime as the first.
    pub fn with_extra_relay(mut self, extra: ExtraRelay<S>) -> Self {
        extra.expires.store(self.expires.load(Relaxed), Relaxed);
        self.extra = Some(Box::new(extra));
        self
    }

    /// The relay socket that reaches `peer`: the one of its family, `None` when the allocation has
    /// no live relayed address of that family at `now` (RFC 8656 §10.2, §12.2: 443). A dual
    /// allocation's family may have expired or been deleted alone (§8); a single-family one's
    /// lifetime is checked by [`Allocation::is_live`].
    #[inline]
    pub fn socket_for(&self, peer: IpAddr, now: Millis) -> Option<&S> {
        let own_family = peer.is_ipv4() == self.relay_is_v4;
        match &self.extra {
            None => own_family.then_some(&self.socket),
            Some(_) if own_family => (self.expires.load(Relaxed) > now).then_some(&self.socket),
            Some(e) => (e.relay_addr.is_ipv4() == peer.is_ipv4() && e.expires() > now).then_some(&e.socket),
        }
    }

    /// The expiry and socket of the relayed address of `family_of`'s family, live or not.
    fn family(&self, family_of: IpAddr) -> Option<(&AtomicU64, &S)> {
        if family_of.is_ipv4() == self.relay_is_v4 {
            return Some((&self.expires, &self.socket));
        }
        let e = self.extra.as_ref().filter(|e| e.relay_addr.is_ipv4() == family_of.is_ipv4())?;
        Some((&e.expires, &e.socket))
    }

    /// The expiry and socket of the relayed address of the family other than `family_of`'s.
    fn other_family(&self, family_of: IpAddr) -> Option<(&AtomicU64, &S)> {
        let e = self.extra.as_ref()?;
        if family_of.is_ipv4() == self.relay_is_v4 {
            Some((&e.expires, &e.socket))
        } else {
            Some((&self.expires, &self.socket))
        }
    }

    /// RFC 8656 §8: a Refresh with LIFETIME 0 and REQUESTED-ADDRESS-FAMILY deletes that family's
    /// relayed address of a dual allocation alone. Returns its socket, for the driver to stop, when
    /// the other relayed address lives on at `now`; `None` (nothing changed) when the allocation is
    /// not a dual one or that would leave it without a relayed address: delete the allocation then.
    pub fn delete_relay_of_family(&self, family_of: IpAddr, now: Millis) -> Option<&S> {
        let (other, _) = self.other_family(family_of)?;
        if other.load(Relaxed) <= now {
            return None;
        }
        let (expires, socket) = self.family(family_of)?;
        (expires.swap(0, Relaxed) != 0).then_some(socket)
    }

    /// The sweep's part of RFC 8656 §8 for a dual allocation: when one family's lifetime ran out at
    /// `now` and the other's did not, that relayed address ends alone. Returns its socket, once, for
    /// the driver to stop; `None` otherwise (both expired: the allocation ends whole).
    pub fn expire_family(&self, now: Millis) -> Option<&S> {
        let e = self.extra.as_ref()?;
        let (primary, extra) = (self.expires.load(Relaxed), e.expires());
        let (expired, at, socket) = match (primary > now, extra > now) {
            (true, false) if extra != 0 => (&e.expires, extra, &e.socket),
            (false, true) if primary != 0 => (&self.expires, primary, &self.socket),
            _ => return None,
        };
        expired.compare_exchange(at, 0, Relaxed, Relaxed).is_ok().then_some(socket)
    }

    /// Whether the allocation has a live relayed address of `peer`'s family at `now`.
    #[inline]
    pub fn has_family_of(&self, peer: IpAddr, now: Millis) -> bool {
        self.socket_for(peer, now).is_some()
    }

    /// The relay sockets: the allocation's own, then a dual allocation's second one.
    pub fn sockets(&self) -> impl Iterator<Item = &S> {
        std::iter::once(&self.socket).chain(self.extra.as_ref().map(|e| &e.socket))
    }

    /// A Refresh with REQUESTED-ADDRESS-FAMILY (RFC 8656 §8.2): the relayed address of
    /// `family_of`'s family alone expires at `at`, if it is live at `now`.
    pub fn set_family_expires(&self, family_of: IpAddr, at: Millis, now: Millis) {
        if let Some((expires, _)) = self.family(family_of) {
            refresh_expiry(expires, at, now);
        }
    }
}
