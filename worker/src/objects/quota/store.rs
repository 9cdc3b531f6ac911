//! The `QuotaObject`'s table: `holds(job, shard, tokens, since_ms)`, one row
//! per admitted shard until it is released.

use crate::platform::sql_rows::{int, rows};
use batchgate_core::quota::Hold;
use worker::{Result, SqlStorage};

pub struct Store {
    sql: SqlStorage,
}

impl Store {
    pub fn new(sql: SqlStorage) -> Result<Store> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS holds (job TEXT NOT NULL, shard INTEGER NOT NULL, tokens INTEGER NOT NULL, \
             since_ms INTEGER NOT NULL, PRIMARY KEY (job, shard))",
            None,
        )?;
        Ok(Store { sql })
    }

    /// Every hold, oldest first.
    pub fn holds(&self) -> Result<Vec<Hold>> {
        let rows =
            rows(self.sql.exec("SELECT job, shard, tokens, since_ms FROM holds ORDER BY since_ms", None)?)?;
        Ok(rows
            .into_iter()
            .map(|r| Hold { job: r.text(0), shard: r.uint(1), tokens: r.uint(2), since_ms: r.uint(3) })
            .collect())
    }

    /// Record an admitted shard (a repeat keeps the first hold).
    pub fn hold(&self, job: &str, shard: u64, tokens: u64, now_ms: u64) -> Result<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO holds (job, shard, tokens, since_ms) VALUES (?, ?, ?, ?)",
            vec![job.into(), int(shard), int(tokens), int(now_ms)],
        )?;
        Ok(())
    }

    pub fn release(&self, job: &str, shard: u64) -> Result<()> {
        self.sql.exec("DELETE FROM holds WHERE job = ? AND shard = ?", vec![job.into(), int(shard)])?;
        Ok(())
    }
}
