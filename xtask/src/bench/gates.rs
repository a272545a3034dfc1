//! Warm gates (issue 4): a one-line change to a small Rust workspace, gate `cargo test`,
//! verified by takt with `verify.warm_cache` (the base's cache already made), built
//! incrementally in place (the same command run again in a plain checkout after a one-line
//! edit), and verified by takt cold (a clean build, as without the cache). Targets: warm
//! within 1.5x of in place; cold/warm reported. Also the cost of copying the cache, the
//! fallback takt does not take without overlays (see the section's text).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use takt_protocol::{GateSource, VerificationReport};
use takt_verify::{GateSpec, MemoryEvidence, Speed, Verifier, VerifyJob, VerifySettings};
use takt_workspace::{Hooks, RepoSource, WorkspaceManager, WorkspaceSettings};

use super::{Dist, Machine, Section, git, ms, table, verdict};

pub(super) const REPETITIONS: usize = 7;

/// Functions in the workspace's unchanged library crate (each with a test).
pub(super) const FUNCTIONS: usize = 150;

pub(super) const GATE: &str = "cargo test --offline";

/// The line the change edits, and its two edited forms (alternated by the in-place runs so
/// each is a one-line change from the one before).
pub(super) const LINE: &str = "    numbers::f0(a) + numbers::f1(a)";
pub(super) const EDITS: [&str; 2] = [
    "    numbers::f0(a) + numbers::f1(a) + 1",
    "    numbers::f0(a) + numbers::f1(a) + 2",
];

fn numbers_lib() -> String {
    let mut lib = String::from("//! The unchanged library of the sample workspace.\n\n");
    for i in 0..FUNCTIONS {
        lib.push_str(&format!(
            "pub fn f{i}(x: i64) -> i64 {{\n    match x % 3 {{\n        0 => x * {i} + 1,\n        \
             1 => x.wrapping_sub({i}),\n        _ => (x ^ {i}).rotate_left(3),\n    }}\n}}\n\n"
        ));
    }
    lib.push_str("#[cfg(test)]\nmod tests {\n    use super::*;\n");
    for i in 0..FUNCTIONS {
        lib.push_str(&format!(
            "\n    #[test]\n    fn f{i}_is_deterministic() {{\n        assert_eq!(f{i}(7), f{i}(7));\n    }}\n"
        ));
    }
    lib.push_str("}\n");
    lib
}

fn app_lib(line: &str) -> String {
    format!(
        "//! The crate the change edits.\n\npub fn combined(a: i64) -> i64 {{\n{line}\n}}\n\n\
         #[cfg(test)]\nmod tests {{\n    #[test]\n    fn combines() {{\n        \
         assert_eq!(super::combined(3), super::combined(3));\n    }}\n}}\n"
    )
}

/// The workspace on `main` and the one-line change on `change`; returns the change's sha.
pub(super) fn sample_workspace(dir: &Path) -> Result<String> {
    let files = [
        (
            "Cargo.toml",
            "[workspace]\nmembers = [\"numbers\", \"app\"]\nresolver = \"2\"\n".to_owned(),
        ),
        (".gitignore", "target/\n".to_owned()),
        (
            "numbers/Cargo.toml",
            "[package]\nname = \"numbers\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".to_owned(),
        ),
        ("numbers/src/lib.rs", numbers_lib()),
        (
            "app/Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nnumbers = { path = \"../numbers\" }\n"
                .to_owned(),
        ),
        ("app/src/lib.rs", app_lib(LINE)),
    ];
    for (path, content) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(path, content)?;
    }
    git(dir, &["init", "-q", "-b", "main"])?;
    // The lock file belongs to the repository, as in any workspace with a binary or CI.
    bare(dir, "cargo generate-lockfile --offline")?;
    git(dir, &["add", "-A"])?;
    git(dir, &["commit", "-q", "-m", "sample workspace"])?;
    git(dir, &["checkout", "-q", "-b", "change"])?;
    fs_err::write(dir.join("app/src/lib.rs"), app_lib(EDITS[0]))?;
    git(dir, &["commit", "-q", "-am", "a one-line change"])?;
    let sha = git(dir, &["rev-parse", "HEAD"])?.trim().to_owned();
    git(dir, &["checkout", "-q", "main"])?;
    Ok(sha)
}

/// `sh -c command` in `dir` as a developer would run it (takt's own build settings removed),
/// in milliseconds.
pub(super) fn bare(dir: &Path, command: &str) -> Result<f64> {
    let started = Instant::now();
    let status = Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_TERM_COLOR", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(status.success(), "`{command}` failed in {}", dir.display());
    Ok(elapsed)
}

/// A verifier with its own state under `dir`; gates in the daemon's gate sandbox, or
/// unconfined (`sandbox.mode: none`) when `confined` is false.
fn make_verifier(
    dir: &Path,
    source: &Path,
    helper: &Path,
    confined: bool,
) -> Result<(Verifier, String)> {
    let manager = Arc::new(WorkspaceManager::new(WorkspaceSettings {
        root: dir.join("ws"),
        mirror_dir: dir.join("state").join("mirror.git"),
        source: RepoSource::Path(source.to_path_buf()),
        base_branch: Some("main".into()),
        branch_prefix: "takt/".into(),
        hooks: Hooks::default(),
        hook_timeout: Duration::from_secs(60),
        overlay: None,
    })?);
    let host = takt_sandbox::probe(helper, takt_sandbox::user::DEFAULT_AGENT_USER);
    // As the daemon builds it for gates: the agents' confinement with no network at all.
    let policy = takt_sandbox::Policy {
        mode: takt_sandbox::Mode::Auto,
        network: takt_sandbox::Network::None,
        ..takt_sandbox::Policy::default()
    };
    let sandbox = if confined {
        takt_sandbox::Sandbox::new(policy, &host, helper.to_path_buf(), "bench-gates")?
    } else {
        takt_sandbox::Sandbox::unconfined(policy)
    };
    let mechanism = sandbox.describe();
    Ok((
        Verifier::new(
            manager,
            Arc::new(sandbox),
            dir.join("state").join("verify"),
            Arc::new(MemoryEvidence::default()),
        ),
        mechanism,
    ))
}

fn job(commit: &str, warm: bool) -> VerifyJob {
    VerifyJob {
        task_id: "bench".into(),
        identifier: "BENCH-1".into(),
        title: "A one-line change".into(),
        description: String::new(),
        commit: commit.into(),
        base: "refs/remotes/origin/main".into(),
        round: 1,
        gates: vec![GateSpec {
            name: "cargo-test".into(),
            run: GATE.into(),
            timeout_ms: 600_000,
            required: true,
            env: Default::default(),
            source: GateSource::Configured,
            hidden_files: None,
            junit: Vec::new(),
            speed: Speed::Test,
        }],
        settings: VerifySettings {
            gates_auto: false,
            flaky_reruns: 0,
            warm_cache: warm,
            ..VerifySettings::default()
        },
        review: None,
    }
}

/// One verification: (whole verification ms, the gate's run ms, its `build_cache` note).
fn verify_once(
    runtime: &tokio::runtime::Runtime,
    verifier: &Verifier,
    job: &VerifyJob,
) -> Result<(f64, f64, String)> {
    let started = Instant::now();
    let report: VerificationReport = runtime.block_on(verifier.verify(job));
    let total = started.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        report.error.is_none() && report.gates_green(),
        "verification of the sample change failed: {report:?}"
    );
    let run = report
        .gates
        .first()
        .and_then(|gate| gate.runs.first())
        .context("the verification ran no gate")?;
    let note = run
        .environment
        .get("build_cache")
        .cloned()
        .unwrap_or_default();
    Ok((total, run.duration_ms as f64, note))
}

/// Files and bytes under `dir`.
fn size_of(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) => {
                    files += 1;
                    bytes += meta.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

/// The frozen cache's `target/` (the bench's verifier has exactly one).
fn frozen_cache(state: &Path) -> Option<PathBuf> {
    fs_err::read_dir(state.join("verify/warm/caches"))
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("target"))
        .find(|path| path.is_dir())
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
        .prefix("takt-bench-gates-")
        .tempdir()?;
    let source = dir.path().join("source");
    let commit = sample_workspace(&source)?;
    let (verifier, mechanism) = make_verifier(dir.path(), &source, &helper, true)?;
    runtime.block_on(verifier.workspaces().sync_mirror())?;
    let state = dir.path().join("state");

    // The first verification against the base builds the cache (the gate run on the base
    // commit, then the change's run on top): reported, not counted. Likewise for the
    // unconfined verifier (its own state) and the in-place checkout's first build.
    let warm_job = job(&commit, true);
    let cold_job = job(&commit, false);
    let (first_ms, _, first_note) = verify_once(&runtime, &verifier, &warm_job)?;
    anyhow::ensure!(
        first_note.starts_with("warm: "),
        "the first verification did not run warm: {first_note}"
    );
    println!("  first warm verification (cache built from the base): {first_ms:.0} ms");
    let (unconfined, _) = make_verifier(&dir.path().join("unconfined"), &source, &helper, false)?;
    runtime.block_on(unconfined.workspaces().sync_mirror())?;
    verify_once(&runtime, &unconfined, &warm_job)?;
    let in_place = dir.path().join("in-place");
    git(
        &source,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            &in_place.display().to_string(),
            "main",
        ],
    )?;
    let in_place_first = bare(&in_place, GATE)?;

    // The ways take turns within each rep, so a change in the machine's load (it is shared)
    // falls on all of them alike.
    let (mut warm_totals, mut warm_gates) = (Vec::new(), Vec::new());
    let (mut unconfined_totals, mut unconfined_gates) = (Vec::new(), Vec::new());
    let mut in_place_runs = Vec::new();
    let (mut cold_totals, mut cold_gates) = (Vec::new(), Vec::new());
    let mut note = String::new();
    for rep in 1..=REPETITIONS {
        // (a) warm, the cache reused.
        let (total, gate, build_cache) = verify_once(&runtime, &verifier, &warm_job)?;
        anyhow::ensure!(
            build_cache.starts_with("warm: ") && build_cache.contains("reused"),
            "rep {rep} did not reuse the cache: {build_cache}"
        );
        warm_totals.push(total);
        warm_gates.push(gate);
        note = build_cache;
        // (a') the same with the gate unconfined: the sandbox's share of the difference.
        let (unconfined_total, unconfined_gate, build_cache) =
            verify_once(&runtime, &unconfined, &warm_job)?;
        anyhow::ensure!(build_cache.contains("reused"), "{build_cache}");
        unconfined_totals.push(unconfined_total);
        unconfined_gates.push(unconfined_gate);
        // (b) in place: the line edited to its other form, the same command again.
        fs_err::write(
            in_place.join("app/src/lib.rs"),
            app_lib(EDITS[(rep + 1) % 2]),
        )?;
        let in_place_ms = bare(&in_place, GATE)?;
        in_place_runs.push(in_place_ms);
        // (c) cold: the cache off, a clean build.
        let (cold_total, cold_gate, build_cache) = verify_once(&runtime, &verifier, &cold_job)?;
        anyhow::ensure!(build_cache.starts_with("cold: "), "{build_cache}");
        cold_totals.push(cold_total);
        cold_gates.push(cold_gate);
        println!(
            "  rep {rep}: warm {total:.0} ms (gate {gate:.0}), unconfined warm \
             {unconfined_total:.0} ms (gate {unconfined_gate:.0}), in place {in_place_ms:.0} ms, \
             cold {cold_total:.0} ms (gate {cold_gate:.0})"
        );
    }

    // (d) the fallback not taken: copying the frozen cache into a checkout (and removing it).
    let cache = frozen_cache(&state).context("no frozen cache after warm verifications")?;
    let (files, bytes) = size_of(&cache);
    let mut copies = Vec::new();
    let mut removals = Vec::new();
    for _ in 0..REPETITIONS {
        let copy = dir.path().join("copy");
        let started = Instant::now();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&cache)
            .arg(&copy)
            .status()?;
        anyhow::ensure!(status.success(), "cp -a of the cache failed");
        copies.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        fs_err::remove_dir_all(&copy)?;
        removals.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    let median = |values: &[f64]| Dist::of(values).map_or(0.0, |dist| dist.p50);
    let (warm_p50, warm_gate_p50) = (median(&warm_totals), median(&warm_gates));
    let in_place_p50 = median(&in_place_runs);
    let (unconfined_p50, unconfined_gate_p50) =
        (median(&unconfined_totals), median(&unconfined_gates));
    let (cold_p50, cold_gate_p50) = (median(&cold_totals), median(&cold_gates));
    let (copy_p50, removal_p50) = (median(&copies), median(&removals));
    let warm_vs_in_place = warm_p50 / in_place_p50;
    let cold_vs_warm = cold_p50 / warm_p50;
    println!(
        "  medians: warm {warm_p50:.0} ms (gate {warm_gate_p50:.0}), unconfined {unconfined_p50:.0} ms, in place {in_place_p50:.0} ms, \
         cold {cold_p50:.0} ms (gate {cold_gate_p50:.0}); copy {copy_p50:.0} ms + removal {removal_p50:.0} ms"
    );

    let rows = vec![
        vec![
            "(a) takt, warm (`verify.warm_cache: true`, cache reused)".to_owned(),
            ms(warm_p50),
            ms(warm_gate_p50),
        ],
        vec![
            "(a′) takt, warm, the gate unconfined (`sandbox.mode: none`)".to_owned(),
            ms(unconfined_p50),
            ms(unconfined_gate_p50),
        ],
        vec![
            "(b) in place: `cargo test` again after the edit, plain checkout".to_owned(),
            ms(in_place_p50),
            ms(in_place_p50),
        ],
        vec![
            "(c) takt, cold (`verify.warm_cache: false`)".to_owned(),
            ms(cold_p50),
            ms(cold_gate_p50),
        ],
    ];
    let mut markdown = format!("{}\n\n", machine.measured_line());
    markdown.push_str(&format!(
        "`cargo run --release -p xtask -- bench gates` verifies a one-line change to a small Rust \
         workspace (a library of {FUNCTIONS} functions with a test each, unchanged, and the crate \
         the change edits, which depends on it) with one gate, `{GATE}`, in the gate sandbox \
         ({mechanism}), {REPETITIONS} times each way (the ways take turns within each round), on \
         {} CPUs:\n\n\
         - **(a) warm**: takt with `verify.warm_cache: true`. The first verification against \
         the base built the cache ({} ms: the gate on the base commit, then on the change; not \
         counted); each counted one checks out the change, mounts the base's frozen `target/` \
         under an overlay, and runs the gate at the fixed path. Evidence: `{note}`. (a′) is \
         the same without the sandbox, to tell the sandbox's cost from the cache's.\n\
         - **(b) in place**: the same command in a plain checkout of the base, built once \
         ({} ms), run again after each one-line edit — a developer's incremental build.\n\
         - **(c) cold**: takt with `verify.warm_cache: false`, a clean build each time.\n\n",
        machine.cpus,
        ms(first_ms),
        ms(in_place_first),
    ));
    markdown.push_str(&table(
        &[
            "way (median of runs)",
            "whole verification ms",
            "gate command ms",
        ],
        &rows,
    ));
    markdown.push_str(&format!(
        "\nRatios of the medians: warm / in place **{warm_vs_in_place:.2}x** (target ≤ 1.5x — {}); \
         cold / warm **{cold_vs_warm:.2}x**; unconfined warm / in place {:.2}x. The warm \
         verification's whole time (checkout, diff, file times, overlay, sandbox, parsing) is \
         compared with the bare incremental command; most of what it adds is the gate \
         sandbox's launch and confinement (section 5), the same for cold gates.\n",
        verdict(warm_vs_in_place <= 1.5),
        unconfined_p50 / in_place_p50,
    ));
    markdown.push_str(&format!(
        "\nWithout overlays (takt not root) gates run cold, not from a copy: copying this cache \
         ({files} files, {:.1} MiB, `cp -a`) took {} ms and removing the copy {} ms (medians) — \
         cheap for this workspace, but it grows with `target/` (gigabytes in real workspaces) and, \
         without a private mount namespace, the copy cannot sit at the fixed path Cargo's \
         outputs need (a reused crate keeps the path it was built at compiled in), so it would \
         also be wrong, not just slower.\n",
        bytes as f64 / 1024.0 / 1024.0,
        ms(copy_p50),
        ms(removal_p50),
    ));
    let _ = git(
        &source,
        &[
            "worktree",
            "remove",
            "--force",
            &in_place.display().to_string(),
        ],
    );
    Ok(Section {
        name: "gates",
        markdown,
    })
}
