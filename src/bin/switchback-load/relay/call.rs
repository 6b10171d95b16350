//! The call model (`relay --call`): N allocations, each sending `--pps` messages a second on a
//! fixed schedule, stamped when sent, late sends counted.

use std::time::Instant;

use super::{Client, Conn, Params, Tally, stamp};

/// The call model's schedule: message `g` of the run is client `g % N`'s, due `g / (N * pps)`
/// seconds after the start, so each client sends every `1 / pps` s and the clients are spread
/// evenly over that interval (no common burst). Each pass sends every message due by now, one
/// `send` per message (each client has a socket of its own, so there is nothing to batch on this
/// leg; the echo peer and the receives batch). A message is stamped when it is sent, so a tool
/// running late does not inflate the latency; it is counted in `late` instead. A pass sends at
/// most [`CALL_PASS`] messages, so the echoes are read in between even when the tool falls behind.
pub(super) fn send_calls(p: &Params, clients: &mut [Client], tally: &mut Tally, next: &mut u64) {
    let count = clients.len();
    let n = count.max(1) as u64;
    let due_ns = |g: u64| call_due_ns(p, count, g);
    let mut ns = Instant::now().duration_since(tally.t0).as_nanos() as u64;
    let mut since_clock = 0u32;
    let mut sent = 0;
    while due_ns(*next) <= ns && tally.sent < p.count && sent < CALL_PASS {
        sent += 1;
        let g = *next;
        *next += 1;
        if ns.saturating_sub(due_ns(g)) > 1_000_000 {
            tally.late += 1;
        }
        let i = (g % n) as usize;
        let Some(c) = clients.get_mut(i) else { continue };
        if let Some(pl) = c.template.get_mut(c.offset..) {
            stamp(pl, i, ns);
        }
        let took = match &mut c.conn {
            Conn::Udp { socket, .. } => usize::from(socket.send(&c.template).is_ok()),
            Conn::Tcp(t) => {
                t.wbuf.extend_from_slice(&c.template);
                t.flush();
                1
            }
        };
        tally.sent_total += took as u64;
        if tally.measuring.is_some() {
            tally.sent += took as u64;
        }
        // The clock, again every 64 sends: the stamps stay within a few µs of the send.
        since_clock += 1;
        if since_clock == 64 {
            since_clock = 0;
            ns = Instant::now().duration_since(tally.t0).as_nanos() as u64;
        }
    }
}

/// When the call model's message `g` is due, in ns from the start (see [`send_calls`]).
fn call_due_ns(p: &Params, clients: usize, g: u64) -> u64 {
    let per_s = (clients.max(1) as u64).saturating_mul(u64::from(p.call_pps)).max(1);
    (u128::from(g) * 1_000_000_000 / u128::from(per_s)).min(u128::from(u64::MAX)) as u64
}

/// Whether the call model's message `g` is due now.
pub(super) fn call_due(p: &Params, clients: usize, g: u64, t0: Instant) -> bool {
    call_due_ns(p, clients, g) <= Instant::now().duration_since(t0).as_nanos() as u64
}

/// Messages one pass of the call model sends at most before it reads again.
const CALL_PASS: usize = 256;
