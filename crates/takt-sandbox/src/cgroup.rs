//! Per-launch cgroups: memory and pids limits where the daemon may set them (v1 controllers
//! as root, v2 where delegated), and reliable tree kills. Every controller is optional; the
//! report says which ones were applied.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::policy::Limits;

/// A mounted hierarchy and this process's cgroup in it.
#[derive(Debug, Clone)]
struct Hierarchy {
    /// `memory`, `pids` (v1) or `unified` (v2).
    name: &'static str,
    /// Our own cgroup directory in it.
    own: PathBuf,
}

fn hierarchies() -> Vec<Hierarchy> {
    let Ok(membership) = fs_err::read_to_string("/proc/self/cgroup") else {
        return Vec::new();
    };
    let Ok(mountinfo) = fs_err::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (name, mount) = if controllers.is_empty() {
            ("unified", mount_point(&mountinfo, "cgroup2", None))
        } else if controllers.split(',').any(|c| c == "memory") {
            ("memory", mount_point(&mountinfo, "cgroup", Some("memory")))
        } else if controllers.split(',').any(|c| c == "pids") {
            ("pids", mount_point(&mountinfo, "cgroup", Some("pids")))
        } else {
            continue;
        };
        if let Some(mount) = mount {
            found.push(Hierarchy {
                name,
                own: mount.join(path.trim_start_matches('/')),
            });
        }
    }
    found
}

/// The mount point of a cgroup filesystem (`controller` among the super options for v1).
fn mount_point(mountinfo: &str, fstype: &str, controller: Option<&str>) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        if right.next()? != fstype {
            return None;
        }
        let options = right.nth(1).unwrap_or_default();
        if let Some(controller) = controller
            && !options.split(',').any(|o| o == controller)
        {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// What this daemon could use, for `takt doctor`.
pub(crate) fn support() -> Vec<String> {
    let mut out = Vec::new();
    for hierarchy in hierarchies() {
        if !writable(&hierarchy.own) {
            continue;
        }
        match hierarchy.name {
            "memory" => out.push("memory (v1)".to_owned()),
            "pids" => out.push("pids (v1)".to_owned()),
            _ => {
                let delegated =
                    fs_err::read_to_string(hierarchy.own.join("cgroup.subtree_control"))
                        .unwrap_or_default();
                for controller in ["memory", "pids"] {
                    if delegated.split_whitespace().any(|c| c == controller) {
                        out.push(format!("{controller} (v2)"));
                    }
                }
                if hierarchy.own.join("cgroup.kill").exists() {
                    out.push("kill (v2)".to_owned());
                }
            }
        }
    }
    out
}

/// One launch's cgroups.
#[derive(Debug, Default)]
pub(crate) struct RunCgroups {
    dirs: Vec<(&'static str, PathBuf)>,
    pub applied: Vec<String>,
}

impl RunCgroups {
    /// Creates `takt-<launch>` beside ourselves in every usable hierarchy and sets the limits
    /// each can enforce. Failures only mean fewer controllers.
    pub(crate) fn create(launch_id: &str, limits: &Limits) -> RunCgroups {
        let mut groups = RunCgroups::default();
        let all = hierarchies();
        let has_v1 = all.iter().any(|h| h.name != "unified" && writable(&h.own));
        for hierarchy in all {
            if !writable(&hierarchy.own) {
                continue;
            }
            // A v2 cgroup without controllers adds nothing where v1 ones hold the run.
            if hierarchy.name == "unified" && has_v1 && !delegates_limits(&hierarchy.own) {
                continue;
            }
            let dir = hierarchy.own.join(format!("takt-{launch_id}"));
            if let Err(error) = fs_err::create_dir(&dir)
                && error.kind() != std::io::ErrorKind::AlreadyExists
            {
                tracing::debug!(%error, "cgroup not created");
                continue;
            }
            let set = |file: &str, value: String| fs_err::write(dir.join(file), value).is_ok();
            match hierarchy.name {
                "memory" => {
                    if let Some(mb) = limits.memory_mb
                        && set("memory.limit_in_bytes", (mb * 1024 * 1024).to_string())
                    {
                        // Without swap accounting the limit also bounds swap use.
                        let _ = set(
                            "memory.memsw.limit_in_bytes",
                            (mb * 1024 * 1024).to_string(),
                        );
                        groups.applied.push(format!("memory {mb} MiB (cgroup v1)"));
                    }
                }
                "pids" => {
                    if let Some(pids) = limits.pids
                        && set("pids.max", pids.to_string())
                    {
                        groups.applied.push(format!("pids {pids} (cgroup v1)"));
                    }
                }
                _ => {
                    if let Some(mb) = limits.memory_mb
                        && dir.join("memory.max").exists()
                        && set("memory.max", (mb * 1024 * 1024).to_string())
                    {
                        groups.applied.push(format!("memory {mb} MiB (cgroup v2)"));
                    }
                    if let Some(pids) = limits.pids
                        && dir.join("pids.max").exists()
                        && set("pids.max", pids.to_string())
                    {
                        groups.applied.push(format!("pids {pids} (cgroup v2)"));
                    }
                }
            }
            groups.dirs.push((hierarchy.name, dir));
        }
        groups
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.applied.iter().any(|a| a.starts_with(name))
    }

    /// Moves this process in, so that everything it starts is accounted and limited. A
    /// hierarchy it could not enter is dropped, with its limits, so that the report never
    /// claims a limit that does not hold.
    ///
    /// Call it while the process has a single thread: it then moves itself as a thread (v1
    /// `tasks`), which the kernel does without write-locking the global thread-group lock;
    /// moving a whole process (`cgroup.procs`) switches that lock to its slow mode and waits
    /// an RCU grace period (5-15 ms here) on every launch. With more threads, or in a v2
    /// hierarchy, it moves the whole process.
    pub(crate) fn enter(&mut self) {
        let alone = single_threaded();
        let pid = std::process::id().to_string();
        let mut failed = Vec::new();
        for (name, dir) in &self.dirs {
            let (file, value) = if alone && *name != "unified" {
                ("tasks", "0")
            } else {
                ("cgroup.procs", pid.as_str())
            };
            if let Err(error) = fs_err::write(dir.join(file), value) {
                tracing::debug!(%error, "could not enter the run cgroup");
                failed.push(*name);
            }
        }
        for name in failed {
            let version = if name == "unified" {
                "(cgroup v2)"
            } else {
                "(cgroup v1)"
            };
            self.applied.retain(|applied| {
                !(applied.ends_with(version) && (name == "unified" || applied.starts_with(name)))
            });
            self.dirs.retain(|(n, _)| *n != name);
        }
    }

    /// OOM kills in the memory cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        let mut kills = 0;
        for (name, dir) in &self.dirs {
            let (file, key) = match *name {
                "memory" => ("memory.oom_control", "oom_kill"),
                _ => ("memory.events", "oom_kill"),
            };
            kills += counter(&dir.join(file), key);
        }
        kills
    }

    /// Forks refused by the pids limit.
    pub(crate) fn pids_refusals(&self) -> u64 {
        self.dirs
            .iter()
            .map(|(_, dir)| counter(&dir.join("pids.events"), "max"))
            .sum()
    }

    /// Kills whatever else is still in the cgroups; returns how many. The supervisor stays
    /// inside and the daemon removes the empty cgroups later ([`sweep_stale`]): leaving a
    /// cgroup costs an RCU grace period (5-15 ms here), which would delay every run's end.
    pub(crate) fn kill_members(&self) -> u32 {
        let mut killed = 0;
        for _ in 0..1000 {
            let round: u32 = self.dirs.iter().map(|(_, dir)| kill_members(dir)).sum();
            if round == 0 {
                break;
            }
            killed = killed.max(round);
            std::thread::sleep(Duration::from_millis(1));
        }
        killed
    }
}

/// Whether this process has exactly one thread.
fn single_threaded() -> bool {
    fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .map(|count| count.trim() == "1")
        })
        .unwrap_or(false)
}

/// Whether `pid` can still run: it exists, and it is neither a zombie nor already exiting.
/// A process past the point of no return in `exit` never runs its code again; waiting for it
/// to finish would wait for the kernel to tear down its namespaces (bubblewrap's pid 1 takes
/// about a millisecond), on the run's critical path. A main thread that exited while others
/// run shows as a zombie, so more than one thread counts as alive.
pub(crate) fn alive(pid: i32) -> bool {
    fs_err::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .is_some_and(|stat| can_run(&stat))
}

/// The kernel's flag for a task inside `exit` (`PF_EXITING`).
const EXITING: u64 = 0x4;

/// [`alive`] for one `/proc/<pid>/stat` line.
fn can_run(stat: &str) -> bool {
    // The command name may hold spaces and parentheses; the fields start after the last `)`.
    let Some(rest) = stat.rfind(')').and_then(|at| stat.get(at + 1..)) else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let number = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    let (Some(state), Some(flags), Some(threads)) = (fields.first(), number(6), number(17)) else {
        return false;
    };
    threads > 1 || (!matches!(*state, "Z" | "X") && flags & EXITING == 0)
}

fn delegates_limits(dir: &Path) -> bool {
    fs_err::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "memory" || c == "pids")
}

fn counter(file: &Path, key: &str) -> u64 {
    fs_err::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (name, value) = line.split_once(' ')?;
                (name == key).then(|| value.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

fn members(dir: &Path) -> Vec<i32> {
    fs_err::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

fn kill_members(dir: &Path) -> u32 {
    let own = i32::try_from(std::process::id()).unwrap_or(0);
    let mut killed = 0;
    // Zombies stay members until their parent reaps them; only the living are killed.
    for pid in members(dir) {
        if pid != own && alive(pid) && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            killed += 1;
        }
    }
    killed
}

/// Removes launch cgroups whose supervisor has exited: this daemon's (`takt-<prefix>-*`)
/// as soon as they are empty — at startup (`kill`) after killing members a killed supervisor
/// left behind — and other daemons' once empty for a minute (their daemon may be gone; a
/// live launch's cgroup always holds its supervisor). Returns how many were removed.
pub fn sweep_stale(prefix: &str, kill: bool) -> usize {
    let ours = format!("takt-{prefix}-");
    let mut removed = 0;
    for hierarchy in hierarchies() {
        let Ok(entries) = fs_err::read_dir(&hierarchy.own) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !name.starts_with("takt-") || !path.is_dir() {
                continue;
            }
            if name.starts_with(&ours) {
                if kill {
                    kill_members(&path);
                    std::thread::sleep(Duration::from_millis(20));
                }
            } else {
                let idle = fs_err::metadata(&path)
                    .and_then(|meta| meta.modified())
                    .ok()
                    .and_then(|at| at.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(60));
                if !idle || !members(&path).is_empty() {
                    continue;
                }
            }
            if fs_err::remove_dir(&path).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/<pid>/stat` line with the fields [`can_run`] reads.
    fn stat(comm: &str, state: &str, flags: u64, threads: u64) -> String {
        format!("42 ({comm}) {state} 1 42 42 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 {threads} 0 100")
    }

    #[test]
    fn a_running_or_sleeping_process_can_run() {
        assert!(can_run(&stat("agent", "R", 0x400000, 1)));
        assert!(can_run(&stat("agent", "S", 0x400000, 1)));
        assert!(can_run(&stat("a) S (b", "D", 0, 1)));
    }

    #[test]
    fn zombies_and_exiting_processes_never_run_again() {
        assert!(!can_run(&stat("agent", "Z", 0x400000, 1)));
        assert!(!can_run(&stat("agent", "X", 0, 1)));
        // bubblewrap's pid 1 tearing down its namespaces: still `R` or `D`, but exiting.
        assert!(!can_run(&stat("bwrap", "R", 0x400000 | EXITING, 1)));
        assert!(!can_run(&stat("bwrap", "D", EXITING, 1)));
        assert!(!can_run("garbage"));
    }

    #[test]
    fn a_process_whose_main_thread_exited_still_runs_its_other_threads() {
        assert!(can_run(&stat("agent", "Z", EXITING, 3)));
    }

    #[test]
    fn this_process_is_alive() {
        assert!(alive(i32::try_from(std::process::id()).unwrap_or(1)));
    }
}
