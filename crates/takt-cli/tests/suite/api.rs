//! The HTTP API served by `takt run --port`: the daemon's real state, commands applied by the
//! daemon loop and journaled, the event stream, metrics, and the refusal to listen beyond
//! loopback without a token.

use std::time::Duration;

use serde_json::Value;
use takt_test_support::{WorkflowFile, python, run_command, wait_until};

use super::Factory;

/// `METHOD url [json body]` through Python's urllib; returns `(status, body)`.
fn http(method: &str, url: &str, body: Option<&str>, token: Option<&str>) -> (u16, String) {
    let out = python(
        "import sys, urllib.request, urllib.error\n\
         method, url, body, token = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]\n\
         req = urllib.request.Request(url, method=method, data=body.encode() if body else None)\n\
         if body: req.add_header('Content-Type', 'application/json')\n\
         if token: req.add_header('Authorization', 'Bearer ' + token)\n\
         req.add_header('X-Takt-Operator', 'carol')\n\
         try:\n\
         \x20   r = urllib.request.urlopen(req, timeout=20)\n\
         \x20   print(r.status); print(r.read().decode())\n\
         except urllib.error.HTTPError as e:\n\
         \x20   print(e.code); print(e.read().decode())\n",
        &[method, url, body.unwrap_or(""), token.unwrap_or("")],
    );
    let (status, rest) = out.split_once('\n').unwrap_or((&out, ""));
    (status.trim().parse().unwrap_or(0), rest.trim().to_owned())
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[test]
fn the_daemon_serves_its_state_and_takes_commands_over_http() {
    let f = Factory::new("api", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.extra = "server:\n  token: $TAKT_E2E_API_TOKEN\nschedules:\n  - name: new-year\n    \
                    cron: \"0 0 1 1 *\"\n    title: Happy new year\n"
            .into();
        wf
    });
    let log = f.repo.root().join("daemon.log");
    let mut command = f.takt.command(&["run", "--port", "0"]);
    command.env("TAKT_E2E_API_TOKEN", "t0ken");
    let out = std::fs::File::create(&log).unwrap();
    command.stdout(out.try_clone().unwrap()).stderr(out);
    let mut child = command.spawn().unwrap();
    let addr_file = f.takt.state_dir().join("api.addr");
    wait_until(
        "the API address file",
        Duration::from_secs(30),
        || addr_file.exists(),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    let base = format!(
        "http://{}",
        std::fs::read_to_string(&addr_file).unwrap().trim()
    );

    let (status, body) = http("GET", &format!("{base}/api/v1/state"), None, None);
    assert_eq!(status, 200, "{body}");
    let state = json(&body);
    assert!(state["counts"]["running"].is_u64(), "{state:#}");

    // Creating a task needs the token.
    let new = r#"{"title": "Via the API", "body": "from HTTP"}"#;
    let (status, _) = http("POST", &format!("{base}/api/v1/tasks"), Some(new), None);
    assert_eq!(status, 401);
    let (status, body) = http(
        "POST",
        &format!("{base}/api/v1/tasks"),
        Some(new),
        Some("t0ken"),
    );
    assert_eq!(status, 201, "{body}");
    let identifier = json(&body)["identifier"].as_str().unwrap().to_owned();
    assert_eq!(json(&body)["native_ref"]["author"], "carol");

    wait_until(
        "the API-created task to reach review",
        Duration::from_secs(60),
        || {
            let (_, body) = http(
                "GET",
                &format!("{base}/api/v1/tasks/{identifier}"),
                None,
                None,
            );
            body.contains("\"awaiting_review\"")
        },
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    // The terminal dashboard's remote attach reads the same picture over HTTP.
    let out = run_command(f.takt.command(&["status", "--remote", &base, "--json"]));
    assert_eq!(out.code, Some(0), "{out}");
    let dashboard = json(&out.stdout);
    assert_eq!(dashboard["source"], base.as_str(), "{dashboard:#}");
    assert_eq!(dashboard["daemon"]["status"], "running", "{dashboard:#}");
    let task = dashboard["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|task| task["identifier"] == identifier.as_str())
        .unwrap_or_else(|| panic!("{dashboard:#}"));
    assert_eq!(task["state"], "awaiting_review", "{dashboard:#}");
    assert!(dashboard["totals"]["runs_finished"].as_u64().unwrap() >= 1);
    assert_eq!(
        dashboard["schedules"][0]["name"], "new-year",
        "{dashboard:#}"
    );
    assert!(
        dashboard["schedules"][0]["next_due_ms"].is_i64(),
        "{dashboard:#}"
    );
    let out = run_command(
        f.takt
            .command(&["status", "--remote", "127.0.0.1:1", "--json"]),
    );
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("not an HTTP address"), "{out}");

    let (status, body) = http(
        "POST",
        &format!("{base}/api/v1/tasks/{identifier}/approve"),
        Some(r#"{"comment": "ship it"}"#),
        Some("t0ken"),
    );
    assert_eq!(status, 200, "{body}");
    wait_until(
        "the approved task to be merged",
        Duration::from_secs(60),
        || f.takt.state_of(&identifier) == "done",
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    // A command the core refuses comes back with its reason.
    let (status, body) = http(
        "POST",
        &format!("{base}/api/v1/tasks/{identifier}/approve"),
        Some("{}"),
        Some("t0ken"),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("not awaiting_review"), "{body}");

    // The journal is readable as a stream, from the start.
    let events = python(
        "import sys, urllib.request\n\
         req = urllib.request.Request(sys.argv[1] + '/api/v1/events', headers={'Last-Event-ID': '0'})\n\
         r = urllib.request.urlopen(req, timeout=20)\n\
         seen = []\n\
         for raw in r:\n\
         \x20   line = raw.decode().strip()\n\
         \x20   if line.startswith('event:'): seen.append(line[6:].strip())\n\
         \x20   if 'merged' in seen: break\n\
         print(' '.join(seen))\n",
        &[&base],
    );
    assert!(
        events.contains("task_queued") && events.contains("approved"),
        "{events}"
    );

    let (status, metrics) = http("GET", &format!("{base}/metrics"), None, None);
    assert_eq!(status, 200);
    assert!(
        metrics.contains("takt_tasks{state=\"done\"} 1"),
        "{metrics}"
    );

    takt_test_support::signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        !addr_file.exists(),
        "the address file is removed at shutdown"
    );
}

#[test]
fn the_api_refuses_to_listen_beyond_loopback_without_a_token() {
    let f = Factory::new("api-bind", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.extra = "server:\n  host: 0.0.0.0\n".into();
        wf
    });
    let out = run_command(f.takt.command(&["run", "--once", "--port", "0"]));
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("0.0.0.0"), "{out}");
    assert!(out.stderr.to_lowercase().contains("token"), "{out}");
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`), as GitHub signs deliveries.
fn github_signature(secret: &str, body: &str) -> String {
    python(
        "import hmac, hashlib, sys\n\
         print('sha256=' + hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).hexdigest())\n",
        &[secret, body],
    )
    .trim()
    .to_owned()
}

/// POST with extra headers through urllib; returns `(status, body)`.
fn post(url: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut args = vec![url, body];
    for (name, value) in headers {
        args.push(name);
        args.push(value);
    }
    let out = python(
        "import sys, urllib.request, urllib.error\n\
         url, body, rest = sys.argv[1], sys.argv[2], sys.argv[3:]\n\
         req = urllib.request.Request(url, method='POST', data=body.encode())\n\
         req.add_header('Content-Type', 'application/json')\n\
         for i in range(0, len(rest), 2): req.add_header(rest[i], rest[i + 1])\n\
         try:\n\
         \x20   r = urllib.request.urlopen(req, timeout=20)\n\
         \x20   print(r.status); print(r.read().decode())\n\
         except urllib.error.HTTPError as e:\n\
         \x20   print(e.code); print(e.read().decode())\n",
        &args,
    );
    let (status, rest) = out.split_once('\n').unwrap_or((&out, ""));
    (status.trim().parse().unwrap_or(0), rest.trim().to_owned())
}

#[test]
fn webhooks_create_one_task_per_delivery_and_refusals_are_journaled() {
    let f = Factory::new("hooks", |f| {
        let mut wf = WorkflowFile::new(f.recording_agent());
        wf.extra = "server:\n  github_webhook_secret: $TAKT_E2E_GH_SECRET\n  gitlab_webhook_secret: $TAKT_E2E_GL_SECRET\n  webhook_token: $TAKT_E2E_HOOK_TOKEN\n"
            .into();
        wf
    });
    let log = f.repo.root().join("daemon.log");
    let mut command = f.takt.command(&["run", "--port", "0"]);
    command
        .env("TAKT_E2E_GH_SECRET", "gh-secret")
        .env("TAKT_E2E_GL_SECRET", "gl-secret")
        .env("TAKT_E2E_HOOK_TOKEN", "hook-token");
    let out = std::fs::File::create(&log).unwrap();
    command.stdout(out.try_clone().unwrap()).stderr(out);
    let mut child = command.spawn().unwrap();
    let addr_file = f.takt.state_dir().join("api.addr");
    wait_until(
        "the API address file",
        Duration::from_secs(30),
        || addr_file.exists(),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    let base = format!(
        "http://{}",
        std::fs::read_to_string(&addr_file).unwrap().trim()
    );

    // The generic hook creates exactly one task per delivery id.
    let task = r#"{"title": "From a webhook", "body": "posted by CI"}"#;
    let generic = format!("{base}/hooks/generic");
    let auth = [
        ("Authorization", "Bearer hook-token"),
        ("X-Delivery-Id", "d-1"),
    ];
    let (status, body) = post(&generic, task, &auth);
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(&generic, task, &auth);
    assert_eq!(status, 409, "a replay: {body}");
    let (status, _) = post(
        &generic,
        task,
        &[("Authorization", "Bearer nope"), ("X-Delivery-Id", "d-2")],
    );
    assert_eq!(status, 401);
    let titled: Vec<Value> = f
        .takt
        .tasks()
        .into_iter()
        .filter(|task| task["title"] == "From a webhook")
        .collect();
    assert_eq!(titled.len(), 1, "{titled:#?}");
    wait_until(
        "the webhook's task to reach review",
        Duration::from_secs(60),
        || f.takt.state_of(titled[0]["identifier"].as_str().unwrap()) == "awaiting_review",
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );

    // GitHub: a signed delivery is accepted once; a forged one is refused.
    let payload = r#"{"action": "opened", "issue": {"number": 12, "title": "Crash on start"}, "repository": {"full_name": "acme/app"}}"#;
    let github = format!("{base}/hooks/github");
    let signature = github_signature("gh-secret", payload);
    let headers = [
        ("X-GitHub-Event", "issues"),
        ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("X-Hub-Signature-256", signature.as_str()),
    ];
    let (status, body) = post(&github, payload, &headers);
    assert_eq!(status, 202, "{body}");
    let (status, _) = post(&github, payload, &headers);
    assert_eq!(status, 409);
    let forged = github_signature("not-the-secret", payload);
    let (status, _) = post(
        &github,
        payload,
        &[
            ("X-GitHub-Event", "issues"),
            ("X-GitHub-Delivery", "another"),
            ("X-Hub-Signature-256", forged.as_str()),
        ],
    );
    assert_eq!(status, 401);

    // GitLab: a delivery with the secret token is accepted once; a wrong token is refused.
    let payload = r#"{"object_kind": "issue", "project": {"path_with_namespace": "acme/app"}, "object_attributes": {"iid": 12, "title": "Crash on start", "action": "open"}}"#;
    let gitlab = format!("{base}/hooks/gitlab");
    let headers = [
        ("X-Gitlab-Event", "Issue Hook"),
        ("Idempotency-Key", "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"),
        ("X-Gitlab-Token", "gl-secret"),
    ];
    let (status, body) = post(&gitlab, payload, &headers);
    assert_eq!(status, 202, "{body}");
    let (status, _) = post(&gitlab, payload, &headers);
    assert_eq!(status, 409);
    let (status, _) = post(
        &gitlab,
        payload,
        &[
            ("X-Gitlab-Event", "Issue Hook"),
            ("Idempotency-Key", "another"),
            ("X-Gitlab-Token", "gh-secret"),
        ],
    );
    assert_eq!(status, 401);

    takt_test_support::signal(child.id(), "TERM");
    assert!(
        child.wait().unwrap().success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let kinds = python(
        "import sqlite3, sys\n\
         db = sqlite3.connect(sys.argv[1])\n\
         for (kind, payload) in db.execute(\"SELECT kind, payload FROM journal WHERE kind LIKE 'webhook_%' ORDER BY seq\"): print(kind, payload)\n",
        &[f.db().to_str().unwrap()],
    );
    let lines: Vec<&str> = kinds.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("webhook_accepted"))
            .count(),
        3,
        "{kinds}"
    );
    let refused: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("webhook_refused"))
        .collect();
    assert_eq!(
        refused.len(),
        6,
        "three replays, two wrong tokens, a forged signature:\n{kinds}"
    );
    assert!(kinds.contains("issues opened #12 in acme/app"), "{kinds}");
    assert!(kinds.contains("Issue Hook open #12 in acme/app"), "{kinds}");
    assert!(
        refused
            .iter()
            .any(|l| l.contains("gitlab") && l.contains("X-Gitlab-Token")),
        "{kinds}"
    );
}
