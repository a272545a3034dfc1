//! The daemon's handle on a confined process, however it was started: forked by the fork
//! server (`crate::server`) or spawned by the daemon itself.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use crate::launcher::ForkServer;

/// A confined process: its stdio pipes, and waiting for and killing it. Like a
/// `tokio::process::Child` spawned with piped stdio, in its own process group and killed when
/// dropped (by the fork server, which sees the status socket close, or by tokio).
#[derive(Debug)]
pub struct Confined {
    pub stdin: Option<pipe::Sender>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
    pid: u32,
    waiter: Waiter,
}

/// What a confined process's output was, once it exited.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
enum Waiter {
    /// Spawned by the daemon (unconfined, or a supervisor started by exec).
    Spawned(tokio::process::Child),
    /// Forked by the fork server; its wait status arrives on `status` (see `crate::server`).
    Served {
        status: StatusReader,
        exited: Option<ExitStatus>,
        /// The server exits when its control socket closes, and its supervisors with it: it
        /// stays while a launch of it runs, even when its sandbox is gone.
        _server: Arc<ForkServer>,
    },
}

/// Reads the fork server's native-endian `i32`s from a launch's status socket.
#[derive(Debug)]
pub(crate) struct StatusReader {
    stream: tokio::net::UnixStream,
    bytes: [u8; 4],
    filled: usize,
}

impl StatusReader {
    pub(crate) fn new(stream: tokio::net::UnixStream) -> StatusReader {
        StatusReader {
            stream,
            bytes: [0; 4],
            filled: 0,
        }
    }

    /// The next number; `None` when the server closed the socket first. Cancel-safe.
    pub(crate) async fn next(&mut self) -> io::Result<Option<i32>> {
        while self.filled < self.bytes.len() {
            self.stream.readable().await?;
            match self.stream.try_read(&mut self.bytes[self.filled..]) {
                Ok(0) => return Ok(None),
                Ok(read) => self.filled += read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        self.filled = 0;
        Ok(Some(i32::from_ne_bytes(self.bytes)))
    }
}

/// The daemon's ends of a launch's stdio.
pub(crate) struct Pipes {
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
}

/// The child's ends, in the order the fork server expects them.
pub(crate) type ChildEnds = [OwnedFd; 3];

/// Three close-on-exec pipes: the daemon's ends registered with the runtime, the child's ends
/// to hand over.
pub(crate) fn pipes() -> io::Result<(Pipes, ChildEnds)> {
    let (stdin_read, stdin_write) = io::pipe()?;
    let (stdout_read, stdout_write) = io::pipe()?;
    let (stderr_read, stderr_write) = io::pipe()?;
    let ours = Pipes {
        stdin: pipe::Sender::from_owned_fd(stdin_write.into())?,
        stdout: pipe::Receiver::from_owned_fd(stdout_read.into())?,
        stderr: pipe::Receiver::from_owned_fd(stderr_read.into())?,
    };
    Ok((
        ours,
        [stdin_read.into(), stdout_write.into(), stderr_write.into()],
    ))
}

impl Confined {
    /// Spawns `command` with piped stdio. The command is consumed: it holds the child's ends of
    /// the pipes, which must close here for the daemon to see the end of the output.
    pub fn spawn(mut command: tokio::process::Command) -> io::Result<Confined> {
        let (ours, [stdin, stdout, stderr]) = pipes()?;
        command.stdin(stdin).stdout(stdout).stderr(stderr);
        let child = command.spawn()?;
        drop(command);
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the process ended before it could be watched"))?;
        Ok(Confined::new(pid, ours, Waiter::Spawned(child)))
    }

    /// A process the fork server forked as `pid`, reporting its end on `status`.
    pub(crate) fn served(
        pid: u32,
        ours: Pipes,
        status: StatusReader,
        server: Arc<ForkServer>,
    ) -> Confined {
        Confined::new(
            pid,
            ours,
            Waiter::Served {
                status,
                exited: None,
                _server: server,
            },
        )
    }

    fn new(pid: u32, ours: Pipes, waiter: Waiter) -> Confined {
        Confined {
            stdin: Some(ours.stdin),
            stdout: Some(ours.stdout),
            stderr: Some(ours.stderr),
            pid,
            waiter,
        }
    }

    /// The process's pid, which also names its process group; `None` once it was waited for.
    pub fn id(&self) -> Option<u32> {
        match &self.waiter {
            Waiter::Spawned(child) => child.id(),
            Waiter::Served { exited: None, .. } => Some(self.pid),
            Waiter::Served { .. } => None,
        }
    }

    /// Waits for the process to exit. Cancel-safe: a `wait` dropped mid-way loses nothing.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        match &mut self.waiter {
            Waiter::Spawned(child) => child.wait().await,
            Waiter::Served { status, exited, .. } => {
                if let Some(code) = exited {
                    return Ok(*code);
                }
                let code = match status.next().await? {
                    Some(raw) => ExitStatus::from_raw(raw),
                    // The server died before it could say; its supervisors die with it
                    // (parent-death signal), so this one was killed.
                    None => ExitStatus::from_raw(Signal::SIGKILL as i32),
                };
                *exited = Some(code);
                Ok(code)
            }
        }
    }

    /// Sends SIGKILL to the process (not its group: a supervisor takes its sandbox down
    /// itself) unless it was already waited for.
    pub fn start_kill(&mut self) -> io::Result<()> {
        match &mut self.waiter {
            Waiter::Spawned(child) => child.start_kill(),
            Waiter::Served { exited: None, .. } => signal(self.pid, Signal::SIGKILL),
            Waiter::Served { .. } => Ok(()),
        }
    }

    /// Kills the process and waits for it.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(|_| ())
    }

    /// Closes stdin, reads stdout and stderr to their end and waits for the exit.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let (stdout, stderr, status) =
            tokio::try_join!(read_all(stdout), read_all(stderr), self.wait())?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

fn signal(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(io::Error::other)?;
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(io::Error::from(errno)),
    }
}

async fn read_all(pipe: Option<pipe::Receiver>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes).await?;
    }
    Ok(bytes)
}
