//! R-003 to R-007: the file format, top-level keys and extensions.

use takt_workflow::Position;

use super::{assert_error, load_err, load_ok};

#[test]
fn r003_front_matter_then_body() {
    let workflow =
        load_ok("---\npolling:\n  interval_ms: 5000\n---\nWork on {{ issue.identifier }}.\n");
    assert_eq!(workflow.polling.interval_ms, 5000);
    assert_eq!(workflow.prompt.source(), "Work on {{ issue.identifier }}.");
    assert!(!workflow.prompt.is_default());
}

#[test]
fn r003_no_front_matter_means_whole_file_is_prompt_and_config_is_empty() {
    let text = "Fix {{ issue.title }}\n\ntracker:\n  kind: nope\n";
    let workflow = load_ok(text);
    assert_eq!(workflow.prompt.source(), text.trim());
    assert_eq!(workflow.tracker.kind, "local");
    assert_eq!(workflow.polling.interval_ms, 30_000);
    assert!(workflow.warnings.is_empty());
}

#[test]
fn r003_no_closing_delimiter_means_empty_prompt() {
    let workflow = load_ok("---\ntracker:\n  kind: memory\npolling:\n  interval_ms: 7\n");
    assert_eq!(workflow.tracker.kind, "memory");
    assert_eq!(workflow.polling.interval_ms, 7);
    assert_eq!(workflow.prompt.source(), "");
    assert!(workflow.prompt.is_default());
}

#[test]
fn r003_whitespace_only_front_matter_is_an_empty_map() {
    let workflow = load_ok("---\n   \n\t\n\n---\nBody");
    assert_eq!(workflow.tracker.kind, "local");
    assert_eq!(workflow.prompt.source(), "Body");
    let empty = load_ok("---\n---\nBody");
    assert_eq!(empty.prompt.source(), "Body");
}

#[test]
fn r003_comment_only_front_matter_is_an_empty_map() {
    let workflow = load_ok("---\n# nothing configured yet\n---\nBody");
    assert_eq!(workflow.agent.max_turns, 20);
}

#[test]
fn r003_crlf_newlines() {
    let workflow =
        load_ok("---\r\npolling:\r\n  interval_ms: 1234\r\n---\r\nLine one\r\nLine two\r\n");
    assert_eq!(workflow.polling.interval_ms, 1234);
    assert_eq!(workflow.prompt.source(), "Line one\r\nLine two");
}

#[test]
fn r003_bare_cr_newlines() {
    let workflow = load_ok("---\rpolling:\r  interval_ms: 99\r---\rBody\r");
    assert_eq!(workflow.polling.interval_ms, 99);
    assert_eq!(workflow.prompt.source(), "Body");
}

#[test]
fn r003_delimiter_must_be_the_first_line() {
    let text = "\n---\ntracker:\n  kind: nope\n---\nBody";
    let workflow = load_ok(text);
    assert_eq!(workflow.tracker.kind, "local");
    assert!(workflow.prompt.source().starts_with("---\ntracker:"));
}

#[test]
fn r003_a_later_delimiter_line_belongs_to_the_body() {
    let workflow = load_ok("---\npolling: {interval_ms: 5}\n---\nPart one\n---\nPart two\n");
    assert_eq!(workflow.prompt.source(), "Part one\n---\nPart two");
}

#[test]
fn r004_list_front_matter_is_not_a_map() {
    let err = load_err("---\n- tracker\n- polling\n---\nBody");
    assert_error(
        &err,
        "workflow_front_matter_not_a_map",
        &[
            "/repo/WORKFLOW.md line 2, column 1",
            "is a list",
            "not a mapping",
        ],
    );
    assert_eq!(err.position(), Some(Position::new(2, 1)));
}

#[test]
fn r004_scalar_front_matter_is_not_a_map() {
    assert_error(
        &load_err("---\njust a sentence\n---\nBody"),
        "workflow_front_matter_not_a_map",
        &["is a string", "line 2"],
    );
    assert_error(
        &load_err("---\n42\n---\n"),
        "workflow_front_matter_not_a_map",
        &["is an integer"],
    );
    assert_error(
        &load_err("---\ntrue\n---\n"),
        "workflow_front_matter_not_a_map",
        &["is a boolean"],
    );
}

#[test]
fn r004_yaml_syntax_error_is_workflow_parse_error_with_file_line() {
    let err =
        load_err("---\ntracker:\n  kind: linear\n  active_states: [Todo, In Progress\n---\nBody");
    assert_eq!(err.category(), "workflow_parse_error");
    let message = err.to_string();
    assert!(message.contains("/repo/WORKFLOW.md line 4"), "{message}");
    assert!(message.contains("invalid YAML front matter"), "{message}");
    assert_eq!(err.position().map(|p| p.line), Some(4));
}

#[test]
fn r005_prompt_is_trimmed() {
    let workflow = load_ok("---\n---\n\n\n   Hello {{ issue.identifier }}  \n\n\n");
    assert_eq!(workflow.prompt.source(), "Hello {{ issue.identifier }}");
}

#[test]
fn r005_config_is_not_nested_under_a_config_key() {
    let workflow = load_ok("---\nconfig:\n  polling:\n    interval_ms: 5\n---\n");
    assert_eq!(workflow.polling.interval_ms, 30_000);
    assert_eq!(workflow.warnings.len(), 1);
    assert_eq!(workflow.warnings[0].key, "config");
    assert_eq!(workflow.warnings[0].position, Some(Position::new(2, 1)));
}

#[test]
fn r006_unknown_top_level_keys_are_ignored_with_a_warning() {
    let workflow = load_ok("---\ntrackr:\n  kind: linear\nfuture_feature: 1\n---\n");
    assert_eq!(workflow.tracker.kind, "local");
    let messages: Vec<String> = workflow.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "unknown top-level key `trackr` is ignored in /repo/WORKFLOW.md line 2, column 1; did you mean `tracker`?",
            "unknown top-level key `future_feature` is ignored in /repo/WORKFLOW.md line 4, column 1; unknown top-level keys are ignored for forward compatibility; remove it if it is a typo",
        ]
    );
    assert_eq!(workflow.extensions["future_feature"], 1);
}

#[test]
fn r006_unknown_keys_in_symphony_sections_are_warnings() {
    let workflow = load_ok(
        "---\ncodex:\n  model: gpt-5\n  command: codex app-server\nagent:\n  max_turn: 5\n---\n",
    );
    assert_eq!(
        workflow.agent.max_turns, 20,
        "the misspelled key is ignored"
    );
    let keys: Vec<&str> = workflow.warnings.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, ["codex.model", "agent.max_turn"]);
    assert_eq!(workflow.warnings[0].position, Some(Position::new(3, 3)));
    assert_eq!(
        workflow.warnings[1].to_string(),
        "unknown key `agent.max_turn` is ignored in /repo/WORKFLOW.md line 6, column 3; did you mean `max_turns`?"
    );
}

#[test]
fn r006_a_key_from_another_section_is_suggested_there() {
    let workflow = load_ok("---\nagent:\n  stall_timeout_ms: 10\n---\n");
    assert_eq!(
        workflow.warnings[0].fix,
        "did you mean `codex.stall_timeout_ms`?"
    );
    assert_eq!(workflow.codex.stall_timeout_ms, 300_000);
}

#[test]
fn r007_server_extension_keys() {
    let workflow = load_ok("---\nserver:\n  port: 4000\n  host: 0.0.0.0\n---\n");
    assert_eq!(workflow.server.port, Some(4000));
    assert_eq!(workflow.server.host, "0.0.0.0");
    let defaults = load_ok("");
    assert_eq!(defaults.server.port, None);
    assert_eq!(defaults.server.host, "127.0.0.1");
}

#[test]
fn r007_symphony_extensions_takt_does_not_support_are_warned_and_kept() {
    let workflow = load_ok(
        "---\nworker:\n  ssh_hosts: [a, b]\nobservability:\n  dashboard_enabled: false\n---\n",
    );
    assert_eq!(workflow.warnings.len(), 2);
    assert!(
        workflow.warnings[0]
            .message
            .contains("section `worker` (a Symphony extension) is not supported")
    );
    assert!(workflow.warnings[1].message.contains("`observability`"));
    assert_eq!(workflow.extensions["worker"]["ssh_hosts"][1], "b");
}

#[test]
fn schedules_are_validated_when_the_file_loads() {
    let workflow = load_ok(
        "---\nschedules:\n  - {name: deps, cron: \"0 3 * * 1\", timezone: Europe/Berlin, \
         title: Update dependencies, labels: [deps], priority: 2}\n  - {name: tidy, cron: \"@daily\", title: Tidy}\n---\n",
    );
    assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
    assert_eq!(workflow.schedules.len(), 2);
    assert_eq!(workflow.schedules[0].timezone, "Europe/Berlin");
    assert_eq!(workflow.schedules[0].labels, ["deps"]);
    assert_eq!(workflow.schedules[1].timezone, "UTC");
    assert_error(
        &load_err("---\nschedules:\n  - {name: a, cron: \"61 * * * *\", title: T}\n---\n"),
        "invalid_workflow_config",
        &[
            "`schedules[0].cron` \"61 * * * *\" is not a cron expression",
            "line 3",
        ],
    );
    assert_error(
        &load_err(
            "---\nschedules:\n  - {name: a, cron: \"@daily\", timezone: Mars/Base, title: T}\n---\n",
        ),
        "invalid_workflow_config",
        &["\"Mars/Base\" is not a time zone", "Europe/Berlin"],
    );
    assert_error(
        &load_err("---\nschedules:\n  - {name: a, cron: \"@daily\"}\n---\n"),
        "invalid_workflow_config",
        &["`schedules[0].title` is required"],
    );
    assert_error(
        &load_err(
            "---\nschedules:\n  - {name: a, cron: \"@daily\", title: T}\n  - {name: a, cron: \"@hourly\", title: U}\n---\n",
        ),
        "invalid_workflow_config",
        &["schedule name `a` is used twice"],
    );
    assert_error(
        &load_err("---\nschedules:\n  - {name: a, cron: \"@daily\", title: T, tittle: x}\n---\n"),
        "invalid_workflow_config",
        &["tittle"],
    );
}

#[test]
fn a_schedules_time_zone_is_the_tz_databases_name_spelled_exactly() {
    let workflow = load_ok(
        "---\nschedules:\n  - {name: a, cron: \"@daily\", timezone: Asia/Kolkata, title: T}\n  \
         - {name: b, cron: \"@daily\", timezone: US/Eastern, title: T}\n---\n",
    );
    assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
    assert_eq!(workflow.schedules[1].timezone, "US/Eastern");
    // The daemon looks the name up the same way; one the file accepted must never fail there.
    for zone in ["europe/berlin", "Etc/Unknown", "\"\""] {
        assert_error(
            &load_err(&format!(
                "---\nschedules:\n  - {{name: a, cron: \"@daily\", timezone: {zone}, title: T}}\n---\n"
            )),
            "invalid_workflow_config",
            &["`schedules[0].timezone`"],
        );
    }
}

#[test]
fn gates_review_and_risk_are_sections_now_not_extensions() {
    let workflow = load_ok(
        "---\ngates:\n  - {name: unit, run: cargo test}\nreview: {max_rounds: 5}\nrisk: {default: hard_stop}\n---\n",
    );
    assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
    assert!(workflow.extensions.is_empty());
    assert_eq!(workflow.gates[0].name, "unit");
    assert_eq!(workflow.review.max_rounds, 5);
    assert_eq!(
        workflow.risk.default_tier,
        takt_protocol::RiskTier::HardStop
    );
}
