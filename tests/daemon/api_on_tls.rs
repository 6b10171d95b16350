//! One TLS port for everything (`api-on-tls`): the TURN-TLS listener also serves the token service,
//! routed by ALPN (RFC 7443). On the one port and certificate: an HTTPS client choosing `http/1.1`
//! gets `/v1` (CORS as on `api-listen`), our TURN client with `stun.turn` and without any ALPN
//! allocates and relays, and so does coturn's `turnutils_uclient -t -S`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{Daemon, RECV_TIMEOUT, TempFile, run_with_timeout, udp_echo_peer};
use switchback::client::TlsClient;
use switchback::client::turn::{ClientOptions, Credentials, TurnClient, TurnTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "rest-secret-for-the-one-port-test";
const TOKEN_KEY: &str = "k1:0123456789abcdef0123456789abcdef";
const API_KEY: &str = "backend-key-0123456789";
const ORIGIN: &str = "https://app.example";
const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// The daemon with TLS (a generated certificate for 127.0.0.1), `api-on-tls` and no `api-listen`.
struct OnePort {
    daemon: Daemon,
    /// The TLS listener: TURN and HTTPS.
    addr: SocketAddr,
    cert: rcgen::Certificate,
    _files: Vec<TempFile>,
}

impl OnePort {
    fn start(name: &str) -> OnePort {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
        let cert_file = TempFile::new(&format!("{name}-cert.pem"), &cert.pem());
        let key_file = TempFile::new(&format!("{name}-key.pem"), &signing_key.serialize_pem());
        let keys = TempFile::new(&format!("{name}-token-keys"), &format!("{TOKEN_KEY}\n"));
        let text = format!(
            "listening-port = 0\nstatic-auth-secret = [\"{SECRET}\"]\nallow-loopback-peers = true\n\
             cert = \"{}\"\npkey = \"{}\"\ntoken-key-file = \"{}\"\napi-key = [\"{API_KEY}\"]\n\
             api-cors-origin = [\"{ORIGIN}\"]\napi-rate-limit = 0\napi-user-rate-limit = 0\n",
            cert_file.as_str(),
            key_file.as_str(),
            keys.as_str(),
        );
        let config = TempFile::new(&format!("{name}-turn.toml"), &text);
        let daemon = Daemon::start(&["-c", config.as_str(), "--api-on-tls"]);
        assert_eq!(daemon.tls.len(), 1, "{:?}", daemon.banner);
        let addr = daemon.tls[0];
        assert_eq!(daemon.http_addr("api-on-tls"), addr, "the banner names the shared port: {:?}", daemon.banner);
        assert!(daemon.http.iter().all(|(name, _)| name != "api"), "no api-listen: {:?}", daemon.banner);
        OnePort { daemon, addr, cert, _files: vec![cert_file, key_file, keys, config] }
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        roots
    }

    /// A client configuration trusting the test certificate and offering `alpn`.
    fn client_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS connection offering `alpn`, handshake done.
    async fn connect(&self, alpn: &[&[u8]]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let connector = tokio_rustls::TlsConnector::from(self.client_config(alpn));
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        connector.connect(name, tcp).await.expect("a TLS handshake on the shared port")
    }

    /// One HTTP/1.1 request over TLS with ALPN `http/1.1`: the raw response.
    async fn https(&self, request: &str) -> String {
        let mut tls = self.connect(&[b"http/1.1"]).await;
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        // A close_notify-less end is fine: the response is complete with Connection: close.
        let _ = tokio::time::timeout(RECV_TIMEOUT, tls.read_to_end(&mut response)).await.expect("an HTTPS answer");
        String::from_utf8_lossy(&response).into_owned()
    }
}

/// The TURN entry of a relay configuration's JSON: its credentials and urls.
fn turn_entry(body: &str) -> (Credentials, Vec<String>) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    let turn = v["iceServers"].as_array().unwrap().iter().find(|s| s.get("username").is_some()).unwrap().clone();
    let urls = turn["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect();
    (Credentials::new(turn["username"].as_str().unwrap(), turn["credential"].as_str().unwrap()), urls)
}

/// Allocates over TLS with `tls`, and echoes through the UDP `peer`.
async fn relays(addr: SocketAddr, creds: Credentials, tls: TlsClient, peer: SocketAddr, what: &str) {
    let options = ClientOptions::default().with(|o| o.transport = TurnTransport::Tls(tls));
    let client = TurnClient::allocate_with(addr, creds, options).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    client.create_permission(peer).await.expect("create_permission");
    client.send_to(what.as_bytes(), peer).await.expect("send_to");
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(RECV_TIMEOUT, client.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{what}: no echo"))
        .unwrap();
    assert_eq!((&buf[..n], from), (what.as_bytes(), peer), "{what}");
    client.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tls_port_serves_the_token_service_by_alpn_and_turn_to_every_other_client() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let one = tokio::task::spawn_blocking(|| OnePort::start("one-port")).await.unwrap();
        let addr = one.addr;
        let (peer, echo_task) = udp_echo_peer().await;

        // (a) HTTPS with ALPN http/1.1: the backend's call, its CORS answer as on api-listen.
        let body = r#"{"user": "olga", "ttl": 300}"#;
        let request = format!(
            "POST /v1/relay-configuration HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\n\
             Origin: {ORIGIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let response = one.https(&request).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let lower = response.to_ascii_lowercase();
        assert!(lower.contains(&format!("access-control-allow-origin: {ORIGIN}")), "{response}");
        let (_, json) = response.split_once("\r\n\r\n").unwrap();
        let (creds, urls) = turn_entry(json);
        assert!(creds.username.ends_with(":olga"), "{}", creds.username);
        let turns = format!("turns:{addr}?transport=tcp");
        assert!(urls.contains(&turns), "the shared port is handed out as turns: {urls:?}");
        // The API's errors and 404s are its own, on this port too.
        let missing = format!("POST /v1/relay-configuration HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let response = one.https(&missing).await;
        assert!(response.starts_with("HTTP/1.1 401") && response.contains("missing_token"), "{response}");
        let metrics = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        assert!(one.https(&metrics).await.starts_with("HTTP/1.1 404"), "only /v1 is on the shared port");

        // A client offering both gets TURN: the RFC 7443 ID comes first in the server's order.
        let both = one.connect(&[b"http/1.1", b"stun.turn"]).await;
        assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"stun.turn"[..]));
        drop(both);

        // (b) Our TURN client over TLS to the same port: with ALPN stun.turn, and with none.
        let stun_turn = TlsClient::new("127.0.0.1", one.roots()).unwrap();
        relays(addr, creds.clone(), stun_turn, peer, "with stun.turn").await;
        let no_alpn = TlsClient::with_config("127.0.0.1", one.client_config(&[])).unwrap();
        relays(addr, creds.clone(), no_alpn, peer, "without ALPN").await;

        // (c) coturn's client (TLS over TCP; it does not check the certificate).
        if crate::support::tools::require("turnutils_uclient").is_some() {
            let out = uclient_tls(addr, &creds, peer).await;
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "uclient failed: {stdout}");
            assert!(stdout.contains("tot_recv_msgs=20"), "uclient did not get its 20 messages back: {stdout}");
        }
        echo_task.abort();
        let (status, log) = one.daemon.stop_with("TERM");
        assert_eq!(status.code(), Some(0), "{log}");
    })
    .await
    .expect("the test did not finish in time");
}

/// `turnutils_uclient -t -S` with `creds` against the TLS listener `server`: 20 messages to `peer`.
async fn uclient_tls(server: SocketAddr, creds: &Credentials, peer: SocketAddr) -> std::process::Output {
    let mut cmd = Command::new("turnutils_uclient");
    cmd.args(["-t", "-S", "-u", &creds.username, "-w", &creds.password, "-e", "127.0.0.1"])
        .args(["-r", &peer.port().to_string(), "-n", "20", "-m", "1", "-l", "100"])
        .args(["-p", &server.port().to_string(), &server.ip().to_string()]);
    tokio::task::spawn_blocking(move || run_with_timeout(&mut cmd, Duration::from_secs(30))).await.unwrap()
}

/// Without TLS listeners there is no port to share: the daemon refuses to start, naming the key.
#[test]
fn api_on_tls_without_a_certificate_is_refused() {
    let keys = TempFile::new("one-port-refused-keys", &format!("{TOKEN_KEY}\n"));
    let token_keys = format!("--token-key-file={}", keys.as_str());
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_switchback")).args([
            "--listening-port",
            "0",
            "--static-auth-secret",
            SECRET,
            &token_keys,
            "--api-on-tls",
        ]),
        crate::support::PROCESS_TIMEOUT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without TLS: {stderr}");
    assert!(stderr.contains("api-on-tls") && stderr.contains("cert"), "{stderr}");
}
