//! Telling STUN from ChannelData (RFC 7983 §7, RFC 8656 §12) and cutting frames from a stream
//! (RFC 8656 §3.1: over TCP and TLS both are sent back to back; ChannelData padded to 4).

use crate::proto::stun::{HEADER_LEN as STUN_HEADER_LEN, MAX_MESSAGE_LEN};

/// What the first byte of a packet says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// 0x00–0x03: STUN.
    Stun,
    /// 0x40–0x7F (0x40–0x4F when strict): ChannelData.
    ChannelData,
    /// Anything else (DTLS, RTP, garbage): dropped and counted.
    Other,
}

/// Classifies a packet by its first byte, RFC 7983 §7. A TURN port carries no DTLS, so the whole
/// RFC 5766 channel range 0x4000–0x7FFF (first byte 0x40–0x7F) counts as ChannelData unless
/// `strict_rfc8656` narrows it to 0x4000–0x4FFF.
#[inline]
pub fn classify(first: u8, strict_rfc8656: bool) -> PacketKind {
    match first {
        0x00..=0x03 => PacketKind::Stun,
        0x40..=0x4F => PacketKind::ChannelData,
        0x50..=0x7F if !strict_rfc8656 => PacketKind::ChannelData,
        _ => PacketKind::Other,
    }
}

/// The result of looking for one frame at the front of a stream buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet to know or to hold the frame.
    Incomplete,
    /// The first `usize` bytes are one frame (ChannelData padding included).
    Complete(usize),
    /// The stream cannot be framed: close the connection.
    Invalid,
}

/// Largest frame a stream can carry: a maximal STUN message (ChannelData is smaller).
pub const MAX_FRAME_LEN: usize = MAX_MESSAGE_LEN;

/// Finds the length of the frame at the front of `buf`: STUN is 20 + its length field; ChannelData
/// is 4 + its length field rounded up to 4 (RFC 8656 §12.5).
pub fn stream_frame(buf: &[u8], strict_rfc8656: bool) -> Frame {
    let (Some(&b0), Some(&b2), Some(&b3)) = (buf.first(), buf.get(2), buf.get(3)) else {
        return match buf.first() {
            Some(&b) if classify(b, strict_rfc8656) == PacketKind::Other => Frame::Invalid,
            _ => Frame::Incomplete,
        };
    };
    let len = usize::from(u16::from_be_bytes([b2, b3]));
    let total = match classify(b0, strict_rfc8656) {
        PacketKind::Stun => {
            if len % 4 != 0 {
                return Frame::Invalid;
            }
            STUN_HEADER_LEN + len
        }
        PacketKind::ChannelData => (4 + len + 3) & !3,
        PacketKind::Other => return Frame::Invalid,
    };
    if buf.len() >= total { Frame::Complete(total) } else { Frame::Incomplete }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_first_bytes() {
        assert_eq!(classify(0x00, false), PacketKind::Stun);
        assert_eq!(classify(0x01, true), PacketKind::Stun);
        assert_eq!(classify(0x04, false), PacketKind::Other);
        assert_eq!(classify(0x16, false), PacketKind::Other); // DTLS handshake
        assert_eq!(classify(0x40, true), PacketKind::ChannelData);
        assert_eq!(classify(0x74, false), PacketKind::ChannelData);
        assert_eq!(classify(0x74, true), PacketKind::Other);
        assert_eq!(classify(0x80, false), PacketKind::Other); // RTP
    }

    #[test]
    fn frames_stun_and_padded_channel_data() {
        let mut s = vec![0x00, 0x01, 0x00, 0x04];
        s.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        s.extend_from_slice(&[0; 12]);
        assert_eq!(stream_frame(&s, false), Frame::Incomplete);
        s.extend_from_slice(&[0; 4]);
        assert_eq!(stream_frame(&s, false), Frame::Complete(24));
        assert_eq!(stream_frame(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0], false), Frame::Incomplete);
        assert_eq!(stream_frame(&[0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0, 9], false), Frame::Complete(12));
        assert_eq!(stream_frame(&[0x40, 0x00], false), Frame::Incomplete);
        assert_eq!(stream_frame(&[0xFF], false), Frame::Invalid);
        assert_eq!(stream_frame(&[0x00, 0x01, 0x00, 0x03], false), Frame::Invalid);
        assert_eq!(stream_frame(&[0x55, 0x00, 0x00, 0x00], true), Frame::Invalid);
    }
}
