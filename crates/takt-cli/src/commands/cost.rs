//! `takt cost`: model spend from the journal's metered calls, grouped by task, UTC day or model.
//! The figures are the provider's own usage, priced by the gateway's table at call time.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use takt_protocol::ModelCallReport;

use super::output::{self, print_table};
use crate::args::CostGrouping;
use crate::engine::load_state;
use crate::exit::Code;
use crate::project::Project;

#[derive(Debug, Default, Serialize)]
struct Row {
    key: String,
    calls: u64,
    refused: u64,
    input_tokens: u64,
    cached_input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    cost_micros: u64,
    /// Calls whose model has no price (not counted in `cost_micros`).
    unpriced_calls: u64,
    /// Calls metered by estimate (the provider reported no usage).
    estimated_calls: u64,
}

const PAGE: u32 = 1000;

pub async fn run(workflow: Option<&Path>, by: CostGrouping, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let store = project.store().await?;
    let state = load_state(&store).await?;
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.read_journal(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in page.iter().filter(|e| e.kind == "model_call_metered") {
            let Some(call) = entry
                .payload
                .get("call")
                .and_then(|call| serde_json::from_value::<ModelCallReport>(call.clone()).ok())
            else {
                continue;
            };
            let key = match by {
                CostGrouping::Task => entry
                    .task_id
                    .as_ref()
                    .map(|id| {
                        state
                            .tasks
                            .get(id)
                            .map_or_else(|| id.clone(), |task| task.issue.identifier.clone())
                    })
                    .unwrap_or_else(|| "(no task)".into()),
                CostGrouping::Day => chrono::DateTime::from_timestamp_millis(entry.at_ms)
                    .map(|at| at.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                CostGrouping::Model => call.model.clone().unwrap_or_else(|| "(unknown)".into()),
            };
            let row = rows.entry(key.clone()).or_insert_with(|| Row {
                key,
                ..Row::default()
            });
            row.calls += 1;
            row.refused += u64::from(call.refused.is_some());
            row.input_tokens += call.input_tokens;
            row.cached_input_tokens += call.cached_input_tokens;
            row.output_tokens += call.output_tokens;
            row.total_tokens += call.input_tokens + call.output_tokens;
            match call.cost_micros {
                Some(micros) => row.cost_micros += micros,
                None if call.refused.is_none() => row.unpriced_calls += 1,
                None => {}
            }
            row.estimated_calls += u64::from(call.estimated);
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    let rows: Vec<Row> = rows.into_values().collect();
    if json {
        output::json(&rows)?;
        return Ok(Code::Success);
    }
    let usd = takt_core::budget::usd;
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut notes = Vec::new();
            if row.unpriced_calls > 0 {
                notes.push(format!("{} unpriced", row.unpriced_calls));
            }
            if row.estimated_calls > 0 {
                notes.push(format!("{} estimated", row.estimated_calls));
            }
            if row.refused > 0 {
                notes.push(format!("{} refused", row.refused));
            }
            vec![
                row.key.clone(),
                row.calls.to_string(),
                row.input_tokens.to_string(),
                row.output_tokens.to_string(),
                row.total_tokens.to_string(),
                usd(row.cost_micros),
                notes.join(", "),
            ]
        })
        .collect();
    let heading = match by {
        CostGrouping::Task => "TASK",
        CostGrouping::Day => "DAY (UTC)",
        CostGrouping::Model => "MODEL",
    };
    print_table(
        &[
            heading, "CALLS", "INPUT", "OUTPUT", "TOTAL", "COST", "NOTES",
        ],
        &table,
    );
    let total: u64 = rows.iter().map(|row| row.cost_micros).sum();
    let tokens: u64 = rows.iter().map(|row| row.total_tokens).sum();
    super::output::outln!("total: {tokens} tokens, {}", usd(total));
    Ok(Code::Success)
}
