//! The "local forge": merging a task's commit into the base branch of a local source repo.
//!
//! The merge result is always computed without touching any working tree (`git merge-tree
//! --write-tree` + `git commit-tree`), so a conflict leaves the source's base branch, HEAD,
//! index and files exactly as they were. The result is then applied atomically:
//!
//! - base branch not checked out anywhere: `git update-ref <base> <new> <old>` (compare and
//!   swap: if someone committed meanwhile, nothing changes and [`WorkspaceError::SourceMoved`]
//!   says so);
//! - base branch checked out (the usual `repo: .` with `main` checked out): the tracked files
//!   must be clean, and the checkout is moved with `git merge --ff-only <new>`, which updates
//!   files and index together and refuses to overwrite anything.
//!
//! Re-running a merge that already happened (a crash before it was journaled) finds the commit
//! already in the base and answers [`MergeOutcome::AlreadyMerged`] instead of merging twice.

use std::path::{Path, PathBuf};

use crate::error::WorkspaceError;
use crate::git::GitError;
use crate::manager::{RepoSource, WorkspaceManager};

/// How a merge into the source ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The base branch now contains the commit. `sha` is its new tip: the task commit itself
    /// for a fast-forward, else the merge commit (authored by takt).
    Merged { sha: String, fast_forward: bool },
    /// The base branch already contained the commit; nothing was changed. `sha` is the base tip.
    AlreadyMerged { sha: String },
    /// The commit conflicts with the base branch; the source is unchanged (the task branch was
    /// still published to the source as `refs/heads/<branch>` for a person to look at).
    Conflict { files: Vec<String>, details: String },
}

impl WorkspaceManager {
    /// Merges `commit` (from the mirror) into `base_branch` of the source repository, publishing
    /// it first as `refs/heads/<branch>` there. Fast-forwards when possible, else creates a merge
    /// commit with `message`. After a merge the mirror is fetched, so the next base is current.
    /// Only for [`RepoSource::Path`].
    pub async fn merge_to_source(
        &self,
        branch: &str,
        commit: &str,
        base_branch: &str,
        message: &str,
    ) -> Result<MergeOutcome, WorkspaceError> {
        let source = match &self.settings.source {
            RepoSource::Path(path) => path.clone(),
            RepoSource::Url(url) => {
                return Err(WorkspaceError::MergeUnsupported {
                    source_repo: url.clone(),
                });
            }
        };
        // One merge at a time: two merges computed from the same base tip would make the
        // second fail its compare-and-swap for no good reason.
        let _merging = self.merge_lock.lock().await;
        let mirror = self.settings.mirror_dir.clone();
        let branch_ref = format!("refs/heads/{branch}");
        let base_ref = format!("refs/heads/{base_branch}");
        self.check_ref_name(&branch_ref, "the task branch").await?;
        self.check_ref_name(&base_ref, "the base branch").await?;

        let sha = self
            .git
            .rev_parse(&mirror, commit)
            .await
            .map_err(|e| WorkspaceError::git(format!("looking up {commit} in the mirror"), e))?
            .ok_or_else(|| WorkspaceError::UnknownCommit {
                commit: commit.to_owned(),
                mirror: mirror.clone(),
            })?;

        // Publish the task branch into the source (the "pull request" of the local forge).
        self.git
            .cmd(&source)
            .args(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"])
            .arg(&mirror)
            .arg(format!("+{sha}:{branch_ref}"))
            .run()
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("publishing {branch} into {}", source.display()), e)
            })?;

        let old = self.git.rev_parse(&source, &base_ref).await.map_err(|e| {
            WorkspaceError::git(
                format!("resolving {base_branch} in {}", source.display()),
                e,
            )
        })?;
        let Some(old) = old else {
            return Err(WorkspaceError::BaseBranchMissing {
                branch: base_branch.to_owned(),
                source_repo: source.display().to_string(),
                available: self.source_branches(&source).await,
            });
        };
        let ancestry = |a: String, b: String| {
            let source = source.clone();
            async move {
                self.git
                    .is_ancestor(&source, &a, &b)
                    .await
                    .map_err(|e| WorkspaceError::git(format!("comparing {a} with {b}"), e))
            }
        };
        if ancestry(sha.clone(), old.clone()).await? {
            tracing::info!(branch, commit = %sha, base = base_branch, "already merged");
            return Ok(MergeOutcome::AlreadyMerged { sha: old });
        }
        let fast_forward = ancestry(old.clone(), sha.clone()).await?;
        let new = if fast_forward {
            sha.clone()
        } else {
            match self
                .merge_commit(&source, &old, &sha, branch, base_branch, message)
                .await?
            {
                Ok(merge) => merge,
                Err(conflict) => {
                    tracing::warn!(branch, commit = %sha, base = base_branch, ?conflict, "merge conflict");
                    return Ok(conflict);
                }
            }
        };

        match self.checked_out_at(&source, &base_ref).await? {
            Some(worktree) => {
                self.advance_checkout(&source, &worktree, base_branch, &old, &new)
                    .await?
            }
            None => {
                let updated = self
                    .git
                    .cmd(&source)
                    .args([
                        "update-ref",
                        "-m",
                        &format!("takt: merge {branch}"),
                        &base_ref,
                        &new,
                        &old,
                    ])
                    .run()
                    .await;
                if let Err(error) = updated {
                    self.moved_or(&source, base_branch, &old, error).await?;
                }
            }
        }
        tracing::info!(branch, base = base_branch, sha = %new, fast_forward, "merged into the source");

        // The merge is done; a failed fetch only delays the mirror seeing it.
        if let Err(error) = self.sync_mirror().await {
            tracing::warn!(error = %error, "merged, but updating the mirror afterwards failed");
        }
        Ok(MergeOutcome::Merged {
            sha: new,
            fast_forward,
        })
    }

    /// Computes the merge of `theirs` into `ours` without a working tree. `Ok(Ok(commit))` is
    /// the merge commit; `Ok(Err(conflict))` a conflict.
    async fn merge_commit(
        &self,
        source: &Path,
        ours: &str,
        theirs: &str,
        branch: &str,
        base_branch: &str,
        message: &str,
    ) -> Result<Result<String, MergeOutcome>, WorkspaceError> {
        let out = self
            .git
            .cmd(source)
            .args([
                "merge-tree",
                "--write-tree",
                "-z",
                "--name-only",
                ours,
                theirs,
            ])
            .output_allowing(&[0, 1])
            .await
            .map_err(|e| {
                WorkspaceError::git(
                    format!("merging {branch} into {base_branch} (merge-tree)"),
                    e,
                )
            })?;
        let parsed = parse_merge_tree(&out.stdout);
        if !is_object_id(&parsed.tree) {
            return Err(WorkspaceError::git(
                format!("merging {branch} into {base_branch} (merge-tree)"),
                GitError::UnexpectedOutput {
                    command: "git merge-tree --write-tree -z --name-only".into(),
                    cwd: source.to_path_buf(),
                    detail: format!("expected a tree id first, got {:?}", parsed.tree),
                },
            ));
        }
        if !out.success() {
            return Ok(Err(MergeOutcome::Conflict {
                files: parsed.conflicted,
                details: parsed.messages,
            }));
        }
        let message = if message.trim().is_empty() {
            format!("Merge branch '{branch}' into {base_branch}")
        } else {
            message.trim().to_owned()
        };
        let merge = self
            .git
            .cmd(source)
            .takt_identity()
            .args([
                "commit-tree",
                "--no-gpg-sign",
                &parsed.tree,
                "-p",
                ours,
                "-p",
                theirs,
                "-m",
                &message,
            ])
            .run()
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("creating the merge commit of {branch}"), e)
            })?;
        Ok(Ok(merge.trim().to_owned()))
    }

    /// Moves a checked-out base branch from `old` to `new` with `git merge --ff-only`, after
    /// requiring its tracked files to be clean.
    async fn advance_checkout(
        &self,
        source: &Path,
        worktree: &Path,
        base_branch: &str,
        old: &str,
        new: &str,
    ) -> Result<(), WorkspaceError> {
        let dirty = self
            .git
            .status_porcelain(worktree, false)
            .await
            .map_err(|e| {
                WorkspaceError::git(
                    format!("checking {} for uncommitted changes", worktree.display()),
                    e,
                )
            })?;
        if !dirty.is_empty() {
            return Err(WorkspaceError::SourceDirty {
                branch: base_branch.to_owned(),
                worktree: worktree.to_path_buf(),
                files: dirty.iter().map(ToString::to_string).collect(),
            });
        }
        let merged = self
            .git
            .cmd(worktree)
            .args(["merge", "--ff-only", "--quiet", new])
            .run()
            .await;
        if let Err(error) = merged {
            self.moved_or(source, base_branch, old, error).await?;
        }
        Ok(())
    }

    /// After a failed update: [`WorkspaceError::SourceMoved`] when the base branch is no longer
    /// at `old`, else the git error.
    async fn moved_or(
        &self,
        source: &Path,
        base_branch: &str,
        old: &str,
        error: GitError,
    ) -> Result<(), WorkspaceError> {
        let now = self
            .git
            .rev_parse(source, &format!("refs/heads/{base_branch}"))
            .await
            .ok()
            .flatten();
        match now {
            Some(now) if now != old => Err(WorkspaceError::SourceMoved {
                branch: base_branch.to_owned(),
                source_repo: source.display().to_string(),
                expected: old.to_owned(),
                found: now,
            }),
            _ => Err(WorkspaceError::git(
                format!(
                    "moving {base_branch} in {} to the merge result",
                    source.display()
                ),
                error,
            )),
        }
    }

    /// The working tree where `branch_ref` is checked out, if any (the main one or a linked
    /// worktree of the source).
    async fn checked_out_at(
        &self,
        source: &Path,
        branch_ref: &str,
    ) -> Result<Option<PathBuf>, WorkspaceError> {
        let list = self
            .git
            .run(source, ["worktree", "list", "--porcelain", "-z"])
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("listing the worktrees of {}", source.display()), e)
            })?;
        let mut path: Option<&str> = None;
        let mut found = false;
        let mut prunable = false;
        for field in list.split('\0') {
            if field.is_empty() {
                if found && !prunable {
                    return Ok(path.map(PathBuf::from));
                }
                path = None;
                found = false;
                prunable = false;
            } else if let Some(p) = field.strip_prefix("worktree ") {
                path = Some(p);
            } else if field.strip_prefix("branch ") == Some(branch_ref) {
                found = true;
            } else if field.starts_with("prunable") {
                prunable = true;
            }
        }
        Ok(if found && !prunable {
            path.map(PathBuf::from)
        } else {
            None
        })
    }

    async fn source_branches(&self, source: &Path) -> Vec<String> {
        self.git
            .run(
                source,
                ["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
            )
            .await
            .map(|out| out.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// Whether `text` looks like a full object id (sha1 or sha256, lowercase hex).
fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `git merge-tree --write-tree -z --name-only` output.
#[derive(Debug, Default, PartialEq, Eq)]
struct MergeTree {
    tree: String,
    conflicted: Vec<String>,
    messages: String,
}

/// Parses `<tree>\0<file>\0...\0\0` followed by informational messages of the form
/// `<n>\0<path>{n}\0<type>\0<message>\0`.
fn parse_merge_tree(stdout: &str) -> MergeTree {
    let mut fields = stdout.split('\0');
    let tree = fields.next().unwrap_or_default().trim().to_owned();
    let mut conflicted: Vec<String> = Vec::new();
    for field in fields.by_ref() {
        if field.is_empty() {
            break;
        }
        if !conflicted.iter().any(|f| f == field) {
            conflicted.push(field.to_owned());
        }
    }
    let mut messages = Vec::new();
    while let Some(count) = fields.next() {
        let Ok(count) = count.trim().parse::<usize>() else {
            break;
        };
        for _ in 0..count {
            fields.next();
        }
        let _kind = fields.next();
        if let Some(message) = fields.next() {
            messages.push(message.trim_end().to_owned());
        }
    }
    MergeTree {
        tree,
        conflicted,
        messages: messages.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_conflicted_merge_tree_output() {
        let raw = [
            "aecdb389",
            "a",
            "b c",
            "a",
            "",
            "1",
            "a",
            "Auto-merging",
            "Auto-merging a\n",
            "1",
            "a",
            "CONFLICT (contents)",
            "CONFLICT (content): Merge conflict in a\n",
            "",
        ]
        .join("\0");
        let raw = raw.as_str();
        let parsed = parse_merge_tree(raw);
        assert_eq!(parsed.tree, "aecdb389");
        assert_eq!(parsed.conflicted, vec!["a".to_owned(), "b c".to_owned()]);
        assert_eq!(
            parsed.messages,
            "Auto-merging a\nCONFLICT (content): Merge conflict in a"
        );
    }

    #[test]
    fn parses_clean_merge_tree_output() {
        let parsed = parse_merge_tree("abc123\0");
        assert_eq!(parsed.tree, "abc123");
        assert!(parsed.conflicted.is_empty());
    }
}
