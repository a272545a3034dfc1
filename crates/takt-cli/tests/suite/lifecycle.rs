//! The whole line through the CLI: init, task add, run, review, answers, failures, operator
//! commands, dispatch order, the JSON shapes, the audit, and the state lock.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;
use takt_test_support::{
    GitRepo, LONG, Takt, WorkflowFile, git, python, read_or_empty, run_command, str_of, wait_until,
    write,
};

use super::{Factory, TAKT};

fn plain_repo_without_ignore() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("takt-e2e-")
        .tempdir()
        .unwrap();
    write(&dir.path().join("README.md"), "hello\n");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "Initial commit"]);
    dir
}

#[test]
fn init_writes_a_loadable_workflow_and_ignores_the_state_dir() {
    let dir = plain_repo_without_ignore();
    let takt = Takt::new(TAKT, dir.path().join("WORKFLOW.md"));

    let out = run_command(takt.bare_command(&["init"])).expect_code(0);
    assert!(out.stdout.contains("WORKFLOW.md"), "{out}");
    let workflow = read_or_empty(&dir.path().join("WORKFLOW.md"));
    assert!(workflow.starts_with("---\n"), "{workflow}");
    assert!(workflow.contains("backend: command"), "{workflow}");
    let ignore = read_or_empty(&dir.path().join(".gitignore"));
    assert_eq!(
        ignore
            .lines()
            .filter(|line| line.trim() == ".takt/")
            .count(),
        1,
        ".gitignore must ignore .takt/ once:\n{ignore}"
    );

    // The written file loads: found from the current directory without -w.
    let out = run_command(takt.bare_command(&["task", "list"])).expect_code(0);
    assert!(out.stdout.contains("No tasks"), "{out}");

    // A second init refuses to overwrite, and changes nothing.
    write(&dir.path().join("WORKFLOW.md"), "my edits\n");
    let out = run_command(takt.bare_command(&["init"]));
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("already exists"), "{out}");
    assert!(out.stderr.contains("--force"), "the fix is named:\n{out}");
    assert_eq!(read_or_empty(&dir.path().join("WORKFLOW.md")), "my edits\n");

    // --force overwrites, and does not ignore .takt/ twice.
    run_command(takt.bare_command(&["init", "--force"])).expect_code(0);
    assert!(read_or_empty(&dir.path().join("WORKFLOW.md")).starts_with("---\n"));
    let ignore = read_or_empty(&dir.path().join(".gitignore"));
    assert_eq!(
        ignore
            .lines()
            .filter(|line| line.trim() == ".takt/")
            .count(),
        1,
        "{ignore}"
    );
}

#[test]
fn init_refuses_outside_a_git_repository() {
    let dir = tempfile::Builder::new()
        .prefix("takt-e2e-")
        .tempdir()
        .unwrap();
    let takt = Takt::new(TAKT, dir.path().join("WORKFLOW.md"));
    let mut command = takt.bare_command(&["init"]);
    command.env("GIT_CEILING_DIRECTORIES", dir.path().parent().unwrap());
    let out = run_command(command);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("not inside a git repository"), "{out}");
    assert!(out.stderr.contains("git init"), "the fix is named:\n{out}");
    assert!(!dir.path().join("WORKFLOW.md").exists());
    assert!(!dir.path().join(".gitignore").exists());
}

#[test]
fn task_add_numbers_normalizes_and_validates() {
    let f = Factory::new("add", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;

    let out = takt.ok(&["task", "add", "--title", "First task"]);
    assert_eq!(out.stdout.trim(), "Added TAKT-1: First task");

    let issue = takt.json(&[
        "task",
        "add",
        "--title",
        "  Second task  ",
        "--body",
        "Do the thing",
        "--priority",
        "2",
        "--label",
        " Backend ",
        "--label",
        "backend",
        "--label",
        "UI",
        "--label",
        "  ",
    ]);
    assert_eq!(issue["identifier"], "TAKT-2");
    assert_eq!(issue["title"], "Second task");
    assert_eq!(issue["description"], "Do the thing");
    assert_eq!(issue["priority"], 2);
    assert_eq!(issue["labels"], serde_json::json!(["backend", "ui"]));
    assert_eq!(issue["state"], "Todo");
    assert_eq!(issue["dispatchable"], true);

    // Priority is 0..=4; anything else is a usage error and creates nothing.
    for bad in ["5", "x"] {
        let out = takt.run(&["task", "add", "--title", "bad", "--priority", bad]);
        assert_eq!(out.code, Some(2), "{out}");
        assert!(out.stderr.contains("--priority"), "{out}");
    }
    let out = takt.run(&["task", "add", "--title", "   "]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("title"), "{out}");
    let out = takt.run(&["task", "add", "--title", "x", "--blocked-by", "TAKT-99"]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("TAKT-99"), "{out}");
    let out = takt.run(&[
        "task",
        "add",
        "--title",
        "x",
        "--body",
        "a",
        "--body-file",
        "-",
    ]);
    assert_eq!(out.code, Some(2), "--body and --body-file conflict:\n{out}");

    // --body-file FILE and --body-file - (stdin) keep the text exactly.
    let body_file = f.repo.root().join("body.md");
    write(&body_file, "From a file\nwith two lines\n");
    let issue = takt.json(&[
        "task",
        "add",
        "--title",
        "Third",
        "--body-file",
        body_file.to_str().unwrap(),
    ]);
    assert_eq!(issue["identifier"], "TAKT-3");
    assert_eq!(issue["description"], "From a file\nwith two lines\n");

    let mut command = takt.command(&[
        "--json",
        "task",
        "add",
        "--title",
        "Fourth",
        "--body-file",
        "-",
    ]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("from stdin: $(echo not expanded)\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issue: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issue["identifier"], "TAKT-4");
    assert_eq!(issue["description"], "from stdin: $(echo not expanded)\n");

    let identifiers: Vec<String> = takt
        .tasks()
        .iter()
        .map(|task| str_of(task, "identifier").to_owned())
        .collect();
    assert_eq!(identifiers, ["TAKT-1", "TAKT-2", "TAKT-3", "TAKT-4"]);
    assert!(takt.audit_ok());
}

#[test]
fn run_commits_with_trailer_and_approve_fast_forwards_then_merges() {
    let f = Factory::new("merge", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    let initial = f.repo.rev_parse("main");
    takt.add_task("Add greeting", &["--body", "Say hello."]);
    takt.add_task("Add farewell", &[]);

    let out = takt.run_once();
    assert!(out.stdout.contains("TAKT-1  awaiting_review"), "{out}");
    let task = takt.task("TAKT-1");
    assert_eq!(task["state"], "awaiting_review", "{task:#}");
    assert_eq!(task["branch"], "takt/TAKT-1");
    let commit = str_of(&task, "commit").to_owned();
    assert_eq!(commit.len(), 40, "{task:#}");
    assert!(f.prompt("TAKT-1", 1).contains("Task TAKT-1: Add greeting"));
    assert!(f.prompt("TAKT-1", 1).contains("Say hello."));
    // Nothing reaches main before a person approves.
    assert_eq!(f.repo.rev_parse("main"), initial);

    let out = takt.ok(&["review", "approve", "TAKT-1"]);
    assert!(out.stdout.contains("TAKT-1 approve: now done"), "{out}");
    assert_eq!(takt.state_of("TAKT-1"), "done");
    // Fast-forward: main is the task's own commit.
    assert_eq!(f.repo.rev_parse("main"), commit);
    assert_eq!(
        f.repo.rev_parse("takt/TAKT-1"),
        commit,
        "the branch is published"
    );
    assert_eq!(f.repo.parents(&commit), [initial]);
    let message = f.repo.git(&["log", "-1", "--format=%B", &commit]);
    assert!(message.starts_with("TAKT-1: Add greeting\n"), "{message}");
    assert!(
        message.lines().any(|line| line == "Takt-Task: TAKT-1"),
        "{message}"
    );
    // The checkout moved with the branch.
    assert!(f.repo.path().join("changes/TAKT-1.txt").exists());
    assert_eq!(
        f.repo
            .git(&["status", "--porcelain", "--untracked-files=no"]),
        ""
    );

    // TAKT-2 was built on the old base: approving it makes a merge commit.
    let task2 = takt.task("TAKT-2");
    let commit2 = str_of(&task2, "commit").to_owned();
    takt.ok(&["review", "approve", "TAKT-2"]);
    assert_eq!(takt.state_of("TAKT-2"), "done");
    let head = f.repo.rev_parse("main");
    assert_eq!(f.repo.parents(&head), [commit, commit2.clone()]);
    let merge_message = f.repo.git(&["log", "-1", "--format=%s", &head]);
    assert!(merge_message.contains("takt/TAKT-2"), "{merge_message}");
    assert_eq!(f.repo.trailer_count("main", "TAKT-1"), 1);
    assert_eq!(f.repo.trailer_count("main", "TAKT-2"), 1);
    assert!(f.repo.path().join("changes/TAKT-2.txt").exists());
    assert_eq!(f.repo.rev_parse("takt/TAKT-2"), commit2);
    assert_eq!(takt.task("TAKT-2")["commit"], head.as_str());
    assert!(takt.audit_ok());
}

#[test]
fn review_reject_comment_reaches_the_next_prompt() {
    let f = Factory::new("reject", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.max_attempts = 3;
        wf
    });
    let takt = &f.takt;
    takt.add_task("Rename things", &[]);
    takt.run_once();
    assert_eq!(takt.state_of("TAKT-1"), "awaiting_review");
    assert!(!f.prompt("TAKT-1", 1).contains("Feedback:"));

    let comment = "Please use snake_case names (and keep `add` as an alias)";
    let out = takt.ok(&["review", "reject", "TAKT-1", "--comment", comment]);
    assert!(out.stdout.contains("TAKT-1 reject"), "{out}");
    let task = takt.task("TAKT-1");
    assert_eq!(task["feedback"], comment, "{task:#}");

    takt.run_once();
    let task = takt.task("TAKT-1");
    assert_eq!(task["state"], "awaiting_review", "{task:#}");
    let prompt = f.prompt("TAKT-1", 2);
    assert!(
        prompt.contains(&format!("Feedback: {comment}")),
        "the reviewer's comment must reach the next prompt:\n{prompt}"
    );
    let attempts = task["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{task:#}");
    assert_eq!(attempts[1]["retry_kind"], "rejection");
    // The second round builds on the first: the branch holds both rounds' work.
    let file = f
        .show_in_mirror(str_of(&task, "commit"), "changes/TAKT-1.txt")
        .unwrap_or_default();
    assert_eq!(file.lines().count(), 2, "{file}");
}

#[test]
fn blocked_task_resumes_with_the_answer_in_its_prompt() {
    let f = Factory::bare("answer");
    let log = f.log_dir();
    let command = f.agent_command(&format!(
        "set -e\nmkdir -p {log}\nrun=${{TAKT_RUN_ID##*#}}\n\
         cp \"$TAKT_PROMPT_FILE\" {log}/prompt-$TAKT_ISSUE_IDENTIFIER-$run.md\n\
         if grep -q '^Feedback: ' \"$TAKT_PROMPT_FILE\"; then\n\
           echo colored > color.txt\n\
         else\n\
           echo 'Which color should the button be?' > \"$TAKT_QUESTION_FILE\"\n\
         fi\n",
        log = log.display()
    ));
    f.write_workflow(&WorkflowFile::new(command));
    let takt = &f.takt;
    takt.add_task("Color the button", &[]);

    let out = takt.run_once();
    assert!(out.stdout.contains("TAKT-1  blocked"), "{out}");
    let task = takt.task("TAKT-1");
    assert_eq!(task["question"], "Which color should the button be?");
    let status = takt.json(&["status"]);
    assert_eq!(status["blocked"][0]["identifier"], "TAKT-1", "{status:#}");
    let human = takt.ok(&["status"]).stdout;
    assert!(
        human.contains("Which color should the button be?"),
        "{human}"
    );
    assert!(
        human.contains("takt answer"),
        "the next step is named:\n{human}"
    );

    let out = takt.ok(&["answer", "TAKT-1", "Blue, like the sky"]);
    assert!(out.stdout.contains("TAKT-1 answer"), "{out}");
    // Answering twice is refused: there is no question any more.
    let out = takt.run(&["answer", "TAKT-1", "Red"]);
    assert_eq!(out.code, Some(4), "{out}");

    takt.run_once();
    let task = takt.task("TAKT-1");
    assert_eq!(task["state"], "awaiting_review", "{task:#}");
    let prompt = f.prompt("TAKT-1", 2);
    assert!(prompt.contains("Feedback: Blue, like the sky"), "{prompt}");
    assert!(!prompt.contains("Red"), "{prompt}");
    assert_eq!(task["attempts"][1]["retry_kind"], "answer", "{task:#}");
}

#[test]
fn agent_that_changes_nothing_is_retried_then_fails_with_a_report() {
    let f = Factory::new("nochange", |f| {
        let mut wf = WorkflowFile::new(f.agent_command("echo looked around\n"));
        wf.max_attempts = 2;
        wf
    });
    let takt = &f.takt;
    takt.add_task("Do nothing", &[]);
    let out = takt.run_once();
    assert!(out.stdout.contains("TAKT-1  failed"), "{out}");

    let task = takt.task("TAKT-1");
    assert_eq!(task["state"], "failed", "{task:#}");
    assert_eq!(task["attempt"], 2, "{task:#}");
    let failure = &task["failure"];
    assert!(
        failure.is_object(),
        "a failed task has a failure report: {task:#}"
    );
    assert!(
        str_of(failure, "reason").contains("without changing anything"),
        "{failure:#}"
    );
    assert_eq!(failure["identifier"], "TAKT-1");
    assert!(
        str_of(failure, "suggested_action").contains("takt task retry TAKT-1"),
        "{failure:#}"
    );
    let attempts = failure["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{failure:#}");
    for attempt in attempts {
        assert_eq!(attempt["outcome"], "succeeded", "{attempt:#}");
        assert!(attempt["commit"].is_null(), "{attempt:#}");
    }
    let human = takt.ok(&["task", "show", "TAKT-1"]).stdout;
    assert!(human.contains("FAILED:"), "{human}");
    assert!(human.contains("takt task retry TAKT-1"), "{human}");
    // No empty commit reached any branch.
    assert_eq!(f.repo.branches(), ["main"]);
}

#[test]
fn operator_retry_runs_a_failed_task_again_from_a_fresh_count() {
    let f = Factory::new("retry", |f| {
        let mut wf = WorkflowFile::new(f.agent_command("echo 'boom: no config' >&2\nexit 3\n"));
        wf.max_attempts = 2;
        wf
    });
    let takt = &f.takt;
    takt.add_task("Flaky", &[]);
    takt.run_once();
    let task = takt.task("TAKT-1");
    assert_eq!(task["state"], "failed", "{task:#}");
    let error = str_of(&task, "last_error");
    assert!(error.contains("exited with status 3"), "{task:#}");
    assert!(
        error.contains("boom: no config"),
        "the agent's stderr is kept: {task:#}"
    );
    assert_eq!(task["failure"]["attempts"].as_array().unwrap().len(), 2);

    // Fix the cause, then retry.
    let mut fixed = WorkflowFile::new(f.recording_agent());
    fixed.max_attempts = 2;
    f.write_workflow(&fixed);
    let out = takt.ok(&["task", "retry", "TAKT-1"]);
    assert!(out.stdout.contains("now queued"), "{out}");
    let task = takt.task("TAKT-1");
    assert_eq!(task["attempt"], 0, "{task:#}");
    assert!(task["failure"].is_null(), "{task:#}");

    takt.run_once();
    let task = takt.task("TAKT-1");
    assert_eq!(task["state"], "awaiting_review", "{task:#}");
    assert_eq!(task["attempt"], 1, "{task:#}");
    assert_eq!(task["attempts"].as_array().unwrap().len(), 3);

    // Retrying a task that has not failed is refused, and changes nothing.
    let out = takt.run(&["task", "retry", "TAKT-1"]);
    assert_eq!(out.code, Some(4), "{out}");
    assert!(out.stderr.contains("only failed or cancelled"), "{out}");
    assert_eq!(takt.state_of("TAKT-1"), "awaiting_review");
}

/// A task added while no daemon runs is listed as `queued` by `task list`, but `task cancel`
/// refuses it: the inline daemon that applies operator commands drops its first poll
/// (`Daemon::settle_inbox` clears `pending`), so it never learns about issues added since the
/// last `takt run`. (The cancel of a queued task the daemon has seen is covered in
/// `reconcile::cancel_stops_a_running_agent_and_a_queued_task_never_runs`.)
#[test]
fn cancelling_a_task_the_daemon_has_not_picked_up_keeps_it_from_running() {
    let f = Factory::new("cancel", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    takt.add_task("Unwanted", &[]);
    takt.add_task("Wanted", &[]);
    assert_eq!(takt.state_of("TAKT-1"), "queued");

    let out = takt.ok(&["task", "cancel", "TAKT-1"]);
    assert!(out.stdout.contains("TAKT-1 cancel: now cancelled"), "{out}");
    takt.run_once();
    assert_eq!(takt.state_of("TAKT-1"), "cancelled");
    assert_eq!(takt.state_of("TAKT-2"), "awaiting_review");
    assert_eq!(f.agent_order(), ["TAKT-2"], "the cancelled task never ran");
}

#[test]
fn cancel_and_retry_of_unknown_or_finished_tasks_are_refused() {
    let f = Factory::new("cancel-refused", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    takt.add_task("Done soon", &[]);
    takt.run_once();
    takt.ok(&["review", "approve", "TAKT-1"]);
    let before = super::snapshot(takt);
    for args in [
        &["task", "cancel", "TAKT-1"][..],
        &["task", "retry", "TAKT-1"][..],
        &["task", "cancel", "TAKT-404"][..],
        &["review", "reject", "TAKT-1", "--comment", "late"][..],
    ] {
        let out = takt.run(args);
        assert_eq!(out.code, Some(4), "{out}");
        assert!(out.stderr.starts_with("refused: "), "{out}");
    }
    let out = takt.run(&["task", "cancel", "TAKT-1"]);
    assert!(out.stderr.contains("already done"), "{out}");
    let out = takt.run(&["task", "cancel", "TAKT-404"]);
    assert!(
        out.stderr.contains("takt task list"),
        "the hint names the fix:\n{out}"
    );
    assert_eq!(super::snapshot(takt), before, "refusals change nothing");
    assert!(takt.audit_ok());
}

#[test]
fn a_blocked_by_task_waits_until_its_blocker_is_done() {
    let f = Factory::new("blockers", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    takt.add_task("Foundation", &[]);
    let issue = takt.json(&["task", "add", "--title", "Roof", "--blocked-by", "takt-1"]);
    assert_eq!(issue["dispatchable"], false, "{issue:#}");
    assert_eq!(issue["blocked_by"][0]["identifier"], "TAKT-1", "{issue:#}");

    takt.run_once();
    assert_eq!(takt.state_of("TAKT-1"), "awaiting_review");
    assert_eq!(takt.state_of("TAKT-2"), "queued");
    assert_eq!(f.agent_order(), ["TAKT-1"]);

    // Still blocked while the blocker waits for review.
    takt.run_once();
    assert_eq!(f.agent_order(), ["TAKT-1"]);

    takt.ok(&["review", "approve", "TAKT-1"]);
    takt.run_once();
    assert_eq!(takt.state_of("TAKT-2"), "awaiting_review");
    assert_eq!(f.agent_order(), ["TAKT-1", "TAKT-2"]);
    // The blocked task started from the base that holds its blocker's change.
    let commit = str_of(&takt.task("TAKT-2"), "commit").to_owned();
    assert!(
        f.show_in_mirror(&commit, "changes/TAKT-1.txt").is_some(),
        "TAKT-2's commit {commit} lacks TAKT-1's change"
    );
}

#[test]
fn r079_one_slot_dispatches_by_priority_then_age() {
    let f = Factory::new("priority", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.max_concurrent_agents = 1;
        wf
    });
    let takt = &f.takt;
    for (title, priority) in [
        ("low", Some("3")),
        ("urgent", Some("1")),
        ("none", None),
        ("high", Some("2")),
        ("lowest", Some("4")),
        ("urgent too", Some("1")),
        ("zero", Some("0")),
    ] {
        match priority {
            Some(priority) => takt.add_task(title, &["--priority", priority]),
            None => takt.add_task(title, &[]),
        };
    }
    takt.run_once();
    // 1 before 2 before 3 before 4; equal priorities oldest first; none and 0 last.
    assert_eq!(
        f.agent_order(),
        [
            "TAKT-2", "TAKT-6", "TAKT-4", "TAKT-1", "TAKT-5", "TAKT-3", "TAKT-7"
        ]
    );
    assert!(
        takt.tasks()
            .iter()
            .all(|task| task["state"] == "awaiting_review")
    );
}

#[test]
fn status_and_task_list_json_have_stable_shapes() {
    let f = Factory::new("shapes", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    takt.add_task("Shape", &["--priority", "1", "--label", "API"]);
    takt.add_task("Cancelled later", &[]);
    takt.run_once();
    takt.ok(&["task", "cancel", "TAKT-2"]);
    takt.add_task("Unseen", &[]);

    let tasks = takt.tasks();
    assert_eq!(tasks.len(), 3);
    let task = &tasks[0];
    for key in [
        "id",
        "identifier",
        "title",
        "state",
        "tracker_state",
        "priority",
        "labels",
        "attempt",
        "retry_kind",
        "retry_due_at_ms",
        "last_error",
        "workspace_path",
        "branch",
        "commit",
        "question",
        "feedback",
        "approvals",
        "run_id",
        "run_phase",
        "pid",
        "attempts",
        "failure",
        "issue",
        "updated_at_ms",
    ] {
        assert!(
            task.get(key).is_some(),
            "task list --json lacks `{key}`: {task:#}"
        );
    }
    assert_eq!(task["identifier"], "TAKT-1");
    assert_eq!(task["title"], "Shape");
    assert_eq!(task["state"], "awaiting_review");
    assert_eq!(task["priority"], 1);
    assert_eq!(task["labels"], serde_json::json!(["api"]));
    assert_eq!(task["attempt"], 1);
    assert!(task["last_error"].is_null());
    assert_eq!(task["issue"]["identifier"], "TAKT-1");
    let run = &task["attempts"][0];
    for key in [
        "run_id",
        "attempt",
        "outcome",
        "started_at_ms",
        "finished_at_ms",
        "turns",
        "commit",
        "error",
    ] {
        assert!(run.get(key).is_some(), "an attempt lacks `{key}`: {run:#}");
    }
    assert_eq!(run["run_id"], "TAKT-1#1");
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(tasks[1]["state"], "cancelled");
    // An issue the daemon has not picked up yet is shown as queued.
    assert_eq!(tasks[2]["state"], "queued");
    assert_eq!(tasks[2]["attempt"], 0);
    assert_eq!(tasks[2]["identifier"], "TAKT-3");

    let filtered = takt.json(&["task", "list", "--state", "cancelled"]);
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(filtered[0]["identifier"], "TAKT-2");
    let out = takt.run(&["task", "list", "--state", "nonsense"]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("awaiting_review"),
        "the valid states are listed:\n{out}"
    );

    let status = takt.json(&["status"]);
    for key in [
        "daemon",
        "workflow",
        "max_concurrent_agents",
        "counts",
        "running",
        "retrying",
        "blocked",
        "awaiting_review",
        "totals",
    ] {
        assert!(
            status.get(key).is_some(),
            "status --json lacks `{key}`: {status:#}"
        );
    }
    assert_eq!(status["daemon"]["running"], false);
    assert!(status["daemon"]["pid"].is_null());
    assert_eq!(status["max_concurrent_agents"], 2);
    assert_eq!(status["counts"]["awaiting_review"], 1, "{status:#}");
    assert_eq!(status["counts"]["queued"], 1, "{status:#}");
    assert_eq!(status["counts"]["cancelled"], 1, "{status:#}");
    assert_eq!(
        status["counts"]["done"], 0,
        "every state is counted: {status:#}"
    );
    assert_eq!(status["counts"].as_object().unwrap().len(), 11);
    assert_eq!(status["awaiting_review"].as_array().unwrap().len(), 1);
    assert_eq!(status["awaiting_review"][0]["identifier"], "TAKT-1");
    assert_eq!(status["running"].as_array().unwrap().len(), 0);
    assert_eq!(status["totals"]["runs_started"], 2, "{status:#}");
    assert_eq!(status["totals"]["runs_finished"], 2, "{status:#}");

    let human = takt.ok(&["task", "list"]).stdout;
    let header = human.lines().next().unwrap_or("");
    for column in ["ID", "STATE", "ATTEMPTS", "TITLE"] {
        assert!(header.contains(column), "{human}");
    }
    assert!(
        human.contains("TAKT-1") && human.contains("awaiting_review"),
        "{human}"
    );
    let human = takt.ok(&["status"]).stdout;
    assert!(human.contains("daemon: not running"), "{human}");
    assert!(human.contains("awaiting review"), "{human}");
}

#[test]
fn audit_verify_detects_a_tampered_journal_entry() {
    let f = Factory::new("audit", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    takt.add_task("Audited change", &[]);
    takt.run_once();
    takt.ok(&["review", "approve", "TAKT-1"]);

    let out = takt.ok(&["audit", "verify"]);
    assert!(out.stdout.contains("chain intact"), "{out}");
    let report = takt.json(&["audit", "verify"]);
    assert_eq!(report["intact"], true, "{report:#}");
    let entries = report["entries"].as_u64().unwrap();
    assert!(entries > 5, "{report:#}");

    // Someone with file access rewrites history: drop the guard trigger, edit an entry.
    let seq = python(
        "import sqlite3, sys\n\
         db = sqlite3.connect(sys.argv[1])\n\
         seq = db.execute(\"SELECT seq FROM journal WHERE kind = 'task_queued' ORDER BY seq LIMIT 1\").fetchone()[0]\n\
         db.execute('DROP TRIGGER journal_no_update')\n\
         n = db.execute(\"UPDATE journal SET payload = replace(payload, 'Audited change', 'Innocent change') WHERE seq = ?\", (seq,)).rowcount\n\
         assert n == 1\n\
         db.commit()\n\
         print(seq)\n",
        &[f.db().to_str().unwrap()],
    );
    let seq: u64 = seq.trim().parse().unwrap();

    let out = takt.run(&["audit", "verify"]);
    assert_eq!(out.code, Some(3), "{out}");
    assert!(
        out.stdout.contains(&format!("BROKEN at entry {seq}")),
        "the tampered entry is named:\n{out}"
    );
    let out = takt.run(&["--json", "audit", "verify"]);
    assert_eq!(out.code, Some(3), "{out}");
    let report = out.json();
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken"]["seq"], seq, "{report:#}");
    let out = takt.run(&["doctor"]);
    assert_eq!(out.code, Some(5), "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|line| line.starts_with("FAIL") && line.contains("journal")),
        "{out}"
    );
}

#[test]
fn a_second_daemon_on_the_same_state_is_refused_naming_the_pid() {
    let f = Factory::new("lock", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    let mut daemon = takt.spawn_daemon(&f.repo.root().join("daemon.log"));
    daemon.wait_ready(&takt.state_dir());
    wait_until(
        "the daemon to take the state lock",
        LONG,
        || takt.json(&["status"])["daemon"]["running"] == true,
        || daemon.log(),
    );
    let status = takt.json(&["status"]);
    assert_eq!(status["daemon"]["pid"], daemon.pid(), "{status:#}");

    for args in [&["run", "--once"][..], &["run"][..]] {
        let out = takt.run(args);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stderr.contains("another takt daemon"), "{out}");
        assert!(
            out.stderr.contains(&format!("pid {}", daemon.pid())),
            "the holder's pid is named:\n{out}"
        );
    }
    assert!(
        daemon.is_running(),
        "the first daemon is unaffected:\n{}",
        daemon.log()
    );

    // While it runs, CLI commands still work through it.
    takt.add_task("Served", &[]);
    f.wait_for_state("TAKT-1", "awaiting_review", LONG);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert_eq!(takt.json(&["status"])["daemon"]["running"], false);
}

/// Sanity for the fixture itself: a repository starts with one commit on main.
#[test]
fn fixture_repository_has_one_commit_on_main() {
    let repo = GitRepo::new();
    assert_eq!(repo.branches(), ["main"]);
    assert_eq!(repo.git(&["rev-list", "--count", "main"]).trim(), "1");
}

/// takt writes the tracker back (Done after a merge, Cancelled after an operator cancel), but
/// `task list`/`task show` keep reporting the issue state journaled when the task was claimed:
/// `Command::TransitionIssue` (crates/takt-cli/src/daemon.rs) updates the tracker without
/// feeding the new issue back to the core, and `commands/task.rs::summaries` reads the
/// journal's snapshot. The TRACKER column then says `Todo` for a merged task.
#[test]
fn tracker_state_follows_takts_own_write_back() {
    let f = Factory::new("tracker-state", |f| WorkflowFile::new(f.recording_agent()));
    let takt = &f.takt;
    takt.add_task("Merged", &[]);
    takt.add_task("Cancelled", &[]);
    takt.run_once();
    takt.ok(&["review", "approve", "TAKT-1"]);
    takt.ok(&["task", "cancel", "TAKT-2"]);
    let tracker = python(
        "import sqlite3, sys\n\
         db = sqlite3.connect(sys.argv[1])\n\
         print(dict(db.execute('SELECT identifier, state FROM issues')))\n",
        &[f.db().to_str().unwrap()],
    );
    assert!(tracker.contains("'TAKT-1': 'Done'"), "{tracker}");
    assert!(tracker.contains("'TAKT-2': 'Cancelled'"), "{tracker}");
    assert_eq!(takt.task("TAKT-1")["tracker_state"], "Done");
    assert_eq!(takt.task("TAKT-2")["tracker_state"], "Cancelled");
}

/// docs/workflow.md documents `retry_kind: operator` for "an operator asked for another try",
/// but `OperatorCommand::Retry` (crates/takt-core/src/machine.rs, `on_operator`) clears the
/// retry and the next run starts with `retry_kind` nil: `RetryKind::Operator` is never used.
#[test]
fn operator_retry_is_announced_as_retry_kind_operator() {
    let f = Factory::new("retry-kind", |f| {
        let mut wf = WorkflowFile::new(f.agent_command("exit 3\n"));
        wf.max_attempts = 1;
        wf.prompt = "Task {{ issue.identifier }} retry_kind={{ retry_kind }}".into();
        wf
    });
    let takt = &f.takt;
    takt.add_task("Again", &[]);
    takt.run_once();
    assert_eq!(takt.state_of("TAKT-1"), "failed");
    let mut fixed = WorkflowFile::new(f.recording_agent());
    fixed.prompt = "Task {{ issue.identifier }} retry_kind={{ retry_kind }}".into();
    f.write_workflow(&fixed);
    takt.ok(&["task", "retry", "TAKT-1"]);
    takt.run_once();
    let task = takt.task("TAKT-1");
    assert_eq!(task["attempts"][1]["retry_kind"], "operator", "{task:#}");
    assert!(
        f.prompt("TAKT-1", 2).contains("retry_kind=operator"),
        "{}",
        f.prompt("TAKT-1", 2)
    );
}

/// `takt --json task list | head -1` must not end in a panic with a backtrace: `println!`
/// panics on EPIPE (crates/takt-cli/src/commands/output.rs, `json` and every `println!`).
#[test]
fn output_into_a_closed_pipe_does_not_panic() {
    let f = Factory::new("pipe", |f| WorkflowFile::new(f.recording_agent()));
    f.takt.add_task("Anything", &[]);
    for args in [
        &["--json", "task", "list"][..],
        &["task", "list"][..],
        &["status"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut command = f.takt.command(args);
        command.stdout(writer).stderr(Stdio::piped());
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked"),
            "takt {args:?} into a closed pipe panicked:\n{stderr}"
        );
        assert_ne!(out.status.code(), Some(101), "{stderr}");
    }
}

#[test]
fn the_demo_runs_to_its_end_with_every_agent_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(super::TAKT);
    command
        .args(["demo", "--dir"])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    let out = takt_test_support::run_command(command);
    assert_eq!(out.code, Some(0), "{out}");
    for (id, state) in [
        ("TAKT-1", "done"),
        ("TAKT-2", "failed"),
        ("TAKT-3", "awaiting_review"),
        ("TAKT-4", "done"),
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|line| line.starts_with(id) && line.contains(state)),
            "{id} should end {state}:\n{out}"
        );
    }
    // TAKT-2's change does not compile: the gates, not a person, sent it back and failed it.
    let repo = dir.path().join("repo");
    let takt = Takt::new(super::TAKT, repo.join("WORKFLOW.md"));
    let failed = takt.task("TAKT-2");
    let gates = failed["failure"]["verification"]["gates"].to_string();
    assert!(gates.contains("\"failed\""), "{failed:#}");
    assert!(
        failed["feedback"]
            .as_str()
            .is_some_and(|f| f.contains("Gate `")),
        "{failed:#}"
    );
    // Nothing of the demo stays mounted: its directory can simply be deleted.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(dir.path().to_str().unwrap()), "{mounts}");
    // A merged change carries its attestation into the demo repository.
    let merged = takt.json(&["evidence", "TAKT-1"]);
    assert_eq!(
        merged["attestation"]["predicate"]["gates_green"], true,
        "{merged:#}"
    );
}

#[test]
fn a_cron_schedule_creates_tasks_the_daemon_runs_and_status_shows_it() {
    let f = Factory::new("schedule", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.extra = "schedules:\n  - name: sweep\n    cron: \"*/2 * * * * *\"\n    title: Scheduled sweep\n    \
                    body: Tidy up.\n    labels: [chore]\n"
            .into();
        wf
    });
    let log = f.repo.root().join("daemon.log");
    let mut daemon = f.takt.spawn_daemon(&log);
    daemon.wait_ready(&f.takt.state_dir());
    wait_until(
        "the schedule to create a task that reaches review",
        std::time::Duration::from_secs(60),
        || {
            f.takt.tasks().iter().any(|task| {
                task["title"] == "Scheduled sweep" && task["state"] == "awaiting_review"
            })
        },
        || format!("{:?}\n{}", f.states(), daemon.log()),
    );
    let status = f.takt.json(&["status"]);
    let schedule = &status["schedules"][0];
    assert_eq!(schedule["name"], "sweep", "{status:#}");
    assert!(schedule["last_fired_ms"].is_i64(), "{status:#}");
    assert!(schedule["next_due_ms"].is_i64(), "{status:#}");
    let task = f
        .takt
        .tasks()
        .into_iter()
        .find(|task| task["title"] == "Scheduled sweep")
        .unwrap();
    assert_eq!(task["labels"], serde_json::json!(["chore"]));
    assert!(
        task["issue"]["native_ref"]["author"]
            .as_str()
            .is_some_and(|author| author.starts_with("schedule:sweep@")),
        "{task:#}"
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}

#[test]
fn status_watch_needs_a_terminal_and_says_what_to_use_instead() {
    let f = Factory::new("watch", |f| WorkflowFile::new(f.recording_agent()));
    let out = f.takt.run(&["status", "--watch"]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("needs a terminal"), "{out}");
    assert!(out.stderr.contains("takt status --json"), "{out}");
    assert!(
        !out.stdout.contains('\u{1b}'),
        "no escape sequences without a terminal: {out}"
    );
}

#[test]
fn status_watch_draws_the_factory_in_a_terminal_and_quits_on_q() {
    let f = Factory::new("watch-pty", |f| WorkflowFile::new(f.recording_agent()));
    f.takt.add_task("Shown on the dashboard", &[]);
    f.takt.run_once();
    let screen = python(
        "import os, pty, subprocess, sys, time, select\n\
         master, slave = pty.openpty()\n\
         os.system('stty -F %s cols 120 rows 30 2>/dev/null' % os.ttyname(slave))\n\
         p = subprocess.Popen(sys.argv[1:], stdin=slave, stdout=slave, stderr=slave, env=dict(os.environ, TERM='xterm'))\n\
         out = b''\n\
         end = time.time() + 15\n\
         while time.time() < end and b'Shown on the' not in out:\n\
         \x20   r, _, _ = select.select([master], [], [], 0.2)\n\
         \x20   if r: out += os.read(master, 65536)\n\
         os.write(master, b'q')\n\
         code = p.wait(timeout=15)\n\
         print('exit', code)\n\
         print(out.decode('utf-8', 'replace'))\n",
        &[
            super::TAKT,
            "-w",
            f.repo.workflow_path().to_str().unwrap(),
            "status",
            "--watch",
        ],
    );
    assert!(screen.starts_with("exit 0"), "{screen}");
    assert!(screen.contains("Shown on the"), "{screen}");
    assert!(screen.contains("TAKT-1"), "{screen}");
}
