//! OpenAI Chat Completions (`POST /v1/chat/completions`), used by takt's own agent loop
//! (agent-protocols.md §4).

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{Ctx, Output, Usage, pieces, sse_data};

fn usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

fn chunk(ctx: &Ctx, delta: Value, finish_reason: Option<&str>) -> Bytes {
    sse_data(&json!({
        "id": format!("chatcmpl-{}", ctx.id), "object": "chat.completion.chunk",
        "created": ctx.created, "model": ctx.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }))
}

fn call_id(ctx: &Ctx) -> String {
    format!("call_{}", ctx.id)
}

/// The full stream: role chunk, content or tool-call pieces, the finish chunk, the usage chunk
/// when asked for, then `[DONE]`.
pub(crate) fn events(out: &Output, ctx: &Ctx, include_usage: bool) -> Vec<Bytes> {
    let mut events = Vec::new();
    let finish = match out.as_function() {
        None => {
            let text = match out {
                Output::Text(t) => t.as_str(),
                _ => "",
            };
            events.push(chunk(
                ctx,
                json!({"role": "assistant", "content": ""}),
                None,
            ));
            for piece in pieces(text, 3) {
                events.push(chunk(ctx, json!({"content": piece}), None));
            }
            "stop"
        }
        Some((name, arguments)) => {
            events.push(chunk(
                ctx,
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "index": 0, "id": call_id(ctx), "type": "function",
                    "function": {"name": name, "arguments": ""}}]}),
                None,
            ));
            for piece in pieces(&arguments, 3) {
                events.push(chunk(
                    ctx,
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                    None,
                ));
            }
            "tool_calls"
        }
    };
    events.push(chunk(ctx, json!({}), Some(finish)));
    if include_usage {
        events.push(sse_data(&json!({
            "id": format!("chatcmpl-{}", ctx.id), "object": "chat.completion.chunk",
            "created": ctx.created, "model": ctx.model, "choices": [], "usage": usage(&ctx.usage),
        })));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

/// The non-streaming completion.
pub(crate) fn json_body(out: &Output, ctx: &Ctx) -> Value {
    let (message, finish) = match (out, out.as_function()) {
        (Output::Text(text), _) => (json!({"role": "assistant", "content": text}), "stop"),
        (_, Some((name, arguments))) => (
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "id": call_id(ctx), "type": "function",
                "function": {"name": name, "arguments": arguments}}]}),
            "tool_calls",
        ),
        (_, None) => (json!({"role": "assistant", "content": ""}), "stop"),
    };
    json!({
        "id": format!("chatcmpl-{}", ctx.id), "object": "chat.completion",
        "created": ctx.created, "model": ctx.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage(&ctx.usage),
    })
}

/// The start of a text reply that will never finish.
pub(crate) fn open_prefix(ctx: &Ctx, first_delta: &str) -> Vec<Bytes> {
    vec![
        chunk(ctx, json!({"role": "assistant", "content": ""}), None),
        chunk(ctx, json!({"content": first_delta}), None),
    ]
}

/// One `stream_forever` tick.
pub(crate) fn tick(ctx: &Ctx) -> Bytes {
    chunk(ctx, json!({"content": "."}), None)
}
