//! The UDP listener: one task per socket, receive a datagram, let the server answer, send the answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::debug;

use super::TurnServer;
use super::{IoStats, stopped};
use crate::proto::stun::MAX_MESSAGE_LEN;
use crate::server::{Outcome, Received, RequestLatency, Transport};

/// The largest UDP payload (IPv6 jumbograms aside).
const MAX_DATAGRAM: usize = 65535;

pub(super) struct UdpDriver {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) local: SocketAddr,
    pub(super) server: Arc<TurnServer>,
    pub(super) stats: Arc<IoStats>,
}

impl UdpDriver {
    /// Serves until `stop` fires. Errors are counted and skipped, never fatal.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut out = vec![0u8; MAX_MESSAGE_LEN];
        loop {
            let received = tokio::select! {
                r = self.socket.recv_from(&mut buf) => r,
                () = stopped(&mut stop) => break,
            };
            let (len, source) = match received {
                Ok(r) => r,
                Err(e) => {
                    // For example ECONNREFUSED from an ICMP error on some systems: not ours to fix.
                    IoStats::bump(&self.stats.udp_recv_errors);
                    debug!(local = %self.local, error = %e, "udp recv failed");
                    continue;
                }
            };
            let Some(data) = buf.get(..len) else { continue };
            let rx = Received { transport: Transport::Udp, source, local: self.local, data };
            // The clock is read again only for STUN requests (the latency histogram), never for data.
            let (start, request) = (Instant::now(), RequestLatency::request_index(data));
            let outcome = self.server.handle(start, &rx, &mut out);
            if let Some(i) = request {
                self.server.stats().latency().observe(i, start.elapsed());
            }
            if let Outcome::Reply(n) = outcome {
                let Some(reply) = out.get(..n) else { continue };
                if let Err(e) = self.socket.send_to(reply, source).await {
                    IoStats::bump(&self.stats.udp_send_errors);
                    debug!(local = %self.local, %source, error = %e, "udp send failed");
                }
            }
        }
        debug!(local = %self.local, "udp listener stopped");
    }
}
