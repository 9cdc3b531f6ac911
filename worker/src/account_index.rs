//! `AccountObject`: one Durable Object per account holding its job history
//! (newest first, filterable by state), so listing never scans jobs. Job
//! objects report every state change here; the job object stays the source of
//! truth for each job.

use crate::errors::ApiError;
use crate::internal;
use batchgate_core::job::{Job, JobState};
use batchgate_core::view::JobMeta;
use serde::{Deserialize, Serialize};
use worker::{
    DurableObject, Env, Method, Request, Response, Result, SqlStorage, SqlStorageValue, State, durable_object,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub state: String,
    pub model: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A listed job, as users see it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub id: String,
    pub state: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<JobSummary> for Listed {
    fn from(j: JobSummary) -> Listed {
        let ts = |ms: i64| batchgate_core::gemini::timestamp::format_nanos(ms.saturating_mul(1_000_000));
        Listed {
            created_at: ts(j.created_ms),
            updated_at: ts(j.updated_ms),
            id: j.id,
            state: j.state,
            model: j.model,
            display_name: j.display_name,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobList {
    pub jobs: Vec<Listed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn stub(env: &Env, account: &str) -> Result<worker::Stub> {
    env.durable_object("ACCOUNTS")?.id_from_name(account)?.get_stub()
}

/// Report a job's current summary (best effort: a failure is logged, and the
/// next state change reports again).
pub async fn record(env: &Env, account: &str, job: &Job, meta: &JobMeta) {
    let summary = JobSummary {
        id: job.id.clone(),
        state: job.state().as_str().to_string(),
        model: job.model.clone(),
        display_name: meta.display_name.clone(),
        created_ms: job.created_ms as i64,
        updated_ms: job.updated_ms as i64,
    };
    let result = async {
        let body = serde_json::to_string(&summary)?;
        internal::call(&stub(env, account)?, Method::Post, "/jobs", account, Some(body)).await
    }
    .await;
    if let Err(e) = result {
        worker::console_error!("recording job {} in its account index failed: {e}", job.id);
    }
}

pub async fn remove(env: &Env, account: &str, id: &str) {
    let result = async {
        internal::call(&stub(env, account)?, Method::Delete, &format!("/jobs/{id}"), account, None).await
    }
    .await;
    if let Err(e) = result {
        worker::console_error!("removing job {id} from its account index failed: {e}");
    }
}

pub async fn list(env: &Env, account: &str, query: &str) -> std::result::Result<JobList, ApiError> {
    let stub = stub(env, account).map_err(|e| ApiError::internal(e.to_string()))?;
    internal::call_json(&stub, Method::Get, &format!("/jobs?{query}"), account, None)
        .await?
        .ok_or_else(|| ApiError::internal("account index unavailable"))
}

#[durable_object]
pub struct AccountObject {
    state: State,
}

impl AccountObject {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, model TEXT NOT NULL, \
             display_name TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
            None,
        )?;
        sql.exec("CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_ms DESC, id DESC)", None)?;
        Ok(sql)
    }

    async fn route(&self, mut req: Request) -> Result<Response> {
        let sql = self.sql()?;
        let path = req.path();
        match (req.method(), path.as_str()) {
            (Method::Post, "/jobs") => {
                let j: JobSummary = req.json().await?;
                sql.exec(
                    "INSERT INTO jobs (id, state, model, display_name, created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms \
                     WHERE excluded.updated_ms >= jobs.updated_ms",
                    vec![
                        j.id.into(),
                        j.state.into(),
                        j.model.into(),
                        j.display_name.into(),
                        SqlStorageValue::Integer(j.created_ms),
                        SqlStorageValue::Integer(j.updated_ms),
                    ],
                )?;
                Response::ok("")
            }
            (Method::Delete, p) if p.starts_with("/jobs/") => {
                sql.exec("DELETE FROM jobs WHERE id = ?", vec![p.trim_start_matches("/jobs/").into()])?;
                Response::ok("")
            }
            (Method::Get, "/jobs") => {
                let url = req.url()?;
                let q = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
                let limit = q("limit").and_then(|l| l.parse::<i64>().ok()).unwrap_or(50).clamp(1, 200);
                let (cursor_ms, cursor_id) = q("cursor")
                    .and_then(|c| {
                        let (ms, id) = c.split_once('.')?;
                        Some((ms.parse::<i64>().ok()?, id.to_string()))
                    })
                    .unwrap_or((i64::MAX, String::new()));
                let state = q("state").filter(|s| JobState::parse(s).is_some());
                let mut params: Vec<SqlStorageValue> = vec![
                    SqlStorageValue::Integer(cursor_ms),
                    SqlStorageValue::Integer(cursor_ms),
                    cursor_id.into(),
                ];
                let mut filter = String::new();
                if let Some(s) = state {
                    filter.push_str(" AND state = ?");
                    params.push(s.into());
                }
                params.push(SqlStorageValue::Integer(limit + 1));
                let mut jobs: Vec<JobSummary> = sql
                    .exec(
                        &format!(
                            "SELECT id, state, model, display_name AS displayName, created_ms AS createdMs, \
                             updated_ms AS updatedMs FROM jobs WHERE (created_ms < ? OR (created_ms = ? AND id < ?)){filter} \
                             ORDER BY created_ms DESC, id DESC LIMIT ?"
                        ),
                        params,
                    )?
                    .to_array()?;
                let more = jobs.len() as i64 > limit;
                jobs.truncate(limit as usize);
                let next_cursor =
                    if more { jobs.last().map(|j| format!("{}.{}", j.created_ms, j.id)) } else { None };
                Response::from_json(&JobList {
                    jobs: jobs.into_iter().map(Listed::from).collect(),
                    next_cursor,
                })
            }
            _ => Response::error("no such route", 404),
        }
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, _env: Env) -> Self {
        AccountObject { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => ApiError::internal(format!("account object: {e}")).into_response(),
        }
    }
}
