//! What the inner stage applies to itself before running the agent: rlimits, Landlock and a
//! seccomp filter. Each returns a description for the containment report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
};
use nix::sys::resource::{Resource, setrlimit};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::policy::Limits;

const MIB: u64 = 1024 * 1024;
const ABI_USED: ABI = ABI::V5;

/// Sets the rlimits for `limits`. `memory_by_cgroup` skips the memory rlimit when a cgroup
/// already enforces it (RLIMIT_DATA would only make allocations fail instead of a clean OOM).
pub(crate) fn apply_rlimits(limits: &Limits, memory_by_cgroup: bool) -> Vec<String> {
    let mut applied = Vec::new();
    let mut set = |resource: Resource, soft: u64, hard: u64, text: String| match setrlimit(
        resource, soft, hard,
    ) {
        Ok(()) => applied.push(text),
        Err(error) => tracing::debug!(?resource, %error, "rlimit not applied"),
    };
    set(
        Resource::RLIMIT_CORE,
        0,
        0,
        "core dumps off (rlimit)".into(),
    );
    if let Some(mb) = limits.memory_mb
        && !memory_by_cgroup
    {
        // RLIMIT_DATA, not RLIMIT_AS: runtimes such as V8 reserve far more address space
        // than they ever touch.
        set(
            Resource::RLIMIT_DATA,
            mb * MIB,
            mb * MIB,
            format!("memory {mb} MiB (rlimit data)"),
        );
    }
    if let Some(seconds) = limits.cpu_seconds {
        // The soft limit sends SIGXCPU, which the report recognizes; the hard one kills.
        set(
            Resource::RLIMIT_CPU,
            seconds,
            seconds + 5,
            format!("cpu {seconds} s (rlimit)"),
        );
    }
    if let Some(mb) = limits.file_size_mb {
        set(
            Resource::RLIMIT_FSIZE,
            mb * MIB,
            mb * MIB,
            format!("file size {mb} MiB (rlimit)"),
        );
    }
    if let Some(files) = limits.open_files {
        set(
            Resource::RLIMIT_NOFILE,
            files,
            files,
            format!("open files {files} (rlimit)"),
        );
    }
    applied
}

/// The per-user process limit, for when no pids cgroup is available.
pub(crate) fn apply_nproc(limits: &Limits) -> Option<String> {
    let pids = limits.pids?;
    setrlimit(Resource::RLIMIT_NPROC, pids, pids)
        .ok()
        .map(|()| format!("processes {pids} per user (rlimit)"))
}

/// Landlock: `writable` gets every right, `readable` (or, with `None`, the whole visible
/// tree) read and execute, and with `connect_ports` TCP connect is allowed to those ports
/// only and bind to none.
pub(crate) fn apply_landlock(
    writable: &[PathBuf],
    readable: Option<&[PathBuf]>,
    connect_ports: Option<&[u16]>,
) -> Result<String, String> {
    let all = AccessFs::from_all(ABI_USED);
    let read = AccessFs::from_read(ABI_USED);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(|e| e.to_string())?;
    if connect_ports.is_some() {
        ruleset = ruleset
            .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
            .map_err(|e| e.to_string())?;
    }
    let mut created = ruleset.create().map_err(|e| e.to_string())?;
    let root = [PathBuf::from("/")];
    for path in readable.unwrap_or(&root) {
        created = add_path(created, path, read)?;
    }
    for path in writable {
        created = add_path(created, path, all)?;
    }
    for port in connect_ports.unwrap_or_default() {
        created = created
            .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
            .map_err(|e| e.to_string())?;
    }
    let status = created.restrict_self().map_err(|e| e.to_string())?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok("landlock (fully enforced)".into()),
        RulesetStatus::PartiallyEnforced => {
            Ok("landlock (partially enforced: older kernel ABI)".into())
        }
        RulesetStatus::NotEnforced => Err("landlock is not enforced by this kernel".into()),
    }
}

fn add_path(
    created: landlock::RulesetCreated,
    path: &Path,
    access: landlock::BitFlags<AccessFs>,
) -> Result<landlock::RulesetCreated, String> {
    let Ok(fd) = PathFd::new(path) else {
        // A path that does not exist here has nothing to grant.
        return Ok(created);
    };
    // Directory-only rights on a file are rejected: keep the ones a file can have.
    let access = if path.is_dir() {
        access
    } else {
        access & AccessFs::from_file(ABI_USED)
    };
    created
        .add_rule(PathBeneath::new(fd, access))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Syscalls no agent needs and that widen the kernel's attack surface.
const DENIED_SYSCALLS: &[i64] = &[
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_open_by_handle_at,
    libc::SYS_userfaultfd,
];

/// Installs the seccomp filter: the syscalls above fail with EPERM; with `deny_datagram`,
/// UDP and raw IPv4/IPv6 sockets too (without a network namespace, DNS and UDP would
/// otherwise reach out, since Landlock only covers TCP).
pub(crate) fn apply_seccomp(deny_datagram: bool) -> Result<String, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("{e:?}"))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED_SYSCALLS
        .iter()
        .map(|call| (*call, Vec::new()))
        .collect();
    if deny_datagram {
        let mut socket_rules = Vec::new();
        for domain in [libc::AF_INET, libc::AF_INET6] {
            for kind in [libc::SOCK_DGRAM, libc::SOCK_RAW] {
                let condition = |arg, op, value| {
                    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
                        .map_err(|e| format!("{e:?}"))
                };
                let rule = SeccompRule::new(vec![
                    condition(0, SeccompCmpOp::Eq, domain as u64)?,
                    condition(1, SeccompCmpOp::MaskedEq(0xf), kind as u64)?,
                ])
                .map_err(|e| format!("{e:?}"))?;
                socket_rules.push(rule);
            }
        }
        rules.insert(libc::SYS_socket, socket_rules);
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| format!("{e:?}"))?;
    let program: BpfProgram = filter.try_into().map_err(|e| format!("{e:?}"))?;
    seccompiler::apply_filter(&program).map_err(|e| format!("{e:?}"))?;
    Ok(if deny_datagram {
        "seccomp (kernel-admin syscalls, UDP and raw sockets denied)".into()
    } else {
        "seccomp (kernel-admin syscalls denied)".into()
    })
}

/// The `__sandbox-probe landlock` helper stage: restricts itself and says how it went.
pub(crate) fn probe_landlock() -> i32 {
    match apply_landlock(&[], Some(&[PathBuf::from("/usr")]), Some(&[])) {
        Ok(status) if status.contains("fully") => {
            println!("fully enforced (ABI {})", ABI_USED as i32);
            0
        }
        Ok(status) => {
            println!("{status}");
            1
        }
        Err(reason) => {
            println!("{reason}");
            1
        }
    }
}
