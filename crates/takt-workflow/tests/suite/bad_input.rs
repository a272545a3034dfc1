//! Bad input: malformed YAML, wrong shapes, unknown keys, bombs, bad bytes.

use takt_workflow::{Position, load};

use super::{assert_error, env, load_err, load_ok};

#[test]
fn malformed_yaml_unclosed_flow_sequence() {
    let err = load_err("---\ntracker:\n  active_states: [Todo\nagent: {}\n---\n");
    assert_eq!(err.category(), "workflow_parse_error");
    assert!(
        err.to_string().starts_with("invalid YAML front matter: "),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("fix the YAML between the `---` lines"),
        "{err}"
    );
}

#[test]
fn malformed_yaml_bad_indentation_has_the_file_line() {
    let err = load_err("---\npolling:\n  interval_ms: 5\n   extra: 1\n---\n");
    assert_eq!(err.category(), "workflow_parse_error");
    assert_eq!(err.position().map(|p| p.line), Some(4));
    assert!(
        err.to_string().contains("/repo/WORKFLOW.md line 4"),
        "{err}"
    );
}

#[test]
fn tabs_are_not_indentation() {
    let err = load_err("---\npolling:\n\tinterval_ms: 5\n---\n");
    assert_eq!(err.category(), "workflow_parse_error");
}

#[test]
fn duplicate_keys_are_parse_errors() {
    let err = load_err("---\nagent:\n  max_turns: 5\n  max_turns: 6\n---\n");
    assert_error(
        &err,
        "workflow_parse_error",
        &[
            "duplicate mapping key: max_turns",
            "/repo/WORKFLOW.md line 4, column 3",
            "remove or rename one of the duplicate keys",
        ],
    );
    assert!(!err.to_string().contains("DuplicateKeyPolicy"), "{err}");
}

#[test]
fn unknown_key_in_publish_is_an_error_with_a_suggestion() {
    let err = load_err(
        "---\ntracker:\n  kind: local\npublish:\n  forge: local\n  auto_merg: true\n---\n",
    );
    assert_eq!(err.category(), "invalid_workflow_config");
    assert_eq!(
        err.to_string(),
        "unknown key `publish.auto_merg` in /repo/WORKFLOW.md line 6, column 3; did you mean `auto_merge`?"
    );
    assert_eq!(err.problems()[0].key, "publish.auto_merg");
}

#[test]
fn unknown_key_in_command_is_an_error() {
    let err = load_err(
        "---\nagent: {backend: command}\ncommand:\n  run: ./x.sh\n  rn: ./y.sh\n  timeout: 5\n---\n",
    );
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "2 problems",
            "line 5, column 3: unknown key `command.rn`; did you mean `run`?",
            "line 6, column 3: unknown key `command.timeout`; the keys of `command` are: run",
        ],
    );
}

#[test]
fn unknown_keys_in_symphony_sections_are_warnings_with_positions() {
    let w = load_ok(
        "---\ntracker:\n  kind: memory\n  actve_states: [Todo]\nhooks:\n  after_craete: echo\n---\n",
    );
    let found: Vec<(String, Option<Position>, String)> = w
        .warnings
        .iter()
        .map(|w| (w.key.clone(), w.position, w.fix.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "tracker.actve_states".to_owned(),
                Some(Position::new(4, 3)),
                "did you mean `active_states`?".to_owned()
            ),
            (
                "hooks.after_craete".to_owned(),
                Some(Position::new(6, 3)),
                "did you mean `after_create`?".to_owned()
            ),
        ]
    );
}

#[test]
fn non_map_front_matter_variants() {
    for (text, found) in [
        ("---\n- a\n- b\n---\n", "is a list"),
        ("---\nhello\n---\n", "is a string"),
        ("---\n3.5\n---\n", "is a number"),
        ("---\n[a, b]\n---\n", "is a list"),
    ] {
        assert_error(
            &load_err(text),
            "workflow_front_matter_not_a_map",
            &[found, "line 2"],
        );
    }
}

#[test]
fn wrong_types_name_the_key_and_expected_type() {
    let cases = [
        (
            "agent:\n  max_turns: \"x\"",
            "`agent.max_turns` must be a positive integer, but it is the string \"x\"",
        ),
        (
            "agent:\n  max_turns: 1.5",
            "`agent.max_turns` must be a positive integer, but it is the number 1.5",
        ),
        (
            "agent:\n  max_turns: [1]",
            "`agent.max_turns` must be a positive integer, but it is a list",
        ),
        (
            "polling:\n  interval_ms: {a: 1}",
            "`polling.interval_ms` must be a positive integer, but it is a mapping",
        ),
        (
            "server:\n  host: 8080",
            "`server.host` must be a string, but it is the integer 8080",
        ),
        (
            "tracker:\n  required_labels: bug",
            "`tracker.required_labels` must be a list of strings",
        ),
        (
            "workspace:\n  root: [a]",
            "`workspace.root` must be a string, but it is a list",
        ),
        (
            "publish:\n  auto_merge: 1",
            "`publish.auto_merge` must be `true` or `false`, but it is the integer 1",
        ),
        (
            "hooks:\n  after_run: true",
            "`hooks.after_run` must be a shell script (a string), but it is the boolean `true`",
        ),
    ];
    for (yaml, expected) in cases {
        let err = load_err(&format!("---\n{yaml}\n---\n"));
        assert_error(
            &err,
            "invalid_workflow_config",
            &[expected, "/repo/WORKFLOW.md line 3"],
        );
    }
}

#[test]
fn billion_laughs_is_rejected() {
    let mut yaml = String::from(
        "---\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(",");
        yaml.push_str(&format!("{0}: &{0} [{refs}]\n", pair[1]));
    }
    yaml.push_str("---\nBody\n");
    let err = load_err(&yaml);
    assert_error(
        &err,
        "workflow_parse_error",
        &[
            "exceeds the parser's limits",
            "budget",
            "/repo/WORKFLOW.md line",
            "alias bomb",
        ],
    );
}

#[test]
fn deep_nesting_is_rejected() {
    let yaml = format!("---\na: {}{}\n---\n", "[".repeat(5000), "]".repeat(5000));
    assert_eq!(load_err(&yaml).category(), "workflow_parse_error");
}

#[test]
fn invalid_utf8_is_a_parse_error_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("WORKFLOW.md");
    let mut bytes = b"---\npolling:\n  interval_ms: 5\n---\nHello ".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    fs_err::write(&path, bytes).unwrap();
    let err = load(&path, &env()).unwrap_err();
    assert_error(
        &err,
        "workflow_parse_error",
        &[
            "not valid UTF-8",
            "line 5, column 7",
            "save WORKFLOW.md as UTF-8",
        ],
    );
}

#[test]
fn an_oversized_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("WORKFLOW.md");
    fs_err::write(&path, "x".repeat(16 * 1024 * 1024 + 10)).unwrap();
    let err = load(&path, &env()).unwrap_err();
    assert_error(
        &err,
        "workflow_parse_error",
        &["more than the 16777216 bytes allowed"],
    );
}

#[test]
fn template_syntax_errors() {
    let err = load_err("---\ntracker: {kind: memory}\n---\nHello {{ issue.title \n");
    assert_eq!(err.category(), "template_parse_error");
    assert!(err.to_string().contains("/repo/WORKFLOW.md"), "{err}");
    let err = load_err("---\n---\n{% for x in %}{% endfor %}");
    assert_eq!(err.category(), "template_parse_error");
}

#[test]
fn a_nul_byte_in_the_body_is_just_text() {
    let w = load_ok("---\n---\nHello\u{0}World");
    assert_eq!(w.prompt.source(), "Hello\u{0}World");
}

#[test]
fn a_second_yaml_document_is_rejected() {
    let err = load_err("---\na: 1\n...\nb: 2\n---\n");
    assert_eq!(err.category(), "workflow_parse_error");
}
