//! takt's `gates`: a top-level list of named commands that decide whether a change may go on.
//! Unknown keys in a gate are errors.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::U64_MAX;
use crate::config::{GateConfig, RepoSource};
use crate::env::{Env, PathResolution, env_reference, resolve_local_path};
use crate::error::Position;
use crate::raw::{Key, Node, Value};
use crate::reader::{Report, Section};
use crate::schema::{GATE, GATES_SECTION};

/// Default `timeout_ms` of a gate: ten minutes.
const DEFAULT_TIMEOUT_MS: i128 = 600_000;

/// Reads `gates` from the top-level entries. `repo` is the validated `workspace.repo`, used only
/// to warn about hidden files the agents could read.
pub(super) fn gates(
    root: &[(Key, Node)],
    report: &mut Report<'_>,
    dir: &Path,
    env: &dyn Env,
    repo: &RepoSource,
) -> Vec<GateConfig> {
    let Some((_, node)) = root.iter().find(|(key, _)| key.name == GATES_SECTION) else {
        return Vec::new();
    };
    let items = match &node.value {
        Value::Null => return Vec::new(),
        Value::Seq(items) => items,
        _ => {
            report.problem(
                GATES_SECTION,
                Some(node.pos),
                format!(
                    "`gates` must be a list of gates, but it is {}",
                    node.describe()
                ),
                "write `gates:` followed by items such as `  - {name: unit, run: cargo test}`",
            );
            return Vec::new();
        }
    };
    let mut gates = Vec::with_capacity(items.len());
    // Name -> (index, position) of the gate that used it first.
    let mut first_use: BTreeMap<String, (usize, Position)> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("gates[{index}]");
        let Value::Map(entries) = &item.value else {
            report.problem(
                prefix,
                Some(item.pos),
                format!(
                    "item {index} of `gates` must be a mapping with `name` and `run`, but it is {}",
                    item.describe()
                ),
                "write the gate as `- {name: unit, run: cargo test}`",
            );
            continue;
        };
        let section = Section::item(&GATE, prefix, entries, item.pos);
        let Some(gate) = gate(&section, report, dir, env, repo) else {
            continue;
        };
        let name_position = section.get("name").map_or(item.pos, |n| n.pos);
        if let Some((first_index, first_position)) = first_use.get(&gate.name) {
            report.problem(
                section.path("name"),
                Some(name_position),
                format!(
                    "gate name `{}` is used twice: by `gates[{first_index}]` (line {}, column {}) \
                     and by `gates[{index}]` (line {}, column {})",
                    gate.name,
                    first_position.line,
                    first_position.column,
                    name_position.line,
                    name_position.column
                ),
                "give every gate its own name; reports and feedback name gates by it",
            );
            continue;
        }
        first_use.insert(gate.name.clone(), (index, name_position));
        gates.push(gate);
    }
    gates
}

/// One gate; `None` when its name or command is missing (already reported).
fn gate(
    section: &Section<'_>,
    report: &mut Report<'_>,
    dir: &Path,
    env: &dyn Env,
    repo: &RepoSource,
) -> Option<GateConfig> {
    let name = report
        .required_text(section, "name", "unit", "the gate")
        .map(|name| name.trim().to_owned());
    let run = report.required_text(section, "run", "cargo test", "the gate");
    let timeout_ms =
        super::to_u64(report.positive(section, "timeout_ms", U64_MAX, DEFAULT_TIMEOUT_MS));
    let required = report.boolean(section, "required", true);
    let gate_env = env_map(section, report, env);
    let hidden = report.boolean(section, "hidden", false);
    let files = hidden_files(section, report, hidden, dir, env, repo);
    let junit = junit_paths(section, report);
    section.check_unknown(report);
    Some(GateConfig {
        name: name?,
        run: run?,
        timeout_ms,
        required,
        env: gate_env,
        hidden,
        files,
        junit,
    })
}

/// `env`: variable name -> value. A whole-value `$NAME` is taken from the daemon's environment,
/// like `$VAR` elsewhere in the workflow; numbers and booleans are accepted as their text,
/// because `RUST_BACKTRACE: 1` is what people write.
fn env_map(
    section: &Section<'_>,
    report: &mut Report<'_>,
    env: &dyn Env,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(node) = section.get("env") else {
        return out;
    };
    let Value::Map(entries) = &node.value else {
        report.problem(
            section.path("env"),
            Some(node.pos),
            format!(
                "`{}` must be a mapping of variable name to value, but it is {}",
                section.path("env"),
                node.describe()
            ),
            "write `env:` followed by lines such as `  RUST_BACKTRACE: \"1\"`",
        );
        return out;
    };
    for (key, value) in entries {
        let path = format!("{}.{}", section.path("env"), key.name);
        if !is_variable_name(&key.name) {
            report.problem(
                path.clone(),
                Some(key.pos),
                format!("{:?} in `{}` is not an environment variable name", key.name, section.path("env")),
                "use letters, digits and `_`, not starting with a digit, for example `DATABASE_URL`",
            );
            continue;
        }
        let raw = match &value.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                report.problem(
                    path.clone(),
                    Some(value.pos),
                    format!("`{path}` must be a string, but it is {}", value.describe()),
                    format!("quote the value, for example `{}: \"...\"`", key.name),
                );
                continue;
            }
        };
        let resolved = match env_reference(&raw) {
            Some(variable) => match env.var(variable) {
                Some(set) => set,
                None => {
                    // A gate run with a variable silently missing fails for the wrong reason.
                    report.problem(
                        path.clone(),
                        Some(value.pos),
                        format!("`{path}` is `${variable}`, but `{variable}` is not set"),
                        format!("set `{variable}` in the daemon's environment, or write the value"),
                    );
                    continue;
                }
            },
            None => {
                if raw.contains('$') {
                    report.warn(
                        path.clone(),
                        Some(value.pos),
                        format!(
                            "`{path}` contains `$`, but only a whole value `$NAME` is expanded, so \
                             {raw:?} is used literally"
                        ),
                        "write the value as exactly `$NAME`, or the literal value",
                    );
                }
                raw
            }
        };
        out.insert(key.name.clone(), resolved);
    }
    out
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `files`: required for a hidden gate, refused otherwise; resolved like the workflow's other
/// local paths and required to be an existing directory.
fn hidden_files(
    section: &Section<'_>,
    report: &mut Report<'_>,
    hidden: bool,
    dir: &Path,
    env: &dyn Env,
    repo: &RepoSource,
) -> Option<PathBuf> {
    let key = section.path("files");
    let position = section.get("files").map(|n| n.pos);
    let raw = report.non_blank(section, "files", "../holdback-tests");
    if !hidden {
        if raw.is_some() {
            report.problem(
                key.clone(),
                position,
                format!("`{key}` is set, but the gate is not hidden"),
                "add `hidden: true` to make this a holdback gate, or remove `files`",
            );
        }
        return None;
    }
    let raw = match raw {
        Some(raw) => raw,
        None => {
            // A blank or non-string value was already reported.
            if section.get("files").is_none() {
                report.problem(
                    key,
                    section.get("hidden").map(|n| n.pos).or(section.position),
                    format!(
                        "`{}` is hidden, but `files` (the directory of its hidden tests) is missing",
                        section.prefix()
                    ),
                    "add `files: ../holdback-tests`, a directory outside the repository",
                );
            }
            return None;
        }
    };
    let path = match resolve_local_path(&raw, dir, env) {
        PathResolution::Path(path) => path,
        PathResolution::UnsetVar(variable) => {
            report.problem(
                key,
                position,
                format!(
                    "`{}` is `${variable}`, but `{variable}` is not set or empty",
                    section.path("files")
                ),
                format!("set `{variable}` in the daemon's environment or write the path"),
            );
            return None;
        }
        PathResolution::NoHome => {
            report.problem(
                key,
                position,
                format!(
                    "`{}` starts with `~`, but the home directory is unknown",
                    section.path("files")
                ),
                "set HOME or write an absolute path",
            );
            return None;
        }
    };
    // std rather than fs_err: the problem below already names the path.
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            report.problem(
                key,
                position,
                format!(
                    "`{}` ({}) is not a directory",
                    section.path("files"),
                    path.display()
                ),
                "point `files` at the directory that holds the hidden tests",
            );
            return None;
        }
        Err(err) => {
            report.problem(
                key,
                position,
                format!(
                    "`{}` ({}) cannot be read: {err}",
                    section.path("files"),
                    path.display()
                ),
                "create the directory of hidden tests, or fix the path (relative paths are taken \
                 from the WORKFLOW.md directory)",
            );
            return None;
        }
    }
    if let RepoSource::Path(repo) = repo
        && path.starts_with(repo)
    {
        report.warn(
            section.path("files"),
            position,
            format!(
                "`{}` ({}) is inside the repository {}, so agents may be able to read the hidden \
                 tests",
                section.path("files"),
                path.display(),
                repo.display()
            ),
            "keep holdback tests outside the repository, for example in a sibling directory",
        );
    }
    Some(path)
}

/// `junit`: report paths relative to the checkout root, which must stay inside it.
fn junit_paths(section: &Section<'_>, report: &mut Report<'_>) -> Vec<String> {
    let Some(items) = report.string_items(section, "junit") else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, (item, position)) in items.into_iter().enumerate() {
        let key = format!("{}[{index}]", section.path("junit"));
        let trimmed = item.trim();
        let escapes = Path::new(trimmed).components().any(|component| {
            matches!(
                component,
                Component::ParentDir | Component::RootDir | Component::Prefix(_)
            )
        });
        if trimmed.is_empty() || escapes || trimmed.starts_with('~') {
            report.problem(
                key,
                Some(position),
                format!(
                    "`{}` entry {item:?} is not a path inside the checkout",
                    section.path("junit")
                ),
                "write a path relative to the repository root without `..`, for example \
                 `target/junit.xml`",
            );
            continue;
        }
        out.push(trimmed.to_owned());
    }
    out
}
