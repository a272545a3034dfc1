//! A change's diff read from git's own output: which files changed and how much
//! (`--name-status -z` with `--numstat -z`), and the added and removed lines of a `-U0` patch
//! that the secret scan and the tamper rules look at.

use std::collections::HashMap;

use takt_protocol::{ChangeKind, ChangedFile};

/// Output of `git diff --name-status -z` / `--numstat -z` that does not have git's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("malformed `git diff --name-status -z` record {record:?}: {problem}")]
    NameStatus {
        record: String,
        problem: &'static str,
    },
    #[error("malformed `git diff --numstat -z` record {record:?}: {problem}")]
    Numstat {
        record: String,
        problem: &'static str,
    },
    #[error("{path} is in the --name-status output but not in the --numstat output")]
    MissingNumstat { path: String },
}

/// The changed files of a diff, sorted by path, from the outputs of
/// `git diff --name-status -z -M <base> <commit>` and `git diff --numstat -z -M <base> <commit>`.
///
/// A copy (`C`, only with `-C`) is reported as an added file whose `old_path` is its source;
/// a type change (`T`, a file becoming a symlink) as a modification. Binary files count zero
/// lines. Both outputs must come from the same diff: a file missing from the numstat output is
/// an error rather than a silent zero.
pub fn changed_files(name_status_z: &str, numstat_z: &str) -> Result<Vec<ChangedFile>, DiffError> {
    let line_counts = numstat_records(numstat_z)?;
    let mut files = Vec::new();
    let mut fields = name_status_z.split('\0').filter(|field| !field.is_empty());
    while let Some(status) = fields.next() {
        let name_status_error = |paths: &[&str], problem| {
            let mut record = vec![status];
            record.extend_from_slice(paths);
            DiffError::NameStatus {
                record: record.join("\0"),
                problem,
            }
        };
        let (kind, takes_two_paths) = match status.as_bytes() {
            [b'A'] => (ChangeKind::Added, false),
            [b'M' | b'T'] => (ChangeKind::Modified, false),
            [b'D'] => (ChangeKind::Deleted, false),
            [b'R', score @ ..] if score.iter().all(u8::is_ascii_digit) => {
                (ChangeKind::Renamed, true)
            }
            [b'C', score @ ..] if score.iter().all(u8::is_ascii_digit) => (ChangeKind::Added, true),
            _ => return Err(name_status_error(&[], "unknown status")),
        };
        let first = fields
            .next()
            .ok_or_else(|| name_status_error(&[], "no path"))?;
        let (old_path, path) = if takes_two_paths {
            let second = fields
                .next()
                .ok_or_else(|| name_status_error(&[first], "a rename or copy needs two paths"))?;
            (Some(first.to_owned()), second)
        } else {
            (None, first)
        };
        let &(added_lines, removed_lines) =
            line_counts
                .get(path)
                .ok_or_else(|| DiffError::MissingNumstat {
                    path: path.to_owned(),
                })?;
        files.push(ChangedFile {
            path: path.to_owned(),
            old_path,
            kind,
            added_lines,
            removed_lines,
        });
    }
    files.sort_by(|left, right| left.path.cmp(&right.path));
    Ok(files)
}

/// `added\tremoved\tpath\0`, or for a rename or copy `added\tremoved\t\0old\0new\0`; binary
/// files have `-` for both counts. Keyed by the path after the change.
fn numstat_records(numstat_z: &str) -> Result<HashMap<&str, (u32, u32)>, DiffError> {
    let mut counts = HashMap::new();
    let mut fields = numstat_z.split('\0');
    while let Some(field) = fields.next() {
        if field.is_empty() {
            continue;
        }
        let numstat_error = |record: String, problem| DiffError::Numstat { record, problem };
        // Paths may hold tabs, so only the first two separate counts.
        let mut parts = field.splitn(3, '\t');
        let (Some(added), Some(removed), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(numstat_error(
                field.to_owned(),
                "expected added\\tremoved\\tpath",
            ));
        };
        let parse_count = |count: &str| match count {
            "-" => Some(0),
            digits => digits.parse::<u32>().ok(),
        };
        let (Some(added), Some(removed)) = (parse_count(added), parse_count(removed)) else {
            return Err(numstat_error(
                field.to_owned(),
                "line counts are neither numbers nor `-`",
            ));
        };
        let path = if path.is_empty() {
            let old = fields.next().filter(|old| !old.is_empty());
            let new = fields.next().filter(|new| !new.is_empty());
            match (old, new) {
                (Some(_), Some(new)) => new,
                _ => {
                    return Err(numstat_error(
                        [field, old.unwrap_or_default()].join("\0"),
                        "a rename or copy needs two paths",
                    ));
                }
            }
        } else {
            path
        };
        counts.insert(path, (added, removed));
    }
    Ok(counts)
}

/// The added and removed lines one file has in a unified diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilePatch<'patch> {
    /// The path after the change; for a deleted file, the path it had.
    pub(crate) path: String,
    /// Added lines with their line number in the new file.
    pub(crate) added: Vec<(u32, &'patch str)>,
    pub(crate) removed: Vec<&'patch str>,
}

/// Where the walk over a patch is.
#[derive(Default)]
struct HunkCursor {
    old_remaining: u32,
    new_remaining: u32,
    next_new_line: u32,
}

impl HunkCursor {
    fn inside(&self) -> bool {
        self.old_remaining > 0 || self.new_remaining > 0
    }
}

/// Splits a `git diff -U0 <base> <commit>` patch (any context size works) into files. Hunk
/// headers' counts decide which lines are content, so a removed line that reads `-- x` (shown
/// as `--- x`) is never mistaken for a file header. Binary files and pure renames have no lines
/// and are left out.
pub(crate) fn file_patches(patch: &str) -> Vec<FilePatch<'_>> {
    let mut files = Vec::new();
    let mut current: Option<FilePatch> = None;
    let mut old_path: Option<String> = None;
    let mut cursor = HunkCursor::default();
    for line in patch.lines() {
        if cursor.inside() {
            if let Some(added) = line.strip_prefix('+') {
                if let Some(file) = current.as_mut() {
                    file.added.push((cursor.next_new_line, added));
                }
                cursor.next_new_line = cursor.next_new_line.saturating_add(1);
                cursor.new_remaining = cursor.new_remaining.saturating_sub(1);
                continue;
            }
            if let Some(removed) = line.strip_prefix('-') {
                if let Some(file) = current.as_mut() {
                    file.removed.push(removed);
                }
                cursor.old_remaining = cursor.old_remaining.saturating_sub(1);
                continue;
            }
            if line.starts_with(' ') {
                cursor.next_new_line = cursor.next_new_line.saturating_add(1);
                cursor.old_remaining = cursor.old_remaining.saturating_sub(1);
                cursor.new_remaining = cursor.new_remaining.saturating_sub(1);
                continue;
            }
            if line.starts_with('\\') {
                // `\ No newline at end of file`
                continue;
            }
            // A hunk shorter than its header said: read on as headers.
            cursor = HunkCursor::default();
        }
        if line.starts_with("diff --git ") {
            files.extend(current.take());
            old_path = None;
        } else if let Some(header) = line.strip_prefix("--- ") {
            old_path = header_path(header, "a/");
        } else if let Some(header) = line.strip_prefix("+++ ") {
            files.extend(current.take());
            if let Some(path) = header_path(header, "b/").or_else(|| old_path.take()) {
                current = Some(FilePatch {
                    path,
                    added: Vec::new(),
                    removed: Vec::new(),
                });
            }
        } else if line.starts_with("@@ ") {
            cursor = hunk_cursor(line).unwrap_or_default();
        }
    }
    files.extend(current);
    files
}

/// `@@ -<start>[,<count>] +<start>[,<count>] @@[ context]`.
fn hunk_cursor(header: &str) -> Option<HunkCursor> {
    let ranges = header.strip_prefix("@@ -")?;
    let (old_range, rest) = ranges.split_once(' ')?;
    let (new_range, _) = rest.strip_prefix('+')?.split_once(' ')?;
    let parse_range = |range: &str| -> Option<(u32, u32)> {
        match range.split_once(',') {
            Some((start, count)) => Some((start.parse().ok()?, count.parse().ok()?)),
            None => Some((range.parse().ok()?, 1)),
        }
    };
    let (_, old_remaining) = parse_range(old_range)?;
    let (next_new_line, new_remaining) = parse_range(new_range)?;
    Some(HunkCursor {
        old_remaining,
        new_remaining,
        next_new_line,
    })
}

/// The path of a `--- a/x` / `+++ b/x` header; `None` for `/dev/null`. Git quotes unusual names
/// C-style (`"b/ta\tb.txt"`) and ends names holding a space with a tab.
fn header_path(header: &str, prefix: &str) -> Option<String> {
    let name = match header.strip_prefix('"') {
        Some(quoted) => unquote_c_style(quoted),
        None => header.strip_suffix('\t').unwrap_or(header).to_owned(),
    };
    if name == "/dev/null" {
        return None;
    }
    Some(name.strip_prefix(prefix).map(str::to_owned).unwrap_or(name))
}

/// Undoes git's C-style quoting of the text after the opening quote, up to the closing one;
/// octal escapes are bytes of a UTF-8 name.
fn unquote_c_style(quoted: &str) -> String {
    let mut bytes = Vec::with_capacity(quoted.len());
    let mut rest = quoted.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            b'"' => break,
            b'\\' => {
                let Some((&escaped, after)) = rest.split_first() else {
                    break;
                };
                rest = after;
                let unescaped = match escaped {
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'v' => 0x0b,
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'0'..=b'7' => {
                        let digits: Vec<u8> = std::iter::once(escaped)
                            .chain(
                                rest.iter()
                                    .copied()
                                    .take(2)
                                    .take_while(|digit| (b'0'..=b'7').contains(digit)),
                            )
                            .collect();
                        rest = rest.get(digits.len() - 1..).unwrap_or_default();
                        digits.iter().fold(0u8, |value, digit| {
                            value.wrapping_mul(8).wrapping_add(digit - b'0')
                        })
                    }
                    other => other,
                };
                bytes.push(unescaped);
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use takt_test_support::{GitRepo, write};

    fn file(
        path: &str,
        old_path: Option<&str>,
        kind: ChangeKind,
        added_lines: u32,
        removed_lines: u32,
    ) -> ChangedFile {
        ChangedFile {
            path: path.to_owned(),
            old_path: old_path.map(str::to_owned),
            kind,
            added_lines,
            removed_lines,
        }
    }

    /// Real output of git 2.47 for a change that modifies a binary file, adds a file with a
    /// space in its name, deletes one, edits one, renames-and-edits one (82% similar) and adds
    /// one whose name holds a tab.
    const NAME_STATUS: &str = "M\0data.bin\0A\0fresh file.txt\0D\0gone.txt\0M\0keep.txt\0R082\0old.txt\0new.txt\0M\0sp ace.txt\0A\0ta\tb.txt\0";
    const NUMSTAT: &str = "-\t-\tdata.bin\x001\t0\tfresh file.txt\x000\t1\tgone.txt\x002\t1\tkeep.txt\x001\t0\t\0old.txt\0new.txt\x001\t0\tsp ace.txt\x001\t0\tta\tb.txt\0";

    #[test]
    fn reads_every_kind_of_change() {
        let files = changed_files(NAME_STATUS, NUMSTAT).unwrap();
        assert_eq!(
            files,
            vec![
                file("data.bin", None, ChangeKind::Modified, 0, 0),
                file("fresh file.txt", None, ChangeKind::Added, 1, 0),
                file("gone.txt", None, ChangeKind::Deleted, 0, 1),
                file("keep.txt", None, ChangeKind::Modified, 2, 1),
                file("new.txt", Some("old.txt"), ChangeKind::Renamed, 1, 0),
                file("sp ace.txt", None, ChangeKind::Modified, 1, 0),
                file("ta\tb.txt", None, ChangeKind::Added, 1, 0),
            ]
        );
    }

    #[test]
    fn an_empty_diff_has_no_files() {
        assert_eq!(changed_files("", ""), Ok(Vec::new()));
    }

    #[test]
    fn copies_are_added_files_with_a_source() {
        let files = changed_files("C100\0a.txt\0b.txt\0", "0\t0\t\0a.txt\0b.txt\0").unwrap();
        assert_eq!(
            files,
            vec![file("b.txt", Some("a.txt"), ChangeKind::Added, 0, 0)]
        );
    }

    #[test]
    fn errors_name_the_malformed_record() {
        assert_eq!(
            changed_files("Q\0x.txt\0", "1\t0\tx.txt\0")
                .unwrap_err()
                .to_string(),
            r#"malformed `git diff --name-status -z` record "Q": unknown status"#
        );
        assert_eq!(
            changed_files("R100\0old.txt\0", "")
                .unwrap_err()
                .to_string(),
            r#"malformed `git diff --name-status -z` record "R100\0old.txt": a rename or copy needs two paths"#
        );
        assert_eq!(
            changed_files("M\0x.txt\0", "many\t0\tx.txt\0")
                .unwrap_err()
                .to_string(),
            r#"malformed `git diff --numstat -z` record "many\t0\tx.txt": line counts are neither numbers nor `-`"#
        );
        assert_eq!(
            changed_files("M\0x.txt\0", "1 0 x.txt\0")
                .unwrap_err()
                .to_string(),
            r#"malformed `git diff --numstat -z` record "1 0 x.txt": expected added\tremoved\tpath"#
        );
        assert_eq!(
            changed_files("R100\0a\0b\0", "0\t0\t\0a\0").unwrap_err(),
            DiffError::Numstat {
                record: "0\t0\t\0a".to_owned(),
                problem: "a rename or copy needs two paths",
            }
        );
        assert_eq!(
            changed_files("M\0x.txt\0", "").unwrap_err(),
            DiffError::MissingNumstat {
                path: "x.txt".to_owned()
            }
        );
    }

    /// The same change made in a real repository: what the verifier will actually feed in.
    #[test]
    fn reads_what_real_git_prints() {
        let repo = GitRepo::new();
        let root = repo.path();
        write(
            &root.join("src/lib.rs"),
            "one\ntwo\nthree\nfour\nfive\nsix\n",
        );
        write(&root.join("notes.txt"), "first\nsecond\n");
        write(&root.join("old name.md"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "base"]);
        let base = repo.rev_parse("HEAD");

        write(
            &root.join("src/lib.rs"),
            "one\nTWO\nthree\nfour\nfive\nsix\nseven\n",
        );
        repo.git(&["rm", "-q", "notes.txt"]);
        repo.git(&["mv", "old name.md", "docs.md"]);
        write(&root.join("docs.md"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n");
        write(&root.join("blob.bin"), "\0\u{1}\u{2}binary");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "change"]);
        let commit = repo.rev_parse("HEAD");

        let name_status = repo.git(&["diff", "--name-status", "-z", "-M", &base, &commit]);
        let numstat = repo.git(&["diff", "--numstat", "-z", "-M", &base, &commit]);
        assert_eq!(
            changed_files(&name_status, &numstat).unwrap(),
            vec![
                file("blob.bin", None, ChangeKind::Added, 0, 0),
                file("docs.md", Some("old name.md"), ChangeKind::Renamed, 1, 0),
                file("notes.txt", None, ChangeKind::Deleted, 0, 2),
                file("src/lib.rs", None, ChangeKind::Modified, 2, 1),
            ]
        );

        let patch = repo.git(&["diff", "-U0", &base, &commit]);
        assert_eq!(
            file_patches(&patch),
            vec![
                FilePatch {
                    path: "docs.md".to_owned(),
                    added: vec![(11, "k")],
                    removed: vec![],
                },
                FilePatch {
                    path: "notes.txt".to_owned(),
                    added: vec![],
                    removed: vec!["first", "second"],
                },
                FilePatch {
                    path: "src/lib.rs".to_owned(),
                    added: vec![(2, "TWO"), (7, "seven")],
                    removed: vec!["two"],
                },
            ]
        );
    }

    /// `git diff -U0` of the change in [`NAME_STATUS`] (git 2.47).
    const PATCH: &str = "diff --git a/data.bin b/data.bin
index 88768ef..f68ed80 100644
Binary files a/data.bin and b/data.bin differ
diff --git a/fresh file.txt b/fresh file.txt
new file mode 100644
index 0000000..92d5444
--- /dev/null
+++ b/fresh file.txt\t
@@ -0,0 +1 @@
+fresh
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index 286c5f5..0000000
--- a/gone.txt
+++ /dev/null
@@ -1 +0,0 @@
-gone
diff --git a/keep.txt b/keep.txt
index 71ac1b5..fd489ae 100644
--- a/keep.txt
+++ b/keep.txt
@@ -2 +2 @@ a
-b
+B
@@ -8,0 +9 @@ h
+added
diff --git a/old.txt b/new.txt
similarity index 82%
rename from old.txt
rename to new.txt
index b566061..2019eda 100644
--- a/old.txt
+++ b/new.txt
@@ -6,0 +7 @@ six
+seven
diff --git \"a/ta\\tb.txt\" \"b/ta\\tb.txt\"
new file mode 100644
index 0000000..0417629
--- /dev/null
+++ \"b/ta\\tb.txt\"
@@ -0,0 +1 @@
+tab\tname
\\ No newline at end of file
";

    #[test]
    fn patch_lines_carry_paths_and_new_line_numbers() {
        let file_patch = |path: &str, added: Vec<(u32, &'static str)>, removed| FilePatch {
            path: path.to_owned(),
            added,
            removed,
        };
        assert_eq!(
            file_patches(PATCH),
            vec![
                file_patch("fresh file.txt", vec![(1, "fresh")], vec![]),
                file_patch("gone.txt", vec![], vec!["gone"]),
                file_patch("keep.txt", vec![(2, "B"), (9, "added")], vec!["b"]),
                file_patch("new.txt", vec![(7, "seven")], vec![]),
                file_patch("ta\tb.txt", vec![(1, "tab\tname")], vec![]),
            ]
        );
    }

    #[test]
    fn removed_lines_that_look_like_headers_stay_content() {
        let patch = "diff --git a/notes.md b/notes.md
index 1111111..2222222 100644
--- a/notes.md
+++ b/notes.md
@@ -3,2 +3,2 @@ intro
--- a list item
-++ odd
+++ plus plus
+@@ not a hunk
";
        let files = file_patches(patch);
        assert_eq!(
            files,
            vec![FilePatch {
                path: "notes.md".to_owned(),
                added: vec![(3, "++ plus plus"), (4, "@@ not a hunk")],
                removed: vec!["-- a list item", "++ odd"],
            }]
        );
    }

    #[test]
    fn quoted_names_with_octal_escapes() {
        assert_eq!(
            header_path(r#""b/caf\303\251 \"menu\".txt""#, "b/"),
            Some("café \"menu\".txt".to_owned())
        );
        assert_eq!(header_path("/dev/null", "a/"), None);
        assert_eq!(
            header_path("b/sp ace.txt\t", "b/"),
            Some("sp ace.txt".to_owned())
        );
    }
}
