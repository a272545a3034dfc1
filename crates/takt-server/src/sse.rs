//! `GET /api/v1/events`: journal entries as Server-Sent Events, resumable without gaps or
//! duplicates.
//!
//! Each event is one journal entry: `id:` its `seq`, `event:` its kind, `data:` the entry's
//! JSON. A client resumes with `Last-Event-ID` (browsers send it on reconnect) or, on a first
//! connection, `?after=SEQ`; without either, the stream starts with the next entry.
//!
//! How it stays exact: the stream subscribes to the daemon's live broadcast *before* it
//! replays the journal after the client's position, then forwards live entries, skipping any
//! whose `seq` it already sent. A live entry that skips ahead (an entry never broadcast) or a
//! receiver that lagged behind the broadcast is caught up from the journal, so `seq`s go out
//! in order, each once.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName};
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use takt_protocol::JournalEntry;
use tokio::sync::{broadcast, mpsc};

use crate::app::{App, find_task};
use crate::error::{ApiError, ErrorEnvelope};

/// Journal entries read per replay request.
const REPLAY_PAGE: u32 = 500;
/// Events buffered between the journal reader and a slow client; past this the reader waits
/// (and the live broadcast may lag, which the journal then covers).
const CLIENT_BUFFER: usize = 64;

/// Where a stream starts and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamRequest {
    /// The last `seq` the client has; `None`: start with the next entry.
    after: Option<u64>,
    /// Only this task's entries (the task id).
    task_id: Option<String>,
}

/// The journal, live.
///
/// `id:` is the entry's `seq`, `event:` its kind (`run_dispatched`, `agent_event_recorded`,
/// ...), `data:` the entry as JSON. Idle streams carry a `: keep-alive` comment.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    params(
        ("Last-Event-ID" = Option<u64>, Header,
            description = "Resume after this seq (wins over `after`)"),
        ("after" = Option<u64>, Query, description = "Start after this seq (0: from the start)"),
        ("task" = Option<String>, Query, description = "Only this task's entries (id or identifier)"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream` of journal entries",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_request`: a bad position or parameter",
            body = ErrorEnvelope),
        (status = 404, description = "`task_not_found`", body = ErrorEnvelope),
    ))]
pub async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    let request = stream_request(&app, &headers, query.as_deref().unwrap_or(""))?;
    // Subscribe before anything is replayed: whatever commits from now on is either in the
    // replay or on this receiver.
    let live = app.daemon.subscribe();
    let (sender, receiver) = mpsc::channel(CLIENT_BUFFER);
    let keep_alive = app.keep_alive;
    tokio::spawn(Pump::new(app, request, sender).run(live));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = receiver.recv().await?;
        Some((Ok::<Event, std::convert::Infallible>(event), receiver))
    });
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"));
    // Reverse proxies (nginx) would otherwise buffer the stream and deliver events late.
    Ok(([(HeaderName::from_static("x-accel-buffering"), "no")], sse))
}

fn stream_request(app: &App, headers: &HeaderMap, query: &str) -> Result<StreamRequest, ApiError> {
    let mut after = None;
    let mut task = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "after" => after = Some(parse_seq(&value, "after")?),
            "task" => task = Some(value.into_owned()),
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter `{other}`; this endpoint takes `after` and `task`"
                )));
            }
        }
    }
    if let Some(value) = headers.get("last-event-id") {
        let text = value
            .to_str()
            .map_err(|_| ApiError::invalid("Last-Event-ID must be a journal seq"))?;
        after = Some(parse_seq(text, "Last-Event-ID")?);
    }
    let task_id = match task {
        Some(reference) => Some(find_task(&*app.snapshot()?, &reference)?.id.clone()),
        None => None,
    };
    Ok(StreamRequest { after, task_id })
}

fn parse_seq(text: &str, name: &str) -> Result<u64, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::invalid(format!(
            "{name} must be a journal seq (a whole number), not `{text}`"
        ))
    })
}

/// Moves entries from the journal and the broadcast to one client, in `seq` order.
struct Pump {
    app: App,
    task_id: Option<String>,
    /// The last `seq` handled (sent or filtered out).
    last: Option<u64>,
    sender: mpsc::Sender<Event>,
}

/// Why a pump stops.
enum Stop {
    /// The client hung up, or the server is shutting down.
    Gone,
    /// The journal could not be read: the client is told, and reconnects with its last id.
    Failed(ApiError),
}

impl Pump {
    fn new(app: App, request: StreamRequest, sender: mpsc::Sender<Event>) -> Pump {
        Pump {
            app,
            task_id: request.task_id,
            last: request.after,
            sender,
        }
    }

    async fn run(mut self, mut live: broadcast::Receiver<JournalEntry>) {
        let mut shutdown = self.app.shutdown.clone();
        let outcome = async {
            if let Some(after) = self.last {
                self.catch_up(after, u64::MAX).await?;
            }
            loop {
                let received = tokio::select! {
                    _ = self.sender.closed() => return Err(Stop::Gone),
                    received = live.recv() => received,
                };
                match received {
                    Ok(entry) => self.forward(entry).await?,
                    // Entries fell out of the broadcast: the journal has them. (A stream
                    // with no position yet has nothing to resume from and goes on live.)
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if let Some(last) = self.last {
                            self.catch_up(last, u64::MAX).await?;
                        }
                    }
                    // The daemon is gone: end the stream; the client reconnects later.
                    Err(broadcast::error::RecvError::Closed) => return Err(Stop::Gone),
                }
            }
        };
        let outcome: Result<(), Stop> = tokio::select! {
            outcome = outcome => outcome,
            _ = shutdown.wait_for(|stopping| *stopping) => Err(Stop::Gone),
        };
        if let Err(Stop::Failed(error)) = outcome {
            let data = serde_json::to_string(&error.envelope()).unwrap_or_default();
            let _ = self
                .sender
                .send(Event::default().event("error").data(data))
                .await;
        }
    }

    /// Sends a live entry, first filling any gap before it from the journal.
    async fn forward(&mut self, entry: JournalEntry) -> Result<(), Stop> {
        if let Some(last) = self.last {
            if entry.seq <= last {
                return Ok(()); // Already sent by the replay.
            }
            if entry.seq > last + 1 {
                self.catch_up(last, entry.seq - 1).await?;
            }
        }
        self.send(entry).await
    }

    /// Sends the journal's entries after `after` up to `through`, or until the journal ends.
    async fn catch_up(&mut self, after: u64, through: u64) -> Result<(), Stop> {
        let mut after = after;
        while after < through {
            let page = self
                .app
                .ask(self.app.daemon.journal_since(after, REPLAY_PAGE))
                .await
                .map_err(Stop::Failed)?;
            let full = page.len() >= REPLAY_PAGE as usize;
            let before = after;
            for entry in page {
                if entry.seq <= after {
                    continue;
                }
                if entry.seq > through {
                    return Ok(());
                }
                after = entry.seq;
                self.send(entry).await?;
            }
            // A short page is the journal's end; a page that moved nothing would repeat.
            if !full || after == before {
                break;
            }
        }
        Ok(())
    }

    async fn send(&mut self, entry: JournalEntry) -> Result<(), Stop> {
        self.last = Some(entry.seq);
        if self
            .task_id
            .as_ref()
            .is_some_and(|wanted| entry.task_id.as_ref() != Some(wanted))
        {
            return Ok(());
        }
        let event = to_event(&entry);
        self.sender.send(event).await.map_err(|_| Stop::Gone)
    }
}

/// The SSE form of an entry. Event names cannot hold line breaks (axum panics on them), so a
/// kind with one, which no real journal has, is sent as `journal_entry`.
fn to_event(entry: &JournalEntry) -> Event {
    let kind = if entry.kind.is_empty() || entry.kind.contains(['\n', '\r']) {
        "journal_entry"
    } else {
        entry.kind.as_str()
    };
    Event::default()
        .id(entry.seq.to_string())
        .event(kind)
        .data(serde_json::to_string(entry).unwrap_or_default())
}
