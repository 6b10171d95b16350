//! (A test module: declared under #[cfg(test)] in its parent.)
//! The embedder's peer-policy and relay-address hooks (issue #18, `server::hooks`): a hook refuses
//! more than the built-in policy (403, counted, reported) but never opens what it denies, is asked
//! per request and never per packet; a relay hook places each user's relayed address on its own IP
//! and port range, per family, with EVEN-PORT, and an invalid choice falls back to the default.

use std::sync::{Arc, Mutex};

use super::events::recorded;
use super::*;

/// What a peer hook was asked: username, user, client, transport, peer, request.
type PeerAsked = (String, String, SocketAddr, Transport, SocketAddr, PeerRequest);

/// What a relay hook was asked: user, family, TCP relay.
type RelayAsked = Arc<Mutex<Vec<(String, AddressFamily, bool)>>>;

/// A peer hook that records what it was asked and refuses the peers `deny` picks.
struct PeerJudge {
    asked: Mutex<Vec<PeerAsked>>,
    deny: fn(&PeerContext<'_>) -> bool,
}

impl PeerJudge {
    fn new(deny: fn(&PeerContext<'_>) -> bool) -> Arc<PeerJudge> {
        Arc::new(PeerJudge { asked: Mutex::new(Vec::new()), deny })
    }

    fn calls(&self) -> usize {
        self.asked.lock().unwrap().len()
    }
}

impl PeerHook for PeerJudge {
    fn check(&self, ctx: &PeerContext<'_>) -> PeerDecision {
        assert_eq!(ctx.realm, REALM);
        let entry = (ctx.username.to_owned(), ctx.user.to_owned(), ctx.client, ctx.transport, ctx.peer, ctx.request);
        self.asked.lock().unwrap().push(entry);
        if (self.deny)(ctx) { PeerDecision::Deny } else { PeerDecision::Allow }
    }
}

fn permission(peer: SocketAddr) -> impl FnOnce(&mut MessageWriter<'_>) {
    move |w: &mut MessageWriter<'_>| w.add(&XorPeerAddress(peer)).unwrap()
}

fn class(resp: &[u8]) -> Class {
    Message::parse(resp).unwrap().message_type().class
}

#[test]
fn the_peer_hook_refuses_a_peer_the_policy_allows_with_403_an_event_and_the_stat() {
    let mut h = Harness::new(Harness::default_options());
    let events = recorded(&h);
    // Tenant rules: nobody reaches 127.0.0.2, and no channel to port 9999.
    let judge = PeerJudge::new(|ctx| {
        ctx.peer.ip() == IpAddr::from([127, 0, 0, 2])
            || (ctx.request == PeerRequest::ChannelBind && ctx.peer.port() == 9999)
    });
    h.server.set_peer_hook(Some(judge.clone()));
    let (c, _) = h.allocate();
    let id = h.server.allocations().all()[0].id();
    events.take();

    let denied = addr("127.0.0.2:9000");
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, permission(denied))), Some(403));
    assert_eq!(events.take(), [format!("denied {id} 127.0.0.2")]);
    assert_eq!(h.server.stats().snapshot().peer_denied, 1);
    // The built-in policy allows loopback here, so without the hook it is a success.
    let allowed = addr("127.0.0.1:9000");
    assert_eq!(class(&h.send(&c, Method::CREATE_PERMISSION, permission(allowed))), Class::SuccessResponse);
    assert_eq!(events.take(), [format!("permission {id} 127.0.0.1")]);
    // One of several XOR-PEER-ADDRESSes refused refuses them all (and installs none).
    let two = |w: &mut MessageWriter<'_>| {
        w.add(&XorPeerAddress(addr("127.0.0.3:1"))).unwrap();
        w.add(&XorPeerAddress(denied)).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, two)), Some(403));
    assert!(h.peer_sends(addr("127.0.0.3:1"), b"x").is_none());
    // ChannelBind names a transport address: the hook's port rule holds there.
    let resp = h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4001, addr("127.0.0.1:9999")));
    assert_eq!(error_code(&resp), Some(403));
    let resp = h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4001, addr("127.0.0.1:9998")));
    assert_eq!(class(&resp), Class::SuccessResponse);
    assert_eq!(h.server.stats().snapshot().peer_denied, 3);
    assert_eq!(events.take().iter().filter(|e| e.starts_with("denied")).count(), 2);

    // What the hook was told: the allocation's user, its 5-tuple's source and transport, the peer.
    let asked = judge.asked.lock().unwrap().clone();
    let requests: Vec<PeerRequest> = asked.iter().map(|a| a.5).collect();
    use PeerRequest::{ChannelBind, CreatePermission};
    assert_eq!(
        requests,
        [CreatePermission, CreatePermission, CreatePermission, CreatePermission, ChannelBind, ChannelBind]
    );
    let (username, user, client, transport, peer, _) = &asked[0];
    assert_eq!((username.as_str(), user.as_str()), (c.user.as_str(), "bob"));
    assert_eq!((*client, *transport, *peer), (h.client, Transport::Udp, denied));

    // Removed: the same peer is allowed again.
    h.server.set_peer_hook(None);
    assert_eq!(class(&h.send(&c, Method::CREATE_PERMISSION, permission(denied))), Class::SuccessResponse);
    assert_eq!(judge.calls(), 6);
}

#[test]
fn a_hook_that_allows_everything_cannot_open_what_the_policy_denies() {
    let denied_peers = vec!["5.6.7.0/24".parse().unwrap(), "1.1.1.1@53-53".parse().unwrap()];
    let mut h = Harness::new(ServerOptions { allow_loopback_peers: false, denied_peers, ..Harness::default_options() });
    let judge = PeerJudge::new(|_| false);
    h.server.set_peer_hook(Some(judge.clone()));
    let (c, _) = h.allocate();
    // Loopback without allow-loopback-peers, a special-purpose block, an operator rule, an
    // operator port rule on ChannelBind: 403, and the hook is not even asked.
    for peer in ["127.0.0.1:9000", "10.0.0.1:9000", "5.6.7.8:9000"] {
        assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, permission(addr(peer)))), Some(403), "{peer}");
    }
    let resp = h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4000, addr("1.1.1.1:53")));
    assert_eq!(error_code(&resp), Some(403));
    assert_eq!(judge.calls(), 0);
    assert_eq!(h.server.stats().snapshot().peer_denied, 4);
    // A peer the policy allows reaches the hook, whose Allow stands.
    assert_eq!(class(&h.send(&c, Method::CREATE_PERMISSION, permission(addr("1.1.1.1:53")))), Class::SuccessResponse);
    assert_eq!(judge.calls(), 1);
}

#[test]
fn the_peer_hook_is_asked_per_request_never_per_packet() {
    let mut h = Harness::new(Harness::default_options());
    let judge = PeerJudge::new(|_| false);
    h.server.set_peer_hook(Some(judge.clone()));
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    assert_eq!(class(&h.send(&c, Method::CREATE_PERMISSION, permission(peer))), Class::SuccessResponse);
    assert_eq!(class(&h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4000, peer))), Class::SuccessResponse);
    assert_eq!(judge.calls(), 2);
    let channel_data = [0x40, 0x00, 0x00, 0x04, b'd', b'a', b't', b'a'];
    for _ in 0..5 {
        assert_eq!(send_indication(&mut h, peer, b"hello"), Outcome::Relayed);
        assert_eq!(h.feed(&channel_data).0, Outcome::Relayed);
        assert!(h.peer_sends(peer, b"back").is_some());
    }
    assert_eq!(judge.calls(), 2, "data never asks the hook");
    // A hook swapped to refuse judges the next request; the permission made stays.
    h.server.set_peer_hook(Some(Arc::new(|_: &PeerContext<'_>| PeerDecision::Deny)));
    assert_eq!(send_indication(&mut h, peer, b"still"), Outcome::Relayed);
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, permission(peer))), Some(403));
}

#[test]
fn the_peer_hook_judges_rfc6062_connect() {
    let mut h = Harness::new(Harness::default_options());
    let judge = PeerJudge::new(|ctx| ctx.peer.port() == 7000);
    h.server.set_peer_hook(Some(judge.clone()));
    let c = h.login("bob");
    let client = h.client;
    let feed_tcp = |h: &mut Harness, method: Method, body: &dyn Fn(&mut MessageWriter<'_>)| {
        let tid = h.next_tid();
        let data = request(method, tid, Some((&c.user, &c.pass, &c.nonce)), body);
        let rx = Received { transport: Transport::Tcp, source: client, local: h.local, data: &data };
        let mut out = vec![0u8; 1500];
        let o = h.server.handle(h.now, &rx, &mut out);
        let n = if let Outcome::Reply(n) = o { n } else { 0 };
        out.truncate(n);
        (o, out)
    };
    let (_, resp) =
        feed_tcp(&mut h, Method::ALLOCATE, &|w: &mut MessageWriter<'_>| w.add(&RequestedTransport::TCP).unwrap());
    assert_eq!(class(&resp), Class::SuccessResponse);
    let (o, resp) = feed_tcp(&mut h, Method::CONNECT, &|w: &mut MessageWriter<'_>| {
        w.add(&XorPeerAddress(addr("127.0.0.1:7000"))).unwrap()
    });
    assert!(matches!(o, Outcome::Reply(_)));
    assert_eq!(error_code(&resp), Some(403));
    assert!(h.driver.connects.lock().unwrap().is_empty(), "no connection for a refused peer");
    let (o, _) = feed_tcp(&mut h, Method::CONNECT, &|w: &mut MessageWriter<'_>| {
        w.add(&XorPeerAddress(addr("127.0.0.1:7001"))).unwrap()
    });
    assert_eq!(o, Outcome::Silent);
    assert_eq!(h.driver.connects.lock().unwrap().len(), 1);
    let asked = judge.asked.lock().unwrap().clone();
    assert!(asked.iter().all(|a| a.5 == PeerRequest::Connect && a.3 == Transport::Tcp), "{asked:?}");
    assert_eq!(asked.len(), 2);
}

/// A relay hook placing tenant-a on 10.0.0.7 ports 50000–50009 and tenant-b on 10.0.0.8 ports
/// 50010–50019 (IPv6: 2001:db8::7 and ::8), everyone else on the default; it records the families
/// and users it was asked for.
fn tenants() -> (Arc<dyn RelayAddressHook>, RelayAsked) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&asked);
    let hook = move |ctx: &RelayContext<'_>| {
        assert_eq!(ctx.realm, REALM);
        record.lock().unwrap().push((ctx.user.to_owned(), ctx.family, ctx.tcp));
        let (v4, v6, ports): ([u8; 4], &str, _) = match ctx.user {
            "tenant-a" => ([10, 0, 0, 7], "2001:db8::7", 50000..=50009),
            "tenant-b" => ([10, 0, 0, 8], "2001:db8::8", 50010..=50019),
            _ => return None,
        };
        let ip = match ctx.family {
            AddressFamily::V4 => IpAddr::from(v4),
            AddressFamily::V6 => v6.parse().unwrap(),
        };
        Some(RelayChoice::new(ip, ports))
    };
    (Arc::new(hook), asked)
}

/// The relay range outside the tenants' ports, so that a port in theirs can only be the hook's.
fn options() -> ServerOptions {
    ServerOptions { min_port: 60000, max_port: 60999, ..Harness::default_options() }
}

/// Allocates as `user` from a fresh client port; the relayed addresses, or the error code.
fn allocate_as(
    h: &mut Harness,
    user: &str,
    port: u16,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> Result<Vec<SocketAddr>, u16> {
    h.client = addr(&format!("127.0.0.1:{port}"));
    let c = h.login(user);
    let resp = h.send(&c, Method::ALLOCATE, body);
    match class(&resp) {
        Class::SuccessResponse => {
            Ok(Message::parse(&resp).unwrap().get_all::<XorRelayedAddress>().map(|a| a.unwrap().0).collect())
        }
        _ => Err(error_code(&resp).unwrap()),
    }
}

#[test]
fn the_relay_hook_gives_each_tenant_its_ip_and_port_range() {
    let mut h = Harness::new(options());
    let (hook, asked) = tenants();
    h.server.set_relay_address_hook(Some(hook));
    // The fake driver binds any port twice: mark tenant-a's as taken, as a kernel would.
    let take = |h: &Harness, a: &[SocketAddr]| h.driver.busy_ports.lock().unwrap().push(a[0].port());
    for i in 0..5 {
        let a = allocate_as(&mut h, "tenant-a", 40000 + i, udp).unwrap();
        take(&h, &a);
        let b = allocate_as(&mut h, "tenant-b", 41000 + i, udp).unwrap();
        assert_eq!(a[0].ip(), IpAddr::from([10, 0, 0, 7]));
        assert!((50000..=50009).contains(&a[0].port()), "{a:?}");
        assert_eq!(b[0].ip(), IpAddr::from([10, 0, 0, 8]));
        assert!((50010..=50019).contains(&b[0].port()), "{b:?}");
    }
    // Everyone else: the default address and range.
    let other = allocate_as(&mut h, "carol", 42000, udp).unwrap();
    assert_eq!(other[0].ip(), h.local.ip());
    assert!((60000..=60999).contains(&other[0].port()), "{other:?}");
    assert_eq!(asked.lock().unwrap().len(), 11);
    assert!(asked.lock().unwrap().iter().all(|(_, family, tcp)| *family == AddressFamily::V4 && !tcp));
    // tenant-a's ten ports: five more fit, the eleventh allocation is 508 (no fallback to the
    // default range), and the search is bounded.
    for i in 5..10 {
        let a = allocate_as(&mut h, "tenant-a", 40000 + i, udp).unwrap();
        assert!((50000..=50009).contains(&a[0].port()), "{a:?}");
        take(&h, &a);
    }
    assert_eq!(allocate_as(&mut h, "tenant-a", 40100, udp), Err(508));
    // A hook address that cannot be bound is 508 too.
    h.driver.busy_ips.lock().unwrap().push(IpAddr::from([10, 0, 0, 8]));
    assert_eq!(allocate_as(&mut h, "tenant-b", 41100, udp), Err(508));
    assert_eq!(h.server.stats().snapshot().relay_hook_ignored, 0);
    // Removed: tenant-a gets the default.
    h.server.set_relay_address_hook(None);
    let a = allocate_as(&mut h, "tenant-a", 40200, udp).unwrap();
    assert!((60000..=60999).contains(&a[0].port()), "{a:?}");
}

#[test]
fn the_relay_hook_is_asked_per_family_and_keeps_even_port_and_reservations() {
    let mut h = Harness::new(options());
    let (hook, asked) = tenants();
    h.server.set_relay_address_hook(Some(hook));
    // A dual allocation: one address per family, each in the tenant's range.
    let dual = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
    };
    let relayed = allocate_as(&mut h, "tenant-b", 40000, dual).unwrap();
    let ips: Vec<IpAddr> = relayed.iter().map(SocketAddr::ip).collect();
    assert_eq!(ips, [IpAddr::from([10, 0, 0, 8]), "2001:db8::8".parse::<IpAddr>().unwrap()]);
    assert!(relayed.iter().all(|a| (50010..=50019).contains(&a.port())), "{relayed:?}");
    let families: Vec<AddressFamily> = asked.lock().unwrap().iter().map(|a| a.1).collect();
    assert_eq!(families, [AddressFamily::V4, AddressFamily::V6]);

    // EVEN-PORT with R: an even port of the range, and port + 1 reserved in it.
    h.client = addr("127.0.0.1:40001");
    let c = h.login("tenant-a");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&EvenPort { reserve_next: true }).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    let even = m.get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(even.ip(), IpAddr::from([10, 0, 0, 7]));
    assert!(even.port().is_multiple_of(2) && (50000..50009).contains(&even.port()), "{even}");
    let token = m.get::<ReservationToken>().unwrap();
    // The token's Allocate takes the reserved port; the hook is not asked for it.
    let calls = asked.lock().unwrap().len();
    let relayed = allocate_as(&mut h, "tenant-a", 40002, |w| {
        udp(w);
        w.add(&token).unwrap();
    })
    .unwrap();
    assert_eq!(relayed, [SocketAddr::new(even.ip(), even.port() + 1)]);
    assert_eq!(asked.lock().unwrap().len(), calls);
}

#[test]
fn an_invalid_choice_is_ignored_and_counted() {
    let mut h = Harness::new(options());
    let choice: Arc<Mutex<RelayChoice>> =
        Arc::new(Mutex::new(RelayChoice::new("2001:db8::7".parse().unwrap(), 50000..=50009)));
    let given = Arc::clone(&choice);
    let hook = move |_: &RelayContext<'_>| Some(given.lock().unwrap().clone());
    h.server.set_relay_address_hook(Some(Arc::new(hook)));
    #[allow(clippy::reversed_empty_ranges)]
    let invalid = [
        RelayChoice::new("2001:db8::7".parse().unwrap(), 50000..=50009), // IPv6 for an IPv4 relay
        RelayChoice::new(IpAddr::from([10, 0, 0, 7]), 50010..=50009),    // empty
        RelayChoice::new(IpAddr::from([10, 0, 0, 7]), 1000..=1100),      // below 1024
        RelayChoice::new(IpAddr::from([0, 0, 0, 0]), 50000..=50009),     // unspecified
        RelayChoice::new(IpAddr::from([224, 0, 0, 1]), 50000..=50009),   // multicast
    ];
    for (i, bad) in invalid.iter().enumerate() {
        *choice.lock().unwrap() = bad.clone();
        let relayed = allocate_as(&mut h, "bob", 40000 + i as u16, udp).unwrap();
        assert_eq!(relayed[0].ip(), h.local.ip(), "{bad:?}");
        assert!((60000..=60999).contains(&relayed[0].port()), "{bad:?}: {relayed:?}");
    }
    assert_eq!(h.server.stats().snapshot().relay_hook_ignored, invalid.len() as u64);
    // The edges that are valid: port 1024, one port, port 65535.
    for (i, ports) in [1024..=1024, 65535..=65535].into_iter().enumerate() {
        *choice.lock().unwrap() = RelayChoice::new(IpAddr::from([10, 0, 0, 7]), ports.clone());
        let relayed = allocate_as(&mut h, "bob", 41000 + i as u16, udp).unwrap();
        assert_eq!(relayed, [SocketAddr::new(IpAddr::from([10, 0, 0, 7]), *ports.start())]);
    }
    assert_eq!(h.server.stats().snapshot().relay_hook_ignored, invalid.len() as u64);
}

#[test]
fn a_configured_relay_address_chosen_by_the_hook_keeps_its_advertised_ip() {
    let relay_addresses = vec![
        RelayAddress { local: "10.0.0.1".parse().unwrap(), advertised: "203.0.113.1".parse().unwrap() },
        RelayAddress { local: "10.0.0.2".parse().unwrap(), advertised: "203.0.113.2".parse().unwrap() },
    ];
    let mut h = Harness::new(ServerOptions { relay_addresses, ..options() });
    // Named by its advertised IP or by its local one: bound on the local, told the advertised.
    for (i, ip) in ["203.0.113.2", "10.0.0.2"].into_iter().enumerate() {
        let ip: IpAddr = ip.parse().unwrap();
        h.server.set_relay_address_hook(Some(Arc::new(move |_: &RelayContext<'_>| {
            Some(RelayChoice::new(ip, 50000..=50009))
        })));
        let relayed = allocate_as(&mut h, "bob", 40000 + i as u16, udp).unwrap();
        assert_eq!(relayed[0].ip(), "203.0.113.2".parse::<IpAddr>().unwrap());
        let bound = *h.driver.bound.lock().unwrap().last().unwrap();
        assert_eq!(bound, SocketAddr::new("10.0.0.2".parse().unwrap(), relayed[0].port()));
    }
}
