//! batchgate-worker: the Cloudflare Worker. It only adapts HTTP, Durable Objects,
//! R2 and `fetch` to batchgate-core, which holds every rule.
//!
//! A panic inside a Durable Object leaves its request hanging forever, so this
//! crate refuses the constructs that panic (enforced by clippy in `cargo xtask test`).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod account_object;
mod accounts;
mod auth;
mod bench_route;
mod body;
mod config;
mod cors;
mod errors;
mod estimate;
mod files_api;
mod gemini;
mod gemini_hooks;
mod internal;
mod job_object;
mod job_store;
mod ledger_store;
mod query;
mod quota_object;
mod random;
mod results;
mod retry;
mod sql_rows;
mod steps;
mod submit;
mod upload_object;
mod uploads;
mod webhooks;

pub use account_object::AccountObject;
pub use job_object::JobObject;
pub use quota_object::QuotaObject;
pub use upload_object::UploadObject;

use batchgate_core::ledger;
use errors::ApiError;
use worker::{Context, Env, Method, Request, Response, Result, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    if let Some(answer) = cors::preflight(&req, &env) {
        return answer;
    }
    let origin = cors::allowed_origin(&req, &env);
    let resp = match route(req, &env).await {
        Ok(r) => r,
        Err(e) => e.into_response()?,
    };
    if resp.status_code() == 101 {
        // A WebSocket: CORS does not apply, and its response must pass as is.
        return Ok(resp);
    }
    cors::decorate(resp, origin.as_deref())
}

fn account(req: &Request, env: &Env) -> std::result::Result<String, ApiError> {
    auth::account(req, env)
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
        (Method::Post, ["hooks", "gemini"]) => gemini_hooks::receive(req, env).await,
        (Method::Post, ["_bench", "copy"]) if bench_route::enabled(env) => {
            auth::admin(&req, env)?;
            let file = query::param(&req, "file").unwrap_or_default();
            let id = file.strip_prefix("files/").unwrap_or_default();
            if !batchgate_core::gemini::file::valid_resource_id(id) {
                return Err(ApiError::bad_request("invalid_file", "file must be files/{id}"));
            }
            bench_route::copy(env, &file).await
        }
        (Method::Post, ["v1", "jobs"]) => {
            let account = account(&req, env)?;
            submit::handle(req, env, &account).await
        }
        (Method::Get, ["v1", "jobs"]) => {
            let account = account(&req, env)?;
            let query = query::Query::of(&req);
            Ok(Response::from_json(&accounts::list(env, &account, query.raw()).await?)?)
        }
        (Method::Post, ["v1", "files"]) => {
            let account = account(&req, env)?;
            uploads::single(req, env, &account).await
        }
        (Method::Get, ["v1", "files"]) => uploads::list(env, &account(&req, env)?).await,
        (Method::Get, ["v1", "files", id]) => uploads::get(env, &account(&req, env)?, id).await,
        (Method::Delete, ["v1", "files", id]) => uploads::delete(env, &account(&req, env)?, id).await,
        (Method::Post, ["v1", "uploads"]) => {
            let account = account(&req, env)?;
            uploads::open(req, env, &account).await
        }
        (Method::Put, ["v1", "uploads", id]) => {
            let account = account(&req, env)?;
            uploads::chunk(req, env, &account, id).await
        }
        (Method::Get, ["v1", "uploads", id]) => uploads::status(env, &account(&req, env)?, id).await,
        (Method::Post, ["v1", "estimate"]) => {
            let account = account(&req, env)?;
            estimate::handle(req, env, &account).await
        }
        (Method::Get, ["v1", "account"]) => {
            let account = account(&req, env)?;
            Ok(Response::from_json(&accounts::summary(env, &account).await?)?)
        }
        (Method::Get, ["v1", "account", "webhook-secret"]) => {
            let secret = accounts::webhook_secret(env, &account(&req, env)?).await?;
            Ok(Response::from_json(&serde_json::json!({"secret": secret}))?)
        }
        (Method::Get, ["v1", "account", "ledger"]) => {
            let account = account(&req, env)?;
            let query = query::Query::of(&req);
            Ok(Response::from_json(&accounts::ledger_page(env, &account, query.raw()).await?)?)
        }
        (Method::Post, ["v1", "admin", "accounts", id, "grants"]) => {
            auth::admin(&req, env)?;
            admin_grant(req, env, &percent_decode(id)).await
        }
        (Method::Post, ["v1", "admin", "tokens"]) => {
            auth::admin(&req, env)?;
            auth::mint(req, env).await
        }
        (Method::Get, ["v1", "admin", "accounts", id]) => {
            auth::admin(&req, env)?;
            let id = admin_account_id(&percent_decode(id))?;
            Ok(Response::from_json(&accounts::summary(env, &id).await?)?)
        }
        // Step a job now, as its alarm would (a stuck-looking job; tests deliver it twice at once).
        (Method::Post, ["v1", "admin", "jobs", id, "kick"]) => {
            auth::admin(&req, env)?;
            let stub = submit::job_stub(env, id)?;
            let view: Option<serde_json::Value> =
                internal::call_json(&stub, Method::Post, "/kick", "", None).await?;
            Ok(Response::from_json(&view.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?)?)
        }
        // The enqueued-token holds of one model's quota: `{enqueued, holds: [{job, shard, tokens, sinceMs}]}`.
        (Method::Get, ["v1", "admin", "quota", model]) => {
            auth::admin(&req, env)?;
            let stub = quota_object::stub(env, &percent_decode(model))?;
            let holds: Option<serde_json::Value> =
                internal::call_json(&stub, Method::Get, "/holds", "", None).await?;
            Ok(Response::from_json(&holds.unwrap_or_default())?)
        }
        (Method::Get, ["v1", "jobs", id]) => view(&req, env, id).await,
        (Method::Get, ["v1", "jobs", id, "watch"]) => watch(&req, env, id).await,
        (Method::Post, ["v1", "jobs", id, "watch-ticket"]) => {
            job_call(&req, env, id, Method::Post, "/watch-ticket").await
        }
        (Method::Post, ["v1", "jobs", id, "cancel"]) => {
            job_call(&req, env, id, Method::Post, "/cancel").await
        }
        (Method::Get, ["v1", "jobs", id, "events"]) => {
            let query = query::Query::of(&req);
            job_call(&req, env, id, Method::Get, &format!("/events?{}", query.raw())).await
        }
        (Method::Post, ["v1", "jobs", id, "retry"]) => retry::handle(env, &account(&req, env)?, id).await,
        (Method::Delete, ["v1", "jobs", id]) => job_call(&req, env, id, Method::Post, "/delete").await,
        (Method::Get, ["v1", "jobs", id, "results"]) => {
            let account = account(&req, env)?;
            let stub = submit::job_stub(env, id)?;
            results::all(&req, env, &stub, &account, id).await
        }
        (Method::Get, ["v1", "jobs", id, "results", key]) => {
            let account = account(&req, env)?;
            let stub = submit::job_stub(env, id)?;
            results::one(env, &stub, &account, id, &percent_decode(key)).await
        }
        (_, ["v1", "jobs" | "account" | "estimate" | "admin" | "files" | "uploads", ..])
        | (_, ["healthz"]) => {
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
    let account = account(req, env)?;
    let stub = submit::job_stub(env, id)?;
    let v: serde_json::Value = internal::call_json(&stub, method, op, &account, None)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(Response::from_json(&v)?)
}

/// `GET /v1/jobs/:id/watch`: a WebSocket held by the job's object, which sends
/// the job view now and on every change, and closes once the job is done.
/// A browser cannot set headers on a WebSocket: it asks
/// `POST /v1/jobs/:id/watch-ticket` for a single-use ticket (60 s, this job
/// only) and sends it as `?ticket=`; the job's object checks and spends it. A
/// token never goes in a URL (it may live 30 days and URLs end up in logs).
async fn watch(req: &Request, env: &Env, id: &str) -> std::result::Result<Response, ApiError> {
    let ticket = query::param(req, "ticket");
    let (account, path) = match &ticket {
        // Tickets are 64 hex digits (the object makes them): nothing to escape.
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (String::new(), format!("/watch?ticket={t}"))
        }
        Some(_) => return Err(ApiError::new(401, "invalid_ticket", "a watch ticket is 64 hex digits")),
        None => (auth::account(req, env)?, "/watch".to_string()),
    };
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(426, "upgrade_required", "connect with a WebSocket (Upgrade: websocket)"));
    }
    let stub = submit::job_stub(env, id)?;
    let resp =
        internal::call_stream(&stub, Method::Get, &path, &account, &[("upgrade", "websocket".into())], None)
            .await?;
    match resp.status_code() {
        101 => Ok(resp),
        _ if ticket.is_some() => Err(ApiError::new(
            401,
            "invalid_ticket",
            "the watch ticket is unknown, used or expired; ask POST /v1/jobs/:id/watch-ticket for another",
        )),
        _ => Err(ApiError::not_found(format!("no job {id}"))),
    }
}

/// `GET /v1/jobs/:id` with `ETag` / `If-None-Match`.
async fn view(req: &Request, env: &Env, id: &str) -> std::result::Result<Response, ApiError> {
    let account = account(req, env)?;
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

fn admin_account_id(id: &str) -> std::result::Result<String, ApiError> {
    if batchgate_core::auth::valid_account(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::bad_request("invalid_account", format!("{id:?} is not an account id")))
    }
}

/// `POST /v1/admin/accounts/:id/grants` `{amount, note?, idempotencyKey?, adjust?}`:
/// credit (or, with `adjust`, correct) an account. The `Idempotency-Key`
/// header (or `idempotencyKey`) makes a retried grant count once.
async fn admin_grant(mut req: Request, env: &Env, id: &str) -> std::result::Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        amount: i64,
        #[serde(default)]
        note: String,
        #[serde(default)]
        idempotency_key: Option<String>,
        #[serde(default)]
        adjust: bool,
    }
    let id = admin_account_id(id)?;
    let body: Body = crate::body::json(&mut req, crate::body::SMALL, "a grant", "{amount, note?}").await?;
    let header_key = req.headers().get("idempotency-key").ok().flatten();
    let event = match body.idempotency_key.or(header_key).filter(|k| !k.is_empty()) {
        Some(k) if k.len() <= 255 => k,
        Some(_) => {
            return Err(ApiError::bad_request("invalid_idempotency_key", "longer than 255 characters"));
        }
        None => format!("grant-{}-{:x}", job_object::now_ms(), (js_sys::Math::random() * 1e15) as u64),
    };
    let check = if body.adjust { ledger::adjust } else { ledger::grant };
    check(&event, body.amount, &body.note).map_err(|m| ApiError::bad_request("invalid_amount", m))?;
    let grant = accounts::GrantRequest { event, amount: body.amount, note: body.note, adjust: body.adjust };
    Ok(Response::from_json(&accounts::grant(env, &id, &grant).await?)?.with_status(201))
}
