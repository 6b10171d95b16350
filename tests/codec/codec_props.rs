//! Property tests of the codec: every typed attribute round-trips through a whole message, signed
//! messages verify after the round trip, one changed byte never slips past FINGERPRINT, and no input
//! makes any parser (or the server) panic.

use std::net::SocketAddr;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::strategies::socket_addr;
use switchback::proto::channel_data::ChannelData;
use switchback::proto::demux::{Frame, stream_frame};
use switchback::proto::stun::*;

// ---- Strategies ----

fn family() -> impl Strategy<Value = AddressFamily> {
    prop_oneof![Just(AddressFamily::V4), Just(AddressFamily::V6)]
}

fn text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

/// An owned description of one attribute; [`Spec::attr`] borrows it as an [`AnyAttribute`]. One
/// variant per `AnyAttribute` variant (the exhaustive `match` in `check_typed_get` enforces that a new
/// attribute type gets a strategy here).
#[derive(Clone, Debug)]
enum Spec {
    MappedAddress(SocketAddr),
    XorMappedAddress(SocketAddr),
    Username(String),
    Userhash([u8; 32]),
    MessageIntegrity([u8; 20]),
    MessageIntegritySha256(Vec<u8>),
    Fingerprint(u32),
    ErrorCode(u16, String),
    Realm(String),
    Nonce(String),
    PasswordAlgorithm(u16, Vec<u8>),
    PasswordAlgorithms(Vec<u8>),
    UnknownAttributes(Vec<u16>),
    Software(String),
    AlternateServer(SocketAddr),
    AlternateDomain(String),
    ChannelNumber(u16),
    Lifetime(u32),
    XorPeerAddress(SocketAddr),
    Data(Vec<u8>),
    XorRelayedAddress(SocketAddr),
    RequestedAddressFamily(AddressFamily),
    EvenPort(bool),
    RequestedTransport(u8),
    DontFragment,
    ReservationToken([u8; 8]),
    AdditionalAddressFamily(AddressFamily),
    LegacyAdditionalAddressFamily(AddressFamily),
    AddressErrorCode(AddressFamily, u16, String),
    LegacyAddressErrorCode(AddressFamily, u16, String),
    Icmp(u8, u8, u32),
    ConnectionId(u32),
    ChangeRequest(bool, bool),
    ResponseOrigin(SocketAddr),
    OtherAddress(SocketAddr),
    AccessToken(Vec<u8>),
    ThirdPartyAuthorization(String),
    MobilityTicket(Vec<u8>),
    Unknown(u16, Vec<u8>),
}

impl Spec {
    fn attr(&self) -> AnyAttribute<'_> {
        use AnyAttribute as A;
        match self {
            Spec::MappedAddress(a) => A::MappedAddress(MappedAddress(*a)),
            Spec::XorMappedAddress(a) => A::XorMappedAddress(XorMappedAddress(*a)),
            Spec::Username(s) => A::Username(Username(s)),
            Spec::Userhash(h) => A::Userhash(Userhash(*h)),
            Spec::MessageIntegrity(h) => A::MessageIntegrity(MessageIntegrity(*h)),
            Spec::MessageIntegritySha256(h) => A::MessageIntegritySha256(MessageIntegritySha256(h)),
            Spec::Fingerprint(v) => A::Fingerprint(Fingerprint(*v)),
            Spec::ErrorCode(code, reason) => A::ErrorCode(ErrorCode { code: *code, reason }),
            Spec::Realm(s) => A::Realm(Realm(s)),
            Spec::Nonce(s) => A::Nonce(Nonce(s)),
            Spec::PasswordAlgorithm(algorithm, params) => {
                A::PasswordAlgorithm(PasswordAlgorithm { algorithm: *algorithm, params })
            }
            Spec::PasswordAlgorithms(raw) => A::PasswordAlgorithms(PasswordAlgorithms::from_raw(raw).unwrap()),
            Spec::UnknownAttributes(list) => {
                let mut u = UnknownAttributes::default();
                for t in list {
                    u.push(*t);
                }
                A::UnknownAttributes(u)
            }
            Spec::Software(s) => A::Software(Software(s)),
            Spec::AlternateServer(a) => A::AlternateServer(AlternateServer(*a)),
            Spec::AlternateDomain(s) => A::AlternateDomain(AlternateDomain(s)),
            Spec::ChannelNumber(n) => A::ChannelNumber(ChannelNumber(*n)),
            Spec::Lifetime(n) => A::Lifetime(Lifetime(*n)),
            Spec::XorPeerAddress(a) => A::XorPeerAddress(XorPeerAddress(*a)),
            Spec::Data(d) => A::Data(Data(d)),
            Spec::XorRelayedAddress(a) => A::XorRelayedAddress(XorRelayedAddress(*a)),
            Spec::RequestedAddressFamily(f) => A::RequestedAddressFamily(RequestedAddressFamily(*f)),
            Spec::EvenPort(r) => A::EvenPort(EvenPort { reserve_next: *r }),
            Spec::RequestedTransport(p) => A::RequestedTransport(RequestedTransport(*p)),
            Spec::DontFragment => A::DontFragment(DontFragment),
            Spec::ReservationToken(t) => A::ReservationToken(ReservationToken(*t)),
            Spec::AdditionalAddressFamily(f) => A::AdditionalAddressFamily(AdditionalAddressFamily(*f)),
            Spec::LegacyAdditionalAddressFamily(f) => {
                A::LegacyAdditionalAddressFamily(LegacyAdditionalAddressFamily(*f))
            }
            Spec::AddressErrorCode(family, code, reason) => {
                A::AddressErrorCode(AddressErrorCode { family: *family, code: *code, reason })
            }
            Spec::LegacyAddressErrorCode(family, code, reason) => {
                A::LegacyAddressErrorCode(LegacyAddressErrorCode(AddressErrorCode {
                    family: *family,
                    code: *code,
                    reason,
                }))
            }
            Spec::Icmp(t, c, d) => A::Icmp(Icmp { icmp_type: *t, icmp_code: *c, error_data: *d }),
            Spec::ConnectionId(n) => A::ConnectionId(ConnectionId(*n)),
            Spec::ChangeRequest(ip, port) => A::ChangeRequest(ChangeRequest { change_ip: *ip, change_port: *port }),
            Spec::ResponseOrigin(a) => A::ResponseOrigin(ResponseOrigin(*a)),
            Spec::OtherAddress(a) => A::OtherAddress(OtherAddress(*a)),
            Spec::AccessToken(t) => A::AccessToken(AccessToken(t)),
            Spec::ThirdPartyAuthorization(s) => A::ThirdPartyAuthorization(ThirdPartyAuthorization(s)),
            Spec::MobilityTicket(t) => A::MobilityTicket(MobilityTicket(t)),
            Spec::Unknown(t, v) => A::Unknown(RawAttribute { typ: *t, value: v }),
        }
    }

    /// MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT end the part of a message that lookups see (and
    /// nothing may follow FINGERPRINT): they are only placed last.
    fn is_trailer(&self) -> bool {
        matches!(self, Spec::MessageIntegrity(_) | Spec::MessageIntegritySha256(_) | Spec::Fingerprint(_))
    }
}

/// A PASSWORD-ALGORITHMS value: entries of algorithm, parameter length, parameters, zero padding.
fn password_algorithms_raw() -> impl Strategy<Value = Vec<u8>> {
    vec((any::<u16>(), bytes(7)), 0..4).prop_map(|entries| {
        let mut raw = Vec::new();
        for (alg, params) in entries {
            raw.extend_from_slice(&alg.to_be_bytes());
            raw.extend_from_slice(&u16::try_from(params.len()).unwrap().to_be_bytes());
            raw.extend_from_slice(&params);
            raw.resize(padded_len(raw.len()), 0);
        }
        raw
    })
}

fn unknown_type() -> impl Strategy<Value = u16> {
    any::<u16>().prop_filter("a type the codec does not know", |t| !is_known(*t))
}

fn spec() -> impl Strategy<Value = Spec> {
    let error_code = 300u16..=699;
    prop_oneof![
        socket_addr().prop_map(Spec::MappedAddress),
        socket_addr().prop_map(Spec::XorMappedAddress),
        text().prop_map(Spec::Username),
        any::<[u8; 32]>().prop_map(Spec::Userhash),
        any::<[u8; 20]>().prop_map(Spec::MessageIntegrity),
        (4usize..=8).prop_flat_map(|words| vec(any::<u8>(), words * 4)).prop_map(Spec::MessageIntegritySha256),
        any::<u32>().prop_map(Spec::Fingerprint),
        (error_code.clone(), text()).prop_map(|(c, r)| Spec::ErrorCode(c, r)),
        text().prop_map(Spec::Realm),
        text().prop_map(Spec::Nonce),
        (any::<u16>(), bytes(12)).prop_map(|(a, p)| Spec::PasswordAlgorithm(a, p)),
        password_algorithms_raw().prop_map(Spec::PasswordAlgorithms),
        vec(any::<u16>(), 0..=MAX_UNKNOWN_ATTRIBUTES).prop_map(Spec::UnknownAttributes),
        text().prop_map(Spec::Software),
        socket_addr().prop_map(Spec::AlternateServer),
        text().prop_map(Spec::AlternateDomain),
        any::<u16>().prop_map(Spec::ChannelNumber),
        any::<u32>().prop_map(Spec::Lifetime),
        socket_addr().prop_map(Spec::XorPeerAddress),
        bytes(300).prop_map(Spec::Data),
        socket_addr().prop_map(Spec::XorRelayedAddress),
        family().prop_map(Spec::RequestedAddressFamily),
        any::<bool>().prop_map(Spec::EvenPort),
        any::<u8>().prop_map(Spec::RequestedTransport),
        Just(Spec::DontFragment),
        any::<[u8; 8]>().prop_map(Spec::ReservationToken),
        family().prop_map(Spec::AdditionalAddressFamily),
        family().prop_map(Spec::LegacyAdditionalAddressFamily),
        (family(), error_code.clone(), text()).prop_map(|(f, c, r)| Spec::AddressErrorCode(f, c, r)),
        (family(), error_code, text()).prop_map(|(f, c, r)| Spec::LegacyAddressErrorCode(f, c, r)),
        (any::<u8>(), any::<u8>(), any::<u32>()).prop_map(|(t, c, d)| Spec::Icmp(t, c, d)),
        any::<u32>().prop_map(Spec::ConnectionId),
        (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Spec::ChangeRequest(a, b)),
        socket_addr().prop_map(Spec::ResponseOrigin),
        socket_addr().prop_map(Spec::OtherAddress),
        bytes(64).prop_map(Spec::AccessToken),
        text().prop_map(Spec::ThirdPartyAuthorization),
        bytes(64).prop_map(Spec::MobilityTicket),
        (unknown_type(), bytes(40)).prop_map(|(t, v)| Spec::Unknown(t, v)),
    ]
}

fn body_spec() -> impl Strategy<Value = Spec> {
    spec().prop_filter("not a trailer attribute", |s| !s.is_trailer())
}

fn message_type() -> impl Strategy<Value = MessageType> {
    (
        0u16..0x1000,
        prop_oneof![
            Just(Class::Request),
            Just(Class::Indication),
            Just(Class::SuccessResponse),
            Just(Class::ErrorResponse)
        ],
    )
        .prop_map(|(m, c)| MessageType::new(Method(m), c))
}

fn tid() -> impl Strategy<Value = TransactionId> {
    any::<[u8; 12]>().prop_map(TransactionId)
}

#[derive(Clone, Debug)]
struct Signed {
    message_type: MessageType,
    tid: TransactionId,
    attrs: Vec<Spec>,
    /// MESSAGE-INTEGRITY key, if signed with HMAC-SHA1.
    sha1_key: Option<Vec<u8>>,
    /// MESSAGE-INTEGRITY-SHA256 key, if also/instead signed with HMAC-SHA256.
    sha256_key: Option<Vec<u8>>,
    fingerprint: bool,
}

fn signed() -> impl Strategy<Value = Signed> {
    (
        message_type(),
        tid(),
        vec(body_spec(), 0..10),
        proptest::option::of(bytes(40)),
        proptest::option::of(bytes(40)),
        any::<bool>(),
    )
        .prop_map(|(message_type, tid, attrs, sha1_key, sha256_key, fingerprint)| Signed {
            message_type,
            tid,
            attrs,
            sha1_key,
            sha256_key,
            fingerprint,
        })
}

fn encode(s: &Signed) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_MESSAGE_LEN];
    let mut w = MessageWriter::new(&mut buf, s.message_type, s.tid).unwrap();
    for a in &s.attrs {
        w.add_any(&a.attr()).unwrap();
    }
    if let Some(k) = &s.sha1_key {
        w.add_message_integrity(&IntegrityKey::new(k)).unwrap();
    }
    if let Some(k) = &s.sha256_key {
        w.add_message_integrity_sha256(&IntegrityKeySha256::new(k)).unwrap();
    }
    if s.fingerprint {
        w.add_fingerprint().unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// `Message::get::<T>()` for the attribute's own type returns it (the first of its type in `msg`).
/// The match is exhaustive on purpose: a new `AnyAttribute` variant must be added here and to `Spec`.
fn check_typed_get(msg: &Message<'_>, a: &AnyAttribute<'_>) -> Result<(), TestCaseError> {
    use AnyAttribute as A;
    macro_rules! same {
        ($t:ty, $v:expr) => {
            prop_assert_eq!(&msg.get::<$t>().unwrap(), $v)
        };
    }
    match a {
        A::MappedAddress(v) => same!(MappedAddress, v),
        A::XorMappedAddress(v) => same!(XorMappedAddress, v),
        A::Username(v) => same!(Username<'_>, v),
        A::Userhash(v) => same!(Userhash, v),
        A::ErrorCode(v) => same!(ErrorCode<'_>, v),
        A::Realm(v) => same!(Realm<'_>, v),
        A::Nonce(v) => same!(Nonce<'_>, v),
        A::PasswordAlgorithm(v) => same!(PasswordAlgorithm<'_>, v),
        A::PasswordAlgorithms(v) => same!(PasswordAlgorithms<'_>, v),
        A::UnknownAttributes(v) => same!(UnknownAttributes, v),
        A::Software(v) => same!(Software<'_>, v),
        A::AlternateServer(v) => same!(AlternateServer, v),
        A::AlternateDomain(v) => same!(AlternateDomain<'_>, v),
        A::ChannelNumber(v) => same!(ChannelNumber, v),
        A::Lifetime(v) => same!(Lifetime, v),
        A::XorPeerAddress(v) => same!(XorPeerAddress, v),
        A::Data(v) => same!(Data<'_>, v),
        A::XorRelayedAddress(v) => same!(XorRelayedAddress, v),
        A::RequestedAddressFamily(v) => same!(RequestedAddressFamily, v),
        A::EvenPort(v) => same!(EvenPort, v),
        A::RequestedTransport(v) => same!(RequestedTransport, v),
        A::DontFragment(v) => same!(DontFragment, v),
        A::ReservationToken(v) => same!(ReservationToken, v),
        A::AdditionalAddressFamily(v) => same!(AdditionalAddressFamily, v),
        A::LegacyAdditionalAddressFamily(v) => same!(LegacyAdditionalAddressFamily, v),
        A::AddressErrorCode(v) => same!(AddressErrorCode<'_>, v),
        A::LegacyAddressErrorCode(v) => same!(LegacyAddressErrorCode<'_>, v),
        A::Icmp(v) => same!(Icmp, v),
        A::ConnectionId(v) => same!(ConnectionId, v),
        A::ChangeRequest(v) => same!(ChangeRequest, v),
        A::ResponseOrigin(v) => same!(ResponseOrigin, v),
        A::OtherAddress(v) => same!(OtherAddress, v),
        A::AccessToken(v) => same!(AccessToken<'_>, v),
        A::ThirdPartyAuthorization(v) => same!(ThirdPartyAuthorization<'_>, v),
        A::MobilityTicket(v) => same!(MobilityTicket<'_>, v),
        // These end the looked-up part of a message, so `get` does not see them; `decoded` does.
        A::MessageIntegrity(_) | A::MessageIntegritySha256(_) | A::Fingerprint(_) => {
            prop_assert!(msg.get_raw(a.typ()).is_none())
        }
        A::Unknown(r) => prop_assert_eq!(msg.get_raw(r.typ).unwrap().value, r.value),
    }
    Ok(())
}

/// The value as written: the encoding a round trip must reproduce byte for byte.
fn value_bytes(a: &AnyAttribute<'_>, tid: &TransactionId) -> Vec<u8> {
    let mut v = vec![0u8; a.value_len()];
    a.encode_value(tid, &mut v).unwrap();
    v
}

proptest! {
    /// One attribute alone in a message: it decodes to itself through `decoded()` and `get`, its wire
    /// length is `value_len`, and its padding is zero.
    #[test]
    fn every_attribute_round_trips(
        spec in spec(),
        message_type in message_type(),
        tid in tid(),
    ) {
        let attr = spec.attr();
        let mut buf = vec![0u8; 2048];
        let mut w = MessageWriter::new(&mut buf, message_type, tid).unwrap();
        w.add_any(&attr).unwrap();
        let n = w.finish();
        let wire = &buf[..n];
        prop_assert_eq!(n, HEADER_LEN + 4 + padded_len(attr.value_len()));

        let msg = Message::parse(wire).unwrap();
        prop_assert_eq!(msg.message_type(), message_type);
        prop_assert_eq!(msg.transaction_id(), tid);
        prop_assert!(!msg.is_rfc3489());
        let decoded: Vec<_> = msg.decoded().collect();
        prop_assert_eq!(decoded, vec![Ok(attr)]);
        check_typed_get(&msg, &attr)?;

        let raw = msg.attributes().next().unwrap();
        prop_assert_eq!(raw.typ, attr.typ());
        prop_assert_eq!(raw.value, &value_bytes(&attr, &tid)[..]);
        prop_assert!(wire[HEADER_LEN + 4 + attr.value_len()..].iter().all(|&b| b == 0));
    }

    /// A whole message: attributes in order, MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT verify, the
    /// wrong key fails, and writing the decoded attributes again gives the same bytes.
    #[test]
    fn signed_messages_round_trip_and_verify(s in signed()) {
        let wire = encode(&s);
        let msg = Message::parse(&wire).unwrap();
        prop_assert_eq!(msg.message_type(), s.message_type);
        prop_assert_eq!(msg.transaction_id(), s.tid);

        let decoded: Vec<AnyAttribute<'_>> = msg.decoded().map(Result::unwrap).collect();
        let body: Vec<AnyAttribute<'_>> = s.attrs.iter().map(Spec::attr).collect();
        prop_assert_eq!(&decoded[..body.len()], &body[..]);
        let trailer: Vec<u16> = decoded[body.len()..].iter().map(AnyAttribute::typ).collect();
        let mut expected_trailer = Vec::new();
        if s.sha1_key.is_some() { expected_trailer.push(types::MESSAGE_INTEGRITY); }
        if s.sha256_key.is_some() { expected_trailer.push(types::MESSAGE_INTEGRITY_SHA256); }
        if s.fingerprint { expected_trailer.push(types::FINGERPRINT); }
        prop_assert_eq!(trailer, expected_trailer);

        // `get` finds the first attribute of each type.
        for a in &body {
            let first = body.iter().find(|b| b.typ() == a.typ()).unwrap();
            check_typed_get(&msg, first)?;
        }

        match &s.sha1_key {
            Some(k) => {
                prop_assert_eq!(msg.verify_integrity(&IntegrityKey::new(k)), Ok(()));
                let mut wrong = k.clone();
                wrong.push(1);
                prop_assert_eq!(msg.verify_integrity(&IntegrityKey::new(&wrong)), Err(IntegrityError::Mismatch));
            }
            None => prop_assert_eq!(msg.verify_integrity(&IntegrityKey::new(b"k")), Err(IntegrityError::Missing)),
        }
        match &s.sha256_key {
            Some(k) => {
                prop_assert_eq!(msg.verify_integrity_sha256(&IntegrityKeySha256::new(k)), Ok(()));
                let mut wrong = k.clone();
                wrong.push(1);
                prop_assert_eq!(
                    msg.verify_integrity_sha256(&IntegrityKeySha256::new(&wrong)),
                    Err(IntegrityError::Mismatch)
                );
            }
            None => prop_assert_eq!(
                msg.verify_integrity_sha256(&IntegrityKeySha256::new(b"k")),
                Err(IntegrityError::Missing)
            ),
        }
        if s.fingerprint {
            prop_assert_eq!(msg.verify_fingerprint(), Ok(()));
            let fp = decoded.last().unwrap();
            let expected = fingerprint(&wire[..wire.len() - 8]);
            prop_assert_eq!(fp, &AnyAttribute::Fingerprint(Fingerprint(expected)));
        } else {
            prop_assert_eq!(msg.verify_fingerprint(), Err(IntegrityError::Missing));
        }

        // decode -> encode is the identity on the bytes.
        let mut again = vec![0u8; wire.len()];
        let mut w = MessageWriter::new(&mut again, msg.message_type(), msg.transaction_id()).unwrap();
        for a in &decoded[..body.len()] {
            w.add_any(a).unwrap();
        }
        if let Some(k) = &s.sha1_key { w.add_message_integrity(&IntegrityKey::new(k)).unwrap(); }
        if let Some(k) = &s.sha256_key { w.add_message_integrity_sha256(&IntegrityKeySha256::new(k)).unwrap(); }
        if s.fingerprint { w.add_fingerprint().unwrap(); }
        prop_assert_eq!(w.finish(), wire.len());
        prop_assert_eq!(again, wire);
    }

    /// Changing any one byte of a message that ends in FINGERPRINT is noticed: the message no longer
    /// parses, or its FINGERPRINT is gone or does not match (CRC-32 catches every single-byte error).
    /// Every position is tried, with a random change and the small ones that keep a length field's
    /// padded size (the case where a check could read the same bytes and pass).
    #[test]
    fn one_changed_byte_is_caught_by_fingerprint(mut s in signed(), delta in 1u8..=255) {
        s.fingerprint = true;
        let wire = encode(&s);
        for_each_single_byte_change(&wire, delta, |changed, i, d| {
            let caught = match Message::parse(changed) {
                Err(_) => true,
                Ok(msg) => msg.verify_fingerprint().is_err(),
            };
            prop_assert!(caught, "byte {} ^ {:#04x} went unnoticed", i, d);
            Ok(())
        })?;
    }

    /// With MESSAGE-INTEGRITY (and no FINGERPRINT), a changed byte anywhere fails the check or the parse.
    #[test]
    fn one_changed_byte_is_caught_by_integrity(mut s in signed(), key in bytes(32), delta in 1u8..=255) {
        s.sha1_key = Some(key.clone());
        s.fingerprint = false;
        let wire = encode(&s);
        let key1 = IntegrityKey::new(&key);
        let key256 = s.sha256_key.as_deref().map(IntegrityKeySha256::new);
        for_each_single_byte_change(&wire, delta, |changed, i, d| {
            let caught = match Message::parse(changed) {
                Err(_) => true,
                Ok(msg) => msg.verify_integrity(&key1).is_err()
                    || key256.as_ref().is_some_and(|k| msg.verify_integrity_sha256(k).is_err()),
            };
            prop_assert!(caught, "byte {} ^ {:#04x} went unnoticed", i, d);
            Ok(())
        })?;
    }

    /// Arbitrary bytes never panic any parser, check or the server.
    #[test]
    fn arbitrary_bytes_never_panic(data in bytes(700)) {
        exercise(&data);
    }

    /// Inputs that look like STUN (valid header, attributes of known and unknown types with random
    /// values, then possibly one changed byte) reach deeper into the attribute decoders.
    #[test]
    fn stun_shaped_garbage_never_panics(
        message_type in message_type(),
        tid in tid(),
        attrs in vec((prop_oneof![known_type(), any::<u16>()], bytes(40)), 0..12),
        change in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut buf = vec![0u8; 2048];
        let mut w = MessageWriter::new(&mut buf, message_type, tid).unwrap();
        for (t, v) in &attrs {
            w.add_raw(*t, v).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        if let Some((at, b)) = change {
            let i = at.index(buf.len());
            buf[i] = b;
        }
        exercise(&buf);
        // Every attribute a message holds either decodes or fails with an error; decoded ones
        // re-encode to a message that decodes to the same values.
        if let Ok(msg) = Message::parse(&buf) {
            let good: Vec<AnyAttribute<'_>> = msg.decoded().filter_map(Result::ok).collect();
            let mut out = vec![0u8; buf.len()];
            let mut w = MessageWriter::with_cookie(&mut out, msg.message_type(), msg.cookie_bytes(), msg.transaction_id()).unwrap();
            for a in &good {
                w.add_any(a).unwrap();
            }
            let m = w.finish();
            let again = Message::parse(&out[..m]).unwrap();
            let good_again: Vec<AnyAttribute<'_>> = again.decoded().map(Result::unwrap).collect();
            prop_assert_eq!(good_again, good);
        }
    }

    /// ChannelData: parse and encode agree for both transports.
    #[test]
    fn channel_data_round_trips(channel in 0x4000u16..=0x7FFF, data in bytes(300), stream in any::<bool>()) {
        let cd = ChannelData { channel, data: &data };
        let mut out = vec![0xAAu8; 400];
        let n = cd.encode(stream, &mut out).unwrap();
        prop_assert_eq!(n, cd.wire_len(stream));
        prop_assert_eq!(n.is_multiple_of(4), stream || (4 + data.len()).is_multiple_of(4));
        prop_assert_eq!(ChannelData::parse(&out[..n]), Ok(cd));
        if stream {
            prop_assert_eq!(stream_frame(&out[..n], false), Frame::Complete(n));
            prop_assert_eq!(stream_frame(&out[..n - 1], false), Frame::Incomplete);
        }
    }
}

/// Calls `f` with `wire` changed at each position by `delta` and by a few fixed XOR masks.
fn for_each_single_byte_change(
    wire: &[u8],
    delta: u8,
    mut f: impl FnMut(&[u8], usize, u8) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut changed = wire.to_vec();
    for i in 0..wire.len() {
        for d in [delta, 0x01, 0x02, 0x03, 0x04, 0x07, 0x80, 0xFF] {
            changed[i] = wire[i] ^ d;
            f(&changed, i, d)?;
        }
        changed[i] = wire[i];
    }
    Ok(())
}

fn known_type() -> impl Strategy<Value = u16> {
    prop::sample::select((0u16..=0x8040).filter(|t| is_known(*t)).collect::<Vec<u16>>())
}

/// Runs every entry point that takes network bytes. Only panics matter here.
fn exercise(data: &[u8]) {
    if let Ok(msg) = Message::parse(data) {
        for a in msg.decoded() {
            let _ = a;
        }
        let _ = msg.verify_integrity(&IntegrityKey::new(b"key"));
        let _ = msg.verify_integrity_sha256(&IntegrityKeySha256::new(b"key"));
        let _ = msg.verify_fingerprint();
        let _ = msg.unknown_comprehension_required(is_known);
        let _ = msg.get::<XorPeerAddress>();
        let _ = msg.get_all::<XorPeerAddress>().count();
    }
    let _ = ChannelData::parse(data);
    let _ = stream_frame(data, false);
    let _ = stream_frame(data, true);
    switchback::fuzzing::stun_decode(data);
    switchback::fuzzing::channel_data(data);
    switchback::fuzzing::stream_framing(data);
    switchback::fuzzing::server_datagram(data);
}

/// Every `AnyAttribute` variant has a strategy: one example of each `Spec` variant decodes to a
/// distinct type code, and together they cover every code `is_known` accepts.
#[test]
fn spec_covers_every_known_attribute_type() {
    let examples = [
        Spec::MappedAddress("1.2.3.4:5".parse().unwrap()),
        Spec::XorMappedAddress("1.2.3.4:5".parse().unwrap()),
        Spec::Username("u".into()),
        Spec::Userhash([1; 32]),
        Spec::MessageIntegrity([1; 20]),
        Spec::MessageIntegritySha256(vec![1; 32]),
        Spec::Fingerprint(1),
        Spec::ErrorCode(400, "x".into()),
        Spec::Realm("r".into()),
        Spec::Nonce("n".into()),
        Spec::PasswordAlgorithm(1, vec![]),
        Spec::PasswordAlgorithms(vec![0, 1, 0, 0]),
        Spec::UnknownAttributes(vec![1]),
        Spec::Software("s".into()),
        Spec::AlternateServer("1.2.3.4:5".parse().unwrap()),
        Spec::AlternateDomain("d".into()),
        Spec::ChannelNumber(0x4000),
        Spec::Lifetime(1),
        Spec::XorPeerAddress("1.2.3.4:5".parse().unwrap()),
        Spec::Data(vec![1]),
        Spec::XorRelayedAddress("1.2.3.4:5".parse().unwrap()),
        Spec::RequestedAddressFamily(AddressFamily::V4),
        Spec::EvenPort(true),
        Spec::RequestedTransport(17),
        Spec::DontFragment,
        Spec::ReservationToken([1; 8]),
        Spec::AdditionalAddressFamily(AddressFamily::V6),
        Spec::LegacyAdditionalAddressFamily(AddressFamily::V6),
        Spec::AddressErrorCode(AddressFamily::V6, 440, "x".into()),
        Spec::LegacyAddressErrorCode(AddressFamily::V6, 440, "x".into()),
        Spec::Icmp(3, 4, 1200),
        Spec::ConnectionId(1),
        Spec::ChangeRequest(true, false),
        Spec::ResponseOrigin("1.2.3.4:5".parse().unwrap()),
        Spec::OtherAddress("1.2.3.4:5".parse().unwrap()),
        Spec::AccessToken(vec![1]),
        Spec::ThirdPartyAuthorization("t".into()),
        Spec::MobilityTicket(vec![1]),
    ];
    let mut codes: Vec<u16> = examples.iter().map(|s| s.attr().typ()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), examples.len(), "one type code per variant");
    let known: Vec<u16> = (0..=u16::MAX).filter(|t| is_known(*t)).collect();
    assert_eq!(codes, known);
}
