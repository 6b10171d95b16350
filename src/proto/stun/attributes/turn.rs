//! TURN attributes with a structured value (RFC 8656 §18).

use super::super::bytes::{Reader, Writer};
use super::super::{AttrError, EncodeError, TransactionId};
use super::{AddressFamily, Attribute, types};

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

/// ICMP, RFC 8656 §18.13: an ICMP error a datagram to a peer drew, relayed in a Data indication
/// (§11.5).
///
/// Layout: 16 reserved bits, the ICMP type in one byte, the ICMP code in one byte, 32 bits of Error
/// Data. The tick marks of §18.13's figure would make the type 7 bits and the code 9 (stun-rs reads
/// it so), but the text calls them "the value of the ICMP type/code", and RFC 792 (ICMPv4) and
/// RFC 4443 (ICMPv6) define both as 8-bit fields: a 7-bit field could not carry ICMPv6 types from
/// 128 on, and no ICMP code needs 9 bits. Two bytes is also what stun-types/turn-types put on the
/// wire. The readings are not wire-compatible: a 7/9-bit reader takes type 3 code 3 for type 1
/// code 259 (pinned in `tests/codec/differential_stun_rs.rs`).
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
