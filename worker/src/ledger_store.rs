//! The credit ledger in the AccountObject's SQLite. Rows are core's
//! [`Entry`]s, unique per (job, kind, event) so a replayed write is ignored;
//! every figure is a `SUM` over them, never a stored copy.

use batchgate_core::ledger::{Entry, JobFacts, Kind, MINUTE_MS, Totals};
use serde::{Deserialize, Serialize};
use worker::{Result, SqlStorage, SqlStorageValue};

pub fn create(sql: &SqlStorage) -> Result<()> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, \
         kind TEXT NOT NULL, job TEXT NOT NULL, event TEXT NOT NULL, amount INTEGER NOT NULL, \
         balance_delta INTEGER NOT NULL, held_delta INTEGER NOT NULL, standard INTEGER NOT NULL, \
         note TEXT NOT NULL, UNIQUE (job, kind, event))",
        None,
    )?;
    sql.exec("CREATE INDEX IF NOT EXISTS ledger_kind_at ON ledger (kind, at_ms)", None)?;
    Ok(())
}

fn int(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v)
}

/// Write entries; ones already there (a replay) are skipped.
pub fn insert(sql: &SqlStorage, entries: &[Entry], now_ms: u64) -> Result<()> {
    for e in entries {
        sql.exec(
            "INSERT OR IGNORE INTO ledger (at_ms, kind, job, event, amount, balance_delta, held_delta, standard, note) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                int(now_ms as i64),
                e.kind.as_str().into(),
                e.job.clone().into(),
                e.event.clone().into(),
                int(e.amount),
                int(e.balance_delta),
                int(e.held_delta),
                int(e.standard),
                e.note.clone().into(),
            ],
        )?;
    }
    Ok(())
}

pub fn totals(sql: &SqlStorage) -> Result<Totals> {
    let rows: Vec<Totals> = sql
        .exec(
            "SELECT COALESCE(SUM(balance_delta), 0) AS balance, COALESCE(SUM(held_delta), 0) AS held, \
             COALESCE(SUM(CASE WHEN kind IN ('grant', 'adjust') THEN amount END), 0) AS granted, \
             COALESCE(SUM(CASE WHEN kind = 'settle' THEN amount END), 0) AS spent, \
             COALESCE(SUM(CASE WHEN kind = 'settle' THEN standard - amount END), 0) AS saved FROM ledger",
            None,
        )?
        .to_array()?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

#[derive(Deserialize)]
struct KindAmount {
    kind: String,
    amount: i64,
}

pub fn job_facts(sql: &SqlStorage, job: &str) -> Result<JobFacts> {
    let rows: Vec<KindAmount> =
        sql.exec("SELECT kind, amount FROM ledger WHERE job = ?", vec![job.into()])?.to_array()?;
    let mut facts = JobFacts::default();
    for r in rows {
        match Kind::parse(&r.kind) {
            Some(Kind::Reserve) => facts.reserved = Some(r.amount),
            Some(Kind::Settle) => facts.settled = Some(r.amount),
            _ => {}
        }
    }
    Ok(facts)
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

/// Jobs reserved and not yet settled.
pub fn open_jobs(sql: &SqlStorage) -> Result<u64> {
    let rows: Vec<Count> = sql
        .exec(
            "SELECT COUNT(*) AS n FROM ledger r WHERE r.kind = 'reserve' AND NOT EXISTS \
             (SELECT 1 FROM ledger s WHERE s.job = r.job AND s.kind = 'settle')",
            None,
        )?
        .to_array()?;
    Ok(rows.first().map_or(0, |c| c.n.max(0) as u64))
}

#[derive(Deserialize)]
struct At {
    at_ms: i64,
}

/// When this account's reservations of the last minute were made.
pub fn recent_submits(sql: &SqlStorage, now_ms: u64) -> Result<Vec<u64>> {
    let since = now_ms.saturating_sub(MINUTE_MS) as i64;
    let rows: Vec<At> = sql
        .exec("SELECT at_ms FROM ledger WHERE kind = 'reserve' AND at_ms > ?", vec![int(since)])?
        .to_array()?;
    Ok(rows.into_iter().map(|r| r.at_ms.max(0) as u64).collect())
}

/// A ledger row as users see it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub seq: i64,
    pub at_ms: i64,
    pub kind: String,
    pub job: String,
    pub event: String,
    pub amount: i64,
    pub balance_delta: i64,
    pub held_delta: i64,
    pub note: String,
}

/// Newest first, `limit` rows before `before` (a `seq`).
pub fn page(sql: &SqlStorage, before: i64, limit: i64) -> Result<Vec<Row>> {
    sql.exec(
        "SELECT seq, at_ms AS atMs, kind, job, event, amount, balance_delta AS balanceDelta, \
         held_delta AS heldDelta, note FROM ledger WHERE seq < ? ORDER BY seq DESC LIMIT ?",
        vec![int(before), int(limit)],
    )?
    .to_array()
}
