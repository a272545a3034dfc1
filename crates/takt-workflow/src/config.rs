//! The validated configuration types: what the runtime reads. Every value has been defaulted,
//! resolved and checked; see `docs/workflow.md` for each key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use takt_protocol::normalize_state;

/// `tracker`: which tracker to poll and which states mean what.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// One of [`crate::TRACKER_KINDS`], lowercased. Default `local` (a takt extension; Symphony
    /// requires the key).
    pub kind: String,
    /// States that make an issue eligible, in the tracker's spelling; compare with
    /// [`TrackerConfig::is_active`].
    pub active_states: Vec<String>,
    /// States that end an issue; compare with [`TrackerConfig::is_terminal`].
    pub terminal_states: Vec<String>,
    /// Labels an issue must all carry: trimmed, lowercased, de-duplicated. A blank entry
    /// matches no issue.
    pub required_labels: Vec<String>,
    /// Adapter-owned settings, verbatim. The legacy flat keys `tracker.endpoint`,
    /// `api_key`, `project_slug` and `assignee` are copied in when absent here.
    /// `$VAR` references are left for the adapter to resolve (see [`crate::resolve_secret`]).
    pub provider: serde_json::Map<String, serde_json::Value>,
    /// Where takt moves the issue as the task goes (`tracker.on_start`, `on_review`,
    /// `on_done`, `on_failed`, `on_cancel`; takt extensions). Unset: the tracker is left alone
    /// (the local tracker is always kept current).
    pub transitions: TrackerTransitions,
    /// `tracker.answer_mention` (takt): a comment on a blocked task's issue that mentions this
    /// (case-insensitive) is the answer. Default `@takt`.
    pub answer_mention: String,
}

/// `tracker.on_*`: tracker state names, in the tracker's spelling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackerTransitions {
    /// When the first run starts.
    pub on_start: Option<String>,
    /// When the change waits for people (review, or its pull request).
    pub on_review: Option<String>,
    /// When the change merged.
    pub on_done: Option<String>,
    /// When the task failed.
    pub on_failed: Option<String>,
    /// When an operator cancelled the task.
    pub on_cancel: Option<String>,
}

impl TrackerConfig {
    /// Case-insensitive, trimmed membership in `active_states`.
    pub fn is_active(&self, state: &str) -> bool {
        contains_state(&self.active_states, state)
    }

    /// Case-insensitive, trimmed membership in `terminal_states`.
    pub fn is_terminal(&self, state: &str) -> bool {
        contains_state(&self.terminal_states, state)
    }
}

fn contains_state(states: &[String], state: &str) -> bool {
    let wanted = normalize_state(state);
    states.iter().any(|s| normalize_state(s) == wanted)
}

/// `polling`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollingConfig {
    /// Milliseconds between tracker polls; > 0; default 30000.
    pub interval_ms: u64,
}

/// Where the repository comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A local repository (absolute path).
    Path(PathBuf),
    /// A remote URL (`scheme://...` or `user@host:path`), kept verbatim.
    Url(String),
}

/// `workspace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceConfig {
    /// Absolute directory holding per-issue workspaces.
    pub root: PathBuf,
    /// The repository workspaces are created from (takt extension). Default: the WORKFLOW.md
    /// directory.
    pub repo: RepoSource,
    /// The branch work starts from and merges into (takt extension); `None` means the
    /// repository's current `HEAD` branch.
    pub base_branch: Option<String>,
    /// Overlay workspaces over shared golden trees (takt extension). Default true: used
    /// wherever the daemon can mount them (root, a kernel with overlayfs), else worktrees.
    pub overlay: bool,
}

/// `hooks`: shell scripts run in the workspace. Blank scripts count as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HooksConfig {
    pub after_create: Option<String>,
    pub before_run: Option<String>,
    pub after_run: Option<String>,
    pub before_remove: Option<String>,
    /// Applies to every hook; > 0; default 60000.
    pub timeout_ms: u64,
    /// Run `before_run`, `after_run` and `before_remove` in the agent sandbox (takt extension;
    /// default true): they run over files an agent may have written.
    pub sandbox: bool,
}

/// `agent.backend`: which agent runs a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// `command.run`, a plain program.
    Command,
    /// Codex app-server over stdio JSON-RPC (Symphony's agent).
    Codex,
    /// Claude Code in stream-json mode.
    Claude,
    /// takt's built-in agent loop.
    Builtin,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Command => "command",
            BackendKind::Codex => "codex",
            BackendKind::Claude => "claude",
            BackendKind::Builtin => "builtin",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "command" => Some(BackendKind::Command),
            "codex" => Some(BackendKind::Codex),
            "claude" => Some(BackendKind::Claude),
            "builtin" => Some(BackendKind::Builtin),
            _ => None,
        }
    }
}

/// `agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Default `codex`, as in Symphony.
    pub backend: BackendKind,
    /// Global limit on running agents; > 0; default 10.
    pub max_concurrent_agents: u32,
    /// Turns per run; > 0; default 20.
    pub max_turns: u32,
    /// Cap on failure backoff; > 0; default 300000.
    pub max_retry_backoff_ms: u64,
    /// Per-state limits, keys trimmed and lowercased; every value > 0 (invalid entries are
    /// rejected, not ignored).
    pub max_concurrent_agents_by_state: BTreeMap<String, u32>,
    /// Runs per task before it fails (takt); > 0; default 4.
    pub max_attempts: u32,
    /// Wall-clock cap on one run (takt); > 0; default 3600000.
    pub max_run_duration_ms: u64,
}

impl AgentConfig {
    /// The concurrency limit for issues in `state`: the per-state limit if one is configured,
    /// else the global limit.
    pub fn max_concurrent_agents_for_state(&self, state: &str) -> u32 {
        self.max_concurrent_agents_by_state
            .get(&normalize_state(state))
            .copied()
            .unwrap_or(self.max_concurrent_agents)
    }
}

/// `codex`: settings for the Codex app-server backend, passed through to Codex.
#[derive(Debug, Clone, PartialEq)]
pub struct CodexConfig {
    /// Shell command, run with `bash -lc` in the workspace; kept raw (no `~`/`$VAR` rewriting).
    pub command: String,
    /// Codex `AskForApproval` value (string or mapping); `None` lets the backend pick its default.
    pub approval_policy: Option<serde_json::Value>,
    /// Codex `SandboxMode`; `None` lets the backend pick its default.
    pub thread_sandbox: Option<String>,
    /// Codex `SandboxPolicy` mapping, passed unchanged; `None` lets the backend pick.
    pub turn_sandbox_policy: Option<serde_json::Value>,
    /// Silence allowed while a turn streams; > 0; default 3600000.
    pub turn_timeout_ms: u64,
    /// Request/response timeout; > 0; default 5000.
    pub read_timeout_ms: u64,
    /// Stall detection window; >= 0, 0 disables; default 300000.
    pub stall_timeout_ms: i64,
}

/// `command` (takt): the command backend's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    /// Shell command run in the workspace; kept raw.
    pub run: String,
}

/// `publish.forge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    /// Merge locally into the base branch.
    Local,
    /// Push the branch to GitHub and open a pull request (REST v3).
    Github,
    /// Push the branch to GitLab and open a merge request (REST v4).
    Gitlab,
}

impl ForgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Local => "local",
            ForgeKind::Github => "github",
            ForgeKind::Gitlab => "gitlab",
        }
    }
}

/// `publish.merge_method`: how an approved pull/merge request is merged on the forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeMethod {
    Merge,
    /// The default: one task, one commit.
    #[default]
    Squash,
    Rebase,
}

impl MergeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

/// `publish` (takt): what happens to an accepted change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishConfig {
    pub forge: ForgeKind,
    /// Merge without a human when the risk policy allows; default false.
    pub auto_merge: bool,
    /// Prefix of the branches takt creates; default `takt/`.
    pub branch_prefix: String,
    /// The forge's repository: `publish.repo` (GitHub `owner/name`) or `publish.project_path`
    /// (GitLab `group/project`); `None` for `local`.
    pub repo: Option<String>,
    /// `publish.api_url`; `None`: the public service (`https://api.github.com`,
    /// `https://gitlab.com/api/v4`).
    pub api_url: Option<String>,
    /// `publish.token` (`$VAR` only); for `github`/`gitlab` always set, default `$GITHUB_TOKEN`
    /// / `$GITLAB_TOKEN`. The daemon's credential: it never reaches the agent's sandbox.
    pub token: Option<SecretRef>,
    /// `publish.remote`: the git push URL when it is not the forge's HTTPS clone URL.
    pub remote: Option<String>,
    /// `publish.merge_method`; default squash.
    pub merge_method: MergeMethod,
    /// `publish.max_ci_rounds`: how many times a red forge check sends the task back to the
    /// agent before it fails; default 2.
    pub max_ci_rounds: u32,
    /// `publish.base_branch`: the branch requests merge into; default `workspace.base_branch`
    /// (`None`: the repository's `HEAD` branch).
    pub base_branch: Option<String>,
}

/// One item of `schedules`: a task created on a cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Unique; names the schedule in status and in the tasks it creates.
    pub name: String,
    /// A cron expression (5 or 6 fields; `@daily`-style nicknames), checked when the file loads.
    pub cron: String,
    /// An IANA time zone name such as `Europe/Berlin`; default `UTC`.
    pub timezone: String,
    pub title: String,
    pub body: Option<String>,
    pub labels: Vec<String>,
    pub priority: Option<i64>,
}

/// `server`: the HTTP API (a Symphony extension, R-007). Changes need a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `None`: no listener unless the CLI asks for one; 0 picks a free port.
    pub port: Option<u16>,
    /// Default `127.0.0.1`.
    pub host: String,
    /// The bearer token state-changing requests must carry; required to bind anything but
    /// loopback.
    pub token: Option<SecretRef>,
    /// The secret GitHub signs webhook deliveries with (`POST /hooks/github`).
    pub github_webhook_secret: Option<SecretRef>,
    /// The secret token GitLab sends with webhook deliveries (`POST /hooks/gitlab`).
    pub gitlab_webhook_secret: Option<SecretRef>,
    /// The signing secret Linear signs webhook deliveries with (`POST /hooks/linear`).
    pub linear_webhook_secret: Option<SecretRef>,
    /// The bearer token of `POST /hooks/generic`.
    pub webhook_token: Option<SecretRef>,
}

/// A secret named by `$VAR` in WORKFLOW.md.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The environment variable's name.
    pub var: String,
    /// Its value; `None` when the variable is not set (the daemon then refuses to serve
    /// rather than serve without it).
    pub value: Option<String>,
}

impl std::fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "${} ({})",
            self.var,
            if self.value.is_some() { "set" } else { "unset" }
        )
    }
}

/// `model.provider`: which wire API the model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelProvider {
    /// OpenAI or any OpenAI-compatible server (vLLM, llama.cpp, Ollama): Chat Completions and
    /// Responses.
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// takt's embedded scripted model (tests and the demo); no network, no key.
    Mock,
}

impl ModelProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelProvider::Openai => "openai",
            ModelProvider::Anthropic => "anthropic",
            ModelProvider::Mock => "mock",
        }
    }
}

/// takt's `model` section: the upstream every agent's model traffic is forwarded to.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub provider: ModelProvider,
    /// Upstream base URL (`https://api.openai.com/v1`, `https://api.anthropic.com`); `None`
    /// for the mock.
    pub base_url: Option<String>,
    /// The resolved provider key (from `$VAR` or the provider's canonical variable). Never
    /// printed; lives only in the daemon.
    pub api_key: Option<String>,
    /// The environment variable the key came from, so it can be kept out of agents.
    pub api_key_var: Option<String>,
    /// Model name sent upstream.
    pub name: Option<String>,
    /// Directory of scenario files for the mock provider (default: the built-in scenarios).
    pub scenarios: Option<std::path::PathBuf>,
    /// `model.prices`: overrides of the built-in price table, by model name.
    pub prices: BTreeMap<String, ModelPriceConfig>,
}

/// takt's `claude` section: how Claude Code is launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeConfig {
    /// Shell command, default `claude`.
    pub command: String,
    pub model: Option<String>,
    /// `default`, `acceptEdits`, `plan`, `dontAsk` or `bypassPermissions`.
    pub permission_mode: String,
    pub allowed_tools: Vec<String>,
    pub disallowed_tools: Vec<String>,
}

/// takt's `builtin` section: limits of the built-in agent loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinConfig {
    /// Model round trips per turn before the turn is cut off.
    pub max_steps: u32,
    /// Tokens (input + output, as the provider reports them) per turn.
    pub max_tokens_per_turn: u64,
    /// Old tool output is truncated once the conversation exceeds this estimate.
    pub context_budget_tokens: u64,
    /// Timeout of one `run` tool command.
    pub command_timeout_ms: u64,
    /// Bytes of a tool's output kept (head and tail).
    pub output_limit_bytes: u64,
    /// Commands the `run` tool refuses (matched as whole words at the start of a command or
    /// after `;`, `&&`, `||`, `|`).
    pub deny_commands: Vec<String>,
}

/// takt's `sandbox` section: the confinement every agent process runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub mode: SandboxMode,
    pub network: SandboxNetwork,
    /// Hosts (or `*.suffix` patterns) reachable with `network: allowlist`.
    pub allow_hosts: Vec<String>,
    /// Names of daemon environment variables passed into the sandbox.
    pub env: Vec<String>,
    pub memory_mb: Option<u64>,
    pub pids: Option<u64>,
    pub cpu_seconds: Option<u64>,
    pub file_size_mb: Option<u64>,
    pub open_files: Option<u64>,
    /// The whole process tree is killed after this long (on top of the agent timeouts).
    pub wall_clock_ms: Option<u64>,
    /// Extra directories visible read-only / read-write inside the sandbox.
    pub read_only: Vec<PathBuf>,
    pub read_write: Vec<PathBuf>,
    /// The unprivileged user agents run as when the daemon runs as root.
    pub user: String,
}

/// `sandbox.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// bubblewrap when it works here, else Landlock; never unconfined.
    Auto,
    Bwrap,
    Landlock,
    /// No confinement, chosen explicitly; every run's evidence says so.
    None,
}

/// `sandbox.network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxNetwork {
    /// Nothing, not even the model.
    None,
    /// Only the daemon's model endpoint.
    Model,
    /// The model endpoint plus `allow_hosts` through a filtering proxy.
    Allowlist,
}

/// takt's `budget` section: spend caps. Amounts are US dollars as written; tokens count
/// input + output as the provider reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetConfig {
    pub per_run: BudgetLimit,
    pub per_task: BudgetLimit,
    pub per_day: BudgetLimit,
    pub per_month: BudgetLimit,
    pub on_exhaust: OnExhaust,
    /// A run that spends this many tokens without changing the workspace is stopped as stalled.
    pub max_tokens_without_progress: Option<u64>,
}

/// One scope's caps; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetLimit {
    pub usd: Option<f64>,
    pub tokens: Option<u64>,
}

/// `budget.on_exhaust`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnExhaust {
    /// The task fails with a report of spend and progress.
    #[default]
    Stop,
    /// The task waits in `blocked` until a person raises the budget and answers.
    Pause,
}

/// One entry of `model.prices`: US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPriceConfig {
    pub input: f64,
    pub cached_input: Option<f64>,
    pub output: f64,
    pub cache_write: Option<f64>,
}

/// One entry of takt's `gates` list: a named shell command whose exit status says whether the
/// change may go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateConfig {
    /// Unique within `gates`; names the gate in reports and feedback.
    pub name: String,
    /// Shell command run in the gate's checkout; kept raw.
    pub run: String,
    /// > 0; default 600000 (ten minutes).
    pub timeout_ms: u64,
    /// A failing required gate blocks the change; an optional one is only reported. Default true.
    pub required: bool,
    /// Extra environment for the command, `$NAME` values already resolved from the daemon's
    /// environment.
    pub env: BTreeMap<String, String>,
    /// A holdback gate whose files never reach the agent. Default false.
    pub hidden: bool,
    /// The absolute directory of a hidden gate's files (an existing directory); `Some` exactly
    /// when `hidden`.
    pub files: Option<PathBuf>,
    /// JUnit XML reports the command writes, relative to the checkout root.
    pub junit: Vec<String>,
}

/// takt's `verify` section: how gates are found and how their results are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyConfig {
    /// Detect gates from the repository (Cargo.toml, package.json, ...) in addition to `gates`.
    /// Default true.
    pub gates_auto: bool,
    /// Re-runs of a failing gate before its failures count (flaky detection); 0..=5, default 1.
    pub flaky_reruns: u32,
    /// Run every gate even after a required one failed. Default false: stop at the first.
    pub keep_going: bool,
    /// Also run the base commit's test files against the new code (catches deleted or weakened
    /// tests). Default false.
    pub base_tests: bool,
    /// Compare failures with the base commit so pre-existing failures do not block. Default true.
    pub baseline: bool,
    /// Start gates, and agents' own builds, from a build cache (Cargo's `target/`) made by
    /// running the gates on the base commit, through a kernel overlay, instead of building
    /// from nothing. Default false: a
    /// warm verdict also trusts the build tool's and the repository's build scripts' change
    /// tracking, which a cold build does not need.
    pub warm_cache: bool,
    /// Disk the warm caches may take together, in MiB (default 20480). A base whose outputs
    /// alone exceed it gets no cache: its gates run cold.
    pub warm_cache_max_mb: u64,
}

/// 20 GiB: four caches of a large Rust workspace's debug `target/`.
pub const DEFAULT_WARM_CACHE_MAX_MB: u64 = 20 * 1024;

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            gates_auto: true,
            flaky_reruns: 1,
            keep_going: false,
            base_tests: false,
            baseline: true,
            warm_cache: false,
            warm_cache_max_mb: DEFAULT_WARM_CACHE_MAX_MB,
        }
    }
}

/// takt's `review` section: verification rounds, the judge and the blind reviewers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewConfig {
    /// Verification rounds per task: a failing round before the last sends the task back with
    /// the evidence, the `max_rounds`-th failing round fails the task. 1..=10, default 2.
    pub max_rounds: u32,
    /// Ask a judge model whether the change does what the task asks. Default false.
    pub judge: bool,
    /// Blind reviewers, in file order; names are unique.
    pub reviewers: Vec<ReviewerConfig>,
    /// The model the judge and the reviewers ask for: `review.model`, else `model.name`.
    pub model: Option<String>,
    /// What a reviewer's block does. Default [`OnBlock::SendBack`].
    pub on_block: OnBlock,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        Self {
            max_rounds: 2,
            judge: false,
            reviewers: Vec::new(),
            model: None,
            on_block: OnBlock::SendBack,
        }
    }
}

/// One blind reviewer of `review.reviewers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewerConfig {
    /// Unique; the `by` of the reviewer's verdicts. Never `judge`.
    pub name: String,
    /// What the reviewer checks. For the built-in `qa` and `security` reviewers, the built-in
    /// text ([`crate::QA_MANDATE`], [`crate::SECURITY_MANDATE`]) unless the workflow gives one.
    pub mandate: String,
}

/// `review.on_block`: what happens when a reviewer blocks the change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnBlock {
    /// The task goes back to the agent with the reviewer's findings (a verification round).
    #[default]
    SendBack,
    /// The change waits for a person.
    Human,
}

impl OnBlock {
    pub fn as_str(self) -> &'static str {
        match self {
            OnBlock::SendBack => "send_back",
            OnBlock::Human => "human",
        }
    }
}

/// takt's `risk` section: which changes merge alone and which wait for people. Globs are
/// repository-relative and already checked to compile (see `takt_core::risk` for how they
/// match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskConfig {
    /// A change whose every path matches one of these starts at `auto_ship`.
    pub auto_ship: Vec<String>,
    /// A path matching one of these raises the change to at least `review`.
    pub review: Vec<String>,
    /// A path matching one of these raises the change to `hard_stop`.
    pub hard_stop: Vec<String>,
    /// Distinct approvals a `hard_stop` change needs; 1..=10, default 2.
    pub hard_stop_approvals: u32,
    /// A change of more lines (added + removed) goes to `review`; > 0, default 1000.
    pub max_changed_lines: u64,
    /// Apply the built-in rules (lockfiles, dependency manifests, migrations, CI and infra).
    /// Default true.
    pub builtin_rules: bool,
    /// The tier of a change no `auto_ship` glob covers (`risk.default`). Default `review`, or
    /// `auto_ship` when `publish.auto_merge: true`.
    pub default_tier: takt_protocol::RiskTier,
}

impl Default for RiskConfig {
    fn default() -> Self {
        Self {
            auto_ship: Vec::new(),
            review: Vec::new(),
            hard_stop: Vec::new(),
            hard_stop_approvals: 2,
            max_changed_lines: 1000,
            builtin_rules: true,
            default_tier: takt_protocol::RiskTier::Review,
        }
    }
}
