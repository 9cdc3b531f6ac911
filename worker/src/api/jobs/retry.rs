//! `POST /v1/jobs/:id/retry`: a child job holding the lines of an ended job
//! that did not succeed (failed, or missing from Gemini's results), linked by
//! `retryOf`. The child's input is streamed from the parent's stored input and
//! validated, priced and reserved like any submission. Retrying a job again
//! returns the same child (its id is derived from the parent's).

use super::input::InputWriter;
use super::open::{accepted, open};
use super::submit;
use crate::api::{Ctx, Result, auth};
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::{GetRetryPlan, Prior};
use crate::platform::bindings;
use crate::platform::error::ApiError;
use batchgate_core::jsonl::LineSplitter;
use batchgate_core::submit::Validator;
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::HashSet;
use worker::{Env, Request, Response};

/// How many deleted retry children a job may have before its retries stop.
const MAX_CHILD_GENERATIONS: u32 = 64;

pub async fn handle(req: &Request, cx: &Ctx<'_>, parent: &str) -> Result<Response> {
    let account = &auth::account(req, cx.settings)?;
    let started = crate::platform::clock::now_ms();
    let plan = JobRef::named(cx.env, parent)?.ask(account, &GetRetryPlan).await?;
    if !plan.done {
        return Err(ApiError::new(
            409,
            "job_not_finished",
            "the job is still running; retry its failed lines once it has ended",
        ));
    }
    if plan.keys.is_empty() {
        return Err(ApiError::new(409, "nothing_to_retry", "every request of this job succeeded"));
    }
    // The child's id derives from the parent's, so a repeated retry returns the
    // same child; a deleted child's id is spent, so the next retry takes the
    // next generation's id (every retry walks the same sequence, so racing
    // retries still meet on one child).
    let mut found = None;
    for generation in 0..MAX_CHILD_GENERATIONS {
        let name = match generation {
            0 => format!("{account}\nretry\n{parent}"),
            g => format!("{account}\nretry\n{parent}\n{g}"),
        };
        let child = JobRef::derived(cx.env, &name)?;
        match child.prior(account).await? {
            Prior::Live(view) => return accepted(&view),
            Prior::Free => {
                found = Some(child);
                break;
            }
            Prior::Taken | Prior::Gone(_) => {}
        }
    }
    let child = found.ok_or_else(|| {
        ApiError::new(
            409,
            "too_many_retries",
            format!("job {parent} has had {MAX_CHILD_GENERATIONS} retries deleted"),
        )
    })?;
    let input_key = plan
        .input_key
        .clone()
        .ok_or_else(|| ApiError::new(410, "input_gone", "the job's input is no longer stored"))?;
    let mut writer = InputWriter::new(cx.env, cx.settings, child.id())?;
    let model = submit::priced_model(&plan.model, cx.settings)?;
    let wanted: HashSet<String> = plan.keys.into_iter().collect();
    let mut validator = submit::validator(cx.settings, &model.0);
    let failed = copy_lines(cx.env, &input_key, &wanted, &mut validator, &mut writer).await.err();
    let submission =
        submit::conclude(validator, writer, failed, model, plan.display_name, plan.metadata).await?;
    open(cx, account, &child, submission, (Some(parent), started)).await
}

/// Feed the parent's input lines whose key is `wanted` to the validator, and
/// the valid ones to the child's input (line numbers are the child's).
async fn copy_lines(
    env: &Env,
    input_key: &str,
    wanted: &HashSet<String>,
    validator: &mut Validator,
    writer: &mut InputWriter,
) -> Result<()> {
    let gone = || ApiError::new(410, "input_gone", "the job's input is no longer stored");
    let bucket = bindings::bucket(env)?;
    let object = bucket.get(input_key).execute().await?.ok_or_else(gone)?;
    let mut body = object.body().ok_or_else(gone)?.stream()?;
    let mut splitter = LineSplitter::new(usize::MAX / 2);
    let mut number = 0u64;
    let mut keep = |writer: &mut InputWriter, line: &[u8]| {
        let Ok(item) = serde_json::from_slice::<Value>(line) else { return };
        if item.get("key").and_then(Value::as_str).is_some_and(|k| wanted.contains(k)) {
            number += 1;
            if let Some(normalized) = validator.item(number, item) {
                writer.push(&normalized);
            }
        }
    };
    while let Some(chunk) = body.next().await {
        let _ = splitter.feed(&chunk?, |_, line| {
            keep(writer, line);
            Ok::<(), std::convert::Infallible>(())
        });
        writer.flush().await?;
    }
    let _ = splitter.finish(|_, line| {
        keep(writer, line);
        Ok::<(), std::convert::Infallible>(())
    });
    Ok(())
}
