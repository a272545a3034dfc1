//! Scenarios: the scripts the mock model follows.
//!
//! A scenario is a named list of steps. A request picks its scenario (see below) and picks its
//! step by counting the tool results it already carries, so the server needs no conversation
//! state (both CLIs resend the whole history every time).
//!
//! # Which scenario answers
//!
//! The first of these that applies:
//!
//! 1. **A marker in the system text**: `[[scenario:NAME]]` in the instructions the client set
//!    itself: Responses `instructions` and `system` / `developer` input items, Chat `system` /
//!    `developer` messages, Messages `system`.
//! 2. **The model**: the scenario whose `model` equals the request's `model`.
//! 3. **A marker anywhere**: the first `[[scenario:NAME]]` in the body as sent (the prompt, the
//!    conversation, tool outputs).
//! 4. **The default**: one text reply `DONE` (a scenario named `default` replaces it).
//!
//! Why this order: a request often *quotes* text that carries somebody else's marker. takt's
//! judge and reviewers send the task's description, which holds the agent's
//! `[[scenario:add-test]]`; if that marker won, the judge would be answered by the agent's
//! script. So a scenario that claims a model outranks markers in the conversation: the judge
//! asks for the model `review.model` names (say `judge-veto`) and a scenario with
//! `model: judge-veto` answers it. Requests that share one model are told apart by a marker in
//! their system text, which is the caller's own and outranks the model: a reviewer whose mandate
//! (part of its system prompt) says `[[scenario:qa-block]]` gets that scenario. An agent whose
//! model no scenario claims is unaffected: its task's marker is found as before.
//!
//! An unknown name in a marker that is used is a 400 listing the known names.
//!
//! File format (YAML, or the same structure as JSON):
//!
//! ```yaml
//! name: add-test            # optional; defaults to the file name without extension
//! model: scripted-1         # optional; requests for this model use this scenario (see above)
//! usage:                    # optional; every figure is optional (defaults are estimates)
//!   input_tokens: 1200
//!   output_tokens: 80
//!   cached_tokens: 0        # Responses cached_tokens, Chat cached_tokens, Messages cache_read
//!   reasoning_tokens: 0
//!   cache_creation_input_tokens: 0
//!   omit: false             # true: no usage object at all
//! steps:
//!   - tool: {name: write_file, arguments: {path: tests/a.rs, content: "#[test] fn a() {}\n"}}
//!   - apply_patch: |
//!       *** Begin Patch
//!       *** Add File: hello.txt
//!       +hello
//!       *** End Patch
//!   - error: {status: 429, retry_after_secs: 2, message: slow down, times: 1}
//!   - text: "Done: wrote {{cwd}}/tests/a.rs"
//! ```
//!
//! See [`Step`] for what each step does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::MockError;

/// One scripted conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The name used in `[[scenario:NAME]]` markers: letters, digits, `-`, `_` and `.`.
    /// Defaults to the file stem when loaded from a file.
    #[serde(default)]
    pub name: String,
    /// A free-form description, shown nowhere but useful in files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A model name. It is listed by `GET /v1/models`, and a request whose `model` equals it uses
    /// this scenario unless its system text carries a marker (see the crate documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The steps, selected by the number of tool results in the request.
    pub steps: Vec<Step>,
    /// Token usage to report instead of the estimates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageSpec>,
}

/// One model turn.
///
/// In YAML each step is a one-key map: `- text: ...`, `- tool: {...}`, `- apply_patch: ...`,
/// `- error: {...}`, `- stream_forever: true`, `- cut_stream: true`.
///
/// Strings (text, patch bodies, and string values inside tool arguments) may contain the
/// placeholders `{{cwd}}` and `{{workspace}}`; see the crate documentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// A final assistant message with this text (Responses `message`, Chat `content`,
    /// Messages `text` block, `end_turn`).
    Text(String),
    /// A function / tool_use call.
    Tool(ToolStep),
    /// A Codex-style freeform patch. Responses: a `custom_tool_call` named `apply_patch` whose
    /// `input` is the body. Chat and Messages: a tool call `apply_patch` with `{"patch": body}`.
    ApplyPatch(String),
    /// An HTTP error with the provider's error body.
    Error(ErrorStep),
    /// Starts a streaming reply and never finishes it: one small text delta every tick (200 ms by
    /// default, see [`crate::MockConfig::stream_tick`]) until the client disconnects or the
    /// server shuts down. A non-streaming request gets its headers and then nothing until
    /// shutdown, when the connection is dropped. Must be `true`.
    StreamForever(bool),
    /// Starts a streaming reply, sends part of it, then drops the connection without the final
    /// event (no `response.completed` / `message_stop` / `[DONE]`, no terminating chunk). A
    /// non-streaming request gets a truncated JSON body. Must be `true`.
    CutStream(bool),
}

/// A function call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolStep {
    /// The tool name, for example `write_file`, `exec_command`, `Write`, `mcp__srv__tool`.
    pub name: String,
    /// The arguments. An object (or any JSON value) is serialised; a string is sent verbatim,
    /// which lets a test send malformed JSON. Missing means `{}`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub arguments: Value,
    /// Responses only: the `namespace` field Codex needs for MCP tools (`mcp__<server>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// An injected HTTP error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorStep {
    /// The HTTP status, 400..=599.
    pub status: u16,
    /// The error message; defaults to one derived from the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Adds a `Retry-After: N` header when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// Return this error only for the first `times` requests that land on this step; after that
    /// the step is skipped as if it were not in the list (so "fail once, then succeed" works
    /// while the server stays stateless otherwise). Unset: the error is permanent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// Token usage to report. Unset figures are estimated: input = request bytes / 4, output =
/// reply characters / 4 + 10, the others 0. `omit: true` reports none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageSpec {
    /// Input (prompt) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output (completion) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Cached input tokens (Responses `input_tokens_details.cached_tokens`, Chat
    /// `prompt_tokens_details.cached_tokens`, Messages `cache_read_input_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Reasoning tokens (Responses `output_tokens_details.reasoning_tokens`, Chat
    /// `completion_tokens_details.reasoning_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Messages `cache_creation_input_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Report no usage at all, like a server that never does (some OpenAI-compatible local
    /// servers): every `usage` object is left out of the response, streamed or not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omit: bool,
}

const INLINE: &str = "<inline>";

impl Scenario {
    /// A scenario with these steps and no model or usage override.
    pub fn new(name: impl Into<String>, steps: Vec<Step>) -> Self {
        Scenario {
            name: name.into(),
            description: None,
            model: None,
            steps,
            usage: None,
        }
    }

    /// Sets [`Scenario::model`].
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets [`Scenario::usage`].
    #[must_use]
    pub fn with_usage(mut self, usage: UsageSpec) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The scenario used when a request has no marker: one text reply, `DONE`.
    pub fn default_scenario() -> Self {
        Scenario::new("default", vec![Step::text("DONE")])
    }

    /// Parses a scenario from YAML (or JSON, which YAML accepts). `origin` names the source in
    /// errors and gives the default name (its file stem).
    pub fn from_yaml(origin: &Path, text: &str) -> Result<Self, MockError> {
        let scenario: Scenario =
            serde_saphyr::from_str(text).map_err(|e| MockError::scenario(origin, e.to_string()))?;
        scenario.finish(origin)
    }

    /// Parses a scenario from JSON. `origin` names the source in errors.
    pub fn from_json(origin: &Path, text: &str) -> Result<Self, MockError> {
        let scenario: Scenario =
            serde_json::from_str(text).map_err(|e| MockError::scenario(origin, e.to_string()))?;
        scenario.finish(origin)
    }

    /// Loads one file: `.json` is parsed as JSON, anything else as YAML.
    pub fn load_file(path: &Path) -> Result<Self, MockError> {
        let text = fs_err::read_to_string(path).map_err(|source| MockError::Io {
            path: path.to_owned(),
            source,
        })?;
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            Scenario::from_json(path, &text)
        } else {
            Scenario::from_yaml(path, &text)
        }
    }

    /// Loads every `*.yaml`, `*.yml` and `*.json` file directly inside `dir` (not recursive), in
    /// file-name order. Errors name the offending file; duplicate names are an error.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, MockError> {
        let io = |source| MockError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in fs_err::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "yaml" | "yml" | "json") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut scenarios = Vec::with_capacity(files.len());
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in files {
            let scenario = Scenario::load_file(&path)?;
            if let Some(first) = seen.get(&scenario.name) {
                return Err(MockError::DuplicateScenario {
                    name: scenario.name,
                    first: first.clone(),
                    second: path,
                });
            }
            seen.insert(scenario.name.clone(), path);
            scenarios.push(scenario);
        }
        Ok(scenarios)
    }

    /// Checks a scenario built in code (files are checked when loaded).
    pub fn validate(&self) -> Result<(), MockError> {
        self.check(Path::new(INLINE))
    }

    fn finish(mut self, origin: &Path) -> Result<Self, MockError> {
        if self.name.is_empty() {
            self.name = origin
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
        }
        self.check(origin)?;
        Ok(self)
    }

    fn check(&self, origin: &Path) -> Result<(), MockError> {
        let fail = |message: String| Err(MockError::scenario(origin, message));
        if self.name.is_empty() || !self.name.chars().all(is_name_char) {
            return fail(format!(
                "invalid name `{}`: use letters, digits, `-`, `_` and `.`",
                self.name
            ));
        }
        if self.steps.is_empty() {
            return fail("`steps` is empty; give at least one step".to_owned());
        }
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Tool(tool) if tool.name.trim().is_empty() => {
                    return fail(format!("step {i}: `tool.name` is empty"));
                }
                Step::Error(e) if !(400..=599).contains(&e.status) => {
                    return fail(format!(
                        "step {i}: error status {} is not in 400..=599",
                        e.status
                    ));
                }
                Step::Error(ErrorStep { times: Some(0), .. }) => {
                    return fail(format!("step {i}: error `times` must be at least 1"));
                }
                Step::StreamForever(false) => {
                    return fail(format!(
                        "step {i}: `stream_forever` must be true (remove the step instead)"
                    ));
                }
                Step::CutStream(false) => {
                    return fail(format!(
                        "step {i}: `cut_stream` must be true (remove the step instead)"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

impl Step {
    /// A text step.
    pub fn text(text: impl Into<String>) -> Self {
        Step::Text(text.into())
    }

    /// A tool call step.
    pub fn tool(name: impl Into<String>, arguments: Value) -> Self {
        Step::Tool(ToolStep {
            name: name.into(),
            arguments,
            namespace: None,
        })
    }

    /// An `apply_patch` step.
    pub fn apply_patch(patch: impl Into<String>) -> Self {
        Step::ApplyPatch(patch.into())
    }

    /// A permanent HTTP error step.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Step::Error(ErrorStep {
            status,
            message: Some(message.into()),
            retry_after_secs: None,
            times: None,
        })
    }
}

/// The scenarios embedded for `takt demo`, written with the tool names of takt's built-in agent
/// (`write_file {path, content}`, `edit_file {path, old, new}`, `run {command}`,
/// `finish {summary}`). Paths are relative to the workspace. Each ends with a `finish` call and
/// then the text `DONE` for clients that keep going after `finish`.
///
/// - `add-test`: writes `tests/agent_added.rs`, a small passing Rust test.
/// - `break-build`: writes `tests/agent_broken.rs`, which does not compile (a type error), so
///   `cargo test` / `cargo build --all-targets` fail.
/// - `wander`: writes the asked-for test, then also rewrites `README.md` and adds an unrelated
///   module `src/agent_helper.rs` (changes outside the task's scope).
pub fn builtin_scenarios() -> Vec<Scenario> {
    let test_file = "//! Added by the scripted agent.\n\n#[test]\nfn addition_still_works() {\n    assert_eq!(2 + 2, 4);\n}\n";
    let write_test = Step::tool(
        "write_file",
        json!({"path": "tests/agent_added.rs", "content": test_file}),
    );
    vec![
        Scenario {
            description: Some("writes a small passing Rust test, then finishes".to_owned()),
            ..Scenario::new(
                "add-test",
                vec![
                    write_test.clone(),
                    Step::tool(
                        "finish",
                        json!({"summary": "Added tests/agent_added.rs with a small test."}),
                    ),
                    Step::text("DONE"),
                ],
            )
        },
        Scenario {
            description: Some("writes Rust code that does not compile, then finishes".to_owned()),
            ..Scenario::new(
                "break-build",
                vec![
                    Step::tool(
                        "write_file",
                        json!({
                            "path": "tests/agent_broken.rs",
                            "content": "#[test]\nfn answer_is_forty_two() {\n    let answer: u32 = \"forty-two\";\n    assert_eq!(answer, 42);\n}\n",
                        }),
                    ),
                    Step::tool("finish", json!({"summary": "Added tests/agent_broken.rs."})),
                    Step::text("DONE"),
                ],
            )
        },
        Scenario {
            description: Some(
                "does the task but also edits README.md and adds an unrelated module".to_owned(),
            ),
            ..Scenario::new(
                "wander",
                vec![
                    write_test,
                    Step::tool(
                        "write_file",
                        json!({
                            "path": "README.md",
                            "content": "# Project\n\nRewritten by the agent while it was passing by.\n",
                        }),
                    ),
                    Step::tool(
                        "write_file",
                        json!({
                            "path": "src/agent_helper.rs",
                            "content": "//! A helper nobody asked for.\n\npub fn helper() -> u32 {\n    7\n}\n",
                        }),
                    ),
                    Step::tool(
                        "finish",
                        json!({"summary": "Added the test; also tidied README.md and added a helper module."}),
                    ),
                    Step::text("DONE"),
                ],
            )
        },
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_every_step_kind_from_yaml() {
        let yaml = r#"
model: scripted-1
usage: {input_tokens: 5, cached_tokens: 2}
steps:
  - tool: {name: write_file, arguments: {path: a.rs, content: "x"}}
  - tool: {name: verify, namespace: mcp__factory, arguments: '{"broken'}
  - apply_patch: |
      *** Begin Patch
      *** End Patch
  - error: {status: 429, retry_after_secs: 3, message: slow, times: 1}
  - stream_forever: true
  - cut_stream: true
  - text: DONE
"#;
        let s = Scenario::from_yaml(Path::new("dir/my-scn.yaml"), yaml).unwrap();
        assert_eq!(s.name, "my-scn");
        assert_eq!(s.model.as_deref(), Some("scripted-1"));
        assert_eq!(s.usage.as_ref().unwrap().cached_tokens, Some(2));
        assert_eq!(s.steps.len(), 7);
        assert_eq!(
            s.steps[0],
            Step::tool("write_file", json!({"path": "a.rs", "content": "x"}))
        );
        match &s.steps[1] {
            Step::Tool(t) => {
                assert_eq!(t.arguments, Value::String("{\"broken".to_owned()));
                assert_eq!(t.namespace.as_deref(), Some("mcp__factory"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            s.steps[2],
            Step::apply_patch("*** Begin Patch\n*** End Patch\n")
        );
        assert_eq!(
            s.steps[3],
            Step::Error(ErrorStep {
                status: 429,
                message: Some("slow".to_owned()),
                retry_after_secs: Some(3),
                times: Some(1)
            })
        );
        assert_eq!(s.steps[4], Step::StreamForever(true));
        assert_eq!(s.steps[5], Step::CutStream(true));
        assert_eq!(s.steps[6], Step::text("DONE"));
    }

    #[test]
    fn json_round_trip() {
        let s = Scenario::new(
            "x",
            vec![
                Step::tool("run", json!({"command": "ls"})),
                Step::text("ok"),
            ],
        );
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(Scenario::from_json(Path::new("x.json"), &text).unwrap(), s);
        assert_eq!(Scenario::from_yaml(Path::new("x.yaml"), &text).unwrap(), s);
    }

    #[test]
    fn validation_errors_are_specific() {
        let cases = [
            ("steps: []", "`steps` is empty"),
            ("steps: [{error: {status: 200}}]", "not in 400..=599"),
            ("steps: [{stream_forever: false}]", "must be true"),
            ("steps: [{tool: {name: ''}}]", "`tool.name` is empty"),
            ("name: 'a b'\nsteps: [{text: x}]", "invalid name"),
            ("steps: [{txt: x}]", "txt"),
            ("steps: [{text: x}]\nextra: 1", "extra"),
        ];
        for (yaml, needle) in cases {
            let err = Scenario::from_yaml(Path::new("bad.yaml"), yaml)
                .unwrap_err()
                .to_string();
            assert!(err.contains("bad.yaml"), "{err}");
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }

    #[test]
    fn builtins_are_valid_and_use_agent_tools() {
        let all = builtin_scenarios();
        let names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["add-test", "break-build", "wander"]);
        for s in &all {
            s.validate().unwrap();
            assert!(matches!(s.steps.last(), Some(Step::Text(_))));
            for step in &s.steps {
                if let Step::Tool(t) = step {
                    assert!(
                        ["write_file", "edit_file", "run", "finish"].contains(&t.name.as_str())
                    );
                }
            }
        }
    }
}
