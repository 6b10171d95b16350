//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay test
//! (`tests/codec/fuzz_corpus.rs`). Each takes arbitrary bytes and must never panic on them; each also
//! asserts what the code promises (a decoded message writes back to the same values, a frame cut
//! from a stream is the same however the stream arrives, every reply is well-formed STUN for the
//! request it answers), so a fuzzer reports wrong answers as well as crashes. Not a stable API.

pub mod stateful;

pub use stateful::{server_stateful, server_stateful_seeds};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use crate::auth::{AuthConfig, Authenticator};
use crate::proto::channel_data::ChannelData;
use crate::proto::demux::{Frame, stream_frame};
use crate::proto::stun::{AnyAttribute, Class, IntegrityKey, IntegrityKeySha256, Message, MessageWriter, is_known};
use crate::server::{NoRelay, Outcome, Received, Server, ServerOptions, Transport};

/// Decodes a STUN message, every attribute and the integrity checks; writes back every attribute
/// that decodes and checks the result decodes to the same values (and, when every attribute
/// decoded, has the input's length: typed values keep their exact wire length).
pub fn stun_decode(data: &[u8]) {
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    let _ = msg.verify_integrity(&IntegrityKey::new(b"fuzz"));
    let _ = msg.verify_integrity_sha256(&IntegrityKeySha256::new(b"fuzz"));
    let _ = msg.verify_fingerprint();
    let _ = msg.unknown_comprehension_required(is_known);

    let decoded: Vec<_> = msg.decoded().collect();
    let good: Vec<AnyAttribute<'_>> = decoded.iter().filter_map(|a| a.ok()).collect();
    let mut out = vec![0u8; data.len()];
    let mut w = MessageWriter::with_cookie(&mut out, msg.message_type(), msg.cookie_bytes(), msg.transaction_id())
        .expect("a header fits");
    for a in &good {
        w.add_any(a).expect("a decoded attribute writes back");
    }
    let n = w.finish();
    if good.len() == decoded.len() {
        assert_eq!(n, data.len(), "typed values keep their wire length");
    }
    let again = Message::parse(out.get(..n).expect("written")).expect("written back, it parses");
    assert_eq!(again.message_type(), msg.message_type());
    assert_eq!(again.transaction_id(), msg.transaction_id());
    assert_eq!(again.cookie_bytes(), msg.cookie_bytes());
    let good_again: Vec<AnyAttribute<'_>> =
        again.decoded().map(|a| a.expect("what decoded once decodes again")).collect();
    assert_eq!(good_again, good);
}

/// Parses ChannelData and writes it again for both transports: same header and data, and it parses
/// back to the same message.
pub fn channel_data(data: &[u8]) {
    let Ok(cd) = ChannelData::parse(data) else {
        return;
    };
    let used = 4 + cd.data.len();
    for stream in [false, true] {
        let mut out = vec![0u8; cd.wire_len(stream)];
        let n = cd.encode(stream, &mut out).expect("wire_len bytes suffice");
        assert_eq!(n, out.len());
        assert_eq!(out.get(..used), data.get(..used));
        assert_eq!(ChannelData::parse(&out), Ok(cd));
        if stream {
            assert_eq!(n % 4, 0);
            assert_eq!(stream_frame(&out, false), Frame::Complete(n));
        }
    }
}

/// Cuts a byte stream into frames the way the TCP driver does, checks that the same frames come out
/// when the stream arrives in small pieces, and feeds each frame to a STUN and a TURN server.
pub fn stream_framing(data: &[u8]) {
    let whole = frames(data, data.len().max(1));
    for piece in [1, 7] {
        assert_eq!(frames(data, piece), whole, "pieces of {piece}");
    }
    let stun = stun_server();
    let turn = turn_server();
    let mut out = [0u8; 1500];
    for frame in &whole {
        for server in [&stun, &turn] {
            let outcome = handle(server, Transport::Tcp, frame, &mut out);
            check_outcome(frame, outcome, &out);
        }
    }
}

/// Parses a PROXY protocol v2 header (`proto::proxy`): a complete header never claims more bytes
/// than there are nor more than the bound, and the bytes arriving one at a time give the same
/// answer (every shorter prefix asks for more, or is refused for the same reason).
pub fn proxy_header(data: &[u8]) {
    use crate::proto::proxy::{FIXED_LEN, MAX_ADDRESS_AND_TLV_LEN, ProxyParse, parse_v2};
    let whole = parse_v2(data);
    if let Ok(ProxyParse::Complete { len, .. }) = whole {
        assert!((FIXED_LEN..=FIXED_LEN + MAX_ADDRESS_AND_TLV_LEN).contains(&len) && len <= data.len());
        assert_eq!(parse_v2(data.get(..len).unwrap_or_default()), whole, "the header alone");
    }
    for n in 0..data.len().min(FIXED_LEN + MAX_ADDRESS_AND_TLV_LEN) {
        match parse_v2(data.get(..n).unwrap_or_default()) {
            Ok(ProxyParse::Incomplete(need)) => assert!(need > n, "asks for {need} with {n}"),
            Ok(complete) => {
                assert_eq!(Ok(complete), whole, "prefix {n}");
                break;
            }
            Err(e) => {
                assert_eq!(Err(e), whole, "prefix {n}");
                break;
            }
        }
    }
}

/// Feeds one datagram to a STUN-only server and to a TURN server with authentication.
pub fn server_datagram(data: &[u8]) {
    let mut out = [0u8; 1500];
    for server in [&stun_server(), &turn_server()] {
        let outcome = handle(server, Transport::Udp, data, &mut out);
        check_outcome(data, outcome, &out);
    }
}

/// The frames `stream_frame` cuts from `data` fed `piece` bytes at a time, up to the first
/// incomplete or invalid one.
fn frames(data: &[u8], piece: usize) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match stream_frame(&buf, false) {
                Frame::Complete(n) => {
                    assert!(n >= 4 && n <= buf.len(), "frame length {n}");
                    frames.push(buf.drain(..n).collect());
                }
                Frame::Incomplete => break,
                Frame::Invalid => return frames,
            }
        }
    }
    frames
}

fn client() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40000)
}

fn local() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 3478)
}

fn stun_server() -> Server {
    Server::new(ServerOptions::default())
}

/// A TURN server (authentication on, so TURN methods are taken). The fuzzer cannot forge
/// MESSAGE-INTEGRITY, so this reaches the unauthenticated paths: 400/401/420 answers, ChannelData and
/// Send indications without an allocation.
fn turn_server() -> Server {
    let auth = Authenticator::new(AuthConfig::new("fuzz.test"), [7; 32]);
    Server::with_relay(ServerOptions::default(), Some(auth), NoRelay, Instant::now(), 2_000_000_000)
}

fn handle(server: &Server, transport: Transport, data: &[u8], out: &mut [u8]) -> Outcome {
    let rx = Received { transport, source: client(), local: local(), data };
    server.handle(Instant::now(), &rx, out)
}

/// A reply answers a STUN request: same method, transaction ID and cookie, a response class, a
/// FINGERPRINT that verifies if present, and only attributes that decode.
fn check_outcome(request: &[u8], outcome: Outcome, out: &[u8]) {
    let Outcome::Reply(n) = outcome else {
        return;
    };
    let reply = Message::parse(out.get(..n).expect("reply fits the buffer")).expect("a reply is well-formed STUN");
    let req = Message::parse(request).expect("only a STUN request is answered");
    assert_eq!(req.message_type().class, Class::Request);
    assert_eq!(reply.message_type().method, req.message_type().method);
    assert!(matches!(reply.message_type().class, Class::SuccessResponse | Class::ErrorResponse));
    assert_eq!(reply.transaction_id(), req.transaction_id());
    assert_eq!(reply.cookie_bytes(), req.cookie_bytes());
    if reply.has_fingerprint() {
        reply.verify_fingerprint().expect("the reply's FINGERPRINT verifies");
    }
    for a in reply.decoded() {
        a.expect("the server writes only attributes it can read back");
    }
}
