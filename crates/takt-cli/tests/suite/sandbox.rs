//! The escape suite through the whole daemon: hostile agents try every way out while an
//! honest task beside them lands; limits end runs as `sandbox_violation` / `timed_out` with
//! the evidence in the journal; secrets planted in the daemon's environment never reach an
//! agent.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;
use takt_test_support::{WorkflowFile, run_command, write};

use super::Factory;

/// Secrets a careless operator exports where the daemon runs.
const DAEMON_SECRETS: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-SENTINEL-OPENAI"),
    ("ANTHROPIC_API_KEY", "sk-ant-SENTINEL-ANTHROPIC"),
    ("GITHUB_TOKEN", "ghp_SENTINEL_GITHUB"),
    ("LINEAR_API_KEY", "lin_SENTINEL_LINEAR"),
    ("AWS_SECRET_ACCESS_KEY", "SENTINEL-AWS"),
];

fn hostile_script(f: &Factory, home: &std::path::Path, port: u16) -> String {
    let state = f.takt.state_dir();
    let log = f.log_dir();
    format!(
        r#"if [ "${{TAKT_ISSUE_IDENTIFIER:-TAKT-1}}" = "TAKT-1" ]; then
{{
echo "--- ssh"; cat {home}/.ssh/id_rsa; cat "$HOME/.ssh/id_rsa"
echo "--- other workspace"; ls {state}/workspaces; cat {state}/workspaces/TAKT-2/changes/TAKT-2.txt
echo "--- state"; head -c 200 {state}/takt.db; ls {state}
echo "--- write outside"; echo pwned > {repo}/PWNED; echo pwned > {state}/PWNED
echo "--- env"; env
echo "--- proc"; cat /proc/[0-9]*/environ | tr '\0' '\n'
echo "--- net"; python3 -c '
import socket
for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 80)):
    try:
        socket.create_connection((host, port), timeout=3); print("CONNECTED", host, port)
    except Exception as e: print("REFUSED", host, port, type(e).__name__)
try:
    socket.getaddrinfo("example.com", 80); print("DNS RESOLVED")
except Exception as e: print("DNS FAILED", type(e).__name__)
'
echo "--- leave a process"; (setsid sleep 3331 &) ; (sleep 3332 &)
echo "--- symlink"; ln -s {home}/.ssh/id_rsa stolen-key; ln -s {state} state-link
}} > {log}/hostile.txt 2>&1
fi
mkdir -p changes
echo "$TAKT_ISSUE_IDENTIFIER was here" > "changes/$TAKT_ISSUE_IDENTIFIER.txt"
"#,
        home = home.display(),
        state = state.display(),
        repo = f.repo.path().display(),
        log = log.display(),
    )
}

fn alive_with(token: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(token))
    })
}

/// Whether `pid` is a process that can still run (neither gone nor a zombie).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|end| stat[end + 2..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// The pids of the processes whose parent is `parent`, with their command lines.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid: u32 = stat[stat.rfind(')')? + 2..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            (ppid == parent).then(|| (pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        })
        .collect()
}

/// The daemon forks its agents' supervisors from a fork server; killed with SIGKILL, it takes
/// the server, the supervisors and the sandboxes with it, no restart needed.
#[test]
fn a_daemon_killed_with_sigkill_takes_its_sandboxed_agents_along() {
    let f = Factory::bare("sandbox-daemon-kill9");
    // Unique among the tests running at once, and never the start of another test's token.
    let seconds = format!("5{:07}", std::process::id());
    let token = format!("sleep\u{0}{seconds}\u{0}");
    let script = format!("sleep {seconds} & sleep {seconds}\n");
    let mut wf = f.sandboxed(&WorkflowFile::new(f.agent_command(&script)));
    wf.max_concurrent_agents = 2;
    f.write_workflow(&wf);
    f.takt.add_task("Sleeps", &[]);
    f.takt.add_task("Sleeps too", &[]);
    let log = f.log_dir().join("daemon.log");
    let mut daemon = f.takt.spawn_daemon(&log);
    let daemon_pid = daemon.pid();
    let server = || {
        children_of(daemon_pid)
            .into_iter()
            .find(|(_, cmdline)| cmdline.contains(takt_sandbox::SERVE_ARG))
    };
    let describe = || std::fs::read_to_string(&log).unwrap_or_default();
    takt_test_support::wait_until(
        "both agents sleeping",
        Duration::from_secs(60),
        || server().is_some_and(|(server, _)| children_of(server).len() == 2) && alive_with(&token),
        describe,
    );
    let (server, _) = server().unwrap();

    daemon.kill9();
    takt_test_support::wait_until(
        "the server and every sandboxed process gone",
        Duration::from_secs(20),
        || !alive_with(&token) && !running(server),
        describe,
    );
}

#[test]
fn a_hostile_agent_is_contained_while_an_honest_task_lands() {
    hostile_beside_honest("auto");
}

/// The same escape attempts with Landlock alone (no namespaces): what `auto` falls back to on
/// a host without bubblewrap.
#[test]
fn a_hostile_agent_is_contained_by_landlock_alone() {
    hostile_beside_honest("landlock");
}

fn hostile_beside_honest(mode: &str) {
    let f = Factory::bare(&format!("sandbox-hostile-{mode}"));
    // Landlock mode runs the agent user in the host's mount namespace: the directories above
    // the workspace must be traversable, as a project checkout usually is.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f.repo.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let home = f.repo.root().join("operator-home");
    write(&home.join(".ssh/id_rsa"), "OPERATOR-SSH-SENTINEL\n");
    // Stands in for another service on the daemon's loopback (its HTTP port).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = hostile_script(&f, &home, port);
    let mut wf = f.sandboxed(&WorkflowFile::new(f.agent_command(&script)));
    wf.max_concurrent_agents = 1;
    wf.extra = wf
        .extra
        .replace("sandbox:\n", &format!("sandbox:\n  mode: {mode}\n"));
    f.write_workflow(&wf);
    f.takt.add_task("Hostile", &[]);
    f.takt.add_task("Honest", &[]);
    if mode == "landlock" {
        // The state directory is private (0700); Landlock mode needs it traversable (not
        // listable) by the agent user, and says so otherwise.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f.takt.state_dir(), std::fs::Permissions::from_mode(0o711))
            .unwrap();
    }

    let mut command = f.takt.command(&["run", "--once"]);
    command.env("HOME", &home);
    for (name, value) in DAEMON_SECRETS {
        command.env(name, value);
    }
    let out = run_command(command);
    assert_eq!(out.code, Some(0), "{out}");
    assert_contained(&f, &home, &listener);
}

/// What every hostile agent beside an honest one must have run into: `TAKT-1` ran
/// [`hostile_script`] (its findings in `log/hostile.txt`), `TAKT-2` wrote its change.
fn assert_contained(f: &Factory, home: &std::path::Path, listener: &TcpListener) {
    let port = listener.local_addr().unwrap().port();
    let seen = String::from_utf8_lossy(&std::fs::read(f.log_dir().join("hostile.txt")).unwrap())
        .into_owned();
    assert!(
        seen.contains("--- symlink"),
        "the hostile script ran to its end:\n{seen}"
    );
    assert!(
        !seen.contains("SENTINEL"),
        "a secret reached the agent:\n{seen}"
    );
    assert!(
        !seen.contains("TAKT-2 was here"),
        "another task's workspace was readable:\n{seen}"
    );
    assert!(
        !seen.contains("SQLite format"),
        "the state database was readable:\n{seen}"
    );
    assert!(!f.repo.path().join("PWNED").exists(), "{seen}");
    assert!(!f.takt.state_dir().join("PWNED").exists(), "{seen}");
    assert!(
        seen.contains(&format!("REFUSED 127.0.0.1 {port}")),
        "{seen}"
    );
    assert!(seen.contains("REFUSED 1.1.1.1 80"), "{seen}");
    assert!(seen.contains("DNS FAILED"), "{seen}");
    assert!(
        listener.accept().is_err(),
        "the daemon's loopback service was reached"
    );
    assert!(
        seen.contains("TAKT_RUN_ID="),
        "the run's own variables are there:\n{seen}"
    );

    // Both tasks finished; the hostile one's symlinks were committed as links, never
    // followed into the key.
    for id in ["TAKT-1", "TAKT-2"] {
        assert_eq!(
            f.takt.state_of(id),
            "awaiting_review",
            "{:#}",
            f.takt.task(id)
        );
    }
    let key = f
        .show_in_mirror("takt/TAKT-1", "stolen-key")
        .unwrap_or_default();
    assert!(!key.contains("SENTINEL"), "git followed the symlink: {key}");
    assert_eq!(key.trim(), home.join(".ssh/id_rsa").display().to_string());

    // Nothing the agent started outlives its run.
    takt_test_support::wait_until(
        "the hostile agent's background processes to be gone",
        Duration::from_secs(10),
        || !alive_with("sleep\u{0}3331\u{0}") && !alive_with("sleep\u{0}3332\u{0}"),
        || "sleep 3331/3332 still alive".to_owned(),
    );
    let events = f.takt.json(&["task", "events", "TAKT-1"]);
    let events = events.to_string();
    assert!(
        events.contains("sandboxed"),
        "the evidence says how the run was confined: {events}"
    );
}

#[test]
fn limits_end_runs_as_violations_with_evidence_and_the_daemon_keeps_serving() {
    let f = Factory::bare("sandbox-limits");
    std::fs::create_dir_all(f.log_dir()).unwrap();
    std::fs::create_dir_all(f.scripts_dir()).unwrap();
    let script = r#"case "$TAKT_ISSUE_IDENTIFIER" in
TAKT-1) python3 -c 'b = bytearray(400 * 1024 * 1024); b[::4096] = b"x" * len(b[::4096]); print("allocated")' ;;
TAKT-2) sleep 60 ;;
*) mkdir -p changes; echo ok > "changes/$TAKT_ISSUE_IDENTIFIER.txt" ;;
esac
"#;
    let mut wf = WorkflowFile::new(f.agent_command(script));
    wf.max_attempts = 1;
    wf.max_concurrent_agents = 3;
    wf.extra = format!(
        "sandbox:\n  memory_mb: 96\n  wall_clock_ms: 2000\n  read_write: [{}]\n  read_only: [{}]\n",
        takt_test_support::yaml_string(&f.log_dir().display().to_string()),
        takt_test_support::yaml_string(&f.scripts_dir().display().to_string()),
    );
    f.write_workflow(&wf);
    for title in ["Hog", "Sleeper", "Honest"] {
        f.takt.add_task(title, &[]);
    }
    f.takt.run_once();

    let hog = f.takt.task("TAKT-1");
    let attempt = &hog["attempts"][0];
    assert_eq!(hog["state"], "failed", "{hog:#}");
    if super::running_as_root() {
        // As root the memory cgroup kills, and the kill is reported.
        assert_eq!(attempt["outcome"], "sandbox_violation", "{hog:#}");
        assert!(
            attempt["error"].as_str().unwrap().contains("memory"),
            "{hog:#}"
        );
    }
    let sleeper = f.takt.task("TAKT-2");
    assert_eq!(
        sleeper["attempts"][0]["outcome"], "timed_out",
        "{sleeper:#}"
    );
    assert!(
        sleeper["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("wall clock"),
        "{sleeper:#}"
    );
    assert_eq!(f.takt.state_of("TAKT-3"), "awaiting_review");
    let events = f.takt.json(&["task", "events", "TAKT-2"]).to_string();
    assert!(events.contains("sandbox_violation"), "{events}");
}

/// The same escape attempts from takt's built-in loop driven by the mock model: its commands
/// (`run`) go through the sandbox like a command agent's, and its file tools, which run in the
/// daemon, refuse every path outside the workspace.
#[test]
fn a_hostile_builtin_agent_is_contained_while_an_honest_task_lands() {
    use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
    let f = Factory::bare("sandbox-hostile-builtin");
    let home = f.repo.root().join("operator-home");
    write(&home.join(".ssh/id_rsa"), "OPERATOR-SSH-SENTINEL\n");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = f.scripts_dir().join("hostile.sh");
    write(&script, &hostile_script(&f, &home, port));
    let state = f.takt.state_dir();
    let reach_out = [
        json!({"path": home.join(".ssh/id_rsa")}),
        json!({"path": state.join("takt.db")}),
        json!({"path": "../TAKT-2/changes/TAKT-2.txt"}),
    ];
    let mut hostile: Vec<Step> = reach_out
        .iter()
        .map(|arguments| Step::tool("read_file", arguments.clone()))
        .collect();
    hostile.extend([
        Step::tool(
            "write_file",
            json!({"path": f.repo.path().join("PWNED"), "content": "pwned"}),
        ),
        Step::tool(
            "run",
            json!({"command": format!("sh {}", script.display())}),
        ),
        Step::tool("finish", json!({"summary": "tried"})),
        Step::text("DONE"),
    ]);
    let honest = vec![
        Step::tool(
            "write_file",
            json!({"path": "changes/TAKT-2.txt", "content": "TAKT-2 was here\n"}),
        ),
        Step::tool("finish", json!({"summary": "wrote it"})),
        Step::text("DONE"),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mock = runtime
        .block_on(MockModel::start(MockConfig::with_scenarios(vec![
            Scenario::new("hostile", hostile),
            Scenario::new("honest", honest),
        ])))
        .unwrap();
    let mut wf = f.sandboxed(&WorkflowFile::new("true"));
    wf.max_concurrent_agents = 1;
    wf.extra = format!(
        "{}\nmodel: {{provider: openai, base_url: {}, api_key: $TAKT_E2E_PROVIDER_KEY, name: gpt-5.5}}\n",
        wf.extra,
        mock.openai_base_url()
    );
    f.write_workflow(&wf);
    let workflow = std::fs::read_to_string(f.repo.workflow_path()).unwrap();
    write(
        &f.repo.workflow_path(),
        &workflow.replacen("backend: command", "backend: builtin", 1),
    );
    f.takt.add_task("Hostile [[scenario:hostile]]", &[]);
    f.takt.add_task("Honest [[scenario:honest]]", &[]);

    let mut command = f.takt.command(&["run", "--once"]);
    command.env("HOME", &home);
    command.env("TAKT_E2E_PROVIDER_KEY", "sk-e2e-provider-key");
    for (name, value) in DAEMON_SECRETS {
        command.env(name, value);
    }
    let out = run_command(command);
    let requests = mock.requests();
    runtime.block_on(mock.shutdown()).unwrap();
    assert_eq!(out.code, Some(0), "{out}");
    assert_contained(&f, &home, &listener);

    // The file tools answered each reach outside with a refusal, and nothing of what lies
    // there reached the model.
    let mut answers = std::collections::BTreeMap::new();
    for request in requests.iter().filter(|request| request.method == "POST") {
        for message in request.body["messages"].as_array().into_iter().flatten() {
            if message["role"] == "tool" {
                answers.insert(
                    message["tool_call_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    message["content"].as_str().unwrap_or_default().to_owned(),
                );
            }
        }
    }
    let refused = answers
        .values()
        .filter(|answer| {
            answer.starts_with("error: refused:") && answer.contains("outside the workspace")
        })
        .count();
    assert_eq!(refused, 4, "three reads and a write refused: {answers:#?}");
    for answer in answers.values() {
        for secret in ["SENTINEL", "SQLite format", "TAKT-2 was here"] {
            assert!(
                !answer.contains(secret),
                "{secret} reached the model: {answer}"
            );
        }
    }
}

/// The small inner-stage binary built beside `takt` is found, and `takt doctor` names it.
#[test]
fn doctor_names_the_binary_that_runs_the_inner_stage() {
    let f = Factory::bare("sandbox-inner-binary");
    f.write_workflow(&f.sandboxed(&WorkflowFile::new(f.recording_agent())));
    let doctor = f.takt.run(&["doctor"]);
    let inner = std::path::Path::new(env!("CARGO_BIN_EXE_takt-sandbox-inner"));
    assert!(
        doctor.stdout.contains(&format!(
            "{} (the small binary beside takt)",
            inner.display()
        )),
        "{doctor}"
    );
}

#[test]
fn landlock_mode_says_how_to_fix_a_private_directory_above_the_workspace() {
    if !super::running_as_root() {
        return; // Only a root daemon drops to the agent user.
    }
    let f = Factory::bare("sandbox-landlock-private");
    let mut wf = f.sandboxed(&WorkflowFile::new(f.recording_agent()));
    wf.max_attempts = 1;
    wf.extra = wf
        .extra
        .replace("sandbox:\n", "sandbox:\n  mode: landlock\n");
    f.write_workflow(&wf);
    f.takt.add_task("Anything", &[]);
    f.takt.run_once();
    let task = f.takt.task("TAKT-1");
    let error = task["attempts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("cannot enter"), "{task:#}");
    assert!(error.contains("sandbox.mode: bwrap"), "{task:#}");
}

#[test]
fn overlay_workspaces_run_sandboxed_agents_and_merge() {
    if !super::running_as_root() {
        return; // Overlays need a root daemon.
    }
    // The default: no `workspace.overlay` in the workflow.
    let f = Factory::bare("sandbox-overlay");
    f.write_workflow(&WorkflowFile::new(f.recording_agent()));
    let doctor = f.takt.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("kernel overlays over shared golden trees"),
        "{doctor}"
    );
    assert!(
        doctor
            .stdout
            .contains("cold: gates and agents build from nothing"),
        "warm caches are off by default: {doctor}"
    );
    f.takt.add_task("First", &[]);
    f.takt.add_task("Second", &[]);
    let out = f.takt.run_once();
    assert!(!out.stderr.contains("cannot be mounted"), "{out}");
    for id in ["TAKT-1", "TAKT-2"] {
        assert_eq!(
            f.takt.state_of(id),
            "awaiting_review",
            "{:#}",
            f.takt.task(id)
        );
        let change = f.show_in_mirror(&format!("takt/{id}"), &format!("changes/{id}.txt"));
        assert!(
            change.is_some_and(|c| c.contains(id)),
            "{id}'s change is on its branch"
        );
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ws = f.takt.state_dir().join("workspaces/TAKT-1");
    assert!(
        mounts.contains(ws.to_str().unwrap()),
        "TAKT-1's workspace is an overlay"
    );
    f.takt.ok(&["review", "approve", "TAKT-1"]);
    assert!(f.repo.show_file("main", "changes/TAKT-1.txt").is_some());
    // Done: the workspace is removed, which unmounts it.
    f.takt.run_once();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(ws.to_str().unwrap()),
        "unmounted when the task was done"
    );
    f.takt.ok(&["task", "cancel", "TAKT-2"]);
    f.takt.run_once();
    let left = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !left.contains(f.takt.state_dir().to_str().unwrap()),
        "no overlay left mounted"
    );
}

/// A merge moves the base; the daemon makes the new base's golden tree right away, so the next
/// task's workspace is a mount away instead of a checkout on its critical path.
#[test]
fn after_a_merge_the_next_bases_golden_tree_is_made_before_any_task_needs_it() {
    if !super::running_as_root() {
        return; // Overlays need a root daemon.
    }
    let f = Factory::bare("sandbox-next-base");
    let mut wf = WorkflowFile::new(f.recording_agent());
    wf.auto_merge = true;
    f.write_workflow(&wf);
    let mut daemon = f.takt.spawn_daemon(&f.repo.root().join("daemon.log"));
    daemon.wait_ready(&f.takt.state_dir());
    f.takt.add_task("First", &[]);
    f.wait_for_state("TAKT-1", "done", Duration::from_secs(60));
    let main = f.repo.rev_parse("main");
    let golden = f.takt.state_dir().join("overlay/golden").join(&main);
    takt_test_support::wait_until(
        "the merged base's golden tree",
        Duration::from_secs(30),
        || golden.join("changes/TAKT-1.txt").is_file(),
        || daemon.log(),
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}

/// `workspace.overlay: false` keeps plain worktrees, and `takt doctor` says so.
#[test]
fn overlays_switched_off_give_worktrees() {
    let f = Factory::bare("sandbox-no-overlay");
    let mut wf = WorkflowFile::new(f.recording_agent());
    wf.extra = "workspace:\n  overlay: false\n".into();
    f.write_workflow(&wf);
    f.takt.add_task("First", &[]);
    f.takt.run_once();
    assert_eq!(f.takt.state_of("TAKT-1"), "awaiting_review");
    let ws = f.takt.state_dir().join("workspaces/TAKT-1");
    assert!(ws.join(".git").is_file(), "a worktree's .git file");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(ws.to_str().unwrap()), "not a mount");
    let doctor = f.takt.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("git worktrees (`workspace.overlay: false`)"),
        "{doctor}"
    );
}

/// `before_run` runs over what the previous attempt's agent left in the workspace: a script
/// the agent planted must run confined, not as the daemon.
#[test]
fn hooks_after_an_agent_run_confined() {
    let f = Factory::bare("sandbox-hooks");
    let log = f.log_dir();
    let state = f.takt.state_dir();
    // Attempt 1 plants the hook's script and fails; attempt 2 succeeds.
    let script = format!(
        "if [ \"$TAKT_ATTEMPT\" = 1 ]; then\n\
         printf 'cat /etc/shadow > {log}/hook-leak 2>&1; echo pwned > {state}/PWNED; echo ran >> {log}/hook-ran\\n' > planted.sh\n\
         exit 1\nfi\nmkdir -p changes; echo ok > changes/done.txt\n",
        log = log.display(),
        state = state.display()
    );
    let mut wf = WorkflowFile::new(f.agent_command(&script));
    wf.max_attempts = 2;
    wf.extra = "hooks:\n  before_run: \"[ -f planted.sh ] && sh planted.sh; true\"\n".into();
    f.write_workflow(&wf);
    f.takt.add_task("Hooked", &[]);
    f.takt.run_once();
    assert_eq!(
        f.takt.state_of("TAKT-1"),
        "awaiting_review",
        "{:#}",
        f.takt.task("TAKT-1")
    );
    let ran = std::fs::read_to_string(log.join("hook-ran")).unwrap_or_default();
    assert!(ran.contains("ran"), "the planted script ran in before_run");
    let leak = std::fs::read_to_string(log.join("hook-leak")).unwrap_or_default();
    assert!(!leak.contains("root:"), "the hook read /etc/shadow: {leak}");
    assert!(
        !state.join("PWNED").exists(),
        "the hook wrote into the state directory"
    );
}
