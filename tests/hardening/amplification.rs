//! How much larger than a request is the answer a spoofed source can make the server send? Measured
//! on the sans-IO server with real captured requests (`tests/data/captures/`), printed, and held to
//! the security issue's targets: a bare Binding answer at the 1.6× floor (32 bytes for 20), the 401
//! to Chromium's 28-byte unauthenticated Allocate at most 3.5× with a realm of up to 12 characters
//! (coturn 4.6.1: 108 bytes, 3.9×). Run with `--nocapture` to see the table.

use std::net::SocketAddr;
use std::time::Instant;

use switchback::auth::{AuthConfig, Authenticator, RestCredentials, Secret};
use switchback::proto::stun::{Class, ErrorCode, Message, MessageType, MessageWriter, Method, TransactionId, codes};
use switchback::server::{NoRelay, Outcome, Received, Server, ServerOptions, Transport};

const CAPTURE_UNIX: u64 = 1_795_920_000;

fn capture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/captures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn turn_server(realm: &str) -> Server<NoRelay> {
    let mut auth = AuthConfig::new(realm);
    auth.rest = Some(RestCredentials::new(vec![Secret::new("fixture-secret")]));
    let options = ServerOptions::default();
    Server::with_relay(options, Some(Authenticator::new(auth, [3; 32])), NoRelay, Instant::now(), CAPTURE_UNIX)
}

/// The answer to `request`, as bytes.
fn answer(server: &Server<NoRelay>, request: &[u8]) -> Vec<u8> {
    let source: SocketAddr = "203.0.113.9:40000".parse().unwrap();
    let rx = Received { transport: Transport::Udp, source, local: "192.0.2.1:3478".parse().unwrap(), data: request };
    let mut out = vec![0u8; 1500];
    let Outcome::Reply(n) = server.handle(Instant::now(), &rx, &mut out) else { panic!("no answer") };
    out.truncate(n);
    out
}

/// Answer size over request size, printed as a table row.
fn ratio(what: &str, request: &[u8], answer: &[u8]) -> f64 {
    let r = answer.len() as f64 / request.len() as f64;
    let code =
        Message::parse(answer).unwrap().get::<ErrorCode>().map_or(String::from("success"), |e| e.code.to_string());
    println!("{what:<52} {:>4} B -> {:>4} B  {r:.2}x  ({code})", request.len(), answer.len());
    r
}

#[test]
fn unauthenticated_answers_stay_small() {
    let server = turn_server("fixture.test");

    // A bare Binding request: 20 bytes. The answer needs XOR-MAPPED-ADDRESS (12 bytes for IPv4):
    // 32 bytes, the 1.6x floor.
    let mut bare = [0u8; 20];
    let n = {
        let w =
            MessageWriter::new(&mut bare, MessageType::new(Method::BINDING, Class::Request), TransactionId([1; 12]))
                .unwrap();
        w.finish()
    };
    assert_eq!(n, 20);
    let a = answer(&server, &bare);
    assert_eq!(a.len(), 32);
    assert!(ratio("bare Binding", &bare, &a) <= 1.6);

    for name in ["chromium-binding.bin", "stunclient-binding.bin"] {
        let req = capture(name);
        let a = answer(&server, &req);
        assert!(ratio(name, &req, &a) <= 1.6, "{name}");
    }

    // Chromium's unauthenticated Allocate (28 bytes) and others': 401 with REALM and NONCE.
    for name in ["chromium-allocate-noauth.bin", "uclient-allocate-noauth.bin", "aioice-allocate-noauth.bin"] {
        let req = capture(name);
        let a = answer(&server, &req);
        assert_eq!(Message::parse(&a).unwrap().get::<ErrorCode>().unwrap().code, codes::UNAUTHENTICATED);
        let r = ratio(&format!("{name} (realm fixture.test)"), &req, &a);
        assert!(r <= 3.5, "{name}: {r:.2}");
    }

    // Every realm length up to 12 characters.
    let chromium = capture("chromium-allocate-noauth.bin");
    assert_eq!(chromium.len(), 28);
    for len in 1..=12 {
        let realm = "r".repeat(len);
        let a = answer(&turn_server(&realm), &chromium);
        let r = a.len() as f64 / chromium.len() as f64;
        assert!(r <= 3.5, "realm of {len}: {} bytes, {r:.2}x", a.len());
        if len == 12 {
            ratio("chromium-allocate-noauth.bin (realm of 12)", &chromium, &a);
        }
    }

    // An authenticated request with coturn's nonce and credentials we do not know: larger
    // requests, smaller ratio. 401, not 438: RFC 8489 §9.2.4 judges the user and the MAC before
    // the nonce (the answer has the same attributes either way).
    let req = capture("chromium-allocate-auth.bin");
    let a = answer(&server, &req);
    assert_eq!(Message::parse(&a).unwrap().get::<ErrorCode>().unwrap().code, codes::UNAUTHENTICATED);
    assert!(ratio("chromium-allocate-auth.bin (coturn's nonce and user: 401)", &req, &a) < 1.0);

    // What coturn 4.6.1 answered to the same Allocate, for comparison.
    let coturn = capture("coturn-401-response.bin");
    ratio("coturn 4.6.1's 401 to chromium-allocate-noauth.bin", &chromium, &coturn);
}
