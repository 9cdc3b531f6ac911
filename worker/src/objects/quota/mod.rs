//! `QuotaObject`: one Durable Object for the deployment, the governor every
//! job's shards ask before they upload and create: per Gemini key, each
//! model's enqueued tokens and the batches in flight (core's `quota` decides;
//! this object only stores the holds and the keys Gemini refused). A Durable
//! Object runs one request at a time and nothing here awaits between reading
//! the holds and writing the decision, so two shards can never both take the
//! last room.

pub mod client;
pub mod protocol;
mod store;

use crate::objects::rpc::{self, Incoming, Rpc};
use crate::platform::clock::now_ms;
use batchgate_core::quota::{self, Hold};
use batchgate_core::realtime::{KeyLoad, pick_key};
use protocol::{
    Admit, AdmitRealtime, Holds, KeyUse, ListHolds, ListKeys, RealtimeAdmission, Reinstate, Release, Revoke,
};
use std::collections::BTreeMap;
use store::Store;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

/// A hold older than this belongs to a job that vanished (the job deadline is 72 h).
const STALE_MS: u64 = 96 * 3_600_000;

#[durable_object]
pub struct QuotaObject {
    state: State,
}

/// Each key's batches and tokens per model, with its revocation if any.
fn key_use(holds: &[Hold], revoked: Vec<(String, u64, String)>) -> Vec<KeyUse> {
    let mut keys: BTreeMap<String, KeyUse> = BTreeMap::new();
    for h in holds {
        let k =
            keys.entry(h.key.clone()).or_insert_with(|| KeyUse { key: h.key.clone(), ..KeyUse::default() });
        k.batches += 1;
        let tokens = k.enqueued.entry(h.model.clone()).or_default();
        *tokens = tokens.saturating_add(h.tokens);
    }
    for (key, at, reason) in revoked {
        let k = keys.entry(key.clone()).or_insert_with(|| KeyUse { key, ..KeyUse::default() });
        k.revoked_at_ms = Some(at);
        k.reason = Some(reason);
    }
    keys.into_values().collect()
}

/// Core's `realtime::pick_key` over the last minute's calls of keys in rotation; the call is counted.
fn admit_realtime(store: &Store, ask: AdmitRealtime, now: u64) -> Result<RealtimeAdmission> {
    let revoked: Vec<String> = store.revoked()?.into_iter().map(|(k, _, _)| k).collect();
    let calls = store.realtime_calls(&ask.model, now)?;
    let times: Vec<(&str, Vec<u64>)> = ask
        .keys
        .iter()
        .filter(|k| !revoked.contains(k))
        .map(|k| (k.as_str(), calls.iter().filter(|(c, _)| c == k).map(|(_, t)| *t).collect()))
        .collect();
    let loads: Vec<KeyLoad> = times.iter().map(|(key, recent_ms)| KeyLoad { key, recent_ms }).collect();
    Ok(match pick_key(&loads, now, ask.rpm) {
        Ok(key) => {
            store.count_realtime(key, &ask.model, now)?;
            RealtimeAdmission::Key(key.to_string())
        }
        Err(wait) => RealtimeAdmission::WaitMs(wait),
    })
}

impl QuotaObject {
    async fn route(&self, call: Incoming) -> Result<Response> {
        let store = Store::new(self.state.storage().sql())?;
        match call.route() {
            Admit::ROUTE => {
                let Admit(ask) = call.read()?;
                let now = now_ms();
                for (job, shard) in quota::stale(&store.holds()?, now, STALE_MS) {
                    store.release(&job, shard)?;
                }
                let revoked: Vec<String> = store.revoked()?.into_iter().map(|(k, _, _)| k).collect();
                let decision = quota::admit(&store.holds()?, &revoked, &ask);
                if let (true, Some(key)) = (decision.admitted, &decision.key) {
                    store.hold(&Hold {
                        job: ask.job,
                        shard: ask.shard,
                        model: ask.model,
                        key: key.clone(),
                        tokens: ask.tokens,
                        since_ms: now,
                    })?;
                }
                rpc::reply::<Admit>(Ok(decision))
            }
            AdmitRealtime::ROUTE => {
                let ask: AdmitRealtime = call.read()?;
                rpc::reply::<AdmitRealtime>(Ok(admit_realtime(&store, ask, now_ms())?))
            }
            Release::ROUTE => {
                let r: Release = call.read()?;
                store.release(&r.job, r.shard)?;
                rpc::reply::<Release>(Ok(()))
            }
            Revoke::ROUTE => {
                let r: Revoke = call.read()?;
                store.revoke(&r.key, now_ms(), &r.reason)?;
                rpc::reply::<Revoke>(Ok(()))
            }
            Reinstate::ROUTE => {
                let Reinstate(key) = call.read()?;
                rpc::reply::<Reinstate>(Ok(store.reinstate(&key)?))
            }
            ListHolds::ROUTE => {
                let ListHolds(model) = call.read()?;
                let holds: Vec<Hold> = store
                    .holds()?
                    .into_iter()
                    .filter(|h| model.as_ref().is_none_or(|m| *m == h.model))
                    .collect();
                let enqueued = holds.iter().map(|h| h.tokens).fold(0u64, u64::saturating_add);
                rpc::reply::<ListHolds>(Ok(Holds { enqueued, holds }))
            }
            ListKeys::ROUTE => rpc::reply::<ListKeys>(Ok(key_use(&store.holds()?, store.revoked()?))),
            other => rpc::unknown_route("quota", other),
        }
    }
}

impl DurableObject for QuotaObject {
    fn new(state: State, _env: Env) -> Self {
        QuotaObject { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        rpc::answer("quota", self.route(Incoming::of(req).await?).await)
    }
}
