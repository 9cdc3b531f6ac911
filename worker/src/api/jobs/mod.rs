//! `/v1/jobs`: submitting (`submit.rs`, its input in `input.rs`), listing,
//! viewing and watching a job, its timeline, cancelling, deleting and
//! retrying its failed lines (`retry.rs`).

mod from_input;
pub use from_input::feed_parts;
pub mod input;
pub mod lines;
pub(crate) mod open;

pub use open::{check_file_lines, check_files, quote};
pub mod retry;
pub mod submit;

use super::{Ctx, Result, auth, forwarded, ok};
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::ListJobs;
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::{Cancel, Delete, Events, GetView, Watch, WatchTicket};
use crate::platform::error::ApiError;
use crate::platform::query::Query;
use batchgate_core::job::JobState;
use batchgate_core::paging;
use worker::{Request, Response};

/// `GET /v1/jobs?limit=&cursor=&state=`: the account's jobs, newest first.
pub async fn list(req: &Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    let q = Query::of(req);
    let page = ListJobs {
        limit: paging::JOBS.of_query(q.get("limit").as_deref()),
        before: before(q.get("cursor")),
        states: states(q.get("state"))?,
    };
    forwarded(accounts::forward(cx.env, &account, &page).await?)
}

/// Where a page of jobs starts: a listing's cursor (`{created ms}.{id}`), or
/// the newest when there is none or it is not one.
pub fn before(cursor: Option<String>) -> Option<(i64, String)> {
    let c = cursor?;
    let (ms, id) = c.split_once('.')?;
    Some((ms.parse::<i64>().ok()?, id.to_string()))
}

/// `?state=pending,running`: any of these states; a name that is no state is refused.
fn states(query: Option<String>) -> Result<Vec<String>> {
    let Some(list) = query else { return Ok(vec![]) };
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match JobState::parse(s) {
            Some(state) => Ok(state.as_str().to_string()),
            None => Err(ApiError::bad_request("invalid_state", format!("state {s:?} is not a job state"))),
        })
        .collect()
}

/// `GET /v1/jobs/:id` with `ETag` / `If-None-Match`.
pub async fn view(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    let view = JobRef::named(cx.env, id)?.ask(&account, &GetView).await?;
    let etag = view.etag();
    if req.headers().get("if-none-match")?.is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag)) {
        let resp = Response::empty()?.with_status(304);
        resp.headers().set("etag", &etag)?;
        return Ok(resp);
    }
    let resp = ok(&view)?;
    resp.headers().set("etag", &etag)?;
    resp.headers().set("cache-control", "no-cache")?;
    Ok(resp)
}

/// `GET /v1/jobs/:id/watch`: a WebSocket held by the job's object, which sends
/// the job view now and on every change, and closes once the job is done.
/// A browser cannot set headers on a WebSocket: it asks
/// `POST /v1/jobs/:id/watch-ticket` for a single-use ticket (60 s, this job
/// only) and sends it as `?ticket=`; the job's object checks and spends it. A
/// token never goes in a URL (it may live 30 days and URLs end up in logs).
pub async fn watch(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let ticket = Query::of(req).get("ticket");
    let account = match &ticket {
        // Tickets are 64 hex digits (the object makes them).
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => String::new(),
        Some(_) => return Err(ApiError::new(401, "invalid_ticket", "a watch ticket is 64 hex digits")),
        None => auth::account(req, cx.settings)?,
    };
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(426, "upgrade_required", "connect with a WebSocket (Upgrade: websocket)"));
    }
    let ticketed = ticket.is_some();
    let resp = JobRef::named(cx.env, id)?.watch(&account, &Watch(ticket)).await?;
    match resp.status_code() {
        101 => Ok(resp),
        _ if ticketed => Err(ApiError::new(
            401,
            "invalid_ticket",
            "the watch ticket is unknown, used or expired; ask POST /v1/jobs/:id/watch-ticket for another",
        )),
        _ => Err(ApiError::not_found(format!("no job {id}"))),
    }
}

/// `POST /v1/jobs/:id/watch-ticket`.
pub async fn watch_ticket(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(JobRef::named(cx.env, id)?.forward(&account, &WatchTicket).await?)
}

/// `POST /v1/jobs/:id/cancel`.
pub async fn cancel(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(JobRef::named(cx.env, id)?.forward(&account, &Cancel).await?)
}

/// `DELETE /v1/jobs/:id`.
pub async fn delete(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(JobRef::named(cx.env, id)?.forward(&account, &Delete).await?)
}

/// `GET /v1/jobs/:id/events?after=&limit=`: the job's timeline, oldest first.
pub async fn events(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    let q = Query::of(req);
    let page = Events {
        after: q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0),
        limit: paging::EVENTS.of_query(q.get("limit").as_deref()),
    };
    forwarded(JobRef::named(cx.env, id)?.forward(&account, &page).await?)
}
