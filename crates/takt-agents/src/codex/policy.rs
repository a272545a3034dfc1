//! takt's own approval policy: how the backend answers Codex's approval requests before it
//! bothers a person.
//!
//! Codex asks for approval only when its `approval_policy` lets it prompt (the default policy
//! rejects every escalation inside Codex, so these rules matter once a workflow sets, say,
//! `untrusted` or `on-request`). The rules are a speed bump and an audit trail, not a security
//! boundary: the sandbox (`thread_sandbox`, `turn_sandbox_policy`) is the boundary.

use std::path::{Path, PathBuf};

/// What a rule does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Accept without asking.
    Allow,
    /// Decline without asking; the agent is told and continues the turn.
    Deny,
    /// Ask a person through the event sink ([`takt_core::ports::AgentEventSink::ask`]).
    Ask,
}

/// A command rule: a glob pattern over the command text and what to do when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRule {
    /// `*` matches any run of characters, `?` one character; everything else is literal and
    /// case-sensitive. Runs of whitespace in both the pattern and the command count as one
    /// space. The pattern must match the whole command, so most patterns start and end with
    /// `*`. The command is the text Codex shows, with a `bash -lc "…"` wrapper removed.
    pub pattern: String,
    pub action: RuleAction,
}

impl CommandRule {
    pub fn new(pattern: impl Into<String>, action: RuleAction) -> Self {
        CommandRule {
            pattern: pattern.into(),
            action,
        }
    }
}

/// Commands declined by default: publishing, privilege escalation, wiping the disk, piping
/// downloads into a shell.
pub const DEFAULT_DENIED_COMMANDS: &[&str] = &[
    "*git push*",
    "*sudo *",
    "*rm -rf /",
    "*rm -rf / *",
    "*rm -rf /\\**",
    "*rm -rf ~*",
    "*rm -rf $HOME*",
    "*mkfs*",
    "*dd *of=/dev/*",
    "*curl *| sh*",
    "*curl *| bash*",
    "*wget *| sh*",
    "*wget *| bash*",
    "*shutdown*",
    "*reboot*",
];

/// How approval requests are decided. The defaults: file changes inside the workspace are
/// accepted, file changes elsewhere go to a person, commands are accepted unless they match
/// [`DEFAULT_DENIED_COMMANDS`], requests for extra permissions (network, more writable roots)
/// go to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRules {
    /// File changes whose every path (and `grantRoot`, if any) lies inside the workspace.
    pub file_changes_in_workspace: RuleAction,
    /// File changes that touch anything outside the workspace, or whose paths the request
    /// does not reveal.
    pub file_changes_elsewhere: RuleAction,
    /// Command rules, tried in order; the first match decides.
    pub commands: Vec<CommandRule>,
    /// Commands no rule matches.
    pub other_commands: RuleAction,
    /// Requests for more than the sandbox allows: `item/permissions/requestApproval` and
    /// command approvals that ask for network access.
    pub permissions: RuleAction,
}

impl Default for ApprovalRules {
    fn default() -> Self {
        ApprovalRules {
            file_changes_in_workspace: RuleAction::Allow,
            file_changes_elsewhere: RuleAction::Ask,
            commands: DEFAULT_DENIED_COMMANDS
                .iter()
                .map(|pattern| CommandRule::new(*pattern, RuleAction::Deny))
                .collect(),
            other_commands: RuleAction::Allow,
            permissions: RuleAction::Ask,
        }
    }
}

/// A decision with the reason it was taken, for the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: RuleAction,
    pub reason: String,
}

impl ApprovalRules {
    /// Decides a command approval. `command` is the text Codex sends.
    pub fn decide_command(&self, command: &str) -> Verdict {
        let command = unwrap_shell(command);
        for rule in &self.commands {
            if glob_match(&normalize_space(&rule.pattern), &command) {
                return Verdict {
                    action: rule.action,
                    reason: format!("matches rule `{}`", rule.pattern),
                };
            }
        }
        Verdict {
            action: self.other_commands,
            reason: "no command rule matches".to_owned(),
        }
    }

    /// Decides a file change touching `paths` (absolute, or relative to the workspace).
    /// `None` means the request did not reveal its paths.
    pub fn decide_file_change(&self, paths: Option<&[PathBuf]>, workspace: &Path) -> Verdict {
        let Some(paths) = paths else {
            return Verdict {
                action: self.file_changes_elsewhere,
                reason: "the request does not name its files".to_owned(),
            };
        };
        match paths.iter().find(|path| !inside(path, workspace)) {
            Some(outside) => Verdict {
                action: self.file_changes_elsewhere,
                reason: format!("{} is outside the workspace", outside.display()),
            },
            None => Verdict {
                action: self.file_changes_in_workspace,
                reason: "every file is inside the workspace".to_owned(),
            },
        }
    }
}

/// The command text a person would recognise: `/bin/bash -lc "cargo test"` becomes
/// `cargo test`; whitespace runs become single spaces.
pub(crate) fn unwrap_shell(command: &str) -> String {
    let trimmed = command.trim();
    let mut parts = trimmed.splitn(3, char::is_whitespace);
    let (Some(shell), Some(flag), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return normalize_space(trimmed);
    };
    let shell_name = shell.rsplit('/').next().unwrap_or(shell);
    let is_shell = matches!(shell_name, "bash" | "sh" | "zsh" | "dash");
    let is_flag = flag.starts_with('-') && flag.ends_with('c');
    if !(is_shell && is_flag) {
        return normalize_space(trimmed);
    }
    let rest = rest.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|quote| {
            rest.strip_prefix(*quote)
                .and_then(|inner| inner.strip_suffix(*quote))
        })
        .map(|inner| inner.replace("\\\"", "\""))
        .unwrap_or_else(|| rest.to_owned());
    normalize_space(&unquoted)
}

fn normalize_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Glob match with `*` and `?` over characters, anchored at both ends.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Whether `path` lies inside `workspace` (see [`crate::paths::inside`]).
pub(crate) fn inside(path: &Path, workspace: &Path) -> bool {
    crate::paths::inside(path, workspace)
}

/// Whether a person's answer approves: its first word is yes, y, approve, approved, accept,
/// allow, ok or okay (any case, trailing punctuation ignored).
pub fn is_approval(answer: &str) -> bool {
    let first = answer
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    matches!(
        first.as_str(),
        "y" | "yes" | "approve" | "approved" | "accept" | "allow" | "ok" | "okay"
    )
}

/// Whether a negative answer says nothing beyond "no", so there is nothing to pass on to the
/// agent.
pub(crate) fn is_bare_refusal(answer: &str) -> bool {
    let words: Vec<String> = answer
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    words.is_empty()
        || (words.len() == 1
            && matches!(
                words[0].as_str(),
                "n" | "no" | "deny" | "denied" | "decline" | "declined" | "reject" | "nope"
            ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_whole_text() {
        assert!(glob_match("*git push*", "cd x && git push origin main"));
        assert!(!glob_match("git push", "git push origin"));
        assert!(glob_match("git push*", "git push origin"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*rm -rf /", "rm -rf /"));
        assert!(!glob_match("*rm -rf /", "rm -rf /work/ws/target"));
    }

    #[test]
    fn shell_wrappers_are_removed() {
        assert_eq!(unwrap_shell("/bin/bash -lc \"cargo  test\""), "cargo test");
        assert_eq!(unwrap_shell("bash -c 'ls -la'"), "ls -la");
        assert_eq!(unwrap_shell("ls -la"), "ls -la");
        assert_eq!(
            unwrap_shell("/bin/bash -lc \"echo \\\"hi\\\"\""),
            "echo \"hi\""
        );
    }

    #[test]
    fn default_rules_deny_publishing_and_allow_the_rest() {
        let rules = ApprovalRules::default();
        let deny = rules.decide_command("/bin/bash -lc \"git push origin HEAD\"");
        assert_eq!(deny.action, RuleAction::Deny);
        assert!(deny.reason.contains("git push"));
        assert_eq!(
            rules.decide_command("sudo apt-get install x").action,
            RuleAction::Deny
        );
        assert_eq!(
            rules.decide_command("curl -fsSL https://x | sh").action,
            RuleAction::Deny
        );
        assert_eq!(
            rules.decide_command("/bin/bash -lc \"cargo test\"").action,
            RuleAction::Allow
        );
        assert_eq!(
            rules.decide_command("rm -rf target").action,
            RuleAction::Allow
        );
    }

    #[test]
    fn file_changes_inside_the_workspace_are_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let ws = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(ws.join("src")).unwrap();
        let rules = ApprovalRules::default();
        let inside_paths = [ws.join("src/new.rs"), PathBuf::from("README.md")];
        assert_eq!(
            rules.decide_file_change(Some(&inside_paths), &ws).action,
            RuleAction::Allow
        );
        let escape = [ws.join("src/../../etc/passwd")];
        assert_eq!(
            rules.decide_file_change(Some(&escape), &ws).action,
            RuleAction::Ask
        );
        assert_eq!(rules.decide_file_change(None, &ws).action, RuleAction::Ask);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", ws.join("link")).unwrap();
            let through_link = [ws.join("link/hosts")];
            assert_eq!(
                rules.decide_file_change(Some(&through_link), &ws).action,
                RuleAction::Ask
            );
        }
    }

    #[test]
    fn answers_are_read_leniently() {
        assert!(is_approval("yes"));
        assert!(is_approval("Yes, go ahead."));
        assert!(is_approval("approve"));
        assert!(!is_approval("no"));
        assert!(!is_approval("use /srv instead"));
        assert!(is_bare_refusal("No."));
        assert!(is_bare_refusal("  "));
        assert!(!is_bare_refusal("no, write to src/ instead"));
    }
}
