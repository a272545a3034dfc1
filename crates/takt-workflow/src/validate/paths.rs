//! `workspace`: local paths with `$VAR` and `~` (R-014, R-032), repository URLs, branch names.

use std::path::{Path, PathBuf};

use crate::config::{RepoSource, WorkspaceConfig};
use crate::env::{Env, PathResolution, env_reference, resolve_local_path};
use crate::reader::{Report, Section};

pub(super) fn workspace(
    section: &Section<'_>,
    report: &mut Report<'_>,
    dir: &Path,
    env: &dyn Env,
) -> WorkspaceConfig {
    let default_root = dir.join(".takt").join("workspaces");
    let root = match report.non_blank(section, "root", "/srv/takt/workspaces") {
        None => default_root,
        Some(raw) => {
            warn_partial_var(section, report, "root", &raw);
            local_path(section, report, "root", &raw, dir, env).unwrap_or(default_root)
        }
    };
    let repo = match report.non_blank(section, "repo", ".") {
        None => RepoSource::Path(dir.to_path_buf()),
        Some(raw) => {
            let value = match env_reference(&raw) {
                Some(name) => env.var(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                    report.warn(
                        "workspace.repo",
                        section.get("repo").map(|n| n.pos),
                        format!(
                            "`workspace.repo` is `${name}`, but `{name}` is not set or empty; using the \
                             default (the WORKFLOW.md directory {})",
                            dir.display()
                        ),
                        format!("set `{name}` or write the repository path or URL"),
                    );
                    dir.display().to_string()
                }),
                None => raw,
            };
            if looks_like_url(&value) {
                RepoSource::Url(value)
            } else {
                warn_partial_var(section, report, "repo", &value);
                RepoSource::Path(
                    local_path(section, report, "repo", &value, dir, env)
                        .unwrap_or_else(|| dir.to_path_buf()),
                )
            }
        }
    };
    let base_branch = report.non_blank(section, "base_branch", "main");
    if let Some(branch) = &base_branch {
        check_ref_name(section, report, "base_branch", branch);
    }
    section.check_unknown(report);
    let overlay = report.boolean(section, "overlay", true);
    WorkspaceConfig {
        root,
        repo,
        base_branch,
        overlay,
    }
}

/// Resolves a local path value; an unset `$VAR` gives `None` (use the default) with a warning.
fn local_path(
    section: &Section<'_>,
    report: &mut Report<'_>,
    key: &str,
    raw: &str,
    dir: &Path,
    env: &dyn Env,
) -> Option<PathBuf> {
    let position = section.get(key).map(|n| n.pos);
    match resolve_local_path(raw, dir, env) {
        PathResolution::Path(path) => Some(path),
        PathResolution::UnsetVar(name) => {
            report.warn(
                section.path(key),
                position,
                format!(
                    "`{}` is `${name}`, but `{name}` is not set or empty; using the default",
                    section.path(key)
                ),
                format!("set `{name}` in the daemon's environment or write a path"),
            );
            None
        }
        PathResolution::NoHome => {
            report.problem(
                section.path(key),
                position,
                format!(
                    "`{}` starts with `~`, but the home directory is unknown",
                    section.path(key)
                ),
                "set HOME or write an absolute path",
            );
            None
        }
    }
}

fn warn_partial_var(section: &Section<'_>, report: &mut Report<'_>, key: &str, raw: &str) {
    if raw.contains('$') && env_reference(raw).is_none() {
        report.warn(
            section.path(key),
            section.get(key).map(|n| n.pos),
            format!(
                "`{}` contains `$`, but only a whole value `$NAME` is expanded, so {raw:?} is used literally",
                section.path(key)
            ),
            "write the value as exactly `$NAME`, or an explicit path",
        );
    }
}

/// `scheme://...` or scp-like `user@host:path`.
fn looks_like_url(value: &str) -> bool {
    if let Some((scheme, _)) = value.split_once("://") {
        let mut chars = scheme.chars();
        return chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    }
    match value.split_once(':') {
        Some((host, rest)) => host.contains('@') && !host.contains('/') && !rest.is_empty(),
        None => false,
    }
}

/// A light `git check-ref-format` check for branch names and prefixes.
pub(super) fn check_ref_name(
    section: &Section<'_>,
    report: &mut Report<'_>,
    key: &str,
    value: &str,
) {
    let bad_char = value.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    });
    let problem = if let Some(c) = bad_char {
        Some(format!(
            "contains {c:?}, which git does not allow in branch names"
        ))
    } else if value.contains("..") || value.contains("@{") || value.contains("//") {
        Some("contains `..`, `@{` or `//`, which git does not allow in branch names".to_owned())
    } else if value.starts_with('/') || value.starts_with('-') || value.ends_with(".lock") {
        Some("starts with `/` or `-` or ends with `.lock`, which git does not allow".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        report.problem(
            section.path(key),
            section.get(key).map(|n| n.pos),
            format!("`{}` ({value:?}) {problem}", section.path(key)),
            "use letters, digits, `-`, `_`, `.` and `/`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_detection() {
        assert!(looks_like_url("https://github.com/o/r.git"));
        assert!(looks_like_url("ssh://git@host/o/r"));
        assert!(looks_like_url("file:///srv/repo"));
        assert!(looks_like_url("git@github.com:o/r.git"));
        assert!(!looks_like_url("/srv/repo"));
        assert!(!looks_like_url("./repo"));
        assert!(!looks_like_url("~/repo"));
        assert!(!looks_like_url("C:/repo"));
        assert!(!looks_like_url("a/b@c:d"));
        assert!(!looks_like_url("1http://x"));
    }
}
