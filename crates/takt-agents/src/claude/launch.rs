//! The Claude Code command line and environment.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use takt_core::ports::{ModelAccess, SessionContext};
use tokio::process::Command;

use super::ClaudeSettings;
use super::error::ClaudeError;

/// The per-run Claude configuration directory under the run directory.
pub const CONFIG_DIR: &str = "claude-config";

/// Variables that would send Claude to another provider or present another credential than
/// the run token; always removed.
const ALWAYS_REMOVED: &[&str] = &[
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_CUSTOM_HEADERS",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_USE_FOUNDRY",
    "ANTHROPIC_MODEL",
];

/// The arguments after the command.
pub fn arguments(settings: &ClaudeSettings, model: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = [
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-prompt-tool",
        "stdio",
        "--permission-mode",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    args.push(settings.permission_mode.clone());
    if let Some(model) = model.filter(|model| !model.trim().is_empty()) {
        args.extend(["--model".to_owned(), model.to_owned()]);
    }
    for tool in &settings.allowed_tools {
        args.extend(["--allowedTools".to_owned(), tool.clone()]);
    }
    for tool in &settings.disallowed_tools {
        args.extend(["--disallowedTools".to_owned(), tool.clone()]);
    }
    for command in &settings.denied_commands {
        let command = command.split_whitespace().collect::<Vec<_>>().join(" ");
        if !command.is_empty() {
            args.extend(["--disallowedTools".to_owned(), format!("Bash({command}:*)")]);
        }
    }
    args
}

/// Checks what can be checked before starting anything.
pub fn preflight(
    settings: &ClaudeSettings,
    context: &SessionContext,
) -> Result<ModelAccess, ClaudeError> {
    if settings.command.trim().is_empty() {
        return Err(ClaudeError::EmptyCommand);
    }
    let model = context.model.clone().ok_or(ClaudeError::NoModelAccess)?;
    let sandbox_flag = std::env::var_os("IS_SANDBOX").is_some()
        && !settings.remove_env.iter().any(|name| name == "IS_SANDBOX");
    if settings.permission_mode == "bypassPermissions" && running_as_root() && !sandbox_flag {
        return Err(ClaudeError::BypassAsRoot);
    }
    Ok(model)
}

fn running_as_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// A fresh configuration directory for this run.
pub async fn fresh_config_dir(run_dir: &Path) -> Result<PathBuf, std::io::Error> {
    let dir = run_dir.join(CONFIG_DIR);
    match fs_err::tokio::remove_dir_all(&dir).await {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    fs_err::tokio::create_dir_all(&dir).await?;
    Ok(dir)
}

/// The command, ready to spawn: `sh -c '<command> "$@"' claude <arguments>` in the workspace,
/// in its own process group, pipes on all three streams.
pub fn command(
    settings: &ClaudeSettings,
    context: &SessionContext,
    model: &ModelAccess,
    config_dir: &Path,
) -> Command {
    let chosen_model = settings.model.as_deref().or(model.model.as_deref());
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{} \"$@\"", settings.command))
        .arg("claude")
        .args(arguments(settings, chosen_model))
        .current_dir(&context.workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in ALWAYS_REMOVED
        .iter()
        .copied()
        .chain(settings.remove_env.iter().map(String::as_str))
    {
        command.env_remove(name);
    }
    // Set after the removals: a removed ANTHROPIC_API_KEY (a provider key) is replaced by the
    // run token.
    command
        .env("CLAUDE_CONFIG_DIR", config_dir)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("ANTHROPIC_BASE_URL", &model.anthropic_base_url)
        .env("ANTHROPIC_API_KEY", &model.token)
        .envs(crate::process::run_env(context));
    command
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn arguments_carry_mode_model_tools_and_denied_commands() {
        let settings = ClaudeSettings {
            allowed_tools: vec!["Bash(cargo *)".into()],
            disallowed_tools: vec!["WebFetch".into()],
            denied_commands: vec!["rm".into(), " git   push ".into(), " ".into()],
            ..ClaudeSettings::default()
        };
        let args = arguments(&settings, Some("claude-x"));
        assert_eq!(
            args.join(" "),
            "-p --input-format stream-json --output-format stream-json --verbose \
             --permission-prompt-tool stdio --permission-mode acceptEdits --model claude-x \
             --allowedTools Bash(cargo *) --disallowedTools WebFetch \
             --disallowedTools Bash(rm:*) --disallowedTools Bash(git push:*)"
        );
        assert!(!arguments(&settings, None).contains(&"--model".to_owned()));
    }
}
