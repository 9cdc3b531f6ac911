//! `/v1/account`: the caller's balance and totals, its ledger, and the secret
//! its job webhooks are signed with.

use super::{Ctx, Result, auth, forwarded};
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::{GetSummary, GetWebhookSecret, LedgerPage};
use crate::platform::query::Query;
use batchgate_core::paging;
use worker::{Request, Response};

/// `GET /v1/account`.
pub async fn summary(req: &Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(accounts::forward(cx.env, &account, &GetSummary).await?)
}

/// `GET /v1/account/webhook-secret`.
pub async fn webhook_secret(req: &Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    forwarded(accounts::forward(cx.env, &account, &GetWebhookSecret).await?)
}

/// `GET /v1/account/ledger?limit=&cursor=`: entries newest first.
pub async fn ledger(req: &Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    let q = Query::of(req);
    let page = LedgerPage {
        limit: paging::LEDGER.of_query(q.get("limit").as_deref()),
        before: q.get("cursor").and_then(|c| c.parse::<i64>().ok()),
    };
    forwarded(accounts::forward(cx.env, &account, &page).await?)
}
