//! `tracker`.

use std::path::Path;

use takt_protocol::normalize_label;

use super::{DEFAULT_ACTIVE_STATES, DEFAULT_TERMINAL_STATES};
use crate::config::TrackerConfig;
use crate::error::WorkflowError;
use crate::raw::Value;
use crate::reader::{Report, Section};
use crate::schema::{self, TRACKER_KINDS};
use crate::suggest::did_you_mean;

pub(super) fn tracker(
    section: &Section<'_>,
    report: &mut Report<'_>,
    path: &Path,
) -> Result<TrackerConfig, WorkflowError> {
    let kind = match section.get("kind") {
        None => "local".to_owned(),
        Some(node) => match &node.value {
            Value::Str(s) => {
                let kind = s.trim().to_lowercase();
                if !TRACKER_KINDS.contains(&kind.as_str()) {
                    return Err(WorkflowError::UnsupportedTrackerKind {
                        path: path.to_path_buf(),
                        position: Some(node.pos),
                        suggestion: did_you_mean(&kind, TRACKER_KINDS).map(str::to_owned),
                        kind: s.clone(),
                    });
                }
                kind
            }
            _ => {
                report.problem(
                    "tracker.kind",
                    Some(node.pos),
                    format!(
                        "`tracker.kind` must be a string, but it is {}",
                        node.describe()
                    ),
                    format!("use one of {}", TRACKER_KINDS.join(", ")),
                );
                "local".to_owned()
            }
        },
    };
    let has_defaults = schema::KINDS_WITH_DEFAULT_STATES.contains(&kind.as_str());
    let (example_active, example_terminal) = match kind.as_str() {
        "github" => ("[open]", "[closed]"),
        "gitlab" => ("[opened]", "[closed]"),
        _ => ("[Todo, In Progress]", "[Done, Cancelled]"),
    };
    let mut states = |key: &str, defaults: &[&str], example: &str| -> Vec<String> {
        match report.string_list(section, key) {
            Some(states) => {
                for (index, state) in states.iter().enumerate() {
                    if state.trim().is_empty() {
                        report.problem(
                            format!("tracker.{key}[{index}]"),
                            section.get(key).map(|n| n.pos),
                            format!("item {index} of `tracker.{key}` is blank"),
                            "remove the blank entry",
                        );
                    }
                }
                states
            }
            None if has_defaults || section.get(key).is_some() => {
                defaults.iter().map(|s| (*s).to_owned()).collect()
            }
            None => {
                report.problem(
                    format!("tracker.{key}"),
                    section.position,
                    format!("`tracker.{key}` is required for tracker kind `{kind}`"),
                    format!("add it under `tracker:`, for example `{key}: {example}`"),
                );
                Vec::new()
            }
        }
    };
    let (default_active, default_terminal): (&[&str], &[&str]) = match kind.as_str() {
        "github" => (&["open"], &["closed"]),
        "gitlab" => (&["opened"], &["closed"]),
        _ => (DEFAULT_ACTIVE_STATES, DEFAULT_TERMINAL_STATES),
    };
    let active_states = states("active_states", default_active, example_active);
    let terminal_states = states("terminal_states", default_terminal, example_terminal);

    let mut required_labels: Vec<String> = Vec::new();
    for label in report
        .string_list(section, "required_labels")
        .unwrap_or_default()
    {
        let label = normalize_label(&label);
        if label.is_empty() {
            report.warn(
                "tracker.required_labels",
                section.get("required_labels").map(|n| n.pos),
                "`tracker.required_labels` contains a blank label, which no issue can carry, so \
                 nothing will be dispatched",
                "remove the blank entry",
            );
        }
        if !required_labels.contains(&label) {
            required_labels.push(label);
        }
    }

    let mut provider = report.json_map(section, "provider").unwrap_or_default();
    for key in schema::LEGACY_PROVIDER_KEYS {
        if let Some(node) = section.get(key) {
            provider
                .entry((*key).to_owned())
                .or_insert_with(|| node.to_json());
        }
    }
    let mut transition = |key: &str| {
        report
            .string(section, key)
            .map(|state| state.trim().to_owned())
            .filter(|state| !state.is_empty())
    };
    let transitions = crate::config::TrackerTransitions {
        on_start: transition("on_start"),
        on_review: transition("on_review"),
        on_done: transition("on_done"),
        on_failed: transition("on_failed"),
        on_cancel: transition("on_cancel"),
    };
    let answer_mention = report
        .string(section, "answer_mention")
        .map(|mention| mention.trim().to_owned())
        .filter(|mention| !mention.is_empty())
        .unwrap_or_else(|| "@takt".to_owned());
    section.check_unknown(report);
    Ok(TrackerConfig {
        kind,
        active_states,
        terminal_states,
        required_labels,
        provider,
        transitions,
        answer_mention,
    })
}
