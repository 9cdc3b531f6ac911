//! The command line's transport: core's machines run over reqwest and tokio.
//! The browser SDK runs the same machines over fetch (`sdk/src/drive.rs`);
//! what a call sends and what its answer means is decided once, in core.

use batchgate_core::client::call::{Body, ClientError, Request, is_success};
use batchgate_core::client::machine::{Io, Machine, Reply};
use futures_util::StreamExt;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Bytes read from the caller's file per `ReadData`.
const READ_CHUNK: usize = 1 << 20;

pub struct Transport {
    client: reqwest::Client,
    endpoint: String,
    token: String,
}

/// What a drive reports besides values: a transfer's progress.
pub trait Progress {
    fn progress(&mut self, name: &str, id: &str, received: u64, size: u64);
}

impl Progress for () {
    fn progress(&mut self, _: &str, _: &str, _: u64, _: u64) {}
}

/// A machine and what its steps work on.
pub struct Op<'a> {
    pub machine: Box<dyn Machine + 'a>,
    /// The caller's file: what `Range` bodies are cut from, what `ReadData` reads.
    pub data: Option<PathBuf>,
    reader: Option<tokio::fs::File>,
    body: Option<reqwest::Response>,
    socket: Option<Socket>,
}

impl<'a> Op<'a> {
    pub fn new(machine: impl Machine + 'a) -> Op<'a> {
        Op { machine: Box::new(machine), data: None, reader: None, body: None, socket: None }
    }

    pub fn with_data(mut self, path: PathBuf) -> Op<'a> {
        self.data = Some(path);
        self
    }
}

fn network(e: impl std::fmt::Display) -> ClientError {
    ClientError::network(&e.to_string())
}

/// The socket's next text message; `None` (and no socket) once it closed.
async fn next_text(socket: &mut Option<Socket>) -> Option<String> {
    while let Some(s) = socket.as_mut() {
        match s.next().await {
            Some(Ok(Message::Text(text))) => return Some(text.to_string()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => *socket = None,
            Some(Ok(_)) => {}
        }
    }
    None
}

impl Transport {
    pub fn new(endpoint: &str, token: &str) -> Transport {
        let client =
            reqwest::Client::builder().user_agent(concat!("batchgate-cli/", env!("CARGO_PKG_VERSION")));
        Transport {
            client: client.build().unwrap_or_default(),
            endpoint: batchgate_core::client::paths::endpoint(endpoint).to_string(),
            token: token.to_string(),
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn range(path: &PathBuf, start: u64, end: u64) -> Result<Vec<u8>, ClientError> {
        let mut file =
            tokio::fs::File::open(path).await.map_err(|e| ClientError::invalid_argument(e.to_string()))?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| ClientError::invalid_argument(e.to_string()))?;
        let mut bytes = vec![0; usize::try_from(end.saturating_sub(start)).unwrap_or(0)];
        file.read_exact(&mut bytes).await.map_err(|e| ClientError::invalid_argument(e.to_string()))?;
        Ok(bytes)
    }

    async fn send(
        &self,
        request: &Request,
        data: Option<&PathBuf>,
    ) -> Result<reqwest::Response, ClientError> {
        let method =
            reqwest::Method::from_bytes(request.method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut builder = self
            .client
            .request(method, [self.endpoint.as_str(), &request.path].concat())
            .bearer_auth(&self.token);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(t) = request.content_type() {
            builder = builder.header("content-type", t);
        }
        builder = match &request.body {
            Body::None => builder,
            Body::Json(text) => builder.body(text.clone()),
            Body::Ndjson(bytes) => builder.body(bytes.clone()),
            Body::Range { start, end } => {
                let path = data.ok_or_else(|| ClientError::invalid_argument("no file to send"))?;
                builder.body(Self::range(path, *start, *end).await?)
            }
        };
        builder.send().await.map_err(network)
    }

    /// Run the op's machine to its next value (JSON text); `None` once it ended.
    pub async fn drive(
        &self,
        op: &mut Op<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Option<String>, ClientError> {
        loop {
            let reply = match op.machine.step()? {
                Io::Yield(value) => return Ok(Some(value)),
                Io::End => return Ok(None),
                Io::Send { request, stream, headers } => match self.send(&request, op.data.as_ref()).await {
                    Err(e) => Reply::Failed(e),
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let header = |h: &&str| {
                            response.headers().get(*h).and_then(|v| v.to_str().ok()).map(str::to_string)
                        };
                        let headers = headers.iter().map(header).collect();
                        if stream && is_success(status) {
                            op.body = Some(response);
                            Reply::Opened { headers }
                        } else {
                            match response.bytes().await {
                                Ok(body) => Reply::Answer { status, headers, body: body.to_vec() },
                                Err(e) => Reply::Failed(network(e)),
                            }
                        }
                    }
                },
                Io::Read => match op.body.as_mut() {
                    None => Reply::Chunk(None),
                    Some(body) => match body.chunk().await {
                        Ok(Some(bytes)) => Reply::Chunk(Some(bytes.to_vec())),
                        Ok(None) => {
                            op.body = None;
                            Reply::Chunk(None)
                        }
                        Err(e) => Reply::Failed(network(e)),
                    },
                },
                Io::ReadData => {
                    if op.reader.is_none()
                        && let Some(path) = &op.data
                    {
                        let file = tokio::fs::File::open(path).await;
                        op.reader = Some(file.map_err(|e| ClientError::invalid_argument(e.to_string()))?);
                    }
                    match op.reader.as_mut() {
                        None => Reply::Chunk(None),
                        Some(file) => {
                            let mut buf = vec![0; READ_CHUNK];
                            let n = file
                                .read(&mut buf)
                                .await
                                .map_err(|e| ClientError::invalid_argument(e.to_string()))?;
                            buf.truncate(n);
                            Reply::Chunk((n > 0).then_some(buf))
                        }
                    }
                }
                Io::Sleep(ms) => {
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(ms))).await;
                    Reply::Done
                }
                Io::Progress { name, id, received, size } => {
                    progress.progress(name, &id, received, size);
                    Reply::Done
                }
                Io::Open(url) => match tokio_tungstenite::connect_async(url.as_str()).await {
                    Ok((socket, _)) => {
                        op.socket = Some(socket);
                        Reply::Done
                    }
                    // Counted as a drop: the machine polls, and tries again later.
                    Err(_) => Reply::Message(None),
                },
                Io::Listen { idle_ms } => {
                    let idle = std::time::Duration::from_millis(u64::from(idle_ms));
                    // `next_text` only awaits the stream's next frame: cancelling it loses nothing.
                    match tokio::time::timeout(idle, next_text(&mut op.socket)).await {
                        Ok(message) => Reply::Message(message),
                        Err(_) => Reply::Idle,
                    }
                }
                Io::Close => {
                    if let Some(mut s) = op.socket.take() {
                        let _ = s.close(None).await;
                    }
                    Reply::Done
                }
            };
            op.machine.reply(reply)?;
        }
    }

    /// Run a machine whose answer is one value.
    pub async fn answer(
        &self,
        mut op: Op<'_>,
        progress: &mut dyn Progress,
    ) -> Result<serde_json::Value, ClientError> {
        let text = self.drive(&mut op, progress).await?.unwrap_or_else(|| "null".into());
        serde_json::from_str(&text).map_err(|e| ClientError::new("invalid_answer", e.to_string(), 0))
    }
}
