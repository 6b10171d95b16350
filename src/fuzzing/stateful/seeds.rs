//! The named seeds of `fuzz/corpus/server_stateful/`.

use super::ops::{Op, ScenarioConfig, allocate, encode, flags};

/// Named seeds for `fuzz/corpus/server_stateful/` (`seed-<name>.bin`): each walks the harness
/// through authentication into a part of the state space. Users: 0 alice (static), 1 bob (REST,
/// two hours), 2 carol (REST, one minute), 3 mallory (unknown).
pub fn server_stateful_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use Op::*;
    let deny = ScenarioConfig::default();
    let open = ScenarioConfig { allow_loopback: true, ..ScenarioConfig::default() };
    let alloc = |client: u8, user: u8, opts: u8| Allocate {
        client,
        user,
        flags: 0,
        opts: allocate::TRANSPORT | opts,
        lifetime: 1200,
        family: 0,
        token: 0,
    };
    let v6 = |client: u8, family: u8| Allocate {
        client,
        user: 1,
        flags: 0,
        opts: allocate::TRANSPORT | allocate::FAMILY,
        lifetime: 0,
        family,
        token: 0,
    };
    let with_flags = |client: u8, user: u8, flags: u8| Allocate {
        client,
        user,
        flags,
        opts: allocate::TRANSPORT,
        lifetime: 0,
        family: 0,
        token: 0,
    };
    let perm = |client: u8, peers: &[u8]| CreatePermission { client, user: 1, flags: 0, peers: peers.to_vec() };
    let bind = |client: u8, channel: u8, peer: u8| ChannelBind { client, user: 1, flags: 0, channel, peer, omit: 0 };
    let refresh = |client: u8, user: u8, sel: u8| Refresh { client, user, flags: 0, sel, lifetime: 900 };
    let secs = |n: u8| Advance { unit: 1, amount: n };
    let mins = |n: u8| Advance { unit: 2, amount: n };
    vec![
        (
            "send-and-channel",
            encode(
                deny,
                &[
                    alloc(0, 1, allocate::LIFETIME),
                    perm(0, &[0, 1]),
                    Send { client: 0, peer: 0, len: 100, fill: 1 },
                    Peer { client: 0, peer: 0, len: 1000, fill: 2 },
                    Peer { client: 0, peer: 0, len: 5, fill: 3 },
                    bind(0, 0, 1),
                    ChannelData { client: 0, channel: 0, len: 50, fill: 4 },
                    Peer { client: 0, peer: 1, len: 1200, fill: 5 },
                    Peer { client: 0, peer: 1, len: 3, fill: 6 },
                    Peer { client: 0, peer: 2, len: 7, fill: 7 },
                    refresh(0, 1, 1),
                ],
            ),
        ),
        (
            "denied-peers",
            encode(
                deny,
                &[
                    alloc(0, 1, 0),
                    perm(0, &[4]),
                    perm(0, &[5, 6]),
                    perm(0, &[7, 9]),
                    perm(0, &[11, 12]),
                    perm(0, &[0, 4]),
                    bind(0, 1, 4),
                    bind(0, 2, 10),
                    Send { client: 0, peer: 4, len: 10, fill: 0 },
                    Send { client: 0, peer: 5, len: 10, fill: 0 },
                    Peer { client: 0, peer: 4, len: 10, fill: 0 },
                    Peer { client: 0, peer: 5, len: 10, fill: 0 },
                    v6(3, 1),
                    perm(3, &[8]),
                    perm(3, &[13]),
                    perm(3, &[4]),
                    Send { client: 3, peer: 8, len: 10, fill: 0 },
                ],
            ),
        ),
        (
            // RFC 6062: alice's TCP allocation connects to a peer; bob's valid credentials cannot
            // bind the connection from a fresh TCP connection (441), alice's can.
            "rfc6062-connection-bind-two-users",
            encode(
                deny,
                &[
                    alloc(4, 0, allocate::TCP),
                    Connect { client: 4, user: 0, flags: 0, peer: 1 },
                    ConnectionBind { client: 6, user: 1, flags: 0, conn: 0 },
                    ConnectionBind { client: 7, user: 0, flags: 0, conn: 0 },
                ],
            ),
        ),
        (
            "even-port-reservation",
            encode(
                deny,
                &[
                    alloc(0, 1, allocate::EVEN_PORT | allocate::RESERVE),
                    alloc(1, 1, allocate::TOKEN),
                    alloc(2, 0, allocate::EVEN_PORT | allocate::RESERVE),
                    secs(31),
                    alloc(5, 0, allocate::TOKEN),
                    Sweep,
                    alloc(5, 0, allocate::TOKEN),
                    alloc(5, 0, allocate::EVEN_PORT),
                ],
            ),
        ),
        (
            "expiry-and-sweep",
            encode(
                deny,
                &[
                    alloc(0, 1, 0),
                    perm(0, &[0]),
                    bind(0, 0, 1),
                    mins(6),
                    Send { client: 0, peer: 0, len: 10, fill: 0 },
                    Peer { client: 0, peer: 0, len: 10, fill: 0 },
                    ChannelData { client: 0, channel: 0, len: 10, fill: 0 },
                    Sweep,
                    mins(15),
                    Send { client: 0, peer: 0, len: 10, fill: 0 },
                    Sweep,
                    Ghost { index: 0, peer: 0, len: 10, fill: 0 },
                    refresh(0, 1, 0),
                    alloc(0, 1, 0),
                ],
            ),
        ),
        (
            "quotas",
            encode(
                ScenarioConfig { user_quota: 1, total_quota: 2, ..deny },
                &[alloc(0, 0, 0), alloc(1, 0, 0), alloc(1, 1, 0), alloc(2, 1, 0), refresh(0, 0, 1), alloc(2, 1, 0)],
            ),
        ),
        (
            "ports-exhausted",
            encode(
                deny,
                &[
                    Knobs { busy: 0xFF, fail_binds: 0, fail_sends: false },
                    alloc(0, 1, 0),
                    Knobs { busy: 0x0F, fail_binds: 1, fail_sends: false },
                    alloc(0, 1, 0),
                    alloc(0, 1, 0),
                    Knobs { busy: 0, fail_binds: 0, fail_sends: true },
                    perm(0, &[1]),
                    Send { client: 0, peer: 1, len: 1, fill: 0 },
                    Knobs { busy: 0, fail_binds: 1 | 1 << 2, fail_sends: false },
                    alloc(1, 1, allocate::EVEN_PORT | allocate::RESERVE),
                    alloc(2, 1, 0),
                    alloc(3, 1, 0),
                    alloc(5, 1, 0),
                    alloc(4, 1, 0),
                ],
            ),
        ),
        (
            "stale-nonce-and-rest-expiry",
            encode(
                deny,
                &[
                    alloc(0, 2, 0),
                    secs(90),
                    refresh(0, 2, 2),
                    refresh(0, 1, 2),
                    mins(61),
                    alloc(1, 1, 0),
                    with_flags(2, 3, 0),
                    with_flags(2, 1, flags::WRONG_PASSWORD),
                    with_flags(2, 1, flags::BAD_NONCE),
                    with_flags(2, 1, flags::UNKNOWN_REQUIRED | flags::UNKNOWN_OPTIONAL),
                    with_flags(2, 1, flags::WRONG_REALM),
                    with_flags(2, 1, flags::UNSIGNED),
                    with_flags(2, 1, flags::NO_FINGERPRINT | flags::SOFTWARE),
                    refresh(1, 0, 2),
                ],
            ),
        ),
        (
            "ipv6-and-relay-addresses",
            encode(
                ScenarioConfig { relay_addresses: true, software: true, ..deny },
                &[
                    v6(3, 1),
                    perm(3, &[3, 0]),
                    perm(3, &[3]),
                    bind(3, 3, 3),
                    Send { client: 3, peer: 3, len: 20, fill: 9 },
                    Peer { client: 3, peer: 3, len: 999, fill: 1 },
                    Peer { client: 3, peer: 3, len: 1, fill: 2 },
                    v6(0, 1),
                    v6(1, 9),
                    v6(2, 0),
                    perm(2, &[0]),
                    Send { client: 2, peer: 0, len: 1, fill: 2 },
                ],
            ),
        ),
        (
            "loopback-allowed-relay-to-relay",
            encode(
                open,
                &[
                    alloc(0, 1, 0),
                    alloc(1, 0, 0),
                    perm(0, &[15, 4]),
                    bind(0, 0, 15),
                    ChannelData { client: 0, channel: 0, len: 33, fill: 1 },
                    Send { client: 0, peer: 4, len: 2, fill: 0 },
                    Peer { client: 0, peer: 4, len: 600, fill: 0 },
                    Peer { client: 0, peer: 4, len: 2, fill: 0 },
                    Peer { client: 0, peer: 15, len: 9, fill: 0 },
                    perm(0, &[6]),
                ],
            ),
        ),
        (
            "retransmit",
            encode(
                deny,
                &[
                    alloc(0, 1, 0),
                    Retransmit { client: 0 },
                    perm(0, &[0]),
                    Retransmit { client: 0 },
                    secs(20),
                    Retransmit { client: 0 },
                    refresh(0, 1, 1),
                    Retransmit { client: 0 },
                ],
            ),
        ),
        (
            "replayed-and-mutated",
            encode(
                deny,
                &[
                    alloc(0, 1, 0),
                    perm(0, &[0]),
                    Mutate { client: 1, from: 0, at: 0, xor: 0 },
                    Mutate { client: 4, from: 0, at: 0, xor: 0 },
                    Mutate { client: 0, from: 0, at: 20, xor: 0x40 },
                    Mutate { client: 0, from: 0, at: 40, xor: 1 },
                    Mutate { client: 0, from: 0, at: 2, xor: 4 },
                    alloc(1, 1, 0),
                    Mutate { client: 1, from: 1, at: 70, xor: 0x80 },
                ],
            ),
        ),
        (
            "tcp-client-and-channels",
            encode(
                ScenarioConfig { strict: true, ..deny },
                &[
                    alloc(4, 1, 0),
                    ChannelData { client: 4, channel: 0, len: 3, fill: 0 },
                    alloc(0, 1, 0),
                    bind(0, 5, 0),
                    bind(0, 7, 0),
                    bind(0, 3, 0),
                    bind(0, 3, 1),
                    bind(0, 2, 0),
                    ChannelData { client: 0, channel: 3, len: 4, fill: 0 },
                    ChannelData { client: 0, channel: 1, len: 4, fill: 0 },
                    ChannelBind { client: 0, user: 1, flags: 0, channel: 0, peer: 0, omit: 1 },
                    ChannelBind { client: 0, user: 1, flags: 0, channel: 0, peer: 0, omit: 2 },
                ],
            ),
        ),
        (
            "raw-and-close-all",
            encode(
                deny,
                &[
                    alloc(0, 1, 0),
                    Raw {
                        client: 0,
                        bytes: vec![0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
                    },
                    Raw { client: 0, bytes: vec![0x40, 0x00, 0x00, 0x10, 1, 2] },
                    Raw {
                        client: 0,
                        bytes: vec![
                            0, 0x16, 0, 8, 0x21, 0x12, 0xA4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x13, 0,
                            0x40, 1, 2, 3, 4,
                        ],
                    },
                    CloseAll,
                    Ghost { index: 0, peer: 0, len: 4, fill: 0 },
                    alloc(0, 1, 0),
                ],
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::ops::Input;
    use super::*;

    #[test]
    fn ops_round_trip_through_their_encoding() {
        for (name, bytes) in server_stateful_seeds() {
            let mut input = Input(&bytes);
            let _ = input.u8();
            let mut again = vec![bytes[0]];
            while !input.is_empty() {
                Op::decode(&mut input).encode(&mut again);
            }
            assert_eq!(again, bytes, "{name}");
        }
    }

    #[test]
    fn seeds_get_past_authentication_and_relay_both_ways() {
        let run = |name: &str| {
            let (_, bytes) = server_stateful_seeds().into_iter().find(|(n, _)| *n == name).unwrap();
            super::super::run(&bytes)
        };
        let s = run("send-and-channel");
        assert_eq!(s.allocations, 1, "{s:?}");
        assert_eq!(s.to_peers, 2, "{s:?}");
        assert_eq!(s.to_clients, 5, "{s:?}");
        let s = run("loopback-allowed-relay-to-relay");
        assert_eq!(s.allocations, 2, "{s:?}");
        assert!(s.to_peers >= 2 && s.to_clients >= 2, "{s:?}");
        let s = run("even-port-reservation");
        assert_eq!(s.allocations, 4, "{s:?}");
        for (name, _) in server_stateful_seeds() {
            let s = run(name);
            assert!(s.allocations >= 1, "{name}: {s:?}");
        }
    }
}
