//! The supervisor stage: outside the sandbox, started by the daemon with a spec file.
//!
//! It prepares what needs privileges, serves the relays' unix sockets, starts bubblewrap (or
//! the inner stage under Landlock) as the agent user, enforces the wall clock, kills whatever
//! is left when the agent exits, and writes the containment report. Its exit code is the
//! agent's (128 + signal when the agent was killed).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::CacheOverlay;
use crate::bwrap::{self, Bind, IN_NET};
use crate::cgroup::RunCgroups;
use crate::policy::{Limits, Mechanism, Network};
use crate::report::{ContainmentReport, Violation, ViolationKind};
use crate::spec::{ExecSpec, InnerSpec, Relay, SPEC_VERSION, write_json};
use crate::stage::Stage;

/// Port the egress proxy listens on inside a bubblewrap sandbox.
pub const EGRESS_PORT: u16 = 3128;

pub(crate) fn run(spec_path: &Path) -> i32 {
    let spec: ExecSpec = match crate::spec::load(spec_path) {
        Ok(spec) => spec,
        Err(line) => {
            eprintln!("{line}");
            return 125;
        }
    };
    // If the daemon dies, so does the supervisor, and with it (die-with-parent) the sandbox.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    // Orphaned descendants come back to us, so none outlives the run even without a pid
    // namespace or cgroup.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // Staging must happen before any thread exists (unshare of the mount namespace).
    let stage = match &spec.agent_user {
        Some(user) if spec.mechanism == Mechanism::Bwrap => {
            match Stage::create(user.uid, user.gid) {
                Ok(stage) => Some(stage),
                Err(reason) => {
                    eprintln!("takt sandbox: cannot stage the sandbox's directories: {reason}");
                    return 125;
                }
            }
        }
        _ => None,
    };
    // Entered now, while this is the process's only thread (see `RunCgroups::enter`): all it
    // starts later, the sandbox included, begins inside.
    let cgroups = if spec.agent_user.is_some() && spec.mechanism != Mechanism::Unconfined {
        let mut cgroups = RunCgroups::create(&spec.launch_id, &spec.limits);
        cgroups.enter();
        cgroups
    } else {
        RunCgroups::default()
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("takt sandbox: cannot start: {error}");
            return 125;
        }
    };
    let code = runtime.block_on(supervise(&spec, stage, &cgroups));
    drop(runtime);
    code
}

async fn supervise(spec: &ExecSpec, stage: Option<Stage>, cgroups: &RunCgroups) -> i32 {
    let started = Instant::now();
    let mut report = ContainmentReport {
        mechanism: spec.mechanism.as_str().to_owned(),
        user: spec
            .agent_user
            .as_ref()
            .map_or_else(current_user, |u| u.name.clone()),
        network: spec.network.as_str().to_owned(),
        ..ContainmentReport::default()
    };
    match prepare_and_run(spec, stage.as_ref(), cgroups, &mut report).await {
        Ok(code) => {
            report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            if let Err(error) = write_json(&spec.report_path(), &report) {
                eprintln!("takt sandbox: {error}");
            }
            code
        }
        Err(reason) => {
            eprintln!("takt sandbox: {reason}");
            125
        }
    }
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map_or_else(|| nix::unistd::Uid::effective().to_string(), |u| u.name)
}

async fn prepare_and_run(
    spec: &ExecSpec,
    stage: Option<&Stage>,
    cgroups: &RunCgroups,
    report: &mut ContainmentReport,
) -> Result<i32, String> {
    let io_dir = spec.launch_dir.join("io");
    fs_err::create_dir_all(&io_dir).map_err(|e| e.to_string())?;
    let owner = spec.agent_user.as_ref().map(|u| (u.uid, u.gid));
    let bwrap_mode = spec.mechanism == Mechanism::Bwrap;
    if let Some(placed) = &spec.view {
        if !bwrap_mode {
            return Err(format!(
                "the workspace is to be shown at {}, which needs bubblewrap's mount namespace",
                placed.view.at.display()
            ));
        }
        if let Some(cache) = &placed.view.build_cache {
            prepare_cache_layers(cache, owner)?;
        }
    }
    if let Some((uid, gid)) = owner {
        for path in spec.writable.iter().chain([&io_dir]) {
            if !(spec.handed_over.contains(path) && owned_by(path, uid, gid)) {
                chown_tree(path, uid, gid);
            }
        }
    }

    report
        .limits_applied
        .extend(cgroups.applied.iter().cloned());
    let inner_limits = Limits {
        memory_mb: spec.limits.memory_mb.filter(|_| !cgroups.has("memory")),
        pids: spec.limits.pids.filter(|_| !cgroups.has("pids")),
        ..spec.limits.clone()
    };

    // Networking: unix sockets outside, loopback relays inside (bubblewrap), or direct TCP
    // with Landlock port rules.
    let denied = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let mut relays = Vec::new();
    let mut env = spec.env.clone();
    let mut connect_ports = Vec::new();
    let in_io = |name: &str| -> PathBuf {
        if bwrap_mode {
            Path::new(IN_NET).join(name)
        } else {
            io_dir.join(name)
        }
    };
    if bwrap_mode {
        // Sockets are bound by relative name: a deep state directory would exceed the
        // 108-byte limit of a socket path.
        std::env::set_current_dir(&io_dir).map_err(|e| format!("{}: {e}", io_dir.display()))?;
    }
    if spec.network != Network::None
        && let Some(model) = spec.model
    {
        if bwrap_mode {
            let socket = PathBuf::from("model.sock");
            tasks.push(
                crate::relay::serve_outside(socket.clone(), model)
                    .map_err(|e| format!("model relay: {e}"))?,
            );
            open_socket(&socket);
            relays.push(Relay {
                port: model.port(),
                socket: in_io("model.sock"),
            });
        } else {
            connect_ports.push(model.port());
        }
    }
    if let Network::Allowlist(hosts) = &spec.network {
        let socket = PathBuf::from("egress.sock");
        let port = if bwrap_mode {
            let listener = tokio::net::UnixListener::bind(&socket)
                .map_err(|e| format!("egress proxy: {e}"))?;
            open_socket(&socket);
            tasks.push(crate::egress::serve(
                crate::egress::Listener::Unix(listener),
                hosts.clone(),
                denied.clone(),
            ));
            relays.push(Relay {
                port: EGRESS_PORT,
                socket: in_io("egress.sock"),
            });
            EGRESS_PORT
        } else {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("egress proxy: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            tasks.push(crate::egress::serve(
                crate::egress::Listener::Tcp(listener),
                hosts.clone(),
                denied.clone(),
            ));
            connect_ports.push(port);
            port
        };
        let proxy = format!("http://127.0.0.1:{port}");
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push((name.to_owned(), proxy.clone()));
        }
        env.push(("NO_PROXY".into(), "localhost,127.0.0.1".into()));
        env.push(("no_proxy".into(), "localhost,127.0.0.1".into()));
    }

    let mut writable: Vec<PathBuf> = spec.writable.iter().map(|path| shown(spec, path)).collect();
    let inner = InnerSpec {
        version: SPEC_VERSION,
        program: spec.program.clone(),
        args: spec.args.clone(),
        writable: if bwrap_mode {
            writable.extend([
                "/tmp".into(),
                bwrap::IN_HOME.into(),
                "/dev".into(),
                IN_NET.into(),
            ]);
            writable
        } else {
            writable.extend([spec.home.clone(), io_dir.clone(), "/dev".into()]);
            writable
        },
        readable: (!bwrap_mode).then(|| landlock_readable(spec)),
        connect_ports: (!bwrap_mode).then_some(connect_ports),
        deny_datagram: !bwrap_mode,
        relays,
        limits: inner_limits,
        require_landlock: !bwrap_mode,
        io_dir: Some(if bwrap_mode {
            IN_NET.into()
        } else {
            io_dir.clone()
        }),
    };
    let inner_path = spec.launch_dir.join("inner.json");
    write_json(&inner_path, &inner).map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = owner {
        let _ = nix::unistd::chown(&inner_path, Some(uid.into()), Some(gid.into()));
    }

    let mut command = if bwrap_mode {
        let bwrap_path = spec.bwrap.clone().ok_or("bwrap is not installed")?;
        let mut binds = Vec::new();
        for (paths, writable) in [(&spec.readable, false), (&spec.writable, true)] {
            for path in paths {
                if path.exists() {
                    binds.push(Bind {
                        source: path.clone(),
                        dest: shown(spec, path),
                        writable,
                    });
                }
            }
        }
        let plan = bwrap::Plan {
            binds,
            helper: spec.helper.clone(),
            inner_spec: inner_path.clone(),
            net_dir: Some(io_dir.clone()),
            cwd: spec.cwd.clone(),
            overlays: spec
                .view
                .iter()
                .filter_map(|placed| {
                    let cache = placed.view.build_cache.as_ref()?;
                    Some(bwrap::Overlay {
                        lower: cache.lower.clone(),
                        upper: cache.upper.clone(),
                        work: cache.work.clone(),
                        dest: placed.view.at.join(&cache.dir),
                    })
                })
                .collect(),
        };
        let args = match stage {
            Some(stage) => {
                let nodes = bwrap::tree(&plan);
                stage.lay_out(&nodes)?;
                bwrap::prepared_args(stage.root(), &nodes, &plan.cwd)
            }
            None => bwrap::args(&plan),
        };
        let mut command = tokio::process::Command::new(bwrap_path);
        command.args(args);
        env.push(("HOME".into(), bwrap::IN_HOME.into()));
        command
    } else {
        fs_err::create_dir_all(&spec.home).map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = owner {
            chown_tree(&spec.home, uid, gid);
        }
        env.push(("HOME".into(), spec.home.display().to_string()));
        env.push(("TMPDIR".into(), spec.home.display().to_string()));
        if let Some(user) = &spec.agent_user {
            // Without a mount namespace the agent user walks the host's directories itself.
            for path in spec.writable.iter().chain([&spec.cwd, &inner_path]) {
                if let Some(blocked) = untraversable(path, user.uid, user.gid) {
                    return Err(format!(
                        "the agent user `{}` cannot enter {} (mode {:o}), which leads to {}: Landlock \
                         mode runs in the host's file system. Use `sandbox.mode: bwrap` (or `auto` \
                         where bubblewrap works), or let others traverse it (`chmod o+x`)",
                        user.name,
                        blocked.0.display(),
                        blocked.1,
                        path.display()
                    ));
                }
            }
        }
        let mut command = tokio::process::Command::new(&spec.helper);
        command
            .arg(crate::INNER_ARG)
            .arg(&inner_path)
            .current_dir(&spec.cwd);
        command
    };
    command.env_clear().envs(env).kill_on_drop(true);
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    if !bwrap_mode {
        report.limits_missing.push(
            "no network or pid namespace (landlock mode): TCP limited by port, UDP denied by seccomp"
                .into(),
        );
    }

    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the sandbox: {e}"))?;
    let child_pid = child.id();
    let wall_clock = spec.limits.wall_clock_ms.map(Duration::from_millis);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let outcome = tokio::select! {
        status = child.wait() => Some(status.map_err(|e| e.to_string())?),
        () = sleep_or_forever(wall_clock) => {
            report.violations.push(Violation {
                kind: ViolationKind::WallClock,
                detail: format!(
                    "killed after the sandbox wall clock of {} ms",
                    spec.limits.wall_clock_ms.unwrap_or_default()
                ),
            });
            None
        }
        _ = terminate.recv() => None,
    };
    let status = match outcome {
        Some(status) => status,
        None => {
            if let Some(pid) = child_pid.and_then(|p| i32::try_from(p).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            child.wait().await.map_err(|e| e.to_string())?
        }
    };
    for task in tasks {
        task.abort();
    }

    use std::os::unix::process::ExitStatusExt;
    report.exit_code = status.code();
    report.exit_signal = status.signal();
    report
        .violations
        .extend(observed(spec, &status, cgroups, &denied));
    report.leftovers_killed = kill_descendants() + cgroups.kill_members();
    // Written by the inner stage where the agent may write too: never read through a link.
    if let Some(layers) =
        crate::shared::read_plain(&io_dir.join(crate::inner::LAYERS_FILE), 64 * 1024)
    {
        let (applied, layers): (Vec<String>, Vec<String>) = layers
            .lines()
            .map(str::to_owned)
            .partition(|l| l.contains("(rlimit") || l.starts_with("core dumps"));
        report.limits_applied.extend(applied);
        report.layers.extend(layers);
    }
    if bwrap_mode {
        report
            .layers
            .insert(0, "namespaces (mount, pid, net, ipc, uts, user)".into());
    }
    for (name, value) in [
        ("memory", spec.limits.memory_mb),
        ("pids", spec.limits.pids),
    ] {
        if value.is_some()
            && !report
                .limits_applied
                .iter()
                .any(|a| a.starts_with(name) || (name == "pids" && a.starts_with("processes")))
        {
            report
                .limits_missing
                .push(format!("{name}: no cgroup or rlimit could enforce it here"));
        }
    }
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// What the exit status, the cgroups and the egress proxy say the sandbox stopped.
fn observed(
    spec: &ExecSpec,
    status: &std::process::ExitStatus,
    cgroups: &RunCgroups,
    denied: &Mutex<Vec<String>>,
) -> Vec<Violation> {
    use std::os::unix::process::ExitStatusExt;
    let limits = &spec.limits;
    let mut found = Vec::new();
    let mut saw = |kind, detail: String| found.push(Violation { kind, detail });
    // bubblewrap reports a killed child as 128 + signal.
    let signal = status.signal().or_else(|| {
        status
            .code()
            .filter(|c| *c > 128 && *c < 160)
            .map(|c| c - 128)
    });
    if signal == Some(Signal::SIGXCPU as i32) {
        saw(
            ViolationKind::Cpu,
            format!(
                "killed at the CPU-time limit of {} s",
                limits.cpu_seconds.unwrap_or_default()
            ),
        );
    }
    if signal == Some(Signal::SIGXFSZ as i32) {
        saw(
            ViolationKind::FileSize,
            format!(
                "killed writing past the file-size limit of {} MiB",
                limits.file_size_mb.unwrap_or_default()
            ),
        );
    }
    let oom = cgroups.oom_kills();
    if oom > 0 {
        saw(
            ViolationKind::Memory,
            format!(
                "{oom} process(es) killed at the memory limit of {} MiB",
                limits.memory_mb.unwrap_or_default()
            ),
        );
    }
    let refused = cgroups.pids_refusals();
    if refused > 0 {
        saw(
            ViolationKind::Pids,
            format!(
                "{refused} fork(s) refused at the process limit of {}",
                limits.pids.unwrap_or_default()
            ),
        );
    }
    if let Ok(hosts) = denied.lock()
        && !hosts.is_empty()
    {
        saw(
            ViolationKind::Network,
            format!(
                "connections refused by the egress allow-list: {}",
                hosts.join(", ")
            ),
        );
    }
    found
}

async fn sleep_or_forever(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// The first directory above `path` that `uid`/`gid` may not enter, with its mode.
fn untraversable(path: &Path, uid: u32, gid: u32) -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    path.ancestors().skip(1).find_map(|dir| {
        let meta = fs_err::metadata(dir).ok()?;
        let mode = meta.mode() & 0o7777;
        let allowed = if meta.uid() == uid {
            mode & 0o100 != 0
        } else if meta.gid() == gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        (!allowed).then(|| (dir.to_path_buf(), mode))
    })
}

/// Where the sandbox shows the writable `path`: the view's path for the workspace, its own
/// path for everything else.
fn shown(spec: &ExecSpec, path: &Path) -> PathBuf {
    match &spec.view {
        Some(placed) if placed.workspace == path => placed.view.at.clone(),
        _ => path.to_path_buf(),
    }
}

/// Makes the build cache overlay's upper and work directories. The upper layer's top is the
/// overlay's top directory, which the agent must be able to write in.
fn prepare_cache_layers(cache: &CacheOverlay, owner: Option<(u32, u32)>) -> Result<(), String> {
    let plain_name = Path::new(&cache.dir)
        .components()
        .map(|component| matches!(component, std::path::Component::Normal(_)))
        .eq([true]);
    if !plain_name {
        return Err(format!(
            "the build cache's directory `{}` is not one plain name",
            cache.dir
        ));
    }
    for dir in [&cache.upper, &cache.work] {
        fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    if let Some((uid, gid)) = owner
        && !owned_by(&cache.upper, uid, gid)
    {
        nix::unistd::chown(&cache.upper, Some(uid.into()), Some(gid.into()))
            .map_err(|e| format!("{}: {e}", cache.upper.display()))?;
    }
    Ok(())
}

/// What Landlock alone lets the agent read: the system, the granted paths, and nothing of
/// the operator's HOME or the daemon's state.
fn landlock_readable(spec: &ExecSpec) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/proc",
        "/dev",
        "/sys/devices/system/cpu",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    paths.extend(
        bwrap::ETC_ENTRIES
            .iter()
            .chain(bwrap::LOGIN_PROFILE)
            .map(PathBuf::from),
    );
    paths.extend(spec.readable.iter().cloned());
    paths.push(spec.helper.clone());
    paths
}

/// Makes a socket connectable by the agent user (it lives in a directory only this launch
/// binds).
fn open_socket(path: &Path) {
    let _ = fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o666));
}

/// Gives `path` and everything below it to the agent user, without following symlinks.
/// Whether `path` itself (not what is below it) belongs to `uid`/`gid`.
fn owned_by(path: &Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs_err::symlink_metadata(path).is_ok_and(|meta| meta.uid() == uid && meta.gid() == gid)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return;
    };
    if meta.uid() != uid || meta.gid() != gid {
        let _ = nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            path,
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
    }
    if meta.is_dir()
        && let Ok(entries) = fs_err::read_dir(path)
    {
        for entry in entries.flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}

/// Kills every process that was reparented to this subreaper, until none is left, and reaps
/// them. Returns how many were still alive.
fn kill_descendants() -> u32 {
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_millis(500);
    // Most runs end with bubblewrap's pid 1 a few hundred microseconds from its own exit:
    // short naps first, so that the run's end does not wait a whole millisecond for it.
    let mut nap = Duration::from_micros(50);
    for round in 0.. {
        reap();
        let children = live_children();
        if children.is_empty() || Instant::now() >= deadline {
            break;
        }
        for pid in children {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() && round == 0 {
                killed += 1;
            }
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(2));
    }
    killed
}

/// Collects every exited child without blocking.
fn reap() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// This process's children that have not exited (zombies are reaped, not killed).
fn live_children() -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(tasks) = fs_err::read_dir("/proc/self/task") else {
        return pids;
    };
    for task in tasks.flatten() {
        let Ok(list) = fs_err::read_to_string(task.path().join("children")) else {
            continue;
        };
        pids.extend(
            list.split_whitespace()
                .filter_map(|pid| pid.parse::<i32>().ok()),
        );
    }
    pids.retain(|pid| crate::cgroup::alive(*pid));
    pids
}
