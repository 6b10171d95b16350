//! A `redis-server` of the test's own (fleet mode): on a free loopback port, without persistence,
//! killed on drop. Without `redis-server` the test prints SKIP (fails under `CI=true`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::ChildGuard;
use super::tools;

/// How long `redis-server` may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server` on 127.0.0.1.
pub struct RedisServer {
    guard: Option<ChildGuard>,
    bin: PathBuf,
    /// Its port.
    pub port: u16,
}

/// A port no one listens on now (the OS's choice for port 0, released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    /// Starts one; `None` (after a SKIP line) without `redis-server`.
    #[track_caller]
    pub fn start() -> Option<RedisServer> {
        let bin = tools::require("redis-server")?;
        let mut server = RedisServer { guard: None, bin, port: free_port() };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.bin);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.pings() {
            if let Some(status) = guard.wait_timeout(Duration::from_millis(20)) {
                panic!("redis-server on port {} exited at start: {status}", self.port);
            }
            assert!(Instant::now() < deadline, "redis-server on port {} did not answer PING", self.port);
        }
        self.guard = Some(guard);
    }

    /// Whether it answers PING now.
    fn pings(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else { return false };
        let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(200)) else { return false };
        redis::cmd("PING").query::<String>(&mut con).is_ok_and(|p| p == "PONG")
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection for the test's own look at the keys.
    pub fn connection(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("redis url");
        client.get_connection_with_timeout(Duration::from_secs(2)).expect("connect to redis-server")
    }

    /// Kills it (every connection drops; the port answers nothing until [`RedisServer::restart`]).
    pub fn kill(&mut self) {
        drop(self.guard.take());
    }

    /// Kills it (every connection drops) and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        drop(self.guard.take());
        self.spawn();
    }
}
