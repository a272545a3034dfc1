//! From a workflow snapshot to the agent backend of one run. `agent.backend` picks the
//! default; a task labelled `agent:<backend>` (e.g. `agent:claude`) runs on that one instead.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use takt_agents::builtin::{BuiltinBackend, BuiltinSettings, ModelApi};
use takt_agents::claude::{ClaudeBackend, ClaudeSettings};
use takt_agents::codex::{ApprovalRules, CodexBackend, CodexSettings};
use takt_core::ports::AgentBackend;
use takt_protocol::Issue;
use takt_workflow::{BackendKind, ModelProvider, Workflow};

/// The label prefix that picks a task's backend.
pub const BACKEND_LABEL: &str = "agent:";

/// The backend a task runs on: its `agent:<name>` label, else `agent.backend`.
pub fn kind_for(workflow: &Workflow, issue: &Issue) -> Result<BackendKind> {
    let Some(label) = issue
        .labels
        .iter()
        .find_map(|label| label.strip_prefix(BACKEND_LABEL))
    else {
        return Ok(workflow.agent.backend);
    };
    match label {
        "command" => Ok(BackendKind::Command),
        "codex" => Ok(BackendKind::Codex),
        "claude" => Ok(BackendKind::Claude),
        "builtin" => Ok(BackendKind::Builtin),
        other => Err(anyhow!(
            "{} has the label `agent:{other}`, but `{other}` is not a backend; use agent:command, \
             agent:codex, agent:claude or agent:builtin",
            issue.identifier
        )),
    }
}

/// Builds the backend for one run from the workflow snapshot it starts with.
pub fn backend_for(
    workflow: &Workflow,
    issue: &Issue,
    sandbox: Arc<takt_sandbox::Sandbox>,
) -> Result<Arc<dyn AgentBackend>> {
    let remove_env = secret_env_names(workflow);
    match kind_for(workflow, issue)? {
        BackendKind::Command => {
            let run = workflow
                .command
                .as_ref()
                .map(|command| command.run.clone())
                .context("this task runs on the command backend but `command.run` is missing")?;
            Ok(Arc::new(takt_agents::CommandBackend {
                run,
                remove_env,
                sandbox,
            }))
        }
        BackendKind::Codex => {
            let codex = &workflow.codex;
            // Codex's own sandbox is bubblewrap, which cannot nest under takt's Landlock layer;
            // inside takt's sandbox it is redundant, so it is switched off unless the workflow
            // asks for it explicitly.
            let confined = sandbox.mechanism() != takt_sandbox::Mechanism::Unconfined;
            let thread_sandbox = codex
                .thread_sandbox
                .clone()
                .or_else(|| confined.then(|| "danger-full-access".to_owned()));
            let turn_sandbox_policy = codex
                .turn_sandbox_policy
                .clone()
                .or_else(|| confined.then(|| serde_json::json!({"type": "dangerFullAccess"})));
            Ok(Arc::new(CodexBackend::new(
                CodexSettings {
                    command: codex.command.clone(),
                    approval_policy: codex.approval_policy.clone(),
                    thread_sandbox,
                    turn_sandbox_policy,
                    read_timeout: Duration::from_millis(codex.read_timeout_ms),
                    turn_timeout: Duration::from_millis(codex.turn_timeout_ms),
                    model: workflow.model.name.clone(),
                    remove_env,
                    policy: ApprovalRules::default(),
                },
                sandbox,
            )))
        }
        BackendKind::Claude => {
            let claude = &workflow.claude;
            Ok(Arc::new(ClaudeBackend::new(
                ClaudeSettings {
                    command: claude.command.clone(),
                    model: claude.model.clone().or_else(|| workflow.model.name.clone()),
                    permission_mode: claude.permission_mode.clone(),
                    allowed_tools: claude.allowed_tools.clone(),
                    disallowed_tools: claude.disallowed_tools.clone(),
                    denied_commands: workflow.builtin.deny_commands.clone(),
                    turn_timeout: Duration::from_millis(workflow.codex.turn_timeout_ms),
                    remove_env,
                },
                sandbox,
            )))
        }
        BackendKind::Builtin => {
            let limits = &workflow.builtin;
            let settings = BuiltinSettings {
                api: match workflow.model.provider {
                    ModelProvider::Anthropic => ModelApi::AnthropicMessages,
                    ModelProvider::Openai | ModelProvider::Mock => ModelApi::ChatCompletions,
                },
                max_steps: limits.max_steps,
                max_tokens_per_turn: limits.max_tokens_per_turn,
                context_budget_tokens: limits.context_budget_tokens,
                command_timeout: Duration::from_millis(limits.command_timeout_ms),
                output_limit_bytes: usize::try_from(limits.output_limit_bytes)
                    .unwrap_or(usize::MAX),
                deny_commands: limits.deny_commands.clone(),
                remove_env,
                ..BuiltinSettings::default()
            };
            Ok(Arc::new(BuiltinBackend::new(settings, sandbox)?))
        }
    }
}

/// Variables that must never reach an agent: the usual provider, tracker and
/// forge credentials, the model key's variable, the API token's and every webhook secret's
/// variable (an agent holding one could approve its own work or forge deliveries), and every
/// `$VAR` named in `tracker.provider`.
pub fn secret_env_names(workflow: &Workflow) -> Vec<String> {
    let mut names: Vec<String> = [
        "LINEAR_API_KEY",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GITLAB_PAT",
        "GITLAB_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "TAKT_WORKFLOW",
    ]
    .map(String::from)
    .to_vec();
    names.extend(workflow.model.api_key_var.clone());
    names.extend(
        workflow
            .publish
            .token
            .as_ref()
            .map(|secret| secret.var.clone()),
    );
    let server = &workflow.server;
    names.extend(
        [
            &server.token,
            &server.github_webhook_secret,
            &server.gitlab_webhook_secret,
            &server.linear_webhook_secret,
            &server.webhook_token,
        ]
        .into_iter()
        .flatten()
        .map(|secret| secret.var.clone()),
    );
    for value in workflow.tracker.provider.values() {
        if let Some(name) = value.as_str().and_then(takt_workflow::env_reference) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_api_token_and_every_webhook_secret_are_kept_from_agents() {
        let text = "---\nserver:\n  token: $API_TOKEN_VAR\n  github_webhook_secret: $GH_HOOK_VAR\n  \
            gitlab_webhook_secret: $GL_HOOK_VAR\n  linear_webhook_secret: $LIN_HOOK_VAR\n  \
            webhook_token: $GENERIC_HOOK_VAR\n---\n";
        let env = takt_workflow::MapEnv::new().with_home("/home/tester");
        let workflow =
            takt_workflow::parse(text, std::path::Path::new("/repo/WORKFLOW.md"), &env).unwrap();
        let names = secret_env_names(&workflow);
        for name in [
            "API_TOKEN_VAR",
            "GH_HOOK_VAR",
            "GL_HOOK_VAR",
            "LIN_HOOK_VAR",
            "GENERIC_HOOK_VAR",
            "GITHUB_TOKEN",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
    }
}
