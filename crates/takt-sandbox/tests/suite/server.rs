//! The fork server: supervisors are forked by one long-lived helper process, a dropped launch
//! is killed, a killed server takes its sandboxes with it and is replaced, and a helper that
//! cannot serve leaves supervisors exec'd as before.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use takt_sandbox::Confined;

use super::*;

fn launch(h: &Harness, script: &str) -> Launch {
    Launch {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        cwd: h.workspace().to_path_buf(),
        ..Launch::default()
    }
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`.
fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n - 3).map(str::to_owned)
}

fn parent(pid: u32) -> u32 {
    stat_field(pid, 4).unwrap().parse().unwrap()
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
}

/// Whether `pid` is still a process that can run (not gone, not a zombie).
fn running(pid: u32) -> bool {
    stat_field(pid, 3).is_some_and(|state| state != "Z" && state != "X")
}

fn any_process_with(token: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(token))
    })
}

/// Waits up to 20 s for `gone` to hold; whether it did.
async fn eventually(mut gone: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if gone() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gone()
}

async fn started_and_waiting(child: &mut Confined) {
    let mut stdout = child.stdout.take().unwrap();
    let mut line = [0u8; 6];
    tokio::io::AsyncReadExt::read_exact(&mut stdout, &mut line)
        .await
        .unwrap();
    assert_eq!(&line, b"ready\n");
    child.stdout = Some(stdout);
}

/// An executable shell script at `path`.
fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A helper binary stand-in in the harness's `bin/`: runs `first` (which may exit or record
/// something), then is the real helper.
fn wrapper(h: &Harness, name: &str, first: &str) -> PathBuf {
    let bin = h.root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join(name);
    write_script(&path, &format!("{first}\nexec {HELPER} \"$@\""));
    path
}

/// The test policy for `mode`, with what [`wrapper`]s run visible inside: the inner stage
/// runs from them too.
fn policy_seeing_wrappers(h: &Harness, mode: Mode) -> Policy {
    let mut policy = policy(mode);
    policy.read_only.push(h.root.path().join("bin"));
    policy
        .read_only
        .push(Path::new(HELPER).parent().unwrap().to_path_buf());
    policy
}

/// A number of seconds to sleep that names this test process's sleeps: unique among the
/// tests running at once (their pids are), and never the start of another test's token.
fn sleep_token() -> String {
    format!("4{:07}", std::process::id())
}

/// A launch whose agent waits for a line on stdin, once it has started.
async fn waiting(sandbox: &Sandbox, h: &Harness) -> Confined {
    let mut child = sandbox
        .spawn(&h.scope, launch(h, "echo ready; read line; exit 0"))
        .await
        .unwrap();
    started_and_waiting(&mut child).await;
    child
}

/// A launch whose agent is `sleep <token>`, once that is running.
async fn sleeping(sandbox: &Sandbox, h: &Harness, token: &str) -> Confined {
    let mut child = sandbox
        .spawn(
            &h.scope,
            launch(h, &format!("echo ready; exec sleep {token}")),
        )
        .await
        .unwrap();
    started_and_waiting(&mut child).await;
    assert!(
        eventually(|| any_process_with(&format!("sleep\0{token}\0"))).await,
        "the agent never started"
    );
    child
}

#[tokio::test]
async fn supervisors_are_forked_by_one_server_that_the_daemon_started() {
    for mode in modes() {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let first = waiting(&sandbox, &h).await;
        let second = waiting(&sandbox, &h).await;
        let (a, b) = (first.id().unwrap(), second.id().unwrap());
        let server = parent(a);
        assert_eq!(parent(b), server, "{mode:?}: one server forks both");
        assert_eq!(parent(server), std::process::id(), "{mode:?}");
        assert!(
            cmdline(server).contains(takt_sandbox::SERVE_ARG),
            "{mode:?}: {}",
            cmdline(server)
        );
        // Each supervisor leads its own process group, as an exec'd one did.
        assert_eq!(stat_field(a, 5).unwrap(), a.to_string(), "{mode:?}");
        for mut child in [first, second] {
            drop(child.stdin.take());
            let output = child.wait_with_output().await.unwrap();
            assert!(output.status.success(), "{mode:?}: {output:?}");
        }
    }
}

#[tokio::test]
async fn a_dropped_launch_is_killed_with_its_sandbox() {
    for mode in modes() {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let token = sleep_token();
        let child = sleeping(&sandbox, &h, &token).await;
        let supervisor = child.id().unwrap();
        drop(child);
        assert!(
            eventually(|| !running(supervisor) && !any_process_with(&format!("sleep\0{token}\0")))
                .await,
            "{mode:?}: the dropped launch is still running"
        );
    }
}

#[tokio::test]
async fn a_killed_server_takes_its_sandboxes_along_and_the_next_launch_gets_a_new_one() {
    for mode in modes() {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let token = sleep_token();
        let mut child = sleeping(&sandbox, &h, &token).await;
        let server = parent(child.id().unwrap());
        kill(
            Pid::from_raw(i32::try_from(server).unwrap()),
            Signal::SIGKILL,
        )
        .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .expect("the launch outlived its server")
            .unwrap();
        assert!(!status.success(), "{mode:?}: {status:?}");
        assert!(
            eventually(|| !any_process_with(&format!("sleep\0{token}\0"))).await,
            "{mode:?}: the sandbox outlived its server"
        );

        let ran = run(&sandbox, &h, "echo again").await;
        assert_eq!(ran.code, Some(0), "{mode:?}: {}", ran.all());
        assert!(ran.stdout.contains("again"), "{mode:?}: {}", ran.all());
        let next = waiting(&sandbox, &h).await;
        let replacement = parent(next.id().unwrap());
        assert_ne!(replacement, server, "{mode:?}");
        assert!(cmdline(replacement).contains(takt_sandbox::SERVE_ARG));
    }
}

#[tokio::test]
async fn a_helper_that_cannot_serve_leaves_supervisors_execd() {
    let h = Harness::new();
    // A helper binary from before the fork server: every stage but serving.
    let old_helper = wrapper(
        &h,
        "old-helper",
        &format!("[ \"$1\" = {} ] && exit 2", takt_sandbox::SERVE_ARG),
    );
    for mode in modes() {
        let policy = policy_seeing_wrappers(&h, mode);
        let host = takt_sandbox::probe(&old_helper, &policy.user);
        let sandbox = Sandbox::new(policy, &host, old_helper.clone(), "test").unwrap();
        for _ in 0..2 {
            let mut child = waiting(&sandbox, &h).await;
            assert_eq!(
                parent(child.id().unwrap()),
                std::process::id(),
                "{mode:?}: exec'd by the daemon itself"
            );
            drop(child.stdin.take());
            let output = child.wait_with_output().await.unwrap();
            assert!(output.status.success(), "{mode:?}: {output:?}");
        }
    }
}

#[test]
fn the_inner_stage_binary_beside_the_helper_is_used_only_when_it_reads_our_specs() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("takt");
    std::fs::write(&helper, "").unwrap();
    assert_eq!(takt_sandbox::inner_stage_beside(&helper), None, "missing");

    let inner = dir.path().join(takt_sandbox::INNER_BINARY);
    std::os::unix::fs::symlink(HELPER, &inner).unwrap();
    assert_eq!(
        takt_sandbox::inner_stage_beside(&helper),
        Some(inner.clone()),
        "from this build"
    );

    std::fs::remove_file(&inner).unwrap();
    write_script(&inner, "echo takt-sandbox 0.0.1 spec 0");
    assert_eq!(
        takt_sandbox::inner_stage_beside(&helper),
        None,
        "from another build"
    );
}

#[tokio::test]
async fn the_inner_stage_runs_from_the_binary_it_was_given() {
    let h = Harness::new();
    // Records where it ran from, then is the real inner stage.
    let inner = wrapper(
        &h,
        takt_sandbox::INNER_BINARY,
        &format!(
            "[ \"$1\" = {} ] && echo \"inner stage from $0\" >&2",
            takt_sandbox::INNER_ARG
        ),
    );
    for mode in modes() {
        let sandbox =
            sandbox(policy_seeing_wrappers(&h, mode), None).with_inner_stage(inner.clone());
        let ran = run(&sandbox, &h, "echo ran").await;
        assert_eq!(ran.code, Some(0), "{mode:?}: {}", ran.all());
        // Inside bubblewrap the binary is bound at a fixed path; under Landlock it runs where
        // it lies.
        let shown = match mode {
            Mode::Bwrap => "/run/takt/helper".to_owned(),
            _ => inner.display().to_string(),
        };
        assert!(
            ran.stderr.contains(&format!("inner stage from {shown}")),
            "{mode:?}: {}",
            ran.all()
        );
    }
}
