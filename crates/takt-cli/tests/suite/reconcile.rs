//! Reconciliation through the CLI: operator cancels and tracker changes stop live runs and
//! kill their agents; workspaces of closed issues are removed at start.

use std::path::PathBuf;

use takt_test_support::{LONG, WorkflowFile, str_of, wait_until};

use super::Factory;

/// An agent that records that it started, then sleeps until it is killed.
fn sleeping_agent(f: &Factory) -> String {
    let log = f.log_dir();
    f.agent_command(&format!(
        "mkdir -p {log}\necho \"$TAKT_ISSUE_IDENTIFIER\" >> {log}/order\n\
         echo started > {log}/started-$TAKT_ISSUE_IDENTIFIER\nsleep 600\necho late > late.txt\n",
        log = log.display()
    ))
}

fn started(f: &Factory, identifier: &str) -> bool {
    f.log_dir().join(format!("started-{identifier}")).exists()
}

fn workspace(f: &Factory, identifier: &str) -> PathBuf {
    f.takt.state_dir().join("workspaces").join(identifier)
}

#[test]
fn r094_cancel_kills_a_running_agent_group_and_a_cancelled_queued_task_never_runs() {
    let f = Factory::new("cancel-running", |f| {
        let mut wf = WorkflowFile::new(sleeping_agent(f));
        wf.max_concurrent_agents = 1;
        wf
    });
    let takt = &f.takt;
    takt.add_task("Sleeps forever", &[]);
    takt.add_task("Waits for the slot", &[]);
    let mut daemon = takt.spawn_daemon(&f.repo.root().join("daemon.log"));
    daemon.wait_ready(&takt.state_dir());
    wait_until(
        "TAKT-1's agent to start",
        LONG,
        || started(&f, "TAKT-1") && takt.state_of("TAKT-1") == "running",
        || format!("{}\n{}", f.describe(), daemon.log()),
    );
    wait_until(
        "the agent's sleep to be running",
        LONG,
        || {
            f.sweeper
                .alive()
                .iter()
                .any(|process| process.cmdline == "sleep 600")
        },
        || format!("{:?}", f.sweeper.alive()),
    );
    assert_eq!(takt.state_of("TAKT-2"), "queued");

    let out = takt.ok(&["task", "cancel", "TAKT-2"]);
    assert!(out.stdout.contains("TAKT-2 cancel: now cancelled"), "{out}");
    takt.ok(&["task", "cancel", "TAKT-1"]);
    f.wait_for_state("TAKT-1", "cancelled", LONG);
    f.wait_for_no_agents();

    let task = takt.task("TAKT-1");
    let attempts = task["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{task:#}");
    assert_eq!(attempts[0]["outcome"], "cancelled", "{task:#}");
    assert!(task["run_id"].is_null(), "no live run is left: {task:#}");
    assert_eq!(f.tracker_state("TAKT-1"), "Cancelled");
    assert_eq!(f.tracker_state("TAKT-2"), "Cancelled");
    // An operator cancel keeps the workspace (and nothing the agent would have done after
    // the kill happened).
    assert!(workspace(&f, "TAKT-1").is_dir());
    assert!(!workspace(&f, "TAKT-1").join("late.txt").exists());

    // The freed slot stays free: the cancelled queued task never runs.
    let status = takt.json(&["status"]);
    assert_eq!(status["running"].as_array().unwrap().len(), 0, "{status:#}");
    assert_eq!(f.agent_order(), ["TAKT-1"]);
    assert!(daemon.is_running(), "{}", daemon.log());
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert!(takt.audit_ok());
}

#[test]
fn r094_issue_leaving_the_active_states_stops_its_run() {
    let f = Factory::new("tracker-moves", |f| WorkflowFile::new(sleeping_agent(f)));
    let takt = &f.takt;
    takt.add_task("Closed while running", &[]);
    takt.add_task("Parked while running", &[]);
    let mut daemon = takt.spawn_daemon(&f.repo.root().join("daemon.log"));
    daemon.wait_ready(&takt.state_dir());
    wait_until(
        "both agents to start",
        LONG,
        || started(&f, "TAKT-1") && started(&f, "TAKT-2"),
        || format!("{}\n{}", f.describe(), daemon.log()),
    );
    assert!(workspace(&f, "TAKT-1").is_dir());

    // Someone closes one issue and parks the other in a state that is neither active nor
    // terminal.
    f.set_tracker_state("TAKT-1", "Done");
    f.set_tracker_state("TAKT-2", "Backlog");
    f.wait_for_state("TAKT-1", "cancelled", LONG);
    f.wait_for_state("TAKT-2", "cancelled", LONG);
    f.wait_for_no_agents();

    for id in ["TAKT-1", "TAKT-2"] {
        let task = takt.task(id);
        assert_eq!(task["attempts"][0]["outcome"], "cancelled", "{task:#}");
        assert_eq!(task["attempt"], 0, "a stopped run does not count: {task:#}");
    }
    // Terminal: the workspace is cleaned. Merely inactive: it is kept for when the issue
    // comes back.
    wait_until(
        "TAKT-1's workspace to be removed",
        LONG,
        || !workspace(&f, "TAKT-1").exists(),
        || daemon.log(),
    );
    assert!(workspace(&f, "TAKT-2").is_dir());

    // The parked issue coming back is picked up again, in its preserved workspace.
    f.set_tracker_state("TAKT-2", "Todo");
    wait_until(
        "TAKT-2 to run again",
        LONG,
        || f.agent_order().len() == 3,
        || format!("{}\n{}", f.describe(), daemon.log()),
    );
    assert_eq!(f.agent_order()[2], "TAKT-2");
    // Stopping the daemon stops the live run's agent too.
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    f.wait_for_no_agents();
    assert!(takt.audit_ok());
}

#[test]
fn r097_workspaces_of_issues_closed_while_down_are_removed_at_start() {
    let f = Factory::new("startup-cleanup", |f| {
        WorkflowFile::new(f.recording_agent())
    });
    let takt = &f.takt;
    takt.add_task("Closed elsewhere", &[]);
    takt.add_task("Still open", &[]);
    takt.run_once();
    assert_eq!(takt.state_of("TAKT-1"), "awaiting_review");
    let kept = str_of(&takt.task("TAKT-2"), "workspace_path").to_owned();
    assert!(workspace(&f, "TAKT-1").is_dir());

    // While no daemon runs, a person closes TAKT-1 in the tracker.
    f.set_tracker_state("TAKT-1", "Done");
    takt.run_once();
    assert!(
        !workspace(&f, "TAKT-1").exists(),
        "the closed issue's workspace is removed at start"
    );
    assert!(PathBuf::from(&kept).is_dir(), "open issues keep theirs");
    assert_eq!(takt.state_of("TAKT-1"), "cancelled");
    assert_eq!(takt.state_of("TAKT-2"), "awaiting_review");
    assert!(takt.audit_ok());
}
