//! Small process helpers shared by the git wrapper and the hook runner: killing a whole process
//! group without `unsafe` (through the `kill` utility), a guard that kills the group when the
//! future running it is dropped (cancelled), and capping captured output.

use std::process::Stdio;

/// Sends SIGKILL to every process in the process group `pgid`.
///
/// The group must have been created by spawning its leader with `process_group(0)`, so that
/// `pgid` equals the leader's pid. Call this before reaping the leader: while the leader is an
/// unreaped zombie its pid (and so the group id) cannot be reused by an unrelated process.
///
/// Uses `kill -s KILL -- -<pgid>` (procps or util-linux), falling back to the shell builtin.
/// Failures are logged, not returned: there is nothing better a caller could do.
pub(crate) async fn kill_process_group(pgid: u32) {
    let target = format!("-{pgid}");
    let direct = tokio::process::Command::new("kill")
        .args(["-s", "KILL", "--", &target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    match direct {
        Ok(status) if status.success() => return,
        Ok(status) => {
            // Exit status 1 usually means the group is already gone: nothing left to kill.
            tracing::debug!(pgid, ?status, "kill of process group reported failure");
            return;
        }
        Err(error) => {
            tracing::debug!(pgid, %error, "`kill` utility unavailable; trying the shell builtin");
        }
    }
    let script = format!("kill -KILL -- {target}");
    if let Err(error) = tokio::process::Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
    {
        tracing::warn!(pgid, %error, "could not kill process group: neither `kill` nor `sh` could be started");
    }
}

/// Kills a process group when dropped while still armed: a cancelled hook or git future
/// (its task aborted, its run stopped) must not leave the group's processes behind.
/// Declare it *after* the `Child` so it drops first, while the leader is still unreaped.
#[derive(Debug)]
pub(crate) struct GroupKillGuard {
    pgid: Option<u32>,
}

impl GroupKillGuard {
    pub(crate) fn new(pgid: Option<u32>) -> Self {
        GroupKillGuard { pgid }
    }

    /// The group was dealt with (its leader exited and was reaped, or it was killed).
    pub(crate) fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKillGuard {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid.take() else {
            return;
        };
        let target = format!("-{pgid}");
        let args = ["-s", "KILL", "--", target.as_str()];
        // Drop cannot await: start `kill` and let it finish on its own. Under a tokio runtime
        // the dropped child is reaped in the background.
        let spawned = if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let _enter = handle.enter();
            tokio::process::Command::new("kill")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(drop)
        } else {
            std::process::Command::new("kill")
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(drop)
        };
        match spawned {
            Ok(()) => tracing::debug!(pgid, "killed the process group of a cancelled command"),
            Err(error) => {
                tracing::warn!(pgid, %error, "could not kill the process group of a cancelled command")
            }
        }
    }
}

/// Keeps the first `cap` bytes of `bytes` as text (lossy UTF-8, never splitting a character),
/// and says whether anything was cut.
pub(crate) fn capped_text(bytes: &[u8], cap: usize) -> (String, bool) {
    if bytes.len() <= cap {
        return (String::from_utf8_lossy(bytes).into_owned(), false);
    }
    let head = &bytes[..cap];
    // An incomplete character at the very end is dropped rather than shown as U+FFFD.
    let end = match std::str::from_utf8(head) {
        Err(error) if error.error_len().is_none() => error.valid_up_to(),
        _ => cap,
    };
    (String::from_utf8_lossy(&head[..end]).into_owned(), true)
}

/// Cuts `text` to at most `cap` bytes on a character boundary, appending a marker when cut.
pub(crate) fn cap_str(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    let mut end = cap;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes]", &text[..end], text.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_text_keeps_short_output_whole() {
        assert_eq!(capped_text(b"hello", 10), ("hello".to_owned(), false));
    }

    #[test]
    fn capped_text_never_splits_a_character() {
        let text = "ééé"; // 6 bytes
        let (out, cut) = capped_text(text.as_bytes(), 3);
        assert!(cut);
        assert_eq!(out, "é");
    }

    #[test]
    fn cap_str_marks_the_cut() {
        assert_eq!(cap_str("abcdef", 3), "abc… [3 more bytes]");
        assert_eq!(cap_str("abc", 3), "abc");
        assert_eq!(cap_str("ééé", 3), "é… [4 more bytes]");
    }
}
