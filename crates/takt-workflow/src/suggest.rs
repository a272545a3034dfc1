//! "Did you mean ...?" suggestions by edit distance.

/// The candidate closest to `input`, if it is close enough to be a plausible typo: an
/// optimal-string-alignment distance of at most a third of the longer word (at least 1), or one
/// word being a prefix of the other. Comparison ignores ASCII case, `-` versus `_`, and
/// surrounding whitespace.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let wanted = fold(input);
    if wanted.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    for &candidate in candidates {
        let folded = fold(candidate);
        let distance = distance(&wanted, &folded);
        let longest = wanted.chars().count().max(folded.chars().count());
        let close = distance <= (longest / 3).max(1);
        let prefix =
            wanted.len() >= 3 && (folded.starts_with(&wanted) || wanted.starts_with(&folded));
        if (close || prefix) && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn fold(s: &str) -> String {
    s.trim().to_ascii_lowercase().replace('-', "_")
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in table.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in table.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1)
                .min(table[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = best;
        }
    }
    table[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("auto_merg", "auto_merge"), 1);
        assert_eq!(distance("ca", "ac"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_close_keys() {
        let keys = ["forge", "auto_merge", "branch_prefix"];
        assert_eq!(did_you_mean("auto_merg", &keys), Some("auto_merge"));
        assert_eq!(did_you_mean("Auto-Merge", &keys), Some("auto_merge"));
        assert_eq!(did_you_mean("frge", &keys), Some("forge"));
        assert_eq!(did_you_mean("branch", &keys), Some("branch_prefix"));
        assert_eq!(did_you_mean("xyz", &keys), None);
        assert_eq!(did_you_mean("", &keys), None);
    }

    #[test]
    fn prefers_the_closest() {
        let keys = ["max_turns", "max_attempts", "max_concurrent_agents"];
        assert_eq!(did_you_mean("max_turn", &keys), Some("max_turns"));
        assert_eq!(did_you_mean("max_atempts", &keys), Some("max_attempts"));
    }
}
