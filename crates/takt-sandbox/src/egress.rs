//! The filtering proxy behind `sandbox.network: allowlist`: HTTP `CONNECT host:port` (and
//! plain `http://` requests) to allowed hosts only. It runs in the supervisor, outside the
//! sandbox, so names are resolved there and the agent never touches a resolver.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixListener};

/// Whether `host` matches one of `patterns` (`example.com` exactly, `*.example.com` any
/// subdomain and the apex).
pub(crate) fn allowed(host: &str, patterns: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    patterns.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(suffix) => host == suffix || host.ends_with(&format!(".{suffix}")),
            None => host == pattern,
        }
    })
}

/// Splits `host:port` (or `[v6]:port`), defaulting the port.
fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let port = tail
            .strip_prefix(':')
            .map_or(Some(default_port), |p| p.parse().ok())?;
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
    }
}

/// Where the proxy listens: a unix socket relayed into a bubblewrap sandbox, or loopback TCP
/// (Landlock mode, where there is no private network namespace to relay into).
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Serves the proxy on `listener`; refused hosts are appended to `denied`.
pub(crate) fn serve(
    listener: Listener,
    patterns: Vec<String>,
    denied: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    let patterns = Arc::new(patterns);
    tokio::spawn(async move {
        loop {
            let (patterns, denied) = (patterns.clone(), denied.clone());
            match &listener {
                Listener::Unix(listener) => {
                    if let Ok((client, _)) = listener.accept().await {
                        tokio::spawn(async move { handle(client, &patterns, &denied).await });
                    }
                }
                Listener::Tcp(listener) => {
                    if let Ok((client, _)) = listener.accept().await {
                        tokio::spawn(async move { handle(client, &patterns, &denied).await });
                    }
                }
            }
        }
    })
}

async fn handle<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    client: S,
    patterns: &[String],
    denied: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client);
    let mut head = Vec::new();
    // The request head, bounded: a proxy request is small.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        let end = line == "\r\n" || line == "\n";
        head.push(line);
        if end {
            break;
        }
    }
    let request_line = head.first().cloned().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (connect, authority) = if method.eq_ignore_ascii_case("CONNECT") {
        (true, split_authority(target, 443))
    } else if let Some(rest) = target.strip_prefix("http://") {
        let authority = rest.split('/').next().unwrap_or_default();
        (false, split_authority(authority, 80))
    } else {
        (false, None)
    };
    let Some((host, port)) = authority else {
        return refuse(
            reader,
            "400 Bad Request",
            "takt egress proxy: send CONNECT host:port or an http:// URL",
        )
        .await;
    };
    if !allowed(&host, patterns) {
        if let Ok(mut list) = denied.lock() {
            list.push(format!("{host}:{port}"));
        }
        let why = format!(
            "takt egress proxy: {host} is not in sandbox.allow_hosts; add it to WORKFLOW.md to allow it"
        );
        return refuse(reader, "403 Forbidden", &why).await;
    }
    let Ok(mut upstream) = TcpStream::connect((host.as_str(), port)).await else {
        return refuse(
            reader,
            "502 Bad Gateway",
            "takt egress proxy: cannot connect",
        )
        .await;
    };
    if connect {
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
    } else {
        for line in &head {
            upstream.write_all(line.as_bytes()).await?;
        }
    }
    // Bytes the reader buffered past the head belong to the tunnel.
    let buffered = reader.buffer().to_vec();
    upstream.write_all(&buffered).await?;
    let mut client = reader.into_inner();
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn refuse<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    reader: BufReader<S>,
    status: &str,
    message: &str,
) -> std::io::Result<()> {
    let mut client = reader.into_inner();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}",
        message.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_match_exactly_or_by_suffix() {
        let patterns = vec!["registry.npmjs.org".to_owned(), "*.crates.io".to_owned()];
        assert!(allowed("registry.npmjs.org", &patterns));
        assert!(allowed("REGISTRY.npmjs.org.", &patterns));
        assert!(allowed("static.crates.io", &patterns));
        assert!(allowed("crates.io", &patterns));
        assert!(!allowed("evil-crates.io", &patterns));
        assert!(!allowed("registry.npmjs.org.evil.com", &patterns));
        assert!(!allowed("example.com", &patterns));
    }

    #[test]
    fn authorities() {
        assert_eq!(split_authority("a.b:8443", 443), Some(("a.b".into(), 8443)));
        assert_eq!(split_authority("a.b", 80), Some(("a.b".into(), 80)));
        assert_eq!(split_authority("[::1]:9", 80), Some(("::1".into(), 9)));
        assert_eq!(split_authority("a.b:x", 80), None);
    }
}
