//! Hex decoding without allocation, for `0x` keys. Never panics on input.

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
    fn decodes_and_rejects() {
        let mut back = [0u8; 4];
        assert_eq!(decode(b"01ABff00", &mut back), Some(()));
        assert_eq!(back, [0x01, 0xab, 0xff, 0x00]);
        assert_eq!(decode(b"01abff0", &mut back), None);
        assert_eq!(decode(b"01abff0g", &mut back), None);
    }
}
