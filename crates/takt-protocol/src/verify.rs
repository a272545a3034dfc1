//! Verification vocabulary: gate evidence, parsed test results, tamper flags, verdicts of the
//! judge and the reviewers, and the risk assessment. The daemon derives "done" from these; the
//! agent never declares it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How one test case ended, as the gate's output reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Passed,
    Failed,
    Skipped,
}

/// One test case parsed from a gate's output (libtest, nextest, JUnit XML, pytest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// The name the runner printed (`module::test`, `tests/test_x.py::test_y`, `Class.method`).
    pub name: String,
    pub status: TestStatus,
}

/// Where a gate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateSource {
    /// `gates:` in WORKFLOW.md.
    Configured,
    /// Detected from the repository (Cargo.toml, package.json, pyproject.toml, go.mod, ...).
    Detected,
    /// A holdback gate: its files come from outside the repository and never reach the agent.
    Hidden,
}

/// One execution of one gate command: what ran, on what, where, and what came out. Output is
/// stored content-addressed; the hashes name the artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRun {
    pub gate: String,
    pub command: String,
    /// The commit the checkout was made from.
    pub commit: String,
    /// The git tree of that commit: what the gate actually saw (hidden files aside).
    pub tree: String,
    /// Tool versions, OS and kernel, sandbox mode: enough to reproduce the environment.
    pub environment: BTreeMap<String, String>,
    /// `None` when the command was killed (timeout, signal) before it exited.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    /// sha256 of the captured stdout / stderr artifacts.
    pub stdout_hash: String,
    pub stderr_hash: String,
    /// Which parser read the output (`libtest`, `nextest`, `junit`, `pytest`, `go`), if any
    /// matched.
    pub format: Option<String>,
    pub tests: Vec<TestCase>,
}

impl GateRun {
    /// A gate passes when its command exited 0 within its timeout.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// Names of the tests this run reported as failed.
    pub fn failed_tests(&self) -> Vec<String> {
        self.tests
            .iter()
            .filter(|test| test.status == TestStatus::Failed)
            .map(|test| test.name.clone())
            .collect()
    }
}

/// A gate's verdict on the change, after the baseline and flaky re-runs were considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Passed,
    /// It failed on the change, but only in ways it also failed on the base commit.
    PreExisting,
    /// It failed at first and passed on a re-run: the flipping tests are named.
    Flaky,
    /// It failed in a way the base commit did not.
    Failed,
    /// Not run: an earlier required gate failed and `verify.keep_going` is off.
    Skipped,
}

impl GateStatus {
    /// Whether this status lets the change through.
    pub fn is_green(self) -> bool {
        matches!(
            self,
            GateStatus::Passed | GateStatus::PreExisting | GateStatus::Flaky
        )
    }
}

/// Everything known about one gate on one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateOutcome {
    pub gate: String,
    pub source: GateSource,
    pub required: bool,
    pub status: GateStatus,
    /// Tests that fail on the change and not on the base.
    pub new_failures: Vec<String>,
    /// Tests (or, when no test names could be parsed, the gate itself) failing on the base too.
    pub preexisting_failures: Vec<String>,
    /// Tests that failed and then passed on a re-run.
    pub flaky: Vec<String>,
    /// Runs on the change: the first, then re-runs.
    pub runs: Vec<GateRun>,
    /// The run on the base commit, when one was needed (cached by base sha).
    pub baseline: Option<GateRun>,
}

/// Something in the change that weakens the checks themselves: modified or deleted tests, gate,
/// CI or lint configuration, removed assertions, newly skipped tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TamperFlag {
    /// A stable rule name: `test_deleted`, `test_modified`, `assertion_removed`, `test_skipped`,
    /// `gate_config`, `ci_config`, `lint_config`, `workflow_file`.
    pub rule: String,
    pub path: String,
    pub detail: String,
}

/// How a changed file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
}

/// One file of the change's diff against its base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    pub path: String,
    /// For a rename, where it came from.
    pub old_path: Option<String>,
    pub kind: ChangeKind,
    pub added_lines: u32,
    pub removed_lines: u32,
}

/// A line of the diff that looks like a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretHit {
    pub path: String,
    pub line: u32,
    /// Which pattern matched (`aws_access_key`, `private_key`, `github_token`, ...).
    pub kind: String,
}

/// How severe a reviewer's finding is; `blocking` stops the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Minor,
    Major,
    Blocking,
}

/// One structured finding of the judge or a reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub text: String,
}

/// A decision of the judge (`by: "judge"`) or one blind reviewer (`by: "qa"`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub by: String,
    /// `true`: the change may go on; `false`: a veto (judge) or a block (reviewer).
    pub pass: bool,
    pub summary: String,
    pub findings: Vec<Finding>,
    /// The model that produced it.
    pub model: Option<String>,
}

impl Verdict {
    /// The sha256 (hex) of the verdict's canonical JSON: committed before any verdict is
    /// revealed, checked when it is.
    pub fn commitment(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// `risk` tiers, from least to most guarded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskTier {
    /// Merged without a person when every gate is green and the reviewers pass.
    AutoShip,
    /// Waits for one human approval.
    #[default]
    Review,
    /// Waits for `risk.hard_stop_approvals` approvals from distinct people.
    HardStop,
}

impl RiskTier {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::AutoShip => "auto_ship",
            RiskTier::Review => "review",
            RiskTier::HardStop => "hard_stop",
        }
    }
}

impl std::fmt::Display for RiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One risk rule that fired, and the tier it asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRule {
    /// `path:auto_ship`, `path:hard_stop`, `lockfile`, `dependency_manifest`, `migration`,
    /// `ci_infra`, `secret`, `size`, `tamper`, `reviewer_finding`, `judge_veto`, `gate_red`,
    /// `default`.
    pub rule: String,
    pub tier: RiskTier,
    pub detail: String,
}

/// The risk policy's answer for one change: the tier and every rule that fired, so the
/// decision is explainable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskAssessment {
    pub tier: RiskTier,
    pub rules: Vec<RiskRule>,
    /// Distinct human approvals the change needs before it merges (0 for auto_ship).
    pub approvals_required: u32,
}

/// Everything verification found about one commit of one task: the facts the core decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationReport {
    pub commit: String,
    pub base: String,
    /// 1-based verification round of the task.
    pub round: u32,
    pub gates: Vec<GateOutcome>,
    pub changed_files: Vec<ChangedFile>,
    pub secrets: Vec<SecretHit>,
    pub tamper: Vec<TamperFlag>,
    pub judge: Option<Verdict>,
    pub reviewers: Vec<Verdict>,
    /// Set when verification itself could not run (checkout, sandbox, a gate that could not
    /// start): the change is neither passed nor failed, the task is retried.
    pub error: Option<String>,
}

impl VerificationReport {
    /// A report of `commit`'s `round`-th verification with nothing found yet.
    pub fn new(commit: impl Into<String>, round: u32) -> VerificationReport {
        VerificationReport {
            commit: commit.into(),
            base: String::new(),
            round,
            gates: Vec::new(),
            changed_files: Vec::new(),
            secrets: Vec::new(),
            tamper: Vec::new(),
            judge: None,
            reviewers: Vec::new(),
            error: None,
        }
    }

    /// Every required gate is green.
    pub fn gates_green(&self) -> bool {
        self.gates
            .iter()
            .filter(|gate| gate.required)
            .all(|gate| gate.status.is_green())
    }

    /// Lines added plus removed over the whole change.
    pub fn changed_lines(&self) -> u64 {
        self.changed_files
            .iter()
            .map(|file| u64::from(file.added_lines) + u64::from(file.removed_lines))
            .sum()
    }
}
