//! Every request passes here first: it is logged (so tests can assert what a
//! client sent), time is applied, an injected fault may take over, and the API
//! key is checked the way Google checks it.

use crate::conn::Reset;
use crate::error::ApiError;
use crate::faults::FaultKind;
use crate::{Emulator, lock};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use batchgate_core::gemini::Code;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    /// `x-goog-upload-command`, when present.
    pub upload_command: Option<String>,
    /// Whether an API key came with the request (its value is never logged).
    pub api_key: bool,
    /// HTTP status answered; absent while the request is still being served.
    pub status: Option<u16>,
    pub fault: Option<String>,
}

#[derive(Default)]
pub struct RequestLog {
    entries: Vec<LoggedRequest>,
    next: u64,
}

impl RequestLog {
    fn push(&mut self, mut e: LoggedRequest) -> u64 {
        self.next += 1;
        e.seq = self.next;
        self.entries.push(e);
        self.next
    }

    fn set_status(&mut self, seq: u64, status: u16) {
        if let Some(e) = self.entries.iter_mut().rev().find(|e| e.seq == seq) {
            e.status = Some(status);
        }
    }

    pub fn since(&self, seq: u64) -> Vec<LoggedRequest> {
        self.entries.iter().filter(|e| e.seq > seq).cloned().collect()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

fn api_key(req: &Request) -> Option<String> {
    if let Some(k) = req.headers().get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.trim().to_string());
    }
    req.uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=").map(|k| k.trim().to_string())))
}

/// Upload chunks carry their credential in the session URL, not a key.
fn needs_key(path: &str, query: &str) -> bool {
    !(path.starts_with("/_emulator") || (path.starts_with("/upload/") && query.contains("upload_id=")))
}

pub async fn gate(State(emu): State<Arc<Emulator>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let method = req.method().as_str().to_string();
    let key = api_key(&req);
    if let Some(host) = req.headers().get("host").and_then(|h| h.to_str().ok()) {
        *lock(&emu.observed_base) = Some(format!("http://{host}"));
    }
    let control = path.starts_with("/_emulator");
    let command = req.headers().get("x-goog-upload-command").and_then(|v| v.to_str().ok()).map(String::from);
    let fault =
        if control { None } else { lock(&emu.faults).take(&method, &path, command.as_deref(), false) };
    let seq = lock(&emu.log).push(LoggedRequest {
        seq: 0,
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        upload_command: command,
        api_key: key.is_some(),
        status: None,
        fault: fault.as_ref().map(|f| format!("{f:?}")),
    });
    if !control {
        emu.tick();
    }
    let reset = req.extensions().get::<ConnectInfo<Reset>>().map(|c| c.0.clone());
    let req = match (&fault, reset.clone()) {
        (Some(FaultKind::ResetRequest { bytes }), Some(reset)) => {
            if *bytes == 0 {
                reset.pull();
                return std::future::pending().await;
            }
            let (parts, body) = req.into_parts();
            Request::from_parts(parts, reset_after(body, *bytes, reset))
        }
        _ => req,
    };
    let resp = serve(&emu, req, next, (fault, reset), key, &path, &query).await;
    lock(&emu.log).set_status(seq, resp.status().as_u16());
    resp
}

async fn serve(
    emu: &Arc<Emulator>,
    req: Request,
    next: Next,
    (fault, reset): (Option<FaultKind>, Option<Reset>),
    key: Option<String>,
    path: &str,
    query: &str,
) -> Response {
    match &fault {
        Some(FaultKind::Status { status, retry_delay_secs }) => {
            let mut e = ApiError::http(*status, format!("Injected fault: HTTP {status}."));
            if let Some(s) = retry_delay_secs {
                e = e.with_detail(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{s}s")}));
            }
            return e.into_response();
        }
        Some(FaultKind::Hang { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms.unwrap_or(3_600_000))).await;
            return ApiError::new(Code::DeadlineExceeded, "Injected hang ended.").into_response();
        }
        Some(FaultKind::Delay { ms }) => tokio::time::sleep(Duration::from_millis(*ms)).await,
        _ => {}
    }
    if needs_key(path, query) {
        let expected = emu.config().api_key;
        match key {
            None => {
                return ApiError::new(
                    Code::PermissionDenied,
                    "Method doesn't allow unregistered callers (callers without established identity). \
                     Please use API Key or other form of API consumer identity to call this API.",
                )
                .into_response();
            }
            Some(k) if k != expected => {
                return ApiError::invalid("API key not valid. Please pass a valid API key.")
                    .with_detail(json!({
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"}
                    }))
                    .into_response();
            }
            Some(_) => {}
        }
    }
    let resp = next.run(req).await;
    if let Some(FaultKind::DelayAnswer { ms }) = &fault {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
    match fault {
        Some(FaultKind::Truncate { bytes }) => map_body(resp, |b| truncate(b, bytes)),
        Some(FaultKind::ResetResponse { bytes }) => match reset {
            Some(reset) => map_body(resp, |b| reset_after(b, bytes, reset)),
            // Served without connection info (in-process router tests): a break is the nearest thing.
            None => map_body(resp, |b| truncate(b, bytes)),
        },
        Some(FaultKind::Slow { bytes_per_sec }) => map_body(resp, |b| slow(b, bytes_per_sec)),
        _ => resp,
    }
}

fn map_body(resp: Response, f: impl FnOnce(Body) -> Body) -> Response {
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, f(body))
}

/// Pass `limit` bytes, then fail the stream so the connection breaks mid-body.
fn truncate(body: Body, limit: u64) -> Body {
    let mut sent = 0u64;
    let s = body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        let left = limit.saturating_sub(sent);
        if left == 0 {
            return Err(std::io::Error::other("injected truncation"));
        }
        let take = (chunk.len() as u64).min(left) as usize;
        sent += take as u64;
        Ok(chunk.slice(..take))
    });
    // Let the headers and the partial body reach the client before the break.
    let s = s.chain(stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<Bytes, _>(std::io::Error::other("injected truncation"))
    }));
    Body::from_stream(s)
}

/// Pass `limit` bytes of `body` (or all of it, if shorter), then reset the
/// connection (TCP RST) and never yield again: hyper drops the request when its
/// socket fails, and the peer never sees a complete message. Used both ways: on
/// a request body (the client is still sending) and on a response.
fn reset_after(body: Body, limit: u64, reset: Reset) -> Body {
    let s =
        stream::unfold((body.into_data_stream(), 0u64, reset), move |(mut inner, sent, reset)| async move {
            let next = if sent < limit { inner.next().await } else { None };
            match next {
                Some(Err(e)) => Some((Err(std::io::Error::other(e)), (inner, limit, reset))),
                Some(Ok(chunk)) => {
                    let take = (chunk.len() as u64).min(limit - sent) as usize;
                    Some((Ok(chunk.slice(..take)), (inner, sent + take as u64, reset)))
                }
                None => {
                    // Let what was passed reach the peer first, then break the connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    reset.pull();
                    std::future::pending().await
                }
            }
        });
    Body::from_stream(s)
}

/// Re-chunk into tenths of a second's worth of bytes, sleeping between them.
fn slow(body: Body, bytes_per_sec: u64) -> Body {
    let piece = (bytes_per_sec / 10).max(1) as usize;
    let s = body
        .into_data_stream()
        .flat_map(move |chunk| {
            let pieces: Vec<Result<Bytes, axum::Error>> = match chunk {
                Ok(c) => {
                    (0..c.len()).step_by(piece).map(|i| Ok(c.slice(i..(i + piece).min(c.len())))).collect()
                }
                Err(e) => vec![Err(e)],
            };
            stream::iter(pieces)
        })
        .then(|p| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            p
        });
    Body::from_stream(s)
}
