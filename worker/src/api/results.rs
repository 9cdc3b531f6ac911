//! Reading results: the whole NDJSON object streamed from R2, only the failed
//! lines (plus a line for every key Gemini returned nothing for), a page by
//! cursor, or one key — always straight from R2, never buffered whole.

use super::{Ctx, Result, auth};
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::{GetReadable, LineAt, Locate, Missing, Page};
use crate::platform::bindings::{self, media_key, results_key};
use crate::platform::error::ApiError;
use crate::platform::query::Query;
use batchgate_core::jsonl::LineSplitter;
use batchgate_core::results::{Outcome, missing_line, scan_line};
use batchgate_core::{media, paging};
use futures_util::stream::LocalBoxStream;
use futures_util::{StreamExt, stream};
use std::rc::Rc;
use worker::{ByteStream, Env, Range, Request, Response};

const NDJSON: &str = "application/x-ndjson";

fn not_ready() -> ApiError {
    ApiError::new(
        409,
        "results_not_ready",
        "the job's results are not stored yet; watch the job until resultsReady",
    )
}

async fn object_stream(env: &Env, key: &str, range: Option<Range>) -> Result<ByteStream> {
    let bucket = bindings::bucket(env)?;
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

/// `GET /v1/jobs/:id/results[?only=failed][&limit=&cursor=][&partial=true]`.
/// With `partial=true`, before the job ends: the lines of the shards stored so
/// far, in shard order (the requests Gemini returned nothing for are known
/// only at the end).
pub async fn all(req: &Request, cx: &Ctx<'_>, id: &str) -> Result<Response> {
    let account = auth::account(req, cx.settings)?;
    let job = JobRef::named(cx.env, id)?;
    let q = Query::of(req);
    let failed_only = q.get("only").as_deref() == Some("failed");
    let partial = match q.get("partial").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::bad_request("invalid_partial", "partial must be true or false")),
    };
    if let Some(limit) = q.get("limit") {
        let limit: u64 =
            limit.parse().map_err(|_| ApiError::bad_request("invalid_limit", "limit must be a number"))?;
        let after = q
            .get("cursor")
            .map_or(Ok(0), |c| c.parse::<u64>())
            .map_err(|_| ApiError::bad_request("invalid_cursor", "bad cursor"))?;
        let ask = Page { after, limit: paging::RESULTS.of(Some(limit)), failed: failed_only, partial };
        return page(cx.env, &job, &account, &ask, inline_media(&q)?).await;
    }
    let readable = job.ask(&account, &GetReadable).await?;
    if !readable.complete && !partial {
        return Err(not_ready());
    }
    let body = shards_stream(cx.env, id, readable.shards);
    let body = if readable.media && !inline_media(&q)? { media_linked(body, id) } else { body };
    if !failed_only {
        return ndjson(Response::from_stream(body)?);
    }
    if !readable.complete {
        // Which requests Gemini returned nothing for is known only at the end.
        return ndjson(Response::from_stream(failed_lines(body))?);
    }
    ndjson(Response::from_stream(failed_lines(body).chain(missing_lines(job, account)))?)
}

/// A line for every request of the ended job without a result, paged from
/// the object as the stream is read (not only the first page: no result is
/// lost, invariant 3).
fn missing_lines(job: JobRef, account: String) -> LocalBoxStream<'static, worker::Result<Vec<u8>>> {
    let (job, account) = (Rc::new(job), Rc::new(account));
    let limit = paging::MISSING.of(None);
    stream::unfold(Some(0u64), move |after| {
        let (job, account) = (job.clone(), account.clone());
        async move {
            let page = match job.ask(&account, &Missing { after: after?, limit }).await {
                Ok(p) => p,
                Err(e) => return Some((Err(worker::Error::RustError(e.message)), None)),
            };
            let next = (page.len() as u64 == limit).then(|| page.last().map(|(n, _)| *n)).flatten();
            let out: Vec<u8> = page.iter().flat_map(|(_, key)| missing_line(key)).collect();
            Some((Ok(out), next))
        }
    })
    .boxed_local()
}

/// The ended job's results as Gemini's results file: every line, media
/// inline as Gemini wrote it, and an error line for each request Gemini
/// returned nothing for (the Gemini drop-in's `files.download`).
pub async fn results_file(env: &Env, job: JobRef, account: String) -> Result<Response> {
    let readable = job.ask(&account, &GetReadable).await?;
    if !readable.complete {
        return Err(ApiError::not_found("the batch's results file is not written yet"));
    }
    let body = shards_stream(env, job.id(), readable.shards).chain(missing_lines(job, account));
    Ok(Response::from_stream(body)?)
}

/// The ended job's result lines by key, read whole: the answers of a batch
/// made inline, which Gemini gives in the batch itself. `None` when they come
/// to more than `cap` bytes (the caller names the results file instead).
pub async fn lines_by_key(
    env: &Env,
    job: &JobRef,
    account: &str,
    cap: usize,
) -> Result<Option<std::collections::HashMap<String, serde_json::Value>>> {
    let readable = job.ask(account, &GetReadable).await?;
    let mut body = shards_stream(env, job.id(), readable.shards);
    let (mut lines, mut read) = (std::collections::HashMap::new(), 0usize);
    let mut splitter = LineSplitter::new(cap);
    let mut take = |_: u64, l: &[u8]| {
        if let Ok(line) = serde_json::from_slice::<serde_json::Value>(l)
            && let Some(key) = line.get("key").and_then(|k| k.as_str()).map(str::to_string)
        {
            lines.insert(key, line);
        }
        Ok::<(), std::convert::Infallible>(())
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::internal(format!("reading results: {e}")))?;
        read = read.saturating_add(chunk.len());
        if read > cap || splitter.feed(&chunk, &mut take).is_err() {
            return Ok(None);
        }
    }
    let _ = splitter.finish(&mut take);
    Ok(Some(lines))
}

/// Every shard's results object, one after the other, read as they are sent
/// (a shard whose batch returned no file has no object and adds nothing;
/// each object ends its last line, see `ingest::stored_part`).
fn shards_stream(env: &Env, id: &str, shards: Vec<u64>) -> LocalBoxStream<'static, worker::Result<Vec<u8>>> {
    let (env, id) = (env.clone(), id.to_string());
    let parts = stream::iter(shards).then(move |shard| {
        let (env, key) = (env.clone(), results_key(&id, shard));
        async move {
            match object_stream(&env, &key, None).await {
                Ok(body) => body.boxed_local(),
                // A shard whose batch returned no file (or whose read failed) has no object.
                Err(e) if e.status == 409 => stream::empty().boxed_local(),
                Err(e) => stream::once(async move { Err(worker::Error::RustError(e.message)) }).boxed_local(),
            }
        }
    });
    parts.flatten().boxed_local()
}

/// Keep the lines whose outcome is not a success (errors and malformed lines).
fn failed_lines(
    body: LocalBoxStream<'static, worker::Result<Vec<u8>>>,
) -> LocalBoxStream<'static, worker::Result<Vec<u8>>> {
    map_lines(body, |line, out| {
        if !matches!(scan_line(line).outcome, Outcome::Success(_)) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    })
}

/// Each line with its media parts linked rather than inline (see `media_url`).
fn media_linked(
    body: LocalBoxStream<'static, worker::Result<Vec<u8>>>,
    id: &str,
) -> LocalBoxStream<'static, worker::Result<Vec<u8>>> {
    let id = id.to_string();
    map_lines(body, move |line, out| {
        out.extend(link(&id, line).as_deref().unwrap_or(line));
        out.push(b'\n');
    })
}

/// `line` with its media linked, if it has any.
fn link(id: &str, line: &[u8]) -> Option<Vec<u8>> {
    if !media::may_have_media(line) {
        return None;
    }
    let key = scan_line(line).key?.to_string();
    media::link_media(line, |n| media_url(id, &key, n))
}

/// Where media part `n` of `key`'s answer is served.
fn media_url(id: &str, key: &str, n: usize) -> String {
    let key = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
    format!("{}/results/{key}/media/{n}", crate::paths::job(id))
}

/// The stream's lines, each passed through `f` (which writes what to send).
fn map_lines(
    body: LocalBoxStream<'static, worker::Result<Vec<u8>>>,
    f: impl Fn(&[u8], &mut Vec<u8>) + 'static,
) -> LocalBoxStream<'static, worker::Result<Vec<u8>>> {
    let f = Rc::new(f);
    stream::unfold(Some((body, LineSplitter::new(usize::MAX / 2))), move |state| {
        let f = f.clone();
        async move {
            let (mut body, mut splitter) = state?;
            let mut out = Vec::new();
            let mut each = |_: u64, l: &[u8]| {
                f(l, &mut out);
                Ok::<(), std::convert::Infallible>(())
            };
            match body.next().await {
                Some(Ok(chunk)) => {
                    let _ = splitter.feed(&chunk, &mut each);
                    Some((Ok(out), Some((body, splitter))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None => {
                    let _ = splitter.finish(&mut each);
                    Some((Ok(out), None))
                }
            }
        }
    })
    .boxed_local()
}

/// Lines after line number `after`; contiguous lines come from one range read.
async fn page(env: &Env, job: &JobRef, account: &str, ask: &Page, inline: bool) -> Result<Response> {
    let page = job.ask(account, ask).await?;
    if !page.ready {
        return Err(not_ready());
    }
    // Bounded in bytes as well as lines: 1,000 lines of 8 MiB are not one answer.
    let fit = batchgate_core::results::lines_in_page(
        page.lines.iter().map(|l| l.len),
        batchgate_core::results::MAX_PAGE_BYTES,
    );
    let more = fit < page.lines.len() || page.lines.len() as u64 == ask.limit;
    let lines = page.lines.get(..fit).unwrap_or_default();
    let mut out = Vec::new();
    for run in runs(lines) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else { continue };
        let start = first.pos;
        let len = (last.pos + last.len).saturating_sub(start);
        let mut bytes = Vec::new();
        let mut s = object_stream(
            env,
            &results_key(job.id(), first.shard),
            Some(Range::OffsetWithLength { offset: start, length: len }),
        )
        .await?;
        while let Some(chunk) = s.next().await {
            bytes.extend(chunk?);
        }
        for l in run {
            let from = usize::try_from(l.pos - start).unwrap_or(usize::MAX);
            let to = from.saturating_add(usize::try_from(l.len).unwrap_or(usize::MAX));
            if let Some(line) = bytes.get(from..to) {
                let linked = if inline { None } else { link(job.id(), line) };
                out.extend_from_slice(linked.as_deref().unwrap_or(line));
                out.push(b'\n');
            }
        }
    }
    let resp = ndjson(Response::from_bytes(out)?)?;
    if let Some(last) = lines.last() {
        if more {
            resp.headers().set("batchgate-next-cursor", &last.number.to_string())?;
        }
        if ask.partial {
            // Where to go on from once more shards are stored.
            resp.headers().set("batchgate-resume-cursor", &last.number.to_string())?;
        }
    }
    Ok(resp)
}

/// Group lines that sit next to each other in one object (at most a `\r\n` apart).
fn runs(lines: &[LineAt]) -> Vec<&[LineAt]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=lines.len() {
        let split = match (lines.get(i - 1), lines.get(i)) {
            (Some(a), Some(b)) => a.shard != b.shard || b.pos.saturating_sub(a.pos + a.len) > 2,
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

/// `?inlineMedia=true`: media stays base64 in the lines, as Gemini sent it.
fn inline_media(q: &Query) -> Result<bool> {
    match q.get("inlineMedia").as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request("invalid_inline_media", "inlineMedia must be true or false")),
    }
}

/// `GET /v1/jobs/:id/results/:key[?inlineMedia=true]`: one result line, by its key.
pub async fn one(req: &Request, cx: &Ctx<'_>, id: &str, key: &str) -> Result<Response> {
    let bytes = stored_line(req, cx, id, key).await?;
    let linked = if inline_media(&Query::of(req))? { None } else { link(id, &bytes) };
    let resp = Response::from_bytes(linked.unwrap_or(bytes))?;
    resp.headers().set("content-type", "application/json")?;
    Ok(resp)
}

/// `GET /v1/jobs/:id/results/:key/media/:n`: media part `n` of the answer, as
/// its own bytes with its content type.
pub async fn media_part(req: &Request, cx: &Ctx<'_>, id: &str, key: &str, n: &str) -> Result<Response> {
    let n: usize =
        n.parse().map_err(|_| ApiError::bad_request("invalid_media_index", "the media index is a number"))?;
    let at = locate(req, cx, id, key).await?;
    // Stored on its own when the results were; results stored before that are decoded from the line.
    let stored = bindings::bucket(cx.env)?.get(media_key(id, at.number, n)).execute().await?;
    let (mime, resp) = match stored {
        Some(object) => {
            let mime = object.http_metadata().content_type.unwrap_or_default();
            let body = object.body().ok_or_else(|| ApiError::internal("a media object without a body"))?;
            (mime, Response::from_stream(body.stream()?)?)
        }
        None => {
            let line = read_line(cx.env, id, &at).await?;
            let (mime, bytes) = media::media_part(&line, n).ok_or_else(|| {
                ApiError::new(404, "media_not_found", format!("the answer for {key:?} has no media part {n}"))
            })?;
            (mime, Response::from_bytes(bytes)?)
        }
    };
    // Served as the media it says it is, never as a page a browser would run.
    resp.headers().set("content-type", media::served_type(&mime))?;
    resp.headers().set("x-content-type-options", "nosniff")?;
    resp.headers().set("cache-control", "private, max-age=3600")?;
    Ok(resp)
}

/// The stored result line of `key`, as the job's owner may read it.
async fn stored_line(req: &Request, cx: &Ctx<'_>, id: &str, key: &str) -> Result<Vec<u8>> {
    let at = locate(req, cx, id, key).await?;
    read_line(cx.env, id, &at).await
}

/// Where the result line of `key` is stored, as the job's owner may read it.
async fn locate(req: &Request, cx: &Ctx<'_>, id: &str, key: &str) -> Result<LineAt> {
    let account = auth::account(req, cx.settings)?;
    let found = JobRef::named(cx.env, id)?.ask(&account, &Locate(key.to_string())).await?;
    if !found.ready {
        return Err(not_ready());
    }
    found.line.ok_or_else(|| ApiError::new(404, "result_not_found", format!("no result for key {key:?}")))
}

async fn read_line(env: &Env, id: &str, line: &LineAt) -> Result<Vec<u8>> {
    let mut s = object_stream(
        env,
        &results_key(id, line.shard),
        Some(Range::OffsetWithLength { offset: line.pos, length: line.len }),
    )
    .await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = s.next().await {
        bytes.extend(chunk?);
    }
    Ok(bytes)
}
