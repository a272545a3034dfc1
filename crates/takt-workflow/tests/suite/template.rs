//! strict Liquid prompts.

use takt_protocol::RetryKind;
use takt_workflow::{DEFAULT_PROMPT, Position, PromptContext, continuation_prompt};

use super::{assert_error, issue, load_err, load_ok};

fn render(template: &str, ctx: &PromptContext<'_>) -> Result<String, takt_workflow::WorkflowError> {
    load_ok(template).render_prompt(ctx)
}

fn render_first(template: &str) -> Result<String, takt_workflow::WorkflowError> {
    let issue = issue();
    render(template, &PromptContext::first_run(&issue))
}

#[test]
fn r037_unknown_variable_fails_rendering() {
    let err = render_first("Hello {{ nope }}").unwrap_err();
    assert_error(
        &err,
        "template_render_error",
        &[
            "/repo/WORKFLOW.md",
            "for issue ABC-1",
            "Unknown variable",
            "nope",
        ],
    );
}

#[test]
fn r037_unknown_issue_field_fails_rendering() {
    let err = render_first("{{ issue.titel }}").unwrap_err();
    assert_error(
        &err,
        "template_render_error",
        &["titel", "available indexes"],
    );
}

#[test]
fn r037_unknown_variable_in_a_condition_fails_rendering() {
    let err = render_first("{% if atempt %}retry{% endif %}").unwrap_err();
    assert_error(
        &err,
        "template_render_error",
        &[
            "unknown variable `atempt`",
            "issue, attempt, retry_kind, last_error, feedback",
        ],
    );
    let field = render_first("{% unless issue.descripton %}none{% endunless %}").unwrap_err();
    assert_error(
        &field,
        "template_render_error",
        &[
            "unknown variable `issue.descripton`",
            "available in `issue`",
            "description",
        ],
    );
    let nested = render_first("{% if issue.blocked_by.first.status %}x{% endif %}").unwrap_err();
    assert_error(
        &nested,
        "template_render_error",
        &["unknown variable `issue.blocked_by[].status`"],
    );
    let in_loop =
        render_first("{% for b in issue.blocked_by %}{{ b.status }}{% endfor %}").unwrap_err();
    assert_error(&in_loop, "template_render_error", &["status"]);
}

#[test]
fn r037_unknown_filter_fails() {
    let err = load_err("---\ntracker: {kind: memory}\n---\n\nTitle: {{ issue.title | shout }}\n");
    assert_error(
        &err,
        "template_parse_error",
        &[
            "the prompt template in /repo/WORKFLOW.md line 5, column 25",
            "unknown filter `shout`",
            "available filters=",
        ],
    );
    assert_eq!(err.position(), Some(Position::new(5, 25)));
    let typo = load_err("{{ issue.title | upcse }}");
    assert_error(
        &typo,
        "template_parse_error",
        &[
            "unknown filter `upcse`, did you mean `upcase`?",
            "line 1, column 18",
        ],
    );
}

#[test]
fn r037_unknown_tag_fails_with_the_file_line() {
    let err = load_err("---\npolling: {interval_ms: 5}\n---\n\nLine one\n{% frobnicate %}\n");
    assert_eq!(err.category(), "template_parse_error");
    assert_eq!(err.position(), Some(Position::new(6, 4)));
    assert!(
        err.to_string()
            .contains("/repo/WORKFLOW.md line 6, column 4"),
        "{err}"
    );
}

#[test]
fn r037_unclosed_block_fails_at_load() {
    let err = load_err("---\n---\nStart\n{% if issue.description %}\nno end\n");
    assert_eq!(err.category(), "template_parse_error");
}

#[test]
fn r038_every_issue_field_is_available() {
    let template = "id={{ issue.id }} identifier={{ issue.identifier }} title={{ issue.title }} \
        description={{ issue.description }} priority={{ issue.priority }} state={{ issue.state }} \
        branch={{ issue.branch_name }} url={{ issue.url }} assignee=[{{ issue.assignee_id }}] \
        labels={{ issue.labels | join: ',' }} blockers={% for b in issue.blocked_by %}{{ b.identifier }}/{{ b.state }}/{{ b.id }}{% endfor %} \
        dispatchable={{ issue.dispatchable }} created={{ issue.created_at }} updated=[{{ issue.updated_at }}] \
        native={{ issue.native_ref.number }}";
    assert_eq!(
        render_first(template).unwrap(),
        "id=id-1 identifier=ABC-1 title=Fix the flaky test description=The test `foo` fails one run in ten. \
         priority=2 state=Todo branch=abc-1-fix url=https://tracker.example/ABC-1 assignee=[] labels=bug,ci \
         blockers=ABC-0/In Progress/id-0 dispatchable=true created=2026-01-02T03:04:05Z updated=[] native=1"
    );
}

#[test]
fn r038_lists_are_iterable_and_sized() {
    let out = render_first(
        "{% for l in issue.labels %}{{ forloop.index }}:{{ l | upcase }} {% endfor %}n={{ issue.labels.size }} \
         first={{ issue.labels.first }} {% if issue.blocked_by.size > 0 %}blocked by {{ issue.blocked_by | map: 'identifier' | join: ', ' }}{% endif %}",
    )
    .unwrap();
    assert_eq!(out, "1:BUG 2:CI n=2 first=bug blocked by ABC-0");
}

#[test]
fn r038_attempt_is_nil_on_the_first_run_then_an_integer() {
    let template = "{% if attempt %}retry #{{ attempt | plus: 0 }}{% else %}first run{% endif %}";
    let issue = issue();
    assert_eq!(
        render(template, &PromptContext::first_run(&issue)).unwrap(),
        "first run"
    );
    let retry = PromptContext {
        attempt: Some(3),
        ..PromptContext::first_run(&issue)
    };
    assert_eq!(render(template, &retry).unwrap(), "retry #3");
}

#[test]
fn r039_retry_kind_last_error_and_feedback() {
    let template = "[{{ retry_kind }}][{{ last_error }}][{{ feedback }}]{% if feedback %} has feedback{% endif %}";
    let issue = issue();
    assert_eq!(
        render(template, &PromptContext::first_run(&issue)).unwrap(),
        "[][][]"
    );
    let ctx = PromptContext {
        issue: &issue,
        attempt: Some(2),
        retry_kind: Some(RetryKind::Rejection),
        last_error: Some("tests failed"),
        feedback: Some("add a regression test"),
    };
    assert_eq!(
        render(template, &ctx).unwrap(),
        "[rejection][tests failed][add a regression test] has feedback"
    );
}

#[test]
fn assigned_and_loop_variables_are_not_unknown() {
    let out = render_first(
        "{% assign t = issue.title | downcase %}{% if t %}{{ t }}{% endif %}{% capture c %}x{% endcapture %}{% if c %}{{ c }}{% endif %}",
    )
    .unwrap();
    assert_eq!(out, "fix the flaky testx");
}

#[test]
fn r040_empty_body_uses_the_default_prompt() {
    let workflow = load_ok("---\ntracker: {kind: memory}\n---\n   \n");
    assert!(workflow.prompt.is_default());
    assert_eq!(workflow.prompt.source(), "");
    assert_eq!(workflow.prompt.effective_source(), DEFAULT_PROMPT);
    let mut issue = issue();
    let out = workflow
        .render_prompt(&PromptContext::first_run(&issue))
        .unwrap();
    assert!(
        out.starts_with("You are working on an issue from the configured tracker."),
        "{out}"
    );
    assert!(out.contains("Identifier: ABC-1"));
    assert!(out.contains("Title: Fix the flaky test"));
    assert!(out.contains("The test `foo` fails one run in ten."));
    issue.description = None;
    let out = workflow
        .render_prompt(&PromptContext::first_run(&issue))
        .unwrap();
    assert!(out.contains("No description provided."), "{out}");
}

#[test]
fn r040_parse_errors_never_fall_back_to_the_default() {
    let err = load_err("---\n---\n{{ issue.title | nope }}");
    assert_eq!(err.category(), "template_parse_error");
}

#[test]
fn r041_render_failure_is_a_template_error_for_that_attempt() {
    let err = render_first("{{ issue.nope }}").unwrap_err();
    assert!(err.is_template_error());
    assert_eq!(err.category(), "template_render_error");
}

#[test]
fn r042_continuation_guidance_does_not_repeat_the_prompt() {
    let text = continuation_prompt(2, 20);
    assert!(
        text.contains("This is continuation turn #2 of 20"),
        "{text}"
    );
    assert!(text.contains("the issue is still in an active state"));
    assert!(text.contains("do not restate them"));
    assert!(
        text.contains(
            "do not end the turn while the issue stays active unless you are truly blocked"
        )
    );
    assert!(!text.contains("{{"));
}

#[test]
fn rendering_is_verbatim_outside_tags() {
    assert_eq!(
        render_first("Line 1\n\n  {{ issue.identifier }}  \nEnd").unwrap(),
        "Line 1\n\n  ABC-1  \nEnd"
    );
}

#[test]
fn contains_on_an_object_is_a_plain_test() {
    let out = render_first(
        "{% if issue.native_ref contains 'number' %}has{% endif %}{% if issue.native_ref contains 'other' %}no{% endif %}",
    )
    .unwrap();
    assert_eq!(out, "has");
}

#[test]
fn nested_loops_work() {
    let out = render_first(
        "{% for b in issue.blocked_by %}{% for l in issue.labels %}{{ forloop.parentloop.index }}{{ l }} {% endfor %}{% endfor %}",
    )
    .unwrap();
    assert_eq!(out, "1bug 1ci ");
}
