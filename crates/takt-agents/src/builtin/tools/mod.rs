//! The built-in agent's tools, all confined to the workspace ([`paths`]).
//!
//! | tool | arguments | does |
//! |---|---|---|
//! | `read_file` | `path`, `start_line?`, `end_line?` | a file's text (a line range, 1-based, inclusive) |
//! | `list_dir` | `path` | a directory's entries, `/` after directories, `@` after symlinks |
//! | `search` | `pattern` (regex), `path?` | `path:line: text` of matching lines, `.gitignore` respected |
//! | `write_file` | `path`, `content` | creates or replaces a file (parents created) |
//! | `edit_file` | `path`, `old`, `new` | replaces the one exact occurrence of `old` |
//! | `apply_patch` | `patch` | Codex `*** Begin Patch` format ([`patch`]) |
//! | `run` | `command`, `timeout_ms?` | `sh -lc` in the workspace ([`run`]) |
//! | `finish` | `summary` | ends the turn: the task is done |
//!
//! A tool never fails the loop: a [`ToolError`] becomes an error result the model reads. Tool
//! output is cut to `output_limit_bytes`, keeping its head and tail.

pub mod patch;
pub mod paths;
pub mod run;
pub mod search;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use takt_core::ports::HostTools;

use self::paths::Workspace;
pub use self::run::RunningGroup;
use super::client::ToolSpec;

/// Errors of a tool call. None is fatal: each is sent back to the model as the call's result
/// (`is_error`), so the model can correct itself; none is retried by the loop.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The model called a tool that does not exist.
    #[error("unknown tool `{name}`; the tools are: {known}")]
    UnknownTool { name: String, known: String },
    /// The arguments are not valid JSON, or lack a required field, or have a wrong type.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The path leaves the workspace (absolute elsewhere, `..` above the root, a symlink out)
    /// or names the git directory for a write.
    #[error("refused: `{path}` is outside the workspace: {reason}")]
    OutsideWorkspace { path: String, reason: String },
    /// The file or directory does not exist.
    #[error("`{0}` does not exist")]
    NotFound(String),
    /// A file system error.
    #[error("`{path}`: {message}")]
    Io { path: String, message: String },
    /// `edit_file`: `old` does not occur in the file.
    #[error(
        "`old` was not found in `{0}`; read the file and copy the exact text, whitespace included"
    )]
    NoMatch(String),
    /// `edit_file`: `old` occurs more than once.
    #[error(
        "`old` occurs {count} times in `{path}`; include more surrounding lines so it matches exactly once"
    )]
    Ambiguous { path: String, count: usize },
    /// `apply_patch`: the patch could not be parsed or does not apply; nothing was changed.
    #[error("patch not applied: {0}")]
    Patch(String),
    /// `run`: the command starts with a deny-listed program.
    #[error("refused: `{word}` is not allowed in this workflow (builtin.deny_commands)")]
    Denied { word: String },
    /// `run`: the shell could not be started or waited for.
    #[error("could not run the command: {0}")]
    Spawn(String),
}

/// Limits and environment of the tools.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// Default and maximum `run` timeout.
    pub command_timeout: Duration,
    /// Bytes of any tool output kept (head and tail).
    pub output_limit_bytes: usize,
    /// Programs `run` refuses.
    pub deny_commands: Vec<String>,
    /// Environment variables removed from `run` commands (provider and tracker secrets).
    pub remove_env: Vec<String>,
    /// Environment variables set for `run` commands.
    pub env: Vec<(String, String)>,
    /// Where `run` commands are confined.
    pub sandbox: std::sync::Arc<takt_sandbox::Sandbox>,
    /// The run's sandbox scope; its run directory also receives `agent.pid` for the orphan
    /// sweep. `None` outside a run (tests of the tools).
    pub scope: Option<takt_sandbox::RunScope>,
}

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// The result text sent back to the model.
    pub content: String,
    /// Whether the call succeeded (an error result is sent with `is_error`; for `run`, a
    /// non-zero exit or a timeout is not ok).
    pub ok: bool,
    /// One line for the journal (`ToolCall.summary`).
    pub summary: String,
    /// Workspace-relative paths the call wrote, created or deleted.
    pub changed: Vec<String>,
    /// `finish` was called with this summary.
    pub finished: Option<String>,
}

/// Longest `ToolCall.summary`.
const SUMMARY_CHARS: usize = 200;
/// Entries `list_dir` shows.
const MAX_ENTRIES: usize = 500;
/// Largest file `read_file` / `edit_file` loads.
const MAX_READ_BYTES: u64 = 32 * 1024 * 1024;

/// The tools of one session.
#[derive(Debug, Clone)]
pub struct Toolbox {
    workspace: Workspace,
    settings: ToolSettings,
    running: RunningGroup,
    /// The run's host-side tools (its issue, its pull request), run by the daemon.
    host: Option<Arc<dyn HostTools>>,
}

#[derive(Deserialize)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    start_line: Option<usize>,
    end_line: Option<usize>,
}

#[derive(Deserialize)]
struct SearchArgs {
    pattern: String,
    path: Option<String>,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct EditArgs {
    path: String,
    old: String,
    new: String,
}

#[derive(Deserialize)]
struct PatchArgs {
    patch: String,
}

#[derive(Deserialize)]
struct RunArgs {
    command: String,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
struct FinishArgs {
    #[serde(default)]
    summary: String,
}

fn parse<T: DeserializeOwned>(raw: &str) -> Result<T, ToolError> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|error| {
        ToolError::InvalidArguments(format!(
            "{error}; send one JSON object with the fields the tool's schema lists"
        ))
    })
}

fn io(path: &str, error: &std::io::Error) -> ToolError {
    if error.kind() == std::io::ErrorKind::NotFound {
        ToolError::NotFound(path.to_owned())
    } else {
        ToolError::Io {
            path: path.to_owned(),
            message: error.to_string(),
        }
    }
}

/// Cuts `text` to at most `limit` bytes, keeping its head and tail, with a marker between.
pub fn truncate_middle(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut head = limit / 2;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - (limit - limit / 2);
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{}\n[... {} bytes omitted ...]\n{}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= SUMMARY_CHARS {
        flat
    } else {
        let cut: String = flat.chars().take(SUMMARY_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// A successful result.
struct Done {
    content: String,
    summary: String,
    changed: Vec<String>,
    ok: bool,
    finished: Option<String>,
}

impl Done {
    fn new(content: impl Into<String>, summary: impl Into<String>) -> Done {
        Done {
            content: content.into(),
            summary: summary.into(),
            changed: Vec::new(),
            ok: true,
            finished: None,
        }
    }
}

impl Toolbox {
    /// Tools for `workspace` (which must exist).
    pub fn new(workspace: &Path, settings: ToolSettings) -> std::io::Result<Toolbox> {
        Ok(Toolbox {
            workspace: Workspace::new(workspace)?.shown_at(
                settings
                    .scope
                    .as_ref()
                    .and_then(|scope| scope.view.as_ref())
                    .map(|view| view.at.as_path()),
            ),
            settings,
            running: RunningGroup::default(),
            host: None,
        })
    }

    /// Adds the run's host-side tools to the workspace tools.
    pub fn with_host_tools(mut self, host: Option<Arc<dyn HostTools>>) -> Toolbox {
        self.host = host;
        self
    }

    /// The workspace tools and the run's host-side tools, as sent to the model.
    pub fn all_specs(&self) -> Vec<ToolSpec> {
        let mut specs = Self::specs();
        if let Some(host) = &self.host {
            specs.extend(host.specs().into_iter().map(|spec| ToolSpec {
                name: spec.name,
                description: spec.description,
                parameters: spec.input_schema,
            }));
        }
        specs
    }

    fn unknown(&self, name: &str) -> ToolError {
        ToolError::UnknownTool {
            name: name.to_owned(),
            known: self
                .all_specs()
                .iter()
                .map(|spec| spec.name)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// A host-side tool: arguments must be a JSON object; the daemon's answer is the result.
    async fn host_call(
        &self,
        host: &dyn HostTools,
        name: &str,
        arguments: &str,
    ) -> Result<Done, ToolError> {
        let arguments: serde_json::Value = parse(arguments)?;
        if !arguments.is_object() {
            return Err(ToolError::InvalidArguments(
                "send one JSON object with the fields the tool's schema lists".to_owned(),
            ));
        }
        let output = host.call(name, arguments).await;
        Ok(Done {
            ok: !output.is_error,
            ..Done::new(
                truncate_middle(&output.text, self.settings.output_limit_bytes),
                one_line(&format!("{name}: {}", output.text)),
            )
        })
    }

    /// The canonical workspace root.
    pub fn root(&self) -> &Path {
        self.workspace.root()
    }

    /// The workspace root as the agent knows it (see [`Workspace::agent_root`]).
    pub fn agent_root(&self) -> &Path {
        self.workspace.agent_root()
    }

    /// The `run` command in flight, shared with whoever must be able to kill it.
    pub fn running(&self) -> &RunningGroup {
        &self.running
    }

    /// The tool definitions sent to the model.
    pub fn specs() -> Vec<ToolSpec> {
        let path = json!({"type": "string", "description": "Path relative to the workspace root."});
        vec![
            ToolSpec {
                name: "read_file",
                description: "Read a text file. Optionally only lines start_line..=end_line (1-based). Long output is cut in the middle; read ranges of big files.",
                parameters: json!({"type": "object", "properties": {
                    "path": path,
                    "start_line": {"type": "integer", "minimum": 1},
                    "end_line": {"type": "integer", "minimum": 1}},
                    "required": ["path"]}),
            },
            ToolSpec {
                name: "list_dir",
                description: "List a directory: one entry per line, `/` after directories, `@` after symlinks.",
                parameters: json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
            },
            ToolSpec {
                name: "search",
                description: "Search the workspace's text files (respecting .gitignore) for a regular expression (Rust regex syntax). Returns `path:line: text` lines, at most 200.",
                parameters: json!({"type": "object", "properties": {
                    "pattern": {"type": "string", "description": "A regular expression."},
                    "path": {"type": "string", "description": "A directory or file to search instead of the whole workspace."}},
                    "required": ["pattern"]}),
            },
            ToolSpec {
                name: "write_file",
                description: "Create or replace a file with the given content (parent directories are created).",
                parameters: json!({"type": "object", "properties": {
                    "path": path, "content": {"type": "string"}},
                    "required": ["path", "content"]}),
            },
            ToolSpec {
                name: "edit_file",
                description: "Replace the exact text `old` with `new` in a file. `old` must occur exactly once: include enough surrounding lines.",
                parameters: json!({"type": "object", "properties": {
                    "path": path, "old": {"type": "string"}, "new": {"type": "string"}},
                    "required": ["path", "old", "new"]}),
            },
            ToolSpec {
                name: "apply_patch",
                description: "Apply a patch in the `*** Begin Patch` format: `*** Add File: p` (+lines), `*** Delete File: p`, `*** Update File: p` with `@@` hunks of ' ' context, '-' removed and '+' added lines, then `*** End Patch`. All or nothing.",
                parameters: json!({"type": "object", "properties": {"patch": {"type": "string"}}, "required": ["patch"]}),
            },
            ToolSpec {
                name: "run",
                description: "Run a shell command (sh -lc) in the workspace root, without stdin. Returns the exit code and the combined stdout/stderr (cut in the middle when long). Background processes are killed when the command ends.",
                parameters: json!({"type": "object", "properties": {
                    "command": {"type": "string"},
                    "timeout_ms": {"type": "integer", "minimum": 1, "description": "Lower than the workflow's limit, which is also the default."}},
                    "required": ["command"]}),
            },
            ToolSpec {
                name: "finish",
                description: "Call when the task is complete (or cannot be completed), with a short summary of what you did. Ends your turn.",
                parameters: json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}),
            },
        ]
    }

    /// Runs one tool call; never fails (errors become error results).
    pub async fn call(&self, name: &str, arguments: &str) -> ToolOutput {
        let result = match name {
            "run" => self.run(arguments).await,
            "finish" => parse::<FinishArgs>(arguments).map(|args| Done {
                finished: Some(args.summary.clone()),
                ..Done::new("Finished.", one_line(&args.summary))
            }),
            "read_file" | "list_dir" | "search" | "write_file" | "edit_file" | "apply_patch" => {
                let this = self.clone();
                let name = name.to_owned();
                let arguments = arguments.to_owned();
                match tokio::task::spawn_blocking(move || this.call_blocking(&name, &arguments))
                    .await
                {
                    Ok(result) => result,
                    Err(error) => Err(ToolError::Io {
                        path: String::new(),
                        message: format!("the tool panicked or was cancelled: {error}"),
                    }),
                }
            }
            other => match &self.host {
                Some(host) if host.specs().iter().any(|spec| spec.name == other) => {
                    self.host_call(host.as_ref(), other, arguments).await
                }
                _ => Err(self.unknown(other)),
            },
        };
        match result {
            Ok(done) => ToolOutput {
                content: done.content,
                ok: done.ok,
                summary: done.summary,
                changed: done.changed,
                finished: done.finished,
            },
            Err(error) => ToolOutput {
                content: format!("error: {error}"),
                ok: false,
                summary: one_line(&format!("{name}: {error}")),
                changed: Vec::new(),
                finished: None,
            },
        }
    }

    fn call_blocking(&self, name: &str, arguments: &str) -> Result<Done, ToolError> {
        match name {
            "read_file" => self.read_file(parse(arguments)?),
            "list_dir" => self.list_dir(&parse::<PathArgs>(arguments)?.path),
            "search" => self.search(parse(arguments)?),
            "write_file" => self.write_file(parse(arguments)?),
            "edit_file" => self.edit_file(parse(arguments)?),
            "apply_patch" => self.apply_patch(&parse::<PatchArgs>(arguments)?.patch),
            other => Err(self.unknown(other)),
        }
    }

    fn limit(&self) -> usize {
        self.settings.output_limit_bytes.max(256)
    }

    fn read_text(&self, display: &str, real: &Path) -> Result<String, ToolError> {
        let meta = std::fs::metadata(real).map_err(|e| io(display, &e))?;
        if meta.is_dir() {
            return Err(ToolError::Io {
                path: display.to_owned(),
                message: "is a directory (use list_dir)".to_owned(),
            });
        }
        if meta.len() > MAX_READ_BYTES {
            return Err(ToolError::Io {
                path: display.to_owned(),
                message: format!("is {} bytes, larger than this tool reads", meta.len()),
            });
        }
        let bytes = std::fs::read(real).map_err(|e| io(display, &e))?;
        if bytes[..bytes.len().min(8192)].contains(&0) {
            return Err(ToolError::Io {
                path: display.to_owned(),
                message: format!("looks binary ({} bytes); not shown", bytes.len()),
            });
        }
        String::from_utf8(bytes).map_err(|_| ToolError::Io {
            path: display.to_owned(),
            message: "is not UTF-8 text".to_owned(),
        })
    }

    fn read_file(&self, args: ReadArgs) -> Result<Done, ToolError> {
        let target = self.workspace.resolve(&args.path)?;
        let text = self.read_text(&target.display, &target.real)?;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let total = lines.len();
        if total == 0 {
            return Ok(Done::new(
                "(empty file)",
                one_line(&format!("read_file {} (empty)", target.display)),
            ));
        }
        let ranged = args.start_line.is_some() || args.end_line.is_some();
        let start = args.start_line.unwrap_or(1).max(1);
        let end = args.end_line.unwrap_or(total).min(total);
        if start > end {
            return Err(ToolError::InvalidArguments(format!(
                "lines {start}..={end} are not in `{}`, which has {total} lines",
                target.display
            )));
        }
        let body: String = lines[start - 1..end].concat();
        let limit = self.limit();
        let mut content = String::new();
        if ranged {
            content.push_str(&format!("[lines {start}-{end} of {total}]\n"));
        }
        if body.len() > limit {
            content.push_str(&truncate_middle(&body, limit));
            content.push_str(
                "\n[file cut in the middle: read smaller ranges with start_line/end_line]",
            );
        } else {
            content.push_str(&body);
        }
        let summary = if ranged {
            format!(
                "read_file {} (lines {start}-{end} of {total})",
                target.display
            )
        } else {
            format!("read_file {} ({total} lines)", target.display)
        };
        Ok(Done::new(content, one_line(&summary)))
    }

    fn list_dir(&self, path: &str) -> Result<Done, ToolError> {
        let target = self.workspace.resolve(path)?;
        let entries = std::fs::read_dir(&target.real).map_err(|e| io(&target.display, &e))?;
        let mut names: Vec<String> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(&target.display, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            let suffix = match entry.file_type() {
                Ok(t) if t.is_symlink() => "@",
                Ok(t) if t.is_dir() => "/",
                _ => "",
            };
            names.push(format!("{name}{suffix}"));
        }
        names.sort();
        let count = names.len();
        let mut content = names
            .iter()
            .take(MAX_ENTRIES)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        if count > MAX_ENTRIES {
            content.push_str(&format!("\n[... {} more entries]", count - MAX_ENTRIES));
        }
        if count == 0 {
            content = "(empty directory)".to_owned();
        }
        Ok(Done::new(
            truncate_middle(&content, self.limit()),
            one_line(&format!("list_dir {} ({count} entries)", target.display)),
        ))
    }

    fn search(&self, args: SearchArgs) -> Result<Done, ToolError> {
        let target = self
            .workspace
            .resolve(args.path.as_deref().unwrap_or("."))?;
        if !target.real.exists() {
            return Err(ToolError::NotFound(target.display));
        }
        let found = search::search(&self.workspace, &target.real, &args.pattern)?;
        let count = found.lines.len();
        let mut content = found.lines.join("\n");
        if found.capped {
            content.push_str(&format!(
                "\n[stopped after {} matches: narrow the pattern or the path]",
                search::MAX_MATCHES
            ));
        }
        if count == 0 {
            content = format!("no matches ({} files searched)", found.files_searched);
        }
        let more = if found.capped { "+" } else { "" };
        Ok(Done::new(
            truncate_middle(&content, self.limit()),
            one_line(&format!(
                "search /{}/ in {} ({count}{more} matches)",
                args.pattern, target.display
            )),
        ))
    }

    fn write_file(&self, args: WriteArgs) -> Result<Done, ToolError> {
        let target = self.workspace.resolve_for_write(&args.path)?;
        let existed = match std::fs::metadata(&target.real) {
            Ok(meta) if meta.is_dir() => {
                return Err(ToolError::Io {
                    path: target.display,
                    message: "is a directory".to_owned(),
                });
            }
            Ok(_) => true,
            Err(_) => false,
        };
        if let Some(parent) = target.real.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(&target.display, &e))?;
        }
        std::fs::write(&target.real, args.content.as_bytes())
            .map_err(|e| io(&target.display, &e))?;
        let verb = if existed { "replaced" } else { "created" };
        let bytes = args.content.len();
        Ok(Done {
            changed: vec![target.display.clone()],
            ..Done::new(
                format!("{verb} {} ({bytes} bytes)", target.display),
                one_line(&format!(
                    "write_file {} ({verb}, {bytes} bytes)",
                    target.display
                )),
            )
        })
    }

    fn edit_file(&self, args: EditArgs) -> Result<Done, ToolError> {
        let target = self.workspace.resolve_for_write(&args.path)?;
        if args.old.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`old` is empty; use write_file to create a file".to_owned(),
            ));
        }
        let text = self.read_text(&target.display, &target.real)?;
        let count = text.matches(&args.old).count();
        match count {
            0 => return Err(ToolError::NoMatch(target.display)),
            1 => {}
            count => {
                return Err(ToolError::Ambiguous {
                    path: target.display,
                    count,
                });
            }
        }
        let edited = text.replacen(&args.old, &args.new, 1);
        std::fs::write(&target.real, edited.as_bytes()).map_err(|e| io(&target.display, &e))?;
        Ok(Done {
            changed: vec![target.display.clone()],
            ..Done::new(
                format!("edited {}", target.display),
                one_line(&format!("edit_file {}", target.display)),
            )
        })
    }

    fn apply_patch(&self, text: &str) -> Result<Done, ToolError> {
        enum Write {
            Put(paths::Resolved, String),
            Remove(paths::Resolved),
        }
        let operations = patch::parse(text)?;
        let mut writes: Vec<Write> = Vec::new();
        let mut report: Vec<String> = Vec::new();
        for operation in operations {
            match operation {
                patch::Operation::Add { path, content } => {
                    let target = self.workspace.resolve_for_write(&path)?;
                    if target.real.is_dir() {
                        return Err(ToolError::Patch(format!(
                            "`{}` is a directory",
                            target.display
                        )));
                    }
                    report.push(format!("A {}", target.display));
                    writes.push(Write::Put(target, content));
                }
                patch::Operation::Delete { path } => {
                    let target = self.workspace.resolve_for_write(&path)?;
                    if !target.real.is_file() {
                        return Err(ToolError::Patch(format!(
                            "cannot delete `{}`: no such file",
                            target.display
                        )));
                    }
                    report.push(format!("D {}", target.display));
                    writes.push(Write::Remove(target));
                }
                patch::Operation::Update {
                    path,
                    move_to,
                    hunks,
                } => {
                    let target = self.workspace.resolve_for_write(&path)?;
                    let current = self.read_text(&target.display, &target.real)?;
                    let updated = patch::apply_hunks(&target.display, &current, &hunks)?;
                    match move_to {
                        Some(to) => {
                            let destination = self.workspace.resolve_for_write(&to)?;
                            report.push(format!("R {} -> {}", target.display, destination.display));
                            writes.push(Write::Put(destination, updated));
                            writes.push(Write::Remove(target));
                        }
                        None => {
                            report.push(format!("M {}", target.display));
                            writes.push(Write::Put(target, updated));
                        }
                    }
                }
            }
        }
        let mut changed = Vec::new();
        for write in writes {
            match write {
                Write::Put(target, content) => {
                    if let Some(parent) = target.real.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| io(&target.display, &e))?;
                    }
                    std::fs::write(&target.real, content.as_bytes())
                        .map_err(|e| io(&target.display, &e))?;
                    changed.push(target.display);
                }
                Write::Remove(target) => {
                    std::fs::remove_file(&target.real).map_err(|e| io(&target.display, &e))?;
                    changed.push(target.display);
                }
            }
        }
        changed.dedup();
        Ok(Done {
            changed,
            ..Done::new(
                format!("applied:\n{}", report.join("\n")),
                one_line(&format!("apply_patch {}", report.join(", "))),
            )
        })
    }

    async fn run(&self, arguments: &str) -> Result<Done, ToolError> {
        let args: RunArgs = parse(arguments)?;
        if args.command.trim().is_empty() {
            return Err(ToolError::InvalidArguments("`command` is empty".to_owned()));
        }
        if let Some(word) = run::denied_word(&args.command, &self.settings.deny_commands) {
            return Err(ToolError::Denied { word });
        }
        let cap = self.settings.command_timeout;
        let timeout = args
            .timeout_ms
            .map_or(cap, |ms| Duration::from_millis(ms.max(1)).min(cap));
        let outcome = run::run(
            &args.command,
            run::RunContext {
                workspace: self.workspace.root(),
                sandbox: &self.settings.sandbox,
                scope: self.settings.scope.as_ref(),
                timeout,
                output_limit: self.limit(),
                remove_env: &self.settings.remove_env,
                env: &self.settings.env,
                running: &self.running,
            },
        )
        .await?;
        let status = match (outcome.timed_out, outcome.code) {
            (true, _) => format!(
                "timed out after {} ms; the command's process group was killed",
                timeout.as_millis()
            ),
            (false, Some(code)) => format!("exit code {code}"),
            (false, None) => "killed by a signal".to_owned(),
        };
        let ok = !outcome.timed_out && outcome.code == Some(0);
        Ok(Done {
            ok,
            ..Done::new(
                format!("{status}\n{}", outcome.output),
                one_line(&format!("run `{}`: {status}", args.command)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn truncation_keeps_head_and_tail_on_char_boundaries() {
        assert_eq!(truncate_middle("short", 10), "short");
        let text = format!("{}{}", "é".repeat(50), "z".repeat(50));
        let cut = truncate_middle(&text, 40);
        assert!(cut.starts_with("ééé"), "{cut}");
        assert!(cut.ends_with("zzz"), "{cut}");
        assert!(cut.contains("bytes omitted"), "{cut}");
    }

    #[test]
    fn summaries_are_one_bounded_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
        assert_eq!(one_line(&"x".repeat(500)).chars().count(), SUMMARY_CHARS);
    }
}
