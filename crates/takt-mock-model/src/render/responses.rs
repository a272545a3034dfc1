//! OpenAI Responses API (`POST /v1/responses`), as Codex 0.169 accepts it
//! (agent-protocols.md §3.3).

use axum::body::Bytes;
use serde_json::{Value, json};

use super::{Ctx, Output, Usage, pieces, sse_event};

fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "input_tokens_details": {"cached_tokens": u.cached},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.input + u.output,
    })
}

/// The output item. `done` selects the completed form; the in-progress form of a message has
/// no content yet (it arrives as deltas).
pub(crate) fn item(out: &Output, ctx: &Ctx, done: bool) -> Value {
    let status = if done { "completed" } else { "in_progress" };
    let id = ctx.id;
    match out {
        Output::Text(text) => {
            let content = if done {
                json!([{"type": "output_text", "text": text, "annotations": []}])
            } else {
                json!([])
            };
            json!({"type": "message", "role": "assistant", "id": format!("msg_{id}"),
                   "status": status, "content": content})
        }
        Output::Call {
            name,
            namespace,
            arguments,
        } => {
            let mut item = json!({"type": "function_call", "id": format!("fc_{id}"), "status": status,
                                  "call_id": format!("call_{id}"), "name": name, "arguments": arguments});
            if let (Some(ns), Some(map)) = (namespace, item.as_object_mut()) {
                map.insert("namespace".to_owned(), Value::from(ns.as_str()));
            }
            item
        }
        Output::Patch(patch) => json!({
            "type": "custom_tool_call", "id": format!("ctc_{id}"), "status": status,
            "call_id": format!("call_{id}"), "name": "apply_patch", "input": patch,
        }),
    }
}

fn response_object(ctx: &Ctx, status: &str, output: Vec<Value>, with_usage: bool) -> Value {
    let mut response = json!({
        "id": format!("resp_{}", ctx.id), "object": "response", "created_at": ctx.created,
        "status": status, "model": ctx.model, "output": output,
    });
    if let (true, Some(map)) = (with_usage, response.as_object_mut()) {
        map.insert("usage".to_owned(), usage(&ctx.usage));
    }
    response
}

fn created(ctx: &Ctx) -> Bytes {
    sse_event(
        "response.created",
        &json!({"type": "response.created", "response": response_object(ctx, "in_progress", vec![], false)}),
    )
}

fn added(out: &Output, ctx: &Ctx) -> Bytes {
    sse_event(
        "response.output_item.added",
        &json!({"type": "response.output_item.added", "output_index": 0, "item": item(out, ctx, false)}),
    )
}

fn text_delta(ctx: &Ctx, delta: &str) -> Bytes {
    sse_event(
        "response.output_text.delta",
        &json!({"type": "response.output_text.delta", "item_id": format!("msg_{}", ctx.id),
                "output_index": 0, "content_index": 0, "delta": delta}),
    )
}

/// The full event stream for one output.
pub(crate) fn events(out: &Output, ctx: &Ctx) -> Vec<Bytes> {
    let mut events = vec![created(ctx), added(out, ctx)];
    if let Output::Text(text) = out {
        events.extend(pieces(text, 3).into_iter().map(|p| text_delta(ctx, p)));
    }
    events.push(sse_event(
        "response.output_item.done",
        &json!({"type": "response.output_item.done", "output_index": 0, "item": item(out, ctx, true)}),
    ));
    events.push(sse_event(
        "response.completed",
        &json!({"type": "response.completed", "response": response_object(ctx, "completed", vec![item(out, ctx, true)], true)}),
    ));
    events
}

/// The non-streaming response object.
pub(crate) fn json_body(out: &Output, ctx: &Ctx) -> Value {
    response_object(ctx, "completed", vec![item(out, ctx, true)], true)
}

/// The start of a text reply that will never finish (`stream_forever`, `cut_stream`).
pub(crate) fn open_prefix(ctx: &Ctx, first_delta: &str) -> Vec<Bytes> {
    let out = Output::Text(String::new());
    vec![created(ctx), added(&out, ctx), text_delta(ctx, first_delta)]
}

/// One `stream_forever` tick.
pub(crate) fn tick(ctx: &Ctx) -> Bytes {
    text_delta(ctx, ".")
}
