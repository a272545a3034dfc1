//! takt's `sandbox` section: how every agent process is confined. Unknown keys are errors.

use std::path::{Path, PathBuf};

use super::{U32_MAX, U64_MAX};
use crate::config::{SandboxConfig, SandboxMode, SandboxNetwork};
use crate::env::{Env, PathResolution, resolve_local_path};
use crate::reader::{Report, Section};
use crate::suggest::did_you_mean;

const MODES: &[&str] = &["auto", "bwrap", "landlock", "none"];
const NETWORKS: &[&str] = &["none", "model", "allowlist"];
/// Variables passed into the sandbox unless the workflow names others.
pub const DEFAULT_SANDBOX_ENV: &[&str] = &["PATH", "LANG", "TERM"];

pub(super) fn sandbox(
    section: &Section<'_>,
    report: &mut Report<'_>,
    dir: &Path,
    env: &dyn Env,
) -> SandboxConfig {
    let mode = match choice(section, report, "mode", MODES).as_deref() {
        None | Some("auto") => SandboxMode::Auto,
        Some("bwrap") => SandboxMode::Bwrap,
        Some("landlock") => SandboxMode::Landlock,
        Some(_) => SandboxMode::None,
    };
    let network = match choice(section, report, "network", NETWORKS).as_deref() {
        None | Some("model") => SandboxNetwork::Model,
        Some("none") => SandboxNetwork::None,
        Some(_) => SandboxNetwork::Allowlist,
    };
    let allow_hosts = report
        .string_list(section, "allow_hosts")
        .unwrap_or_default();
    for (index, host) in allow_hosts.iter().enumerate() {
        if !valid_host_pattern(host) {
            report.problem(
                format!("sandbox.allow_hosts[{index}]"),
                section.get("allow_hosts").map(|n| n.pos),
                format!("`sandbox.allow_hosts` entry {host:?} is not a host name"),
                "write a host such as `registry.npmjs.org` or a suffix pattern such as `*.crates.io` \
                 (no scheme, port or path)",
            );
        }
    }
    if network == SandboxNetwork::Allowlist && allow_hosts.is_empty() {
        report.problem(
            "sandbox.allow_hosts",
            section.get("network").map(|n| n.pos),
            "`sandbox.network: allowlist` needs the hosts to allow, but `sandbox.allow_hosts` is empty",
            "add `allow_hosts: [registry.npmjs.org]` (the hosts agents may reach besides the model)",
        );
    }
    if network != SandboxNetwork::Allowlist && !allow_hosts.is_empty() {
        report.warn(
            "sandbox.allow_hosts",
            section.get("allow_hosts").map(|n| n.pos),
            "`sandbox.allow_hosts` is ignored unless `sandbox.network` is `allowlist`",
            "set `network: allowlist` or remove `allow_hosts`",
        );
    }
    let env_names = report.string_list(section, "env").unwrap_or_else(|| {
        DEFAULT_SANDBOX_ENV
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    });
    for (index, name) in env_names.iter().enumerate() {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            report.problem(
                format!("sandbox.env[{index}]"),
                section.get("env").map(|n| n.pos),
                format!("`sandbox.env` entry {name:?} is not an environment variable name"),
                "list variable names only, such as `PATH` (values come from the daemon's environment)",
            );
        }
    }
    let limit = |report: &mut Report<'_>, key: &str, max: i128| {
        report
            .integer(
                section,
                key,
                1..=max,
                "a positive integer",
                &format!("write a number such as `{key}: {}`", example(key)),
            )
            .and_then(|v| u64::try_from(v).ok())
    };
    let memory_mb = limit(report, "memory_mb", U32_MAX).or(Some(4096));
    let pids = limit(report, "pids", U32_MAX).or(Some(512));
    let cpu_seconds = limit(report, "cpu_seconds", U32_MAX);
    let file_size_mb = limit(report, "file_size_mb", U32_MAX).or(Some(8192));
    let open_files = limit(report, "open_files", U32_MAX).or(Some(4096));
    let wall_clock_ms = limit(report, "wall_clock_ms", U64_MAX);
    let read_only = path_list(section, report, "read_only", dir, env);
    let read_write = path_list(section, report, "read_write", dir, env);
    let user = report
        .non_blank(section, "user", "takt-agent")
        .unwrap_or_else(|| "takt-agent".to_owned());
    if !user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        report.problem(
            "sandbox.user",
            section.get("user").map(|n| n.pos),
            format!("`sandbox.user` {user:?} is not a valid user name"),
            "use letters, digits, `-` and `_`, for example `takt-agent`",
        );
    }
    section.check_unknown(report);
    SandboxConfig {
        mode,
        network,
        allow_hosts,
        env: env_names,
        memory_mb,
        pids,
        cpu_seconds,
        file_size_mb,
        open_files,
        wall_clock_ms,
        read_only,
        read_write,
        user,
    }
}

fn example(key: &str) -> &'static str {
    match key {
        "memory_mb" => "4096",
        "pids" => "512",
        "cpu_seconds" => "3600",
        "file_size_mb" => "8192",
        "open_files" => "4096",
        _ => "3600000",
    }
}

fn choice(
    section: &Section<'_>,
    report: &mut Report<'_>,
    key: &str,
    known: &[&str],
) -> Option<String> {
    let raw = report.string(section, key)?;
    let value = raw.trim();
    // `gateway` is DESIGN.md's name for the model-only network.
    let value = if key == "network" && value == "gateway" {
        "model"
    } else {
        value
    };
    if known.contains(&value) {
        return Some(value.to_owned());
    }
    let fix = match did_you_mean(value, known) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!("use one of: {}", known.join(", ")),
    };
    report.problem(
        section.path(key),
        section.get(key).map(|n| n.pos),
        format!(
            "`{}` {value:?} is not one of {}",
            section.path(key),
            known.join(", ")
        ),
        fix,
    );
    None
}

fn path_list(
    section: &Section<'_>,
    report: &mut Report<'_>,
    key: &str,
    dir: &Path,
    env: &dyn Env,
) -> Vec<PathBuf> {
    let Some(raw) = report.string_list(section, key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (index, item) in raw.iter().enumerate() {
        match resolve_local_path(item, dir, env) {
            PathResolution::Path(path) if path != Path::new("/") => out.push(path),
            PathResolution::Path(_) => report.problem(
                format!("sandbox.{key}[{index}]"),
                section.get(key).map(|n| n.pos),
                format!("`sandbox.{key}` may not expose the whole filesystem (`/`)"),
                "name the directories the agent needs, such as `/opt/toolchains`",
            ),
            PathResolution::UnsetVar(name) => report.problem(
                format!("sandbox.{key}[{index}]"),
                section.get(key).map(|n| n.pos),
                format!("`sandbox.{key}` entry {item:?} uses `${name}`, which is not set"),
                format!("set `{name}` in the daemon's environment or write the path"),
            ),
            PathResolution::NoHome => report.problem(
                format!("sandbox.{key}[{index}]"),
                section.get(key).map(|n| n.pos),
                format!("`sandbox.{key}` entry {item:?} starts with `~`, but HOME is unknown"),
                "set HOME or write an absolute path",
            ),
        }
    }
    out
}

/// A host name, or `*.` followed by one: what the egress filter can match.
fn valid_host_pattern(host: &str) -> bool {
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::valid_host_pattern;

    #[test]
    fn host_patterns() {
        assert!(valid_host_pattern("registry.npmjs.org"));
        assert!(valid_host_pattern("*.crates.io"));
        assert!(!valid_host_pattern("https://crates.io"));
        assert!(!valid_host_pattern("crates.io:443"));
        assert!(!valid_host_pattern("*"));
        assert!(!valid_host_pattern("a..b"));
    }
}
