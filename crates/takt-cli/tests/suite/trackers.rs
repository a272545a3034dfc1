//! A remote tracker end to end (the fake GitHub Issues): a blocked task's question is written
//! back to its issue, and a person's answer in an issue comment mentioning the bot resumes it.

use std::time::Duration;

use takt_test_support::{WorkflowFile, wait_until};

use super::Factory;

const TOKEN: &str = "ghp_e2e_tracker_token_0123456789";

#[test]
fn an_answer_in_an_issue_comment_mentioning_the_bot_resumes_the_blocked_task() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let issues = runtime
        .block_on(takt_trackers::fake::GithubFake::github(
            "acme/widgets",
            TOKEN,
        ))
        .unwrap();
    let mut issue = takt_trackers::fake::FakeIssue::new(1, "open");
    issue.title = "Color the button".into();
    issues.add(issue);

    let f = Factory::bare("tracker-answer");
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
    let text = f.sandboxed(&WorkflowFile::new(command)).render().replacen(
        "tracker:\n  kind: local\n",
        &format!(
            "tracker:\n  kind: github\n  answer_mention: \"@acme-bot\"\n  provider:\n    \
             repo: acme/widgets\n    api_url: {}\n    token: $TAKT_E2E_TRACKER_TOKEN\n",
            issues.url()
        ),
        1,
    );
    std::fs::write(f.repo.workflow_path(), text).unwrap();
    let log_file = f.repo.root().join("daemon.log");
    let out = std::fs::File::create(&log_file).unwrap();
    let mut command = f.takt.command(&["run"]);
    command
        .env("TAKT_E2E_TRACKER_TOKEN", TOKEN)
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let mut daemon = command.spawn().unwrap();
    let logs = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let comment = || issues.comments(1).join("\n---\n");

    wait_until(
        "the question on the issue",
        Duration::from_secs(60),
        || comment().contains("Which color should the button be?"),
        || format!("{}\n{}", logs(), comment()),
    );
    assert!(comment().contains("takt answer GH-1"), "{}", comment());
    // A comment without the mention is conversation, not an answer.
    // Two more reads of the comments (`since=`: the answer reader's) mean the daemon has
    // looked at one that held mallory's comment.
    let answer_reads = || {
        issues
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/issues/1/comments") && r.query.contains("since="))
            .count()
    };
    let seen = answer_reads();
    issues.add_comment(1, "mallory", "I'd say red");
    wait_until(
        "two more reads of the comments, or an unblock",
        Duration::from_secs(60),
        || answer_reads() >= seen + 2 || f.takt.state_of("GH-1") != "blocked",
        || format!("{}\n{}", logs(), comment()),
    );
    assert_eq!(f.takt.state_of("GH-1"), "blocked", "{}", logs());
    issues.add_comment(1, "grace", "@Acme-Bot Blue, like the sky");
    wait_until(
        "the resumed run's change to wait for review",
        Duration::from_secs(60),
        || f.takt.state_of("GH-1") == "awaiting_review",
        || format!("{}\n{}", logs(), comment()),
    );
    let prompt = f.prompt("GH-1", 2);
    assert!(prompt.contains("Blue, like the sky"), "{prompt}");
    assert!(
        !prompt.contains("@Acme-Bot"),
        "the mention is not part of the answer: {prompt}"
    );
    let journal = f.takt.ok(&["task", "events", "GH-1", "--json"]).stdout;
    assert!(journal.contains("github:grace"), "{journal}");
    assert!(!journal.contains("mallory"), "{journal}");
    takt_test_support::signal(daemon.id(), "TERM");
    let _ = daemon.wait();
    drop(runtime);
}
