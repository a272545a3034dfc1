//! Response bodies that stream: a list of chunks, then either the end, a cut (the connection is
//! dropped without the final chunk), or ticks forever.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::stream;
use tokio::sync::watch;

/// How a streamed body ends.
pub(crate) enum Tail {
    /// Normally.
    End,
    /// The connection is aborted after the chunks: no terminating chunk, no final event.
    Cut,
    /// Nothing more until the server shuts down; then the connection is aborted.
    Hang { shutdown: watch::Receiver<bool> },
    /// One more chunk every `every` until the client goes away or the server shuts down (then
    /// the body ends normally).
    Forever {
        every: Duration,
        tick: Bytes,
        shutdown: watch::Receiver<bool>,
    },
}

struct State {
    queue: VecDeque<Bytes>,
    tail: Tail,
}

/// How long the body pauses before aborting, so the chunks before the cut reach the client.
const CUT_GRACE: Duration = Duration::from_millis(50);

pub(crate) fn body(chunks: Vec<Bytes>, tail: Tail) -> Body {
    let state = State {
        queue: chunks.into(),
        tail,
    };
    let stream = stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        if let Some(chunk) = state.queue.pop_front() {
            return Some((Ok(chunk), Some(state)));
        }
        let next = match &mut state.tail {
            Tail::End => None,
            Tail::Cut => {
                tokio::time::sleep(CUT_GRACE).await;
                Some(Err(std::io::Error::other(
                    "cut_stream: connection dropped on purpose",
                )))
            }
            Tail::Hang { shutdown } => {
                shut_down(shutdown).await;
                Some(Err(std::io::Error::other(
                    "stream_forever: the server is shutting down",
                )))
            }
            Tail::Forever {
                every,
                tick,
                shutdown,
            } => {
                tokio::select! {
                    () = tokio::time::sleep(*every) => Some(Ok(tick.clone())),
                    () = shut_down(shutdown) => None,
                }
            }
        };
        match next {
            Some(Ok(chunk)) => Some((Ok(chunk), Some(state))),
            Some(Err(e)) => Some((Err(e), None)),
            None => None,
        }
    });
    Body::from_stream(stream)
}

/// Resolves when the server is shutting down (or its state is gone).
pub(crate) async fn shut_down(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|down| *down).await;
}
