//! `QuotaObject`: one Durable Object per Gemini model, the enqueued-token
//! governor every job's shards ask before they upload and create (core's
//! `quota` decides; this object only stores the holds). A Durable Object runs
//! one request at a time and nothing here awaits between reading the holds and
//! writing the decision, so two shards can never both take the last room.

pub mod client;
pub mod protocol;
mod store;

use crate::objects::rpc::{self, Incoming, Rpc};
use crate::platform::clock::now_ms;
use batchgate_core::quota;
use protocol::{Admit, Holds, ListHolds, Release};
use store::Store;
use worker::{DurableObject, Env, Request, Response, Result, State, durable_object};

/// A hold older than this belongs to a job that vanished (the job deadline is 72 h).
const STALE_MS: u64 = 96 * 3_600_000;

#[durable_object]
pub struct QuotaObject {
    state: State,
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
                let decision = quota::admit(&store.holds()?, &ask);
                if decision.admitted {
                    store.hold(&ask.job, ask.shard, ask.tokens, now)?;
                }
                rpc::reply::<Admit>(Ok(decision))
            }
            Release::ROUTE => {
                let r: Release = call.read()?;
                store.release(&r.job, r.shard)?;
                rpc::reply::<Release>(Ok(()))
            }
            ListHolds::ROUTE => {
                let holds = store.holds()?;
                let enqueued = holds.iter().map(|h| h.tokens).fold(0u64, u64::saturating_add);
                rpc::reply::<ListHolds>(Ok(Holds { enqueued, holds }))
            }
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
