//! The web dashboard in a real browser: headless Chromium, driven over WebDriver by
//! `takt_test_support::webdriver`, against `takt run --port 0` on a test factory. Screenshots
//! of each step land in `target/test-artifacts/browser/`.
//!
//! These tests need Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without
//! them they fail, so a CI machine cannot pass them by not running them.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::json;
use takt_test_support::webdriver::{Browser, is_png};
use takt_test_support::{WorkflowFile, read_or_empty, wait_until};

use super::Factory;

/// How long any one step may take before the test gives up.
const STEP: Duration = Duration::from_secs(30);

/// `takt run --port 0` in the background; SIGTERM (then SIGKILL) when dropped.
struct ServedDaemon {
    child: Child,
    log: PathBuf,
    base: String,
}

impl ServedDaemon {
    fn start(f: &Factory, env: &[(&str, &str)]) -> ServedDaemon {
        let log = f.repo.root().join("daemon.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut command = f.takt.command(&["run", "--port", "0"]);
        for (name, value) in env {
            command.env(name, value);
        }
        command.stdout(out.try_clone().unwrap()).stderr(out);
        let child = command.spawn().unwrap();
        let addr_file = f.takt.state_dir().join("api.addr");
        wait_until(
            "the API address file",
            STEP,
            || addr_file.exists(),
            || read_or_empty(&log),
        );
        let base = format!(
            "http://{}",
            std::fs::read_to_string(&addr_file).unwrap().trim()
        );
        ServedDaemon { child, log, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        read_or_empty(&self.log)
    }
}

impl Drop for ServedDaemon {
    fn drop(&mut self) {
        takt_test_support::signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CSS selector of `identifier`'s card in board column `column`.
fn card_in(column: &str, identifier: &str) -> String {
    format!(r#"[data-column="{column}"] [data-task="{identifier}"]"#)
}

/// Saves a screenshot and checks it is a PNG.
fn snap(browser: &Browser, step: &str) {
    let path = browser.screenshot(step);
    assert!(is_png(&path), "{} is not a PNG screenshot", path.display());
}

#[test]
fn browser_the_board_shows_a_task_moving_through_states_live() {
    let f = Factory::new("browser-board", |f| {
        let release = f.log_dir().join("release");
        WorkflowFile::new(f.agent_command(&format!(
            "set -e\nwhile [ ! -f {release} ]; do sleep 0.1; done\n\
             mkdir -p changes\necho painted > \"changes/$TAKT_ISSUE_IDENTIFIER.txt\"\n",
            release = release.display()
        )))
    });
    let daemon = ServedDaemon::start(&f, &[]);
    let browser = Browser::start("board-live");
    browser.goto(&daemon.url("/"));
    browser.wait_for(r#"[data-column="running"]"#, STEP);
    // A mark on this page: if the board reloaded instead of updating in place, it is gone.
    browser.execute("window.taktTestMark = 'same page'; return true;", vec![]);
    snap(&browser, "1-empty");

    f.takt.add_task("Paint the fence", &[]);
    browser.wait_for(&card_in("running", "TAKT-1"), STEP);
    snap(&browser, "2-running");

    std::fs::write(f.log_dir().join("release"), "go").unwrap();
    browser.wait_for(
        &format!(
            r#"{}[data-state="awaiting_review"]"#,
            card_in("review", "TAKT-1")
        ),
        STEP,
    );
    snap(&browser, "3-review");
    assert_eq!(
        browser.execute("return window.taktTestMark || null;", vec![]),
        json!("same page"),
        "the board changed without a reload"
    );
    assert!(
        browser.find(&card_in("running", "TAKT-1")).is_none(),
        "the card left the running column:\n{}",
        daemon.log()
    );
}

#[test]
fn browser_approving_from_the_task_page_merges_the_task() {
    let token = "browser-t0ken";
    let f = Factory::new("browser-approve", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.extra = "server:\n  token: $TAKT_E2E_API_TOKEN\n".into();
        wf
    });
    let daemon = ServedDaemon::start(&f, &[("TAKT_E2E_API_TOKEN", token)]);
    f.takt.add_task("Approve me", &[]);
    f.wait_for_state("TAKT-1", "awaiting_review", STEP);

    let browser = Browser::start("approve");
    browser.goto(&daemon.url("/tasks/TAKT-1"));
    // The server has a token: the page offers a login instead of the forms.
    let login = browser.wait_for(r#"#actions a[href^="/login"]"#, STEP);
    assert!(browser.find("#approve").is_none());
    browser.click(&login);
    let field = browser.wait_for("#token", STEP);
    browser.type_text(&field, token);
    snap(&browser, "1-login");
    browser.click(&browser.wait_for("#login", STEP));

    // Back on the task page, logged in.
    let approve = browser.wait_for("#approve", STEP);
    // The change is shown as a coloured diff, read from the repository mirror.
    let added = browser.wait_for("pre.diff span.add", STEP);
    assert!(
        browser.text(&added).contains("TAKT-1 attempt 1"),
        "{}",
        browser.source()
    );
    let by = browser.wait_for(r#"#actions input[name="by"]"#, STEP);
    browser.clear(&by);
    browser.type_text(&by, "reviewer-ann");
    snap(&browser, "2-review");
    browser.click(&approve);

    f.wait_for_state("TAKT-1", "done", STEP);
    let task = f.takt.task("TAKT-1");
    let approvals = task["approvals"].to_string();
    assert!(approvals.contains("reviewer-ann"), "{task:#}");
    browser.wait_for(r#"#task-status[data-state="done"]"#, STEP);
    snap(&browser, "3-merged");
}

#[test]
fn browser_an_answer_to_a_blocked_task_resumes_it() {
    let f = Factory::bare("browser-answer");
    let log = f.log_dir();
    let command = f.agent_command(&format!(
        "set -e\nmkdir -p {log}\nrun=${{TAKT_RUN_ID##*#}}\n\
         cp \"$TAKT_PROMPT_FILE\" {log}/prompt-$TAKT_ISSUE_IDENTIFIER-$run.md\n\
         if grep -q '^Feedback: ' \"$TAKT_PROMPT_FILE\"; then\n\
           echo colored > color.txt\n\
         else\n\
           echo 'Which color should the button be?' > \"$TAKT_QUESTION_FILE\"\n\
         fi\n",
        log = log.display()
    ));
    f.write_workflow(&WorkflowFile::new(command));
    let daemon = ServedDaemon::start(&f, &[]);
    f.takt.add_task("Color the button", &[]);
    f.wait_for_state("TAKT-1", "blocked", STEP);

    let browser = Browser::start("answer");
    browser.goto(&daemon.url("/tasks/TAKT-1"));
    let question = browser.wait_for("#task-status .question", STEP);
    assert!(
        browser
            .text(&question)
            .contains("Which color should the button be?")
    );
    let answer = browser.wait_for("#answer-text", STEP);
    browser.type_text(&answer, "Blue, like the sky");
    snap(&browser, "1-blocked");
    browser.click(&browser.wait_for("#answer", STEP));

    // The agent's next run got the answer, and the task went on to review.
    wait_until(
        "the second run's prompt to carry the answer",
        STEP,
        || {
            f.prompt("TAKT-1", 2)
                .contains("Feedback: Blue, like the sky")
        },
        || daemon.log(),
    );
    f.wait_for_state("TAKT-1", "awaiting_review", STEP);
    browser.wait_for(r#"#task-status[data-state="awaiting_review"]"#, STEP);
    snap(&browser, "2-resumed");
}
