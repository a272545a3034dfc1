//! The JSON-RPC layer over the app-server's stdio: one JSON object per line, no `"jsonrpc"`
//! field (agent-protocols.md §1.5).
//!
//! - One **writer task** owns stdin; everything is sent through an [`Outbox`], so answers to
//!   server requests can be written from anywhere without locking.
//! - One **demultiplexer task** owns stdout. It correlates responses with the requests that
//!   are waiting for them (by id), answers every server → client request at once (through the
//!   [`Responder`]), and forwards notifications and questions for a person to the session.
//!
//! Lines are read with [`crate::lines::next_line`] and capped at [`MAX_LINE`]: a longer line
//! is a protocol error ([`Inbound::Fatal`]) and costs at most the cap in memory. Lines that
//! are not JSON-RPC messages (a login shell's banner, a stray debug print) are skipped with a
//! warning: they cannot be answered, and failing the turn for them would make the backend
//! fragile against noisy shell profiles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::error::CodexError;
use super::requests::{PendingAsk, Responder};
use crate::lines::next_line;

/// The longest protocol line accepted (R-109 recommends 10 MB).
pub const MAX_LINE: usize = 10 * 1024 * 1024;

/// The JSON-RPC error code for a method the client does not implement.
pub const METHOD_NOT_FOUND: i64 = -32601;

/// Something the writer task should do.
#[derive(Debug)]
pub(crate) enum Out {
    Line(String),
    /// Close stdin (the app-server exits with 0 when it sees EOF).
    Close,
}

/// The sending side of the writer task. Cheap to clone; sending never blocks.
#[derive(Debug, Clone)]
pub(crate) struct Outbox(mpsc::UnboundedSender<Out>);

impl Outbox {
    pub(crate) fn new() -> (Outbox, mpsc::UnboundedReceiver<Out>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Outbox(sender), receiver)
    }

    /// Queues one message; false when the writer is gone.
    pub(crate) fn send(&self, message: &Value) -> bool {
        self.0.send(Out::Line(message.to_string())).is_ok()
    }

    /// Answers a server request.
    pub(crate) fn respond(&self, id: &Value, result: Value) {
        if !self.send(&json!({"id": id, "result": result})) {
            tracing::debug!(%id, "app-server gone before an answer could be sent");
        }
    }

    /// Answers a server request with a JSON-RPC error.
    pub(crate) fn respond_error(&self, id: &Value, code: i64, message: &str) {
        if !self.send(&json!({"id": id, "error": {"code": code, "message": message}})) {
            tracing::debug!(%id, "app-server gone before an error answer could be sent");
        }
    }

    pub(crate) fn close(&self) {
        let _ = self.0.send(Out::Close);
    }
}

/// Writes queued lines to the app-server's stdin until told to close or the pipe breaks.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    mut stdin: W,
    mut queue: mpsc::UnboundedReceiver<Out>,
) {
    while let Some(out) = queue.recv().await {
        match out {
            Out::Line(mut line) => {
                line.push('\n');
                let written = async {
                    stdin.write_all(line.as_bytes()).await?;
                    stdin.flush().await
                }
                .await;
                if let Err(error) = written {
                    // The reader sees the exit; nothing more can be written.
                    tracing::debug!(%error, "writing to the app-server failed");
                    break;
                }
            }
            Out::Close => break,
        }
    }
    let _ = stdin.shutdown().await;
}

/// A JSON-RPC error object from the app-server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
}

/// The answer to one of our requests.
pub(crate) type Reply = Result<Value, RpcError>;

/// Requests waiting for their response, by id.
#[derive(Debug, Default)]
pub(crate) struct PendingMap {
    waiting: HashMap<i64, oneshot::Sender<Reply>>,
    closed: bool,
}

pub(crate) type Pending = Arc<Mutex<PendingMap>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State the demultiplexer and the session share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Lines read from stdout so far: any output resets the turn's silence timer.
    pub lines: AtomicU64,
    /// Whether a `run_turn` is there to ask a person. Without one, questions are declined at
    /// once instead of waiting for nobody.
    pub turn_active: AtomicBool,
}

/// Sends our requests and notifications.
#[derive(Debug)]
pub(crate) struct Client {
    out: Outbox,
    pending: Pending,
    next_id: i64,
}

impl Client {
    pub(crate) fn new(out: Outbox, pending: Pending) -> Client {
        Client {
            out,
            pending,
            next_id: 1,
        }
    }

    /// Sends a request; the receiver yields its response. Fails when the app-server's stdout
    /// is already closed.
    pub(crate) fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<oneshot::Receiver<Reply>, CodexError> {
        let id = self.next_id;
        self.next_id += 1;
        let (sender, receiver) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if pending.closed {
                return Err(CodexError::Exited(format!(
                    "the app-server closed its output before `{method}`"
                )));
            }
            pending.waiting.insert(id, sender);
        }
        if !self
            .out
            .send(&json!({"id": id, "method": method, "params": params}))
        {
            lock(&self.pending).waiting.remove(&id);
            return Err(CodexError::Exited(format!(
                "the app-server's input is closed; cannot send `{method}`"
            )));
        }
        Ok(receiver)
    }

    /// Sends a notification (no response).
    pub(crate) fn notify(&self, method: &str, params: Option<Value>) {
        let message = match params {
            Some(params) => json!({"method": method, "params": params}),
            None => json!({"method": method}),
        };
        self.out.send(&message);
    }

    pub(crate) fn outbox(&self) -> &Outbox {
        &self.out
    }
}

/// One parsed line from the app-server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Response {
        id: Value,
        reply: Reply,
    },
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
}

/// Parses one line. `Err` says why the line is not a JSON-RPC message.
pub(crate) fn parse(line: &str) -> Result<Message, String> {
    let value: Value = serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(mut object) = value else {
        return Err("not a JSON object".to_owned());
    };
    let id = object.remove("id").filter(|id| !id.is_null());
    match object.remove("method") {
        Some(Value::String(method)) => {
            let params = object.remove("params").unwrap_or(Value::Null);
            Ok(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            })
        }
        Some(_) => Err("`method` is not a string".to_owned()),
        None => {
            let id = id.ok_or_else(|| "neither `method` nor `id`".to_owned())?;
            let reply = match object.remove("error") {
                Some(error) => Err(RpcError {
                    code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| error.to_string(), ToOwned::to_owned),
                }),
                None => Ok(object.remove("result").unwrap_or(Value::Null)),
            };
            Ok(Message::Response { id, reply })
        }
    }
}

/// What the demultiplexer hands to the session.
#[derive(Debug)]
pub(crate) enum Inbound {
    Notification {
        method: String,
        params: Value,
    },
    /// A request the policy could not decide; answered when the person has answered (or
    /// declined when the value is dropped).
    Ask(PendingAsk),
    /// The policy answered a request on its own; the note is journaled.
    Decided(String),
    /// The stream is broken (an oversized line, a read error).
    Fatal(CodexError),
    /// stdout reached end of file.
    Closed,
}

/// Everything the demultiplexer task owns.
pub(crate) struct Demux {
    pub pending: Pending,
    pub inbound: mpsc::UnboundedSender<Inbound>,
    pub shared: Arc<Shared>,
    pub responder: Responder,
}

impl Demux {
    /// Reads stdout until end of file. Never stops early: a child whose stdout is not drained
    /// would block on a full pipe.
    pub(crate) async fn run<R: AsyncBufRead + Unpin>(mut self, mut reader: R) {
        loop {
            let line = match next_line(&mut reader, MAX_LINE).await {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(error) => {
                    self.forward(Inbound::Fatal(CodexError::Protocol(format!(
                        "reading the app-server's output: {error}"
                    ))));
                    break;
                }
            };
            self.shared.lines.fetch_add(1, Ordering::Relaxed);
            if line.cut {
                tracing::warn!(max = MAX_LINE, "app-server line over the limit dropped");
                self.forward(Inbound::Fatal(CodexError::Protocol(format!(
                    "the app-server sent a line longer than {MAX_LINE} bytes"
                ))));
                continue;
            }
            let text = line.text.trim();
            if text.is_empty() {
                continue;
            }
            match parse(text) {
                Ok(message) => self.dispatch(message),
                Err(why) => {
                    let preview: String = text.chars().take(200).collect();
                    tracing::warn!(%why, line = %preview, "skipping a line that is not JSON-RPC");
                }
            }
        }
        {
            let mut pending = lock(&self.pending);
            pending.closed = true;
            // Dropping the senders wakes every waiter with "closed".
            pending.waiting.clear();
        }
        self.forward(Inbound::Closed);
    }

    fn dispatch(&mut self, message: Message) {
        match message {
            Message::Response { id, reply } => {
                let waiter = id
                    .as_i64()
                    .and_then(|key| lock(&self.pending).waiting.remove(&key));
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(reply);
                    }
                    None => tracing::debug!(%id, "response to no pending request"),
                }
            }
            Message::Request { id, method, params } => {
                let can_ask = self.shared.turn_active.load(Ordering::Acquire);
                if let Some(inbound) = self.responder.handle(id, &method, &params, can_ask) {
                    self.forward(inbound);
                }
            }
            Message::Notification { method, params } => {
                self.responder.observe(&method, &params);
                self.forward(Inbound::Notification { method, params });
            }
        }
    }

    fn forward(&self, inbound: Inbound) {
        // A session that is gone drops the message; a dropped question declines itself.
        let _ = self.inbound.send(inbound);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::policy::ApprovalRules;

    #[test]
    fn lines_are_classified() {
        assert_eq!(
            parse(r#"{"id":1,"result":{"ok":true}}"#),
            Ok(Message::Response {
                id: json!(1),
                reply: Ok(json!({"ok": true}))
            })
        );
        assert_eq!(
            parse(r#"{"id":2,"error":{"code":-32600,"message":"bad"}}"#),
            Ok(Message::Response {
                id: json!(2),
                reply: Err(RpcError {
                    code: -32600,
                    message: "bad".into()
                })
            })
        );
        assert_eq!(
            parse(r#"{"id":"a","method":"item/tool/call","params":{}}"#),
            Ok(Message::Request {
                id: json!("a"),
                method: "item/tool/call".into(),
                params: json!({})
            })
        );
        assert_eq!(
            parse(r#"{"method":"turn/started","params":{"x":1}}"#),
            Ok(Message::Notification {
                method: "turn/started".into(),
                params: json!({"x": 1})
            })
        );
        assert_eq!(
            parse(r#"{"method":"initialized","id":null}"#),
            Ok(Message::Notification {
                method: "initialized".into(),
                params: Value::Null
            })
        );
        assert!(parse("hello").is_err());
        assert!(parse("[1,2]").is_err());
        assert!(parse(r#"{"foo":1}"#).is_err());
        assert!(parse(r#"{"method":3}"#).is_err());
    }

    struct Harness {
        client: Client,
        inbound: mpsc::UnboundedReceiver<Inbound>,
        written: mpsc::UnboundedReceiver<Out>,
        shared: Arc<Shared>,
        task: Option<(Demux, Outbox)>,
    }

    fn harness() -> Harness {
        let (out, written) = Outbox::new();
        let pending = Pending::default();
        let (sender, inbound) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let workspace = std::env::temp_dir();
        let demux = Demux {
            pending: pending.clone(),
            inbound: sender,
            shared: shared.clone(),
            responder: Responder::new(ApprovalRules::default(), workspace, out.clone(), None),
        };
        Harness {
            client: Client::new(out.clone(), pending),
            inbound,
            written,
            shared,
            task: Some((demux, out)),
        }
    }

    fn sent(written: &mut mpsc::UnboundedReceiver<Out>) -> Vec<Value> {
        let mut lines = Vec::new();
        while let Ok(out) = written.try_recv() {
            if let Out::Line(line) = out {
                lines.push(serde_json::from_str(&line).unwrap());
            }
        }
        lines
    }

    #[tokio::test]
    async fn responses_find_their_requests_and_server_requests_are_always_answered() {
        let mut h = harness();
        let first = h.client.request("initialize", json!({})).unwrap();
        let second = h.client.request("thread/start", json!({})).unwrap();
        let requests = sent(&mut h.written);
        assert_eq!(requests[0]["id"], 1);
        assert_eq!(requests[1]["method"], "thread/start");
        // Answers arrive out of order, split across reads, with noise and server requests in
        // between; the session is not in a turn, so nobody could be asked.
        let stream = concat!(
            "{\"id\":2,\"result\":{\"thread\":{\"id\":\"t\"}}}\n",
            "garbage\n",
            "{\"id\":9,\"method\":\"some/new/request\",\"params\":{}}\n",
            "{\"id\":10,\"method\":\"item/tool/call\",\"params\":{\"tool\":\"x\",\"callId\":\"c\",\"threadId\":\"t\",\"turnId\":\"u\",\"arguments\":{}}}\n",
            "{\"id\":11,\"method\":\"item/tool/requestUserInput\",\"params\":{\"threadId\":\"t\",\"turnId\":\"u\",\"itemId\":\"i\",\"isBlocking\":true,\"questions\":[{\"id\":\"q\",\"header\":\"h\",\"question\":\"Which?\"}]}}\n",
            "{\"method\":\"turn/started\",\"params\":{}}\n",
            "{\"id\":1,\"error\":{\"code\":-1,\"message\":\"nope\"}}",
        );
        let reader = tokio::io::BufReader::with_capacity(16, stream.as_bytes());
        let (demux, _out) = h.task.take().unwrap();
        demux.run(reader).await;
        assert_eq!(second.await.unwrap().unwrap()["thread"]["id"], "t");
        assert_eq!(first.await.unwrap().unwrap_err().message, "nope");
        let answers = sent(&mut h.written);
        assert_eq!(answers.len(), 3, "{answers:?}");
        assert_eq!(answers[0]["id"], 9);
        assert_eq!(answers[0]["error"]["code"], METHOD_NOT_FOUND);
        assert_eq!(answers[1]["id"], 10);
        assert_eq!(answers[1]["result"]["success"], false);
        assert_eq!(answers[2]["id"], 11);
        assert_eq!(answers[2]["result"], json!({"answers": {}}));
        let mut kinds = Vec::new();
        while let Ok(inbound) = h.inbound.try_recv() {
            kinds.push(match inbound {
                Inbound::Notification { method, .. } => method,
                Inbound::Decided(_) => "decided".into(),
                Inbound::Closed => "closed".into(),
                other => format!("{other:?}"),
            });
        }
        assert_eq!(
            kinds,
            ["decided", "decided", "decided", "turn/started", "closed"]
        );
        assert!(h.shared.lines.load(Ordering::Relaxed) >= 7);
        assert!(matches!(
            h.client.request("late", json!({})),
            Err(CodexError::Exited(_))
        ));
    }

    #[tokio::test]
    async fn an_oversized_line_is_a_protocol_error_and_reading_goes_on() {
        let mut h = harness();
        let pending = h.client.request("turn/start", json!({})).unwrap();
        let mut stream = vec![b'x'; MAX_LINE + 10];
        stream.extend_from_slice(b"\n{\"id\":1,\"result\":{}}\n");
        let (demux, _out) = h.task.take().unwrap();
        demux.run(stream.as_slice()).await;
        assert!(matches!(
            h.inbound.try_recv(),
            Ok(Inbound::Fatal(CodexError::Protocol(message))) if message.contains("longer than")
        ));
        assert_eq!(pending.await.unwrap(), Ok(json!({})));
    }

    #[tokio::test]
    async fn questions_go_to_the_turn_and_decline_themselves_when_dropped() {
        let mut h = harness();
        h.shared.turn_active.store(true, Ordering::Release);
        let stream = "{\"id\":5,\"method\":\"item/tool/requestUserInput\",\"params\":{\"threadId\":\"t\",\"turnId\":\"u\",\"itemId\":\"i\",\"isBlocking\":true,\"questions\":[{\"id\":\"q\",\"header\":\"h\",\"question\":\"Which?\"}]}}\n";
        let (demux, _out) = h.task.take().unwrap();
        demux.run(stream.as_bytes()).await;
        let Ok(Inbound::Ask(ask)) = h.inbound.try_recv() else {
            panic!("expected a question");
        };
        assert!(ask.question.contains("Which?"));
        assert!(sent(&mut h.written).is_empty(), "not answered yet");
        drop(ask);
        let answers = sent(&mut h.written);
        assert_eq!(answers, [json!({"id": 5, "result": {"answers": {}}})]);
    }

    #[tokio::test]
    async fn the_writer_writes_lines_and_closes() {
        let (out, queue) = Outbox::new();
        out.send(&json!({"a": 1}));
        out.close();
        out.send(&json!({"b": 2}));
        let mut buffer = Vec::new();
        write_loop(&mut buffer, queue).await;
        assert_eq!(String::from_utf8(buffer).unwrap(), "{\"a\":1}\n");
    }
}
