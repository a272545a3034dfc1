//! The Claude Code command line and environment.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use takt_core::ports::{ModelAccess, SessionContext};

use super::ClaudeSettings;
use super::error::ClaudeError;

/// The per-run Claude configuration directory under the run directory.
pub const CONFIG_DIR: &str = "claude-config";
/// The MCP configuration file in it, naming takt's host-tools server.
pub const MCP_CONFIG: &str = "mcp.json";

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
        // MCP servers only from takt (the repository's `.mcp.json` is untrusted content).
        "--strict-mcp-config",
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

/// takt's MCP server as Claude Code starts it: the takt binary (`takt_binary`, the path the
/// sandboxed processes see) with the run's endpoint and token; `None` without host tools.
pub struct HostToolsServer<'a> {
    pub takt_binary: &'a Path,
    pub tool_names: Vec<&'static str>,
}

/// Writes the MCP configuration naming takt's server and returns the arguments that load it
/// and allow its tools.
pub async fn host_tools_arguments(
    server: &HostToolsServer<'_>,
    model: &ModelAccess,
    config_dir: &Path,
) -> Result<Vec<String>, std::io::Error> {
    let config = serde_json::json!({"mcpServers": {crate::mcp::SERVER_NAME: {
        "type": "stdio",
        "command": server.takt_binary,
        "args": [crate::mcp::MCP_ARG],
        "env": {
            crate::mcp::URL_ENV: model.anthropic_base_url,
            crate::mcp::TOKEN_ENV: model.token,
        },
    }}});
    let path = config_dir.join(MCP_CONFIG);
    fs_err::tokio::write(&path, config.to_string()).await?;
    let mut args = vec!["--mcp-config".to_owned(), path.display().to_string()];
    for name in &server.tool_names {
        args.extend([
            "--allowedTools".to_owned(),
            format!("mcp__{}__{name}", crate::mcp::SERVER_NAME),
        ]);
    }
    Ok(args)
}

/// What to start: `sh -c '<command> "$@"' claude <arguments>` in the workspace, with the
/// run token as Claude's API key and the daemon's endpoint as its base URL. `extra` comes
/// after the settings' arguments (takt's MCP server).
pub fn launch(
    settings: &ClaudeSettings,
    context: &SessionContext,
    model: &ModelAccess,
    config_dir: &Path,
    extra: Vec<String>,
) -> takt_sandbox::Launch {
    let chosen_model = settings.model.as_deref().or(model.model.as_deref());
    let command_line = crate::process::resolved_command(&settings.command);
    let mut args = vec![
        "-c".to_owned(),
        format!("{command_line} \"$@\""),
        "claude".to_owned(),
    ];
    args.extend(arguments(settings, chosen_model));
    args.extend(extra);
    let mut env = vec![
        (
            "CLAUDE_CONFIG_DIR".to_owned(),
            config_dir.display().to_string(),
        ),
        (
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".to_owned(),
            "1".to_owned(),
        ),
        (
            "ANTHROPIC_BASE_URL".to_owned(),
            model.anthropic_base_url.clone(),
        ),
        // The run token stands in for the provider key the agent never sees.
        ("ANTHROPIC_API_KEY".to_owned(), model.token.clone()),
    ];
    env.extend(crate::process::run_env(context));
    takt_sandbox::Launch {
        program: "sh".to_owned(),
        args,
        cwd: context.workspace.clone(),
        env,
        read_only: crate::process::install_paths(&command_line),
        remove_env: ALWAYS_REMOVED
            .iter()
            .map(|name| (*name).to_owned())
            .chain(settings.remove_env.iter().cloned())
            .collect(),
    }
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
             --permission-prompt-tool stdio --strict-mcp-config --permission-mode acceptEdits --model claude-x \
             --allowedTools Bash(cargo *) --disallowedTools WebFetch \
             --disallowedTools Bash(rm:*) --disallowedTools Bash(git push:*)"
        );
        assert!(!arguments(&settings, None).contains(&"--model".to_owned()));
    }
}
