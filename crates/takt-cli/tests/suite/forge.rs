//! Publishing to a forge end to end: `takt run` against the fake GitHub (REST v3 as
//! documented), pushing to a real bare repository. A verified change becomes one pull request
//! carrying its evidence; it merges on the forge once approved there with green checks; a red
//! check sends it back to the agent with the log and the next round updates the same pull
//! request; a publish that broke off after the push is finished at the next poll, never
//! duplicated; the forge token never reaches the agent.

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;
use takt_forge::fake::{GithubFake, GitlabFake};
use takt_test_support::{git, wait_until};

use super::Factory;

const TOKEN: &str = "ghp_e2e_forge_token_0123456789";
const TOKEN_VAR: &str = "TAKT_E2E_FORGE_TOKEN";
const REPO: &str = "acme/widgets";

enum FakeForge {
    Github(GithubFake),
    Gitlab(GitlabFake),
}

struct Forge {
    f: Factory,
    fake: FakeForge,
    daemon: Option<Child>,
    log: PathBuf,
    // Last: the fake's server runs on it until the test ends.
    _runtime: tokio::runtime::Runtime,
}

impl Forge {
    fn start(label: &str) -> Forge {
        Forge::start_with(label, None, false)
    }

    fn github(&self) -> &GithubFake {
        match &self.fake {
            FakeForge::Github(fake) => fake,
            FakeForge::Gitlab(_) => panic!("this test runs against the GitLab fake"),
        }
    }

    /// With `tracker`: the issues come from the fake GitHub Issues at that URL instead of the
    /// local tracker, and merged issues are closed there. With `gitlab`: the GitLab fake. Both
    /// use takt's built-in agent against the embedded mock model, which writes
    /// `greeting.txt`; the other tests use a recording shell agent.
    fn start_with(label: &str, tracker: Option<&str>, gitlab: bool) -> Forge {
        let f = Factory::bare(label);
        let remote = f.repo.root().join("remote.git");
        git(f.repo.root(), &["init", "--quiet", "--bare", "remote.git"]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (fake, api_url) = if gitlab {
            let fake = runtime.block_on(GitlabFake::start(&remote, REPO, TOKEN));
            let url = fake.api_url();
            (FakeForge::Gitlab(fake), url)
        } else {
            let fake = runtime.block_on(GithubFake::start(&remote, REPO, TOKEN));
            let url = fake.api_url();
            (FakeForge::Github(fake), url)
        };
        // The agent records its prompt and environment, then changes a file.
        let log = f.log_dir();
        let command = f.agent_command(&format!(
            "set -e\nLOG={log}\nmkdir -p \"$LOG\"\nrun=${{TAKT_RUN_ID##*#}}\n\
             cp \"$TAKT_PROMPT_FILE\" \"$LOG/prompt-$TAKT_ISSUE_IDENTIFIER-$run.md\"\n\
             env > \"$LOG/env-$TAKT_ISSUE_IDENTIFIER-$run\"\n\
             mkdir -p changes\n\
             echo \"$TAKT_ISSUE_IDENTIFIER round $run\" >> \"changes/$TAKT_ISSUE_IDENTIFIER.txt\"\n",
            log = log.display()
        ));
        let mut workflow = takt_test_support::WorkflowFile::new(command);
        workflow.max_attempts = 4;
        let mut text = f.sandboxed(&workflow).render();
        if tracker.is_some() || gitlab {
            let scenarios = f.repo.root().join("scenarios");
            takt_test_support::write(
                &scenarios.join("default.yaml"),
                "steps:\n  - tool: {name: write_file, arguments: {path: greeting.txt, content: \"hello\\n\"}}\n  \
                 - tool: {name: finish, arguments: {summary: added a greeting}}\n  - text: DONE\n",
            );
            text = text.replacen(
                "agent:\n  backend: command\n",
                &format!(
                    "model:\n  provider: mock\n  name: gpt-5.5\n  scenarios: {}\nagent:\n  backend: builtin\n",
                    scenarios.display()
                ),
                1,
            );
        }
        if let Some(tracker_url) = tracker {
            text = text.replacen(
                "tracker:\n  kind: local\n",
                &format!(
                    "tracker:\n  kind: github\n  on_done: closed\n  provider:\n    repo: {REPO}\n    \
                     api_url: {tracker_url}\n    token: ${TOKEN_VAR}\n"
                ),
                1,
            );
        }
        let text = text.replacen(
            "  forge: local\n",
            &format!(
                "  forge: {}\n  {}: {REPO}\n  api_url: {api_url}\n  remote: {}\n  token: ${TOKEN_VAR}\n  \
                 max_ci_rounds: 1\n",
                if gitlab { "gitlab" } else { "github" },
                if gitlab { "project_path" } else { "repo" },
                remote.display()
            ),
            1,
        );
        std::fs::write(f.repo.workflow_path(), text).unwrap();
        f.repo.git(&["add", "-A"]);
        f.repo.git(&["commit", "--quiet", "-m", "workflow"]);
        let base = f.repo.git(&["rev-parse", "--abbrev-ref", "HEAD"]);
        f.repo.git(&[
            "push",
            "--quiet",
            &remote.display().to_string(),
            &format!("HEAD:refs/heads/{}", base.trim()),
        ]);
        let log = f.repo.root().join("daemon.log");
        let mut forge = Forge {
            f,
            fake,
            daemon: None,
            log,
            _runtime: runtime,
        };
        forge.run_daemon();
        forge
    }

    fn run_daemon(&mut self) {
        let mut command = self.f.takt.command(&["run"]);
        command.env(TOKEN_VAR, TOKEN);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        command.stdout(out.try_clone().unwrap()).stderr(out);
        self.daemon = Some(command.spawn().unwrap());
    }

    fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn daemon_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait(&self, what: &str, until: impl Fn() -> bool) {
        wait_until(what, Duration::from_secs(90), until, || {
            format!(
                "{}\nrequests: {}\nstates: {:?}",
                self.daemon_log(),
                match &self.fake {
                    FakeForge::Github(fake) => format!("{:?}", fake.pulls()),
                    FakeForge::Gitlab(fake) => format!("{:?}", fake.merge_requests()),
                },
                self.f.states()
            )
        });
    }

    fn task(&self, identifier: &str) -> Value {
        let out = self.f.takt.ok(&["task", "show", identifier, "--json"]);
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// The commit the pull request's branch points at on the remote.
    /// `path` on `branch` of the remote (the fakes mark requests merged without moving the
    /// base branch), if it is there.
    fn show(&self, branch: &str, path: &str) -> Option<String> {
        let remote = self.f.repo.root().join("remote.git");
        let out = takt_test_support::git_output(
            &remote,
            &["show", &format!("refs/heads/{branch}:{path}")],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn head(&self, branch: &str) -> String {
        git(
            &self.f.repo.root().join("remote.git"),
            &["rev-parse", &format!("refs/heads/{branch}")],
        )
        .trim()
        .to_owned()
    }

    fn add_task(&self, title: &str) -> String {
        let out = self.f.takt.ok(&["task", "add", "--title", title, "--json"]);
        let issue: Value = serde_json::from_str(&out.stdout).unwrap();
        issue["identifier"].as_str().unwrap().to_owned()
    }
}

impl Drop for Forge {
    fn drop(&mut self) {
        self.kill_daemon();
    }
}

#[test]
fn a_change_becomes_one_pull_request_with_its_evidence_and_merges_once_approved_and_green() {
    let w = Forge::start("forge-merge");
    let id = w.add_task("Add a greeting");
    w.wait("the pull request", || w.github().pulls().len() == 1);
    w.wait("the task to await review", || {
        w.task(&id)["state"] == "awaiting_review" && w.task(&id)["pull_request"].is_object()
    });
    let pull = &w.github().pulls()[0];
    let branch = pull.head.clone();
    assert_eq!(branch, format!("takt/{id}"));
    assert!(
        pull.title.starts_with(&format!("{id}: Add a greeting")),
        "{pull:?}"
    );
    assert!(
        pull.body
            .contains(&takt_forge::marker(w.task(&id)["id"].as_str().unwrap())),
        "{}",
        pull.body
    );
    assert!(
        pull.body.to_lowercase().contains("review"),
        "the risk tier: {}",
        pull.body
    );
    let head = w.head(&branch);
    assert_eq!(w.task(&id)["pull_request"]["head"], head.as_str());
    assert!(
        w.github()
            .statuses(&head)
            .iter()
            .any(|(context, state, _)| context == "takt/verify" && state == "success"),
        "{:?}",
        w.github().statuses(&head)
    );

    // Green checks alone do not merge a review-tier change; an approval on the forge does.
    w.github()
        .add_check(&head, "ci/test", Some("success"), "ok");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.task(&id)["state"], "awaiting_review");
    w.github().approve(pull.number, "bob");
    w.wait("the merge on the forge", || w.task(&id)["state"] == "done");
    let pulls = w.github().pulls();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert!(pulls[0].merged, "{pulls:?}");
    assert_eq!(pulls[0].merge_method.as_deref(), Some("squash"));
    assert!(
        w.task(&id)["approvals"]
            .as_array()
            .unwrap()
            .contains(&Value::from("github:bob"))
    );

    // The forge token went to the forge only, never into the agent's environment or takt's
    // journal.
    let env = std::fs::read_to_string(w.f.log_dir().join(format!("env-{id}-1"))).unwrap();
    assert!(!env.contains(TOKEN), "the agent saw the forge token");
    assert!(!env.contains(TOKEN_VAR));
    let journal = w.f.takt.ok(&["task", "events", &id, "--json"]).stdout;
    assert!(!journal.contains(TOKEN));
    assert!(
        w.github()
            .requests()
            .iter()
            .all(|request| request.authorized)
    );
}

#[test]
fn a_red_check_sends_the_change_back_with_its_log_and_the_next_round_updates_the_same_pull_request()
{
    let w = Forge::start("forge-red-check");
    let id = w.add_task("Fix the parser");
    w.wait("the pull request", || w.github().pulls().len() == 1);
    let number = w.github().pulls()[0].number;
    let branch = w.github().pulls()[0].head.clone();
    let first = w.head(&branch);
    // alice approves the first round only.
    w.github().approve(number, "alice");
    w.github().add_check(
        &first,
        "ci/test",
        Some("failure"),
        "running 3 tests\nassertion failed: parse(\"1+1\") == 2\n",
    );
    w.wait("the second round's prompt", || {
        !w.f.prompt(&id, 2).is_empty()
    });
    let prompt = w.f.prompt(&id, 2);
    assert!(prompt.contains("Check `ci/test` failed"), "{prompt}");
    assert!(prompt.contains("assertion failed: parse"), "{prompt}");

    w.wait(
        "the pull request to move to the second round's commit",
        || w.head(&branch) != first && w.task(&id)["state"] == "awaiting_review",
    );
    let second = w.head(&branch);
    w.github()
        .add_check(&second, "ci/test", Some("success"), "ok");
    // Green, but alice's approval is of the first round's commit. Two more reads of the
    // checks mean the daemon has acted on at least one answer that saw them green: still
    // nothing merges.
    let reads = || {
        w.github()
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(&format!("/commits/{second}/check-runs")))
            .count()
    };
    let seen = reads();
    w.wait("two more reads of the green checks, or a merge", || {
        reads() >= seen + 2 || w.task(&id)["state"] != "awaiting_review"
    });
    assert_eq!(
        w.task(&id)["state"],
        "awaiting_review",
        "an approval of an earlier push merged the change\n{}",
        w.daemon_log()
    );
    w.github().approve(number, "carol");
    w.wait("the merge", || w.task(&id)["state"] == "done");
    let approvals = w.task(&id)["approvals"].to_string();
    assert!(approvals.contains("github:carol"), "{approvals}");
    assert!(!approvals.contains("github:alice"), "{approvals}");
    let pulls = w.github().pulls();
    assert_eq!(pulls.len(), 1, "one pull request across rounds: {pulls:?}");
    // Both rounds' attestations went to the forge with the branch.
    let remote = w.f.repo.root().join("remote.git");
    for commit in [&first, &second] {
        let note = git(
            &remote,
            &["notes", "--ref", "takt", "show", commit.as_str()],
        );
        assert!(note.contains("in-toto"), "{commit}: {note}");
    }
    assert!(pulls[0].merged);
}

#[test]
fn cancelling_a_published_task_closes_its_pull_request_with_a_comment() {
    let w = Forge::start("forge-cancel");
    let id = w.add_task("Abandon the parser");
    w.wait("the pull request", || w.github().pulls().len() == 1);
    let number = w.github().pulls()[0].number;
    w.wait("the change to wait for review", || {
        w.task(&id)["state"] == "awaiting_review"
    });
    w.f.takt.ok(&["task", "cancel", &id]);
    // Closed first, then the comment.
    w.wait("the pull request to close with a comment", || {
        !w.github().pulls()[0].open && !w.github().conversation(number).is_empty()
    });
    let conversation = w.github().conversation(number);
    assert_eq!(conversation.len(), 1, "{conversation:?}");
    assert!(
        conversation[0].contains("an operator cancelled the task"),
        "{conversation:?}"
    );
    w.wait("the close to be journaled", || {
        w.f.takt
            .ok(&["task", "events", &id, "--json"])
            .stdout
            .contains("pull_request_closed")
    });
    assert!(!w.github().pulls()[0].merged);
}

#[test]
fn a_publish_that_broke_off_after_the_push_is_finished_once_even_across_a_kill() {
    let mut w = Forge::start("forge-crash");
    // The push succeeds; the forge then answers 502 to the next API call (finding the pull
    // request), so the first publish breaks off between push and pull request.
    w.github()
        .fail_next(502, &[], "{\"message\": \"Server Error\"}");
    let id = w.add_task("Survive a crash");
    w.wait("the pull request after the retry", || {
        w.github().pulls().len() == 1
    });
    assert!(
        w.daemon_log().contains("publishing failed"),
        "{}",
        w.daemon_log()
    );
    // kill -9 and start again: the restarted daemon finds the pull request, it opens none.
    w.kill_daemon();
    w.run_daemon();
    let number = w.github().pulls()[0].number;
    let head = w.head(&format!("takt/{id}"));
    w.github()
        .add_check(&head, "ci/test", Some("success"), "ok");
    w.github().approve(number, "dave");
    w.wait("the merge after the restart", || {
        w.task(&id)["state"] == "done"
    });
    assert_eq!(w.github().pulls().len(), 1, "{:?}", w.github().pulls());
}

#[test]
fn a_github_issue_becomes_a_merged_pull_request_and_the_issue_is_commented_and_closed() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let issues = runtime
        .block_on(takt_trackers::fake::GithubFake::github(REPO, TOKEN))
        .unwrap();
    let mut issue = takt_trackers::fake::FakeIssue::new(1, "open");
    issue.title = "Add a greeting".into();
    issues.add(issue);
    let w = Forge::start_with("forge-issue", Some(issues.url()), false);
    w.wait("the pull request", || w.github().pulls().len() == 1);
    let pull = w.github().pulls()[0].clone();
    assert!(pull.title.starts_with("GH-1: Add a greeting"), "{pull:?}");
    let comment = || issues.comments(1).join("\n---\n");
    w.wait("the issue comment naming the pull request", || {
        comment().contains("/pull/") || comment().contains(&format!("#{}", pull.number))
    });
    let head = w.head(&pull.head);
    w.github()
        .add_check(&head, "ci/test", Some("success"), "ok");
    w.github().approve(pull.number, "erin");
    w.wait("the issue to be closed", || {
        issues.issue(1).is_some_and(|issue| issue.state == "closed")
    });
    w.wait("the comment to say merged", || comment().contains("Merged"));
    assert_eq!(
        w.show(&pull.head, "greeting.txt").as_deref(),
        Some("hello\n"),
        "the mock model's agent wrote the change that merged"
    );
    assert_eq!(
        issues.comments(1).len(),
        1,
        "one comment, edited in place: {}",
        comment()
    );
    assert!(w.github().pulls()[0].merged);
    assert!(
        issues.requests().iter().all(|request| request.authorized),
        "every tracker request carried the token"
    );
    drop(w);
    drop(runtime);
}

#[test]
fn on_gitlab_a_change_becomes_one_merge_request_and_merges_once_approved_and_its_pipeline_passed() {
    let w = Forge::start_with("forge-gitlab", None, true);
    let FakeForge::Gitlab(fake) = &w.fake else {
        unreachable!()
    };
    let id = w.add_task("Add a greeting");
    w.wait("the merge request", || fake.merge_requests().len() == 1);
    w.wait("the task to await review", || {
        w.task(&id)["state"] == "awaiting_review" && w.task(&id)["pull_request"].is_object()
    });
    let request = fake.merge_requests()[0].clone();
    assert_eq!(request.source_branch, format!("takt/{id}"));
    assert!(
        request.description.contains("takt evidence"),
        "{}",
        request.description
    );
    let head = w.head(&request.source_branch);
    assert!(
        fake.statuses(&head)
            .iter()
            .any(|(name, state, _)| name == "takt/verify" && state == "success"),
        "{:?}",
        fake.statuses(&head)
    );
    fake.add_check(&head, "test", "success", "ok");
    fake.approve(request.iid, "frank");
    w.wait("the merge on GitLab", || w.task(&id)["state"] == "done");
    let requests = fake.merge_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].state, "merged");
    assert_eq!(
        w.show(&request.source_branch, "greeting.txt").as_deref(),
        Some("hello\n")
    );
    assert_eq!(requests[0].squash, Some(true));
    assert!(
        w.task(&id)["approvals"]
            .as_array()
            .unwrap()
            .contains(&Value::from("gitlab:frank"))
    );
}
