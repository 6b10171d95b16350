//! coturn's test tools: `turnutils_peer` as a UDP echo peer and the totals `turnutils_uclient`
//! prints. Callers check the tools with [`super::tools::require`] first.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::ChildGuard;

/// A free UDP port on `ip` for an external process to bind: bind port 0, read it, release it.
/// (A tiny race with other processes remains; callers that can retry should.)
pub fn free_udp_port(ip: &str) -> u16 {
    let socket = std::net::UdpSocket::bind((ip, 0)).expect("bind port 0");
    socket.local_addr().expect("local addr").port()
}

/// A running `turnutils_peer` (a UDP echo server) on 127.0.0.1.
pub struct EchoPeer {
    _guard: ChildGuard,
    pub port: u16,
}

impl EchoPeer {
    /// Starts `turnutils_peer` on 127.0.0.1 and a free port.
    pub fn start() -> EchoPeer {
        EchoPeer::start_on("127.0.0.1")
    }

    /// Starts `turnutils_peer` on `ip` and a free port, retrying with another port if it cannot bind.
    pub fn start_on(ip: &str) -> EchoPeer {
        for _ in 0..5 {
            let port = free_udp_port(ip);
            let mut guard = ChildGuard::spawn(
                Command::new("turnutils_peer")
                    .args(["-L", ip, "-p", &port.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            // Bound once the port is taken; gone if it could not bind.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if guard.child_mut().try_wait().expect("try_wait").is_some() {
                    break;
                }
                if std::net::UdpSocket::bind((ip, port)).is_err() {
                    return EchoPeer { _guard: guard, port };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("turnutils_peer did not start on {ip}");
    }
}

/// The numbers uclient prints at the end of a run.
#[derive(Debug, PartialEq, Eq)]
pub struct Totals {
    /// `start_mclient: tot_send_msgs=S, tot_recv_msgs=R` (the final line, without `msz=`).
    pub sent: u64,
    pub received: u64,
    /// `Total lost packets N (P%), total send dropped D (Q%)`.
    pub lost: u64,
    pub send_dropped: u64,
    /// `channel bind sent` lines (uclient with `-v`).
    pub channel_binds: usize,
}

/// The number after `key` in `line` (digits up to the first non-digit).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// uclient's final totals, `None` when the run ended before printing them.
pub fn totals(stdout: &str) -> Option<Totals> {
    let final_counts = stdout.lines().rev().find(|l| l.contains("start_mclient: tot_send_msgs="))?;
    let lost = stdout.lines().rev().find(|l| l.contains("Total lost packets "))?;
    Some(Totals {
        sent: number_after(final_counts, "tot_send_msgs=")?,
        received: number_after(final_counts, "tot_recv_msgs=")?,
        lost: number_after(lost, "Total lost packets ")?,
        send_dropped: number_after(lost, "total send dropped ")?,
        channel_binds: stdout.lines().filter(|l| l.contains("channel bind sent")).count(),
    })
}
