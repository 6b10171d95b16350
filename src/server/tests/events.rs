//! The lifecycle events the core emits (see `server::events`): one per edge, the right reason, the
//! relayed totals on deletion, and nothing for a challenge.

use std::sync::{Arc, Mutex};

use super::*;

/// Keeps each event as one line of text: what a test compares.
#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<String>>);

impl EventSink for Recorder {
    fn event(&self, event: &Event<'_>) {
        let line = match event {
            Event::Allocated { session, lifetime_secs } => {
                format!("allocated {} {} {} {lifetime_secs}", session.user, session.auth.as_str(), session.id)
            }
            Event::Refreshed { session, lifetime_secs, .. } => format!("refreshed {} {lifetime_secs}", session.id),
            Event::Deleted { session, reason, usage, at_ms } => format!(
                "deleted {} {reason} {}/{} {}/{} {}ms",
                session.id,
                usage.to_peer_packets,
                usage.to_peer_bytes,
                usage.to_client_packets,
                usage.to_client_bytes,
                at_ms - session.started_ms
            ),
            Event::Permission { session, peer } => format!("permission {} {peer}", session.id),
            Event::Channel { session, number, peer } => format!("channel {} {number:#x} {peer}", session.id),
            Event::PeerDenied { session, peer } => format!("denied {} {peer}", session.id),
            Event::AuthFailed { username, reason, .. } => format!("auth {username:?} {reason}"),
            Event::TcpConnectionBound { session, connection_id, .. } => format!("bound {} {connection_id}", session.id),
            Event::TcpConnectionClosed { session, to_peer_bytes, to_client_bytes, .. } => {
                format!("closed {} {to_peer_bytes}/{to_client_bytes}", session.id)
            }
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Recorder {
    pub(super) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

pub(super) fn recorded(h: &Harness) -> Arc<Recorder> {
    let recorder = Arc::new(Recorder::default());
    assert!(h.server.set_events(recorder.clone()));
    assert!(!h.server.set_events(Arc::new(Recorder::default())), "one sink");
    recorder
}

#[test]
fn a_session_from_allocate_to_client_delete_with_its_usage() {
    let mut h = Harness::new(Harness::default_options());
    let events = recorded(&h);
    let (c, relayed) = h.allocate();
    let id = h.server.allocations().all()[0].id();
    // The 401 challenge of the login is not a failure: only the allocation.
    assert_eq!(events.take(), [format!("allocated bob rest {id} 600")]);
    assert_eq!(h.server.allocations().all()[0].id().to_string().len(), 16);
    assert_eq!(h.server.allocations().all()[0].info().advertised_addr, relayed);

    let peer = addr("127.0.0.1:9000");
    h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap());
    h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4001, peer));
    assert_eq!(events.take(), [format!("permission {id} 127.0.0.1"), format!("channel {id} 0x4001 {peer}")]);
    assert_eq!(send_indication(&mut h, peer, b"hello"), Outcome::Relayed);
    assert_eq!(send_indication(&mut h, peer, b"hi"), Outcome::Relayed);
    assert!(h.peer_sends(peer, &[7u8; 100]).is_some());

    h.advance(5);
    h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(1200)).unwrap());
    assert_eq!(events.take(), [format!("refreshed {id} 1200")]);
    h.advance(2);
    h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(0)).unwrap());
    // Payload bytes only (5 + 2 to the peer, 100 back), TURN framing not counted.
    assert_eq!(events.take(), [format!("deleted {id} client 2/7 1/100 7000ms")]);
}

#[test]
fn expiry_revocation_and_shutdown_say_why() {
    let mut h = Harness::new(Harness::default_options());
    let events = recorded(&h);
    h.allocate();
    h.advance(601);
    h.server.sweep(h.now);
    let last = events.take().pop().unwrap();
    assert!(last.starts_with("deleted ") && last.contains(" expired 0/0 0/0 601000ms"), "{last}");

    h.allocate();
    h.server.set_revocations(crate::policy::revocation::RevocationList::new(["bob".to_string()]));
    assert_eq!(h.server.revoke_now(h.now), 1);
    assert!(events.take().last().unwrap().contains(" revoked "));

    h.server.set_revocations(crate::policy::revocation::RevocationList::default());
    h.allocate();
    h.server.close_all(h.now);
    assert!(events.take().last().unwrap().contains(" shutdown "));
}

#[test]
fn a_wrong_password_is_one_failure_with_its_reason_and_a_denied_peer_is_reported() {
    let mut h = Harness::new(Harness::default_options());
    let events = recorded(&h);
    let mut c = h.login("alice");
    assert!(events.take().is_empty(), "a challenge emits nothing");
    c.pass = "wrong".into();
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(401));
    assert_eq!(events.take(), [r#"auth Some("alice") bad_integrity"#]);
    let s = h.server.stats().snapshot();
    assert_eq!((s.auth_challenges, s.auth_failures), (1, 1));
    let bad_integrity = AUTH_FAILURE_REASONS.iter().position(|r| *r == "bad_integrity").unwrap();
    assert_eq!(s.auth_failures_by_reason[bad_integrity], 1);

    let (c, _) = h.allocate();
    events.take();
    let id = h.server.allocations().all()[0].id();
    let private = addr("10.1.2.3:9000");
    assert_eq!(
        error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(private)).unwrap())),
        Some(403)
    );
    assert_eq!(events.take(), [format!("denied {id} 10.1.2.3")]);
}
