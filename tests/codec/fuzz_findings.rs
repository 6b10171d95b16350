//! Findings of the `server_stateful` fuzz target in `src/server/turn.rs`, kept as regression tests
//! (both fixed: the response cache now matches method and all 128 bits of transaction ID, and an
//! expired allocation is gone before the sweep). Each test is a program for the fuzz harness
//! (`switchback::fuzzing::stateful`), whose own checks give the verdict, so the test reads as the
//! steps that lead to the bug.

use switchback::fuzzing::stateful::{Op, ScenarioConfig, allocate, encode, flags};

/// An Allocate from client 0 as user bob (REST), without FINGERPRINT so that a mutated copy is not
/// dropped for a bad FINGERPRINT before it reaches the response cache.
fn allocate() -> Op {
    Op::Allocate {
        client: 0,
        user: 1,
        flags: flags::NO_FINGERPRINT,
        opts: allocate::TRANSPORT,
        lifetime: 0,
        family: 0,
        token: 0,
    }
}

/// RFC 8656 §7.2 answers a *retransmission* from the cache. A request that only shares the 96-bit
/// transaction ID is not one: here a Refresh (the Allocate's bytes with the method changed, its
/// MESSAGE-INTEGRITY no longer valid) gets the cached Allocate success, before any authentication.
/// Fix: in `turn::request`, take the cached answer only when its method (and cookie) match.
#[test]

fn a_request_sharing_a_transaction_id_gets_the_cached_answer_of_another_method() {
    // Allocate request 0x0003 XOR 0x0007 = Refresh request 0x0004.
    let mutate = Op::Mutate { client: 0, from: 0, at: 1, xor: 0x07 };
    switchback::fuzzing::server_stateful(&encode(ScenarioConfig::default(), &[allocate(), mutate]));
}

/// The same with the magic cookie changed (an RFC 3489 request: its transaction ID is all 128
/// bits): the cached answer carries the other cookie, so it answers no request the client made.
#[test]

fn a_request_with_another_cookie_gets_the_cached_answer() {
    let mutate = Op::Mutate { client: 0, from: 0, at: 4, xor: 0x01 };
    switchback::fuzzing::server_stateful(&encode(ScenarioConfig::default(), &[allocate(), mutate]));
}

/// RFC 8656 §7 and §8: an allocation whose lifetime ran out is gone; a request on it gets 437. The
/// server keeps it until the next sweep (about a second in the daemon) and in that window a
/// CreatePermission succeeds and a Refresh brings it back to life (data flows again). Fix: in
/// `turn::request`, delete an allocation found expired (as the sweep would) before going on.
#[test]

fn a_request_on_an_expired_allocation_before_the_sweep_succeeds() {
    let program = [
        allocate(),
        // 600 s default lifetime, then 10 s more; no sweep.
        Op::Advance { unit: 2, amount: 10 },
        Op::Advance { unit: 1, amount: 10 },
        Op::Refresh { client: 0, user: 1, flags: 0, sel: 2, lifetime: 600 },
    ];
    switchback::fuzzing::server_stateful(&encode(ScenarioConfig::default(), &program));
}
