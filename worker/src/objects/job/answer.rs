//! A realtime shard's step (`Action::Answer`): its requests, read from the
//! job's input, sent as realtime calls several at a time, each under the
//! model's RPM limit (the quota object's, shared with every account's
//! `POST /v1/generate`); 429s and 5xx retried after Gemini's `RetryInfo` or
//! the backoff; the answers stored whole as the shard's results object in
//! the batch results format, a request that could not be answered as its
//! error line. Answers a lost step already stored are taken as they are:
//! they are charged, and no request is asked twice.

use super::steps::{SliceWrite, StepResult};
use super::store::Store;
use crate::objects::account::client as accounts;
use crate::objects::quota::client::{self as quota, RealtimeAdmission};
use crate::platform::bindings::{self, results_key};
use crate::platform::config::Settings;
use crate::platform::gemini::{Exchange, Gemini};
use crate::platform::random;
use batchgate_core::gemini::client::Failure;
use batchgate_core::job::{Job, Outcome, Run};
use batchgate_core::jsonl::LineSplitter;
use batchgate_core::pricing::Tokens;
use batchgate_core::realtime::{self, answer_line, error_line};
use batchgate_core::results::{Tally, Usage};
use batchgate_core::upload::{self, OwnedFile};
use futures_util::StreamExt;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;
use worker::Env;

/// Tries per request (a 429 or 5xx, or no answer) before its error line is written.
const MAX_ATTEMPTS: u32 = 5;
/// The longest one request waits for a slot under the RPM limit, all told.
const MAX_SLOT_WAIT_MS: u64 = 10 * 60_000;

fn r2(what: &str, e: worker::Error) -> Failure {
    Failure::network(format!("R2 {what}: {e}"))
}

pub async fn run(
    env: &Env,
    store: &Store,
    settings: &Settings,
    job: &Job,
    run: &Run,
) -> Result<StepResult, Failure> {
    let bucket = bindings::bucket(env).map_err(|e| r2("binding", e))?;
    let key = results_key(job.id(), run.shard());
    if let Some(stored) = bucket.get(&key).execute().await.map_err(|e| r2("read of stored answers", e))? {
        let body =
            stored.body().ok_or_else(|| Failure::network("R2 returned stored answers without a body"))?;
        let bytes = body.bytes().await.map_err(|e| r2("stored answers", e))?;
        // What its unmeasured calls cost was stored with the answers.
        let unmeasured = stored
            .custom_metadata()
            .ok()
            .and_then(|m| m.get(UNMEASURED).and_then(|t| serde_json::from_str::<Tally>(t).ok()))
            .unwrap_or_default();
        return Ok(billed(answered(run.shard(), &bytes), &unmeasured));
    }
    if run.cancel_requested() {
        return Ok(Outcome::CancelSent.into());
    }
    let requests = read_requests(env, store, run).await?;
    let files = files_named(env, store, &requests).await?;
    let mut answers = futures_util::stream::iter(requests)
        .map(|(k, request)| {
            // Sized by its files, as its reservation was.
            let named = upload::referenced_files(&request);
            let sizes =
                named.iter().filter_map(|n| files.get(n)).map(|f| (f.mime_type.as_str(), f.size_bytes));
            let ceiling = settings.estimate.request_with_files(&request, sizes);
            answer_one(env, settings, job, (k, request), ceiling)
        })
        .buffered(settings.realtime.concurrency);
    let (mut body, mut unmeasured) = (Vec::new(), Tally::default());
    while let Some(answer) = answers.next().await {
        body.extend_from_slice(&answer.line);
        if let Some(t) = answer.unmeasured {
            // Billed as reserved (its tier and rates), shown as the tokens it may have used.
            let usage = Usage {
                prompt: t.input,
                candidates: t.output,
                audio_prompt: t.audio_input,
                ..Usage::default()
            };
            unmeasured.add_billed(&usage, &t);
        }
    }
    let step = answered(run.shard(), &body);
    if let (true, Some(slice)) = (batchgate_core::media::makes_media(job.model()), &step.slice) {
        super::media::store(&bucket, job.id(), run.shard(), (&body, 0), &slice.records).await?;
    }
    let mut put = bucket.put(&key, body);
    if unmeasured != Tally::default() {
        // Kept with the answers, so a step that finds them stored charges these too.
        let tally = serde_json::to_string(&unmeasured).map_err(|e| Failure::network(e.to_string()))?;
        put = put.custom_metadata(HashMap::from([(UNMEASURED.to_string(), tally)]));
    }
    put.execute().await.map_err(|e| r2("write of the answers", e))?;
    Ok(billed(step, &unmeasured))
}

/// The stored answers' custom metadata: the unmeasured calls' tally (JSON).
const UNMEASURED: &str = "unmeasured";

/// Calls Gemini may have run without saying what they used are charged their ceiling.
fn billed(mut step: StepResult, unmeasured: &Tally) -> StepResult {
    if let Outcome::Answered { tally, .. } = &mut step.outcome {
        tally.merge(unmeasured);
    }
    step
}

fn answered(shard: u64, bytes: &[u8]) -> StepResult {
    let (records, tally) = realtime::index_answers(bytes);
    StepResult {
        outcome: Outcome::Answered { tally, lines: records.len() as u64 },
        slice: Some(SliceWrite { records, shard, part: None }),
    }
}

#[derive(Deserialize)]
struct InputLine {
    key: String,
    request: serde_json::Value,
}

/// The shard's `(key, request)` lines from the job's input.
async fn read_requests(
    env: &Env,
    store: &Store,
    run: &Run,
) -> Result<Vec<(String, serde_json::Value)>, Failure> {
    let spec = run.spec();
    let object = super::steps::input_object(env, store, spec.offset, spec.bytes).await?;
    let bytes = object
        .body()
        .ok_or_else(|| Failure::network("R2 returned the input without a body"))?
        .bytes()
        .await
        .map_err(|e| r2("input body", e))?;
    let mut lines = vec![];
    let mut bad = None;
    let mut splitter = LineSplitter::new(usize::MAX / 2);
    let mut take = |_: u64, line: &[u8]| {
        match serde_json::from_slice::<InputLine>(line) {
            Ok(l) => lines.push((l.key, l.request)),
            Err(e) => bad = Some(e.to_string()),
        }
        Ok::<(), std::convert::Infallible>(())
    };
    let _ = splitter.feed(&bytes, &mut take);
    let _ = splitter.finish(&mut take);
    match bad {
        // The input was written by the validator: an unreadable line is a broken store.
        Some(e) => {
            Err(Failure::Permanent { status: 0, message: format!("the job's input is unreadable: {e}") })
        }
        None => Ok(lines),
    }
}

async fn sleep(ms: u64) {
    worker::Delay::from(Duration::from_millis(ms)).await;
}

/// The account's uploaded files the requests name (none asked for when they name none).
async fn files_named(
    env: &Env,
    store: &Store,
    requests: &[(String, serde_json::Value)],
) -> Result<HashMap<String, OwnedFile>, Failure> {
    if requests.iter().all(|(_, r)| upload::referenced_files(r).is_empty()) {
        return Ok(HashMap::new());
    }
    let account = store.account().map_err(|e| Failure::network(format!("the job's owner: {e}")))?;
    let Some(account) = account else { return Ok(HashMap::new()) };
    let files = accounts::files(env, &account).await.map_err(|e| Failure::network(e.message))?;
    Ok(files.into_iter().map(|f| (f.name.clone(), f)).collect())
}

/// One request's result line, and the ceiling of a call Gemini may have run
/// without saying what it used (no answer in time, an answer over the cap).
struct Answer {
    line: Vec<u8>,
    unmeasured: Option<Tokens>,
}

impl From<Vec<u8>> for Answer {
    fn from(line: Vec<u8>) -> Answer {
        Answer { line, unmeasured: None }
    }
}

/// One request's result line: Gemini's answer, or its error line once
/// retrying will not help.
async fn answer_one(
    env: &Env,
    settings: &Settings,
    job: &Job,
    (key, request): (String, serde_json::Value),
    ceiling: Tokens,
) -> Answer {
    let request = request.to_string();
    let model = job.model();
    let mut keys = settings.secrets.gemini_keys.ids();
    if job.first_key_only() {
        keys.truncate(1);
    }
    let rpm = settings.realtime.rpm.of(model);
    let (mut attempt, mut waited) = (0u32, 0u64);
    let mut last = (503u16, String::from("no answer"));
    while attempt < MAX_ATTEMPTS {
        let retry_after = match quota::admit_realtime(env, model, rpm, keys.clone()).await {
            Ok(RealtimeAdmission::WaitMs(ms)) if waited < MAX_SLOT_WAIT_MS => {
                waited += ms;
                sleep(ms).await;
                continue;
            }
            Ok(RealtimeAdmission::WaitMs(_)) => {
                last = (429, format!("no slot under {model}'s {rpm} requests a minute"));
                break;
            }
            Err(e) => {
                last = (503, format!("the quota object did not answer: {}", e.message));
                None
            }
            Ok(RealtimeAdmission::Key(key_id)) => match call(settings, model, &key_id, &request).await {
                Called::Answer(bytes) => {
                    // An answer that does not say what it used is charged its
                    // ceiling, as in `/v1/generate`: Google bills it all the same.
                    let measured = batchgate_core::realtime::response_usage(&bytes).is_some();
                    return match answer_line(&key, &bytes) {
                        Some(line) => Answer { line, unmeasured: (!measured).then_some(ceiling) },
                        None => Answer {
                            line: error_line(&key, 502, "Gemini's answer is not JSON"),
                            unmeasured: Some(ceiling),
                        },
                    };
                }
                Called::Refused { status, message } => return error_line(&key, status, &message).into(),
                // Not asked again: Gemini may be running it (and bills it) already.
                Called::Unmeasured { status, message } => {
                    return Answer { line: error_line(&key, status, &message), unmeasured: Some(ceiling) };
                }
                Called::KeyRefused(message) => {
                    let _ = quota::revoke(env, &key_id, &message).await;
                    last = (503, "Gemini refused the key".into());
                    None
                }
                Called::Retry { status, message, after_ms } => {
                    last = (status, message);
                    after_ms
                }
            },
        };
        attempt += 1;
        if attempt < MAX_ATTEMPTS {
            sleep(settings.policy.retry.delay_ms(attempt, retry_after, random::u64().unwrap_or_default()))
                .await;
        }
    }
    error_line(&key, last.0, &last.1).into()
}

enum Called {
    Answer(Vec<u8>),
    /// Gemini refused the request itself: retrying will not help.
    Refused {
        status: u16,
        message: String,
    },
    /// Sent, and no usage came back: no answer in time, or one over the cap.
    Unmeasured {
        status: u16,
        message: String,
    },
    KeyRefused(String),
    Retry {
        status: u16,
        message: String,
        after_ms: Option<u64>,
    },
}

async fn call(settings: &Settings, model: &str, key_id: &str, request: &str) -> Called {
    let gemini = match Gemini::with_key(settings, Some(key_id)) {
        Ok(g) => g,
        Err(_) => {
            return Called::Retry {
                status: 503,
                message: "the key is no longer configured".into(),
                after_ms: None,
            };
        }
    };
    let sent = gemini.exchange(&settings.gemini.generate(model, request.to_string(), false), None).await;
    let mut resp = match sent {
        Exchange::Answered(r) => r,
        Exchange::Failed(f) => {
            return Called::Retry { status: 503, message: format!("{f:?}"), after_ms: None };
        }
        Exchange::TimedOut(_) => {
            return Called::Unmeasured { status: 504, message: "Gemini did not answer in time".into() };
        }
    };
    let status = resp.status_code();
    if status == 200 {
        return match gemini.read_capped(&mut resp, settings.realtime.max_answer_bytes).await {
            Ok(bytes) => Called::Answer(bytes),
            Err(why) => Called::Unmeasured { status: 502, message: why },
        };
    }
    let text = gemini.text(&mut resp).await.unwrap_or_default();
    let r = realtime::refused(status, text.as_bytes());
    match status {
        _ if r.key_refused => Called::KeyRefused(format!("a realtime call was refused ({status})")),
        408 | 429 | 500 | 502 | 503 | 504 => Called::Retry {
            status,
            message: r.message,
            after_ms: r.retry_after_secs.filter(|_| status == 429).map(|s| s * 1000),
        },
        _ => Called::Refused { status, message: r.message },
    }
}
