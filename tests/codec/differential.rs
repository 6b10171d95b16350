//! Differential tests against an independent implementation: `stun-types` 2.x and `turn-types` 0.7.
//!
//! Every valid captured STUN frame, the RFC 5769 vectors and proptest-generated messages are decoded
//! by both; message type, transaction ID, the attribute type list, the values of every attribute
//! both libraries type, and the MESSAGE-INTEGRITY verdict must agree. Generated messages are also
//! written by both encoders, which must produce the same bytes.

use std::net::SocketAddr;
use std::path::PathBuf;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::strategies::socket_addr;
use serde_json::Value;
use stun_types::attribute as sa;
use stun_types::message as sm;
use stun_types::prelude::*;
use switchback::proto::stun::{
    self as ours, AddressFamily, AnyAttribute, Class, IntegrityKey, IntegrityKeySha256, Message, MessageType,
    MessageWriter, Method, TransactionId, long_term_key_md5, long_term_key_sha256, password_algorithm,
};
use turn_types::attribute as ta;

// ---- Comparing one message ----

fn their_class(c: sm::MessageClass) -> Class {
    match c {
        sm::MessageClass::Request => Class::Request,
        sm::MessageClass::Indication => Class::Indication,
        sm::MessageClass::Success => Class::SuccessResponse,
        sm::MessageClass::Error => Class::ErrorResponse,
    }
}

fn their_family(f: stun_types::AddressFamily) -> AddressFamily {
    match f {
        stun_types::AddressFamily::IPV4 => AddressFamily::V4,
        stun_types::AddressFamily::IPV6 => AddressFamily::V6,
    }
}

fn their_algorithm(v: sa::PasswordAlgorithmValue) -> u16 {
    match v {
        sa::PasswordAlgorithmValue::MD5 => password_algorithm::MD5,
        sa::PasswordAlgorithmValue::SHA256 => password_algorithm::SHA256,
    }
}

fn decode<'a, T: AttributeFromRaw<'a>>(raw: &sa::RawAttribute<'_>) -> T {
    T::from_raw_ref(raw).unwrap_or_else(|e| panic!("stun-types rejects {raw}: {e}"))
}

/// Compares one attribute as both libraries decode it. Returns whether a value was compared
/// (false for types only one side types).
fn same_value(o: &AnyAttribute<'_>, t: &sa::RawAttribute<'_>, tid: sm::TransactionId) -> bool {
    use AnyAttribute as A;
    match o {
        A::XorMappedAddress(v) => assert_eq!(decode::<sa::XorMappedAddress>(t).addr(tid), v.0),
        A::MappedAddress(v) => assert_eq!(sa::MappedSocketAddr::from_raw(t).unwrap().addr(), v.0),
        A::ResponseOrigin(v) => assert_eq!(sa::MappedSocketAddr::from_raw(t).unwrap().addr(), v.0),
        A::OtherAddress(v) => assert_eq!(sa::MappedSocketAddr::from_raw(t).unwrap().addr(), v.0),
        A::AlternateServer(v) => assert_eq!(decode::<sa::AlternateServer>(t).server(), v.0),
        A::Username(v) => assert_eq!(decode::<sa::Username>(t).username(), v.0),
        A::Realm(v) => assert_eq!(decode::<sa::Realm>(t).realm(), v.0),
        A::Nonce(v) => assert_eq!(decode::<sa::Nonce>(t).nonce(), v.0),
        A::Software(v) => assert_eq!(decode::<sa::Software>(t).software(), v.0),
        A::AlternateDomain(v) => assert_eq!(decode::<sa::AlternateDomain>(t).domain(), v.0),
        A::ErrorCode(v) => {
            let e = decode::<sa::ErrorCode>(t);
            assert_eq!((e.code(), e.reason()), (v.code, v.reason));
        }
        A::UnknownAttributes(v) => {
            let u = decode::<sa::UnknownAttributes>(t);
            assert!(v.as_slice().iter().all(|x| u.has_attribute(sa::AttributeType::new(*x))));
        }
        A::MessageIntegrity(v) => assert_eq!(decode::<sa::MessageIntegrity>(t).hmac(), &v.0),
        A::MessageIntegritySha256(v) => {
            assert_eq!(decode::<sa::MessageIntegritySha256>(t).hmac(), v.0)
        }
        // stun-types' `fingerprint()` is the CRC-32 before the XOR with 0x5354554E.
        A::Fingerprint(v) => {
            assert_eq!(u32::from_be_bytes(*decode::<sa::Fingerprint>(t).fingerprint()) ^ 0x5354_554E, v.0)
        }
        A::Userhash(v) => assert_eq!(decode::<sa::Userhash>(t).hash(), &v.0),
        A::PasswordAlgorithm(v) => {
            assert!(v.params.is_empty());
            assert_eq!(their_algorithm(decode::<sa::PasswordAlgorithm>(t).algorithm()), v.algorithm);
        }
        A::PasswordAlgorithms(v) => {
            let theirs: Vec<u16> =
                decode::<sa::PasswordAlgorithms>(t).algorithms().iter().map(|a| their_algorithm(*a)).collect();
            let mine: Vec<u16> = v.iter().map(|a| a.algorithm).collect();
            assert_eq!(theirs, mine);
        }
        A::Lifetime(v) => assert_eq!(decode::<ta::Lifetime>(t).seconds(), v.0),
        A::XorPeerAddress(v) => assert_eq!(decode::<ta::XorPeerAddress>(t).addr(tid), v.0),
        A::XorRelayedAddress(v) => assert_eq!(decode::<ta::XorRelayedAddress>(t).addr(tid), v.0),
        A::Data(v) => assert_eq!(decode::<ta::Data>(t).data(), v.0),
        A::ChannelNumber(v) => assert_eq!(decode::<ta::ChannelNumber>(t).channel(), v.0),
        A::RequestedTransport(v) => assert_eq!(decode::<ta::RequestedTransport>(t).protocol(), v.0),
        A::EvenPort(v) => assert_eq!(decode::<ta::EvenPort>(t).requested(), v.reserve_next),
        A::DontFragment(_) => {
            decode::<ta::DontFragment>(t);
        }
        A::ReservationToken(v) => {
            assert_eq!(decode::<ta::ReservationToken>(t).token().to_be_bytes(), v.0)
        }
        A::ConnectionId(v) => assert_eq!(decode::<ta::ConnectionId>(t).id(), v.0),
        A::RequestedAddressFamily(v) => assert_eq!(their_family(decode::<ta::RequestedAddressFamily>(t).family()), v.0),
        A::Icmp(v) => {
            let i = decode::<ta::Icmp>(t);
            assert_eq!((i.icmp_type(), i.code(), i.data()), (v.icmp_type, v.icmp_code, v.error_data));
        }
        _ => return false,
    }
    true
}

/// How to check MESSAGE-INTEGRITY on both sides.
struct Credentials {
    ours_sha1: IntegrityKey,
    ours_sha256: Option<IntegrityKeySha256>,
    theirs: sm::MessageIntegrityCredentials,
}

fn long_term(username: &str, realm: &str, password: &str) -> Credentials {
    Credentials {
        ours_sha1: IntegrityKey::new(&long_term_key_md5(username, realm, password)),
        ours_sha256: Some(IntegrityKeySha256::new(&long_term_key_sha256(username, realm, password))),
        theirs: sm::LongTermKeyCredentials::new(username.into(), password.into(), realm.into()).into(),
    }
}

fn short_term(password: &str) -> Credentials {
    Credentials {
        ours_sha1: IntegrityKey::new(password.as_bytes()),
        ours_sha256: Some(IntegrityKeySha256::new(password.as_bytes())),
        theirs: sm::ShortTermCredentials::new(password.into()).into(),
    }
}

/// Decodes `bytes` with both libraries and compares everything both express. Returns how many
/// attribute values were compared.
fn compare(name: &str, bytes: &[u8], creds: Option<&Credentials>) -> usize {
    let mine = Message::parse(bytes).unwrap_or_else(|e| panic!("{name}: ours: {e}"));
    let theirs = sm::Message::from_bytes(bytes).unwrap_or_else(|e| panic!("{name}: theirs: {e}"));

    let t = mine.message_type();
    assert_eq!(theirs.method().value(), t.method.0, "{name}: method");
    assert_eq!(their_class(theirs.class()), t.class, "{name}: class");
    let tid: sm::TransactionId = theirs.transaction_id();
    // stun-types keeps the 96-bit transaction ID in the low bits of a u128.
    let tid_bytes = u128::from(tid).to_be_bytes();
    assert_eq!(&tid_bytes[..4], &[0; 4], "{name}");
    assert_eq!(&tid_bytes[4..], mine.transaction_id().as_bytes(), "{name}: transaction ID");

    // stun-types stops listing after MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT, as lookups here do;
    // none of these messages carries anything else after them, so the lists are the same.
    let their_attrs: Vec<sa::RawAttribute<'_>> = theirs.iter_attributes().map(|(_, a)| a).collect();
    let their_types: Vec<u16> = their_attrs.iter().map(|a| a.get_type().value()).collect();
    let my_types: Vec<u16> = mine.attributes().map(|a| a.typ).collect();
    assert_eq!(their_types, my_types, "{name}: attribute types");
    for (raw_mine, raw_theirs) in mine.attributes().zip(&their_attrs) {
        assert_eq!(raw_mine.value, &raw_theirs.value[..], "{name}: raw value");
    }

    let mut compared = 0;
    for (o, t) in mine.decoded().zip(&their_attrs) {
        let o = o.unwrap_or_else(|e| panic!("{name}: ours rejects {t}: {e}"));
        if same_value(&o, t, tid) {
            compared += 1;
        }
    }

    if let Some(c) = creds {
        let their_verdict = theirs.validate_integrity(&c.theirs);
        let my_verdict = if mine.has_integrity_sha256() {
            let k = c.ours_sha256.as_ref().unwrap();
            mine.verify_integrity_sha256(k).map(|()| sm::IntegrityAlgorithm::Sha256)
        } else {
            mine.verify_integrity(&c.ours_sha1).map(|()| sm::IntegrityAlgorithm::Sha1)
        };
        assert_eq!(my_verdict.ok(), their_verdict.ok(), "{name}: integrity verdict");
        let wrong: sm::MessageIntegrityCredentials = sm::ShortTermCredentials::new("wrong".into()).into();
        assert!(theirs.validate_integrity(&wrong).is_err());
        assert!(mine.verify_integrity(&IntegrityKey::new(b"wrong")).is_err());
    }
    assert_eq!(mine.has_fingerprint(), theirs.has_attribute(sa::Fingerprint::TYPE));
    compared
}

// ---- Fixed inputs: captures and RFC 5769 ----

fn captures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/captures")
}

#[test]
fn captured_messages_agree() {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(captures_dir().join("manifest.json")).unwrap()).unwrap();
    let mut messages = 0;
    let mut values = 0;
    let mut signed = 0;
    for e in manifest["files"].as_array().unwrap() {
        let file = e["file"].as_str().unwrap();
        let bytes = std::fs::read(captures_dir().join(file)).unwrap();
        let creds = e["username"].as_str().map(|u| {
            long_term(
                u,
                e["realm"].as_str().unwrap(),
                // The manifest's REST password; tests/captures.rs derives it independently.
                e["password"].as_str().unwrap(),
            )
        });
        match e["kind"].as_str().unwrap() {
            "stun" => {
                let signed_here = e["message_integrity"] == "verified";
                values += compare(file, &bytes, creds.as_ref().filter(|_| signed_here));
                messages += 1;
                signed += usize::from(signed_here);
            }
            "tcp-stream" => {
                for f in e["frames"].as_array().unwrap() {
                    if f["type"] == "ChannelData" {
                        continue;
                    }
                    let off = usize::try_from(f["offset"].as_u64().unwrap()).unwrap();
                    let len = usize::try_from(f["length"].as_u64().unwrap()).unwrap();
                    let signed_here = f["message_integrity"] == "verified";
                    values += compare(
                        &format!("{file}@{off}"),
                        &bytes[off..off + len],
                        creds.as_ref().filter(|_| signed_here),
                    );
                    messages += 1;
                    signed += usize::from(signed_here);
                }
            }
            _ => {}
        }
    }
    assert_eq!(messages, 41 + 10 + 10);
    assert!(signed >= 35, "{signed}");
    assert!(values > 200, "{values}");
}

use crate::support::rfc5769_vectors as vectors;
use vectors::{SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE, SAMPLE_REQUEST, SAMPLE_REQUEST_LONG_TERM};

#[test]
fn rfc5769_vectors_agree() {
    let unhex = |s: &str| hex::decode(s.split_whitespace().collect::<String>()).unwrap();
    let st = short_term("VOkJxbRl1RmTxUk/WvJxBt");
    // PRIORITY and ICE-CONTROLLED (ICE attributes) are typed by neither side, so §2.1 compares 4.
    assert_eq!(compare("RFC 5769 §2.1", &unhex(SAMPLE_REQUEST), Some(&st)), 4);
    assert_eq!(compare("RFC 5769 §2.2", &unhex(SAMPLE_IPV4_RESPONSE), Some(&st)), 4);
    assert_eq!(compare("RFC 5769 §2.3", &unhex(SAMPLE_IPV6_RESPONSE), Some(&st)), 4);
    let lt = long_term("\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}", "example.org", "TheMatrIX");
    assert_eq!(compare("RFC 5769 §2.4", &unhex(SAMPLE_REQUEST_LONG_TERM), Some(&lt)), 4);
}

// ---- Generated messages: both decoders, and both encoders ----

/// An attribute both libraries can write and read.
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
    RequestedTransport(u8),
    EvenPort(bool),
    DontFragment,
    ReservationToken([u8; 8]),
    ConnectionId(u32),
    RequestedAddressFamily(AddressFamily),
    Icmp(u8, u8, u32),
    Userhash([u8; 32]),
    PasswordAlgorithm(bool),
    PasswordAlgorithms(Vec<bool>),
}

fn algorithm(sha256: bool) -> (u16, sa::PasswordAlgorithmValue) {
    if sha256 {
        (password_algorithm::SHA256, sa::PasswordAlgorithmValue::SHA256)
    } else {
        (password_algorithm::MD5, sa::PasswordAlgorithmValue::MD5)
    }
}

fn family_of(f: AddressFamily) -> stun_types::AddressFamily {
    match f {
        AddressFamily::V4 => stun_types::AddressFamily::IPV4,
        AddressFamily::V6 => stun_types::AddressFamily::IPV6,
    }
}

impl Both {
    fn write_ours(&self, w: &mut MessageWriter<'_>) {
        use ours::*;
        let r = match self {
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
            Both::RequestedTransport(p) => w.add(&RequestedTransport(*p)),
            Both::EvenPort(r) => w.add(&EvenPort { reserve_next: *r }),
            Both::DontFragment => w.add(&DontFragment),
            Both::ReservationToken(t) => w.add(&ReservationToken(*t)),
            Both::ConnectionId(n) => w.add(&ConnectionId(*n)),
            Both::RequestedAddressFamily(f) => w.add(&RequestedAddressFamily(*f)),
            Both::Icmp(t, c, d) => w.add(&Icmp { icmp_type: *t, icmp_code: *c, error_data: *d }),
            Both::Userhash(h) => w.add(&Userhash(*h)),
            Both::PasswordAlgorithm(sha) => w.add(&PasswordAlgorithm { algorithm: algorithm(*sha).0, params: &[] }),
            Both::PasswordAlgorithms(list) => {
                let mut raw = Vec::new();
                for sha in list {
                    raw.extend_from_slice(&algorithm(*sha).0.to_be_bytes());
                    raw.extend_from_slice(&[0, 0]);
                }
                w.add(&PasswordAlgorithms::from_raw(&raw).unwrap())
            }
        };
        r.unwrap();
    }

    fn write_theirs(&self, b: &mut sm::MessageWriteVec, tid: sm::TransactionId) {
        let r = match self {
            Both::XorMappedAddress(a) => b.add_attribute(&sa::XorMappedAddress::new(*a, tid)),
            Both::XorPeerAddress(a) => b.add_attribute(&ta::XorPeerAddress::new(*a, tid)),
            Both::XorRelayedAddress(a) => b.add_attribute(&ta::XorRelayedAddress::new(*a, tid)),
            Both::AlternateServer(a) => b.add_attribute(&sa::AlternateServer::new(*a)),
            Both::Username(s) => b.add_attribute(&sa::Username::new(s).unwrap()),
            Both::Realm(s) => b.add_attribute(&sa::Realm::new(s).unwrap()),
            Both::Nonce(s) => b.add_attribute(&sa::Nonce::new(s).unwrap()),
            Both::Software(s) => b.add_attribute(&sa::Software::new(s).unwrap()),
            Both::ErrorCode(code, reason) => b.add_attribute(&sa::ErrorCode::new(*code, reason).unwrap()),
            Both::Lifetime(n) => b.add_attribute(&ta::Lifetime::new(*n)),
            Both::Data(d) => b.add_attribute(&ta::Data::new(d)),
            Both::ChannelNumber(n) => b.add_attribute(&ta::ChannelNumber::new(*n)),
            Both::RequestedTransport(p) => b.add_attribute(&ta::RequestedTransport::new(*p)),
            Both::EvenPort(r) => b.add_attribute(&ta::EvenPort::new(*r)),
            Both::DontFragment => b.add_attribute(&ta::DontFragment::new()),
            Both::ReservationToken(t) => b.add_attribute(&ta::ReservationToken::new(u64::from_be_bytes(*t))),
            Both::ConnectionId(n) => b.add_attribute(&ta::ConnectionId::new(*n)),
            Both::RequestedAddressFamily(f) => b.add_attribute(&ta::RequestedAddressFamily::new(family_of(*f))),
            Both::Icmp(t, c, d) => b.add_attribute(&ta::Icmp::new(*t, *c, *d)),
            Both::Userhash(h) => b.add_attribute(&sa::Userhash::new(*h)),
            Both::PasswordAlgorithm(sha) => b.add_attribute(&sa::PasswordAlgorithm::new(algorithm(*sha).1)),
            Both::PasswordAlgorithms(list) => {
                let values: Vec<sa::PasswordAlgorithmValue> = list.iter().map(|s| algorithm(*s).1).collect();
                b.add_attribute(&sa::PasswordAlgorithms::new(&values))
            }
        };
        r.unwrap();
    }
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
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
        text().prop_map(Both::Software),
        (300u16..700, text()).prop_map(|(c, r)| Both::ErrorCode(c, r)),
        any::<u32>().prop_map(Both::Lifetime),
        vec(any::<u8>(), 0..200).prop_map(Both::Data),
        (0x4000u16..=0x7FFF).prop_map(Both::ChannelNumber),
        any::<u8>().prop_map(Both::RequestedTransport),
        any::<bool>().prop_map(Both::EvenPort),
        Just(Both::DontFragment),
        any::<[u8; 8]>().prop_map(Both::ReservationToken),
        any::<u32>().prop_map(Both::ConnectionId),
        prop_oneof![Just(AddressFamily::V4), Just(AddressFamily::V6)].prop_map(Both::RequestedAddressFamily),
        (any::<u8>(), any::<u8>(), any::<u32>()).prop_map(|(t, c, d)| Both::Icmp(t, c, d)),
        any::<[u8; 32]>().prop_map(Both::Userhash),
        any::<bool>().prop_map(Both::PasswordAlgorithm),
        vec(any::<bool>(), 1..4).prop_map(Both::PasswordAlgorithms),
    ]
}

/// How a generated message is signed.
#[derive(Clone, Copy, Debug)]
enum Integrity {
    None,
    Sha1,
    Sha256,
    Both,
}

proptest! {
    #[test]
    fn generated_messages_agree(
        method in 0u16..0x1000,
        class in prop_oneof![
            Just(Class::Request), Just(Class::Indication),
            Just(Class::SuccessResponse), Just(Class::ErrorResponse)
        ],
        tid in any::<[u8; 12]>(),
        attrs in vec(both(), 0..10),
        integrity in prop_oneof![
            Just(Integrity::None), Just(Integrity::Sha1), Just(Integrity::Sha256), Just(Integrity::Both)
        ],
        fingerprint in any::<bool>(),
        (username, realm, password) in ("[a-z0-9:]{1,20}", "[a-z.]{1,20}", "[A-Za-z0-9+/=]{1,28}"),
    ) {
        let creds = long_term(&username, &realm, &password);
        let message_type = MessageType::new(Method(method), class);

        let mut buf = vec![0u8; 4096];
        let mut w = MessageWriter::new(&mut buf, message_type, TransactionId(tid)).unwrap();
        for a in &attrs {
            a.write_ours(&mut w);
        }
        if matches!(integrity, Integrity::Sha1 | Integrity::Both) {
            w.add_message_integrity(&creds.ours_sha1).unwrap();
        }
        if matches!(integrity, Integrity::Sha256 | Integrity::Both) {
            w.add_message_integrity_sha256(creds.ours_sha256.as_ref().unwrap()).unwrap();
        }
        if fingerprint {
            w.add_fingerprint().unwrap();
        }
        let n = w.finish();
        let mine = &buf[..n];

        let signed = !matches!(integrity, Integrity::None);
        compare("generated", mine, signed.then_some(&creds));

        // The same message written by stun-types/turn-types is byte for byte the same.
        let their_tid = sm::TransactionId::from(u128::from_be_bytes({
            let mut t = [0u8; 16];
            t[4..].copy_from_slice(&tid);
            t
        }));
        let their_class = match class {
            Class::Request => sm::MessageClass::Request,
            Class::Indication => sm::MessageClass::Indication,
            Class::SuccessResponse => sm::MessageClass::Success,
            Class::ErrorResponse => sm::MessageClass::Error,
        };
        let mut b = sm::Message::builder(
            sm::MessageType::from_class_method(their_class, sm::Method::new(method)),
            their_tid,
            sm::MessageWriteVec::new(),
        );
        for a in &attrs {
            a.write_theirs(&mut b, their_tid);
        }
        if matches!(integrity, Integrity::Sha1 | Integrity::Both) {
            b.add_message_integrity(&creds.theirs, sm::IntegrityAlgorithm::Sha1).unwrap();
        }
        if matches!(integrity, Integrity::Sha256 | Integrity::Both) {
            b.add_message_integrity(&creds.theirs, sm::IntegrityAlgorithm::Sha256).unwrap();
        }
        if fingerprint {
            b.add_fingerprint().unwrap();
        }
        let theirs = b.finish();
        prop_assert_eq!(hex::encode(&theirs[..]), hex::encode(mine));
    }
}
