//! Fakes and fixtures for tests: temp git repositories, fake tracker, fake clock (dev-dependency only).
//!
//! The end-to-end fixtures drive the real `takt` binary: [`GitRepo`] is a throwaway repository
//! with a first commit on `main`, [`WorkflowFile`] writes a WORKFLOW.md, [`Takt`] runs the CLI
//! against it (and parses `--json`), [`Daemon`] is a background `takt run` that is always
//! stopped when it goes out of scope, and [`wait_until`] is the one bounded wait tests use
//! (never a timed assertion: it only fails after a generous timeout, with a clear message).
//!
//! Every helper panics with a message that says what it was doing: this crate only runs inside
//! tests, where a panic is the way to fail.

pub mod webdriver;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The generous bound for waits in end-to-end tests.
pub const LONG: Duration = Duration::from_secs(60);

/// Runs git in `dir` with a fixed identity and no signing; panics (with git's stderr) when it
/// fails. Returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    if !out.status.success() {
        panic!(
            "git {} in {} failed ({}): {}",
            args.join(" "),
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs git in `dir` and returns whatever happened.
pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=takt e2e",
            "-c",
            "user.email=e2e@takt.invalid",
            "-c",
            "commit.gpgsign=false",
            // Workspaces belong to the sandbox's agent user when tests run as root.
            "-c",
            "safe.directory=*",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap_or_else(|error| panic!("cannot run git: {error}"))
}

/// A temporary directory holding a git repository (`<root>/repo`) whose `main` branch has one
/// commit (a README and a `.gitignore` that ignores `.takt/`). The directory is deleted on drop.
pub struct GitRepo {
    temp: tempfile::TempDir,
    path: PathBuf,
}

impl GitRepo {
    pub fn new() -> GitRepo {
        GitRepo::new_in(&std::env::temp_dir())
    }

    /// The same under `parent` (Codex refuses some setups under `/tmp`: a test that runs it
    /// puts its repository under `CARGO_TARGET_TMPDIR`).
    pub fn new_in(parent: &Path) -> GitRepo {
        let temp = tempfile::Builder::new()
            .prefix("takt-e2e-")
            .tempdir_in(parent)
            .unwrap_or_else(|error| panic!("cannot create a temporary directory: {error}"));
        let path = temp.path().join("repo");
        write(&path.join("README.md"), "# e2e\n");
        write(&path.join(".gitignore"), ".takt/\n");
        git(&path, &["init", "-q", "-b", "main"]);
        git(&path, &["add", "-A"]);
        git(&path, &["commit", "-q", "-m", "Initial commit"]);
        GitRepo { temp, path }
    }

    /// The repository's working tree.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary directory around the repository, for files the agent must not commit
    /// (scripts, logs, recorded prompts).
    pub fn root(&self) -> &Path {
        self.temp.path()
    }

    /// `WORKFLOW.md` at the top of the repository (untracked: `.takt/` is ignored, the file is
    /// not committed, so merges into a checked-out `main` see a clean tree).
    pub fn workflow_path(&self) -> PathBuf {
        self.path.join("WORKFLOW.md")
    }

    /// Writes and commits one file on the checked-out branch; returns the new HEAD.
    pub fn commit_file(&self, relative: &str, content: &str, message: &str) -> String {
        write(&self.path.join(relative), content);
        git(&self.path, &["add", "--", relative]);
        git(&self.path, &["commit", "-q", "-m", message]);
        self.rev_parse("HEAD")
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path, args)
    }

    /// The sha `rev` names, or a panic.
    pub fn rev_parse(&self, rev: &str) -> String {
        git(&self.path, &["rev-parse", "--verify", rev])
            .trim()
            .to_owned()
    }

    /// Whether `rev` names something in the repository.
    pub fn has_ref(&self, rev: &str) -> bool {
        git_output(&self.path, &["rev-parse", "--verify", "--quiet", rev])
            .status
            .success()
    }

    /// Local branch names.
    pub fn branches(&self) -> Vec<String> {
        git(
            &self.path,
            &["for-each-ref", "--format=%(refname:short)", "refs/heads/"],
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }

    /// How many commits reachable from `branch` carry the trailer line `Takt-Task: <identifier>`
    /// (the whole line, so `TAKT-1` does not count `TAKT-10`).
    pub fn trailer_count(&self, branch: &str, identifier: &str) -> usize {
        let wanted = format!("Takt-Task: {identifier}");
        git(&self.path, &["log", branch, "--format=%B%x00"])
            .split('\0')
            .filter(|message| message.lines().any(|line| line.trim() == wanted))
            .count()
    }

    /// The parents of `rev` (two for a merge commit).
    pub fn parents(&self, rev: &str) -> Vec<String> {
        git(&self.path, &["rev-list", "--parents", "-n", "1", rev])
            .split_whitespace()
            .skip(1)
            .map(str::to_owned)
            .collect()
    }

    /// The file at `path` in `rev`, if it exists there.
    pub fn show_file(&self, rev: &str, path: &str) -> Option<String> {
        let out = git_output(&self.path, &["show", &format!("{rev}:{path}")]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for GitRepo {
    /// A failing test keeps its directory (repository, state, logs) for a post-mortem. Overlay
    /// workspaces a root daemon mounted below it are unmounted either way: they outlive the
    /// daemon on purpose, but not the test.
    fn drop(&mut self) {
        unmount_below(self.temp.path());
        if std::thread::panicking() {
            self.temp.disable_cleanup(true);
            eprintln!(
                "kept the failed test's directory: {}",
                self.temp.path().display()
            );
        }
    }
}

/// Unmounts what a root daemon left mounted below a directory when dropped (for tests whose
/// directory is not a [`GitRepo`]).
pub struct UnmountBelow(pub PathBuf);

impl Drop for UnmountBelow {
    fn drop(&mut self) {
        unmount_below(&self.0);
    }
}

/// The mount points below `dir` in this process's mount table.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let table = fs_err::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = format!("{}/", dir.display());
    table
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .filter(|point| point.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// Lazily unmounts every mount point below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    let mut points = mounts_below(dir);
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = Command::new("umount")
            .args(["-l", &point])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        GitRepo::new()
    }
}

/// Writes `text` to `path`, creating parent directories.
pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", parent.display()));
    }
    std::fs::write(path, text)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
}

/// Reads `path`, or an empty string when it does not exist.
pub fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, &format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|error| panic!("cannot chmod {}: {error}", path.display()));
}

/// A WORKFLOW.md for tests: the command backend, a fast poll, fast retries.
#[derive(Debug, Clone)]
pub struct WorkflowFile {
    /// `command.run`.
    pub command: String,
    pub interval_ms: u64,
    pub max_concurrent_agents: u32,
    pub max_attempts: u32,
    pub max_retry_backoff_ms: u64,
    pub auto_merge: bool,
    /// Extra lines inside `agent:` (indented by the caller with two spaces).
    pub agent_extra: String,
    /// Extra top-level YAML (sections such as `hooks:` or `workspace:`).
    pub extra: String,
    /// The prompt template (the body after the front matter).
    pub prompt: String,
}

impl WorkflowFile {
    pub fn new(command: impl Into<String>) -> WorkflowFile {
        WorkflowFile {
            command: command.into(),
            interval_ms: 200,
            max_concurrent_agents: 2,
            max_attempts: 2,
            max_retry_backoff_ms: 1000,
            auto_merge: false,
            agent_extra: String::new(),
            extra: String::new(),
            prompt: "Task {{ issue.identifier }}: {{ issue.title }}\n\n\
                     {% if issue.description %}{{ issue.description }}{% endif %}\n\
                     {% if feedback %}Feedback: {{ feedback }}{% endif %}"
                .into(),
        }
    }

    pub fn render(&self) -> String {
        let mut text = format!(
            "---\ntracker:\n  kind: local\npolling:\n  interval_ms: {}\nagent:\n  backend: command\n  \
             max_concurrent_agents: {}\n  max_attempts: {}\n  max_retry_backoff_ms: {}\n",
            self.interval_ms,
            self.max_concurrent_agents,
            self.max_attempts,
            self.max_retry_backoff_ms
        );
        text.push_str(&self.agent_extra);
        if !self.agent_extra.is_empty() && !self.agent_extra.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "command:\n  run: {}\npublish:\n  forge: local\n  auto_merge: {}\n",
            yaml_string(&self.command),
            self.auto_merge
        ));
        text.push_str(&self.extra);
        if !self.extra.is_empty() && !self.extra.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("---\n");
        text.push_str(&self.prompt);
        text.push('\n');
        text
    }

    pub fn write_to(&self, path: &Path) {
        write(path, &self.render());
    }
}

/// A YAML double-quoted scalar holding `text` verbatim.
pub fn yaml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What one CLI invocation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code (`None` when a signal ended the process).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Outcome {
    /// stdout and stderr together, for assertions on "the message".
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Panics unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Outcome {
        if self.code != Some(code) {
            panic!("expected exit code {code}, got:\n{self}");
        }
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{self}"))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\nexit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// The `takt` binary pointed at one WORKFLOW.md (`-w`).
#[derive(Debug, Clone)]
pub struct Takt {
    pub bin: PathBuf,
    pub workflow: PathBuf,
    /// The working directory of every invocation.
    pub cwd: PathBuf,
}

impl Takt {
    /// `bin` is the test's `env!("CARGO_BIN_EXE_takt")`.
    pub fn new(bin: impl Into<PathBuf>, workflow: impl Into<PathBuf>) -> Takt {
        let workflow = workflow.into();
        let cwd = workflow
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Takt {
            bin: bin.into(),
            workflow,
            cwd,
        }
    }

    /// The same binary with another WORKFLOW.md.
    pub fn with_workflow(&self, workflow: impl Into<PathBuf>) -> Takt {
        Takt {
            workflow: workflow.into(),
            ..self.clone()
        }
    }

    /// The state directory beside the workflow.
    pub fn state_dir(&self) -> PathBuf {
        self.cwd.join(".takt")
    }

    /// A `takt -w <workflow> <args>` command with a predictable environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.bare_command(args);
        command.arg("-w").arg(&self.workflow);
        command
    }

    /// `takt <args>` without `-w` (for `init` and discovery tests).
    pub fn bare_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(&self.cwd)
            .env_remove("TAKT_WORKFLOW")
            .env_remove("TAKT_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .env("TAKT_OPERATOR", "e2e")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs `takt -w <workflow> <args>` to completion.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let command = self.command(args);
        capture(command)
    }

    /// Runs and panics unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.run(args).expect_code(0)
    }

    /// Runs `takt -w <workflow> --json <args>`, requires exit 0 and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    /// `takt task add --title <title> <extra...>`; returns the new identifier.
    pub fn add_task(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["task", "add", "--title", title];
        args.extend_from_slice(extra);
        let issue = self.json(&args);
        issue["identifier"]
            .as_str()
            .unwrap_or_else(|| panic!("task add --json has no identifier: {issue}"))
            .to_owned()
    }

    /// `takt --json task list`.
    pub fn tasks(&self) -> Vec<Value> {
        match self.json(&["task", "list"]) {
            Value::Array(tasks) => tasks,
            other => panic!("task list --json is not an array: {other}"),
        }
    }

    /// `takt --json task show <id>`.
    pub fn task(&self, id: &str) -> Value {
        self.json(&["task", "show", id])
    }

    /// The task's `state`.
    pub fn state_of(&self, id: &str) -> String {
        self.task(id)["state"].as_str().unwrap_or("").to_owned()
    }

    /// `takt run --once`, required to exit 0.
    pub fn run_once(&self) -> Outcome {
        self.ok(&["run", "--once"])
    }

    /// Starts `takt run` in the background, its stdout and stderr appended to `log`.
    pub fn spawn_daemon(&self, log: &Path) -> Daemon {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|error| panic!("cannot clone a file handle: {error}"));
        let mut command = self.command(&["run"]);
        command.stdout(out).stderr(err);
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start `takt run`: {error}"));
        Daemon {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// Whether `takt audit verify` passes.
    pub fn audit_ok(&self) -> bool {
        self.run(&["audit", "verify"]).code == Some(0)
    }
}

fn capture(mut command: Command) -> Outcome {
    let line = format!("{command:?}");
    let out = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {line}: {error}"));
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        command: line,
    }
}

/// Runs a prepared command (e.g. from [`Takt::bare_command`]) to completion.
pub fn run_command(command: Command) -> Outcome {
    capture(command)
}

/// A background `takt run`. Dropping it stops the daemon (SIGTERM, then SIGKILL).
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        read_or_empty(&self.log)
    }

    /// Waits until the daemon's loop is serving: its wake socket (`<state_dir>/daemon.sock`)
    /// answers twice. From then on SIGTERM is a clean shutdown (before the loop runs, the
    /// default action of SIGTERM kills the process).
    pub fn wait_ready(&mut self, state_dir: &Path) {
        let socket = state_dir.join("daemon.sock");
        let deadline = Instant::now() + LONG;
        let mut answered = 0;
        while answered < 2 {
            if !self.is_running() {
                panic!("the daemon exited while starting:\n{}", self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "the daemon did not answer on {} within {} s:\n{}",
                    socket.display(),
                    LONG.as_secs(),
                    self.log()
                );
            }
            if wake(&socket) {
                answered += 1;
            } else {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// `kill -9`: the daemon dies at once, leaving whatever it was doing half done.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (bounded) for a clean exit; SIGKILL if it does not come. Returns the
    /// exit code of a clean exit.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        signal(child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One round trip on a daemon's wake socket (`poll`, answered `ok`).
fn wake(socket: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(b"poll\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.trim() == "ok"
}

/// Sends `signal` (a name such as `TERM` or `KILL`) to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Polls `check` every 100 ms until it holds; panics after `timeout` with `what` and the last
/// `describe()` (the state worth seeing when it fails).
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
    describe: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "gave up after {} s waiting for {what}\n{}",
                timeout.as_secs(),
                describe()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process found by [`processes_with_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    /// The arguments joined with spaces, e.g. `sleep 600`.
    pub cmdline: String,
}

/// Live processes (not zombies) whose environment contains `marker` (e.g.
/// `TAKT_E2E_MARKER=<unique>`): a test marks the processes it starts through the shell by
/// prefixing the command with that assignment, which every descendant inherits.
pub fn processes_with_env(marker: &str) -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let Ok(environ) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        let marked = environ
            .split(|b| *b == 0)
            .any(|var| var == marker.as_bytes());
        if !marked || is_zombie(&dir) {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline"))
            .map(|raw| {
                let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
                raw.split(|b| *b == 0)
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        found.push(Proc { pid, cmdline });
    }
    found
}

fn is_zombie(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    })
}

/// Kills (SIGKILL) every live process carrying `marker` (cleanup after a failed assertion).
pub fn kill_processes_with_env(marker: &str) {
    for process in processes_with_env(marker) {
        signal(process.pid, "KILL");
    }
}

/// Kills marked processes when dropped, so a failing test leaves nothing running.
pub struct ProcessSweeper {
    pub marker: String,
}

impl ProcessSweeper {
    /// A fresh marker `TAKT_E2E_MARKER=<unique>` to prefix agent commands with.
    pub fn new(label: &str) -> ProcessSweeper {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        ProcessSweeper {
            marker: format!("TAKT_E2E_MARKER={label}-{}-{nanos}", std::process::id()),
        }
    }

    pub fn alive(&self) -> Vec<Proc> {
        processes_with_env(&self.marker)
    }
}

impl Drop for ProcessSweeper {
    fn drop(&mut self) {
        kill_processes_with_env(&self.marker);
    }
}

/// A small seeded PRNG (xorshift64*) so randomized tests print a seed and can be replayed with
/// `TAKT_E2E_SEED=<seed>`.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    pub seed: u64,
}

impl Rng {
    /// Seeded from `TAKT_E2E_SEED` when set, else from the clock.
    pub fn from_env() -> Rng {
        let seed = std::env::var("TAKT_E2E_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        Rng::seeded(seed)
    }

    pub fn seeded(seed: u64) -> Rng {
        Rng {
            state: seed.max(1),
            seed,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Runs a Python 3 script with `args` (`sys.argv[1:]`), for poking at takt's SQLite database
/// the way an attacker with file access would. Returns stdout; panics on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run python3: {error}"));
    if !out.status.success() {
        panic!(
            "python3 failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A JSON value's string field, or "".
pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}
