//! The board (`GET /`): tasks in columns by state, with counts and filters. `GET /ui/board`
//! is the same board without the page around it, which the page's script swaps in when the
//! journal reports a change.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use takt_core::Task;
use takt_protocol::TaskState;

use super::html::{attr, dollars, human, task_href, text, truncate};
use super::layout::{self, Section, Viewer, state_badge};
use super::{LIVE_KINDS, html};
use crate::app::App;
use crate::routes::tasks::natural_key;

/// The board's columns: an id, a heading, and the states whose tasks it holds. Seven columns
/// fit a 1366 px wide screen; each card still names its exact state.
const COLUMNS: &[(&str, &str, &[TaskState])] = &[
    (
        "queued",
        "Queued",
        &[TaskState::Queued, TaskState::RetryWait],
    ),
    ("running", "Running", &[TaskState::Running]),
    ("verifying", "Verifying", &[TaskState::Verifying]),
    (
        "review",
        "Needs a person",
        &[
            TaskState::AwaitingReview,
            TaskState::Blocked,
            TaskState::Rejected,
        ],
    ),
    ("merging", "Merging", &[TaskState::Merging]),
    ("done", "Done", &[TaskState::Done]),
    (
        "stopped",
        "Failed or cancelled",
        &[TaskState::Failed, TaskState::Cancelled],
    ),
];

/// What the board shows: the `state` and `q` query parameters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Only these states (empty: all).
    pub states: Vec<TaskState>,
    /// Only tasks whose identifier, title or labels contain this (case-insensitive).
    pub query: String,
}

impl Filter {
    /// Reads `?state=a&state=b,c&q=text`; unknown states are ignored (a filter is a view).
    pub fn parse(query: &str) -> Filter {
        let mut filter = Filter::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "state" => filter.states.extend(value.split(',').filter_map(|name| {
                    TaskState::ALL
                        .into_iter()
                        .find(|state| state.as_str().eq_ignore_ascii_case(name.trim()))
                })),
                "q" => value.trim().clone_into(&mut filter.query),
                _ => {}
            }
        }
        filter
    }

    fn keeps(&self, task: &Task) -> bool {
        let state_ok = self.states.is_empty() || self.states.contains(&task.state);
        let needle = self.query.to_lowercase();
        let text_ok = needle.is_empty()
            || task.issue.identifier.to_lowercase().contains(&needle)
            || task.issue.title.to_lowercase().contains(&needle)
            || task
                .issue
                .labels
                .iter()
                .any(|label| label.to_lowercase().contains(&needle));
        state_ok && text_ok
    }

    /// The filter as a query string (with a leading `?`, or empty).
    fn query_string(&self) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for state in &self.states {
            serializer.append_pair("state", state.as_str());
        }
        if !self.query.is_empty() {
            serializer.append_pair("q", &self.query);
        }
        let query = serializer.finish();
        if query.is_empty() {
            query
        } else {
            format!("?{query}")
        }
    }
}

/// `GET /`.
pub async fn page(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let viewer = Viewer::of(&app, &headers);
    let filter = Filter::parse(query.as_deref().unwrap_or(""));
    let board = match app.snapshot() {
        Ok(snapshot) => board(&snapshot.state.tasks, &filter),
        Err(error) => return layout::error_page(&error, &viewer, None),
    };
    let main = format!(
        r#"<h1>Board</h1>
{filters}
<div data-events="/api/v1/events" data-kinds="{kinds}" hidden></div>
{board}"#,
        filters = filter_form(&filter),
        kinds = attr(&LIVE_KINDS.join(" ")),
    );
    layout::html_response(
        StatusCode::OK,
        layout::page("Board", Section::Board, &viewer, &main),
    )
}

/// `GET /ui/board`: the board alone.
pub async fn fragment(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let filter = Filter::parse(query.as_deref().unwrap_or(""));
    match app.snapshot() {
        Ok(snapshot) => {
            layout::html_response(StatusCode::OK, board(&snapshot.state.tasks, &filter))
        }
        Err(error) => layout::html_response(
            error.status,
            format!(r#"<p class="error">{}</p>"#, text(&error.message)),
        ),
    }
}

fn filter_form(filter: &Filter) -> String {
    let selected = filter.states.first().copied();
    let mut options = String::from(r#"<option value="">All states</option>"#);
    for state in TaskState::ALL {
        let chosen = if selected == Some(state) {
            " selected"
        } else {
            ""
        };
        options.push_str(&format!(
            r#"<option value="{}"{chosen}>{}</option>"#,
            state.as_str(),
            human(state.as_str())
        ));
    }
    format!(
        r##"<form class="filters" method="get" action="/" role="search" aria-label="Filter tasks" hx-get="/" hx-target="#board" hx-select="#board" hx-swap="outerHTML" hx-push-url="true">
<label>State <select name="state">{options}</select></label>
<label>Text <input type="search" name="q" value="{query}" placeholder="identifier, title, label"></label>
<button type="submit">Filter</button> <a href="/">Clear</a>
</form>"##,
        query = attr(&filter.query),
    )
}

/// The board: counts, then the columns.
fn board(tasks: &std::collections::BTreeMap<String, Task>, filter: &Filter) -> String {
    let mut shown: Vec<&Task> = tasks.values().filter(|task| filter.keeps(task)).collect();
    shown.sort_by_cached_key(|task| natural_key(&task.issue.identifier));

    let mut counts = String::new();
    for state in TaskState::ALL {
        let count = tasks.values().filter(|task| task.state == state).count();
        if count > 0 {
            counts.push_str(&format!(
                r#"<li><a href="/?state={state}" data-count-state="{state}">{label} <strong>{count}</strong></a></li>"#,
                state = state.as_str(),
                label = human(state.as_str()),
            ));
        }
    }
    if counts.is_empty() {
        counts.push_str("<li>No tasks yet.</li>");
    }

    let mut columns = String::new();
    for (id, heading, states) in COLUMNS {
        let cards: Vec<&&Task> = shown
            .iter()
            .filter(|task| states.contains(&task.state))
            .collect();
        let mut items = String::new();
        for task in &cards {
            items.push_str(&card(task));
        }
        if cards.is_empty() {
            items.push_str(r#"<li class="empty">None</li>"#);
        }
        columns.push_str(&format!(
            r#"<section class="column" data-column="{id}" aria-labelledby="column-{id}">
<h2 id="column-{id}">{heading} <span class="count">{count}</span></h2>
<ol class="cards">{items}</ol>
</section>
"#,
            count = cards.len(),
        ));
    }
    format!(
        r#"<div id="board" data-refresh-url="/ui/board{query}">
<ul class="counts" aria-label="Tasks by state">{counts}</ul>
<div class="columns">
{columns}</div>
</div>"#,
        query = attr(&filter.query_string()),
    )
}

fn card(task: &Task) -> String {
    let identifier = &task.issue.identifier;
    let mut details = Vec::new();
    if let Some(message) = task.run.as_ref().and_then(|run| run.last_message.as_ref()) {
        details.push(format!(
            r#"<p class="last">{}</p>"#,
            text(&truncate(&html::sanitize(message), 120))
        ));
    }
    if let Some(question) = task
        .question
        .as_deref()
        .filter(|_| task.state == TaskState::Blocked)
    {
        details.push(format!(
            r#"<p class="question">Asks: {}</p>"#,
            text(&truncate(question, 160))
        ));
    }
    let spend = if task.spend_micros > 0 {
        format!(" · {}", dollars(task.spend_micros))
    } else {
        String::new()
    };
    format!(
        r#"<li class="card" data-task="{id_attr}" data-state="{state}">
<a href="{href}"><span class="ident">{id}</span> {title}</a>
<p class="meta">{badge} attempt {attempt}{spend}</p>{details}
</li>"#,
        id_attr = attr(identifier),
        state = task.state.as_str(),
        href = attr(&task_href(identifier)),
        id = text(identifier),
        title = text(&task.issue.title),
        badge = state_badge(task.state.as_str()),
        attempt = task.attempt,
        details = details.join(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_reads_states_and_text_and_writes_them_back() {
        let filter = Filter::parse("state=running,done&state=bogus&q=+Fix+&page=2");
        assert_eq!(filter.states, [TaskState::Running, TaskState::Done]);
        assert_eq!(filter.query, "Fix");
        assert_eq!(filter.query_string(), "?state=running&state=done&q=Fix");
        assert_eq!(Filter::default().query_string(), "");
    }

    #[test]
    fn every_state_has_a_column() {
        for state in TaskState::ALL {
            let columns = COLUMNS
                .iter()
                .filter(|(_, _, states)| states.contains(&state));
            assert_eq!(columns.count(), 1, "{state}");
        }
    }
}
