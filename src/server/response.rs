//! Building answers: success and error responses with SOFTWARE, MESSAGE-INTEGRITY and FINGERPRINT
//! in the order RFC 8489 §14 requires.

use super::{DropReason, Outcome};
use crate::proto::stun::{
    Class, EncodeError, ErrorCode, IntegrityKey, IntegrityKeySha256, Message, MessageWriter, Software,
};

/// What every answer ends with: SOFTWARE when configured, MESSAGE-INTEGRITY when the request was
/// authenticated (RFC 8489 §9.2.4), FINGERPRINT when the request carried one.
#[derive(Clone, Copy)]
pub(super) struct Trailer<'k> {
    pub software: Option<&'k str>,
    pub key: Option<&'k IntegrityKey>,
    /// MESSAGE-INTEGRITY-SHA256 instead, for an RFC 7635 session key of 32 bytes.
    pub key_sha256: Option<&'k IntegrityKeySha256>,
    pub fingerprint: bool,
}

impl<'k> Trailer<'k> {
    pub(super) fn write(&self, mut w: MessageWriter<'_>) -> Result<usize, EncodeError> {
        if let Some(s) = self.software {
            w.add(&Software(s))?;
        }
        if let Some(k) = self.key {
            w.add_message_integrity(k)?;
        }
        if let Some(k) = self.key_sha256 {
            w.add_message_integrity_sha256(k)?;
        }
        if self.fingerprint {
            w.add_fingerprint()?;
        }
        Ok(w.finish())
    }
}

/// A response to `msg` of `class` whose body `body` writes; then the trailer.
pub(super) fn respond(
    msg: &Message<'_>,
    out: &mut [u8],
    class: Class,
    trailer: Trailer<'_>,
    body: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), EncodeError>,
) -> Outcome {
    let r = (|| {
        let mut w = MessageWriter::response(out, msg, class)?;
        body(&mut w)?;
        trailer.write(w)
    })();
    match r {
        Ok(n) => Outcome::Reply(n),
        Err(_) => Outcome::Dropped(DropReason::OutputTooSmall),
    }
}

/// An error response with ERROR-CODE `code` and whatever `extra` adds.
pub(super) fn error(
    msg: &Message<'_>,
    out: &mut [u8],
    code: u16,
    trailer: Trailer<'_>,
    extra: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), EncodeError>,
) -> Outcome {
    respond(msg, out, Class::ErrorResponse, trailer, |w| {
        w.add(&ErrorCode::new(code))?;
        extra(w)
    })
}
