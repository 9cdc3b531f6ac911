//! `/v1/admin/*`, for the operator's `ADMIN_TOKEN`: crediting accounts,
//! minting user tokens, reading an account, stepping a job, a model's quota,
//! and the Gemini keys (ids and use, never the keys).

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

/// One Gemini key as `GET /v1/admin/keys` shows it (never the key).
#[derive(serde::Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct KeyRow {
    id: String,
    /// In `GEMINI_API_KEYS` (or `GEMINI_API_KEY`) now.
    configured: bool,
    /// `active`, or `revoked` (Gemini refused it; see `reason`).
    state: &'static str,
    batches: u64,
    enqueued: std::collections::BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl KeyRow {
    fn of(id: String, configured: bool, u: quota::KeyUse) -> KeyRow {
        KeyRow {
            id,
            configured,
            state: if u.revoked_at_ms.is_some() { "revoked" } else { "active" },
            batches: u.batches,
            enqueued: u.enqueued,
            revoked_at: u.revoked_at_ms.map(crate::platform::clock::rfc3339),
            reason: u.reason,
        }
    }
}

#[derive(serde::Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct KeyRows {
    keys: Vec<KeyRow>,
}

/// `GET /v1/admin/keys`: each Gemini key by id, in the configured order,
/// with its state (`active`, or `revoked` with when and why Gemini refused
/// it), the batches in flight on it and its enqueued tokens per model; keys
/// the quota still counts but are no longer configured come last.
pub async fn keys(req: &Request, cx: &Ctx<'_>) -> Result<Response> {
    auth::admin(req, cx.settings)?;
    let mut seen = quota::keys(cx.env).await?;
    let mut keys = vec![];
    for id in cx.settings.secrets.gemini_keys.ids() {
        let u = seen.iter().position(|k| k.key == id).map(|i| seen.remove(i)).unwrap_or_default();
        keys.push(KeyRow::of(id, true, u));
    }
    keys.extend(seen.into_iter().map(|u| KeyRow::of(u.key.clone(), false, u)));
    super::json(200, &KeyRows { keys })
}

#[derive(serde::Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reinstated {
    id: String,
    was_revoked: bool,
}

/// `POST /v1/admin/keys/:id/reinstate`: a revoked key back in rotation.
pub async fn reinstate(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    auth::admin(req, cx.settings)?;
    if !cx.settings.secrets.gemini_keys.ids().iter().any(|k| k == id) {
        return Err(ApiError::not_found("no configured Gemini key has this id"));
    }
    let was_revoked = quota::reinstate(cx.env, id).await?;
    super::json(200, &Reinstated { id: id.to_string(), was_revoked })
}

/// `GET /v1/admin/quota/:model`: `{enqueued, holds: [{job, shard, model, key, tokens, sinceMs}]}`.
pub async fn quota(req: &Request, cx: &Ctx<'_>, model: &str) -> Result<Response> {
    auth::admin(req, cx.settings)?;
    forwarded(quota::holds(cx.env, model).await?)
}

/// A grant (or, with `adjust`, a correction either way) of micro-credits.
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GrantBody {
    pub(crate) amount: i64,
    #[serde(default)]
    pub(crate) note: String,
    #[serde(default)]
    pub(crate) idempotency_key: Option<String>,
    #[serde(default)]
    pub(crate) adjust: bool,
}

/// `POST /v1/admin/accounts/:id/grants` `{amount, note?, idempotencyKey?, adjust?}`:
/// credit (or, with `adjust`, correct) an account. The `Idempotency-Key`
/// header (or `idempotencyKey`) makes a retried grant count once.
pub async fn grant(mut req: Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    auth::admin(&req, cx.settings)?;
    let id = account_id(id)?;
    let body: GrantBody =
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
