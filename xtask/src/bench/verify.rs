//! Verification overhead: a sample Rust crate's change verified by takt (clean checkout, the
//! detected cargo gates in the gate sandbox, output stored and parsed, diff read) against the
//! same gate commands run bare on a plain checkout. The target (issue 6) is an overhead under
//! 5 % of the gate time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use takt_verify::{MemoryEvidence, Verifier, VerifyJob, VerifySettings};
use takt_workspace::{Hooks, RepoSource, WorkspaceManager, WorkspaceSettings};

use super::{Dist, Machine, Section, ms, table, verdict};

const REPETITIONS: usize = 5;

const LIB: &str = "//! A small crate to verify.\n\n\
pub fn add(a: i64, b: i64) -> i64 {\n    a + b\n}\n\n\
pub fn mul(a: i64, b: i64) -> i64 {\n    a * b\n}\n\n\
#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn adds() {\n        assert_eq!(add(2, 3), 5);\n    }\n\n    \
#[test]\n    fn multiplies() {\n        assert_eq!(mul(2, 3), 6);\n    }\n}\n";

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("git {args:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A crate on `main` and a change (a new function and its test) on `change`.
fn sample_crate(dir: &Path) -> Result<String> {
    fs_err::create_dir_all(dir.join("src"))?;
    fs_err::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"sample\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
    )?;
    fs_err::write(dir.join("src/lib.rs"), LIB)?;
    fs_err::write(dir.join(".gitignore"), "target/\n")?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "sample crate"])?;
    git(dir, &["checkout", "-q", "-b", "change"])?;
    let changed = LIB.replace(
        "#[cfg(test)]",
        "pub fn sub(a: i64, b: i64) -> i64 {\n    a - b\n}\n\n#[cfg(test)]",
    );
    let changed = changed.replace(
        "    #[test]\n    fn multiplies",
        "    #[test]\n    fn subtracts() {\n        assert_eq!(sub(3, 2), 1);\n    }\n\n    #[test]\n    fn multiplies",
    );
    fs_err::write(dir.join("src/lib.rs"), changed)?;
    git(dir, &["commit", "-q", "-am", "add sub"])?;
    let sha = git(dir, &["rev-parse", "HEAD"])?;
    git(dir, &["checkout", "-q", "main"])?;
    Ok(sha)
}

/// The detected gates' commands run with `sh -c` in a fresh plain checkout, one after another.
fn bare_gates(source: &Path, commit: &str, scratch: &Path, commands: &[String]) -> Result<f64> {
    let _ = fs_err::remove_dir_all(scratch);
    git(
        source,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            &scratch.display().to_string(),
            commit,
        ],
    )?;
    let started = Instant::now();
    for command in commands {
        let status = Command::new("sh")
            .args(["-c", command])
            .current_dir(scratch)
            .env("CI", "true")
            .env("CARGO_TERM_COLOR", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "`{command}` failed bare");
    }
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    git(
        source,
        &[
            "worktree",
            "remove",
            "--force",
            &scratch.display().to_string(),
        ],
    )?;
    Ok(elapsed)
}

pub fn run(root: &Path, machine: &Machine) -> Result<Section> {
    let helper = super::release_binary(root, "takt");
    anyhow::ensure!(
        helper.is_file(),
        "{} is missing; build it first with `cargo build --release -p takt-cli`",
        helper.display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::Builder::new()
        .prefix("takt-bench-verify-")
        .tempdir()?;
    let source = dir.path().join("source");
    let commit = sample_crate(&source)?;
    let manager = Arc::new(WorkspaceManager::new(WorkspaceSettings {
        root: dir.path().join("ws"),
        mirror_dir: dir.path().join("state").join("mirror.git"),
        source: RepoSource::Path(source.clone()),
        base_branch: Some("main".into()),
        branch_prefix: "takt/".into(),
        hooks: Hooks::default(),
        hook_timeout: Duration::from_secs(60),
        overlay: None,
    })?);
    runtime.block_on(manager.sync_mirror())?;
    // The change lives in the source on `change`; the mirror fetches every branch.
    let host = takt_sandbox::probe(&helper, takt_sandbox::user::DEFAULT_AGENT_USER);
    // As the daemon builds it for gates: the agents' confinement with no network at all.
    let policy = takt_sandbox::Policy {
        mode: takt_sandbox::Mode::Auto,
        network: takt_sandbox::Network::None,
        ..takt_sandbox::Policy::default()
    };
    let sandbox = takt_sandbox::Sandbox::new(policy, &host, helper, "bench-verify")?;
    let mechanism = sandbox.describe();
    let verifier = Verifier::new(
        manager,
        Arc::new(sandbox),
        dir.path().join("state").join("verify"),
        Arc::new(MemoryEvidence::default()),
    );
    let job = VerifyJob {
        task_id: "bench".into(),
        identifier: "BENCH-1".into(),
        title: "Add sub".into(),
        description: String::new(),
        commit: commit.clone(),
        base: "refs/remotes/origin/main".into(),
        round: 1,
        gates: Vec::new(),
        settings: VerifySettings {
            flaky_reruns: 0,
            ..VerifySettings::default()
        },
        review: None,
    };

    // One verification first, not counted: it asks each tool for its version once per daemon
    // and warms the page cache for both ways alike.
    let warmup = runtime.block_on(verifier.verify(&job));
    anyhow::ensure!(warmup.error.is_none(), "warm-up failed: {warmup:?}");
    let mut rows = Vec::new();
    let (mut takts, mut bares, mut insides) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 1..=REPETITIONS {
        let started = Instant::now();
        let report = runtime.block_on(verifier.verify(&job));
        let takt_ms = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            report.error.is_none() && report.gates_green(),
            "verification of the sample change failed: {report:?}"
        );
        let commands: Vec<String> = report
            .gates
            .iter()
            .filter_map(|gate| gate.runs.first().map(|run| run.command.clone()))
            .collect();
        let gates_ms: f64 = report
            .gates
            .iter()
            .flat_map(|gate| &gate.runs)
            .map(|run| run.duration_ms as f64)
            .sum();
        let bare_ms = bare_gates(&source, &commit, &dir.path().join("bare"), &commands)?;
        println!(
            "  rep {rep}: takt {takt_ms:.0} ms (gates inside the sandbox {gates_ms:.0} ms), bare gates {bare_ms:.0} ms"
        );
        rows.push(vec![
            rep.to_string(),
            commands.join(", "),
            ms(bare_ms),
            ms(gates_ms),
            ms(takt_ms),
            format!("{:+.1} %", (takt_ms - bare_ms) / bare_ms * 100.0),
        ]);
        takts.push(takt_ms);
        bares.push(bare_ms);
        insides.push(gates_ms);
    }
    let median = |values: &[f64]| Dist::of(values).map_or(0.0, |dist| dist.p50);
    let (takt_p50, bare_p50, inside_p50) = (median(&takts), median(&bares), median(&insides));
    let overhead = (takt_p50 - bare_p50) / bare_p50 * 100.0;
    let outside_gates = (takt_p50 - inside_p50) / inside_p50 * 100.0;
    let mut markdown = format!(
        "`cargo run --release -p xtask -- bench verify` verifies a change to a small Rust crate \
         (one function and its test) {REPETITIONS} times with takt's verifier — clean checkout \
         from the mirror, the detected gates (`cargo fmt --check`, `cargo clippy`, `cargo build`, \
         `cargo test`, cold each time) in the gate sandbox ({mechanism}), output stored and \
         parsed, the diff read for tamper and secret flags — and runs the same gate commands \
         bare, with `sh -c` in a plain worktree, on {} CPUs.\n\n",
        machine.cpus
    );
    markdown.push_str(&table(
        &[
            "rep",
            "gates",
            "bare gates ms",
            "gates in takt ms",
            "takt total ms",
            "takt vs bare",
        ],
        &rows,
    ));
    markdown.push_str(&format!(
        "\nMedians: bare gates {} ms, the same gates inside takt's gate sandbox {} ms, the whole \
         verification {} ms. Work outside the gate commands (checkout, diff, flags, parsing, \
         storing output): {outside_gates:.1} % of gate time. Overhead against bare gates with \
         the sandbox counted: {overhead:.1} %. Target: verification overhead (checkout, \
         sandbox, parsing, journaling) under 5 % of gate time — {}.\n",
        ms(bare_p50),
        ms(inside_p50),
        ms(takt_p50),
        verdict(overhead < 5.0)
    ));
    markdown.push_str(
        "\nThe sample crate's gates take about a second, so fixed costs weigh heavily: four \
         sandbox launches (~25 ms each, section 5), the checkout and three `git diff`s, and \
         compiling as the agent user inside bubblewrap with seccomp and Landlock. On this \
         shared VM single runs of the same cold `cargo` commands vary by ±30 %, so compare \
         medians. The one-time cost of asking each tool for its version is paid by a warm-up \
         run and not counted; removing the checkout (a `target/` directory) happens in the \
         background after the report.\n",
    );
    Ok(Section {
        name: "verify",
        markdown,
    })
}
