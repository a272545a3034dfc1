//! takt's answer to Claude Code's `can_use_tool` permission requests.
//!
//! | request | answer |
//! |---|---|
//! | `blocked_path` (Claude flagged a path) outside the workspace | deny |
//! | `Read`, `Write`, `Edit`, `MultiEdit`, `NotebookEdit`, `NotebookRead`, `LS` (`file_path` / `notebook_path` / `path`) | allow inside the workspace, deny outside |
//! | `Glob`, `Grep` | as above; no `path` means the workspace |
//! | writes into the workspace's `.git` or `.claude` | deny (hooks and Claude settings would outlive the turn) |
//! | `Bash` | deny when a command matches `denied_commands`, else allow |
//! | `AskUserQuestion` | a question for a person (answered by the session) |
//! | anything else (`WebFetch`, MCP tools, ...) | ask a person: `yes` allows, anything else denies |
//!
//! Paths are resolved against the workspace, `.`/`..` are folded and the longest existing
//! ancestor is canonicalized, so a symlink in the workspace that points outside counts as
//! outside. A `~` path is outside.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// What the policy says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse, with the reason the agent is told.
    Deny(String),
    /// The policy does not cover this: a person decides.
    Ask,
}

/// Tools that carry a path, with the input field and whether it is required.
const PATH_TOOLS: &[(&str, &str, bool)] = &[
    ("Read", "file_path", true),
    ("Write", "file_path", true),
    ("Edit", "file_path", true),
    ("MultiEdit", "file_path", true),
    ("NotebookEdit", "notebook_path", true),
    ("NotebookRead", "notebook_path", true),
    ("LS", "path", true),
    ("Glob", "path", false),
    ("Grep", "path", false),
];

/// Tools that change the file they name.
pub const WRITE_TOOLS: &[&str] = &["Write", "Edit", "MultiEdit", "NotebookEdit"];

/// Directories of the workspace the agent may read but not change.
const PROTECTED_DIRS: &[&str] = &[".git", ".claude"];

/// Words that run the command that follows them.
const WRAPPERS: &[&str] = &[
    "sudo", "env", "command", "exec", "nohup", "time", "nice", "builtin", "doas", "xargs",
];

/// Shells whose `-c` argument is itself a command line.
const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh"];

/// takt's permission policy for one session.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The workspace, canonicalized when it exists: where Claude sees it.
    workspace: PathBuf,
    /// The workspace's own path when the sandbox shows it at `workspace` instead: paths are
    /// resolved there, where its symlinks are.
    host: Option<PathBuf>,
    /// `denied_commands`, each split into words.
    denied: Vec<Vec<String>>,
}

impl Policy {
    pub fn new(workspace: &Path, denied_commands: &[String]) -> Policy {
        let workspace = std::fs::canonicalize(workspace)
            .unwrap_or_else(|_| crate::paths::fold(&absolute(workspace)));
        let denied = denied_commands
            .iter()
            .map(|command| command.split_whitespace().map(str::to_owned).collect())
            .filter(|words: &Vec<String>| !words.is_empty())
            .collect();
        Policy {
            workspace,
            host: None,
            denied,
        }
    }

    /// A policy for a workspace whose own path is `host` and that Claude sees at `shown`.
    pub fn shown_at(host: &Path, shown: &Path, denied_commands: &[String]) -> Policy {
        Policy {
            workspace: crate::paths::fold(&absolute(shown)),
            host: Some(std::fs::canonicalize(host).unwrap_or_else(|_| crate::paths::fold(host))),
            ..Policy::new(host, denied_commands)
        }
    }

    /// The verdict on `tool_name` with `input`; `blocked_path` is the path Claude flagged in
    /// the request, if any.
    pub fn decide(&self, tool_name: &str, input: &Value, blocked_path: Option<&str>) -> Verdict {
        if let Some(path) = blocked_path
            && !self.inside(path)
        {
            return Verdict::Deny(format!(
                "takt policy: {path} is outside the workspace {}; work only inside it",
                self.workspace.display()
            ));
        }
        if let Some((_, field, required)) = PATH_TOOLS.iter().find(|(name, ..)| *name == tool_name)
        {
            return match input.get(*field).and_then(Value::as_str) {
                Some(path) => self.decide_path(tool_name, path),
                None if *required => {
                    Verdict::Deny(format!("takt policy: {tool_name} needs a `{field}`"))
                }
                None => Verdict::Allow,
            };
        }
        if tool_name == "Bash" {
            let command = input.get("command").and_then(Value::as_str).unwrap_or("");
            return match self.denied_command(command) {
                Some(denied) => Verdict::Deny(format!(
                    "takt policy: the command `{denied}` is not allowed in this workspace"
                )),
                None => Verdict::Allow,
            };
        }
        Verdict::Ask
    }

    fn decide_path(&self, tool_name: &str, path: &str) -> Verdict {
        let Some(relative) = self.relative(path) else {
            return Verdict::Deny(format!(
                "takt policy: {path} is outside the workspace {}; work only inside it",
                self.workspace.display()
            ));
        };
        if WRITE_TOOLS.contains(&tool_name)
            && let Some(Component::Normal(first)) = relative.components().next()
            && PROTECTED_DIRS.iter().any(|dir| first == *dir)
        {
            return Verdict::Deny(format!(
                "takt policy: {path} is inside {}, which the agent may not change",
                first.to_string_lossy()
            ));
        }
        Verdict::Allow
    }

    /// Whether `path` (absolute, or relative to the workspace) lies inside the workspace.
    pub fn inside(&self, path: &str) -> bool {
        self.relative(path).is_some()
    }

    /// `path` relative to the workspace, when it lies inside it.
    fn relative(&self, path: &str) -> Option<PathBuf> {
        if path.starts_with('~') {
            return None;
        }
        let joined = crate::paths::fold(&self.workspace.join(path));
        let (joined, root) = match &self.host {
            Some(host) => (host.join(joined.strip_prefix(&self.workspace).ok()?), host),
            None => (joined, &self.workspace),
        };
        crate::paths::resolve(&joined)
            .strip_prefix(root)
            .ok()
            .map(Path::to_path_buf)
    }

    /// The denied command (as configured) that `command` runs, if any.
    pub fn denied_command(&self, command: &str) -> Option<String> {
        if self.denied.is_empty() {
            return None;
        }
        denied_in(command, &self.denied, 0)
    }
}

fn denied_in(command: &str, denied: &[Vec<String>], depth: usize) -> Option<String> {
    for segment in command.split([';', '&', '|', '\n', '(', ')', '`', '{', '}']) {
        let words: Vec<String> = segment.split_whitespace().map(unquote).collect();
        let mut rest = words.as_slice();
        // Skip `VAR=value` prefixes and wrappers (with their options).
        loop {
            match rest.first() {
                Some(word) if is_assignment(word) => rest = &rest[1..],
                Some(word) if WRAPPERS.contains(&basename(word)) => {
                    rest = &rest[1..];
                    while rest.first().is_some_and(|word| word.starts_with('-')) {
                        rest = &rest[1..];
                    }
                }
                _ => break,
            }
        }
        let Some(first) = rest.first() else { continue };
        let program = basename(first);
        if SHELLS.contains(&program) && depth < 3 {
            let script = rest
                .iter()
                .position(|word| word.starts_with('-') && word.ends_with('c'))
                .map(|at| rest[at + 1..].join(" "));
            if let Some(found) = script.and_then(|script| denied_in(&script, denied, depth + 1)) {
                return Some(found);
            }
        }
        for words in denied {
            let matches = rest.len() >= words.len()
                && program == basename(&words[0])
                && rest[1..words.len()] == words[1..];
            if matches {
                return Some(words.join(" "));
            }
        }
    }
    None
}

fn unquote(word: &str) -> String {
    word.chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\\'))
        .collect()
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|dir| dir.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// Whether a person's answer allows the request: its first word is yes, y, allow, approve,
/// ok, sure or accept (any case).
pub fn affirmative(answer: &str) -> bool {
    let first = answer
        .trim()
        .split(|c: char| c.is_whitespace() || ",.!;:".contains(c))
        .next()
        .unwrap_or("")
        .to_lowercase();
    matches!(
        first.as_str(),
        "y" | "yes"
            | "allow"
            | "allowed"
            | "approve"
            | "approved"
            | "ok"
            | "okay"
            | "sure"
            | "accept"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn policy(dir: &Path) -> Policy {
        Policy::new(
            dir,
            &["rm".into(), "git push".into(), "/usr/bin/curl".into()],
        )
    }

    #[test]
    fn a_workspace_shown_elsewhere_is_judged_by_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::os::unix::fs::symlink("/etc", ws.join("etc")).unwrap();
        let p = Policy::shown_at(&ws, Path::new("/fixed/checkout"), &[]);
        let write = |path: &str| p.decide("Write", &json!({"file_path": path}), None);
        assert_eq!(write("/fixed/checkout/src/new.rs"), Verdict::Allow);
        assert_eq!(write("src/new.rs"), Verdict::Allow);
        for outside in [
            "/fixed/checkout/../x",
            "/fixed/checkout/etc/passwd",
            &ws.join("src/host-path.rs").display().to_string(),
        ] {
            assert!(matches!(write(outside), Verdict::Deny(_)), "{outside}");
        }
        assert!(matches!(
            write("/fixed/checkout/.git/hooks/pre-commit"),
            Verdict::Deny(_)
        ));
    }

    #[test]
    fn file_tools_are_confined_to_the_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        let p = policy(&ws);
        let inside = ws.join("src/new.rs");
        let write = |path: &str| p.decide("Write", &json!({"file_path": path}), None);
        assert_eq!(write(inside.to_str().unwrap()), Verdict::Allow);
        assert_eq!(write("src/relative.rs"), Verdict::Allow);
        assert_eq!(write("deep/new/dir/file.rs"), Verdict::Allow);
        for outside in [
            "/etc/passwd",
            "../escape.txt",
            "src/../../escape.txt",
            "~/.bashrc",
        ] {
            assert!(
                matches!(write(outside), Verdict::Deny(ref m) if m.contains("outside")),
                "{outside}"
            );
        }
        let escape = format!("{}/src/../../x", ws.display());
        assert!(matches!(write(&escape), Verdict::Deny(_)));
        // Reading is confined too; a missing path is refused.
        assert!(matches!(
            p.decide("Read", &json!({"file_path": "/etc/hostname"}), None),
            Verdict::Deny(_)
        ));
        assert!(matches!(
            p.decide("Write", &json!({"content": "x"}), None),
            Verdict::Deny(_)
        ));
        // Glob/Grep without a path search the workspace.
        assert_eq!(
            p.decide("Grep", &json!({"pattern": "x"}), None),
            Verdict::Allow
        );
        assert!(matches!(
            p.decide("Grep", &json!({"pattern": "x", "path": "/etc"}), None),
            Verdict::Deny(_)
        ));
    }

    #[test]
    fn symlinks_out_of_the_workspace_count_as_outside() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, ws.join("link")).unwrap();
        let p = policy(&ws);
        assert!(!p.inside("link/file.txt"));
        assert!(!p.inside(&format!("{}/link/new/file.txt", ws.display())));
        assert!(p.inside("real/file.txt"));
    }

    #[test]
    fn git_and_claude_directories_may_be_read_but_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        assert!(matches!(
            p.decide(
                "Write",
                &json!({"file_path": ".git/hooks/pre-commit"}),
                None
            ),
            Verdict::Deny(_)
        ));
        assert!(matches!(
            p.decide("Edit", &json!({"file_path": ".claude/settings.json"}), None),
            Verdict::Deny(_)
        ));
        assert_eq!(
            p.decide("Read", &json!({"file_path": ".git/HEAD"}), None),
            Verdict::Allow
        );
        assert_eq!(
            p.decide("Write", &json!({"file_path": "docs/.github/x"}), None),
            Verdict::Allow
        );
    }

    #[test]
    fn denied_commands_match_anywhere_in_a_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        for (command, denied) in [
            ("rm -rf target", Some("rm")),
            ("cargo build && rm x", Some("rm")),
            ("echo a; /bin/rm x", Some("rm")),
            ("ls | xargs rm", Some("rm")),
            ("FOO=1 sudo -n rm x", Some("rm")),
            ("bash -c 'rm -rf /'", Some("rm")),
            ("(cd sub && git push origin main)", Some("git push")),
            ("git push", Some("git push")),
            ("curl -s http://example.com", Some("/usr/bin/curl")),
            ("git status", None),
            ("cargo test -- --format=rm", None),
            ("echo rm", None),
            ("grep -r 'git push' docs", None),
            ("rmdir empty", None),
        ] {
            assert_eq!(p.denied_command(command).as_deref(), denied, "{command}");
        }
        let verdict = p.decide("Bash", &json!({"command": "rm -f x"}), None);
        assert!(matches!(verdict, Verdict::Deny(ref m) if m.contains("`rm`")));
        assert_eq!(
            p.decide("Bash", &json!({"command": "cargo test"}), None),
            Verdict::Allow
        );
    }

    #[test]
    fn a_flagged_path_outside_the_workspace_is_denied_for_any_tool() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let verdict = p.decide(
            "Bash",
            &json!({"command": "cat /etc/hostname"}),
            Some("/etc/hostname"),
        );
        assert!(matches!(verdict, Verdict::Deny(_)));
    }

    #[test]
    fn other_tools_are_for_a_person() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        assert_eq!(
            p.decide("WebFetch", &json!({"url": "https://x"}), None),
            Verdict::Ask
        );
        assert_eq!(p.decide("mcp__srv__tool", &json!({}), None), Verdict::Ask);
    }

    #[test]
    fn answers() {
        for yes in ["yes", "Yes, go ahead", "y", "allow", "OK.", " approve "] {
            assert!(affirmative(yes), "{yes}");
        }
        for no in ["no", "", "not now", "deny: use the mirror", "yesterday"] {
            assert!(!affirmative(no), "{no}");
        }
    }
}
