//! WORKFLOW.md: discovery, front matter, defaults, validation and strict Liquid rendering.
//!
//! A WORKFLOW.md is YAML front matter between `---` lines followed by a Liquid prompt template
//! (Symphony's format, requirements R-001 to R-048). Loading is two-phase, like ripgrep's
//! low/high arguments: the front matter is parsed into a raw, position-keeping YAML tree, then
//! validated into a [`Workflow`] whose values are all defaulted, resolved and checked. Only the
//! validated type leaves this crate.
//!
//! ```no_run
//! use std::path::Path;
//! use takt_workflow::{ProcessEnv, PromptContext, discover, load};
//! # fn main() -> Result<(), takt_workflow::WorkflowError> {
//! # let issue: takt_protocol::Issue = unimplemented!();
//! let path = discover(None, Path::new("."))?;
//! let workflow = load(&path, &ProcessEnv)?;
//! // Unknown keys in Symphony's sections, ignored sections, suspicious values:
//! let warnings: Vec<String> = workflow.warnings.iter().map(ToString::to_string).collect();
//! let prompt = workflow.render_prompt(&PromptContext::first_run(&issue))?;
//! # Ok(()) }
//! ```
//!
//! - Symphony's sections (`tracker`, `polling`, `workspace`, `hooks`, `agent`, `codex`, `server`)
//!   tolerate unknown keys: each becomes a [`ConfigWarning`] with a "did you mean" (R-006).
//! - takt's sections (`command`, `publish`, `model`, `claude`, `builtin`, `sandbox`, `budget`,
//!   `gates`, `verify`, `review`, `risk`) reject unknown keys with an
//!   `invalid_workflow_config` error naming the key, file, line and closest valid key.
//! - `$VAR` (whole value only) and `~` are expanded in local-path settings only (R-032), and
//!   `$VAR` in gate `env` values; the
//!   environment is read through [`Env`], and [`ProcessEnv`] is the only place this crate reads
//!   the process environment.
//! - Errors are [`WorkflowError`]s; [`WorkflowError::category`] gives Symphony's category names.
//! - [`WorkflowWatcher`] reloads a changed file and keeps the last good workflow (R-043, R-045).
//!
//! `docs/workflow.md` in the repository is the reference for every key.

mod config;
mod env;
mod error;
mod file;
mod front_matter;
mod raw;
mod reader;
mod schema;
mod suggest;
mod template;
mod validate;
mod watch;
mod workflow;

use std::path::Path;

pub use config::{
    AgentConfig, BackendKind, BudgetConfig, BudgetLimit, BuiltinConfig, ClaudeConfig, CodexConfig,
    CommandConfig, ForgeKind, GateConfig, HooksConfig, MergeMethod, ModelConfig, ModelPriceConfig,
    ModelProvider, OnBlock, OnExhaust, PollingConfig, PublishConfig, RepoSource, ReviewConfig,
    ReviewerConfig, RiskConfig, SandboxConfig, SandboxMode, SandboxNetwork, ScheduleConfig,
    SecretRef, ServerConfig, TrackerConfig, TrackerTransitions, VerifyConfig, WorkspaceConfig,
};
pub use env::{Env, MapEnv, ProcessEnv, env_reference, resolve_secret};
pub use error::{ConfigProblem, ConfigWarning, Position, WorkflowError};
pub use file::{WORKFLOW_FILE_NAME, discover};
pub use schema::TRACKER_KINDS;
pub use suggest::did_you_mean;
pub use template::{DEFAULT_PROMPT, PromptContext, PromptTemplate, continuation_prompt};
pub use validate::DEFAULT_SANDBOX_ENV;
pub use validate::{BUILTIN_REVIEWERS, QA_MANDATE, SECURITY_MANDATE};
pub use validate::{
    DEFAULT_ACTIVE_STATES, DEFAULT_CODEX_COMMAND, DEFAULT_DENY_COMMANDS, DEFAULT_TERMINAL_STATES,
};
pub use watch::{ReloadOutcome, WorkflowWatcher};
pub use workflow::Workflow;

/// Reads, parses and validates the workflow file at `path` (R-002, R-030). A relative path is
/// taken relative to the process working directory.
pub fn load(path: &Path, env: &dyn Env) -> Result<Workflow, WorkflowError> {
    let path = env::absolute(path);
    let (bytes, _) = file::read(&path).map_err(|err| file::missing(&path, &err))?;
    workflow::from_bytes(&bytes, &path, env)
}

/// Parses and validates workflow text as if it were the file at `path` (which is not read;
/// relative settings resolve against its directory). Pure apart from `env`, except that a
/// relative `path` is made absolute against the process working directory and that a hidden
/// gate's `files` directory is checked to exist.
pub fn parse(text: &str, path: &Path, env: &dyn Env) -> Result<Workflow, WorkflowError> {
    workflow::from_text(text, path, env)
}
