//! Splitting WORKFLOW.md into YAML front matter and the prompt body (R-003, R-005).
//!
//! - The first line is `---` (trailing spaces allowed): the following lines up to the next `---`
//!   line are YAML, the rest is the prompt body.
//! - No leading `---`: the whole file is the body and there is no front matter.
//! - No closing `---`: everything after the opener is YAML and the body is empty.
//!
//! Lines end in `\n`, `\r\n` or `\r`. A UTF-8 byte-order mark before the first line is ignored.

use crate::error::Position;

/// The two halves of a workflow file, with where each starts in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Split<'a> {
    /// The YAML text, `None` when the file has no front matter.
    pub yaml: Option<&'a str>,
    /// The file line of the first YAML line.
    pub yaml_line: u32,
    /// The body, untrimmed.
    pub body: &'a str,
    /// The file line the untrimmed body starts on.
    pub body_line: u32,
}

/// One line: its text without the terminator, and the byte offset where the next line starts.
struct Line<'a> {
    text: &'a str,
    next: usize,
}

fn lines(text: &str, from: usize) -> impl Iterator<Item = (usize, Line<'_>)> + '_ {
    let mut at = from;
    std::iter::from_fn(move || {
        if at >= text.len() {
            return None;
        }
        let start = at;
        let rest = &text[start..];
        let (len, terminator) = match rest.find(['\n', '\r']) {
            Some(i) if rest[i..].starts_with("\r\n") => (i, 2),
            Some(i) => (i, 1),
            None => (rest.len(), 0),
        };
        at = start + len + terminator;
        Some((
            start,
            Line {
                text: &rest[..len],
                next: at,
            },
        ))
    })
}

fn is_delimiter(line: &str) -> bool {
    line.trim_end_matches([' ', '\t']) == "---"
}

/// Splits `text` into front matter and body.
pub(crate) fn split(text: &str) -> Split<'_> {
    let start = if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let mut all = lines(text, start);
    let opener = match all.next() {
        Some((_, line)) if is_delimiter(line.text) => line,
        _ => {
            return Split {
                yaml: None,
                yaml_line: 1,
                body: &text[start..],
                body_line: 1,
            };
        }
    };
    let yaml_start = opener.next;
    for (number, (line_start, line)) in (2u32..).zip(all) {
        if is_delimiter(line.text) {
            return Split {
                yaml: Some(&text[yaml_start..line_start]),
                yaml_line: 2,
                body: &text[line.next..],
                body_line: number.saturating_add(1),
            };
        }
    }
    Split {
        yaml: Some(&text[yaml_start..]),
        yaml_line: 2,
        body: "",
        body_line: line_count(text).saturating_add(1),
    }
}

fn line_count(text: &str) -> u32 {
    u32::try_from(lines(text, 0).count()).unwrap_or(u32::MAX)
}

/// The trimmed body (R-005) and the file position where it starts.
pub(crate) fn trimmed_body(body: &str, body_line: u32) -> (&str, Position) {
    let trimmed_start = body.trim_start();
    let skipped = &body[..body.len() - trimmed_start.len()];
    let mut line = body_line;
    let mut column = 1u32;
    let mut chars = skipped.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                line = line.saturating_add(1);
                column = 1;
            }
            _ => column = column.saturating_add(1),
        }
    }
    (trimmed_start.trim_end(), Position::new(line, column))
}

/// The file position of byte `offset` in `text` (1-based line and character column).
pub(crate) fn position_of(text: &str, offset: usize) -> Position {
    let mut line = 1u32;
    let mut column = 1u32;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if i >= offset {
            break;
        }
        match c {
            '\r' if chars.peek().is_some_and(|&(_, next)| next == '\n') => {}
            '\n' | '\r' => {
                line = line.saturating_add(1);
                column = 1;
            }
            _ => column = column.saturating_add(1),
        }
    }
    Position::new(line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_front_matter_and_body() {
        let s = split("---\na: 1\n---\nHello\n");
        assert_eq!(s.yaml, Some("a: 1\n"));
        assert_eq!(s.yaml_line, 2);
        assert_eq!(s.body, "Hello\n");
        assert_eq!(s.body_line, 4);
    }

    #[test]
    fn no_opener_means_all_body() {
        let s = split("Hello\n---\nx: 1\n");
        assert_eq!(s.yaml, None);
        assert_eq!(s.body, "Hello\n---\nx: 1\n");
        assert_eq!(s.body_line, 1);
    }

    #[test]
    fn no_closer_means_all_yaml() {
        let s = split("---\na: 1\nb: 2\n");
        assert_eq!(s.yaml, Some("a: 1\nb: 2\n"));
        assert_eq!(s.body, "");
    }

    #[test]
    fn any_newline_style() {
        let crlf = split("---\r\na: 1\r\n---\r\nHi\r\n");
        assert_eq!(crlf.yaml, Some("a: 1\r\n"));
        assert_eq!(crlf.body, "Hi\r\n");
        assert_eq!(crlf.body_line, 4);
        let cr = split("---\ra: 1\r---\rHi");
        assert_eq!(cr.yaml, Some("a: 1\r"));
        assert_eq!(cr.body, "Hi");
    }

    #[test]
    fn opener_must_be_the_first_line() {
        assert_eq!(split("\n---\na: 1\n---\n").yaml, None);
        assert_eq!(split(" ---\na: 1\n---\n").yaml, None);
        assert_eq!(split("----\na: 1\n---\n").yaml, None);
        assert_eq!(split("--- \na: 1\n---\nx").yaml, Some("a: 1\n"));
    }

    #[test]
    fn bom_is_ignored() {
        let s = split("\u{feff}---\na: 1\n---\nx");
        assert_eq!(s.yaml, Some("a: 1\n"));
    }

    #[test]
    fn empty_front_matter() {
        let s = split("---\n---\nbody");
        assert_eq!(s.yaml, Some(""));
        assert_eq!(s.body, "body");
        assert_eq!(s.body_line, 3);
    }

    #[test]
    fn trimmed_body_position() {
        let (body, pos) = trimmed_body("\n\n  Hello\n\n", 4);
        assert_eq!(body, "Hello");
        assert_eq!(pos, Position::new(6, 3));
        let (body, pos) = trimmed_body("\r\nHi", 1);
        assert_eq!(body, "Hi");
        assert_eq!(pos, Position::new(2, 1));
    }

    #[test]
    fn positions_of_offsets() {
        let text = "ab\ncd\r\nef";
        assert_eq!(position_of(text, 0), Position::new(1, 1));
        assert_eq!(position_of(text, 4), Position::new(2, 2));
        assert_eq!(position_of(text, 7), Position::new(3, 1));
    }
}
