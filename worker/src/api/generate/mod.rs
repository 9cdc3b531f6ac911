//! `POST /v1/generate`: one request answered now through Gemini's
//! `generateContent`, at the standard price. The request is checked and
//! bounded as a batch line is (its `maxOutputTokens` written in, so the quote
//! is a ceiling), the model's requests-per-minute limit gives it a key, the
//! quote is reserved, and the call is settled from the `usageMetadata`
//! Gemini reports (the rest released). `?alt=sse` streams the answer through
//! as it arrives (`stream.rs`). A call Gemini refuses is charged nothing.

mod stream;

use super::jobs::submit::{priced_model, validator};
use super::jobs::{check_file_lines, check_files};
use super::{Ctx, Result, auth};
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::{Reserve, ReserveAnswer, Settle};
use crate::objects::quota::client::{self as quota, RealtimeAdmission};
use crate::platform::error::ApiError;
use crate::platform::gemini::{Exchange, Gemini};
use crate::platform::query::Query;
use crate::platform::{body, random};
use batchgate_core::ledger;
use batchgate_core::pricing::Price;
use batchgate_core::realtime::{self, Bill, GENERATE_PREFIX};
use batchgate_core::results::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use worker::{Env, Request, Response};

#[derive(Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "GenerateBody"))]
#[serde(deny_unknown_fields)]
pub(crate) struct Body {
    model: String,
    #[cfg_attr(test, schemars(with = "crate::openapi::types::GenerateContentRequest"))]
    request: Value,
}

/// The `batchgate-cost` header: what the call cost and was charged (equal in
/// this lane; batch jobs are charged half of `standard`).
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, schemars(rename = "GenerateCost"))]
pub(crate) struct Cost {
    standard: i64,
    charged: i64,
}

/// A refusal's details: Gemini's own error.
#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct GeminiError {
    gemini: batchgate_core::gemini::status::Status,
}

/// How long a call waits for a free slot under the model's RPM limit before
/// answering 429 itself.
const MAX_SLOT_WAIT_MS: u64 = 2_000;

pub async fn handle(mut req: Request, cx: &Ctx<'_>) -> Result<Response> {
    let account = auth::account(&req, cx.settings)?;
    let stream = Query::of(&req).get("alt").as_deref() == Some("sse");
    let body: Body = body::json(
        &mut req,
        cx.settings.max_json_body_bytes,
        "a generate request",
        "{\"model\", \"request\": GenerateContentRequest}",
    )
    .await?;
    call(cx, account, &body.model, body.request, stream).await
}

/// One realtime call of `request` on `model` for `account` (`stream`: Gemini's
/// server-sent events passed through), reserved, sent and settled.
pub async fn call(
    cx: &Ctx<'_>,
    account: String,
    model: &str,
    request: Value,
    stream: bool,
) -> Result<Response> {
    let (model, price) = priced_model(model, cx.settings)?;
    if let Some(e) = &cx.settings.realtime.rpm_error {
        return Err(ApiError::new(503, "misconfigured", e.clone()));
    }
    let mut validator = validator(cx.settings, &model);
    let accepted = validator.request(request);
    let summary = validator.finish().map_err(|(_, errors)| {
        let why = errors.into_iter().next().map_or_else(String::new, |e| e.message);
        ApiError::bad_request("invalid_request", format!("request: {why}"))
    })?;
    let Some(accepted) = accepted else { return Err(ApiError::internal("an accepted request went missing")) };
    let mut tokens = accepted.tokens;
    tokens.add(&check_files(cx, &account, &summary).await?);
    let quote = super::jobs::quote(&price, &tokens)?;
    let call = Call {
        env: cx.env.clone(),
        account,
        id: format!("{GENERATE_PREFIX}{}", random::hex(16)?),
        price,
        reserved: quote.standard,
    };
    // The account first: a call it refuses (402, its own limit) takes no slot
    // of the limit every account shares.
    call.reserve(cx).await?;
    let key = match admit(cx, &model, !summary.files.is_empty()).await {
        Ok(key) => key,
        Err(e) => {
            call.release("refused").await;
            return Err(e);
        }
    };
    let gemini = match Gemini::with_key(cx.settings, Some(&key)) {
        Ok(g) => g,
        Err(f) => {
            call.release("refused").await;
            return Err(ApiError::new(503, "gemini_unavailable", format!("{f:?}")));
        }
    };
    let body = accepted.request.to_string();
    let sent = gemini.exchange(&cx.settings.gemini.generate(&model, body, stream), None).await;
    let mut answer = match sent {
        Exchange::Answered(r) => r,
        Exchange::Failed(f) => {
            call.release("unsent").await;
            return Err(ApiError::new(
                502,
                "gemini_unreachable",
                format!("Gemini could not be reached: {f:?}"),
            ));
        }
        Exchange::TimedOut(_) => {
            // Gemini may have worked on it, and bills what it did: the ceiling.
            let bill = call.bill(None);
            call.settle(bill, "timed-out").await;
            return Err(ApiError::new(
                504,
                "gemini_timeout",
                format!(
                    "Gemini did not answer in time; the call was charged its reservation ({})",
                    bill.charge
                ),
            ));
        }
    };
    if answer.status_code() != 200 {
        let text = gemini.text(&mut answer).await.unwrap_or_default();
        call.release("refused").await;
        return Err(refusal(cx.env, &key, answer.status_code(), text.as_bytes()).await);
    }
    if stream {
        return stream::pass_through(cx, answer, call, gemini.timeout_ms());
    }
    let bytes = match gemini.read_capped(&mut answer, cx.settings.realtime.max_answer_bytes).await {
        Ok(b) => b,
        Err(why) => {
            let bill = call.bill(None);
            call.settle(bill, "unreadable").await;
            return Err(ApiError::new(
                502,
                "gemini_answer_unreadable",
                format!("{why}; the call was charged its reservation ({})", bill.charge),
            ));
        }
    };
    let bill = call.bill(realtime::response_usage(&bytes).as_ref());
    // Settled after the answer, off the user's clock (a settle that never
    // lands is charged the reservation by the account: see `STRANDED_GENERATE_MS`).
    let settling = call.clone();
    let event = if bill.measured { "answered" } else { "unmeasured" };
    cx.ctx.wait_until(async move { settling.settle(bill, event).await });
    let resp = crate::platform::error::json_response(200, bytes)?;
    call.decorate(&resp, bill)?;
    Ok(resp)
}

/// `models/{model}:countTokens` for `account` (the Gemini drop-in): free at
/// Gemini and here, but it takes a slot of the model's RPM limit like a
/// realtime call (the keys are shared), so it counts against the account's
/// generate limits as one (a zero reservation, released after); it may name
/// only the account's own files, checked as a generate request's are; and
/// Gemini's refusals reach the caller as a realtime call's do.
pub async fn count_tokens(cx: &Ctx<'_>, account: &str, model: &str, body: Value) -> Result<Response> {
    let (model, price) = priced_model(model, cx.settings)?;
    let files = batchgate_core::dropin::count::referenced_files(&body, &cx.settings.gemini.file_hosts())
        .map_err(|why| ApiError::bad_request("invalid_request", format!("request: {why}")))?;
    let files: Vec<(u64, String)> = files.into_iter().map(|name| (1, name)).collect();
    check_file_lines(cx, account, &files, &Default::default()).await?;
    let call = Call {
        env: cx.env.clone(),
        account: account.to_string(),
        id: format!("{GENERATE_PREFIX}{}", random::hex(16)?),
        price,
        reserved: 0,
    };
    call.reserve(cx).await?;
    let counted = count(cx, &model, !files.is_empty(), body).await;
    call.release(if counted.is_ok() { "counted" } else { "refused" }).await;
    counted
}

async fn count(cx: &Ctx<'_>, model: &str, uses_files: bool, body: Value) -> Result<Response> {
    let key = admit(cx, model, uses_files).await?;
    let gemini = Gemini::with_key(cx.settings, Some(&key))
        .map_err(|f| ApiError::new(503, "gemini_unavailable", format!("{f:?}")))?;
    match gemini.exchange(&cx.settings.gemini.count_tokens(model, body.to_string()), None).await {
        Exchange::Answered(mut answer) => {
            let status = answer.status_code();
            let text = gemini.text(&mut answer).await.unwrap_or_default();
            if status != 200 {
                return Err(refusal(cx.env, &key, status, text.as_bytes()).await);
            }
            let resp = Response::ok(text)?;
            resp.headers().set("content-type", "application/json")?;
            Ok(resp)
        }
        Exchange::Failed(f) => Err(ApiError::new(502, "gemini_unreachable", format!("{f:?}"))),
        Exchange::TimedOut(_) => Err(ApiError::new(504, "gemini_timeout", "Gemini did not answer in time")),
    }
}

/// A key with room under the model's RPM limit: waited for briefly, else 429.
/// A request using uploaded files goes on the first key (their project's).
async fn admit(cx: &Ctx<'_>, model: &str, uses_files: bool) -> Result<String> {
    let rpm = cx.settings.realtime.rpm.of(model);
    let mut keys = cx.settings.secrets.gemini_keys.ids();
    if uses_files {
        keys.truncate(1);
    }
    if keys.is_empty() {
        return Err(ApiError::new(503, "gemini_unavailable", "no Gemini key is configured"));
    }
    let mut waited = 0;
    loop {
        match quota::admit_realtime(cx.env, model, rpm, keys.clone()).await? {
            RealtimeAdmission::Key(key) => return Ok(key),
            RealtimeAdmission::WaitMs(ms) if waited + ms <= MAX_SLOT_WAIT_MS => {
                worker::Delay::from(std::time::Duration::from_millis(ms)).await;
                waited += ms;
            }
            RealtimeAdmission::WaitMs(ms) => {
                let secs = ms.div_ceil(1000).max(1);
                return Err(ApiError::new(
                    429,
                    "realtime_capacity",
                    format!("{model} is at its {rpm} requests a minute across batchgate; retry in {secs} s"),
                )
                .with_retry_after(secs));
            }
        }
    }
}

/// Gemini's refusal, as the user gets it; a refused key leaves rotation.
async fn refusal(env: &Env, key: &str, status: u16, body: &[u8]) -> ApiError {
    let r = realtime::refused(status, body);
    if r.key_refused {
        let _ = quota::revoke(env, key, &format!("a realtime call was refused ({status})")).await;
    }
    let mut e = ApiError::new(r.status, "gemini_error", r.message);
    e.code = r.code.into();
    e.retry_after_secs = r.retry_after_secs;
    if let Some(gemini) = r.gemini {
        e = e.with_details(GeminiError { gemini });
    }
    e
}

/// One call's money: reserved before Gemini is asked, settled once after.
#[derive(Clone)]
struct Call {
    env: Env,
    account: String,
    id: String,
    price: Price,
    reserved: i64,
}

impl Call {
    async fn reserve(&self, cx: &Ctx<'_>) -> Result<()> {
        let per_minute = cx.settings.realtime.max_generate_per_minute;
        let limits = ledger::Limits { max_open_jobs: per_minute, max_submits_per_minute: per_minute };
        let reservation = Reserve { job: self.id.clone(), amount: self.reserved, limits };
        match accounts::reserve(cx.env, &self.account, &reservation).await? {
            ReserveAnswer::Reserved { .. } => Ok(()),
            ReserveAnswer::Insufficient { balance, needed } => Err(ApiError::new(
                402,
                "insufficient_credits",
                format!("the call needs {needed} micro-credits reserved and the balance is {balance}"),
            )),
            ReserveAnswer::TooManySubmits { limit, retry_after_secs } => Err(ApiError::new(
                429,
                "too_many_generates",
                format!("at most {limit} generate calls a minute per account; retry in {retry_after_secs} s"),
            )
            .with_retry_after(retry_after_secs)),
            ReserveAnswer::TooManyOpenJobs { limit } => Err(ApiError::new(
                429,
                "too_many_generates",
                format!("at most {limit} generate calls at once per account"),
            )
            .with_retry_after(1)),
            ReserveAnswer::Duplicate { .. } => Err(ApiError::internal("a fresh call id was already used")),
        }
    }

    fn bill(&self, usage: Option<&Usage>) -> Bill {
        realtime::bill(&self.price, usage, self.reserved)
    }

    /// Settle once (a lost settle is charged its reservation by the account later).
    async fn settle(&self, bill: Bill, event: &str) {
        let s =
            Settle { job: self.id.clone(), event: event.into(), charge: bill.charge, standard: bill.charge };
        if let Err(e) = accounts::settle(&self.env, &self.account, &s).await {
            worker::console_error!("settling generate call {} failed: {}", self.id, e.message);
        }
    }

    /// Nothing reached Gemini (or it refused before running): the hold goes back whole.
    async fn release(&self, event: &str) {
        self.settle(Bill { charge: 0, measured: true }, event).await;
    }

    fn decorate(&self, resp: &Response, bill: Bill) -> Result<()> {
        let cost =
            serde_json::to_string(&Cost { standard: bill.charge, charged: bill.charge }).unwrap_or_default();
        resp.headers().set("batchgate-cost", &cost)?;
        resp.headers().set("batchgate-call-id", &self.id)?;
        Ok(())
    }
}
