//! The key tables: which sections and keys exist, and who owns them.
//!
//! Symphony's sections tolerate unknown keys (a warning, R-006); takt's own sections reject them.

/// Tracker kinds this build accepts for `tracker.kind`.
pub const TRACKER_KINDS: &[&str] = &["local", "linear", "github", "gitlab", "memory"];

/// Tracker kinds whose adapters define default active and terminal states:
/// `github` defaults to `[open]` / `[closed]`, `gitlab` to `[opened]` / `[closed]`, the others
/// to Symphony's defaults.
pub(crate) const KINDS_WITH_DEFAULT_STATES: &[&str] =
    &["local", "linear", "github", "gitlab", "memory"];

/// `agent.backend` values.
pub(crate) const BACKENDS: &[&str] = &["command", "codex", "claude", "builtin"];

/// `publish.forge` values.
pub(crate) const FORGES: &[&str] = &["local", "github", "gitlab"];

/// Who defines a section, which decides what an unknown key in it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Symphony's sections: unknown keys are warnings (forward compatibility, R-006).
    Symphony,
    /// takt's sections: unknown keys are errors.
    Takt,
}

pub(crate) struct SectionSpec {
    pub name: &'static str,
    pub owner: Owner,
    pub keys: &'static [&'static str],
}

pub(crate) const TRACKER: SectionSpec = SectionSpec {
    name: "tracker",
    owner: Owner::Symphony,
    keys: &[
        "kind",
        "active_states",
        "terminal_states",
        "required_labels",
        "provider",
        // takt's write-back transitions.
        "on_start",
        "on_review",
        "on_done",
        "on_failed",
        "on_cancel",
        "answer_mention",
        // Symphony's legacy flat Linear keys, copied into `provider`.
        "endpoint",
        "api_key",
        "project_slug",
        "assignee",
    ],
};

/// Legacy flat tracker keys copied into `tracker.provider` when the provider lacks them.
pub(crate) const LEGACY_PROVIDER_KEYS: &[&str] =
    &["endpoint", "api_key", "project_slug", "assignee"];

pub(crate) const POLLING: SectionSpec = SectionSpec {
    name: "polling",
    owner: Owner::Symphony,
    keys: &["interval_ms"],
};

pub(crate) const WORKSPACE: SectionSpec = SectionSpec {
    name: "workspace",
    owner: Owner::Symphony,
    keys: &["root", "repo", "base_branch", "overlay"],
};

pub(crate) const HOOKS: SectionSpec = SectionSpec {
    name: "hooks",
    owner: Owner::Symphony,
    keys: &[
        "after_create",
        "before_run",
        "after_run",
        "before_remove",
        "timeout_ms",
        "sandbox",
    ],
};

pub(crate) const AGENT: SectionSpec = SectionSpec {
    name: "agent",
    owner: Owner::Symphony,
    keys: &[
        "backend",
        "max_concurrent_agents",
        "max_turns",
        "max_retry_backoff_ms",
        "max_concurrent_agents_by_state",
        "max_attempts",
        "max_run_duration_ms",
    ],
};

pub(crate) const CODEX: SectionSpec = SectionSpec {
    name: "codex",
    owner: Owner::Symphony,
    keys: &[
        "command",
        "approval_policy",
        "thread_sandbox",
        "turn_sandbox_policy",
        "turn_timeout_ms",
        "read_timeout_ms",
        "stall_timeout_ms",
    ],
};

pub(crate) const SERVER: SectionSpec = SectionSpec {
    name: "server",
    owner: Owner::Symphony,
    keys: &[
        "port",
        "host",
        "token",
        "github_webhook_secret",
        "gitlab_webhook_secret",
        "linear_webhook_secret",
        "webhook_token",
    ],
};

pub(crate) const COMMAND: SectionSpec = SectionSpec {
    name: "command",
    owner: Owner::Takt,
    keys: &["run"],
};

pub(crate) const PUBLISH: SectionSpec = SectionSpec {
    name: "publish",
    owner: Owner::Takt,
    keys: &[
        "forge",
        "auto_merge",
        "branch_prefix",
        "repo",
        "project_path",
        "api_url",
        "token",
        "remote",
        "merge_method",
        "max_ci_rounds",
        "base_branch",
    ],
};

pub(crate) const MODEL: SectionSpec = SectionSpec {
    name: "model",
    owner: Owner::Takt,
    keys: &[
        "provider",
        "base_url",
        "api_key",
        "name",
        "scenarios",
        "prices",
    ],
};

pub(crate) const CLAUDE: SectionSpec = SectionSpec {
    name: "claude",
    owner: Owner::Takt,
    keys: &[
        "command",
        "model",
        "permission_mode",
        "allowed_tools",
        "disallowed_tools",
    ],
};

pub(crate) const BUILTIN: SectionSpec = SectionSpec {
    name: "builtin",
    owner: Owner::Takt,
    keys: &[
        "max_steps",
        "max_tokens_per_turn",
        "context_budget_tokens",
        "command_timeout_ms",
        "output_limit_bytes",
        "deny_commands",
    ],
};

pub(crate) const SANDBOX: SectionSpec = SectionSpec {
    name: "sandbox",
    owner: Owner::Takt,
    keys: &[
        "mode",
        "network",
        "allow_hosts",
        "env",
        "memory_mb",
        "pids",
        "cpu_seconds",
        "file_size_mb",
        "open_files",
        "wall_clock_ms",
        "read_only",
        "read_write",
        "user",
    ],
};

pub(crate) const BUDGET: SectionSpec = SectionSpec {
    name: "budget",
    owner: Owner::Takt,
    keys: &[
        "per_run_usd",
        "per_run_tokens",
        "per_task_usd",
        "per_task_tokens",
        "per_day_usd",
        "per_day_tokens",
        "per_month_usd",
        "per_month_tokens",
        "on_exhaust",
        "max_tokens_without_progress",
    ],
};

pub(crate) const VERIFY: SectionSpec = SectionSpec {
    name: "verify",
    owner: Owner::Takt,
    keys: &[
        "gates_auto",
        "flaky_reruns",
        "keep_going",
        "base_tests",
        "baseline",
        "warm_cache",
        "warm_cache_max_mb",
    ],
};

pub(crate) const REVIEW: SectionSpec = SectionSpec {
    name: "review",
    owner: Owner::Takt,
    keys: &["max_rounds", "judge", "reviewers", "model", "on_block"],
};

pub(crate) const RISK: SectionSpec = SectionSpec {
    name: "risk",
    owner: Owner::Takt,
    keys: &[
        "auto_ship",
        "review",
        "hard_stop",
        "hard_stop_approvals",
        "max_changed_lines",
        "builtin_rules",
        "default",
    ],
};

/// `gates` is a top-level list, not a mapping; this is the spec of one of its items.
pub(crate) const GATES_SECTION: &str = "gates";

pub(crate) const GATE: SectionSpec = SectionSpec {
    name: GATES_SECTION,
    owner: Owner::Takt,
    keys: &[
        "name",
        "run",
        "timeout_ms",
        "required",
        "env",
        "hidden",
        "files",
        "junit",
    ],
};

/// `schedules` is a top-level list too; this is the spec of one of its items.
pub(crate) const SCHEDULES_SECTION: &str = "schedules";

pub(crate) const SCHEDULE: SectionSpec = SectionSpec {
    name: SCHEDULES_SECTION,
    owner: Owner::Takt,
    keys: &[
        "name", "cron", "timezone", "title", "body", "labels", "priority",
    ],
};

/// One mapping item of `review.reviewers`.
pub(crate) const REVIEWER: SectionSpec = SectionSpec {
    name: "review.reviewers",
    owner: Owner::Takt,
    keys: &["name", "mandate"],
};

/// `review.on_block` values.
pub(crate) const ON_BLOCK: &[&str] = &["send_back", "human"];

/// `risk.default` values, from least to most guarded.
pub(crate) const RISK_TIERS: &[&str] = &["auto_ship", "review", "hard_stop"];

/// Every mapping section this crate validates (`gates`, a list, is validated on its own).
pub(crate) const SECTIONS: &[&SectionSpec] = &[
    &TRACKER, &POLLING, &WORKSPACE, &HOOKS, &AGENT, &CODEX, &SERVER, &COMMAND, &PUBLISH, &MODEL,
    &CLAUDE, &BUILTIN, &SANDBOX, &BUDGET, &VERIFY, &REVIEW, &RISK,
];

/// Symphony extension sections takt recognizes but does not implement (SSH workers, Symphony's
/// terminal dashboard): a warning says they are ignored.
pub(crate) const SYMPHONY_IGNORED_SECTIONS: &[&str] = &["worker", "observability"];

/// Every top-level name, for "did you mean" on unknown top-level keys.
pub(crate) fn top_level_names() -> Vec<&'static str> {
    SECTIONS
        .iter()
        .map(|s| s.name)
        .chain([GATES_SECTION, SCHEDULES_SECTION])
        .chain(SYMPHONY_IGNORED_SECTIONS.iter().copied())
        .collect()
}

/// The sections other than `section` that define `key`, for "did you mean `codex.key`?".
pub(crate) fn sections_defining(key: &str, section: &str) -> Vec<&'static str> {
    SECTIONS
        .iter()
        .filter(|s| s.name != section && s.keys.contains(&key))
        .map(|s| s.name)
        .collect()
}
