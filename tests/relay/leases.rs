//! Fleet leases through the drivers (issue #16): two in-process servers sharing one allocation
//! ledger hold each new Allocate, ask the ledger off the worker, and answer when the verdict is
//! in — over UDP and TCP — so a user quota of 1 holds across both; a ledger that never answers
//! leaves the node to decide under its own quota after `LEDGER_TIMEOUT`.
#![cfg(feature = "runtime")]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{TurnFixture, bounded};
use switchback::client::ClientError;
use switchback::client::turn::Credentials;
use switchback::server::{AllocationLedger, LeaseRequest, LeaseVerdict, ServerOptions, Transport};

/// A ledger two servers share, as a fleet's Redis would be: leases per user, checked and added in
/// one step, after a little latency.
#[derive(Default)]
struct SharedLedger {
    leases: Mutex<HashMap<Arc<str>, HashSet<u64>>>,
    asked: AtomicUsize,
    released: AtomicUsize,
}

impl AllocationLedger for SharedLedger {
    fn admit(&self, request: LeaseRequest) -> Pin<Box<dyn Future<Output = LeaseVerdict> + Send + 'static>> {
        self.asked.fetch_add(1, SeqCst);
        let mut leases = self.leases.lock().unwrap();
        let held = leases.entry(Arc::clone(&request.user)).or_default();
        let verdict = if request.limits.per_user != 0 && held.len() >= request.limits.per_user as usize {
            LeaseVerdict::UserQuota
        } else {
            held.insert(request.id);
            LeaseVerdict::Granted
        };
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await; // the round trip to the ledger
            verdict
        })
    }

    fn release(&self, request: LeaseRequest) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.released.fetch_add(1, SeqCst);
        if let Some(held) = self.leases.lock().unwrap().get_mut(&request.user) {
            held.remove(&request.id);
        }
        Box::pin(async {})
    }
}

/// A ledger that never answers (an unreachable Redis).
struct SilentLedger;

impl AllocationLedger for SilentLedger {
    fn admit(&self, _: LeaseRequest) -> Pin<Box<dyn Future<Output = LeaseVerdict> + Send + 'static>> {
        Box::pin(std::future::pending())
    }

    fn release(&self, _: LeaseRequest) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        Box::pin(async {})
    }
}

fn options(user_quota: u32) -> ServerOptions {
    ServerOptions::default().with(|o| {
        o.allow_loopback_peers = true;
        o.user_quota = user_quota;
    })
}

fn creds(fixture: &TurnFixture, user: &str) -> Credentials {
    let (username, password) = fixture.rest_credentials(user);
    Credentials::new(username, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_quota_holds_across_two_servers_sharing_a_ledger() {
    bounded(async {
        let ledger = Arc::new(SharedLedger::default());
        let (a, b) = (TurnFixture::start(options(1)).await, TurnFixture::start(options(1)).await);
        for fixture in [&a, &b] {
            assert!(switchback::io::lease::use_ledger(&fixture.server, ledger.clone()));
            assert!(!switchback::io::lease::use_ledger(&fixture.server, ledger.clone()), "set once");
        }
        let bob = a.allocate(Transport::Udp, creds(&a, "bob")).await.expect("bob's first allocation");
        let id = a.server.allocations().all()[0].id().0;
        assert_eq!(ledger.leases.lock().unwrap()["bob"], HashSet::from([id]), "the lease is the allocation");
        // Node B has no allocation of bob's, yet the fleet's quota refuses him: over UDP and TCP.
        for transport in [Transport::Udp, Transport::Tcp] {
            match b.allocate(transport, creds(&b, "bob")).await {
                Err(ClientError::ErrorResponse { code: 486, .. }) => {}
                other => panic!("{transport:?}: expected 486, got {:?}", other.map(|c| c.relayed_addr())),
            }
        }
        assert_eq!(b.server.allocations().len(), 0);
        // Another user is served on B, over TCP too; the verdict's answer goes down the stream.
        let carol = b.allocate(Transport::Tcp, creds(&b, "carol")).await.expect("carol over TCP");
        assert_eq!(b.server.allocations().len(), 1);
        assert_eq!(ledger.asked.load(SeqCst), 4);
        assert_eq!(ledger.released.load(SeqCst), 0);
        // The allocations relay as any other.
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        bob.create_permission(peer.local_addr().unwrap()).await.unwrap();
        bob.send_to(b"leased", peer.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"leased"[..], bob.relayed_addr()));
        drop(carol);
        assert_eq!((a.server.leases_pending(), b.server.leases_pending()), (0, 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_ledger_leaves_the_node_to_decide_after_the_timeout() {
    bounded(async {
        let fixture = TurnFixture::start(options(1)).await;
        assert!(switchback::io::lease::use_ledger(&fixture.server, Arc::new(SilentLedger)));
        let start = Instant::now();
        // Our client retransmits meanwhile (RFC 8489 §6.2.1): each retransmission is dropped.
        let client = fixture.allocate(Transport::Udp, creds(&fixture, "bob")).await.expect("allocated after all");
        assert!(start.elapsed() >= switchback::io::lease::LEDGER_TIMEOUT, "{:?}", start.elapsed());
        assert_eq!(fixture.server.allocations().len(), 1);
        // The node's own quota still holds.
        match fixture.allocate(Transport::Udp, creds(&fixture, "bob")).await {
            Err(ClientError::ErrorResponse { code: 486, .. }) => {}
            other => panic!("expected 486, got {:?}", other.map(|c| c.relayed_addr())),
        }
        drop(client);
    })
    .await;
}
