//! Helpers shared by the integration tests: a guard that kills a child process on drop, running a
//! command with a timeout, starting the daemon and reading its banner, and skipping a test whose
//! external tool is missing (but failing under `CI=true`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any spawned process may run before a test gives up on it.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// Owns a child process: it is killed and reaped when the guard drops (also when a test panics).
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        ChildGuard { child }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (for example `TERM`, `INT`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").arg(format!("-{signal}")).arg(self.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// Runs `cmd` to completion (stdin closed), killing it and failing the test after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(cmd);
    let stdout = drain(guard.child_mut().stdout.take().expect("stdout"));
    let stderr = drain(guard.child_mut().stderr.take().expect("stderr"));
    let Some(status) = guard.wait_timeout(timeout) else {
        panic!("{cmd:?} did not finish within {timeout:?}");
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout thread").into_bytes(),
        stderr: stderr.join().expect("stderr thread").into_bytes(),
    }
}

/// Whether an executable `name` is on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `true` when `tool` is on `PATH`. Otherwise the test should return early: under plain `cargo test`
/// this prints why it is skipped; with `CI=true` a missing tool is a failure.
pub fn require_tool(tool: &str, install_hint: &str) -> bool {
    if on_path(tool).is_some() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("`{tool}` is not on PATH and CI=true: {install_hint}");
    }
    eprintln!("SKIPPED: `{tool}` is not on PATH ({install_hint}); under CI=true this test fails");
    false
}

/// The daemon, started with some flags, and the addresses from its banner.
pub struct Daemon {
    pub guard: ChildGuard,
    /// `listening udp ADDR` lines.
    pub udp: Vec<SocketAddr>,
    /// `listening tcp ADDR` lines.
    pub tcp: Vec<SocketAddr>,
    /// Every stdout line up to the `stun:` line.
    pub banner: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
    /// `listening tls ADDR` lines.
    pub tls: Vec<SocketAddr>,
    /// `listening http-NAME ADDR` lines: (NAME, ADDR).
    pub http: Vec<(String, SocketAddr)>,
}

impl Daemon {
    /// Starts `switchback ARGS` and waits (bounded) for its banner.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with_env(args, &[])
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback"));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.envs(env.iter().copied());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let stderr = drain(guard.child_mut().stderr.take().expect("stderr"));
        let stdout = guard.child_mut().stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut daemon = Daemon {
            guard,
            udp: Vec::new(),
            tcp: Vec::new(),
            banner: Vec::new(),
            stderr: Some(stderr),
            tls: Vec::new(),
            http: Vec::new(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = daemon.guard.child.kill();
                    let stderr = daemon.stderr.take().map(|h| h.join().unwrap_or_default());
                    panic!("no banner from the daemon ({e}); banner so far {:?}; stderr: {stderr:?}", daemon.banner);
                }
            };
            daemon.banner.push(line.clone());
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("listening"), Some("udp"), Some(addr)) => daemon.udp.push(addr.parse().expect("udp addr")),
                (Some("listening"), Some("tcp"), Some(addr)) => daemon.tcp.push(addr.parse().expect("tcp addr")),
                (Some("listening"), Some("tls"), Some(addr)) => daemon.tls.push(addr.parse().expect("tls addr")),
                (Some("listening"), Some(face), Some(addr)) if face.starts_with("http-") => {
                    daemon.http.push((face.trim_start_matches("http-").to_owned(), addr.parse().expect("http addr")))
                }
                _ => {}
            }
            if line.starts_with("stun:") || line.starts_with("stuns:") {
                return daemon;
            }
        }
    }

    /// The bound address of the HTTP face `name` (`api`, `metrics`, `admin`).
    pub fn http_addr(&self, name: &str) -> SocketAddr {
        self.http.iter().find(|(n, _)| n == name).map(|&(_, a)| a).unwrap_or_else(|| panic!("no http-{name} listener"))
    }

    /// Sends `signal` and waits (bounded) for the exit; returns the status and everything on stderr.
    pub fn stop_with(self, signal: &str) -> (ExitStatus, String) {
        self.guard.signal(signal);
        self.wait_exit(signal)
    }

    /// Waits (bounded) for an exit already asked for (`signal` names it in the panic message).
    pub fn wait_exit(mut self, signal: &str) -> (ExitStatus, String) {
        let status = self
            .guard
            .wait_timeout(PROCESS_TIMEOUT)
            .unwrap_or_else(|| panic!("daemon did not exit within {PROCESS_TIMEOUT:?} after SIG{signal}"));
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        (status, stderr)
    }
}

/// A file in the temp dir that is removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    /// Writes `contents` to a fresh file named after `name` (unique in the process: tests running
    /// in parallel may use the same name).
    pub fn new(name: &str, contents: &str) -> TempFile {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("switchback-test-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile { path }
    }

    /// The path as a `&str` for command lines.
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------------
// TURN fixtures (in-process server, echo peer, a raw STUN client), used by turn_e2e, uclient_interop
// and chromium. They need the tokio drivers, hence the `runtime` feature.

/// The realm of [`TurnFixture`] servers.
#[cfg(feature = "runtime")]
pub const TURN_REALM: &str = "test.realm";
/// The REST shared secret of [`TurnFixture`] servers.
#[cfg(feature = "runtime")]
pub const TURN_SECRET: &str = "secret";
/// The static user of [`TurnFixture`] servers, and its password.
#[cfg(feature = "runtime")]
pub const TURN_USER: (&str, &str) = ("alice", "pw");

/// An in-process TURN server on 127.0.0.1 (UDP and TCP, OS-chosen port) with REST credentials
/// ([`TURN_SECRET`]) and one static user ([`TURN_USER`]). Dropping it stops the listeners.
#[cfg(feature = "runtime")]
pub struct TurnFixture {
    pub server: std::sync::Arc<switchback::io::TurnServer>,
    pub running: switchback::io::Running,
    /// The UDP listener's address.
    pub udp: SocketAddr,
    /// The REST configuration the server checks, to mint credentials with.
    pub rest: switchback::auth::RestCredentials,
    /// The TLS listener's address and certificate, for [`TurnFixture::start_tls`] servers.
    pub tls: Option<(SocketAddr, rustls_pki_types::CertificateDer<'static>)>,
}

#[cfg(feature = "runtime")]
impl TurnFixture {
    /// Starts a server with `options` (set `allow_loopback_peers` for peers on 127.0.0.1).
    pub async fn start(options: switchback::server::ServerOptions) -> TurnFixture {
        TurnFixture::start_with(options, None, switchback::io::Limits::default()).await
    }

    /// [`TurnFixture::start`] with a TLS listener too, presenting a fresh self-signed certificate
    /// for 127.0.0.1 (see [`TurnFixture::tls_client`]).
    pub async fn start_tls(options: switchback::server::ServerOptions, limits: switchback::io::Limits) -> TurnFixture {
        let identity = switchback::io::TlsIdentity::self_signed(&["127.0.0.1", "localhost"]).expect("self-signed");
        TurnFixture::start_with(options, Some(identity), limits).await
    }

    /// The TLS listener's address.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls.as_ref().expect("a fixture started with start_tls").0
    }

    /// A TLS client trusting this fixture's certificate, for the name `127.0.0.1`.
    pub fn tls_client(&self) -> switchback::client::TlsClient {
        switchback::client::TlsClient::new("127.0.0.1", self.tls_roots()).expect("a TLS client")
    }

    /// A root store with this fixture's certificate.
    pub fn tls_roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.tls.as_ref().expect("a fixture started with start_tls").1.clone()).expect("a root");
        roots
    }

    async fn start_with(
        options: switchback::server::ServerOptions,
        tls: Option<switchback::io::TlsIdentity>,
        limits: switchback::io::Limits,
    ) -> TurnFixture {
        use switchback::auth::{AuthConfig, Authenticator, RestCredentials, Secret, StaticCredential};
        let rest = RestCredentials::new(vec![Secret::new(TURN_SECRET)]);
        let mut auth = AuthConfig::new(TURN_REALM);
        auth.rest = Some(rest.clone());
        auth.users.insert(TURN_USER.0.into(), StaticCredential::Password(TURN_USER.1.into()));
        let mut nonce_key = [0u8; 32];
        getrandom_fill(&mut nonce_key);
        let server = switchback::io::UdpRelay::server(options, Some(Authenticator::new(auth, nonce_key)));
        let config = switchback::config::Config { listening_port: 0, ..switchback::config::Config::default() };
        let certificate = tls.as_ref().map(|t| t.end_entity().clone());
        let tls = tls.map(switchback::io::ReloadableTls::new);
        let running =
            switchback::io::bind_with_tls(&config, server.clone(), limits, tls).await.expect("bind the TURN server");
        let udp = running.local_addr(switchback::server::Transport::Udp).expect("a UDP listener");
        let tls = running.local_addr(switchback::server::Transport::Tls).zip(certificate);
        TurnFixture { server, running, udp, rest, tls }
    }

    /// A server with `options` that listens on UDP and TCP, and on TLS too when `transport` is
    /// [`Transport::Tls`](switchback::server::Transport::Tls): a fixture for a test that runs over
    /// each transport.
    pub async fn start_for(
        transport: switchback::server::Transport,
        options: switchback::server::ServerOptions,
    ) -> TurnFixture {
        match transport {
            switchback::server::Transport::Tls => {
                TurnFixture::start_tls(options, switchback::io::Limits::default()).await
            }
            _ => TurnFixture::start(options).await,
        }
    }

    /// The address of the listener for `transport`.
    pub fn addr(&self, transport: switchback::server::Transport) -> SocketAddr {
        self.running.local_addr(transport).unwrap_or_else(|| panic!("no {transport:?} listener"))
    }

    /// Options for our TURN client to reach this fixture over `transport` (TLS trusting its
    /// certificate).
    pub fn client_options(&self, transport: switchback::server::Transport) -> switchback::client::turn::ClientOptions {
        use switchback::client::turn::Transport as Leg;
        let transport = match transport {
            switchback::server::Transport::Udp => Leg::Udp,
            switchback::server::Transport::Tcp => Leg::Tcp,
            switchback::server::Transport::Tls => Leg::Tls(self.tls_client()),
        };
        switchback::client::turn::ClientOptions { transport, ..Default::default() }
    }

    /// An allocation by our TURN client over `transport`.
    pub async fn allocate(
        &self,
        transport: switchback::server::Transport,
        creds: switchback::client::turn::Credentials,
    ) -> Result<switchback::client::turn::TurnClient, switchback::client::ClientError> {
        switchback::client::turn::TurnClient::allocate_with(self.addr(transport), creds, self.client_options(transport))
            .await
    }

    /// A server that relays to loopback peers, otherwise with the default options.
    pub async fn loopback() -> TurnFixture {
        TurnFixture::start(switchback::server::ServerOptions {
            allow_loopback_peers: true,
            ..switchback::server::ServerOptions::default()
        })
        .await
    }

    /// Fresh REST credentials for `user`, valid for an hour.
    pub fn rest_credentials(&self, user: &str) -> (String, String) {
        self.rest.mint(user, 3600, unix_now()).expect("a REST secret is configured")
    }

    /// The server's counters now.
    pub fn stats(&self) -> switchback::server::StatsSnapshot {
        self.server.stats().snapshot()
    }
}

/// Seconds since the Unix epoch.
#[cfg(feature = "runtime")]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// Fills `buf` with random bytes (nonce keys, transaction IDs).
#[cfg(feature = "runtime")]
pub fn getrandom_fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("OS randomness");
}

/// A free UDP port on 127.0.0.1 for an external process to bind: bind port 0, read it, release it.
/// (A tiny race with other processes remains; callers that can retry should.)
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket.local_addr().expect("local addr").port()
}

/// A UDP echo peer on 127.0.0.1:0: every datagram goes back to its sender. The task ends when the
/// returned handle is aborted (or the runtime stops).
#[cfg(feature = "runtime")]
pub async fn udp_echo_peer() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind the echo peer");
    let addr = socket.local_addr().expect("echo peer addr");
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (addr, task)
}

/// A bare STUN/TURN client over one UDP socket, for requests [`switchback::client::turn::TurnClient`]
/// does not make (an RFC 5766 channel number, a Refresh from a 5-tuple whose allocation is gone).
/// Handles the 401 dance itself.
#[cfg(feature = "runtime")]
pub struct RawTurn {
    pub socket: tokio::net::UdpSocket,
    pub server: SocketAddr,
    username: String,
    password: String,
    auth: Option<(String, String)>,
}

/// A response [`RawTurn::request`] got: its class and error code (0 on success), and the bytes.
#[cfg(feature = "runtime")]
#[derive(Debug)]
pub struct RawResponse {
    pub success: bool,
    pub code: u16,
    pub bytes: Vec<u8>,
}

#[cfg(feature = "runtime")]
impl RawTurn {
    /// A socket on `bind` (for example `127.0.0.1:0`) talking to `server` with these credentials.
    pub async fn new(bind: SocketAddr, server: SocketAddr, username: &str, password: &str) -> RawTurn {
        let socket = tokio::net::UdpSocket::bind(bind).await.expect("bind the raw client");
        RawTurn { socket, server, username: username.into(), password: password.into(), auth: None }
    }

    /// Sends a request of `method` with the attributes `body` adds, signed once the realm and nonce
    /// are known (a 401 or 438 teaches them and the request is repeated); returns the final answer.
    /// Retransmits every 500 ms, gives up after 5 s.
    pub async fn request(
        &mut self,
        method: switchback::proto::stun::Method,
        body: &dyn Fn(
            &mut switchback::proto::stun::MessageWriter<'_>,
        ) -> Result<(), switchback::proto::stun::EncodeError>,
    ) -> RawResponse {
        use switchback::proto::stun::{
            Class, ErrorCode, IntegrityKey, Message, MessageType, MessageWriter, Nonce, Realm, TransactionId, Username,
            codes, long_term_key_md5,
        };
        for _ in 0..3 {
            let mut id = [0u8; 12];
            getrandom_fill(&mut id);
            let tid = TransactionId(id);
            let mut buf = vec![0u8; 1500];
            let n = {
                let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
                body(&mut w).unwrap();
                if let Some((realm, nonce)) = &self.auth {
                    w.add(&Username(&self.username)).unwrap();
                    w.add(&Realm(realm)).unwrap();
                    w.add(&Nonce(nonce)).unwrap();
                    let key = long_term_key_md5(&self.username, realm, &self.password);
                    w.add_message_integrity(&IntegrityKey::new(&key)).unwrap();
                }
                w.add_fingerprint().unwrap();
                w.finish()
            };
            let answer = self.exchange(&buf[..n], tid).await;
            let m = Message::parse(&answer).expect("a STUN response");
            if m.message_type().class == Class::SuccessResponse {
                return RawResponse { success: true, code: 0, bytes: answer };
            }
            let code = m.get::<ErrorCode>().expect("ERROR-CODE in an error response").code;
            let retry = match code {
                codes::UNAUTHENTICATED => self.auth.is_none(),
                codes::STALE_NONCE => true,
                _ => false,
            };
            if retry && let (Ok(realm), Ok(nonce)) = (m.get::<Realm>(), m.get::<Nonce>()) {
                self.auth = Some((realm.0.to_string(), nonce.0.to_string()));
                continue;
            }
            return RawResponse { success: false, code, bytes: answer };
        }
        panic!("authentication did not converge in three rounds");
    }

    async fn exchange(&self, request: &[u8], tid: switchback::proto::stun::TransactionId) -> Vec<u8> {
        use switchback::proto::stun::Message;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 65536];
        loop {
            assert!(tokio::time::Instant::now() < deadline, "no answer from {} within 5 s", self.server);
            self.socket.send_to(request, self.server).await.expect("send a request");
            let until = (tokio::time::Instant::now() + Duration::from_millis(500)).min(deadline);
            while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, self.socket.recv_from(&mut buf)).await {
                if from == self.server
                    && let Ok(m) = Message::parse(&buf[..n])
                    && m.transaction_id() == tid
                {
                    return buf[..n].to_vec();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Raw STUN over a stream, for tests that speak the protocol by hand.

/// A request with transaction ID `[tid; 12]`, signed as [`TURN_USER`] in [`TURN_REALM`] with
/// `auth = (nonce, key)` when given.
pub fn turn_request(
    method: switchback::proto::stun::Method,
    tid: u8,
    auth: Option<(&str, &switchback::proto::stun::IntegrityKey)>,
    body: impl FnOnce(&mut switchback::proto::stun::MessageWriter<'_>),
) -> Vec<u8> {
    use switchback::proto::stun::*;
    let mut buf = vec![0u8; 1500];
    let ty = MessageType::new(method, Class::Request);
    let mut w = MessageWriter::new(&mut buf, ty, TransactionId([tid; 12])).expect("a request fits");
    body(&mut w);
    if let Some((nonce, key)) = auth {
        w.add(&Username(TURN_USER.0)).unwrap();
        w.add(&Realm(TURN_REALM)).unwrap();
        w.add(&Nonce(nonce)).unwrap();
        w.add_message_integrity(key).unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// Reads one frame (STUN, or ChannelData with its padding) from a stream; `buf` keeps what was read
/// past it. Fails the test after 5 s or when the server closes the stream.
#[cfg(feature = "runtime")]
pub async fn read_stream_frame<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Vec<u8> {
    use switchback::proto::demux::{Frame, stream_frame};
    use tokio::io::AsyncReadExt;
    loop {
        if let Frame::Complete(n) = stream_frame(buf, false) {
            return buf.drain(..n).collect();
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("read timeout")
            .expect("read");
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An HTTP/1.1 response as read by [`http_request`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), bounded by a timeout.
/// `headers` are `(name, value)`; a body gets its Content-Length.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("http connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).expect("http write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("http read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    HttpResponse { status, headers, body }
}

/// Decodes a chunked body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Sends `message` from `client` through its relay to an echo peer and waits for the echo; a
/// datagram the server dropped is sent again (at most 5 tries of 1 s). The relay driver counts a
/// send on a relay socket that tokio does not yet know to be writable as a full socket and drops
/// it, which can hit the first datagram after an Allocate. Returns the number of sends.
#[cfg(feature = "runtime")]
pub async fn echo_through(client: &switchback::client::turn::TurnClient, peer: SocketAddr, message: &[u8]) -> usize {
    let mut buf = vec![0u8; message.len() + 64];
    for attempt in 1..=5 {
        client.send_to(message, peer).await.expect("send through the relay");
        if let Ok(received) = tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buf)).await {
            let (n, from) = received.expect("receive through the relay");
            assert_eq!((&buf[..n], from), (message, peer));
            return attempt;
        }
    }
    panic!("no echo of {} bytes from {peer} after 5 sends", message.len());
}

// --- coturn's test tools ---------------------------------------------------------------------------

/// A running `turnutils_peer` (a UDP echo server) on 127.0.0.1.
pub struct EchoPeer {
    _guard: ChildGuard,
    pub port: u16,
}

impl EchoPeer {
    /// Starts `turnutils_peer` on a free port, retrying with another port if it cannot bind.
    pub fn start() -> EchoPeer {
        for _ in 0..5 {
            let port = free_udp_port();
            let mut guard = ChildGuard::spawn(
                Command::new("turnutils_peer")
                    .args(["-L", "127.0.0.1", "-p", &port.to_string()])
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
                if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
                    return EchoPeer { _guard: guard, port };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("turnutils_peer did not start");
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

// --- headless Chromium -----------------------------------------------------------------------------

/// The flags every headless Chromium of the tests runs with.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Headless Chromium on `url` with a fresh profile, in its own process group; the whole group is
/// killed and the profile removed on drop.
pub struct Browser {
    guard: ChildGuard,
    profile: PathBuf,
}

impl Browser {
    pub fn launch(url: &str, extra_args: &[&str]) -> Browser {
        use std::os::unix::process::CommandExt;
        static LAUNCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = LAUNCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("switchback-chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create the profile dir");
        let log = std::fs::File::create(profile.join("chromium.log")).expect("create the browser log");
        let mut cmd = Command::new("chromium");
        cmd.args(CHROMIUM_FLAGS)
            .args(["--disable-quic", "--allow-loopback-in-peer-connection"])
            .args(extra_args)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .process_group(0);
        Browser { guard: ChildGuard::spawn(&mut cmd), profile }
    }

    pub fn exited(&mut self) -> bool {
        self.guard.child_mut().try_wait().ok().flatten().is_some()
    }

    /// The last lines Chromium wrote to stderr/stdout.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.profile.join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group id is the browser's pid (process_group(0)); renderers and the zygote are in it.
        let _ =
            Command::new("kill").args(["-KILL", "--", &format!("-{}", self.guard.id())]).stderr(Stdio::null()).status();
        let _ = self.guard.child_mut().kill();
        let _ = self.guard.child_mut().wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
