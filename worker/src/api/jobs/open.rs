//! Making a validated, stored submission a job: check the files it
//! references, reserve its quote with the account, and init its JobObject.
//! Any refusal deletes the stored input, so nothing is left behind; an id
//! already claimed answers with what it already is. Shared by submissions and
//! retries.

use super::submit::{FallbackLane, Submission, invalid};
use crate::api::{Ctx, Result, json};
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::{Reserve, ReserveAnswer, Settle};
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::{Abandoned, Init, Lanes, Prior, Tombstone};
use crate::platform::bindings;
use crate::platform::clock::now_ms;
use crate::platform::config::Settings;
use crate::platform::error::ApiError;
use batchgate_core::job::Fallback;
use batchgate_core::lane::{self, Lane, Mode};
use batchgate_core::pricing::{Price, Quote, Tokens, growth_with_files};
use batchgate_core::shard::ShardSpec;
use batchgate_core::submit::{LineError, Summary};
use batchgate_core::upload::OwnedFile;
use batchgate_core::view::JobView;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use worker::{Env, Response};

/// What a submission cost to reserve; a job whose amounts would not fit is
/// refused (reserving a saturated or wrapped figure would let it run unpaid).
pub fn quote(price: &Price, tokens: &Tokens) -> Result<Quote> {
    price.quote(tokens).ok_or_else(|| {
        ApiError::bad_request(
            "quote_too_large",
            "the job's estimated cost is too large to reserve; send fewer or smaller requests",
        )
    })
}

/// Make `submission` (stored under its input key) job `job`, retrying
/// `retry_of` if set; `read_from`: when reading the submission began (for
/// `Server-Timing`).
pub async fn open(
    cx: &Ctx<'_>,
    account: &str,
    job: &JobRef,
    mut submission: Submission,
    (retry_of, read_from): (Option<&str>, u64),
) -> Result<Response> {
    let input_key = submission.input_key.clone();
    let started = now_ms();
    let (lanes, shards) = match plan_lanes(cx.settings, &mut submission) {
        Ok(planned) => planned,
        Err(e) => {
            delete_input(cx.env, input_key).await;
            return Err(e);
        }
    };
    let standard =
        lanes.fallback.is_some() || lanes.choice.as_ref().is_some_and(|c| c.lane == Lane::Realtime);
    let quote = match reserve(cx, account, job, &submission, standard).await {
        Ok(q) => q,
        Err(answer) => {
            // Nothing else happens: the stored input goes too.
            delete_input(cx.env, input_key).await;
            return answer;
        }
    };
    let init = Init {
        id: job.id().to_string(),
        account: account.to_string(),
        model: submission.model,
        request_count: submission.summary.count,
        input_bytes: submission.bytes,
        input_key: input_key.clone(),
        display_name: submission.display_name,
        metadata: submission.metadata,
        keys: submission.summary.keys,
        price: submission.price,
        reserved: charged_for(&quote, standard),
        retry_of: retry_of.map(str::to_string),
        webhook_url: submission.webhook,
        uses_files: !submission.summary.files.is_empty(),
        shards,
        lanes,
    };
    let reserved = now_ms();
    let created = match job.init(&init).await {
        Ok(c) => c,
        Err(e) => {
            // The answer may be lost, not the job: the object says which, and
            // spends the id first when there is none, so no late `Init` can
            // create a job after its reservation is given back.
            return match job.abandon(account).await {
                Ok(Abandoned::Exists(view)) => accepted(&view),
                Ok(Abandoned::Abandoned) => {
                    let release = Settle {
                        job: job.id().to_string(),
                        event: "not-created".into(),
                        charge: 0,
                        standard: 0,
                    };
                    let _ = accounts::settle(cx.env, account, &release).await;
                    Err(e)
                }
                // Unknown: the reservation stays held rather than freeing credits a job may be using.
                Err(_) => Err(e),
            };
        }
    };
    let initialized = now_ms();
    if !created.created {
        // Lost a race with the same Idempotency-Key: the first submission stands.
        delete_input(cx.env, input_key).await;
    }
    let resp = accepted(&created.view)?;
    // Where the time went (the clock moves on I/O), and when the request's
    // event began (ms since the epoch: a client on the same clock can tell
    // the wait before it from the time in it): for operators and the load
    // benchmark. `auth` is everything before reading (routing, settings, the token).
    let timing = format!(
        "auth;dur={}, read;dur={}, reserve;dur={}, init;dur={}, start;desc={}",
        read_from.saturating_sub(cx.arrived_ms),
        started.saturating_sub(read_from),
        reserved.saturating_sub(started),
        initialized.saturating_sub(reserved),
        cx.arrived_ms
    );
    resp.headers().set("server-timing", &timing)?;
    Ok(resp)
}

async fn delete_input(env: &Env, key: String) {
    if let Ok(b) = bindings::bucket(env) {
        let _ = b.delete(key).await;
    }
}

/// Price the submission (files the requests reference by their sizes) and
/// reserve the quote. `Err` is the answer instead: a refusal, or, when the id
/// is already claimed, what it already is.
async fn reserve(
    cx: &Ctx<'_>,
    account: &str,
    job: &JobRef,
    submission: &Submission,
    standard: bool,
) -> std::result::Result<Quote, Result<Response>> {
    let extra = check_files(cx, account, &submission.summary).await.map_err(Err)?;
    let mut tokens = submission.summary.tokens;
    tokens.add(&extra);
    let quote = quote(&submission.price, &tokens).map_err(Err)?;
    let reservation = Reserve {
        job: job.id().to_string(),
        amount: charged_for(&quote, standard),
        limits: cx.settings.account_limits,
    };
    match accounts::reserve(cx.env, account, &reservation).await {
        Ok(ReserveAnswer::Reserved { .. }) => Ok(quote),
        Ok(ReserveAnswer::Duplicate { .. }) => Err(already_claimed(job, account).await),
        Ok(refused) => Err(Err(refused_error(refused, &quote))),
        Err(e) => Err(Err(e)),
    }
}

/// What a job is reserved (and at most charged): half the standard price in
/// the batch lane, all of it when it may run realtime.
fn charged_for(quote: &Quote, standard: bool) -> i64 {
    if standard { quote.standard } else { quote.batch }
}

/// The lane the submission runs in (and why), the realtime fallback it may
/// take, and the shards it is cut into for it.
fn plan_lanes(settings: &Settings, submission: &mut Submission) -> Result<(Lanes, Vec<ShardSpec>)> {
    let count = submission.summary.count;
    let choice = lane::choose(submission.mode, count, settings.realtime.auto_max_requests);
    let pieces = std::mem::take(&mut submission.summary.realtime_shards);
    let batches = std::mem::take(&mut submission.summary.shards);
    if choice.lane == Lane::Realtime {
        return Ok((Lanes { choice: Some(choice), fallback: None }, pieces));
    }
    let fallback = match submission.fallback {
        None => None,
        Some(FallbackLane::Realtime) if count > settings.realtime.fallback_max_requests => {
            return Err(ApiError::bad_request(
                "fallback_too_large",
                format!(
                    "fallback: realtime is for jobs of at most {} requests; this one has {count}",
                    settings.realtime.fallback_max_requests
                ),
            ));
        }
        Some(FallbackLane::Realtime) => {
            Some(Fallback { after_ms: settings.realtime.fallback_after_ms, pieces })
        }
    };
    // A plain batch job records no choice (as before lanes); any other says why.
    let choice = (submission.mode != Mode::Batch || fallback.is_some()).then_some(choice);
    Ok((Lanes { choice, fallback }, batches))
}

/// Requests may reference (`fileData.fileUri`) only the account's own files;
/// each reference is reserved what its file's size may cost
/// (`EstimateRules::file_tokens`), on top of the validator's flat figure for
/// it, and a request the files take past the long-context line is reserved at
/// that tier (`pricing::growth_with_files`): the tokens to add.
pub async fn check_files(cx: &Ctx<'_>, account: &str, summary: &Summary) -> Result<Tokens> {
    check_file_lines(cx, account, &summary.files, &summary.file_lines).await
}

/// `check_files` for `files` named by lines whose estimates are `file_lines`.
pub async fn check_file_lines(
    cx: &Ctx<'_>,
    account: &str,
    files: &[(u64, String)],
    file_lines: &BTreeMap<u64, Tokens>,
) -> Result<Tokens> {
    let mut extra = Tokens::default();
    if files.is_empty() {
        return Ok(extra);
    }
    let owned: HashMap<String, OwnedFile> =
        accounts::files(cx.env, account).await?.into_iter().map(|f| (f.name.clone(), f)).collect();
    let mut by_line: BTreeMap<u64, Tokens> = BTreeMap::new();
    for (line, f) in files.iter().filter_map(|(line, name)| Some((line, owned.get(name)?))) {
        by_line.entry(*line).or_default().add(&cx.settings.estimate.file_tokens(&f.mime_type, f.size_bytes));
    }
    for (line, files) in &by_line {
        let request = file_lines.get(line).copied().unwrap_or_default();
        extra.add(&growth_with_files(request, files));
    }
    let errors: Vec<LineError> = files
        .iter()
        .filter(|(_, f)| !owned.contains_key(f))
        .map(|(line, f)| LineError {
            line: *line,
            message: format!("{f} is not one of this account's files (upload it with POST /v1/files)"),
        })
        .collect();
    match errors.len() as u64 {
        0 => Ok(extra),
        n => Err(invalid(n, errors.into_iter().take(50).collect())),
    }
}

/// What an id that a submission wants already is: its job (an idempotent
/// retry gets it back), or a 409 when the id is spent or another submission
/// holds it; `None` when the id is free.
pub async fn prior_answer(job: &JobRef, account: &str) -> Result<Option<Result<Response>>> {
    Ok(match job.prior(account).await? {
        Prior::Free => None,
        Prior::Live(view) => Some(accepted(&view)),
        Prior::Gone(t) => Some(Err(key_used(job.id(), &t))),
        Prior::Taken => Some(Err(key_in_use(job.id()))),
    })
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct KeyUsed<'a> {
    job: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct KeyInUse<'a> {
    job: &'a str,
}

fn key_used(job_id: &str, t: &Tombstone) -> ApiError {
    ApiError::new(
        409,
        "idempotency_key_used",
        format!(
            "this Idempotency-Key made job {job_id}, which was {}; use a new key for a new job",
            t.reason
        ),
    )
    .with_details(KeyUsed { job: job_id, reason: &t.reason })
}

fn key_in_use(job_id: &str) -> ApiError {
    ApiError::new(
        409,
        "idempotency_key_in_use",
        "another submission with this Idempotency-Key is under way; retry shortly",
    )
    .with_details(KeyInUse { job: job_id })
    .with_retry_after(1)
}

/// The ledger already holds this id: a racing submission with the same key
/// (its job, once it exists), or a spent id.
async fn already_claimed(job: &JobRef, account: &str) -> Result<Response> {
    match prior_answer(job, account).await? {
        Some(answer) => answer,
        None => Err(key_in_use(job.id())),
    }
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub(crate) enum Refused<'a> {
    #[serde(untagged)]
    Insufficient { quote: &'a Quote, balance: i64, needed: i64 },
    #[serde(untagged)]
    Limit { limit: u64 },
    #[serde(untagged, rename_all = "camelCase")]
    Rate { limit: u64, retry_after_secs: u64 },
}

fn refused_error(answer: ReserveAnswer, quote: &Quote) -> ApiError {
    match answer {
        ReserveAnswer::Insufficient { balance, needed } => ApiError::new(
            402,
            "insufficient_credits",
            format!("the job needs {needed} micro-credits reserved and the balance is {balance}"),
        )
        .with_details(Refused::Insufficient { quote, balance, needed }),
        ReserveAnswer::TooManyOpenJobs { limit } => ApiError::new(
            429,
            "too_many_open_jobs",
            format!("this account already has {limit} jobs running; wait for one to end"),
        )
        .with_details(Refused::Limit { limit })
        .with_retry_after(60),
        ReserveAnswer::TooManySubmits { limit, retry_after_secs } => ApiError::new(
            429,
            "too_many_submits",
            format!("at most {limit} submits a minute; retry in {retry_after_secs} s"),
        )
        .with_details(Refused::Rate { limit, retry_after_secs })
        .with_retry_after(retry_after_secs),
        ReserveAnswer::Reserved { .. } | ReserveAnswer::Duplicate { .. } => ApiError::internal("reserved"),
    }
}

/// `202 Accepted` with the job's view and where to find it.
pub fn accepted(view: &JobView) -> Result<Response> {
    let resp = json(202, view)?;
    let _ = resp.headers().set("location", &crate::paths::job(&view.id));
    Ok(resp)
}
