//! (A test module: declared under #[cfg(test)] in its parent.)
//! The embedder's credential hook (issue #18, `auth::hook`): a user it has to look up holds the
//! request; once the driver has run the hook's fetch the request runs again; a refusal is a 401
//! whose reason reaches the metrics and the event stream.

use std::sync::Arc;

use super::events::recorded;
use super::*;
use crate::auth::hook::{CachedCredentials, Found, HookHandle, LookupFn};

/// Harness options with a hook knowing `ann` (password `pw`) and refusing `eve`.
fn with_hook(h: &Harness) {
    let lookup: LookupFn = Arc::new(|name: String| {
        Box::pin(async move {
            match name.as_str() {
                "ann" => Found::Credential(StaticCredential::Password("pw".into())),
                "eve" => Found::Refused,
                _ => Found::NotFound,
            }
        })
    });
    let mut config = auth_config();
    config.hook = Some(HookHandle(Arc::new(CachedCredentials::new(lookup, 60, 100))));
    h.server.reload(Some(Authenticator::new(config, [7u8; 32])), &Harness::default_options());
}

/// Runs the fetch of held request `id` to its end (the lookup above never waits).
fn fetch(h: &Harness, id: u64) {
    let Some(Hold::Credentials { username, client, unix_now }) = h.server.held(id) else { panic!("not held") };
    let hook = h.server.authenticator().unwrap().config().hook.clone().unwrap();
    let mut fetch = hook.0.fetch(username, client, unix_now);
    let waker = std::task::Waker::noop();
    assert!(fetch.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_ready());
}

/// An Allocate of `user` (password `pw`): held, returns its id.
fn held_allocate(h: &mut Harness, user: &str) -> (u64, Vec<u8>) {
    let nonce = h.login("bob").nonce;
    let tid = h.next_tid();
    let req = request(Method::ALLOCATE, tid, Some((user, "pw", &nonce)), udp);
    let (o, resp) = h.feed(&req);
    let Outcome::Pending(id) = o else { panic!("held: {o:?}") };
    assert!(resp.is_empty());
    assert_eq!(h.feed(&req).0, Outcome::Silent, "a retransmission while the lookup runs");
    (id, req)
}

#[test]
fn a_hook_user_is_looked_up_off_the_packet_path_then_allocated() {
    let mut h = Harness::new(Harness::default_options());
    with_hook(&h);
    let (id, req) = held_allocate(&mut h, "ann");
    assert!(matches!(h.server.held(id), Some(Hold::Credentials { ref username, .. }) if username == "ann"));
    fetch(&h, id);
    let mut out = vec![0u8; 1500];
    let r = h.server.resume(h.now, id, &mut out).expect("held");
    let Outcome::Reply(n) = r.outcome else { panic!("{r:?}") };
    assert!(r.allocated, "{:?}", error_code(&out[..n]));
    let key = IntegrityKey::new(&long_term_key_md5("ann", REALM, "pw"));
    assert_eq!(Message::parse(&out[..n]).unwrap().verify_integrity(&key), Ok(()));
    // Cached now: the retransmission gets the cached success, a new request is not held.
    assert_eq!(h.feed(&req).1, out[..n].to_vec());
    assert_eq!(h.server.leases_pending(), 0);
    // Requests on the allocation use the key the hook gave (neither static nor REST: no 401).
    let nonce = Message::parse(&out[..n])
        .unwrap()
        .get::<Nonce>()
        .map(|n| n.0.to_owned())
        .unwrap_or_else(|_| h.login("bob").nonce);
    let ann = Client { user: "ann".into(), pass: "pw".into(), nonce };
    let permit = h.send(&ann, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(addr("127.0.0.1:9000"))).unwrap());
    assert_eq!(error_code(&permit), None);
    assert_eq!(error_code(&h.send(&ann, Method::REFRESH, |_| {})), None);
}

#[test]
fn a_refusal_reaches_the_metrics_and_the_events_and_an_unanswered_lookup_is_an_unknown_user() {
    let mut h = Harness::new(Harness::default_options());
    with_hook(&h);
    let events = recorded(&h);
    let (id, _) = held_allocate(&mut h, "eve");
    fetch(&h, id);
    let mut out = vec![0u8; 1500];
    let r = h.server.resume(h.now, id, &mut out).unwrap();
    let Outcome::Reply(n) = r.outcome else { panic!("{r:?}") };
    assert_eq!((error_code(&out[..n]), r.allocated), (Some(401), false));
    let refused = AUTH_FAILURE_REASONS.iter().position(|r| *r == "refused").unwrap();
    assert_eq!(h.server.stats().snapshot().auth_failures_by_reason[refused], 1);
    assert_eq!(events.take(), vec!["auth Some(\"eve\") refused".to_owned()]);
    // A lookup that never came back (its fetch not run): unknown user, not held again.
    let (id, _) = held_allocate(&mut h, "zed");
    let r = h.server.resume(h.now, id, &mut out).unwrap();
    let Outcome::Reply(n) = r.outcome else { panic!("{r:?}") };
    assert_eq!(error_code(&out[..n]), Some(401));
    assert_eq!(h.server.leases_pending(), 0);
    // REST usernames never reach the hook.
    let (_, _) = h.allocate();
}
