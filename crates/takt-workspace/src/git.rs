//! A small typed async wrapper around the `git` command line.
//!
//! Every invocation gets a deterministic environment: the parent environment is cleared except
//! for an allow-list (`PATH`, `HOME`, proxy and SSH agent variables, ...), and
//! `GIT_TERMINAL_PROMPT=0`, `LC_ALL=C`, no pager and no editor are set, so git never waits for a
//! person and its messages are stable English. Each git process runs in its own process group
//! and the whole group is killed when it exceeds the wrapper's timeout (network fetches can
//! hang). Failures come back as [`GitError`] with the argv, the directory and git's stderr.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::{GroupKillGuard, cap_str, kill_process_group};

/// How long one git command may run before it is killed (10 minutes: a first clone of a large
/// repository over a slow link takes a while).
pub const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// The most bytes of git's stderr kept in a [`GitError`].
pub const STDERR_CAP: usize = 4096;

/// The name and e-mail takt commits and merges as (author and committer).
pub const TAKT_NAME: &str = "takt";
/// See [`TAKT_NAME`].
pub const TAKT_EMAIL: &str = "takt@localhost";

/// Variables kept from the parent environment; everything else is cleared.
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_NOSYSTEM",
    "SSH_AUTH_SOCK",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSL_CAINFO",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

/// Variables always set, making git non-interactive and its output stable.
const FIXED_ENV: &[(&str, &str)] = &[
    ("GIT_TERMINAL_PROMPT", "0"),
    ("LC_ALL", "C"),
    ("LANG", "C"),
    ("GIT_PAGER", "cat"),
    ("PAGER", "cat"),
    ("GIT_EDITOR", "true"),
    ("GIT_MERGE_AUTOEDIT", "no"),
    ("GIT_ADVICE", "0"),
];

/// Configuration applied to every command: automatic maintenance (`gc --auto`, run after
/// fetches and commits) runs in the foreground instead of detaching, so no git process outlives
/// the command that started it or races takt's next command for the repository's locks.
const BASE_CONFIG: &[&str] = &["maintenance.autoDetach=false", "gc.autoDetach=false"];

/// Configuration that keeps repository-controlled settings from running programs in the daemon
/// when it works inside a workspace the agent could have written to: no hooks, no fsmonitor,
/// no signing prompts.
const HARDENED_CONFIG: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
];

/// A failed git invocation.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git could not be started: it is not installed or not on `PATH`, or the working directory
    /// does not exist. Retrying does not help until the environment is fixed.
    #[error(
        "could not run `{command}` in {cwd}: {source} (is git installed and on PATH, and does the directory exist?)"
    )]
    Spawn {
        command: String,
        cwd: PathBuf,
        #[source]
        source: io::Error,
    },
    /// git ran and exited unsuccessfully; `stderr` says why. Whether a retry helps depends on
    /// the cause: a lock held by a concurrent git or a network error, yes; a missing revision
    /// or a repository that is not there, no.
    #[error("`{command}` in {cwd} failed ({}): {stderr}", describe_status(*.status))]
    Failed {
        command: String,
        cwd: PathBuf,
        /// The exit code, `None` when git was killed by a signal.
        status: Option<i32>,
        /// git's stderr, trimmed and capped at [`STDERR_CAP`] bytes.
        stderr: String,
    },
    /// git ran longer than the wrapper's timeout; it and its process group were killed.
    /// Usually a hung network transfer: retrying may help.
    #[error("`{command}` in {cwd} did not finish within {timeout:?} and was killed")]
    TimedOut {
        command: String,
        cwd: PathBuf,
        timeout: Duration,
    },
    /// git succeeded but printed something the caller could not interpret (a changed output
    /// format, a corrupt repository). Retrying does not help.
    #[error("`{command}` in {cwd} printed unexpected output: {detail}")]
    UnexpectedOutput {
        command: String,
        cwd: PathBuf,
        detail: String,
    },
}

impl GitError {
    /// The command line that failed, e.g. `git fetch --prune origin`.
    pub fn command(&self) -> &str {
        match self {
            GitError::Spawn { command, .. }
            | GitError::Failed { command, .. }
            | GitError::TimedOut { command, .. }
            | GitError::UnexpectedOutput { command, .. } => command,
        }
    }

    /// git's stderr when it ran and failed; empty otherwise.
    pub fn stderr(&self) -> &str {
        match self {
            GitError::Failed { stderr, .. } => stderr,
            _ => "",
        }
    }

    /// Whether retrying the same command later might succeed (timeouts, lock contention,
    /// network trouble).
    pub fn is_retryable(&self) -> bool {
        match self {
            GitError::TimedOut { .. } => true,
            GitError::Failed { stderr, .. } => {
                let lower = stderr.to_ascii_lowercase();
                [
                    ".lock",
                    "unable to lock",
                    "cannot lock ref",
                    "could not read from remote",
                    "connection",
                    "timed out",
                    "temporary failure",
                    "early eof",
                ]
                .iter()
                .any(|needle| lower.contains(needle))
            }
            GitError::Spawn { .. } | GitError::UnexpectedOutput { .. } => false,
        }
    }
}

fn describe_status(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    }
}

/// What a git process printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitOutput {
    /// The exit code, `None` when git was killed by a signal.
    pub status: Option<i32>,
    /// stdout, lossily decoded as UTF-8, untrimmed.
    pub stdout: String,
    /// stderr, lossily decoded as UTF-8 and trimmed.
    pub stderr: String,
}

impl GitOutput {
    /// Whether git exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// The git command line tool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Git {
    program: OsString,
    timeout: Duration,
}

impl Default for Git {
    fn default() -> Self {
        Git::new()
    }
}

impl Git {
    /// `git` from `PATH` with [`DEFAULT_GIT_TIMEOUT`].
    pub fn new() -> Self {
        Git {
            program: OsString::from("git"),
            timeout: DEFAULT_GIT_TIMEOUT,
        }
    }

    /// The same tool with another per-command timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same settings with another git executable (a path or a name on `PATH`).
    pub fn with_program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts building a command that runs in `cwd`.
    pub fn cmd(&self, cwd: impl AsRef<Path>) -> GitCommand {
        GitCommand {
            git: self.clone(),
            cwd: cwd.as_ref().to_path_buf(),
            config: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
        }
    }

    /// Runs `git <args>` in `cwd`, requiring success; returns stdout without its trailing
    /// newline.
    pub async fn run<I, S>(&self, cwd: impl AsRef<Path>, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(cwd).args(args).run().await
    }

    /// The commit `rev` names in the repository at `cwd`, or `None` when it names no commit.
    pub async fn rev_parse(
        &self,
        cwd: impl AsRef<Path>,
        rev: &str,
    ) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let out = self
            .cmd(cwd)
            .args([
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ])
            .output_allowing(&[0, 1])
            .await?;
        Ok(out.success().then(|| out.stdout.trim().to_owned()))
    }

    /// Whether `ancestor` is an ancestor of (or equal to) `descendant`.
    pub async fn is_ancestor(
        &self,
        cwd: impl AsRef<Path>,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitError> {
        let out = self
            .cmd(cwd)
            .args(["merge-base", "--is-ancestor", ancestor, descendant])
            .output_allowing(&[0, 1])
            .await?;
        Ok(out.success())
    }

    /// The full ref name a symbolic ref points to (`HEAD` -> `refs/heads/main`), or `None` when
    /// it is not symbolic (a detached HEAD).
    pub async fn symbolic_ref(
        &self,
        cwd: impl AsRef<Path>,
        name: &str,
    ) -> Result<Option<String>, GitError> {
        let out = self
            .cmd(cwd)
            .args(["symbolic-ref", "--quiet", name])
            .output_allowing(&[0, 1])
            .await?;
        Ok(out.success().then(|| out.stdout.trim().to_owned()))
    }

    /// `git status --porcelain=v1 -z`: one entry per changed path. With `untracked` false,
    /// untracked files are not listed.
    pub async fn status_porcelain(
        &self,
        cwd: impl AsRef<Path>,
        untracked: bool,
    ) -> Result<Vec<StatusEntry>, GitError> {
        Self::status_with(self.cmd(cwd), untracked).await
    }

    /// [`Git::status_porcelain`] with a prepared command (an explicit `GIT_DIR`, say).
    pub async fn status_with(
        command: GitCommand,
        untracked: bool,
    ) -> Result<Vec<StatusEntry>, GitError> {
        let untracked = if untracked {
            "--untracked-files=all"
        } else {
            "--untracked-files=no"
        };
        let out = command
            .env("GIT_OPTIONAL_LOCKS", "0")
            .args([
                "status",
                "--porcelain=v1",
                "-z",
                "--ignore-submodules=none",
                untracked,
            ])
            .run()
            .await?;
        Ok(parse_status_z(&out))
    }

    /// Whether `name` is a valid full ref name (`git check-ref-format`).
    pub async fn is_valid_ref_name(
        &self,
        cwd: impl AsRef<Path>,
        name: &str,
    ) -> Result<bool, GitError> {
        let out = self
            .cmd(cwd)
            .args(["check-ref-format", name])
            .output()
            .await?;
        Ok(out.success())
    }
}

impl GitOutput {
    fn into_error(self, command: String, cwd: PathBuf) -> GitError {
        GitError::Failed {
            command,
            cwd,
            status: self.status,
            stderr: self.stderr,
        }
    }
}

/// One line of `git status --porcelain`: the two status letters and the path (for renames,
/// the new path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The two-letter `XY` code, e.g. ` M`, `??`, `UU`.
    pub code: String,
    pub path: String,
}

impl std::fmt::Display for StatusEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.path)
    }
}

fn parse_status_z(out: &str) -> Vec<StatusEntry> {
    let mut entries = Vec::new();
    let mut fields = out.split('\0');
    while let Some(field) = fields.next() {
        if field.len() < 4 {
            continue;
        }
        let (code, path) = field.split_at(2);
        let code = code.to_owned();
        // A rename or copy is followed by its source path as a separate field.
        if code.starts_with('R') || code.starts_with('C') {
            fields.next();
        }
        entries.push(StatusEntry {
            code,
            path: path[1..].to_owned(),
        });
    }
    entries
}

/// A git command being built; run it with [`GitCommand::run`] or [`GitCommand::output`].
#[derive(Debug, Clone)]
pub struct GitCommand {
    git: Git,
    cwd: PathBuf,
    config: Vec<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
}

impl GitCommand {
    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Adds `-c key=value` before the subcommand.
    pub fn config(mut self, key_value: impl AsRef<OsStr>) -> Self {
        self.config.push(key_value.as_ref().to_owned());
        self
    }

    /// Sets an environment variable for this command.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Commits and merges made by this command are authored and committed by
    /// `takt <takt@localhost>`.
    pub fn takt_identity(self) -> Self {
        self.env("GIT_AUTHOR_NAME", TAKT_NAME)
            .env("GIT_AUTHOR_EMAIL", TAKT_EMAIL)
            .env("GIT_COMMITTER_NAME", TAKT_NAME)
            .env("GIT_COMMITTER_EMAIL", TAKT_EMAIL)
    }

    /// Disables repository-controlled programs (hooks, fsmonitor, signing) for this command;
    /// use it whenever git runs inside a workspace an agent could have changed.
    pub fn hardened(mut self) -> Self {
        self.config
            .extend(HARDENED_CONFIG.iter().map(OsString::from));
        self
    }

    /// Feeds `input` to git's stdin.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// The command line as text, for messages: `git <config> <args>` with unusual arguments
    /// quoted (the fixed maintenance options every command gets are left out for brevity).
    pub fn command_string(&self) -> String {
        let config = self
            .config
            .iter()
            .flat_map(|kv| [OsStr::new("-c"), kv.as_os_str()]);
        render_command(
            &self.git.program,
            config.chain(self.args.iter().map(OsString::as_os_str)),
        )
    }

    /// Runs the command and requires exit status 0; returns stdout without its trailing
    /// newline.
    pub async fn run(self) -> Result<String, GitError> {
        let command = self.command_string();
        let cwd = self.cwd.clone();
        let out = self.output().await?;
        if out.success() {
            let mut stdout = out.stdout;
            while stdout.ends_with('\n') {
                stdout.pop();
            }
            Ok(stdout)
        } else {
            Err(out.into_error(command, cwd))
        }
    }

    /// Runs the command and accepts the exit codes in `allowed` (e.g. `[0, 1]` for yes/no
    /// queries); any other status is a [`GitError::Failed`].
    pub async fn output_allowing(self, allowed: &[i32]) -> Result<GitOutput, GitError> {
        let command = self.command_string();
        let cwd = self.cwd.clone();
        let out = self.output().await?;
        match out.status {
            Some(code) if allowed.contains(&code) => Ok(out),
            _ => Err(out.into_error(command, cwd)),
        }
    }

    /// Runs the command and returns its output whatever the exit status; errors only when git
    /// could not be started or timed out.
    pub async fn output(self) -> Result<GitOutput, GitError> {
        let command_text = self.command_string();
        let mut command = tokio::process::Command::new(&self.git.program);
        for kv in BASE_CONFIG
            .iter()
            .map(OsStr::new)
            .chain(self.config.iter().map(OsString::as_os_str))
        {
            command.arg("-c").arg(kv);
        }
        command
            .args(&self.args)
            .current_dir(&self.cwd)
            .env_clear()
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in KEPT_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(FIXED_ENV.iter().copied());
        command.envs(self.env.iter().map(|(k, v)| (k, v)));

        tracing::trace!(command = %command_text, cwd = %self.cwd.display(), "running git");
        let mut child = command.spawn().map_err(|source| GitError::Spawn {
            command: command_text.clone(),
            cwd: self.cwd.clone(),
            source,
        })?;
        let pid = child.id();
        let mut group = GroupKillGuard::new(pid);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let input = self.stdin;

        let work = async {
            let feed = async {
                if let (Some(mut pipe), Some(input)) = (stdin, input) {
                    // git may exit without reading everything; a broken pipe is not our error.
                    let _ = pipe.write_all(&input).await;
                    let _ = pipe.shutdown().await;
                }
            };
            let (_, out, err, status) =
                tokio::join!(feed, read_all(stdout), read_all(stderr), child.wait());
            (out, err, status)
        };
        let finished = tokio::time::timeout(self.git.timeout, work).await;
        let (out, err, status) = match finished {
            Ok(result) => {
                group.disarm();
                result
            }
            Err(_) => {
                if let Some(pid) = pid {
                    kill_process_group(pid).await;
                }
                group.disarm();
                let _ = child.wait().await;
                tracing::warn!(command = %command_text, cwd = %self.cwd.display(), timeout = ?self.git.timeout, "git timed out and was killed");
                return Err(GitError::TimedOut {
                    command: command_text,
                    cwd: self.cwd,
                    timeout: self.git.timeout,
                });
            }
        };
        let status = status.map_err(|source| GitError::Spawn {
            command: command_text.clone(),
            cwd: self.cwd.clone(),
            source,
        })?;
        let stderr = cap_str(String::from_utf8_lossy(&err).trim(), STDERR_CAP);
        Ok(GitOutput {
            status: status.code(),
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr,
        })
    }
}

async fn read_all<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        // A read error mid-stream leaves what was read so far; the exit status tells the rest.
        let _ = pipe.read_to_end(&mut buf).await;
    }
    buf
}

/// Renders a command line for messages, single-quoting arguments that need it and capping
/// very long ones (commit messages).
fn render_command<'a>(program: &OsStr, args: impl Iterator<Item = &'a OsStr>) -> String {
    let mut out = program.to_string_lossy().into_owned();
    for arg in args {
        out.push(' ');
        let arg = arg.to_string_lossy();
        let arg = cap_str(&arg, 200);
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=+@^{}%,".contains(c));
        if plain {
            out.push_str(&arg);
        } else {
            out.push('\'');
            out.push_str(&arg.replace('\'', r"'\''"));
            out.push('\'');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_quotes_only_what_needs_it() {
        let args = ["commit", "-m", "fix: it's done", ""];
        let text = render_command(OsStr::new("git"), args.iter().map(OsStr::new));
        assert_eq!(text, r"git commit -m 'fix: it'\''s done' ''");
    }

    #[test]
    fn parse_status_handles_renames_and_spaces() {
        let raw = " M a file.txt\0R  new.txt\0old.txt\0?? dir/x\0";
        let entries = parse_status_z(raw);
        assert_eq!(
            entries,
            vec![
                StatusEntry {
                    code: " M".into(),
                    path: "a file.txt".into()
                },
                StatusEntry {
                    code: "R ".into(),
                    path: "new.txt".into()
                },
                StatusEntry {
                    code: "??".into(),
                    path: "dir/x".into()
                },
            ]
        );
    }

    #[test]
    fn retryable_classification() {
        let locked = GitError::Failed {
            command: "git fetch".into(),
            cwd: PathBuf::from("/m"),
            status: Some(128),
            stderr: "fatal: Unable to create '/m/index.lock': File exists.".into(),
        };
        assert!(locked.is_retryable());
        let missing = GitError::Failed {
            command: "git rev-parse".into(),
            cwd: PathBuf::from("/m"),
            status: Some(128),
            stderr: "fatal: ambiguous argument 'nope'".into(),
        };
        assert!(!missing.is_retryable());
        assert!(missing.to_string().contains("exit status 128"));
    }

    #[tokio::test]
    async fn missing_git_binary_is_a_spawn_error() {
        let git = Git::new().with_program("/nonexistent/git-for-takt-tests");
        let err = git.run(".", ["--version"]).await.err();
        assert!(matches!(err, Some(GitError::Spawn { .. })), "{err:?}");
    }

    #[tokio::test]
    async fn failure_carries_command_cwd_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let err = Git::new()
            .run(dir.path(), ["rev-parse", "--git-dir"])
            .await
            .unwrap_err();
        match &err {
            GitError::Failed {
                command,
                cwd,
                status,
                stderr,
            } => {
                assert_eq!(command, "git rev-parse --git-dir");
                assert_eq!(cwd, dir.path());
                assert_eq!(*status, Some(128));
                assert!(stderr.contains("not a git repository"), "{stderr}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn environment_is_cleared_and_fixed() {
        let dir = tempfile::tempdir().unwrap();
        // An alias running `env` shows exactly what git's environment was.
        let out = Git::new()
            .cmd(dir.path())
            .config("alias.show-env=!env")
            .env("TAKT_PROBE", "1")
            .arg("show-env")
            .run()
            .await
            .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        for expected in [
            "GIT_TERMINAL_PROMPT=0",
            "LC_ALL=C",
            "GIT_PAGER=cat",
            "TAKT_PROBE=1",
        ] {
            assert!(
                lines.contains(&expected),
                "{expected} missing from {lines:?}"
            );
        }
        // cargo sets CARGO_MANIFEST_DIR for test processes; it must not leak into git.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        assert!(!out.contains("CARGO_MANIFEST_DIR="), "{out}");
        assert!(lines.iter().any(|l| l.starts_with("PATH=")), "PATH is kept");
    }

    #[tokio::test]
    async fn a_hung_git_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let err = Git::new()
            .with_timeout(Duration::from_millis(300))
            .cmd(dir.path())
            .config("alias.hang=!sleep 1000")
            .arg("hang")
            .run()
            .await
            .unwrap_err();
        assert!(matches!(err, GitError::TimedOut { .. }), "{err:?}");
        assert!(err.is_retryable());
    }
}
