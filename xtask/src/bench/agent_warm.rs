//! `bench agent-warm`: the agent's first `cargo build` in a fresh task's workspace, with the
//! frozen build cache of its base shown over `target/` (`verify.warm_cache: true`), without it
//! (`verify.warm_cache: false`), and a developer's incremental build in a plain checkout.
//!
//! The sample workspace is the gates benchmark's (a library of 150 functions and the crate the
//! change edits). Two daemons run the release `takt` over two copies of it, one with warm caches
//! and one without; their agent is the command backend sourcing a script that makes a one-line
//! edit to the app crate and times `cargo build --offline` itself (`date +%s%N` before and
//! after), writing the elapsed nanoseconds to a stamp file named after the task. Each task ends
//! with a change in `awaiting_review` (the workflow's default risk), so the base never moves and
//! every task gets a new workspace on the same base.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::dispatch::{Daemon, add_task, start_daemon, to_ms, wait_for_stamp, workflow_text};
use super::gates::{EDITS, FUNCTIONS, GATE, LINE, REPETITIONS, bare, sample_workspace};
use super::{Dist, Machine, Section, git, ms, output_of, table, verdict};

/// The timed command, in the agent's workspace and in the plain checkout alike.
const BUILD: &str = "cargo build --offline";

/// A verification (the first one builds the base's cache) finishes well within this.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);

/// What the stamp holds when the build failed, and when the edit did not take.
const BUILD_FAILED: i128 = -1;
const EDIT_MISSING: i128 = -2;

/// The agent's script, sourced by the command backend's `sh -lc` in the workspace (and by the
/// in-place runs' `sh -c` in the plain checkout). `BENCH_EDIT` picks which of the two edited
/// forms of the line to write; agents do not have it and write the first, as the gates
/// benchmark's change does. The timed part is `cargo build` alone: the sandbox launch and the
/// edit happen before the first `date`. The start is recorded too, to tell the launch's share.
fn build_script(stamps: &Path) -> String {
    format!(
        r#"# Sourced in the workspace: a one-line edit to the app crate, then `{BUILD}`, timed.
unset CARGO_TARGET_DIR
stamp='{stamps}'/"$TAKT_ISSUE_IDENTIFIER"
case "${{BENCH_EDIT:-0}}" in
  1) line='{second}' ;;
  *) line='{first}' ;;
esac
sed -i "s/^{line}.*\$/$line/" app/src/lib.rs
if ! grep -qxF "$line" app/src/lib.rs; then
  echo {EDIT_MISSING} > "$stamp"
else
  started=$(date +%s%N)
  echo "$started" > "$stamp.started"
  if {BUILD} > "$stamp.log" 2>&1; then
    finished=$(date +%s%N)
    echo $((finished - started)) > "$stamp"
  else
    echo {BUILD_FAILED} > "$stamp"
  fi
fi
"#,
        stamps = stamps.display(),
        first = EDITS[0],
        second = EDITS[1],
        line = LINE,
    )
}

/// One agent's timed build.
struct Build {
    identifier: String,
    /// `cargo build`, as the agent timed it.
    build_ms: f64,
    /// From just before `takt task add` was spawned to the agent's first `date`: dispatch,
    /// workspace, sandbox launch (with the cache's overlay when warm) and the edit.
    to_build_start_ms: f64,
    /// The crates `cargo build` compiled (the others were fresh).
    compiled: Vec<String>,
    /// The `sandboxed` event's `agent build cache …` part, when it has one.
    cache_note: Option<String>,
}

/// A sample workspace with its own `takt run`.
struct Project {
    label: &'static str,
    takt: PathBuf,
    workflow: PathBuf,
    stamps: PathBuf,
    log_path: PathBuf,
    daemon: Daemon,
}

impl Project {
    /// The sample workspace in `dir/repo` with a workflow whose only gate is `cargo test` (as
    /// in the gates benchmark, so the cache holds what that gate built) and `verify.warm_cache`
    /// as given; its daemon started.
    fn start(label: &'static str, dir: &Path, takt: &Path, warm_cache: bool) -> Result<Project> {
        let repo = dir.join("repo");
        let stamps = dir.join("stamps");
        fs_err::create_dir_all(&repo)?;
        fs_err::create_dir_all(&stamps)?;
        let script = dir.join("agent.sh");
        fs_err::write(&script, build_script(&stamps))?;
        sample_workspace(&repo)?;
        let gitignore = fs_err::read_to_string(repo.join(".gitignore"))?;
        fs_err::write(repo.join(".gitignore"), format!("{gitignore}.takt/\n"))?;
        let workflow = repo.join("WORKFLOW.md");
        let extra = format!(
            "gates:\n  - name: cargo-test\n    run: {GATE}\n    timeout_ms: 600000\n\
             verify:\n  gates_auto: false\n  flaky_reruns: 0\n  warm_cache: {warm_cache}\n"
        );
        fs_err::write(&workflow, workflow_text(&script, &stamps, &extra))?;
        git(&repo, &["add", "-A"])?;
        git(
            &repo,
            &["commit", "--quiet", "-m", "the benchmark's workflow"],
        )?;
        let state_dir = repo.join(".takt");
        fs_err::create_dir_all(&state_dir)?;
        let log_path = dir.join("daemon.log");
        let daemon = start_daemon(takt, &workflow, &state_dir, &log_path, None)?;
        Ok(Project {
            label,
            takt: takt.to_path_buf(),
            workflow,
            stamps,
            log_path,
            daemon,
        })
    }

    /// `takt -w WORKFLOW.md --json ARGS`, parsed.
    fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = output_of(
            std::process::Command::new(&self.takt)
                .arg("-w")
                .arg(&self.workflow)
                .arg("--json")
                .args(args),
        )?;
        serde_json::from_str(&out).with_context(|| format!("reading `takt --json {args:?}`"))
    }

    fn daemon_log_tail(&self) -> String {
        let log = fs_err::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Submits a task and returns its agent's timed build once the task has settled in
    /// `awaiting_review` (its verification done), so the next task meets an idle machine.
    fn build_once(&self, title: &str) -> Result<Build> {
        let (identifier, submitted, _) = add_task(&self.takt, &self.workflow, title)?;
        let stamp = self.stamps.join(&identifier);
        let Some(elapsed) = wait_for_stamp(&stamp)? else {
            bail!(
                "{} {identifier}: the agent wrote no build time; the daemon's log ends:\n{}",
                self.label,
                self.daemon_log_tail()
            );
        };
        let log = fs_err::read_to_string(sibling(&stamp, "log")).unwrap_or_default();
        match elapsed {
            EDIT_MISSING => bail!("{} {identifier}: the agent's edit did not take", self.label),
            BUILD_FAILED => bail!(
                "{} {identifier}: the agent's `{BUILD}` failed:\n{log}",
                self.label
            ),
            _ => {}
        }
        let started: i128 = fs_err::read_to_string(sibling(&stamp, "started"))?
            .trim()
            .parse()
            .context("reading the agent's build start")?;
        self.settle(&identifier)?;
        let events = self.json(&["task", "events", &identifier])?;
        Ok(Build {
            build_ms: to_ms(elapsed),
            to_build_start_ms: to_ms(started - submitted),
            compiled: compiled_crates(&log),
            cache_note: cache_note(&events),
            identifier,
        })
    }

    /// Waits until the task is in `awaiting_review`; fails when it lands anywhere else for good.
    fn settle(&self, identifier: &str) -> Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let task = self.json(&["task", "show", identifier])?;
            let state = task["state"].as_str().unwrap_or_default().to_owned();
            match state.as_str() {
                "awaiting_review" => return Ok(()),
                "failed" | "cancelled" | "done" | "blocked" | "retry_wait" | "rejected" => bail!(
                    "{} {identifier} ended in `{state}`, not awaiting_review: {task:#}\nthe \
                     daemon's log ends:\n{}",
                    self.label,
                    self.daemon_log_tail()
                ),
                _ if Instant::now() > deadline => bail!(
                    "{} {identifier} is still `{state}` after {} s; the daemon's log ends:\n{}",
                    self.label,
                    SETTLE_TIMEOUT.as_secs(),
                    self.daemon_log_tail()
                ),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn stop(&mut self) -> Result<()> {
        self.daemon.stop()?;
        Ok(())
    }
}

/// `<stamp>.<suffix>`, appended (an identifier may hold a dot an extension would replace).
fn sibling(stamp: &Path, suffix: &str) -> PathBuf {
    let mut name = stamp.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The crates a `cargo build` log says it compiled.
fn compiled_crates(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.trim().strip_prefix("Compiling "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The `agent build cache …` part of the run's `sandboxed` event, wherever the journal's JSON
/// puts the description.
fn cache_note(events: &serde_json::Value) -> Option<String> {
    match events {
        serde_json::Value::String(text) => text
            .find("agent build cache ")
            .map(|at| text[at..].to_owned()),
        serde_json::Value::Array(items) => items.iter().find_map(cache_note),
        serde_json::Value::Object(fields) => fields.values().find_map(cache_note),
        _ => None,
    }
}

/// "`app` (7 of 7)": which crates the timed builds compiled, and how often.
fn compiled_summary(builds: &[&[String]]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for compiled in builds {
        let shown = if compiled.is_empty() {
            "none".to_owned()
        } else {
            compiled
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        *counts.entry(shown).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(shown, count)| format!("{shown} ({count} of {})", builds.len()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A developer's plain checkout of the sample workspace, built once.
struct InPlace {
    dir: PathBuf,
    script: PathBuf,
    stamps: PathBuf,
    first_build_ms: f64,
}

impl InPlace {
    fn new(dir: &Path) -> Result<InPlace> {
        let checkout = dir.join("checkout");
        let stamps = dir.join("stamps");
        fs_err::create_dir_all(&checkout)?;
        fs_err::create_dir_all(&stamps)?;
        let script = dir.join("build.sh");
        fs_err::write(&script, build_script(&stamps))?;
        sample_workspace(&checkout)?;
        let first_build_ms = bare(&checkout, BUILD)?;
        Ok(InPlace {
            dir: checkout,
            script,
            stamps,
            first_build_ms,
        })
    }

    /// The edit to `EDITS[edit]` (a one-line change from the previous round's) and the timed
    /// build, by the agents' own script.
    fn build_once(&self, round: usize, edit: usize) -> Result<(f64, Vec<String>)> {
        let name = format!("in-place-{round}");
        bare(
            &self.dir,
            &format!(
                "export TAKT_ISSUE_IDENTIFIER='{name}' BENCH_EDIT={edit}; . '{}'",
                self.script.display()
            ),
        )?;
        let stamp = self.stamps.join(&name);
        let elapsed: i128 = fs_err::read_to_string(&stamp)?
            .trim()
            .parse()
            .context("reading the in-place build time")?;
        let log = fs_err::read_to_string(sibling(&stamp, "log")).unwrap_or_default();
        match elapsed {
            EDIT_MISSING => bail!("in place, round {round}: the edit did not take"),
            BUILD_FAILED => bail!("in place, round {round}: `{BUILD}` failed:\n{log}"),
            _ => Ok((to_ms(elapsed), compiled_crates(&log))),
        }
    }
}

pub fn run(root: &Path, machine: &Machine) -> Result<Section> {
    let takt = super::release_binary(root, "takt");
    anyhow::ensure!(
        takt.is_file(),
        "{} is missing; build it first with `cargo build --release -p takt-cli`",
        takt.display()
    );
    let temp = tempfile::Builder::new()
        .prefix("takt-bench-agent-warm-")
        .tempdir()
        .context("creating a temporary directory")?;
    // Declared after the directory, so dropped before it: the daemons' overlay workspaces
    // outlive them on purpose, but not the benchmark.
    let _unmount = takt_test_support::UnmountBelow(temp.path().to_path_buf());
    let mut warm = Project::start("warm", &temp.path().join("warm"), &takt, true)?;
    let mut cold = Project::start("cold", &temp.path().join("cold"), &takt, false)?;
    let in_place = InPlace::new(&temp.path().join("in-place"))?;
    println!(
        "  in place: first build {} ms (not counted)",
        ms(in_place.first_build_ms)
    );

    // The warm daemon's first task finds no cache; its verification builds the base's (the gate
    // on the base commit, frozen). The cold daemon gets a first task too, so neither counts the
    // one that makes the mirror and the golden tree.
    let began = Instant::now();
    let warm_up = warm.build_once("warm-up: builds the base's cache")?;
    let warm_up_ms = began.elapsed().as_secs_f64() * 1000.0;
    println!(
        "  warm-up {}: build {} ms, settled after {} ms; {}",
        warm_up.identifier,
        ms(warm_up.build_ms),
        ms(warm_up_ms),
        warm_up.cache_note.as_deref().unwrap_or("no cache note")
    );
    let cold_up = cold.build_once("warm-up")?;
    println!(
        "  cold warm-up {}: build {} ms",
        cold_up.identifier,
        ms(cold_up.build_ms)
    );

    // The ways take turns within each round, so a change in the shared machine's load falls on
    // all of them alike; each task has settled (verification done) before the next starts.
    let (mut warm_builds, mut cold_builds, mut in_place_builds) =
        (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=REPETITIONS {
        let warm_build = warm.build_once(&format!("counted round {round}"))?;
        let note = warm_build.cache_note.as_deref().unwrap_or("no cache note");
        if !note.starts_with("agent build cache warm:") {
            bail!(
                "the counted warm task {} did not start warm: {note}",
                warm_build.identifier
            );
        }
        let cold_build = cold.build_once(&format!("counted round {round}"))?;
        let (in_place_ms, in_place_compiled) = in_place.build_once(round, (round + 1) % 2)?;
        println!(
            "  round {round}: warm {} ms (launch {} ms, compiled {:?}), cold {} ms (launch {} \
             ms, compiled {:?}), in place {} ms (compiled {:?})",
            ms(warm_build.build_ms),
            ms(warm_build.to_build_start_ms),
            warm_build.compiled,
            ms(cold_build.build_ms),
            ms(cold_build.to_build_start_ms),
            cold_build.compiled,
            ms(in_place_ms),
            in_place_compiled,
        );
        warm_builds.push(warm_build);
        cold_builds.push(cold_build);
        in_place_builds.push((in_place_ms, in_place_compiled));
    }
    warm.stop()?;
    cold.stop()?;

    let dist = |values: Vec<f64>| Dist::of(&values).context("no samples");
    let warm_d = dist(warm_builds.iter().map(|b| b.build_ms).collect())?;
    let cold_d = dist(cold_builds.iter().map(|b| b.build_ms).collect())?;
    let in_place_d = dist(in_place_builds.iter().map(|(ms, _)| *ms).collect())?;
    let warm_launch = dist(warm_builds.iter().map(|b| b.to_build_start_ms).collect())?;
    let cold_launch = dist(cold_builds.iter().map(|b| b.to_build_start_ms).collect())?;
    let warm_vs_in_place = warm_d.p50 / in_place_d.p50;
    let cold_vs_warm = cold_d.p50 / warm_d.p50;
    println!(
        "  medians: warm {} ms, cold {} ms, in place {} ms; warm / in place {warm_vs_in_place:.2}x, \
         cold / warm {cold_vs_warm:.2}x",
        ms(warm_d.p50),
        ms(cold_d.p50),
        ms(in_place_d.p50)
    );

    let compiled_of = |builds: &[Build]| {
        compiled_summary(
            &builds
                .iter()
                .map(|b| b.compiled.as_slice())
                .collect::<Vec<_>>(),
        )
    };
    let row = |label: &str, d: &Dist, compiled: String, launch: Option<&Dist>| {
        vec![
            label.to_owned(),
            format!("**{}**", ms(d.p50)),
            ms(d.min),
            ms(d.max),
            compiled,
            launch.map_or_else(|| "—".to_owned(), |l| ms(l.p50)),
        ]
    };
    let rows = vec![
        row(
            "(a) warm: `verify.warm_cache: true`, the base's cache over `target/`",
            &warm_d,
            compiled_of(&warm_builds),
            Some(&warm_launch),
        ),
        row(
            "(b) cold: `verify.warm_cache: false`, a new workspace's empty `target/`",
            &cold_d,
            compiled_of(&cold_builds),
            Some(&cold_launch),
        ),
        row(
            "(c) in place: a plain checkout built before, no takt",
            &in_place_d,
            compiled_summary(
                &in_place_builds
                    .iter()
                    .map(|(_, compiled)| compiled.as_slice())
                    .collect::<Vec<_>>(),
            ),
            None,
        ),
    ];
    let evidence = warm_builds
        .first()
        .and_then(|b| b.cache_note.clone())
        .unwrap_or_default();
    let warm_up_note = warm_up.cache_note.unwrap_or_else(|| "no cache note".into());

    let launch_gap = warm_launch.p50 - cold_launch.p50;
    let launch_difference = format!(
        "{} ms {} the cold one",
        ms(launch_gap.abs()),
        if launch_gap >= 0.0 { "above" } else { "below" }
    );
    let mut markdown = format!("{}\n\n", machine.measured_line());
    markdown.push_str(&format!(
        "**What.** How long an agent's first `{BUILD}` takes in a fresh task's workspace after a \
         one-line edit, when the workspace shows the frozen build cache of its base over \
         `target/` (warm agent builds, `verify.warm_cache: true`), when it does not, and, for \
         comparison, a developer's incremental build of the same edit.\n\n\
         **How.** `cargo run --release -p xtask -- bench agent-warm` makes the gates benchmark's \
         sample workspace (a library of {FUNCTIONS} functions with a test each, unchanged, and the \
         crate the edit touches, which depends on it) three times: two repositories, each with \
         its own `target/release/takt run` (command backend, sandboxed, overlay workspaces, as \
         root; one gate, `{GATE}`; the default risk, so every task ends in `awaiting_review`, \
         the base never moves and each task gets a new workspace on it), one with \
         `verify.warm_cache: true` and one with `false`, and a plain checkout built once with \
         `{BUILD}` ({} ms, not counted). The agent sources a script that rewrites one line of \
         `app/src/lib.rs`, then runs `date +%s%N`, `{BUILD}`, `date +%s%N` and writes the \
         difference to a file named after the task: only `cargo build` inside the sandbox is \
         timed, the sandbox launch (with the cache's overlay mount when warm) and the edit are \
         not. The in-place way runs the same script in the plain checkout with `sh -c`, the \
         line alternating between two edited forms so each build follows a one-line change. \
         Each daemon first ran one task that is not counted: the warm daemon's agent \
         (`{warm_up_note}`) is the one whose verification built the base's cache ({} ms from \
         `task add` until the task was in `awaiting_review`); the cold daemon's made its mirror \
         and golden tree. Then {REPETITIONS} rounds, the three ways taking turns within each \
         round, both daemons running side by side but idle while the other works: every task's \
         verification is done before the next task or build starts. Every counted warm task's \
         `sandboxed` event says it started warm, e.g. `{evidence}`.\n\n",
        ms(in_place.first_build_ms),
        ms(warm_up_ms),
    ));
    markdown.push_str(&table(
        &[
            "way (`cargo build` after a one-line edit)",
            "p50 ms",
            "min",
            "max",
            "crates compiled",
            "`task add` → build starts, p50 ms",
        ],
        &rows,
    ));
    markdown.push_str(&format!(
        "\nRatios of the medians: warm / in place **{warm_vs_in_place:.2}x** (target ≤ 1.5x — \
         {}); cold / warm **{cold_vs_warm:.2}x**.\n\n\
         **Reading.** Warm, the agent's build compiles only the crate it edited, as the \
         in-place build does: the base's crates come from the cache, at the path they were \
         built at and fresh by their file times, so inside the sandbox, on an overlay of the \
         cache, `cargo build` costs what it costs in a developer's checkout. Cold, it compiles \
         the unchanged library too. This sample's library is small (a new workspace's whole \
         build takes {} ms at the median), so cold / warm is modest here; it grows with what \
         the base's build holds (a real workspace's dependencies take minutes). The last column \
         is what comes before the timed build, not part of it: the `task add` process, the \
         dispatch, the overlay workspace, the sandbox launch, and when warm the cache lookup, \
         the file times of changed files and the overlay on `target/` (the warm median {}).\n",
        verdict(warm_vs_in_place <= 1.5),
        ms(cold_d.p50),
        launch_difference,
    ));
    Ok(Section {
        name: "agent-warm",
        markdown,
    })
}
