//! The command backend against real processes.

use std::sync::Mutex;
use std::time::Duration;

use takt_agents::CommandBackend;
use takt_agents::process::{PID_FILE, ProcessMark, group_alive, sweep_orphans};
use takt_core::ports::{AgentBackend, AgentEventSink, SessionContext, TurnInput, TurnResult};
use takt_protocol::{AgentEvent, OutputStream};

#[derive(Default)]
struct Events(Mutex<Vec<AgentEvent>>);

impl AgentEventSink for Events {
    fn emit(&self, event: AgentEvent) {
        self.0.lock().expect("lock").push(event);
    }
}

impl Events {
    fn lines(&self, want: OutputStream) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|event| match event {
                AgentEvent::Output { stream, line } if *stream == want => Some(line.clone()),
                _ => None,
            })
            .collect()
    }
}

fn context(dir: &tempfile::TempDir) -> SessionContext {
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(&workspace).expect("workspace");
    SessionContext {
        git_dir: None,
        host_tools: None,
        view: None,
        task_id: "id-1".into(),
        identifier: "TAKT-1".into(),
        run_id: "TAKT-1#1".into(),
        attempt: 1,
        workspace,
        run_dir: dir.path().join("run"),
        model: None,
    }
}

fn backend(run: &str) -> CommandBackend {
    CommandBackend {
        sandbox: super::unconfined(),
        run: run.into(),
        remove_env: vec!["TAKT_TEST_SECRET".into()],
    }
}

fn turn(prompt: &str) -> TurnInput {
    TurnInput {
        turn: 1,
        prompt: prompt.into(),
    }
}

#[tokio::test]
async fn the_command_gets_the_prompt_on_stdin_and_its_variables_and_changes_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir);
    let script = r#"cat > prompt-copy.txt; echo "id=$TAKT_ISSUE_IDENTIFIER attempt=$TAKT_ATTEMPT turn=$TAKT_TURN"; test "$(cat "$TAKT_PROMPT_FILE")" = "$(cat prompt-copy.txt)" && echo same-prompt; echo warn >&2; pwd"#;
    let mut session = backend(script)
        .start_session(ctx.clone())
        .await
        .expect("session");
    let events = Events::default();
    let result = session
        .run_turn(turn("fix the bug\nplease"), &events)
        .await
        .expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: true });
    let written = std::fs::read_to_string(ctx.workspace.join("prompt-copy.txt")).expect("file");
    assert_eq!(written, "fix the bug\nplease");
    let stdout = events.lines(OutputStream::Stdout);
    assert_eq!(stdout[0], "id=TAKT-1 attempt=1 turn=1");
    assert_eq!(stdout[1], "same-prompt");
    assert_eq!(stdout[2], ctx.workspace.to_string_lossy());
    assert_eq!(events.lines(OutputStream::Stderr), ["warn"]);
    assert!(ctx.run_dir.join("turn-1.log").exists());
}

#[tokio::test]
async fn a_failing_command_fails_the_turn_with_its_last_error_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = backend("echo first >&2; echo 'cannot parse src/lib.rs' >&2; exit 3")
        .start_session(context(&dir))
        .await
        .expect("session");
    let result = session
        .run_turn(turn("x"), &Events::default())
        .await
        .expect("turn");
    match result {
        TurnResult::Failed { error } => {
            assert!(error.contains("status 3"), "{error}");
            assert!(error.ends_with("cannot parse src/lib.rs"), "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_question_file_makes_the_turn_ask_for_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = backend(r#"echo "Which database should I use?" > "$TAKT_QUESTION_FILE""#)
        .start_session(context(&dir))
        .await
        .expect("session");
    let events = Events::default();
    let result = session.run_turn(turn("x"), &events).await.expect("turn");
    assert_eq!(
        result,
        TurnResult::InputRequired {
            question: "Which database should I use?".into()
        }
    );
}

/// The agent's directory is writable inside the sandbox, so what the daemon writes or reads
/// there between turns may be a link the agent planted: turn 1 points turn 2's prompt file at
/// a file of the host and its question file at a secret one.
#[tokio::test]
async fn links_the_agent_planted_in_its_directory_are_never_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim.txt");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&victim, "precious\n").expect("victim");
    std::fs::write(&secret, "HOST-SECRET\n").expect("secret");
    let script = format!(
        r#"agent=$(dirname "$TAKT_PROMPT_FILE")
if [ "$TAKT_TURN" = 1 ]; then
  ln -s {victim} "$agent/prompt-2.md"
  ln -s {secret} "$agent/question-2.txt"
else
  cat "$TAKT_PROMPT_FILE"
fi"#,
        victim = victim.display(),
        secret = secret.display()
    );
    let mut session = backend(&script)
        .start_session(context(&dir))
        .await
        .expect("session");
    let events = Events::default();
    session
        .run_turn(turn("one"), &events)
        .await
        .expect("turn 1");
    let second = session
        .run_turn(
            TurnInput {
                turn: 2,
                prompt: "two".into(),
            },
            &events,
        )
        .await
        .expect("turn 2");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n",
        "the prompt was written through the link"
    );
    assert_eq!(
        events.lines(OutputStream::Stdout),
        ["two"],
        "turn 2 read its own prompt"
    );
    assert!(
        !format!("{second:?}").contains("HOST-SECRET"),
        "a linked question file was read: {second:?}"
    );
    assert_eq!(second, TurnResult::Completed { finished: true });
}

#[tokio::test]
async fn secrets_named_for_removal_never_reach_the_command() {
    // cargo and nextest set CARGO_MANIFEST_DIR for test processes: a variable that is really
    // in the parent's environment and must not reach the agent.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir);
    let mut session = CommandBackend {
        sandbox: super::unconfined(),
        run: "env > env.txt".into(),
        remove_env: vec!["CARGO_MANIFEST_DIR".into()],
    }
    .start_session(ctx.clone())
    .await
    .expect("session");
    session
        .run_turn(turn("x"), &Events::default())
        .await
        .expect("turn");
    let env = std::fs::read_to_string(ctx.workspace.join("env.txt")).expect("env");
    assert!(env.contains("TAKT_ISSUE_IDENTIFIER=TAKT-1"));
    assert!(!env.contains("CARGO_MANIFEST_DIR="));
}

#[tokio::test]
async fn an_endless_line_is_cut_not_buffered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut session = backend("head -c 300000 /dev/zero | tr '\\0' 'a'; echo; echo after")
        .start_session(context(&dir))
        .await
        .expect("session");
    let events = Events::default();
    let result = session.run_turn(turn("x"), &events).await.expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: true });
    let lines = events.lines(OutputStream::Stdout);
    assert!(
        lines.iter().any(|line| line.contains("cut")),
        "{:?}",
        lines.len()
    );
    assert_eq!(lines.last().map(String::as_str), Some("after"));
}

#[tokio::test]
async fn stopping_a_session_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir);
    let mut session = backend("sleep 600 & echo $! > child.pid; sleep 600")
        .start_session(ctx.clone())
        .await
        .expect("session");
    let events = Events::default();
    let turn_future = session.run_turn(turn("x"), &events);
    // Dropping the turn future (a timeout in the shell) must not leave anything behind.
    let timed_out = tokio::time::timeout(Duration::from_millis(500), turn_future).await;
    assert!(timed_out.is_err());
    let pgid = session_pgid(&ctx);
    session.stop().await;
    let child: u32 = std::fs::read_to_string(ctx.workspace.join("child.pid"))
        .expect("child pid")
        .trim()
        .parse()
        .expect("pid");
    wait_until(|| !group_alive(pgid)).await;
    wait_until(|| !std::path::Path::new(&format!("/proc/{child}")).exists() || zombie(child)).await;
}

#[tokio::test]
async fn the_orphan_sweep_kills_what_a_dead_daemon_left_and_spares_reused_pids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&run_dir).expect("run dir");
    let mut child = std::process::Command::new("sh")
        .args(["-c", "sleep 600"])
        .process_group(0)
        .spawn()
        .expect("spawn");
    let mark = ProcessMark::of(child.id()).expect("mark");
    // A mark with a different start time is another process that reused the pid: spared.
    let stranger = ProcessMark {
        start_time: mark.start_time + 1,
        ..mark
    };
    std::fs::write(run_dir.join(PID_FILE), stranger.encode()).expect("write");
    assert!(!sweep_orphans(&run_dir));
    assert!(group_alive(mark.pgid));
    std::fs::write(run_dir.join(PID_FILE), mark.encode()).expect("write");
    assert!(sweep_orphans(&run_dir));
    let status = child.wait().expect("wait");
    assert!(!status.success());
}

use std::os::unix::process::CommandExt;

fn session_pgid(ctx: &SessionContext) -> u32 {
    let text = std::fs::read_to_string(ctx.run_dir.join(PID_FILE)).expect("pid file");
    ProcessMark::decode(&text).expect("mark").pgid
}

fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.contains(") Z "))
        .unwrap_or(true)
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..250 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached within 5 s");
}
