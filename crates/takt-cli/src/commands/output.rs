//! Human and JSON output helpers.

use anyhow::Result;
use serde::Serialize;
use takt_protocol::{Issue, TaskState, TaskSummary};

use crate::clock::rfc3339;

/// `println!` for command output: a closed stdout (`takt task list | head`) means the reader
/// is done, so the process exits quietly instead of panicking.
macro_rules! outln {
    () => {
        $crate::commands::output::write_out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::commands::output::write_out(format_args!($($arg)*))
    };
}
pub(crate) use outln;

pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{args}") {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to stdout: {error}");
    }
}

/// Bytes as they are (a gate's captured output), with control sequences made harmless.
pub fn raw(bytes: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(bytes);
    let clean: String = text
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect();
    outln!("{}", clean.trim_end());
    Ok(())
}

pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A tracker issue the daemon has not picked up yet, shown in the task's shape: `queued`, or
/// `cancelled` when it was closed before it started.
pub fn unseen(issue: Issue, closed: bool) -> TaskSummary {
    TaskSummary {
        id: issue.id.clone(),
        identifier: issue.identifier.clone(),
        title: issue.title.clone(),
        state: if closed {
            TaskState::Cancelled
        } else {
            TaskState::Queued
        },
        tracker_state: issue.state.clone(),
        priority: issue.priority,
        labels: issue.labels.clone(),
        attempt: 0,
        retry_kind: None,
        retry_due_at_ms: None,
        last_error: None,
        workspace_path: None,
        branch: None,
        commit: None,
        question: None,
        feedback: None,
        approvals: Vec::new(),
        approvals_required: 1,
        verify_rounds: 0,
        verify_outcome: None,
        risk: None,
        pull_request: None,
        run_id: None,
        run_phase: None,
        pid: None,
        attempts: Vec::new(),
        failure: None,
        metered_usage: Default::default(),
        issue,
        updated_at_ms: 0,
    }
}

/// Cuts text to `width` characters for a table column.
pub fn clip(text: &str, width: usize) -> String {
    let mut chars = text.chars();
    let clipped: String = chars.by_ref().take(width).collect();
    if chars.next().is_some() {
        let mut shorter: String = clipped.chars().take(width.saturating_sub(1)).collect();
        shorter.push('…');
        shorter
    } else {
        clipped
    }
}

/// Removes ANSI escapes and control bytes an agent may have printed.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            }
            continue;
        }
        if c.is_control() && c != '\t' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

pub fn when(ms: i64) -> String {
    rfc3339(ms)
}

pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        outln!("{}", out.trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_and_control_bytes_are_stripped() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m\u{7}bell\r"), "red bell ");
    }

    #[test]
    fn clip_marks_cut_text() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
