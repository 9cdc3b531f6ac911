//! The route table, and the small helpers the Gemini routes share.

use crate::error::{ApiError, ApiResult, parse_json};
use crate::fields::check_known;
use crate::{Emulator, control, gate};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use batchgate_core::gemini::Code;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type Emu = State<Arc<Emulator>>;
type Q = Query<HashMap<String, String>>;

/// The API versions served. Google serves the same resources under both; the
/// research file's SDK commit used `v1beta`, google-genai 3.x defaults to `v1`.
pub const API_VERSIONS: [&str; 2] = ["v1beta", "v1"];

pub fn router(emu: Arc<Emulator>) -> Router {
    let mut r = Router::new();
    for v in API_VERSIONS {
        r = r
            .route(&format!("/upload/{v}/files"), post(upload))
            .route(&format!("/{v}/files"), get(list_files))
            .route(&format!("/{v}/files/{{name}}"), get(get_file).delete(delete_file))
            .route(&format!("/download/{v}/files/{{name}}"), get(get_file))
            .route(&format!("/{v}/models"), get(list_models))
            .route(&format!("/{v}/models/{{action}}"), post(model_action).get(get_model))
            .route(&format!("/{v}/batches"), get(list_batches))
            .route(&format!("/{v}/batches/{{name}}"), get(get_batch).delete(delete_batch).post(batch_action));
    }
    r.nest("/_emulator", control::router())
        .fallback(any(not_found))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&emu), gate::gate))
        // Uploads stream; JSON bodies are bounded by the inline-batch limit (20 MB) plus slack.
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(emu)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("The requested URL {} was not found on this server ({method}).", uri.path()))
}

/// `pageSize` / `pageToken` paging over a newest-first list; the token is the
/// sequence number of the last item served, so it survives inserts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    pub size: Option<usize>,
    pub after_seq: Option<u64>,
}

impl Page {
    fn from_query(q: &HashMap<String, String>) -> ApiResult<Page> {
        let size = q
            .get("pageSize")
            .or(q.get("page_size"))
            .map(|s| s.parse::<usize>().map_err(|_| ApiError::invalid(format!("Invalid pageSize {s:?}."))))
            .transpose()?;
        let after_seq = q
            .get("pageToken")
            .or(q.get("page_token"))
            .filter(|t| !t.is_empty())
            .map(|t| {
                B64.decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ApiError::invalid("Invalid page token."))
            })
            .transpose()?;
        Ok(Page { size, after_seq })
    }
}

/// Items are newest first (descending `seq`).
pub fn page<T: Copy>(all: &[T], req: Page, seq: impl Fn(T) -> u64) -> (Vec<T>, Option<String>) {
    let size = req.size.unwrap_or(10).clamp(1, 100);
    let start = req.after_seq.map_or(0, |after| all.iter().take_while(|x| seq(**x) >= after).count());
    let items: Vec<T> = all.iter().skip(start).take(size).copied().collect();
    let more = all.len() > start + items.len();
    let next = match (more, items.last()) {
        (true, Some(last)) => Some(B64.encode(seq(*last).to_string())),
        _ => None,
    };
    (items, next)
}

fn split_action(s: &str) -> (&str, Option<&str>) {
    match s.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

async fn upload(
    State(emu): Emu,
    uri: axum::http::Uri,
    Query(q): Q,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The session URL keeps the version the client started with.
    let session_base = format!("{}{}", emu.public_base(), uri.path());
    emu.upload(&session_base, &q, &headers, body).await
}

async fn list_files(State(emu): Emu, Query(q): Q) -> ApiResult<Response> {
    Ok(emu.list_files(Page::from_query(&q)?).into_response())
}

async fn get_file(
    State(emu): Emu,
    Path(name): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> ApiResult<Response> {
    match split_action(&name) {
        (id, Some("download")) => {
            if q.get("alt").map(String::as_str) != Some("media") {
                return Err(ApiError::invalid("Downloads need alt=media."));
            }
            emu.download(id, &headers).await
        }
        (id, None) => Ok(emu.get_file(id)?.into_response()),
        (_, Some(other)) => Err(ApiError::not_found(format!("Unknown method {other:?} on files."))),
    }
}

async fn delete_file(State(emu): Emu, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    emu.delete_file(&name)
}

async fn list_batches(State(emu): Emu, Query(q): Q) -> ApiResult<Response> {
    Ok(Json(emu.list_batches(Page::from_query(&q)?)).into_response())
}

async fn get_batch(State(emu): Emu, Path(name): Path<String>) -> ApiResult<Response> {
    Ok(Json(emu.get_batch(&name)?).into_response())
}

async fn delete_batch(State(emu): Emu, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    emu.delete_batch(&name)
}

async fn batch_action(State(emu): Emu, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    match split_action(&name) {
        (id, Some("cancel")) => emu.cancel_batch(id),
        _ => Err(ApiError::not_found(format!("Unknown batch method in {name:?}."))),
    }
}

fn model_json(name: &str) -> Value {
    json!({
        "name": format!("models/{name}"),
        "displayName": name,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens", "batchGenerateContent"],
    })
}

async fn list_models(State(emu): Emu) -> Json<Value> {
    Json(json!({"models": emu.config().models.iter().map(|m| model_json(m)).collect::<Vec<_>>()}))
}

async fn get_model(State(emu): Emu, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    emu.known_model(&name, "get")?;
    Ok(Json(model_json(&name)))
}

async fn model_action(
    State(emu): Emu,
    Path(action): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (model, method) = split_action(&action);
    match method {
        Some("batchGenerateContent") => Ok(emu.create_batch(model, &body).await?.into_response()),
        Some("generateContent") => emu.generate_content(model, &headers, &body),
        Some("streamGenerateContent") => {
            emu.stream(model, q.get("alt").map(String::as_str) == Some("sse"), &headers, &body)
        }
        Some("countTokens") => {
            emu.known_model(model, "countTokens")?;
            let body = parse_json(&body)?;
            let obj = body.as_object().cloned().unwrap_or_default();
            check_known(&obj, &["contents", "generateContentRequest"], "")?;
            let request = crate::model::field(&body, "generateContentRequest").cloned().unwrap_or(body);
            let n = crate::model::prompt_tokens(&request).map_err(|e| ApiError::invalid(e.0))?;
            Ok(Json(
                json!({"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]}),
            )
            .into_response())
        }
        _ => Err(ApiError::new(Code::NotFound, format!("Unknown method on models/{model}."))),
    }
}
