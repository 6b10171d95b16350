//! One attribute as it sits in a message (RFC 8489 §14: type, length, value, padding), before
//! it is typed: what [`Message`](super::Message) iterates and what the codec passes through for
//! types it does not know.

/// One attribute as it sits in the message: type code and value bytes (padding excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The type code.
    pub typ: u16,
    /// The value, without padding.
    pub value: &'a [u8],
}
