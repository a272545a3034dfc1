//! Reading a child's output as lines without unbounded buffering: a line longer than the cap is
//! cut, the rest of it skipped, and reading goes on (so the child never dies of a closed pipe).

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line of output; `cut` says whether bytes past the cap were dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub cut: bool,
}

/// Reads the next line (without its `\n`), keeping at most `max` bytes of it. `None` at end of
/// input.
pub async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut saw_any = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            if !saw_any {
                return Ok(None);
            }
            break;
        }
        saw_any = true;
        let (body, consumed, done) = match chunk.iter().position(|byte| *byte == b'\n') {
            Some(at) => (&chunk[..at], at + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = max.saturating_sub(kept.len());
        if body.len() > room {
            cut = true;
        }
        kept.extend_from_slice(&body[..body.len().min(room)]);
        reader.consume(consumed);
        if done {
            break;
        }
    }
    if kept.last() == Some(&b'\r') {
        kept.pop();
    }
    Ok(Some(Line {
        text: String::from_utf8_lossy(&kept).into_owned(),
        cut,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_cut_and_reading_continues() {
        let input = format!("short\r\n{}\nlast", "x".repeat(100));
        let mut reader = tokio::io::BufReader::with_capacity(7, input.as_bytes());
        let mut got = Vec::new();
        while let Some(line) = next_line(&mut reader, 10).await.expect("read") {
            got.push((line.text, line.cut));
        }
        assert_eq!(
            got,
            [
                ("short".to_string(), false),
                ("x".repeat(10), true),
                ("last".to_string(), false)
            ]
        );
    }
}
