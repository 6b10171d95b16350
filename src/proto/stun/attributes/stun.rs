//! Attributes of STUN itself with a structured value: integrity, user hash, unknown attributes,
//! password algorithms (RFC 8489 §14), and RFC 5780's CHANGE-REQUEST.

use super::super::bytes::{Reader, Writer};
use super::super::{AttrError, EncodeError, TransactionId};
use super::{Attribute, types};

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
    /// SHA-256 (preferred) then MD5, neither with parameters.
    pub const SHA256_AND_MD5: PasswordAlgorithms<'static> =
        PasswordAlgorithms(&[0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]);
    /// SHA-256 alone, without parameters.
    pub const SHA256: PasswordAlgorithms<'static> = PasswordAlgorithms(&[0x00, 0x02, 0x00, 0x00]);

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
            let _pad = r.take(super::super::padded_len(n) - n)?;
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
