//! Differential tests against `stun-rs` 0.1 (lib `stun_rs`), the STUN crate the design started from
//! (docs/architecture.md, "Dependencies"), next to `differential.rs` against `stun-types`.
//!
//! * Decoding: every captured STUN frame (tests/data/captures), the RFC 5769 vectors and the
//!   messages below are decoded by both; method, class, transaction ID, the attribute type list and
//!   the value of every attribute both type must agree, and so must the MESSAGE-INTEGRITY (and
//!   FINGERPRINT) verdict with the right key and with a wrong one.
//! * Encoding: Binding, an authenticated Allocate and its signed success response, a 401,
//!   CreatePermission, ChannelBind, Send and Data indications (plus proptest-generated messages) are
//!   written by both encoders and must be byte-identical; each decoder reads the other's output.
//!
//! No encoder difference was found: attribute order is the caller's on both sides and both pad with
//! zeros. Where stun-rs reads the wire differently it is pinned down here rather than skipped: ICMP
//! (a 7-bit type and a 9-bit code), and what it keeps opaque or cannot write (REQUESTED-TRANSPORT
//! other than UDP, RFC 6062 CONNECTION-ID, RFC 7635 ACCESS-TOKEN and THIRD-PARTY-AUTHORIZATION).
//! It accepts every captured frame; a frame it rejected would have to be listed in
//! `STUN_RS_REJECTS` with its reason.

use std::net::SocketAddr;
use std::path::PathBuf;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::strategies::socket_addr;
use serde_json::Value;
use stun_rs::attributes::{discovery as rd, stun as rs, turn as rt};
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageClass as RsClass, MessageDecoderBuilder,
    MessageEncoderBuilder, MessageMethod, StunAttribute, StunMessage, StunMessageBuilder,
};
use switchback::proto::stun::{
    self as ours, AddressFamily, AnyAttribute, Class, IntegrityKey, Message, MessageType, MessageWriter, Method,
    TransactionId, long_term_key_md5,
};

use crate::support::rfc5769_vectors as vectors;

// ---- Decoding with stun-rs ----

/// Decodes with stun-rs; with a key, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT are validated.
fn rs_decode(bytes: &[u8], key: Option<&HMACKey>) -> Result<StunMessage, String> {
    let mut ctx = DecoderContextBuilder::default();
    if let Some(k) = key {
        ctx = ctx.with_key(k.clone()).with_validation();
    }
    let decoder = MessageDecoderBuilder::default().with_context(ctx.build()).build();
    let (msg, n) = decoder.decode(bytes).map_err(|e| format!("{e:?}"))?;
    assert_eq!(n, bytes.len(), "stun-rs consumed a different length");
    Ok(msg)
}

fn their_class(c: RsClass) -> Class {
    match c {
        RsClass::Request => Class::Request,
        RsClass::Indication => Class::Indication,
        RsClass::SuccessResponse => Class::SuccessResponse,
        RsClass::ErrorResponse => Class::ErrorResponse,
    }
}

fn their_family(f: stun_rs::AddressFamily) -> AddressFamily {
    match f {
        stun_rs::AddressFamily::IPv4 => AddressFamily::V4,
        stun_rs::AddressFamily::IPv6 => AddressFamily::V6,
    }
}

/// What stun-rs makes of an ICMP value switchback reads as `icmp_type`/`icmp_code`: it splits the
/// 16 bits after Reserved into a 7-bit type and a 9-bit code (the bit widths drawn in RFC 8656
/// Figure 27); switchback and stun-types read two 8-bit fields.
fn icmp_as_stun_rs_reads_it(icmp_type: u8, icmp_code: u8) -> (u8, u16) {
    let both = u16::from_be_bytes([icmp_type, icmp_code]);
    ((both >> 9) as u8, both & 0x01FF)
}

/// Compares one attribute as both decode it. Returns whether a value was compared (false where
/// one side keeps the attribute opaque, or keeps its value private: MESSAGE-INTEGRITY and
/// FINGERPRINT, which are compared through verification instead).
fn same_value(name: &str, o: &AnyAttribute<'_>, t: &StunAttribute) -> bool {
    use AnyAttribute as A;
    use StunAttribute as T;
    match (o, t) {
        (A::XorMappedAddress(v), T::XorMappedAddress(t)) => assert_eq!(*t.socket_address(), v.0, "{name}"),
        (A::MappedAddress(v), T::MappedAddress(t)) => assert_eq!(*t.socket_address(), v.0, "{name}"),
        (A::AlternateServer(v), T::AlternateServer(t)) => assert_eq!(*t.socket_address(), v.0, "{name}"),
        (A::ResponseOrigin(v), T::ResponseOrigin(t)) => assert_eq!(*t.socket_address(), v.0, "{name}"),
        (A::OtherAddress(v), T::OtherAddress(t)) => assert_eq!(*t.socket_address(), v.0, "{name}"),
        (A::XorPeerAddress(v), T::XorPeerAddress(t)) => assert_eq!(*t.socket_address(), v.0, "{name}"),
        (A::XorRelayedAddress(v), T::XorRelayedAddress(t)) => assert_eq!(*t.socket_address(), v.0, "{name}"),
        (A::Username(v), T::UserName(t)) => assert_eq!(t.as_str(), v.0, "{name}"),
        (A::Realm(v), T::Realm(t)) => assert_eq!(t.as_str(), v.0, "{name}"),
        (A::Nonce(v), T::Nonce(t)) => assert_eq!(t.as_str(), v.0, "{name}"),
        (A::Software(v), T::Software(t)) => assert_eq!(t.as_str(), v.0, "{name}"),
        (A::ErrorCode(v), T::ErrorCode(t)) => {
            let e = t.error_code();
            assert_eq!((e.error_code(), e.reason()), (v.code, v.reason), "{name}");
        }
        (A::UnknownAttributes(v), T::UnknownAttributes(t)) => assert_eq!(t.attributes(), v.as_slice(), "{name}"),
        (A::Userhash(v), T::UserHash(t)) => assert_eq!(t.hash(), &v.0, "{name}"),
        (A::PasswordAlgorithm(v), T::PasswordAlgorithm(t)) => {
            assert_eq!(u16::from(t.algorithm()), v.algorithm, "{name}");
            assert_eq!(t.parameters().unwrap_or_default(), v.params, "{name}");
        }
        (A::PasswordAlgorithms(v), T::PasswordAlgorithms(t)) => {
            let theirs: Vec<u16> = t.iter().map(|a| u16::from(a.algorithm())).collect();
            let mine: Vec<u16> = v.iter().map(|a| a.algorithm).collect();
            assert_eq!(theirs, mine, "{name}");
        }
        (A::Lifetime(v), T::LifeTime(t)) => assert_eq!(t.as_u32(), v.0, "{name}"),
        (A::Data(v), T::Data(t)) => assert_eq!(t.as_bytes(), v.0, "{name}"),
        (A::ChannelNumber(v), T::ChannelNumber(t)) => assert_eq!(t.number(), v.0, "{name}"),
        (A::RequestedTransport(v), T::RequestedTrasport(t)) => assert_eq!(t.protocol().as_u8(), v.0, "{name}"),
        (A::EvenPort(v), T::EvenPort(t)) => assert_eq!(t.reserve(), v.reserve_next, "{name}"),
        (A::DontFragment(_), T::DontFragment(_)) => {}
        (A::ReservationToken(v), T::ReservationToken(t)) => assert_eq!(t.token(), &v.0, "{name}"),
        (A::RequestedAddressFamily(v), T::RequestedAddressFamily(t)) => {
            assert_eq!(their_family(t.family()), v.0, "{name}")
        }
        (A::AdditionalAddressFamily(v), T::AdditionalAddressFamily(t)) => {
            assert_eq!(their_family(t.family()), v.0, "{name}")
        }
        (A::AddressErrorCode(v), T::AddressErrorCode(t)) => {
            assert_eq!(their_family(t.family()), v.family, "{name}");
            assert_eq!((t.error_code().error_code(), t.error_code().reason()), (v.code, v.reason), "{name}");
        }
        (A::Icmp(v), T::Icmp(t)) => {
            let (icmp_type, icmp_code) = icmp_as_stun_rs_reads_it(v.icmp_type, v.icmp_code);
            assert_eq!((t.icmp_type().get(), t.icmp_code().get()), (icmp_type, icmp_code), "{name}");
            assert_eq!(t.error_data(), &v.error_data.to_be_bytes(), "{name}");
        }
        (A::ChangeRequest(v), T::ChangeRequest(t)) => {
            let f = t.flags();
            assert_eq!(f.contains(rd::ChangeRequestFlags::ChangeIp), v.change_ip, "{name}");
            assert_eq!(f.contains(rd::ChangeRequestFlags::ChangePort), v.change_port, "{name}");
        }
        (A::MobilityTicket(v), T::MobilityTicket(t)) => assert_eq!(t.value(), v.0, "{name}"),
        (A::MessageIntegrity(_), T::MessageIntegrity(_))
        | (A::MessageIntegritySha256(_), T::MessageIntegritySha256(_))
        | (A::Fingerprint(_), T::Fingerprint(_)) => return false,
        // Types only one side has a typed form for (CONNECTION-ID, ACCESS-TOKEN, ICE attributes...).
        (A::Unknown(_), _) | (_, T::Unknown(_)) => return false,
        (o, t) => panic!("{name}: switchback decodes {o:?}, stun-rs {t:?}"),
    }
    true
}

/// The keys of one message on both sides.
struct Keys {
    ours: IntegrityKey,
    theirs: HMACKey,
}

fn long_term(username: &str, realm: &str, password: &str) -> Keys {
    Keys {
        ours: IntegrityKey::new(&long_term_key_md5(username, realm, password)),
        theirs: HMACKey::new_long_term(username, realm, password, Algorithm::from(AlgorithmId::MD5)).unwrap(),
    }
}

fn short_term(password: &str) -> Keys {
    Keys { ours: IntegrityKey::new(password.as_bytes()), theirs: HMACKey::new_short_term(password).unwrap() }
}

/// Decodes `bytes` with both and compares everything both express; with `keys`, both must verify
/// MESSAGE-INTEGRITY with them and both must reject a wrong key. Returns how many attribute values
/// were compared.
fn compare(name: &str, bytes: &[u8], keys: Option<&Keys>) -> usize {
    let mine = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: switchback: {e}"));
    let theirs = rs_decode(bytes, None).unwrap_or_else(|e| panic!("{name}: stun-rs: {e}"));

    let t = mine.message_type();
    assert_eq!(theirs.method().as_u16(), t.method.0, "{name}: method");
    assert_eq!(their_class(theirs.class()), t.class, "{name}: class");
    assert_eq!(theirs.transaction_id().as_bytes(), mine.transaction_id().as_bytes(), "{name}: transaction ID");

    // stun-rs drops what follows MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT, as our lookups ignore
    // it; none of these messages carries anything there, so the lists are the same.
    let their_types: Vec<u16> = theirs.attributes().iter().map(|a| a.attribute_type().as_u16()).collect();
    let my_types: Vec<u16> = mine.attributes().map(|a| a.typ).collect();
    assert_eq!(their_types, my_types, "{name}: attribute types");

    let mut compared = 0;
    for (o, t) in mine.decoded().zip(theirs.attributes()) {
        let o = o.unwrap_or_else(|e| panic!("{name}: switchback rejects {t:?}: {e}"));
        compared += usize::from(same_value(name, &o, t));
    }

    if let Some(k) = keys {
        assert!(mine.has_integrity(), "{name}: not signed");
        mine.verify_integrity(&k.ours).unwrap_or_else(|e| panic!("{name}: switchback: {e}"));
        rs_decode(bytes, Some(&k.theirs)).unwrap_or_else(|e| panic!("{name}: stun-rs does not verify: {e}"));
        let wrong = short_term("wrong");
        assert!(mine.verify_integrity(&wrong.ours).is_err(), "{name}");
        assert!(rs_decode(bytes, Some(&wrong.theirs)).is_err(), "{name}: stun-rs accepts a wrong key");
    }
    if mine.has_fingerprint() {
        mine.verify_fingerprint().unwrap();
    }
    compared
}

// ---- Fixed inputs: captures and RFC 5769 ----

fn captures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures")
}

/// The captured STUN frames stun-rs does not decode, and why. Everything else must agree.
const STUN_RS_REJECTS: &[(&str, &str)] = &[];

#[test]
fn captured_messages_agree_with_stun_rs() {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(captures_dir().join("manifest.json")).unwrap()).unwrap();
    let mut messages = 0;
    let mut values = 0;
    let mut signed = 0;
    let mut rejected = Vec::new();
    for e in manifest["files"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let bytes = std::fs::read(captures_dir().join(file)).unwrap();
        let keys =
            e["username"].as_str().map(|u| long_term(u, e["realm"].as_str().unwrap(), e["password"].as_str().unwrap()));
        let mut frames = Vec::new();
        match e["kind"].as_str().unwrap() {
            "stun" => frames.push((file.to_owned(), &bytes[..], e["message_integrity"] == "verified")),
            "tcp-stream" => {
                for f in e["frames"].as_array().unwrap() {
                    if f["type"] == "ChannelData" {
                        continue;
                    }
                    let off = usize::try_from(f["offset"].as_u64().unwrap()).unwrap();
                    let len = usize::try_from(f["length"].as_u64().unwrap()).unwrap();
                    frames.push((
                        format!("{file}@{off}"),
                        &bytes[off..off + len],
                        f["message_integrity"] == "verified",
                    ));
                }
            }
            _ => {}
        }
        for (name, frame, signed_here) in frames {
            messages += 1;
            if let Err(err) = rs_decode(frame, None) {
                rejected.push((name, err));
                continue;
            }
            values += compare(&name, frame, keys.as_ref().filter(|_| signed_here));
            signed += usize::from(signed_here);
        }
    }
    let rejected_names: Vec<&str> = rejected.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<&str> = STUN_RS_REJECTS.iter().map(|(n, _)| *n).collect();
    assert_eq!(rejected_names, expected, "{rejected:#?}");
    assert_eq!(messages, 41 + 10 + 10);
    assert_eq!(signed, 35);
    // Every typed value but MESSAGE-INTEGRITY and FINGERPRINT (compared by verification).
    assert_eq!(values, 184);
}

#[test]
fn rfc5769_vectors_agree_with_stun_rs() {
    let unhex = |s: &str| hex::decode(s.split_whitespace().collect::<String>()).unwrap();
    let st = short_term("VOkJxbRl1RmTxUk/WvJxBt");
    // §2.1's PRIORITY, ICE-CONTROLLED (ICE, not typed by switchback) are not compared.
    assert_eq!(compare("RFC 5769 §2.1", &unhex(vectors::SAMPLE_REQUEST), Some(&st)), 2);
    assert_eq!(compare("RFC 5769 §2.2", &unhex(vectors::SAMPLE_IPV4_RESPONSE), Some(&st)), 2);
    assert_eq!(compare("RFC 5769 §2.3", &unhex(vectors::SAMPLE_IPV6_RESPONSE), Some(&st)), 2);
    let lt = long_term("\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}", "example.org", "TheMatrIX");
    assert_eq!(compare("RFC 5769 §2.4", &unhex(vectors::SAMPLE_REQUEST_LONG_TERM), Some(&lt)), 3);
}

// ---- Messages both encoders write ----

/// An attribute both codecs can write.
#[derive(Clone, Debug)]
enum Both {
    XorMappedAddress(SocketAddr),
    XorPeerAddress(SocketAddr),
    XorRelayedAddress(SocketAddr),
    AlternateServer(SocketAddr),
    Username(String),
    Realm(String),
    Nonce(String),
    Software(String),
    ErrorCode(u16, String),
    Lifetime(u32),
    Data(Vec<u8>),
    ChannelNumber(u16),
    /// REQUESTED-TRANSPORT UDP: stun-rs has no way to build another protocol number.
    RequestedTransportUdp,
    EvenPort(bool),
    DontFragment,
    ReservationToken([u8; 8]),
    RequestedAddressFamily(AddressFamily),
}

fn rs_family(f: AddressFamily) -> stun_rs::AddressFamily {
    match f {
        AddressFamily::V4 => stun_rs::AddressFamily::IPv4,
        AddressFamily::V6 => stun_rs::AddressFamily::IPv6,
    }
}

impl Both {
    fn write_ours(&self, w: &mut MessageWriter<'_>) {
        use ours::*;
        match self {
            Both::XorMappedAddress(a) => w.add(&XorMappedAddress(*a)),
            Both::XorPeerAddress(a) => w.add(&XorPeerAddress(*a)),
            Both::XorRelayedAddress(a) => w.add(&XorRelayedAddress(*a)),
            Both::AlternateServer(a) => w.add(&AlternateServer(*a)),
            Both::Username(s) => w.add(&Username(s)),
            Both::Realm(s) => w.add(&Realm(s)),
            Both::Nonce(s) => w.add(&Nonce(s)),
            Both::Software(s) => w.add(&Software(s)),
            Both::ErrorCode(code, reason) => w.add(&ErrorCode { code: *code, reason }),
            Both::Lifetime(n) => w.add(&Lifetime(*n)),
            Both::Data(d) => w.add(&Data(d)),
            Both::ChannelNumber(n) => w.add(&ChannelNumber(*n)),
            Both::RequestedTransportUdp => w.add(&RequestedTransport(17)),
            Both::EvenPort(r) => w.add(&EvenPort { reserve_next: *r }),
            Both::DontFragment => w.add(&DontFragment),
            Both::ReservationToken(t) => w.add(&ReservationToken(*t)),
            Both::RequestedAddressFamily(f) => w.add(&RequestedAddressFamily(*f)),
        }
        .unwrap();
    }

    fn write_theirs(&self, b: StunMessageBuilder) -> StunMessageBuilder {
        match self {
            Both::XorMappedAddress(a) => b.with_attribute(rs::XorMappedAddress::from(*a)),
            Both::XorPeerAddress(a) => b.with_attribute(rt::XorPeerAddress::from(*a)),
            Both::XorRelayedAddress(a) => b.with_attribute(rt::XorRelayedAddress::from(*a)),
            Both::AlternateServer(a) => b.with_attribute(rs::AlternateServer::new(a.ip(), a.port())),
            Both::Username(s) => b.with_attribute(rs::UserName::new(s).unwrap()),
            Both::Realm(s) => b.with_attribute(rs::Realm::new(s).unwrap()),
            Both::Nonce(s) => b.with_attribute(rs::Nonce::new(s).unwrap()),
            Both::Software(s) => b.with_attribute(rs::Software::new(s).unwrap()),
            Both::ErrorCode(code, reason) => {
                b.with_attribute(rs::ErrorCode::new(stun_rs::ErrorCode::new(*code, reason).unwrap()))
            }
            Both::Lifetime(n) => b.with_attribute(rt::LifeTime::new(*n)),
            Both::Data(d) => b.with_attribute(rt::Data::new(d.clone())),
            Both::ChannelNumber(n) => b.with_attribute(rt::ChannelNumber::new(*n)),
            Both::RequestedTransportUdp => b.with_attribute(rt::RequestedTrasport::new(stun_rs::protocols::UDP)),
            Both::EvenPort(r) => b.with_attribute(rt::EvenPort::new(*r)),
            Both::DontFragment => b.with_attribute(rt::DontFragment::default()),
            Both::ReservationToken(t) => b.with_attribute(rt::ReservationToken::from(*t)),
            Both::RequestedAddressFamily(f) => b.with_attribute(rt::RequestedAddressFamily::new(rs_family(*f))),
        }
    }
}

fn rs_class(c: Class) -> RsClass {
    match c {
        Class::Request => RsClass::Request,
        Class::Indication => RsClass::Indication,
        Class::SuccessResponse => RsClass::SuccessResponse,
        Class::ErrorResponse => RsClass::ErrorResponse,
    }
}

/// Writes one message with both encoders: (switchback's bytes, stun-rs's bytes).
fn write_both(
    method: Method,
    class: Class,
    tid: [u8; 12],
    attrs: &[Both],
    keys: Option<&Keys>,
    fingerprint: bool,
) -> (Vec<u8>, Vec<u8>) {
    let mut buf = vec![0u8; 4096];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), TransactionId(tid)).unwrap();
    for a in attrs {
        a.write_ours(&mut w);
    }
    if let Some(k) = keys {
        w.add_message_integrity(&k.ours).unwrap();
    }
    if fingerprint {
        w.add_fingerprint().unwrap();
    }
    let n = w.finish();
    buf.truncate(n);

    let mut b = StunMessageBuilder::new(MessageMethod::try_from(method.0).unwrap(), rs_class(class))
        .with_transaction_id(stun_rs::TransactionId::from(tid));
    for a in attrs {
        b = a.write_theirs(b);
    }
    if let Some(k) = keys {
        b = b.with_attribute(rs::MessageIntegrity::new(k.theirs.clone()));
    }
    if fingerprint {
        b = b.with_attribute(rs::Fingerprint::default());
    }
    let mut out = vec![0u8; 4096];
    let n = MessageEncoderBuilder::default().build().encode(&mut out, &b.build()).unwrap();
    out.truncate(n);
    (buf, out)
}

/// Both encoders write the same bytes; each decoder reads the other's output, values agree and
/// each verifies the other's MESSAGE-INTEGRITY.
fn round_trip(name: &str, method: Method, class: Class, attrs: &[Both], keys: Option<&Keys>, fingerprint: bool) {
    let tid = *b"switchback!?";
    let (mine, theirs) = write_both(method, class, tid, attrs, keys, fingerprint);
    assert_eq!(hex::encode(&theirs), hex::encode(&mine), "{name}: encodings differ");
    let compared = compare(&format!("{name} (stun-rs wrote)"), &theirs, keys);
    assert_eq!(compared, attrs.len(), "{name}");
    compare(&format!("{name} (switchback wrote)"), &mine, keys);
}

fn v4(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn turn_messages_encode_identically() {
    let keys = long_term("2000000000:alice", "example.org", "oUX2YJPluLAKwg1BNeXd8rkMcxs=");
    let user = Both::Username("2000000000:alice".into());
    let realm = Both::Realm("example.org".into());
    let nonce = Both::Nonce("obMatJos2AAACf//499k954d6OL34oL9".into());
    let client = v4("192.0.2.1:32853");
    let relay = v4("203.0.113.5:49170");
    let peer = v4("198.51.100.9:5000");
    let peer6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap();

    round_trip("Binding request", Method::BINDING, Class::Request, &[], None, false);
    round_trip(
        "Binding success",
        Method::BINDING,
        Class::SuccessResponse,
        &[Both::XorMappedAddress(client), Both::Software("switchback".into())],
        None,
        true,
    );
    round_trip(
        "Binding success IPv6",
        Method::BINDING,
        Class::SuccessResponse,
        &[Both::XorMappedAddress(peer6)],
        None,
        true,
    );
    round_trip(
        "Allocate request",
        Method::ALLOCATE,
        Class::Request,
        &[Both::RequestedTransportUdp, Both::Lifetime(600), user.clone(), realm.clone(), nonce.clone()],
        Some(&keys),
        true,
    );
    round_trip(
        "Allocate request, dual-stack options",
        Method::ALLOCATE,
        Class::Request,
        &[
            Both::RequestedTransportUdp,
            Both::RequestedAddressFamily(AddressFamily::V6),
            Both::DontFragment,
            Both::EvenPort(true),
            user.clone(),
            realm.clone(),
            nonce.clone(),
        ],
        Some(&keys),
        true,
    );
    round_trip(
        "Allocate 401",
        Method::ALLOCATE,
        Class::ErrorResponse,
        &[Both::ErrorCode(401, "Unauthorized".into()), realm.clone(), nonce.clone()],
        None,
        true,
    );
    round_trip(
        "Allocate 300",
        Method::ALLOCATE,
        Class::ErrorResponse,
        &[Both::ErrorCode(300, "Try Alternate".into()), Both::AlternateServer(v4("203.0.113.6:3478"))],
        None,
        false,
    );
    round_trip(
        "Allocate success",
        Method::ALLOCATE,
        Class::SuccessResponse,
        &[
            Both::XorRelayedAddress(relay),
            Both::XorMappedAddress(client),
            Both::Lifetime(600),
            Both::ReservationToken(*b"\x01\x02\x03\x04\x05\x06\x07\x08"),
        ],
        Some(&keys),
        true,
    );
    round_trip(
        "Refresh request",
        Method::REFRESH,
        Class::Request,
        &[Both::Lifetime(0), user.clone(), realm.clone(), nonce.clone()],
        Some(&keys),
        true,
    );
    round_trip(
        "CreatePermission request",
        Method::CREATE_PERMISSION,
        Class::Request,
        &[Both::XorPeerAddress(peer), Both::XorPeerAddress(peer6), user.clone(), realm.clone(), nonce.clone()],
        Some(&keys),
        true,
    );
    round_trip("CreatePermission success", Method::CREATE_PERMISSION, Class::SuccessResponse, &[], Some(&keys), true);
    round_trip(
        "ChannelBind request",
        Method::CHANNEL_BIND,
        Class::Request,
        &[Both::ChannelNumber(0x4001), Both::XorPeerAddress(peer), user, realm, nonce],
        Some(&keys),
        true,
    );
    // 1,001 bytes of DATA: 3 bytes of padding, zero in both.
    let payload: Vec<u8> = (0..1001u32).map(|i| (i * 7) as u8).collect();
    round_trip(
        "Send indication",
        Method::SEND,
        Class::Indication,
        &[Both::XorPeerAddress(peer), Both::DontFragment, Both::Data(payload.clone())],
        None,
        false,
    );
    round_trip(
        "Data indication",
        Method::DATA,
        Class::Indication,
        &[Both::XorPeerAddress(peer6), Both::Data(payload)],
        None,
        true,
    );
}

/// RFC 8489 §9.2 SHA-256 long-term keys: PASSWORD-ALGORITHM(S) and MESSAGE-INTEGRITY-SHA256, signed
/// by each side and verified by the other.
#[test]
fn sha256_integrity_both_ways() {
    let (user, realm, pass) = ("bob", "example.org", "secret");
    let their_key = HMACKey::new_long_term(user, realm, pass, Algorithm::from(AlgorithmId::SHA256)).unwrap();
    let our_key = ours::IntegrityKeySha256::new(&ours::long_term_key_sha256(user, realm, pass));
    assert_eq!(their_key.as_bytes(), &ours::long_term_key_sha256(user, realm, pass)[..]);
    let sha256 = ours::password_algorithm::SHA256;

    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId(*b"sha256-both!"),
    )
    .unwrap();
    w.add(&ours::RequestedTransport(17)).unwrap();
    w.add(&ours::Username(user)).unwrap();
    w.add(&ours::Realm(realm)).unwrap();
    w.add(&ours::Nonce("n0nce")).unwrap();
    w.add(&ours::PasswordAlgorithm { algorithm: sha256, params: &[] }).unwrap();
    w.add_message_integrity_sha256(&our_key).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    let mine = &buf[..n];

    let b = StunMessageBuilder::new(stun_rs::methods::ALLOCATE, RsClass::Request)
        .with_transaction_id(stun_rs::TransactionId::from(*b"sha256-both!"))
        .with_attribute(rt::RequestedTrasport::new(stun_rs::protocols::UDP))
        .with_attribute(rs::UserName::new(user).unwrap())
        .with_attribute(rs::Realm::new(realm).unwrap())
        .with_attribute(rs::Nonce::new("n0nce").unwrap())
        .with_attribute(rs::PasswordAlgorithm::new(Algorithm::from(AlgorithmId::SHA256)))
        .with_attribute(rs::MessageIntegritySha256::new(their_key.clone()))
        .with_attribute(rs::Fingerprint::default());
    let mut out = vec![0u8; 512];
    let n = MessageEncoderBuilder::default().build().encode(&mut out, &b.build()).unwrap();
    let theirs = &out[..n];
    assert_eq!(hex::encode(theirs), hex::encode(mine));

    for (who, bytes) in [("switchback", mine), ("stun-rs", theirs)] {
        let m = Message::parse(bytes).unwrap();
        m.verify_integrity_sha256(&our_key).unwrap_or_else(|e| panic!("{who} wrote, switchback: {e}"));
        rs_decode(bytes, Some(&their_key)).unwrap_or_else(|e| panic!("{who} wrote, stun-rs: {e}"));
        let wrong = HMACKey::new_long_term(user, realm, "wrong", Algorithm::from(AlgorithmId::SHA256)).unwrap();
        assert!(rs_decode(bytes, Some(&wrong)).is_err());
        assert_eq!(compare(who, bytes, None), 5);
    }
}

/// Where stun-rs reads the wire differently, pinned down so a change on either side shows.
#[test]
fn icmp_is_read_differently() {
    // Destination unreachable, fragmentation needed, next-hop MTU 1280.
    let mut buf = vec![0u8; 128];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::DATA, Class::Indication), TransactionId([3; 12]))
        .unwrap();
    w.add(&ours::XorPeerAddress(v4("198.51.100.9:5000"))).unwrap();
    w.add(&ours::Icmp { icmp_type: 3, icmp_code: 4, error_data: 1280 }).unwrap();
    let n = w.finish();
    let theirs = rs_decode(&buf[..n], None).unwrap();
    let icmp = theirs.get::<rt::Icmp>().unwrap().as_icmp().unwrap();
    // stun-rs: type = top 7 bits of 0x0304, code = low 9 bits.
    assert_eq!((icmp.icmp_type().get(), icmp.icmp_code().get()), (1, 0x104));
    assert_eq!(icmp.error_data(), &1280u32.to_be_bytes());
    // compare() checks the same mapping for every ICMP attribute it meets.
    assert_eq!(compare("Data indication with ICMP", &buf[..n], None), 2);
}

/// What stun-rs cannot express: it decodes RFC 6062 and RFC 7635 messages only as far as their
/// header and the attributes it knows, and has no typed CONNECTION-ID, ACCESS-TOKEN or
/// THIRD-PARTY-AUTHORIZATION (they come out as `Unknown`, without their value).
#[test]
fn rfc6062_and_rfc7635_attributes_are_opaque_to_stun_rs() {
    let mut buf = vec![0u8; 256];
    let mut w =
        MessageWriter::new(&mut buf, MessageType::new(Method::CONNECTION_BIND, Class::Request), TransactionId([6; 12]))
            .unwrap();
    w.add(&ours::ConnectionId(0xDEAD_BEEF)).unwrap();
    w.add(&ours::AccessToken(&[0x11; 40])).unwrap();
    w.add(&ours::ThirdPartyAuthorization("https://auth.example.org")).unwrap();
    let n = w.finish();
    let theirs = rs_decode(&buf[..n], None).unwrap();
    assert_eq!(theirs.method().as_u16(), Method::CONNECTION_BIND.0);
    assert_eq!(theirs.attributes().len(), 3);
    assert!(theirs.attributes().iter().all(|a| a.is_unknown()));
    assert_eq!(compare("ConnectionBind", &buf[..n], None), 0);
}

// ---- Generated messages ----

/// Text stun-rs accepts unchanged: its USERNAME goes through the PRECIS OpaqueString profile and
/// REALM/NONCE must be `qdtext`, which a server's own values are.
fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9:._/+=-]{1,40}"
}

fn both() -> impl Strategy<Value = Both> {
    prop_oneof![
        socket_addr().prop_map(Both::XorMappedAddress),
        socket_addr().prop_map(Both::XorPeerAddress),
        socket_addr().prop_map(Both::XorRelayedAddress),
        socket_addr().prop_map(Both::AlternateServer),
        text().prop_map(Both::Username),
        text().prop_map(Both::Realm),
        text().prop_map(Both::Nonce),
        "[ -~]{0,40}".prop_map(Both::Software),
        (300u16..700, "[A-Za-z ]{0,40}").prop_map(|(c, r)| Both::ErrorCode(c, r)),
        any::<u32>().prop_map(Both::Lifetime),
        vec(any::<u8>(), 0..200).prop_map(Both::Data),
        (0x4000u16..=0x4FFF).prop_map(Both::ChannelNumber),
        Just(Both::RequestedTransportUdp),
        any::<bool>().prop_map(Both::EvenPort),
        Just(Both::DontFragment),
        any::<[u8; 8]>().prop_map(Both::ReservationToken),
        prop_oneof![Just(AddressFamily::V4), Just(AddressFamily::V6)].prop_map(Both::RequestedAddressFamily),
    ]
}

proptest! {
    #[test]
    fn generated_messages_agree_with_stun_rs(
        method in 0u16..0x1000,
        class in prop_oneof![
            Just(Class::Request), Just(Class::Indication),
            Just(Class::SuccessResponse), Just(Class::ErrorResponse)
        ],
        tid in any::<[u8; 12]>(),
        attrs in vec(both(), 0..10),
        signed in any::<bool>(),
        fingerprint in any::<bool>(),
        (username, realm, password) in ("[a-z0-9:]{1,20}", "[a-z.]{1,20}", "[A-Za-z0-9+/=]{1,28}"),
    ) {
        let keys = long_term(&username, &realm, &password);
        let keys = signed.then_some(&keys);
        let (mine, theirs) = write_both(Method(method), class, tid, &attrs, keys, fingerprint);
        prop_assert_eq!(hex::encode(&theirs), hex::encode(&mine));
        prop_assert_eq!(compare("generated", &theirs, keys), attrs.len());
    }
}
