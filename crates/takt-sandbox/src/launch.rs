//! The daemon side: turn "run this program for this run" into a command that starts the
//! supervisor with a spec file.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::SandboxError;
use crate::WorkspaceView;
use crate::child::Confined;
use crate::launcher::{ForkServer, LaunchError};
use crate::policy::{Mechanism, Network, Policy};
use crate::probe::HostReport;
use crate::spec::{ExecSpec, PlacedView, SPEC_VERSION, write_json};
use crate::user::AgentUser;

/// What one run contributes: where its workspace and private files are.
#[derive(Debug, Clone)]
pub struct RunScope {
    pub run_id: String,
    /// Read-write inside.
    pub workspace: PathBuf,
    /// The run's private directory (never visible inside; specs and reports live here).
    pub run_dir: PathBuf,
    /// Git metadata the workspace points into (a worktree's mirror): read-only inside.
    pub git_dirs: Vec<PathBuf>,
    /// Where the agent sees the workspace when not at its own path (see
    /// [`Sandbox::can_show_elsewhere`]).
    pub view: Option<WorkspaceView>,
}

impl RunScope {
    /// The run's agent directory: read-write inside (prompts, per-run agent configuration
    /// such as `CODEX_HOME`).
    pub fn agent_dir(&self) -> PathBuf {
        agent_dir(&self.run_dir)
    }
}

/// The small inner-stage binary ([`crate::INNER_BINARY`]) installed beside `helper`, when it
/// is there and reads this build's specs. The inner stage runs once per launch inside the
/// sandbox; exec'ing a 2 MB binary instead of the whole of takt spares the loader most of its
/// relocations (see docs/BENCHMARKS.md §5). Without it the helper runs the inner stage too.
pub fn inner_stage_beside(helper: &Path) -> Option<PathBuf> {
    let inner = helper.with_file_name(crate::INNER_BINARY);
    if !inner.is_file() {
        return None;
    }
    let output = std::process::Command::new(&inner)
        .arg(crate::SPEC_VERSION_ARG)
        .env_clear()
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(output) if output.stdout.trim_ascii() == crate::spec_fingerprint().as_bytes() => {
            Some(inner)
        }
        Ok(output) => {
            tracing::warn!(
                inner = %inner.display(),
                says = %String::from_utf8_lossy(output.stdout.trim_ascii()),
                expected = %crate::spec_fingerprint(),
                "the sandbox's inner-stage binary is from another build; the helper runs the inner stage"
            );
            None
        }
        Err(error) => {
            tracing::warn!(inner = %inner.display(), %error, "the sandbox's inner-stage binary does not run; the helper runs the inner stage");
            None
        }
    }
}

/// `<run_dir>/agent`, the part of a run directory an agent may see.
pub fn agent_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("agent")
}

/// One program to start confined.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The backend's own variables (run token, config paths); added to the allow-listed ones.
    pub env: Vec<(String, String)>,
    /// Extra read-only paths the backend needs (its CLI's install directory).
    pub read_only: Vec<PathBuf>,
    /// Names never passed from the daemon's environment even when `sandbox.env` lists them
    /// (provider, tracker and forge secrets). `env` above still wins.
    pub remove_env: Vec<String>,
}

/// The sandbox every agent process of a daemon starts through.
#[derive(Debug)]
pub struct Sandbox {
    mechanism: Mechanism,
    policy: Policy,
    helper: PathBuf,
    /// The binary that runs the inner stage: `helper` itself, or a small one beside it.
    inner: PathBuf,
    bwrap: Option<PathBuf>,
    agent_user: Option<AgentUser>,
    model: Option<SocketAddr>,
    /// Prefix of this daemon's cgroup names, so a restart sweeps only its own.
    key: String,
    launches: AtomicU64,
    /// Writable directories (device, inode) a launch already gave to the agent user.
    handed_over: Mutex<HashSet<(u64, u64)>>,
    fork_server: Mutex<ServerSlot>,
}

/// Where a sandbox's fork server stands.
#[derive(Debug)]
enum ServerSlot {
    NotStarted,
    Running(Arc<ForkServer>),
    /// It does not work here (or was switched off): supervisors are exec'd.
    Unusable,
}

/// A launch made ready to start.
enum Prepared {
    /// The program itself, with its filtered environment.
    Unconfined(Launch, Vec<(String, String)>),
    /// A supervisor, with the path of its spec file.
    Supervised(PathBuf),
}

impl Sandbox {
    /// The sandbox `policy` gets on this host; fails when its mode cannot be had (never
    /// silently unconfined).
    pub fn new(
        policy: Policy,
        host: &HostReport,
        helper: PathBuf,
        key: &str,
    ) -> Result<Sandbox, SandboxError> {
        let mechanism = host.resolve(policy.mode)?;
        let agent_user = match (&host.agent_user, mechanism) {
            (_, Mechanism::Unconfined) | (None, _) => None,
            (Some(Ok(user)), _) => Some(user.clone()),
            (Some(Err(reason)), _) => {
                return Err(SandboxError::AgentUser {
                    user: policy.user,
                    reason: reason.clone(),
                });
            }
        };
        Ok(Sandbox {
            mechanism,
            policy,
            inner: helper.clone(),
            helper,
            bwrap: host.bwrap.as_ref().ok().map(|(path, _)| path.clone()),
            agent_user,
            model: None,
            key: key.to_owned(),
            launches: AtomicU64::new(0),
            handed_over: Mutex::new(HashSet::new()),
            fork_server: Mutex::new(ServerSlot::NotStarted),
        })
    }

    /// Unconfined, with the environment filtered: for tests of the backends themselves and for
    /// `sandbox.mode: none`.
    pub fn unconfined(policy: Policy) -> Sandbox {
        Sandbox {
            mechanism: Mechanism::Unconfined,
            policy,
            helper: PathBuf::new(),
            inner: PathBuf::new(),
            bwrap: None,
            agent_user: None,
            model: None,
            key: String::new(),
            launches: AtomicU64::new(0),
            handed_over: Mutex::new(HashSet::new()),
            fork_server: Mutex::new(ServerSlot::Unusable),
        }
    }

    /// The daemon's model endpoint, relayed into every sandbox.
    pub fn with_model_endpoint(mut self, endpoint: SocketAddr) -> Sandbox {
        self.model = Some(endpoint);
        self
    }

    /// Runs the inner stage with `binary` (see [`inner_stage_beside`]) instead of the helper.
    pub fn with_inner_stage(mut self, binary: PathBuf) -> Sandbox {
        self.inner = binary;
        self
    }

    /// The takt binary agents' processes may start (takt's MCP server for host tools), made
    /// readable by the launch that names it; `None` for a sandbox built without one (tests of
    /// the backends).
    pub fn takt_binary(&self) -> Option<PathBuf> {
        (!self.helper.as_os_str().is_empty()).then(|| self.helper.clone())
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether a [`RunScope::view`] can be honoured: only bubblewrap gives each launch a file
    /// tree of its own.
    pub fn can_show_elsewhere(&self) -> bool {
        self.mechanism == Mechanism::Bwrap
    }

    /// One line for evidence: mechanism, user, network.
    pub fn describe(&self) -> String {
        match self.mechanism {
            Mechanism::Unconfined => {
                "unsandboxed (sandbox.mode: none): the agent runs as the daemon's user".into()
            }
            mechanism => format!(
                "sandbox {} as {}, network {}",
                mechanism.as_str(),
                self.agent_user
                    .as_ref()
                    .map_or("the daemon's user", |u| u.name.as_str()),
                self.policy.network.as_str()
            ),
        }
    }

    /// The prefix of this daemon's cgroups (for [`crate::cgroup_sweep`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Starts `launch` for `scope` inside the sandbox, with piped stdio, in its own process
    /// group, killed when dropped. The supervisor is forked by this sandbox's fork server
    /// (started on first use) where it works, else exec'd as [`Sandbox::command`] does. With
    /// `Mechanism::Unconfined` it is the program itself with the filtered environment.
    pub async fn spawn(&self, scope: &RunScope, launch: Launch) -> Result<Confined, SandboxError> {
        let prepared = self.prepare(scope, launch)?;
        if let Prepared::Supervised(spec) = &prepared
            && let Some(server) = self.fork_server()
        {
            match server.launch(spec).await {
                Ok(child) => return Ok(child),
                Err(LaunchError::NotStarted(error)) => {
                    return Err(SandboxError::Start {
                        reason: error.to_string(),
                    });
                }
                Err(LaunchError::NotForked(error)) => self.forget_fork_server(&server, &error),
                Err(LaunchError::Busy) => {
                    tracing::warn!(
                        "the sandbox's fork server is busy; this launch execs its supervisor"
                    );
                }
            }
        }
        Confined::spawn(self.command_for(prepared)).map_err(|error| SandboxError::Start {
            reason: error.to_string(),
        })
    }

    /// A command that runs `launch` for `scope` inside the sandbox by exec'ing the supervisor,
    /// for callers that wrap it in another command. Its stdio is piped; it leads its own
    /// process group and is killed when dropped. With `Mechanism::Unconfined` it is the
    /// program itself with the filtered environment.
    pub fn command(
        &self,
        scope: &RunScope,
        launch: Launch,
    ) -> Result<tokio::process::Command, SandboxError> {
        Ok(self.command_for(self.prepare(scope, launch)?))
    }

    /// Starts supervisors by exec only, never through a fork server (benchmarks compare the
    /// two).
    pub fn without_fork_server(mut self) -> Sandbox {
        self.fork_server = Mutex::new(ServerSlot::Unusable);
        self
    }

    fn prepare(&self, scope: &RunScope, launch: Launch) -> Result<Prepared, SandboxError> {
        let env = self.environment(&launch);
        if let Some(view) = &scope.view
            && !self.can_show_elsewhere()
        {
            return Err(SandboxError::Unavailable {
                mechanism: self.mechanism.as_str(),
                reason: format!(
                    "it cannot show the workspace at {} (only bubblewrap can)",
                    view.at.display()
                ),
            });
        }
        if self.mechanism == Mechanism::Unconfined {
            return Ok(Prepared::Unconfined(launch, env));
        }
        Ok(Prepared::Supervised(self.write_spec(scope, launch, env)?))
    }

    fn command_for(&self, prepared: Prepared) -> tokio::process::Command {
        let mut command = match prepared {
            Prepared::Unconfined(launch, env) => {
                let mut command = tokio::process::Command::new(&launch.program);
                command
                    .args(&launch.args)
                    .current_dir(&launch.cwd)
                    .env_clear()
                    .envs(env);
                command
            }
            Prepared::Supervised(spec) => {
                let mut command = tokio::process::Command::new(&self.helper);
                command.arg(crate::SUPERVISE_ARG).arg(spec).env_clear();
                command
            }
        };
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        command
    }

    /// This sandbox's fork server, started on first use; `None` when it does not work here.
    fn fork_server(&self) -> Option<Arc<ForkServer>> {
        let mut slot = self.fork_server.lock().ok()?;
        if let ServerSlot::NotStarted = *slot {
            *slot = match ForkServer::start(&self.helper) {
                Ok(server) => ServerSlot::Running(Arc::new(server)),
                Err(error) => {
                    tracing::warn!(%error, "the sandbox's fork server cannot start; supervisors are exec'd");
                    ServerSlot::Unusable
                }
            };
        }
        match &*slot {
            ServerSlot::Running(server) => Some(server.clone()),
            ServerSlot::NotStarted | ServerSlot::Unusable => None,
        }
    }

    /// After a launch `server` did not fork: a server that had worked is replaced on the next
    /// launch; one that never did does not work on this host.
    fn forget_fork_server(&self, server: &Arc<ForkServer>, error: &std::io::Error) {
        let Ok(mut slot) = self.fork_server.lock() else {
            return;
        };
        if !matches!(&*slot, ServerSlot::Running(current) if Arc::ptr_eq(current, server)) {
            return;
        }
        if server.forked.load(Ordering::Relaxed) {
            tracing::warn!(%error, "the sandbox's fork server is gone; the next launch starts another");
            *slot = ServerSlot::NotStarted;
        } else {
            tracing::warn!(%error, "the sandbox's fork server does not work on this host; supervisors are exec'd");
            *slot = ServerSlot::Unusable;
        }
    }

    fn environment(&self, launch: &Launch) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .policy
            .env
            .iter()
            .filter(|name| !launch.remove_env.contains(name))
            .filter_map(|name| Some((name.clone(), std::env::var_os(name)?.into_string().ok()?)))
            .collect();
        if self.mechanism == Mechanism::Unconfined
            && let Some(home) = std::env::var_os("HOME").and_then(|h| h.into_string().ok())
        {
            env.push(("HOME".into(), home));
        }
        for (name, value) in toolchain_env() {
            if !env.iter().any(|(n, _)| *n == name) {
                env.push((name, value));
            }
        }
        for (name, value) in &launch.env {
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        env
    }

    fn write_spec(
        &self,
        scope: &RunScope,
        launch: Launch,
        env: Vec<(String, String)>,
    ) -> Result<PathBuf, SandboxError> {
        let seq = self.launches.fetch_add(1, Ordering::Relaxed);
        // Unique across concurrent daemons: cgroups of all of them live side by side.
        let launch_id = format!(
            "{}-{}-{}-{seq}",
            self.key,
            std::process::id(),
            sanitize(&scope.run_id)
        );
        let launch_dir = scope.run_dir.join("sandbox").join(&launch_id);
        fs_err::create_dir_all(&launch_dir)
            .map_err(|error| SandboxError::io("creating", &launch_dir, error))?;
        let agent_dir = scope.agent_dir();
        fs_err::create_dir_all(&agent_dir)
            .map_err(|error| SandboxError::io("creating", &agent_dir, error))?;
        let mut writable = vec![scope.workspace.clone(), agent_dir.clone()];
        writable.extend(self.policy.read_write.iter().cloned());
        let mut readable: Vec<PathBuf> = scope.git_dirs.clone();
        readable.extend(launch.read_only.iter().cloned());
        readable.extend(self.policy.read_only.iter().cloned());
        readable.extend(toolchain_dirs());
        for path in writable.iter_mut().chain(readable.iter_mut()) {
            *path = without_dots(path);
        }
        readable.retain(|path| !writable.iter().any(|w| w == path));
        readable.dedup();
        let handed_over = self.hand_over(&writable);
        let spec = ExecSpec {
            version: SPEC_VERSION,
            mechanism: self.mechanism,
            helper: self.inner.clone(),
            bwrap: self.bwrap.clone(),
            program: if launch.program.contains('/') {
                without_dots(Path::new(&launch.program))
                    .display()
                    .to_string()
            } else {
                launch.program
            },
            args: launch.args,
            cwd: shown_cwd(scope, &without_dots(&launch.cwd)),
            env,
            writable,
            handed_over,
            readable,
            home: agent_dir.join("home"),
            network: self.policy.network.clone(),
            model: match self.policy.network {
                Network::None => None,
                _ => self.model,
            },
            limits: self.policy.limits.clone(),
            agent_user: self.agent_user.clone(),
            launch_dir: launch_dir.clone(),
            launch_id,
            view: scope.view.clone().map(|view| PlacedView {
                workspace: without_dots(&scope.workspace),
                view,
            }),
        };
        let path = launch_dir.join("spec.json");
        write_json(&path, &spec)?;
        Ok(path)
    }
}

impl Sandbox {
    /// Which of `writable` an earlier launch already handed to the agent user (the same
    /// directory by device and inode); the rest count as handed over from this launch on.
    /// Handing over walks the whole tree, which costs tens of milliseconds for a large
    /// checkout: once per workspace, not once per command.
    fn hand_over(&self, writable: &[PathBuf]) -> Vec<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        if self.agent_user.is_none() {
            return Vec::new();
        }
        let Ok(mut seen) = self.handed_over.lock() else {
            return Vec::new();
        };
        writable
            .iter()
            .filter(|path| {
                fs_err::metadata(path).is_ok_and(|meta| !seen.insert((meta.dev(), meta.ino())))
            })
            .cloned()
            .collect()
    }
}

/// `cwd` as the confined process sees it: below the workspace's view when the workspace is
/// shown elsewhere.
fn shown_cwd(scope: &RunScope, cwd: &Path) -> PathBuf {
    match (
        &scope.view,
        cwd.strip_prefix(without_dots(&scope.workspace)),
    ) {
        (Some(view), Ok(rest)) if rest.as_os_str().is_empty() => view.at.clone(),
        (Some(view), Ok(rest)) => view.at.join(rest),
        _ => cwd.to_path_buf(),
    }
}

/// `path` without `.` and `..` components, its directory resolved as the file system does
/// (links included) and its last name kept (a CLI's `.bin/` link stays the link): inside the
/// sandbox only the bound directories exist, not those a `..` climbs out of. Paths without
/// such components, or whose directory does not exist, are kept as they are.
pub fn without_dots(path: &Path) -> PathBuf {
    use std::path::Component;
    let dotted = path
        .components()
        .any(|c| matches!(c, Component::CurDir | Component::ParentDir));
    if !dotted {
        return path.to_path_buf();
    }
    let resolved = match (path.parent(), path.components().next_back()) {
        (Some(parent), Some(Component::Normal(name))) => {
            fs_err::canonicalize(parent).map(|dir| dir.join(name))
        }
        _ => fs_err::canonicalize(path),
    };
    resolved.unwrap_or_else(|_| path.to_path_buf())
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect()
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// Toolchain directories named by PATH outside the system directories, visible read-only.
fn toolchain_dirs() -> Vec<PathBuf> {
    toolchain_dirs_for(std::env::var_os("PATH"), home().as_deref())
}

/// The directories `path` (a PATH value) asks for: a toolchain's `bin` as its whole install
/// (`/opt/node/bin` -> `/opt/node`, `~/.pyenv/bin` -> `~/.pyenv`: the shims need the rest); a
/// cargo home only as its binaries and package caches (never `credentials.toml` or a config
/// holding registry tokens) plus the rustup home beside it; `~/.local/bin` and anything whose
/// parent would be HOME (or `/`) by itself only.
fn toolchain_dirs_for(path: Option<std::ffi::OsString>, home: Option<&Path>) -> Vec<PathBuf> {
    let Some(path) = path else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for entry in std::env::split_paths(&path) {
        if !entry.is_absolute()
            || ["/usr", "/bin", "/sbin", "/lib"]
                .iter()
                .any(|system| entry.starts_with(system))
            || !entry.is_dir()
        {
            continue;
        }
        let parent = entry.parent().filter(|_| entry.ends_with("bin"));
        match parent {
            Some(cargo) if cargo.ends_with(".cargo") => {
                dirs.extend(
                    ["bin", "registry", "git"]
                        .iter()
                        .map(|sub| cargo.join(sub))
                        .filter(|dir| dir.is_dir()),
                );
                if let Some(rustup) = cargo.parent().map(|p| p.join(".rustup"))
                    && rustup.is_dir()
                {
                    dirs.push(rustup);
                }
            }
            Some(install)
                if install != Path::new("/")
                    && !install.ends_with(".local")
                    && home.is_none_or(|home| !home.starts_with(install)) =>
            {
                dirs.push(install.to_path_buf());
            }
            _ => dirs.push(entry.clone()),
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// With a private HOME, rustup and cargo must be told where their homes are.
fn toolchain_env() -> Vec<(String, String)> {
    let mut env = Vec::new();
    for dir in toolchain_dirs() {
        let (name, home) = if dir.ends_with(".cargo/bin") {
            ("CARGO_HOME", dir.parent().map(Path::to_path_buf))
        } else if dir.ends_with(".rustup") {
            ("RUSTUP_HOME", Some(dir.clone()))
        } else {
            continue;
        };
        if let Some(text) = home.as_deref().and_then(Path::to_str) {
            env.push((name.to_owned(), text.to_owned()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn toolchains_are_visible_but_never_home_or_registry_credentials() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        for dir in [
            ".cargo/bin",
            ".cargo/registry",
            ".rustup",
            "bin",
            ".local/bin",
        ] {
            fs_err::create_dir_all(home.join(dir)).unwrap();
        }
        fs_err::write(home.join(".cargo/credentials.toml"), "token").unwrap();
        let opt = root.path().join("opt/node");
        fs_err::create_dir_all(opt.join("bin")).unwrap();
        fs_err::create_dir_all(home.join(".pyenv/bin")).unwrap();
        let path = std::env::join_paths([
            home.join(".cargo/bin"),
            home.join("bin"),
            home.join(".local/bin"),
            home.join(".pyenv/bin"),
            opt.join("bin"),
            PathBuf::from("/usr/bin"),
            PathBuf::from("relative/bin"),
        ])
        .unwrap();
        let dirs = toolchain_dirs_for(Some(path), Some(&home));
        assert_eq!(
            dirs,
            [
                home.join(".cargo/bin"),
                home.join(".cargo/registry"),
                home.join(".local/bin"),
                home.join(".pyenv"),
                home.join(".rustup"),
                home.join("bin"),
                opt,
            ]
        );
        assert!(!dirs.iter().any(|d| d == &home || d == &home.join(".cargo")));
    }
}
