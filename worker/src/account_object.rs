//! `AccountObject`: one Durable Object per account. It holds the account's job
//! history (newest first, filterable by state, so listing never scans jobs)
//! and its credit ledger (`ledger_store.rs`). A Durable Object runs one request
//! at a time and these handlers never await between reading the balance and
//! writing a reservation, so racing submits cannot overspend.

use crate::accounts::{
    GrantRequest, JobList, JobSummary, Listed, ReserveAnswer, ReserveRequest, SettleRequest, Summary,
};
use crate::errors::ApiError;
use crate::internal::{self, JsonBody};
use crate::job_object::now_ms;
use crate::ledger_store;
use crate::query::{self, Query};
use crate::sql_rows::{self, rows};
use batchgate_core::job::JobState;
use batchgate_core::ledger::{self, Admission};
use batchgate_core::upload::OwnedFile;
use batchgate_core::webhook::Secret;
use worker::{
    DurableObject, Env, Method, Request, Response, Result, SqlStorage, SqlStorageValue, State, durable_object,
};

#[durable_object]
pub struct AccountObject {
    state: State,
}

impl AccountObject {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        ledger_store::create(&sql)?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, model TEXT NOT NULL, \
             display_name TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
            None,
        )?;
        sql.exec("CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_ms DESC, id DESC)", None)?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, uri TEXT NOT NULL, mime_type TEXT NOT NULL, \
             size_bytes INTEGER NOT NULL, display_name TEXT, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)",
            None,
        )?;
        // Bytes promised to uploads under way (a session's declared size): they
        // count against the storage quota until the file is recorded or the
        // session ends, so parallel uploads cannot pass the quota together.
        sql.exec(
            "CREATE TABLE IF NOT EXISTS storage_holds (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, \
             expires_ms INTEGER NOT NULL)",
            None,
        )?;
        Ok(sql)
    }

    async fn route(&self, mut req: Request) -> Result<Response> {
        let sql = self.sql()?;
        let path = req.path();
        let account = req.headers().get(internal::ACCOUNT_HEADER)?.unwrap_or_default();
        match (req.method(), path.as_str()) {
            (Method::Post, "/reserve") => {
                let r: ReserveRequest = req.body_json().await?;
                let now = now_ms();
                let recent = ledger_store::recent_submits(&sql, now)?;
                let admission = Admission {
                    totals: ledger_store::totals(&sql)?,
                    job: ledger_store::job_facts(&sql, &r.job)?,
                    open_jobs: ledger_store::open_jobs(&sql)?,
                    recent_submits_ms: &recent,
                    limits: r.limits,
                    now_ms: now,
                };
                let answer = match ledger::reserve(&admission, &r.job, r.amount) {
                    Ok(entries) => {
                        ledger_store::insert(&sql, &entries, now)?;
                        ReserveAnswer::Reserved { totals: ledger_store::totals(&sql)? }
                    }
                    Err(refusal) => refusal.into(),
                };
                internal::json(&answer)
            }
            (Method::Post, "/settle") => {
                let s: SettleRequest = req.body_json().await?;
                let facts = ledger_store::job_facts(&sql, &s.job)?;
                let entries = ledger::settle(&facts, &s.job, &s.event, s.charge, s.standard);
                ledger_store::insert(&sql, &entries, now_ms())?;
                internal::json(&ledger_store::totals(&sql)?)
            }
            (Method::Post, "/grant") => {
                let g: GrantRequest = req.body_json().await?;
                let entry = if g.adjust {
                    ledger::adjust(&g.event, g.amount, &g.note)
                } else {
                    ledger::grant(&g.event, g.amount, &g.note)
                };
                match entry {
                    Ok(e) => ledger_store::insert(&sql, &[e], now_ms())?,
                    Err(message) => return ApiError::bad_request("invalid_grant", message).into_response(),
                }
                internal::json(&summary(&sql, account)?)
            }
            (Method::Get, "/summary") => internal::json(&summary(&sql, account)?),
            (Method::Get, "/webhook-secret") => {
                // Made on first use; the same secret signs every job's webhooks.
                let storage = self.state.storage();
                let secret = match storage.get::<String>("webhookSecret").await? {
                    Some(s) => s,
                    None => {
                        let s = Secret::from_bytes(&crate::random::bytes(32)?).encode();
                        storage.put("webhookSecret", &s).await?;
                        s
                    }
                };
                internal::json(&serde_json::json!({"secret": secret}))
            }
            (Method::Post, "/storage/hold") => {
                let h: crate::accounts::HoldRequest = req.body_json().await?;
                // Read and written in one step, with no await between: racing holds are judged one by one.
                let now = now_ms();
                let files: u64 = live_files(&sql)?.iter().map(|f| f.size_bytes).fold(0, u64::saturating_add);
                let held = sql_rows::first(sql.exec(
                    "SELECT COALESCE(SUM(bytes), 0) FROM storage_holds WHERE expires_ms > ? AND id != ?",
                    vec![sql_rows::int(now), h.id.clone().into()],
                )?)?
                .map_or(0, |r| r.uint(0));
                let used = files.saturating_add(held);
                if used.saturating_add(h.bytes) > h.quota {
                    return internal::json(&crate::accounts::HoldAnswer { held: false, used_bytes: used });
                }
                sql.exec(
                    "INSERT OR REPLACE INTO storage_holds (id, bytes, expires_ms) VALUES (?, ?, ?)",
                    vec![h.id.into(), sql_rows::int(h.bytes), sql_rows::int(now.saturating_add(h.ttl_ms))],
                )?;
                internal::json(&crate::accounts::HoldAnswer { held: true, used_bytes: used })
            }
            (Method::Delete, "/storage/hold") => {
                let id = query::param(&req, "id").unwrap_or_default();
                sql.exec("DELETE FROM storage_holds WHERE id = ?", vec![id.into()])?;
                internal::json(&serde_json::json!({}))
            }
            (Method::Post, "/files") => {
                // The file takes the place of its upload's hold, in the same step.
                if let Some(hold) = query::param(&req, "hold") {
                    sql.exec("DELETE FROM storage_holds WHERE id = ?", vec![hold.into()])?;
                }
                let f: OwnedFile = req.body_json().await?;
                sql.exec(
                    "INSERT OR REPLACE INTO files (name, uri, mime_type, size_bytes, display_name, created_ms, expires_ms) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    vec![
                        f.name.into(),
                        f.uri.into(),
                        f.mime_type.into(),
                        SqlStorageValue::Integer(f.size_bytes as i64),
                        f.display_name.into(),
                        SqlStorageValue::Integer(f.created_ms as i64),
                        SqlStorageValue::Integer(f.expires_ms as i64),
                    ],
                )?;
                internal::json(&serde_json::json!({}))
            }
            (Method::Get, "/files") => internal::json(&serde_json::json!({"files": live_files(&sql)?})),
            (Method::Delete, "/files") => {
                let name = query::param(&req, "name").unwrap_or_default();
                sql.exec("DELETE FROM files WHERE name = ?", vec![name.into()])?;
                internal::json(&serde_json::json!({}))
            }
            (Method::Get, "/ledger") => {
                let q = Query::of(&req);
                let limit = q.get("limit").and_then(|l| l.parse::<i64>().ok()).unwrap_or(50).clamp(1, 500);
                let before =
                    q.get("cursor").and_then(|c| c.parse::<i64>().ok()).unwrap_or(sql_rows::MAX_SAFE);
                let rows = ledger_store::page(&sql, before, limit + 1)?;
                let more = rows.len() as i64 > limit;
                let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
                let next_cursor = if more { rows.last().map(|r| r.seq.to_string()) } else { None };
                internal::json(&serde_json::json!({"entries": rows, "nextCursor": next_cursor}))
            }
            (Method::Post, "/jobs") => {
                let j: JobSummary = req.body_json().await?;
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
                let q = Query::of(&req);
                let limit = q.get("limit").and_then(|l| l.parse::<i64>().ok()).unwrap_or(50).clamp(1, 200);
                let (cursor_ms, cursor_id) = q
                    .get("cursor")
                    .and_then(|c| {
                        let (ms, id) = c.split_once('.')?;
                        Some((ms.parse::<i64>().ok()?, id.to_string()))
                    })
                    .unwrap_or((sql_rows::MAX_SAFE, String::new()));
                let state = q.get("state").filter(|s| JobState::parse(s).is_some());
                let mut params: Vec<SqlStorageValue> =
                    vec![sql_rows::bound(cursor_ms), sql_rows::bound(cursor_ms), cursor_id.into()];
                let mut filter = String::new();
                if let Some(s) = state {
                    filter.push_str(" AND state = ?");
                    params.push(s.into());
                }
                params.push(SqlStorageValue::Integer(limit + 1));
                let rows = rows(sql.exec(
                    &format!(
                        "SELECT id, state, model, display_name, created_ms, updated_ms FROM jobs \
                         WHERE (created_ms < ? OR (created_ms = ? AND id < ?)){filter} \
                         ORDER BY created_ms DESC, id DESC LIMIT ?"
                    ),
                    params,
                )?)?;
                let mut jobs: Vec<JobSummary> = rows
                    .into_iter()
                    .map(|r| JobSummary {
                        id: r.text(0),
                        state: r.text(1),
                        model: r.text(2),
                        display_name: r.opt_text(3),
                        created_ms: r.int(4),
                        updated_ms: r.int(5),
                    })
                    .collect();
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

/// The account's files Gemini still keeps, newest first.
fn live_files(sql: &SqlStorage) -> Result<Vec<OwnedFile>> {
    let rows = rows(sql.exec(
        "SELECT name, uri, mime_type, size_bytes, display_name, created_ms, expires_ms FROM files \
         WHERE expires_ms > ? ORDER BY created_ms DESC",
        vec![SqlStorageValue::Integer(now_ms() as i64)],
    )?)?;
    Ok(rows
        .into_iter()
        .map(|r| OwnedFile {
            name: r.text(0),
            uri: r.text(1),
            mime_type: r.text(2),
            size_bytes: r.uint(3),
            display_name: r.opt_text(4),
            created_ms: r.uint(5),
            expires_ms: r.uint(6),
        })
        .collect())
}

fn summary(sql: &SqlStorage, account: String) -> Result<Summary> {
    let t = ledger_store::totals(sql)?;
    Ok(Summary {
        account,
        unit: "microcredits".into(),
        balance: t.balance,
        reserved: t.held,
        granted: t.granted,
        spent: t.spent,
        saved: t.saved,
        open_jobs: ledger_store::open_jobs(sql)?,
    })
}
