//! `/v1/admin/*`, for the operator's `ADMIN_TOKEN`: crediting accounts,
//! minting user tokens, reading an account, stepping a job, and a model's quota.

use super::{Ctx, Result, auth, forwarded};
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::{GetSummary, Grant};
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::Kick;
use crate::objects::quota::client as quota;
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::random;
use batchgate_core::ledger;
use worker::{Request, Response};

fn account_id(id: &str) -> Result<String> {
    if batchgate_core::auth::valid_account(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::bad_request("invalid_account", format!("{id:?} is not an account id")))
    }
}

/// `GET /v1/admin/accounts/:id`.
pub async fn account(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    auth::admin(req, cx.settings)?;
    forwarded(accounts::forward(cx.env, &account_id(id)?, &GetSummary).await?)
}

/// `POST /v1/admin/tokens`.
pub async fn mint(req: Request, cx: &Ctx<'_>) -> Result<Response> {
    auth::admin(&req, cx.settings)?;
    auth::mint(req, cx.settings).await
}

/// `POST /v1/admin/jobs/:id/kick`: step a job now, as its alarm would (a
/// stuck-looking job; tests deliver it twice at once).
pub async fn kick(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    auth::admin(req, cx.settings)?;
    forwarded(JobRef::named(cx.env, id)?.forward("", &Kick).await?)
}

/// `GET /v1/admin/quota/:model`: `{enqueued, holds: [{job, shard, tokens, sinceMs}]}`.
pub async fn quota(req: &Request, cx: &Ctx<'_>, model: &str) -> Result<Response> {
    auth::admin(req, cx.settings)?;
    forwarded(quota::holds(cx.env, model).await?)
}

/// `POST /v1/admin/accounts/:id/grants` `{amount, note?, idempotencyKey?, adjust?}`:
/// credit (or, with `adjust`, correct) an account. The `Idempotency-Key`
/// header (or `idempotencyKey`) makes a retried grant count once.
pub async fn grant(mut req: Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
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
    auth::admin(&req, cx.settings)?;
    let id = account_id(id)?;
    let body: Body =
        crate::platform::body::json(&mut req, crate::platform::body::SMALL, "a grant", "{amount, note?}")
            .await?;
    let header_key = req.headers().get("idempotency-key").ok().flatten();
    let key = batchgate_core::idempotency::key(body.idempotency_key.or(header_key))
        .map_err(|m| ApiError::bad_request("invalid_idempotency_key", m))?;
    let event = match key {
        Some(k) => k,
        None => format!("grant-{}-{}", now_ms(), random::hex(8)?),
    };
    let check = if body.adjust { ledger::adjust } else { ledger::grant };
    check(&event, body.amount, &body.note).map_err(|m| ApiError::bad_request("invalid_amount", m))?;
    let grant = Grant { event, amount: body.amount, note: body.note, adjust: body.adjust };
    let resp = forwarded(accounts::forward(cx.env, &id, &grant).await?)?;
    Ok(resp.with_status(201))
}
