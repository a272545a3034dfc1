//! The verifier on real git repositories with real gate commands (unconfined: the sandbox has
//! its own suite): baselines and their cache, flaky re-runs, stopping at the first red gate,
//! hidden files, and the diff facts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use takt_protocol::{GateSource, GateStatus, VerificationReport};
use takt_test_support::{GitRepo, git, read_or_empty};
use takt_verify::{GateSpec, MemoryEvidence, Speed, Verifier, VerifyJob, VerifySettings};
use takt_workspace::{Hooks, RepoSource, WorkspaceManager, WorkspaceSettings};

pub(super) struct Bench {
    pub repo: GitRepo,
    pub state: tempfile::TempDir,
    pub verifier: Verifier,
}

impl Bench {
    pub fn new() -> Bench {
        let repo = GitRepo::new();
        let state = tempfile::tempdir().unwrap();
        let manager = WorkspaceManager::new(WorkspaceSettings {
            root: state.path().join("ws"),
            mirror_dir: state.path().join("mirror.git"),
            source: RepoSource::Path(repo.path().to_path_buf()),
            base_branch: None,
            branch_prefix: "takt/".into(),
            hooks: Hooks::default(),
            hook_timeout: Duration::from_secs(30),
            overlay: None,
        })
        .unwrap();
        let verifier = Verifier::new(
            Arc::new(manager),
            Arc::new(takt_sandbox::Sandbox::unconfined(
                takt_sandbox::Policy::default(),
            )),
            state.path().join("verify"),
            Arc::new(MemoryEvidence::default()),
        );
        Bench {
            repo,
            state,
            verifier,
        }
    }

    /// Commits `files` on a branch off main and returns the commit (main stays where it was).
    pub fn change(&self, branch: &str, files: &[(&str, &str)]) -> String {
        let path = self.repo.path();
        git(path, &["checkout", "-q", "-b", branch, "main"]);
        for (file, content) in files {
            takt_test_support::write(&path.join(file), content);
        }
        git(path, &["add", "-A"]);
        git(path, &["commit", "-q", "-m", branch]);
        let sha = self.repo.rev_parse("HEAD");
        git(path, &["checkout", "-q", "main"]);
        sha
    }

    pub fn verify(
        &self,
        commit: &str,
        gates: Vec<GateSpec>,
        settings: VerifySettings,
    ) -> VerificationReport {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            self.verifier.workspaces().sync_mirror().await.unwrap();
            self.verifier
                .verify(&VerifyJob {
                    task_id: "t".into(),
                    identifier: "T-1".into(),
                    title: "t".into(),
                    description: String::new(),
                    commit: commit.into(),
                    base: "refs/remotes/origin/main".into(),
                    round: 1,
                    gates,
                    settings,
                    review: None,
                })
                .await
        })
    }

    /// A log file outside every checkout that gate commands append to.
    pub fn log(&self) -> std::path::PathBuf {
        self.state.path().join("gate.log")
    }
}

pub(super) fn gate(name: &str, run: &str) -> GateSpec {
    GateSpec {
        name: name.into(),
        run: run.into(),
        timeout_ms: 30_000,
        required: true,
        env: BTreeMap::new(),
        source: GateSource::Configured,
        hidden_files: None,
        junit: Vec::new(),
        speed: Speed::Test,
    }
}

pub(super) fn settings() -> VerifySettings {
    VerifySettings {
        gates_auto: false,
        ..VerifySettings::default()
    }
}

pub(super) fn runs(log: &Path) -> usize {
    read_or_empty(log).lines().count()
}

#[test]
fn a_failure_the_base_shares_is_pre_existing_and_the_baseline_is_cached_by_base_sha() {
    let bench = Bench::new();
    bench
        .repo
        .commit_file("broken.txt", "yes\n", "already broken");
    let log = bench.log();
    let check = gate(
        "check",
        &format!("echo run >> {}; test ! -e broken.txt", log.display()),
    );
    let first = bench.change("one", &[("a.txt", "a\n")]);
    let report = bench.verify(&first, vec![check.clone()], settings());
    assert_eq!(report.error, None);
    let outcome = &report.gates[0];
    assert_eq!(outcome.status, GateStatus::PreExisting, "{outcome:#?}");
    assert_eq!(outcome.preexisting_failures, ["check"]);
    assert!(outcome.baseline.is_some());
    // The change's run, one flaky re-run, the base's run.
    assert_eq!(runs(&log), 3);

    let second = bench.change("two", &[("b.txt", "b\n")]);
    let report = bench.verify(&second, vec![check], settings());
    assert_eq!(report.gates[0].status, GateStatus::PreExisting);
    assert_eq!(runs(&log), 5, "the base commit's run came from the cache");
}

#[test]
fn a_new_failure_fails_and_stops_the_gates_after_it() {
    let bench = Bench::new();
    let change = bench.change("break", &[("broken.txt", "now\n")]);
    let gates = vec![gate("check", "test ! -e broken.txt"), gate("later", "true")];
    let report = bench.verify(&change, gates.clone(), settings());
    assert_eq!(report.gates[0].status, GateStatus::Failed);
    assert_eq!(report.gates[0].new_failures, ["check"]);
    assert_eq!(report.gates[1].status, GateStatus::Skipped);
    assert!(report.gates[1].runs.is_empty());
    assert!(!report.gates_green());

    let keep_going = VerifySettings {
        keep_going: true,
        ..settings()
    };
    let report = bench.verify(&change, gates, keep_going);
    assert_eq!(report.gates[1].status, GateStatus::Passed);
}

#[test]
fn a_gate_that_passes_on_a_re_run_is_flaky() {
    let bench = Bench::new();
    let change = bench.change("flaky", &[("a.txt", "a\n")]);
    let report = bench.verify(
        &change,
        vec![gate(
            "flaky",
            "if [ -e .ran ]; then exit 0; fi; touch .ran; exit 1",
        )],
        settings(),
    );
    let outcome = &report.gates[0];
    assert_eq!(outcome.status, GateStatus::Flaky, "{outcome:#?}");
    assert_eq!(outcome.flaky, ["flaky"]);
    assert_eq!(outcome.runs.len(), 2);
    assert!(report.gates_green());
}

#[test]
fn the_checkout_is_the_commit_alone_plus_hidden_files() {
    let bench = Bench::new();
    let hidden = tempfile::tempdir().unwrap();
    takt_test_support::write(&hidden.path().join("holdback/check.sh"), "test -e a.txt\n");
    let change = bench.change(
        "with-ignored",
        &[("a.txt", "a\n"), (".gitignore", "junk\n")],
    );
    // A file the agent left behind but did not commit never reaches the gates.
    takt_test_support::write(&bench.repo.path().join("junk"), "x\n");
    let mut holdback = gate(
        "holdback",
        "sh holdback/check.sh && test ! -e junk && test ! -e .git",
    );
    holdback.source = GateSource::Hidden;
    holdback.hidden_files = Some(hidden.path().to_path_buf());
    let report = bench.verify(&change, vec![holdback], settings());
    assert_eq!(report.gates[0].status, GateStatus::Passed, "{report:#?}");
    let run = &report.gates[0].runs[0];
    assert_eq!(run.commit, change);
    assert_eq!(run.tree.len(), 40);
    let files: Vec<&str> = report
        .changed_files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(files, [".gitignore", "a.txt"]);
}

/// A change that commits symlinks where the hidden files go, or where takt reads a test
/// report, must not make the daemon write or read outside the checkout.
#[test]
fn symlinks_in_a_change_never_lead_takts_own_writes_or_reads_out_of_the_checkout() {
    let bench = Bench::new();
    let hidden = tempfile::tempdir().unwrap();
    takt_test_support::write(
        &hidden.path().join("holdback/check.sh"),
        "echo holdback ran\n",
    );
    takt_test_support::write(&hidden.path().join("extra/check.sh"), "echo extra\n");
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim.txt");
    takt_test_support::write(&victim, "precious\n");
    let report_elsewhere = outside.path().join("report.xml");
    takt_test_support::write(
        &report_elsewhere,
        r#"<testsuite name="host"><testcase classname="host" name="read_from_the_host"><failure message="HOST-SECRET"/></testcase></testsuite>"#,
    );
    let path = bench.repo.path();
    git(path, &["checkout", "-q", "-b", "links", "main"]);
    std::os::unix::fs::symlink(outside.path(), path.join("holdback")).unwrap();
    std::fs::create_dir_all(path.join("extra")).unwrap();
    std::os::unix::fs::symlink(&victim, path.join("extra/check.sh")).unwrap();
    std::os::unix::fs::symlink(&report_elsewhere, path.join("report.xml")).unwrap();
    git(path, &["add", "-A"]);
    git(path, &["commit", "-q", "-m", "links"]);
    let change = bench.repo.rev_parse("HEAD");
    git(path, &["checkout", "-q", "main"]);

    let mut holdback = gate("holdback", "sh holdback/check.sh && sh extra/check.sh");
    holdback.source = GateSource::Hidden;
    holdback.hidden_files = Some(hidden.path().to_path_buf());
    let mut reported = gate("reported", "true");
    reported.junit = vec!["report.xml".into()];
    let report = bench.verify(&change, vec![holdback, reported], settings());

    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "a hidden file was written through a symlink"
    );
    assert!(
        !outside.path().join("check.sh").exists(),
        "a hidden directory was created through a symlink"
    );
    assert_eq!(report.gates[0].status, GateStatus::Passed, "{report:#?}");
    let everything = format!("{report:?}");
    assert!(
        !everything.contains("HOST-SECRET") && !everything.contains("read_from_the_host"),
        "a report outside the checkout was read: {report:#?}"
    );
}

#[test]
fn the_diff_is_read_for_tamper_and_secret_flags() {
    let bench = Bench::new();
    bench.repo.commit_file(
        "tests/test_a.py",
        "def test_a():\n    assert 1 == 1\n",
        "test",
    );
    let key = ["AKIA", "ABCDEFGHIJKLMNOP"].concat();
    bench.change("tamper", &[("config.py", &format!("KEY = \"{key}\"\n"))]);
    git(bench.repo.path(), &["checkout", "-q", "tamper"]);
    git(bench.repo.path(), &["rm", "-q", "tests/test_a.py"]);
    git(bench.repo.path(), &["commit", "-q", "-m", "drop the test"]);
    let change = bench.repo.rev_parse("HEAD");
    git(bench.repo.path(), &["checkout", "-q", "main"]);
    let report = bench.verify(&change, Vec::new(), settings());
    assert!(report.gates.is_empty());
    assert!(
        report
            .tamper
            .iter()
            .any(|flag| flag.rule == "test_deleted" && flag.path == "tests/test_a.py"),
        "{:?}",
        report.tamper
    );
    assert_eq!(report.secrets.len(), 1);
    assert_eq!(report.secrets[0].kind, "aws_access_key");
    assert_eq!(report.secrets[0].path, "config.py");
}
