//! `files.get`, `files.list` and `files.delete` through the Gemini drop-in:
//! a job's results file (`files/batch-{job}`), the account's media files
//! (in Gemini's Files API, as `/v1/files` shows them) and the batch input
//! files uploaded here (kept in R2), each as Gemini's `File`.

use crate::api::{Ctx, Result, ok};
use crate::objects::account::client as accounts;
use crate::objects::job::client::JobRef;
use crate::objects::job::protocol::GetView;
use crate::platform::bindings::{self, gemini_input_prefix};
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::query::Query;
use batchgate_core::dropin::{self, upload};
use batchgate_core::gemini::{File, ListFilesResponse};
use batchgate_core::paging;
use futures_util::StreamExt;
use futures_util::stream::{self, LocalBoxStream};
use serde::{Deserialize, Serialize};
use worker::{Env, Request, Response};

/// A finished batch input file: what `files.get` shows, and its chunks' keys in order.
#[derive(Serialize, Deserialize)]
pub struct InputRecord {
    pub file: File,
    pub parts: Vec<String>,
}

/// A batch input file of `account` uploaded here, if there is one named `id`
/// and it has not expired (48 hours, as at Gemini; R2's lifecycle rule
/// reclaims the bytes, README "Deploying").
async fn input_record(env: &Env, account: &str, id: &str) -> Result<Option<InputRecord>> {
    let key = bindings::gemini_input_record(account, id);
    let Some(object) = bindings::bucket(env)?.get(key).execute().await? else { return Ok(None) };
    let Some(body) = object.body() else { return Ok(None) };
    let record: Option<InputRecord> = serde_json::from_slice(&body.bytes().await?).ok();
    Ok(record.filter(|r| !upload::expired(&r.file, now_ms())))
}

async fn input_file(env: &Env, account: &str, id: &str) -> Result<Option<File>> {
    Ok(input_record(env, account, id).await?.map(|r| r.file))
}

/// Delete batch input file `id` of `account`: every object under its prefix
/// (its record, its chunks, any a lost race left), and the storage it held.
pub async fn delete_input(cx: &Ctx<'_>, account: &str, id: &str) -> Result<()> {
    let keys = keys_under(cx.env, &gemini_input_prefix(account, id)).await?;
    let bucket = bindings::bucket(cx.env)?;
    // R2 deletes at most 1,000 keys a call.
    for batch in keys.chunks(1_000) {
        bucket.delete_multiple(batch.to_vec()).await?;
    }
    accounts::release_storage(cx.env, account, id).await;
    Ok(())
}

/// The keys of every object under `prefix`, in order (R2 lists by key).
async fn keys_under(env: &Env, prefix: &str) -> Result<Vec<String>> {
    let bucket = bindings::bucket(env)?;
    let (mut keys, mut cursor) = (vec![], None);
    loop {
        let mut list = bucket.list().prefix(prefix);
        if let Some(c) = cursor.take() {
            list = list.cursor(c);
        }
        let page = list.execute().await?;
        keys.extend(page.objects().iter().map(|o| o.key()));
        match page.cursor() {
            Some(c) if page.truncated() => cursor = Some(c),
            _ => return Ok(keys),
        }
    }
}

/// Batch input file `name` (`files/{id}`) of `account`, as one stream of its
/// chunks in order; 404 when there is no such finished file.
pub async fn input_stream(
    env: &Env,
    account: &str,
    name: &str,
) -> Result<LocalBoxStream<'static, worker::Result<Vec<u8>>>> {
    let id = name.strip_prefix("files/").unwrap_or(name);
    let Some(record) = input_record(env, account, id).await? else {
        return Err(ApiError::not_found(format!(
            "no file {name} (batches are made from JSONL files uploaded here)"
        )));
    };
    // The chunks its upload recorded, in order: never whatever else lies under its prefix.
    let parts = record.parts;
    let env = env.clone();
    let chunks = stream::iter(parts).then(move |key| {
        let env = env.clone();
        async move {
            let bucket = bindings::bucket(&env)?;
            let gone = || worker::Error::RustError(format!("{key} is gone"));
            let object = bucket.get(key.clone()).execute().await?.ok_or_else(gone)?;
            object.body().ok_or_else(gone)?.bytes().await
        }
    });
    Ok(chunks.boxed_local())
}

/// `files/{name}`: a results file, a batch input file or a media file.
pub async fn get(req: &Request, cx: &Ctx<'_>, account: &str, name: &str) -> Result<Response> {
    if let Some(id) = dropin::job_of_results_file(name) {
        let view = JobRef::named(cx.env, id)?.ask(account, &GetView).await?;
        if !view.results_ready || !dropin::state(&view).is_terminal() {
            return Err(ApiError::not_found(format!("files/{name} is not written yet")));
        }
        let origin = crate::platform::query::origin(req);
        let uri = format!("{origin}/gemini/download/v1beta/files/{name}:download?alt=media");
        return ok(&dropin::results_file_resource(&view, uri));
    }
    if let Some(file) = input_file(cx.env, account, name).await? {
        return ok(&file);
    }
    let wanted = format!("files/{name}");
    let files = accounts::files(cx.env, account).await?;
    let f = files
        .iter()
        .find(|f| f.name == wanted)
        .ok_or_else(|| ApiError::not_found(format!("no file {wanted}")))?;
    ok(&dropin::media_file(&f.view()))
}

/// `files?pageSize=&pageToken=`: the account's media files on the first page,
/// then its batch input files a page at a time. R2 lists one folder per input
/// file (its chunks stay out of the listing), and a page's records are read
/// side by side; the page token is R2's cursor.
pub async fn list(req: &Request, cx: &Ctx<'_>, account: &str) -> Result<Response> {
    let q = Query::of(req);
    let limit = paging::GEMINI_FILES.of_query(q.get("pageSize").as_deref());
    let cursor = q.get("pageToken").filter(|t| !t.is_empty());
    let mut files: Vec<File> = match cursor {
        Some(_) => vec![],
        None => {
            accounts::files(cx.env, account).await?.iter().map(|f| dropin::media_file(&f.view())).collect()
        }
    };
    let bucket = bindings::bucket(cx.env)?;
    let mut listing =
        bucket.list().prefix(bindings::gemini_inputs_of(account)).delimiter("/").limit(limit as u32);
    if let Some(c) = cursor {
        listing = listing.cursor(c);
    }
    let page = listing.execute().await?;
    let folders = page.delimited_prefixes();
    let ids = folders.iter().filter_map(|f| bindings::gemini_input_of_folder(account, f));
    // Unfinished uploads and expired files have no record to show.
    let records = futures_util::future::join_all(ids.map(|id| input_file(cx.env, account, id))).await;
    for record in records {
        files.extend(record?);
    }
    let next_page_token = if page.truncated() { page.cursor() } else { None };
    ok(&ListFilesResponse { files, next_page_token })
}

/// `DELETE files/{name}`: a batch input file goes with its chunks; a media
/// file as `DELETE /v1/files/{id}` deletes it. Gemini answers `{}`.
pub async fn delete(cx: &Ctx<'_>, account: &str, name: &str) -> Result<Response> {
    if input_file(cx.env, account, name).await?.is_some() {
        delete_input(cx, account, name).await?;
        return ok(&serde_json::Map::new());
    }
    crate::api::files::delete_owned(cx, account, name).await?;
    ok(&serde_json::Map::new())
}
