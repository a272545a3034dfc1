//! A [`Harness`] is a temporary layout like a daemon's: a workspace, a sibling "other task"
//! workspace, a state directory with a database, a git mirror, and an outside sentinel. Each
//! escape test runs once per available mechanism.

mod escape;
mod server;
mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use takt_sandbox::{ContainmentReport, Launch, Limits, Mode, Network, Policy, RunScope, Sandbox};

pub const HELPER: &str = env!("CARGO_BIN_EXE_takt-sandbox-helper");

pub struct Harness {
    pub root: tempfile::TempDir,
    pub scope: RunScope,
    pub other_workspace: PathBuf,
    pub state_db: PathBuf,
    pub outside_secret: PathBuf,
}

/// What one confined command did.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<ContainmentReport>,
}

impl Ran {
    pub fn all(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}\nreport: {:?}",
            self.code, self.stdout, self.stderr, self.report
        )
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // The daemon's job: remove the launch cgroups once their supervisors have exited.
        takt_sandbox::cgroup_sweep("test", false);
    }
}

impl Harness {
    pub fn new() -> Harness {
        let root = tempfile::tempdir().unwrap();
        let base = root.path();
        // Readable by anyone, as a project checkout usually is: only the sandbox may stand
        // between the agent user and these files.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let make = |p: &str| {
            let dir = base.join(p);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        };
        let workspace = make("workspaces/TAKT-1");
        let other_workspace = make("workspaces/TAKT-2");
        std::fs::write(other_workspace.join("secret.txt"), "OTHER-TASK-SENTINEL").unwrap();
        let state = make("state");
        let state_db = state.join("takt.db");
        std::fs::write(&state_db, "STATE-DB-SENTINEL").unwrap();
        let run_dir = make("state/runs/run-1");
        let mirror = make("state/mirror.git");
        std::fs::write(mirror.join("config"), "[core]\n").unwrap();
        let outside_secret = base.join("id_rsa");
        std::fs::write(&outside_secret, "OPERATOR-KEY-SENTINEL").unwrap();
        Harness {
            scope: RunScope {
                run_id: "run-1".into(),
                workspace,
                run_dir,
                git_dirs: vec![mirror],
                view: None,
            },
            root,
            other_workspace,
            state_db,
            outside_secret,
        }
    }

    pub fn workspace(&self) -> &Path {
        &self.scope.workspace
    }

    pub fn mirror(&self) -> &Path {
        &self.scope.git_dirs[0]
    }
}

/// The mechanisms this host offers (both run in CI, which installs bubblewrap).
pub fn modes() -> Vec<Mode> {
    let host = takt_sandbox::probe(Path::new(HELPER), "takt-agent");
    let mut modes = Vec::new();
    if host.bwrap.is_ok() {
        modes.push(Mode::Bwrap);
    } else if std::env::var_os("CI").is_some() {
        panic!("bubblewrap must work in CI: {:?}", host.bwrap);
    }
    if host.landlock.is_ok() {
        modes.push(Mode::Landlock);
    }
    assert!(
        !modes.is_empty(),
        "no sandbox mechanism works here: {host:?}"
    );
    modes
}

pub fn policy(mode: Mode) -> Policy {
    Policy {
        mode,
        network: Network::Model,
        limits: Limits {
            memory_mb: Some(256),
            pids: Some(64),
            cpu_seconds: None,
            file_size_mb: Some(64),
            open_files: Some(1024),
            wall_clock_ms: Some(20_000),
        },
        ..Policy::default()
    }
}

pub fn sandbox(policy: Policy, model: Option<SocketAddr>) -> Sandbox {
    let host = takt_sandbox::probe(Path::new(HELPER), &policy.user);
    let sandbox = Sandbox::new(policy, &host, PathBuf::from(HELPER), "test").unwrap();
    match model {
        Some(addr) => sandbox.with_model_endpoint(addr),
        None => sandbox,
    }
}

/// Runs `script` with `sh -c` in the harness's workspace.
pub async fn run(sandbox: &Sandbox, harness: &Harness, script: &str) -> Ran {
    let launch = Launch {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: harness.workspace().to_path_buf(),
        env: vec![("TAKT_RUN_ID".into(), "run-1".into())],
        read_only: Vec::new(),
        remove_env: Vec::new(),
    };
    let child = sandbox.spawn(&harness.scope, launch).await.unwrap();
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the sandboxed command did not finish")
        .unwrap();
    let report = latest_report(&harness.scope.run_dir);
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        report,
    }
}

/// The newest launch's report in a run directory.
pub fn latest_report(run_dir: &Path) -> Option<ContainmentReport> {
    let dir = run_dir.join("sandbox");
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    ContainmentReport::read(&entries.last()?.path().join("report.json")).unwrap()
}
