//! Changes that weaken the checks instead of satisfying them: deleted or edited tests, removed
//! assertions, newly skipped tests, edited gate, CI or lint configuration, added lint
//! suppressions. A green gate means little if the agent rewrote the gate, so these are flagged
//! for the risk policy and the reviewers.
//!
//! The rules read paths and the patch's added and removed lines; they are deliberately simple
//! and explainable (each flag says why in one sentence) rather than clever. Adding a new test
//! file is never tampering. Marker counts are net per file (added minus removed lines holding
//! the marker), so code that merely moves within a file does not look like a new skip or
//! suppression.

use std::collections::{BTreeMap, HashMap};

use takt_protocol::{ChangeKind, ChangedFile, TamperFlag};

use crate::diff::{FilePatch, file_patches};

/// The rules, in the order flags on one path are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    TestDeleted,
    TestModified,
    AssertionRemoved,
    TestSkipped,
    GateConfig,
    CiConfig,
    LintConfig,
    WorkflowFile,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::TestDeleted => "test_deleted",
            Rule::TestModified => "test_modified",
            Rule::AssertionRemoved => "assertion_removed",
            Rule::TestSkipped => "test_skipped",
            Rule::GateConfig => "gate_config",
            Rule::CiConfig => "ci_config",
            Rule::LintConfig => "lint_config",
            Rule::WorkflowFile => "workflow_file",
        }
    }
}

/// Where a marker may sit in a line.
#[derive(Clone, Copy)]
enum Boundary {
    Anywhere,
    /// Not glued to a preceding identifier: `assert` but not `debug_assert`, `t.Error` but not
    /// `result.Error`.
    AfterNonWord,
    /// As [`Boundary::AfterNonWord`], and not a method call either: jest's `expect(x)` but not
    /// Rust's `.expect("...")`.
    NotAMethod,
    /// A whole annotation: `@Ignore` but not `@IgnoreExtraProperties`.
    WholeWord,
}

struct Marker {
    text: &'static str,
    boundary: Boundary,
}

const fn marker(text: &'static str, boundary: Boundary) -> Marker {
    Marker { text, boundary }
}

/// Lines that assert something in a test.
const ASSERTIONS: [Marker; 6] = [
    // assert, assert!, assert_eq!, assertEquals, self.assertTrue, assert.equal, Go's assert.
    marker("assert", Boundary::AfterNonWord),
    marker("expect(", Boundary::NotAMethod),
    marker(".should", Boundary::Anywhere),
    marker("t.Error", Boundary::AfterNonWord),
    marker("t.Fatal", Boundary::AfterNonWord),
    marker("require.", Boundary::NotAMethod),
];

/// Lines that switch a test off. `.skip(` only counts after the test-framework names that have
/// it (`it`, `describe`, `test`, ...): on its own it would flag every `iter().skip(1)`.
const SKIPS: [Marker; 15] = [
    marker("#[ignore", Boundary::Anywhere),
    marker("@pytest.mark.skip", Boundary::Anywhere),
    marker("@unittest.skip", Boundary::Anywhere),
    marker("pytest.skip(", Boundary::NotAMethod),
    marker("self.skipTest(", Boundary::AfterNonWord),
    marker("it.skip(", Boundary::AfterNonWord),
    marker("describe.skip(", Boundary::AfterNonWord),
    marker("test.skip(", Boundary::AfterNonWord),
    marker("context.skip(", Boundary::AfterNonWord),
    marker("suite.skip(", Boundary::AfterNonWord),
    marker("xit(", Boundary::AfterNonWord),
    marker("xdescribe(", Boundary::AfterNonWord),
    marker("t.Skip", Boundary::AfterNonWord),
    marker("@Disabled", Boundary::WholeWord),
    marker("@Ignore", Boundary::WholeWord),
];

/// Comments and attributes that silence a linter or type checker for some code.
const SUPPRESSIONS: [Marker; 13] = [
    marker("#![allow(", Boundary::Anywhere),
    marker("#[allow(", Boundary::Anywhere),
    marker("#![expect(", Boundary::Anywhere),
    marker("#[expect(", Boundary::Anywhere),
    marker("# noqa", Boundary::Anywhere),
    marker("eslint-disable", Boundary::Anywhere),
    marker("# type: ignore", Boundary::Anywhere),
    marker("@ts-ignore", Boundary::Anywhere),
    marker("@ts-expect-error", Boundary::Anywhere),
    marker("@ts-nocheck", Boundary::Anywhere),
    marker("//nolint", Boundary::Anywhere),
    marker("pylint: disable", Boundary::Anywhere),
    marker("@SuppressWarnings", Boundary::Anywhere),
];

/// Every flag the change raises, one per (rule, path), sorted by path then rule. `files` is
/// the change's file list (see [`crate::diff::changed_files`]); `patch` is
/// `git diff -U0 <base> <commit>` of the same change, which supplies the lines.
pub fn tamper_flags(files: &[ChangedFile], patch: &str) -> Vec<TamperFlag> {
    let patches = file_patches(patch);
    let lines_by_path: HashMap<&str, &FilePatch> = patches
        .iter()
        .map(|file_patch| (file_patch.path.as_str(), file_patch))
        .collect();
    let mut flags = Flags::default();
    for file in files {
        let lines = lines_by_path
            .get(file.path.as_str())
            .map(|file_patch| ChangedLines {
                added: file_patch.added.iter().map(|&(_, text)| text).collect(),
                removed: file_patch.removed.clone(),
            })
            .unwrap_or_default();
        check_tests(file, &lines, &mut flags);
        check_assertions(file, &lines, &mut flags);
        check_skips(file, &lines, &mut flags);
        check_configuration(file, &lines, &mut flags);
        check_suppressions(file, &lines, &mut flags);
    }
    flags.into_flags()
}

#[derive(Default)]
struct ChangedLines<'patch> {
    added: Vec<&'patch str>,
    removed: Vec<&'patch str>,
}

impl ChangedLines<'_> {
    fn all(&self) -> impl Iterator<Item = &str> {
        self.added.iter().chain(&self.removed).copied()
    }
}

#[derive(Default)]
struct Flags(BTreeMap<(String, Rule), String>);

impl Flags {
    /// The first reason given for a (rule, path) is the one kept.
    fn raise(&mut self, rule: Rule, path: &str, detail: String) {
        self.0.entry((path.to_owned(), rule)).or_insert(detail);
    }

    fn into_flags(self) -> Vec<TamperFlag> {
        self.0
            .into_iter()
            .map(|((path, rule), detail)| TamperFlag {
                rule: rule.name().to_owned(),
                path,
                detail,
            })
            .collect()
    }
}

fn check_tests(file: &ChangedFile, lines: &ChangedLines, flags: &mut Flags) {
    let is_test = is_test_path(&file.path);
    match (file.kind, file.old_path.as_deref()) {
        (ChangeKind::Deleted, _) if is_test => {
            flags.raise(
                Rule::TestDeleted,
                &file.path,
                "The change deletes this test file.".to_owned(),
            );
        }
        (ChangeKind::Renamed, Some(old_path)) if is_test_path(old_path) && !is_test => {
            flags.raise(
                Rule::TestDeleted,
                old_path,
                format!(
                    "The change moves this test file to {}, outside the test paths, so it no longer runs as a test.",
                    file.path
                ),
            );
        }
        (ChangeKind::Modified | ChangeKind::Renamed, _) if is_test && file.removed_lines > 0 => {
            flags.raise(
                Rule::TestModified,
                &file.path,
                format!(
                    "The change removes {} line(s) from this test file.",
                    file.removed_lines
                ),
            );
        }
        _ => {}
    }
    // Rust unit tests live next to the code, so for `.rs` files a removed test attribute is
    // what marks a test as changed (a deleted test file is already flagged as such).
    let whole_test_file_deleted = file.kind == ChangeKind::Deleted && is_test;
    if file.path.ends_with(".rs")
        && !whole_test_file_deleted
        && lines
            .removed
            .iter()
            .any(|line| line.contains("#[test]") || line.contains("#[tokio::test"))
    {
        flags.raise(
            Rule::TestModified,
            &file.path,
            "The change removes a `#[test]` attribute, so a test is deleted or no longer runs."
                .to_owned(),
        );
    }
}

fn check_assertions(file: &ChangedFile, lines: &ChangedLines, flags: &mut Flags) {
    let removed = count_lines_with_any(&lines.removed, &ASSERTIONS);
    let added = count_lines_with_any(&lines.added, &ASSERTIONS);
    if removed > added {
        flags.raise(
            Rule::AssertionRemoved,
            &file.path,
            format!("The change removes {removed} line(s) with assertions and adds only {added}."),
        );
    }
}

fn check_skips(file: &ChangedFile, lines: &ChangedLines, flags: &mut Flags) {
    if file.kind == ChangeKind::Added {
        return;
    }
    let newly_added = net_added_markers(lines, &SKIPS);
    if !newly_added.is_empty() {
        flags.raise(
            Rule::TestSkipped,
            &file.path,
            format!(
                "The change marks tests as skipped ({}).",
                quoted_list(&newly_added)
            ),
        );
    }
}

fn check_suppressions(file: &ChangedFile, lines: &ChangedLines, flags: &mut Flags) {
    let newly_added = net_added_markers(lines, &SUPPRESSIONS);
    if !newly_added.is_empty() {
        flags.raise(
            Rule::LintConfig,
            &file.path,
            format!(
                "The change adds lint suppressions ({}).",
                quoted_list(&newly_added)
            ),
        );
    }
}

/// Path rules, checked on both sides of a rename: moving `.github/workflows/ci.yml` away
/// disables CI as surely as editing it.
fn check_configuration(file: &ChangedFile, lines: &ChangedLines, flags: &mut Flags) {
    let paths = std::iter::once(file.path.as_str()).chain(file.old_path.as_deref());
    for path in paths {
        let name = file_name(path);
        if is_gate_config_file(path) {
            flags.raise(
                Rule::GateConfig,
                &file.path,
                format!("The change edits {path}, which decides how gates run."),
            );
        }
        if name == "package.json"
            && let Some(script) = lines.all().find_map(gate_script_key)
        {
            flags.raise(
                Rule::GateConfig,
                &file.path,
                format!("The change edits the `{script}` script, which a gate runs."),
            );
        }
        if is_ci_config(path) {
            flags.raise(
                Rule::CiConfig,
                &file.path,
                "The change edits CI configuration.".to_owned(),
            );
        }
        if is_lint_config_file(name) {
            flags.raise(
                Rule::LintConfig,
                &file.path,
                format!("The change edits the lint or format configuration {name}."),
            );
        }
        if name == "pyproject.toml"
            && let Some(tool) = lines.all().find_map(|line| {
                let line = line.to_ascii_lowercase();
                ["ruff", "pytest", "mypy", "flake8"]
                    .into_iter()
                    .find(|tool| line.contains(tool))
            })
        {
            flags.raise(
                Rule::LintConfig,
                &file.path,
                format!("The change edits {tool} settings in pyproject.toml."),
            );
        }
        if name == "Cargo.toml" && lines.all().any(is_cargo_lint_line) {
            flags.raise(
                Rule::LintConfig,
                &file.path,
                "The change edits lint levels in Cargo.toml.".to_owned(),
            );
        }
        if name == "WORKFLOW.md" {
            flags.raise(
                Rule::WorkflowFile,
                &file.path,
                "The change edits WORKFLOW.md, the factory's own configuration.".to_owned(),
            );
        }
    }
}

/// Files under a `tests/`, `test/`, `__tests__/` or `spec/` directory, and the test file names
/// of Go, Python, JavaScript/TypeScript and Java.
fn is_test_path(path: &str) -> bool {
    let (directories, name) = path.rsplit_once('/').unwrap_or(("", path));
    let in_test_directory = directories
        .split('/')
        .any(|directory| matches!(directory, "tests" | "test" | "__tests__" | "spec"));
    let js_test = name.rsplit_once('.').is_some_and(|(stem, extension)| {
        matches!(extension, "js" | "ts" | "jsx" | "tsx")
            && (stem.ends_with(".test") || stem.ends_with(".spec"))
    });
    in_test_directory
        || js_test
        || name.ends_with("_test.go")
        || (name.starts_with("test_") && name.ends_with(".py"))
        || name.ends_with("_test.py")
        || name.ends_with("Test.java")
        || name.ends_with("Tests.java")
}

fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// Build, task-runner and test-runner configuration that decides what a gate command does.
fn is_gate_config_file(path: &str) -> bool {
    let name = file_name(path);
    let parent = path
        .rsplit_once('/')
        .map_or("", |(directories, _)| file_name(directories));
    let by_name = matches!(
        name,
        "Makefile"
            | "makefile"
            | "GNUmakefile"
            | "justfile"
            | "Justfile"
            | ".justfile"
            | "noxfile.py"
            | "tox.ini"
            | "pytest.ini"
            | "conftest.py"
            | "setup.cfg"
            | "nextest.toml"
    ) || name.starts_with("jest.config.")
        || name.starts_with("vitest.config.");
    let cargo_config = parent == ".cargo" && name.starts_with("config");
    by_name || cargo_config
}

/// A `package.json` line that defines a script a detected gate runs (`"test": ...`,
/// `"lint": ...`, `"typecheck": ...`, their `pre`/`post` hooks and `name:variant` forms).
fn gate_script_key(line: &str) -> Option<&str> {
    let (key, rest) = line.trim_start().strip_prefix('"')?.split_once('"')?;
    if !rest.trim_start().starts_with(':') {
        return None;
    }
    let hooked = key
        .strip_prefix("pre")
        .or_else(|| key.strip_prefix("post"))
        .unwrap_or(key);
    let base = hooked.split(':').next().unwrap_or(hooked);
    matches!(base, "test" | "lint" | "typecheck").then_some(key)
}

fn is_ci_config(path: &str) -> bool {
    [
        ".github/workflows/",
        ".github/actions/",
        ".ci/",
        ".circleci/",
        ".buildkite/",
    ]
    .iter()
    .any(|directory| path.starts_with(directory))
        || matches!(
            path,
            ".gitlab-ci.yml" | "Jenkinsfile" | "azure-pipelines.yml"
        )
}

fn is_lint_config_file(name: &str) -> bool {
    matches!(
        name,
        "clippy.toml"
            | ".clippy.toml"
            | "rustfmt.toml"
            | ".rustfmt.toml"
            | "ruff.toml"
            | ".ruff.toml"
            | ".editorconfig"
    ) || [".eslintrc", "eslint.config.", ".prettierrc", ".golangci."]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// `[lints]`, `[workspace.lints.clippy]`, `unwrap_used = "deny"`, `{ level = "allow", ... }`.
fn is_cargo_lint_line(line: &str) -> bool {
    let compact: String = line.chars().filter(|char| !char.is_whitespace()).collect();
    compact.contains("lints")
        || compact.contains("level=")
        || ["allow", "warn", "deny", "forbid"]
            .iter()
            .any(|level| compact.ends_with(&format!("=\"{level}\"")))
}

fn count_lines_with_any(lines: &[&str], markers: &[Marker]) -> usize {
    lines
        .iter()
        .filter(|line| markers.iter().any(|marker| contains_marker(line, marker)))
        .count()
}

/// Markers more lines of the file gain than lose.
fn net_added_markers(lines: &ChangedLines, markers: &[Marker]) -> Vec<&'static str> {
    markers
        .iter()
        .filter(|marker| {
            let count = |side: &[&str]| {
                side.iter()
                    .filter(|line| contains_marker(line, marker))
                    .count()
            };
            count(&lines.added) > count(&lines.removed)
        })
        .map(|marker| marker.text)
        .collect()
}

fn contains_marker(line: &str, marker: &Marker) -> bool {
    let is_word = |char: char| char.is_alphanumeric() || char == '_';
    line.match_indices(marker.text).any(|(start, _)| {
        let before = line[..start].chars().next_back();
        let after = line[start + marker.text.len()..].chars().next();
        match marker.boundary {
            Boundary::Anywhere => true,
            Boundary::AfterNonWord => !before.is_some_and(is_word),
            Boundary::NotAMethod => !before.is_some_and(|char| is_word(char) || char == '.'),
            Boundary::WholeWord => !before.is_some_and(is_word) && !after.is_some_and(is_word),
        }
    })
}

fn quoted_list(markers: &[&str]) -> String {
    markers
        .iter()
        .map(|marker| format!("`{marker}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::changed_files;
    use takt_test_support::{GitRepo, write};

    fn changed(path: &str, kind: ChangeKind, added_lines: u32, removed_lines: u32) -> ChangedFile {
        ChangedFile {
            path: path.to_owned(),
            old_path: None,
            kind,
            added_lines,
            removed_lines,
        }
    }

    fn renamed(old_path: &str, path: &str, added_lines: u32, removed_lines: u32) -> ChangedFile {
        ChangedFile {
            old_path: Some(old_path.to_owned()),
            ..changed(path, ChangeKind::Renamed, added_lines, removed_lines)
        }
    }

    /// `(rule, path)` pairs, for assertions that do not care about the wording.
    fn rules(flags: &[TamperFlag]) -> Vec<(&str, &str)> {
        flags
            .iter()
            .map(|flag| (flag.rule.as_str(), flag.path.as_str()))
            .collect()
    }

    fn modified_patch(path: &str, hunk_header: &str, lines: &str) -> String {
        format!(
            "diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n{hunk_header}\n{lines}"
        )
    }

    #[test]
    fn test_paths() {
        for path in [
            "tests/api.rs",
            "crates/core/tests/all/support.rs",
            "src/test/java/com/example/CalcTest.java",
            "web/__tests__/button.jsx",
            "spec/models/user_spec.rb",
            "pkg/calc/calc_test.go",
            "test_calc.py",
            "app/calc_test.py",
            "web/src/button.test.tsx",
            "web/src/button.spec.js",
            "src/main/java/com/example/CalcTests.java",
        ] {
            assert!(is_test_path(path), "{path} is a test path");
        }
        for path in [
            "src/lib.rs",
            "src/testing.rs",
            "contest/main.go",
            "latest/notes.md",
            "app/testdata/input.json",
            "web/src/button.tsx",
            "pkg/calc/calc.go",
            "tests.md",
        ] {
            assert!(!is_test_path(path), "{path} is not a test path");
        }
    }

    #[test]
    fn deleting_a_test_file() {
        let files = [changed("tests/test_calc.py", ChangeKind::Deleted, 0, 4)];
        let patch = "diff --git a/tests/test_calc.py b/tests/test_calc.py
deleted file mode 100644
index 9c3b2a1..0000000
--- a/tests/test_calc.py
+++ /dev/null
@@ -1,4 +0,0 @@
-from calc import add
-
-def test_add():
-    assert add(1, 2) == 3
";
        let flags = tamper_flags(&files, patch);
        assert_eq!(
            rules(&flags),
            vec![
                ("test_deleted", "tests/test_calc.py"),
                ("assertion_removed", "tests/test_calc.py"),
            ]
        );
        assert_eq!(flags[0].detail, "The change deletes this test file.");
        assert_eq!(
            flags[1].detail,
            "The change removes 1 line(s) with assertions and adds only 0."
        );
    }

    #[test]
    fn moving_a_test_file_out_of_the_test_paths() {
        let files = [renamed("tests/test_calc.py", "attic/calc_checks.py", 0, 0)];
        let flags = tamper_flags(&files, "");
        assert_eq!(rules(&flags), vec![("test_deleted", "tests/test_calc.py")]);
        assert!(flags[0].detail.contains("attic/calc_checks.py"));

        let within_tests = [renamed("tests/test_calc.py", "tests/test_math.py", 0, 0)];
        assert_eq!(tamper_flags(&within_tests, ""), Vec::new());
    }

    #[test]
    fn editing_a_test_file_and_weakening_its_assertions() {
        let files = [changed("tests/api.rs", ChangeKind::Modified, 1, 2)];
        let patch = modified_patch(
            "tests/api.rs",
            "@@ -12,2 +12 @@ fn rejects_overdrafts() {",
            "-    assert_eq!(account.balance(), 100);\n-    assert!(account.withdraw(500).is_err());\n+    let _ = account.withdraw(500);\n",
        );
        let flags = tamper_flags(&files, &patch);
        assert_eq!(
            rules(&flags),
            vec![
                ("test_modified", "tests/api.rs"),
                ("assertion_removed", "tests/api.rs"),
            ]
        );
        assert_eq!(
            flags[0].detail,
            "The change removes 2 line(s) from this test file."
        );
    }

    #[test]
    fn removing_a_rust_unit_test_in_a_source_file() {
        let files = [changed("src/ledger.rs", ChangeKind::Modified, 0, 5)];
        let patch = modified_patch(
            "src/ledger.rs",
            "@@ -88,5 +87,0 @@ mod tests {",
            "-    #[test]\n-    fn rejects_negative_amounts() {\n-        let ledger = Ledger::default();\n-        assert!(ledger.post(-1).is_err());\n-    }\n",
        );
        assert_eq!(
            rules(&tamper_flags(&files, &patch)),
            vec![
                ("test_modified", "src/ledger.rs"),
                ("assertion_removed", "src/ledger.rs"),
            ]
        );
    }

    #[test]
    fn rewriting_assertions_one_for_one_is_not_flagged() {
        let files = [changed("web/src/cart.test.ts", ChangeKind::Modified, 1, 1)];
        let patch = modified_patch(
            "web/src/cart.test.ts",
            "@@ -7 +7 @@ describe(\"cart\", () => {",
            "-    expect(total(cart)).toBe(10);\n+    expect(total(cart)).toEqual(10);\n",
        );
        // A test file edit with removed lines is still a test modification, but no assertion
        // went missing.
        assert_eq!(
            rules(&tamper_flags(&files, &patch)),
            vec![("test_modified", "web/src/cart.test.ts")]
        );
    }

    #[test]
    fn rust_expect_and_debug_assert_are_not_assertions() {
        let files = [changed("src/config.rs", ChangeKind::Modified, 1, 2)];
        let patch = modified_patch(
            "src/config.rs",
            "@@ -30,2 +30 @@ pub fn load(path: &Path) -> Result<Config> {",
            "-    let text = fs::read_to_string(path).expect(\"config is readable\");\n-    debug_assert!(!text.is_empty());\n+    let text = fs::read_to_string(path)?;\n",
        );
        assert_eq!(tamper_flags(&files, &patch), Vec::new());
    }

    #[test]
    fn assertion_markers_of_each_framework() {
        for line in [
            "    assert total == 3",
            "    assert_eq!(total, 3);",
            "    self.assertEqual(total, 3)",
            "    expect(total).toBe(3);",
            "    total.should.equal(3);",
            "\tt.Errorf(\"got %d\", total)",
            "\tt.Fatal(err)",
            "\trequire.NoError(t, err)",
            "    assertThat(total).isEqualTo(3);",
        ] {
            assert_eq!(
                count_lines_with_any(&[line], &ASSERTIONS),
                1,
                "{line} asserts"
            );
        }
        for line in [
            "    let parsed = text.parse().expect(\"a number\");",
            "    debug_assert!(ok);",
            "\treturn result.Error()",
            "    const mod = module.require.resolve(x);",
        ] {
            assert_eq!(
                count_lines_with_any(&[line], &ASSERTIONS),
                0,
                "{line} does not assert"
            );
        }
    }

    #[test]
    fn newly_skipped_tests() {
        let files = [
            changed("src/parser.rs", ChangeKind::Modified, 1, 0),
            changed("tests/test_api.py", ChangeKind::Modified, 1, 0),
            changed("web/src/cart.test.ts", ChangeKind::Modified, 1, 1),
            changed("pkg/calc/calc_test.go", ChangeKind::Modified, 1, 0),
            changed(
                "src/test/java/com/example/CalcTest.java",
                ChangeKind::Modified,
                1,
                0,
            ),
        ];
        let patch = [
            modified_patch(
                "src/parser.rs",
                "@@ -40,0 +41 @@ mod tests {",
                "+    #[ignore = \"flaky on CI\"]\n",
            ),
            modified_patch(
                "tests/test_api.py",
                "@@ -9,0 +10 @@ import pytest",
                "+@pytest.mark.skip(reason=\"later\")\n",
            ),
            modified_patch(
                "web/src/cart.test.ts",
                "@@ -5 +5 @@ describe(\"cart\", () => {",
                "-  it(\"sums prices\", () => {\n+  it.skip(\"sums prices\", () => {\n",
            ),
            modified_patch(
                "pkg/calc/calc_test.go",
                "@@ -12,0 +13 @@ func TestDivide(t *testing.T) {",
                "+\tt.Skip(\"division is broken\")\n",
            ),
            modified_patch(
                "src/test/java/com/example/CalcTest.java",
                "@@ -20,0 +21 @@ class CalcTest {",
                "+    @Disabled\n",
            ),
        ]
        .concat();
        let flags = tamper_flags(&files, &patch);
        assert_eq!(
            rules(&flags),
            vec![
                ("test_skipped", "pkg/calc/calc_test.go"),
                ("test_skipped", "src/parser.rs"),
                ("test_skipped", "src/test/java/com/example/CalcTest.java"),
                ("test_skipped", "tests/test_api.py"),
                ("test_modified", "web/src/cart.test.ts"),
                ("test_skipped", "web/src/cart.test.ts"),
            ]
        );
        assert_eq!(
            flags[1].detail,
            "The change marks tests as skipped (`#[ignore`)."
        );
    }

    #[test]
    fn skip_like_code_is_not_a_skipped_test() {
        let files = [changed("src/lexer.rs", ChangeKind::Modified, 2, 0)];
        let patch = modified_patch(
            "src/lexer.rs",
            "@@ -3,0 +4,2 @@ fn tokens(input: &str) {",
            "+    let rest = input.chars().skip(1);\n+    let fixit = quickfixit(rest);\n",
        );
        assert_eq!(tamper_flags(&files, &patch), Vec::new());
    }

    #[test]
    fn moving_a_skipped_test_within_a_file_is_not_a_new_skip() {
        let files = [changed("src/parser.rs", ChangeKind::Modified, 2, 2)];
        let patch = modified_patch(
            "src/parser.rs",
            "@@ -40,2 +40,0 @@ mod tests {",
            "-    #[ignore]\n-    fn slow() {}\n@@ -60,0 +58,2 @@ mod tests {\n+    #[ignore]\n+    fn slow() {}\n",
        );
        assert_eq!(tamper_flags(&files, &patch), Vec::new());
    }

    #[test]
    fn gate_configuration_files() {
        let files: Vec<ChangedFile> = [
            "Makefile",
            "justfile",
            "noxfile.py",
            "tox.ini",
            "pytest.ini",
            "tests/conftest.py",
            "setup.cfg",
            ".cargo/config.toml",
            ".config/nextest.toml",
            "web/jest.config.js",
            "vitest.config.ts",
        ]
        .iter()
        .map(|path| changed(path, ChangeKind::Modified, 1, 1))
        .collect();
        let flags = tamper_flags(&files, "");
        let mut gate_paths: Vec<&str> = flags
            .iter()
            .filter(|flag| flag.rule == "gate_config")
            .map(|flag| flag.path.as_str())
            .collect();
        gate_paths.sort_unstable();
        let mut expected: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(gate_paths, expected);
        let makefile = flags.iter().find(|flag| flag.path == "Makefile").unwrap();
        assert_eq!(
            makefile.detail,
            "The change edits Makefile, which decides how gates run."
        );
    }

    #[test]
    fn package_json_only_when_a_gate_script_changes() {
        let files = [changed("package.json", ChangeKind::Modified, 1, 1)];
        let script_patch = modified_patch(
            "package.json",
            "@@ -7 +7 @@",
            "-    \"test\": \"vitest run\",\n+    \"test\": \"vitest run --passWithNoTests || true\",\n",
        );
        let flags = tamper_flags(&files, &script_patch);
        assert_eq!(rules(&flags), vec![("gate_config", "package.json")]);
        assert_eq!(
            flags[0].detail,
            "The change edits the `test` script, which a gate runs."
        );

        let lint_hook = modified_patch(
            "package.json",
            "@@ -8,0 +9 @@",
            "+    \"prelint\": \"echo skipping\",\n",
        );
        assert_eq!(
            rules(&tamper_flags(&files, &lint_hook)),
            vec![("gate_config", "package.json")]
        );

        let dependency_patch = modified_patch(
            "package.json",
            "@@ -14 +14 @@",
            "-    \"vitest\": \"^1.6.0\",\n+    \"vitest\": \"^2.0.0\",\n",
        );
        assert_eq!(tamper_flags(&files, &dependency_patch), Vec::new());
    }

    #[test]
    fn ci_configuration() {
        let files = [
            changed(".github/workflows/ci.yml", ChangeKind::Modified, 1, 1),
            changed(".gitlab-ci.yml", ChangeKind::Modified, 1, 1),
            changed(".circleci/config.yml", ChangeKind::Modified, 1, 1),
            changed(".buildkite/pipeline.yml", ChangeKind::Added, 9, 0),
            changed(".ci/run.sh", ChangeKind::Deleted, 0, 3),
            changed("Jenkinsfile", ChangeKind::Modified, 1, 1),
            changed("azure-pipelines.yml", ChangeKind::Modified, 1, 1),
            renamed(
                ".github/workflows/release.yml",
                "docs/old-release.yml",
                0,
                0,
            ),
        ];
        let flags = tamper_flags(&files, "");
        assert!(
            flags.iter().all(|flag| flag.rule == "ci_config"),
            "{flags:?}"
        );
        assert_eq!(flags.len(), files.len());
        assert!(flags.iter().any(|flag| flag.path == "docs/old-release.yml"));
    }

    #[test]
    fn lint_configuration_files() {
        let files: Vec<ChangedFile> = [
            "clippy.toml",
            ".clippy.toml",
            "rustfmt.toml",
            "crates/x/.rustfmt.toml",
            "web/.eslintrc.json",
            "eslint.config.mjs",
            ".prettierrc",
            "ruff.toml",
            ".ruff.toml",
            ".golangci.yml",
            ".editorconfig",
        ]
        .iter()
        .map(|path| changed(path, ChangeKind::Modified, 1, 1))
        .collect();
        let flags = tamper_flags(&files, "");
        assert!(
            flags.iter().all(|flag| flag.rule == "lint_config"),
            "{flags:?}"
        );
        assert_eq!(flags.len(), files.len());
    }

    #[test]
    fn pyproject_and_cargo_toml_only_for_tool_and_lint_lines() {
        let files = [
            changed("pyproject.toml", ChangeKind::Modified, 1, 1),
            changed("Cargo.toml", ChangeKind::Modified, 1, 1),
        ];
        let tool_lines = [
            modified_patch(
                "pyproject.toml",
                "@@ -31 +31 @@",
                "-[tool.ruff.lint]\n+[tool.ruff.lint-disabled]\n",
            ),
            modified_patch(
                "Cargo.toml",
                "@@ -40 +40 @@",
                "-unwrap_used = \"deny\"\n+unwrap_used = \"allow\"\n",
            ),
        ]
        .concat();
        let flags = tamper_flags(&files, &tool_lines);
        assert_eq!(
            rules(&flags),
            vec![
                ("lint_config", "Cargo.toml"),
                ("lint_config", "pyproject.toml"),
            ]
        );
        assert_eq!(
            flags[1].detail,
            "The change edits ruff settings in pyproject.toml."
        );

        let version_bumps = [
            modified_patch(
                "pyproject.toml",
                "@@ -3 +3 @@",
                "-version = \"1.2.0\"\n+version = \"1.3.0\"\n",
            ),
            modified_patch(
                "Cargo.toml",
                "@@ -20 +20 @@",
                "-serde = \"1.0.200\"\n+serde = \"1.0.210\"\n",
            ),
        ]
        .concat();
        assert_eq!(tamper_flags(&files, &version_bumps), Vec::new());
    }

    #[test]
    fn added_lint_suppressions_anywhere() {
        let files = [
            changed("src/lib.rs", ChangeKind::Modified, 2, 0),
            changed("app/models.py", ChangeKind::Modified, 1, 0),
            changed("web/src/new_widget.ts", ChangeKind::Added, 2, 0),
        ];
        let patch = [
            modified_patch(
                "src/lib.rs",
                "@@ -1,0 +2,2 @@",
                "+#![allow(clippy::unwrap_used)]\n+#[allow(dead_code)]\n",
            ),
            modified_patch(
                "app/models.py",
                "@@ -3,0 +4 @@",
                "+from typing import Any  # type: ignore  # noqa: F401\n",
            ),
            "diff --git a/web/src/new_widget.ts b/web/src/new_widget.ts
new file mode 100644
index 0000000..3f2a1b0
--- /dev/null
+++ b/web/src/new_widget.ts
@@ -0,0 +1,2 @@
+/* eslint-disable @typescript-eslint/no-explicit-any */
+export const widget: any = {};
"
            .to_owned(),
        ]
        .concat();
        let flags = tamper_flags(&files, &patch);
        assert_eq!(
            rules(&flags),
            vec![
                ("lint_config", "app/models.py"),
                ("lint_config", "src/lib.rs"),
                ("lint_config", "web/src/new_widget.ts"),
            ]
        );
        assert_eq!(
            flags[0].detail,
            "The change adds lint suppressions (`# noqa`, `# type: ignore`)."
        );
        assert_eq!(
            flags[1].detail,
            "The change adds lint suppressions (`#![allow(`, `#[allow(`)."
        );
    }

    #[test]
    fn workflow_file() {
        let files = [changed("WORKFLOW.md", ChangeKind::Modified, 3, 1)];
        let flags = tamper_flags(&files, "");
        assert_eq!(rules(&flags), vec![("workflow_file", "WORKFLOW.md")]);
    }

    #[test]
    fn a_new_test_file_and_a_source_change_are_not_tampering() {
        let files = [
            changed("src/calc.rs", ChangeKind::Modified, 3, 1),
            changed("tests/test_calc.py", ChangeKind::Added, 6, 0),
            changed("web/src/cart.spec.ts", ChangeKind::Added, 3, 0),
        ];
        let patch = [
            modified_patch(
                "src/calc.rs",
                "@@ -10 +10,3 @@ pub fn add(a: i64, b: i64) -> i64 {",
                "-    a + b\n+    a.checked_add(b)\n+        .unwrap_or(i64::MAX)\n+        .max(i64::MIN)\n",
            ),
            "diff --git a/tests/test_calc.py b/tests/test_calc.py
new file mode 100644
index 0000000..7d1e2c9
--- /dev/null
+++ b/tests/test_calc.py
@@ -0,0 +1,6 @@
+import pytest
+from calc import add
+
+@pytest.mark.skip(reason=\"needs the service\")
+def test_add():
+    assert add(1, 2) == 3
diff --git a/web/src/cart.spec.ts b/web/src/cart.spec.ts
new file mode 100644
index 0000000..5e8b1f0
--- /dev/null
+++ b/web/src/cart.spec.ts
@@ -0,0 +1,3 @@
+it(\"sums\", () => {
+  expect(total([1, 2])).toBe(3);
+});
"
            .to_owned(),
        ]
        .concat();
        assert_eq!(tamper_flags(&files, &patch), Vec::new());
    }

    /// A tampering change made in a real repository, read the way the verifier reads it.
    #[test]
    fn a_real_tampering_commit() {
        let repo = GitRepo::new();
        let root = repo.path();
        write(
            &root.join("src/lib.rs"),
            "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n",
        );
        write(
            &root.join("tests/api.rs"),
            "#[test]\nfn api_adds() {\n    assert_eq!(demo::add(1, 1), 2);\n}\n",
        );
        write(
            &root.join(".github/workflows/ci.yml"),
            "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cargo test\n",
        );
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "base"]);
        let base = repo.rev_parse("HEAD");

        write(
            &root.join("src/lib.rs"),
            "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    #[ignore]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n",
        );
        repo.git(&["rm", "-q", "tests/api.rs"]);
        write(
            &root.join(".github/workflows/ci.yml"),
            "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: cargo build\n",
        );
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "make it green"]);
        let commit = repo.rev_parse("HEAD");

        let name_status = repo.git(&["diff", "--name-status", "-z", "-M", &base, &commit]);
        let numstat = repo.git(&["diff", "--numstat", "-z", "-M", &base, &commit]);
        let files = changed_files(&name_status, &numstat).unwrap();
        let patch = repo.git(&["diff", "-U0", &base, &commit]);
        assert_eq!(
            rules(&tamper_flags(&files, &patch)),
            vec![
                ("ci_config", ".github/workflows/ci.yml"),
                ("test_skipped", "src/lib.rs"),
                ("test_deleted", "tests/api.rs"),
                ("assertion_removed", "tests/api.rs"),
            ]
        );
    }
}
