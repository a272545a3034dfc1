//! Files the daemon's side shares with a sandboxed process through a directory the sandbox may
//! write (a run's agent directory, a launch's io directory). Between the sandboxed process's
//! steps any name there may be a link it planted to a file of the host, or a FIFO that would
//! block a reader; the side outside runs with more privileges (root, often) and must never
//! write or read through either.

use std::io::{self, Read, Write};
use std::path::Path;

use fs_err::os::unix::fs::OpenOptionsExt;
use nix::fcntl::OFlag;

/// Writes `bytes` as a new file at `path`: whatever is there is removed first and the file is
/// created exclusively, so a link put back in between fails the write instead of being
/// followed. Blocking.
pub fn write_fresh(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(path)?,
        Ok(_) => fs_err::remove_file(path)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(bytes)
}

/// The text of the plain file at `path`, at most `limit` bytes of it; `None` when there is
/// none, or when it is a link, a FIFO or anything but a plain file. Blocking.
pub fn read_plain(path: &Path, limit: u64) -> Option<String> {
    let file = fs_err::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(limit).read_to_string(&mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn links_and_fifos_are_neither_written_through_nor_read() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs_err::write(&victim, "precious").unwrap();
        let shared = dir.path().join("shared");
        std::os::unix::fs::symlink(&victim, &shared).unwrap();
        assert_eq!(read_plain(&shared, 100), None);
        write_fresh(&shared, b"mine").unwrap();
        assert_eq!(fs_err::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(read_plain(&shared, 2).as_deref(), Some("mi"));

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(
            read_plain(&fifo, 100),
            None,
            "returns at once, reads nothing"
        );
    }
}
