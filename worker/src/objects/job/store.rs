//! The JobObject's SQLite tables. Writes that must land together are issued
//! with no `await` between them, which Durable Objects commit atomically.
//!
//! - `meta(k, v)`: the job's state machine (`job`), its extra facts (`meta`),
//!   owner (`account`), R2 keys and the results multipart upload id.
//! - `inputs(line, key)`: the submitted keys, to find the ones Gemini skipped.
//! - `results(number, key, offset, len, ok, code, …, shard)`: one row per result
//!   line, where it sits in its shard's R2 results object and what it says.
//! - `parts(number, etag)`: stored parts of the results multipart uploads
//!   (shard `s`'s part `n` is number `s × PARTS_PER_SHARD + n`).
//! - `events(seq, at_ms, kind, detail)`: the job's timeline (core's `timeline`).
//! - `hooks(id, at_ms)`: `webhook-id`s of Gemini webhooks already acted on.

use super::protocol::{Entry, LineAt};
use crate::platform::sql_rows::{Row, first, int, rows};
use batchgate_core::ingest::LineRecord;
use batchgate_core::job::{Job, stored};
use batchgate_core::results::Outcome;
use batchgate_core::view::JobMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::{Result, SqlStorage, SqlStorageValue};

pub struct Store {
    sql: SqlStorage,
}

/// Part numbers of one shard's multipart upload live in their own range.
const PARTS_PER_SHARD: u64 = 100_000;

/// The columns `line_at` reads, in its order.
const LOCATED: &str = "SELECT shard, number, pos, len FROM results";

fn line_at(r: Row) -> LineAt {
    LineAt { shard: r.uint(0), number: r.uint(1), pos: r.uint(2), len: r.uint(3) }
}

/// Meta keys: the job's state machine, its facts, owner and input.
const JOB: &str = "job";
const META: &str = "meta";
const ACCOUNT: &str = "account";
const INPUT_KEY: &str = "inputKey";

impl Store {
    pub fn new(sql: SqlStorage) -> Result<Store> {
        for ddl in [
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS inputs (line INTEGER PRIMARY KEY, rkey TEXT NOT NULL UNIQUE)",
            "CREATE TABLE IF NOT EXISTS results (number INTEGER PRIMARY KEY, rkey TEXT, pos INTEGER NOT NULL, \
             len INTEGER NOT NULL, ok INTEGER NOT NULL, code INTEGER, prompt INTEGER, candidates INTEGER, \
             thoughts INTEGER, total INTEGER, shard INTEGER NOT NULL DEFAULT 0)",
            "CREATE INDEX IF NOT EXISTS results_rkey ON results (rkey)",
            "CREATE TABLE IF NOT EXISTS parts (number INTEGER PRIMARY KEY, etag TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, \
             kind TEXT NOT NULL, detail TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS hooks (id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL)",
        ] {
            sql.exec(ddl, None)?;
        }
        Ok(Store { sql })
    }

    pub fn get<T: DeserializeOwned>(&self, k: &str) -> Result<Option<T>> {
        match first(self.sql.exec("SELECT v FROM meta WHERE k = ?", vec![k.into()])?)? {
            Some(row) => Ok(Some(serde_json::from_slice(row.text(0).as_bytes())?)),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(&self, k: &str, v: &T) -> Result<()> {
        let text = serde_json::to_string(v)?;
        self.sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", vec![k.into(), text.into()])?;
        Ok(())
    }

    pub fn delete(&self, k: &str) -> Result<()> {
        self.sql.exec("DELETE FROM meta WHERE k = ?", vec![k.into()])?;
        Ok(())
    }

    /// Drop the `prefix`ed entries whose value (a time in ms) is below `now_ms`.
    pub fn delete_prefix_below(&self, prefix: &str, now_ms: u64) -> Result<()> {
        self.sql.exec(
            "DELETE FROM meta WHERE substr(k, 1, ?) = ? AND CAST(v AS INTEGER) < ?",
            vec![int(prefix.len() as u64), prefix.into(), int(now_ms)],
        )?;
        Ok(())
    }

    /// The job, read through its stored record's migrations.
    pub fn job(&self) -> Result<Option<Job>> {
        match first(self.sql.exec("SELECT v FROM meta WHERE k = ?", vec![JOB.into()])?)? {
            Some(row) => stored::read(&row.text(0)).map(Some).map_err(worker::Error::RustError),
            None => Ok(None),
        }
    }

    pub fn save_job(&self, job: &Job) -> Result<()> {
        let text = stored::write(job)?;
        self.sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", vec![JOB.into(), text.into()])?;
        Ok(())
    }

    pub fn meta(&self) -> Result<JobMeta> {
        Ok(self.get(META)?.unwrap_or_default())
    }

    pub fn save_meta(&self, meta: &JobMeta) -> Result<()> {
        self.put(META, meta)
    }

    /// The account the job belongs to.
    pub fn account(&self) -> Result<Option<String>> {
        self.get(ACCOUNT)
    }

    /// Where the job's normalized input is in R2.
    pub fn input_key(&self) -> Result<Option<String>> {
        self.get(INPUT_KEY)
    }

    /// A new job's owner and input.
    pub fn set_owner(&self, account: &str, input_key: &str) -> Result<()> {
        self.put(ACCOUNT, &account)?;
        self.put(INPUT_KEY, &input_key)
    }

    /// Record the submitted keys (50 rows a statement: SQLite's bound-parameter cap is 100).
    pub fn insert_inputs(&self, keys: &[String]) -> Result<()> {
        for (chunk_no, chunk) in keys.chunks(50).enumerate() {
            let placeholders = vec!["(?, ?)"; chunk.len()].join(", ");
            let mut params = Vec::with_capacity(chunk.len() * 2);
            for (i, k) in chunk.iter().enumerate() {
                params.push(int((chunk_no * 50 + i + 1) as u64));
                params.push(k.as_str().into());
            }
            self.sql
                .exec(&format!("INSERT OR IGNORE INTO inputs (line, rkey) VALUES {placeholders}"), params)?;
        }
        Ok(())
    }

    /// A slice's rows and its part, replacing any earlier attempt at the same
    /// slice. Nine rows a statement: eleven columns each stay under SQLite's 100-parameter cap.
    pub fn record_slice(&self, records: &[LineRecord], shard: u64, part: Option<(u64, &str)>) -> Result<()> {
        const COLUMNS: usize = 11;
        const ROWS: usize = 100 / COLUMNS;
        for chunk in records.chunks(ROWS) {
            let mut params = Vec::with_capacity(chunk.len() * COLUMNS);
            for r in chunk {
                let number = batchgate_core::ingest::line_number(shard, r.number);
                let (ok, code, u) = match &r.outcome {
                    Outcome::Success(u) => (1, None, Some(*u)),
                    Outcome::Error { code, .. } => (0, Some(i64::from(*code)), None),
                    Outcome::Malformed(_) => (0, None, None),
                };
                let opt = |v: Option<u64>| v.map_or(SqlStorageValue::Null, int);
                params.extend([
                    int(number),
                    r.key.clone().into(),
                    int(r.offset),
                    int(r.len),
                    SqlStorageValue::Integer(ok),
                    code.into(),
                    opt(u.map(|u| u.prompt)),
                    opt(u.map(|u| u.candidates)),
                    opt(u.map(|u| u.thoughts)),
                    opt(u.map(|u| u.total)),
                    int(shard),
                ]);
            }
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            self.sql.exec(
                &format!(
                    "INSERT OR REPLACE INTO results (number, rkey, pos, len, ok, code, prompt, candidates, thoughts, \
                     total, shard) VALUES {rows}"
                ),
                params,
            )?;
        }
        if let Some((number, etag)) = part {
            self.sql.exec(
                "INSERT OR REPLACE INTO parts (number, etag) VALUES (?, ?)",
                vec![int(shard * PARTS_PER_SHARD + number), etag.into()],
            )?;
        }
        Ok(())
    }

    /// The stored parts of `shard`'s results upload, by part number.
    pub fn parts(&self, shard: u64) -> Result<Vec<(u16, String)>> {
        let base = shard * PARTS_PER_SHARD;
        let rows = rows(self.sql.exec(
            "SELECT number, etag FROM parts WHERE number >= ? AND number < ? ORDER BY number",
            vec![int(base), int(base + PARTS_PER_SHARD)],
        )?)?;
        let part = |n: u64| u16::try_from(n.saturating_sub(base)).unwrap_or(u16::MAX);
        Ok(rows.into_iter().map(|p| (part(p.uint(0)), p.text(1))).collect())
    }

    /// Submitted keys with no result line.
    pub fn missing_count(&self) -> Result<u64> {
        let count = first(self.sql.exec(
            "SELECT COUNT(*) FROM inputs WHERE rkey NOT IN (SELECT rkey FROM results WHERE rkey IS NOT NULL)",
            None,
        )?)?;
        Ok(count.map_or(0, |c| c.uint(0)))
    }

    /// Remember a Gemini `webhook-id`; false if it was seen before (a replay).
    pub fn first_sight_of_hook(&self, id: &str, at_ms: u64) -> Result<bool> {
        let count = first(self.sql.exec("SELECT COUNT(*) FROM hooks WHERE id = ?", vec![id.into()])?)?;
        if count.is_some_and(|c| c.int(0) > 0) {
            return Ok(false);
        }
        self.sql.exec("INSERT INTO hooks (id, at_ms) VALUES (?, ?)", vec![id.into(), int(at_ms)])?;
        Ok(true)
    }

    /// Append to the timeline (in the same synchronous run as the state it describes).
    pub fn add_event(&self, at_ms: u64, event: &batchgate_core::timeline::Event) -> Result<()> {
        self.sql.exec(
            "INSERT INTO events (at_ms, kind, detail) VALUES (?, ?, ?)",
            vec![int(at_ms), event.kind.into(), event.detail.to_string().into()],
        )?;
        Ok(())
    }

    /// Timeline entries after `after` (oldest first).
    pub fn events(&self, after: u64, limit: u64) -> Result<Vec<Entry>> {
        let rows = rows(self.sql.exec(
            "SELECT seq, at_ms, kind, detail FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            vec![int(after), int(limit)],
        )?)?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let at = crate::platform::clock::rfc3339(r.uint(1));
                let detail: serde_json::Value =
                    serde_json::from_slice(r.text(3).as_bytes()).unwrap_or_default();
                Entry { seq: r.uint(0), at, kind: r.text(2), detail }
            })
            .collect())
    }

    /// The keys a retry resubmits: every input line without a successful result.
    pub fn unsucceeded_keys(&self) -> Result<Vec<String>> {
        let rows = rows(self.sql.exec(
            "SELECT rkey FROM inputs WHERE rkey NOT IN \
             (SELECT rkey FROM results WHERE ok = 1 AND rkey IS NOT NULL) ORDER BY line",
            None,
        )?)?;
        Ok(rows.into_iter().map(|r| r.text(0)).collect())
    }

    pub fn missing_keys(&self, after_line: u64, limit: u64) -> Result<Vec<(u64, String)>> {
        let rows = rows(self.sql.exec(
            "SELECT line, rkey FROM inputs WHERE line > ? AND rkey NOT IN \
             (SELECT rkey FROM results WHERE rkey IS NOT NULL) ORDER BY line LIMIT ?",
            vec![int(after_line), int(limit)],
        )?)?;
        Ok(rows.into_iter().map(|r| (r.uint(0), r.text(1))).collect())
    }

    /// The submitted keys in input order, after input line `after_line`.
    pub fn submitted_keys(&self, after_line: u64, limit: u64) -> Result<Vec<(u64, String)>> {
        let rows = rows(self.sql.exec(
            "SELECT line, rkey FROM inputs WHERE line > ? ORDER BY line LIMIT ?",
            vec![int(after_line), int(limit)],
        )?)?;
        Ok(rows.into_iter().map(|r| (r.uint(0), r.text(1))).collect())
    }

    pub fn by_key(&self, key: &str) -> Result<Option<LineAt>> {
        let row = first(
            self.sql.exec(&format!("{LOCATED} WHERE rkey = ? ORDER BY number LIMIT 1"), vec![key.into()])?,
        )?;
        Ok(row.map(line_at))
    }

    /// Lines after `after` in file order (`failed_only`: errors and malformed
    /// lines), and numbered below `below` if set.
    pub fn page(&self, after: u64, limit: u64, failed_only: bool, below: Option<u64>) -> Result<Vec<LineAt>> {
        let filter = if failed_only { "AND ok = 0" } else { "" };
        let rows = rows(self.sql.exec(
            &format!("{LOCATED} WHERE number > ? AND number < ? {filter} ORDER BY number LIMIT ?"),
            vec![int(after), int(below.unwrap_or(u64::MAX)), int(limit)],
        )?)?;
        Ok(rows.into_iter().map(line_at).collect())
    }

    /// Everything but the `keep` meta entries.
    pub fn clear(&self, keep: &[&str]) -> Result<()> {
        let kept = vec!["?"; keep.len()].join(", ");
        let params: Vec<SqlStorageValue> = keep.iter().map(|k| (*k).into()).collect();
        self.sql.exec(&format!("DELETE FROM meta WHERE k NOT IN ({kept})"), params)?;
        for t in ["inputs", "results", "parts", "hooks"] {
            self.sql.exec(&format!("DELETE FROM {t}"), None)?;
        }
        Ok(())
    }

    /// The result rows and stored parts of a shard whose results were dropped.
    pub fn discard_shard(&self, shard: u64) -> Result<()> {
        self.sql.exec("DELETE FROM results WHERE shard = ?", vec![int(shard)])?;
        let base = shard.saturating_mul(PARTS_PER_SHARD);
        self.sql.exec(
            "DELETE FROM parts WHERE number >= ? AND number < ?",
            vec![int(base), int(base.saturating_add(PARTS_PER_SHARD))],
        )?;
        Ok(())
    }
}
