//! One fixed old modification time for trees that hold exactly a base commit's files.
//!
//! Build tools such as Cargo decide what to rebuild by comparing source mtimes with their
//! outputs'. A checkout gives every file "now", newer than any output built before it, so a
//! build cache of the same commit would be rebuilt whole. Golden trees and the checkouts warm
//! caches are built from therefore give every file the same old time: outputs built from one
//! are fresh for the other, and a file an agent or a change touches gets "now" and rebuilds.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

/// 2000-01-01T00:00:00Z: older than any cache takt builds, newer than the zero some tools
/// treat as "unknown".
pub const FROZEN_MTIME_SECS: i64 = 946_684_800;

/// Gives everything below `root` (not `root` itself) [`FROZEN_MTIME_SECS`]. Symlinks are set
/// themselves, never followed. Blocking: call it off the async threads.
pub fn freeze_mtimes(root: &Path) -> std::io::Result<()> {
    let frozen = UNIX_EPOCH + Duration::from_secs(FROZEN_MTIME_SECS.unsigned_abs());
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            }
            set_mtime(&entry.path(), frozen)?;
        }
    }
    Ok(())
}

/// Sets `path`'s access and modification times to `time`, never through a symlink at `path`.
pub fn set_mtime(path: &Path, time: SystemTime) -> std::io::Result<()> {
    let time = TimeSpec::from_duration(time.duration_since(UNIX_EPOCH).unwrap_or_default());
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(std::io::Error::from)
}
