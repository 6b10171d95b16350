//! "Did you mean …?": the known name closest to a misspelled one, by edit distance.

/// The candidate closest to `word` by [`levenshtein`] distance, if it is close enough to be what was
/// meant: at most a third of `word`'s length (and at least one edit) away. Ties go to the first.
pub(super) fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The number of one-character insertions, deletions and substitutions that turn `a` into `b`.
pub(super) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // `row[j]`: distance between the prefix of `a` seen so far and the first `j` characters of `b`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = i;
        let mut left = i + 1;
        let mut next = Vec::with_capacity(row.len());
        next.push(left);
        for (cb, above) in b.iter().zip(row.iter().skip(1)) {
            let substitute = diagonal + usize::from(ca != *cb);
            left = substitute.min(above + 1).min(left + 1);
            next.push(left);
            diagonal = *above;
        }
        row = next;
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("listenning-port", "listening-port"), 1);
        assert_eq!(levenshtein("flaw", "lawn"), 2);
        assert_eq!(levenshtein("réalm", "realm"), 1);
    }

    #[test]
    fn closest_is_close_enough_or_nothing() {
        let keys = ["listening-port", "listening-ip", "realm", "relay-ip"];
        assert_eq!(closest("listenning-port", keys), Some("listening-port"));
        assert_eq!(closest("listen-port", keys), Some("listening-port"));
        assert_eq!(closest("relm", keys), Some("realm"));
        assert_eq!(closest("relay-ips", keys), Some("relay-ip"));
        assert_eq!(closest("completely-different", keys), None);
        assert_eq!(closest("xy", keys), None);
    }
}
