//! Open connections per source (an IPv4 address, an IPv6 /64: [`source_key`]) with a cap: the
//! TCP/TLS listeners' per-source cap (behind a balancer, per PROXY header client) and the HTTP
//! faces'. A slot is given back when dropped; no entry is kept for a source without one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::source_key;

/// Open connections per source.
#[derive(Debug, Default)]
pub struct SourceSlots(Mutex<HashMap<IpAddr, usize>>);

impl SourceSlots {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A panic elsewhere while holding it leaves plain counters: still usable.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for the source of `ip` unless it holds `max` already.
    pub fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<SourceSlot> {
        let key = source_key(ip);
        let mut counts = self.counts();
        let open = counts.entry(key).or_insert(0);
        if *open >= max {
            if *open == 0 {
                counts.remove(&key);
            }
            return None;
        }
        *open += 1;
        Some(SourceSlot { slots: Arc::clone(self), key })
    }
}

/// One open connection of a source in [`SourceSlots`].
#[derive(Debug)]
pub struct SourceSlot {
    slots: Arc<SourceSlots>,
    key: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts();
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_slots_are_capped_and_given_back() {
        let count = Arc::new(SourceSlots::default());
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let a = count.take(ip, 2).unwrap();
        let b = count.take(ip, 2).unwrap();
        assert!(count.take(ip, 2).is_none());
        assert!(count.take("203.0.113.8".parse().unwrap(), 2).is_some());
        drop(a);
        let c = count.take(ip, 2).unwrap();
        drop((b, c));
        assert!(count.counts().is_empty(), "no entry is left behind");
        assert!(count.take(ip, 0).is_none());
        assert!(count.counts().is_empty());
    }

    /// One IPv6 /64 is one source.
    #[test]
    fn an_ipv6_64_is_one_source() {
        let slots = Arc::new(SourceSlots::default());
        let _a = slots.take("2001:db8::1".parse().unwrap(), 1).unwrap();
        assert!(slots.take("2001:db8::2".parse().unwrap(), 1).is_none());
        assert!(slots.take("2001:db8:0:1::1".parse().unwrap(), 1).is_some());
    }
}
