//! Modification times that let a build tool trust the cache: Cargo decides what to rebuild by
//! comparing source mtimes with its outputs'. A fresh checkout gives every file "now", newer
//! than any cached output, so everything would rebuild. Files the change did not touch are
//! byte-identical to the base commit the cache was built from, so they get one fixed old time
//! (in the base checkout too); files the change touched, and the directories holding them
//! (a deletion shows only there), get "now" and rebuild.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use takt_workspace::{freeze_mtimes, set_mtime as set};

/// Gives everything under `root` the frozen time, then `changed` (paths relative to `root`,
/// as git prints them) and their ancestors the current time. Symlinks are set themselves,
/// never followed. Blocking: call it off the async threads.
pub(crate) fn normalize(root: &Path, changed: &[String]) -> std::io::Result<()> {
    freeze_mtimes(root)?;
    let now = std::time::SystemTime::now();
    let mut touched: HashSet<PathBuf> = HashSet::new();
    for path in changed {
        let mut at = root.join(path);
        // A deleted file is gone; its directory (or the nearest one left) still tells.
        while !touched.contains(&at) && at.starts_with(root) && at != root {
            // A path below a link the change committed would lead out of the checkout.
            if fs_err::symlink_metadata(&at).is_ok() && !below_a_link(root, &at) {
                set(&at, now)?;
            }
            touched.insert(at.clone());
            if !at.pop() {
                break;
            }
        }
    }
    set(root, now)
}

/// Whether a directory between `root` and `path` is a symlink.
fn below_a_link(root: &Path, path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .take_while(|dir| *dir != root)
        .any(|dir| fs_err::symlink_metadata(dir).is_ok_and(|meta| meta.file_type().is_symlink()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use takt_workspace::FROZEN_MTIME_SECS;

    fn mtime(path: &Path) -> i64 {
        fs_err::symlink_metadata(path).unwrap().mtime()
    }

    #[test]
    fn untouched_files_are_frozen_and_the_change_is_now() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in ["a/same.rs", "a/changed.rs", "b/other.rs", "c/kept.rs"] {
            fs_err::create_dir_all(root.join(file).parent().unwrap()).unwrap();
            fs_err::write(root.join(file), "x").unwrap();
        }
        std::os::unix::fs::symlink("/nonexistent", root.join("link")).unwrap();
        normalize(
            root,
            &[
                "a/changed.rs".into(),
                "c/deleted.rs".into(),
                "new/gone".into(),
            ],
        )
        .unwrap();
        assert_eq!(mtime(&root.join("a/same.rs")), FROZEN_MTIME_SECS);
        assert_eq!(mtime(&root.join("b/other.rs")), FROZEN_MTIME_SECS);
        assert_eq!(mtime(&root.join("b")), FROZEN_MTIME_SECS);
        assert_eq!(mtime(&root.join("c/kept.rs")), FROZEN_MTIME_SECS);
        assert_eq!(
            mtime(&root.join("link")),
            FROZEN_MTIME_SECS,
            "the link itself"
        );
        let recent = mtime(&root.join("a/changed.rs"));
        assert!(recent > FROZEN_MTIME_SECS + 1_000_000);
        assert!(mtime(&root.join("a")) > FROZEN_MTIME_SECS + 1_000_000);
        assert!(
            mtime(&root.join("c")) > FROZEN_MTIME_SECS + 1_000_000,
            "the directory a file was deleted from"
        );
    }

    #[test]
    fn a_changed_path_under_a_committed_symlink_touches_nothing_outside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("passwd");
        fs_err::write(&victim, "x").unwrap();
        let old = filetime_of(&victim);
        let root = dir.path();
        // The base had `etc/passwd`; the change made `etc` a link out of the checkout.
        std::os::unix::fs::symlink(outside.path(), root.join("etc")).unwrap();
        normalize(root, &["etc/passwd".into(), "etc".into()]).unwrap();
        assert_eq!(filetime_of(&victim), old, "a file outside was touched");
        assert!(
            mtime(&root.join("etc")) > FROZEN_MTIME_SECS + 1_000_000,
            "the link itself"
        );
    }

    fn filetime_of(path: &Path) -> (i64, i64) {
        let meta = fs_err::metadata(path).unwrap();
        (meta.mtime(), meta.mtime_nsec())
    }
}
