//! The `run` tool: `sh -lc COMMAND` in the workspace, in its own process group.
//!
//! - stdin is `/dev/null`; stdout and stderr are read together, in arrival order, into a
//!   head-and-tail buffer of at most `output_limit_bytes` (memory stays bounded however much
//!   the command prints).
//! - When the shell exits, or the timeout passes, the whole process group is killed (SIGKILL):
//!   a command cannot leave background processes behind.
//! - While the command runs its group is recorded in the shared [`RunningGroup`] (so
//!   `stop()` and dropping the session kill it) and in `agent.pid` of the run directory (so a
//!   restarted daemon's orphan sweep finds it).
//! - The deny-list refuses a command whose first word, or the first word after `;`, `&&`,
//!   `||`, `|`, `&`, `$(`, a backtick, `(` or a newline, is listed (compared by basename:
//!   `/usr/bin/curl` is `curl`). Leading `VAR=value` assignments and the wrappers `env`,
//!   `command`, `exec`, `nohup`, `time`, `builtin` are looked through. A guard-rail against
//!   the obvious, not a sandbox: `sh -c 'curl …'` or `python -c …` get through.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;

use super::ToolError;
use crate::process::{PID_FILE, ProcessMark, signal_group};

/// How long output is still read after the group was killed.
const DRAIN: Duration = Duration::from_secs(2);

/// The process group of the `run` command in flight, shared with the session.
#[derive(Debug, Clone, Default)]
pub struct RunningGroup(Arc<Mutex<Option<u32>>>);

impl RunningGroup {
    pub fn get(&self) -> Option<u32> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, pgid: Option<u32>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = pgid;
    }

    /// Kills the running command's group, if any.
    pub fn kill(&self) {
        if let Some(pgid) = self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// Kills the group when the command is over or its future is dropped.
struct Guard {
    pgid: Option<u32>,
    running: RunningGroup,
    pid_file: Option<PathBuf>,
}

impl Guard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, Signal::SIGKILL);
            self.running.set(None);
        }
        if let Some(file) = self.pid_file.take() {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps the first and the last bytes of a stream, `limit` in all.
#[derive(Debug)]
pub struct HeadTail {
    limit: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
}

impl HeadTail {
    pub fn new(limit: usize) -> Self {
        HeadTail {
            limit,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len();
        let head_room = (self.limit / 2).saturating_sub(self.head.len());
        let take = head_room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        let tail_cap = self.limit - self.limit / 2;
        if bytes.len() >= tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - tail_cap..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(tail_cap);
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }

    /// The kept text, with a marker where bytes were dropped.
    pub fn render(&self) -> String {
        let kept = self.head.len() + self.tail.len();
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            out.push_str(&format!(
                "\n[... {} bytes of output omitted ...]\n",
                self.total - kept
            ));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

/// What a finished command produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The exit code; `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    pub timed_out: bool,
    pub output: String,
}

/// Everything a command needs besides its text.
#[derive(Debug, Clone)]
pub struct RunContext<'a> {
    pub workspace: &'a Path,
    pub sandbox: &'a takt_sandbox::Sandbox,
    pub scope: Option<&'a takt_sandbox::RunScope>,
    pub timeout: Duration,
    pub output_limit: usize,
    pub remove_env: &'a [String],
    pub env: &'a [(String, String)],
    pub running: &'a RunningGroup,
}

/// Runs `command` as the module docs describe.
pub async fn run(command: &str, context: RunContext<'_>) -> Result<RunOutcome, ToolError> {
    let mut env = vec![
        ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
        ("PAGER".to_owned(), "cat".to_owned()),
        ("GIT_PAGER".to_owned(), "cat".to_owned()),
    ];
    env.extend(context.env.iter().cloned());
    let launch = takt_sandbox::Launch {
        program: "sh".to_owned(),
        args: vec!["-lc".to_owned(), command.to_owned()],
        cwd: context.workspace.to_path_buf(),
        env,
        read_only: Vec::new(),
        remove_env: context.remove_env.to_vec(),
    };
    let scope = context
        .scope
        .cloned()
        .unwrap_or_else(|| takt_sandbox::RunScope {
            run_id: "tools".into(),
            workspace: context.workspace.to_path_buf(),
            run_dir: std::env::temp_dir(),
            git_dirs: Vec::new(),
            view: None,
        });
    let mut child = context
        .sandbox
        .spawn(&scope, launch)
        .await
        .map_err(|error| ToolError::Spawn(error.to_string()))?;
    // Nothing is written to it: a shell reading stdin sees its end at once.
    drop(child.stdin.take());
    let pgid = child.id();
    context.running.set(pgid);
    let pid_file = match (
        context.scope.map(|s| &s.run_dir),
        pgid.and_then(ProcessMark::of),
    ) {
        (Some(dir), Some(mark)) => {
            let file = dir.join(PID_FILE);
            std::fs::write(&file, mark.encode()).ok().map(|()| file)
        }
        _ => None,
    };
    let mut guard = Guard {
        pgid,
        running: context.running.clone(),
        pid_file,
    };
    let mut output = HeadTail::new(context.output_limit);
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut out_buf = vec![0u8; 8192];
    let mut err_buf = vec![0u8; 8192];
    let deadline = tokio::time::sleep(context.timeout);
    tokio::pin!(deadline);
    let mut status = None;
    let mut timed_out = false;
    while status.is_none() {
        tokio::select! {
            read = read_some(&mut stdout, &mut out_buf) => match read {
                Some(n) => output.push(&out_buf[..n]),
                None => stdout = None,
            },
            read = read_some(&mut stderr, &mut err_buf) => match read {
                Some(n) => output.push(&err_buf[..n]),
                None => stderr = None,
            },
            waited = child.wait() => {
                status = Some(waited.map_err(|error| ToolError::Spawn(error.to_string()))?);
            }
            () = &mut deadline => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out && let Some(pgid) = pgid {
        // A sandbox supervisor cleans up (cgroups, report) on SIGTERM; SIGKILL follows.
        signal_group(pgid, Signal::SIGTERM);
        let _ = tokio::time::timeout(DRAIN, child.wait()).await;
    }
    // The shell is done (or out of time): nothing of its group may outlive it.
    guard.kill();
    let _ = tokio::time::timeout(DRAIN, async {
        while stdout.is_some() || stderr.is_some() {
            tokio::select! {
                read = read_some(&mut stdout, &mut out_buf) => match read {
                    Some(n) => output.push(&out_buf[..n]),
                    None => stdout = None,
                },
                read = read_some(&mut stderr, &mut err_buf) => match read {
                    Some(n) => output.push(&err_buf[..n]),
                    None => stderr = None,
                },
            }
        }
    })
    .await;
    let status = match status {
        Some(status) => status,
        None => child
            .wait()
            .await
            .map_err(|error| ToolError::Spawn(error.to_string()))?,
    };
    Ok(RunOutcome {
        code: if timed_out { None } else { status.code() },
        timed_out,
        output: output.render(),
    })
}

/// Reads from a pipe; `None` at its end (or when there is no pipe: then it never resolves).
async fn read_some<R: AsyncReadExt + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match pipe {
        Some(reader) => match reader.read(buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => Some(n),
        },
        None => std::future::pending().await,
    }
}

const WRAPPERS: &[&str] = &["env", "command", "exec", "nohup", "time", "builtin"];
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "do", "while", "until", "!", "{", "}",
];

/// The deny-listed word `command` starts a command with, if any (see the module docs).
pub fn denied_word(command: &str, deny: &[String]) -> Option<String> {
    if deny.is_empty() {
        return None;
    }
    for segment in segments(command) {
        let mut words = segment.split_whitespace().map(unquote);
        let first = words.find(|word| {
            !word.is_empty()
                && !is_assignment(word)
                && !WRAPPERS.contains(&word.as_str())
                && !KEYWORDS.contains(&word.as_str())
                && !word.starts_with('-')
        });
        if let Some(word) = first {
            let base = word.rsplit('/').next().unwrap_or(&word).to_owned();
            if deny.iter().any(|d| d == &base) {
                return Some(base);
            }
        }
    }
    None
}

/// Splits a shell command where a new command can start (outside single quotes; inside double
/// quotes only at `$(` and backticks).
fn segments(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut single = false;
    let mut double = false;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        let split = match c {
            '\'' if !double => {
                single = !single;
                current.push(c);
                false
            }
            '"' if !single => {
                double = !double;
                current.push(c);
                false
            }
            _ if single => {
                current.push(c);
                false
            }
            '`' => true,
            '$' if chars.peek() == Some(&'(') => {
                chars.next();
                true
            }
            ';' | '|' | '&' | '\n' | '(' if !double => true,
            _ => {
                current.push(c);
                false
            }
        };
        if split {
            out.push(std::mem::take(&mut current));
        }
    }
    out.push(current);
    out
}

fn unquote(word: &str) -> String {
    word.chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\\'))
        .collect()
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn deny() -> Vec<String> {
        ["curl", "sudo", "rm"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn deny_list_checks_every_command_position() {
        for refused in [
            "curl http://x",
            "  /usr/bin/curl x",
            "echo hi; curl x",
            "echo hi && sudo ls",
            "false || curl x",
            "cat f | curl -d @- x",
            "echo $(curl x)",
            "echo `curl x`",
            "FOO=1 BAR=2 curl x",
            "env curl x",
            "nohup curl x &",
            "(curl x)",
            "echo ok\ncurl x",
            "\"curl\" x",
            "if true; then rm -rf x; fi",
        ] {
            assert!(denied_word(refused, &deny()).is_some(), "{refused}");
        }
        for allowed in [
            "cargo test",
            "echo curl",
            "echo 'a; curl x'",
            "grep -r sudo .",
            "ls ./curl-docs",
            "echo \"a && b\"",
        ] {
            assert_eq!(denied_word(allowed, &deny()), None, "{allowed}");
        }
        assert_eq!(denied_word("curl x", &[]), None);
    }

    #[test]
    fn head_tail_keeps_both_ends_within_the_limit() {
        let mut buffer = HeadTail::new(10);
        buffer.push(b"0123");
        buffer.push(b"456789abcdefghij");
        buffer.push(b"XYZ");
        let text = buffer.render();
        assert!(text.starts_with("01234"), "{text}");
        assert!(text.ends_with("ijXYZ"), "{text}");
        assert!(text.contains("13 bytes of output omitted"), "{text}");
        let mut small = HeadTail::new(100);
        small.push(b"short");
        assert_eq!(small.render(), "short");
    }
}
