//! (A test module: declared under #[cfg(test)] in its parent.)
//! RFC 5780 NAT behaviour discovery: OTHER-ADDRESS, RESPONSE-ORIGIN, CHANGE-REQUEST and
//! RESPONSE-PORT (§6.1, §7), the socket each answer leaves from, and the rate limit.

use super::*;
use crate::policy::rate::RateLimit;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

fn grid() -> NatDiscovery {
    NatDiscovery { ips: [A.parse().unwrap(), B.parse().unwrap()], ports: [3478, 3479] }
}

fn on(options: ServerOptions) -> Harness {
    let h = Harness::new(ServerOptions { rfc5780: true, ..options });
    assert!(h.server.set_nat_discovery(grid()));
    assert!(!h.server.set_nat_discovery(grid()), "set once");
    h
}

/// Feeds a Binding request built by `body`; returns the outcome and the answer's bytes.
fn binding_raw(h: &mut Harness, body: impl FnOnce(&mut MessageWriter<'_>)) -> (Outcome, Vec<u8>) {
    let tid = h.next_tid();
    h.feed(&request(Method::BINDING, tid, None, body))
}

/// Parses an answer.
fn parse(resp: &[u8]) -> Message<'_> {
    Message::parse(resp).unwrap()
}

#[test]
fn the_grid_gives_other_address_and_each_response_origin() {
    let g = grid();
    let ap = addr("127.0.0.1:3478");
    assert_eq!(g.other_address(ap), Some(addr("127.0.0.2:3479")));
    assert_eq!(g.other_address(addr("127.0.0.2:3479")), Some(ap));
    assert_eq!(g.other_address(addr("127.0.0.3:3478")), None);
    assert_eq!(g.other_address(addr("127.0.0.1:1")), None);
    let cases = [
        ((false, false), "127.0.0.1:3478"),
        ((false, true), "127.0.0.1:3479"),
        ((true, false), "127.0.0.2:3478"),
        ((true, true), "127.0.0.2:3479"),
    ];
    for ((ip, port), from) in cases {
        assert_eq!(g.response_origin(ap, ip, port), Some(addr(from)), "change ip {ip} port {port}");
    }
    // From the alternate port of B, a change of both goes back to A:P.
    assert_eq!(g.response_origin(addr("127.0.0.2:3479"), true, true), Some(ap));
}

#[test]
fn every_binding_success_carries_other_address_and_response_origin() {
    let mut h = on(Harness::default_options());
    let (o, r) = binding_raw(&mut h, |_| {});
    let m = parse(&r);
    assert!(matches!(o, Outcome::Reply(_)), "{o:?}");
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, h.client);
    assert_eq!(m.get::<OtherAddress>().unwrap().0, addr("127.0.0.2:3479"));
    assert_eq!(m.get::<ResponseOrigin>().unwrap().0, h.local);
}

#[test]
fn change_request_picks_the_socket_the_answer_leaves_from() {
    let mut h = on(Harness::default_options());
    let cases =
        [((false, true), "127.0.0.1:3479"), ((true, false), "127.0.0.2:3478"), ((true, true), "127.0.0.2:3479")];
    for ((change_ip, change_port), from) in cases {
        let change = ChangeRequest { change_ip, change_port };
        let (o, r) = binding_raw(&mut h, |w| w.add(&change).unwrap());
        let m = parse(&r);
        let Outcome::ReplyVia { from: f, to, .. } = o else { panic!("{o:?}") };
        assert_eq!((f, to), (addr(from), h.client));
        assert_eq!(m.get::<ResponseOrigin>().unwrap().0, addr(from));
        assert_eq!(m.get::<OtherAddress>().unwrap().0, addr("127.0.0.2:3479"));
    }
    // No flags: from where it came.
    let change = ChangeRequest { change_ip: false, change_port: false };
    let (o, _) = binding_raw(&mut h, |w| w.add(&change).unwrap());
    assert!(matches!(o, Outcome::Reply(_)), "{o:?}");
}

#[test]
fn response_port_sends_to_that_port_of_the_clients_ip() {
    let mut h = on(Harness::default_options());
    let port = |w: &mut MessageWriter<'_>| w.add_raw(types::RESPONSE_PORT, &[0x9c, 0x41, 0, 0]).unwrap();
    let (o, r) = binding_raw(&mut h, port);
    let m = parse(&r);
    let Outcome::ReplyVia { from, to, .. } = o else { panic!("{o:?}") };
    assert_eq!((from, to), (h.local, addr("127.0.0.1:40001")));
    assert!(m.get::<ResponseOrigin>().is_ok());
    // Malformed (not 4 bytes): 400.
    let (_, r) = binding_raw(&mut h, |w| w.add_raw(types::RESPONSE_PORT, &[1, 2]).unwrap());
    let m = parse(&r);
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 400);
    // PADDING comes back as long as it came (§6.1); with RESPONSE-PORT it is refused (400).
    let (o, r) = binding_raw(&mut h, |w| w.add_raw(types::PADDING, &[7; 500]).unwrap());
    let m = parse(&r);
    assert!(matches!(o, Outcome::Reply(_)), "{o:?}");
    assert_eq!(m.get_raw(types::PADDING).unwrap().value.len(), 500);
    let (_, r) = binding_raw(&mut h, |w| {
        w.add_raw(types::PADDING, &[0; 8]).unwrap();
        w.add_raw(types::RESPONSE_PORT, &[0x9c, 0x41, 0, 0]).unwrap();
    });
    let m = parse(&r);
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 400);
}

#[test]
fn off_or_outside_the_grid_change_request_still_gets_420() {
    // On but no grid told (or a request to an address outside it): as if off.
    let mut h = Harness::new(ServerOptions { rfc5780: true, ..Harness::default_options() });
    let change = ChangeRequest { change_ip: true, change_port: false };
    let (_, r) = binding_raw(&mut h, |w| w.add(&change).unwrap());
    let m = parse(&r);
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 420);
    let mut h = on(Harness::default_options());
    h.local = addr("127.0.0.3:3478");
    let (_, r) = binding_raw(&mut h, |w| w.add(&change).unwrap());
    let m = parse(&r);
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 420);
    assert!(m.get::<OtherAddress>().is_err());
    // RESPONSE-PORT is not understood without RFC 5780 either.
    let (_, r) = binding_raw(&mut h, |w| w.add_raw(types::RESPONSE_PORT, &[0x9c, 0x40, 0, 0]).unwrap());
    let m = parse(&r);
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 420);
}

#[test]
fn every_answer_counts_against_the_unauthenticated_limit() {
    let options = ServerOptions { rate_limit_unauth: RateLimit::new(1, 3), ..Harness::default_options() };
    let mut h = on(options);
    let answered = (0..10).filter(|_| !matches!(binding_outcome(&mut h), Outcome::Dropped(_))).count();
    assert_eq!(answered, 3);
}

fn binding_outcome(h: &mut Harness) -> Outcome {
    let tid = h.next_tid();
    h.feed(&request(Method::BINDING, tid, None, |_| {})).0
}

/// RFC 7443 `stun.nat-discovery`: over TLS, a Binding to one of the TLS grid's addresses gets
/// OTHER-ADDRESS and RESPONSE-ORIGIN (the address it came to: a stream answers on itself), and
/// CHANGE-REQUEST, which a stream cannot follow, is 420. Plain TCP has no grid.
#[test]
fn over_tls_the_grid_gives_other_address_and_change_request_is_420() {
    let tls_grid = NatDiscovery { ips: [A.parse().unwrap(), B.parse().unwrap()], ports: [5349, 5350] };
    let off = Harness::new(Harness::default_options());
    assert!(!off.server.set_nat_discovery_tls(tls_grid), "RFC 5780 off: no TLS grid");
    let mut h = on(Harness::default_options());
    assert!(h.server.set_nat_discovery_tls(tls_grid));
    let local = addr("127.0.0.1:5349");
    let over = |h: &mut Harness, transport: Transport, body: &dyn Fn(&mut MessageWriter<'_>)| {
        let tid = h.next_tid();
        let req = request(Method::BINDING, tid, None, body);
        let rx = Received { transport, source: h.client, local, data: &req };
        let mut out = vec![0u8; 1500];
        let Outcome::Reply(n) = h.server.handle(h.now, &rx, &mut out) else { panic!("a reply on the stream itself") };
        out.truncate(n);
        out
    };
    let r = over(&mut h, Transport::Tls, &|_| {});
    let m = parse(&r);
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, h.client);
    assert_eq!(m.get::<OtherAddress>().unwrap().0, addr("127.0.0.2:5350"));
    assert_eq!(m.get::<ResponseOrigin>().unwrap().0, local);
    let r = over(&mut h, Transport::Tls, &|w| w.add(&ChangeRequest { change_ip: true, change_port: false }).unwrap());
    assert_eq!(error_code(&r), Some(420));
    let r = over(&mut h, Transport::Tcp, &|_| {});
    let m = parse(&r);
    assert!(m.get::<OtherAddress>().is_err() && m.get::<ResponseOrigin>().is_err(), "no grid on plain TCP");
}
