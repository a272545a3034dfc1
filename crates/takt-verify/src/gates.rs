//! The gates of one change: run each on the change's clean checkout, re-run failures to tell
//! flaky tests from broken ones, and compare what still fails with the base commit (cached by
//! base sha) so only new failures count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use takt_protocol::{GateOutcome, GateRun, GateStatus};
use tracing::info;

use crate::error::VerifyError;
use crate::exec::{Executed, execute};
use crate::parse::{parse_junit, parse_output};
use crate::runner::Verifier;
use crate::spec::GateSpec;

/// A checkout the gates run on: where it is and what it was made from.
pub(crate) struct Checkout {
    pub dir: PathBuf,
    pub commit: String,
    pub tree: String,
    /// Where its gates see it when that is not `dir`: the fixed path of warm runs.
    pub fixed: Option<crate::warm::place::Fixed>,
    /// How its gates' builds start, for the evidence (`warm: …` / `cold: …`, with why).
    pub build_cache: String,
}

/// How a gate's failures are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatePolicy {
    /// Re-runs of a failing gate before its failures count (`verify.flaky_reruns`).
    pub flaky_reruns: u32,
    /// Compare failures with the base commit (`verify.baseline`).
    pub baseline: bool,
}

impl Verifier {
    /// Runs `gate` once on `checkout` and stores its output as evidence.
    pub(crate) async fn run_once(
        &self,
        gate: &GateSpec,
        checkout: &Checkout,
        run_dir: PathBuf,
    ) -> Result<GateRun, VerifyError> {
        // A report left by an earlier run (or by the cache a warm checkout starts from) must
        // never be read as this run's.
        for report in &gate.junit {
            let _ = fs_err::tokio::remove_file(checkout.dir.join(report)).await;
        }
        let executed = execute(
            &self.sandbox,
            gate,
            &checkout.dir,
            checkout.fixed.as_ref(),
            run_dir,
        )
        .await?;
        let mut environment = self.environment(&gate.run).await;
        if !checkout.build_cache.is_empty() {
            environment.insert("build_cache".into(), checkout.build_cache.clone());
        }
        self.record(gate, checkout, executed, environment).await
    }

    async fn record(
        &self,
        gate: &GateSpec,
        checkout: &Checkout,
        executed: Executed,
        environment: BTreeMap<String, String>,
    ) -> Result<GateRun, VerifyError> {
        let stdout = String::from_utf8_lossy(&executed.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&executed.stderr).into_owned();
        let mut format = None;
        let mut tests = Vec::new();
        for report in &gate.junit {
            // A runner that crashed before writing its report is not an error of takt's: the
            // exit status already says the gate failed.
            if let Some(xml) = crate::inside::read_text(&checkout.dir, report)
                && let Ok(cases) = parse_junit(&xml)
            {
                format = Some("junit".to_owned());
                tests.extend(cases);
            }
        }
        if format.is_none()
            && let Some(parsed) = parse_output(&stdout, &stderr)
        {
            format = Some(parsed.format.to_owned());
            tests = parsed.tests;
        }
        let stdout_hash = self
            .evidence
            .put(executed.stdout)
            .await
            .map_err(VerifyError::Evidence)?;
        let stderr_hash = self
            .evidence
            .put(executed.stderr)
            .await
            .map_err(VerifyError::Evidence)?;
        Ok(GateRun {
            gate: gate.name.clone(),
            command: gate.run.clone(),
            commit: checkout.commit.clone(),
            tree: checkout.tree.clone(),
            environment,
            exit_code: executed.exit_code,
            timed_out: executed.timed_out,
            duration_ms: u64::try_from(executed.duration.as_millis()).unwrap_or(u64::MAX),
            stdout_hash,
            stderr_hash,
            format,
            tests,
        })
    }

    /// One gate on the change: the first run, flaky re-runs, then the baseline for whatever
    /// still fails. `base` makes the base checkout on demand (most changes never need it).
    pub(crate) async fn judge_gate(
        &self,
        gate: &GateSpec,
        change: &Checkout,
        base: &mut BaseCheckout<'_>,
        policy: GatePolicy,
        run_root: &Path,
    ) -> Result<GateOutcome, VerifyError> {
        let first = self
            .run_once(gate, change, run_root.join(format!("{}-1", gate.name)))
            .await?;
        let mut outcome = GateOutcome {
            gate: gate.name.clone(),
            source: gate.source,
            required: gate.required,
            status: GateStatus::Passed,
            new_failures: Vec::new(),
            preexisting_failures: Vec::new(),
            flaky: Vec::new(),
            runs: vec![first],
            baseline: None,
        };
        if outcome.runs[0].passed() {
            return Ok(outcome);
        }
        let mut failing: BTreeSet<String> = failures(&outcome.runs[0]);
        for attempt in 0..policy.flaky_reruns {
            let rerun = self
                .run_once(
                    gate,
                    change,
                    run_root.join(format!("{}-{}", gate.name, attempt + 2)),
                )
                .await?;
            let passed = rerun.passed();
            let still: BTreeSet<String> = if passed {
                BTreeSet::new()
            } else {
                failures(&rerun)
            };
            // A test that failed and then passed flipped; only tests failing every time count.
            outcome.flaky.extend(
                failing
                    .difference(&still)
                    // The gate-level marker is not a test name to report as flaky unless
                    // the whole gate flipped.
                    .filter(|name| **name != gate.name || passed)
                    .cloned(),
            );
            failing = failing.intersection(&still).cloned().collect();
            outcome.runs.push(rerun);
            if passed || failing.is_empty() {
                break;
            }
        }
        outcome.flaky.sort();
        outcome.flaky.dedup();
        let last = outcome.runs.last().is_some_and(GateRun::passed);
        if last || failing.is_empty() {
            outcome.status = GateStatus::Flaky;
            info!(gate = %gate.name, flaky = ?outcome.flaky, "gate flipped on a re-run");
            return Ok(outcome);
        }
        if policy.baseline
            && let Some(baseline) = self.baseline(gate, base, run_root).await?
        {
            let before = if baseline.passed() {
                BTreeSet::new()
            } else {
                failures(&baseline)
            };
            outcome.preexisting_failures = failing.intersection(&before).cloned().collect();
            outcome.new_failures = failing.difference(&before).cloned().collect();
            outcome.baseline = Some(baseline);
        } else {
            outcome.new_failures = failing.into_iter().collect();
        }
        outcome.status = if outcome.new_failures.is_empty() {
            GateStatus::PreExisting
        } else {
            GateStatus::Failed
        };
        Ok(outcome)
    }

    /// The gate's run on the base commit: from the cache when this base was seen with this
    /// exact gate, else run now and cached.
    async fn baseline(
        &self,
        gate: &GateSpec,
        base: &mut BaseCheckout<'_>,
        run_root: &Path,
    ) -> Result<Option<GateRun>, VerifyError> {
        let cache = self.baseline_path(&base.sha, gate);
        if let Ok(bytes) = fs_err::tokio::read(&cache).await
            && let Ok(run) = serde_json::from_slice::<GateRun>(&bytes)
        {
            return Ok(Some(run));
        }
        let checkout = base.get(self).await?;
        let run = self
            .run_once(gate, checkout, run_root.join(format!("{}-base", gate.name)))
            .await?;
        self.write_baseline(&cache, &run).await?;
        Ok(Some(run))
    }

    /// Keeps `run`, a run of `gate` on the base commit `base_sha` made for another reason
    /// (building a warm cache), as its baseline. Best effort: a later failure runs it again.
    pub(crate) async fn store_baseline(&self, base_sha: &str, gate: &GateSpec, run: &GateRun) {
        let cache = self.baseline_path(base_sha, gate);
        if let Err(error) = self.write_baseline(&cache, run).await {
            tracing::warn!(%error, "could not keep a base run as its baseline");
        }
    }

    async fn write_baseline(&self, cache: &Path, run: &GateRun) -> Result<(), VerifyError> {
        if let Some(parent) = cache.parent() {
            fs_err::tokio::create_dir_all(parent)
                .await
                .map_err(VerifyError::io("creating", parent))?;
        }
        let json = serde_json::to_vec_pretty(run).unwrap_or_default();
        let tmp = cache.with_extension(format!("tmp-{}", std::process::id()));
        fs_err::tokio::write(&tmp, json)
            .await
            .map_err(VerifyError::io("writing", &tmp))?;
        fs_err::tokio::rename(&tmp, cache)
            .await
            .map_err(VerifyError::io("storing", cache))?;
        Ok(())
    }

    fn baseline_path(&self, base_sha: &str, gate: &GateSpec) -> PathBuf {
        // Everything that changes what the gate does is in the key, so an edited gate is
        // never judged against an old baseline.
        let mut identity = format!("{}\0{}\0", gate.run, gate.timeout_ms);
        for (name, value) in &gate.env {
            identity.push_str(&format!("{name}={value}\0"));
        }
        if let Some(hidden) = &gate.hidden_files {
            identity.push_str(&hidden.display().to_string());
        }
        identity.push_str(&gate.junit.join("\0"));
        let key = crate::evidence::sha256_hex(identity.as_bytes());
        self.root.join("baselines").join(base_sha).join(format!(
            "{}-{}.json",
            sanitize(&gate.name),
            &key[..16]
        ))
    }
}

/// The base commit's checkout, made the first time a baseline is needed.
pub(crate) struct BaseCheckout<'a> {
    pub sha: String,
    pub dir: PathBuf,
    pub hidden: &'a [PathBuf],
    made: Option<Checkout>,
}

impl<'a> BaseCheckout<'a> {
    pub fn new(sha: String, dir: PathBuf, hidden: &'a [PathBuf]) -> Self {
        BaseCheckout {
            sha,
            dir,
            hidden,
            made: None,
        }
    }

    async fn get(&mut self, verifier: &Verifier) -> Result<&Checkout, VerifyError> {
        let checkout = match self.made.take() {
            Some(checkout) => checkout,
            None => {
                let mut checkout = verifier.checkout(&self.sha, &self.dir, self.hidden).await?;
                checkout.build_cache = "cold: a baseline run on the base commit".to_owned();
                checkout
            }
        };
        Ok(self.made.insert(checkout))
    }
}

/// The names a failing run failed with: its failed tests, or the gate itself when the output
/// named none (a compile error, a lint failure).
fn failures(run: &GateRun) -> BTreeSet<String> {
    let named: BTreeSet<String> = run.failed_tests().into_iter().collect();
    if named.is_empty() {
        BTreeSet::from([run.gate.clone()])
    } else {
        named
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
