//! The crash test: the real daemon killed with SIGKILL at random moments and restarted; in the
//! end no task is lost, every task is merged, the journal verifies and no agent outlives it.
//! The random seed is printed; `TAKT_E2E_SEED=<seed>` replays the kill timings.

use std::collections::BTreeSet;
use std::time::Duration;

use takt_test_support::{Rng, WorkflowFile, git, str_of, wait_until};

use super::Factory;

const TASKS: usize = 20;
const KILLS: usize = 5;

/// Runs the scenario and checks every invariant that must hold after it, except "exactly one
/// commit per task" (see [`crash_kill9_and_restart_every_task_lands_on_main_exactly_once`]).
fn crash_scenario() -> Factory {
    let mut rng = Rng::from_env();
    eprintln!(
        "crash test seed: {} (replay with TAKT_E2E_SEED={})",
        rng.seed, rng.seed
    );
    let f = Factory::bare("crash");
    let log = f.log_dir();
    // Sleeps 0.2-1.5 s, then appends a line only this task writes to a file only this task
    // touches, so merges never conflict.
    let command = f.agent_command(&format!(
        "set -e\nmkdir -p {log}\necho \"$TAKT_RUN_ID\" >> {log}/runs\n\
         ms=$(( $(od -An -N2 -tu2 /dev/urandom) % 1300 + 200 ))\n\
         sleep \"$((ms / 1000)).$(printf %03d $((ms % 1000)))\"\n\
         mkdir -p work\necho \"line of $TAKT_ISSUE_IDENTIFIER\" >> \"work/$TAKT_ISSUE_IDENTIFIER.txt\"\n",
        log = log.display()
    ));
    let mut wf = WorkflowFile::new(command);
    wf.auto_merge = true;
    wf.max_concurrent_agents = 5;
    wf.max_attempts = 10;
    f.write_workflow(&wf);
    let takt = &f.takt;
    let daemon_log = f.repo.root().join("daemon.log");
    // The tasks arrive in batches, one per daemon lifetime, so that every kill lands while
    // work is in flight (runs, commits, merges, journal writes).
    let batch = TASKS / KILLS;
    let mut added = 0;
    for round in 1..=KILLS {
        let mut daemon = takt.spawn_daemon(&daemon_log);
        for _ in 0..batch {
            added += 1;
            takt.add_task(
                &format!("Crash task {added}"),
                &["--body", &format!("Write line {added}.")],
            );
        }
        let wait = rng.between(500, 3000);
        std::thread::sleep(Duration::from_millis(wait));
        eprintln!(
            "round {round}: kill -9 after {wait} ms; states: {:?}",
            f.states()
        );
        daemon.kill9();
    }
    assert_eq!(added, TASKS);
    let mut daemon = takt.spawn_daemon(&daemon_log);
    daemon.wait_ready(&takt.state_dir());
    wait_until(
        "every task to end (done or failed)",
        Duration::from_secs(180),
        || {
            takt.tasks()
                .iter()
                .all(|task| matches!(str_of(task, "state"), "done" | "failed"))
        },
        || format!("{:?}\n{}", f.states(), tail(&daemon.log(), 60)),
    );
    assert_eq!(daemon.stop(), Some(0), "{}", tail(&daemon.log(), 60));
    eprintln!(
        "agent runs: {}",
        takt_test_support::read_or_empty(&log.join("runs"))
            .lines()
            .count()
    );

    // No lost task, none listed twice, each one merged with its own change.
    let tasks = takt.tasks();
    assert_eq!(tasks.len(), TASKS, "{:?}", f.states());
    let mut seen = BTreeSet::new();
    for task in &tasks {
        let id = str_of(task, "identifier").to_owned();
        assert!(seen.insert(id.clone()), "{id} listed twice");
        assert_eq!(task["state"], "done", "none is expected to fail: {task:#}");
        assert!(
            f.repo.trailer_count("main", &id) >= 1,
            "{id} has no commit on main:\n{}",
            f.repo.git(&["log", "main", "--format=%h %s"])
        );
        let file = f
            .repo
            .show_file("main", &format!("work/{id}.txt"))
            .unwrap_or_else(|| panic!("{id}'s change is not on main"));
        assert!(
            !file.is_empty() && file.lines().all(|line| line == format!("line of {id}")),
            "{id}: {file:?}"
        );
        assert_eq!(str_of(task, "branch"), format!("takt/{id}"));
    }
    let expected: BTreeSet<String> = (1..=TASKS).map(|n| format!("TAKT-{n}")).collect();
    assert_eq!(seen, expected);

    // One branch per task, nothing else.
    let branches: BTreeSet<String> = f.repo.branches().into_iter().collect();
    let mut wanted: BTreeSet<String> = expected.iter().map(|id| format!("takt/{id}")).collect();
    wanted.insert("main".into());
    assert_eq!(branches, wanted);
    assert_eq!(
        f.repo
            .git(&["status", "--porcelain", "--untracked-files=no"]),
        "",
        "the checkout of main is clean"
    );

    let audit = takt.run(&["audit", "verify"]);
    assert_eq!(audit.code, Some(0), "{audit}");
    assert!(
        f.sweeper.alive().is_empty(),
        "agent processes outlived the test: {:?}",
        f.sweeper.alive()
    );
    f
}

#[test]
fn crash_kill9_and_restart_no_task_is_lost_and_every_task_is_merged() {
    crash_scenario();
}

/// The same scenario, also requiring that each task lands on main as exactly one commit. Fails
/// in about half the runs: see `crash_between_commit_and_journal_does_not_commit_the_task_twice`
/// for the deterministic reproduction and the cause.
#[test]

fn crash_kill9_and_restart_every_task_lands_on_main_exactly_once() {
    let f = crash_scenario();
    for n in 1..=TASKS {
        let id = format!("TAKT-{n}");
        assert_eq!(
            f.repo.trailer_count("main", &id),
            1,
            "{id} must land on main exactly once:\n{}",
            f.repo.git(&["log", "main", "--format=%h %s"])
        );
    }
}

/// Deterministic reproduction of the crash window the random test hits: the daemon dies after
/// the attempt's commit exists (the worker's `commit_all` ran, `refs/takt/runs/TAKT-1/1` points
/// at it) but before `run_finished` is journaled. On restart `on_restarted`
/// (crates/takt-core/src/machine.rs) marks the run `interrupted` with no commit and retries it
/// from the preserved workspace; the agent works again and `commit_all`
/// (crates/takt-workspace/src/manager.rs) adds a second `Takt-Task: TAKT-1` commit on top, so
/// main gets the task twice. DESIGN.md §3/§8: "a crash between 'did it' and 'journaled it'
/// never duplicates work"; attempt refs exist so a restart can find the attempt's result.
#[test]

fn crash_between_commit_and_journal_does_not_commit_the_task_twice() {
    let f = Factory::bare("commit-window");
    let log = f.log_dir();
    let command = f.agent_command(&format!(
        "set -e\nmkdir -p {log} work\necho \"line of $TAKT_ISSUE_IDENTIFIER\" >> work/$TAKT_ISSUE_IDENTIFIER.txt\n\
         if [ ! -e {log}/slept ]; then touch {log}/slept; sleep 600; fi\n",
        log = log.display()
    ));
    let mut wf = WorkflowFile::new(command);
    wf.auto_merge = true;
    f.write_workflow(&wf);
    let takt = &f.takt;
    takt.add_task("Committed once", &[]);
    let daemon_log = f.repo.root().join("daemon.log");
    let mut daemon = takt.spawn_daemon(&daemon_log);
    wait_until(
        "the first attempt's agent to have done its work",
        Duration::from_secs(60),
        || log.join("slept").exists(),
        || daemon.log(),
    );
    daemon.kill9();

    // What the dead worker had already done: `commit_all` committed the work with the trailer
    // and pointed the attempt ref at it.
    let workspace = takt.state_dir().join("workspaces/TAKT-1");
    git(&workspace, &["add", "-A"]);
    git(
        &workspace,
        &[
            "-c",
            "user.name=takt",
            "-c",
            "user.email=takt@localhost",
            "commit",
            "-q",
            "--no-verify",
            "-m",
            "TAKT-1: Committed once\n\nTakt-Task: TAKT-1",
        ],
    );
    git(
        &workspace,
        &["update-ref", "refs/takt/runs/TAKT-1/1", "HEAD"],
    );

    let mut daemon = takt.spawn_daemon(&daemon_log);
    daemon.wait_ready(&takt.state_dir());
    f.wait_for_state("TAKT-1", "done", Duration::from_secs(60));
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert_eq!(
        f.repo.trailer_count("main", "TAKT-1"),
        1,
        "{}",
        f.repo.git(&["log", "main", "--format=%h %s"])
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
