mod builtin;
mod claude;
mod codex;
mod command;

/// These suites test the backends' protocols; confinement itself is tested by takt-sandbox's
/// escape suite and, with every backend, by the takt binary's end-to-end suite.
pub fn unconfined() -> std::sync::Arc<takt_sandbox::Sandbox> {
    std::sync::Arc::new(takt_sandbox::Sandbox::unconfined(
        takt_sandbox::Policy::default(),
    ))
}

/// Records events and answers questions from a script (`None`: nobody answers). Every question
/// is announced as `InputRequired` first, as the daemon's own sink does.
#[derive(Default)]
pub struct Sink {
    events: std::sync::Mutex<Vec<takt_protocol::AgentEvent>>,
    answers: std::sync::Mutex<std::collections::VecDeque<Option<String>>>,
    asked: std::sync::Mutex<Vec<String>>,
}

impl Sink {
    pub fn answering(answers: &[Option<&str>]) -> Sink {
        Sink {
            answers: std::sync::Mutex::new(answers.iter().map(|a| a.map(str::to_owned)).collect()),
            ..Sink::default()
        }
    }

    pub fn events(&self) -> Vec<takt_protocol::AgentEvent> {
        self.events.lock().unwrap().clone()
    }

    /// The questions the session asked, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    pub fn messages(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                takt_protocol::AgentEvent::Message { text } => Some(text),
                _ => None,
            })
            .collect()
    }

    pub fn usages(&self) -> Vec<takt_protocol::TokenUsage> {
        self.events()
            .into_iter()
            .filter_map(|event| match event {
                takt_protocol::AgentEvent::TokenUsage { usage } => Some(usage),
                _ => None,
            })
            .collect()
    }
}

impl takt_core::ports::AgentEventSink for Sink {
    fn emit(&self, event: takt_protocol::AgentEvent) {
        self.events.lock().unwrap().push(event);
    }

    fn ask(&self, question: String) -> takt_core::ports::BoxFuture<'_, Option<String>> {
        self.asked.lock().unwrap().push(question.clone());
        self.emit(takt_protocol::AgentEvent::InputRequired { question });
        let answer = self.answers.lock().unwrap().pop_front().flatten();
        Box::pin(std::future::ready(answer))
    }
}

/// A proxy that refuses everything and records what was asked of it.
pub struct RefusingProxy {
    pub url: String,
    hits: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RefusingProxy {
    pub async fn start() -> RefusingProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let mut head = vec![0u8; 4096];
                    let n = socket.read(&mut head).await.unwrap_or(0);
                    let first = String::from_utf8_lossy(&head[..n])
                        .lines()
                        .next()
                        .unwrap_or("<nothing>")
                        .to_owned();
                    recorded.lock().unwrap().push(first);
                    let _ = socket
                        .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                });
            }
        });
        RefusingProxy { url, hits, task }
    }

    pub fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

impl Drop for RefusingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
