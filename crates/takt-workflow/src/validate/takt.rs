//! takt's own sections, `command` and `publish`: unknown keys are errors here.

use super::paths::check_ref_name;
use super::runtime::secret_ref;
use crate::config::{BackendKind, CommandConfig, ForgeKind, MergeMethod, PublishConfig, SecretRef};
use crate::env::Env;
use crate::reader::{Report, Section};
use crate::schema;
use crate::suggest::did_you_mean;

pub(super) fn command(
    section: &Section<'_>,
    report: &mut Report<'_>,
    backend: BackendKind,
) -> Option<CommandConfig> {
    let run = report.non_blank(section, "run", "./scripts/agent.sh");
    section.check_unknown(report);
    if backend == BackendKind::Command && run.is_none() && section.get("run").is_none() {
        report.problem(
            "command.run",
            section.position,
            "`command.run` is required when `agent.backend` is `command`",
            "add `command:` with `  run: ./your-script.sh`",
        );
    }
    if backend != BackendKind::Command && section.position.is_some() {
        report.warn(
            "command",
            section.position,
            format!(
                "section `command` is ignored because `agent.backend` is `{}`",
                backend.as_str()
            ),
            "set `agent.backend: command` to use it, or remove it",
        );
    }
    run.map(|run| CommandConfig { run })
}

/// The keys only a remote forge uses.
const FORGE_KEYS: &[&str] = &[
    "repo",
    "project_path",
    "api_url",
    "token",
    "remote",
    "merge_method",
    "max_ci_rounds",
];

/// `publish`; `workspace_base` is the validated `workspace.base_branch`, the default of
/// `publish.base_branch`.
pub(super) fn publish(
    section: &Section<'_>,
    report: &mut Report<'_>,
    env: &dyn Env,
    workspace_base: Option<&str>,
) -> PublishConfig {
    let forge = match report.string(section, "forge") {
        None => ForgeKind::Local,
        Some(raw) => {
            let name = raw.trim().to_lowercase();
            let position = section.get("forge").map(|n| n.pos);
            match name.as_str() {
                "local" => ForgeKind::Local,
                "github" => ForgeKind::Github,
                "gitlab" => ForgeKind::Gitlab,
                _ => {
                    let fix = match did_you_mean(&name, schema::FORGES) {
                        Some(known) => format!("did you mean `{known}`?"),
                        None => format!("use one of: {}", schema::FORGES.join(", ")),
                    };
                    report.problem(
                        "publish.forge",
                        position,
                        format!("`publish.forge` {raw:?} is not a known forge"),
                        fix,
                    );
                    ForgeKind::Local
                }
            }
        }
    };
    let auto_merge = report.boolean(section, "auto_merge", false);
    let branch_prefix = report
        .non_blank(section, "branch_prefix", "takt/")
        .inspect(|prefix| check_ref_name(section, report, "branch_prefix", prefix))
        .unwrap_or_else(|| "takt/".to_owned());
    let base_branch = report
        .non_blank(section, "base_branch", "main")
        .inspect(|base| check_ref_name(section, report, "base_branch", base))
        .or_else(|| workspace_base.map(str::to_owned));
    let mut config = PublishConfig {
        forge,
        auto_merge,
        branch_prefix,
        repo: None,
        api_url: None,
        token: None,
        remote: None,
        merge_method: MergeMethod::default(),
        max_ci_rounds: 2,
        base_branch,
    };
    match forge {
        ForgeKind::Local => {
            for key in FORGE_KEYS {
                if section.get(key).is_some() {
                    report.warn(
                        section.path(key),
                        section.get(key).map(|n| n.pos),
                        format!("`publish.{key}` is ignored because `publish.forge` is `local`"),
                        "set `forge: github` or `forge: gitlab` to publish to a forge, or remove the key",
                    );
                }
            }
        }
        ForgeKind::Github | ForgeKind::Gitlab => remote_forge(section, report, env, &mut config),
    }
    section.check_unknown(report);
    config
}

/// The keys of `publish.forge: github | gitlab`.
fn remote_forge(
    section: &Section<'_>,
    report: &mut Report<'_>,
    env: &dyn Env,
    config: &mut PublishConfig,
) {
    let github = config.forge == ForgeKind::Github;
    let (key, wrong, shape, example, token_var) = if github {
        (
            "repo",
            "project_path",
            "`owner/name`",
            "acme/widgets",
            "GITHUB_TOKEN",
        )
    } else {
        (
            "project_path",
            "repo",
            "`group/project`",
            "acme/tools/widgets",
            "GITLAB_TOKEN",
        )
    };
    let forge = config.forge.as_str();
    if section.get(wrong).is_some() {
        report.problem(
            section.path(wrong),
            section.get(wrong).map(|n| n.pos),
            format!("`publish.{wrong}` is not a {forge} setting"),
            format!("name the repository with `{key}: {example}`"),
        );
    }
    match report.non_blank(section, key, example) {
        Some(repo) => {
            let repo = repo.trim().trim_matches('/').to_owned();
            let parts: Vec<&str> = repo.split('/').collect();
            let ok = if github {
                parts.len() == 2
            } else {
                parts.len() >= 2
            } && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            });
            if ok {
                config.repo = Some(repo);
            } else {
                report.problem(
                    section.path(key),
                    section.get(key).map(|n| n.pos),
                    format!("`publish.{key}` {repo:?} is not {shape}"),
                    format!("write it as `{key}: {example}`"),
                );
            }
        }
        None if section.get(key).is_none() => report.problem(
            section.path(key),
            section.position,
            format!("`publish.{key}` is required when `publish.forge` is `{forge}`"),
            format!("add `{key}: {example}` under `publish:`"),
        ),
        None => {}
    }
    if let Some(url) = report.non_blank(section, "api_url", "https://ghe.example.com/api/v3") {
        let url = url.trim().trim_end_matches('/').to_owned();
        if url.starts_with("https://") || url.starts_with("http://") {
            config.api_url = Some(url);
        } else {
            report.problem(
                "publish.api_url",
                section.get("api_url").map(|n| n.pos),
                format!("`publish.api_url` {url:?} is not an http(s) URL"),
                if github {
                    "write the API root, for example `api_url: https://ghe.example.com/api/v3`"
                } else {
                    "write the API root, for example `api_url: https://gitlab.example.com/api/v4`"
                },
            );
        }
    }
    let example_ref = format!("${token_var}");
    config.token = match report.string(section, "token") {
        Some(raw) => secret_ref(
            section,
            report,
            env,
            "token",
            &raw,
            token_var,
            "publish to the forge",
        ),
        None => {
            let value = env.var(token_var).filter(|v| !v.trim().is_empty());
            if value.is_none() {
                report.warn(
                    "publish.token",
                    section.position,
                    format!("`publish.forge` is `{forge}` and ${token_var}, the default `publish.token`, is not set; `takt run` will not publish to the forge without it"),
                    format!("export {token_var}, or name another variable with `token: {example_ref}`"),
                );
            }
            Some(SecretRef {
                var: token_var.to_owned(),
                value,
            })
        }
    };
    if let Some(remote) = report.non_blank(section, "remote", "https://github.com/acme/widgets.git")
    {
        let remote = remote.trim().to_owned();
        let has_credentials = remote
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().contains('@'))
            .unwrap_or(false)
            && (remote.starts_with("http://") || remote.starts_with("https://"));
        if has_credentials {
            report.problem(
                "publish.remote",
                section.get("remote").map(|n| n.pos),
                "`publish.remote` carries credentials in the URL; WORKFLOW.md lives in the repository the agents can read",
                "remove `user:password@` from the URL; takt pushes with `publish.token`",
            );
        } else {
            config.remote = Some(remote);
        }
    }
    if let Some(method) = report.choice(section, "merge_method", &["merge", "squash", "rebase"]) {
        config.merge_method = match method.as_str() {
            "merge" => MergeMethod::Merge,
            "rebase" => MergeMethod::Rebase,
            _ => MergeMethod::Squash,
        };
    }
    if let Some(rounds) = report.integer(
        section,
        "max_ci_rounds",
        0..=100,
        "an integer from 0 to 100",
        "write how many times a red forge check may send the task back to the agent, for example `max_ci_rounds: 2`",
    ) {
        config.max_ci_rounds = u32::try_from(rounds).unwrap_or(2);
    }
}
