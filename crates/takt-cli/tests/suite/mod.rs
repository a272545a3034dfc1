//! Shared setup for the end-to-end suite: a [`Factory`] is a temporary git repository, a
//! WORKFLOW.md beside it, the `takt` binary pointed at it, and a sweeper that kills any marked
//! agent process the test leaves behind.

mod api;
mod backends;
mod bad_input;
mod browser;
mod crash;
mod forge;
mod host_tools;
mod lifecycle;
mod reconcile;
mod sandbox;
mod trackers;
mod verification;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use takt_test_support::{GitRepo, ProcessSweeper, Takt, WorkflowFile, read_or_empty, str_of};

pub const TAKT: &str = env!("CARGO_BIN_EXE_takt");

/// One factory under test.
pub struct Factory {
    /// First, so it is dropped first: leftover agents die before their directory goes.
    pub sweeper: ProcessSweeper,
    pub repo: GitRepo,
    pub takt: Takt,
}

impl Factory {
    /// A fresh repository with WORKFLOW.md written from `workflow(&factory)`.
    pub fn new(label: &str, workflow: impl FnOnce(&Factory) -> WorkflowFile) -> Factory {
        let factory = Factory::bare(label);
        factory.write_workflow(&workflow(&factory));
        factory
    }

    /// A fresh repository without a WORKFLOW.md.
    pub fn bare(label: &str) -> Factory {
        let repo = GitRepo::new();
        let takt = Takt::new(TAKT, repo.workflow_path());
        Factory {
            sweeper: ProcessSweeper::new(label),
            repo,
            takt,
        }
    }

    /// Writes WORKFLOW.md. Unless the workflow configures `sandbox` itself, agents get the
    /// test's log directory read-write and the agent script read-only: everything else
    /// outside the workspace is invisible to them, as in production.
    pub fn write_workflow(&self, workflow: &WorkflowFile) {
        self.sandboxed(workflow)
            .write_to(&self.repo.workflow_path());
    }

    /// `workflow` with the test's sandbox grants, unless it configures `sandbox` itself: the
    /// log directory read-write and the scripts directory read-only; everything else outside
    /// the workspace stays invisible to agents, as in production.
    pub fn sandboxed(&self, workflow: &WorkflowFile) -> WorkflowFile {
        let mut workflow = workflow.clone();
        if !workflow.extra.contains("sandbox:") {
            std::fs::create_dir_all(self.log_dir()).unwrap();
            std::fs::create_dir_all(self.scripts_dir()).unwrap();
            workflow.extra.push_str(&format!(
                "\nsandbox:\n  read_write: [{}]\n  read_only: [{}]\n",
                takt_test_support::yaml_string(&self.log_dir().display().to_string()),
                takt_test_support::yaml_string(&self.scripts_dir().display().to_string()),
            ));
        }
        workflow
    }

    /// Outside the repository: the agent scripts tests write.
    pub fn scripts_dir(&self) -> PathBuf {
        self.repo.root().join("scripts")
    }

    /// Outside the repository: where agents record what they saw.
    pub fn log_dir(&self) -> PathBuf {
        self.repo.root().join("log")
    }

    /// `command.run` for the standard agent script: marked (so the sweeper finds its
    /// processes), it records every prompt and appends a line to `changes/<identifier>.txt`.
    pub fn agent_command(&self, script_body: &str) -> String {
        std::fs::create_dir_all(self.scripts_dir()).unwrap();
        let script = self.scripts_dir().join("agent.sh");
        takt_test_support::write_script(&script, script_body);
        format!("{} sh {}", self.sweeper.marker, script.display())
    }

    /// The standard agent: records its prompt as `log/prompt-<identifier>-<run>.md`, appends
    /// its identifier to `log/order`, then changes `changes/<identifier>.txt`.
    pub fn recording_agent(&self) -> String {
        let log = self.log_dir();
        self.agent_command(&format!(
            "set -e\nLOG={log}\nmkdir -p \"$LOG\"\nrun=${{TAKT_RUN_ID##*#}}\n\
             cp \"$TAKT_PROMPT_FILE\" \"$LOG/prompt-$TAKT_ISSUE_IDENTIFIER-$run.md\"\n\
             echo \"$TAKT_ISSUE_IDENTIFIER\" >> \"$LOG/order\"\n\
             mkdir -p changes\n\
             echo \"$TAKT_ISSUE_IDENTIFIER attempt $TAKT_ATTEMPT turn $TAKT_TURN\" >> \"changes/$TAKT_ISSUE_IDENTIFIER.txt\"\n",
            log = log.display()
        ))
    }

    /// The prompt run `run` (1-based) of `identifier` got, or "" if it never ran.
    pub fn prompt(&self, identifier: &str, run: u32) -> String {
        read_or_empty(&self.log_dir().join(format!("prompt-{identifier}-{run}.md")))
    }

    /// Identifiers in the order their agents started.
    pub fn agent_order(&self) -> Vec<String> {
        read_or_empty(&self.log_dir().join("order"))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `identifier -> state` for every task.
    pub fn states(&self) -> Vec<(String, String)> {
        self.takt
            .tasks()
            .iter()
            .map(|task| {
                (
                    str_of(task, "identifier").to_owned(),
                    str_of(task, "state").to_owned(),
                )
            })
            .collect()
    }

    /// Waits (bounded) until `identifier` is in `state`.
    pub fn wait_for_state(&self, identifier: &str, state: &str, timeout: Duration) {
        takt_test_support::wait_until(
            &format!("{identifier} to become {state}"),
            timeout,
            || self.takt.state_of(identifier) == state,
            || format!("{:#}", self.takt.task(identifier)),
        );
    }

    /// The file at `path` in `rev` of takt's mirror (where task commits live until a merge
    /// publishes them into the source repository).
    pub fn show_in_mirror(&self, rev: &str, path: &str) -> Option<String> {
        let mirror = self.takt.state_dir().join("mirror.git");
        let out = takt_test_support::git_output(&mirror, &["show", &format!("{rev}:{path}")]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (bounded) until no process marked by this test's sweeper is alive: killed process
    /// groups take a moment to disappear from /proc.
    pub fn wait_for_no_agents(&self) {
        takt_test_support::wait_until(
            "every marked agent process to be gone",
            Duration::from_secs(20),
            || self.sweeper.alive().is_empty(),
            || format!("still alive: {:?}", self.sweeper.alive()),
        );
    }

    /// The state directory's SQLite database.
    pub fn db(&self) -> PathBuf {
        self.takt.state_dir().join("takt.db")
    }

    /// Moves a local issue to `state` behind takt's back, as a person editing the tracker
    /// would (the local tracker has no CLI for it; `task cancel` is takt's own command).
    pub fn set_tracker_state(&self, identifier: &str, state: &str) {
        takt_test_support::python(
            "import sqlite3, sys, time\n\
             db = sqlite3.connect(sys.argv[1], timeout=30)\n\
             n = db.execute('UPDATE issues SET state = ?, state_key = lower(trim(?)), updated_at_ms = ? WHERE identifier = ?',\n\
                            (sys.argv[3], sys.argv[3], int(time.time() * 1000), sys.argv[2])).rowcount\n\
             assert n == 1, n\n\
             db.commit()\n",
            &[self.db().to_str().unwrap_or_default(), identifier, state],
        );
    }

    /// The tracker's own state of a local issue.
    pub fn tracker_state(&self, identifier: &str) -> String {
        takt_test_support::python(
            "import sqlite3, sys\n\
             db = sqlite3.connect(sys.argv[1], timeout=30)\n\
             print(db.execute('SELECT state FROM issues WHERE identifier = ?', (sys.argv[2],)).fetchone()[0])\n",
            &[self.db().to_str().unwrap_or_default(), identifier],
        )
        .trim()
        .to_owned()
    }

    /// Everything a test wants to see about the factory when it fails.
    pub fn describe(&self) -> String {
        format!(
            "tasks: {:?}\nlog dir: {}",
            self.states(),
            self.log_dir().display()
        )
    }
}

/// Whether the tests run as root: overlays, the agent user and warm caches need it.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// The whole `task list --json`, to compare before and after something that must change
/// nothing.
pub fn snapshot(takt: &Takt) -> Value {
    Value::Array(takt.tasks())
}

/// Whether `path` lies inside `base` (both canonicalized when they exist).
pub fn inside(path: &Path, base: &Path) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canonical(path).starts_with(canonical(base))
}
