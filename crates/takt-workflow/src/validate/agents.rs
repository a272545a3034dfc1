//! takt's agent sections: `model`, `claude`, `builtin`. Unknown keys are errors here.

use super::{U32_MAX, U64_MAX, to_u32, to_u64};
use crate::config::{BuiltinConfig, ClaudeConfig, ModelConfig, ModelProvider};
use crate::env::{Env, env_reference};
use crate::reader::{Report, Section};
use crate::suggest::did_you_mean;

const PROVIDERS: &[&str] = &["openai", "anthropic", "mock"];
const PERMISSION_MODES: &[&str] = &[
    "default",
    "acceptEdits",
    "plan",
    "dontAsk",
    "bypassPermissions",
];
/// Commands the built-in agent refuses unless the workflow says otherwise.
pub const DEFAULT_DENY_COMMANDS: &[&str] = &[
    "sudo", "su", "shutdown", "reboot", "mkfs", "dd", "curl", "wget", "ssh", "scp",
];

pub(super) fn model(section: &Section<'_>, report: &mut Report<'_>, env: &dyn Env) -> ModelConfig {
    let provider = match report.string(section, "provider") {
        None => ModelProvider::Openai,
        Some(raw) => {
            match raw.trim() {
                "openai" => ModelProvider::Openai,
                "anthropic" => ModelProvider::Anthropic,
                "mock" => ModelProvider::Mock,
                other => {
                    let fix = match did_you_mean(other, PROVIDERS) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => "use `openai` (also for OpenAI-compatible servers), `anthropic` or `mock`".into(),
                };
                    report.problem(
                        "model.provider",
                        section.get("provider").map(|n| n.pos),
                        format!("`model.provider` {other:?} is not a known provider"),
                        fix,
                    );
                    ModelProvider::Openai
                }
            }
        }
    };
    let default_url = match provider {
        ModelProvider::Openai => Some("https://api.openai.com/v1"),
        ModelProvider::Anthropic => Some("https://api.anthropic.com"),
        ModelProvider::Mock => None,
    };
    let base_url = report
        .non_blank(section, "base_url", "https://api.openai.com/v1")
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .or_else(|| default_url.map(String::from));
    if let Some(url) = &base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        report.problem(
            "model.base_url",
            section.get("base_url").map(|n| n.pos),
            format!("`model.base_url` {url:?} is not an http(s) URL"),
            "write the full URL, for example `base_url: http://127.0.0.1:8000/v1`",
        );
    }
    let canonical = match provider {
        ModelProvider::Openai => Some("OPENAI_API_KEY"),
        ModelProvider::Anthropic => Some("ANTHROPIC_API_KEY"),
        ModelProvider::Mock => None,
    };
    let raw_key = report.string(section, "api_key");
    let literal = raw_key
        .clone()
        .filter(|value| env_reference(value).is_none() && !value.is_empty());
    if literal.is_some() {
        // A literal key in a repository file is readable by every agent that works on the
        // repository; fine for a local server that ignores keys, wrong for a real one.
        report.warn(
            "model.api_key",
            section.get("api_key").map(|n| n.pos),
            "`model.api_key` holds a literal value; WORKFLOW.md lives in the repository the agents can read",
            "reference an environment variable instead, for example `api_key: $OPENAI_API_KEY`",
        );
    }
    let api_key_var = raw_key
        .as_deref()
        .and_then(env_reference)
        .map(String::from)
        .or_else(|| canonical.map(String::from));
    let api_key = literal.or_else(|| {
        api_key_var
            .as_deref()
            .and_then(|name| env.var(name))
            .filter(|value| !value.is_empty())
    });
    let name = report.non_blank(section, "name", "gpt-5.5");
    let scenarios = report
        .non_blank(section, "scenarios", "./scenarios")
        .map(std::path::PathBuf::from);
    section.check_unknown(report);
    let prices = prices(section, report);
    ModelConfig {
        provider,
        base_url,
        api_key,
        api_key_var,
        name,
        scenarios,
        prices,
    }
}

/// `model.prices`: `{model: {input, cached_input?, output, cache_write?}}` in USD per 1M tokens.
fn prices(
    section: &Section<'_>,
    report: &mut Report<'_>,
) -> std::collections::BTreeMap<String, crate::config::ModelPriceConfig> {
    let mut out = std::collections::BTreeMap::new();
    let Some(map) = report.json_map(section, "prices") else {
        return out;
    };
    let position = section.get("prices").map(|n| n.pos);
    for (model, entry) in map {
        let field = |name: &str| entry.get(name).and_then(serde_json::Value::as_f64);
        let known = ["input", "cached_input", "output", "cache_write"];
        let unknown: Vec<&String> = entry
            .as_object()
            .map(|o| o.keys().filter(|k| !known.contains(&k.as_str())).collect())
            .unwrap_or_default();
        let valid = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
        match (field("input"), field("output")) {
            (Some(input), Some(output))
                if unknown.is_empty()
                    && valid(Some(input))
                    && valid(Some(output))
                    && valid(field("cached_input"))
                    && valid(field("cache_write")) =>
            {
                out.insert(
                    model,
                    crate::config::ModelPriceConfig {
                        input,
                        cached_input: field("cached_input"),
                        output,
                        cache_write: field("cache_write"),
                    },
                );
            }
            _ => report.problem(
                format!("model.prices.{model}"),
                position,
                format!(
                    "`model.prices.{model}` must be `{{input: N, output: N}}` (optionally \
                     `cached_input`, `cache_write`), non-negative US dollars per million tokens"
                ),
                format!("write `{model}: {{input: 1.25, cached_input: 0.125, output: 10}}`"),
            ),
        }
    }
    out
}

pub(super) fn claude(section: &Section<'_>, report: &mut Report<'_>) -> ClaudeConfig {
    let command = report
        .non_blank(section, "command", "claude")
        .unwrap_or_else(|| "claude".to_owned());
    let model = report.non_blank(section, "model", "claude-sonnet-4-5");
    let permission_mode = match report.string(section, "permission_mode") {
        None => "acceptEdits".to_owned(),
        Some(mode) if PERMISSION_MODES.contains(&mode.as_str()) => mode,
        Some(mode) => {
            let fix = match did_you_mean(&mode, PERMISSION_MODES) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("use one of: {}", PERMISSION_MODES.join(", ")),
            };
            report.problem(
                "claude.permission_mode",
                section.get("permission_mode").map(|n| n.pos),
                format!("`claude.permission_mode` {mode:?} is not a Claude Code permission mode"),
                fix,
            );
            "acceptEdits".to_owned()
        }
    };
    let allowed_tools = report
        .string_list(section, "allowed_tools")
        .unwrap_or_default();
    let disallowed_tools = report
        .string_list(section, "disallowed_tools")
        .unwrap_or_default();
    section.check_unknown(report);
    ClaudeConfig {
        command,
        model,
        permission_mode,
        allowed_tools,
        disallowed_tools,
    }
}

pub(super) fn builtin(section: &Section<'_>, report: &mut Report<'_>) -> BuiltinConfig {
    let max_steps = to_u32(report.positive(section, "max_steps", U32_MAX, 50));
    let max_tokens_per_turn =
        to_u64(report.positive(section, "max_tokens_per_turn", U64_MAX, 400_000));
    let context_budget_tokens =
        to_u64(report.positive(section, "context_budget_tokens", U64_MAX, 100_000));
    let command_timeout_ms =
        to_u64(report.positive(section, "command_timeout_ms", U64_MAX, 120_000));
    let output_limit_bytes =
        to_u64(report.positive(section, "output_limit_bytes", U64_MAX, 16_384));
    let deny_commands = report
        .string_list(section, "deny_commands")
        .unwrap_or_else(|| {
            DEFAULT_DENY_COMMANDS
                .iter()
                .map(|c| (*c).to_owned())
                .collect()
        });
    section.check_unknown(report);
    BuiltinConfig {
        max_steps,
        max_tokens_per_turn,
        context_budget_tokens,
        command_timeout_ms,
        output_limit_bytes,
        deny_commands,
    }
}
