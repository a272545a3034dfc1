//! Answers to the app-server's requests (server → client JSON-RPC requests).
//!
//! Every request gets an answer, always, so a turn never stalls on one:
//!
//! | method | answer |
//! |---|---|
//! | `item/commandExecution/requestApproval` | [`ApprovalRules::decide_command`]; network requests use `permissions` |
//! | `item/fileChange/requestApproval` | [`ApprovalRules::decide_file_change`] on the paths of the item's `item/started` |
//! | `item/permissions/requestApproval` | `permissions` rule; accept grants what was asked for this turn |
//! | `item/tool/requestUserInput` | always a person (`ask`); nobody to ask → empty answers |
//! | `mcpServer/elicitation/request` | declined (takt cannot fill MCP forms) |
//! | `item/tool/call` | the run's host-side tool ([`HostTools`]), run in the background; an unknown tool gets a failure result (R-123) |
//! | `execCommandApproval`, `applyPatchApproval` (v1) | same rules, v1 decision values |
//! | anything else | JSON-RPC error `-32601` |
//!
//! A request the rules send to a person becomes a [`PendingAsk`] for the running turn. If no
//! turn is running, or the pending question is dropped unanswered, it is declined.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use takt_core::ports::HostTools;

use super::policy::{
    ApprovalRules, RuleAction, Verdict, is_approval, is_bare_refusal, unwrap_shell,
};
use super::rpc::{Inbound, METHOD_NOT_FOUND, Outbox};

/// At most this many file-change items are remembered while waiting for their approval.
const MAX_TRACKED_ITEMS: usize = 1024;

/// Decides server requests; owned by the demultiplexer task.
#[derive(Debug)]
pub(crate) struct Responder {
    rules: ApprovalRules,
    workspace: PathBuf,
    out: Outbox,
    /// The run's host-side tools, registered as dynamic tools at `thread/start`.
    host: Option<Arc<dyn HostTools>>,
    /// Paths of file-change items seen in `item/started`, by item id: the approval request
    /// itself does not name them.
    file_changes: HashMap<String, Vec<PathBuf>>,
}

impl Responder {
    /// `workspace` must be canonical.
    pub(crate) fn new(
        rules: ApprovalRules,
        workspace: PathBuf,
        out: Outbox,
        host: Option<Arc<dyn HostTools>>,
    ) -> Responder {
        Responder {
            rules,
            workspace,
            out,
            host,
            file_changes: HashMap::new(),
        }
    }

    /// Watches notifications for what later approval requests need.
    pub(crate) fn observe(&mut self, method: &str, params: &Value) {
        let item = &params["item"];
        if item["type"] != "fileChange" {
            return;
        }
        let Some(id) = item["id"].as_str() else {
            return;
        };
        match method {
            "item/started" => {
                if self.file_changes.len() >= MAX_TRACKED_ITEMS {
                    self.file_changes.clear();
                }
                self.file_changes
                    .insert(id.to_owned(), change_paths(&item["changes"]));
            }
            "item/completed" => {
                self.file_changes.remove(id);
            }
            _ => {}
        }
    }

    /// Answers `method` now, or hands it to the turn as a question. `can_ask` says whether a
    /// turn is there to ask a person.
    pub(crate) fn handle(
        &mut self,
        id: Value,
        method: &str,
        params: &Value,
        can_ask: bool,
    ) -> Option<Inbound> {
        let thread_id = params["threadId"].as_str().map(ToOwned::to_owned);
        let turn_id = params["turnId"].as_str().map(ToOwned::to_owned);
        let (kind, verdict, what) = match method {
            "item/commandExecution/requestApproval" => {
                let command = params["command"]
                    .as_str()
                    .map(unwrap_shell)
                    .or_else(|| command_from_actions(&params["commandActions"]))
                    .unwrap_or_else(|| "(command not shown)".to_owned());
                let network = !params["networkApprovalContext"].is_null();
                let verdict = if network {
                    Verdict {
                        action: self.rules.permissions,
                        reason: "it asks for network access".to_owned(),
                    }
                } else {
                    self.rules.decide_command(&command)
                };
                let mut what = format!("run `{}`", short(&command, 300));
                if let Some(cwd) = params["cwd"].as_str() {
                    what.push_str(&format!(" in {cwd}"));
                }
                push_reason(&mut what, params);
                (AskKind::Command, verdict, what)
            }
            "item/fileChange/requestApproval" => {
                let mut paths = params["itemId"]
                    .as_str()
                    .and_then(|item| self.file_changes.get(item))
                    .cloned();
                if let (Some(paths), Some(root)) = (paths.as_mut(), params["grantRoot"].as_str()) {
                    paths.push(PathBuf::from(root));
                }
                let verdict = self
                    .rules
                    .decide_file_change(paths.as_deref(), &self.workspace);
                let mut what = match &paths {
                    Some(paths) => format!("change {}", list_paths(paths)),
                    None => "change files it did not name".to_owned(),
                };
                if let Some(root) = params["grantRoot"].as_str() {
                    what.push_str(&format!(" and write anywhere under {root} from now on"));
                }
                push_reason(&mut what, params);
                (AskKind::FileChange, verdict, what)
            }
            "item/permissions/requestApproval" => {
                let requested = params["permissions"].clone();
                let mut what = format!(
                    "get extra permissions {}",
                    short(&requested.to_string(), 300)
                );
                push_reason(&mut what, params);
                let verdict = Verdict {
                    action: self.rules.permissions,
                    reason: "extra permissions".to_owned(),
                };
                (AskKind::Permissions { requested }, verdict, what)
            }
            "execCommandApproval" => {
                let command = params["command"]
                    .as_array()
                    .map(|parts| {
                        parts
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .map(|text| unwrap_shell(&text))
                    .unwrap_or_else(|| "(command not shown)".to_owned());
                let verdict = self.rules.decide_command(&command);
                let mut what = format!("run `{}`", short(&command, 300));
                push_reason(&mut what, params);
                (AskKind::LegacyExec, verdict, what)
            }
            "applyPatchApproval" => {
                let paths: Option<Vec<PathBuf>> = params["fileChanges"]
                    .as_object()
                    .map(|changes| changes.keys().map(PathBuf::from).collect());
                let verdict = self
                    .rules
                    .decide_file_change(paths.as_deref(), &self.workspace);
                let what = match &paths {
                    Some(paths) => format!("change {}", list_paths(paths)),
                    None => "change files it did not name".to_owned(),
                };
                (AskKind::LegacyPatch, verdict, what)
            }
            "item/tool/requestUserInput" => {
                let questions = questions(&params["questions"]);
                let question = question_text(&questions);
                let kind = AskKind::UserInput { questions };
                return Some(self.ask_or_refuse(
                    id,
                    kind,
                    question,
                    String::new(),
                    false,
                    thread_id,
                    turn_id,
                    can_ask,
                ));
            }
            "mcpServer/elicitation/request" => {
                self.out
                    .respond(&id, json!({"action": "decline", "content": null}));
                let server = params["serverName"].as_str().unwrap_or("?");
                let message = short(params["message"].as_str().unwrap_or(""), 200);
                return Some(Inbound::Decided(format!(
                    "[policy] declined MCP server `{server}`'s form request: {message}"
                )));
            }
            "item/tool/call" => {
                let tool = params["tool"].as_str().unwrap_or("?");
                let host = self.host.clone().filter(|host| {
                    params["namespace"].is_null()
                        && host.specs().iter().any(|spec| spec.name == tool)
                });
                if let Some(host) = host {
                    return Some(self.call_host_tool(host, id, tool, params["arguments"].clone()));
                }
                let text = format!(
                    "Unsupported dynamic tool: `{tool}`. takt registers only its host tools; use the shell or apply_patch instead."
                );
                self.out.respond(
                    &id,
                    json!({"success": false, "contentItems": [{"type": "inputText", "text": text}]}),
                );
                return Some(Inbound::Decided(format!(
                    "[policy] answered a call of the unsupported dynamic tool `{tool}` with a failure"
                )));
            }
            other => {
                self.out.respond_error(
                    &id,
                    METHOD_NOT_FOUND,
                    &format!("takt does not handle `{other}`"),
                );
                tracing::warn!(method = other, "declined an unknown app-server request");
                return Some(Inbound::Decided(format!(
                    "[policy] answered the unsupported request `{other}` with an error"
                )));
            }
        };
        match verdict.action {
            RuleAction::Allow => {
                self.out.respond(&id, kind.acceptance());
                Some(Inbound::Decided(format!(
                    "[policy] approved: {what} ({})",
                    verdict.reason
                )))
            }
            RuleAction::Deny => {
                self.out.respond(&id, kind.refusal());
                Some(Inbound::Decided(format!(
                    "[policy] declined: {what} ({})",
                    verdict.reason
                )))
            }
            RuleAction::Ask => {
                let question = format!(
                    "Codex wants to {what}. Approve? Answer yes to allow; any other answer declines, and its text is passed on to the agent."
                );
                Some(
                    self.ask_or_refuse(id, kind, question, what, true, thread_id, turn_id, can_ask),
                )
            }
        }
    }

    /// Runs a host tool in the background (it may wait on a tracker or forge) and answers the
    /// request when it is done; the demultiplexer keeps reading meanwhile.
    fn call_host_tool(
        &self,
        host: Arc<dyn HostTools>,
        id: Value,
        tool: &str,
        arguments: Value,
    ) -> Inbound {
        let out = self.out.clone();
        let name = tool.to_owned();
        tokio::spawn(async move {
            let output = host.call(&name, arguments).await;
            out.respond(
                &id,
                json!({
                    "success": !output.is_error,
                    "contentItems": [{"type": "inputText", "text": output.text}],
                }),
            );
        });
        Inbound::Decided(format!("[host tool] {tool}"))
    }

    #[allow(clippy::too_many_arguments)]
    fn ask_or_refuse(
        &self,
        id: Value,
        kind: AskKind,
        question: String,
        summary: String,
        approval: bool,
        thread_id: Option<String>,
        turn_id: Option<String>,
        can_ask: bool,
    ) -> Inbound {
        if !can_ask {
            self.out.respond(&id, kind.refusal());
            return Inbound::Decided(format!(
                "[policy] declined, no turn is waiting to ask a person: {question}"
            ));
        }
        Inbound::Ask(PendingAsk {
            question,
            summary,
            approval,
            thread_id,
            turn_id,
            id,
            kind,
            out: self.out.clone(),
            answered: false,
        })
    }
}

/// The kinds of requests a person can answer, and how each is answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AskKind {
    Command,
    FileChange,
    Permissions { requested: Value },
    UserInput { questions: Vec<Question> },
    LegacyExec,
    LegacyPatch,
}

/// One question of a user-input request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    pub id: String,
    pub text: String,
    pub options: Vec<String>,
}

impl AskKind {
    fn acceptance(&self) -> Value {
        match self {
            AskKind::Command | AskKind::FileChange => json!({"decision": "accept"}),
            AskKind::Permissions { requested } => {
                json!({"permissions": requested, "scope": "turn"})
            }
            AskKind::LegacyExec | AskKind::LegacyPatch => json!({"decision": "approved"}),
            AskKind::UserInput { .. } => json!({"answers": {}}),
        }
    }

    fn refusal(&self) -> Value {
        self.refusal_with("declined by takt's approval policy")
    }

    fn refusal_with(&self, text: &str) -> Value {
        match self {
            AskKind::Command | AskKind::FileChange => json!({"decision": "decline"}),
            AskKind::Permissions { .. } => json!({"permissions": {}}),
            AskKind::LegacyExec | AskKind::LegacyPatch => {
                json!({"decision": {"denied": {"rejection": text}}})
            }
            AskKind::UserInput { .. } => json!({"answers": {}}),
        }
    }
}

/// A request waiting for a person's answer. Dropping it unanswered declines the request, so
/// the app-server is never left waiting.
#[derive(Debug)]
pub(crate) struct PendingAsk {
    /// What the person is asked.
    pub question: String,
    /// For approvals: what the agent wants to do (journaled as `approval_required`).
    pub summary: String,
    /// Whether this is an approval (as opposed to a question from the agent).
    pub approval: bool,
    pub thread_id: Option<String>,
    pub turn_id: Option<String>,
    id: Value,
    kind: AskKind,
    out: Outbox,
    answered: bool,
}

/// What answering a question did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answered {
    pub accepted: bool,
    /// Text to pass on to the agent with `turn/steer`: a v2 decline cannot carry it.
    pub steer: Option<String>,
}

impl PendingAsk {
    /// Answers with the person's text: for approvals, yes/approve accepts and anything else
    /// declines; for user input, the text is the answer to every question.
    pub(crate) fn answer(mut self, text: &str) -> Answered {
        self.answered = true;
        let text = text.trim();
        if let AskKind::UserInput { questions } = &self.kind {
            let mut answers = serde_json::Map::new();
            for question in questions {
                let chosen = question
                    .options
                    .iter()
                    .find(|option| option.eq_ignore_ascii_case(text))
                    .cloned()
                    .unwrap_or_else(|| text.to_owned());
                answers.insert(question.id.clone(), json!({"answers": [chosen]}));
            }
            self.out.respond(&self.id, json!({"answers": answers}));
            return Answered {
                accepted: true,
                steer: None,
            };
        }
        if is_approval(text) {
            self.out.respond(&self.id, self.kind.acceptance());
            return Answered {
                accepted: true,
                steer: None,
            };
        }
        let legacy = matches!(self.kind, AskKind::LegacyExec | AskKind::LegacyPatch);
        let reason = if is_bare_refusal(text) {
            "declined by the operator"
        } else {
            text
        };
        self.out.respond(&self.id, self.kind.refusal_with(reason));
        let steer = (!legacy && !is_bare_refusal(text))
            .then(|| format!("The operator declined your request and said: {text}"));
        Answered {
            accepted: false,
            steer,
        }
    }

    /// Declines (nobody will answer).
    pub(crate) fn refuse(mut self) {
        self.answered = true;
        self.out.respond(&self.id, self.kind.refusal());
    }
}

impl Drop for PendingAsk {
    fn drop(&mut self) {
        if !self.answered {
            self.out.respond(&self.id, self.kind.refusal());
        }
    }
}

fn change_paths(changes: &Value) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for change in changes.as_array().into_iter().flatten() {
        if let Some(path) = change["path"].as_str() {
            paths.push(PathBuf::from(path));
        }
        if let Some(moved) = change["kind"]["move_path"].as_str() {
            paths.push(PathBuf::from(moved));
        }
    }
    paths
}

fn command_from_actions(actions: &Value) -> Option<String> {
    let parts: Vec<&str> = actions
        .as_array()?
        .iter()
        .filter_map(|action| action["command"].as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" && "))
}

fn questions(value: &Value) -> Vec<Question> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|question| Question {
            id: question["id"].as_str().unwrap_or("").to_owned(),
            text: question["question"]
                .as_str()
                .or_else(|| question["header"].as_str())
                .unwrap_or("")
                .to_owned(),
            options: question["options"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|option| option["label"].as_str().map(ToOwned::to_owned))
                .collect(),
        })
        .collect()
}

fn question_text(questions: &[Question]) -> String {
    let one = |question: &Question| {
        if question.options.is_empty() {
            question.text.clone()
        } else {
            format!(
                "{} (options: {})",
                question.text,
                question.options.join("; ")
            )
        }
    };
    match questions {
        [] => "Codex asks for input (no question given).".to_owned(),
        [single] => one(single),
        many => many
            .iter()
            .enumerate()
            .map(|(i, question)| format!("{}. {}", i + 1, one(question)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn push_reason(what: &mut String, params: &Value) {
    if let Some(reason) = params["reason"].as_str().filter(|r| !r.trim().is_empty()) {
        what.push_str(&format!(" (its reason: {})", short(reason, 300)));
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    let mut names: Vec<String> = paths
        .iter()
        .take(10)
        .map(|path| path.display().to_string())
        .collect();
    if paths.len() > 10 {
        names.push(format!("and {} more", paths.len() - 10));
    }
    names.join(", ")
}

/// The first `max` characters of `text`, with an ellipsis when cut.
pub(crate) fn short(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::rpc::Out;

    fn responder() -> (
        Responder,
        tokio::sync::mpsc::UnboundedReceiver<Out>,
        PathBuf,
    ) {
        let dir = std::fs::canonicalize(std::env::temp_dir()).unwrap();
        let ws = dir.join("takt-codex-responder-ws");
        let (out, written) = Outbox::new();
        (
            Responder::new(ApprovalRules::default(), ws.clone(), out, None),
            written,
            ws,
        )
    }

    fn answers(written: &mut tokio::sync::mpsc::UnboundedReceiver<Out>) -> Vec<Value> {
        let mut all = Vec::new();
        while let Ok(Out::Line(line)) = written.try_recv() {
            all.push(serde_json::from_str(&line).unwrap());
        }
        all
    }

    #[test]
    fn file_changes_are_decided_from_the_started_item() {
        let (mut responder, mut written, ws) = responder();
        let inside = ws.join("a.txt");
        responder.observe(
            "item/started",
            &json!({"item": {"type": "fileChange", "id": "c1", "changes": [{"path": inside, "kind": {"type": "add"}}]}}),
        );
        let decided = responder.handle(
            json!(0),
            "item/fileChange/requestApproval",
            &json!({"threadId": "t", "turnId": "u", "itemId": "c1"}),
            true,
        );
        assert!(matches!(decided, Some(Inbound::Decided(note)) if note.contains("approved")));
        assert_eq!(
            answers(&mut written),
            [json!({"id": 0, "result": {"decision": "accept"}})]
        );
        // A path outside the workspace needs a person; without a turn it is declined.
        responder.observe(
            "item/started",
            &json!({"item": {"type": "fileChange", "id": "c2", "changes": [{"path": "/etc/x", "kind": {"type": "update", "move_path": null}}]}}),
        );
        let ask = responder.handle(
            json!(1),
            "item/fileChange/requestApproval",
            &json!({"itemId": "c2"}),
            true,
        );
        let Some(Inbound::Ask(ask)) = ask else {
            panic!("expected a question")
        };
        assert!(ask.question.contains("/etc/x"), "{}", ask.question);
        assert_eq!(
            ask.answer("no, keep it in the workspace"),
            Answered {
                accepted: false,
                steer: Some(
                    "The operator declined your request and said: no, keep it in the workspace"
                        .into()
                )
            }
        );
        assert_eq!(
            answers(&mut written),
            [json!({"id": 1, "result": {"decision": "decline"}})]
        );
        let refused = responder.handle(
            json!(2),
            "item/fileChange/requestApproval",
            &json!({"itemId": "unknown"}),
            false,
        );
        assert!(matches!(refused, Some(Inbound::Decided(_))));
        assert_eq!(
            answers(&mut written),
            [json!({"id": 2, "result": {"decision": "decline"}})]
        );
    }

    #[test]
    fn commands_follow_the_rules() {
        let (mut responder, mut written, _) = responder();
        responder.handle(
            json!("x"),
            "item/commandExecution/requestApproval",
            &json!({"command": "/bin/bash -lc \"git push\""}),
            true,
        );
        responder.handle(
            json!("y"),
            "execCommandApproval",
            &json!({"command": ["bash", "-lc", "cargo test"]}),
            true,
        );
        let network = responder.handle(
            json!("z"),
            "item/commandExecution/requestApproval",
            &json!({"command": "curl example.com", "networkApprovalContext": {"host": "example.com"}}),
            true,
        );
        assert!(matches!(network, Some(Inbound::Ask(_))));
        drop(network);
        assert_eq!(
            answers(&mut written),
            [
                json!({"id": "x", "result": {"decision": "decline"}}),
                json!({"id": "y", "result": {"decision": "approved"}}),
                json!({"id": "z", "result": {"decision": "decline"}}),
            ]
        );
    }

    #[test]
    fn user_input_answers_pick_options() {
        let (mut responder, mut written, _) = responder();
        let ask = responder.handle(
            json!(3),
            "item/tool/requestUserInput",
            &json!({"questions": [
                {"id": "db", "header": "Database", "question": "Which database?", "options": [{"label": "Postgres", "description": ""}, {"label": "SQLite", "description": ""}]},
                {"id": "why", "header": "Why", "question": "Anything else?"}
            ]}),
            true,
        );
        let Some(Inbound::Ask(ask)) = ask else {
            panic!("expected a question")
        };
        assert!(
            ask.question
                .contains("1. Which database? (options: Postgres; SQLite)")
        );
        ask.answer("sqlite");
        assert_eq!(
            answers(&mut written),
            [json!({"id": 3, "result": {"answers": {
                "db": {"answers": ["SQLite"]},
                "why": {"answers": ["sqlite"]}
            }}})]
        );
    }

    #[test]
    fn permissions_are_granted_as_asked() {
        let (mut responder, mut written, _) = responder();
        let ask = responder.handle(
            json!(4),
            "item/permissions/requestApproval",
            &json!({"permissions": {"network": {"enabled": true}}, "reason": "npm install"}),
            true,
        );
        let Some(Inbound::Ask(ask)) = ask else {
            panic!("expected a question")
        };
        assert!(ask.question.contains("npm install"));
        assert!(ask.answer("yes").accepted);
        assert_eq!(
            answers(&mut written),
            [
                json!({"id": 4, "result": {"permissions": {"network": {"enabled": true}}, "scope": "turn"}})
            ]
        );
    }
}
