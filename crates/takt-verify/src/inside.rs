//! Reading and writing inside a checkout as the daemon. A checkout holds whatever the change
//! committed, symlinks included, and the daemon is more privileged than the agent: it must
//! never read or write through a link that leads out of the checkout.

use std::path::Path;

/// The text of `relative` under `root`, or `None` when it is missing, unreadable, or resolves
/// (through any symlink on the way) to somewhere outside `root`.
pub(crate) fn read_text(root: &Path, relative: &str) -> Option<String> {
    let root = fs_err::canonicalize(root).ok()?;
    let path = fs_err::canonicalize(root.join(relative)).ok()?;
    if !path.starts_with(&root) {
        tracing::warn!(path = %path.display(), "not read: a symlink in the checkout leads out of it");
        return None;
    }
    fs_err::read_to_string(path).ok()
}

/// Makes `dir` a real directory, replacing a symlink or file the change committed there (its
/// parent must already be real): what the daemon then writes into it stays in the checkout.
pub(crate) async fn real_dir(dir: &Path) -> std::io::Result<()> {
    match fs_err::tokio::symlink_metadata(dir).await {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => fs_err::tokio::remove_file(dir).await?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    fs_err::tokio::create_dir(dir).await
}

/// Clears the way for a new file at `path`: whatever the change committed there (a symlink, a
/// directory) is removed, so the write creates a plain file in the checkout.
pub(crate) async fn clear_for_file(path: &Path) -> std::io::Result<()> {
    match fs_err::tokio::symlink_metadata(path).await {
        Ok(meta) if meta.is_dir() => fs_err::tokio::remove_dir_all(path).await,
        Ok(meta) if !meta.is_file() => fs_err::tokio::remove_file(path).await,
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}
