//! The validated workflow and the pipeline that builds it: split the file, parse the
//! YAML, apply defaults, resolve `$VAR`/`~`, validate, parse the template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::{
    AgentConfig, BudgetConfig, BuiltinConfig, ClaudeConfig, CodexConfig, CommandConfig, GateConfig,
    HooksConfig, ModelConfig, PollingConfig, PublishConfig, ReviewConfig, RiskConfig,
    SandboxConfig, ScheduleConfig, ServerConfig, TrackerConfig, VerifyConfig, WorkspaceConfig,
};
use crate::env::{Env, absolute};
use crate::error::{ConfigWarning, WorkflowError};
use crate::front_matter::{position_of, split, trimmed_body};
use crate::raw::{YamlError, parse_yaml};
use crate::template::{PromptContext, PromptTemplate};
use crate::validate::validate;

/// A loaded, validated WORKFLOW.md. Immutable: a reload produces a new one, so a session keeps
/// the snapshot it started with.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Absolute directory containing the file; relative paths resolve against it.
    pub dir: PathBuf,
    pub tracker: TrackerConfig,
    pub polling: PollingConfig,
    pub workspace: WorkspaceConfig,
    pub hooks: HooksConfig,
    pub agent: AgentConfig,
    pub codex: CodexConfig,
    /// Present when the file has a `command` section.
    pub command: Option<CommandConfig>,
    pub publish: PublishConfig,
    pub server: ServerConfig,
    /// The upstream model every agent's traffic is forwarded to (takt).
    pub model: ModelConfig,
    /// How Claude Code is launched (takt).
    pub claude: ClaudeConfig,
    /// Limits of the built-in agent loop (takt).
    pub builtin: BuiltinConfig,
    /// How agent processes are confined (takt).
    pub sandbox: SandboxConfig,
    /// Spend caps enforced by the model endpoint and the scheduler (takt).
    pub budget: BudgetConfig,
    /// Configured gates, in file order, names unique (takt). Detected gates are added by
    /// verification when `verify.gates_auto` is on.
    pub gates: Vec<GateConfig>,
    /// `schedules`: tasks created on cron schedules.
    pub schedules: Vec<ScheduleConfig>,
    /// How gates are found and their results read (takt).
    pub verify: VerifyConfig,
    /// Verification rounds, the judge and the blind reviewers (takt).
    pub review: ReviewConfig,
    /// Which changes merge alone and which wait for people (takt).
    pub risk: RiskConfig,
    /// The prompt body as a parsed strict Liquid template.
    pub prompt: PromptTemplate,
    /// Top-level sections this crate does not validate (unknown keys, Symphony's `worker` and
    /// `observability`, takt sections not in this build yet), kept verbatim as JSON.
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// Findings that did not stop loading, in file order.
    pub warnings: Vec<ConfigWarning>,
    /// SHA-256 (hex) of the file's bytes.
    pub fingerprint: String,
}

impl Workflow {
    /// Renders the prompt for one run. Fails with `template_render_error` when the
    /// template uses an unknown variable or field.
    pub fn render_prompt(&self, ctx: &PromptContext<'_>) -> Result<String, WorkflowError> {
        self.prompt.render(ctx, &self.path)
    }
}

/// Largest workflow file accepted (16 MiB).
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Builds a workflow from the file's bytes.
pub(crate) fn from_bytes(
    bytes: &[u8],
    path: &Path,
    env: &dyn Env,
) -> Result<Workflow, WorkflowError> {
    let path = absolute(path);
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(WorkflowError::WorkflowParse {
            path,
            position: None,
            message: format!(
                "the file is {} bytes, more than the {MAX_FILE_BYTES} bytes allowed",
                bytes.len()
            ),
            fix: "keep WORKFLOW.md small; move long instructions into the repository's docs"
                .to_owned(),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|err| {
        let valid = String::from_utf8_lossy(&bytes[..err.valid_up_to()]).into_owned();
        WorkflowError::WorkflowParse {
            position: Some(position_of(&valid, valid.len())),
            path: path.clone(),
            message: "the file is not valid UTF-8".to_owned(),
            fix: "save WORKFLOW.md as UTF-8".to_owned(),
        }
    })?;
    build(text, bytes, path, env)
}

/// Builds a workflow from text (the bytes are its UTF-8 encoding).
pub(crate) fn from_text(text: &str, path: &Path, env: &dyn Env) -> Result<Workflow, WorkflowError> {
    build(text, text.as_bytes(), absolute(path), env)
}

fn build(
    text: &str,
    bytes: &[u8],
    path: PathBuf,
    env: &dyn Env,
) -> Result<Workflow, WorkflowError> {
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let parts = split(text);
    let root = parts
        .yaml
        .map(|yaml| parse_yaml(yaml, parts.yaml_line))
        .transpose()
        .map_err(|err| yaml_error(err, &path))?;
    let config = validate(root.as_ref(), &path, &dir, env)?;
    let (body, body_start) = trimmed_body(parts.body, parts.body_line);
    let prompt = PromptTemplate::parse(body, body_start, &path)?;
    Ok(Workflow {
        fingerprint: hex_sha256(bytes),
        path,
        dir,
        tracker: config.tracker,
        polling: config.polling,
        workspace: config.workspace,
        hooks: config.hooks,
        agent: config.agent,
        codex: config.codex,
        command: config.command,
        publish: config.publish,
        server: config.server,
        prompt,
        model: config.model,
        claude: config.claude,
        builtin: config.builtin,
        sandbox: config.sandbox,
        budget: config.budget,
        gates: config.gates,
        schedules: config.schedules,
        verify: config.verify,
        review: config.review,
        risk: config.risk,
        extensions: config.extensions,
        warnings: config.warnings,
    })
}

fn yaml_error(err: YamlError, path: &Path) -> WorkflowError {
    let (message, fix) = if err.message.contains("budget breached") {
        (
            format!(
                "the YAML front matter exceeds the parser's limits ({})",
                err.message
            ),
            "the front matter is too large, too deeply nested or expands too many aliases (a YAML \
             alias bomb?); simplify it",
        )
    } else if err.message.starts_with("duplicate mapping key") {
        let message = err
            .message
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or_default();
        (
            format!("invalid YAML front matter: {message}"),
            "remove or rename one of the duplicate keys",
        )
    } else {
        (
            format!("invalid YAML front matter: {}", err.message),
            "fix the YAML between the `---` lines",
        )
    };
    WorkflowError::WorkflowParse {
        path: path.to_path_buf(),
        position: err.position,
        message,
        fix: fix.to_owned(),
    }
}

pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
