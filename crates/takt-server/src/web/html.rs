//! Escaping and small formatting helpers. Every piece of text that reaches a page goes through
//! [`text`] (or [`attr`]): titles, questions, agent output and journal payloads are untrusted,
//! and agent output may carry terminal escape sequences that must not reach the browser.

use std::fmt::Write as _;

use takt_protocol::Millis;

/// `value` with terminal escape sequences and control characters removed (newlines and tabs
/// kept), so agent output reads as plain text.
pub fn sanitize(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape_sequence(&mut chars),
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() => {}
            // Bidirectional overrides can make text read differently from what it is.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips an ANSI sequence after its ESC: CSI (`ESC [ ... final`), OSC (`ESC ] ... BEL|ST`), or
/// a two-character escape.
fn skip_escape_sequence(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => {
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
        Some(']') => {
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                    chars.next();
                    break;
                }
            }
        }
        _ => {}
    }
}

/// `value` sanitized and escaped for use between tags.
pub fn text(value: &str) -> String {
    let clean = sanitize(value);
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `value` escaped for a double-quoted attribute (the same escaping: quotes are covered).
pub fn attr(value: &str) -> String {
    text(value)
}

/// `value` percent-encoded for one path segment of a URL.
pub fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The link to a task's page.
pub fn task_href(identifier: &str) -> String {
    format!("/tasks/{}", path_segment(identifier))
}

/// `at` as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn timestamp(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| at.to_string())
}

/// Micro-dollars as `$1.23` (four places below a cent, so small runs do not read as free).
pub fn dollars(micros: u64) -> String {
    let dollars = micros as f64 / 1_000_000.0;
    if micros != 0 && dollars < 0.01 {
        format!("${dollars:.4}")
    } else {
        format!("${dollars:.2}")
    }
}

/// A state name for people: `awaiting_review` reads `awaiting review`.
pub fn human(name: &str) -> String {
    name.replace('_', " ")
}

/// At most `max` characters of `value`, with an ellipsis when cut.
pub fn truncate(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_owned();
    }
    let mut cut: String = value.chars().take(max).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            text(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn terminal_sequences_and_control_bytes_are_removed() {
        assert_eq!(
            sanitize("\u{1b}[31mred\u{1b}[0m\r\n\u{7}ok\u{1b}]0;title\u{7}\tend\u{0}"),
            "red\nok\tend"
        );
        assert_eq!(sanitize("a\u{202e}b"), "ab");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("TAKT-1"), "TAKT-1");
        assert_eq!(path_segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn small_spend_is_not_shown_as_zero() {
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(1500), "$0.0015");
        assert_eq!(dollars(2_500_000), "$2.50");
    }
}
