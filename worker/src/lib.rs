//! batchgate-worker: the Cloudflare Worker. It only adapts HTTP, Durable Objects,
//! R2 and `fetch` to batchgate-core, which holds every rule.
//!
//! A panic inside a Durable Object leaves its request hanging forever, so this
//! crate refuses the constructs that panic (enforced by clippy in `cargo xtask test`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod account_index;
mod bench_route;
mod config;
mod errors;
mod gemini;
mod internal;
mod job_object;
mod job_store;
mod results;
mod steps;
mod submit;

pub use account_index::AccountObject;
pub use job_object::JobObject;

use errors::ApiError;
use worker::{Context, Env, Method, Request, Response, Result, event};

/// The account a request acts for. Until accounts and tokens arrive (JWT
/// auth), every request is the single local account.
fn account(_req: &Request) -> std::result::Result<String, ApiError> {
    Ok("local".to_string())
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match route(req, &env).await {
        Ok(r) => Ok(r),
        Err(e) => e.into_response(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn route(req: Request, env: &Env) -> std::result::Result<Response, ApiError> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method();
    match (method.clone(), segments.as_slice()) {
        (Method::Get, ["healthz"]) => Ok(Response::from_json(&serde_json::json!({"ok": true}))?),
        (Method::Post, ["_bench", "copy"]) if bench_route::enabled(env) => {
            let file = req
                .url()?
                .query_pairs()
                .find(|(k, _)| k == "file")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            bench_route::copy(env, &file).await
        }
        (Method::Post, ["v1", "jobs"]) => {
            let account = account(&req)?;
            submit::handle(req, env, &account).await
        }
        (Method::Get, ["v1", "jobs"]) => {
            let account = account(&req)?;
            let query = req.url()?.query().unwrap_or_default().to_string();
            Ok(Response::from_json(&account_index::list(env, &account, &query).await?)?)
        }
        (Method::Get, ["v1", "jobs", id]) => view(&req, env, id).await,
        (Method::Post, ["v1", "jobs", id, "cancel"]) => {
            job_call(&req, env, id, Method::Post, "/cancel").await
        }
        (Method::Delete, ["v1", "jobs", id]) => job_call(&req, env, id, Method::Post, "/delete").await,
        (Method::Get, ["v1", "jobs", id, "results"]) => {
            let account = account(&req)?;
            let stub = submit::job_stub(env, id)?;
            results::all(&req, env, &stub, &account, id).await
        }
        (Method::Get, ["v1", "jobs", id, "results", key]) => {
            let account = account(&req)?;
            let stub = submit::job_stub(env, id)?;
            results::one(env, &stub, &account, id, &percent_decode(key)).await
        }
        (_, ["v1", "jobs", ..]) | (_, ["healthz"]) => {
            Err(ApiError::new(405, "method_not_allowed", format!("{method:?} is not allowed on {path}")))
        }
        _ => Err(ApiError::not_found(format!("no route for {method:?} {path}"))),
    }
}

async fn job_call(
    req: &Request,
    env: &Env,
    id: &str,
    method: Method,
    op: &str,
) -> std::result::Result<Response, ApiError> {
    let account = account(req)?;
    let stub = submit::job_stub(env, id)?;
    let v: serde_json::Value = internal::call_json(&stub, method, op, &account, None)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(Response::from_json(&v)?)
}

/// `GET /v1/jobs/:id` with `ETag` / `If-None-Match`.
async fn view(req: &Request, env: &Env, id: &str) -> std::result::Result<Response, ApiError> {
    let account = account(req)?;
    let stub = submit::job_stub(env, id)?;
    let view: batchgate_core::view::JobView =
        internal::call_json(&stub, Method::Get, "/view", &account, None)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    let etag = view.etag();
    if req.headers().get("if-none-match")?.is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag)) {
        let resp = Response::empty()?.with_status(304);
        resp.headers().set("etag", &etag)?;
        return Ok(resp);
    }
    let resp = Response::from_json(&view)?;
    resp.headers().set("etag", &etag)?;
    resp.headers().set("cache-control", "no-cache")?;
    Ok(resp)
}
