//! The `search` tool: a regular expression over the workspace's text files, respecting
//! `.gitignore` (and `.ignore`, `.git/info/exclude`), including hidden files but never `.git`.
//! Files over 2 MiB and files that look binary (a NUL byte) are skipped; matching lines are
//! cut at 300 characters; at most 200 matches are listed.

use std::io::BufRead;
use std::path::Path;

use super::ToolError;
use super::paths::Workspace;

/// Matches listed before the search stops.
pub const MAX_MATCHES: usize = 200;
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
const MAX_LINE_CHARS: usize = 300;

/// The result: `path:line: text` lines, and whether the cap was hit.
#[derive(Debug, Default)]
pub struct Found {
    pub lines: Vec<String>,
    pub capped: bool,
    pub files_searched: usize,
}

/// Searches `start` (already resolved inside `workspace`) for `pattern`.
pub fn search(workspace: &Workspace, start: &Path, pattern: &str) -> Result<Found, ToolError> {
    let regex = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|error| ToolError::InvalidArguments(format!("bad regex: {error}")))?;
    let mut found = Found::default();
    let walker = ignore::WalkBuilder::new(start)
        .hidden(false)
        .parents(true)
        .require_git(false)
        .git_global(false)
        .follow_links(false)
        .max_filesize(Some(MAX_FILE_BYTES))
        .sort_by_file_path(Ord::cmp)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    'files: for entry in walker {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        found.files_searched += 1;
        let display = workspace.display(entry.path());
        let mut reader = std::io::BufReader::new(file);
        let mut line = Vec::new();
        let mut number = 0usize;
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if line.contains(&0) {
                continue 'files;
            }
            number += 1;
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\n', '\r']);
            if regex.is_match(text) {
                if found.lines.len() == MAX_MATCHES {
                    found.capped = true;
                    break 'files;
                }
                let shown: String = text.chars().take(MAX_LINE_CHARS).collect();
                let cut = if shown.len() < text.len() { " …" } else { "" };
                found
                    .lines
                    .push(format!("{display}:{number}: {shown}{cut}"));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn gitignored_files_and_git_internals_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("src/a.rs"), "fn needle() {}\nother\n").unwrap();
        std::fs::write(root.join(".hidden.rs"), "needle hidden\n").unwrap();
        std::fs::write(root.join("target/out.rs"), "needle built\n").unwrap();
        std::fs::write(root.join("debug.log"), "needle log\n").unwrap();
        std::fs::write(root.join(".git/config"), "needle git\n").unwrap();
        std::fs::write(root.join("bin.dat"), b"needle\0binary").unwrap();
        let ws = Workspace::new(root).unwrap();
        let found = search(&ws, ws.root(), "need+le").unwrap();
        assert_eq!(
            found.lines,
            vec![".hidden.rs:1: needle hidden", "src/a.rs:1: fn needle() {}"]
        );
        assert!(!found.capped);
        assert!(search(&ws, ws.root(), "(").is_err());
    }
}
