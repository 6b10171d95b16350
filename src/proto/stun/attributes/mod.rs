//! Typed STUN/TURN attributes (RFC 8489 §14, RFC 8656 §18, RFC 6062 §6.2, RFC 5780 §7,
//! RFC 7635 §6, RFC 8016 §3.1).
//!
//! Each attribute is a small type implementing [`Attribute`]: it decodes from the borrowed value bytes
//! (text and opaque values borrow, nothing is copied) and encodes into a value slice of exactly
//! [`Attribute::value_len`] bytes. [`AnyAttribute`] names every type this codec knows, with
//! unknown ones passed through raw.

use std::net::SocketAddr;

use super::bytes::Writer;
use super::raw_attribute::RawAttribute;
use super::{AttrError, EncodeError, TransactionId};

mod error_code;
pub use error_code::{ErrorCode, codes};

// The macros below are defined before these modules so that they can use them.

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
    /// PADDING, RFC 5780 §7.6.
    pub const PADDING: u16 = 0x0026;
    /// RESPONSE-PORT, RFC 5780 §7.5.
    pub const RESPONSE_PORT: u16 = 0x0027;
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

mod simple;
mod stun;
mod turn;

pub use simple::*;
pub use stun::*;
pub use turn::*;

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
