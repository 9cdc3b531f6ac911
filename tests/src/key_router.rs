//! Two Gemini projects behind one address, as Google serves them: a loopback
//! proxy that sends each call to the emulator whose key it carries
//! (`x-goog-api-key` or `?key=`). The worker has one `GEMINI_API_BASE`; with
//! several keys, which project a call reaches is the key's business. A call
//! with a key no emulator has goes to the first, which refuses it as Gemini does.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use std::sync::{Arc, RwLock};

#[derive(Clone)]
struct Routes {
    /// `(key, emulator base URL)`; the first is also where unknown keys go.
    by_key: Arc<RwLock<Vec<(String, String)>>>,
    http: reqwest::Client,
}

/// A running router; stops when dropped.
pub struct KeyRouter {
    pub url: String,
    routes: Arc<RwLock<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KeyRouter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn key_of(req: &Request) -> Option<String> {
    if let Some(k) = req.headers().get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        return Some(k.to_string());
    }
    req.uri().query()?.split('&').find_map(|kv| kv.strip_prefix("key=")).map(str::to_string)
}

async fn forward(State(routes): State<Routes>, req: Request) -> Response {
    let key = key_of(&req);
    let base = {
        let table = routes.by_key.read().unwrap_or_else(|e| e.into_inner());
        let found = table.iter().find(|(k, _)| Some(k) == key.as_ref()).or(table.first());
        found.map(|(_, url)| url.clone()).unwrap_or_default()
    };
    let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let method = req.method().clone();
    let mut headers = req.headers().clone();
    headers.remove("host");
    let body = reqwest::Body::wrap_stream(req.into_body().into_data_stream());
    let sent = routes.http.request(method, format!("{base}{path}")).headers(headers).body(body).send().await;
    match sent {
        Ok(answer) => {
            let mut out = Response::builder().status(answer.status());
            for (k, v) in answer.headers() {
                out = out.header(k, v);
            }
            out.body(Body::from_stream(answer.bytes_stream())).unwrap_or_default()
        }
        Err(e) => Response::builder().status(502).body(Body::from(e.to_string())).unwrap_or_default(),
    }
}

impl KeyRouter {
    /// A router with no routes yet, listening on 127.0.0.1.
    pub async fn start() -> KeyRouter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let url = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
        let by_key = Arc::new(RwLock::new(vec![]));
        let routes = Routes { by_key: by_key.clone(), http: reqwest::Client::new() };
        let app = axum::Router::new().fallback(forward).with_state(routes);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KeyRouter { url, routes: by_key, task }
    }

    /// Send calls carrying `key` to the emulator at `url`.
    pub fn route(&self, key: &str, url: &str) {
        self.routes.write().unwrap_or_else(|e| e.into_inner()).push((key.to_string(), url.to_string()));
    }
}
