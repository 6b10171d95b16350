//! (A test module: declared under #[cfg(test)] in its parent.)
//! Fleet leases (issue #16): with leases on, a new Allocate is held for the driver to ask the
//! fleet's ledger, and run again with the verdict.

use super::*;

fn held(h: &mut Harness, c: &Client) -> (u64, Vec<u8>) {
    let tid = h.next_tid();
    let req = request(Method::ALLOCATE, tid, Some((&c.user, &c.pass, &c.nonce)), udp);
    let (o, resp) = h.feed(&req);
    let Outcome::Pending(id) = o else { panic!("held: {o:?}") };
    assert!(resp.is_empty(), "nothing is sent while the verdict is out");
    (id, req)
}

fn leases_on() -> Harness {
    let h = Harness::new(ServerOptions { user_quota: 3, total_quota: 7, ..Harness::default_options() });
    h.server.set_fleet_leases(true);
    h
}

#[test]
fn an_allocate_is_held_then_made_under_its_lease() {
    let mut h = leases_on();
    let c = h.login("bob");
    let (id, req) = held(&mut h, &c);
    let five = FiveTuple { transport: Transport::Udp, client: h.client, server: h.local };
    let asked = h.server.lease_request(id).expect("held");
    assert_eq!(
        asked,
        LeaseRequest {
            id,
            user: "bob".into(),
            lifetime_secs: 600,
            limits: crate::policy::quota::QuotaLimits { per_user: 3, total: 7 },
            five_tuple: five,
        }
    );
    // A retransmission while the verdict is out is dropped; nothing was allocated yet.
    assert_eq!(h.feed(&req).0, Outcome::Silent);
    assert_eq!((h.server.allocations().len(), h.server.leases_pending()), (0, 1));

    let mut out = vec![0u8; 1500];
    let r = h.server.resume_allocate(h.now, id, LeaseVerdict::Granted, &mut out).expect("held");
    let Outcome::Reply(n) = r.outcome else { panic!("{r:?}") };
    assert!(r.allocated && r.five_tuple == five);
    let m = Message::parse(&out[..n]).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse);
    let key = IntegrityKey::new(&long_term_key_md5(&c.user, REALM, &c.pass));
    assert_eq!(m.verify_integrity(&key), Ok(()));
    let allocation = h.server.allocations().get(&five).unwrap();
    assert_eq!(allocation.id().0, id, "the lease id names the allocation");
    // Resumed once; the retransmission now gets the cached success.
    assert!(h.server.resume_allocate(h.now, id, LeaseVerdict::Granted, &mut out).is_none());
    assert_eq!(h.feed(&req).1, out[..n].to_vec());
    assert_eq!(h.server.leases_pending(), 0);
}

#[test]
fn a_fleet_quota_refusal_is_486_and_an_unavailable_ledger_leaves_the_node_to_decide() {
    let mut h = leases_on();
    let c = h.login("bob");
    for (verdict, made) in
        [(LeaseVerdict::UserQuota, false), (LeaseVerdict::TotalQuota, false), (LeaseVerdict::Unavailable, true)]
    {
        let (id, _) = held(&mut h, &c);
        let mut out = vec![0u8; 1500];
        let r = h.server.resume_allocate(h.now, id, verdict, &mut out).unwrap();
        let Outcome::Reply(n) = r.outcome else { panic!("{r:?}") };
        let code = error_code(&out[..n]);
        assert_eq!((code, r.allocated), (if made { None } else { Some(486) }, made), "{verdict:?}");
        // The node's own slot is not kept by a refused Allocate.
        assert_eq!(h.server.allocations().len(), usize::from(made));
    }
}

#[test]
fn the_node_quota_is_checked_before_asking_and_held_allocates_expire() {
    let mut h = Harness::new(ServerOptions { user_quota: 1, ..Harness::default_options() });
    let (_, _) = h.allocate();
    h.server.set_fleet_leases(true);
    // bob has his one allocation here: refused at once, the fleet is not asked.
    h.client = addr("127.0.0.1:40001");
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(486));
    assert_eq!(h.server.leases_pending(), 0);
    // Another user's Allocate is held; the driver never comes back: forgotten after PENDING_MS.
    let d = h.login("dave");
    let (id, _) = held(&mut h, &d);
    h.advance(PENDING_MS / 1000 + 1);
    h.server.sweep(h.now);
    assert_eq!(h.server.leases_pending(), 0);
    let mut out = vec![0u8; 1500];
    assert!(h.server.resume_allocate(h.now, id, LeaseVerdict::Granted, &mut out).is_none());
}

#[test]
fn leases_off_nothing_is_held() {
    let mut h = Harness::new(Harness::default_options());
    assert!(!h.server.fleet_leases());
    let (_, _) = h.allocate();
    assert_eq!(h.server.leases_pending(), 0);
}

#[test]
fn failing_closed_an_unreachable_ledger_is_508() {
    let mut h = Harness::new(ServerOptions { lease_fail_closed: true, ..Harness::default_options() });
    h.server.set_fleet_leases(true);
    let c = h.login("bob");
    let (id, _) = held(&mut h, &c);
    let mut out = vec![0u8; 1500];
    let r = h.server.resume_allocate(h.now, id, LeaseVerdict::Unavailable, &mut out).unwrap();
    let Outcome::Reply(n) = r.outcome else { panic!("{r:?}") };
    assert_eq!((error_code(&out[..n]), r.allocated), (Some(508), false));
    // A granted lease is served as ever.
    let (id, _) = held(&mut h, &c);
    let r = h.server.resume_allocate(h.now, id, LeaseVerdict::Granted, &mut out).unwrap();
    assert!(r.allocated);
}
