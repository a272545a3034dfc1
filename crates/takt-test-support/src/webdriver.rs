//! A small W3C WebDriver client for browser tests: starts `chromedriver` on a free port, opens
//! one headless Chromium session, and offers what the tests need (navigate, find by CSS, click,
//! type, read text and the page source, run a script, screenshots). Dropping a [`Browser`]
//! ends the session (which quits Chromium) and kills chromedriver, so a test leaves no
//! processes behind, even when it panics.
//!
//! Chromium and chromedriver come from Debian's `chromium` and `chromium-driver` packages,
//! which `.ci/run` installs. Without them [`Browser::start`] panics: browser tests fail rather
//! than skip, so a CI machine without a browser cannot pass them silently.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The W3C element reference: an object with one key (a fixed UUID-like name) whose value is
/// the element's id.
fn element_id(value: &Value) -> Option<Element> {
    value
        .as_object()?
        .values()
        .next()?
        .as_str()
        .map(|id| Element(id.to_owned()))
}

/// A headless Chromium driven through chromedriver.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    /// Chromium's own pid, to kill if ending the session does not stop it.
    browser_pid: Option<u32>,
    http: reqwest::blocking::Client,
    /// Screenshots go to `<dir>/<test>-<step>.png`.
    artifacts: PathBuf,
    test: String,
}

/// An element found on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("no free port: {error}"))
}

/// Where browser screenshots go: `target/test-artifacts/browser/` under `CARGO_TARGET_DIR`,
/// or the workspace's `target/`.
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("test-artifacts").join("browser")
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session at 1366x900 for test `test` (names
    /// its screenshots). Panics when chromedriver is missing or does not start.
    pub fn start(test: &str) -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start chromedriver ({error}): browser tests need Debian's `chromium` \
                     and `chromium-driver` (`.ci/run` installs them)"
                )
            });
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_else(|error| panic!("HTTP client: {error}"));
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            browser_pid: None,
            http,
            artifacts: artifacts_dir(),
            test: test.to_owned(),
        };
        browser.wait_for_driver();
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--window-size=1366,900", "--disable-dev-shm-usage"
                ]}
            }}})),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"))
            .to_owned();
        browser.browser_pid = created["capabilities"]["goog:processID"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok());
        browser
    }

    fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .http
                .get(format!("{}/status", self.base))
                .send()
                .ok()
                .and_then(|response| response.json::<Value>().ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            if Instant::now() > deadline {
                panic!("chromedriver did not become ready within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command; returns its `value`, panics on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|error| panic!("WebDriver {method} {path}: {error}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request.send().map_err(|error| error.to_string())?;
        let status = response.status();
        let answer: Value = response.json().map_err(|error| error.to_string())?;
        if status.is_success() {
            Ok(answer["value"].clone())
        } else {
            Err(format!("{status}: {}", answer["value"]))
        }
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({"url": url})),
        );
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.call("GET", &self.session_path("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`, if any.
    pub fn find(&self, css: &str) -> Option<Element> {
        self.try_call(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .ok()
        .and_then(|value| element_id(&value))
    }

    /// Waits (up to `timeout`) for an element matching `css`; panics with a screenshot and the
    /// page source when none appears.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css) {
                return element;
            }
            if Instant::now() > deadline {
                self.screenshot(&format!("missing-{}", sanitize(css)));
                panic!(
                    "no element matches `{css}` after {} s on {}:\n{}",
                    timeout.as_secs(),
                    self.url(),
                    self.source()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks `element`.
    pub fn click(&self, element: &Element) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/click", element.0)),
            None,
        );
    }

    /// Types `text` into `element`.
    pub fn type_text(&self, element: &Element, text: &str) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/value", element.0)),
            Some(json!({"text": text})),
        );
    }

    /// Empties an input or textarea.
    pub fn clear(&self, element: &Element) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{}/clear", element.0)),
            None,
        );
    }

    /// The element's rendered text.
    pub fn text(&self, element: &Element) -> String {
        self.call(
            "GET",
            &self.session_path(&format!("/element/{}/text", element.0)),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The page's current DOM as HTML.
    pub fn source(&self) -> String {
        self.call("GET", &self.session_path("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Saves a PNG of the viewport as `<artifacts>/<test>-<step>.png` and returns its path.
    pub fn screenshot(&self, step: &str) -> PathBuf {
        let encoded = self.call("GET", &self.session_path("/screenshot"), None);
        let bytes = base64_decode(encoded.as_str().unwrap_or_default());
        let path = self.artifacts.join(format!("{}-{step}.png", self.test));
        let _ = fs_err::create_dir_all(&self.artifacts);
        if let Err(error) = fs_err::write(&path, bytes) {
            eprintln!("could not save a screenshot: {error}");
        }
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Ending the session quits Chromium; killing chromedriver alone would not.
            let _ = self.try_call("DELETE", &self.session_path(""), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        if let Some(pid) = self.browser_pid {
            // Normally gone already; a session that could not be deleted leaves it running.
            if Path::new(&format!("/proc/{pid}")).exists() {
                crate::signal(pid, "KILL");
            }
        }
    }
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60)
        .collect()
}

/// Standard base64 (with padding, whitespace ignored) to bytes; enough for screenshots without
/// another dependency.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for sextet in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Whether the file at `path` starts with the PNG signature (a saved screenshot).
pub fn is_png(path: &Path) -> bool {
    let mut header = [0u8; 8];
    fs_err::File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .is_ok()
        && header == *b"\x89PNG\r\n\x1a\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("aGVsbG8="), b"hello");
        assert_eq!(base64_decode("aGk="), b"hi");
        assert_eq!(base64_decode("YWJj\nZGVm"), b"abcdef");
    }
}
