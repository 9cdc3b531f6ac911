//! The credit ledger in the AccountObject's SQLite. Rows are core's
//! [`Entry`]s, unique per (job, kind, event) so a replayed write is ignored;
//! every figure is a `SUM` over them, never a stored copy.

use super::protocol::LedgerRow;
use crate::platform::sql_rows::{self, first, int, rows};
use batchgate_core::ledger::{Entry, JobFacts, Kind, MINUTE_MS, Totals};
use worker::{Result, SqlStorage};

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

/// Write entries; ones already there (a replay) are skipped.
pub fn insert(sql: &SqlStorage, entries: &[Entry], now_ms: u64) -> Result<()> {
    for e in entries {
        sql.exec(
            "INSERT OR IGNORE INTO ledger (at_ms, kind, job, event, amount, balance_delta, held_delta, standard, note) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                int(now_ms),
                e.kind.as_str().into(),
                e.job.clone().into(),
                e.event.clone().into(),
                e.amount.into(),
                e.balance_delta.into(),
                e.held_delta.into(),
                e.standard.into(),
                e.note.clone().into(),
            ],
        )?;
    }
    Ok(())
}

pub fn totals(sql: &SqlStorage) -> Result<Totals> {
    let row = first(sql.exec(
        "SELECT COALESCE(SUM(balance_delta), 0), COALESCE(SUM(held_delta), 0), \
         COALESCE(SUM(CASE WHEN kind IN ('grant', 'adjust') THEN amount END), 0), \
         COALESCE(SUM(CASE WHEN kind = 'settle' THEN amount END), 0), \
         COALESCE(SUM(CASE WHEN kind = 'settle' THEN standard - amount END), 0) FROM ledger",
        None,
    )?)?;
    Ok(row.map_or_else(Totals::default, |r| Totals {
        balance: r.int(0),
        held: r.int(1),
        granted: r.int(2),
        spent: r.int(3),
        saved: r.int(4),
    }))
}

pub fn job_facts(sql: &SqlStorage, job: &str) -> Result<JobFacts> {
    let rows = rows(sql.exec("SELECT kind, amount FROM ledger WHERE job = ?", vec![job.into()])?)?;
    let mut facts = JobFacts::default();
    for r in rows {
        match Kind::parse(&r.text(0)) {
            Some(Kind::Reserve) => facts.reserved = Some(r.int(1)),
            Some(Kind::Settle) => facts.settled = Some(r.int(1)),
            _ => {}
        }
    }
    Ok(facts)
}

/// Which reservations a count is of: jobs, or `POST /v1/generate` calls
/// (core's `realtime::GENERATE_PREFIX`); each has its own limits.
#[derive(Clone, Copy)]
pub enum Lane {
    Jobs,
    Generate,
}

impl Lane {
    pub fn of(ledger_job: &str) -> Lane {
        if batchgate_core::realtime::is_generate(ledger_job) { Lane::Generate } else { Lane::Jobs }
    }

    /// An SQL condition on `{table}.job`.
    fn filter(self, table: &str) -> String {
        let op = match self {
            Lane::Jobs => "!=",
            Lane::Generate => "=",
        };
        let n = batchgate_core::realtime::GENERATE_PREFIX.len();
        format!("substr({table}.job, 1, {n}) {op} '{}'", batchgate_core::realtime::GENERATE_PREFIX)
    }
}

/// Reserved and not yet settled, of one lane.
pub fn open_jobs(sql: &SqlStorage, lane: Lane) -> Result<u64> {
    let count = first(sql.exec(
        &format!(
            "SELECT COUNT(*) FROM ledger r WHERE r.kind = 'reserve' AND {} AND NOT EXISTS \
             (SELECT 1 FROM ledger s WHERE s.job = r.job AND s.kind = 'settle')",
            lane.filter("r")
        ),
        None,
    )?)?;
    Ok(count.map_or(0, |c| c.uint(0)))
}

/// When this account's reservations of one lane in the last minute were made.
pub fn recent_submits(sql: &SqlStorage, now_ms: u64, lane: Lane) -> Result<Vec<u64>> {
    let since = now_ms.saturating_sub(MINUTE_MS);
    let rows = rows(sql.exec(
        &format!(
            "SELECT at_ms FROM ledger WHERE kind = 'reserve' AND at_ms > ? AND {}",
            lane.filter("ledger")
        ),
        vec![int(since)],
    )?)?;
    Ok(rows.into_iter().map(|r| r.uint(0)).collect())
}

/// Generate calls reserved before `before_ms` and never settled, with their
/// holds: their worker went away mid-call.
pub fn stranded_generates(sql: &SqlStorage, before_ms: u64) -> Result<Vec<(String, i64)>> {
    let rows = rows(sql.exec(
        &format!(
            "SELECT r.job, r.amount FROM ledger r WHERE r.kind = 'reserve' AND {} AND r.at_ms < ? \
             AND NOT EXISTS (SELECT 1 FROM ledger s WHERE s.job = r.job AND s.kind = 'settle') LIMIT 100",
            Lane::Generate.filter("r")
        ),
        vec![int(before_ms)],
    )?)?;
    Ok(rows.into_iter().map(|r| (r.text(0), r.int(1))).collect())
}

/// Newest first, `limit` rows before `before` (a `seq`).
pub fn page(sql: &SqlStorage, before: i64, limit: u64) -> Result<Vec<LedgerRow>> {
    let rows = rows(sql.exec(
        "SELECT seq, at_ms, kind, job, event, amount, balance_delta, held_delta, note FROM ledger \
         WHERE seq < ? ORDER BY seq DESC LIMIT ?",
        vec![sql_rows::bound(before), int(limit)],
    )?)?;
    Ok(rows
        .into_iter()
        .map(|r| LedgerRow {
            seq: r.int(0),
            at_ms: r.int(1),
            kind: r.text(2),
            job: r.text(3),
            event: r.text(4),
            amount: r.int(5),
            balance_delta: r.int(6),
            held_delta: r.int(7),
            note: r.text(8),
        })
        .collect())
}
