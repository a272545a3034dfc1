//! `bench dispatch`: the latency from `takt task add` to the start of the agent's process, with
//! `takt run` already running.
//!
//! A temporary git repository gets a WORKFLOW.md with the local tracker, a 30 s poll interval
//! (so only the wake-up through `.takt/daemon.sock` can explain a fast dispatch) and the command
//! backend, whose `command.run` sources a script that first records `date +%s%N` in a file named
//! after the task, then leaves a one-line change so the run ends in `awaiting_review`. The
//! release `takt run` runs in the background; for each of N tasks the bench takes the clock just
//! before spawning `takt task add`, again when that process has exited, and reads the agent's
//! timestamp. The daemon's JSON log gives the stages in between.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use super::{Dist, Machine, Section, git, ms, table, verdict};

const TASKS: usize = 50;
const WARM_UP: usize = 3;
const TARGET_P50_MS: f64 = 50.0;
/// Longer than the poll interval: a lost wake-up shows up as a ~30 s sample, not an error.
const AGENT_TIMEOUT: Duration = Duration::from_secs(45);
const SHELL_SAMPLES: usize = 20;
const TRACE_TASKS: usize = 10;
const TRACE_FILTER: &str = "info,takt_workspace=trace";

pub(super) fn now_ns() -> Result<i128> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_nanos() as i128)
}

pub(super) fn to_ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

/// The daemon, stopped with SIGTERM (then SIGKILL) however the bench ends.
pub(super) struct Daemon {
    pub(super) child: Child,
}

impl Daemon {
    pub(super) fn stop(&mut self) -> Result<Option<std::process::ExitStatus>> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(Some(status));
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(None)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// One submitted task.
struct Sample {
    identifier: String,
    /// Just before `takt task add` was spawned.
    submitted: i128,
    /// When it had exited.
    added: i128,
    /// The agent's `date +%s%N`.
    agent: i128,
}

/// Source files (under `crates/`, and `Cargo.lock`) modified after the takt binary was built.
fn newer_sources(root: &Path, built: SystemTime) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, built: SystemTime, found: &mut Vec<String>) {
        let Ok(entries) = fs_err::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name == "tests" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, built, found);
            } else if entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified > built)
            {
                let shown = path.strip_prefix(root).unwrap_or(&path);
                found.push(shown.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    if fs_err::metadata(root.join("Cargo.lock"))
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified > built)
    {
        found.push("Cargo.lock".into());
    }
    walk(root, &root.join("crates"), built, &mut found);
    found.sort();
    found
}

/// The benchmark's WORKFLOW.md. Agents run sandboxed: the agent may write its timestamps
/// (`stamps`) and read its script, nothing else outside its workspace. `extra` is more front
/// matter (whole top-level sections, each line ending in a newline), e.g. `gates` and `verify`.
pub(super) fn workflow_text(agent_script: &Path, stamps: &Path, extra: &str) -> String {
    format!(
        r#"---
tracker:
  kind: local
polling:
  interval_ms: 30000
workspace:
  root: .takt/workspaces
agent:
  backend: command
  max_concurrent_agents: 4
  max_turns: 1
command:
  run: . '{script}'
sandbox:
  read_write: ['{stamps}']
  read_only: ['{script}']
publish:
  forge: local
  auto_merge: false
{extra}---
Benchmark task {{{{ issue.identifier }}}}: {{{{ issue.title }}}}
"#,
        script = agent_script.display(),
        stamps = stamps.display()
    )
}

pub(super) fn agent_script(stamps: &Path) -> String {
    format!(
        "# Sourced by `sh -lc`: the first command records when the agent started.\n\
         date +%s%N > '{stamps}'/\"$TAKT_ISSUE_IDENTIFIER\"\n\
         echo \"$TAKT_ISSUE_IDENTIFIER\" > bench-change.txt\n",
        stamps = stamps.display()
    )
}

/// Reads the agent's timestamp once the file holds a whole one.
fn read_stamp(path: &Path) -> Option<i128> {
    let text = fs_err::read_to_string(path).ok()?;
    if !text.ends_with('\n') {
        return None;
    }
    text.trim().parse().ok()
}

pub(super) fn wait_for_stamp(path: &Path) -> Result<Option<i128>> {
    let deadline = Instant::now() + AGENT_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(stamp) = read_stamp(path) {
            return Ok(Some(stamp));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(None)
}

/// Lets the run finish (commit, journal) so the next task meets an idle daemon: waits for the
/// command backend's turn log, then a little more.
pub(super) fn wait_for_run_end(state_dir: &Path, identifier: &str) {
    let log = state_dir
        .join("runs")
        .join(takt_workspace::workspace_key(identifier))
        .join("1")
        .join("turn-1.log");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && !log.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
}

/// `takt task add --title`: (the new task's identifier, the clock just before the process was
/// spawned, the clock when it had exited).
pub(super) fn add_task(takt: &Path, workflow: &Path, title: &str) -> Result<(String, i128, i128)> {
    let submitted = now_ns()?;
    let out = Command::new(takt)
        .arg("-w")
        .arg(workflow)
        .args(["--json", "task", "add", "--title", title])
        .stdin(Stdio::null())
        .output()
        .context("running takt task add")?;
    let added = now_ns()?;
    if !out.status.success() {
        bail!(
            "takt task add failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let issue: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading takt task add --json")?;
    let identifier = issue
        .get("identifier")
        .and_then(serde_json::Value::as_str)
        .context("takt task add --json printed no identifier")?
        .to_owned();
    Ok((identifier, submitted, added))
}

/// `sh -lc` startup to `date`: the part of every dispatch that is the shell, not takt.
fn shell_startup(stamps: &Path) -> Result<Dist> {
    let mut samples = Vec::new();
    let script = stamps.join("shell-probe.sh");
    fs_err::write(&script, "date +%s%N\n")?;
    for _ in 0..SHELL_SAMPLES {
        let before = now_ns()?;
        let out = Command::new("sh")
            .arg("-lc")
            .arg(format!(". '{}'", script.display()))
            .output()?;
        let stamp: i128 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("reading the shell probe's date")?;
        samples.push(to_ms(stamp - before));
    }
    Dist::of(&samples).context("no shell samples")
}

/// One line of the daemon's JSON log.
struct LogLine {
    at: i128,
    message: String,
    fields: serde_json::Value,
}

impl LogLine {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(serde_json::Value::as_str)
    }

    /// The task a line is about, whichever field name the logging call used.
    fn identifier(&self) -> Option<&str> {
        self.field("issue_identifier")
            .or_else(|| self.field("identifier"))
    }
}

fn parse_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            let at = value
                .get("timestamp")
                .and_then(serde_json::Value::as_str)
                .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
                .and_then(|at| at.timestamp_nanos_opt())?;
            let fields = value.get("fields")?.clone();
            let message = fields.get("message")?.as_str()?.to_owned();
            Some(LogLine {
                at: i128::from(at),
                message,
                fields,
            })
        })
        .collect()
}

/// The first line with `message` about `identifier`.
fn mark(lines: &[LogLine], message: &str, identifier: &str) -> Option<(usize, i128)> {
    lines
        .iter()
        .position(|line| line.message == message && line.identifier() == Some(identifier))
        .map(|index| (index, lines[index].at))
}

/// `git -c k=v ... fetch --prune --quiet origin` -> `fetch --prune`.
fn git_kind(command: &str) -> String {
    let mut tokens = command.split_whitespace().skip(1).peekable();
    while tokens.peek() == Some(&"-c") {
        tokens.next();
        tokens.next();
    }
    let Some(sub) = tokens.next() else {
        return "git".into();
    };
    let second = tokens
        .next()
        .map(|t| {
            t.trim_matches('\'')
                .split('=')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|t| t.starts_with('-') || sub == "worktree");
    match second {
        Some(second) => format!("{sub} {second}"),
        None => sub.to_owned(),
    }
}

/// A daemon run over a fresh repository.
struct Session {
    warm: Vec<Sample>,
    samples: Vec<Sample>,
    log: Vec<LogLine>,
}

/// Starts `takt -w workflow run` with JSON logs into `log_path` and waits until it listens on
/// `state_dir/daemon.sock`. `rust_log` is its `RUST_LOG` (none: the default level).
pub(super) fn start_daemon(
    takt: &Path,
    workflow: &Path,
    state_dir: &Path,
    log_path: &Path,
    rust_log: Option<&str>,
) -> Result<Daemon> {
    let log = fs_err::File::create(log_path)?;
    let mut command = Command::new(takt);
    command
        .arg("-w")
        .arg(workflow)
        .arg("run")
        .env("TAKT_LOG_FORMAT", "json")
        // Agents and gates build where takt puts them, not in the target directory the bench
        // itself may have been started with.
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.into_parts().0);
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let child = command.spawn().context("starting takt run")?;
    let mut daemon = Daemon { child };
    let socket = state_dir.join("daemon.sock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if let Some(status) = daemon.child.try_wait()? {
            bail!(
                "takt run exited with {status} before it listened on {}; its log:\n{}",
                socket.display(),
                fs_err::read_to_string(log_path).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!("takt run did not create {} within 30 s", socket.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(daemon)
}

/// A benchmark's project in a temporary directory: the command agent's script and its
/// stamps, and a repository on `main` holding a README, a `.gitignore` and the workflow.
pub(super) struct BenchProject {
    // Dropped before the directory: the daemon's overlay workspaces outlive it on purpose, but
    // not the benchmark.
    _unmount: takt_test_support::UnmountBelow,
    pub temp: tempfile::TempDir,
    pub stamps: std::path::PathBuf,
    pub workflow: std::path::PathBuf,
    pub state_dir: std::path::PathBuf,
}

/// The project of benchmark `name`, its workflow [`workflow_text`] as `adjust` changes it.
pub(super) fn bench_project(
    name: &str,
    adjust: impl FnOnce(String) -> String,
) -> Result<BenchProject> {
    let temp = tempfile::Builder::new()
        .prefix(&format!("takt-bench-{name}-"))
        .tempdir()
        .context("creating a temporary directory")?;
    let repo = temp.path().join("repo");
    let stamps = temp.path().join("stamps");
    fs_err::create_dir_all(&repo)?;
    fs_err::create_dir_all(&stamps)?;
    let script = temp.path().join("agent.sh");
    fs_err::write(&script, agent_script(&stamps))?;
    git(&repo, &["init", "--quiet", "--initial-branch=main"])?;
    fs_err::write(repo.join("README.md"), format!("# {name} benchmark\n"))?;
    fs_err::write(repo.join(".gitignore"), ".takt/\n")?;
    let workflow = repo.join("WORKFLOW.md");
    fs_err::write(&workflow, adjust(workflow_text(&script, &stamps, "")))?;
    git(&repo, &["add", "-A"])?;
    git(
        &repo,
        &["commit", "--quiet", "-m", &format!("{name} benchmark")],
    )?;
    let state_dir = repo.join(".takt");
    fs_err::create_dir_all(&state_dir)?;
    Ok(BenchProject {
        _unmount: takt_test_support::UnmountBelow(temp.path().to_path_buf()),
        temp,
        stamps,
        workflow,
        state_dir,
    })
}

fn session(takt: &Path, tasks: usize, rust_log: Option<&str>) -> Result<Session> {
    let project = bench_project("dispatch", |text| text)?;
    let BenchProject {
        temp,
        stamps,
        workflow,
        state_dir,
        ..
    } = &project;
    let log_path = temp.path().join("daemon.log");
    let mut daemon = start_daemon(takt, workflow, state_dir, &log_path, rust_log)?;

    let mut warm = Vec::new();
    let mut samples = Vec::new();
    for i in 0..WARM_UP + tasks {
        let measured = i >= WARM_UP;
        let title = if measured {
            format!("benchmark task {}", i - WARM_UP + 1)
        } else {
            format!("warm-up task {}", i + 1)
        };
        let (identifier, submitted, added) = add_task(takt, workflow, &title)?;
        let Some(agent) = wait_for_stamp(&stamps.join(&identifier))? else {
            bail!(
                "{identifier}'s agent did not start within {} s; the daemon's log:\n{}",
                AGENT_TIMEOUT.as_secs(),
                fs_err::read_to_string(&log_path).unwrap_or_default()
            );
        };
        let sample = Sample {
            identifier,
            submitted,
            added,
            agent,
        };
        wait_for_run_end(state_dir, &sample.identifier);
        if measured {
            samples.push(sample);
        } else {
            warm.push(sample);
        }
    }
    daemon.stop()?;
    let log = parse_log(&fs_err::read_to_string(&log_path)?);
    drop(daemon);
    drop(project);
    Ok(Session { warm, samples, log })
}

/// Per kind of git command run between `dispatching` and `workspace ready`: how many per
/// dispatch and how long each took (the gap to the daemon's next log line).
struct GitRow {
    kind: String,
    per_dispatch: f64,
    each: Dist,
    per_dispatch_ms: f64,
}

fn git_breakdown(session: &Session) -> (Vec<GitRow>, Dist, Dist) {
    let mut kinds: Vec<(String, Vec<f64>)> = Vec::new();
    let mut counts = Vec::new();
    let mut totals = Vec::new();
    for sample in &session.samples {
        let lines = &session.log;
        let (Some((start, _)), Some((end, _))) = (
            mark(lines, "dispatching", &sample.identifier),
            mark(lines, "workspace ready", &sample.identifier),
        ) else {
            continue;
        };
        let mut count = 0.0;
        let mut total = 0.0;
        for index in start..end {
            let line = &lines[index];
            if line.message != "running git" {
                continue;
            }
            let kind = git_kind(line.field("command").unwrap_or("git"));
            let took = to_ms(lines[index + 1].at - line.at);
            count += 1.0;
            total += took;
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, samples)) => samples.push(took),
                None => kinds.push((kind, vec![took])),
            }
        }
        counts.push(count);
        totals.push(total);
    }
    let dispatches = counts.len().max(1) as f64;
    let rows = kinds
        .into_iter()
        .filter_map(|(kind, samples)| {
            let each = Dist::of(&samples)?;
            Some(GitRow {
                per_dispatch: samples.len() as f64 / dispatches,
                per_dispatch_ms: samples.iter().sum::<f64>() / dispatches,
                kind,
                each,
            })
        })
        .collect();
    let zero = Dist::of(&[0.0]).unwrap_or(Dist {
        min: 0.0,
        p50: 0.0,
        p90: 0.0,
        p99: 0.0,
        max: 0.0,
    });
    (
        rows,
        Dist::of(&counts).unwrap_or(zero),
        Dist::of(&totals).unwrap_or(zero),
    )
}

pub fn run(root: &Path, machine: &Machine) -> Result<Section> {
    let takt = super::release_binary(root, "takt");
    let built = fs_err::metadata(&takt)
        .and_then(|m| m.modified())
        .map_err(|_| {
            anyhow::anyhow!(
                "{} is missing; build it first with `cargo build --release -p takt-cli`",
                takt.display()
            )
        })?;
    let newer = newer_sources(root, built);
    if !newer.is_empty() {
        println!(
            "WARNING: {} is older than {}; rebuild it with `cargo build --release -p takt-cli` for current numbers",
            takt.display(),
            newer.join(", ")
        );
    }

    println!("measuring {TASKS} dispatches (default logging)");
    let main = session(&takt, TASKS, None)?;
    for (i, sample) in main.warm.iter().enumerate() {
        println!(
            "  warm-up {}: {:.1} ms{}",
            sample.identifier,
            to_ms(sample.agent - sample.submitted),
            if i == 0 { " (creates the mirror)" } else { "" }
        );
    }
    println!("tracing {TRACE_TASKS} more dispatches (takt_workspace=trace, not counted)");
    let traced = session(&takt, TRACE_TASKS, Some(TRACE_FILTER))?;
    let shell = {
        let temp = tempfile::Builder::new()
            .prefix("takt-bench-shell-")
            .tempdir()?;
        shell_startup(temp.path())?
    };

    let samples = &main.samples;
    let dist = |values: Vec<f64>| Dist::of(&values).context("no samples");
    let total_d = dist(
        samples
            .iter()
            .map(|s| to_ms(s.agent - s.submitted))
            .collect(),
    )?;
    let after_d = dist(samples.iter().map(|s| to_ms(s.agent - s.added)).collect())?;
    let add_d = dist(
        samples
            .iter()
            .map(|s| to_ms(s.added - s.submitted))
            .collect(),
    )?;

    // Stages from the daemon's log timestamps.
    let mut stages: [Vec<f64>; 3] = Default::default();
    for s in samples {
        let (Some((_, dispatching)), Some((_, ready))) = (
            mark(&main.log, "dispatching", &s.identifier),
            mark(&main.log, "workspace ready", &s.identifier),
        ) else {
            continue;
        };
        stages[0].push(to_ms(dispatching - s.added));
        stages[1].push(to_ms(ready - dispatching));
        stages[2].push(to_ms(s.agent - ready));
    }
    let stage_d: Vec<Option<Dist>> = stages.iter().map(|v| Dist::of(v)).collect();
    let stage_p50 = |i: usize| stage_d[i].map_or(f64::NAN, |d| d.p50);

    let row = |label: &str, d: &Dist| {
        vec![
            label.to_owned(),
            ms(d.p50),
            ms(d.p90),
            ms(d.p99),
            ms(d.max),
            ms(d.min),
        ]
    };
    println!(
        "  task add -> agent start: p50 {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
        total_d.p50, total_d.p90, total_d.p99, total_d.max
    );
    println!(
        "  task add exited -> agent start: p50 {:.1} ms, p90 {:.1}, p99 {:.1}, max {:.1}",
        after_d.p50, after_d.p90, after_d.p99, after_d.max
    );
    let stage_labels = [
        "`task add` exited → daemon logs `dispatching` (wake-up, poll, journal, dispatch decision)",
        "`dispatching` → `workspace ready` (worker: eligibility re-check, `sync_mirror`, `ensure`)",
        "`workspace ready` → agent's `date` (hooks, prompt, session, `sh -lc` startup)",
    ];
    let mut stage_rows = vec![row("`task add` spawned → exited (the CLI process)", &add_d)];
    for (label, dist) in stage_labels.iter().zip(&stage_d) {
        if let Some(d) = dist {
            println!("  stage {label}: p50 {:.1} ms", d.p50);
            stage_rows.push(row(label, d));
        }
    }
    stage_rows.push(row(
        "for comparison: `sh -lc '. script'` spawned → its `date` (from the bench, no takt)",
        &shell,
    ));

    let (git_rows, git_count, git_total) = git_breakdown(&traced);
    println!(
        "  git per dispatch (traced): {:.0} processes, {:.1} ms at p50",
        git_count.p50, git_total.p50
    );
    let mut git_table_rows: Vec<Vec<String>> = git_rows
        .iter()
        .map(|r| {
            println!(
                "    {:<28} {:.1} per dispatch, p50 {:.1} ms each",
                r.kind, r.per_dispatch, r.each.p50
            );
            vec![
                format!("`git {}`", r.kind),
                format!("{:.1}", r.per_dispatch),
                ms(r.each.p50),
                ms(r.each.max),
                ms(r.per_dispatch_ms),
            ]
        })
        .collect();
    git_table_rows.push(vec![
        "**all git processes**".into(),
        format!("**{:.0}**", git_count.p50),
        String::new(),
        String::new(),
        format!("**{}** (p50 of the per-dispatch sums)", ms(git_total.p50)),
    ]);
    let git_table = table(
        &[
            "git command (in order of first use)",
            "per dispatch",
            "p50 ms each",
            "max ms each",
            "ms per dispatch (mean)",
        ],
        &git_table_rows,
    );
    let traced_worker = Dist::of(
        &traced
            .samples
            .iter()
            .filter_map(|s| {
                let (_, dispatching) = mark(&traced.log, "dispatching", &s.identifier)?;
                let (_, ready) = mark(&traced.log, "workspace ready", &s.identifier)?;
                Some(to_ms(ready - dispatching))
            })
            .collect::<Vec<_>>(),
    );

    let met = total_d.p50 < TARGET_P50_MS;
    let cold = main.warm.first().map(|s| to_ms(s.agent - s.submitted));
    let header = ["", "p50 ms", "p90", "p99", "max", "min"];
    let main_table = table(
        &header,
        &[
            row(
                "**`takt task add` spawned → agent process started**",
                &total_d,
            ),
            row("`takt task add` exited → agent process started", &after_d),
        ],
    );
    let stage_table = table(&header, &stage_rows);
    let stale_note = if newer.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = newer
            .iter()
            .take(6)
            .map(|path| format!("`{path}`"))
            .collect();
        format!(
            "\n> These files were changed after `target/release/takt` was built, so the binary \
             measured does not contain those changes: {}{}.\n",
            shown.join(", "),
            if newer.len() > 6 { ", ..." } else { "" }
        )
    };
    let reading = {
        let decided = stage_p50(0);
        let worker = stage_p50(1);
        let launch = stage_p50(2);
        let summary = format!(
            "At the median the `task add` process runs {} ms (it opens the store, inserts the \
             issue and wakes the daemon before it exits), the daemon logs `dispatching` {} ms after \
             that process has exited, the worker needs {} ms until the workspace is ready, and the \
             agent's first command runs {} ms after that (starting a bare `sh -lc` from the bench \
             takes {} ms).",
            ms(add_d.p50),
            ms(decided),
            ms(worker),
            ms(launch),
            ms(shell.p50)
        );
        let small = small_git_p50(&git_rows);
        let mut big: Vec<&GitRow> = git_rows
            .iter()
            .filter(|row| row.each.p50 >= 2.0 * small)
            .collect();
        big.sort_by(|a, b| b.per_dispatch_ms.total_cmp(&a.per_dispatch_ms));
        let mut names: Vec<String> = big
            .iter()
            .map(|row| format!("`git {}` ({} ms)", row.kind, ms(row.each.p50)))
            .collect();
        let big_text = match names.pop() {
            Some(last) if !names.is_empty() => format!("{} and {last}", names.join(", ")),
            Some(last) => last,
            None => String::new(),
        };
        let ls_remote = git_rows.iter().any(|row| row.kind == "ls-remote --symref");
        let cause = format!(
            "The wake-up path (`wake` → `accept` → `on_wake` → `PollRequested` → poll → \
             dispatch) takes a few milliseconds. Most of the time goes to the worker's `prepare` (`crates/takt-cli/src/worker.rs`): before every agent start it \
             runs `WorkspaceManager::sync_mirror` and then `ensure`, which spawn {count:.0} git \
             processes one after another ({git} ms at p50 in the traced pass, whose worker stage \
             took {traced} ms at p50). Most are small (about {small} ms each at p50, mostly \
             process start-up on this VM); the big ones are {big_text}.{ls_note} Without the git \
             processes the median would be roughly {without} ms.",
            count = git_count.p50,
            git = ms(git_total.p50),
            traced = traced_worker.map_or_else(|| "?".into(), |d| ms(d.p50)),
            small = ms(small),
            big_text = if big_text.is_empty() {
                "none".to_owned()
            } else {
                big_text
            },
            ls_note = if ls_remote {
                " `git ls-remote --symref origin HEAD` starts an upload-pack in the source on \
                 every dispatch only to learn the source's HEAD branch, which rarely changes."
            } else {
                ""
            },
            without = ms(total_d.p50 - git_total.p50),
        );
        let under = samples
            .iter()
            .filter(|s| to_ms(s.agent - s.submitted) < TARGET_P50_MS)
            .count();
        let verdict_text = if met { "met" } else { "**missed**" };
        let margin = if (total_d.p50 - TARGET_P50_MS).abs() < 0.2 * TARGET_P50_MS {
            " The margin is small next to this shared VM's run-to-run variation (the load \
             average above shows how busy it was), so the verdict can flip from one run to the \
             next."
        } else {
            ""
        };
        format!(
            "The target is {verdict_text}: p50 {} ms against {TARGET_P50_MS:.0} ms; {under} of \
             {TASKS} dispatches took less than {TARGET_P50_MS:.0} ms.{margin} {summary} {cause}",
            ms(total_d.p50)
        )
    };
    let markdown = format!(
        "{measured}
{stale_note}
**What.** How long a task submitted with `takt task add` waits, with `takt run` already running,
until its agent's process starts: the wake-up through `.takt/daemon.sock`, the poll, the
journal writes, the worker's workspace provisioning and the command backend's spawn.

**How.** A temporary git repository (three small files) with a WORKFLOW.md: tracker `local`,
`polling.interval_ms: 30000` (a dispatch faster than that can only come from the wake-up),
`agent.backend: command`, `max_turns: 1`, `publish.auto_merge: false`. `command.run` sources a
script whose first command is `date +%s%N > stamps/$TAKT_ISSUE_IDENTIFIER`, and which then leaves
a one-line change (the run ends in `awaiting_review`). `target/release/takt run` runs in the
background with its default log level and JSON logs; as root, so each workspace is an overlay
of the base's golden tree (the default), made by `git worktree add --no-checkout` and a mount. After {WARM_UP} warm-up tasks (the first
one creates the mirror: {cold}), the bench submits {TASKS} tasks one at a time: it reads the clock
just before spawning `takt -w WORKFLOW.md --json task add --title ...`, again when that process has
exited, then waits for the task's timestamp file; it lets the run finish (commit, journal) before
submitting the next task, so every dispatch meets an idle daemon. The daemon is stopped with
SIGTERM at the end. Percentiles are nearest-rank over {TASKS} samples (p99 is the second-largest
value). A second daemon on a fresh repository then handles {TRACE_TASKS} more tasks with
`RUST_LOG={TRACE_FILTER}` to list the git processes of each dispatch (not counted above).

**Target.** p50 < {TARGET_P50_MS:.0} ms from `task add` to the agent's start: {verdict_text}
(p50 {p50} ms).

{main_table}
Where the time goes (stages from the daemon's log timestamps):

{stage_table}
The git processes between `dispatching` and `workspace ready` (traced pass; each one's time is
the gap to the daemon's next log line):

{git_table}
**Reading.** {reading}
",
        measured = machine.measured_line(),
        cold = cold.map_or_else(|| "not measured".into(), |c| format!("{} ms", ms(c))),
        verdict_text = verdict(met),
        p50 = ms(total_d.p50),
    );
    Ok(Section {
        name: "dispatch",
        markdown,
    })
}

/// The typical cost of a small git command (the median of the kinds that are not fetch,
/// ls-remote or worktree add).
fn small_git_p50(rows: &[GitRow]) -> f64 {
    let mut small: Vec<f64> = rows
        .iter()
        .filter(|r| {
            !["fetch", "ls-remote", "worktree add", "clone"]
                .iter()
                .any(|big| r.kind.starts_with(big))
        })
        .map(|r| r.each.p50)
        .collect();
    small.sort_by(f64::total_cmp);
    small.get(small.len() / 2).copied().unwrap_or(f64::NAN)
}
