//! The change: its files with line counts, and the unified diff with added, removed, hunk and
//! file-header lines told apart by colour (a class per line; no highlighter library).

use takt_protocol::ChangedFile;

use super::html::{attr, text};

/// Longest diff the page renders; past it the page says so instead of freezing the browser.
const MAX_DIFF_LINES: usize = 5000;

/// The changed files as a table.
pub fn files(files: &[ChangedFile]) -> String {
    if files.is_empty() {
        return r#"<p class="muted">No files changed.</p>"#.to_owned();
    }
    let rows: String = files
        .iter()
        .map(|file| {
            let kind = serde_json::to_value(file.kind)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            let from = file
                .old_path
                .as_deref()
                .map(|old| format!(" <span class=\"muted\">(from {})</span>", text(old)))
                .unwrap_or_default();
            format!(
                r#"<tr><td><code>{path}</code>{from}</td><td>{kind}</td><td class="add">+{added}</td><td class="del">-{removed}</td></tr>"#,
                path = text(&file.path),
                kind = text(&kind),
                added = file.added_lines,
                removed = file.removed_lines,
            )
        })
        .collect();
    format!(
        r#"<table class="files"><thead><tr><th scope="col">File</th><th scope="col">Change</th><th scope="col">Added</th><th scope="col">Removed</th></tr></thead><tbody>{rows}</tbody></table>"#
    )
}

/// The class of one unified-diff line.
fn line_class(line: &str) -> &'static str {
    if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff ") {
        "file"
    } else if line.starts_with("@@") {
        "hunk"
    } else if line.starts_with('+') {
        "add"
    } else if line.starts_with('-') {
        "del"
    } else {
        "ctx"
    }
}

/// A unified diff as a block of classed lines, each escaped.
pub fn highlighted(diff: &str) -> String {
    let mut out = String::from(r#"<pre class="diff" tabindex="0" aria-label="Diff"><code>"#);
    for (index, line) in diff.lines().enumerate() {
        if index == MAX_DIFF_LINES {
            out.push_str(&format!(
                r#"<span class="more">… cut at {MAX_DIFF_LINES} lines</span>"#
            ));
            break;
        }
        out.push_str(&format!(
            r#"<span class="{}">{}</span>"#,
            attr(line_class(line)),
            text(line)
        ));
        out.push('\n');
    }
    out.push_str("</code></pre>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classed_and_escaped() {
        let html =
            highlighted("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-<old>\n+<new>\n same");
        assert!(
            html.contains(r#"<span class="file">+++ b/x</span>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span class="hunk">@@ -1 +1 @@</span>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span class="del">-&lt;old&gt;</span>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span class="add">+&lt;new&gt;</span>"#),
            "{html}"
        );
        assert!(html.contains(r#"<span class="ctx"> same</span>"#), "{html}");
    }
}
