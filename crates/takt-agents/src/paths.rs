//! Path checks shared by the backends' approval policies: is a path the agent names inside its
//! workspace, once `.`/`..` and the symlinks that exist are resolved?

use std::path::{Component, Path, PathBuf};

/// Folds `.` and `..` without touching the file system.
pub fn fold(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Folds `path`, then canonicalizes its longest existing ancestor and appends the rest, so a
/// symlink that exists is followed (one inside the workspace pointing out is seen as outside).
pub fn resolve(path: &Path) -> PathBuf {
    let lexical = fold(path);
    let mut existing = lexical.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for name in rest.iter().rev() {
                out.push(name);
            }
            return out;
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return lexical,
        }
    }
}

/// Whether `path` (relative paths are taken from `workspace`) lies inside `workspace`, which
/// must be canonical.
pub fn inside(path: &Path, workspace: &Path) -> bool {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        workspace.join(path)
    };
    resolve(&joined).starts_with(workspace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_dot_and_symlinks_out_are_outside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(ws.join("real")).expect("dir");
        std::os::unix::fs::symlink("/etc", ws.join("link")).expect("symlink");
        assert!(inside(Path::new("real/new/file"), &ws));
        assert!(inside(Path::new("./a/../b"), &ws));
        assert!(!inside(Path::new("../x"), &ws));
        assert!(!inside(Path::new("link/passwd"), &ws));
        assert!(!inside(Path::new("/etc/passwd"), &ws));
    }
}
