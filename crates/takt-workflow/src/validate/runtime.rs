//! Symphony's runtime sections: `polling`, `hooks`, `agent`, `codex`, `server`.

use std::collections::BTreeMap;

use takt_protocol::normalize_state;

use super::{DEFAULT_CODEX_COMMAND, I64_MAX, U32_MAX, U64_MAX, to_u32, to_u64};
use crate::config::{
    AgentConfig, BackendKind, CodexConfig, HooksConfig, PollingConfig, SecretRef, ServerConfig,
};
use crate::env::{Env, env_reference};
use crate::raw::Value;
use crate::reader::{Report, Section};
use crate::schema;
use crate::suggest::did_you_mean;

pub(super) fn polling(section: &Section<'_>, report: &mut Report<'_>) -> PollingConfig {
    let interval_ms = report.positive(section, "interval_ms", U64_MAX, 30_000);
    section.check_unknown(report);
    PollingConfig {
        interval_ms: to_u64(interval_ms),
    }
}

pub(super) fn hooks(section: &Section<'_>, report: &mut Report<'_>) -> HooksConfig {
    let mut script = |key: &str| -> Option<String> {
        let node = section.get(key)?;
        match &node.value {
            Value::Str(s) if s.trim().is_empty() => None,
            Value::Str(s) => Some(s.clone()),
            _ => {
                report.problem(
                    section.path(key),
                    Some(node.pos),
                    format!(
                        "`{}` must be a shell script (a string), but it is {}",
                        section.path(key),
                        node.describe()
                    ),
                    format!("write `{key}: |` followed by the indented script lines"),
                );
                None
            }
        }
    };
    let after_create = script("after_create");
    let before_run = script("before_run");
    let after_run = script("after_run");
    let before_remove = script("before_remove");
    let timeout_ms = report.positive(section, "timeout_ms", U64_MAX, 60_000);
    let sandbox = report.boolean(section, "sandbox", true);
    section.check_unknown(report);
    HooksConfig {
        after_create,
        before_run,
        after_run,
        before_remove,
        timeout_ms: to_u64(timeout_ms),
        sandbox,
    }
}

pub(super) fn agent(section: &Section<'_>, report: &mut Report<'_>) -> AgentConfig {
    let backend = match report.string(section, "backend") {
        None => BackendKind::Codex,
        Some(raw) => match BackendKind::parse(&raw.trim().to_lowercase()) {
            Some(backend) => backend,
            None => {
                let fix = match did_you_mean(&raw, schema::BACKENDS) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => format!("use one of {}", schema::BACKENDS.join(", ")),
                };
                report.problem(
                    "agent.backend",
                    section.get("backend").map(|n| n.pos),
                    format!("`agent.backend` {raw:?} is not a known agent backend"),
                    fix,
                );
                BackendKind::Codex
            }
        },
    };
    let max_concurrent_agents = report.positive(section, "max_concurrent_agents", U32_MAX, 10);
    let max_turns = report.positive(section, "max_turns", U32_MAX, 20);
    let max_retry_backoff_ms = report.positive(section, "max_retry_backoff_ms", U64_MAX, 300_000);
    let max_concurrent_agents_by_state = state_limits(section, report);
    let max_attempts = report.positive(section, "max_attempts", U32_MAX, 4);
    let max_run_duration_ms = report.positive(section, "max_run_duration_ms", U64_MAX, 3_600_000);
    section.check_unknown(report);
    AgentConfig {
        backend,
        max_concurrent_agents: to_u32(max_concurrent_agents),
        max_turns: to_u32(max_turns),
        max_retry_backoff_ms: to_u64(max_retry_backoff_ms),
        max_concurrent_agents_by_state,
        max_attempts: to_u32(max_attempts),
        max_run_duration_ms: to_u64(max_run_duration_ms),
    }
}

/// `agent.max_concurrent_agents_by_state`: keys trimmed and lowercased. takt rejects
/// blank names, non-positive or non-integer limits and names that collide after normalization.
fn state_limits(section: &Section<'_>, report: &mut Report<'_>) -> BTreeMap<String, u32> {
    const KEY: &str = "agent.max_concurrent_agents_by_state";
    let mut limits = BTreeMap::new();
    let Some(node) = section.get("max_concurrent_agents_by_state") else {
        return limits;
    };
    let Value::Map(entries) = &node.value else {
        report.problem(
            KEY,
            Some(node.pos),
            format!(
                "`{KEY}` must be a mapping of state name to limit, but it is {}",
                node.describe()
            ),
            "write `max_concurrent_agents_by_state:` followed by lines such as `  Todo: 2`",
        );
        return limits;
    };
    let mut spelled: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in entries {
        let state = normalize_state(&key.name);
        if state.is_empty() {
            report.problem(
                KEY,
                Some(key.pos),
                format!("a state name in `{KEY}` is blank"),
                "name the state, for example `Todo: 2`",
            );
            continue;
        }
        let limit = match &value.value {
            Value::Int(i) => u32::try_from(*i).ok(),
            Value::UInt(u) => u32::try_from(*u).ok(),
            Value::Str(s) => s.trim().parse::<u32>().ok(),
            _ => None,
        }
        .filter(|l| *l > 0);
        let Some(limit) = limit else {
            report.problem(
                format!("{KEY}.{state}"),
                Some(value.pos),
                format!("the limit for state `{}` in `{KEY}` must be a positive integer, but it is {}", key.name, value.describe()),
                "write a whole number of 1 or more, or remove the entry (takt rejects invalid limits \
                 instead of ignoring them)",
            );
            continue;
        };
        if let Some(first) = spelled.get(&state) {
            report.problem(
                format!("{KEY}.{state}"),
                Some(key.pos),
                format!("state `{}` in `{KEY}` is the same state as `{first}` (names are compared trimmed and lowercased)", key.name),
                "keep one of the two entries",
            );
            continue;
        }
        spelled.insert(state.clone(), key.name.clone());
        limits.insert(state, limit);
    }
    limits
}

pub(super) fn codex(section: &Section<'_>, report: &mut Report<'_>) -> CodexConfig {
    let command = report
        .non_blank(section, "command", DEFAULT_CODEX_COMMAND)
        .unwrap_or_else(|| DEFAULT_CODEX_COMMAND.to_owned());
    let approval_policy = section.get("approval_policy").and_then(|node| match &node.value {
        Value::Str(_) | Value::Map(_) => Some(node.to_json()),
        _ => {
            report.problem(
                "codex.approval_policy",
                Some(node.pos),
                format!("`codex.approval_policy` must be a string or a mapping, but it is {}", node.describe()),
                "use a Codex AskForApproval value such as `never`, `on-request`, or a mapping such as \
                 `{reject: {sandbox_approval: true}}`",
            );
            None
        }
    });
    let thread_sandbox = report.non_blank(section, "thread_sandbox", "workspace-write");
    let turn_sandbox_policy = report
        .json_map(section, "turn_sandbox_policy")
        .map(serde_json::Value::Object);
    let turn_timeout_ms = report.positive(section, "turn_timeout_ms", U64_MAX, 3_600_000);
    let read_timeout_ms = report.positive(section, "read_timeout_ms", U64_MAX, 5_000);
    let stall_timeout_ms = report
        .integer(
            section,
            "stall_timeout_ms",
            0..=I64_MAX,
            "an integer of 0 or more",
            "write a whole number of milliseconds, for example `stall_timeout_ms: 300000`; 0 disables stall detection",
        )
        .unwrap_or(300_000);
    section.check_unknown(report);
    CodexConfig {
        command,
        approval_policy,
        thread_sandbox,
        turn_sandbox_policy,
        turn_timeout_ms: to_u64(turn_timeout_ms),
        read_timeout_ms: to_u64(read_timeout_ms),
        stall_timeout_ms: i64::try_from(stall_timeout_ms).unwrap_or(300_000),
    }
}

pub(super) fn server(
    section: &Section<'_>,
    report: &mut Report<'_>,
    env: &dyn Env,
) -> ServerConfig {
    let port = report
        .integer(
            section,
            "port",
            0..=i128::from(u16::MAX),
            "a port number from 0 to 65535",
            "write a port such as `port: 4000` (0 picks a free port), or remove the key",
        )
        .and_then(|p| u16::try_from(p).ok());
    let host = report
        .non_blank(section, "host", "127.0.0.1")
        .unwrap_or_else(|| "127.0.0.1".to_owned());
    let token = secret(section, report, env, "token", "TAKT_API_TOKEN");
    let github_webhook_secret = secret(
        section,
        report,
        env,
        "github_webhook_secret",
        "TAKT_GITHUB_WEBHOOK_SECRET",
    );
    let gitlab_webhook_secret = secret(
        section,
        report,
        env,
        "gitlab_webhook_secret",
        "TAKT_GITLAB_WEBHOOK_SECRET",
    );
    let linear_webhook_secret = secret(
        section,
        report,
        env,
        "linear_webhook_secret",
        "TAKT_LINEAR_WEBHOOK_SECRET",
    );
    let webhook_token = secret(section, report, env, "webhook_token", "TAKT_WEBHOOK_TOKEN");
    section.check_unknown(report);
    ServerConfig {
        port,
        host,
        token,
        github_webhook_secret,
        gitlab_webhook_secret,
        linear_webhook_secret,
        webhook_token,
    }
}

/// A secret of the `server` section: it must name an environment variable (WORKFLOW.md lives
/// in the repository agents read). An unset variable is a warning here, because only the
/// daemon serving the API needs it; `takt run` refuses to serve without it.
fn secret(
    section: &Section<'_>,
    report: &mut Report<'_>,
    env: &dyn Env,
    key: &str,
    example: &str,
) -> Option<SecretRef> {
    let raw = report.string(section, key)?;
    secret_ref(section, report, env, key, &raw, example, "serve the API")
}

/// A secret named by `$VAR` (`raw`, the key's value): a literal is a problem (WORKFLOW.md lives
/// in the repository the agents read); an unset variable is a warning saying what `takt run`
/// will not do without it (`needed_for`).
pub(super) fn secret_ref(
    section: &Section<'_>,
    report: &mut Report<'_>,
    env: &dyn Env,
    key: &str,
    raw: &str,
    example: &str,
    needed_for: &str,
) -> Option<SecretRef> {
    let path = section.path(key);
    let Some(name) = env_reference(raw).map(String::from) else {
        report.problem(
            path.clone(),
            section.get(key).map(|n| n.pos),
            format!("`{path}` holds a literal value; WORKFLOW.md lives in the repository the agents can read"),
            format!("reference an environment variable instead, for example `{key}: ${example}`"),
        );
        return None;
    };
    let value = env.var(&name).filter(|value| !value.trim().is_empty());
    if value.is_none() {
        report.warn(
            path.clone(),
            section.get(key).map(|n| n.pos),
            format!("`{path}` names ${name}, which is not set; `takt run` will not {needed_for} without it"),
            format!("export {name} before starting takt"),
        );
    }
    Some(SecretRef { var: name, value })
}
