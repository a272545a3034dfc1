//! Gates found in the repository itself (Cargo.toml, package.json, pyproject.toml, go.mod, Maven,
//! Gradle, a Makefile), so a change is checked even when WORKFLOW.md configures no `gates:`.

use std::collections::BTreeMap;
use std::path::Path;

use takt_protocol::GateSource;

use crate::spec::{DEFAULT_GATE_TIMEOUT_MS, GateSpec, Speed};

/// npm's `npm init` placeholder: a test script that only fails.
const NPM_PLACEHOLDER_TEST: &str = "echo \"Error: no test specified\" && exit 1";

/// How deep `tests/` is searched for pytest files; deep enough for `tests/unit/api/`, shallow
/// enough that a huge fixture tree costs nothing.
const PYTEST_SEARCH_DEPTH: usize = 4;

/// The gates a checkout at `root` calls for, fastest first (checks, then builds, then tests; in
/// the order below within one speed). Everything detected is required.
///
/// Make targets are only used when no language-specific test gate was found: a Makefile's
/// `test` usually wraps `cargo test`/`npm test`/`pytest`, and running the suite twice doubles
/// the wait without checking more.
pub fn detect(root: &Path) -> Vec<GateSpec> {
    let mut gates = Vec::new();
    gates.extend(cargo_gates(root));
    gates.extend(node_gates(root));
    gates.extend(python_gates(root));
    gates.extend(go_gates(root));
    gates.extend(jvm_gates(root));
    if !gates.iter().any(|gate| gate.speed == Speed::Test) {
        gates.extend(make_gates(root));
    }
    // `sort_by_key` is stable: detection order is kept within a speed.
    gates.sort_by_key(|gate| gate.speed);
    gates
}

fn gate(name: impl Into<String>, run: impl Into<String>, speed: Speed) -> GateSpec {
    GateSpec {
        name: name.into(),
        run: run.into(),
        timeout_ms: DEFAULT_GATE_TIMEOUT_MS,
        required: true,
        env: BTreeMap::new(),
        source: GateSource::Detected,
        hidden_files: None,
        junit: Vec::new(),
        speed,
    }
}

/// The text of `name` in the checkout `root`, or `None` when it is missing, unreadable or a
/// link out of the checkout: detection only looks, it never fails a verification.
fn read_text(root: &Path, name: &str) -> Option<String> {
    crate::inside::read_text(root, name)
}

fn cargo_gates(root: &Path) -> Vec<GateSpec> {
    if !root.join("Cargo.toml").is_file() {
        return Vec::new();
    }
    vec![
        gate("cargo-fmt", "cargo fmt --all -- --check", Speed::Check),
        gate(
            "cargo-clippy",
            "cargo clippy --all-targets --offline -- -D warnings",
            Speed::Check,
        ),
        gate(
            "cargo-build",
            "cargo build --all-targets --offline",
            Speed::Build,
        ),
        gate(
            "cargo-test",
            "cargo test --offline --no-fail-fast",
            Speed::Test,
        ),
    ]
}

/// `lint`, `typecheck` and `test` scripts of package.json, run with the package manager whose
/// lockfile is present. A package.json that is not a JSON object yields nothing.
fn node_gates(root: &Path) -> Vec<GateSpec> {
    let Some(manifest) = read_text(root, "package.json")
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    else {
        return Vec::new();
    };
    let has_script = |name: &str| {
        manifest
            .get("scripts")
            .and_then(|scripts| scripts.get(name))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|script| {
                !script.trim().is_empty() && script.trim() != NPM_PLACEHOLDER_TEST
            })
    };
    let manager = if root.join("pnpm-lock.yaml").is_file() {
        "pnpm"
    } else if root.join("yarn.lock").is_file() {
        "yarn"
    } else {
        "npm"
    };
    let mut gates = Vec::new();
    if has_script("lint") {
        gates.push(gate(
            format!("{manager}-lint"),
            format!("{manager} run lint"),
            Speed::Check,
        ));
    }
    if has_script("typecheck") {
        gates.push(gate(
            format!("{manager}-typecheck"),
            format!("{manager} run typecheck"),
            Speed::Build,
        ));
    }
    if has_script("test") {
        gates.push(gate(
            format!("{manager}-test"),
            format!("{manager} test"),
            Speed::Test,
        ));
    }
    gates
}

fn python_gates(root: &Path) -> Vec<GateSpec> {
    let pyproject = read_text(root, "pyproject.toml").unwrap_or_default();
    let mut gates = Vec::new();
    let ruff_configured = has_table(&pyproject, "tool.ruff")
        || root.join("ruff.toml").is_file()
        || root.join(".ruff.toml").is_file();
    if ruff_configured {
        gates.push(gate("ruff", "ruff check .", Speed::Check));
    }
    if pytest_configured(root, &pyproject) {
        gates.push(gate(
            "pytest",
            "python3 -m pytest -q -rA -p no:cacheprovider",
            Speed::Test,
        ));
    }
    gates
}

/// Whether an ini or TOML text has the section `[name]` or, for TOML, a sub-table `[name.x]`.
fn has_table(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        line.trim_start()
            .strip_prefix('[')
            .and_then(|header| header.strip_prefix(name))
            .is_some_and(|after| after.starts_with(']') || after.starts_with('.'))
    })
}

/// pytest configuration (pyproject, pytest.ini, tox.ini, setup.cfg, a root conftest.py) or
/// test files pytest would collect by default in `tests/` or at the root.
fn pytest_configured(root: &Path, pyproject: &str) -> bool {
    let ini_section = |file: &str, section: &str| {
        read_text(root, file).is_some_and(|text| has_table(&text, section))
    };
    has_table(pyproject, "tool.pytest.ini_options")
        || root.join("pytest.ini").is_file()
        || root.join("conftest.py").is_file()
        || ini_section("setup.cfg", "tool:pytest")
        || ini_section("tox.ini", "pytest")
        || has_python_test_file(&root.join("tests"), PYTEST_SEARCH_DEPTH)
        || has_python_test_file(root, 0)
}

/// `test_*.py` or `*_test.py` (pytest's default `python_files`) in `directory`, or in its
/// subdirectories down to `depth` levels. Symbolic links are not followed.
fn has_python_test_file(directory: &Path, depth: usize) -> bool {
    let Ok(entries) = fs_err::read_dir(directory) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(file_type) = entry.file_type() else {
            return false;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if file_type.is_file() {
            name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
        } else {
            file_type.is_dir() && depth > 0 && has_python_test_file(&entry.path(), depth - 1)
        }
    })
}

fn go_gates(root: &Path) -> Vec<GateSpec> {
    if !root.join("go.mod").is_file() {
        return Vec::new();
    }
    vec![
        gate("go-vet", "go vet ./...", Speed::Check),
        gate("go-test", "go test ./...", Speed::Test),
    ]
}

/// Maven and Gradle, offline: gates run without network.
fn jvm_gates(root: &Path) -> Vec<GateSpec> {
    let mut gates = Vec::new();
    if root.join("pom.xml").is_file() {
        gates.push(gate("maven-test", "mvn -B -q -o test", Speed::Test));
    }
    if root.join("build.gradle").is_file() || root.join("build.gradle.kts").is_file() {
        // The wrapper pins the Gradle version the project was written for.
        let gradle = if root.join("gradlew").is_file() {
            "./gradlew"
        } else {
            "gradle"
        };
        gates.push(gate(
            "gradle-test",
            format!("{gradle} test --offline"),
            Speed::Test,
        ));
    }
    gates
}

/// `make test` and `make check` when the makefile GNU make would read defines those targets.
fn make_gates(root: &Path) -> Vec<GateSpec> {
    let Some(makefile) = ["GNUmakefile", "makefile", "Makefile"]
        .iter()
        .find_map(|name| read_text(root, name))
    else {
        return Vec::new();
    };
    ["test", "check"]
        .into_iter()
        .filter(|target| defines_target(&makefile, target))
        .map(|target| {
            gate(
                format!("make-{target}"),
                format!("make {target}"),
                Speed::Test,
            )
        })
        .collect()
}

/// A rule line naming `target` before its colon (`test:`, `test check: build`, `test::`), but
/// not a variable assignment (`test := x`, `test ::= x`, `FLAGS = a:b`) or a recipe line.
fn defines_target(makefile: &str, target: &str) -> bool {
    makefile.lines().any(|line| {
        if line.starts_with('\t') {
            return false;
        }
        let Some((targets, after_colon)) = line.split_once(':') else {
            return false;
        };
        let is_assignment =
            targets.contains('=') || after_colon.starts_with('=') || after_colon.starts_with(":=");
        !is_assignment && targets.split_whitespace().any(|name| name == target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use takt_test_support::write;

    /// A checkout holding `files` (path, content).
    fn checkout(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, content) in files {
            write(&root.path().join(path), content);
        }
        root
    }

    /// `(name, run, speed)` of each gate, in order.
    fn summary(gates: &[GateSpec]) -> Vec<(&str, &str, Speed)> {
        gates
            .iter()
            .map(|gate| (gate.name.as_str(), gate.run.as_str(), gate.speed))
            .collect()
    }

    fn names(gates: &[GateSpec]) -> Vec<&str> {
        gates.iter().map(|gate| gate.name.as_str()).collect()
    }

    const CARGO_TOML: &str =
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2024\"\n";

    #[test]
    fn nothing_detectable_means_no_gates() {
        let root = checkout(&[("README.md", "# notes\n"), ("docs/index.html", "<html/>")]);
        assert_eq!(detect(root.path()), Vec::new());
    }

    #[test]
    fn cargo_project() {
        let root = checkout(&[("Cargo.toml", CARGO_TOML), ("src/lib.rs", "")]);
        let gates = detect(root.path());
        assert_eq!(
            summary(&gates),
            vec![
                ("cargo-fmt", "cargo fmt --all -- --check", Speed::Check),
                (
                    "cargo-clippy",
                    "cargo clippy --all-targets --offline -- -D warnings",
                    Speed::Check
                ),
                (
                    "cargo-build",
                    "cargo build --all-targets --offline",
                    Speed::Build
                ),
                (
                    "cargo-test",
                    "cargo test --offline --no-fail-fast",
                    Speed::Test
                ),
            ]
        );
        for gate in &gates {
            assert_eq!(gate.source, GateSource::Detected);
            assert!(gate.required);
            assert_eq!(gate.timeout_ms, DEFAULT_GATE_TIMEOUT_MS);
            assert!(gate.env.is_empty());
            assert_eq!(gate.hidden_files, None);
            assert!(gate.junit.is_empty());
        }
    }

    const PACKAGE_JSON: &str = r#"{
  "name": "shop",
  "version": "1.0.0",
  "scripts": {
    "build": "tsc -p .",
    "lint": "eslint .",
    "typecheck": "tsc --noEmit",
    "test": "vitest run"
  },
  "devDependencies": { "vitest": "^2.0.0" }
}
"#;

    #[test]
    fn npm_scripts() {
        let root = checkout(&[("package.json", PACKAGE_JSON)]);
        assert_eq!(
            summary(&detect(root.path())),
            vec![
                ("npm-lint", "npm run lint", Speed::Check),
                ("npm-typecheck", "npm run typecheck", Speed::Build),
                ("npm-test", "npm test", Speed::Test),
            ]
        );
    }

    #[test]
    fn the_lockfile_picks_the_package_manager() {
        let pnpm = checkout(&[
            ("package.json", PACKAGE_JSON),
            ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n"),
        ]);
        assert_eq!(
            summary(&detect(pnpm.path())),
            vec![
                ("pnpm-lint", "pnpm run lint", Speed::Check),
                ("pnpm-typecheck", "pnpm run typecheck", Speed::Build),
                ("pnpm-test", "pnpm test", Speed::Test),
            ]
        );
        let yarn = checkout(&[
            ("package.json", r#"{"scripts": {"test": "jest"}}"#),
            ("yarn.lock", "# yarn lockfile v1\n"),
        ]);
        assert_eq!(
            summary(&detect(yarn.path())),
            vec![("yarn-test", "yarn test", Speed::Test)]
        );
    }

    #[test]
    fn npm_placeholder_test_and_missing_scripts_are_skipped() {
        let root = checkout(&[(
            "package.json",
            r#"{
  "name": "fresh",
  "version": "1.0.0",
  "main": "index.js",
  "scripts": {
    "test": "echo \"Error: no test specified\" && exit 1"
  },
  "license": "ISC"
}
"#,
        )]);
        assert_eq!(detect(root.path()), Vec::new());
        let no_scripts = checkout(&[("package.json", r#"{"name": "lib", "version": "0.0.1"}"#)]);
        assert_eq!(detect(no_scripts.path()), Vec::new());
    }

    #[test]
    fn malformed_package_json_yields_no_npm_gates() {
        let root = checkout(&[
            ("package.json", "{ \"scripts\": { \"test\": \"jest\", } "),
            ("go.mod", "module example.com/shop\n\ngo 1.22\n"),
        ]);
        assert_eq!(names(&detect(root.path())), vec!["go-vet", "go-test"]);
        let not_an_object = checkout(&[("package.json", "[\"test\"]")]);
        assert_eq!(detect(not_an_object.path()), Vec::new());
    }

    #[test]
    fn python_with_ruff_and_pytest_in_pyproject() {
        let root = checkout(&[(
            "pyproject.toml",
            "[project]\nname = \"calc\"\n\n[tool.ruff.lint]\nselect = [\"E\", \"F\"]\n\n[tool.pytest.ini_options]\naddopts = \"-ra\"\n",
        )]);
        assert_eq!(
            summary(&detect(root.path())),
            vec![
                ("ruff", "ruff check .", Speed::Check),
                (
                    "pytest",
                    "python3 -m pytest -q -rA -p no:cacheprovider",
                    Speed::Test
                ),
            ]
        );
    }

    #[test]
    fn every_way_pytest_is_found() {
        let setups: [&[(&str, &str)]; 8] = [
            &[("pytest.ini", "[pytest]\naddopts = -q\n")],
            &[("conftest.py", "import pytest\n")],
            &[(
                "setup.cfg",
                "[metadata]\nname = calc\n\n[tool:pytest]\ntestpaths = tests\n",
            )],
            &[(
                "tox.ini",
                "[tox]\nenvlist = py311\n\n[pytest]\nminversion = 7.0\n",
            )],
            &[("tests/test_calc.py", "def test_add(): pass\n")],
            &[("tests/unit/api/test_routes.py", "def test_get(): pass\n")],
            &[("tests/calc_test.py", "def test_add(): pass\n")],
            &[("test_calc.py", "def test_add(): pass\n")],
        ];
        for files in setups {
            let root = checkout(files);
            assert_eq!(names(&detect(root.path())), vec!["pytest"], "{files:?}");
        }
    }

    #[test]
    fn python_without_tests_or_configuration_gets_no_pytest() {
        let root = checkout(&[
            (
                "pyproject.toml",
                "[project]\nname = \"calc\"\n\n[tool.ruff-helper]\nx = 1\n",
            ),
            ("calc/__init__.py", ""),
            ("tests/fixtures/data.json", "{}"),
            ("tests/helpers.py", "def make(): pass\n"),
        ]);
        assert_eq!(detect(root.path()), Vec::new());
        let ruff_toml = checkout(&[(".ruff.toml", "line-length = 100\n")]);
        assert_eq!(names(&detect(ruff_toml.path())), vec!["ruff"]);
    }

    #[test]
    fn go_module() {
        let root = checkout(&[("go.mod", "module example.com/calc\n\ngo 1.22\n")]);
        assert_eq!(
            summary(&detect(root.path())),
            vec![
                ("go-vet", "go vet ./...", Speed::Check),
                ("go-test", "go test ./...", Speed::Test),
            ]
        );
    }

    #[test]
    fn maven_and_gradle() {
        let maven = checkout(&[("pom.xml", "<project></project>\n")]);
        assert_eq!(
            summary(&detect(maven.path())),
            vec![("maven-test", "mvn -B -q -o test", Speed::Test)]
        );
        let wrapped = checkout(&[
            ("build.gradle", "plugins { id 'java' }\n"),
            ("gradlew", "#!/bin/sh\n"),
        ]);
        assert_eq!(
            summary(&detect(wrapped.path())),
            vec![("gradle-test", "./gradlew test --offline", Speed::Test)]
        );
        let kotlin = checkout(&[("build.gradle.kts", "plugins { java }\n")]);
        assert_eq!(
            summary(&detect(kotlin.path())),
            vec![("gradle-test", "gradle test --offline", Speed::Test)]
        );
    }

    const MAKEFILE: &str = "CFLAGS := -O2 -Wall
TEST_FLAGS = --verbose
.PHONY: all test check clean

all: calc

calc: calc.c
\t$(CC) $(CFLAGS) -o $@ $<

test: calc
\t./run-tests.sh $(TEST_FLAGS)

check lint:: test
\t./check.sh

clean:
\trm -f calc
";

    #[test]
    fn make_targets_when_nothing_else_tests() {
        let root = checkout(&[("Makefile", MAKEFILE)]);
        assert_eq!(
            summary(&detect(root.path())),
            vec![
                ("make-test", "make test", Speed::Test),
                ("make-check", "make check", Speed::Test),
            ]
        );
    }

    #[test]
    fn make_assignments_and_phony_lines_are_not_targets() {
        let root = checkout(&[(
            "makefile",
            "test := unit\ncheck ::= all\nURL = http://host:80/test\n.PHONY: test check\n\ttest: indented recipe text\n",
        )]);
        assert_eq!(detect(root.path()), Vec::new());
    }

    #[test]
    fn make_is_not_used_when_a_language_gate_tests() {
        let root = checkout(&[
            ("Cargo.toml", CARGO_TOML),
            ("Makefile", "test:\n\tcargo test\n"),
        ]);
        assert!(!names(&detect(root.path())).contains(&"make-test"));
        // A lint-only language gate does not replace the Makefile's tests.
        let lint_only = checkout(&[
            ("package.json", r#"{"scripts": {"lint": "eslint ."}}"#),
            ("Makefile", "test:\n\t./test.sh\n"),
        ]);
        assert_eq!(
            names(&detect(lint_only.path())),
            vec!["npm-lint", "make-test"]
        );
    }

    #[test]
    fn several_ecosystems_run_fastest_first() {
        let root = checkout(&[
            ("Cargo.toml", CARGO_TOML),
            ("package.json", PACKAGE_JSON),
            ("go.mod", "module example.com/calc\n\ngo 1.22\n"),
            ("ruff.toml", "line-length = 100\n"),
            ("tests/test_api.py", "def test_ok(): pass\n"),
        ]);
        assert_eq!(
            names(&detect(root.path())),
            vec![
                "cargo-fmt",
                "cargo-clippy",
                "npm-lint",
                "ruff",
                "go-vet",
                "cargo-build",
                "npm-typecheck",
                "cargo-test",
                "npm-test",
                "pytest",
                "go-test",
            ]
        );
    }
}
