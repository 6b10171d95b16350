//! The encoder: writes a message into a caller's buffer, RFC 8489 §5 and §14.

use super::attributes::{AnyAttribute, Attribute, types};
use super::integrity::{FINGERPRINT_XOR, IntegrityKey, IntegrityKeySha256};
use super::{EncodeError, HEADER_LEN, MAGIC_COOKIE, MAX_MESSAGE_LEN, Message, MessageType, TransactionId, padded_len};

/// Builds a STUN message in place. Attributes are appended in call order; the length field is kept
/// current, so MESSAGE-INTEGRITY and FINGERPRINT can be computed over what is already written.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    tid: TransactionId,
    padding: u8,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message with the magic cookie.
    pub fn new(buf: &'b mut [u8], message_type: MessageType, tid: TransactionId) -> Result<Self, EncodeError> {
        Self::with_cookie(buf, message_type, MAGIC_COOKIE.to_be_bytes(), tid)
    }

    /// Starts a message with the given 4 cookie bytes: to answer an RFC 3489 request, pass its
    /// [`Message::cookie_bytes`] so all 128 bits of its transaction ID are echoed (RFC 8489 §11).
    pub fn with_cookie(
        buf: &'b mut [u8],
        message_type: MessageType,
        cookie: [u8; 4],
        tid: TransactionId,
    ) -> Result<Self, EncodeError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(EncodeError::BufferTooSmall)?;
        let (ty, rest) = header.split_at_mut(2);
        ty.copy_from_slice(&message_type.to_bits().to_be_bytes());
        let (len, rest) = rest.split_at_mut(2);
        len.copy_from_slice(&[0, 0]);
        let (c, t) = rest.split_at_mut(4);
        c.copy_from_slice(&cookie);
        t.copy_from_slice(tid.as_bytes());
        Ok(MessageWriter { buf, len: HEADER_LEN, tid, padding: 0 })
    }

    /// Starts the response to `request` (same method and transaction ID, cookie echoed).
    pub fn response(buf: &'b mut [u8], request: &Message<'_>, class: super::Class) -> Result<Self, EncodeError> {
        let ty = MessageType::new(request.message_type().method, class);
        Self::with_cookie(buf, ty, request.cookie_bytes(), request.transaction_id())
    }

    /// The transaction ID being written.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the header is written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Sets the byte that fills attribute padding from now on (default 0, as RFC 8489 §14 requires).
    /// RFC 5389 let senders pad with anything and the RFC 5769 test vectors pad with 0x20; this
    /// exists to reproduce such messages byte for byte, not for use on the wire.
    pub fn set_padding(&mut self, byte: u8) {
        self.padding = byte;
    }

    /// Reserves header + padded value space for one attribute, writes the header and the length
    /// field, and returns the value slice (zeroed; the padding after it filled with the padding byte).
    fn reserve(&mut self, typ: u16, vlen: usize) -> Result<&mut [u8], EncodeError> {
        self.reserve_with(typ, vlen, true)
    }

    fn reserve_with(&mut self, typ: u16, vlen: usize, zero_value: bool) -> Result<&mut [u8], EncodeError> {
        let vlen16 = u16::try_from(vlen).map_err(|_| EncodeError::TooLong)?;
        let start = self.len;
        let end = start + 4 + padded_len(vlen);
        if end > MAX_MESSAGE_LEN {
            return Err(EncodeError::TooLong);
        }
        let slot = self.buf.get_mut(start..end).ok_or(EncodeError::BufferTooSmall)?;
        let (hdr, value) = slot.split_at_mut(4);
        hdr.copy_from_slice(&[(typ >> 8) as u8, typ as u8, (vlen16 >> 8) as u8, vlen16 as u8]);
        let (value, pad) = value.split_at_mut_checked(vlen).ok_or(EncodeError::BufferTooSmall)?;
        if zero_value {
            value.fill(0);
        }
        pad.fill(self.padding);
        self.len = end;
        self.set_length(end)?;
        self.buf.get_mut(start + 4..start + 4 + vlen).ok_or(EncodeError::BufferTooSmall)
    }

    fn set_length(&mut self, total: usize) -> Result<(), EncodeError> {
        let l = u16::try_from(total - HEADER_LEN).map_err(|_| EncodeError::TooLong)?;
        self.buf.get_mut(2..4).ok_or(EncodeError::BufferTooSmall)?.copy_from_slice(&l.to_be_bytes());
        Ok(())
    }

    /// Appends a typed attribute.
    pub fn add<'x, A: Attribute<'x>>(&mut self, attr: &A) -> Result<(), EncodeError> {
        let tid = self.tid;
        let start = self.len;
        let value = self.reserve(A::TYPE, attr.value_len())?;
        let res = attr.encode_value(&tid, value);
        if res.is_err() {
            self.len = start;
            self.set_length(start)?;
        }
        res
    }

    /// Appends an attribute of any type, typed or unknown (what [`Message::decoded`] yields): a
    /// decoded message can be written back attribute by attribute.
    pub fn add_any(&mut self, attr: &AnyAttribute<'_>) -> Result<(), EncodeError> {
        let tid = self.tid;
        let start = self.len;
        let value = self.reserve(attr.typ(), attr.value_len())?;
        let res = attr.encode_value(&tid, value);
        if res.is_err() {
            self.len = start;
            self.set_length(start)?;
        }
        res
    }

    /// Appends an attribute from its type code and raw value.
    pub fn add_raw(&mut self, typ: u16, value: &[u8]) -> Result<(), EncodeError> {
        self.reserve(typ, value.len())?.copy_from_slice(value);
        Ok(())
    }

    /// Appends the header of an attribute whose `vlen` value bytes the caller already placed right
    /// after it (a datagram received into the buffer with headroom: the Data indication written
    /// around it without copying, RFC 8656 §11.3). Zeroes only the padding.
    pub fn add_in_place(&mut self, typ: u16, vlen: usize) -> Result<(), EncodeError> {
        self.reserve_with(typ, vlen, false).map(|_| ())
    }

    /// Appends MESSAGE-INTEGRITY, RFC 8489 §14.5: HMAC-SHA1 over everything before it, with the length
    /// field already counting it.
    pub fn add_message_integrity(&mut self, key: &IntegrityKey) -> Result<(), EncodeError> {
        let start = self.len;
        self.reserve(types::MESSAGE_INTEGRITY, 20)?;
        let covered = self.buf.get(..start).ok_or(EncodeError::BufferTooSmall)?;
        let mac = key.compute(&[covered]);
        self.buf.get_mut(start + 4..start + 24).ok_or(EncodeError::BufferTooSmall)?.copy_from_slice(&mac);
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (full 32 bytes), RFC 8489 §14.6.
    pub fn add_message_integrity_sha256(&mut self, key: &IntegrityKeySha256) -> Result<(), EncodeError> {
        let start = self.len;
        self.reserve(types::MESSAGE_INTEGRITY_SHA256, 32)?;
        let covered = self.buf.get(..start).ok_or(EncodeError::BufferTooSmall)?;
        let mac = key.compute(&[covered]);
        self.buf.get_mut(start + 4..start + 36).ok_or(EncodeError::BufferTooSmall)?.copy_from_slice(&mac);
        Ok(())
    }

    /// Appends FINGERPRINT, RFC 8489 §14.7. It must be the last attribute.
    pub fn add_fingerprint(&mut self) -> Result<(), EncodeError> {
        let start = self.len;
        self.reserve(types::FINGERPRINT, 4)?;
        let covered = self.buf.get(..start).ok_or(EncodeError::BufferTooSmall)?;
        let crc = crc32fast::hash(covered) ^ FINGERPRINT_XOR;
        self.buf.get_mut(start + 4..start + 8).ok_or(EncodeError::BufferTooSmall)?.copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// Finishes the message and returns its length in the buffer.
    pub fn finish(self) -> usize {
        self.len
    }
}
