//! Every answer the worker gives the suites, written down for the OpenAPI
//! drift check (tests/tests/openapi_e2e.rs): the suites talk to the worker
//! through [`Http`], a `reqwest::Client` that records each exchange with a
//! worker (method, path, status, content type, and a JSON answer's body) as a
//! line of `target/api-record/<process>.jsonl`. Calls to the emulator are not
//! recorded: only origins a [`Stack`](crate::stack::Stack) started a worker on.

use crate::process::workspace_root;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Where the recordings go; `cargo xtask test` empties it before the e2e suites.
pub fn dir() -> std::path::PathBuf {
    workspace_root().join("target/api-record")
}

/// A JSON answer larger than this is recorded without its body (the listings
/// the suites read are far smaller; a body is buffered to be recorded).
const BODY_CAP: usize = 4 << 20;

fn origins() -> &'static Mutex<HashSet<String>> {
    static ORIGINS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    ORIGINS.get_or_init(Default::default)
}

/// Record what the suites exchange with the worker at `origin` (`http://host:port`).
pub fn watch(origin: &str) {
    if let Ok(mut o) = origins().lock() {
        o.insert(origin.trim_end_matches('/').to_string());
    }
}

fn sink() -> &'static Mutex<Option<std::fs::File>> {
    static SINK: OnceLock<Mutex<Option<std::fs::File>>> = OnceLock::new();
    SINK.get_or_init(|| {
        let _ = std::fs::create_dir_all(dir());
        let name = format!("{}-{}.jsonl", std::process::id(), now_ms());
        Mutex::new(std::fs::OpenOptions::new().create(true).append(true).open(dir().join(name)).ok())
    })
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn write(line: &Value) {
    if let Ok(mut f) = sink().lock()
        && let Some(f) = f.as_mut()
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The worker's path of `url` when it is one of the watched origins.
fn worker_path(url: &reqwest::Url) -> Option<String> {
    let origin = url.origin().ascii_serialization();
    origins().lock().ok()?.contains(&origin).then(|| url.path().to_string())
}

/// A `reqwest::Client` whose exchanges with the worker are recorded.
#[derive(Clone)]
pub struct Http(pub reqwest::Client);

impl Http {
    pub fn get(&self, url: impl reqwest::IntoUrl) -> Req {
        self.request(reqwest::Method::GET, url)
    }
    pub fn post(&self, url: impl reqwest::IntoUrl) -> Req {
        self.request(reqwest::Method::POST, url)
    }
    pub fn put(&self, url: impl reqwest::IntoUrl) -> Req {
        self.request(reqwest::Method::PUT, url)
    }
    pub fn delete(&self, url: impl reqwest::IntoUrl) -> Req {
        self.request(reqwest::Method::DELETE, url)
    }
    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> Req {
        Req { inner: self.0.request(method, url), sent: None }
    }
}

/// A request being built; `send` records its answer.
pub struct Req {
    inner: reqwest::RequestBuilder,
    /// The JSON body, when `json` set one.
    sent: Option<Value>,
}

impl Req {
    pub fn header<K, V>(self, key: K, value: V) -> Req
    where
        reqwest::header::HeaderName: TryFrom<K>,
        <reqwest::header::HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        reqwest::header::HeaderValue: TryFrom<V>,
        <reqwest::header::HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        Req { inner: self.inner.header(key, value), ..self }
    }
    pub fn headers(self, headers: reqwest::header::HeaderMap) -> Req {
        Req { inner: self.inner.headers(headers), ..self }
    }
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Req {
        Req { inner: self.inner.bearer_auth(token), ..self }
    }
    pub fn body(self, body: impl Into<reqwest::Body>) -> Req {
        Req { inner: self.inner.body(body), ..self }
    }
    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Req {
        Req { sent: serde_json::to_value(body).ok(), inner: self.inner.json(body) }
    }
    pub fn timeout(self, t: std::time::Duration) -> Req {
        Req { inner: self.inner.timeout(t), ..self }
    }

    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let (client, request) = self.inner.build_split();
        let request = request?;
        let method = request.method().to_string();
        let path = worker_path(request.url());
        let answer = client.execute(request).await?;
        let Some(path) = path else { return Ok(answer) };
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut line = json!({"method": method, "path": path, "status": status, "contentType": content_type});
        if let Some(sent) = self.sent {
            line["sent"] = sent;
        }
        // A JSON answer is read whole to be recorded, then handed back as it came.
        let is_json = content_type.starts_with("application/json");
        // Objects' replies pass through streamed, without a length: JSON is small.
        let small = answer.content_length().is_none_or(|n| n as usize <= BODY_CAP);
        if !(is_json && small) {
            write(&line);
            return Ok(answer);
        }
        let mut rebuilt = http::Response::builder().status(answer.status()).version(answer.version());
        if let Some(h) = rebuilt.headers_mut() {
            *h = answer.headers().clone();
        }
        let bytes = answer.bytes().await?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(body) => line["body"] = body,
            Err(e) => line["notJson"] = json!(e.to_string()),
        }
        write(&line);
        let rebuilt = rebuilt.body(bytes).unwrap_or_else(|e| panic!("rebuilding an answer: {e}"));
        Ok(reqwest::Response::from(rebuilt))
    }
}
