//! The bare mirror of the source repository that every workspace is a worktree of.
//!
//! The mirror fetches the source's branches into `refs/remotes/origin/*`, never into
//! `refs/heads/*`: the mirror's own `refs/heads/` holds only task branches (`takt/*`) and
//! `refs/takt/` holds attempt refs, and a `fetch --prune` must never delete them (which a
//! `--mirror` refspec would).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::WorkspaceError;
use crate::git::GitError;
use crate::manager::{BaseRef, RepoSource, WorkspaceManager};

/// The mirror's fetch refspec.
pub const MIRROR_REFSPEC: &str = "+refs/heads/*:refs/remotes/origin/*";

impl WorkspaceManager {
    /// Brings the mirror up to date with the source and resolves the base branch.
    ///
    /// The first call clones the source (`git clone --bare`, into a temporary directory renamed
    /// into place, so a crash never leaves a half-made mirror) and sets the fetch refspec to
    /// [`MIRROR_REFSPEC`]; later calls `git fetch --prune origin`. The base branch is the
    /// configured one, else the branch the source's HEAD points to.
    ///
    /// The source and the mirror are validated on the first call only, and a local source whose
    /// branches already match the mirror's is not fetched: dispatch latency is mostly git
    /// process startups, so each one saved counts.
    pub async fn sync_mirror(&self) -> Result<BaseRef, WorkspaceError> {
        use std::sync::atomic::Ordering;
        let validated = self.validated.load(Ordering::Acquire);
        if let RepoSource::Path(path) = &self.settings.source
            && !validated
        {
            self.check_source_repository(path).await?;
        }
        let mirror = self.settings.mirror_dir.clone();
        let _guard = self.mirror_lock.lock().await;
        let synced = async {
            if fs_err::tokio::symlink_metadata(&mirror).await.is_ok() {
                if !validated {
                    self.check_mirror(&mirror).await?;
                }
                if !self.mirror_is_current(&mirror).await {
                    self.fetch(&mirror).await?;
                }
            } else {
                self.clone_mirror(&mirror).await?;
            }
            self.resolve_base(&mirror).await
        }
        .await;
        self.validated.store(synced.is_ok(), Ordering::Release);
        synced
    }

    /// For a local source: whether the mirror's `refs/remotes/origin/*` already equal the
    /// source's branches (two cheap `for-each-ref`s instead of a fetch). A remote source is
    /// always fetched.
    async fn mirror_is_current(&self, mirror: &Path) -> bool {
        let RepoSource::Path(source) = &self.settings.source else {
            return false;
        };
        let listing = |dir: &Path, prefix: &'static str, strip: u8| {
            let git = self.git.clone();
            let dir = dir.to_path_buf();
            async move {
                git.run(
                    &dir,
                    [
                        "for-each-ref",
                        &format!("--format=%(objectname) %(refname:strip={strip})"),
                        prefix,
                    ],
                )
                .await
                .ok()
            }
        };
        let (theirs, ours) = tokio::join!(
            listing(source, "refs/heads", 2),
            listing(mirror, "refs/remotes/origin", 3)
        );
        let (Some(theirs), Some(ours)) = (theirs, ours) else {
            return false;
        };
        let ours: Vec<&str> = ours
            .lines()
            .filter(|line| !line.ends_with(" HEAD"))
            .collect();
        theirs.lines().collect::<Vec<_>>() == ours
    }

    /// Validates a local `workspace.repo`: it exists, is a repository, and is its top level.
    async fn check_source_repository(&self, path: &Path) -> Result<(), WorkspaceError> {
        match fs_err::tokio::metadata(path).await {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(WorkspaceError::SourceNotRepository {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(WorkspaceError::SourceMissing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(WorkspaceError::io("inspecting workspace.repo", e)),
        }
        let query = self
            .git
            .run(
                path,
                ["rev-parse", "--is-bare-repository", "--absolute-git-dir"],
            )
            .await;
        let query = match query {
            Ok(out) => out,
            Err(GitError::Failed { stderr, .. }) if stderr.contains("not a git repository") => {
                return Err(WorkspaceError::SourceNotRepository {
                    path: path.to_path_buf(),
                });
            }
            // Anything else (e.g. "dubious ownership") is explained by git's own message.
            Err(e) => {
                return Err(WorkspaceError::git(
                    format!("inspecting workspace.repo {}", path.display()),
                    e,
                ));
            }
        };
        let mut lines = query.lines();
        let bare = lines.next() == Some("true");
        let top = if bare {
            PathBuf::from(lines.next().unwrap_or_default())
        } else {
            let top = self
                .git
                .run(path, ["rev-parse", "--show-toplevel"])
                .await
                .map_err(|e| {
                    WorkspaceError::git(format!("inspecting workspace.repo {}", path.display()), e)
                })?;
            PathBuf::from(top)
        };
        let real_path = fs_err::tokio::canonicalize(path)
            .await
            .map_err(|e| WorkspaceError::io("resolving workspace.repo", e))?;
        let real_top = fs_err::tokio::canonicalize(&top).await.unwrap_or(top);
        if real_path != real_top {
            return Err(WorkspaceError::SourceNotTopLevel {
                path: path.to_path_buf(),
                toplevel: real_top,
            });
        }
        Ok(())
    }

    /// Checks that an existing mirror is a bare repository and points at the configured source.
    async fn check_mirror(&self, mirror: &Path) -> Result<(), WorkspaceError> {
        let invalid = |detail: String| WorkspaceError::MirrorInvalid {
            path: mirror.to_path_buf(),
            detail,
        };
        let bare = self
            .git
            .run(mirror, ["rev-parse", "--is-bare-repository"])
            .await
            .map_err(|e| invalid(e.to_string()))?;
        if bare != "true" {
            return Err(invalid("it is not a bare repository".into()));
        }
        let real_mirror = fs_err::tokio::canonicalize(mirror)
            .await
            .map_err(|e| WorkspaceError::io("resolving the mirror", e))?;
        let git_dir = self
            .git
            .run(mirror, ["rev-parse", "--absolute-git-dir"])
            .await
            .map_err(|e| invalid(e.to_string()))?;
        if fs_err::tokio::canonicalize(&git_dir).await.ok().as_deref()
            != Some(real_mirror.as_path())
        {
            return Err(invalid(format!(
                "git uses the repository at {git_dir} from there"
            )));
        }
        let source = self.source_arg();
        let url = self
            .git
            .cmd(mirror)
            .args(["config", "--get", "remote.origin.url"])
            .output_allowing(&[0, 1])
            .await
            .map_err(|e| WorkspaceError::git("reading the mirror's origin", e))?;
        if url.stdout.trim() != source {
            tracing::info!(mirror = %mirror.display(), from = url.stdout.trim(), to = %source, "workspace.repo changed; repointing the mirror");
            let command = if url.success() { "set-url" } else { "add" };
            self.git
                .run(mirror, ["remote", command, "origin", &source])
                .await
                .map_err(|e| WorkspaceError::git("repointing the mirror at workspace.repo", e))?;
        }
        self.git
            .run(
                mirror,
                [
                    "config",
                    "--replace-all",
                    "remote.origin.fetch",
                    MIRROR_REFSPEC,
                ],
            )
            .await
            .map_err(|e| WorkspaceError::git("setting the mirror's fetch refspec", e))?;
        Ok(())
    }

    async fn fetch(&self, mirror: &Path) -> Result<(), WorkspaceError> {
        self.git
            .run(mirror, ["fetch", "--prune", "--quiet", "origin"])
            .await
            .map_err(|e| {
                WorkspaceError::git(
                    format!(
                        "fetching workspace.repo {} into the mirror {}",
                        self.settings.source,
                        mirror.display()
                    ),
                    e,
                )
            })?;
        Ok(())
    }

    /// Clones into a temporary sibling directory, configures it, and renames it into place.
    async fn clone_mirror(&self, mirror: &Path) -> Result<(), WorkspaceError> {
        let parent = mirror.parent().unwrap_or(Path::new("/")).to_path_buf();
        fs_err::tokio::create_dir_all(&parent)
            .await
            .map_err(|e| WorkspaceError::io("creating the mirror's parent directory", e))?;
        let name = mirror
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mirror.git".into());
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
        let result = self.build_mirror(&parent, &tmp).await;
        let result = match result {
            Ok(()) => fs_err::tokio::rename(&tmp, mirror)
                .await
                .map_err(|e| WorkspaceError::io("moving the new mirror into place", e)),
            Err(error) => Err(error),
        };
        if result.is_err()
            && let Err(error) = fs_err::tokio::remove_dir_all(&tmp).await
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %tmp.display(), error = %error, "could not remove a temporary mirror");
        }
        if result.is_ok() {
            tracing::info!(mirror = %mirror.display(), source = %self.settings.source, "mirror created");
        }
        result
    }

    async fn build_mirror(&self, parent: &Path, tmp: &Path) -> Result<(), WorkspaceError> {
        let source = self.source_arg();
        self.git
            .cmd(parent)
            .args(["clone", "--bare", "--quiet", "--", &source])
            .arg(tmp)
            .run()
            .await
            .map_err(|e| {
                WorkspaceError::git(format!("cloning workspace.repo {source} into a mirror"), e)
            })?;
        self.git
            .run(
                tmp,
                [
                    "config",
                    "--replace-all",
                    "remote.origin.fetch",
                    MIRROR_REFSPEC,
                ],
            )
            .await
            .map_err(|e| WorkspaceError::git("setting the mirror's fetch refspec", e))?;
        // A bare clone copies the source's branches into refs/heads/; that namespace is for
        // task branches only, so drop the copies (they are fetched into refs/remotes/origin/).
        let heads = self
            .git
            .run(tmp, ["for-each-ref", "--format=%(refname)", "refs/heads/"])
            .await
            .map_err(|e| WorkspaceError::git("listing the new mirror's branches", e))?;
        let deletions: String = heads
            .lines()
            .filter(|line| !line.is_empty())
            .map(|name| format!("delete {name}\n"))
            .collect();
        if !deletions.is_empty() {
            self.git
                .cmd(tmp)
                .args(["update-ref", "--stdin"])
                .stdin(deletions)
                .run()
                .await
                .map_err(|e| WorkspaceError::git("clearing the new mirror's copied branches", e))?;
        }
        self.fetch(tmp).await
    }

    /// Resolves the base branch in the mirror to `refs/remotes/origin/<base>`.
    async fn resolve_base(&self, mirror: &Path) -> Result<BaseRef, WorkspaceError> {
        // A configured base branch, once validated, only has its tip looked up again. Without
        // one the base follows the source's HEAD branch, which is read every time.
        if let Some(branch) = self.base_branch_name.get()
            && let Ok(Some(sha)) = self
                .git
                .rev_parse(mirror, &format!("refs/remotes/origin/{branch}"))
                .await
        {
            return Ok(BaseRef {
                branch: branch.clone(),
                sha,
            });
        }
        let base = self.resolve_base_fully(mirror).await?;
        if self.settings.base_branch.is_some() {
            let _ = self.base_branch_name.set(base.branch.clone());
        }
        Ok(base)
    }

    async fn resolve_base_fully(&self, mirror: &Path) -> Result<BaseRef, WorkspaceError> {
        let source = self.settings.source.to_string();
        let remotes = self
            .git
            .run(
                mirror,
                [
                    "for-each-ref",
                    "--format=%(refname)",
                    "refs/remotes/origin/",
                ],
            )
            .await
            .map_err(|e| WorkspaceError::git("listing the mirror's branches", e))?;
        let available: Vec<String> = remotes
            .lines()
            .filter_map(|r| r.strip_prefix("refs/remotes/origin/"))
            .filter(|b| *b != "HEAD")
            .map(str::to_owned)
            .collect();
        if available.is_empty() {
            return Err(WorkspaceError::SourceEmpty {
                source_repo: source,
            });
        }
        let branch = match &self.settings.base_branch {
            Some(branch) => branch.clone(),
            None => self.source_head_branch(mirror).await?,
        };
        self.check_ref_name(&format!("refs/heads/{branch}"), "workspace.base_branch")
            .await?;
        let sha = self
            .git
            .rev_parse(mirror, &format!("refs/remotes/origin/{branch}"))
            .await
            .map_err(|e| WorkspaceError::git(format!("resolving the base branch {branch}"), e))?;
        match sha {
            Some(sha) => Ok(BaseRef { branch, sha }),
            None => Err(WorkspaceError::BaseBranchMissing {
                branch,
                source_repo: source,
                available,
            }),
        }
    }

    /// The branch the source's HEAD points to, asked of the source itself.
    async fn source_head_branch(&self, mirror: &Path) -> Result<String, WorkspaceError> {
        // A local source answers with one cheap `symbolic-ref` instead of an upload-pack.
        if let RepoSource::Path(source) = &self.settings.source
            && let Ok(Some(head)) = self.git.symbolic_ref(source, "HEAD").await
            && let Some(branch) = head.strip_prefix("refs/heads/")
        {
            return Ok(branch.to_owned());
        }
        let out = self
            .git
            .run(mirror, ["ls-remote", "--symref", "origin", "HEAD"])
            .await
            .map_err(|e| {
                WorkspaceError::git(
                    format!(
                        "asking workspace.repo {} for its HEAD branch",
                        self.settings.source
                    ),
                    e,
                )
            })?;
        out.lines()
            .find_map(|line| {
                let rest = line.strip_prefix("ref: refs/heads/")?;
                let (branch, name) = rest.split_once('\t')?;
                (name == "HEAD").then(|| branch.to_owned())
            })
            .ok_or_else(|| WorkspaceError::NoDefaultBranch {
                source_repo: self.settings.source.to_string(),
            })
    }

    /// The source as a git argument.
    pub(crate) fn source_arg(&self) -> String {
        match &self.settings.source {
            RepoSource::Path(path) => path.display().to_string(),
            RepoSource::Url(url) => url.clone(),
        }
    }
}
