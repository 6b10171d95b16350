//! Whether a new allocation is taken: graceful drain and load shedding with ALTERNATE-SERVER
//! (RFC 8489 §10, RFC 8656 §7.2). Only Allocate requests without an allocation are judged; every
//! other request, and the allocations that exist, carry on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use arc_swap::ArcSwapOption;

use super::request::Request;
use super::{Outcome, RelayDriver};
use crate::alloc::Transport;
use crate::policy::quota::QuotaLimits;
use crate::proto::stun::{AlternateDomain, AlternateServer, codes};

/// Why an Allocate is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 300 Try Alternate with ALTERNATE-SERVER (RFC 8489 §10): draining or over the threshold.
    Redirect(SocketAddr),
    /// 508 Insufficient Capacity (RFC 8656 §7.2): draining and no alternate server.
    Draining,
}

/// The admission state of a server: a drain flag, the alternate servers (one per family) and the
/// allocation count from which new allocations are sent to them. Set at start and changed by reload
/// and drain.
#[derive(Debug, Default)]
pub struct Admission {
    draining: AtomicBool,
    /// IPv4 and IPv6 alternate servers.
    alternate: [ArcSwapOption<SocketAddr>; 2],
    /// 0: no threshold.
    threshold: AtomicU32,
    /// `user-quota` and `total-quota` (0: no limit).
    per_user: AtomicU32,
    total: AtomicU32,
    /// ALTERNATE-DOMAIN for redirects over TLS (RFC 8489 §10).
    domain: ArcSwapOption<String>,
    /// Front mode: every new Allocate is redirected while an alternate of the client's family is
    /// known (RFC 8155 §6: an anycast address that hands clients to the relays behind it).
    redirect_all: AtomicBool,
}

fn family_index(addr: SocketAddr) -> usize {
    usize::from(!addr.is_ipv4())
}

impl Admission {
    /// Starts (or ends) a drain: new allocations are refused from now on.
    pub fn set_draining(&self, draining: bool) {
        self.draining.store(draining, Relaxed);
    }

    /// Front mode on or off: every new Allocate gets 300 with the alternate of the client's family
    /// when there is one (and is served here when there is none).
    pub fn set_redirect_all(&self, on: bool) {
        self.redirect_all.store(on, Relaxed);
    }

    /// Whether a drain is under way.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Relaxed)
    }

    /// The alternate servers (`alternate-server`, the first of each family counts) and the
    /// allocation count at which new allocations go to them (`alternate-threshold`, 0 = only while
    /// draining).
    pub fn set_alternate(&self, alternates: &[SocketAddr], threshold: u32) {
        for (i, slot) in self.alternate.iter().enumerate() {
            slot.store(alternates.iter().find(|a| family_index(**a) == i).copied().map(std::sync::Arc::new));
        }
        self.threshold.store(threshold, Relaxed);
    }

    /// The domain a TLS client checks the alternate server's certificate against (RFC 8489 §10,
    /// §14.16: ALTERNATE-DOMAIN), `None` for none.
    pub fn set_alternate_domain(&self, domain: Option<String>) {
        self.domain.store(domain.map(std::sync::Arc::new));
    }

    /// The alternate server for a client at `client` (same family, RFC 8489 §14.15), if any.
    pub fn alternate_for(&self, client: SocketAddr) -> Option<SocketAddr> {
        self.alternate.get(family_index(client)).and_then(|a| a.load().as_deref().copied())
    }

    /// The alternate servers configured, IPv4 first.
    pub fn alternates(&self) -> Vec<SocketAddr> {
        self.alternate.iter().filter_map(|a| a.load().as_deref().copied()).collect()
    }

    /// Sets the allocation quotas (`user-quota`, `total-quota`).
    pub fn set_quotas(&self, limits: QuotaLimits) {
        self.per_user.store(limits.per_user, Relaxed);
        self.total.store(limits.total, Relaxed);
    }

    /// The allocation quotas in force.
    pub fn quotas(&self) -> QuotaLimits {
        QuotaLimits { per_user: self.per_user.load(Relaxed), total: self.total.load(Relaxed) }
    }

    /// The decision for a new Allocate from `client` when `allocations` exist. Over the threshold
    /// without an alternate of the client's family the allocation is made here.
    pub fn refusal(&self, allocations: usize, client: SocketAddr) -> Option<Refusal> {
        let alternate = self.alternate_for(client);
        if self.is_draining() {
            return Some(alternate.map_or(Refusal::Draining, Refusal::Redirect));
        }
        let threshold = self.threshold.load(Relaxed);
        match alternate {
            Some(addr) if self.redirect_all.load(Relaxed) => Some(Refusal::Redirect(addr)),
            Some(addr) if threshold != 0 && allocations >= threshold as usize => Some(Refusal::Redirect(addr)),
            _ => None,
        }
    }
}

/// Answers a refused Allocate: 300 with ALTERNATE-SERVER, or 508; signed like any answer to an
/// authenticated request (RFC 8489 §10: the client then trusts the redirection). Over TLS the 300
/// carries ALTERNATE-DOMAIN too when one is set (§10: the name the client checks the alternate's
/// certificate against; over UDP and TCP it means nothing and is left out).
pub(super) fn refuse<D: RelayDriver>(req: &Request<'_, '_, D>, refusal: Refusal, out: &mut [u8]) -> Outcome {
    let server = req.server;
    match refusal {
        Refusal::Redirect(addr) => {
            server.stats.allocation_redirected();
            server.stats.error_sent(codes::TRY_ALTERNATE);
            let domain = match req.rx.transport {
                Transport::Tls => server.admission.domain.load_full(),
                Transport::Udp | Transport::Tcp => None,
            };
            super::response::error(req.msg, out, codes::TRY_ALTERNATE, req.trailer, |w| {
                w.add(&AlternateServer(addr))?;
                match &domain {
                    Some(name) => w.add(&AlternateDomain(name)),
                    None => Ok(()),
                }
            })
        }
        Refusal::Draining => {
            server.stats.allocation_refused_draining();
            req.error(out, codes::INSUFFICIENT_CAPACITY)
        }
    }
}
