//! One verification of one commit, start to end: clean checkout, gates, baseline, diff facts,
//! then the judge and the reviewers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use takt_protocol::{GateOutcome, GateStatus, VerificationReport};
use takt_sandbox::Sandbox;
use takt_workspace::WorkspaceManager;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::error::VerifyError;
use crate::evidence::EvidenceStore;
use crate::gates::{BaseCheckout, Checkout, GatePolicy};
use crate::review::ReviewPanel;
use crate::spec::{GateSpec, Speed};

/// What `verify.*` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySettings {
    pub gates_auto: bool,
    pub flaky_reruns: u32,
    pub keep_going: bool,
    pub baseline: bool,
    pub base_tests: bool,
    /// Start gates from a frozen build cache of the base commit (see [`crate::warm`]).
    pub warm_cache: bool,
    /// Bytes the warm caches may take on disk together.
    pub warm_cache_max_bytes: u64,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            gates_auto: true,
            flaky_reruns: 1,
            keep_going: false,
            baseline: true,
            base_tests: false,
            warm_cache: false,
            warm_cache_max_bytes: 20 << 30,
        }
    }
}

/// One commit to verify.
#[derive(Debug, Clone)]
pub struct VerifyJob {
    pub task_id: String,
    pub identifier: String,
    pub title: String,
    pub description: String,
    pub commit: String,
    /// The tip of the branch the change merges into (a commit or ref in the mirror); the
    /// change is measured from its merge base with it.
    pub base: String,
    pub round: u32,
    /// Configured and hidden gates (detected ones are added when `gates_auto`).
    pub gates: Vec<GateSpec>,
    pub settings: VerifySettings,
    /// The judge and the reviewers, when any is configured.
    pub review: Option<ReviewPanel>,
}

/// Runs verifications. Gates run in `sandbox` (network off, nothing of the daemon visible) on
/// checkouts under `root`; their output goes to `evidence`.
pub struct Verifier {
    pub(crate) workspaces: Arc<WorkspaceManager>,
    pub(crate) sandbox: Arc<Sandbox>,
    pub(crate) root: PathBuf,
    pub(crate) evidence: Arc<dyn EvidenceStore>,
    tool_versions: Mutex<BTreeMap<String, String>>,
    /// Numbers this process's checkouts, so no two verifications ever share a directory.
    checkouts: std::sync::atomic::AtomicU64,
    /// Verifications running at once: gate commands (compilers, test suites) use every core,
    /// so more in parallel than there are cores only makes each slower.
    pub(crate) slots: tokio::sync::Semaphore,
    pub(crate) warm: crate::warm::Warm,
}

impl Verifier {
    pub fn new(
        workspaces: Arc<WorkspaceManager>,
        sandbox: Arc<Sandbox>,
        root: PathBuf,
        evidence: Arc<dyn EvidenceStore>,
    ) -> Verifier {
        let warm = crate::warm::Warm::new(&root);
        Verifier {
            workspaces,
            sandbox,
            root,
            evidence,
            tool_versions: Mutex::new(BTreeMap::new()),
            checkouts: std::sync::atomic::AtomicU64::new(0),
            slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |cpus| cpus.get().min(4)),
            ),
            warm,
        }
    }

    /// The workspace manager whose mirror the verifier reads.
    pub fn workspaces(&self) -> &WorkspaceManager {
        &self.workspaces
    }

    /// Where gate output is stored.
    pub fn evidence(&self) -> &dyn EvidenceStore {
        self.evidence.as_ref()
    }

    /// Verifies `job.commit`. Never fails: a verification that could not finish says why in
    /// `error`, with everything found up to then.
    pub async fn verify(&self, job: &VerifyJob) -> VerificationReport {
        self.verify_with(job, &|_: &str, _: String| {}).await
    }

    /// [`Verifier::verify`], calling `commit_verdict(by, hash)` as each verdict of the judge
    /// and the reviewers is reached, before any of them is revealed in the report.
    pub async fn verify_with(
        &self,
        job: &VerifyJob,
        commit_verdict: &(dyn Fn(&str, String) + Sync),
    ) -> VerificationReport {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.slots.acquire().await.ok();
        let mut report = VerificationReport::new(&job.commit, job.round);
        let scratch = self.scratch_dir(&format!(
            "{}-r{}",
            takt_workspace::workspace_key(&job.identifier),
            job.round
        ));
        if let Err(error) = self
            .verify_into(job, &scratch, &mut report, commit_verdict)
            .await
        {
            warn!(identifier = %job.identifier, %error, "verification could not finish");
            report.error = Some(error.to_string());
        }
        discard(scratch).await;
        report
    }

    async fn verify_into(
        &self,
        job: &VerifyJob,
        scratch: &Path,
        report: &mut VerificationReport,
        commit_verdict: &(dyn Fn(&str, String) + Sync),
    ) -> Result<(), VerifyError> {
        let _ = fs_err::tokio::remove_dir_all(scratch).await;
        report.base = self.workspaces.merge_base(&job.commit, &job.base).await?;
        let base = report.base.clone();
        self.diff_facts(&base, &job.commit, report).await?;

        let hidden: Vec<PathBuf> = job
            .gates
            .iter()
            .filter_map(|gate| gate.hidden_files.clone())
            .collect();
        let mut change = self
            .checkout(&job.commit, &scratch.join("change"), &hidden)
            .await?;
        let gates = self.gate_list(job, &change.dir);
        // Held until the gates are done: unmounts the cache and releases it when dropped.
        let warm = if job.settings.warm_cache {
            let changed: Vec<String> = report
                .changed_files
                .iter()
                .flat_map(|file| std::iter::once(&file.path).chain(&file.old_path))
                .cloned()
                .collect();
            let scope = crate::warm::Scope {
                base: &base,
                gates: &gates,
                hidden: &hidden,
                max_bytes: job.settings.warm_cache_max_bytes,
            };
            self.warm_up(&scope, &mut change, &changed, scratch).await
        } else {
            change.build_cache = "cold: verify.warm_cache is off".to_owned();
            None
        };
        info!(
            identifier = %job.identifier,
            commit = %job.commit,
            gates = ?gates.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
            "verifying"
        );
        let mut base = BaseCheckout::new(report.base.clone(), scratch.join("base"), &hidden);
        let policy = GatePolicy {
            flaky_reruns: job.settings.flaky_reruns,
            baseline: job.settings.baseline,
        };
        let runs = scratch.join("runs");
        let mut stopped = false;
        for gate in &gates {
            if stopped {
                report.gates.push(skipped(gate));
                continue;
            }
            let outcome = self
                .judge_gate(gate, &change, &mut base, policy, &runs)
                .await?;
            if outcome.required && !outcome.status.is_green() && !job.settings.keep_going {
                stopped = true;
            }
            report.gates.push(outcome);
        }
        if job.settings.base_tests && report.gates_green() {
            let outcomes = self
                .base_tests(job, report, &gates, &scratch.join("base-tests"), &hidden)
                .await?;
            report.gates.extend(outcomes);
        }
        drop(warm);
        if report.gates_green()
            && let Some(panel) = &job.review
        {
            let diff = self
                .workspaces
                .diff(&report.base, &job.commit, &["--stat", "--patch", "-M"])
                .await?;
            panel.review(self, job, &diff, report, commit_verdict).await;
        }
        Ok(())
    }

    /// A directory for one verification's checkouts, `<root>/checkouts/<name>-<pid>-<n>`:
    /// never shared, and told apart from a dead process's (see the warm caches' sweep).
    pub(crate) fn scratch_dir(&self, name: &str) -> PathBuf {
        self.root.join("checkouts").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            self.checkouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    }

    /// Configured gates, then the detected ones they do not replace (same name or same
    /// command), fastest first; the sort is stable so configured order survives within a
    /// speed.
    pub(crate) fn gate_list(&self, job: &VerifyJob, checkout: &Path) -> Vec<GateSpec> {
        let mut gates = job.gates.clone();
        if job.settings.gates_auto {
            for detected in crate::detect::detect(checkout) {
                let replaced = gates
                    .iter()
                    .any(|gate| gate.name == detected.name || gate.run == detected.run);
                if !replaced {
                    gates.push(detected);
                }
            }
        }
        gates.sort_by_key(|gate| gate.speed);
        gates
    }

    /// Writes `commit` out to `dir` and copies the hidden gates' files into it.
    pub(crate) async fn checkout(
        &self,
        commit: &str,
        dir: &Path,
        hidden: &[PathBuf],
    ) -> Result<Checkout, VerifyError> {
        let tree = self.workspaces.export_commit(commit, dir).await?;
        for source in hidden {
            copy_tree(source, dir).await?;
        }
        Ok(Checkout {
            dir: dir.to_path_buf(),
            commit: commit.to_owned(),
            tree,
            fixed: None,
            build_cache: String::new(),
        })
    }

    async fn diff_facts(
        &self,
        base: &str,
        commit: &str,
        report: &mut VerificationReport,
    ) -> Result<(), VerifyError> {
        let name_status = self
            .workspaces
            .diff(base, commit, &["--name-status", "-z", "-M"])
            .await?;
        let numstat = self
            .workspaces
            .diff(base, commit, &["--numstat", "-z", "-M"])
            .await?;
        let patch = self.workspaces.diff(base, commit, &["-U0", "-M"]).await?;
        report.changed_files =
            crate::diff::changed_files(&name_status, &numstat).map_err(|error| {
                VerifyError::Evidence(format!("reading the change's diff: {error}"))
            })?;
        report.secrets = crate::secrets::secret_hits(&patch);
        report.tamper = crate::tamper::tamper_flags(&report.changed_files, &patch);
        Ok(())
    }

    /// `verify.base_tests`: the base commit's versions of the test files the change modified
    /// or deleted, put back over the change and run with its test gates — a change that
    /// weakened a test must still pass the original.
    async fn base_tests(
        &self,
        job: &VerifyJob,
        report: &VerificationReport,
        gates: &[GateSpec],
        dir: &Path,
        hidden: &[PathBuf],
    ) -> Result<Vec<GateOutcome>, VerifyError> {
        let touched: Vec<&str> = report
            .tamper
            .iter()
            .filter(|flag| {
                matches!(
                    flag.rule.as_str(),
                    "test_deleted" | "test_modified" | "assertion_removed" | "test_skipped"
                )
            })
            .map(|flag| flag.path.as_str())
            .collect();
        if touched.is_empty() {
            return Ok(Vec::new());
        }
        let mut checkout = self.checkout(&job.commit, dir, hidden).await?;
        checkout.build_cache =
            "cold: the base-tests checkout (the change with the base's test files) is not cached"
                .to_owned();
        for path in &touched {
            let Some(original) = self.workspaces.file_at(&report.base, path).await? else {
                continue;
            };
            let target = checkout.dir.join(path);
            if let Some(parent) = target.parent() {
                fs_err::tokio::create_dir_all(parent)
                    .await
                    .map_err(VerifyError::io("creating", parent))?;
            }
            fs_err::tokio::write(&target, original)
                .await
                .map_err(VerifyError::io("restoring a base test file in", &target))?;
        }
        let mut outcomes = Vec::new();
        let mut no_base = BaseCheckout::new(report.base.clone(), dir.join("unused"), hidden);
        let policy = GatePolicy {
            flaky_reruns: job.settings.flaky_reruns,
            baseline: false,
        };
        for gate in gates.iter().filter(|gate| gate.speed == Speed::Test) {
            let mut gate = gate.clone();
            gate.name = format!("{}@base-tests", gate.name);
            let outcome = self
                .judge_gate(&gate, &checkout, &mut no_base, policy, &dir.join("runs"))
                .await?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// The environment a gate ran in: OS, kernel, sandbox, and the version of the tool its
    /// command starts with (asked once per tool).
    pub(crate) async fn environment(&self, command: &str) -> BTreeMap<String, String> {
        let mut environment = BTreeMap::new();
        environment.insert("sandbox".into(), self.sandbox.describe());
        if let Ok(uname) = nix::sys::utsname::uname() {
            environment.insert(
                "kernel".into(),
                format!(
                    "{} {} {}",
                    uname.sysname().to_string_lossy(),
                    uname.release().to_string_lossy(),
                    uname.machine().to_string_lossy()
                ),
            );
        }
        if let Ok(release) = fs_err::tokio::read_to_string("/etc/os-release").await
            && let Some(name) = release
                .lines()
                .find_map(|line| line.strip_prefix("PRETTY_NAME="))
        {
            environment.insert("os".into(), name.trim_matches('"').to_owned());
        }
        for tool in tools_of(command) {
            let version = self.tool_version(tool).await;
            environment.insert(tool.to_owned(), version);
        }
        environment
    }

    async fn tool_version(&self, tool: &str) -> String {
        let mut known = self.tool_versions.lock().await;
        if let Some(version) = known.get(tool) {
            return version.clone();
        }
        let version = match tokio::process::Command::new(tool)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
        {
            Ok(out) => {
                let text = if out.stdout.is_empty() {
                    out.stderr
                } else {
                    out.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            }
            Err(_) => "not found".to_owned(),
        };
        known.insert(tool.to_owned(), version.clone());
        version
    }
}

/// Removes a finished verification's checkouts off the caller's path: renamed aside at once
/// (so its name is free), deleted in the background (a build's `target/` can take a while).
pub(crate) async fn discard(scratch: PathBuf) {
    let Some(parent) = scratch.parent() else {
        return;
    };
    let Some(name) = scratch.file_name() else {
        return;
    };
    let mut aside = parent.to_path_buf();
    aside.push(format!(".discard-{}", name.to_string_lossy()));
    let target = match fs_err::tokio::rename(&scratch, &aside).await {
        Ok(()) => aside,
        Err(_) => scratch,
    };
    tokio::task::spawn_blocking(move || {
        let _ = fs_err::remove_dir_all(&target);
    });
}

/// The report of a verification that could not start (the mirror could not be updated).
pub fn failed_report(commit: &str, round: u32, error: String) -> VerificationReport {
    VerificationReport {
        error: Some(error),
        ..VerificationReport::new(commit, round)
    }
}

/// The tools whose versions describe a gate command's environment.
fn tools_of(command: &str) -> Vec<&'static str> {
    let first = command
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    match first {
        "cargo" => vec!["cargo", "rustc"],
        "python" | "python3" | "pytest" | "ruff" => vec!["python3"],
        "npm" | "npx" | "node" => vec!["node", "npm"],
        "pnpm" => vec!["node", "pnpm"],
        "yarn" => vec!["node", "yarn"],
        "go" => vec!["go"],
        "mvn" => vec!["mvn"],
        "gradle" | "gradlew" => vec!["java"],
        "make" => vec!["make"],
        _ => Vec::new(),
    }
}

/// How fast a configured gate probably is, from its command: formatting and lint checks
/// first, builds next, everything else (tests, custom scripts) last.
pub fn speed_of(command: &str) -> Speed {
    let command = command.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| command.contains(word));
    if has(&[
        "fmt", "format", "lint", "clippy", "ruff", "vet", "eslint", "prettier",
    ]) {
        Speed::Check
    } else if has(&["build", "typecheck", "tsc", "mypy", "cargo check"]) {
        Speed::Build
    } else {
        Speed::Test
    }
}

fn skipped(gate: &GateSpec) -> GateOutcome {
    GateOutcome {
        gate: gate.name.clone(),
        source: gate.source,
        required: gate.required,
        status: GateStatus::Skipped,
        new_failures: Vec::new(),
        preexisting_failures: Vec::new(),
        flaky: Vec::new(),
        runs: Vec::new(),
        baseline: None,
    }
}

/// Copies the files under `source` into the checkout `dest` (directories merged, files
/// replaced, symlinks skipped: a holdback directory is plain files). Whatever the change
/// committed in their way, a symlink above all, is replaced, never written through.
async fn copy_tree(source: &Path, dest: &Path) -> Result<(), VerifyError> {
    let mut pending = vec![(source.to_path_buf(), dest.to_path_buf())];
    while let Some((from, to)) = pending.pop() {
        crate::inside::real_dir(&to)
            .await
            .map_err(VerifyError::io("creating", &to))?;
        let mut entries = fs_err::tokio::read_dir(&from)
            .await
            .map_err(VerifyError::io("reading the hidden gate files in", &from))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(VerifyError::io("reading the hidden gate files in", &from))?
        {
            let kind = entry
                .file_type()
                .await
                .map_err(VerifyError::io("reading", &entry.path()))?;
            let target = to.join(entry.file_name());
            if kind.is_dir() {
                pending.push((entry.path(), target));
            } else if kind.is_file() {
                crate::inside::clear_for_file(&target)
                    .await
                    .map_err(VerifyError::io(
                        "clearing the way for a hidden gate file at",
                        &target,
                    ))?;
                fs_err::tokio::copy(entry.path(), &target)
                    .await
                    .map_err(VerifyError::io("copying a hidden gate file to", &target))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_gates_are_ordered_by_what_their_command_does() {
        assert_eq!(speed_of("cargo fmt --check"), Speed::Check);
        assert_eq!(speed_of("npm run lint"), Speed::Check);
        assert_eq!(speed_of("cargo build --release"), Speed::Build);
        assert_eq!(speed_of("./scripts/integration.sh"), Speed::Test);
    }

    #[test]
    fn tool_versions_follow_the_command() {
        assert_eq!(tools_of("cargo test --offline"), ["cargo", "rustc"]);
        assert_eq!(tools_of("/usr/bin/python3 -m pytest"), ["python3"]);
        assert!(tools_of("./check.sh").is_empty());
    }
}
