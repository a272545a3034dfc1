//! The journal as Server-Sent Events: resumable, in order, each entry once.

use std::time::Duration;

use reqwest::StatusCode;

use super::{FakeDaemon, Server, expect_error};

/// One parsed SSE block.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Comment(String),
    Event {
        id: Option<u64>,
        name: Option<String>,
        data: String,
    },
}

/// A client reading `text/event-stream` by hand, so the test sees exactly what went out.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(server: &Server, path: &str, last_event_id: Option<u64>) -> EventStream {
        let mut request = server.client.get(server.url(path));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next block, or `None` when the stream ended. Panics after 10 s of silence.
    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within 10 s; buffered: {:?}", self.buffer))
                .unwrap_or_else(|e| panic!("reading the stream: {e}"))?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event, skipping keep-alive comments.
    async fn next_event(&mut self) -> Option<(u64, String, serde_json::Value)> {
        loop {
            match self.next_item().await? {
                Item::Comment(_) => continue,
                Item::Event { id, name, data } => {
                    let data: serde_json::Value =
                        serde_json::from_str(&data).unwrap_or_else(|e| panic!("data: {e}"));
                    let id = id.unwrap_or_else(|| panic!("an event without an id: {data}"));
                    return Some((id, name.unwrap_or_default(), data));
                }
            }
        }
    }

    async fn next_ids(&mut self, count: usize) -> Vec<u64> {
        let mut ids = Vec::new();
        for _ in 0..count {
            let (id, _, _) = self
                .next_event()
                .await
                .unwrap_or_else(|| panic!("the stream ended after {ids:?}"));
            ids.push(id);
        }
        ids
    }
}

fn parse(block: &str) -> Item {
    let mut id = None;
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    let mut comment = None;
    for line in block.lines().filter(|line| !line.is_empty()) {
        if let Some(text) = line.strip_prefix(':') {
            comment = Some(text.trim().to_owned());
        } else if let Some((field, value)) = line.split_once(':') {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = value.parse().ok(),
                "event" => name = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
    }
    match (comment, data.is_empty()) {
        (Some(text), true) => Item::Comment(text),
        _ => Item::Event {
            id,
            name,
            data: data.join("\n"),
        },
    }
}

fn head_seq(daemon: &FakeDaemon) -> u64 {
    daemon.journal().last().map_or(0, |entry| entry.seq)
}

#[tokio::test]
async fn a_stream_resumes_from_last_event_id_then_goes_live_without_gap_or_duplicate() {
    let server = Server::start().await;
    let head = head_seq(&server.daemon);
    // The last two entries reach the new subscription again, as if they were committed
    // between the subscription and the replay: they must not go out twice.
    server.daemon.echo_last_on_subscribe(2);
    let mut stream = EventStream::open(&server, "/api/v1/events", Some(head - 3)).await;
    let (first, name, data) = stream.next_event().await.expect("an event");
    assert_eq!(first, head - 2);
    let entry = &server.daemon.journal()[usize::try_from(head - 3).unwrap()];
    assert_eq!(name, entry.kind);
    assert_eq!(data, serde_json::to_value(entry).unwrap());
    assert_eq!(stream.next_ids(2).await, [head - 1, head]);

    let live = server.daemon.journal_live("live_one", None);
    assert_eq!(live.seq, head + 1);
    assert_eq!(stream.next_ids(1).await, [head + 1]);

    // An entry that was never broadcast is filled in from the journal before the next live
    // one.
    server.daemon.journal_silently("missed");
    server.daemon.journal_live("after_the_gap", None);
    assert_eq!(stream.next_ids(2).await, [head + 2, head + 3]);
}

#[tokio::test]
async fn after_zero_replays_everything_and_task_filters_to_one_task() {
    let server = Server::start().await;
    let journal = server.daemon.journal();
    let mut all = EventStream::open(&server, "/api/v1/events?after=0", None).await;
    let expected: Vec<u64> = journal.iter().map(|entry| entry.seq).collect();
    assert_eq!(all.next_ids(expected.len()).await, expected);

    let mut one = EventStream::open(&server, "/api/v1/events?after=0&task=takt-4", None).await;
    let expected: Vec<u64> = journal
        .iter()
        .filter(|entry| entry.task_id.as_deref() == Some("id-4"))
        .map(|entry| entry.seq)
        .collect();
    assert_eq!(one.next_ids(expected.len()).await, expected);
    server.daemon.journal_live("elsewhere", Some("id-1"));
    let mine = server.daemon.journal_live("mine", Some("id-4"));
    let (id, name, _) = one.next_event().await.expect("an event");
    assert_eq!((id, name.as_str()), (mine.seq, "mine"));
}

#[tokio::test]
async fn without_a_position_the_stream_starts_with_the_next_entry_and_keeps_alive() {
    let server = Server::start().await;
    let mut stream = EventStream::open(&server, "/api/v1/events", None).await;
    // Idle: a keep-alive comment comes first (every 200 ms in tests).
    assert_eq!(
        stream.next_item().await,
        Some(Item::Comment("keep-alive".into()))
    );
    let next = server.daemon.journal_live("fresh", None);
    let (id, name, _) = stream.next_event().await.expect("an event");
    assert_eq!((id, name.as_str()), (next.seq, "fresh"));
}

#[tokio::test]
async fn a_burst_larger_than_the_broadcast_arrives_complete_and_in_order() {
    let server = Server::start_with(FakeDaemon::empty(2), None).await;
    let mut stream = EventStream::open(&server, "/api/v1/events?after=0", None).await;
    for n in 0..60 {
        server.daemon.journal_live(&format!("burst_{n}"), None);
    }
    let expected: Vec<u64> = (1..=60).collect();
    assert_eq!(stream.next_ids(60).await, expected);
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_serve_returns() {
    let server = Server::start().await;
    let head = head_seq(&server.daemon);
    let mut stream = EventStream::open(&server, "/api/v1/events", Some(head - 1)).await;
    assert_eq!(stream.next_ids(1).await, [head]);
    server.stop().await.expect("serve stops cleanly");
    while let Some(item) = stream.next_item().await {
        assert!(matches!(item, Item::Comment(_)), "nothing new: {item:?}");
    }
}

#[tokio::test]
async fn a_bad_position_or_parameter_is_an_invalid_request() {
    let server = Server::start().await;
    let response = server
        .client
        .get(server.url("/api/v1/events"))
        .header("last-event-id", "yesterday")
        .send()
        .await
        .expect("send");
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    for path in ["/api/v1/events?after=-1", "/api/v1/events?since=3"] {
        expect_error(
            server.get(path).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    expect_error(
        server.get("/api/v1/events?task=NOPE-1").await,
        StatusCode::NOT_FOUND,
        "task_not_found",
    )
    .await;
}
