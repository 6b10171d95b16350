//! ERROR-CODE, RFC 8489 §14.8, and the codes STUN and TURN use.

use super::super::bytes::{Reader, Writer};
use super::super::{AttrError, EncodeError, TransactionId};
use super::{Attribute, types};

/// ERROR-CODE: 21 reserved bits, class (3 bits, 3–6), number (8 bits, 0–99), UTF-8 reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorCode<'a> {
    /// The code, 300–699.
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

impl ErrorCode<'static> {
    /// An error code with the reason phrase the RFCs give it.
    pub fn new(code: u16) -> Self {
        ErrorCode { code, reason: codes::reason(code) }
    }
}

impl<'a> Attribute<'a> for ErrorCode<'a> {
    const TYPE: u16 = types::ERROR_CODE;
    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttrError> {
        let mut r = Reader::new(value);
        let _reserved = r.u16()?;
        let class = r.u8()? & 0x07;
        let number = r.u8()?;
        if !(3..=6).contains(&class) || number > 99 {
            return Err(AttrError::BadValue);
        }
        let reason = std::str::from_utf8(r.rest()).map_err(|_| AttrError::InvalidUtf8)?;
        Ok(ErrorCode { code: u16::from(class) * 100 + u16::from(number), reason })
    }
    fn value_len(&self) -> usize {
        4 + self.reason.len()
    }
    fn encode_value(&self, _: &TransactionId, out: &mut [u8]) -> Result<(), EncodeError> {
        if !(300..=699).contains(&self.code) {
            return Err(EncodeError::BadValue);
        }
        let mut w = Writer::new(out);
        w.put(&[0, 0, (self.code / 100) as u8, (self.code % 100) as u8])?;
        w.put(self.reason.as_bytes())
    }
}

/// Error codes of RFC 8489 §14.8, RFC 8656 §18.14 and RFC 6062 §6.3.
pub mod codes {
    /// 300 Try Alternate.
    pub const TRY_ALTERNATE: u16 = 300;
    /// 400 Bad Request.
    pub const BAD_REQUEST: u16 = 400;
    /// 401 Unauthenticated.
    pub const UNAUTHENTICATED: u16 = 401;
    /// 403 Forbidden.
    pub const FORBIDDEN: u16 = 403;
    /// 405 Mobility Forbidden (RFC 8016 §3.4).
    pub const MOBILITY_FORBIDDEN: u16 = 405;
    /// 420 Unknown Attribute.
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    /// 437 Allocation Mismatch.
    pub const ALLOCATION_MISMATCH: u16 = 437;
    /// 438 Stale Nonce.
    pub const STALE_NONCE: u16 = 438;
    /// 440 Address Family not Supported.
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    /// 441 Wrong Credentials.
    pub const WRONG_CREDENTIALS: u16 = 441;
    /// 442 Unsupported Transport Protocol.
    pub const UNSUPPORTED_TRANSPORT_PROTOCOL: u16 = 442;
    /// 443 Peer Address Family Mismatch.
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    /// 446 Connection Already Exists (RFC 6062).
    pub const CONNECTION_ALREADY_EXISTS: u16 = 446;
    /// 447 Connection Timeout or Failure (RFC 6062).
    pub const CONNECTION_TIMEOUT_OR_FAILURE: u16 = 447;
    /// 486 Allocation Quota Reached.
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    /// 500 Server Error.
    pub const SERVER_ERROR: u16 = 500;
    /// 508 Insufficient Capacity.
    pub const INSUFFICIENT_CAPACITY: u16 = 508;

    /// The reason phrase the RFCs suggest for a code.
    pub fn reason(code: u16) -> &'static str {
        match code {
            TRY_ALTERNATE => "Try Alternate",
            BAD_REQUEST => "Bad Request",
            UNAUTHENTICATED => "Unauthenticated",
            FORBIDDEN => "Forbidden",
            MOBILITY_FORBIDDEN => "Mobility Forbidden",
            UNKNOWN_ATTRIBUTE => "Unknown Attribute",
            ALLOCATION_MISMATCH => "Allocation Mismatch",
            STALE_NONCE => "Stale Nonce",
            ADDRESS_FAMILY_NOT_SUPPORTED => "Address Family not Supported",
            WRONG_CREDENTIALS => "Wrong Credentials",
            UNSUPPORTED_TRANSPORT_PROTOCOL => "Unsupported Transport Protocol",
            PEER_ADDRESS_FAMILY_MISMATCH => "Peer Address Family Mismatch",
            CONNECTION_ALREADY_EXISTS => "Connection Already Exists",
            CONNECTION_TIMEOUT_OR_FAILURE => "Connection Timeout or Failure",
            ALLOCATION_QUOTA_REACHED => "Allocation Quota Reached",
            SERVER_ERROR => "Server Error",
            INSUFFICIENT_CAPACITY => "Insufficient Capacity",
            _ => "Error",
        }
    }
}
