//! A small Server-Sent Events parser: bytes in (split anywhere, across network reads), events
//! out. Handles `event:` and `data:` fields, multi-line data, comments, and `\n`, `\r\n` or `\r`
//! line endings. `id:` and `retry:` are ignored (model streams are never resumed).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, when the stream names its events (Anthropic does, OpenAI does not).
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// Incremental parser. Feed it chunks as they arrive; it keeps the unfinished line.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line not yet terminated.
    pending: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Vec<String>,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Bytes buffered in an unfinished line (to bound memory against a server that never sends
    /// a newline).
    pub fn pending_len(&self) -> usize {
        self.pending.len() + self.data.iter().map(String::len).sum::<usize>()
    }

    /// Consumes `chunk` and returns the events completed by it.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if rest.first() == Some(&b'\n') {
                rest = &rest[1..];
            }
        }
        while let Some(at) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.pending.extend_from_slice(&rest[..at]);
            let line = std::mem::take(&mut self.pending);
            if rest[at] == b'\r' {
                if rest.get(at + 1) == Some(&b'\n') {
                    rest = &rest[at + 2..];
                } else {
                    if at + 1 == rest.len() {
                        self.after_cr = true;
                    }
                    rest = &rest[at + 1..];
                }
            } else {
                rest = &rest[at + 1..];
            }
            if let Some(event) = self.line(&String::from_utf8_lossy(&line)) {
                out.push(event);
            }
        }
        self.pending.extend_from_slice(rest);
        out
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if !self.has_data {
                self.event = None;
                return None;
            }
            self.has_data = false;
            return Some(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data).join("\n"),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                self.data.push(value.to_owned());
                self.has_data = true;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn all_at_once(text: &str) -> Vec<SseEvent> {
        SseParser::new().feed(text.as_bytes())
    }

    fn byte_by_byte(text: &str) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        text.as_bytes()
            .iter()
            .flat_map(|b| parser.feed(std::slice::from_ref(b)))
            .collect()
    }

    #[test]
    fn events_names_multiline_data_and_comments() {
        let text = ": keep-alive\nevent: message_start\ndata: {\"a\":1}\n\ndata: line one\ndata: line two\n\ndata: [DONE]\n\n";
        let want = vec![
            SseEvent {
                event: Some("message_start".into()),
                data: "{\"a\":1}".into(),
            },
            SseEvent {
                event: None,
                data: "line one\nline two".into(),
            },
            SseEvent {
                event: None,
                data: "[DONE]".into(),
            },
        ];
        assert_eq!(all_at_once(text), want);
        assert_eq!(byte_by_byte(text), want);
    }

    #[test]
    fn crlf_and_cr_line_endings_split_anywhere() {
        let text = "event: x\r\ndata:no-space\r\n\r\ndata: y\r\rdata: z\n\n";
        let want = vec![
            SseEvent {
                event: Some("x".into()),
                data: "no-space".into(),
            },
            SseEvent {
                event: None,
                data: "y".into(),
            },
            SseEvent {
                event: None,
                data: "z".into(),
            },
        ];
        assert_eq!(all_at_once(text), want);
        assert_eq!(byte_by_byte(text), want);
    }

    #[test]
    fn an_unfinished_event_is_kept_until_its_blank_line() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: {\"par").is_empty());
        assert!(parser.feed(b"tial\":true}\n").is_empty());
        assert!(parser.pending_len() > 0);
        let events = parser.feed(b"\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "{\"partial\":true}");
        // An event name without data is dropped at the blank line.
        assert!(parser.feed(b"event: ping\n\n").is_empty());
        assert_eq!(parser.feed(b"data: a\n\n")[0].event, None);
    }
}
