//! The bare forwarder: the kernel work of a relay and nothing else. Two sockets: datagrams from
//! clients on `front` go out of `back` to the peer; datagrams from the peer on `back` go out of
//! `front` to the client seen last. recvmmsg in, sendmmsg out, no TURN. Its CPU per message is the
//! ceiling a relay can reach on this machine.

use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::net::{self, Batch, Poller, SendQueue};

/// Serves until `duration` has passed (it is always bounded), printing `listening FRONT BACK`.
pub fn run(front: SocketAddr, back: SocketAddr, duration: Duration) -> Result<()> {
    let f = net::udp(front)?;
    let b = net::udp(back)?;
    f.set_nonblocking(true)?;
    b.set_nonblocking(true)?;
    println!("listening {} {}", f.local_addr()?, b.local_addr()?);
    let (fs, bs) = (net::state(&f)?, net::state(&b)?);
    let mut poller = Poller::new([f.as_fd(), b.as_fd()])?;
    let mut batch = Batch::new();
    let mut queue = SendQueue::default();
    let mut client: Option<SocketAddr> = None;
    let mut peer: Option<SocketAddr> = None;
    let mut ready = Vec::with_capacity(4);
    let end = Instant::now() + duration;
    let mut forwarded = 0u64;
    while Instant::now() < end {
        ready.clear();
        poller.wait(100, |k| ready.push(k));
        for &k in &ready {
            loop {
                let n = if k == 0 {
                    batch.recv(&fs, &f, |from, data| {
                        client = Some(from);
                        if let Some(p) = peer {
                            queue.push(Some(p), data);
                        }
                    })
                } else {
                    batch.recv(&bs, &b, |from, data| {
                        peer = Some(from);
                        if let Some(c) = client {
                            queue.push(Some(c), data);
                        }
                    })
                };
                forwarded += queue.len() as u64;
                queue.flush(if k == 0 { &b } else { &f });
                if n == 0 {
                    break;
                }
            }
        }
    }
    eprintln!("forwarder: {forwarded} datagrams");
    Ok(())
}
