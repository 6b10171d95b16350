//! The borrowed message view, RFC 8489 §5 and §14.

use subtle::ConstantTimeEq;

use super::attributes::{AnyAttribute, Attribute, UnknownAttributes, types};
use super::bytes::be_u16;
use super::integrity::{IntegrityKey, IntegrityKeySha256};
use super::raw_attribute::RawAttribute;
use super::{AttrError, DecodeError, HEADER_LEN, IntegrityError, MAGIC_COOKIE, MessageType, TransactionId, padded_len};

/// The most attributes a message may carry here. Real messages carry fewer than 15; the cap bounds
/// the cost of every lookup on a crafted packet of 16,000 empty attributes.
pub const MAX_ATTRIBUTES: usize = 64;

/// A STUN message borrowed from a buffer, RFC 8489 §5. Parsing validates the header and that every
/// attribute lies inside the message; lookups then cannot fail on layout, only on a value.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
    message_type: MessageType,
    /// Attributes looked up by [`Message::get`] end here: at MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT,
    /// since RFC 8489 §14.5/§14.6 say what follows integrity must be ignored.
    lookup_end: usize,
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

impl<'a> Message<'a> {
    /// Parses a whole message: `buf` is exactly one datagram or one stream frame.
    ///
    /// A message whose cookie is not the magic cookie is accepted as an RFC 3489 message
    /// ([`Message::is_rfc3489`]); RFC 8489 §11 lets a server answer those.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        if buf.len() < HEADER_LEN {
            return Err(DecodeError::TooShort);
        }
        let typ = be_u16(buf, 0).ok_or(DecodeError::TooShort)?;
        if typ & 0xC000 != 0 {
            return Err(DecodeError::NotStun);
        }
        let len = usize::from(be_u16(buf, 2).ok_or(DecodeError::TooShort)?);
        if len % 4 != 0 || HEADER_LEN + len != buf.len() {
            return Err(DecodeError::BadLength);
        }
        let mut msg = Message {
            buf,
            message_type: MessageType::from_bits(typ),
            lookup_end: buf.len(),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut at = HEADER_LEN;
        let mut count = 0usize;
        while at < buf.len() {
            if msg.fingerprint.is_some() {
                return Err(DecodeError::AttributeAfterFingerprint);
            }
            count += 1;
            if count > MAX_ATTRIBUTES {
                return Err(DecodeError::TooManyAttributes);
            }
            let t = be_u16(buf, at).ok_or(DecodeError::AttributeOverflow)?;
            let vlen = usize::from(be_u16(buf, at + 2).ok_or(DecodeError::AttributeOverflow)?);
            let next = at + 4 + padded_len(vlen);
            if next > buf.len() {
                return Err(DecodeError::AttributeOverflow);
            }
            match t {
                types::MESSAGE_INTEGRITY if msg.integrity.is_none() => {
                    msg.integrity = Some(at);
                    msg.lookup_end = msg.lookup_end.min(at);
                }
                types::MESSAGE_INTEGRITY_SHA256 if msg.integrity_sha256.is_none() => {
                    msg.integrity_sha256 = Some(at);
                    msg.lookup_end = msg.lookup_end.min(at);
                }
                types::FINGERPRINT => {
                    msg.fingerprint = Some(at);
                    msg.lookup_end = msg.lookup_end.min(at);
                }
                _ => {}
            }
            at = next;
        }
        Ok(msg)
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Method and class.
    pub fn message_type(&self) -> MessageType {
        self.message_type
    }

    /// The 4 bytes after the length: the magic cookie, or part of an RFC 3489 transaction ID.
    pub fn cookie_bytes(&self) -> [u8; 4] {
        let mut c = [0u8; 4];
        if let Some(src) = self.buf.get(4..8) {
            c.copy_from_slice(src);
        }
        c
    }

    /// Whether this is an RFC 3489 message (no magic cookie), RFC 8489 §11.
    pub fn is_rfc3489(&self) -> bool {
        u32::from_be_bytes(self.cookie_bytes()) != MAGIC_COOKIE
    }

    /// The transaction ID, RFC 8489 §5.
    pub fn transaction_id(&self) -> TransactionId {
        let mut t = [0u8; 12];
        if let Some(src) = self.buf.get(8..20) {
            t.copy_from_slice(src);
        }
        TransactionId(t)
    }

    /// Every attribute in order, including those after MESSAGE-INTEGRITY.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes { buf: self.buf, at: HEADER_LEN, end: self.buf.len() }
    }

    /// Attributes that count: those before MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.
    fn counted(&self) -> Attributes<'a> {
        Attributes { buf: self.buf, at: HEADER_LEN, end: self.lookup_end }
    }

    /// The first raw attribute of a type among those that count.
    pub fn get_raw(&self, typ: u16) -> Option<RawAttribute<'a>> {
        self.counted().find(|a| a.typ == typ)
    }

    /// The first attribute of type `A`, decoded (RFC 8489 §14: later duplicates may be ignored).
    pub fn get<A: Attribute<'a>>(&self) -> Result<A, AttrError> {
        let raw = self.get_raw(A::TYPE).ok_or(AttrError::Missing)?;
        A::decode(raw.value, &self.transaction_id())
    }

    /// Whether an attribute of type `A` is present among those that count.
    pub fn has<A: Attribute<'a>>(&self) -> bool {
        self.get_raw(A::TYPE).is_some()
    }

    /// Every attribute of type `A` (for example several XOR-PEER-ADDRESS in CreatePermission).
    pub fn get_all<A: Attribute<'a>>(&self) -> impl Iterator<Item = Result<A, AttrError>> + use<'a, A> {
        let tid = self.transaction_id();
        self.counted().filter(|a| a.typ == A::TYPE).map(move |a| A::decode(a.value, &tid))
    }

    /// Every attribute decoded, in order.
    pub fn decoded(&self) -> impl Iterator<Item = Result<AnyAttribute<'a>, AttrError>> + use<'a> {
        let tid = self.transaction_id();
        self.attributes().map(move |a| AnyAttribute::decode(a.typ, a.value, &tid))
    }

    /// The comprehension-required attributes (0x0000–0x7FFF) that `known` does not accept, for a
    /// 420 answer (RFC 8489 §6.3.1).
    pub fn unknown_comprehension_required(&self, known: impl Fn(u16) -> bool) -> UnknownAttributes {
        let mut u = UnknownAttributes::default();
        for a in self.counted() {
            if types::is_comprehension_required(a.typ) && !known(a.typ) {
                u.push(a.typ);
            }
        }
        u
    }

    /// Whether MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some()
    }

    /// Whether MESSAGE-INTEGRITY-SHA256 is present.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// Whether FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// The first two bytes and the bytes from the cookie up to `upto`, with the length field set as
    /// if the message ended `tail` bytes after `upto` (RFC 8489 §14.5–§14.7).
    fn covered(&self, upto: usize, tail: usize) -> Option<([u8; 2], [u8; 2], &'a [u8])> {
        let head = self.buf.get(0..2)?;
        let body = self.buf.get(4..upto)?;
        let len = u16::try_from(upto - HEADER_LEN + tail).ok()?;
        Some(([*head.first()?, *head.get(1)?], len.to_be_bytes(), body))
    }

    /// Checks MESSAGE-INTEGRITY, RFC 8489 §14.5: HMAC-SHA1 over the message up to the attribute,
    /// with the length field covering it. The comparison is constant-time.
    pub fn verify_integrity(&self, key: &IntegrityKey) -> Result<(), IntegrityError> {
        let at = self.integrity.ok_or(IntegrityError::Missing)?;
        // A length other than 20 keeps the padded layout for 17–19: refuse it, or the check would
        // read the same 20 bytes and accept an altered message.
        if be_u16(self.buf, at + 2) != Some(20) {
            return Err(IntegrityError::Mismatch);
        }
        let (head, len, body) = self.covered(at, 24).ok_or(IntegrityError::Missing)?;
        let expected = key.compute(&[&head, &len, body]);
        let got = self.buf.get(at + 4..at + 24).ok_or(IntegrityError::Missing)?;
        if bool::from(expected.as_slice().ct_eq(got)) { Ok(()) } else { Err(IntegrityError::Mismatch) }
    }

    /// Checks MESSAGE-INTEGRITY-SHA256, RFC 8489 §14.6 (the value may be truncated to 16–32 bytes).
    pub fn verify_integrity_sha256(&self, key: &IntegrityKeySha256) -> Result<(), IntegrityError> {
        let at = self.integrity_sha256.ok_or(IntegrityError::Missing)?;
        let vlen = usize::from(be_u16(self.buf, at + 2).ok_or(IntegrityError::Missing)?);
        if !(16..=32).contains(&vlen) || vlen % 4 != 0 {
            return Err(IntegrityError::Mismatch);
        }
        let (head, len, body) = self.covered(at, 4 + vlen).ok_or(IntegrityError::Missing)?;
        let expected = key.compute(&[&head, &len, body]);
        let got = self.buf.get(at + 4..at + 4 + vlen).ok_or(IntegrityError::Missing)?;
        let want = expected.get(..vlen).ok_or(IntegrityError::Mismatch)?;
        if bool::from(want.ct_eq(got)) { Ok(()) } else { Err(IntegrityError::Mismatch) }
    }

    /// Checks FINGERPRINT, RFC 8489 §14.7.
    pub fn verify_fingerprint(&self) -> Result<(), IntegrityError> {
        let at = self.fingerprint.ok_or(IntegrityError::Missing)?;
        if be_u16(self.buf, at + 2) != Some(4) {
            return Err(IntegrityError::Mismatch);
        }
        let (head, len, body) = self.covered(at, 8).ok_or(IntegrityError::Missing)?;
        let mut h = crc32fast::Hasher::new();
        h.update(&head);
        h.update(&len);
        h.update(body);
        let expected = h.finalize() ^ super::integrity::FINGERPRINT_XOR;
        let got = self.buf.get(at + 4..at + 8).ok_or(IntegrityError::Missing)?;
        if expected.to_be_bytes() == got { Ok(()) } else { Err(IntegrityError::Mismatch) }
    }
}

/// Iterator over the attributes of a parsed message.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    buf: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let typ = be_u16(self.buf, self.at)?;
        let vlen = usize::from(be_u16(self.buf, self.at + 2)?);
        let value = self.buf.get(self.at + 4..self.at + 4 + vlen)?;
        self.at += 4 + padded_len(vlen);
        Some(RawAttribute { typ, value })
    }
}
