//! Anthropic Messages API (`POST /v1/messages`), as Claude Code 2.1.330 accepts it
//! (agent-protocols.md §3.4). The SSE stream carries `event:` lines, which Claude requires.

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{Ctx, Output, pieces, sse_event};

fn start_usage(ctx: &Ctx) -> Value {
    json!({
        "input_tokens": ctx.usage.input,
        "output_tokens": 1,
        "cache_creation_input_tokens": ctx.usage.cache_creation,
        "cache_read_input_tokens": ctx.usage.cached,
    })
}

fn full_usage(ctx: &Ctx) -> Value {
    json!({
        "input_tokens": ctx.usage.input,
        "output_tokens": ctx.usage.output,
        "cache_creation_input_tokens": ctx.usage.cache_creation,
        "cache_read_input_tokens": ctx.usage.cached,
    })
}

fn message_start(ctx: &Ctx) -> Bytes {
    sse_event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": format!("msg_{}", ctx.id), "type": "message", "role": "assistant",
            "model": ctx.model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": start_usage(ctx)}}),
    )
}

fn block_start(block: Value) -> Bytes {
    sse_event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": 0, "content_block": block}),
    )
}

fn delta(delta: Value) -> Bytes {
    sse_event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
    )
}

fn text_delta(text: &str) -> Bytes {
    delta(json!({"type": "text_delta", "text": text}))
}

fn tool_use_id(ctx: &Ctx) -> String {
    format!("toolu_{}", ctx.id)
}

/// The full event stream: message_start, one content block, message_delta, message_stop.
pub(crate) fn events(out: &Output, ctx: &Ctx) -> Vec<Bytes> {
    let mut events = vec![message_start(ctx)];
    let stop_reason = match (out, out.as_function()) {
        (Output::Text(text), _) => {
            events.push(block_start(json!({"type": "text", "text": ""})));
            events.extend(pieces(text, 3).into_iter().map(text_delta));
            "end_turn"
        }
        (_, Some((name, arguments))) => {
            events.push(block_start(
                json!({"type": "tool_use", "id": tool_use_id(ctx),
                                            "name": name, "input": {}}),
            ));
            for piece in pieces(&arguments, 3) {
                events.push(delta(
                    json!({"type": "input_json_delta", "partial_json": piece}),
                ));
            }
            "tool_use"
        }
        (_, None) => {
            events.push(block_start(json!({"type": "text", "text": ""})));
            "end_turn"
        }
    };
    events.push(sse_event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(sse_event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": ctx.usage.output}}),
    ));
    events.push(sse_event("message_stop", &json!({"type": "message_stop"})));
    events
}

/// The non-streaming message.
pub(crate) fn json_body(out: &Output, ctx: &Ctx) -> Value {
    let (block, stop_reason) = match (out, out.as_function()) {
        (Output::Text(text), _) => (json!({"type": "text", "text": text}), "end_turn"),
        (_, Some((name, arguments))) => {
            let input =
                serde_json::from_str::<Value>(&arguments).unwrap_or(Value::String(arguments));
            (
                json!({"type": "tool_use", "id": tool_use_id(ctx), "name": name, "input": input}),
                "tool_use",
            )
        }
        (_, None) => (json!({"type": "text", "text": ""}), "end_turn"),
    };
    json!({
        "id": format!("msg_{}", ctx.id), "type": "message", "role": "assistant",
        "model": ctx.model, "content": [block], "stop_reason": stop_reason,
        "stop_sequence": null, "usage": full_usage(ctx),
    })
}

/// The start of a text reply that will never finish.
pub(crate) fn open_prefix(ctx: &Ctx, first_delta: &str) -> Vec<Bytes> {
    vec![
        message_start(ctx),
        block_start(json!({"type": "text", "text": ""})),
        text_delta(first_delta),
    ]
}

/// One `stream_forever` tick: a ping and a small text delta.
pub(crate) fn tick(_ctx: &Ctx) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&sse_event("ping", &json!({"type": "ping"})));
    out.extend_from_slice(&text_delta("."));
    Bytes::from(out)
}
