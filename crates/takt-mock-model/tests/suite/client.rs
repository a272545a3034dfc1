//! A minimal HTTP/1.1 client over a tokio `TcpStream`: one request per connection
//! (`Connection: close`), chunked or content-length bodies, read incrementally so that
//! never-ending SSE streams can be sampled and dropped.

use std::net::SocketAddr;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    framing: Framing,
    /// Undelivered SSE text.
    pending: String,
}

enum Framing {
    Chunked,
    Length(usize),
    UntilEof,
    Done,
}

/// How a body ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Properly (terminating chunk or full length).
    Complete,
    /// The connection closed in the middle.
    Cut,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

pub async fn post(addr: SocketAddr, path: &str, body: &Value) -> Response {
    request(addr, "POST", path, &[], Some(body)).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], None).await
}

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').unwrap();
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let framing = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked
    } else if let Some(len) = find("content-length") {
        Framing::Length(len.parse().unwrap())
    } else {
        Framing::UntilEof
    };
    Response {
        status,
        headers,
        reader,
        framing,
        pending: String::new(),
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next piece of the body: `Ok(Some)` data, `Ok(None)` the body is complete,
    /// `Err(End::Cut)` the connection closed early.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, End> {
        match self.framing {
            Framing::Done => Ok(None),
            Framing::Length(0) => {
                self.framing = Framing::Done;
                Ok(None)
            }
            Framing::Length(len) => {
                let mut buf = vec![0; len];
                match self.reader.read_exact(&mut buf).await {
                    Ok(_) => {
                        self.framing = Framing::Done;
                        Ok(Some(buf))
                    }
                    Err(_) => Err(End::Cut),
                }
            }
            Framing::UntilEof => {
                let mut buf = Vec::new();
                self.reader
                    .read_to_end(&mut buf)
                    .await
                    .map_err(|_| End::Cut)?;
                self.framing = Framing::Done;
                Ok(Some(buf))
            }
            Framing::Chunked => {
                let mut line = String::new();
                let n = self
                    .reader
                    .read_line(&mut line)
                    .await
                    .map_err(|_| End::Cut)?;
                if n == 0 {
                    return Err(End::Cut);
                }
                let size_text = line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_text, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        line.clear();
                        let n = self
                            .reader
                            .read_line(&mut line)
                            .await
                            .map_err(|_| End::Cut)?;
                        if n == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    self.framing = Framing::Done;
                    return Ok(None);
                }
                let mut buf = vec![0; size + 2];
                self.reader
                    .read_exact(&mut buf)
                    .await
                    .map_err(|_| End::Cut)?;
                buf.truncate(size);
                Ok(Some(buf))
            }
        }
    }

    /// The whole body and how it ended.
    pub async fn body(&mut self) -> (Vec<u8>, End) {
        let mut out = Vec::new();
        loop {
            match self.chunk().await {
                Ok(Some(piece)) => out.extend_from_slice(&piece),
                Ok(None) => return (out, End::Complete),
                Err(end) => return (out, end),
            }
        }
    }

    pub async fn json(mut self) -> Value {
        let (bytes, end) = self.body().await;
        assert_eq!(end, End::Complete);
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }

    /// All SSE events until the body ends, and how it ended.
    pub async fn events(mut self) -> (Vec<Event>, End) {
        let (bytes, end) = self.body().await;
        self.pending.push_str(&String::from_utf8(bytes).unwrap());
        let events = self.take_events();
        assert!(
            self.pending.trim().is_empty(),
            "unterminated event text: {:?}",
            self.pending
        );
        (events, end)
    }

    /// Reads until at least `n` events have arrived (or the body ends) and returns them.
    pub async fn next_events(&mut self, n: usize) -> Vec<Event> {
        let mut events = Vec::new();
        while events.len() < n {
            match self.chunk().await {
                Ok(Some(piece)) => {
                    self.pending.push_str(&String::from_utf8(piece).unwrap());
                    events.extend(self.take_events());
                }
                _ => break,
            }
        }
        events
    }

    fn take_events(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(end) = self.pending.find("\n\n") {
            let block: String = self.pending.drain(..end + 2).collect();
            let mut event = Event {
                event: None,
                data: String::new(),
            };
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event.event = Some(name.to_owned());
                } else if let Some(data) = line.strip_prefix("data: ") {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(data);
                } else if !line.is_empty() {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            events.push(event);
        }
        events
    }
}
