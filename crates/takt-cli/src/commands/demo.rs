//! `takt demo`: a one-command tour. A temporary git repository (a small Rust crate), a
//! WORKFLOW.md with the command backend and a shipped deterministic codemod, three tasks, and
//! the whole line: dispatch, worktrees, a question answered, a failure with its report,
//! review and merge.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use takt_core::OperatorCommand;
use takt_protocol::TaskSummary;
use takt_store::NewIssue;

use super::output::{self, clip, print_table};
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
agent:
  backend: command
  max_concurrent_agents: 3
  max_attempts: 2
  max_retry_backoff_ms: 1000
command:
  run: sh {codemod}
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
    let tasks = [
        (
            "Add a greet function",
            "Add `greet(name)` returning a greeting, with a test. [[codemod:greet]]",
        ),
        (
            "Rename add to sum",
            "Rename the public function `add` to `sum`. [[codemod:rename]]",
        ),
        (
            "Port the client to the v2 API",
            "Move every call of the v1 client to v2. [[codemod:v2]]",
        ),
    ];
    for (title, body) in tasks {
        let issue = tracker
            .create_issue(
                NewIssue {
                    title: title.into(),
                    description: Some(body.into()),
                    ..NewIssue::default()
                },
                now_ms(),
            )
            .await?;
        say(json, &format!("  added {}: {title}", issue.identifier));
    }

    say(
        json,
        "\n1. takt run --once: three agents work in their own worktrees",
    );
    let summary = run_once(&project).await?;
    report(json, &summary);

    say(
        json,
        "\n2. TAKT-2 asked a question; answering it resumes the task",
    );
    operate(
        &project,
        OperatorCommand::Answer {
            task: "TAKT-2".into(),
            by: "demo".into(),
            text: "Yes, keep a deprecated alias.".into(),
        },
    )
    .await?;
    let summary = run_once(&project).await?;
    report(json, &summary);

    say(
        json,
        "\n3. A person approves the two changes awaiting review; takt merges them",
    );
    for task in ["TAKT-1", "TAKT-2"] {
        operate(
            &project,
            OperatorCommand::Approve {
                task: task.into(),
                by: "demo".into(),
                comment: None,
            },
        )
        .await?;
    }
    let tasks = crate::commands::task::summaries(&project).await?;
    if json {
        output::json(&serde_json::json!({"dir": root, "repo": repo, "tasks": tasks}))?;
        return Ok(Code::Success);
    }
    println!();
    report(false, &tasks);
    let log = git(&repo, &["log", "--oneline", "--graph", "-8"])?;
    println!("\nmain branch of {}:\n{log}", repo.display());
    println!("Where to look:");
    println!(
        "  takt -w {} task show TAKT-3     # the failure report",
        workflow_path.display()
    );
    println!("  takt -w {} status", workflow_path.display());
    println!(
        "  takt -w {} audit verify         # the hash-chained journal",
        workflow_path.display()
    );
    println!(
        "  {}/runs/                        # prompts and logs of every run",
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
                clip(&task.title, 32),
                clip(&output::sanitize(&detail), 70),
            ]
        })
        .collect();
    print_table(&["ID", "STATE", "RUNS", "TITLE", "DETAIL"], &rows);
}

fn say(json: bool, text: &str) {
    if !json {
        println!("{text}");
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
