//! Every route of the route table (`lib.rs`), described: parameters, bodies,
//! answers and the error codes each can refuse with. The schemas come from the
//! types the handlers read and write.

use super::types::{GeminiHookEvent, GenerateContentResponse, ResultLine, SubmitLine};
use super::{Caller, Doc, Op};
use crate::api::{admin, auth, estimate, files, generate, hooks, inputs, jobs, uploads};
use crate::objects::{account as account_object, input, job, quota, upload};
use batchgate_core::view::JobView;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

fn int(min: u64, max: Option<u64>) -> Value {
    match max {
        Some(max) => json!({"type": "integer", "minimum": min, "maximum": max}),
        None => json!({"type": "integer", "minimum": min}),
    }
}

fn string() -> Value {
    json!({"type": "string"})
}

/// A body of bytes (`format: binary` makes generated clients take a file);
/// for NDJSON, the schema of each line in `x-line-schema`.
fn bytes(media: &str, line: Value) -> Value {
    let mut schema = json!({"type": "string", "format": "binary", "contentMediaType": media});
    if !line.is_null() {
        schema["x-line-schema"] = line;
    }
    schema
}

fn boolean() -> Value {
    json!({"type": "string", "enum": ["true", "false"]})
}

/// The errors of a body read whole through the byte cap (and parsed whole:
/// `json_too_complex` when parsed it would take too much memory).
fn capped(op: Op) -> Op {
    op.errors(413, &["body_too_large", "json_too_complex"]).errors(400, &["invalid_json"])
}

/// What a submission (and a retry) can be refused for once its lines are read.
fn submission_refusals(op: Op) -> Op {
    op.errors(
        400,
        &["invalid_requests", "quote_too_large", "unpriced_model", "invalid_model", "fallback_too_large"],
    )
    .errors(402, &["insufficient_credits"])
    .errors(409, &["idempotency_key_used", "idempotency_key_in_use"])
    .errors(410, &["input_gone"])
    .errors(429, &["too_many_open_jobs", "too_many_submits"])
    .errors(503, &["storage_unavailable"])
}

pub fn describe(doc: &mut Doc) {
    service(doc);
    jobs(doc);
    results(doc);
    files_and_uploads(doc);
    inputs_and_estimates(doc);
    generate(doc);
    account(doc);
    admin(doc);
}

fn service(doc: &mut Doc) {
    let health = doc.out::<crate::Health>();
    doc.add(
        "GET",
        "/healthz",
        Op::new("health", "service", "Is the worker up", Caller::Anyone).answer(
            200,
            "Up.",
            Some((JSON, health)),
        ),
    );
    doc.add(
        "GET",
        "/openapi.json",
        Op::new("openapi", "service", "This document", Caller::Anyone).answer(
            200,
            "The OpenAPI 3.1 document of this API.",
            Some((JSON, json!({"type": "object"}))),
        ),
    );
    let (event, accepted) = (doc.read::<GeminiHookEvent>(), doc.out::<hooks::Accepted>());
    doc.add(
        "POST",
        "/hooks/gemini",
        Op::new("geminiWebhook", "service", "Gemini's batch webhooks in", Caller::Anyone)
            .describe("For Gemini, not users: a batch changed state. Signed per Standard Webhooks with `GEMINI_WEBHOOK_SECRET`; the job named by the batch is polled at once.")
            .header("webhook-id", true, "Standard Webhooks message id.")
            .header("webhook-timestamp", true, "Seconds since the epoch; too old or too new is refused.")
            .header("webhook-signature", true, "`v1,<base64 HMAC-SHA256>`, space-separated if several.")
            .body(JSON, event, "")
            .answer(200, "Verified; `woken` when a job of this deployment was polled.", Some((JSON, accepted)))
            .errors(400, &["missing_header", "invalid_event"])
            .errors(401, &["stale_timestamp", "invalid_signature"])
            .errors(404, &["not_found"])
            .errors(413, &["body_too_large"]),
    );
}

fn job_id(op: Op) -> Op {
    op.path("id", "The job's id (64 hex characters).").errors(404, &["not_found"])
}

fn jobs(doc: &mut Doc) {
    let (view, submission, line) =
        (doc.out::<JobView>(), doc.read::<jobs::submit::JsonSubmission>(), doc.read::<SubmitLine>());
    let mode = doc.read::<batchgate_core::lane::Mode>();
    let submit = Op::new("submitJob", "jobs", "Submit a job", Caller::User)
        .describe("A JSON body names its `requests` (or an `input` sent in parts); an NDJSON body (`Content-Type: application/x-ndjson`) is one request per line, with the job's settings in the query. Every line is checked before anything is stored: a bad line refuses the whole job, naming each bad line. The job's price is reserved from the balance; it is charged for the tokens Gemini reports once it ends.")
        .header("Idempotency-Key", false, "Up to 255 characters: the same key (for this account) answers with the same job instead of making another.")
        .query("model", string(), "NDJSON only (required there): the model, e.g. `gemini-2.5-flash`.")
        .query("displayName", string(), "NDJSON only.")
        .query("webhookUrl", string(), "NDJSON only: POSTed the final job (see `webhooks`).")
        .query("mode", mode, "NDJSON only: `batch` (default), `realtime` or `auto`.")
        .query("fallback", json!({"enum": ["realtime"]}), "NDJSON only: run realtime what Gemini will not take as a batch.")
        .body(JSON, submission, "The job. Exactly one of `requests` and `input`.")
        .body(NDJSON, bytes(NDJSON, line), "")
        .answer(202, "Accepted (or, for a reused `Idempotency-Key`, the job it made).", Some((JSON, view.clone())))
        .answer_header(202, "Location", "`/v1/jobs/{id}`.")
        .errors(400, &["invalid_idempotency_key", "missing_model", "invalid_display_name", "invalid_mode", "invalid_fallback", "invalid_webhook_url", "metadata_too_large", "line_too_long", "unreadable_body", "input_incomplete"])
        .errors(404, &["not_found"])
        .errors(409, &["input_used", "input_ended"])
        .errors(413, &["too_large"]);
    doc.add("POST", "/v1/jobs", submission_refusals(capped(submit)));

    let list = doc.out::<account_object::protocol::JobList>();
    doc.add(
        "GET",
        "/v1/jobs",
        Op::new("listJobs", "jobs", "List jobs, newest first", Caller::User)
            .query("limit", int(1, Some(200)), "Page size (default 50).")
            .query("cursor", string(), "`nextCursor` of the page before.")
            .query("state", string(), "Comma-separated job states to keep.")
            .answer(200, "A page of jobs.", Some((JSON, list)))
            .errors(400, &["invalid_state"]),
    );
    doc.add(
        "GET",
        "/v1/jobs/{id}",
        job_id(Op::new("getJob", "jobs", "A job", Caller::User))
            .header("If-None-Match", false, "An `ETag` seen before: 304 while the job is unchanged.")
            .answer(200, "The job.", Some((JSON, view.clone())))
            .answer_header(200, "ETag", "Changes whenever the job does.")
            .answer(304, "Unchanged since the `ETag` given.", None),
    );
    let deleted = doc.out::<job::protocol::Deleted>();
    doc.add(
        "DELETE",
        "/v1/jobs/{id}",
        job_id(Op::new("deleteJob", "jobs", "Delete a job", Caller::User))
            .describe(
                "Cancels it at Gemini if it runs, releases what it reserved, deletes its input and results.",
            )
            .answer(200, "Deleted.", Some((JSON, deleted)))
            .errors(409, &["realtime_in_progress"]),
    );
    doc.add(
        "GET",
        "/v1/jobs/{id}/watch",
        job_id(Op::new("watchJob", "jobs", "Watch a job over a WebSocket", Caller::User))
            .describe("A WebSocket: the job (as `GET /v1/jobs/{id}` shows it) at once, on every visible change and whenever the client sends a message; closed (1000) once the job ends or is deleted. Browsers cannot set headers on a WebSocket: they pass a `ticket` instead of the token.")
            .header("Upgrade", true, "`websocket`.")
            .query("ticket", string(), "A ticket from `POST /v1/jobs/{id}/watch-ticket` (single use), instead of the token.")
            .answer(101, "Switching to the WebSocket; each text message is a job view.", None)
            .errors(401, &["invalid_ticket"])
            .errors(426, &["upgrade_required"]),
    );
    let ticket = doc.out::<job::protocol::Ticket>();
    doc.add(
        "POST",
        "/v1/jobs/{id}/watch-ticket",
        job_id(Op::new("watchTicket", "jobs", "A ticket to watch a job", Caller::User)).answer(
            200,
            "Single use, valid 60 seconds.",
            Some((JSON, ticket)),
        ),
    );
    doc.add(
        "POST",
        "/v1/jobs/{id}/cancel",
        job_id(Op::new("cancelJob", "jobs", "Cancel a job", Caller::User))
            .describe("Asked of Gemini; results it already has are kept and charged.")
            .answer(200, "The job, `cancelRequested`.", Some((JSON, view.clone()))),
    );
    let timeline = doc.out::<job::protocol::Timeline>();
    doc.add(
        "GET",
        "/v1/jobs/{id}/events",
        job_id(Op::new("jobEvents", "jobs", "A job's timeline, oldest first", Caller::User))
            .query("after", int(0, None), "The `seq` of the last event seen (`nextCursor`).")
            .query("limit", int(1, Some(1000)), "Page size (default 100).")
            .answer(200, "A page of events.", Some((JSON, timeline))),
    );
    let retry = job_id(Op::new("retryJob", "jobs", "Retry a job's unsucceeded requests", Caller::User))
        .describe("A new job of the ended job's failed and missing requests (`retryOf`); asking again answers the same child.")
        .answer(202, "The child job.", Some((JSON, view)))
        .answer_header(202, "Location", "`/v1/jobs/{id}` of the child.")
        .errors(409, &["job_not_finished", "nothing_to_retry", "too_many_retries"]);
    doc.add("POST", "/v1/jobs/{id}/retry", submission_refusals(retry));
}

fn results(doc: &mut Doc) {
    let line = doc.out::<ResultLine>();
    let inline = "`true`: media inline as Gemini answered (base64); by default each media part is a link.";
    doc.add(
        "GET",
        "/v1/jobs/{id}/results",
        job_id(Op::new("jobResults", "results", "A job's results", Caller::User))
            .describe("NDJSON, one line per request (in no set order). Whole by default, streamed; with `limit`, a page and `batchgate-next-cursor` while more remain.")
            .query("only", json!({"enum": ["failed"]}), "Only the failed requests, and a line for each Gemini returned nothing for.")
            .query("partial", boolean(), "`true`: the results stored so far, before the job ends.")
            .query("inlineMedia", boolean(), inline)
            .query("limit", int(1, Some(1000)), "Lines per page.")
            .query("cursor", int(0, None), "`batchgate-next-cursor` of the page before.")
            .answer(200, "One result per line.", Some((NDJSON, bytes(NDJSON, line))))
            .answer_header(200, "batchgate-next-cursor", "Paged: the `cursor` of the next page, while there is one.")
            .answer_header(200, "batchgate-resume-cursor", "Paged and `partial`: where to resume once more results are stored.")
            .errors(409, &["results_not_ready"])
            .errors(400, &["invalid_partial", "invalid_limit", "invalid_cursor", "invalid_inline_media"]),
    );
    let line = doc.out::<ResultLine>();
    doc.add(
        "GET",
        "/v1/jobs/{id}/results/{key}",
        job_id(Op::new("jobResult", "results", "One request's result", Caller::User))
            .path("key", "The request's key.")
            .query("inlineMedia", boolean(), inline)
            .answer(200, "The result line.", Some((JSON, line)))
            .errors(404, &["result_not_found"])
            .errors(409, &["results_not_ready"])
            .errors(400, &["invalid_inline_media"]),
    );
    doc.add(
        "GET",
        "/v1/jobs/{id}/results/{key}/media/{n}",
        job_id(Op::new("jobResultMedia", "results", "A media part of a result", Caller::User))
            .path("key", "The request's key.")
            .path("n", "The media part's index in the answer (from its link).")
            .answer(
                200,
                "The bytes, typed `image/*`, `audio/*`, `video/*` or `application/octet-stream`.",
                Some(("application/octet-stream", bytes("application/octet-stream", Value::Null))),
            )
            .errors(400, &["invalid_media_index"])
            .errors(404, &["result_not_found", "media_not_found"])
            .errors(409, &["results_not_ready"]),
    );
}

fn file_name(op: Op) -> Op {
    op.path("id", "The file's id (its name without `files/`).").errors(404, &["not_found"])
}

fn files_and_uploads(doc: &mut Doc) {
    let file = doc.out::<batchgate_core::upload::FileView>();
    doc.add(
        "POST",
        "/v1/files",
        Op::new("uploadFile", "files", "Upload a media file in one request", Caller::User)
            .describe("The body is the file, its `Content-Type` its MIME type; `Content-Length` is required. Larger files go through `/v1/uploads`.")
            .query("displayName", string(), "Shown with the file.")
            .body("application/octet-stream", bytes("application/octet-stream", Value::Null), "The file's bytes, sent with its own MIME type.")
            .answer(201, "Stored at Gemini for 48 hours.", Some((JSON, file.clone())))
            .errors(411, &["length_required"])
            .errors(415, &["unsupported_mime_type"])
            .errors(400, &["invalid_size", "length_mismatch"])
            .errors(413, &["file_too_large", "use_resumable_upload", "storage_quota_exceeded"])
            .errors(502, &["upstream_failed"]),
    );
    let list = doc.out::<files::Files>();
    doc.add(
        "GET",
        "/v1/files",
        Op::new("listFiles", "files", "The account's files, newest first", Caller::User).answer(
            200,
            "Every file not yet expired.",
            Some((JSON, list)),
        ),
    );
    doc.add(
        "GET",
        "/v1/files/{id}",
        file_name(Op::new("getFile", "files", "A file", Caller::User)).answer(
            200,
            "The file.",
            Some((JSON, file)),
        ),
    );
    let deleted = doc.out::<files::Deleted>();
    doc.add(
        "DELETE",
        "/v1/files/{id}",
        file_name(Op::new("deleteFile", "files", "Delete a file", Caller::User))
            .answer(200, "Deleted here and at Gemini.", Some((JSON, deleted)))
            .errors(502, &["upstream_failed"]),
    );

    let (new_session, session) =
        (doc.read::<uploads::NewSession>(), doc.out::<upload::protocol::SessionView>());
    doc.add(
        "POST",
        "/v1/uploads",
        capped(Op::new("openUpload", "files", "Open a resumable upload", Caller::User))
            .body(JSON, new_session, "")
            .answer(201, "The session.", Some((JSON, session.clone())))
            .answer_header(201, "Location", "`/v1/uploads/{id}`.")
            .errors(400, &["invalid_size"])
            .errors(413, &["file_too_large", "storage_quota_exceeded"])
            .errors(415, &["unsupported_mime_type"])
            .errors(502, &["upstream_failed"]),
    );
    let upload_id =
        |op: Op| op.path("id", "The upload's id (64 hex characters).").errors(404, &["not_found"]);
    doc.add(
        "PUT",
        "/v1/uploads/{id}",
        upload_id(Op::new("uploadChunk", "files", "Send a chunk", Caller::User))
            .describe("Chunks in order; every chunk but the last a multiple of `chunkGranularity`, each at most `maxChunkBytes`. After a failure, `GET` the session and resume from `received`.")
            .header("Content-Range", true, "`bytes start-end/total`.")
            .body("application/octet-stream", bytes("application/octet-stream", Value::Null), "The chunk.")
            .answer(200, "Taken; more to come.", Some((JSON, session.clone())))
            .answer(201, "The last chunk: the file is ready (`file`).", Some((JSON, session.clone())))
            .errors(400, &["invalid_content_range", "size_mismatch", "length_mismatch", "invalid_chunk_size"])
            .errors(409, &["wrong_offset", "upload_ended", "chunk_in_progress"])
            .errors(413, &["chunk_too_large"])
            .errors(502, &["upstream_failed"]),
    );
    doc.add(
        "GET",
        "/v1/uploads/{id}",
        upload_id(Op::new("getUpload", "files", "An upload's session", Caller::User)).answer(
            200,
            "The session.",
            Some((JSON, session)),
        ),
    );
}

fn inputs_and_estimates(doc: &mut Doc) {
    let (new_input, view, counts) = (
        doc.read::<inputs::NewInput>(),
        doc.out::<input::protocol::InputView>(),
        doc.out::<input::protocol::Counts>(),
    );
    doc.add(
        "POST",
        "/v1/inputs",
        capped(Op::new("openInput", "inputs", "Open an input to send a job's NDJSON in parts", Caller::User))
            .body(JSON, new_input, "Optional: the total `size` when known.")
            .optional_body()
            .answer(201, "The input.", Some((JSON, view.clone())))
            .answer_header(201, "Location", "`/v1/inputs/{id}`.")
            .errors(400, &["invalid_size"]),
    );
    let input_id = |op: Op| op.path("id", "The input's id (64 hex characters).").errors(404, &["not_found"]);
    let line = doc.read::<SubmitLine>();
    doc.add(
        "PUT",
        "/v1/inputs/{id}",
        input_id(Op::new("sendInputPart", "inputs", "Send a part of whole lines", Caller::User))
            .describe("Parts in order, each of whole NDJSON lines, checked as they stream. A part sent again after a lost answer is answered and not taken twice.")
            .header("Content-Range", true, "`bytes start-end/total`, or `bytes start-end/*` while the total is unknown.")
            .body(NDJSON, bytes(NDJSON, line), "Whole request lines.")
            .answer(200, "Taken: what the input holds now.", Some((JSON, counts)))
            .errors(400, &["invalid_content_range", "size_mismatch", "length_mismatch", "partial_line", "line_too_long", "unreadable_body", "invalid_requests", "too_many_requests", "duplicate_key"])
            .errors(409, &["wrong_offset", "input_ended", "input_used"])
            .errors(413, &["part_too_large"])
            .errors(503, &["storage_unavailable"]),
    );
    doc.add(
        "GET",
        "/v1/inputs/{id}",
        input_id(Op::new("getInput", "inputs", "An input", Caller::User)).answer(
            200,
            "The input.",
            Some((JSON, view.clone())),
        ),
    );
    doc.add(
        "DELETE",
        "/v1/inputs/{id}",
        input_id(Op::new("deleteInput", "inputs", "Delete an input", Caller::User))
            .answer(200, "The input, `deleted` (or `used` when a job has it).", Some((JSON, view)))
            .errors(409, &["input_used"]),
    );

    let (submission, estimate, line) = (
        doc.read::<jobs::submit::JsonSubmission>(),
        doc.out::<estimate::Estimate>(),
        doc.read::<SubmitLine>(),
    );
    let op = Op::new("estimate", "jobs", "What a job would cost", Caller::User)
        .describe("The quote a submission of these requests would get; nothing is stored or reserved.")
        .query("model", string(), "NDJSON only (required there).")
        .body(JSON, submission, "As `POST /v1/jobs` takes it.")
        .body(NDJSON, bytes(NDJSON, line), "")
        .answer(200, "The quote and whether the balance covers it.", Some((JSON, estimate)))
        .errors(
            400,
            &[
                "missing_model",
                "invalid_model",
                "unpriced_model",
                "line_too_long",
                "unreadable_body",
                "invalid_requests",
                "quote_too_large",
            ],
        )
        .errors(404, &["not_found"])
        .errors(409, &["input_ended", "input_used"])
        .errors(410, &["input_gone"]);
    doc.add("POST", "/v1/estimate", capped(op));
}

fn generate(doc: &mut Doc) {
    let (body, answer) = (doc.read::<generate::Body>(), doc.out::<GenerateContentResponse>());
    let cost = doc.out::<generate::Cost>();
    doc.add(
        "POST",
        "/v1/generate",
        capped(Op::new("generate", "generate", "One realtime call", Caller::User))
            .describe("Checked and priced as a batch line, sent to Gemini at once, charged the standard price for the tokens Gemini reports. With `alt=sse`, Gemini's server-sent events pass through as they come, and the cost follows as the comment `: batchgate-cost {\"standard\",\"charged\"}`.")
            .query("alt", json!({"enum": ["sse"]}), "`sse`: stream the answer.")
            .body(JSON, body, "")
            .answer(200, "Gemini's answer (or, with `alt=sse`, its events).", Some((JSON, answer)))
            .or_as(200, "text/event-stream", json!({"type": "string", "description": "Gemini's server-sent events, then `: batchgate-cost {…}`."}))
            .answer_header(200, "batchgate-cost", &format!("JSON: what the call cost and was charged, micro-credits: {cost}."))
            .answer_header(200, "batchgate-call-id", "This call's id in the ledger.")
            .errors(400, &["invalid_model", "unpriced_model", "invalid_request", "invalid_requests", "quote_too_large", "gemini_*"])
            .errors(402, &["insufficient_credits"])
            .errors(429, &["too_many_generates", "realtime_capacity", "gemini_*"])
            .errors(502, &["gemini_unreachable", "gemini_answer_unreadable", "gemini_*"])
            .errors(503, &["gemini_unavailable", "gemini_key_refused", "gemini_*"])
            .errors(504, &["gemini_timeout"]),
    );
}

fn account(doc: &mut Doc) {
    let (summary, secret, ledger) = (
        doc.out::<account_object::protocol::Summary>(),
        doc.out::<account_object::protocol::WebhookSecret>(),
        doc.out::<account_object::protocol::LedgerEntries>(),
    );
    doc.add(
        "GET",
        "/v1/account",
        Op::new("account", "account", "Balance and totals", Caller::User).answer(
            200,
            "The account, in micro-credits.",
            Some((JSON, summary)),
        ),
    );
    doc.add(
        "GET",
        "/v1/account/webhook-secret",
        Op::new("webhookSecret", "account", "The secret job webhooks are signed with", Caller::User).answer(
            200,
            "`whsec_…` (made on first use).",
            Some((JSON, secret)),
        ),
    );
    doc.add(
        "GET",
        "/v1/account/ledger",
        Op::new("ledger", "account", "The credit ledger, newest first", Caller::User)
            .query("limit", int(1, Some(500)), "Page size (default 50).")
            .query("cursor", string(), "`nextCursor` of the page before.")
            .answer(
                200,
                "A page of entries; each carries its effect on balance and reserved.",
                Some((JSON, ledger)),
            ),
    );
}

fn admin(doc: &mut Doc) {
    let account_id =
        |op: Op| op.path("id", "The account (a token's `sub`).").errors(400, &["invalid_account"]);
    let (grant, summary) = (doc.read::<admin::GrantBody>(), doc.out::<account_object::protocol::Summary>());
    doc.add(
        "POST",
        "/v1/admin/accounts/{id}/grants",
        capped(account_id(Op::new("grant", "admin", "Grant (or adjust) credits", Caller::Admin)))
            .header(
                "Idempotency-Key",
                false,
                "The same key counts the grant once (the body's `idempotencyKey` wins).",
            )
            .body(JSON, grant, "")
            .answer(201, "The account after the grant.", Some((JSON, summary.clone())))
            .errors(400, &["invalid_idempotency_key", "invalid_amount", "invalid_grant"]),
    );
    let (mint, minted) = (doc.read::<auth::MintBody>(), doc.out::<auth::Minted>());
    doc.add(
        "POST",
        "/v1/admin/tokens",
        capped(Op::new("mintToken", "admin", "Mint a user token", Caller::Admin))
            .describe("For operators without a backend of their own yet, development and the demo; production apps sign their own. `ttlSecs` defaults to an hour, clamped to 60 s..30 days.")
            .body(JSON, mint, "")
            .answer(201, "The token.", Some((JSON, minted)))
            .errors(400, &["invalid_account"]),
    );
    doc.add(
        "GET",
        "/v1/admin/accounts/{id}",
        account_id(Op::new("adminAccount", "admin", "An account", Caller::Admin)).answer(
            200,
            "The account.",
            Some((JSON, summary)),
        ),
    );
    let view = doc.out::<JobView>();
    doc.add(
        "POST",
        "/v1/admin/jobs/{id}/kick",
        Op::new("kickJob", "admin", "Step a job now, as its alarm would", Caller::Admin)
            .path("id", "The job's id.")
            .answer(200, "The job after the step.", Some((JSON, view)))
            .errors(404, &["not_found"]),
    );
    let holds = doc.out::<quota::protocol::Holds>();
    doc.add(
        "GET",
        "/v1/admin/quota/{model}",
        Op::new("quota", "admin", "A model's quota holds", Caller::Admin).path("model", "The model.").answer(
            200,
            "The holds and how many batches wait.",
            Some((JSON, holds)),
        ),
    );
    let keys = doc.out::<admin::KeyRows>();
    doc.add(
        "GET",
        "/v1/admin/keys",
        Op::new("keys", "admin", "The Gemini keys (by id, never the key)", Caller::Admin).answer(
            200,
            "Each key's state and use.",
            Some((JSON, keys)),
        ),
    );
    let copied = doc.out::<crate::api::bench::Copied>();
    doc.add(
        "POST",
        "/_bench/copy",
        Op::new("benchCopy", "admin", "Time copying a Gemini file into R2 (benchmarks)", Caller::Admin)
            .describe("Only when the deployment sets `BENCH_ROUTES=true` (otherwise 404, as for no route): copies a Gemini file into R2 as ingestion does, without reading a line.")
            .query("file", string(), "`files/{id}`: the Gemini file.")
            .answer(200, "How long the copy took.", Some((JSON, copied)))
            .errors(400, &["invalid_file"])
            .errors(404, &["not_found"]),
    );
    let reinstated = doc.out::<admin::Reinstated>();
    doc.add(
        "POST",
        "/v1/admin/keys/{id}/reinstate",
        Op::new("reinstateKey", "admin", "Use a revoked key again", Caller::Admin)
            .path("id", "The key's id.")
            .answer(200, "Reinstated.", Some((JSON, reinstated)))
            .errors(404, &["not_found"]),
    );
}
