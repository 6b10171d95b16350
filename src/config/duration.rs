//! Durations as the command line writes them: `--ttl 1h`, `90s`, `30m`, `2d`.
//!
//! ```
//! use switchback::config::duration::{format_duration, parse_duration};
//!
//! assert_eq!(parse_duration("1h")?, 3600);
//! assert_eq!(format_duration(90), "90s");
//! # Ok::<(), switchback::config::duration::DurationError>(())
//! ```

/// A duration that is not `N`, `Ns`, `Nm`, `Nh` or `Nd` with `N` a positive whole number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (3600, 90s, 30m, 1h, 2d; more than 0)")]
pub struct DurationError(pub String);

/// Seconds in `3600`, `90s`, `30m`, `1h` or `2d`; zero is refused.
pub fn parse_duration(s: &str) -> Result<u64, DurationError> {
    let bad = || DurationError(s.to_owned());
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (t.get(..i).ok_or_else(bad)?, c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(secs),
        _ => Err(bad()),
    }
}

/// `secs` in the largest unit that divides it: `2d`, `1h`, `90s`.
pub fn format_duration(secs: u64) -> String {
    for (unit, scale) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, secs) in [("3600", 3600), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172_800), ("1H", 3600)] {
            assert_eq!(parse_duration(s), Ok(secs), "{s}");
        }
        for s in ["", "h", "0", "0h", "-1h", "1.5h", "1w", "1 h", "h1", "99999999999999999999d", "+5"] {
            assert!(parse_duration(s).is_err(), "{s:?}");
        }
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(172_800), "2d");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(1800), "30m");
        assert_eq!(format_duration(0), "0s");
    }
}
