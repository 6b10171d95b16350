//! Lower-case hex without allocation, for nonces and `0x` keys. Decoding never panics on input.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `src` as lower-case hex into `out`, which must be `2 * src.len()` bytes long; returns
/// `false` (writing nothing useful) if it is not.
pub(crate) fn encode(src: &[u8], out: &mut [u8]) -> bool {
    if out.len() != src.len() * 2 {
        return false;
    }
    for (b, pair) in src.iter().zip(out.chunks_exact_mut(2)) {
        if let [hi, lo] = pair {
            *hi = nibble_char(b >> 4);
            *lo = nibble_char(b & 0x0f);
        }
    }
    true
}

/// Decodes hex (either case) into `out`; `None` unless `src` is exactly `2 * out.len()` hex digits.
pub(crate) fn decode(src: &[u8], out: &mut [u8]) -> Option<()> {
    if src.len() != out.len() * 2 {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(src.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(())
}

fn nibble_char(n: u8) -> u8 {
    DIGITS.get(usize::from(n & 0x0f)).copied().unwrap_or(b'0')
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let mut out = [0u8; 8];
        assert!(encode(&[0x01, 0xab, 0xff, 0x00], &mut out));
        assert_eq!(&out, b"01abff00");
        let mut back = [0u8; 4];
        assert_eq!(decode(b"01ABff00", &mut back), Some(()));
        assert_eq!(back, [0x01, 0xab, 0xff, 0x00]);
        assert_eq!(decode(b"01abff0", &mut back), None);
        assert_eq!(decode(b"01abff0g", &mut back), None);
        assert!(!encode(&[1, 2], &mut out));
    }
}
