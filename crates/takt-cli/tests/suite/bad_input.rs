//! Bad input: each gives a precise error (the file, the key or line, the fix) and leaves takt's
//! state as it was (the journal still verifies, the tasks are unchanged).

use std::path::{Path, PathBuf};

use serde_json::Value;
use takt_test_support::{
    Daemon, LONG, Outcome, WorkflowFile, read_or_empty, str_of, wait_until, write,
};

use super::{Factory, inside, snapshot};

/// A factory with one task awaiting review, so "state intact" has something to compare.
fn factory_with_history(label: &str) -> (Factory, WorkflowFile) {
    let mut good = WorkflowFile::new(String::new());
    let f = Factory::bare(label);
    good.command = f.recording_agent();
    f.write_workflow(&good);
    f.takt.add_task("Existing work", &[]);
    f.takt.run_once();
    assert_eq!(f.takt.state_of("TAKT-1"), "awaiting_review");
    (f, good)
}

/// Writes `text` as WORKFLOW.md, requires every command to fail with exit 2 and a message
/// containing each of `expected`, then restores the good workflow and checks that nothing
/// changed. Returns `takt run --once`'s outcome for further checks.
fn assert_config_error(f: &Factory, good: &WorkflowFile, text: &str, expected: &[&str]) -> Outcome {
    let before = snapshot(&f.takt);
    write(&f.repo.workflow_path(), text);
    let path = f.repo.workflow_path().display().to_string();
    let mut run = None;
    for args in [
        &["run", "--once"][..],
        &["task", "add", "--title", "not added"][..],
        &["task", "list"][..],
        &["status"][..],
        &["review", "approve", "TAKT-1"][..],
    ] {
        let out = f.takt.run(args);
        assert_eq!(out.code, Some(2), "{out}");
        assert!(
            out.stderr.contains(&path),
            "the message names the file:\n{out}"
        );
        for needle in expected {
            assert!(
                out.stderr.contains(needle),
                "the message lacks {needle:?}:\n{out}"
            );
        }
        run.get_or_insert(out);
    }
    let doctor = f.takt.run(&["doctor"]);
    assert_eq!(doctor.code, Some(5), "{doctor}");
    assert!(
        doctor
            .stdout
            .lines()
            .any(|line| line.starts_with("FAIL") && line.contains("workflow")),
        "{doctor}"
    );

    f.write_workflow(good);
    assert_eq!(
        snapshot(&f.takt),
        before,
        "a bad WORKFLOW.md changed the tasks"
    );
    assert!(f.takt.audit_ok());
    assert_eq!(f.repo.branches(), ["main"], "nothing was merged");
    run.unwrap()
}

#[test]
fn r004_malformed_yaml_front_matter_names_file_line_and_fix() {
    let (f, good) = factory_with_history("bad-yaml");
    let out = assert_config_error(
        &f,
        &good,
        "---\ntracker:\n  kind: local\nagent: [command\n---\nDo it.\n",
        &["line 4", "fix the YAML"],
    );
    assert!(out.stderr.contains("invalid YAML front matter"), "{out}");
}

#[test]
fn r004_front_matter_that_is_not_a_map_is_refused() {
    let (f, good) = factory_with_history("not-a-map");
    let out = assert_config_error(
        &f,
        &good,
        "---\n- tracker\n- agent\n---\nDo it.\n",
        &["line 2", "not a mapping", "key: value"],
    );
    assert!(out.stderr.contains("is a list"), "{out}");
}

#[test]
fn unknown_key_in_publish_is_an_error_with_did_you_mean() {
    let (f, good) = factory_with_history("publish-key");
    let text = good
        .render()
        .replace("  auto_merge: false\n", "  auto_merg: true\n");
    assert_config_error(
        &f,
        &good,
        &text,
        &[
            "unknown key `publish.auto_merg`",
            "line ",
            "column 3",
            "did you mean `auto_merge`?",
        ],
    );
}

#[test]
fn r006_unknown_key_in_agent_is_a_warning_and_the_run_works() {
    let (f, good) = factory_with_history("agent-key");
    let mut typo = good;
    typo.agent_extra = "  max_atempts: 7\n".into();
    f.write_workflow(&typo);
    f.takt.add_task("Runs anyway", &[]);
    let out = f.takt.run_once();
    let warning = out
        .stderr
        .lines()
        .find(|line| line.contains("agent.max_atempts"))
        .unwrap_or_else(|| panic!("no warning about agent.max_atempts:\n{out}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&f.repo.workflow_path().display().to_string()),
        "{warning}"
    );
    assert!(warning.contains("line 11"), "{warning}");
    assert!(
        warning.contains("did you mean `max_attempts`?"),
        "{warning}"
    );
    assert_eq!(f.takt.state_of("TAKT-2"), "awaiting_review");
    // doctor reports it as a warning, not a failure.
    let doctor = f.takt.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .lines()
            .any(|line| line.starts_with("ok") && line.contains("max_atempts")),
        "{doctor}"
    );
}

#[test]
fn unknown_agent_backend_is_a_config_error_naming_the_choices() {
    let (f, good) = factory_with_history("backend");
    let text = good.render().replace("backend: command", "backend: clod");
    assert_config_error(
        &f,
        &good,
        &text,
        &[
            "`agent.backend`",
            "clod",
            "line 7",
            "command, codex, claude, builtin",
        ],
    );
}

#[test]
fn a_backend_whose_program_is_missing_fails_runs_and_doctor_says_why() {
    let (f, good) = factory_with_history("codex");
    let mut codex = good;
    codex.max_attempts = 1;
    let text = codex.render().replace("backend: command", "backend: codex");
    write(&f.repo.workflow_path(), &text);
    f.takt.add_task("Needs codex", &[]);
    f.takt.run_once();
    let task = f.takt.task("TAKT-2");
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(
        str_of(&task, "last_error").contains("codex_not_found"),
        "{task:#}"
    );
    let doctor = f.takt.run(&["doctor"]);
    assert_eq!(doctor.code, Some(5), "{doctor}");
    assert!(
        doctor.stdout.lines().any(|line| line.starts_with("FAIL")
            && line.contains("agent backend")
            && line.contains("npm install -g @openai/codex")),
        "{doctor}"
    );
    // The local tracker has no comments and nothing is published to a forge.
    assert!(
        doctor
            .stdout
            .lines()
            .any(|line| line.contains("host tools") && line.trim_end().ends_with(" issue_read")),
        "{doctor}"
    );
    assert_eq!(f.takt.state_of("TAKT-1"), "awaiting_review");
    assert!(f.takt.audit_ok());
}

#[test]
fn r041_unknown_template_variable_fails_the_attempt_and_retries() {
    let (f, good) = factory_with_history("template");
    let mut bad = good.clone();
    bad.prompt = "Task {{ issue.identifier }}\n{{ reviewer_notes }}".into();
    f.write_workflow(&bad);
    // The template parses, so the file loads; the render fails per attempt.
    f.takt.ok(&["task", "list"]);
    f.takt.add_task("Rendered badly", &[]);
    f.takt.run_once();

    let task = f.takt.task("TAKT-2");
    assert_eq!(task["state"], "failed", "{task:#}");
    let attempts = task["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        2,
        "the normal retry policy applies: {task:#}"
    );
    let path = f.repo.workflow_path().display().to_string();
    for attempt in attempts {
        let error = str_of(attempt, "error");
        assert!(error.contains("failed to render"), "{attempt:#}");
        assert!(error.contains(&path), "{attempt:#}");
        assert!(
            error.contains("reviewer_notes"),
            "the variable is named: {attempt:#}"
        );
        assert!(
            error.contains("fix the template"),
            "the fix is named: {attempt:#}"
        );
    }
    assert_eq!(f.prompt("TAKT-2", 1), "", "no agent ran without a prompt");
    assert_eq!(f.takt.state_of("TAKT-1"), "awaiting_review");
    assert!(f.takt.audit_ok());

    // Fixing the template and retrying works.
    f.write_workflow(&good);
    f.takt.ok(&["task", "retry", "TAKT-2"]);
    f.takt.run_once();
    assert_eq!(f.takt.state_of("TAKT-2"), "awaiting_review");
}

fn find_files_named(dir: &Path, prefix: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(path.clone());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            find_files_named(&path, prefix, found);
        }
    }
}

#[test]
fn r106_hostile_title_executes_nothing_and_stays_under_the_workspace_root() {
    let f = Factory::new("hostile", |f| WorkflowFile::new(f.recording_agent()));
    let root = f.repo.root().display().to_string();
    let title = format!(
        "../../../TAKT-2/.. $(touch {root}/pwned1); touch {root}/pwned2 `touch {root}/pwned3` \
         && rm -rf ~/nope | ünïcødé ✓ 漢字 \"dq\" 'sq' {{{{ issue.id }}}} {{% raw %}} $HOME \\n"
    );
    let body = format!("Body $(touch {root}/pwned4) `touch pwned5` ; touch pwned6");
    let identifier = f
        .takt
        .add_task(&title, &["--body", &body, "--label", "$(touch pwned7)"]);
    assert_eq!(identifier, "TAKT-1", "identifiers never come from titles");
    f.takt.run_once();

    let task = f.takt.task("TAKT-1");
    assert_eq!(task["state"], "awaiting_review", "{task:#}");
    assert_eq!(task["title"], title.trim(), "the title round-trips exactly");
    assert_eq!(task["issue"]["description"], body.as_str());
    let mut pwned = Vec::new();
    find_files_named(f.repo.root(), "pwned", &mut pwned);
    assert!(pwned.is_empty(), "something executed the title: {pwned:?}");

    // The prompt carries the text as data (Liquid in a title is not rendered).
    let prompt = f.prompt("TAKT-1", 1);
    assert!(prompt.contains(title.trim()), "{prompt}");
    assert!(prompt.contains("{{ issue.id }}"), "{prompt}");
    assert!(prompt.contains(&body), "{prompt}");

    // The workspace is <root>/TAKT-1, under the root, and nothing else was created there.
    let workspaces = f.takt.state_dir().join("workspaces");
    let workspace = PathBuf::from(str_of(&task, "workspace_path"));
    assert_eq!(workspace, workspaces.join("TAKT-1"));
    assert!(inside(&workspace, &workspaces));
    let entries: Vec<String> = std::fs::read_dir(&workspaces)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["TAKT-1"]);
    assert_eq!(task["branch"], "takt/TAKT-1");

    // The commit message holds the title verbatim, and the trailer.
    let mirror = f.takt.state_dir().join("mirror.git");
    let message = takt_test_support::git(
        &mirror,
        &["log", "-1", "--format=%B", str_of(&task, "commit")],
    );
    assert!(
        message.starts_with(&format!("TAKT-1: {}", title.trim())),
        "{message}"
    );
    assert!(
        message.lines().any(|line| line == "Takt-Task: TAKT-1"),
        "{message}"
    );

    // Human output works with it.
    f.takt.ok(&["task", "list"]);
    f.takt.ok(&["task", "show", "TAKT-1"]);
    f.takt.ok(&["review", "approve", "TAKT-1"]);
    assert_eq!(f.repo.trailer_count("main", "TAKT-1"), 1);
    let mut pwned = Vec::new();
    find_files_named(f.repo.root(), "pwned", &mut pwned);
    assert!(pwned.is_empty(), "{pwned:?}");
}

/// Titles and questions come from trackers and agents (untrusted, R-142), but the human output
/// prints titles raw: `takt task add`, `task list` (commands/task.rs uses `clip(&row.title)`
/// without `output::sanitize`), `task show`, `run --once` and `status` pass escape sequences
/// straight to the operator's terminal (here: clear screen, set window title).
#[test]
fn r142_control_bytes_in_titles_never_reach_the_terminal() {
    let f = Factory::new("ansi", |f| WorkflowFile::new(f.recording_agent()));
    let title = "Fix \u{1b}[2J\u{1b}]0;owned\u{7} screen";
    let add = f.takt.ok(&["task", "add", "--title", title]);
    let run = f.takt.run_once();
    for out in [
        add,
        run,
        f.takt.ok(&["task", "list"]),
        f.takt.ok(&["task", "show", "TAKT-1"]),
        f.takt.ok(&["status"]),
    ] {
        assert!(
            !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'),
            "raw control bytes in human output:\n{out:?}"
        );
    }
    // JSON keeps the exact text (escaped by JSON itself).
    assert_eq!(f.takt.task("TAKT-1")["title"], title);
}

/// A daemon with auto-merge, whose agent records `<version> <identifier>` in `log/versions`.
struct Reloading {
    /// First, so a failing test stops the daemon before its directory is removed.
    daemon: Daemon,
    copy: takt_test_support::Takt,
    f: Factory,
}

fn versioned_workflow(f: &Factory, version: &str) -> WorkflowFile {
    let log = f.log_dir();
    std::fs::create_dir_all(f.scripts_dir()).unwrap();
    let script = f.scripts_dir().join("versioned.sh");
    takt_test_support::write_script(
        &script,
        &format!(
            "set -e\nmkdir -p {log}\necho \"$1 $TAKT_ISSUE_IDENTIFIER\" >> {log}/versions\n\
             mkdir -p changes\necho \"$1\" >> changes/$TAKT_ISSUE_IDENTIFIER.txt\n",
            log = log.display()
        ),
    );
    let mut wf = WorkflowFile::new(format!(
        "{} sh {} {version}",
        f.sweeper.marker,
        script.display()
    ));
    wf.auto_merge = true;
    f.sandboxed(&wf)
}

impl Reloading {
    fn start(label: &str) -> Reloading {
        let f = Factory::bare(label);
        f.write_workflow(&versioned_workflow(&f, "v1"));
        // A second file beside WORKFLOW.md shares its state directory: the CLI can still add
        // tasks while WORKFLOW.md is missing or broken.
        let copy_path = f.repo.path().join("WORKFLOW.copy.md");
        versioned_workflow(&f, "v1").write_to(&copy_path);
        let copy = f.takt.with_workflow(copy_path);
        let mut daemon = f.takt.spawn_daemon(&f.repo.root().join("daemon.log"));
        daemon.wait_ready(&f.takt.state_dir());
        let mut reloading = Reloading { daemon, copy, f };
        reloading.add_and_finish("TAKT-1");
        reloading
    }

    fn versions(&self) -> Vec<String> {
        read_or_empty(&self.f.log_dir().join("versions"))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Adds a task through the copy and waits until it is merged.
    fn add_and_finish(&mut self, expected: &str) {
        let identifier = self.copy.add_task("Work while the file changes", &[]);
        assert_eq!(identifier, expected);
        let takt = &self.copy;
        let daemon = &self.daemon;
        wait_until(
            &format!("{identifier} to be merged"),
            LONG,
            || takt.state_of(&identifier) == "done",
            || format!("{:#}\n{}", takt.task(&identifier), daemon.log()),
        );
        assert!(self.daemon.is_running(), "{}", self.daemon.log());
    }

    /// Waits until the daemon's log holds `needle` `count` times.
    fn wait_for_log(&self, needle: &str, count: usize) {
        wait_until(
            &format!("the daemon to log {needle:?} {count} time(s)"),
            LONG,
            || self.daemon.log().matches(needle).count() >= count,
            || self.daemon.log(),
        );
    }

    fn finish(mut self) {
        assert_eq!(self.daemon.stop(), Some(0), "{}", self.daemon.log());
        assert!(self.copy.audit_ok());
        assert!(self.f.sweeper.alive().is_empty());
        for task in self.copy.tasks() {
            let id = str_of(&task, "identifier");
            assert_eq!(self.f.repo.trailer_count("main", id), 1, "{id}");
        }
    }
}

#[test]
fn r045_deleted_workflow_keeps_the_last_good_config_and_a_restored_change_applies() {
    let mut r = Reloading::start("deleted");
    std::fs::remove_file(r.f.repo.workflow_path()).unwrap();
    r.wait_for_log("keeping the last good configuration", 1);
    let log = r.daemon.log();
    assert!(
        log.contains(&r.f.repo.workflow_path().display().to_string()),
        "the file is named:\n{log}"
    );

    // Still serving, with the last good config.
    r.add_and_finish("TAKT-2");
    assert_eq!(r.versions(), ["v1 TAKT-1", "v1 TAKT-2"]);

    // A restored, changed file applies to new work without a restart.
    versioned_workflow(&r.f, "v2").write_to(&r.f.repo.workflow_path());
    r.wait_for_log("WORKFLOW.md reloaded", 1);
    r.add_and_finish("TAKT-3");
    assert_eq!(r.versions(), ["v1 TAKT-1", "v1 TAKT-2", "v2 TAKT-3"]);
    r.finish();
}

#[test]
fn r045_invalid_workflow_edit_mid_run_keeps_the_last_good_config() {
    let mut r = Reloading::start("invalid-edit");
    write(
        &r.f.repo.workflow_path(),
        "---\ntracker:\n  kind: local\nagent: {backend: command\n---\nBroken.\n",
    );
    r.wait_for_log("keeping the last good configuration", 1);
    let log = r.daemon.log();
    assert!(
        log.contains("WORKFLOW.md line"),
        "the error names the file and line:\n{log}"
    );
    assert!(r.daemon.is_running(), "{log}");

    r.add_and_finish("TAKT-2");
    assert_eq!(r.versions(), ["v1 TAKT-1", "v1 TAKT-2"]);

    // The same mistake with a valid syntax but an invalid value is also kept out.
    let invalid = versioned_workflow(&r.f, "v3")
        .render()
        .replace("max_concurrent_agents: 2", "max_concurrent_agents: 0");
    write(&r.f.repo.workflow_path(), &invalid);
    r.wait_for_log("keeping the last good configuration", 2);
    r.add_and_finish("TAKT-3");
    assert_eq!(r.versions(), ["v1 TAKT-1", "v1 TAKT-2", "v1 TAKT-3"]);

    versioned_workflow(&r.f, "v2").write_to(&r.f.repo.workflow_path());
    r.wait_for_log("WORKFLOW.md reloaded", 1);
    r.add_and_finish("TAKT-4");
    assert_eq!(r.versions().last().map(String::as_str), Some("v2 TAKT-4"));
    r.finish();
}

#[test]
fn r104_hanging_before_run_hook_times_out_and_is_killed() {
    let f = Factory::bare("hook-timeout");
    let mut wf = WorkflowFile::new(f.recording_agent());
    wf.max_attempts = 1;
    wf.extra = format!(
        "hooks:\n  timeout_ms: 500\n  before_run: {}\n",
        takt_test_support::yaml_string(&format!("{} sleep 600", f.sweeper.marker))
    );
    f.write_workflow(&wf);
    f.takt.add_task("Never starts", &[]);
    f.takt.run_once();

    let task = f.takt.task("TAKT-1");
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = str_of(&task, "last_error");
    assert!(error.contains("before_run"), "{task:#}");
    assert!(error.contains("timed out after 500ms"), "{task:#}");
    assert!(error.contains("killed"), "{task:#}");
    assert_eq!(f.prompt("TAKT-1", 1), "", "the agent never ran");
    // The hook's `sleep 600` was killed with its process group, not left behind.
    f.wait_for_no_agents();
    assert!(f.takt.audit_ok());
}

#[test]
fn repo_that_is_not_a_git_repository_fails_the_run_and_doctor() {
    let f = Factory::bare("not-git");
    let plain = f.repo.root().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let mut wf = WorkflowFile::new(f.recording_agent());
    wf.max_attempts = 1;
    wf.extra = format!("workspace:\n  repo: {}\n", plain.display());
    f.write_workflow(&wf);
    f.takt.add_task("Nowhere to work", &[]);
    f.takt.run_once();

    let task = f.takt.task("TAKT-1");
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = str_of(&task, "last_error");
    assert!(error.contains("is not a git repository"), "{task:#}");
    assert!(error.contains(&plain.display().to_string()), "{task:#}");
    assert!(
        error.contains("workspace.repo"),
        "the key to fix is named: {task:#}"
    );

    let doctor = f.takt.run(&["doctor"]);
    assert_eq!(doctor.code, Some(5), "{doctor}");
    let line = doctor
        .stdout
        .lines()
        .find(|line| line.contains("repository"))
        .unwrap_or_else(|| panic!("{doctor}"));
    assert!(line.starts_with("FAIL"), "{doctor}");
    assert!(line.contains("not a git repository"), "{doctor}");
    let json = f.takt.run(&["--json", "doctor"]);
    assert_eq!(json.code, Some(5));
    let report: Value = json.json();
    assert_eq!(report["healthy"], false);
}

#[test]
fn approving_a_task_not_awaiting_review_is_refused_and_changes_nothing() {
    let f = Factory::new("approve-refused", |f| {
        let mut wf = WorkflowFile::new(f.agent_command("exit 1\n"));
        wf.max_attempts = 1;
        wf
    });
    f.takt.add_task("Fails", &[]);
    f.takt.run_once();
    assert_eq!(f.takt.state_of("TAKT-1"), "failed");
    let before = snapshot(&f.takt);

    let out = f.takt.run(&["review", "approve", "TAKT-1"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(
        out.stderr.contains("TAKT-1 is failed, not awaiting_review"),
        "{out}"
    );
    let out = f.takt.run(&["--json", "review", "approve", "TAKT-1"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert_eq!(out.json()["ok"], false);
    let out = f
        .takt
        .run(&["review", "reject", "TAKT-1", "--comment", "no"]);
    assert_eq!(out.code, Some(4), "{out}");
    let out = f.takt.run(&["answer", "TAKT-1", "yes"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("not blocked"), "{out}");

    assert_eq!(snapshot(&f.takt), before);
    assert_eq!(f.repo.branches(), ["main"]);
    assert!(f.takt.audit_ok());
}

#[test]
fn task_show_of_an_unknown_task_exits_1_with_a_hint() {
    let f = Factory::new("show-unknown", |f| WorkflowFile::new(f.recording_agent()));
    let out = f.takt.run(&["task", "show", "NOPE"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("no task NOPE"), "{out}");
    assert!(
        out.stderr.contains("takt task list"),
        "the hint names the way out:\n{out}"
    );
    assert_eq!(out.stdout, "");
    // Missing workflow: exit 2 naming the file.
    let missing = f
        .takt
        .with_workflow(f.repo.root().join("nowhere/WORKFLOW.md"));
    let out = missing.run(&["task", "list"]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(out.stderr.contains("nowhere/WORKFLOW.md"), "{out}");
}

#[test]
fn r001_explicit_workflow_path_wins_over_the_current_directory() {
    let f = Factory::new("discovery", |f| WorkflowFile::new(f.recording_agent()));
    f.takt.add_task("Found", &[]);
    let path = f.repo.workflow_path();
    let elsewhere = f.repo.root().to_path_buf();

    // From another directory: the positional path of `run`, then -w, then $TAKT_WORKFLOW.
    let mut command = f
        .takt
        .bare_command(&["run", "--once", path.to_str().unwrap()]);
    command.current_dir(&elsewhere);
    let out = takt_test_support::run_command(command).expect_code(0);
    assert!(out.stdout.contains("TAKT-1  awaiting_review"), "{out}");

    let mut command = f.takt.bare_command(&[
        "-w",
        "nowhere.md",
        "task",
        "list",
        "--state",
        "awaiting_review",
    ]);
    command.current_dir(&elsewhere);
    let out = takt_test_support::run_command(command);
    assert_eq!(
        out.code,
        Some(2),
        "an explicit path that does not exist is an error:\n{out}"
    );
    assert!(out.stderr.contains("nowhere.md"), "{out}");

    let mut command = f.takt.bare_command(&["task", "list"]);
    command.current_dir(&elsewhere).env("TAKT_WORKFLOW", &path);
    let out = takt_test_support::run_command(command).expect_code(0);
    assert!(out.stdout.contains("TAKT-1"), "{out}");

    // Without any: ./WORKFLOW.md of the current directory, which is missing here.
    let mut command = f.takt.bare_command(&["task", "list"]);
    command.current_dir(&elsewhere);
    let out = takt_test_support::run_command(command);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr
            .contains(&elsewhere.join("WORKFLOW.md").display().to_string()),
        "{out}"
    );
}

#[test]
fn doctor_names_a_missing_tracker_or_forge_token_and_run_refuses_to_publish_without_it() {
    let f = Factory::new("missing-tokens", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.extra =
            "publish:\n  forge: github\n  repo: acme/widgets\n  token: $TAKT_E2E_NO_FORGE_TOKEN\n"
                .into();
        wf
    });
    // The rendered workflow already has a `publish:` section; keep only ours.
    let path = f.repo.workflow_path();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("publish:\n  forge: local\n  auto_merge: false\n", "", 1)
        .replacen(
            "tracker:\n  kind: local\n",
            "tracker:\n  kind: github\n  provider:\n    repo: acme/widgets\n    token: $TAKT_E2E_NO_TRACKER_TOKEN\n",
            1,
        );
    std::fs::write(&path, text).unwrap();
    let mut command = f.takt.command(&["doctor"]);
    command.env_remove("GITHUB_TOKEN");
    let doctor = takt_test_support::run_command(command);
    let line = |name: &str| {
        doctor
            .stdout
            .lines()
            .find(|line| line.contains(name))
            .unwrap_or_else(|| panic!("no {name} line: {doctor}"))
            .to_owned()
    };
    assert!(line("tracker").starts_with("FAIL"), "{doctor}");
    assert!(line("forge").starts_with("FAIL"), "{doctor}");
    assert!(
        line("forge").contains("TAKT_E2E_NO_FORGE_TOKEN"),
        "{doctor}"
    );
    assert!(
        line("host tools").contains("the command backend has no tool channel"),
        "{doctor}"
    );

    let mut run = f.takt.command(&["run", "--once"]);
    run.env_remove("GITHUB_TOKEN");
    let run = takt_test_support::run_command(run);
    assert_ne!(run.code, Some(0), "{run}");
    assert!(
        run.stderr.contains("TAKT_E2E_NO"),
        "the missing variable is named: {run}"
    );
}
