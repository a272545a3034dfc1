//! Byte relays between loopback TCP inside the sandbox and unix sockets outside it.
//!
//! Inside (no runtime, plain threads): a listener on `127.0.0.1:<port>` per relay, each
//! connection piped to the unix socket the supervisor serves. Outside (tokio): the unix
//! socket piped to the daemon's model endpoint.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::spec::Relay;

/// Binds every relay's port (so they are ready before the agent starts) and serves them on
/// background threads for the life of the process.
pub(crate) fn start_inside(relays: &[Relay]) -> Result<(), String> {
    for relay in relays {
        let listener = TcpListener::bind(("127.0.0.1", relay.port))
            .map_err(|error| format!("relay port {}: {error}", relay.port))?;
        let socket = relay.socket.clone();
        std::thread::spawn(move || accept_loop(&listener, &socket));
    }
    Ok(())
}

fn accept_loop(listener: &TcpListener, socket: &Path) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let socket = socket.to_path_buf();
        std::thread::spawn(move || {
            if let Ok(upstream) = UnixStream::connect(&socket) {
                let _ = pipe_both(stream, upstream);
            }
        });
    }
}

fn pipe_both(tcp: TcpStream, unix: UnixStream) -> io::Result<()> {
    let (mut tcp_read, mut unix_write) = (tcp.try_clone()?, unix.try_clone()?);
    let upload = std::thread::spawn(move || {
        let _ = io::copy(&mut tcp_read, &mut unix_write);
        let _ = unix_write.shutdown(Shutdown::Write);
    });
    let (mut unix_read, mut tcp_write) = (unix, tcp);
    let _ = io::copy(&mut unix_read, &mut tcp_write);
    let _ = tcp_write.shutdown(Shutdown::Write);
    let _ = upload.join();
    Ok(())
}

/// Serves `socket` by connecting each client to `target` (the model endpoint) until the
/// returned task is dropped or aborted.
pub(crate) fn serve_outside(
    socket: PathBuf,
    target: SocketAddr,
) -> io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::UnixListener::bind(&socket)?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    }))
}
