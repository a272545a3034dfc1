//! The daemon's end of the fork server (`crate::server`): starting it, and sending it
//! launches.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
    sendmsg, socketpair,
};

use crate::child::{Confined, StatusReader, pipes};
use crate::server::{FDS_PER_REQUEST, MAX_REQUEST};

/// A running fork server.
#[derive(Debug)]
pub(crate) struct ForkServer {
    control: OwnedFd,
    /// Whether it ever forked: a server that fails before its first launch does not work on
    /// this host, and is not started again.
    pub(crate) forked: std::sync::atomic::AtomicBool,
    /// Kept so that the runtime reaps the server when it exits.
    _process: tokio::process::Child,
}

/// Why a launch through the fork server failed.
#[derive(Debug)]
pub(crate) enum LaunchError {
    /// The server did not fork (it is gone, or went before it read the request): nothing was
    /// started, so starting the supervisor another way is safe.
    NotForked(io::Error),
    /// The server's queue stayed full for [`QUEUE_PATIENCE`]: nothing was sent. The server
    /// still serves (and holds running supervisors), so only this launch goes another way.
    Busy,
    /// The server took the request but the supervisor did not start.
    NotStarted(io::Error),
}

/// How long a launch waits, in all, for room in the server's queue (the kernel holds at most
/// `net.unix.max_dgram_qlen` requests, 10 by default) before giving up on the server.
const QUEUE_PATIENCE: Duration = Duration::from_secs(5);

impl ForkServer {
    /// Starts `helper` as a fork server.
    pub(crate) fn start(helper: &Path) -> io::Result<ForkServer> {
        let (control, theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )?;
        let process = tokio::process::Command::new(helper)
            .arg(crate::SERVE_ARG)
            .env_clear()
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(false)
            .spawn()?;
        Ok(ForkServer {
            control,
            forked: std::sync::atomic::AtomicBool::new(false),
            _process: process,
        })
    }

    /// Has the server fork a supervisor for the spec at `spec`.
    pub(crate) async fn launch(self: &Arc<Self>, spec: &Path) -> Result<Confined, LaunchError> {
        let path = spec.as_os_str().as_bytes();
        if path.len() > MAX_REQUEST {
            return Err(LaunchError::NotForked(io::Error::other(format!(
                "the spec path is longer than {MAX_REQUEST} bytes"
            ))));
        }
        let (ours, [stdin, stdout, stderr]) = pipes().map_err(LaunchError::NotForked)?;
        let (status, status_theirs) = socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None,
        )
        .map_err(|errno| LaunchError::NotForked(errno.into()))?;
        let handed = [
            stdin.as_fd(),
            stdout.as_fd(),
            stderr.as_fd(),
            status_theirs.as_fd(),
        ];
        self.send(path, &handed).await?;
        // The server holds its own copies now; ours must close for the pipes to end.
        drop((stdin, stdout, stderr, status_theirs));
        let status = tokio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(status))
            .map_err(LaunchError::NotStarted)?;
        let mut status = StatusReader::new(status);
        match status.next().await.map_err(LaunchError::NotStarted)? {
            Some(pid) if pid > 0 => {
                self.forked
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(Confined::served(
                    pid.unsigned_abs(),
                    ours,
                    status,
                    self.clone(),
                ))
            }
            Some(errno) => Err(LaunchError::NotStarted(io::Error::from_raw_os_error(
                errno.saturating_neg(),
            ))),
            // The server writes the pid right after the fork, so it never forked.
            None => Err(LaunchError::NotForked(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the fork server closed the launch without starting it (see the daemon's log)",
            ))),
        }
    }

    async fn send(
        &self,
        path: &[u8],
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(), LaunchError> {
        let deadline = tokio::time::Instant::now() + QUEUE_PATIENCE;
        loop {
            let mut space =
                [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_REQUEST))];
            let mut ancillary = SendAncillaryBuffer::new(&mut space);
            ancillary.push(SendAncillaryMessage::ScmRights(fds));
            match sendmsg(
                &self.control,
                &[IoSlice::new(path)],
                &mut ancillary,
                SendFlags::NOSIGNAL,
            ) {
                Ok(_) => return Ok(()),
                // The queue is full: many launches at once. The server empties it in well
                // under a millisecond per launch.
                Err(rustix::io::Errno::AGAIN) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err(rustix::io::Errno::AGAIN) => return Err(LaunchError::Busy),
                Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Err(LaunchError::NotForked(errno.into())),
            }
        }
    }
}
