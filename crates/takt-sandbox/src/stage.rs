//! Staging bind sources for a root daemon.
//!
//! bubblewrap runs as the unprivileged agent user, and resolves every bind source with that
//! user's permissions, so a workspace below a directory only root may enter (a `0700` HOME
//! or temp directory) could not be bound. The supervisor, still root and in a private mount
//! namespace, bind-mounts each source into a small tmpfs the agent user can traverse; the
//! mounts vanish with the namespace.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

pub(crate) struct Stage {
    root: PathBuf,
    next: usize,
}

impl Stage {
    /// Enters a private mount namespace and mounts the staging tmpfs. Must run before the
    /// process starts any thread.
    pub(crate) fn create(launch_id: &str) -> Result<Stage, String> {
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(mount namespace): {e}"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("making mounts private: {e}"))?;
        let root = std::env::temp_dir().join(format!("takt-stage-{launch_id}"));
        fs_err::create_dir_all(&root).map_err(|e| e.to_string())?;
        mount(
            Some("tmpfs"),
            &root,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755,size=1m"),
        )
        .map_err(|e| format!("mounting the staging tmpfs: {e}"))?;
        Ok(Stage { root, next: 0 })
    }

    /// A path the agent user can reach that shows `source`.
    pub(crate) fn expose(&mut self, source: &Path) -> Result<PathBuf, String> {
        let target = self.root.join(self.next.to_string());
        self.next += 1;
        if source.is_dir() {
            fs_err::create_dir(&target).map_err(|e| e.to_string())?;
        } else {
            fs_err::write(&target, b"").map_err(|e| e.to_string())?;
        }
        mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("staging {}: {e}", source.display()))?;
        Ok(target)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = umount2(&self.root, MntFlags::MNT_DETACH);
        let _ = fs_err::remove_dir(&self.root);
    }
}
