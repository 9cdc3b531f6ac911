//! Reading results: the whole NDJSON object streamed from R2, only the failed
//! lines (plus a line for every key Gemini returned nothing for), a page by
//! cursor, or one key — always straight from R2, never buffered whole.

use crate::errors::ApiError;
use crate::internal::{self, Located, Page};
use crate::job_object::results_key;
use crate::job_store;
use crate::query::Query;
use crate::steps::BUCKET;
use batchgate_core::jsonl::LineSplitter;
use batchgate_core::results::{Outcome, scan_line};
use futures_util::stream::LocalBoxStream;
use futures_util::{StreamExt, stream};
use serde_json::json;
use worker::{ByteStream, Env, Method, Range, Request, Response, Stub};

type Result<T> = std::result::Result<T, ApiError>;

const NDJSON: &str = "application/x-ndjson";

fn not_ready() -> ApiError {
    ApiError::new(
        409,
        "results_not_ready",
        "the job's results are not stored yet; watch the job until resultsReady",
    )
}

async fn object_stream(env: &Env, key: &str, range: Option<Range>) -> Result<ByteStream> {
    let bucket = env.bucket(BUCKET)?;
    let mut get = bucket.get(key);
    if let Some(r) = range {
        get = get.range(r);
    }
    let obj = get.execute().await?.ok_or_else(not_ready)?;
    Ok(obj.body().ok_or_else(not_ready)?.stream()?)
}

fn ndjson(resp: Response) -> Result<Response> {
    resp.headers().set("content-type", NDJSON)?;
    Ok(resp)
}

pub async fn all(req: &Request, env: &Env, stub: &Stub, account: &str, id: &str) -> Result<Response> {
    let q = Query::of(req);
    let failed_only = q.get("only").as_deref() == Some("failed");
    if let Some(limit) = q.get("limit") {
        let limit: u64 =
            limit.parse().map_err(|_| ApiError::bad_request("invalid_limit", "limit must be a number"))?;
        let after = q
            .get("cursor")
            .map_or(Ok(0), |c| c.parse::<u64>())
            .map_err(|_| ApiError::bad_request("invalid_cursor", "bad cursor"))?;
        return page(env, stub, account, id, after, limit.clamp(1, 1000), failed_only).await;
    }
    let view: Option<batchgate_core::view::JobView> =
        internal::call_json(stub, Method::Get, "/view", account, None).await?;
    let view = view.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    if !view.results_ready {
        return Err(not_ready());
    }
    let body = shards_stream(env, id, view.shards);
    if !failed_only {
        return ndjson(Response::from_stream(body)?);
    }
    // Every request without a result, paged from the object as the stream
    // is read (not only the first 10,000: no result is lost, invariant 3).
    let (env, id, account) = (env.clone(), id.to_string(), account.to_string());
    let tail = stream::unfold(Some(0u64), move |after| {
        let (env, id, account) = (env.clone(), id.clone(), account.clone());
        async move {
            let after = after?;
            let path = format!("/missing?after={after}&limit={MISSING_PAGE}");
            let stub = match crate::submit::job_stub(&env, &id) {
                Ok(s) => s,
                Err(e) => return Some((Err(worker::Error::RustError(e.message)), None)),
            };
            let page =
                match internal::call_json::<Vec<(u64, String)>>(&stub, Method::Get, &path, &account, None)
                    .await
                {
                    Ok(p) => p.unwrap_or_default(),
                    Err(e) => return Some((Err(worker::Error::RustError(e.message)), None)),
                };
            let next = (page.len() as u64 == MISSING_PAGE).then(|| page.last().map(|(n, _)| *n)).flatten();
            let mut out = Vec::new();
            for (_, key) in page {
                let line = json!({"key": key, "error": {"code": 5, "message": "Gemini returned no result for this request"}});
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
            }
            Some((Ok(out), next))
        }
    });
    ndjson(Response::from_stream(failed_lines(body).chain(tail))?)
}

/// Requests without a result read from the job's object per call.
const MISSING_PAGE: u64 = 10_000;

/// Every shard's results object, one after the other, read as they are sent
/// (a shard whose batch returned no file has no object and adds nothing;
/// each object ends its last line, see `ingest::stored_part`).
fn shards_stream(env: &Env, id: &str, shards: u64) -> LocalBoxStream<'static, worker::Result<Vec<u8>>> {
    let (env, id) = (env.clone(), id.to_string());
    let parts = stream::iter(0..shards.max(1)).then(move |shard| {
        let (env, key) = (env.clone(), results_key(&id, shard));
        async move {
            match object_stream(&env, &key, None).await {
                Ok(body) => body.boxed_local(),
                Err(_) if shard > 0 => stream::empty().boxed_local(),
                Err(e) => stream::once(async move { Err(worker::Error::RustError(e.message)) }).boxed_local(),
            }
        }
    });
    parts.flatten().boxed_local()
}

/// Keep the lines whose outcome is not a success (errors and malformed lines).
fn failed_lines(
    body: LocalBoxStream<'static, worker::Result<Vec<u8>>>,
) -> impl futures_util::Stream<Item = worker::Result<Vec<u8>>> {
    let keep = |out: &mut Vec<u8>, line: &[u8]| {
        if !matches!(scan_line(line).outcome, Outcome::Success(_)) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    };
    stream::unfold(Some((body, LineSplitter::new(usize::MAX / 2))), move |state| async move {
        let (mut body, mut splitter) = state?;
        let mut out = Vec::new();
        match body.next().await {
            Some(Ok(chunk)) => {
                let _ = splitter.feed(&chunk, |_, l| {
                    keep(&mut out, l);
                    Ok::<(), std::convert::Infallible>(())
                });
                Some((Ok(out), Some((body, splitter))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None => {
                let _ = splitter.finish(|_, l| {
                    keep(&mut out, l);
                    Ok::<(), std::convert::Infallible>(())
                });
                Some((Ok(out), None))
            }
        }
    })
}

/// Lines after line number `after`; contiguous lines come from one range read.
async fn page(
    env: &Env,
    stub: &Stub,
    account: &str,
    id: &str,
    after: u64,
    limit: u64,
    failed_only: bool,
) -> Result<Response> {
    let failed = if failed_only { "&failed=1" } else { "" };
    let page: Page = internal::call_json(
        stub,
        Method::Get,
        &format!("/page?after={after}&limit={limit}{failed}"),
        account,
        None,
    )
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    if !page.ready {
        return Err(not_ready());
    }
    // Bounded in bytes as well as lines: 1,000 lines of 8 MiB are not one answer.
    let fit = batchgate_core::results::lines_in_page(
        page.lines.iter().map(|l| l.len.max(0) as u64),
        batchgate_core::results::MAX_PAGE_BYTES,
    );
    let more = fit < page.lines.len() || page.lines.len() as u64 == limit;
    let lines = page.lines.get(..fit).unwrap_or_default();
    let mut out = Vec::new();
    for run in runs(lines) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else { continue };
        let start = first.pos.max(0) as u64;
        let len = (last.pos + last.len).max(0) as u64 - start;
        let mut bytes = Vec::new();
        let mut s = object_stream(
            env,
            &results_key(id, first.shard.max(0) as u64),
            Some(Range::OffsetWithLength { offset: start, length: len }),
        )
        .await?;
        while let Some(chunk) = s.next().await {
            bytes.extend(chunk?);
        }
        for l in run {
            let from = (l.pos.max(0) as u64 - start) as usize;
            if let Some(line) = bytes.get(from..from + l.len.max(0) as usize) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
    }
    let resp = ndjson(Response::from_bytes(out)?)?;
    if more && let Some(last) = lines.last() {
        resp.headers().set("batchgate-next-cursor", &last.number.to_string())?;
    }
    Ok(resp)
}

/// Group lines that sit next to each other in one object (at most a `\r\n` apart).
fn runs(lines: &[job_store::Located]) -> Vec<&[job_store::Located]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=lines.len() {
        let split = match (lines.get(i - 1), lines.get(i)) {
            (Some(a), Some(b)) => a.shard != b.shard || b.pos - (a.pos + a.len) > 2,
            _ => true,
        };
        if split {
            if let Some(run) = lines.get(start..i)
                && !run.is_empty()
            {
                out.push(run);
            }
            start = i;
        }
    }
    out
}

pub async fn one(env: &Env, stub: &Stub, account: &str, id: &str, key: &str) -> Result<Response> {
    let encoded: String = key
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let found: Located =
        internal::call_json(stub, Method::Get, &format!("/locate?key={encoded}"), account, None)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    if !found.ready {
        return Err(not_ready());
    }
    let line = found
        .line
        .ok_or_else(|| ApiError::new(404, "result_not_found", format!("no result for key {key:?}")))?;
    let mut s = object_stream(
        env,
        &results_key(id, line.shard.max(0) as u64),
        Some(Range::OffsetWithLength { offset: line.pos.max(0) as u64, length: line.len.max(0) as u64 }),
    )
    .await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = s.next().await {
        bytes.extend(chunk?);
    }
    let resp = Response::from_bytes(bytes)?;
    resp.headers().set("content-type", "application/json")?;
    Ok(resp)
}
