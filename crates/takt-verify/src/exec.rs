//! Running one gate command in the gate sandbox: output captured (bounded), the timeout
//! enforced on the whole process group, nothing left running.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use takt_sandbox::{Launch, RunScope, Sandbox};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::VerifyError;
use crate::spec::GateSpec;
use crate::warm::place::Fixed;

/// Output kept per stream: the head and the tail, so a runaway log cannot fill the disk while
/// the summary at the end (where test runners print failures) survives.
pub const OUTPUT_LIMIT_BYTES: usize = 4 * 1024 * 1024;

/// What one command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration: Duration,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `gate` in `checkout` inside `sandbox`, seen at `fixed`'s path when given (warm runs).
/// `run_dir` receives the sandbox's spec and containment report and is never visible inside.
pub(crate) async fn execute(
    sandbox: &Sandbox,
    gate: &GateSpec,
    checkout: &Path,
    fixed: Option<&Fixed>,
    run_dir: PathBuf,
) -> Result<Executed, VerifyError> {
    let seen_at = fixed.map_or(checkout, |fixed| fixed.at.as_path());
    let scope = RunScope {
        run_id: format!("gate-{}", gate.name),
        workspace: seen_at.to_path_buf(),
        run_dir,
        git_dirs: Vec::new(),
        view: None,
    };
    let mut env: Vec<(String, String)> = gate
        .env
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // Test runners print more, and colour codes would defeat the parsers.
    env.push(("CI".into(), "true".into()));
    env.push(("NO_COLOR".into(), "1".into()));
    env.push(("CARGO_TERM_COLOR".into(), "never".into()));
    let launch = Launch {
        program: "sh".into(),
        args: vec!["-c".into(), gate.run.clone()],
        cwd: seen_at.to_path_buf(),
        env,
        read_only: Vec::new(),
        remove_env: Vec::new(),
    };
    let launch_error = |reason: String| VerifyError::Launch {
        gate: gate.name.clone(),
        reason,
    };
    let started = Instant::now();
    let mut child = match fixed {
        // The fixed view wraps the supervisor in a mount namespace of its own, so it is
        // exec'd inside that wrapper rather than forked by the fork server.
        Some(fixed) => {
            let command = sandbox
                .command(&scope, launch)
                .map_err(|error| launch_error(error.to_string()))?;
            takt_sandbox::Confined::spawn(fixed.wrap(&command, checkout))
                .map_err(|error| launch_error(error.to_string()))?
        }
        None => sandbox
            .spawn(&scope, launch)
            .await
            .map_err(|error| launch_error(error.to_string()))?,
    };
    // Gates get no input: a command reading stdin sees its end at once.
    drop(child.stdin.take());
    let group = child.id();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = tokio::spawn(capture(stdout));
    let err = tokio::spawn(capture(stderr));
    let timeout = Duration::from_millis(gate.timeout_ms);
    let (exit_code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => (status.code(), false),
        Ok(Err(error)) => {
            kill_group(group);
            return Err(VerifyError::Launch {
                gate: gate.name.clone(),
                reason: format!("waiting for the command failed: {error}"),
            });
        }
        Err(_) => {
            kill_group(group);
            let _ = child.wait().await;
            (None, true)
        }
    };
    // Whatever the command left behind in its group goes with it.
    kill_group(group);
    let stdout = out.await.unwrap_or_default();
    let stderr = err.await.unwrap_or_default();
    Ok(Executed {
        exit_code,
        timed_out,
        duration: started.elapsed(),
        stdout,
        stderr,
    })
}

fn kill_group(group: Option<u32>) {
    if let Some(pid) = group.and_then(|pid| i32::try_from(pid).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Reads a stream to its end, keeping the first and the last half of [`OUTPUT_LIMIT_BYTES`]
/// with a marker in between when it is longer.
async fn capture(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut stream) = stream else {
        return Vec::new();
    };
    let half = OUTPUT_LIMIT_BYTES / 2;
    let mut head = Vec::new();
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let mut dropped: u64 = 0;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let mut chunk = &buffer[..read];
        if head.len() < half {
            let take = chunk.len().min(half - head.len());
            head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        tail.extend(chunk);
        while tail.len() > half {
            tail.pop_front();
            dropped += 1;
        }
    }
    if dropped > 0 {
        head.extend_from_slice(format!("\n[... {dropped} bytes omitted by takt ...]\n").as_bytes());
    }
    head.extend(tail);
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_output_keeps_its_head_and_tail() {
        let mut data = b"FIRST".to_vec();
        data.extend(std::iter::repeat_n(b'x', OUTPUT_LIMIT_BYTES * 2));
        data.extend_from_slice(b"LAST");
        let kept = capture(Some(&data[..])).await;
        assert!(kept.starts_with(b"FIRST"));
        assert!(kept.ends_with(b"LAST"));
        assert!(kept.len() < OUTPUT_LIMIT_BYTES + 100);
        let text = String::from_utf8_lossy(&kept);
        assert!(text.contains("bytes omitted by takt"));
    }

    #[tokio::test]
    async fn short_output_is_kept_whole() {
        let kept = capture(Some(&b"ok\n"[..])).await;
        assert_eq!(kept, b"ok\n");
    }
}
