//! Test names and statuses read from a gate's raw output, so a failing gate can be compared with
//! its baseline test by test and re-runs can name the flaky tests.
//!
//! Each reader takes what one runner prints (libtest, nextest, pytest `-rA`/`-v`, `go test -v`,
//! JUnit XML) and ignores everything else. Within one format a name reported twice (a progress
//! line and a summary line, a retry) is kept once with the status that says the most: a failure
//! anywhere wins, otherwise a pass (the test ran) wins over a skip.

use std::collections::HashMap;

use takt_protocol::{TestCase, TestStatus};

/// The tests one reader found in a gate's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Which reader matched: `nextest`, `libtest`, `pytest` or `go`.
    pub format: &'static str,
    pub tests: Vec<TestCase>,
}

/// Why a JUnit XML report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    #[error("the JUnit report is not well-formed XML: {0}")]
    NotXml(#[from] roxmltree::Error),
    #[error("the JUnit report's root element is <{0}>, expected <testsuites> or <testsuite>")]
    UnexpectedRoot(String),
    #[error("the JUnit report has a <testcase> without a name attribute at line {line}")]
    UnnamedTestCase { line: u32 },
}

type Reader = fn(&str) -> Vec<TestCase>;

/// Most specific first: nextest's captured output embeds libtest lines (indented), so nextest must
/// get the first look.
const READERS: [(&str, Reader); 4] = [
    ("nextest", parse_nextest),
    ("libtest", parse_libtest),
    ("pytest", parse_pytest),
    ("go", parse_go_test),
];

/// Reads the tests from a gate's output: every known format is tried on stdout, then on stderr;
/// the first that finds at least one test wins. `None` when nothing recognisable was printed.
pub fn parse_output(stdout: &str, stderr: &str) -> Option<Parsed> {
    [stdout, stderr].into_iter().find_map(|stream| {
        READERS.iter().find_map(|(format, read)| {
            let tests = read(stream);
            (!tests.is_empty()).then_some(Parsed { format, tests })
        })
    })
}

/// Reads a JUnit XML report (`<testsuites>` or a lone `<testsuite>`, suites may nest). A test
/// case is named `classname.name` (just `name` when the class is empty) and failed when it holds
/// a `<failure>` or `<error>`, skipped when it holds `<skipped>`, passed otherwise.
pub fn parse_junit(xml: &str) -> Result<Vec<TestCase>, JunitError> {
    let document = roxmltree::Document::parse(xml)?;
    let root = document.root_element();
    let root_name = root.tag_name().name();
    if root_name != "testsuites" && root_name != "testsuite" {
        return Err(JunitError::UnexpectedRoot(root_name.to_owned()));
    }
    let mut tests = Vec::new();
    for case in root
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
    {
        let Some(name) = case.attribute("name") else {
            let line = document.text_pos_at(case.range().start).row;
            return Err(JunitError::UnnamedTestCase { line });
        };
        let name = match case.attribute("classname") {
            Some(class) if !class.is_empty() => format!("{class}.{name}"),
            _ => name.to_owned(),
        };
        let child_named = |tag: &str| case.children().any(|child| child.has_tag_name(tag));
        let status = if child_named("failure") || child_named("error") {
            TestStatus::Failed
        } else if child_named("skipped") {
            TestStatus::Skipped
        } else {
            TestStatus::Passed
        };
        tests.push(TestCase { name, status });
    }
    Ok(tests)
}

/// Results in first-seen order, one per name, merged by [`says_more`].
#[derive(Default)]
struct Results {
    tests: Vec<TestCase>,
    position: HashMap<String, usize>,
}

impl Results {
    fn record(&mut self, name: &str, status: TestStatus) {
        if let Some(existing) = self
            .position
            .get(name)
            .and_then(|&index| self.tests.get_mut(index))
        {
            if says_more(status, existing.status) {
                existing.status = status;
            }
            return;
        }
        self.position.insert(name.to_owned(), self.tests.len());
        self.tests.push(TestCase {
            name: name.to_owned(),
            status,
        });
    }

    fn into_tests(self) -> Vec<TestCase> {
        self.tests
    }
}

/// Whether `candidate` should replace `current` for a test reported twice.
fn says_more(candidate: TestStatus, current: TestStatus) -> bool {
    fn weight(status: TestStatus) -> u8 {
        match status {
            TestStatus::Failed => 2,
            TestStatus::Passed => 1,
            TestStatus::Skipped => 0,
        }
    }
    weight(candidate) > weight(current)
}

/// libtest (`cargo test`). Every test binary starts with `running N tests`; results are kept per
/// binary, so a name present in two binaries (a unit and an integration test both called `adds`)
/// yields two entries, exactly as libtest printed them.
///
/// With `--nocapture` a test's own output lands between `test name ... ` and its status, which
/// then stands alone on a later line; and the `failures:` list before `test result:` names every
/// failed test, catching one whose status line was swallowed by its output.
fn parse_libtest(output: &str) -> Vec<TestCase> {
    let mut tests = Vec::new();
    let mut binary = Results::default();
    let mut awaiting_status: Option<String> = None;
    let mut failure_list = FailureList::default();
    for line in output.lines() {
        if is_libtest_running_line(line) {
            tests.extend(std::mem::take(&mut binary).into_tests());
            awaiting_status = None;
            failure_list = FailureList::default();
            continue;
        }
        for name in failure_list.feed(line) {
            binary.record(&name, TestStatus::Failed);
        }
        if let Some((name, rest)) = libtest_test_line(line) {
            match libtest_status(rest) {
                Some(status) => {
                    binary.record(&name, status);
                    awaiting_status = None;
                }
                None => awaiting_status = Some(name),
            }
        } else if let Some(name) = &awaiting_status
            && let Some(status) = libtest_status(line)
        {
            binary.record(name, status);
            awaiting_status = None;
        }
    }
    tests.extend(binary.into_tests());
    tests
}

fn is_libtest_running_line(line: &str) -> bool {
    line.strip_prefix("running ")
        .and_then(|rest| {
            rest.strip_suffix(" tests")
                .or_else(|| rest.strip_suffix(" test"))
        })
        .is_some_and(|count| !count.is_empty() && count.bytes().all(|byte| byte.is_ascii_digit()))
}

/// `test <name> ...<rest>`: the name (without libtest's ` - should panic` marker, which the
/// failure list does not carry) and whatever followed the dots.
fn libtest_test_line(line: &str) -> Option<(String, &str)> {
    let (name, rest) = line.strip_prefix("test ")?.split_once(" ...")?;
    let name = name.strip_suffix(" - should panic").unwrap_or(name);
    Some((name.to_owned(), rest))
}

/// `ok`, `FAILED`, `ignored` or `ignored, <reason>`, optionally followed by `--report-time`'s
/// ` <0.001s>`.
fn libtest_status(text: &str) -> Option<TestStatus> {
    let text = text.trim();
    let word_end = text.find([',', ' ']).unwrap_or(text.len());
    let (word, after) = text.split_at(word_end);
    if !(after.is_empty() || after.starts_with(", ") || after.starts_with(" <")) {
        return None;
    }
    match word {
        "ok" => Some(TestStatus::Passed),
        "FAILED" => Some(TestStatus::Failed),
        "ignored" => Some(TestStatus::Skipped),
        _ => None,
    }
}

/// The list of failed test names libtest prints just before `test result:`:
///
/// ```text
/// failures:
///     tests::breaks
///
/// test result: FAILED. ...
/// ```
///
/// The earlier `failures:` section holds the tests' captured output, which may be indented too,
/// so names only count once `test result:` follows the list directly.
#[derive(Default)]
enum FailureList {
    #[default]
    Outside,
    Names(Vec<String>),
    AwaitingResult(Vec<String>),
}

impl FailureList {
    /// Advances over one line; returns the names once the list is confirmed.
    fn feed(&mut self, line: &str) -> Vec<String> {
        let state = std::mem::take(self);
        *self = match state {
            _ if line == "failures:" => FailureList::Names(Vec::new()),
            FailureList::Outside => FailureList::Outside,
            FailureList::Names(mut names) => match line.strip_prefix("    ") {
                Some(name) if !name.trim().is_empty() => {
                    names.push(name.trim_end().to_owned());
                    FailureList::Names(names)
                }
                _ if line.trim().is_empty() => FailureList::AwaitingResult(names),
                _ => FailureList::Outside,
            },
            FailureList::AwaitingResult(names) => {
                if line.starts_with("test result:") {
                    return names;
                }
                if line.trim().is_empty() {
                    FailureList::AwaitingResult(names)
                } else {
                    FailureList::Outside
                }
            }
        };
        Vec::new()
    }
}

/// cargo-nextest's status lines:
///
/// ```text
///         PASS [   0.007s] (1/6) demo tests::adds
///   TRY 2 FAIL [   0.005s] (4/7) demo tests::breaks
///      SIGSEGV [   0.009s] (2/6) demo more::segv
///    FLAKY 2/2 [   0.005s] (1/7) demo more::flaky
/// ```
///
/// The name keeps nextest's binary id (`demo tests::adds`, `demo::api adds`): it is what nextest
/// printed and, unlike the bare test path, unique across binaries, so the summary's repeated
/// lines and retries merge into one entry without merging two different tests. A test that
/// failed a try and then passed is reported failed; judging flakiness is the daemon's job.
fn parse_nextest(output: &str) -> Vec<TestCase> {
    let mut results = Results::default();
    for line in output.lines() {
        if let Some((name, status)) = nextest_line(line) {
            results.record(&name, status);
        }
    }
    results.into_tests()
}

fn nextest_line(line: &str) -> Option<(String, TestStatus)> {
    let mut rest = line.trim_start();
    if let Some(after_try) = rest.strip_prefix("TRY ") {
        let (attempt, after_attempt) = after_try.split_once(' ')?;
        if !attempt.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        rest = after_attempt;
    }
    let (word, after_word) = rest.split_once(' ')?;
    let status = nextest_status(word)?;
    let mut rest = after_word;
    if word == "FLAKY" {
        // `FLAKY 2/2`: which try passed.
        rest = rest.split_once(' ')?.1;
    }
    let rest = rest.strip_prefix('[')?.split_once("] ")?.1;
    // The `(3/7)` counter (`(───)` for a non-final try) is absent in older nextest versions.
    let rest = match rest.strip_prefix('(') {
        Some(counter) => counter.split_once(") ")?.1,
        None => rest,
    };
    let (binary, test) = rest.trim_end().split_once(' ')?;
    if binary.is_empty() || test.is_empty() {
        return None;
    }
    Some((format!("{binary} {test}"), status))
}

/// Final results only: `SLOW`, `TRMNTG`, `RETRY`, `START` and the like are progress.
fn nextest_status(word: &str) -> Option<TestStatus> {
    match word {
        "PASS" | "LEAK" | "FLAKY" => Some(TestStatus::Passed),
        "SKIP" => Some(TestStatus::Skipped),
        "FAIL" | "LEAK-FAIL" | "TIMEOUT" | "TMT" | "ABORT" | "SEGV" => Some(TestStatus::Failed),
        // SIGSEGV, SIGABRT, SIGKILL...: the test process died of a signal.
        signal
            if signal.strip_prefix("SIG").is_some_and(|name| {
                !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_uppercase())
            }) =>
        {
            Some(TestStatus::Failed)
        }
        _ => None,
    }
}

/// pytest's `-rA` short summary (`PASSED tests/test_x.py::test_a`,
/// `FAILED tests/test_x.py::test_b - AssertionError`, `SKIPPED [1] tests/test_x.py:12: reason`)
/// and `-v` progress lines (`tests/test_x.py::test_a PASSED   [ 50%]`), also with xdist's
/// `[gw0] [ 50%] ` prefix.
///
/// The summary names a skip by its location (`tests/test_x.py:12`), not by its test, so a skip
/// seen in both sections would appear twice; when `-v` progress lines exist they already name
/// every test, and summary skips are dropped.
fn parse_pytest(output: &str) -> Vec<TestCase> {
    let mut results = Results::default();
    let mut summary_skips = Vec::new();
    let mut saw_progress = false;
    for line in output.lines() {
        if let Some((name, status)) = pytest_progress_line(line) {
            saw_progress = true;
            results.record(name, status);
        } else if let Some((name, status)) = pytest_summary_line(line) {
            results.record(name, status);
        } else if let Some(location) = pytest_summary_skip(line) {
            summary_skips.push(location);
        }
    }
    if !saw_progress {
        for location in summary_skips {
            results.record(location, TestStatus::Skipped);
        }
    }
    results.into_tests()
}

fn pytest_status(word: &str) -> Option<TestStatus> {
    match word {
        "PASSED" | "XPASS" => Some(TestStatus::Passed),
        "FAILED" | "ERROR" => Some(TestStatus::Failed),
        "SKIPPED" | "XFAIL" => Some(TestStatus::Skipped),
        _ => None,
    }
}

/// `<status> <node id>[ - <message>]`, where the status is not `SKIPPED` (summary skips name a
/// location instead).
fn pytest_summary_line(line: &str) -> Option<(&str, TestStatus)> {
    let line = strip_xdist_prefix(line);
    let (word, rest) = line.split_once(' ')?;
    let status = pytest_status(word)?;
    let (node_id, after) = split_node_id(rest)?;
    let is_node = node_id.contains("::") || node_id.ends_with(".py");
    (is_node && (after.is_empty() || after.starts_with(' '))).then_some((node_id, status))
}

/// `<path>::<test>[params] <status>[ (<reason>)]  [ NN%]`.
fn pytest_progress_line(line: &str) -> Option<(&str, TestStatus)> {
    let (node_id, after) = split_node_id(line)?;
    if !node_id.contains("::") {
        return None;
    }
    let after = after.strip_prefix(' ')?;
    let word = after.split(' ').next()?;
    Some((node_id, pytest_status(word)?))
}

/// `SKIPPED [<count>] <path>:<line>: <reason>` -> `<path>:<line>`.
fn pytest_summary_skip(line: &str) -> Option<&str> {
    let line = strip_xdist_prefix(line);
    let rest = line.strip_prefix("SKIPPED [")?.split_once("] ")?.1;
    let location = match rest.split_once(": ") {
        Some((location, _reason)) => location,
        None => rest.strip_suffix(':')?,
    };
    (!location.is_empty() && !location.contains(' ')).then_some(location)
}

/// Splits a pytest node id off the front of `text`: no spaces, except inside one trailing
/// `[...]` parameter id (`test_div[1 - 0]`).
fn split_node_id(text: &str) -> Option<(&str, &str)> {
    let end = text.find([' ', '[']).unwrap_or(text.len());
    let end = if text[end..].starts_with('[') {
        end + text[end..].find(']')? + 1
    } else {
        end
    };
    let (node_id, after) = text.split_at(end);
    (!node_id.is_empty()).then_some((node_id, after))
}

/// pytest-xdist prefixes `-v` results with the worker and progress: `[gw0] [ 50%] PASSED ...`.
fn strip_xdist_prefix(line: &str) -> &str {
    let Some(rest) = line.strip_prefix("[gw") else {
        return line;
    };
    rest.split_once("] [")
        .and_then(|(_worker, rest)| rest.split_once("%] "))
        .map_or(line, |(_progress, rest)| rest)
}

/// `go test -v`: `--- PASS: TestX (0.00s)`, indented for subtests (`TestX/case`). Results are
/// kept per package (a package ends with its `ok`/`FAIL`/`?` line), so equal test names in two
/// packages stay two entries.
fn parse_go_test(output: &str) -> Vec<TestCase> {
    let mut tests = Vec::new();
    let mut package = Results::default();
    for line in output.lines() {
        if is_go_package_line(line) {
            tests.extend(std::mem::take(&mut package).into_tests());
        } else if let Some((name, status)) = go_test_line(line) {
            package.record(name, status);
        }
    }
    tests.extend(package.into_tests());
    tests
}

fn go_test_line(line: &str) -> Option<(&str, TestStatus)> {
    let (word, rest) = line.trim_start().strip_prefix("--- ")?.split_once(": ")?;
    let status = match word {
        "PASS" => TestStatus::Passed,
        "FAIL" => TestStatus::Failed,
        "SKIP" => TestStatus::Skipped,
        _ => return None,
    };
    let name = rest.split_whitespace().next()?;
    Some((name, status))
}

/// `ok  \texample.com/calc\t0.002s`, `FAIL\texample.com/calc\t0.004s`,
/// `?   \texample.com/cmd\t[no test files]`.
fn is_go_package_line(line: &str) -> bool {
    let mut fields = line.split_whitespace();
    matches!(fields.next(), Some("ok" | "FAIL" | "?")) && fields.next().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use TestStatus::{Failed, Passed, Skipped};

    fn case(name: &str, status: TestStatus) -> TestCase {
        TestCase {
            name: name.to_owned(),
            status,
        }
    }

    /// `cargo test --no-fail-fast` on a crate with unit tests, an integration test and a
    /// doc-test, RUST_BACKTRACE=1 (stdout).
    const CARGO_TEST_STDOUT: &str = "
running 4 tests
test tests::adds ... ok
test tests::online ... ignored, needs network
test tests::slow ... ignored
test tests::breaks ... FAILED

failures:

---- tests::breaks stdout ----

thread 'tests::breaks' (30365) panicked at src/lib.rs:14:19:
assertion `left == right` failed
  left: 4
 right: 5
stack backtrace:
   0: __rustc::rust_begin_unwind
             at /rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/panicking.rs:689:5
   4: demo::tests::breaks
             at ./src/lib.rs:14:19
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.


failures:
    tests::breaks

test result: FAILED. 1 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.10s


running 2 tests
test adds ... ok
test overflow ... FAILED

failures:

---- overflow stdout ----

thread 'overflow' (30368) panicked at tests/api.rs:4:17:
boom
second line
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.


failures:
    overflow

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.13s


running 1 test
test src/lib.rs - add (line 3) ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

all doctests ran in 0.27s; merged doctests compilation took 0.26s
";

    const CARGO_TEST_STDERR: &str = "   Compiling demo v0.1.0 (/tmp/va-sample/demo)
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.29s
     Running unittests src/lib.rs (/tmp/va-sample/target/debug/deps/demo-8348ca7a80742723)
error: test failed, to rerun pass `--lib`
     Running tests/api.rs (/tmp/va-sample/target/debug/deps/api-0de6da0f84bbd512)
error: test failed, to rerun pass `--test api`
   Doc-tests demo
error: 2 targets failed:
    `--lib`
    `--test api`
";

    #[test]
    fn libtest_reads_every_binary_and_the_doc_tests() {
        let parsed = parse_output(CARGO_TEST_STDOUT, CARGO_TEST_STDERR).unwrap();
        assert_eq!(parsed.format, "libtest");
        assert_eq!(
            parsed.tests,
            vec![
                case("tests::adds", Passed),
                case("tests::online", Skipped),
                case("tests::slow", Skipped),
                case("tests::breaks", Failed),
                case("adds", Passed),
                case("overflow", Failed),
                case("src/lib.rs - add (line 3)", Passed),
            ]
        );
    }

    #[test]
    fn libtest_keeps_equal_names_from_two_binaries() {
        let output = "
running 1 test
test adds ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s


running 1 test
test adds ... FAILED

failures:

---- adds stdout ----
thread 'adds' panicked at tests/api.rs:2:5:
nope

failures:
    adds

test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(
            parsed.tests,
            vec![case("adds", Passed), case("adds", Failed)]
        );
    }

    /// `cargo test -- --nocapture --test-threads=1`, stdout and stderr interleaved: panics and
    /// the tests' own prints split `test name ... ` from its status.
    #[test]
    fn libtest_with_a_panic_message_between_name_and_status() {
        let output = "     Running unittests src/lib.rs (/tmp/va-sample/target/debug/deps/demo-8348ca7a80742723)

running 5 tests
test more::flaky ... 
thread 'more::flaky' (31044) panicked at src/lib.rs:28:116:
first try
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
FAILED
test tests::adds ... hello from adds
ok
test tests::breaks ... 
thread 'tests::breaks' (31046) panicked at src/lib.rs:14:19:
assertion `left == right` failed
  left: 4
 right: 5
FAILED
test tests::online ... ignored, needs network
test tests::slow ... ignored

failures:

failures:
    more::flaky
    tests::breaks

test result: FAILED. 1 passed; 2 failed; 2 ignored; 0 measured; 2 filtered out; finished in 0.00s

error: test failed, to rerun pass `--lib`
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(parsed.format, "libtest");
        assert_eq!(
            parsed.tests,
            vec![
                case("more::flaky", Failed),
                case("tests::adds", Passed),
                case("tests::breaks", Failed),
                case("tests::online", Skipped),
                case("tests::slow", Skipped),
            ]
        );
    }

    #[test]
    fn libtest_failure_list_names_a_test_whose_status_line_was_swallowed() {
        // The test printed without a newline, so `FAILED` is glued to its output.
        let output = "
running 2 tests
test quiet ... ok
test chatty ... partial outputFAILED

failures:

---- chatty stdout ----
partial output
    indented output of the test, not a name

failures:
    chatty

test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(
            parsed.tests,
            vec![case("quiet", Passed), case("chatty", Failed)]
        );
    }

    #[test]
    fn libtest_should_panic_and_report_time_forms() {
        let output = "
running 3 tests
test tests::rejects_zero - should panic ... ok
test tests::timed ... ok <0.001s>
test tests::also_timed ... FAILED <0.002s>

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(
            parsed.tests,
            vec![
                case("tests::rejects_zero", Passed),
                case("tests::timed", Passed),
                case("tests::also_timed", Failed),
            ]
        );
    }

    /// `cargo nextest run --no-fail-fast --status-level all --final-status-level all` (stderr),
    /// including the captured output of failures (which embeds libtest lines) and the summary
    /// that repeats every result.
    const NEXTEST_STDERR: &str = "    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.01s
────────────
 Nextest run ID 841bd048-37a9-42d8-96ba-d891409f1620 with nextest profile: default
    Starting 6 tests across 2 binaries (3 tests skipped)
        SKIP [         ] (───) demo more::hangs
        FAIL [   0.008s] (1/6) demo more::flaky
  stdout ───

    running 1 test
    test more::flaky ... FAILED

    failures:

    failures:
        more::flaky

    test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 8 filtered out; finished in 0.00s

  stderr ───

    thread 'more::flaky' (30525) panicked at src/lib.rs:28:116:
    first try
    note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

     SIGSEGV [   0.009s] (2/6) demo more::segv
        SKIP [         ] (───) demo tests::online
        SKIP [         ] (───) demo tests::slow
        PASS [   0.006s] (3/6) demo tests::adds
        FAIL [   0.008s] (4/6) demo tests::breaks
        PASS [   0.006s] (5/6) demo::api adds
        FAIL [   0.007s] (6/6) demo::api overflow
────────────
     Summary [   0.025s] 6 tests run: 2 passed, 4 failed, 3 skipped
        PASS [   0.006s] (3/6) demo tests::adds
        PASS [   0.006s] (5/6) demo::api adds
        SKIP [         ] (───) demo more::hangs
        SKIP [         ] (───) demo tests::online
        SKIP [         ] (───) demo tests::slow
        FAIL [   0.008s] (1/6) demo more::flaky
     SIGSEGV [   0.009s] (2/6) demo more::segv
        FAIL [   0.008s] (4/6) demo tests::breaks
        FAIL [   0.007s] (6/6) demo::api overflow
error: test run failed
";

    #[test]
    fn nextest_reads_results_once_despite_the_summary() {
        let parsed = parse_output("", NEXTEST_STDERR).unwrap();
        assert_eq!(parsed.format, "nextest");
        assert_eq!(
            parsed.tests,
            vec![
                case("demo more::hangs", Skipped),
                case("demo more::flaky", Failed),
                case("demo more::segv", Failed),
                case("demo tests::online", Skipped),
                case("demo tests::slow", Skipped),
                case("demo tests::adds", Passed),
                case("demo tests::breaks", Failed),
                case("demo::api adds", Passed),
                case("demo::api overflow", Failed),
            ]
        );
    }

    /// `--retries 1` with a slow-timeout: tries, timeouts (`TMT`), progress-only lines
    /// (`SLOW`, `TRMNTG`) and the `FLAKY` summary line.
    #[test]
    fn nextest_retries_timeouts_and_flaky_tests() {
        let output = "    Starting 7 tests across 2 binaries (2 tests skipped)
  TRY 1 FAIL [   0.006s] (───) demo more::flaky
  TRY 2 PASS [   0.005s] (1/7) demo more::flaky
  TRY 1 SEGV [   0.005s] (───) demo more::segv
  TRY 2 SEGV [   0.005s] (2/7) demo more::segv
        PASS [   0.005s] (3/7) demo tests::adds
        SLOW [>  1.000s] (───) demo more::hangs
TRY 1 TRMNTG [>  2.000s] (───) demo more::hangs
   TRY 1 TMT [   2.004s] (───) demo more::hangs
  TRY 2 SLOW [>  1.000s] (───) demo more::hangs
TRY 2 TRMNTG [>  2.000s] (───) demo more::hangs
   TRY 2 TMT [   2.003s] (7/7) demo more::hangs
────────────
     Summary [   4.008s] 7 tests run: 3 passed (1 flaky), 3 failed, 1 timed out, 2 skipped
        PASS [   0.005s] (3/7) demo tests::adds
   FLAKY 2/2 [   0.005s] (1/7) demo more::flaky
  TRY 2 SEGV [   0.005s] (2/7) demo more::segv
   TRY 2 TMT [   2.003s] (7/7) demo more::hangs
error: test run failed
";
        let parsed = parse_output("", output).unwrap();
        assert_eq!(
            parsed.tests,
            vec![
                case("demo more::flaky", Failed),
                case("demo more::segv", Failed),
                case("demo tests::adds", Passed),
                case("demo more::hangs", Failed),
            ]
        );
    }

    #[test]
    fn nextest_older_lines_without_a_counter_and_timeout_word() {
        let output = "        PASS [   0.003s] my-crate tests::adds
        FAIL [   0.004s] my-crate tests::breaks
     TIMEOUT [  60.001s] my-crate tests::hangs
";
        let parsed = parse_output("", output).unwrap();
        assert_eq!(
            parsed.tests,
            vec![
                case("my-crate tests::adds", Passed),
                case("my-crate tests::breaks", Failed),
                case("my-crate tests::hangs", Failed),
            ]
        );
    }

    /// `python3 -m pytest -q -rA -p no:cacheprovider` (pytest 9.2).
    const PYTEST_QUIET: &str =
        ".FEsxX.F                                                                 [100%]
==================================== ERRORS ====================================
______________________ ERROR at setup of test_uses_broken ______________________

    @pytest.fixture
    def broken():
>       raise RuntimeError(\"fixture exploded\")
E       RuntimeError: fixture exploded

tests/test_calc.py:11: RuntimeError
=================================== FAILURES ===================================
_________________________________ test_breaks __________________________________

    def test_breaks():
>       assert 1 + 1 == 3
E       assert (1 + 1) == 3

tests/test_calc.py:7: AssertionError
________________________________ test_param[2] _________________________________

value = 2

    @pytest.mark.parametrize(\"value\", [1, 2])
    def test_param(value):
        print(\"value is\", value)
>       assert value == 1
E       assert 2 == 1

tests/test_calc.py:31: AssertionError
----------------------------- Captured stdout call -----------------------------
value is 2
==================================== PASSES ====================================
________________________________ test_param[1] _________________________________
----------------------------- Captured stdout call -----------------------------
value is 1
=================================== XPASSES ====================================
=========================== short test summary info ============================
PASSED tests/test_calc.py::test_adds
PASSED tests/test_calc.py::test_param[1]
SKIPPED [1] tests/test_calc.py:16: not on this platform
XFAIL tests/test_calc.py::test_known_bug - known bug
XPASS tests/test_calc.py::test_fixed_upstream - fixed upstream
ERROR tests/test_calc.py::test_uses_broken - RuntimeError: fixture exploded
FAILED tests/test_calc.py::test_breaks - assert (1 + 1) == 3
FAILED tests/test_calc.py::test_param[2] - assert 2 == 1
2 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error in 0.03s
";

    #[test]
    fn pytest_short_summary() {
        let parsed = parse_output(PYTEST_QUIET, "").unwrap();
        assert_eq!(parsed.format, "pytest");
        assert_eq!(
            parsed.tests,
            vec![
                case("tests/test_calc.py::test_adds", Passed),
                case("tests/test_calc.py::test_param[1]", Passed),
                case("tests/test_calc.py::test_known_bug", Skipped),
                case("tests/test_calc.py::test_fixed_upstream", Passed),
                case("tests/test_calc.py::test_uses_broken", Failed),
                case("tests/test_calc.py::test_breaks", Failed),
                case("tests/test_calc.py::test_param[2]", Failed),
                case("tests/test_calc.py:16", Skipped),
            ]
        );
    }

    /// `python3 -m pytest -v -rA -p no:cacheprovider`: a progress section and a summary naming
    /// the same tests.
    #[test]
    fn pytest_progress_and_summary_are_merged() {
        let output =
            "============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0 -- /tmp/va-sample/venv/bin/python
rootdir: /tmp/va-sample/py
collecting ... collected 8 items

tests/test_calc.py::test_adds PASSED                                     [ 12%]
tests/test_calc.py::test_breaks FAILED                                   [ 25%]
tests/test_calc.py::test_uses_broken ERROR                               [ 37%]
tests/test_calc.py::test_skipped SKIPPED (not on this platform)          [ 50%]
tests/test_calc.py::test_known_bug XFAIL (known bug)                     [ 62%]
tests/test_calc.py::test_fixed_upstream XPASS (fixed upstream)           [ 75%]
tests/test_calc.py::test_param[1] PASSED                                 [ 87%]
tests/test_calc.py::test_param[2] FAILED                                 [100%]

==================================== ERRORS ====================================
______________________ ERROR at setup of test_uses_broken ______________________
E       RuntimeError: fixture exploded

tests/test_calc.py:11: RuntimeError
=================================== FAILURES ===================================
_________________________________ test_breaks __________________________________
E       assert (1 + 1) == 3

tests/test_calc.py:7: AssertionError
=========================== short test summary info ============================
PASSED tests/test_calc.py::test_adds
PASSED tests/test_calc.py::test_param[1]
SKIPPED [1] tests/test_calc.py:16: not on this platform
XFAIL tests/test_calc.py::test_known_bug - known bug
XPASS tests/test_calc.py::test_fixed_upstream - fixed upstream
ERROR tests/test_calc.py::test_uses_broken - RuntimeError: fixture exploded
FAILED tests/test_calc.py::test_breaks - assert (1 + 1) == 3
FAILED tests/test_calc.py::test_param[2] - assert 2 == 1
==== 2 failed, 2 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error in 0.04s =====
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(
            parsed.tests,
            vec![
                case("tests/test_calc.py::test_adds", Passed),
                case("tests/test_calc.py::test_breaks", Failed),
                case("tests/test_calc.py::test_uses_broken", Failed),
                case("tests/test_calc.py::test_skipped", Skipped),
                case("tests/test_calc.py::test_known_bug", Skipped),
                case("tests/test_calc.py::test_fixed_upstream", Passed),
                case("tests/test_calc.py::test_param[1]", Passed),
                case("tests/test_calc.py::test_param[2]", Failed),
            ]
        );
    }

    #[test]
    fn pytest_teardown_error_after_a_pass_counts_as_failed() {
        let output =
            "tests/test_db.py::test_insert PASSED                                     [100%]
tests/test_db.py::test_insert ERROR                                      [100%]
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(
            parsed.tests,
            vec![case("tests/test_db.py::test_insert", Failed)]
        );
    }

    #[test]
    fn pytest_collection_errors_params_with_spaces_and_xdist() {
        let output = "[gw0] [ 50%] PASSED tests/test_div.py::test_div[1 - 1]
[gw1] [100%] FAILED tests/test_div.py::test_div[1 - 0]
=========================== short test summary info ============================
FAILED tests/test_div.py::test_div[1 - 0] - ZeroDivisionError: division by zero
ERROR tests/test_broken.py - ModuleNotFoundError: No module named 'missing'
ERROR    root:logging.py:12 not a test result
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(
            parsed.tests,
            vec![
                case("tests/test_div.py::test_div[1 - 1]", Passed),
                case("tests/test_div.py::test_div[1 - 0]", Failed),
                case("tests/test_broken.py", Failed),
            ]
        );
    }

    /// `go test -v ./...` over two packages (the same test name in both).
    #[test]
    fn go_test_verbose_with_subtests_and_two_packages() {
        let output = "=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
=== RUN   TestSub
    calc_test.go:12: got 1, want 2
--- FAIL: TestSub (0.00s)
=== RUN   TestTable
=== RUN   TestTable/zero
=== RUN   TestTable/negative
    calc_test.go:25: negative: got -1
--- FAIL: TestTable (0.00s)
    --- PASS: TestTable/zero (0.00s)
    --- FAIL: TestTable/negative (0.00s)
=== RUN   TestNetwork
    calc_test.go:30: needs network
--- SKIP: TestNetwork (0.00s)
FAIL
FAIL\texample.com/calc\t0.002s
=== RUN   TestAdd
--- PASS: TestAdd (0.00s)
PASS
ok  \texample.com/calc/util\t0.001s
?   \texample.com/calc/cmd\t[no test files]
FAIL
";
        let parsed = parse_output(output, "").unwrap();
        assert_eq!(parsed.format, "go");
        assert_eq!(
            parsed.tests,
            vec![
                case("TestAdd", Passed),
                case("TestSub", Failed),
                case("TestTable", Failed),
                case("TestTable/zero", Passed),
                case("TestTable/negative", Failed),
                case("TestNetwork", Skipped),
                case("TestAdd", Passed),
            ]
        );
    }

    #[test]
    fn go_test_skip_without_duration() {
        let parsed = parse_output("--- SKIP: TestZ\n", "").unwrap();
        assert_eq!(parsed.tests, vec![case("TestZ", Skipped)]);
    }

    #[test]
    fn output_without_tests_is_not_parsed() {
        let stderr = "   Compiling demo v0.1.0 (/tmp/demo)
error[E0425]: cannot find value `x` in this scope
 --> src/lib.rs:1:13
error: could not compile `demo` (lib) due to 1 previous error
";
        assert_eq!(parse_output("", stderr), None);
        assert_eq!(parse_output("", ""), None);
    }

    /// `pytest --junitxml` (pytest 9.2).
    #[test]
    fn junit_from_pytest() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="2" tests="5" time="0.073" timestamp="2026-11-22T05:07:04.161790+00:00" hostname="vm"><testcase classname="tests.test_calc" name="test_adds" time="0.001" /><testcase classname="tests.test_calc" name="test_breaks" time="0.001"><failure message="assert (1 + 1) == 3">def test_breaks():
&gt;       assert 1 + 1 == 3
E       assert (1 + 1) == 3

tests/test_calc.py:7: AssertionError</failure></testcase><testcase classname="tests.test_calc" name="test_uses_broken" time="0.000"><error message="failed on setup with &quot;RuntimeError: fixture exploded&quot;">E       RuntimeError: fixture exploded</error></testcase><testcase classname="tests.test_calc" name="test_skipped" time="0.000"><skipped type="pytest.skip" message="not on this platform">/tmp/va-sample/py/tests/test_calc.py:16: not on this platform</skipped></testcase><testcase classname="tests.test_calc" name="test_known_bug" time="0.000"><skipped type="pytest.xfail" message="known bug" /></testcase></testsuite></testsuites>"#;
        assert_eq!(
            parse_junit(xml).unwrap(),
            vec![
                case("tests.test_calc.test_adds", Passed),
                case("tests.test_calc.test_breaks", Failed),
                case("tests.test_calc.test_uses_broken", Failed),
                case("tests.test_calc.test_skipped", Skipped),
                case("tests.test_calc.test_known_bug", Skipped),
            ]
        );
    }

    /// Maven surefire's `TEST-*.xml`: a lone `<testsuite>` root with properties and output.
    #[test]
    fn junit_from_surefire() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="https://maven.apache.org/surefire/maven-surefire-plugin/xsd/surefire-test-report.xsd" name="com.example.CalcTest" time="0.031" tests="3" errors="0" skipped="1" failures="1">
  <properties>
    <property name="java.version" value="21.0.2"/>
  </properties>
  <testcase name="adds" classname="com.example.CalcTest" time="0.001"/>
  <testcase name="breaks" classname="com.example.CalcTest" time="0.004">
    <failure message="expected: &lt;4&gt; but was: &lt;5&gt;" type="org.opentest4j.AssertionFailedError"><![CDATA[org.opentest4j.AssertionFailedError: expected: <4> but was: <5>
	at com.example.CalcTest.breaks(CalcTest.java:14)
]]></failure>
    <system-out><![CDATA[computing 2 + 2
]]></system-out>
  </testcase>
  <testcase name="later" classname="" time="0">
    <skipped message="not yet"/>
  </testcase>
</testsuite>
"#;
        assert_eq!(
            parse_junit(xml).unwrap(),
            vec![
                case("com.example.CalcTest.adds", Passed),
                case("com.example.CalcTest.breaks", Failed),
                case("later", Skipped),
            ]
        );
    }

    #[test]
    fn junit_rejects_what_is_not_a_report() {
        let not_xml = parse_junit("test result: ok. 3 passed").unwrap_err();
        assert!(matches!(not_xml, JunitError::NotXml(_)), "{not_xml}");
        assert!(not_xml.to_string().contains("not well-formed XML"));

        let html = parse_junit("<html><body>502</body></html>").unwrap_err();
        assert_eq!(
            html.to_string(),
            "the JUnit report's root element is <html>, expected <testsuites> or <testsuite>"
        );

        let unnamed =
            parse_junit("<testsuite>\n  <testcase classname=\"A\"/>\n</testsuite>").unwrap_err();
        assert_eq!(
            unnamed.to_string(),
            "the JUnit report has a <testcase> without a name attribute at line 2"
        );
    }
}
