//! STUN (RFC 8489): a zero-copy message view, typed attributes and an encoder into a caller's buffer.
//!
//! * [`Message::parse`] borrows a datagram or stream frame, validates the header and the attribute
//!   layout once, and never allocates; attributes are then looked up with [`Message::get`] or walked
//!   with [`Message::attributes`].
//! * [`MessageWriter`] writes a message into a `&mut [u8]`, computing MESSAGE-INTEGRITY(-SHA256) and
//!   FINGERPRINT in place.
//! * [`IntegrityKey`] caches the keyed HMAC state so that checking a request costs one HMAC.

mod address;
mod attributes;
mod bytes;
mod integrity;
mod message;
mod method;
mod raw_attribute;
mod writer;

pub use attributes::*;
pub use integrity::{IntegrityKey, IntegrityKeySha256, fingerprint, long_term_key_md5, long_term_key_sha256};
pub use message::{Attributes, MAX_ATTRIBUTES, Message};
pub use method::{Class, MessageType, Method};
pub use raw_attribute::RawAttribute;
pub use writer::MessageWriter;

/// The magic cookie, RFC 8489 §5.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the fixed STUN header, RFC 8489 §5.
pub const HEADER_LEN: usize = 20;
/// The largest STUN message we accept or build: the 16-bit length field plus the header.
pub const MAX_MESSAGE_LEN: usize = HEADER_LEN + 0xFFFC;

/// The 96-bit transaction ID, RFC 8489 §5.
///
/// For an RFC 3489 ("classic") message the 32 bits where the magic cookie would be are part of the
/// transaction ID; [`Message::cookie_bytes`] keeps them so a response can echo all 128 bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// Bytes of the transaction ID.
    pub fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }
}

/// Why a buffer is not a well-formed STUN message (RFC 8489 §5, §14). Small and `Copy`: a flood of bad
/// packets allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the 20-byte header.
    #[error("shorter than a STUN header")]
    TooShort,
    /// The two most significant bits are not zero: not STUN (RFC 8489 §5).
    #[error("first two bits are not zero")]
    NotStun,
    /// The length field is not a multiple of 4 or does not match the buffer (RFC 8489 §5).
    #[error("message length field does not match the buffer")]
    BadLength,
    /// An attribute's length runs past the end of the message (RFC 8489 §14).
    #[error("attribute runs past the end of the message")]
    AttributeOverflow,
    /// An attribute follows FINGERPRINT, which must be last (RFC 8489 §14.7).
    #[error("attribute after FINGERPRINT")]
    AttributeAfterFingerprint,
    /// More than [`message::MAX_ATTRIBUTES`] attributes.
    #[error("too many attributes")]
    TooManyAttributes,
}

/// Why one attribute's value is malformed. Maps to 400 Bad Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttrError {
    /// The attribute is not in the message.
    #[error("attribute missing")]
    Missing,
    /// The value has the wrong length for its type.
    #[error("attribute value has a bad length")]
    BadLength,
    /// An address family other than 0x01 (IPv4) or 0x02 (IPv6).
    #[error("unknown address family")]
    BadFamily,
    /// Text that is not UTF-8.
    #[error("attribute text is not UTF-8")]
    InvalidUtf8,
    /// A value outside its allowed range.
    #[error("attribute value out of range")]
    BadValue,
}

/// Why a message could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's buffer is too small.
    #[error("buffer too small")]
    BufferTooSmall,
    /// An attribute value longer than the 16-bit length allows, or the message would exceed it.
    #[error("value too long")]
    TooLong,
    /// A value that cannot be encoded (out of range).
    #[error("value not encodable")]
    BadValue,
}

/// Why a MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The message carries no such attribute.
    #[error("no integrity attribute")]
    Missing,
    /// The HMAC or CRC does not match.
    #[error("integrity mismatch")]
    Mismatch,
}

/// Rounds `n` up to the next multiple of 4 (attribute padding, RFC 8489 §14).
#[inline]
pub const fn padded_len(n: usize) -> usize {
    (n + 3) & !3
}
