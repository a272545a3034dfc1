//! Warm build caches (`verify.warm_cache`; root only: overlays and private mount namespaces):
//! a change's gates start from the base commit's frozen `target/`, never write it, cannot
//! poison it for later changes, and Cargo rebuilds only what the change touched.
//!
//! The first tests use a stand-in for a build tool (a script that reuses `target/out` when it
//! finds it and writes it again), so what a gate saw is in its output; the last one runs real
//! `cargo test`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use takt_protocol::{GateRun, GateStatus, VerificationReport};
use takt_test_support::{UnmountBelow, git, mounts_below};
use takt_verify::{GateSpec, VerifySettings};

use super::runner::{Bench, gate, runs, settings};

/// The stand-in build: says whether it found an earlier output, then builds its own (a write
/// into `target/`, as every build does).
const BUILD: &str = "mkdir -p target\n\
if [ -e target/out ]; then echo \"reused: $(cat target/out)\"; else echo fresh; fi\n\
cat src.txt > target/out\n";

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A bench whose repository has a `Cargo.toml` (what makes takt keep `target/`), or `None`
/// (skipped) where overlays cannot be mounted; in CI as root they must work.
fn warm_bench(files: &[(&str, &str)]) -> Option<(Bench, UnmountBelow)> {
    let bench = Bench::new();
    let unmount = UnmountBelow(bench.state.path().to_path_buf());
    let probe = bench.state.path().join("probe");
    std::fs::create_dir_all(&probe).unwrap();
    if let Err(error) = takt_workspace::overlays_work(&probe) {
        assert!(
            std::env::var_os("CI").is_none() || !is_root(),
            "overlays must work as root in CI: {error}"
        );
        eprintln!("skipped: overlays do not work here ({error})");
        return None;
    }
    for (path, content) in files {
        takt_test_support::write(&bench.repo.path().join(path), content);
    }
    git(bench.repo.path(), &["add", "-A"]);
    git(bench.repo.path(), &["commit", "-q", "-m", "the base"]);
    Some((bench, unmount))
}

/// A Cargo repository (so takt keeps `target/`) whose build is the stand-in [`BUILD`].
fn stand_in_bench() -> Option<(Bench, UnmountBelow)> {
    warm_bench(&[
        ("Cargo.toml", "[workspace]\n"),
        ("build.sh", BUILD),
        ("src.txt", "base\n"),
    ])
}

/// The stand-in build as a gate that also counts its runs in `log`.
fn logged_build(log: &Path) -> GateSpec {
    gate(
        "build",
        &format!("echo run >> {}; sh build.sh", log.display()),
    )
}

fn warm() -> VerifySettings {
    VerifySettings {
        warm_cache: true,
        ..settings()
    }
}

fn build_cache(run: &GateRun) -> &str {
    run.environment
        .get("build_cache")
        .map(String::as_str)
        .unwrap_or("")
}

fn stdout(bench: &Bench, run: &GateRun) -> String {
    output(bench, &run.stdout_hash)
}

fn output(bench: &Bench, hash: &str) -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bytes = runtime
        .block_on(bench.verifier.evidence().get(hash))
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn only_run(report: &VerificationReport) -> &GateRun {
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(report.gates.len(), 1, "{report:#?}");
    &report.gates[0].runs[0]
}

/// The frozen caches' directories (`<key>/target`).
fn caches(bench: &Bench) -> Vec<PathBuf> {
    let dir = bench.state.path().join("verify/warm/caches");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path().join("target"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn stamp(path: &Path) -> (String, i64, i64) {
    let meta = std::fs::metadata(path).unwrap();
    (
        std::fs::read_to_string(path).unwrap(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

#[test]
fn a_second_change_against_the_same_base_runs_warm_and_never_writes_the_cache() {
    let Some((bench, _unmount)) = stand_in_bench() else {
        return;
    };
    let log = bench.log();
    let check = logged_build(&log);

    let first = bench.change("one", &[("src.txt", "one\n")]);
    let report = bench.verify(&first, vec![check.clone()], warm());
    let run = only_run(&report);
    assert_eq!(report.gates[0].status, GateStatus::Passed);
    assert!(
        build_cache(run).starts_with("warm: ") && build_cache(run).contains("built now"),
        "{}",
        build_cache(run)
    );
    assert_eq!(
        stdout(&bench, run).trim(),
        "reused: base",
        "the change's build started from the base's output"
    );
    assert_eq!(
        runs(&log),
        2,
        "the base's run (building the cache), then the change's"
    );
    let frozen = caches(&bench);
    assert_eq!(frozen.len(), 1);
    let out = frozen[0].join("out");
    let before = stamp(&out);
    assert_eq!(before.0, "base\n");
    assert!(
        mounts_below(bench.state.path()).is_empty(),
        "the cache is unmounted once the gates are done"
    );

    let second = bench.change("two", &[("src.txt", "two\n")]);
    let report = bench.verify(&second, vec![check], warm());
    let run = only_run(&report);
    assert!(
        build_cache(run).starts_with("warm: ") && build_cache(run).contains("reused"),
        "{}",
        build_cache(run)
    );
    assert_eq!(
        stdout(&bench, run).trim(),
        "reused: base",
        "the first change's build output never reached the second"
    );
    assert_eq!(runs(&log), 3, "the cache was reused, not built again");
    assert_eq!(caches(&bench), frozen);
    assert_eq!(
        stamp(&out),
        before,
        "the frozen output's content and mtime are untouched by gates that wrote target/out"
    );
}

#[test]
fn a_change_that_writes_into_the_cache_leaves_later_verifications_unaffected() {
    let Some((bench, _unmount)) = stand_in_bench() else {
        return;
    };
    let check = gate("build", "sh build.sh");
    // The change's build writes its poison into target/ and, finding the cache's real path
    // in the mount table, into the cache itself (possible here only because these gates run
    // unconfined, as root; a sandboxed gate cannot reach the cache's directory at all).
    let poison = format!(
        "{BUILD}echo POISON > target/out\n\
         for dir in $(grep -o 'lowerdir=[^,]*' /proc/self/mountinfo | cut -d= -f2); do\n\
           echo POISON > \"$dir/out\"; echo POISON > \"$dir/planted\"\n\
         done\n"
    );
    let poisoner = bench.change("poison", &[("build.sh", &poison)]);
    let report = bench.verify(&poisoner, vec![check.clone()], warm());
    assert!(build_cache(only_run(&report)).starts_with("warm: "));
    let frozen = caches(&bench);
    assert_eq!(frozen.len(), 1);
    assert_eq!(
        std::fs::read_to_string(frozen[0].join("out")).unwrap(),
        "POISON\n",
        "the attack did reach the cache's directory"
    );

    let honest = bench.change("honest", &[("src.txt", "honest\n")]);
    let report = bench.verify(&honest, vec![check.clone()], warm());
    let run = only_run(&report);
    assert_eq!(
        stdout(&bench, run).trim(),
        "reused: base",
        "the poisoned cache was never used"
    );
    assert!(
        build_cache(run).contains("rebuilt from the base commit"),
        "{}",
        build_cache(run)
    );
    let frozen = caches(&bench);
    assert_eq!(frozen.len(), 1);
    assert_eq!(
        std::fs::read_to_string(frozen[0].join("out")).unwrap(),
        "base\n"
    );
    assert!(!frozen[0].join("planted").exists());

    // And the rebuilt cache is used as it is from then on.
    let again = bench.change("again", &[("src.txt", "again\n")]);
    let report = bench.verify(&again, vec![check], warm());
    let run = only_run(&report);
    assert_eq!(stdout(&bench, run).trim(), "reused: base");
    assert!(build_cache(run).contains("reused"), "{}", build_cache(run));
}

#[test]
fn gates_run_cold_when_warm_cache_is_off_or_nothing_is_cached() {
    let Some((bench, _unmount)) = stand_in_bench() else {
        return;
    };
    let check = gate("build", "sh build.sh");
    let change = bench.change("one", &[("src.txt", "one\n")]);
    let report = bench.verify(&change, vec![check.clone()], settings());
    let run = only_run(&report);
    assert_eq!(report.gates[0].status, GateStatus::Passed);
    assert_eq!(build_cache(run), "cold: verify.warm_cache is off");
    assert_eq!(stdout(&bench, run).trim(), "fresh");
    assert!(caches(&bench).is_empty());

    // A repository takt keeps no cache for runs cold too, and says why.
    git(bench.repo.path(), &["rm", "-q", "Cargo.toml"]);
    git(
        bench.repo.path(),
        &["commit", "-q", "-m", "not a cargo project"],
    );
    let change = bench.change("two", &[("src.txt", "two\n")]);
    let report = bench.verify(&change, vec![check], warm());
    let run = only_run(&report);
    assert!(
        build_cache(run).starts_with("cold: no build cache is known"),
        "{}",
        build_cache(run)
    );
    assert_eq!(stdout(&bench, run).trim(), "fresh");
    assert!(caches(&bench).is_empty());
}

#[test]
fn a_base_whose_outputs_exceed_the_byte_limit_gets_no_cache_and_is_not_built_again() {
    let Some((bench, _unmount)) = stand_in_bench() else {
        return;
    };
    let log = bench.log();
    let check = logged_build(&log);
    let tiny = VerifySettings {
        warm_cache_max_bytes: 1024,
        ..warm()
    };
    let first = bench.change("one", &[("src.txt", "one\n")]);
    let report = bench.verify(&first, vec![check.clone()], tiny);
    let run = only_run(&report);
    assert_eq!(report.gates[0].status, GateStatus::Passed);
    assert!(
        build_cache(run).starts_with("cold: ")
            && build_cache(run).contains("more than verify.warm_cache_max_mb allows (1 KiB)"),
        "{}",
        build_cache(run)
    );
    assert_eq!(stdout(&bench, run).trim(), "fresh", "built cold");
    assert!(caches(&bench).is_empty(), "nothing kept");
    assert_eq!(runs(&log), 2, "the base's run, then the change's");

    let second = bench.change("two", &[("src.txt", "two\n")]);
    let report = bench.verify(&second, vec![check], tiny);
    let run = only_run(&report);
    assert!(
        build_cache(run).contains("failed earlier") && build_cache(run).contains("1 KiB"),
        "{}",
        build_cache(run)
    );
    assert_eq!(
        runs(&log),
        3,
        "the base is not built again for a cache it cannot keep"
    );
}

const WORKSPACE: &str = "[workspace]\nmembers = [\"numbers\", \"app\"]\nresolver = \"2\"\n";

/// Each crate's tests also check that the crate runs where it was compiled: a crate reused
/// from the cache would otherwise keep the base checkout's path compiled in.
fn krate(name: &str, deps: &str, body: &str) -> [(String, String); 2] {
    [
        (
            format!("{name}/Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\n{deps}"
            ),
        ),
        (
            format!("{name}/src/lib.rs"),
            format!(
                "{body}\n#[cfg(test)]\nmod tests {{\n    #[test]\n    fn runs_where_it_was_built() {{\n        \
                 assert_eq!(std::env::current_dir().unwrap(), \
                 std::path::Path::new(env!(\"CARGO_MANIFEST_DIR\")));\n    }}\n}}\n"
            ),
        ),
    ]
}

#[test]
fn a_one_line_change_rebuilds_only_the_crate_it_touched() {
    let numbers = krate(
        "numbers",
        "",
        "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n",
    );
    let app_body = "pub fn twice(a: i32) -> i32 {\n    numbers::add(a, a)\n}\n";
    let app = krate("app", "numbers = { path = \"../numbers\" }\n", app_body);
    let mut files: Vec<(&str, &str)> = vec![("Cargo.toml", WORKSPACE), (".gitignore", "target/\n")];
    files.extend(
        numbers
            .iter()
            .chain(&app)
            .map(|(p, c)| (p.as_str(), c.as_str())),
    );
    let Some((bench, _unmount)) = warm_bench(&files) else {
        return;
    };
    let mut test = gate("cargo-test", "cargo test -v --offline");
    test.timeout_ms = 300_000;
    let edited = app[1]
        .1
        .replace("numbers::add(a, a)", "numbers::add(a, a) + 0");
    let change = bench.change("one-line", &[("app/src/lib.rs", &edited)]);
    let report = bench.verify(&change, vec![test.clone()], warm());
    let run = only_run(&report);
    let stderr = output(&bench, &run.stderr_hash);
    assert_eq!(report.gates[0].status, GateStatus::Passed, "{stderr}");
    assert!(
        build_cache(run).starts_with("warm: "),
        "{}",
        build_cache(run)
    );
    assert!(stderr.contains("Fresh numbers"), "{stderr}");
    assert!(stderr.contains("Compiling app"), "{stderr}");
    assert!(!stderr.contains("Compiling numbers"), "{stderr}");

    // The next change to the same crate starts from the base's build again, not the first
    // change's.
    let edited = app[1]
        .1
        .replace("numbers::add(a, a)", "numbers::add(a, a) * 1");
    let change = bench.change("another", &[("app/src/lib.rs", &edited)]);
    let report = bench.verify(&change, vec![test], warm());
    let run = only_run(&report);
    let stderr = output(&bench, &run.stderr_hash);
    assert_eq!(report.gates[0].status, GateStatus::Passed, "{stderr}");
    assert!(build_cache(run).contains("reused"), "{}", build_cache(run));
    assert!(stderr.contains("Fresh numbers"), "{stderr}");
    assert!(stderr.contains("Compiling app"), "{stderr}");
    assert!(!stderr.contains("Compiling numbers"), "{stderr}");
}
