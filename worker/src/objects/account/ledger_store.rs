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

/// Jobs reserved and not yet settled.
pub fn open_jobs(sql: &SqlStorage) -> Result<u64> {
    let count = first(sql.exec(
        "SELECT COUNT(*) FROM ledger r WHERE r.kind = 'reserve' AND NOT EXISTS \
         (SELECT 1 FROM ledger s WHERE s.job = r.job AND s.kind = 'settle')",
        None,
    )?)?;
    Ok(count.map_or(0, |c| c.uint(0)))
}

/// When this account's reservations of the last minute were made.
pub fn recent_submits(sql: &SqlStorage, now_ms: u64) -> Result<Vec<u64>> {
    let since = now_ms.saturating_sub(MINUTE_MS);
    let rows =
        rows(sql.exec("SELECT at_ms FROM ledger WHERE kind = 'reserve' AND at_ms > ?", vec![int(since)])?)?;
    Ok(rows.into_iter().map(|r| r.uint(0)).collect())
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
