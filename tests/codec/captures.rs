//! Real packets (tests/data/captures, see its README.md): Chromium, aioice, turnutils and coturn 4.6.1
//! talking on loopback. Driven by `manifest.json`: every STUN frame is decoded, checked against the
//! manifest (type, transaction ID, every attribute's value), its MESSAGE-INTEGRITY and FINGERPRINT
//! verified, and written again with `MessageWriter` byte for byte; every ChannelData frame is parsed
//! and written again with the padding of its transport; the two TCP session streams are cut into
//! frames with `demux::stream_frame` exactly as the manifest lists them.

use std::fs;
use std::path::PathBuf;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use switchback::proto::channel_data::{ChannelData, is_channel_number};
use switchback::proto::demux::{Frame, PacketKind, classify, stream_frame};
use switchback::proto::stun::{
    AddressFamily, AnyAttribute, Attribute, ChannelNumber, Class, ConnectionId, EvenPort, IntegrityError, IntegrityKey,
    Message, MessageWriter, RawAttribute, RequestedAddressFamily, long_term_key_md5, types,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures")
}

fn read(file: &str) -> Vec<u8> {
    fs::read(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn manifest() -> Value {
    serde_json::from_slice(&read("manifest.json")).unwrap()
}

fn entries(m: &Value) -> &Vec<Value> {
    m["files"].as_array().unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn n(v: &Value) -> usize {
    usize::try_from(v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))).unwrap()
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::Request => "request",
        Class::Indication => "indication",
        Class::SuccessResponse => "success response",
        Class::ErrorResponse => "error response",
    }
}

/// RFC 4648 base64 with padding (REST passwords are base64 of an HMAC-SHA1).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((v >> (18 - 6 * i)) & 0x3F) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The TURN REST password of `username` (draft-uberti-behave-turn-rest): base64(HMAC-SHA1(secret, username)).
fn rest_password(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    base64(&mac.finalize().into_bytes())
}

/// The long-term key of a manifest entry: the password is derived from the username and checked
/// against the manifest, the MD5 key checked against `key_md5_hex`.
fn key_of(m: &Value, e: &Value) -> IntegrityKey {
    let username = s(&e["username"]);
    let password = rest_password(s(&m["rest_secret"]), username);
    assert_eq!(password, s(&e["password"]), "{}: REST password", e["file"]);
    let realm = s(&e["realm"]);
    assert_eq!(realm, s(&m["realm"]));
    let key = long_term_key_md5(username, realm, &password);
    assert_eq!(hex::encode(key), s(&e["key_md5_hex"]), "{}: MD5 key", e["file"]);
    IntegrityKey::new(&key)
}

/// An attribute in the manifest's notation, `NAME(value length)=value`, from the decoded value (the
/// length is the typed value's `value_len`, so this also checks that it matches the wire).
fn describe(a: &AnyAttribute<'_>) -> String {
    let len = a.value_len();
    match a {
        AnyAttribute::RequestedTransport(t) => {
            let name = match t.0 {
                17 => "UDP",
                6 => "TCP",
                _ => "?",
            };
            format!("REQUESTED-TRANSPORT({len})={} ({name})", t.0)
        }
        AnyAttribute::Username(u) => format!("USERNAME({len})='{}'", u.0),
        AnyAttribute::Realm(r) => format!("REALM({len})='{}'", r.0),
        AnyAttribute::Nonce(v) => format!("NONCE({len})='{}'", v.0),
        AnyAttribute::Software(v) => format!("SOFTWARE({len})=\"{}\"", v.0),
        AnyAttribute::MessageIntegrity(v) => {
            format!("MESSAGE-INTEGRITY({len})={}", hex::encode(v.0))
        }
        AnyAttribute::Fingerprint(v) => format!("FINGERPRINT({len})={:08x}", v.0),
        AnyAttribute::XorPeerAddress(v) => format!("XOR-PEER-ADDRESS({len})={}", v.0),
        AnyAttribute::XorRelayedAddress(v) => format!("XOR-RELAYED-ADDRESS({len})={}", v.0),
        AnyAttribute::XorMappedAddress(v) => format!("XOR-MAPPED-ADDRESS({len})={}", v.0),
        AnyAttribute::MappedAddress(v) => format!("MAPPED-ADDRESS({len})={}", v.0),
        AnyAttribute::ResponseOrigin(v) => format!("RESPONSE-ORIGIN({len})={}", v.0),
        AnyAttribute::Data(v) => format!("DATA({len})={} bytes", v.0.len()),
        AnyAttribute::ChannelNumber(v) => format!("CHANNEL-NUMBER({len})=0x{:04X}", v.0),
        AnyAttribute::Lifetime(v) => format!("LIFETIME({len})={}", v.0),
        AnyAttribute::ErrorCode(v) => format!("ERROR-CODE({len})={} '{}'", v.code, v.reason),
        AnyAttribute::EvenPort(v) => {
            format!("EVEN-PORT({len})={:02x}", if v.reserve_next { 0x80 } else { 0 })
        }
        AnyAttribute::RequestedAddressFamily(v) => {
            let f = match v.0 {
                AddressFamily::V4 => 1,
                AddressFamily::V6 => 2,
            };
            format!("REQUESTED-ADDRESS-FAMILY({len})={f:02x}000000")
        }
        AnyAttribute::ConnectionId(v) => format!("CONNECTION-ID({len})=0x{:08X}", v.0),
        other => format!("UNEXPECTED {other:?}"),
    }
}

/// Writes the message again from its decoded attributes (typed `AnyAttribute` values, in order),
/// recomputing MESSAGE-INTEGRITY with `key` and FINGERPRINT where the original had them.
fn reencode(msg: &Message<'_>, key: Option<&IntegrityKey>) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w =
        MessageWriter::with_cookie(&mut buf, msg.message_type(), msg.cookie_bytes(), msg.transaction_id()).unwrap();
    for a in msg.decoded() {
        let a = a.unwrap();
        match a.typ() {
            types::MESSAGE_INTEGRITY => w.add_message_integrity(key.unwrap()).unwrap(),
            types::FINGERPRINT => w.add_fingerprint().unwrap(),
            _ => w.add_any(&a).unwrap(),
        }
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// Everything about one STUN frame. `expected_attrs` is `None` for frames of the session streams,
/// which the manifest lists without attributes.
fn check_stun_frame(
    name: &str,
    bytes: &[u8],
    type_name: &str,
    integrity: Option<&IntegrityKey>,
    fingerprint: bool,
    expected_attrs: Option<Vec<&str>>,
) {
    let msg = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let t = msg.message_type();
    assert_eq!(format!("{} {}", t.method.name(), class_name(t.class)), type_name, "{name}");
    assert!(!msg.is_rfc3489(), "{name}");
    assert_eq!(stream_frame(bytes, false), Frame::Complete(bytes.len()));
    assert_eq!(stream_frame(bytes, true), Frame::Complete(bytes.len()));
    assert_eq!(classify(bytes[0], true), PacketKind::Stun);

    let decoded: Vec<AnyAttribute<'_>> = msg.decoded().map(|a| a.unwrap_or_else(|e| panic!("{name}: {e}"))).collect();
    assert!(
        decoded.iter().all(|a| !matches!(a, AnyAttribute::Unknown(_))),
        "{name}: every attribute in the captures has a typed form"
    );
    if let Some(expected) = expected_attrs {
        let got: Vec<String> = decoded.iter().map(describe).collect();
        assert_eq!(got, expected, "{name}");
    }

    assert_eq!(msg.has_fingerprint(), fingerprint, "{name}: FINGERPRINT");
    if fingerprint {
        msg.verify_fingerprint().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert_eq!(msg.has_integrity(), integrity.is_some(), "{name}: MESSAGE-INTEGRITY");
    if let Some(key) = integrity {
        msg.verify_integrity(key).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.verify_integrity(&IntegrityKey::new(b"not the key")), Err(IntegrityError::Mismatch));
    }
    assert_eq!(reencode(&msg, integrity), bytes, "{name}: re-encoding");
}

/// Everything about one ChannelData frame; returns the padding bytes it carried.
fn check_channel_data_frame<'b>(
    name: &str,
    bytes: &'b [u8],
    channel: u16,
    data_len: usize,
    padding: usize,
    stream: bool,
) -> &'b [u8] {
    assert_eq!(bytes.len(), 4 + data_len + padding, "{name}");
    let cd = ChannelData::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(cd.channel, channel, "{name}");
    assert_eq!(cd.data.len(), data_len, "{name}");
    assert_eq!(cd.data, &bytes[4..4 + data_len]);
    assert_eq!(cd.wire_len(stream), bytes.len(), "{name}: wire length");
    assert_eq!(classify(bytes[0], false), PacketKind::ChannelData);
    if stream {
        assert_eq!(stream_frame(bytes, false), Frame::Complete(bytes.len()));
    } else {
        assert_eq!(padding, 0, "{name}: nobody pads ChannelData over UDP");
    }
    // Re-encoding writes zero padding; compare the header and data exactly, the padding by length.
    let mut out = vec![0xEEu8; bytes.len() + 8];
    let written = cd.encode(stream, &mut out).unwrap();
    assert_eq!(written, bytes.len(), "{name}");
    assert_eq!(out[..4 + data_len], bytes[..4 + data_len], "{name}");
    assert!(out[4 + data_len..written].iter().all(|&b| b == 0));
    &bytes[4 + data_len..]
}

fn parse_channel(v: &Value) -> u16 {
    u16::from_str_radix(s(v).trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn captures_copied_intact() {
    let m = manifest();
    let mut count = 0;
    for e in entries(&m) {
        let file = s(&e["file"]);
        let bytes = read(file);
        assert_eq!(bytes.len(), n(&e["length"]), "{file}");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), s(&e["sha256"]), "{file}");
        count += 1;
    }
    let on_disk = fs::read_dir(data_dir())
        .unwrap()
        .filter(|d| d.as_ref().unwrap().path().extension().is_some_and(|x| x == "bin"))
        .count();
    assert_eq!(count, on_disk, "every .bin file is in the manifest");
    assert_eq!(count, 51);
}

#[test]
fn every_stun_frame_decodes_verifies_and_reencodes() {
    let m = manifest();
    let mut checked = 0;
    for e in entries(&m).iter().filter(|e| e["kind"] == "stun") {
        let file = s(&e["file"]);
        let bytes = read(file);
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), n(&e["message_length_field"]));
        assert_eq!(hex::encode(msg.transaction_id().as_bytes()), s(&e["transaction_id"]), "{file}");
        let key = match e["message_integrity"].as_str() {
            Some("verified") => Some(key_of(&m, e)),
            None => None,
            Some(other) => panic!("{file}: {other}"),
        };
        let fingerprint = match e["fingerprint"].as_str() {
            Some("verified") => true,
            None => false,
            Some(other) => panic!("{file}: {other}"),
        };
        let type_name = format!("{} {}", s(&e["method"]), s(&e["class"]));
        let attrs: Vec<&str> = e["attributes"].as_array().unwrap().iter().map(s).collect();
        check_stun_frame(file, &bytes, &type_name, key.as_ref(), fingerprint, Some(attrs));
        checked += 1;
    }
    assert_eq!(checked, 41);
}

#[test]
fn every_channel_data_frame_parses_and_reencodes() {
    let m = manifest();
    let mut checked = 0;
    for e in entries(&m).iter().filter(|e| e["kind"] == "channeldata") {
        let file = s(&e["file"]);
        let bytes = read(file);
        let stream = match s(&e["transport"]) {
            "udp" => false,
            "tcp" => true,
            other => panic!("{file}: {other}"),
        };
        let padding = check_channel_data_frame(
            file,
            &bytes,
            parse_channel(&e["channel"]),
            n(&e["data_length"]),
            n(&e["padding"]),
            stream,
        );
        if file == "coturn-tcp-channeldata-padded.bin" {
            // coturn does not zero its padding (whatever was in its buffer): receivers must ignore it.
            assert_eq!(padding, [0x4c, 0x76]);
        } else {
            assert!(padding.iter().all(|&b| b == 0), "{file}");
        }
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn tcp_session_streams_frame_as_listed() {
    let m = manifest();
    let mut sessions = 0;
    for e in entries(&m).iter().filter(|e| e["kind"] == "tcp-stream") {
        let file = s(&e["file"]);
        let bytes = read(file);
        let key = key_of(&m, e);
        let listed = e["frames"].as_array().unwrap();
        for strict in [false, true] {
            let mut cut = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                match stream_frame(&bytes[at..], strict) {
                    Frame::Complete(len) => {
                        cut.push((at, len));
                        at += len;
                    }
                    other => panic!("{file} at {at}: {other:?}"),
                }
            }
            let expected: Vec<(usize, usize)> = listed.iter().map(|f| (n(&f["offset"]), n(&f["length"]))).collect();
            assert_eq!(cut, expected, "{file} (strict {strict})");
            // A cut mid-frame is Incomplete, never a wrong frame.
            for &(off, len) in &cut {
                for short in [1, 3, 4, len / 2, len - 1] {
                    assert_eq!(stream_frame(&bytes[off..off + short], strict), Frame::Incomplete);
                }
            }
        }
        let mut nonzero_padding = 0;
        for f in listed {
            let (off, len) = (n(&f["offset"]), n(&f["length"]));
            let frame = &bytes[off..off + len];
            let name = format!("{file}@{off}");
            if f["type"] == "ChannelData" {
                let padding = check_channel_data_frame(
                    &name,
                    frame,
                    parse_channel(&f["channel"]),
                    n(&f["data_length"]),
                    n(&f["padding"]),
                    true,
                );
                if padding.iter().any(|&b| b != 0) {
                    nonzero_padding += 1;
                }
            } else {
                let integrity = f["message_integrity"] == "verified";
                let fingerprint = f["fingerprint"] == "verified";
                check_stun_frame(&name, frame, s(&f["type"]), integrity.then_some(&key), fingerprint, None);
            }
        }
        match file {
            // Chromium zeroes its padding; coturn sends whatever its buffer held.
            "chromium-tcp-session-c2s.bin" => {
                assert_eq!(listed.len(), 23);
                assert_eq!(nonzero_padding, 0);
            }
            "coturn-tcp-session-s2c.bin" => {
                assert_eq!(listed.len(), 21);
                assert!(nonzero_padding > 0);
            }
            other => panic!("unexpected session {other}"),
        }
        sessions += 1;
    }
    assert_eq!(sessions, 2);
}

/// A stream cut into arbitrary pieces frames the same as the whole stream (the TCP driver's loop).
#[test]
fn tcp_session_frames_the_same_when_fed_in_pieces() {
    for file in ["chromium-tcp-session-c2s.bin", "coturn-tcp-session-s2c.bin"] {
        let bytes = read(file);
        let mut whole = Vec::new();
        let mut at = 0;
        while let Frame::Complete(len) = stream_frame(&bytes[at..], false) {
            whole.push(bytes[at..at + len].to_vec());
            at += len;
        }
        for piece in [1usize, 2, 3, 7, 64, 1000] {
            let mut buf = Vec::new();
            let mut frames = Vec::new();
            for chunk in bytes.chunks(piece) {
                buf.extend_from_slice(chunk);
                loop {
                    match stream_frame(&buf, false) {
                        Frame::Complete(len) => frames.push(buf.drain(..len).collect::<Vec<u8>>()),
                        Frame::Incomplete => break,
                        Frame::Invalid => panic!("{file}: invalid"),
                    }
                }
            }
            assert!(buf.is_empty());
            assert_eq!(frames, whole, "{file} in pieces of {piece}");
        }
    }
}

// ---- The README's "Observations worth a test" ----

/// turnutils_uclient binds channel 0x74DB (RFC 5766 range): ChannelData under the default demux,
/// "Other" when only RFC 8656's 0x4000–0x4FFF counts.
#[test]
fn uclient_channel_0x74db_is_channel_data_only_outside_strict_mode() {
    let bind = read("uclient-channel-bind.bin");
    let msg = Message::parse(&bind).unwrap();
    assert_eq!(msg.get::<ChannelNumber>().unwrap(), ChannelNumber(0x74DB));

    let data = read("uclient-channeldata.bin");
    assert_eq!(&data[..2], &[0x74, 0xDB]);
    assert_eq!(classify(data[0], false), PacketKind::ChannelData);
    assert_eq!(classify(data[0], true), PacketKind::Other);
    assert!(is_channel_number(0x74DB, false));
    assert!(!is_channel_number(0x74DB, true));
    assert_eq!(ChannelData::parse(&data).unwrap().channel, 0x74DB);
    // Over a stream in strict mode such a frame cannot be framed at all.
    assert_eq!(stream_frame(&data, true), Frame::Invalid);
    // Its TCP run drew 0x44AA, inside the RFC 8656 range.
    let tcp = read("uclient-tcp-channeldata-padded.bin");
    assert_eq!(classify(tcp[0], true), PacketKind::ChannelData);
    assert_eq!(stream_frame(&tcp, true), Frame::Complete(108));
}

/// EVEN-PORT carries one byte followed by three padding bytes; the next attribute starts after them.
#[test]
fn uclient_even_port_one_byte_value_with_padding() {
    for file in ["uclient-allocate-noauth.bin", "uclient-allocate-auth.bin"] {
        let bytes = read(file);
        let msg = Message::parse(&bytes).unwrap();
        let raw: Vec<RawAttribute<'_>> = msg.attributes().collect();
        let i = raw.iter().position(|a| a.typ == types::EVEN_PORT).unwrap();
        assert_eq!(raw[i].value, [0x00]);
        assert_eq!(raw[i + 1].typ, types::REQUESTED_ADDRESS_FAMILY);
        // REQUESTED-TRANSPORT and LIFETIME (8 bytes each) precede it: value at 40, padding 41..44.
        assert_eq!(&bytes[36..44], &[0x00, 0x18, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]);
        assert_eq!(msg.get::<EvenPort>().unwrap(), EvenPort { reserve_next: false });
        assert_eq!(msg.get::<RequestedAddressFamily>().unwrap(), RequestedAddressFamily(AddressFamily::V4));
        assert_eq!(EvenPort { reserve_next: false }.value_len(), 1);
    }
}

/// Chromium signs its requests but adds neither FINGERPRINT nor SOFTWARE; coturn (-f) adds both to
/// everything except the RFC 6062 Connect success response.
#[test]
fn who_adds_fingerprint_and_software() {
    let m = manifest();
    for e in entries(&m).iter().filter(|e| e["kind"] == "stun") {
        let file = s(&e["file"]);
        let bytes = read(file);
        let msg = Message::parse(&bytes).unwrap();
        let has_software = msg.get_raw(types::SOFTWARE).is_some();
        if file.starts_with("chromium-") {
            assert!(!msg.has_fingerprint() && !has_software, "{file}");
        }
        if file.starts_with("coturn-") {
            let connect_success = file == "coturn-rfc6062-connect-success.bin";
            assert_eq!(msg.has_fingerprint(), !connect_success, "{file}");
            assert_eq!(has_software, !connect_success, "{file}");
        }
        if file.starts_with("uclient-") || file.starts_with("rfc6062-") {
            assert!(msg.has_fingerprint(), "{file}");
        }
    }
}

/// A response carries its request's transaction ID (RFC 8489 §6.3), and coturn signs it with the
/// requester's key.
#[test]
fn responses_match_their_requests() {
    let pairs = [
        ("chromium-allocate-noauth.bin", "coturn-401-response.bin"),
        ("chromium-allocate-auth.bin", "coturn-allocate-success.bin"),
        ("chromium-create-permission.bin", "coturn-create-permission-success.bin"),
        ("chromium-channel-bind.bin", "coturn-channel-bind-success.bin"),
        ("chromium-refresh.bin", "coturn-refresh-success.bin"),
        ("stunclient-binding.bin", "coturn-binding-success.bin"),
        ("uclient-refresh.bin", "coturn-refresh-success-lifetime777.bin"),
        ("rfc6062-connect.bin", "coturn-rfc6062-connect-success.bin"),
        ("rfc6062-connectionbind.bin", "coturn-rfc6062-connectionbind-success.bin"),
    ];
    for (request, response) in pairs {
        let (a, b) = (read(request), read(response));
        let (req, resp) = (Message::parse(&a).unwrap(), Message::parse(&b).unwrap());
        assert_eq!(req.transaction_id(), resp.transaction_id(), "{response}");
        assert_eq!(req.message_type().method, resp.message_type().method);
        assert_eq!(req.message_type().class, Class::Request);
        assert!(matches!(resp.message_type().class, Class::SuccessResponse | Class::ErrorResponse));
    }
}

/// RFC 6062: the ConnectionBind reuses the CONNECTION-ID of the Connect success; the
/// ConnectionAttempt (sent to the other client) carries a different one.
#[test]
fn rfc6062_connection_ids() {
    let id = |f: &str| {
        let b = read(f);
        Message::parse(&b).unwrap().get::<ConnectionId>().unwrap()
    };
    assert_eq!(id("coturn-rfc6062-connect-success.bin"), ConnectionId(0x74E8_A700));
    assert_eq!(id("rfc6062-connectionbind.bin"), ConnectionId(0x74E8_A700));
    assert_eq!(id("coturn-rfc6062-connection-attempt.bin"), ConnectionId(0xF8FA_B901));
}

/// coturn's 401 to an unauthenticated Allocate: ERROR-CODE, NONCE, REALM, SOFTWARE, FINGERPRINT and
/// no MESSAGE-INTEGRITY; the reason phrase is RFC 5389's "Unauthorized".
#[test]
fn coturn_401_shape() {
    let b = read("coturn-401-response.bin");
    let msg = Message::parse(&b).unwrap();
    let codes: Vec<u16> = msg.attributes().map(|a| a.typ).collect();
    assert_eq!(codes, [types::ERROR_CODE, types::NONCE, types::REALM, types::SOFTWARE, types::FINGERPRINT]);
    let ec = msg.get::<switchback::proto::stun::ErrorCode<'_>>().unwrap();
    assert_eq!((ec.code, ec.reason), (401, "Unauthorized"));
    assert!(!msg.has_integrity());
}

/// None of the captures carries the draft code points 0x8032/0x8033 (coturn sends 0x8032 only for
/// `turnutils_uclient -Z` dual allocations, which were not captured); the codec still types them.
#[test]
fn no_legacy_address_family_code_points_in_captures() {
    let m = manifest();
    for e in entries(&m).iter().filter(|e| e["kind"] == "stun") {
        let b = read(s(&e["file"]));
        let msg = Message::parse(&b).unwrap();
        assert!(
            msg.attributes()
                .all(|a| !matches!(a.typ, types::LEGACY_ADDITIONAL_ADDRESS_FAMILY | types::LEGACY_ADDRESS_ERROR_CODE))
        );
    }
    assert!(switchback::proto::stun::is_known(types::LEGACY_ADDITIONAL_ADDRESS_FAMILY));
    assert!(switchback::proto::stun::is_known(types::LEGACY_ADDRESS_ERROR_CODE));
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, out) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), out);
    }
}
