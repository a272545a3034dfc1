//! The engine: the core's state plus the journal that makes it durable. Every decision goes
//! through [`Engine::step`], which journals the records before anyone acts on the commands.

use anyhow::{Context, Result};
use takt_core::{Event, Policy, Record, State, Step, apply, handle};
use takt_store::{NewEntry, Store};

use crate::clock::now_ms;

pub struct Engine {
    pub store: Store,
    pub state: State,
    pub policy: Policy,
    /// Every journaled entry, in order, once its transaction committed (the API's live event
    /// stream; nobody listening costs nothing).
    pub journaled: tokio::sync::broadcast::Sender<takt_protocol::JournalEntry>,
}

impl Engine {
    /// Rebuilds the state from the journal.
    pub async fn load(store: Store, policy: Policy) -> Result<Engine> {
        let state = load_state(&store).await?;
        let (journaled, _) = tokio::sync::broadcast::channel(1024);
        Ok(Engine {
            store,
            state,
            policy,
            journaled,
        })
    }

    /// Decides what `event` means and journals the decision. A journal that cannot be written
    /// is fatal: the in-memory state would run ahead of what a restart can rebuild.
    pub async fn step(&mut self, event: Event) -> Result<Step> {
        let mut steps = self.step_all(vec![event]).await?;
        Ok(steps.pop().unwrap_or_default())
    }

    /// Decides a batch of events in order and journals all their records in one transaction
    /// (one fsync for a burst of agent events instead of one each). Nothing of any step is
    /// acted on before the whole batch is journaled.
    pub async fn step_all(&mut self, events: Vec<Event>) -> Result<Vec<Step>> {
        let now = now_ms();
        let mut entries = Vec::new();
        let mut steps = Vec::with_capacity(events.len());
        for event in events {
            let step = handle(&mut self.state, &self.policy, event, now);
            for record in step.records.iter().filter(|record| record.is_durable()) {
                let payload = serde_json::to_value(record).context("encoding a journal record")?;
                entries.push(NewEntry {
                    at_ms: now,
                    kind: record.kind(),
                    task_id: record.task_id().map(String::from),
                    payload,
                });
            }
            steps.push(step);
        }
        let written = self
            .store
            .append(entries)
            .await
            .context("writing the journal (the daemon stops rather than act unjournaled)")?;
        for entry in written {
            let _ = self.journaled.send(entry);
        }
        Ok(steps)
    }
}

/// Replays the whole journal into a fresh state (also used by read-only commands).
pub async fn load_state(store: &Store) -> Result<State> {
    let mut state = State::default();
    let mut after = 0;
    loop {
        let page = store.read_journal(after, 1_000).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.seq;
        for entry in &page {
            let record: Record =
                serde_json::from_value(entry.payload.clone()).with_context(|| {
                    format!(
                        "journal entry {} ({}) cannot be read by this version of takt",
                        entry.seq, entry.kind
                    )
                })?;
            apply(&mut state, &record, entry.at_ms);
        }
    }
    Ok(state)
}
