//! Typed STUN/TURN attributes (RFC 8489 §14, RFC 8656 §18, RFC 6062 §6.2, RFC 5780 §7,
//! RFC 7635 §6, RFC 8016 §3.1).
//!
//! Each attribute is a small type implementing [`Attribute`]: it decodes from the borrowed value bytes
//! (text and opaque values borrow, nothing is copied) and encodes into a value slice of exactly
//! [`Attribute::value_len`] bytes. [`AnyAttribute`] names every type this codec knows, with
//! unknown ones passed through raw.

use std::net::SocketAddr;

use super::bytes::{Reader, Writer};
use super::message::RawAttribute;
use super::{AttrError, EncodeError, TransactionId, address};

pub use super::error_code::ErrorCode;

/// Attribute type codes.
pub mod types {
    /// RFC 8489 §14.1.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// RFC 5780 §7.2.
    pub const CHANGE_REQUEST: u16 = 0x0003;
    /// RFC 8489 §14.3.
    pub const USERNAME: u16 = 0x0006;
    /// RFC 8489 §14.5.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// RFC 8489 §14.8.
    pub const ERROR_CODE: u16 = 0x0009;
    /// RFC 8489 §14.9.
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// RFC 8656 §18.1.
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    /// RFC 8656 §18.2.
    pub const LIFETIME: u16 = 0x000D;
    /// RFC 8656 §18.3.
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// RFC 8656 §18.4.
    pub const DATA: u16 = 0x0013;
    /// RFC 8489 §14.9.
    pub const REALM: u16 = 0x0014;
    /// RFC 8489 §14.10.
    pub const NONCE: u16 = 0x0015;
    /// RFC 8656 §18.5.
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// RFC 8656 §18.6.
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    /// RFC 8656 §18.7.
    pub const EVEN_PORT: u16 = 0x0018;
    /// RFC 8656 §18.8.
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// RFC 8656 §18.9.
    pub const DONT_FRAGMENT: u16 = 0x001A;
    /// RFC 7635 §6.2.
    pub const ACCESS_TOKEN: u16 = 0x001B;
    /// RFC 8489 §14.6.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// RFC 8489 §14.11.
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// RFC 8489 §14.4.
    pub const USERHASH: u16 = 0x001E;
    /// RFC 8489 §14.2.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// RFC 8656 §18.10.
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    /// RFC 6062 §6.2.1.
    pub const CONNECTION_ID: u16 = 0x002A;
    /// RFC 8656 §18.11.
    pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
    /// RFC 8656 §18.12.
    pub const ADDRESS_ERROR_CODE: u16 = 0x8001;
    /// RFC 8489 §14.12.
    pub const PASSWORD_ALGORITHMS: u16 = 0x8002;
    /// RFC 8489 §14.16.
    pub const ALTERNATE_DOMAIN: u16 = 0x8003;
    /// RFC 8656 §18.13.
    pub const ICMP: u16 = 0x8004;
    /// RFC 8489 §14.14.
    pub const SOFTWARE: u16 = 0x8022;
    /// RFC 8489 §14.15.
    pub const ALTERNATE_SERVER: u16 = 0x8023;
    /// RFC 8489 §14.7.
    pub const FINGERPRINT: u16 = 0x8028;
    /// RFC 5780 §7.3.
    pub const RESPONSE_ORIGIN: u16 = 0x802B;
    /// RFC 5780 §7.4.
    pub const OTHER_ADDRESS: u16 = 0x802C;
    /// RFC 7635 §6.1.
    pub const THIRD_PARTY_AUTHORIZATION: u16 = 0x802E;
    /// RFC 8016 §3.1.
    pub const MOBILITY_TICKET: u16 = 0x8030;
    /// ADDITIONAL-ADDRESS-FAMILY as draft-ietf-tram-turn-ipv6 numbered it; coturn 4.6.1 still sends it.
    pub const LEGACY_ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8032;
    /// ADDRESS-ERROR-CODE as the same draft numbered it.
    pub const LEGACY_ADDRESS_ERROR_CODE: u16 = 0x8033;

    /// RFC 8489 §14: types 0x0000–0x7FFF are comprehension-required.
    pub const fn is_comprehension_required(t: u16) -> bool {
        t < 0x8000
    }
}

/// A typed attribute: its type code, how to read its value and how to write it.
pub trait Attribute<'a>: Sized {
    /// The attribute type code.
    const TYPE: u16;
    /// Decodes the value bytes (without header or padding). XOR attributes need the transaction ID.
    fn decode(value: &'a [u8], tid: &TransactionId) -> Result<Self, AttrError>;
    /// Length of the encoded value, without padding.
    fn value_len(&self) -> usize;
    /// Writes the value into `out`, which is exactly [`Attribute::value_len`] bytes long.
    fn encode_value(&self, tid: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError>;
}

/// Address family of REQUESTED-ADDRESS-FAMILY and friends (RFC 8656 §18.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// 0x01.
    V4,
    /// 0x02.
    V6,
}

impl AddressFamily {
    fn from_byte(b: u8) -> Result<Self, AttrError> {
        match b {
            0x01 => Ok(AddressFamily::V4),
            0x02 => Ok(AddressFamily::V6),
            _ => Err(AttrError::BadFamily),
        }
    }
    fn to_byte(self) -> u8 {
        match self {
            AddressFamily::V4 => 0x01,
            AddressFamily::V6 => 0x02,
        }
    }
    /// The family of an address.
    pub fn of(addr: &SocketAddr) -> Self {
        if addr.is_ipv4() { AddressFamily::V4 } else { AddressFamily::V6 }
    }
}

macro_rules! plain_address {
    ($(#[$m:meta])* $name:ident = $code:path) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub SocketAddr);
        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $code;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
                address::decode(value).map($name)
            }
            fn value_len(&self) -> usize {
                address::value_len(&self.0)
            }
            fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                address::encode(&self.0, out)
            }
        }
    };
}

macro_rules! xor_address {
    ($(#[$m:meta])* $name:ident = $code:path) => {
        $(#[$m])*
        /// The field holds the plain (un-XORed) address.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub SocketAddr);
        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $code;
            fn decode(value: &'a [u8], tid: &TransactionId) -> Result<Self, AttrError> {
                address::decode(value).map(|a| $name(address::xor(a, tid)))
            }
            fn value_len(&self) -> usize {
                address::value_len(&self.0)
            }
            fn encode_value(&self, tid: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                address::encode(&address::xor(self.0, tid), out)
            }
        }
    };
}

macro_rules! text {
    ($(#[$m:meta])* $name:ident = $code:path) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub &'a str);
        impl<'a> Attribute<'a> for $name<'a> {
            const TYPE: u16 = $code;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
                std::str::from_utf8(value).map($name).map_err(|_| AttrError::InvalidUtf8)
            }
            fn value_len(&self) -> usize {
                self.0.len()
            }
            fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                Writer::new(out).put(self.0.as_bytes())
            }
        }
    };
}

macro_rules! opaque {
    ($(#[$m:meta])* $name:ident = $code:path) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub &'a [u8]);
        impl<'a> Attribute<'a> for $name<'a> {
            const TYPE: u16 = $code;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
                Ok($name(value))
            }
            fn value_len(&self) -> usize {
                self.0.len()
            }
            fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                Writer::new(out).put(self.0)
            }
        }
    };
}

macro_rules! fixed_u32 {
    ($(#[$m:meta])* $name:ident = $code:path) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub u32);
        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $code;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
                let mut r = Reader::new(value);
                let v = r.u32()?;
                r.finish()?;
                Ok($name(v))
            }
            fn value_len(&self) -> usize {
                4
            }
            fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                Writer::new(out).u32(self.0)
            }
        }
    };
}

/// A value of exactly `N` opaque bytes.
macro_rules! fixed_bytes {
    ($(#[$m:meta])* $name:ident, $n:literal = $code:path) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $n]);
        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $code;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
                <[u8; $n]>::try_from(value).map($name).map_err(|_| AttrError::BadLength)
            }
            fn value_len(&self) -> usize {
                $n
            }
            fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                Writer::new(out).put(&self.0)
            }
        }
    };
}

/// A family byte followed by 24 reserved bits (RFC 8656 §18.6, §18.11).
macro_rules! family {
    ($(#[$m:meta])* $name:ident = $code:path) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub AddressFamily);
        impl<'a> Attribute<'a> for $name {
            const TYPE: u16 = $code;
            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
                let mut r = Reader::new(value);
                let f = AddressFamily::from_byte(r.u8()?)?;
                let _reserved = r.take(3)?;
                r.finish()?;
                Ok($name(f))
            }
            fn value_len(&self) -> usize {
                4
            }
            fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                Writer::new(out).put(&[self.0.to_byte(), 0, 0, 0])
            }
        }
    };
}

plain_address!(
    /// MAPPED-ADDRESS, RFC 8489 §14.1 (for RFC 3489 clients, §11).
    MappedAddress = types::MAPPED_ADDRESS
);
plain_address!(
    /// ALTERNATE-SERVER, RFC 8489 §14.15.
    AlternateServer = types::ALTERNATE_SERVER
);
plain_address!(
    /// RESPONSE-ORIGIN, RFC 5780 §7.3.
    ResponseOrigin = types::RESPONSE_ORIGIN
);
plain_address!(
    /// OTHER-ADDRESS, RFC 5780 §7.4.
    OtherAddress = types::OTHER_ADDRESS
);
xor_address!(
    /// XOR-MAPPED-ADDRESS, RFC 8489 §14.2.
    XorMappedAddress = types::XOR_MAPPED_ADDRESS
);
xor_address!(
    /// XOR-PEER-ADDRESS, RFC 8656 §18.3.
    XorPeerAddress = types::XOR_PEER_ADDRESS
);
xor_address!(
    /// XOR-RELAYED-ADDRESS, RFC 8656 §18.5.
    XorRelayedAddress = types::XOR_RELAYED_ADDRESS
);
text!(
    /// USERNAME, RFC 8489 §14.3 (UTF-8, under 513 bytes).
    Username = types::USERNAME
);
text!(
    /// REALM, RFC 8489 §14.9.
    Realm = types::REALM
);
text!(
    /// NONCE, RFC 8489 §14.10.
    Nonce = types::NONCE
);
text!(
    /// SOFTWARE, RFC 8489 §14.14.
    Software = types::SOFTWARE
);
text!(
    /// ALTERNATE-DOMAIN, RFC 8489 §14.16.
    AlternateDomain = types::ALTERNATE_DOMAIN
);
text!(
    /// THIRD-PARTY-AUTHORIZATION, RFC 7635 §6.1: the authorization server's name.
    ThirdPartyAuthorization = types::THIRD_PARTY_AUTHORIZATION
);
opaque!(
    /// DATA, RFC 8656 §18.4: the application payload of a Send or Data indication.
    Data = types::DATA
);
opaque!(
    /// ACCESS-TOKEN, RFC 7635 §6.2: the self-contained token (nonce length, nonce, encrypted block),
    /// kept opaque here; the auth layer opens it.
    AccessToken = types::ACCESS_TOKEN
);
opaque!(
    /// MOBILITY-TICKET, RFC 8016 §3.1: an opaque ticket the server issued.
    MobilityTicket = types::MOBILITY_TICKET
);
fixed_u32!(
    /// LIFETIME in seconds, RFC 8656 §18.2.
    Lifetime = types::LIFETIME
);
fixed_u32!(
    /// CONNECTION-ID, RFC 6062 §6.2.1.
    ConnectionId = types::CONNECTION_ID
);
fixed_u32!(
    /// FINGERPRINT, RFC 8489 §14.7: CRC-32 of the message before it, XOR 0x5354554E. Written by
    /// [`super::MessageWriter::add_fingerprint`] and checked by [`super::Message::verify_fingerprint`].
    Fingerprint = types::FINGERPRINT
);
family!(
    /// REQUESTED-ADDRESS-FAMILY, RFC 8656 §18.6.
    RequestedAddressFamily = types::REQUESTED_ADDRESS_FAMILY
);
family!(
    /// ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §18.11 (only IPv6 is meaningful).
    AdditionalAddressFamily = types::ADDITIONAL_ADDRESS_FAMILY
);
family!(
    /// ADDITIONAL-ADDRESS-FAMILY under the draft code point 0x8032 (coturn 4.6.1, `turnutils_uclient -Z`).
    LegacyAdditionalAddressFamily = types::LEGACY_ADDITIONAL_ADDRESS_FAMILY
);

fixed_bytes!(
    /// MESSAGE-INTEGRITY, RFC 8489 §14.5: HMAC-SHA1, 20 bytes.
    MessageIntegrity, 20 = types::MESSAGE_INTEGRITY
);

/// MESSAGE-INTEGRITY-SHA256, RFC 8489 §14.6: HMAC-SHA256, possibly truncated to 16–32 bytes in steps
/// of 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageIntegritySha256<'a>(pub &'a [u8]);

impl<'a> Attribute<'a> for MessageIntegritySha256<'a> {
    const TYPE: u16 = types::MESSAGE_INTEGRITY_SHA256;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        if (16..=32).contains(&value.len()) && value.len().is_multiple_of(4) {
            Ok(MessageIntegritySha256(value))
        } else {
            Err(AttrError::BadLength)
        }
    }
    fn value_len(&self) -> usize {
        self.0.len()
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        Writer::new(out).put(self.0)
    }
}

fixed_bytes!(
    /// USERHASH, RFC 8489 §14.4: SHA-256(username ":" realm), 32 bytes.
    Userhash, 32 = types::USERHASH
);

/// The most attribute types one UNKNOWN-ATTRIBUTES carries here.
pub const MAX_UNKNOWN_ATTRIBUTES: usize = 32;

/// UNKNOWN-ATTRIBUTES, RFC 8489 §14.13: the comprehension-required types a request carried that the
/// server does not understand. Fixed capacity, so building one never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownAttributes {
    types: [u16; MAX_UNKNOWN_ATTRIBUTES],
    len: usize,
}

impl Default for UnknownAttributes {
    fn default() -> Self {
        UnknownAttributes { types: [0; MAX_UNKNOWN_ATTRIBUTES], len: 0 }
    }
}

impl UnknownAttributes {
    /// Adds a type; returns false (and drops it) when full or already present.
    pub fn push(&mut self, t: u16) -> bool {
        if self.as_slice().contains(&t) {
            return false;
        }
        match self.types.get_mut(self.len) {
            Some(slot) => {
                *slot = t;
                self.len += 1;
                true
            }
            None => false,
        }
    }
    /// The types, in order.
    pub fn as_slice(&self) -> &[u16] {
        self.types.get(..self.len).unwrap_or(&[])
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'a> Attribute<'a> for UnknownAttributes {
    const TYPE: u16 = types::UNKNOWN_ATTRIBUTES;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        if !value.len().is_multiple_of(2) || value.len() / 2 > MAX_UNKNOWN_ATTRIBUTES {
            return Err(AttrError::BadLength);
        }
        let mut u = UnknownAttributes::default();
        for (slot, pair) in u.types.iter_mut().zip(value.chunks_exact(2)) {
            *slot = u16::from_be_bytes([pair.first().copied().unwrap_or(0), pair.get(1).copied().unwrap_or(0)]);
        }
        u.len = value.len() / 2;
        Ok(u)
    }
    fn value_len(&self) -> usize {
        self.len * 2
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        let mut w = Writer::new(out);
        self.as_slice().iter().try_for_each(|t| w.u16(*t))
    }
}

/// CHANNEL-NUMBER, RFC 8656 §18.1: 16-bit channel number and 16 reserved bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelNumber(pub u16);

impl<'a> Attribute<'a> for ChannelNumber {
    const TYPE: u16 = types::CHANNEL_NUMBER;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        let mut r = Reader::new(value);
        let n = r.u16()?;
        let _rffu = r.u16()?;
        r.finish()?;
        Ok(ChannelNumber(n))
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        let mut w = Writer::new(out);
        w.u16(self.0)?;
        w.u16(0)
    }
}

/// EVEN-PORT, RFC 8656 §18.7: one byte whose top bit R asks to reserve the next port too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EvenPort {
    /// The R bit.
    pub reserve_next: bool,
}

impl<'a> Attribute<'a> for EvenPort {
    const TYPE: u16 = types::EVEN_PORT;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        let mut r = Reader::new(value);
        let b = r.u8()?;
        r.finish()?;
        Ok(EvenPort { reserve_next: b & 0x80 != 0 })
    }
    fn value_len(&self) -> usize {
        1
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        Writer::new(out).u8(if self.reserve_next { 0x80 } else { 0 })
    }
}

/// REQUESTED-TRANSPORT, RFC 8656 §18.8: an IP protocol number (17 UDP, 6 TCP) and 24 reserved bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestedTransport(pub u8);

impl RequestedTransport {
    /// UDP, protocol 17.
    pub const UDP: RequestedTransport = RequestedTransport(17);
    /// TCP, protocol 6 (RFC 6062).
    pub const TCP: RequestedTransport = RequestedTransport(6);
}

impl<'a> Attribute<'a> for RequestedTransport {
    const TYPE: u16 = types::REQUESTED_TRANSPORT;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        let mut r = Reader::new(value);
        let p = r.u8()?;
        let _rffu = r.take(3)?;
        r.finish()?;
        Ok(RequestedTransport(p))
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        Writer::new(out).put(&[self.0, 0, 0, 0])
    }
}

/// DONT-FRAGMENT, RFC 8656 §18.9: no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DontFragment;

impl<'a> Attribute<'a> for DontFragment {
    const TYPE: u16 = types::DONT_FRAGMENT;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        if value.is_empty() { Ok(DontFragment) } else { Err(AttrError::BadLength) }
    }
    fn value_len(&self) -> usize {
        0
    }
    fn encode_value(&self, _: &TransactionId, _: &mut [u8]) -> Result<(), EncodeError> {
        Ok(())
    }
}

fixed_bytes!(
    /// RESERVATION-TOKEN, RFC 8656 §18.10: 8 opaque bytes.
    ReservationToken, 8 = types::RESERVATION_TOKEN
);

/// ADDRESS-ERROR-CODE, RFC 8656 §18.12: which family of a dual allocation failed, and why.
/// [`LegacyAddressErrorCode`] is the same value under the draft code point 0x8033 (coturn 4.6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressErrorCode<'a> {
    /// The family that failed.
    pub family: AddressFamily,
    /// The error code (300–699).
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

fn decode_address_error<'a>(value: &'a [u8]) -> Result<AddressErrorCode<'a>, AttrError> {
    let mut r = Reader::new(value);
    let family = AddressFamily::from_byte(r.u8()?)?;
    let _reserved = r.u8()?;
    let class = r.u8()? & 0x07;
    let number = r.u8()?;
    if !(3..=6).contains(&class) || number > 99 {
        return Err(AttrError::BadValue);
    }
    let reason = std::str::from_utf8(r.rest()).map_err(|_| AttrError::InvalidUtf8)?;
    Ok(AddressErrorCode { family, code: u16::from(class) * 100 + u16::from(number), reason })
}

fn encode_address_error(a: &AddressErrorCode<'_>, out: &mut [u8]) -> Result<(), EncodeError> {
    if !(300..=699).contains(&a.code) {
        return Err(EncodeError::BadValue);
    }
    let mut w = Writer::new(out);
    w.put(&[a.family.to_byte(), 0, (a.code / 100) as u8, (a.code % 100) as u8])?;
    w.put(a.reason.as_bytes())
}

impl<'a> Attribute<'a> for AddressErrorCode<'a> {
    const TYPE: u16 = types::ADDRESS_ERROR_CODE;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        decode_address_error(value)
    }
    fn value_len(&self) -> usize {
        4 + self.reason.len()
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        encode_address_error(self, out)
    }
}

/// ADDRESS-ERROR-CODE under the draft code point 0x8033 (answer to a 0x8032 request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LegacyAddressErrorCode<'a>(pub AddressErrorCode<'a>);

impl<'a> Attribute<'a> for LegacyAddressErrorCode<'a> {
    const TYPE: u16 = types::LEGACY_ADDRESS_ERROR_CODE;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        decode_address_error(value).map(LegacyAddressErrorCode)
    }
    fn value_len(&self) -> usize {
        4 + self.0.reason.len()
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        encode_address_error(&self.0, out)
    }
}

/// ICMP, RFC 8656 §18.13: an ICMP error a peer's packet caused, relayed in a Data indication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// Error data (for example the MTU of a "fragmentation needed").
    pub error_data: u32,
}

impl<'a> Attribute<'a> for Icmp {
    const TYPE: u16 = types::ICMP;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        let mut r = Reader::new(value);
        let _reserved = r.u16()?;
        let icmp_type = r.u8()?;
        let icmp_code = r.u8()?;
        let error_data = r.u32()?;
        r.finish()?;
        Ok(Icmp { icmp_type, icmp_code, error_data })
    }
    fn value_len(&self) -> usize {
        8
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        let mut w = Writer::new(out);
        w.u16(0)?;
        w.u8(self.icmp_type)?;
        w.u8(self.icmp_code)?;
        w.u32(self.error_data)
    }
}

/// CHANGE-REQUEST, RFC 5780 §7.2: flags A (change IP, 0x04) and B (change port, 0x02).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChangeRequest {
    /// Flag A.
    pub change_ip: bool,
    /// Flag B.
    pub change_port: bool,
}

impl<'a> Attribute<'a> for ChangeRequest {
    const TYPE: u16 = types::CHANGE_REQUEST;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        let mut r = Reader::new(value);
        let v = r.u32()?;
        r.finish()?;
        Ok(ChangeRequest { change_ip: v & 0x04 != 0, change_port: v & 0x02 != 0 })
    }
    fn value_len(&self) -> usize {
        4
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        let v = (u32::from(self.change_ip) << 2) | (u32::from(self.change_port) << 1);
        Writer::new(out).u32(v)
    }
}

/// Password algorithm numbers, RFC 8489 §18.5.
pub mod password_algorithm {
    /// MD5 (the RFC 5389 key), 0x0001.
    pub const MD5: u16 = 0x0001;
    /// SHA-256, 0x0002.
    pub const SHA256: u16 = 0x0002;
}

/// PASSWORD-ALGORITHM, RFC 8489 §14.11: algorithm (16), parameters length (16), parameters (padded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PasswordAlgorithm<'a> {
    /// The algorithm number ([`password_algorithm`]).
    pub algorithm: u16,
    /// Its parameters (none for MD5 and SHA-256).
    pub params: &'a [u8],
}

impl<'a> Attribute<'a> for PasswordAlgorithm<'a> {
    const TYPE: u16 = types::PASSWORD_ALGORITHM;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        let mut r = Reader::new(value);
        let algorithm = r.u16()?;
        let n = usize::from(r.u16()?);
        let params = r.take(n)?;
        r.finish()?;
        Ok(PasswordAlgorithm { algorithm, params })
    }
    fn value_len(&self) -> usize {
        4 + self.params.len()
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        let mut w = Writer::new(out);
        w.u16(self.algorithm)?;
        w.u16(u16::try_from(self.params.len()).map_err(|_| EncodeError::TooLong)?)?;
        w.put(self.params)
    }
}

/// PASSWORD-ALGORITHMS, RFC 8489 §14.12: a list of algorithm entries, each padded to 4 bytes. Kept as
/// validated raw bytes; [`PasswordAlgorithms::iter`] walks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PasswordAlgorithms<'a>(&'a [u8]);

impl<'a> PasswordAlgorithms<'a> {
    /// The list a server offers by default: MD5 then SHA-256, neither with parameters.
    pub const MD5_AND_SHA256: PasswordAlgorithms<'static> =
        PasswordAlgorithms(&[0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00]);

    /// Validates a raw list.
    pub fn from_raw(raw: &'a [u8]) -> Result<Self, AttrError> {
        let mut it = PasswordAlgorithmIter(raw);
        for item in &mut it {
            item?;
        }
        Ok(PasswordAlgorithms(raw))
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = PasswordAlgorithm<'a>> + use<'a> {
        PasswordAlgorithmIter(self.0).map_while(Result::ok)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

struct PasswordAlgorithmIter<'a>(&'a [u8]);

impl<'a> Iterator for PasswordAlgorithmIter<'a> {
    type Item = Result<PasswordAlgorithm<'a>, AttrError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let mut r = Reader::new(self.0);
        let item = (|| {
            let algorithm = r.u16()?;
            let n = usize::from(r.u16()?);
            let params = r.take(n)?;
            let _pad = r.take(super::padded_len(n) - n)?;
            Ok(PasswordAlgorithm { algorithm, params })
        })();
        match item {
            Ok(v) => {
                self.0 = r.rest();
                Some(Ok(v))
            }
            Err(e) => {
                self.0 = &[];
                Some(Err(e))
            }
        }
    }
}

impl<'a> Attribute<'a> for PasswordAlgorithms<'a> {
    const TYPE: u16 = types::PASSWORD_ALGORITHMS;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        PasswordAlgorithms::from_raw(value)
    }
    fn value_len(&self) -> usize {
        self.0.len()
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        Writer::new(out).put(self.0)
    }
}

macro_rules! any_attribute {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// Any attribute: one variant per type this codec knows, unknown types passed through raw.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum AnyAttribute<'a> {
            $($variant($ty),)*
            /// A type this codec does not know, with its value bytes.
            Unknown(RawAttribute<'a>),
        }

        impl<'a> AnyAttribute<'a> {
            /// Decodes a value by its type code.
            pub fn decode(typ: u16, value: &'a [u8], tid: &TransactionId) -> Result<Self, AttrError> {
                $(
                    if typ == <$ty as Attribute<'a>>::TYPE {
                        return <$ty as Attribute<'a>>::decode(value, tid).map(AnyAttribute::$variant);
                    }
                )*
                Ok(AnyAttribute::Unknown(RawAttribute { typ, value }))
            }

            /// The type code.
            pub fn typ(&self) -> u16 {
                match self {
                    $(AnyAttribute::$variant(_) => <$ty as Attribute<'a>>::TYPE,)*
                    AnyAttribute::Unknown(r) => r.typ,
                }
            }

            /// Length of the encoded value.
            pub fn value_len(&self) -> usize {
                match self {
                    $(AnyAttribute::$variant(a) => a.value_len(),)*
                    AnyAttribute::Unknown(r) => r.value.len(),
                }
            }

            /// Writes the value.
            pub fn encode_value(&self, tid: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
                match self {
                    $(AnyAttribute::$variant(a) => a.encode_value(tid, out),)*
                    AnyAttribute::Unknown(r) => Writer::new(out).put(r.value),
                }
            }
        }

        /// Whether this codec has a typed form for the attribute type.
        pub fn is_known(typ: u16) -> bool {
            #[allow(clippy::extra_unused_lifetimes)]
            fn known<'a>(typ: u16) -> bool {
                $(typ == <$ty as Attribute<'a>>::TYPE ||)* false
            }
            known(typ)
        }
    };
}

any_attribute! {
    MappedAddress(MappedAddress),
    XorMappedAddress(XorMappedAddress),
    Username(Username<'a>),
    Userhash(Userhash),
    MessageIntegrity(MessageIntegrity),
    MessageIntegritySha256(MessageIntegritySha256<'a>),
    Fingerprint(Fingerprint),
    ErrorCode(ErrorCode<'a>),
    Realm(Realm<'a>),
    Nonce(Nonce<'a>),
    PasswordAlgorithm(PasswordAlgorithm<'a>),
    PasswordAlgorithms(PasswordAlgorithms<'a>),
    UnknownAttributes(UnknownAttributes),
    Software(Software<'a>),
    AlternateServer(AlternateServer),
    AlternateDomain(AlternateDomain<'a>),
    ChannelNumber(ChannelNumber),
    Lifetime(Lifetime),
    XorPeerAddress(XorPeerAddress),
    Data(Data<'a>),
    XorRelayedAddress(XorRelayedAddress),
    RequestedAddressFamily(RequestedAddressFamily),
    EvenPort(EvenPort),
    RequestedTransport(RequestedTransport),
    DontFragment(DontFragment),
    ReservationToken(ReservationToken),
    AdditionalAddressFamily(AdditionalAddressFamily),
    LegacyAdditionalAddressFamily(LegacyAdditionalAddressFamily),
    AddressErrorCode(AddressErrorCode<'a>),
    LegacyAddressErrorCode(LegacyAddressErrorCode<'a>),
    Icmp(Icmp),
    ConnectionId(ConnectionId),
    ChangeRequest(ChangeRequest),
    ResponseOrigin(ResponseOrigin),
    OtherAddress(OtherAddress),
    AccessToken(AccessToken<'a>),
    ThirdPartyAuthorization(ThirdPartyAuthorization<'a>),
    MobilityTicket(MobilityTicket<'a>),
}
