//! The `QuotaObject`'s tables: `holds(job, shard, model, key, tokens,
//! since_ms)`, one row per admitted shard until it is released, and
//! `revoked(key, at_ms, reason)`, the keys Gemini refused.

use crate::platform::sql_rows::{int, rows};
use batchgate_core::quota::Hold;
use worker::{Result, SqlStorage};

pub struct Store {
    sql: SqlStorage,
}

impl Store {
    pub fn new(sql: SqlStorage) -> Result<Store> {
        for ddl in [
            "CREATE TABLE IF NOT EXISTS holds (job TEXT NOT NULL, shard INTEGER NOT NULL, model TEXT NOT NULL, \
             key TEXT NOT NULL, tokens INTEGER NOT NULL, since_ms INTEGER NOT NULL, PRIMARY KEY (job, shard))",
            "CREATE TABLE IF NOT EXISTS revoked (key TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, reason TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS realtime (key TEXT NOT NULL, model TEXT NOT NULL, at_ms INTEGER NOT NULL)",
            "CREATE INDEX IF NOT EXISTS realtime_model ON realtime (model, key, at_ms)",
        ] {
            sql.exec(ddl, None)?;
        }
        Ok(Store { sql })
    }

    /// Every hold, oldest first.
    pub fn holds(&self) -> Result<Vec<Hold>> {
        let rows = rows(
            self.sql
                .exec("SELECT job, shard, model, key, tokens, since_ms FROM holds ORDER BY since_ms", None)?,
        )?;
        Ok(rows
            .into_iter()
            .map(|r| Hold {
                job: r.text(0),
                shard: r.uint(1),
                model: r.text(2),
                key: r.text(3),
                tokens: r.uint(4),
                since_ms: r.uint(5),
            })
            .collect())
    }

    /// Record an admitted shard (a repeat keeps the first hold).
    pub fn hold(&self, h: &Hold) -> Result<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO holds (job, shard, model, key, tokens, since_ms) VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                h.job.as_str().into(),
                int(h.shard),
                h.model.as_str().into(),
                h.key.as_str().into(),
                int(h.tokens),
                int(h.since_ms),
            ],
        )?;
        Ok(())
    }

    pub fn release(&self, job: &str, shard: u64) -> Result<()> {
        self.sql.exec("DELETE FROM holds WHERE job = ? AND shard = ?", vec![job.into(), int(shard)])?;
        Ok(())
    }

    /// When each realtime request for `model` of the last minute was sent, per key
    /// (older rows are dropped first: the table holds one minute).
    pub fn realtime_calls(&self, model: &str, now_ms: u64) -> Result<Vec<(String, u64)>> {
        let since = int(now_ms.saturating_sub(batchgate_core::realtime::REMEMBER_MS));
        self.sql.exec("DELETE FROM realtime WHERE at_ms <= ?", vec![since])?;
        let rows =
            rows(self.sql.exec("SELECT key, at_ms FROM realtime WHERE model = ?", vec![model.into()])?)?;
        Ok(rows.into_iter().map(|r| (r.text(0), r.uint(1))).collect())
    }

    pub fn count_realtime(&self, key: &str, model: &str, at_ms: u64) -> Result<()> {
        self.sql.exec(
            "INSERT INTO realtime (key, model, at_ms) VALUES (?, ?, ?)",
            vec![key.into(), model.into(), int(at_ms)],
        )?;
        Ok(())
    }

    /// The keys Gemini refused: `(key, at_ms, reason)`.
    pub fn revoked(&self) -> Result<Vec<(String, u64, String)>> {
        let rows = rows(self.sql.exec("SELECT key, at_ms, reason FROM revoked ORDER BY at_ms", None)?)?;
        Ok(rows.into_iter().map(|r| (r.text(0), r.uint(1), r.text(2))).collect())
    }

    /// Put a key back in rotation; false if it was not out.
    pub fn reinstate(&self, key: &str) -> Result<bool> {
        let was = self.revoked()?.iter().any(|(k, _, _)| k == key);
        self.sql.exec("DELETE FROM revoked WHERE key = ?", vec![key.into()])?;
        Ok(was)
    }

    /// Take a key out of rotation (the first refusal's time and reason stay).
    pub fn revoke(&self, key: &str, at_ms: u64, reason: &str) -> Result<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO revoked (key, at_ms, reason) VALUES (?, ?, ?)",
            vec![key.into(), int(at_ms), reason.into()],
        )?;
        Ok(())
    }
}
