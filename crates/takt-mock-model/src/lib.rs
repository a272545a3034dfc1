//! `takt-mock-model`: a scripted model server on 127.0.0.1 that speaks the three wire APIs
//! takt's agents use, so tests and `takt demo` can show real agent behaviour offline.
//!
//! - OpenAI **Responses** (`POST …/responses`, SSE or JSON): what Codex CLI 0.169 speaks.
//! - OpenAI **Chat Completions** (`POST …/chat/completions`, SSE or JSON): takt's own loop.
//! - Anthropic **Messages** (`POST …/messages`, SSE with `event:` lines or JSON, plus
//!   `POST …/messages/count_tokens`): what Claude Code speaks.
//! - `GET …/models` (a list of the scenario model names) and `GET /healthz`.
//!
//! Routes match by path suffix, so the `/v1` prefix (or any other) is optional, and query
//! strings such as `?beta=true` are ignored. `GET …/responses` (Codex's WebSocket attempt) gets
//! 404, which makes Codex fall back to POST + SSE.
//!
//! # Scripting
//!
//! The server is stateless per request, because both CLIs resend the whole conversation:
//!
//! - **Scenario**, first match wins:
//!   1. a `[[scenario:NAME]]` marker in the request's *system text* (Responses `instructions`
//!      and `system` / `developer` input items, Chat `system` / `developer` messages, Messages
//!      `system`);
//!   2. the scenario whose `model` equals the request's `model`;
//!   3. the first marker anywhere in the body as sent, searched as text (input, messages, tool
//!      outputs);
//!   4. the default scenario (one text reply `DONE`; a scenario named `default` replaces it).
//!
//!   A claimed model outranks conversation markers because requests often quote text holding
//!   somebody else's marker (takt's judge quotes the task, which carries the agent's marker);
//!   the caller's own system text outranks the model so that requests sharing one model (blind
//!   reviewers) can still be scripted apart. An unknown name in a marker that is used is a 400
//!   that lists the known names.
//! - **Step**: the number of tool results already in the request (Responses:
//!   `function_call_output` + `custom_tool_call_output` items in `input`; Chat: `role: "tool"`
//!   messages; Messages: `tool_result` blocks in user messages). Past the last step, the final
//!   step repeats if it is text, otherwise the reply is the text `DONE`. Error steps with
//!   `times` are skipped once they have fired that many times (the only state the server keeps).
//! - A request that declares no `tools` never gets a tool call: tool steps become the
//!   scenario's final text (side requests such as title generation stay harmless).
//! - **Placeholders** in text, patches and string values of tool arguments: `{{cwd}}` is the
//!   working directory named in the request (Codex `<cwd>…</cwd>` in its environment context,
//!   Claude Code `Primary working directory: …` / `Working directory: …`, or a JSON `"cwd"` /
//!   `"workdir"` field); `{{workspace}}` is the first absolute path on the same line shortly
//!   after the word "workspace". Each falls back to the other; with neither, the placeholder
//!   is left as it is. Claude's `Write` needs absolute paths: use `{{cwd}}/file`.
//! - **Usage** is reported in every response (unless the scenario sets `usage.omit`): the
//!   scenario's `usage` figures, else estimates
//!   (input = request bytes / 4, output = reply characters / 4 + 10).
//!
//! See [`Scenario`] for the file format and [`Step`] for the step kinds.
//!
//! # Request log
//!
//! Every request is kept in memory ([`MockModel::requests`]) and, with
//! [`MockConfig::log_path`], appended as one JSON line ([`LoggedRequest`]), credentials
//! redacted to their first 6 characters.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), takt_mock_model::MockError> {
//! use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
//! let scenario = Scenario::new(
//!     "hello",
//!     vec![
//!         Step::tool("write_file", serde_json::json!({"path": "hello.txt", "content": "hi\n"})),
//!         Step::text("DONE"),
//!     ],
//! );
//! let mock = MockModel::start(MockConfig::with_scenarios(vec![scenario])).await?;
//! // Point Claude Code at mock.base_url(), Codex / OpenAI clients at mock.openai_base_url(),
//! // and put `[[scenario:hello]]` in the prompt.
//! let _seen = mock.requests();
//! mock.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod error;
mod inspect;
mod log;
mod render;
mod scenario;
mod server;
mod sse;

pub use error::MockError;
pub use log::LoggedRequest;
pub use scenario::{ErrorStep, Scenario, Step, ToolStep, UsageSpec, builtin_scenarios};
pub use server::{MockConfig, MockModel, run, serve_forever};
