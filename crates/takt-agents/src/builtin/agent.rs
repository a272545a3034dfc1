//! The loop: ask the model, run the tools it calls, send the results back, until it calls
//! `finish`, answers without a tool call, or a limit is hit.

use std::time::Duration;

use takt_core::ports::{AgentEventSink, TurnResult};
use takt_protocol::{AgentEvent, TokenUsage};

use super::client::{Item, ModelClient, ModelError, Request, ToolSpec, Usage};
use super::tools::Toolbox;

/// What replaces an old tool output when the context is over budget.
pub const TRUNCATED: &str = "[output truncated to save context]";

/// The loop's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Model requests per turn.
    pub max_steps: u32,
    /// Tokens (input + output, as reported) per turn.
    pub max_tokens_per_turn: u64,
    /// Estimated tokens (characters / 4) of the whole request before old tool outputs are cut.
    pub context_budget_tokens: u64,
}

/// One session's conversation and tools.
pub struct Agent {
    client: ModelClient,
    toolbox: Toolbox,
    system: String,
    tools: Vec<ToolSpec>,
    /// Characters the system prompt and the tool definitions add to every request.
    fixed_chars: usize,
    items: Vec<Item>,
    limits: Limits,
    /// The session's usage so far (sum of every request's reported usage).
    totals: Usage,
}

/// Tokens estimated from characters.
pub fn estimate_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

impl Agent {
    pub fn new(client: ModelClient, toolbox: Toolbox, system: String, limits: Limits) -> Agent {
        let tools = toolbox.all_specs();
        let fixed_chars = system.len()
            + tools
                .iter()
                .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
                .sum::<usize>();
        Agent {
            client,
            toolbox,
            system,
            tools,
            fixed_chars,
            items: Vec::new(),
            limits,
            totals: Usage::default(),
        }
    }

    pub fn toolbox(&self) -> &Toolbox {
        &self.toolbox
    }

    /// The session's token usage so far.
    pub fn totals(&self) -> Usage {
        self.totals
    }

    /// Estimated tokens of the next request.
    pub fn context_tokens(&self) -> u64 {
        estimate_tokens(self.fixed_chars + self.items.iter().map(Item::chars).sum::<usize>())
    }

    /// Runs one turn. Emits `Message`, `ToolCall`, `FileChange` and `TokenUsage` events; the
    /// caller emits the turn's start and end.
    pub async fn run_turn(&mut self, prompt: String, events: &dyn AgentEventSink) -> TurnResult {
        self.repair();
        self.items.push(Item::User(prompt));
        let mut turn_usage = Usage::default();
        for _step in 0..self.limits.max_steps {
            self.fit_context();
            let request = Request {
                system: &self.system,
                items: &self.items,
                tools: &self.tools,
            };
            let max_retries = self.client.max_retries();
            let mut on_retry = |error: &ModelError, retry: u32, delay: Duration| {
                events.emit(AgentEvent::Error {
                    message: format!(
                        "model request failed, retry {retry}/{max_retries} in {} ms: {error}",
                        delay.as_millis()
                    ),
                });
            };
            let reply = match self.client.complete(request, &mut on_retry).await {
                Ok(reply) => reply,
                Err(error) => {
                    return TurnResult::Failed {
                        error: error.to_string(),
                    };
                }
            };
            turn_usage.add(reply.usage);
            self.totals.add(reply.usage);
            events.emit(AgentEvent::TokenUsage {
                usage: TokenUsage {
                    input_tokens: self.totals.input,
                    output_tokens: self.totals.output,
                    total_tokens: self.totals.total(),
                },
            });
            let text = reply.text.trim().to_owned();
            if !text.is_empty() {
                events.emit(AgentEvent::Message { text: text.clone() });
            }
            if text.is_empty() && reply.calls.is_empty() {
                // Nothing to keep in the history (an empty assistant message is invalid).
                return TurnResult::Completed { finished: false };
            }
            let calls = reply.calls;
            self.items.push(Item::Assistant {
                text: reply.text,
                calls: calls.clone(),
            });
            if calls.is_empty() {
                return TurnResult::Completed { finished: false };
            }
            let mut finished = false;
            for call in calls {
                if finished {
                    // Every call needs a result for the conversation to stay valid.
                    self.items.push(Item::ToolResult {
                        call_id: call.id,
                        content: "not run: `finish` was called before this call".to_owned(),
                        is_error: true,
                    });
                    continue;
                }
                let output = self.toolbox.call(&call.name, &call.arguments).await;
                events.emit(AgentEvent::ToolCall {
                    name: call.name.clone(),
                    summary: output.summary.clone(),
                    ok: output.ok,
                });
                for path in &output.changed {
                    events.emit(AgentEvent::FileChange { path: path.clone() });
                }
                if let Some(summary) = &output.finished {
                    finished = true;
                    if !summary.trim().is_empty() {
                        events.emit(AgentEvent::Message {
                            text: summary.trim().to_owned(),
                        });
                    }
                }
                self.items.push(Item::ToolResult {
                    call_id: call.id,
                    content: output.content,
                    is_error: !output.ok,
                });
            }
            if finished {
                return TurnResult::Completed { finished: true };
            }
            if turn_usage.total() >= self.limits.max_tokens_per_turn {
                events.emit(AgentEvent::Message {
                    text: format!(
                        "Stopped: this turn used {} tokens, the limit is {} (builtin.max_tokens_per_turn).",
                        turn_usage.total(),
                        self.limits.max_tokens_per_turn
                    ),
                });
                return TurnResult::Completed { finished: false };
            }
        }
        events.emit(AgentEvent::Message {
            text: format!(
                "Stopped: this turn reached {} model steps (builtin.max_steps).",
                self.limits.max_steps
            ),
        });
        TurnResult::Completed { finished: false }
    }

    /// Gives every tool call of the last assistant message a result: a turn that was dropped
    /// while its tools ran leaves calls without one, which both APIs refuse.
    fn repair(&mut self) {
        let Some(last) = self
            .items
            .iter()
            .rposition(|item| matches!(item, Item::Assistant { .. }))
        else {
            return;
        };
        let Item::Assistant { calls, .. } = &self.items[last] else {
            return;
        };
        let answered: Vec<&str> = self.items[last + 1..]
            .iter()
            .filter_map(|item| match item {
                Item::ToolResult { call_id, .. } => Some(call_id.as_str()),
                _ => None,
            })
            .collect();
        let missing: Vec<String> = calls
            .iter()
            .filter(|call| !answered.contains(&call.id.as_str()))
            .map(|call| call.id.clone())
            .collect();
        for call_id in missing {
            self.items.push(Item::ToolResult {
                call_id,
                content: "not run: the turn was interrupted".to_owned(),
                is_error: true,
            });
        }
    }

    /// Replaces old tool outputs, oldest first, until the request fits the budget. The results
    /// of the latest step (after the last assistant message) are kept: the model needs them
    /// now. If the request still does not fit, it is sent as it is (the provider decides).
    fn fit_context(&mut self) {
        let budget = self.limits.context_budget_tokens;
        let mut chars = self.fixed_chars + self.items.iter().map(Item::chars).sum::<usize>();
        if estimate_tokens(chars) <= budget {
            return;
        }
        let latest = self
            .items
            .iter()
            .rposition(|item| matches!(item, Item::Assistant { .. }))
            .unwrap_or(0);
        let mut cut = 0;
        for item in &mut self.items[..latest] {
            if estimate_tokens(chars) <= budget {
                break;
            }
            if let Item::ToolResult { content, .. } = item
                && content.len() > TRUNCATED.len()
            {
                chars -= content.len() - TRUNCATED.len();
                TRUNCATED.clone_into(content);
                cut += 1;
            }
        }
        tracing::debug!(
            cut,
            tokens = estimate_tokens(chars),
            budget,
            "old tool outputs truncated to fit the context budget"
        );
    }
}
