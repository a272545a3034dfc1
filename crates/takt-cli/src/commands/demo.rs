//! `takt demo`: a one-command tour. A temporary git repository (a small Rust crate), a
//! WORKFLOW.md running takt's built-in agent against the embedded scripted model (no network,
//! no keys), plus one task on the command backend with a shipped codemod; four tasks through
//! the whole line: dispatch, worktrees, metered model calls, gates on clean checkouts (a change
//! that does not compile is sent back with the compiler's output and fails after its rounds),
//! a question answered, review, rejection with feedback, and merges with attestations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use takt_core::OperatorCommand;
use takt_protocol::TaskSummary;
use takt_store::NewIssue;

use super::output::{self, clip, outln, print_table};
use crate::clock::now_ms;
use crate::daemon::{Daemon, Mode};
use crate::exit::Code;
use crate::project::Project;

const CODEMOD: &str = include_str!("../templates/demo-codemod.sh");

const LIB_RS: &str = r#"//! A tiny crate for the takt demo.

/// Adds two numbers.
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds() {
        assert_eq!(super::add(2, 2), 4);
    }
}
"#;

const CARGO_TOML: &str = r#"[package]
name = "demo"
version = "0.1.0"
edition = "2021"

[dependencies]
"#;

fn workflow_text(codemod: &Path) -> String {
    format!(
        r#"---
tracker:
  kind: local
polling:
  interval_ms: 1000
workspace:
  root: .takt/workspaces
  # A four-file repository gains nothing from overlays, and a workspace left mounted would
  # keep `rm -rf` of the demo's directory from finishing.
  overlay: false
agent:
  backend: builtin
  max_concurrent_agents: 4
  max_attempts: 2
  max_retry_backoff_ms: 1000
model:
  provider: mock
  name: takt-demo
command:
  run: sh {codemod}
sandbox:
  # Agents see only their workspace; the shipped codemod lives outside it.
  read_only: [{codemod}]
publish:
  forge: local
---
Task {{{{ issue.identifier }}}}: {{{{ issue.title }}}}

{{{{ issue.description }}}}
{{% if feedback %}}
Answer from a person: {{{{ feedback }}}}
{{% endif %}}"#,
        codemod = codemod.display()
    )
}

pub async fn run(dir: Option<PathBuf>, json: bool) -> Result<Code> {
    let (root, _keep) = match dir {
        Some(dir) => {
            fs_err::create_dir_all(&dir)?;
            (dir, None)
        }
        None => {
            let temp = tempfile::Builder::new().prefix("takt-demo-").tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    // The demo is meant to be looked at afterwards: keep the directory.
    let root = match _keep {
        Some(temp) => temp.keep(),
        None => root,
    };
    let repo = root.join("repo");
    if repo.exists() {
        bail!("{} already exists; pass an empty --dir", repo.display());
    }
    say(json, &format!("takt demo in {}", root.display()));
    let codemod = root.join("codemod.sh");
    fs_err::write(&codemod, CODEMOD)?;
    create_repo(&repo)?;
    let workflow_path = repo.join("WORKFLOW.md");
    fs_err::write(&workflow_path, workflow_text(&codemod))?;
    git(&repo, &["add", "WORKFLOW.md"])?;
    git(&repo, &["commit", "-qm", "Add the takt workflow"])?;

    let project = Project::locate(Some(&workflow_path))?;
    let store = project.store().await?;
    let tracker = project.local_tracker(&store)?;
    let tasks: [(&str, &str, &[&str]); 4] = [
        (
            "Add a test for the crate",
            "Add an integration test under tests/. [[scenario:add-test]]",
            &[],
        ),
        (
            "Test the answer constant",
            "Add a test that checks the answer is 42. [[scenario:break-build]]",
            &[],
        ),
        (
            "Add a smoke test",
            "Add one smoke test and change nothing else. [[scenario:wander]]",
            &[],
        ),
        (
            "Rename add to sum",
            "Rename the public function `add` to `sum`. [[codemod:rename]]",
            &["agent:command"],
        ),
    ];
    for (title, body, labels) in tasks {
        let issue = tracker
            .create_issue(
                NewIssue {
                    title: title.into(),
                    description: Some(body.into()),
                    labels: labels.iter().map(|label| (*label).to_owned()).collect(),
                    ..NewIssue::default()
                },
                now_ms(),
            )
            .await?;
        let agent = if labels.is_empty() {
            "built-in agent"
        } else {
            "command backend"
        };
        say(
            json,
            &format!("  added {}: {title} ({agent})", issue.identifier),
        );
    }

    say(
        json,
        "\n1. takt run --once: four agents, four worktrees; the built-in agent's model calls go \
         through takt's model endpoint to the embedded scripted model; every change is verified \
         by the cargo gates (fmt, clippy, build, test) on a clean checkout in a sandbox without \
         network. TAKT-2's change does not compile: the gates send it back with the compiler's \
         output, and after review.max_rounds (2) it fails with a report",
    );
    report(json, &run_once(&project).await?);

    say(
        json,
        "\n2. A reviewer approves TAKT-1, rejects TAKT-3 (green gates, but out of scope), and \
         answers TAKT-4's question",
    );
    let decisions = [
        approve("TAKT-1"),
        reject(
            "TAKT-3",
            "Out of scope: README.md and src/agent_helper.rs were not asked for.",
        ),
        OperatorCommand::Answer {
            task: "TAKT-4".into(),
            by: "demo".into(),
            text: "Yes, keep a deprecated alias.".into(),
        },
    ];
    for decision in decisions {
        operate(&project, decision).await?;
    }

    say(
        json,
        "\n3. takt run --once again: the rejected and answered tasks go back to their agents with \
         the feedback",
    );
    report(json, &run_once(&project).await?);

    say(
        json,
        "\n4. TAKT-4 is approved and merged; TAKT-3 waits for you",
    );
    operate(&project, approve("TAKT-4")).await?;
    let tasks = crate::commands::task::summaries(&project).await?;
    if json {
        output::json(&serde_json::json!({"dir": root, "repo": repo, "tasks": tasks}))?;
        return Ok(Code::Success);
    }
    outln!();
    report(false, &tasks);
    let log = git(&repo, &["log", "--oneline", "--graph", "-8"])?;
    outln!("\nmain branch of {}:\n{log}", repo.display());
    let state = crate::engine::load_state(&store).await?;
    let metered = state.totals.metered;
    outln!(
        "Model calls metered by takt's endpoint: {} ({} input + {} output tokens, counted from \
         the provider's responses)",
        state.totals.model_calls,
        metered.input_tokens,
        metered.output_tokens
    );
    let workflow = workflow_path.display();
    // The binary that is running, so the lines work whether takt is on PATH or was started
    // with `cargo run`.
    let takt = std::env::current_exe()
        .map(|exe| exe.display().to_string())
        .unwrap_or_else(|_| "takt".to_owned());
    outln!("\nWhere to look:");
    outln!("  {takt} -w {workflow} task show TAKT-2        # the failure report");
    outln!("  {takt} -w {workflow} evidence TAKT-2         # every gate run, with its output");
    outln!(
        "  {takt} -w {workflow} evidence TAKT-1         # the gates and the attestation of a merged change"
    );
    outln!("  {takt} -w {workflow} review approve TAKT-3   # the change still waiting for you");
    outln!("  {takt} -w {workflow} status");
    outln!("  {takt} -w {workflow} audit verify            # the hash-chained journal");
    outln!(
        "  {}/runs/                  # prompts and logs of every run",
        project.state_dir.display()
    );
    Ok(Code::Success)
}

async fn run_once(project: &Project) -> Result<Vec<TaskSummary>> {
    let project = Project::from_workflow(Arc::clone(&project.workflow));
    let daemon = Daemon::start(project, Mode::Embedded).await?;
    Ok(daemon.run(true, std::future::pending()).await?.tasks)
}

async fn operate(project: &Project, command: OperatorCommand) -> Result<()> {
    let store = project.store().await?;
    let id = store
        .enqueue_command("demo", serde_json::to_value(&command)?, now_ms())
        .await?;
    let inline = Project::from_workflow(Arc::clone(&project.workflow));
    let mut daemon = Daemon::start(inline, Mode::Inline).await?;
    daemon.settle_inbox().await?;
    let item = store
        .get_command(id)
        .await?
        .context("the command vanished")?;
    if item
        .result
        .as_ref()
        .and_then(|r| r.get("ok"))
        .and_then(serde_json::Value::as_bool)
        != Some(true)
    {
        bail!("the demo's {command:?} was refused: {:?}", item.result);
    }
    Ok(())
}

fn approve(task: &str) -> OperatorCommand {
    OperatorCommand::Approve {
        task: task.into(),
        by: "demo".into(),
        comment: None,
    }
}

fn reject(task: &str, comment: &str) -> OperatorCommand {
    OperatorCommand::Reject {
        task: task.into(),
        by: "demo".into(),
        comment: comment.into(),
    }
}

fn report(json: bool, tasks: &[TaskSummary]) {
    if json {
        return;
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|task| {
            let detail = task
                .question
                .clone()
                .or_else(|| task.failure.as_ref().map(|f| f.reason.clone()))
                .or_else(|| {
                    task.commit
                        .clone()
                        .map(|c| format!("commit {}", &c[..c.len().min(12)]))
                })
                .unwrap_or_default();
            vec![
                task.identifier.clone(),
                task.state.to_string(),
                task.attempts.len().to_string(),
                clip(&output::sanitize(&task.title), 32),
                clip(&output::sanitize(&detail), 70),
            ]
        })
        .collect();
    print_table(&["ID", "STATE", "RUNS", "TITLE", "DETAIL"], &rows);
}

fn say(json: bool, text: &str) {
    if !json {
        outln!("{text}");
    }
}

fn create_repo(repo: &Path) -> Result<()> {
    fs_err::create_dir_all(repo.join("src"))?;
    fs_err::write(repo.join("Cargo.toml"), CARGO_TOML)?;
    fs_err::write(repo.join("src/lib.rs"), LIB_RS)?;
    fs_err::write(repo.join(".gitignore"), "/target\n.takt/\n")?;
    git(repo, &["init", "-q", "-b", "main"])?;
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-qm", "A tiny crate"])?;
    Ok(())
}

fn git(repo: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=takt demo",
            "-c",
            "user.email=demo@takt.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
