//! Where workspaces live and the safety invariants on those paths (R-100, R-105..R-107).
//!
//! A workspace path is always `<root>/<key>`: an absolute, lexically normalized path directly
//! under the root, never the root itself, whose real location (after resolving symlinks segment
//! by segment) is still under the root's real location. The same check runs before anything is
//! removed, so a symlink planted in the root can never turn a cleanup into a deletion elsewhere.

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::error::WorkspaceError;
use crate::key::{is_valid_key, workspace_key};

/// The workspace root and the paths under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceLayout {
    root: PathBuf,
}

impl WorkspaceLayout {
    /// A layout rooted at `root`, made absolute (against the current directory) and lexically
    /// normalized. The root need not exist yet.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, WorkspaceError> {
        let root = absolute_normalized(root.as_ref())?;
        if root.parent().is_none() {
            return Err(WorkspaceError::InvalidPath {
                path: root,
                reason: "the workspace root must not be the file system root: set workspace.root to a dedicated directory".into(),
            });
        }
        Ok(WorkspaceLayout { root })
    }

    /// The absolute, normalized root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<workspace_key(identifier)>`, after the containment checks of
    /// [`WorkspaceLayout::check_contained`].
    pub fn path_for(&self, identifier: &str) -> Result<PathBuf, WorkspaceError> {
        let path = self.root.join(workspace_key(identifier));
        self.check_contained(&path)?;
        Ok(path)
    }

    /// Checks that `path` may be used (or removed) as a workspace: absolute after
    /// normalization, exactly one level under the root, named by a valid key, not the root,
    /// and not escaping the root through a symlink. Returns the normalized path.
    pub fn check_contained(&self, path: &Path) -> Result<PathBuf, WorkspaceError> {
        let invalid = |reason: String| WorkspaceError::InvalidPath {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_absolute() {
            return Err(invalid("a workspace path must be absolute".into()));
        }
        let normalized = normalize(path);
        if normalized == self.root {
            return Err(invalid(format!(
                "the path is the workspace root {} itself; a workspace must be a directory under it",
                self.root.display()
            )));
        }
        let Ok(rest) = normalized.strip_prefix(&self.root) else {
            return Err(invalid(format!(
                "the path is outside the workspace root {}",
                self.root.display()
            )));
        };
        let mut components = rest.components();
        let name = match (components.next(), components.next()) {
            (Some(Component::Normal(name)), None) => name.to_string_lossy().into_owned(),
            _ => {
                return Err(invalid(format!(
                    "a workspace must be a direct child of the workspace root {}",
                    self.root.display()
                )));
            }
        };
        if !is_valid_key(&name) {
            return Err(invalid(format!(
                "`{name}` is not a workspace key (only A-Z a-z 0-9 . _ - are allowed)"
            )));
        }
        self.check_no_symlink_escape(&normalized)?;
        Ok(normalized)
    }

    /// Resolves the root and then `path` segment by segment; every existing prefix must resolve
    /// to a location under the real root (and the workspace must not resolve to the root).
    fn check_no_symlink_escape(&self, path: &Path) -> Result<(), WorkspaceError> {
        let real_root = match fs_err::canonicalize(&self.root) {
            Ok(real) => real,
            // Nothing exists under a root that does not exist: nothing can escape.
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(WorkspaceError::Io {
                    action: "resolving the workspace root".into(),
                    source,
                });
            }
        };
        let Ok(rest) = path.strip_prefix(&self.root) else {
            return Ok(());
        };
        let mut current = self.root.clone();
        for component in rest.components() {
            current.push(component);
            let meta = match fs_err::symlink_metadata(&current) {
                Ok(meta) => meta,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(source) => {
                    return Err(WorkspaceError::Io {
                        action: "inspecting a workspace path".into(),
                        source,
                    });
                }
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            let target = fs_err::read_link(&current)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            let escape = |resolved: String| WorkspaceError::SymlinkEscape {
                path: current.clone(),
                target: target.clone(),
                resolved,
                root: real_root.clone(),
            };
            match fs_err::canonicalize(&current) {
                Ok(resolved) => {
                    if resolved == real_root || !resolved.starts_with(&real_root) {
                        return Err(escape(resolved.display().to_string()));
                    }
                }
                // A dangling link: it points nowhere we can verify, so treat it as an escape
                // unless its target is a relative name that stays inside the root.
                Err(_) => {
                    let parent = current.parent().unwrap_or(&self.root);
                    let lexical = normalize(&parent.join(&target));
                    if !lexical.starts_with(&self.root) || lexical == self.root {
                        return Err(escape(format!("{} (dangling)", lexical.display())));
                    }
                }
            }
        }
        Ok(())
    }

    /// Validates that an agent's working directory is the workspace of `identifier`.
    pub fn check_cwd(&self, cwd: &Path, identifier: &str) -> Result<(), WorkspaceError> {
        let expected = self.path_for(identifier)?;
        let actual = self.check_contained(&absolute_normalized(cwd)?)?;
        if actual != expected {
            return Err(WorkspaceError::InvalidPath {
                path: cwd.to_path_buf(),
                reason: format!(
                    "the agent's working directory must be the workspace of {identifier} ({})",
                    expected.display()
                ),
            });
        }
        Ok(())
    }
}

/// `path` made absolute against the current directory and lexically normalized.
pub fn absolute_normalized(path: &Path) -> Result<PathBuf, WorkspaceError> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|source| WorkspaceError::Io {
            action: format!(
                "resolving the relative path {} against the current directory",
                path.display()
            ),
            source,
        })?;
        cwd.join(path)
    };
    Ok(normalize(&absolute))
}

/// Lexical normalization: drops `.` segments and resolves `..` against the preceding segment
/// (never above the file system root). Does not touch the file system.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(prefix) => out.push(prefix.as_os_str()),
            Component::RootDir => out.push(Component::RootDir.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            Component::Normal(name) => out.push(name),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> (tempfile::TempDir, WorkspaceLayout) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        fs_err::create_dir(&root).unwrap();
        let layout = WorkspaceLayout::new(&root).unwrap();
        (dir, layout)
    }

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
    }

    #[test]
    fn r106_nasty_identifiers_stay_directly_under_the_root() {
        let (_dir, layout) = layout();
        let long = "z".repeat(5000);
        let ids = [
            "../x",
            "a/b",
            "..",
            ".",
            "",
            "/etc",
            "$(rm -rf ~)",
            "a;rm -rf /",
            "`id`",
            "ü/..",
            "a\0b",
            "..\\..",
            long.as_str(),
        ];
        for id in ids {
            let path = layout.path_for(id).unwrap();
            assert_eq!(
                path.parent(),
                Some(layout.root()),
                "{id:?} -> {}",
                path.display()
            );
            assert_ne!(path, layout.root());
        }
    }

    #[test]
    fn r106_paths_outside_or_equal_to_the_root_are_rejected() {
        let (dir, layout) = layout();
        let root = layout.root().to_path_buf();
        let bad = [
            root.clone(),
            root.join("."),
            root.join("a/.."),
            root.join("../ws2"),
            root.join("a/b"),
            dir.path().to_path_buf(),
            PathBuf::from("/tmp"),
            PathBuf::from("relative/path"),
            root.join("bad name"),
        ];
        for path in bad {
            let result = layout.check_contained(&path);
            assert!(
                matches!(result, Err(WorkspaceError::InvalidPath { .. })),
                "{} -> {result:?}",
                path.display()
            );
        }
        assert_eq!(
            layout.check_contained(&root.join("ok")).unwrap(),
            root.join("ok")
        );
        assert_eq!(
            layout.check_contained(&root.join("x/../ok")).unwrap(),
            root.join("ok")
        );
    }

    #[test]
    fn r106_symlink_escape_is_rejected() {
        let (dir, layout) = layout();
        let outside = dir.path().join("outside");
        fs_err::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, layout.root().join("evil")).unwrap();
        let err = layout.path_for("evil").unwrap_err();
        assert!(
            matches!(err, WorkspaceError::SymlinkEscape { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("outside"), "{err}");
        // A link to the root itself is an escape too: the workspace would be the root.
        std::os::unix::fs::symlink(layout.root(), layout.root().join("loop")).unwrap();
        assert!(layout.path_for("loop").is_err());
        // Dangling links pointing outside are rejected as well.
        std::os::unix::fs::symlink("/nonexistent/takt", layout.root().join("dangling")).unwrap();
        assert!(layout.path_for("dangling").is_err());
    }

    #[test]
    fn a_symlinked_root_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs_err::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let layout = WorkspaceLayout::new(&link).unwrap();
        fs_err::create_dir(link.join("ABC-1")).unwrap();
        assert_eq!(layout.path_for("ABC-1").unwrap(), link.join("ABC-1"));
    }

    #[test]
    fn r105_agent_cwd_must_be_the_issue_workspace() {
        let (_dir, layout) = layout();
        let ws = layout.path_for("ABC-1").unwrap();
        layout.check_cwd(&ws, "ABC-1").unwrap();
        assert!(layout.check_cwd(&ws, "ABC-2").is_err());
        assert!(layout.check_cwd(layout.root(), "ABC-1").is_err());
    }

    #[test]
    fn the_file_system_root_is_not_a_workspace_root() {
        assert!(WorkspaceLayout::new("/").is_err());
    }
}
