//! The high half of the two-phase configuration: the raw tree becomes the typed configuration,
//! with defaults, `$VAR` and `~` in local paths only, and precise problems.

mod agents;
mod budget;
mod gates;
mod paths;
mod review;
mod risk;
mod runtime;
mod sandbox;
mod schedules;
mod takt;
mod tracker;
mod verify;

pub use sandbox::DEFAULT_SANDBOX_ENV;

use std::collections::BTreeMap;
use std::path::Path;

pub use agents::DEFAULT_DENY_COMMANDS;
pub use review::{BUILTIN_REVIEWERS, QA_MANDATE, SECURITY_MANDATE};

use crate::config::{
    AgentConfig, BudgetConfig, BuiltinConfig, ClaudeConfig, CodexConfig, CommandConfig, GateConfig,
    HooksConfig, ModelConfig, PollingConfig, PublishConfig, ReviewConfig, RiskConfig,
    SandboxConfig, ScheduleConfig, ServerConfig, TrackerConfig, VerifyConfig, WorkspaceConfig,
};
use crate::env::Env;
use crate::error::{ConfigWarning, WorkflowError};
use crate::raw::{Key, Node, Value};
use crate::reader::{Report, Section};
use crate::schema::{self, SYMPHONY_IGNORED_SECTIONS};
use crate::suggest::did_you_mean;

/// Default `tracker.active_states` for kinds that have one.
pub const DEFAULT_ACTIVE_STATES: &[&str] = &["Todo", "In Progress"];
/// Default `tracker.terminal_states` for kinds that have one.
pub const DEFAULT_TERMINAL_STATES: &[&str] =
    &["Closed", "Cancelled", "Canceled", "Duplicate", "Done"];
/// Default `codex.command`.
pub const DEFAULT_CODEX_COMMAND: &str = "codex app-server";

pub(crate) const U32_MAX: i128 = u32::MAX as i128;
pub(crate) const U64_MAX: i128 = u64::MAX as i128;
pub(crate) const I64_MAX: i128 = i64::MAX as i128;

/// The validated sections.
pub(crate) struct Validated {
    pub tracker: TrackerConfig,
    pub polling: PollingConfig,
    pub workspace: WorkspaceConfig,
    pub hooks: HooksConfig,
    pub agent: AgentConfig,
    pub codex: CodexConfig,
    pub command: Option<CommandConfig>,
    pub publish: PublishConfig,
    pub server: ServerConfig,
    pub model: ModelConfig,
    pub claude: ClaudeConfig,
    pub builtin: BuiltinConfig,
    pub sandbox: SandboxConfig,
    pub budget: BudgetConfig,
    pub gates: Vec<GateConfig>,
    pub schedules: Vec<ScheduleConfig>,
    pub verify: VerifyConfig,
    pub review: ReviewConfig,
    pub risk: RiskConfig,
    pub extensions: BTreeMap<String, serde_json::Value>,
    pub warnings: Vec<ConfigWarning>,
}

/// Validates the front matter (`None` when the file has none) of the workflow at `path`, whose
/// directory is `dir`.
pub(crate) fn validate(
    root: Option<&Node>,
    path: &Path,
    dir: &Path,
    env: &dyn Env,
) -> Result<Validated, WorkflowError> {
    let entries: &[(Key, Node)] = match root.map(|n| (n, &n.value)) {
        None | Some((_, Value::Null)) => &[],
        Some((_, Value::Map(entries))) => entries,
        Some((node, _)) => {
            return Err(WorkflowError::FrontMatterNotAMap {
                path: path.to_path_buf(),
                position: Some(node.pos),
                found: node.kind().to_owned(),
            });
        }
    };
    let mut report = Report::new(path);
    let extensions = top_level(entries, &mut report);

    let mut section = |spec| Section::read(entries, spec, &mut report);
    let sections = [
        section(&schema::TRACKER),
        section(&schema::POLLING),
        section(&schema::WORKSPACE),
        section(&schema::HOOKS),
        section(&schema::AGENT),
        section(&schema::CODEX),
        section(&schema::COMMAND),
        section(&schema::PUBLISH),
        section(&schema::SERVER),
        section(&schema::MODEL),
        section(&schema::CLAUDE),
        section(&schema::BUILTIN),
        section(&schema::SANDBOX),
        section(&schema::BUDGET),
        section(&schema::VERIFY),
        section(&schema::REVIEW),
        section(&schema::RISK),
    ];
    let [
        tracker,
        polling,
        workspace,
        hooks,
        agent,
        codex,
        command,
        publish,
        server,
        model,
        claude,
        builtin,
        sandbox,
        budget,
        verify,
        review,
        risk,
    ] = &sections;
    let tracker = tracker::tracker(tracker, &mut report, path)?;
    let polling = runtime::polling(polling, &mut report);
    let workspace = paths::workspace(workspace, &mut report, dir, env);
    let hooks = runtime::hooks(hooks, &mut report);
    let agent = runtime::agent(agent, &mut report);
    let codex = runtime::codex(codex, &mut report);
    let command = takt::command(command, &mut report, agent.backend);
    let publish = takt::publish(publish, &mut report, env, workspace.base_branch.as_deref());
    let server = runtime::server(server, &mut report, env);
    let mut model = agents::model(model, &mut report, env);
    if let Some(scenarios) = model.scenarios.take() {
        model.scenarios = Some(dir.join(scenarios));
    }
    let claude = agents::claude(claude, &mut report);
    let builtin = agents::builtin(builtin, &mut report);
    let sandbox = sandbox::sandbox(sandbox, &mut report, dir, env);
    let budget = budget::budget(budget, &mut report);
    let gates = gates::gates(entries, &mut report, dir, env, &workspace.repo);
    let schedules = schedules::schedules(entries, &mut report);
    let gates_auto_position = verify
        .get("gates_auto")
        .map(|node| node.pos)
        .or(verify.position);
    let verify = verify::verify(verify, &mut report);
    if !verify.gates_auto && gates.is_empty() {
        report.warn(
            "verify.gates_auto",
            gates_auto_position,
            "`verify.gates_auto` is false and `gates` is empty, so no gate checks a change",
            "list the checks under `gates:`, or remove `gates_auto: false`",
        );
    }
    let review = review::review(review, &mut report, model.name.as_deref());
    let risk = risk::risk(risk, &mut report, publish.auto_merge);

    if !report.problems.is_empty() {
        let mut problems = report.problems;
        problems.sort_by_key(|p| {
            p.position
                .map_or((u32::MAX, u32::MAX), |p| (p.line, p.column))
        });
        return Err(WorkflowError::InvalidWorkflowConfig {
            path: path.to_path_buf(),
            problems,
        });
    }
    let mut warnings = report.warnings;
    warnings.sort_by_key(|w| {
        w.position
            .map_or((u32::MAX, u32::MAX), |p| (p.line, p.column))
    });
    Ok(Validated {
        tracker,
        polling,
        workspace,
        hooks,
        agent,
        codex,
        command,
        publish,
        server,
        model,
        claude,
        builtin,
        sandbox,
        budget,
        gates,
        schedules,
        verify,
        review,
        risk,
        extensions,
        warnings,
    })
}

/// Warns about top-level keys this crate does not validate and keeps their values.
fn top_level(
    entries: &[(Key, Node)],
    report: &mut Report<'_>,
) -> BTreeMap<String, serde_json::Value> {
    let mut extensions = BTreeMap::new();
    for (key, node) in entries {
        let name = key.name.as_str();
        if name == schema::GATES_SECTION
            || name == schema::SCHEDULES_SECTION
            || schema::SECTIONS.iter().any(|s| s.name == name)
        {
            continue;
        }
        if SYMPHONY_IGNORED_SECTIONS.contains(&name) {
            report.warn(
                name,
                Some(key.pos),
                format!("section `{name}` (a Symphony extension) is not supported by takt and is ignored"),
                "remove it, or keep it if the file is shared with Symphony",
            );
        } else {
            let fix = match did_you_mean(name, &schema::top_level_names()) {
                Some(known) => format!("did you mean `{known}`?"),
                None => "unknown top-level keys are ignored for forward compatibility; remove it if it is a typo"
                    .to_owned(),
            };
            report.warn(
                name,
                Some(key.pos),
                format!("unknown top-level key `{name}` is ignored"),
                fix,
            );
        }
        extensions.insert(key.name.clone(), node.to_json());
    }
    extensions
}

pub(crate) fn to_u32(value: i128) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

pub(crate) fn to_u64(value: i128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}
