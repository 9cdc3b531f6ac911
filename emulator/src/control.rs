//! `/_emulator/*`: the test-only control surface (clock, config, forced states,
//! failing lines, faults, the request log, webhook deliveries, reset).

use crate::error::{ApiError, ApiResult, parse_json};
use crate::faults::FaultRule;
use crate::{Emulator, lock};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use batchgate_core::gemini::timestamp::{format_nanos, parse_millis};
use batchgate_core::gemini::{BatchState, Status};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type Emu = State<Arc<Emulator>>;

pub fn router() -> Router<Arc<Emulator>> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route("/config", get(get_config).post(patch_config).patch(patch_config))
        .route("/clock", get(get_clock).post(set_clock))
        .route("/state", get(summary))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/faults/{id}", delete(remove_fault))
        .route("/batches/{id}/state", post(force_state))
        .route("/batches/{id}/release", post(release))
        .route("/batches/{id}/fail-lines", post(fail_lines))
        .route("/webhooks", get(webhooks))
        .route("/reset", post(reset))
}

fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> ApiResult<T> {
    serde_json::from_value(parse_json(bytes)?).map_err(|e| ApiError::invalid(e.to_string()))
}

async fn get_config(State(emu): Emu) -> Json<crate::config::Config> {
    Json(emu.config())
}

async fn patch_config(State(emu): Emu, b: Bytes) -> ApiResult<Json<crate::config::Config>> {
    let cfg = emu.config().patched(&parse_json(&b)?).map_err(ApiError::invalid)?;
    emu.set_config(cfg.clone());
    Ok(Json(cfg))
}

fn clock_json(emu: &Emulator) -> Value {
    let c = lock(&emu.clock);
    json!({"now": format_nanos(c.now_ns()), "scale": c.scale()})
}

async fn get_clock(State(emu): Emu) -> Json<Value> {
    Json(clock_json(&emu))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClockChange {
    now: Option<String>,
    scale: Option<f64>,
    advance_secs: Option<f64>,
}

async fn set_clock(State(emu): Emu, b: Bytes) -> ApiResult<Json<Value>> {
    let change: ClockChange = body(&b)?;
    {
        let mut c = lock(&emu.clock);
        if let Some(now) = change.now {
            let ms =
                parse_millis(&now).ok_or_else(|| ApiError::invalid(format!("now: not RFC 3339: {now:?}")))?;
            c.set_now_ns(ms * 1_000_000);
        }
        if let Some(s) = change.scale {
            c.set_scale(s);
        }
        if let Some(a) = change.advance_secs {
            c.advance_secs(a);
        }
    }
    emu.tick();
    Ok(Json(clock_json(&emu)))
}

/// Counts tests use to prove "nothing was created".
async fn summary(State(emu): Emu) -> Json<Value> {
    emu.tick();
    let store = lock(&emu.store);
    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut enqueued: BTreeMap<String, u64> = BTreeMap::new();
    for b in store.batches.values() {
        *by_state.entry(b.state().as_wire().to_string()).or_default() += 1;
        if b.state().is_active() {
            *enqueued.entry(b.model.clone()).or_default() += b.prompt_tokens;
        }
    }
    Json(json!({
        "files": store.files.len(),
        "batches": store.batches.len(),
        "batchesByState": by_state,
        "enqueuedTokens": enqueued,
        "peakEnqueuedTokens": store.peak_enqueued,
        "uploadSessions": lock(&emu.uploads.0).len(),
    }))
}

async fn requests(State(emu): Emu, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    Json(json!({"requests": lock(&emu.log).since(since)}))
}

async fn clear_requests(State(emu): Emu) -> Json<Value> {
    lock(&emu.log).clear();
    Json(json!({}))
}

async fn list_faults(State(emu): Emu) -> Json<Value> {
    Json(json!({"faults": lock(&emu.faults).list()}))
}

async fn add_fault(State(emu): Emu, b: Bytes) -> ApiResult<Json<Value>> {
    let rule: FaultRule = body(&b)?;
    let id = lock(&emu.faults).add(rule);
    Ok(Json(json!({"id": id})))
}

async fn clear_faults(State(emu): Emu) -> Json<Value> {
    lock(&emu.faults).clear();
    Json(json!({}))
}

async fn remove_fault(State(emu): Emu, Path(id): Path<u64>) -> ApiResult<Json<Value>> {
    if lock(&emu.faults).remove(id) {
        Ok(Json(json!({})))
    } else {
        Err(ApiError::not_found(format!("no fault {id}")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct StateChange {
    state: String,
    error: Option<Status>,
    /// End as FAILED, EXPIRED or CANCELLED with a results file in which the
    /// first N lines were answered and the rest cut off.
    partial_results: Option<u64>,
}

async fn force_state(State(emu): Emu, Path(id): Path<String>, b: Bytes) -> ApiResult<Json<Value>> {
    let change: StateChange = body(&b)?;
    let id = id.trim_start_matches("batches/");
    emu.force_state(id, &BatchState::parse(&change.state), change.error, change.partial_results)?;
    Ok(Json(serde_json::to_value(emu.get_batch(id)?).unwrap_or_default()))
}

async fn release(State(emu): Emu, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = id.trim_start_matches("batches/");
    emu.release(id)?;
    Ok(Json(serde_json::to_value(emu.get_batch(id)?).unwrap_or_default()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailLines {
    keys: Vec<String>,
}

async fn fail_lines(State(emu): Emu, Path(id): Path<String>, b: Bytes) -> ApiResult<Json<Value>> {
    let req: FailLines = body(&b)?;
    emu.fail_lines(id.trim_start_matches("batches/"), req.keys)?;
    Ok(Json(json!({})))
}

async fn webhooks(State(emu): Emu) -> Json<Value> {
    Json(json!({"deliveries": lock(&emu.webhooks).clone()}))
}

async fn reset(State(emu): Emu) -> Json<Value> {
    emu.reset();
    Json(json!({}))
}
