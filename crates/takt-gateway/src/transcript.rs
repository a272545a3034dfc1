//! Transcripts: each call's request and response bodies, kept so a run can be replayed and
//! audited, with every secret the gateway knows replaced by [`REDACTED`].
//!
//! An agent can echo anything into a conversation (its environment, a file it read), so the
//! bodies are scrubbed of the provider key, the run's token and the secrets the daemon registers
//! (tracker and forge tokens) before they leave the gateway; headers are never kept at all. Each
//! body is capped ([`TranscriptPolicy::max_bytes`]) and marked truncated past it; a secret cut in
//! half by the cap is scrubbed too.

/// What replaces a secret.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Secrets shorter than this are not redacted: they would match ordinary text everywhere, and
/// no real credential is that short.
pub const MIN_SECRET_LEN: usize = 8;

/// Whether and how much of each call's bodies are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscriptPolicy {
    pub enabled: bool,
    /// The cap on each of the request and the response. Default: 8 MiB.
    pub max_bytes: usize,
}

impl Default for TranscriptPolicy {
    fn default() -> TranscriptPolicy {
        TranscriptPolicy {
            enabled: true,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

/// One call's bodies as the agent sent and received them (the response is the streamed bytes
/// concatenated), secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub request: Vec<u8>,
    pub response: Vec<u8>,
    /// The request was longer than the cap and was cut.
    pub request_truncated: bool,
    /// The response was longer than the cap and was cut.
    pub response_truncated: bool,
}

/// A body being captured up to a cap.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    pub bytes: Vec<u8>,
    pub truncated: bool,
    cap: usize,
}

impl Capture {
    pub(crate) fn new(cap: usize) -> Capture {
        Capture {
            bytes: Vec::new(),
            truncated: false,
            cap,
        }
    }

    pub(crate) fn of(bytes: &[u8], cap: usize) -> Capture {
        let mut capture = Capture::new(cap);
        capture.push(bytes);
        capture
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// The strings to scrub, each also in its JSON-escaped form when that differs (a secret echoed
/// inside a JSON string is escaped).
pub(crate) fn needles<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for secret in secrets {
        if secret.len() < MIN_SECRET_LEN {
            continue;
        }
        let mut forms = vec![secret.as_bytes().to_vec()];
        if let Ok(quoted) = serde_json::to_string(secret) {
            let escaped = quoted.as_bytes()[1..quoted.len() - 1].to_vec();
            forms.push(escaped);
        }
        for form in forms {
            if !out.contains(&form) {
                out.push(form);
            }
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    out.sort_by_key(|needle| std::cmp::Reverse(needle.len()));
    out
}

/// `body` with every occurrence of each needle replaced. When `truncated`, a tail that is the
/// start of a needle (a secret cut by the cap) is replaced as well.
pub(crate) fn redact(body: &[u8], needles: &[Vec<u8>], truncated: bool) -> Vec<u8> {
    let mut out = body.to_vec();
    for needle in needles {
        if find(&out, needle, 0).is_some() {
            out = replace_all(&out, needle);
        }
    }
    if truncated {
        for needle in needles {
            // The longest proper prefix of the needle that the body ends with.
            let cut = (MIN_SECRET_LEN / 2..needle.len())
                .rev()
                .find(|&len| out.ends_with(&needle[..len]));
            if let Some(len) = cut {
                out.truncate(out.len() - len);
                out.extend_from_slice(REDACTED);
            }
        }
    }
    out
}

fn replace_all(body: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    while let Some(found) = find(body, needle, at) {
        out.extend_from_slice(&body[at..found]);
        out.extend_from_slice(REDACTED);
        at = found + needle.len();
    }
    out.extend_from_slice(&body[at..]);
    out
}

/// The first occurrence of `needle` in `body` at or after `from`: a scan for the first byte,
/// then a comparison, which is linear for text that does not repeat the secret's start.
fn find(body: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let last_start = body.len().checked_sub(needle.len())?;
    let mut at = from;
    while at <= last_start {
        let offset = body[at..=last_start].iter().position(|&b| b == first)?;
        let start = at + offset;
        if &body[start..start + needle.len()] == needle {
            return Some(start);
        }
        at = start + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-real-provider-key-0123456789";

    #[test]
    fn every_occurrence_is_replaced_and_the_rest_kept() {
        let needles = needles([KEY, "takt-run-abcdef0123"]);
        let body = format!(r#"{{"a":"{KEY}","b":"x takt-run-abcdef0123 y {KEY}"}}"#);
        let out = String::from_utf8(redact(body.as_bytes(), &needles, false)).expect("utf8");
        assert_eq!(out, r#"{"a":"[REDACTED]","b":"x [REDACTED] y [REDACTED]"}"#);
    }

    #[test]
    fn json_escaped_secrets_are_replaced_too() {
        let secret = "pa\"ss/wo\\rd-42";
        let needles = needles([secret]);
        let body = serde_json::json!({"echo": secret}).to_string();
        let out = String::from_utf8(redact(body.as_bytes(), &needles, false)).expect("utf8");
        assert_eq!(out, r#"{"echo":"[REDACTED]"}"#);
    }

    #[test]
    fn short_secrets_are_ignored_and_overlaps_are_replaced_whole() {
        assert!(needles(["abc", ""]).is_empty());
        let needles = needles(["secret-token", "secret-token-long-version"]);
        let out = redact(b"a secret-token-long-version b", &needles, false);
        assert_eq!(out, b"a [REDACTED] b");
    }

    #[test]
    fn a_secret_cut_by_the_cap_is_scrubbed() {
        let needles = needles([KEY]);
        let mut capture = Capture::new(20);
        capture.push(b"hello ");
        capture.push(KEY.as_bytes());
        assert!(capture.truncated);
        assert_eq!(capture.bytes.len(), 20);
        let out = redact(&capture.bytes, &needles, capture.truncated);
        assert_eq!(out, b"hello [REDACTED]");
        // Untruncated bodies that merely end like a secret's start are left alone.
        assert_eq!(
            redact(b"hello sk-real-pr", &needles, false),
            b"hello sk-real-pr"
        );
    }

    #[test]
    fn find_handles_edges() {
        assert_eq!(find(b"abcabc", b"cab", 0), Some(2));
        assert_eq!(find(b"abcabc", b"abc", 1), Some(3));
        assert_eq!(find(b"ab", b"abc", 0), None);
        assert_eq!(find(b"aaab", b"aab", 0), Some(1));
    }
}
