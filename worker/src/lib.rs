//! batchgate-worker: the Cloudflare Worker. It only adapts HTTP, Durable Objects,
//! R2 and `fetch` to batchgate-core, which holds every rule. This file is the
//! entry and the route table; `api/` answers users, `objects/` are the Durable
//! Objects, `platform/` the edges of the runtime (see ARCHITECTURE.md).
//!
//! A panic inside a Durable Object leaves its request hanging forever, so this
//! crate refuses the constructs that panic (enforced by clippy in `cargo xtask test`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod api;
mod objects;
#[cfg(test)]
mod openapi;
mod platform;

pub use objects::account::AccountObject;
pub use objects::input::InputObject;
pub use objects::job::JobObject;
pub use objects::quota::QuotaObject;
pub use objects::upload::UploadObject;

use api::{Ctx, cors};
use platform::config::Settings;
use platform::error::ApiError;
use serde::Serialize;
use worker::{Context, Env, Method, Request, Response, Result, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let arrived_ms = platform::clock::now_ms();
    let settings = Settings::from_env(&env);
    if let Some(answer) = cors::preflight(&req, &settings) {
        return answer;
    }
    let origin = cors::allowed_origin(&req, &settings);
    let resp = match route(req, &Ctx { env: &env, ctx: &ctx, settings: &settings, arrived_ms }).await {
        Ok(r) => r,
        Err(e) => e.into_response()?,
    };
    if resp.status_code() == 101 {
        // A WebSocket: CORS does not apply, and its response must pass as is.
        return Ok(resp);
    }
    cors::decorate(resp, origin.as_deref())
}

/// Where users find what they made (`Location` headers).
pub(crate) mod paths {
    pub fn job(id: &str) -> String {
        format!("/v1/jobs/{id}")
    }

    pub fn upload(id: &str) -> String {
        format!("/v1/uploads/{id}")
    }

    pub fn input(id: &str) -> String {
        format!("/v1/inputs/{id}")
    }
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Health {
    pub(crate) ok: bool,
}

/// A path segment, percent-decoded (ids, keys and model names may be escaped).
fn segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

async fn route(req: Request, cx: &Ctx<'_>) -> std::result::Result<Response, ApiError> {
    use api::{account, admin, bench, estimate, files, generate, hooks, inputs, jobs, results, uploads};
    let path = req.path();
    let segments: Vec<String> = path.trim_matches('/').split('/').map(segment).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method();
    match (method.clone(), segments.as_slice()) {
        (Method::Get, ["healthz"]) => api::ok(&Health { ok: true }),
        (Method::Get, ["openapi.json"]) => Ok(api::openapi::serve()?),
        // Google's SDKs, unchanged (api/gemini): Gemini's own routes and errors.
        (_, ["gemini", rest @ ..]) => Ok(api::gemini::route(req, cx, rest).await?),
        (Method::Post, ["hooks", "gemini"]) => hooks::receive(req, cx).await,
        (Method::Post, ["_bench", "copy"]) if cx.settings.bench_routes => bench::copy(&req, cx).await,
        (Method::Post, ["v1", "jobs"]) => {
            let account = api::auth::account(&req, cx.settings)?;
            jobs::submit::handle(req, cx, &account).await
        }
        (Method::Get, ["v1", "jobs"]) => jobs::list(&req, cx).await,
        (Method::Post, ["v1", "generate"]) => generate::handle(req, cx).await,
        (Method::Get, ["v1", "jobs", id]) => jobs::view(&req, cx, id).await,
        (Method::Delete, ["v1", "jobs", id]) => jobs::delete(&req, cx, id).await,
        (Method::Get, ["v1", "jobs", id, "watch"]) => jobs::watch(&req, cx, id).await,
        (Method::Post, ["v1", "jobs", id, "watch-ticket"]) => jobs::watch_ticket(&req, cx, id).await,
        (Method::Post, ["v1", "jobs", id, "cancel"]) => jobs::cancel(&req, cx, id).await,
        (Method::Get, ["v1", "jobs", id, "events"]) => jobs::events(&req, cx, id).await,
        (Method::Post, ["v1", "jobs", id, "retry"]) => jobs::retry::handle(&req, cx, id).await,
        (Method::Get, ["v1", "jobs", id, "results"]) => results::all(&req, cx, id).await,
        (Method::Get, ["v1", "jobs", id, "results", key]) => results::one(&req, cx, id, key).await,
        (Method::Get, ["v1", "jobs", id, "results", key, "media", n]) => {
            results::media_part(&req, cx, id, key, n).await
        }
        (Method::Post, ["v1", "files"]) => files::single(req, cx).await,
        (Method::Get, ["v1", "files"]) => files::list(&req, cx).await,
        (Method::Get, ["v1", "files", id]) => files::get(&req, cx, id).await,
        (Method::Delete, ["v1", "files", id]) => files::delete(&req, cx, id).await,
        (Method::Post, ["v1", "uploads"]) => uploads::open(req, cx).await,
        (Method::Put, ["v1", "uploads", id]) => uploads::chunk(req, cx, id).await,
        (Method::Get, ["v1", "uploads", id]) => uploads::status(&req, cx, id).await,
        (Method::Post, ["v1", "inputs"]) => inputs::open(req, cx).await,
        (Method::Put, ["v1", "inputs", id]) => inputs::part(req, cx, id).await,
        (Method::Get, ["v1", "inputs", id]) => inputs::get(&req, cx, id).await,
        (Method::Delete, ["v1", "inputs", id]) => inputs::delete(&req, cx, id).await,
        (Method::Post, ["v1", "estimate"]) => estimate::handle(req, cx).await,
        (Method::Get, ["v1", "account"]) => account::summary(&req, cx).await,
        (Method::Get, ["v1", "account", "webhook-secret"]) => account::webhook_secret(&req, cx).await,
        (Method::Get, ["v1", "account", "ledger"]) => account::ledger(&req, cx).await,
        (Method::Post, ["v1", "admin", "accounts", id, "grants"]) => admin::grant(req, cx, id).await,
        (Method::Post, ["v1", "admin", "tokens"]) => admin::mint(req, cx).await,
        (Method::Get, ["v1", "admin", "accounts", id]) => admin::account(&req, cx, id).await,
        (Method::Post, ["v1", "admin", "jobs", id, "kick"]) => admin::kick(&req, cx, id).await,
        (Method::Get, ["v1", "admin", "quota", model]) => admin::quota(&req, cx, model).await,
        (Method::Get, ["v1", "admin", "keys"]) => admin::keys(&req, cx).await,
        (Method::Post, ["v1", "admin", "keys", id, "reinstate"]) => admin::reinstate(&req, cx, id).await,
        (
            _,
            [
                "v1",
                "jobs" | "account" | "estimate" | "admin" | "files" | "uploads" | "inputs" | "generate",
                ..,
            ],
        )
        | (_, ["healthz"]) => {
            Err(ApiError::new(405, "method_not_allowed", format!("{method:?} is not allowed on {path}")))
        }
        _ => Err(ApiError::not_found(format!("no route for {method:?} {path}"))),
    }
}
