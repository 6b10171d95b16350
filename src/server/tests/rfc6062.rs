//! (A test module: declared under #[cfg(test)] in its parent.)
//! Scenario tests of RFC 6062 TCP relaying in the sans-IO core: Allocate TCP, Connect and its late
//! answer, ConnectionAttempt, ConnectionBind, the 30 s deadlines and every error code.

use super::*;

/// The control connection's 5-tuple (the harness client over TCP).
fn control(h: &Harness) -> FiveTuple {
    FiveTuple { transport: Transport::Tcp, client: h.client, server: h.local }
}

/// Feeds `data` as a frame of a TCP connection from `source`.
fn feed_tcp(h: &Harness, source: SocketAddr, data: &[u8]) -> (Outcome, Vec<u8>) {
    let rx = Received { transport: Transport::Tcp, source, local: h.local, data };
    let mut out = vec![0u8; 1500];
    let o = h.server.handle(h.now, &rx, &mut out);
    let n = if let Outcome::Reply(n) = o { n } else { 0 };
    out.truncate(n);
    (o, out)
}

/// A signed request from `source` over TCP; `c.nonce` must be valid for `source`.
fn send_tcp(
    h: &mut Harness,
    source: SocketAddr,
    c: &Client,
    method: Method,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> (Outcome, Vec<u8>) {
    let tid = h.next_tid();
    feed_tcp(h, source, &request(method, tid, Some((&c.user, &c.pass, &c.nonce)), body))
}

fn tcp(w: &mut MessageWriter<'_>) {
    w.add(&RequestedTransport::TCP).unwrap();
}

/// Logs in as bob and allocates a TCP relay over the harness client's TCP connection.
fn allocate_tcp(h: &mut Harness) -> Client {
    let c = h.login("bob");
    let client = h.client;
    let (_, resp) = send_tcp(h, client, &c, Method::ALLOCATE, tcp);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    assert!(h.server.allocations().get(&control(h)).unwrap().is_tcp_relay());
    c
}

/// The same user's credentials with a nonce for `source` (a data connection has its own port).
fn nonce_for(h: &Harness, c: &Client, source: SocketAddr) -> Client {
    let nonce = h.server.authenticator().unwrap().nonce(h.unix(), source);
    Client { nonce: nonce.as_str().to_string(), ..c.clone() }
}

fn peer_addr(w: &mut MessageWriter<'_>, peer: SocketAddr) {
    w.add(&XorPeerAddress(peer)).unwrap();
}

/// Connect to `peer`; the core stays silent and asks the driver; returns the connection ID.
fn connect(h: &mut Harness, c: &Client, peer: SocketAddr) -> u32 {
    let client = h.client;
    let (o, _) = send_tcp(h, client, c, Method::CONNECT, |w| peer_addr(w, peer));
    assert_eq!(o, Outcome::Silent);
    let (id, to) = *h.driver.connects.lock().unwrap().last().unwrap();
    assert_eq!(to, peer);
    id
}

#[test]
fn tcp_allocate_needs_a_stream_no_udp_attributes_and_tcp_relaying_on() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    // RFC 6062 §5.1: over UDP, 400.
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, tcp)), Some(codes::BAD_REQUEST));
    // EVEN-PORT, DONT-FRAGMENT and RESERVATION-TOKEN make no sense for TCP: 400.
    let client = h.client;
    let (_, resp) = send_tcp(&mut h, client, &c, Method::ALLOCATE, |w| {
        tcp(w);
        w.add(&EvenPort { reserve_next: false }).unwrap();
    });
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    let (_, resp) = send_tcp(&mut h, client, &c, Method::ALLOCATE, |w| {
        tcp(w);
        w.add(&DontFragment).unwrap();
    });
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    assert!(h.server.allocations().is_empty());

    let mut off = Harness::new(ServerOptions { no_tcp_relay: true, ..Harness::default_options() });
    let c = off.login("bob");
    let (_, resp) = send_tcp(&mut off, client, &c, Method::ALLOCATE, tcp);
    assert_eq!(error_code(&resp), Some(codes::UNSUPPORTED_TRANSPORT_PROTOCOL));
}

#[test]
fn connect_is_answered_when_the_driver_reports() {
    let mut h = Harness::new(Harness::default_options());
    let c = allocate_tcp(&mut h);
    let peer = addr("127.0.0.1:7000");
    let tid = h.next_tid();
    let client = h.client;
    let (o, _) = feed_tcp(
        &h,
        client,
        &request(Method::CONNECT, tid, Some((&c.user, &c.pass, &c.nonce)), |w| peer_addr(w, peer)),
    );
    assert_eq!(o, Outcome::Silent);
    let (id, _) = *h.driver.connects.lock().unwrap().last().unwrap();
    // A permission for the peer is installed.
    let a = h.server.allocations().get(&control(&h)).unwrap();
    assert!(a.bindings().permits(peer.ip(), h.server.millis(h.now)));

    // RFC 6062 §5.2: while it is being made, another Connect to that peer is 446.
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CONNECT, |w| peer_addr(w, peer));
    assert_eq!(error_code(&resp), Some(codes::CONNECTION_ALREADY_EXISTS));

    let mut out = vec![0u8; 1500];
    let (to, n) = h.server.connect_completed(h.now, id, true, &mut out).unwrap();
    assert_eq!(to, control(&h));
    let m = Message::parse(&out[..n]).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::CONNECT, Class::SuccessResponse));
    assert_eq!(m.transaction_id(), tid);
    assert_eq!(m.get::<ConnectionId>().unwrap().0, id);
    let key = IntegrityKey::new(&long_term_key_md5(&c.user, REALM, &c.pass));
    assert_eq!(m.verify_integrity(&key), Ok(()));
    assert_eq!(m.verify_fingerprint(), Ok(()));
    // Reported twice: nothing more to say.
    assert!(h.server.connect_completed(h.now, id, true, &mut out).is_none());
    // Connected (waiting for its bind): still 446.
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CONNECT, |w| peer_addr(w, peer));
    assert_eq!(error_code(&resp), Some(codes::CONNECTION_ALREADY_EXISTS));
    assert_eq!(h.server.stats().snapshot().tcp_connected, 1);
}

#[test]
fn a_failed_connect_is_447_and_may_be_retried() {
    let mut h = Harness::new(Harness::default_options());
    let c = allocate_tcp(&mut h);
    let peer = addr("127.0.0.1:7001");
    let id = connect(&mut h, &c, peer);
    let mut out = vec![0u8; 1500];
    let (_, n) = h.server.connect_completed(h.now, id, false, &mut out).unwrap();
    assert_eq!(error_code(&out[..n]), Some(codes::CONNECTION_TIMEOUT_OR_FAILURE));
    assert!(h.server.connections().is_empty());
    connect(&mut h, &c, peer);
    assert_eq!(h.server.stats().snapshot().tcp_connect_failures, 1);
}

#[test]
fn connect_errors_437_400_403_443() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let client = h.client;
    // No allocation on this connection.
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CONNECT, |w| peer_addr(w, addr("127.0.0.1:7000")));
    assert_eq!(error_code(&resp), Some(codes::ALLOCATION_MISMATCH));
    // A UDP allocation takes no Connect.
    let (c, _) = h.allocate();
    let resp = h.send(&c, Method::CONNECT, |w| peer_addr(w, addr("127.0.0.1:7000")));
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));

    let mut h = Harness::new(Harness::default_options());
    let c = allocate_tcp(&mut h);
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CONNECT, |_| {});
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CONNECT, |w| peer_addr(w, addr("10.1.2.3:80")));
    assert_eq!(error_code(&resp), Some(codes::FORBIDDEN));
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CONNECT, |w| peer_addr(w, addr("[2001:db8::1]:80")));
    assert_eq!(error_code(&resp), Some(codes::PEER_ADDRESS_FAMILY_MISMATCH));
    // A TCP allocation has no channels.
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CHANNEL_BIND, |w| {
        w.add(&ChannelNumber(0x4000)).unwrap();
        peer_addr(w, addr("127.0.0.1:7000"));
    });
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    assert!(h.driver.connects.lock().unwrap().is_empty());
}

#[test]
fn connection_bind_on_a_new_connection_binds_once() {
    let mut h = Harness::new(Harness::default_options());
    let events = super::events::recorded(&h);
    let c = allocate_tcp(&mut h);
    let id = connect(&mut h, &c, addr("127.0.0.1:7000"));
    let mut out = vec![0u8; 1500];
    h.server.connect_completed(h.now, id, true, &mut out).unwrap();

    let data = addr("127.0.0.1:40001");
    let d = nonce_for(&h, &c, data);
    // Over UDP, on the control connection, without or with a wrong CONNECTION-ID: 400.
    let tid = h.next_tid();
    let bind = |w: &mut MessageWriter<'_>| w.add(&ConnectionId(id)).unwrap();
    let (_, resp) = h.feed_from(data, &request(Method::CONNECTION_BIND, tid, Some((&d.user, &d.pass, &d.nonce)), bind));
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    let client = h.client;
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CONNECTION_BIND, bind);
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    let (_, resp) = send_tcp(&mut h, data, &d, Method::CONNECTION_BIND, |_| {});
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    let (_, resp) = send_tcp(&mut h, data, &d, Method::CONNECTION_BIND, |w| w.add(&ConnectionId(id ^ 1)).unwrap());
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    // Another user's credentials: 441.
    let alice = nonce_for(&h, &Client { user: "alice".into(), pass: "wonderland".into(), nonce: String::new() }, data);
    let (_, resp) = send_tcp(&mut h, data, &alice, Method::CONNECTION_BIND, bind);
    assert_eq!(error_code(&resp), Some(codes::WRONG_CREDENTIALS));

    let (o, resp) = send_tcp(&mut h, data, &d, Method::CONNECTION_BIND, bind);
    assert!(matches!(o, Outcome::Reply(_)));
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::CONNECTION_BIND, Class::SuccessResponse));
    let data_tuple = FiveTuple { transport: Transport::Tcp, client: data, server: h.local };
    assert_eq!(h.driver.bound_connections.lock().unwrap().as_slice(), &[(id, data_tuple)]);

    // Bound: a second bind is 400, the bind deadline no longer applies, and the peer stays taken
    // until the relay ends.
    let other = addr("127.0.0.1:40002");
    let o2 = nonce_for(&h, &c, other);
    let (_, resp) = send_tcp(&mut h, other, &o2, Method::CONNECTION_BIND, bind);
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    h.advance(60);
    h.server.sweep(h.now);
    assert!(h.driver.closed_connections.lock().unwrap().is_empty());
    assert_eq!(h.server.connections().len(), 1);
    h.server.connection_closed(h.now, id, (5, 7));
    assert!(h.server.connections().is_empty());
    // The bind and the end reach the event sink, the end with the connection's bytes.
    let allocation = h.server.allocations().all()[0].id();
    let events = events.take();
    assert!(events.contains(&format!("bound {allocation} {id}")), "{events:?}");
    assert_eq!(events.last(), Some(&format!("closed {allocation} 5/7")), "{events:?}");
}

#[test]
fn an_unbound_connection_is_closed_after_30_seconds() {
    let mut h = Harness::new(Harness::default_options());
    let c = allocate_tcp(&mut h);
    let id = connect(&mut h, &c, addr("127.0.0.1:7000"));
    let mut out = vec![0u8; 1500];
    h.server.connect_completed(h.now, id, true, &mut out).unwrap();
    h.advance(29);
    h.server.sweep(h.now);
    assert!(h.driver.closed_connections.lock().unwrap().is_empty());
    h.advance(2);
    h.server.sweep(h.now);
    assert_eq!(h.driver.closed_connections.lock().unwrap().as_slice(), &[id]);
    let data = addr("127.0.0.1:40001");
    let d = nonce_for(&h, &c, data);
    let (_, resp) = send_tcp(&mut h, data, &d, Method::CONNECTION_BIND, |w| w.add(&ConnectionId(id)).unwrap());
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    assert_eq!(h.server.stats().snapshot().tcp_connections_expired, 1);
}

#[test]
fn a_peer_connection_needs_a_permission_and_is_announced() {
    let mut h = Harness::new(Harness::default_options());
    let c = allocate_tcp(&mut h);
    let a = h.server.allocations().get(&control(&h)).unwrap();
    let peer = addr("127.0.0.1:6000");
    let mut out = vec![0u8; 1500];
    assert!(h.server.peer_connected(h.now, &a, peer, &mut out).is_none());
    let client = h.client;
    let (_, resp) = send_tcp(&mut h, client, &c, Method::CREATE_PERMISSION, |w| peer_addr(w, peer));
    assert_eq!(error_code(&resp), None);
    let (id, n) = h.server.peer_connected(h.now, &a, peer, &mut out).unwrap();
    let m = Message::parse(&out[..n]).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication));
    assert_eq!(m.get::<ConnectionId>().unwrap().0, id);
    assert_eq!(m.get::<XorPeerAddress>().unwrap().0, peer);
    assert!(h.server.connections().get(id).is_some());

    // The allocation goes: its unbound connections are closed at the next sweep.
    h.server.close_allocation(h.now, &control(&h), crate::server::EndReason::ConnectionClosed);
    h.server.sweep(h.now);
    assert_eq!(h.driver.closed_connections.lock().unwrap().as_slice(), &[id]);
}
