//! The web dashboard: pages render the daemon's state, untrusted text is escaped, the login
//! cookie and the CSRF field guard form posts, and forms submit the API's operator commands.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use takt_core::{Event, OperatorCommand};
use takt_protocol::AgentEvent;

use super::fake::issue;
use super::{FakeDaemon, Server, TOKEN};

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get(server: &Server, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(server.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("GET")
}

async fn page(server: &Server, path: &str) -> String {
    let response = get(server, path, None).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/html; charset=utf-8",
        "GET {path}"
    );
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    response.text().await.expect("body")
}

async fn post_form(
    server: &Server,
    path: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> reqwest::Response {
    let body: String = reqwest::Url::parse_with_params("http://x/", fields)
        .expect("url")
        .query()
        .unwrap_or("")
        .to_owned();
    let mut request = browser()
        .post(server.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.expect("POST")
}

/// The value of attribute `name` on the first element carrying `marker`.
fn attribute_after(html: &str, marker: &str, name: &str) -> String {
    let start = html.find(marker).unwrap_or_else(|| panic!("no {marker}"));
    let rest = &html[start..];
    let at = rest.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
    rest[at..].split('"').next().unwrap_or("").to_owned()
}

/// The markup of the board column `column`.
fn column<'a>(html: &'a str, column: &str) -> &'a str {
    let start = html
        .find(&format!("data-column=\"{column}\""))
        .unwrap_or_else(|| panic!("no column {column}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("end of column")]
}

#[tokio::test]
async fn the_board_puts_each_task_in_the_column_of_its_state_with_counts() {
    let server = Server::start().await;
    let html = page(&server, "/").await;
    assert!(html.contains("<title>Board · takt</title>"), "{html}");
    assert!(column(&html, "running").contains(r#"data-task="TAKT-1" data-state="running""#));
    let review = column(&html, "review");
    assert!(review.contains(r#"data-task="TAKT-4" data-state="awaiting_review""#));
    assert!(review.contains(r#"data-task="TAKT-2" data-state="blocked""#));
    assert!(
        review.contains("Which database?"),
        "the blocked card shows the question"
    );
    assert!(column(&html, "done").contains(r#"data-task="TAKT-6""#));
    assert!(column(&html, "queued").contains(r#"data-task="TAKT-3" data-state="retry_wait""#));
    assert!(!column(&html, "done").contains("TAKT-1\""));
    assert!(html.contains(r#"data-count-state="running">running <strong>1</strong>"#));

    // A filter keeps only the matching tasks; the fragment is the board alone.
    let filtered = page(&server, "/ui/board?state=blocked").await;
    assert!(filtered.contains(r#"data-task="TAKT-2""#));
    assert!(!filtered.contains(r#"data-task="TAKT-4""#));
    assert!(!filtered.contains("<html"), "a fragment, not a page");
    let by_text = page(&server, "/?q=task+4").await;
    assert!(by_text.contains(r#"data-task="TAKT-4""#));
    assert!(!by_text.contains(r#"data-task="TAKT-1""#));
}

#[tokio::test]
async fn hostile_titles_and_agent_output_are_escaped_on_every_page() {
    let daemon = FakeDaemon::empty(64);
    let mut hostile = issue(7, Some(1));
    hostile.title = "<script>alert(1)</script>".into();
    hostile.description = Some("<img src=x onerror=alert(2)>".into());
    daemon.feed(Event::CandidatesFetched {
        issues: vec![hostile],
    });
    daemon.feed(Event::RunLaunched {
        run_id: "TAKT-7#1".into(),
        pid: Some(1),
        workspace_path: "/ws/TAKT-7".into(),
        branch: "takt/TAKT-7".into(),
    });
    daemon.feed(Event::AgentActivity {
        run_id: "TAKT-7#1".into(),
        event: AgentEvent::Message {
            text: "\u{1b}[31m<b onmouseover=x>red</b>\u{1b}[0m".into(),
        },
    });
    let server = Server::start_with(daemon, None).await;
    for path in ["/", "/tasks/TAKT-7", "/ui/board", "/ui/tasks/id-7/details"] {
        let html = page(&server, path).await;
        assert!(!html.contains("<script>alert"), "{path}: {html}");
        assert!(!html.contains("<img src=x"), "{path}: {html}");
        assert!(!html.contains("<b onmouseover"), "{path}: {html}");
        assert!(
            !html.contains('\u{1b}'),
            "{path}: terminal escapes are stripped"
        );
    }
    let task = page(&server, "/tasks/TAKT-7").await;
    assert!(
        task.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{task}"
    );
    assert!(
        task.contains("&lt;b onmouseover=x&gt;red&lt;/b&gt;"),
        "{task}"
    );
}

#[tokio::test]
async fn the_task_page_shows_state_evidence_timeline_and_the_actions_the_state_allows() {
    let server = Server::start().await;
    let review = page(&server, "/tasks/takt-4").await;
    assert!(
        review.contains("<title>TAKT-4 task 4 · takt</title>"),
        "{review}"
    );
    assert!(
        review.contains(r#"action="/tasks/TAKT-4/approve""#),
        "{review}"
    );
    assert!(
        review.contains(r#"action="/tasks/TAKT-4/reject""#),
        "{review}"
    );
    assert!(review.contains("Gate evidence"), "{review}");
    assert!(
        review.contains(r#"data-kind="review_requested""#),
        "{review}"
    );
    assert!(review.contains("Approvals</dt><dd>0 of 1"), "{review}");

    let blocked = page(&server, "/tasks/TAKT-2").await;
    assert!(blocked.contains("The agent asks"), "{blocked}");
    assert!(blocked.contains("Which database?"), "{blocked}");
    assert!(
        blocked.contains(r#"action="/tasks/TAKT-2/answer""#),
        "{blocked}"
    );
    assert!(
        !blocked.contains("/approve\""),
        "no approval for a blocked task"
    );

    let running = page(&server, "/tasks/TAKT-1").await;
    assert!(
        running.contains("editing src/lib.rs"),
        "the agent log: {running}"
    );
    assert!(
        running.contains("No action is waiting on a person"),
        "{running}"
    );

    let missing = get(&server, "/tasks/TAKT-99", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("no task TAKT-99"));
}

#[tokio::test]
async fn form_posts_submit_the_same_commands_as_the_api_and_redirect_to_the_task() {
    let server = Server::start().await;
    let response = post_form(
        &server,
        "/tasks/TAKT-4/approve",
        &[("by", "bob"), ("comment", " looks good ")],
        None,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/tasks/TAKT-4");
    let remembered = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(remembered.starts_with("takt_operator=bob;"), "{remembered}");

    let answered = post_form(
        &server,
        "/tasks/TAKT-2/answer",
        &[("by", "carol"), ("text", "Postgres")],
        None,
    )
    .await;
    assert_eq!(answered.status(), StatusCode::SEE_OTHER);

    // Refusals come back as a page with the reason; blank required text is refused here.
    let blank = post_form(&server, "/tasks/TAKT-1/reject", &[("comment", "  ")], None).await;
    assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
    assert!(
        blank
            .text()
            .await
            .unwrap()
            .contains("`comment` is required")
    );
    let twice = post_form(&server, "/tasks/TAKT-4/approve", &[("by", "bob")], None).await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
    assert!(twice.text().await.unwrap().contains("not awaiting_review"));

    let submitted = server.daemon.calls.lock().unwrap().submitted.clone();
    assert_eq!(
        submitted[..2],
        [
            OperatorCommand::Approve {
                task: "id-4".into(),
                by: "bob".into(),
                comment: Some("looks good".into()),
            },
            OperatorCommand::Answer {
                task: "id-2".into(),
                by: "carol".into(),
                text: "Postgres".into(),
            },
        ]
    );
}

#[tokio::test]
async fn the_remembered_operator_fills_the_forms() {
    let server = Server::start().await;
    let html = get(&server, "/tasks/TAKT-4", Some("takt_operator=Ada%20L.")).await;
    let html = html.text().await.unwrap();
    assert!(html.contains(r#"name="by" value="Ada L.""#), "{html}");
    let default = page(&server, "/tasks/TAKT-4").await;
    assert!(default.contains(r#"name="by" value="web""#), "{default}");
}

#[tokio::test]
async fn with_a_token_forms_need_the_login_cookie_and_the_csrf_field() {
    let server = Server::start_with(FakeDaemon::fixture(), Some(TOKEN)).await;
    let approve = [("by", "bob")];

    // No session: sent to the login page, nothing submitted.
    let anonymous = post_form(&server, "/tasks/TAKT-4/approve", &approve, None).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers()[LOCATION],
        "/login?next=%2Ftasks%2FTAKT-4%2Fapprove"
    );
    let login = page(&server, "/login").await;
    assert!(login.contains(r#"name="token""#), "{login}");
    let task = page(&server, "/tasks/TAKT-4").await;
    assert!(task.contains("Log in</a> to act"), "{task}");
    assert!(!task.contains("/approve\""), "no form without a session");

    // A wrong token is refused; the right one sets an HttpOnly, SameSite=Strict cookie that
    // does not contain the token.
    let wrong = post_form(&server, "/login", &[("token", "nope"), ("next", "/")], None).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    let right = post_form(
        &server,
        "/login",
        &[("token", TOKEN), ("next", "/tasks/TAKT-4")],
        None,
    )
    .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert_eq!(right.headers()[LOCATION], "/tasks/TAKT-4");
    let set_cookie = right.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains(TOKEN), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // The session alone is not enough: the form needs the CSRF field from a page.
    let no_csrf = post_form(&server, "/tasks/TAKT-4/approve", &approve, Some(&cookie)).await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let forged = post_form(
        &server,
        "/tasks/TAKT-4/approve",
        &[("by", "bob"), ("csrf", "0000")],
        Some(&cookie),
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The cookie does not open the JSON API's commands (they have no CSRF field).
    let api = browser()
        .post(server.url("/api/v1/tasks/TAKT-4/approve"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert!(server.daemon.calls.lock().unwrap().submitted.is_empty());

    let task = get(&server, "/tasks/TAKT-4", Some(&cookie))
        .await
        .text()
        .await
        .unwrap();
    let csrf = attribute_after(&task, r#"name="csrf""#, "value");
    let done = post_form(
        &server,
        "/tasks/TAKT-4/approve",
        &[("by", "bob"), ("csrf", &csrf)],
        Some(&cookie),
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        server.daemon.calls.lock().unwrap().submitted,
        [OperatorCommand::Approve {
            task: "id-4".into(),
            by: "bob".into(),
            comment: None,
        }]
    );
}

#[tokio::test]
async fn a_valid_session_shows_the_logout_form_and_a_forged_one_does_not() {
    let server = Server::start_with(FakeDaemon::fixture(), Some(TOKEN)).await;
    let login = post_form(&server, "/login", &[("token", TOKEN)], None).await;
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = get(&server, "/", Some(&cookie)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().await.unwrap();
    assert!(body.contains(r#"action="/logout""#), "{body}");
    let stale = get(&server, "/", Some("takt_session=0123")).await;
    assert!(!stale.text().await.unwrap().contains("/logout"));
}

#[tokio::test]
async fn without_a_token_a_page_of_another_origin_cannot_post_a_form() {
    let server = Server::start().await;
    let response = browser()
        .post(server.url("/tasks/TAKT-4/approve"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .body("by=mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(server.daemon.calls.lock().unwrap().submitted.is_empty());
}

#[tokio::test]
async fn assets_are_embedded_and_linked_by_content_hash_with_a_long_cache() {
    let server = Server::start().await;
    let html = page(&server, "/").await;
    for name in ["takt.css", "htmx.min.js", "live.js"] {
        let start = html.find(&format!("/assets/{name}?v=")).expect(name);
        let url: String = html[start..].split('"').next().unwrap().to_owned();
        assert!(url.len() > format!("/assets/{name}?v=").len() + 8, "{url}");
        let response = get(&server, &url, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URLs"
    );
    assert_eq!(
        get(&server, "/assets/nope.js", None).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_overview_shows_metrics_and_charts_of_throughput_and_spend() {
    let server = Server::start().await;
    let html = page(&server, "/overview").await;
    assert!(html.contains("<title>Overview · takt</title>"));
    assert!(
        html.contains(r#"data-metric="done"><dt>Done</dt><dd>1</dd>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"data-metric="running"><dt>Running</dt><dd>1 of 2</dd>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<svg class="chart" id="throughput""#),
        "{html}"
    );
    assert!(html.contains(r#"<svg class="chart" id="spend""#), "{html}");
    // TAKT-6 merged today: today's bar is the tallest, so it fills the plot.
    assert!(html.contains(r#"height="138.0"><title>"#), "{html}");
}

#[tokio::test]
async fn the_page_listens_for_every_kind_the_journal_holds_about_tasks() {
    let server = Server::start().await;
    let html = page(&server, "/").await;
    let kinds = attribute_after(&html, "data-events=", "data-kinds");
    for entry in server.daemon.journal() {
        if entry.task_id.is_some() {
            assert!(
                kinds.split(' ').any(|kind| kind == entry.kind),
                "{} is not listened for: {kinds}",
                entry.kind
            );
        }
    }
}
