//! `QuotaObject`: one Durable Object per Gemini model, the enqueued-token
//! governor every job's shards ask before they upload and create (core's
//! `quota` decides; this object only stores the holds). A Durable Object runs
//! one request at a time and nothing here awaits between reading the holds and
//! writing the decision, so two shards can never both take the last room.
//!
//! Routes (internal, from JobObjects and the admin API): `POST /admit`
//! (`AdmitRequest` → `Admission`), `POST /release` (`{job, shard}`), `GET /holds`.

use crate::errors::ApiError;
use crate::internal::{self, JsonBody};
use crate::job_object::now_ms;
use crate::sql_rows::{int, rows};
use batchgate_core::quota::{self, AdmitRequest, Hold};
use serde::{Deserialize, Serialize};
use worker::{DurableObject, Env, Request, Response, Result, SqlStorage, State, durable_object};

/// A hold older than this belongs to a job that vanished (the job deadline is 72 h).
const STALE_MS: u64 = 96 * 3_600_000;

#[derive(Serialize, Deserialize)]
pub struct Release {
    pub job: String,
    pub shard: u64,
}

#[durable_object]
pub struct QuotaObject {
    state: State,
}

impl QuotaObject {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS holds (job TEXT NOT NULL, shard INTEGER NOT NULL, tokens INTEGER NOT NULL, \
             since_ms INTEGER NOT NULL, PRIMARY KEY (job, shard))",
            None,
        )?;
        Ok(sql)
    }

    fn holds(sql: &SqlStorage) -> Result<Vec<Hold>> {
        let rows = rows(sql.exec("SELECT job, shard, tokens, since_ms FROM holds ORDER BY since_ms", None)?)?;
        Ok(rows
            .into_iter()
            .map(|r| Hold { job: r.text(0), shard: r.uint(1), tokens: r.uint(2), since_ms: r.uint(3) })
            .collect())
    }

    fn release(sql: &SqlStorage, job: &str, shard: u64) -> Result<()> {
        sql.exec("DELETE FROM holds WHERE job = ? AND shard = ?", vec![job.into(), int(shard)])?;
        Ok(())
    }

    async fn route(&self, mut req: Request) -> Result<Response> {
        let sql = self.sql()?;
        match req.path().as_str() {
            "/admit" => {
                let ask: AdmitRequest = req.body_json().await?;
                let now = now_ms();
                for (job, shard) in quota::stale(&Self::holds(&sql)?, now, STALE_MS) {
                    Self::release(&sql, &job, shard)?;
                }
                let holds = Self::holds(&sql)?;
                let decision = quota::admit(&holds, &ask);
                if decision.admitted {
                    sql.exec(
                        "INSERT OR IGNORE INTO holds (job, shard, tokens, since_ms) VALUES (?, ?, ?, ?)",
                        vec![ask.job.as_str().into(), int(ask.shard), int(ask.tokens), int(now)],
                    )?;
                }
                internal::json(&decision)
            }
            "/release" => {
                let r: Release = req.body_json().await?;
                Self::release(&sql, &r.job, r.shard)?;
                internal::json(&serde_json::json!({"released": true}))
            }
            "/holds" => {
                let holds = Self::holds(&sql)?;
                let enqueued: u64 = holds.iter().map(|h| h.tokens).sum();
                internal::json(&serde_json::json!({"enqueued": enqueued, "holds": holds}))
            }
            other => ApiError::not_found(format!("no quota route {other}")).into_response(),
        }
    }
}

impl DurableObject for QuotaObject {
    fn new(state: State, _env: Env) -> Self {
        QuotaObject { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => ApiError::internal(format!("quota object: {e}")).into_response(),
        }
    }
}

/// The quota of `model` (one object per model; the deployment has one Gemini key).
pub fn stub(env: &Env, model: &str) -> Result<worker::Stub> {
    env.durable_object("QUOTAS")?.id_from_name(model)?.get_stub()
}
