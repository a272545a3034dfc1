//! The escape suite: a hostile script tries each way out; every attempt must be contained
//! and, where the sandbox can observe it, reported.

use std::io::{Read, Write};
use std::net::TcpListener;

use takt_sandbox::{Mode, Network, ViolationKind};

use super::*;

fn for_each_mode(test: impl AsyncFn(Mode)) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for mode in modes() {
        runtime.block_on(test(mode));
    }
}

#[test]
fn secrets_outside_the_workspace_are_unreadable() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let script = format!(
            "cat {secret} {other}/secret.txt {db} /etc/shadow /root/.ssh/id_rsa 2>&1; ls /root 2>&1; echo done",
            secret = h.outside_secret.display(),
            other = h.other_workspace.display(),
            db = h.state_db.display()
        );
        let ran = run(&sandbox, &h, &script).await;
        let all = ran.all();
        assert!(ran.stdout.contains("done"), "{mode:?}: {all}");
        for sentinel in [
            "OPERATOR-KEY-SENTINEL",
            "OTHER-TASK-SENTINEL",
            "STATE-DB-SENTINEL",
            "root:",
        ] {
            assert!(
                !ran.stdout.contains(sentinel),
                "{mode:?} leaked {sentinel}: {all}"
            );
        }
    });
}

/// The control for the tests above: without a sandbox the same script does read the
/// secrets, so their passing means the sandbox stopped it.
#[tokio::test]
async fn unconfined_the_same_script_reads_the_secrets() {
    let h = Harness::new();
    let sandbox = takt_sandbox::Sandbox::unconfined(policy(Mode::None));
    let script = format!(
        "cat {} {}/secret.txt",
        h.outside_secret.display(),
        h.other_workspace.display()
    );
    let ran = run(&sandbox, &h, &script).await;
    assert!(
        ran.stdout.contains("OPERATOR-KEY-SENTINEL"),
        "{}",
        ran.all()
    );
    assert!(ran.stdout.contains("OTHER-TASK-SENTINEL"), "{}", ran.all());
}

#[test]
fn writes_land_only_in_the_workspace() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let script = format!(
            "echo ok > inside.txt; echo x > {other}/pwned; echo x > {mirror}/hooks-pwned; \
             echo x >> {mirror}/config; echo x > /usr/pwned; echo x > {root}/pwned; echo finished",
            other = h.other_workspace.display(),
            mirror = h.mirror().display(),
            root = h.root.path().display()
        );
        let ran = run(&sandbox, &h, &script).await;
        let all = ran.all();
        assert!(ran.stdout.contains("finished"), "{mode:?}: {all}");
        assert_eq!(
            std::fs::read_to_string(h.workspace().join("inside.txt")).unwrap(),
            "ok\n"
        );
        assert!(!h.other_workspace.join("pwned").exists(), "{mode:?}: {all}");
        assert!(!h.mirror().join("hooks-pwned").exists(), "{mode:?}: {all}");
        assert_eq!(
            std::fs::read_to_string(h.mirror().join("config")).unwrap(),
            "[core]\n"
        );
        assert!(!std::path::Path::new("/usr/pwned").exists());
        assert!(!h.root.path().join("pwned").exists(), "{mode:?}: {all}");
    });
}

#[test]
fn the_environment_holds_only_allowed_variables() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let ran = run(&sandbox, &h, "env").await;
        let names: Vec<&str> = ran
            .stdout
            .lines()
            .filter_map(|line| line.split_once('=').map(|(name, _)| name))
            .collect();
        // cargo sets CARGO_* for this test process; none may pass.
        assert!(
            !names.iter().any(|n| n.starts_with("CARGO_PKG")),
            "{mode:?}: {names:?}"
        );
        for name in &names {
            assert!(
                [
                    "PATH",
                    "LANG",
                    "TERM",
                    "HOME",
                    "TMPDIR",
                    "TAKT_RUN_ID",
                    "PWD",
                    "SHLVL",
                    "_",
                    "CARGO_HOME",
                    "RUSTUP_HOME",
                    "OLDPWD"
                ]
                .contains(name),
                "{mode:?}: unexpected variable {name} in {names:?}"
            );
        }
        assert!(names.contains(&"TAKT_RUN_ID"), "{mode:?}: {}", ran.all());
    });
}

/// Agents' shells are often login shells (Codex runs `bash -lc`): the host's `/etc/profile`
/// would replace the allowed PATH with the distribution's, and the toolchains (`~/.cargo/bin`)
/// would vanish from the agent's commands.
#[test]
fn a_login_shell_keeps_the_allowed_path() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let ran = run(
            &sandbox,
            &h,
            "echo \"PLAIN $PATH\"; sh -lc 'echo \"LOGIN $PATH\"'",
        )
        .await;
        let path = |tag: &str| {
            ran.stdout
                .lines()
                .find_map(|line| line.strip_prefix(tag))
                .map(str::to_owned)
        };
        let plain = path("PLAIN ").unwrap_or_default();
        assert_eq!(
            std::env::var("PATH").ok().as_deref(),
            Some(plain.as_str()),
            "{mode:?}: {}",
            ran.all()
        );
        assert_eq!(path("LOGIN "), Some(plain), "{mode:?}: {}", ran.all());
    });
}

/// A one-shot TCP server standing in for the daemon's model endpoint.
fn fake_model() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            let _ = stream
                .write_all(format!("MODEL-SAW:{}", String::from_utf8_lossy(&buf[..n])).as_bytes());
        }
    });
    addr
}

const PROBE: &str = r#"
import socket, sys
def attempt(host, port):
    try:
        s = socket.create_connection((host, port), timeout=3)
        s.sendall(b"hello")
        print(host, port, "CONNECTED", s.recv(100).decode())
    except Exception as e:
        print(host, port, "REFUSED", type(e).__name__)
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    attempt(host, int(port))
try:
    socket.getaddrinfo("example.com", 80)
    print("DNS RESOLVED")
except Exception as e:
    print("DNS FAILED", type(e).__name__)
try:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"x", ("8.8.8.8", 53))
    print("UDP SENT")
except Exception as e:
    print("UDP REFUSED", type(e).__name__)
"#;

/// Runs the network probe against `targets` (`host:port`) inside the sandbox.
async fn probe_network(sandbox: &takt_sandbox::Sandbox, h: &Harness, targets: &[String]) -> Ran {
    std::fs::write(h.workspace().join("probe.py"), PROBE).unwrap();
    run(
        sandbox,
        h,
        &format!("python3 probe.py {}", targets.join(" ")),
    )
    .await
}

#[test]
fn only_the_model_endpoint_is_reachable() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let model = fake_model();
        // Another service on the host's loopback (the daemon's HTTP port, say).
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let other_port = other.local_addr().unwrap().port();
        let sandbox = sandbox(policy(mode), Some(model));
        let targets = [
            format!("127.0.0.1:{}", model.port()),
            format!("127.0.0.1:{other_port}"),
            "93.184.215.14:80".to_owned(),
        ];
        let ran = probe_network(&sandbox, &h, &targets).await;
        let all = ran.all();
        assert!(
            ran.stdout.contains(&format!(
                "127.0.0.1 {} CONNECTED MODEL-SAW:hello",
                model.port()
            )),
            "{mode:?}: the model must be reachable: {all}"
        );
        assert!(
            ran.stdout
                .contains(&format!("127.0.0.1 {other_port} REFUSED")),
            "{mode:?}: {all}"
        );
        assert!(
            ran.stdout.contains("93.184.215.14 80 REFUSED"),
            "{mode:?}: {all}"
        );
        assert!(ran.stdout.contains("DNS FAILED"), "{mode:?}: {all}");
        assert!(!ran.stdout.contains("UDP SENT"), "{mode:?}: {all}");
        drop(other);
    });
}

#[test]
fn network_none_reaches_nothing() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let model = fake_model();
        let mut policy = policy(mode);
        policy.network = Network::None;
        let sandbox = sandbox(policy, Some(model));
        let ran = probe_network(&sandbox, &h, &[format!("127.0.0.1:{}", model.port())]).await;
        assert!(ran.stdout.contains("REFUSED"), "{mode:?}: {}", ran.all());
        assert!(!ran.stdout.contains("CONNECTED"), "{mode:?}: {}", ran.all());
    });
}

#[test]
fn a_fork_bomb_is_contained_and_reported() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let mut policy = policy(mode);
        policy.limits.pids = Some(32);
        policy.limits.wall_clock_ms = Some(4_000);
        let sandbox = sandbox(policy, None);
        let ran = run(
            &sandbox,
            &h,
            "i=0; while [ $i -lt 200 ]; do sleep 3174 & i=$((i+1)); done; echo forked; wait",
        )
        .await;
        let report = ran.report.clone().expect("a report");
        let kinds: Vec<ViolationKind> = report.violations.iter().map(|v| v.kind).collect();
        if takt_sandbox::user::running_as_root() {
            // cgroups: the refusals are counted and reported.
            assert!(
                kinds.contains(&ViolationKind::Pids),
                "{mode:?}: {}",
                ran.all()
            );
        }
        assert!(
            ran.stderr.to_lowercase().contains("fork"),
            "{mode:?}: {}",
            ran.all()
        );
        // A number no other test sleeps for (`sleep 30` also matched the wall-clock test's
        // `sleep 300` running beside it), and a bounded wait for the killed to be reaped.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !alive_with("sleep\x003174\x00").is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            alive_with("sleep\x003174\x00").is_empty(),
            "{mode:?}: bomb survivors"
        );
    });
}

#[test]
fn memory_past_the_limit_is_killed_or_refused() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let mut policy = policy(mode);
        policy.limits.memory_mb = Some(100);
        let sandbox = sandbox(policy, None);
        let ran = run(&sandbox, &h, "python3 -c 'b = bytearray(300*1024*1024); b[::4096] = b\"x\" * len(b[::4096]); print(\"ALLOCATED\")'").await;
        assert!(!ran.stdout.contains("ALLOCATED"), "{mode:?}: {}", ran.all());
        assert_ne!(ran.code, Some(0), "{mode:?}: {}", ran.all());
        if takt_sandbox::user::running_as_root() {
            let report = ran.report.clone().expect("a report");
            assert!(
                report
                    .violations
                    .iter()
                    .any(|v| v.kind == ViolationKind::Memory),
                "{mode:?}: an OOM kill must be reported: {}",
                ran.all()
            );
        }
    });
}

#[test]
fn the_wall_clock_kills_and_is_reported() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let mut policy = policy(mode);
        policy.limits.wall_clock_ms = Some(500);
        let sandbox = sandbox(policy, None);
        // `run` gives up after 60 s: the sleep outlasts that unless the sandbox killed it.
        let ran = run(&sandbox, &h, "sleep 300").await;
        let report = ran.report.clone().expect("a report");
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.kind == ViolationKind::WallClock),
            "{mode:?}: {}",
            ran.all()
        );
    });
}

fn alive_with(token: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(token))
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn no_background_process_outlives_the_run() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        // setsid and a double fork: escapes a process group, not the sandbox.
        let ran = run(
            &sandbox,
            &h,
            "(setsid sleep 3171 &) ; (sleep 3172 &) ; echo left",
        )
        .await;
        assert!(ran.stdout.contains("left"), "{mode:?}: {}", ran.all());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (!alive_with("sleep\x003171\x00").is_empty()
            || !alive_with("sleep\x003172\x00").is_empty())
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            alive_with("sleep\x003171\x00").is_empty(),
            "{mode:?}: setsid'd process survived"
        );
        assert!(
            alive_with("sleep\x003172\x00").is_empty(),
            "{mode:?}: background process survived"
        );
    });
}

#[test]
fn symlinks_out_of_the_workspace_lead_nowhere() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let script = format!(
            "ln -s {secret} leak; ln -s {other} other; cat leak 2>&1; cat other/secret.txt 2>&1; echo x > other/planted 2>&1; echo done",
            secret = h.outside_secret.display(),
            other = h.other_workspace.display()
        );
        let ran = run(&sandbox, &h, &script).await;
        assert!(ran.stdout.contains("done"), "{mode:?}: {}", ran.all());
        assert!(!ran.stdout.contains("SENTINEL"), "{mode:?}: {}", ran.all());
        assert!(!h.other_workspace.join("planted").exists(), "{mode:?}");
    });
}

/// The inner stage leaves its layers in the launch's io directory, which the agent may write;
/// the supervisor, reading it back with more privileges, must not follow a link put there.
#[test]
fn a_link_planted_for_the_supervisor_to_read_is_not_followed() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let script = format!(
            "for f in /run/takt/net/layers {run}/sandbox/*/io/layers; do \
               if [ -e \"$f\" ]; then rm -f \"$f\" && ln -s {secret} \"$f\" && echo planted; fi; \
             done; true",
            run = h.scope.run_dir.display(),
            secret = h.outside_secret.display()
        );
        let ran = run(&sandbox, &h, &script).await;
        if mode == Mode::Bwrap {
            assert!(ran.stdout.contains("planted"), "{mode:?}: {}", ran.all());
        }
        let report = ran.report.expect("a report");
        assert!(
            !format!("{report:?}").contains("SENTINEL"),
            "{mode:?}: the supervisor read through the link: {report:?}"
        );
    });
}

#[test]
fn reports_say_how_the_run_was_confined() {
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let ran = run(&sandbox, &h, "exit 3").await;
        assert_eq!(ran.code, Some(3), "{mode:?}: {}", ran.all());
        let report = ran.report.expect("a report");
        assert_eq!(report.exit_code, Some(3));
        assert_eq!(
            report.mechanism,
            if mode == Mode::Bwrap {
                "bwrap"
            } else {
                "landlock"
            }
        );
        assert!(
            report.layers.iter().any(|l| l.starts_with("landlock")),
            "{report:?}"
        );
        assert!(
            report.layers.iter().any(|l| l.starts_with("seccomp")),
            "{report:?}"
        );
        if takt_sandbox::user::running_as_root() {
            assert_eq!(report.user, "takt-agent");
        }
        assert!(report.violations.is_empty(), "{report:?}");
    });
}

/// Every agent process runs inside the run's memory and pids cgroups from its first
/// instruction: the sandbox's first read of its own membership already shows them (with
/// bubblewrap, as the root of the sandbox's cgroup namespace, which bubblewrap fixed before
/// the agent existed), and from outside that root is the run's cgroup.
#[test]
fn the_agent_starts_inside_the_runs_cgroups() {
    if !takt_sandbox::user::running_as_root() {
        return;
    }
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let marker = if mode == Mode::Bwrap { "3177" } else { "3178" };
        let script = format!("grep -E ':(memory|pids):' /proc/self/cgroup; exec sleep {marker}");
        let token = format!("sleep\x00{marker}\x00");
        let outside = async {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(pid) = alive_with(&token).first() {
                    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    return cgroups;
                }
                assert!(std::time::Instant::now() < deadline, "{mode:?}: no agent");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let (ran, cgroups) = tokio::join!(run(&sandbox, &h, &script), outside);
        for controller in ["memory", "pids"] {
            let line = |text: &str| {
                text.lines()
                    .find(|l| l.split(':').nth(1) == Some(controller))
                    .map(|l| l.splitn(3, ':').nth(2).unwrap_or_default().to_owned())
            };
            let host = line(&cgroups).unwrap_or_default();
            assert!(
                host.rsplit('/')
                    .next()
                    .is_some_and(|g| g.starts_with("takt-test-")),
                "{mode:?}: the agent is in {controller}:{host}, not the run's cgroup"
            );
            let first = line(&ran.stdout).unwrap_or_default();
            let expected = if mode == Mode::Bwrap {
                "/"
            } else {
                host.as_str()
            };
            assert_eq!(first, expected, "{mode:?}: {}", ran.all());
        }
    });
}

/// A workspace is handed to the agent user once per daemon, not walked on every launch (a
/// large checkout costs tens of milliseconds to walk); a workspace made again at the same path
/// is a new directory and is handed over again.
#[test]
fn a_workspace_is_handed_over_once_and_again_when_it_is_made_anew() {
    if !takt_sandbox::user::running_as_root() {
        return; // Only a root daemon hands workspaces to the agent user.
    }
    for_each_mode(async |mode| {
        let h = Harness::new();
        let sandbox = sandbox(policy(mode), None);
        let ws = h.workspace().to_path_buf();
        std::fs::write(ws.join("first.txt"), "root's\n").unwrap();
        let ran = run(&sandbox, &h, "echo more >> first.txt && echo wrote").await;
        assert!(ran.stdout.contains("wrote"), "{mode:?}: {}", ran.all());

        // Root writes a file into the handed-over workspace: the next launch leaves it be.
        std::fs::write(ws.join("later.txt"), "root's\n").unwrap();
        let ran = run(&sandbox, &h, "echo more >> later.txt || echo refused").await;
        assert!(
            ran.stdout.contains("refused"),
            "{mode:?}: the workspace was walked again: {}",
            ran.all()
        );

        // Made anew (a removed and recreated workspace): handed over again.
        std::fs::remove_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("again.txt"), "root's\n").unwrap();
        let ran = run(&sandbox, &h, "echo more >> again.txt && echo wrote").await;
        assert!(ran.stdout.contains("wrote"), "{mode:?}: {}", ran.all());
    });
}
