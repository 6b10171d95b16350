//! RFC 8656 §11.5: ICMP errors relayed as Data indications with the ICMP attribute.

use super::*;

impl Harness {
    /// An ICMP error for a datagram to `peer` from the harness client's allocation.
    fn icmp(&self, peer: SocketAddr, icmp_type: u8, icmp_code: u8, error_data: u32) -> Option<Vec<u8>> {
        let five = FiveTuple { transport: Transport::Udp, client: self.client, server: self.local };
        let alloc = self.server.allocations().get(&five)?;
        let mut out = [0u8; ICMP_INDICATION_LEN];
        let icmp = Icmp { icmp_type, icmp_code, error_data };
        let n = self.server.icmp_from_peer(self.now, &alloc, peer, icmp, &mut out)?;
        Some(out[..n].to_vec())
    }
}

fn permit(h: &mut Harness, c: &Client, peer: SocketAddr) {
    let resp = h.send(c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap());
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
}

#[test]
fn icmp_needs_a_permission_and_becomes_a_data_indication_without_data() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    assert!(h.icmp(peer, 3, 3, 0).is_none(), "no permission: dropped");
    assert_eq!(h.server.stats().snapshot().icmp_dropped, 1);

    permit(&mut h, &c, peer);
    let bytes = h.icmp(peer, 3, 3, 0).unwrap();
    let m = Message::parse(&bytes).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::DATA, Class::Indication));
    assert_eq!(m.get::<XorPeerAddress>().unwrap().0, peer);
    assert_eq!(m.get::<Icmp>().unwrap(), Icmp { icmp_type: 3, icmp_code: 3, error_data: 0 });
    assert!(!m.has::<Data>(), "RFC 8656 §11.5: DATA absent");
    // The wire layout of §18.13: 16 reserved bits, type and code one byte each, error data.
    assert_eq!(&bytes[bytes.len() - 12..], &[0x80, 0x04, 0, 8, 0, 0, 3, 3, 0, 0, 0, 0]);
    assert_eq!(h.server.stats().snapshot().icmp_relayed, 1);

    h.advance(301);
    assert!(h.icmp(peer, 3, 3, 0).is_none(), "the permission expired");
}

#[test]
fn icmp_error_data_carries_only_the_mtu() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    permit(&mut h, &c, peer);
    let get = |b: Vec<u8>| Message::parse(&b).unwrap().get::<Icmp>().unwrap();
    assert_eq!(get(h.icmp(peer, 3, 4, 1280).unwrap()).error_data, 1280, "fragmentation needed");
    assert_eq!(get(h.icmp(peer, 11, 0, 77).unwrap()).error_data, 0, "time exceeded: zero");
    assert!(h.icmp(peer, 5, 0, 0).is_none(), "a redirect is not relayed");
}

#[test]
fn icmp_is_rate_limited_per_allocation() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    permit(&mut h, &c, peer);
    let relayed = (0..ICMP_PER_SECOND + 5).filter(|_| h.icmp(peer, 3, 3, 0).is_some()).count();
    assert_eq!(relayed as u64, ICMP_PER_SECOND);
    assert_eq!(h.server.stats().snapshot().icmp_dropped, 5);
    h.advance(1);
    assert!(h.icmp(peer, 3, 3, 0).is_some(), "a new second, a new budget");
}
