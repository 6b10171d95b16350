//! (A test module: declared under #[cfg(test)] in its parent.)
//! Scenario tests of several relay addresses per family (`relay-ip` given more than once):
//! allocations are spread round-robin, each is told its own address's advertised IP, an address
//! that cannot bind is skipped, and a dual allocation takes one address of each family.

use super::*;

fn relays(pairs: &[(&str, &str)]) -> Vec<RelayAddress> {
    pairs.iter().map(|(l, a)| RelayAddress { local: l.parse().unwrap(), advertised: a.parse().unwrap() }).collect()
}

fn harness() -> Harness {
    let relay_addresses = relays(&[
        ("10.0.0.1", "203.0.113.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("10.0.0.2", "203.0.113.2"),
        ("10.0.0.3", "203.0.113.3"),
        ("2001:db8::2", "2001:db8::2"),
    ]);
    Harness::new(ServerOptions { relay_addresses, ..Harness::default_options() })
}

/// Allocates from a fresh client port; the relayed IPs (two for a dual allocation), or the error code.
fn allocate_from(h: &mut Harness, port: u16, body: impl FnOnce(&mut MessageWriter<'_>)) -> Result<Vec<String>, u16> {
    h.client = addr(&format!("127.0.0.1:{port}"));
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, body);
    let m = Message::parse(&resp).unwrap();
    match m.message_type().class {
        Class::SuccessResponse => Ok(m.get_all::<XorRelayedAddress>().map(|a| a.unwrap().0.ip().to_string()).collect()),
        _ => Err(error_code(&resp).unwrap()),
    }
}

fn relayed_ip(h: &mut Harness, port: u16, body: impl FnOnce(&mut MessageWriter<'_>)) -> String {
    let ips = allocate_from(h, port, body).unwrap();
    assert_eq!(ips.len(), 1);
    ips.into_iter().next().unwrap()
}

#[test]
fn allocations_go_round_robin_over_the_addresses_of_the_family() {
    let mut h = harness();
    let ips: Vec<String> = (0..6).map(|i| relayed_ip(&mut h, 40000 + i, udp)).collect();
    assert_eq!(ips, ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.1", "203.0.113.2", "203.0.113.3"]);
    // Each socket is bound on the local address that goes with the advertised one.
    let bound: Vec<IpAddr> = h.driver.bound.lock().unwrap().iter().map(SocketAddr::ip).collect();
    let local: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(bound, [local.clone(), local].concat());
    // IPv6 has its own turn.
    let v6 = |h: &mut Harness, port| {
        relayed_ip(h, port, |w| {
            udp(w);
            w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
        })
    };
    assert_eq!(
        [v6(&mut h, 41000), v6(&mut h, 41001), v6(&mut h, 41002)],
        ["2001:db8::1", "2001:db8::2", "2001:db8::1"]
    );
}

#[test]
fn an_address_that_cannot_bind_is_skipped() {
    let mut h = harness();
    h.driver.busy_ips.lock().unwrap().push("10.0.0.2".parse().unwrap());
    let ips: Vec<String> = (0..4).map(|i| relayed_ip(&mut h, 40000 + i, udp)).collect();
    assert!(!ips.contains(&"203.0.113.2".to_owned()), "{ips:?}");
    assert!(ips.contains(&"203.0.113.1".to_owned()) && ips.contains(&"203.0.113.3".to_owned()), "{ips:?}");
    // Every address gone: 508.
    h.driver.busy_ips.lock().unwrap().extend(["10.0.0.1".parse::<IpAddr>().unwrap(), "10.0.0.3".parse().unwrap()]);
    assert_eq!(allocate_from(&mut h, 40100, udp).err(), Some(508));
}

#[test]
fn dual_allocations_take_one_of_each_family() {
    let mut h = harness();
    let dual = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
    };
    let seen: Vec<Vec<String>> = (0..2).map(|i| allocate_from(&mut h, 40000 + i, dual).unwrap()).collect();
    assert_eq!(seen, [["203.0.113.1", "2001:db8::1"], ["203.0.113.2", "2001:db8::2"]]);
}

#[test]
fn relay_ports_in_use_are_counted_per_relay_address() {
    let mut h = harness();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let in_use = |h: &Harness| h.server.relay_ports_in_use();
    // Every configured address is listed, at 0, before any allocation.
    assert_eq!(
        in_use(&h),
        [(ip("10.0.0.1"), 0), (ip("2001:db8::1"), 0), (ip("10.0.0.2"), 0), (ip("10.0.0.3"), 0), (ip("2001:db8::2"), 0)]
    );
    for port in 40000..40004 {
        relayed_ip(&mut h, port, udp);
    }
    let dual = allocate_from(&mut h, 40010, |w| {
        udp(w);
        w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
    });
    assert_eq!(dual.map(|ips| ips.len()), Ok(2));
    // Round robin: .1, .2, .3, .1, then the dual one's IPv4 on .2 and its IPv6 on the first v6.
    assert_eq!(
        in_use(&h),
        [(ip("10.0.0.1"), 2), (ip("2001:db8::1"), 1), (ip("10.0.0.2"), 2), (ip("10.0.0.3"), 1), (ip("2001:db8::2"), 0)]
    );
    h.advance(601);
    h.server.sweep(h.now);
    assert!(in_use(&h).iter().all(|(_, n)| *n == 0), "{:?}", in_use(&h));
    let ended = h.server.stats().ended().duration_ms.snapshot();
    assert_eq!(ended.count, 5, "every expired allocation is observed once");
    assert_eq!(ended.cumulative[DURATION_BUCKETS_MS.len() - 1], 5, "601 s is under 6 h");
    assert_eq!(ended.cumulative[2], 0, "601 s is over 1 min");
    assert!(ended.sum >= 5 * 600_000, "{}", ended.sum);
}
