//! `takt doctor`: what works on this machine and in this workflow, and what to do about what
//! does not.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use takt_store::StateLock;
use takt_workflow::{BackendKind, ModelProvider, RepoSource};

use super::output::{self, outln};
use crate::exit::Code;
use crate::project::Project;

#[derive(Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    /// `false` for information that does not stop takt from working.
    required: bool,
    detail: String,
}

fn tool_version(program: &str, args: &[&str]) -> Result<String, String> {
    match std::process::Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
        Err(error) => Err(format!("{program} not found ({error})")),
    }
}

/// Whether the program a backend's command starts can run here.
fn cli_check(name: &str, command: &str, package: &str) -> Result<String, String> {
    let program = command.split_whitespace().next().unwrap_or(name);
    tool_version(program, &["--version"])
        .map(|version| format!("{name}: {version}"))
        .map_err(|error| {
            format!(
                "{name}: `{program}` does not run ({error}); install it (npm install -g {package}) \
                 or point `{name}.command` at it"
            )
        })
}

fn model_check(workflow: &takt_workflow::Workflow) -> Result<String, String> {
    let model = &workflow.model;
    match model.provider {
        ModelProvider::Mock => Ok("the embedded scripted model (no network)".to_owned()),
        provider => {
            let url = model.base_url.clone().unwrap_or_default();
            if model.api_key.is_some() {
                Ok(format!(
                    "{} at {url}; the key stays in the daemon",
                    provider.as_str()
                ))
            } else {
                Err(format!(
                    "{} at {url}, but no key: set ${} (WORKFLOW.md `model.api_key`)",
                    provider.as_str(),
                    model.api_key_var.as_deref().unwrap_or("OPENAI_API_KEY")
                ))
            }
        }
    }
}

/// Which host-side tools agents get (docs/host-tools.md); the command backend has no tool
/// channel.
fn host_tools_line(wf: &takt_workflow::Workflow) -> String {
    if wf.agent.backend == BackendKind::Command {
        return "none: the command backend has no tool channel".to_owned();
    }
    // Every remote tracker has comments; the local one keeps its record in the journal.
    let tools = crate::host_tools::offered(
        wf.tracker.kind != "local",
        wf.publish.forge != takt_workflow::ForgeKind::Local,
    );
    tools
        .iter()
        .map(|tool| tool.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How gates and agents start their builds (`verify.warm_cache`, docs/verification.md): warm
/// caches need overlays, and agents use them only on overlay workspaces shown by bubblewrap.
fn build_caches_line<T>(
    warm_cache: bool,
    overlays: &Result<Option<T>, String>,
    shows_elsewhere: bool,
) -> Result<String, String> {
    if !warm_cache {
        return Ok("cold: gates and agents build from nothing (`verify.warm_cache: false`)".into());
    }
    match overlays {
        Err(reason) => Err(format!(
            "cold: warm caches need kernel overlays, which cannot be mounted here ({reason})"
        )),
        Ok(None) => Ok("warm for gates; agents build cold: their workspaces are worktrees \
                        (`workspace.overlay: false`)"
            .into()),
        Ok(Some(_)) if !shows_elsewhere => Ok("warm for gates; agents build cold: only \
                                                bubblewrap shows their workspace at the caches' path"
            .into()),
        Ok(Some(_)) => Ok("warm for gates and agents: the base's frozen target/, built ahead \
                           after every merge"
            .into()),
    }
}

pub async fn run(workflow: Option<&Path>, json: bool) -> Result<Code> {
    let mut checks = Vec::new();
    let mut check = |name, required, result: Result<String, String>| {
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        checks.push(Check {
            name,
            ok,
            required,
            detail,
        });
    };
    check("git", true, tool_version("git", &["--version"]));
    check("sh", true, tool_version("sh", &["-c", "echo available"]));
    match Project::locate(workflow) {
        Err(error) => check("workflow", true, Err(format!("{error:#}"))),
        Ok(project) => {
            // The sandbox: each mechanism as this host offers it, then whether the workflow's
            // `sandbox.mode` can be had here.
            // Whether agents' sandboxes can show their workspace where build caches are made.
            let mut shows_elsewhere = false;
            match crate::sandbox::probe(&project.workflow) {
                Ok(host) => {
                    for (ok, line) in host.lines() {
                        let (name, detail) = line.split_once(": ").unwrap_or(("sandbox", &line));
                        let name = match name {
                            "bubblewrap" => "bubblewrap",
                            "landlock" => "landlock",
                            "seccomp" => "seccomp",
                            "cgroups" => "cgroups",
                            _ => "agent user",
                        };
                        check(
                            name,
                            false,
                            if ok {
                                Ok(detail.to_owned())
                            } else {
                                Err(detail.to_owned())
                            },
                        );
                    }
                    check(
                        "sandbox",
                        true,
                        crate::sandbox::build(&project.workflow, &host, &project.state_dir, None)
                            .map(|sandbox| {
                                shows_elsewhere = sandbox.can_show_elsewhere();
                                sandbox.describe()
                            })
                            .map_err(|error| format!("{error:#}")),
                    );
                    check("inner stage", false, Ok(crate::sandbox::inner_stage_line()));
                }
                Err(error) => check("sandbox", true, Err(format!("{error:#}"))),
            }
            let wf = &project.workflow;
            if let Some(present) =
                takt_trackers::credential_present(&wf.tracker, &takt_workflow::ProcessEnv)
            {
                check(
                    "tracker",
                    true,
                    if present {
                        Ok(format!("{}: credential set", wf.tracker.kind))
                    } else {
                        Err(format!(
                            "{}: no credential; set the token the tracker's `provider` names \
                             (docs/trackers.md) in the daemon's environment",
                            wf.tracker.kind
                        ))
                    },
                );
            }
            if wf.publish.forge != takt_workflow::ForgeKind::Local {
                check(
                    "forge",
                    true,
                    takt_forge::ForgeSettings::from_publish(&wf.publish)
                        .map(|_| {
                            format!(
                                "{}: {} with the daemon's token (agents never see it)",
                                wf.publish.forge.as_str(),
                                wf.publish.repo.as_deref().unwrap_or("?")
                            )
                        })
                        .map_err(|error| error.to_string()),
                );
            }
            let warnings: Vec<String> = wf.warnings.iter().map(ToString::to_string).collect();
            check(
                "workflow",
                true,
                Ok(if warnings.is_empty() {
                    format!("{} loads", wf.path.display())
                } else {
                    format!(
                        "{} loads with warnings: {}",
                        wf.path.display(),
                        warnings.join("; ")
                    )
                }),
            );
            match &wf.workspace.repo {
                RepoSource::Path(path) => check(
                    "repository",
                    true,
                    tool_version(
                        "git",
                        &[
                            "-C",
                            &path.to_string_lossy(),
                            "rev-parse",
                            "--verify",
                            "HEAD",
                        ],
                    )
                    .map(|head| format!("{} at {}", path.display(), &head[..head.len().min(12)]))
                    .map_err(|e| {
                        format!(
                            "{} is not a git repository with a commit: {e}",
                            path.display()
                        )
                    }),
                ),
                RepoSource::Url(url) => check("repository", true, Ok(format!("{url} (remote)"))),
            }
            let backend = match wf.agent.backend {
                BackendKind::Command => wf
                    .command
                    .as_ref()
                    .map(|c| format!("command: {}", c.run))
                    .ok_or_else(|| {
                        "agent.backend is command but command.run is not set".to_owned()
                    }),
                BackendKind::Codex => cli_check("codex", &wf.codex.command, "@openai/codex"),
                BackendKind::Claude => {
                    cli_check("claude", &wf.claude.command, "@anthropic-ai/claude-code")
                }
                BackendKind::Builtin => Ok("builtin: takt's own agent loop".to_owned()),
            };
            check("agent backend", true, backend);
            check("host tools", false, Ok(host_tools_line(wf)));
            let overlays = crate::project::overlay_support(wf, &project.state_dir);
            check(
                "workspaces",
                false,
                overlays
                    .as_ref()
                    .map_err(Clone::clone)
                    .map(|overlay| match overlay {
                        Some(overlay) => format!(
                            "kernel overlays over shared golden trees ({})",
                            overlay.dir.display()
                        ),
                        None => "git worktrees (`workspace.overlay: false`)".to_owned(),
                    }),
            );
            check(
                "build caches",
                false,
                build_caches_line(wf.verify.warm_cache, &overlays, shows_elsewhere),
            );
            if crate::models::needs_model(wf) {
                check("model", true, model_check(wf));
            }
            match project.store().await {
                Ok(store) => {
                    let chain = store.verify_journal().await;
                    check(
                        "journal",
                        true,
                        match chain {
                            Ok(report) => match report.first_broken {
                                None => Ok(format!(
                                    "{} entries, chain intact ({})",
                                    report.entries,
                                    store.db_path().display()
                                )),
                                Some(broken) => {
                                    Err(format!("broken at entry {}: {broken}", broken.seq()))
                                }
                            },
                            Err(error) => Err(error.to_string()),
                        },
                    );
                }
                Err(error) => check("journal", true, Err(format!("{error:#}"))),
            }
            check(
                "daemon",
                false,
                Ok(match StateLock::holder(&project.state_dir) {
                    Some(pid) => format!("running (pid {pid})"),
                    None => "not running".into(),
                }),
            );
        }
    }
    let healthy = checks.iter().all(|c| c.ok || !c.required);
    if json {
        output::json(&serde_json::json!({"healthy": healthy, "checks": checks}))?;
    } else {
        for c in &checks {
            let mark = match (c.ok, c.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            outln!("{mark}  {:<14} {}", c.name, c.detail);
        }
    }
    Ok(if healthy {
        Code::Success
    } else {
        Code::Unhealthy
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_build_caches_line_says_why_a_build_starts_cold() {
        let mounted: Result<Option<()>, String> = Ok(Some(()));
        let worktrees: Result<Option<()>, String> = Ok(None);
        let unavailable: Result<Option<()>, String> = Err("not root".into());
        let line = |warm, overlays: &Result<Option<()>, String>, shows| {
            build_caches_line(warm, overlays, shows).unwrap_or_else(|error| error)
        };
        assert!(line(true, &mounted, true).starts_with("warm for gates and agents"));
        assert!(line(true, &mounted, false).contains("only bubblewrap"));
        assert!(line(true, &worktrees, true).contains("`workspace.overlay: false`"));
        assert!(build_caches_line(true, &unavailable, true).is_err());
        assert!(line(true, &unavailable, true).contains("(not root)"));
        assert!(line(false, &mounted, true).starts_with("cold"));
    }
}
