//! Workspace confinement: every path a tool touches is resolved here first.
//!
//! A path may be relative to the workspace or absolute inside it. `..` is applied lexically and
//! may not climb above the workspace root. The result is then walked segment by segment on the
//! real file system: a segment that is a symlink is resolved (`canonicalize`) and must land
//! inside the workspace; a symlink whose target does not exist is refused (writing through it
//! could create a file anywhere). Once a segment does not exist, nothing below it can be a
//! symlink, so the rest is appended as is. Files are then opened by the resolved real path.
//!
//! Races with processes that change the tree between resolution and use (the `run` tool's own
//! commands can create symlinks) are out of scope: this is a guard against the model's
//! mistakes, not a sandbox.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::ToolError;

/// The workspace root, as given and canonicalized.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
    given: PathBuf,
    /// Where the agent's commands see the workspace when the sandbox shows it elsewhere: the
    /// paths they print start with it.
    shown: Option<PathBuf>,
}

/// A path resolved inside the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The real path (symlinks resolved) to open.
    pub real: PathBuf,
    /// The path relative to the workspace root with `/` separators (`.` for the root): what
    /// the model and the journal see.
    pub display: String,
}

impl Workspace {
    /// `path` must exist; it is canonicalized.
    pub fn new(path: &Path) -> std::io::Result<Workspace> {
        Ok(Workspace {
            root: fs_err::canonicalize(path)?,
            given: path.to_owned(),
            shown: None,
        })
    }

    /// Also takes absolute paths below `at`, where the agent's commands see the workspace.
    pub fn shown_at(mut self, at: Option<&Path>) -> Workspace {
        self.shown = at.map(Path::to_path_buf);
        self
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The root as the agent knows it: where its commands see the workspace.
    pub fn agent_root(&self) -> &Path {
        self.shown.as_deref().unwrap_or(&self.root)
    }

    /// Resolves `path` as the module docs describe.
    pub fn resolve(&self, path: &str) -> Result<Resolved, ToolError> {
        let raw = path.trim();
        let raw = if raw.is_empty() { "." } else { raw };
        let outside = |reason: String| ToolError::OutsideWorkspace {
            path: raw.to_owned(),
            reason,
        };
        let asked = Path::new(raw);
        let relative = if asked.is_absolute() {
            asked
                .strip_prefix(&self.root)
                .or_else(|_| asked.strip_prefix(&self.given))
                .or_else(|error| match &self.shown {
                    Some(shown) => asked.strip_prefix(shown),
                    None => Err(error),
                })
                .map_err(|_| {
                    outside(format!(
                        "absolute paths must lie inside the workspace {}; use a path relative to it",
                        self.agent_root().display()
                    ))
                })?
        } else {
            asked
        };
        let mut parts: Vec<OsString> = Vec::new();
        for component in relative.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Err(outside("`..` climbs above the workspace root".to_owned()));
                    }
                }
                Component::Normal(part) => parts.push(part.to_owned()),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(outside("not a relative path".to_owned()));
                }
            }
        }
        let mut current = self.root.clone();
        let mut missing = false;
        for part in parts {
            let next = current.join(&part);
            if missing {
                current = next;
                continue;
            }
            match std::fs::symlink_metadata(&next) {
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    missing = true;
                    current = next;
                }
                Err(error) => {
                    return Err(ToolError::Io {
                        path: raw.to_owned(),
                        message: error.to_string(),
                    });
                }
                Ok(meta) if meta.file_type().is_symlink() => {
                    let shown = self.display(&next);
                    let target = std::fs::canonicalize(&next).map_err(|_| {
                        outside(format!(
                            "`{shown}` is a symlink whose target does not exist or cannot be resolved"
                        ))
                    })?;
                    if !target.starts_with(&self.root) {
                        return Err(outside(format!(
                            "`{shown}` is a symlink to {}, outside the workspace",
                            target.display()
                        )));
                    }
                    current = target;
                }
                Ok(_) => current = next,
            }
        }
        Ok(Resolved {
            display: self.display(&current),
            real: current,
        })
    }

    /// Resolves a path a tool is about to write: also refuses the git directory.
    pub fn resolve_for_write(&self, path: &str) -> Result<Resolved, ToolError> {
        let resolved = self.resolve(path)?;
        if resolved.display == "." {
            return Err(ToolError::OutsideWorkspace {
                path: path.to_owned(),
                reason: "that is the workspace root itself".to_owned(),
            });
        }
        if resolved.display == ".git" || resolved.display.starts_with(".git/") {
            return Err(ToolError::OutsideWorkspace {
                path: path.to_owned(),
                reason: "the .git directory is managed by takt; change files, not git internals"
                    .to_owned(),
            });
        }
        Ok(resolved)
    }

    /// `real` relative to the root, `/`-separated; `.` for the root itself.
    pub fn display(&self, real: &Path) -> String {
        match real.strip_prefix(&self.root) {
            Ok(rest) if rest.as_os_str().is_empty() => ".".to_owned(),
            Ok(rest) => rest
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => real.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn absolute_paths_where_the_sandbox_shows_the_workspace_are_taken() {
        let (dir, workspace) = setup();
        let workspace = workspace.shown_at(Some(Path::new("/fixed/checkout")));
        assert_eq!(workspace.agent_root(), Path::new("/fixed/checkout"));
        let resolved = workspace.resolve("/fixed/checkout/src/a.rs").unwrap();
        assert_eq!(resolved.display, "src/a.rs");
        assert_eq!(resolved.real, workspace.root().join("src/a.rs"));
        for outside in ["/fixed/checkout/../secret", "/fixed/other/a.rs"] {
            assert!(workspace.resolve(outside).is_err(), "{outside}");
        }
        std::os::unix::fs::symlink(dir.path().join("outside"), workspace.root().join("out"))
            .unwrap();
        assert!(workspace.resolve("/fixed/checkout/out/secret").is_err());
    }

    fn setup() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(ws.join("src/inner")).unwrap();
        std::fs::write(ws.join("src/a.rs"), "a").unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), "s").unwrap();
        let workspace = Workspace::new(&ws).unwrap();
        (dir, workspace)
    }

    fn refused(ws: &Workspace, path: &str) -> String {
        match ws.resolve(path) {
            Err(error @ ToolError::OutsideWorkspace { .. }) => error.to_string(),
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn relative_absolute_and_dotdot_paths() {
        let (_dir, ws) = setup();
        assert_eq!(ws.resolve("src/a.rs").unwrap().display, "src/a.rs");
        assert_eq!(
            ws.resolve("./src/inner/../a.rs").unwrap().display,
            "src/a.rs"
        );
        assert_eq!(ws.resolve("").unwrap().display, ".");
        assert_eq!(
            ws.resolve("new/dir/file.txt").unwrap().display,
            "new/dir/file.txt"
        );
        let absolute = ws.root().join("src/a.rs");
        assert_eq!(
            ws.resolve(absolute.to_str().unwrap()).unwrap().real,
            absolute
        );
        assert!(refused(&ws, "../outside/secret").contains("climbs above"));
        assert!(refused(&ws, "src/../../x").contains("climbs above"));
        assert!(refused(&ws, "/etc/passwd").contains("inside the workspace"));
    }

    #[test]
    fn symlinks_must_stay_inside() {
        let (dir, ws) = setup();
        let root = ws.root().to_owned();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside/secret"), root.join("secret")).unwrap();
        std::os::unix::fs::symlink("src/inner", root.join("inner-link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), root.join("dangling")).unwrap();
        assert!(refused(&ws, "escape/secret").contains("outside the workspace"));
        assert!(refused(&ws, "escape/new-file").contains("outside the workspace"));
        assert!(refused(&ws, "secret").contains("symlink"));
        assert!(refused(&ws, "dangling").contains("does not exist"));
        let inside = ws.resolve("inner-link/x.txt").unwrap();
        assert_eq!(inside.display, "src/inner/x.txt");
    }

    #[test]
    fn writes_refuse_git_internals_and_the_root() {
        let (_dir, ws) = setup();
        assert!(ws.resolve_for_write(".git/config").is_err());
        assert!(ws.resolve_for_write(".").is_err());
        assert!(ws.resolve_for_write(".github/workflows/ci.yml").is_ok());
    }
}
