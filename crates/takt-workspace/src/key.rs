//! Workspace keys (R-099, R-107) and the task branch names derived from them.
//!
//! A key is the directory name of an issue's workspace. Every character outside
//! `[A-Za-z0-9._-]` becomes `_`; when that changed anything, `--` and the first 16 hex digits of
//! sha256 of the *original* identifier are appended, so distinct identifiers that sanitize to
//! the same text still get distinct keys. takt hardens the spec's rule: an identifier is also
//! treated as changed when it is empty, `.` or `..`, longer than [`MAX_PLAIN_KEY_LEN`] (it is
//! cut), or already ends like a hashed key (`--` + 16 hex digits). The last rule makes the
//! mapping injective: a key with a hash suffix can only come from hashing.

use takt_core::journal::sha256_hex;

/// The longest sanitized identifier kept whole; longer ones are cut and hashed so that a key
/// always fits in a file name (255 bytes) with room to spare.
pub const MAX_PLAIN_KEY_LEN: usize = 100;

/// Hex digits of sha256 appended to a changed identifier (64 bits).
const HASH_HEX_LEN: usize = 16;

/// The workspace key of a tracker identifier (R-099).
///
/// ```
/// use takt_workspace::workspace_key;
/// assert_eq!(workspace_key("ABC-123"), "ABC-123");
/// assert_eq!(workspace_key("a/b"), format!("a_b--{}", &takt_core::journal::sha256_hex(b"a/b")[..16]));
/// ```
pub fn workspace_key(identifier: &str) -> String {
    let mut sanitized: String = identifier
        .chars()
        .map(|c| if is_key_char(c) { c } else { '_' })
        .collect();
    let mut changed = sanitized != identifier;
    if sanitized.is_empty() || sanitized == "." || sanitized == ".." {
        changed = true;
    }
    if sanitized.len() > MAX_PLAIN_KEY_LEN {
        // Only ASCII remains after sanitizing, so any byte index is a character boundary.
        sanitized.truncate(MAX_PLAIN_KEY_LEN);
        changed = true;
    }
    if looks_hashed(&sanitized) {
        changed = true;
    }
    if changed {
        let hash = sha256_hex(identifier.as_bytes());
        format!("{sanitized}--{}", &hash[..HASH_HEX_LEN])
    } else {
        sanitized
    }
}

/// Whether `c` may appear in a key unchanged.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Whether `text` is a syntactically valid key: non-empty, only key characters, not `.`/`..`.
pub fn is_valid_key(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text.len() <= MAX_PLAIN_KEY_LEN + 2 + HASH_HEX_LEN
        && text.chars().all(is_key_char)
}

/// Whether `text` ends with `--` followed by 16 lowercase hex digits.
fn looks_hashed(text: &str) -> bool {
    let bytes = text.as_bytes();
    let n = bytes.len();
    n >= HASH_HEX_LEN + 2
        && &bytes[n - HASH_HEX_LEN - 2..n - HASH_HEX_LEN] == b"--"
        && bytes[n - HASH_HEX_LEN..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// The task branch for a key: `<prefix><component>`, where the component is the key when it is
/// a valid ref component and otherwise the key with offending dots replaced and a hash of the
/// key appended (keys may contain `..`, a leading `.` or a trailing `.lock`, which git refuses).
pub fn branch_name(prefix: &str, key: &str) -> String {
    format!("{prefix}{}", ref_component(key))
}

fn ref_component(key: &str) -> String {
    let valid = !key.is_empty()
        && !key.starts_with('.')
        && !key.starts_with('-')
        && !key.ends_with('.')
        && !key.ends_with(".lock")
        && !key.contains("..");
    if valid {
        return key.to_owned();
    }
    let mut component = key.replace('.', "_");
    if component.starts_with('-') {
        component.insert(0, '_');
    }
    let hash = sha256_hex(key.as_bytes());
    component.push_str("--");
    component.push_str(&hash[..HASH_HEX_LEN]);
    component
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn nasty_identifiers() -> Vec<String> {
        let mut ids: Vec<String> = [
            "",
            ".",
            "..",
            "...",
            "../x",
            "../../etc/passwd",
            "a/b",
            "a\\b",
            "/abs",
            "x/..",
            "$(rm -rf /)",
            "`reboot`",
            "a;b",
            "a|b",
            "a&&b",
            "a b",
            "a\tb",
            "a\nb",
            "a\0b",
            "ünïcödé",
            "日本語",
            "emoji-🚀",
            "-rf",
            "--help",
            "~",
            "~root",
            "*",
            "?",
            "[a]",
            "a:b",
            "CON",
            "a.lock",
            ".git",
            ".hidden",
            "ABC-123",
            "abc-123",
            "a_b",
            "a/b ",
            "x--0123456789abcdef",
            "x--0123456789ABCDEF",
            "%2e%2e",
            "a\u{202e}b",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        ids.push("x".repeat(300));
        ids.push("y".repeat(MAX_PLAIN_KEY_LEN));
        ids.push("y".repeat(MAX_PLAIN_KEY_LEN + 1));
        ids.push("é".repeat(200));
        // Pseudo-random identifiers over a nasty alphabet (deterministic, no rand dependency).
        let alphabet: Vec<char> = "aZ09._-/\\ $`;|&*?~\n\u{0}é日🚀".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..500 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = usize::try_from(seed % 12).unwrap();
            let id: String = (0..len)
                .map(|i| {
                    let pick = (seed >> (i * 5)) as usize % alphabet.len();
                    alphabet[pick]
                })
                .collect();
            ids.push(id);
        }
        ids
    }

    #[test]
    fn r099_plain_identifiers_keep_their_key() {
        for id in ["ABC-123", "abc.def_1", "x", "a-b.c", "MT-649"] {
            assert_eq!(workspace_key(id), id);
        }
    }

    #[test]
    fn r099_changed_identifiers_get_the_hash_of_the_original() {
        let hash = &sha256_hex("a/b".as_bytes())[..16];
        assert_eq!(workspace_key("a/b"), format!("a_b--{hash}"));
        assert_eq!(workspace_key("$(rm -rf)").len(), "__rm_-rf_".len() + 18);
    }

    #[test]
    fn r099_r107_every_key_is_a_safe_file_name() {
        for id in nasty_identifiers() {
            let key = workspace_key(&id);
            assert!(is_valid_key(&key), "{id:?} -> {key:?}");
            assert!(
                !key.contains('/') && !key.contains('\0'),
                "{id:?} -> {key:?}"
            );
            assert!(key.len() <= 200, "{id:?} -> {} bytes", key.len());
            assert_eq!(workspace_key(&id), key, "deterministic");
        }
    }

    #[test]
    fn r099_distinct_identifiers_get_distinct_keys() {
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut ids = nasty_identifiers();
        // Identifiers that sanitize to the same text.
        ids.extend(
            ["a/b", "a b", "a:b", "a_b", "a?b", "a\\b"]
                .iter()
                .map(|s| (*s).to_owned()),
        );
        // An identifier that spells another one's key literally.
        ids.push(workspace_key("a/b"));
        ids.sort();
        ids.dedup();
        for id in ids {
            let key = workspace_key(&id);
            if let Some(previous) = seen.insert(key.clone(), id.clone()) {
                panic!("{previous:?} and {id:?} share key {key:?}");
            }
        }
    }

    #[test]
    fn r099_dot_names_and_empty_are_never_keys() {
        for id in ["", ".", ".."] {
            let key = workspace_key(id);
            assert!(key.len() > 16, "{id:?} -> {key:?}");
            assert_ne!(key, id);
        }
    }

    #[test]
    fn long_identifiers_are_cut_and_hashed() {
        let long = "y".repeat(MAX_PLAIN_KEY_LEN + 1);
        let key = workspace_key(&long);
        assert!(key.starts_with(&"y".repeat(MAX_PLAIN_KEY_LEN)));
        assert_eq!(key.len(), MAX_PLAIN_KEY_LEN + 18);
        assert_eq!(
            workspace_key(&"y".repeat(MAX_PLAIN_KEY_LEN)),
            "y".repeat(MAX_PLAIN_KEY_LEN)
        );
    }

    #[test]
    fn branch_names_are_valid_ref_components() {
        assert_eq!(branch_name("takt/", "ABC-1"), "takt/ABC-1");
        for id in nasty_identifiers() {
            let branch = branch_name("takt/", &workspace_key(&id));
            let component = branch.trim_start_matches("takt/");
            assert!(!component.contains(".."), "{branch}");
            assert!(
                !component.starts_with('.') && !component.starts_with('-'),
                "{branch}"
            );
            assert!(
                !component.ends_with('.') && !component.ends_with(".lock"),
                "{branch}"
            );
        }
        assert_ne!(branch_name("takt/", "a..b"), branch_name("takt/", "a__b"));
    }
}
