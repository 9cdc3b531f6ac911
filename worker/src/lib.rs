//! batchgate-worker: the Cloudflare Worker. It only adapts HTTP, Durable Objects,
//! R2 and `fetch` to batchgate-core, which holds every rule.
//!
//! A panic inside a Durable Object leaves its request hanging forever, so this
//! crate refuses the constructs that panic (enforced by clippy in `cargo xtask test`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod errors;

use errors::ApiError;
use worker::{Context, Env, Request, Response, Result, Router, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let answer = Router::new()
        .get("/healthz", |_, _| Response::from_json(&serde_json::json!({"ok": true})))
        .or_else_any_method("/*path", |req, _| {
            ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).into_response()
        })
        .run(req, env)
        .await;
    answer.or_else(|e| ApiError::internal(e.to_string()).into_response())
}
