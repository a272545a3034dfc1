//! A frozen cache's seal: a digest of the stat data of everything in it, taken when it was
//! frozen and checked before each use. Any write, chmod, rename or `touch` changes an entry's
//! ctime, which no unprivileged program can set back, so a cache modified behind takt's back
//! (a gate run unconfined, as root, writing through `/proc/self/mountinfo`'s lowerdir) is
//! noticed and never used.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The digest of the tree at `root` (hex sha256). Blocking: call it off the async threads.
pub(crate) fn seal(root: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs_err::symlink_metadata(&path)?;
        let relative = path.strip_prefix(root).unwrap_or(&path);
        hasher.update(relative.as_os_str().as_encoded_bytes());
        hasher.update(
            format!(
                "\0{:o} {} {}:{} {} {}.{} {}.{}\n",
                meta.mode(),
                meta.len(),
                meta.uid(),
                meta.gid(),
                meta.ino(),
                meta.mtime(),
                meta.mtime_nsec(),
                meta.ctime(),
                meta.ctime_nsec()
            )
            .as_bytes(),
        );
        if meta.is_dir() {
            let mut children: Vec<_> = fs_err::read_dir(&path)?
                .map(|entry| entry.map(|entry| entry.path()))
                .collect::<Result<_, _>>()?;
            // Popped from the end: reversed so the walk is in name order, the same every time.
            children.sort();
            children.reverse();
            pending.extend(children);
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// The disk space the tree at `root` takes (allocated blocks, hard links counted once).
/// Blocking: call it off the async threads.
pub(crate) fn disk_usage(root: &Path) -> std::io::Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0u64;
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = fs_err::symlink_metadata(&path)?;
        if meta.nlink() < 2 || meta.is_dir() || seen.insert((meta.dev(), meta.ino())) {
            bytes = bytes.saturating_add(meta.blocks().saturating_mul(512));
        }
        if meta.is_dir() {
            for entry in fs_err::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn any_change_breaks_the_seal_and_reading_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("target");
        fs_err::create_dir_all(root.join("debug/deps")).unwrap();
        fs_err::write(root.join("debug/deps/libx.rlib"), "bytes").unwrap();
        let sealed = seal(&root).unwrap();
        assert_eq!(
            fs_err::read(root.join("debug/deps/libx.rlib")).unwrap(),
            b"bytes"
        );
        assert_eq!(seal(&root).unwrap(), sealed);

        // The same bytes written again still change the ctime.
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs_err::write(root.join("debug/deps/libx.rlib"), "bytes").unwrap();
        assert_ne!(seal(&root).unwrap(), sealed);
        let resealed = seal(&root).unwrap();
        fs_err::write(root.join("debug/new"), "").unwrap();
        assert_ne!(seal(&root).unwrap(), resealed);
    }

    #[test]
    fn disk_usage_counts_allocated_blocks_and_a_hard_link_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("target");
        fs_err::create_dir_all(root.join("debug")).unwrap();
        let empty = disk_usage(&root).unwrap();
        fs_err::write(root.join("debug/big"), vec![7u8; 1 << 20]).unwrap();
        let with_file = disk_usage(&root).unwrap();
        assert!(
            with_file - empty >= 1 << 20,
            "{with_file} - {empty} covers the MiB written"
        );
        fs_err::hard_link(root.join("debug/big"), root.join("debug/again")).unwrap();
        assert_eq!(disk_usage(&root).unwrap(), with_file);
    }
}
