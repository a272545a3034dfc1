//! The fork server: one long-lived helper process per sandbox that forks a supervisor for each
//! launch, so that a launch pays for a `fork` of a small, already started process instead of
//! an `exec` of the whole takt binary (its loader relocations and start-up are most of the
//! sandbox's own launch cost, see docs/BENCHMARKS.md §5).
//!
//! The daemon starts it once ([`crate::SERVE_ARG`], the control socket as stdin) and sends
//! each launch as one `SOCK_SEQPACKET` message: the spec file's path, with the supervisor's
//! stdin, stdout and stderr and a status socket attached (`SCM_RIGHTS`). The server forks; the
//! child becomes the supervisor exactly as an exec'd one would, in its own process group. On
//! the status socket the server writes the child's pid (a native-endian `i32`; a negative one
//! is an errno: the fork failed), then comes a wait status: the supervisor writes its own
//! exit code as one just before it exits, and the server writes the real one when it reaps
//! the child. The daemon takes the first, so a supervisor killed before it could say is
//! still reported. A supervisor whose status
//! socket the daemon closes early (it dropped the handle) is killed. When the daemon's end of
//! the control socket closes — the daemon exited or was killed — the server exits, and every
//! supervisor, whose parent-death signal points at the server, dies with it.
//!
//! The server never starts a thread: that is what makes `fork` safe here.

use std::collections::HashMap;
use std::io::{IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};
use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
use rustix::process::{PidfdFlags, WaitOptions, pidfd_open, waitpid};

/// The longest spec path a request may carry.
pub(crate) const MAX_REQUEST: usize = 4096;
/// stdin, stdout, stderr and the status socket.
pub(crate) const FDS_PER_REQUEST: usize = 4;

/// One launch as the daemon sent it.
struct Request {
    spec: PathBuf,
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    status: UnixStream,
}

/// A forked supervisor the server still waits for.
struct Running {
    pidfd: OwnedFd,
    status: UnixStream,
    /// The daemon closed its end of `status`: the supervisor was killed.
    abandoned: bool,
}

/// What a ready descriptor of a child means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Event {
    Exited,
    Abandoned,
}

/// Serves launches until the daemon goes away; returns the process's exit code.
pub(crate) fn run() -> i32 {
    match serve() {
        Ok(()) => 0,
        Err(reason) => {
            eprintln!("takt sandbox fork server: {reason}");
            125
        }
    }
}

fn serve() -> Result<(), String> {
    if threads() != Some(1) {
        return Err("must be its process's only thread to fork safely".into());
    }
    // The control socket arrives as stdin; keep it under another number (close-on-exec) so
    // that no supervisor inherits it as fd 0.
    let control = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("control socket: {e}"))?;
    let null = fs_err::File::open("/dev/null").map_err(|e| e.to_string())?;
    nix::unistd::dup2_stdin(&null).map_err(|e| format!("stdin: {e}"))?;
    drop(null);
    // Not to hold whatever directory the daemon was started in busy.
    std::env::set_current_dir("/").map_err(|e| format!("/: {e}"))?;
    // Checked once so that a kernel without pidfds (before 5.3) makes the daemon fall back to
    // exec'ing supervisors, instead of failing every launch.
    pidfd_open(rustix::process::getpid(), PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open: {e}"))?;

    let mut running: HashMap<Pid, Running> = HashMap::new();
    loop {
        let pids: Vec<Pid> = running.keys().copied().collect();
        let (control_ready, exited, abandoned) = {
            let mut fds = vec![PollFd::new(&control, PollFlags::IN)];
            // Per child: its pidfd, then, while the daemon holds its end, its status socket.
            let mut watched = Vec::with_capacity(pids.len());
            for pid in &pids {
                let Some(child) = running.get(pid) else {
                    continue;
                };
                fds.push(PollFd::new(&child.pidfd, PollFlags::IN));
                watched.push((*pid, Event::Exited));
                if !child.abandoned {
                    fds.push(PollFd::new(&child.status, PollFlags::RDHUP));
                    watched.push((*pid, Event::Abandoned));
                }
            }
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(error) => return Err(format!("poll: {error}")),
            }
            let ready = |event: Event| -> Vec<Pid> {
                watched
                    .iter()
                    .zip(&fds[1..])
                    .filter(|((_, what), fd)| *what == event && !fd.revents().is_empty())
                    .map(|((pid, _), _)| *pid)
                    .collect()
            };
            (
                !fds[0].revents().is_empty(),
                ready(Event::Exited),
                ready(Event::Abandoned),
            )
        };
        for pid in abandoned {
            // The daemon dropped the launch (its handle, or the spawn half-way): nobody would
            // ever wait for this supervisor, so it goes now and takes its sandbox with it.
            if let Some(child) = running.get_mut(&pid) {
                child.abandoned = true;
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
        }
        for pid in exited {
            reap(&mut running, pid);
        }
        if !control_ready {
            continue;
        }
        let request = match receive(&control) {
            Ok(Received::Launch(request)) => request,
            Ok(Received::Nothing) => continue,
            // The daemon is gone: so are we, and our supervisors with us.
            Ok(Received::DaemonGone) => return Ok(()),
            Err(reason) => {
                eprintln!("takt sandbox fork server: a launch was refused: {reason}");
                continue;
            }
        };
        match fork() {
            Ok(ForkResult::Child) => become_supervisor(request, control, running),
            Ok(ForkResult::Parent { child }) => {
                // Also set by the child; whichever runs first wins, so that the daemon never
                // signals a group that does not exist yet.
                let _ = nix::unistd::setpgid(child, child);
                let Request { mut status, .. } = request;
                let pidfd = rustix::process::Pid::from_raw(child.as_raw())
                    .ok_or(rustix::io::Errno::SRCH)
                    .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()));
                match pidfd {
                    Ok(pidfd) => {
                        let _ = status.write_all(&child.as_raw().to_ne_bytes());
                        running.insert(
                            child,
                            Running {
                                pidfd,
                                status,
                                abandoned: false,
                            },
                        );
                    }
                    Err(error) => {
                        // Without a pidfd its end would go unnoticed: stop it and say why.
                        let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                        let _ = nix::sys::wait::waitpid(child, None);
                        let _ = status.write_all(&(-error.raw_os_error()).to_ne_bytes());
                    }
                }
            }
            Err(errno) => {
                let Request { mut status, .. } = request;
                let _ = status.write_all(&(-(errno as i32)).to_ne_bytes());
            }
        }
    }
}

/// `fork(2)`.
#[allow(unsafe_code)]
fn fork() -> nix::Result<ForkResult> {
    // SAFETY: `serve` checked that this process has a single thread, and the server never
    // starts one, so no lock or allocator state can be held by a thread that the child lacks.
    unsafe { nix::unistd::fork() }
}

/// The child's side of a fork: drop everything of the server's, take the request's stdio as
/// fds 0-2, and run the supervisor stage.
fn become_supervisor(request: Request, control: OwnedFd, running: HashMap<Pid, Running>) -> ! {
    let server = nix::unistd::getppid();
    drop(control);
    drop(running);
    let Request {
        spec,
        stdin,
        stdout,
        stderr,
        mut status,
    } = request;
    let stdio = nix::unistd::dup2_stdin(&stdin)
        .and_then(|()| nix::unistd::dup2_stdout(&stdout))
        .and_then(|()| nix::unistd::dup2_stderr(&stderr));
    drop((stdin, stdout, stderr));
    if let Err(error) = stdio {
        eprintln!("takt sandbox fork server: stdio: {error}");
        std::process::exit(125);
    }
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // The supervisor sets its parent-death signal itself; a server that died before that
    // would never send it.
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() != server {
        std::process::exit(125);
    }
    let code = crate::supervisor::run(&spec);
    // Said before this process is torn down (its mount namespace, its memory), which the
    // daemon need not wait for: the sandbox is gone and the report written. The stdio pipes
    // close first, so that a daemon reading them to their end does not wait either.
    if let Ok(null) = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null)
            .and_then(|()| nix::unistd::dup2_stdout(&null))
            .and_then(|()| nix::unistd::dup2_stderr(&null));
    }
    let _ = status.write_all(&((code & 0xff) << 8).to_ne_bytes());
    std::process::exit(code)
}

/// What the control socket held.
enum Received {
    Launch(Request),
    /// A wake-up without a message (an interrupted call).
    Nothing,
    /// The daemon closed its end.
    DaemonGone,
}

/// Reads one launch.
fn receive(control: &OwnedFd) -> Result<Received, String> {
    let mut bytes = [0u8; MAX_REQUEST];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_REQUEST))];
    let mut ancillary = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(
        control,
        &mut [IoSliceMut::new(&mut bytes)],
        &mut ancillary,
        RecvFlags::CMSG_CLOEXEC,
    );
    let received = match received {
        Ok(received) => received,
        Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => return Ok(Received::Nothing),
        Err(error) => return Err(format!("receiving: {error}")),
    };
    let mut fds: Vec<OwnedFd> = ancillary
        .drain()
        .filter_map(|message| match message {
            RecvAncillaryMessage::ScmRights(fds) => Some(fds),
            _ => None,
        })
        .flatten()
        .collect();
    if received.bytes == 0 && fds.is_empty() {
        return Ok(Received::DaemonGone);
    }
    if fds.len() != FDS_PER_REQUEST || received.bytes > MAX_REQUEST {
        return Err(format!(
            "{} bytes with {} file descriptors, expected a spec path with {FDS_PER_REQUEST}",
            received.bytes,
            fds.len()
        ));
    }
    let status = UnixStream::from(fds.remove(3));
    let stderr = fds.remove(2);
    let stdout = fds.remove(1);
    let stdin = fds.remove(0);
    let spec = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes[..received.bytes]));
    Ok(Received::Launch(Request {
        spec,
        stdin,
        stdout,
        stderr,
        status,
    }))
}

/// Collects an exited supervisor and tells the daemon how it ended.
fn reap(running: &mut HashMap<Pid, Running>, pid: Pid) {
    let Some(raw) = rustix::process::Pid::from_raw(pid.as_raw()) else {
        return;
    };
    if let Ok(Some((_, status))) = waitpid(Some(raw), WaitOptions::NOHANG)
        && let Some(mut child) = running.remove(&pid)
    {
        let _ = child.status.write_all(&status.as_raw().to_ne_bytes());
    }
}

/// This process's thread count, from `/proc/self/status`.
fn threads() -> Option<u32> {
    let status = fs_err::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}
