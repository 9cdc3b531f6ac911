//! `batches.*` of Google's SDKs on batchgate jobs: a batch is a job, shown as
//! the `Operation` `batchgate_core::dropin::operation` makes of its view.

use crate::api::jobs::submit::{JsonSubmission, requests_as_job, stream_as_job};
use crate::api::results;
use crate::api::{Ctx, Result, ok};
use crate::objects::account::client as accounts;
use crate::objects::account::protocol::ListJobs;
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::{Cancel, Delete, GetView, Submitted};
use crate::platform::error::ApiError;
use crate::platform::query::Query;
use batchgate_core::dropin::{self, Source};
use batchgate_core::gemini::{InlinedResponses, ListOperationsResponse};
use batchgate_core::lane::Mode;
use batchgate_core::paging;
use serde_json::Value;
use worker::{Request, Response};

/// The job a batch name names, or Gemini's 404 for any other name.
fn job(cx: &Ctx<'_>, name: &str) -> Result<JobRef> {
    let id = dropin::job_of_batch(name).ok_or_else(|| ApiError::not_found(format!("no batch {name}")))?;
    JobRef::named(cx.env, id)
}

/// `models/{model}:batchGenerateContent`: a new job of the batch's requests.
pub async fn create(mut req: Request, cx: &Ctx<'_>, account: &str, model: &str) -> Result<Response> {
    let body: Value = crate::platform::body::json(
        &mut req,
        cx.settings.max_json_body_bytes,
        "a batch",
        "{\"batch\": {displayName?, inputConfig}}",
    )
    .await?;
    let create = dropin::parse_create(body).map_err(|m| ApiError::bad_request("invalid_batch", m))?;
    let model = batchgate_core::model::bare(model);
    if let Source::File(name) = &create.source {
        let mut lines = super::files::input_stream(cx.env, account, name).await?;
        let about = (model, create.display_name.clone(), Some(create.source.metadata()));
        let view = stream_as_job(cx, account, about, &mut lines).await?;
        return ok(&dropin::operation(&view));
    }
    let submission = JsonSubmission {
        model: model.to_string(),
        display_name: create.display_name,
        requests: Some(create.lines),
        input: None,
        metadata: Some(create.source.metadata()),
        webhook: None,
        mode: Mode::Batch,
        fallback: None,
    };
    let view = requests_as_job(cx, account, submission).await?;
    ok(&dropin::operation(&view))
}

/// The most a batch made inline answers with in the batch itself; past it,
/// its results file is named instead. The answers are parsed in memory (a
/// few times their size, within a worker's 128 MB), and Gemini caps inline
/// batches at 20 MB of requests.
const MAX_INLINE_ANSWER_BYTES: usize = 4 << 20;

/// `batches/{id}`: a batch made inline answers inline once done, in the
/// order of its requests (as Gemini does).
pub async fn get(cx: &Ctx<'_>, account: &str, name: &str) -> Result<Response> {
    let job = job(cx, name)?;
    let view = job.ask(account, &GetView).await?;
    let inline = match dropin::answers_inline(&view) {
        Some(keyed) => inlined(cx, &job, account, keyed).await?,
        None => None,
    };
    ok(&dropin::operation_with(&view, inline))
}

/// The ended job's answers in input order, if they fit an answer.
async fn inlined(cx: &Ctx<'_>, job: &JobRef, account: &str, keyed: bool) -> Result<Option<InlinedResponses>> {
    let Some(mut lines) = results::lines_by_key(cx.env, job, account, MAX_INLINE_ANSWER_BYTES).await? else {
        return Ok(None);
    };
    const PAGE: u64 = 1_000;
    let (mut keys, mut after) = (vec![], 0);
    loop {
        let page = job.ask(account, &Submitted { after, limit: PAGE }).await?;
        let full = page.len() as u64 == PAGE;
        after = page.last().map_or(after, |(line, _)| *line);
        keys.extend(page.into_iter().map(|(_, key)| key));
        if !full {
            break;
        }
    }
    Ok(Some(dropin::inlined_responses(keys, &mut lines, keyed)))
}

/// `batches?pageSize=&pageToken=`: newest first, each job as its operation.
pub async fn list(req: &Request, cx: &Ctx<'_>, account: &str) -> Result<Response> {
    let q = Query::of(req);
    let page = ListJobs {
        limit: paging::GEMINI_BATCHES.of_query(q.get("pageSize").as_deref()),
        before: crate::api::jobs::before(q.get("pageToken")),
        states: vec![],
    };
    let listed = accounts::jobs(cx.env, account, &page).await?;
    let views = listed.jobs.iter().map(|j| async move {
        let job = JobRef::named(cx.env, &j.id)?;
        job.ask(account, &GetView).await
    });
    let mut operations = vec![];
    for view in futures_util::future::join_all(views).await {
        match view {
            Ok(v) => operations.push(dropin::operation(&v)),
            // Deleted between the listing and now.
            Err(e) if e.status == 404 => {}
            Err(e) => return Err(e),
        }
    }
    ok(&ListOperationsResponse { operations, next_page_token: listed.next_cursor })
}

/// `batches/{id}:cancel`: Gemini answers `{}`.
pub async fn cancel(cx: &Ctx<'_>, account: &str, name: &str) -> Result<Response> {
    job(cx, name)?.ask(account, &Cancel).await?;
    ok(&serde_json::Map::new())
}

/// `DELETE batches/{id}`: Gemini answers `{}`.
pub async fn delete(cx: &Ctx<'_>, account: &str, name: &str) -> Result<Response> {
    job(cx, name)?.ask(account, &Delete).await?;
    ok(&serde_json::Map::new())
}
