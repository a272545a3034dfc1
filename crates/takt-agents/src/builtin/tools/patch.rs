//! `apply_patch`: a subset of Codex's `*** Begin Patch` format.
//!
//! ```text
//! *** Begin Patch
//! *** Add File: path/new.txt
//! +every line of the new file, prefixed with +
//! *** Delete File: path/old.txt
//! *** Update File: path/file.rs
//! *** Move to: path/renamed.rs        (optional)
//! @@ fn anchor()                      (optional text: a line to find first)
//!  context line (one leading space)
//! -removed line
//! +added line
//! *** End of File                     (optional: the hunk matches at the end of the file)
//! *** End Patch
//! ```
//!
//! Hunks of one file apply in order; each one's old lines (context and `-` lines) are searched
//! from where the previous hunk ended, first exactly, then ignoring trailing whitespace, then
//! ignoring surrounding whitespace. A hunk with no old lines is inserted after its `@@` anchor,
//! or at the end of the file. A line with no prefix inside a hunk counts as an empty context
//! line. Every operation is checked before anything is written, so a patch that does not apply
//! changes nothing. Not supported: the unified-diff `@@ -a,b +c,d @@` line numbers (ignored if
//! present), binary files, and creating symlinks.

use super::ToolError;

/// One file operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Add {
        path: String,
        content: String,
    },
    Delete {
        path: String,
    },
    Update {
        path: String,
        move_to: Option<String>,
        hunks: Vec<Hunk>,
    },
}

/// One `@@` section of an update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hunk {
    /// The text after `@@`, a line to find before matching.
    pub anchor: Option<String>,
    pub old: Vec<String>,
    pub new: Vec<String>,
    /// `*** End of File` followed the hunk.
    pub at_end: bool,
}

fn bad(message: impl Into<String>) -> ToolError {
    ToolError::Patch(message.into())
}

const BEGIN: &str = "*** Begin Patch";
const END: &str = "*** End Patch";
const ADD: &str = "*** Add File: ";
const DELETE: &str = "*** Delete File: ";
const UPDATE: &str = "*** Update File: ";
const MOVE: &str = "*** Move to: ";
const END_OF_FILE: &str = "*** End of File";

/// Parses a patch into operations.
pub fn parse(patch: &str) -> Result<Vec<Operation>, ToolError> {
    let lines: Vec<&str> = patch
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut start = 0;
    while start < lines.len() && lines[start].trim().is_empty() {
        start += 1;
    }
    if lines.get(start).map(|l| l.trim()) != Some(BEGIN) {
        return Err(bad(format!("a patch must start with `{BEGIN}`")));
    }
    let mut i = start + 1;
    let mut operations = Vec::new();
    let mut ended = false;
    while i < lines.len() {
        let line = lines[i];
        if line.trim() == END {
            ended = true;
            break;
        }
        if let Some(path) = line.strip_prefix(ADD) {
            i += 1;
            let mut content = String::new();
            while i < lines.len() && !lines[i].starts_with("*** ") {
                match lines[i].strip_prefix('+') {
                    Some(text) => {
                        content.push_str(text);
                        content.push('\n');
                    }
                    None if lines[i].is_empty() && i + 1 == lines.len() => {}
                    None => {
                        return Err(bad(format!(
                            "line {}: every line of an added file starts with `+` (got {:?})",
                            i + 1,
                            lines[i]
                        )));
                    }
                }
                i += 1;
            }
            operations.push(Operation::Add {
                path: path.trim().to_owned(),
                content,
            });
        } else if let Some(path) = line.strip_prefix(DELETE) {
            operations.push(Operation::Delete {
                path: path.trim().to_owned(),
            });
            i += 1;
        } else if let Some(path) = line.strip_prefix(UPDATE) {
            i += 1;
            let mut move_to = None;
            if let Some(to) = lines.get(i).and_then(|l| l.strip_prefix(MOVE)) {
                move_to = Some(to.trim().to_owned());
                i += 1;
            }
            let mut hunks: Vec<Hunk> = Vec::new();
            let mut current: Option<Hunk> = None;
            while i < lines.len() {
                let line = lines[i];
                if line.trim() == END_OF_FILE {
                    current.get_or_insert_with(Hunk::default).at_end = true;
                    i += 1;
                    continue;
                }
                if line.starts_with("*** ") {
                    break;
                }
                if let Some(header) = line.strip_prefix("@@") {
                    if let Some(hunk) = current.take() {
                        hunks.push(hunk);
                    }
                    let header = header.trim();
                    // `@@ -1,3 +1,4 @@` (unified diff numbers) carries no anchor text.
                    let anchor = if header.is_empty() || header.starts_with('-') {
                        None
                    } else {
                        Some(header.to_owned())
                    };
                    current = Some(Hunk {
                        anchor,
                        ..Hunk::default()
                    });
                    i += 1;
                    continue;
                }
                if line.is_empty() && i + 1 == lines.len() {
                    break;
                }
                let hunk = current.get_or_insert_with(Hunk::default);
                match line.chars().next() {
                    Some(' ') => {
                        hunk.old.push(line[1..].to_owned());
                        hunk.new.push(line[1..].to_owned());
                    }
                    Some('-') => hunk.old.push(line[1..].to_owned()),
                    Some('+') => hunk.new.push(line[1..].to_owned()),
                    None => {
                        hunk.old.push(String::new());
                        hunk.new.push(String::new());
                    }
                    Some(_) => {
                        return Err(bad(format!(
                            "line {}: a hunk line starts with ' ', '-' or '+' (got {line:?})",
                            i + 1
                        )));
                    }
                }
                i += 1;
            }
            if let Some(hunk) = current.take() {
                hunks.push(hunk);
            }
            if hunks.is_empty() && move_to.is_none() {
                return Err(bad(format!("`{UPDATE}{}` has no hunks", path.trim())));
            }
            operations.push(Operation::Update {
                path: path.trim().to_owned(),
                move_to,
                hunks,
            });
        } else if line.trim().is_empty() {
            i += 1;
        } else {
            return Err(bad(format!(
                "line {}: expected `{ADD}`, `{UPDATE}`, `{DELETE}` or `{END}`, got {line:?}",
                i + 1
            )));
        }
    }
    if !ended {
        tracing::debug!("apply_patch without `*** End Patch`; accepted");
    }
    if operations.is_empty() {
        return Err(bad("the patch has no file operations"));
    }
    for operation in &operations {
        let path = match operation {
            Operation::Add { path, .. }
            | Operation::Delete { path }
            | Operation::Update { path, .. } => path,
        };
        if path.is_empty() {
            return Err(bad("an operation names no file"));
        }
    }
    Ok(operations)
}

/// Applies `hunks` to `content`; `path` names the file in errors.
pub fn apply_hunks(path: &str, content: &str, hunks: &[Hunk]) -> Result<String, ToolError> {
    let mut lines: Vec<String> = content.split('\n').map(str::to_owned).collect();
    let trailing_newline = content.ends_with('\n');
    if trailing_newline {
        lines.pop();
    }
    let mut replacements: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut cursor = 0;
    for (number, hunk) in hunks.iter().enumerate() {
        let number = number + 1;
        if let Some(anchor) = &hunk.anchor {
            let found =
                seek(&lines, std::slice::from_ref(anchor), cursor, false).ok_or_else(|| {
                    bad(format!(
                        "{path}: hunk {number}: the `@@ {anchor}` line was not found"
                    ))
                })?;
            cursor = found + 1;
        }
        if hunk.old.is_empty() {
            let at = if hunk.anchor.is_some() {
                cursor
            } else {
                lines.len()
            };
            replacements.push((at, 0, hunk.new.clone()));
            continue;
        }
        let found = seek(&lines, &hunk.old, cursor, hunk.at_end).ok_or_else(|| {
            bad(format!(
                "{path}: hunk {number}: these lines were not found (after line {cursor}):\n{}",
                hunk.old.join("\n")
            ))
        })?;
        replacements.push((found, hunk.old.len(), hunk.new.clone()));
        cursor = found + hunk.old.len();
    }
    for (at, removed, new) in replacements.into_iter().rev() {
        lines.splice(at..at + removed, new);
    }
    let mut out = lines.join("\n");
    if trailing_newline || !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// The first index `>= from` where `pattern` matches `lines`, with increasing whitespace
/// tolerance; `at_end` tries the end of the file first.
fn seek(lines: &[String], pattern: &[String], from: usize, at_end: bool) -> Option<usize> {
    if pattern.len() > lines.len() {
        return None;
    }
    let compare: [fn(&str, &str) -> bool; 3] = [
        |a, b| a == b,
        |a, b| a.trim_end() == b.trim_end(),
        |a, b| a.trim() == b.trim(),
    ];
    let last = lines.len() - pattern.len();
    for same in compare {
        let matches = |at: usize| {
            lines[at..at + pattern.len()]
                .iter()
                .zip(pattern)
                .all(|(a, b)| same(a, b))
        };
        if at_end && last >= from && matches(last) {
            return Some(last);
        }
        if let Some(at) = (from..=last).find(|at| matches(*at)) {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_all_operations() {
        let patch = "*** Begin Patch\n*** Add File: a/new.txt\n+one\n+two\n*** Delete File: old.txt\n*** Update File: src/lib.rs\n*** Move to: src/main.rs\n@@ fn main() {\n-    old();\n+    new();\n*** End of File\n*** End Patch\n";
        let ops = parse(patch).unwrap();
        assert_eq!(
            ops,
            vec![
                Operation::Add {
                    path: "a/new.txt".into(),
                    content: "one\ntwo\n".into()
                },
                Operation::Delete {
                    path: "old.txt".into()
                },
                Operation::Update {
                    path: "src/lib.rs".into(),
                    move_to: Some("src/main.rs".into()),
                    hunks: vec![Hunk {
                        anchor: Some("fn main() {".into()),
                        old: vec!["    old();".into()],
                        new: vec!["    new();".into()],
                        at_end: true,
                    }],
                },
            ]
        );
    }

    #[test]
    fn parse_errors_are_specific() {
        assert!(
            parse("no header")
                .unwrap_err()
                .to_string()
                .contains("Begin Patch")
        );
        assert!(
            parse("*** Begin Patch\n*** Add File: x\nno plus\n*** End Patch")
                .unwrap_err()
                .to_string()
                .contains("`+`")
        );
        assert!(
            parse("*** Begin Patch\n*** End Patch")
                .unwrap_err()
                .to_string()
                .contains("no file operations")
        );
        assert!(
            parse("*** Begin Patch\n*** Frobnicate: x\n*** End Patch")
                .unwrap_err()
                .to_string()
                .contains("expected")
        );
    }

    #[test]
    fn hunks_apply_in_order_with_context_and_anchors() {
        let content = "fn a() {\n    x();\n}\n\nfn b() {\n    x();\n}\n";
        let hunks = vec![Hunk {
            anchor: Some("fn b() {".into()),
            old: vec!["    x();".into()],
            new: vec!["    y();".into(), "    z();".into()],
            at_end: false,
        }];
        assert_eq!(
            apply_hunks("f", content, &hunks).unwrap(),
            "fn a() {\n    x();\n}\n\nfn b() {\n    y();\n    z();\n}\n"
        );
        // Trailing whitespace differences are tolerated; insertions go to the end.
        let hunks = vec![
            Hunk {
                old: vec!["fn a() {".into(), "    x();   ".into()],
                new: vec!["fn a() {".into(), "    w();".into()],
                ..Hunk::default()
            },
            Hunk {
                new: vec!["// end".into()],
                ..Hunk::default()
            },
        ];
        assert_eq!(
            apply_hunks("f", content, &hunks).unwrap(),
            "fn a() {\n    w();\n}\n\nfn b() {\n    x();\n}\n// end\n"
        );
        let missing = vec![Hunk {
            old: vec!["nope".into()],
            ..Hunk::default()
        }];
        assert!(
            apply_hunks("f", content, &missing)
                .unwrap_err()
                .to_string()
                .contains("not found")
        );
    }
}
