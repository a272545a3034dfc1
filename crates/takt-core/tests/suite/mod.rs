mod budget;
mod risk;
mod scenarios;
mod schedules;
mod simulation;

/// A tracker issue `T-<n>` (id `id-<n>`) in `state`, with every required field.
pub fn issue(n: u32, state: &str) -> takt_protocol::Issue {
    takt_protocol::Issue {
        id: format!("id-{n}"),
        identifier: format!("T-{n}"),
        title: format!("task {n}"),
        description: None,
        priority: None,
        state: state.into(),
        branch_name: None,
        url: None,
        assignee_id: None,
        labels: vec![],
        blocked_by: vec![],
        dispatchable: true,
        created_at: None,
        updated_at: None,
        native_ref: None,
    }
}
