//! The state lock: one daemon per state directory.
//!
//! An OS file lock (`flock`, through std's `File::try_lock`) on `<state_dir>/daemon.lock`, not
//! a pid file: the kernel drops the lock when its holder exits for any reason, including
//! `kill -9`, so a crash never leaves a stale lock behind. The holder writes its pid into the
//! file only so that the error can name it. std opens files close-on-exec, so child processes
//! (agents, gates) do not inherit the lock.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fs_err::os::unix::fs::{FileExt, OpenOptionsExt};
use std::fs::TryLockError;

use crate::error::LockError;

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "daemon.lock";

/// Proof that this process is the only daemon on a state directory. The lock is released when
/// this value is dropped (or the process dies).
#[derive(Debug)]
pub struct StateLock {
    file: fs_err::File,
    state_dir: PathBuf,
}

impl StateLock {
    /// Takes the lock on `state_dir` (created with mode 0700 when missing) without waiting.
    ///
    /// Fails with [`LockError::Held`] naming the holder's pid when another process has it.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        create_private_dir(state_dir)?;
        let file = open_lock_file(state_dir)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pid: read_pid(&file),
                    state_dir: state_dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(err)) => {
                return Err(LockError::Io(std::io::Error::new(
                    err.kind(),
                    format!("failed to lock {}: {err}", file.path().display()),
                )));
            }
        }
        file.set_len(0)?;
        file.write_all_at(std::process::id().to_string().as_bytes(), 0)?;
        tracing::debug!(lock = %file.path().display(), "took the state lock");
        Ok(StateLock {
            file,
            state_dir: state_dir.to_path_buf(),
        })
    }

    /// Whether some process holds the lock on `state_dir`, and if so its pid (`None` when the
    /// lock is free, or — rarely — when the holder's pid cannot be read).
    ///
    /// Probes by taking the lock for an instant, so an `acquire` racing with this call may see
    /// it as held.
    pub fn holder(state_dir: &Path) -> Option<u32> {
        let path = state_dir.join(LOCK_FILE);
        let file = fs_err::OpenOptions::new().read(true).open(path).ok()?;
        match file.try_lock() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(TryLockError::WouldBlock) => {
                // The holder writes its pid right after locking; give it a moment.
                for _ in 0..10 {
                    if let Some(pid) = read_pid(&file) {
                        return Some(pid);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                None
            }
            Err(TryLockError::Error(_)) => None,
        }
    }

    /// The state directory this lock guards.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Clear the pid first so nobody reads a stale one, then unlock (closing the file would
        // release the lock anyway).
        let _ = self.file.set_len(0);
        if let Err(err) = self.file.unlock() {
            tracing::debug!(error = %err, "unlocking the state lock failed; closing releases it");
        }
    }
}

fn open_lock_file(state_dir: &Path) -> Result<fs_err::File, std::io::Error> {
    fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(state_dir.join(LOCK_FILE))
}

fn read_pid(file: &fs_err::File) -> Option<u32> {
    let mut text = String::new();
    let mut reader = file.file();
    let _ = std::io::Seek::rewind(&mut reader);
    reader.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Creates `dir` with mode 0700 when missing; an existing directory is left as it is.
fn create_private_dir(dir: &Path) -> Result<(), std::io::Error> {
    if dir.is_dir() {
        return Ok(());
    }
    fs_err::create_dir_all(dir)?;
    fs_err::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_pid_is_recorded_and_cleared() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(StateLock::holder(tmp.path()), None);
        let lock = StateLock::acquire(tmp.path()).unwrap();
        assert_eq!(StateLock::holder(tmp.path()), Some(std::process::id()));
        assert_eq!(lock.state_dir(), tmp.path());
        drop(lock);
        assert_eq!(StateLock::holder(tmp.path()), None);
        let text = fs_err::read_to_string(tmp.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, "");
    }

    #[test]
    fn acquire_creates_a_private_state_dir() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("x/.takt");
        let _lock = StateLock::acquire(&dir).unwrap();
        let mode = fs_err::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
