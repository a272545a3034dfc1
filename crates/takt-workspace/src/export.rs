//! Clean copies of a commit for verification: the commit's tree written out from the mirror
//! with a private index, no worktree registration, no `.git` — nothing the agent wrote outside
//! the commit (ignored files, build output, git config) comes along.

use std::path::Path;

use crate::WorkspaceManager;
use crate::error::WorkspaceError;

impl WorkspaceManager {
    /// Writes the tree of `commit` (from the mirror) into `dest`, which must not exist yet, and
    /// returns the tree's id. `git archive` is not used on purpose: it honours the commit's own
    /// `export-ignore` attributes, so a change could hide files from its gates.
    pub async fn export_commit(&self, commit: &str, dest: &Path) -> Result<String, WorkspaceError> {
        let mirror = &self.settings().mirror_dir;
        let out = self
            .git()
            .cmd(mirror)
            .hardened()
            .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .arg(format!("{commit}^{{tree}}"))
            .output_allowing(&[0, 1])
            .await
            .map_err(|e| WorkspaceError::git(format!("reading the tree of {commit}"), e))?;
        if !out.success() {
            return Err(WorkspaceError::UnknownCommit {
                commit: commit.to_owned(),
                mirror: mirror.clone(),
            });
        }
        let tree = out.stdout.trim().to_owned();
        fs_err::tokio::create_dir_all(dest)
            .await
            .map_err(|e| WorkspaceError::io("creating a verification checkout", e))?;
        let index = dest.with_extension("index");
        let with_index = |command: crate::git::GitCommand| {
            command
                .env("GIT_INDEX_FILE", &index)
                .env("GIT_DIR", mirror)
                .env("GIT_WORK_TREE", dest)
        };
        with_index(self.git().cmd(dest).hardened())
            .args(["read-tree", &tree])
            .run()
            .await
            .map_err(|e| WorkspaceError::git(format!("reading the tree of {commit}"), e))?;
        let written = with_index(self.git().cmd(dest).hardened())
            .args(["checkout-index", "--all", "--force"])
            .run()
            .await
            .map_err(|e| WorkspaceError::git(format!("writing out {commit}"), e));
        let _ = fs_err::tokio::remove_file(&index).await;
        written?;
        Ok(tree)
    }

    /// The best common ancestor of `commit` and `base` in the mirror: what the change is
    /// measured against.
    pub async fn merge_base(&self, commit: &str, base: &str) -> Result<String, WorkspaceError> {
        let mirror = &self.settings().mirror_dir;
        let out = self
            .git()
            .cmd(mirror)
            .hardened()
            .args(["merge-base", commit, base])
            .run()
            .await
            .map_err(|e| WorkspaceError::git(format!("finding the base of {commit}"), e))?;
        Ok(out.trim().to_owned())
    }

    /// `git diff <args> <base> <commit>` in the mirror, raw.
    pub async fn diff(
        &self,
        base: &str,
        commit: &str,
        args: &[&str],
    ) -> Result<String, WorkspaceError> {
        let mirror = &self.settings().mirror_dir;
        self.git()
            .cmd(mirror)
            .hardened()
            .arg("diff")
            .args(args)
            .args([base, commit])
            .run()
            .await
            .map_err(|e| WorkspaceError::git(format!("diffing {base}..{commit}"), e))
    }

    /// The text of `path` at `commit` (lossily decoded), or `None` when the commit has no such
    /// file.
    pub async fn file_at(
        &self,
        commit: &str,
        path: &str,
    ) -> Result<Option<String>, WorkspaceError> {
        let mirror = &self.settings().mirror_dir;
        let out = self
            .git()
            .cmd(mirror)
            .hardened()
            .args(["cat-file", "blob", &format!("{commit}:{path}")])
            .output_allowing(&[0, 128])
            .await
            .map_err(|e| WorkspaceError::git(format!("reading {path} at {commit}"), e))?;
        Ok(out.success().then_some(out.stdout))
    }

    /// Attaches `note` to `commit` under `refs/notes/<notes_ref>` in the mirror, replacing an
    /// earlier note.
    pub async fn write_note(
        &self,
        notes_ref: &str,
        commit: &str,
        note: &str,
    ) -> Result<(), WorkspaceError> {
        let mirror = &self.settings().mirror_dir;
        self.git()
            .cmd(mirror)
            .hardened()
            .takt_identity()
            .args([
                "notes",
                &format!("--ref={notes_ref}"),
                "add",
                "-f",
                "-F",
                "-",
                commit,
            ])
            .stdin(note.as_bytes().to_vec())
            .run()
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("writing the {notes_ref} note on {commit}"), e)
            })?;
        Ok(())
    }

    /// The note on `commit` under `refs/notes/<notes_ref>` in the mirror, if any.
    pub async fn read_note(
        &self,
        notes_ref: &str,
        commit: &str,
    ) -> Result<Option<String>, WorkspaceError> {
        let mirror = &self.settings().mirror_dir;
        let out = self
            .git()
            .cmd(mirror)
            .hardened()
            .args(["notes", &format!("--ref={notes_ref}"), "show", commit])
            .output_allowing(&[0, 1])
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("reading the {notes_ref} note on {commit}"), e)
            })?;
        Ok(out.success().then_some(out.stdout))
    }

    /// Copies `refs/notes/<notes_ref>` from the mirror into a local source repository, so the
    /// notes travel with the merged commits. A remote source keeps them in the mirror (the
    /// forge publishes them).
    pub async fn publish_notes(&self, notes_ref: &str) -> Result<(), WorkspaceError> {
        let crate::RepoSource::Path(source) = &self.settings().source else {
            return Ok(());
        };
        let mirror = &self.settings().mirror_dir;
        let refname = format!("refs/notes/{notes_ref}");
        self.git()
            .cmd(source)
            .args(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"])
            .arg(mirror)
            .arg(format!("+{refname}:{refname}"))
            .run()
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("publishing {refname} to {}", source.display()), e)
            })?;
        Ok(())
    }
}
