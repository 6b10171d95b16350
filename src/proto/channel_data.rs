//! ChannelData messages, RFC 8656 §12.4: a 4-byte header (channel number, length) and the data.
//!
//! Over UDP the data need not be padded; over TCP and TLS the message is padded to a multiple of
//! 4 bytes (§12.5), and the padding is not counted in the length field.

/// Length of the ChannelData header.
pub const HEADER_LEN: usize = 4;

/// Why a buffer is not a ChannelData message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelDataError {
    /// Shorter than the header.
    #[error("shorter than a ChannelData header")]
    TooShort,
    /// The channel number is outside 0x4000–0x7FFF (RFC 8656 §12 / RFC 5766 §11).
    #[error("channel number out of range")]
    BadChannel,
    /// The length field claims more data than the buffer holds (§12.5: discard).
    #[error("length field exceeds the datagram")]
    Truncated,
}

/// A ChannelData message borrowed from a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number (0x4000–0x7FFF).
    pub channel: u16,
    /// The application data, without padding.
    pub data: &'a [u8],
}

/// Whether `n` lies in the channel range that ChannelData may use: RFC 8656's 0x4000–0x4FFF when
/// `strict`, else RFC 5766's 0x4000–0x7FFF that older clients still use.
#[inline]
pub fn is_channel_number(n: u16, strict: bool) -> bool {
    if strict { (0x4000..=0x4FFF).contains(&n) } else { (0x4000..=0x7FFF).contains(&n) }
}

impl<'a> ChannelData<'a> {
    /// Parses a ChannelData message, RFC 8656 §12.5. Bytes after the data (padding) are ignored.
    pub fn parse(buf: &'a [u8]) -> Result<Self, ChannelDataError> {
        let header = buf.get(..HEADER_LEN).ok_or(ChannelDataError::TooShort)?;
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(header);
        let channel = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if !is_channel_number(channel, false) {
            return Err(ChannelDataError::BadChannel);
        }
        let data = buf.get(HEADER_LEN..HEADER_LEN + len).ok_or(ChannelDataError::Truncated)?;
        Ok(ChannelData { channel, data })
    }

    /// Length on the wire: header + data, padded to 4 on streams.
    pub fn wire_len(&self, stream: bool) -> usize {
        wire_len(self.data.len(), stream)
    }

    /// Writes the message into `out`; returns the bytes written (padding zeroed on streams), or
    /// `None` if `out` is too small or the data longer than 65535 bytes.
    pub fn encode(&self, stream: bool, out: &mut [u8]) -> Option<usize> {
        let n = wire_len(self.data.len(), stream);
        let dst = out.get_mut(..n)?;
        let (hdr, rest) = dst.split_at_mut(HEADER_LEN);
        write_header(hdr, self.channel, self.data.len())?;
        let (data, pad) = rest.split_at_mut(self.data.len());
        data.copy_from_slice(self.data);
        pad.fill(0);
        Some(n)
    }
}

/// Length on the wire of a ChannelData message carrying `data_len` bytes.
#[inline]
pub fn wire_len(data_len: usize, stream: bool) -> usize {
    let n = HEADER_LEN + data_len;
    if stream { (n + 3) & !3 } else { n }
}

/// Writes the 4-byte header in place (for data already sitting after 4 bytes of headroom).
/// Returns `None` when `hdr` is shorter than 4 bytes or `data_len` exceeds 65535.
#[inline]
pub fn write_header(hdr: &mut [u8], channel: u16, data_len: usize) -> Option<()> {
    let len = u16::try_from(data_len).ok()?;
    let c = channel.to_be_bytes();
    let l = len.to_be_bytes();
    hdr.get_mut(..HEADER_LEN)?.copy_from_slice(&[c[0], c[1], l[0], l[1]]);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_encode_round_trip() {
        let cd = ChannelData { channel: 0x4001, data: b"hello" };
        let mut buf = [0xAAu8; 16];
        assert_eq!(cd.encode(false, &mut buf), Some(9));
        assert_eq!(&buf[..9], b"\x40\x01\x00\x05hello");
        assert_eq!(ChannelData::parse(&buf[..9]), Ok(cd));
        assert_eq!(cd.encode(true, &mut buf), Some(12));
        assert_eq!(&buf[9..12], &[0, 0, 0]);
        assert_eq!(ChannelData::parse(&buf[..12]), Ok(cd));
    }

    #[test]
    fn rejects_truncated_and_bad_channels() {
        assert_eq!(ChannelData::parse(b"\x40\x00\x00\x05hell"), Err(ChannelDataError::Truncated));
        assert_eq!(ChannelData::parse(b"\x80\x00\x00\x00"), Err(ChannelDataError::BadChannel));
        assert_eq!(ChannelData::parse(b"\x3F\xFF\x00\x00"), Err(ChannelDataError::BadChannel));
        assert_eq!(ChannelData::parse(b"\x40"), Err(ChannelDataError::TooShort));
        assert!(ChannelData::parse(b"\x7F\xFF\x00\x00").is_ok());
    }

    #[test]
    fn channel_ranges() {
        assert!(is_channel_number(0x4FFF, true));
        assert!(!is_channel_number(0x5000, true));
        assert!(is_channel_number(0x74DB, false));
        assert!(!is_channel_number(0x8000, false));
    }
}
