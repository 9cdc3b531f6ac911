//! The `InputObject`'s tables: `meta(k, v)` (the input), `parts(number, start,
//! end_inclusive, received, lines, rkey)` (each part taken, where it is in R2)
//! and `keys(key, line)` (every request key, unique across parts).

use super::protocol::Input;
use crate::platform::sql_rows::{first, int, rows};
use batchgate_core::input::{InputState, TakenPart};
use worker::{Result, SqlStorage};

pub struct Store {
    sql: SqlStorage,
}

/// SQLite binds at most 100 parameters a statement.
const KEYS_PER_STATEMENT: usize = 45;

impl Store {
    pub fn new(sql: SqlStorage) -> Result<Store> {
        for ddl in [
            "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS parts (number INTEGER PRIMARY KEY, start INTEGER NOT NULL, \
             end_inclusive INTEGER NOT NULL, received INTEGER NOT NULL, lines INTEGER NOT NULL, rkey TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, line INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS pending (rkey TEXT PRIMARY KEY)",
        ] {
            sql.exec(ddl, None)?;
        }
        Ok(Store { sql })
    }

    pub fn input(&self) -> Result<Option<Input>> {
        match first(self.sql.exec("SELECT v FROM meta WHERE k = 'input'", None)?)? {
            Some(row) => Ok(Some(serde_json::from_slice(row.text(0).as_bytes())?)),
            None => Ok(None),
        }
    }

    pub fn save(&self, input: &Input) -> Result<()> {
        let text = serde_json::to_string(input)?;
        self.sql.exec("INSERT OR REPLACE INTO meta (k, v) VALUES ('input', ?)", vec![text.into()])?;
        Ok(())
    }

    /// Where the input stands: its parts, counts and declared size.
    pub fn state(&self, size: Option<u64>) -> Result<InputState> {
        let parts: Vec<TakenPart> = rows(
            self.sql.exec("SELECT start, end_inclusive, received, lines FROM parts ORDER BY number", None)?,
        )?
        .into_iter()
        .map(|r| TakenPart {
            start: r.uint(0),
            end_inclusive: r.uint(1),
            received: r.uint(2),
            lines: r.uint(3),
        })
        .collect();
        let (received, lines) = parts.last().map_or((0, 0), |p| (p.received, p.lines));
        Ok(InputState { size, received, lines, parts })
    }

    /// The first of `keys` another part already has: `(its line here, its line there)`.
    pub fn duplicate(&self, keys: &[(u64, String)]) -> Result<Option<(u64, u64, String)>> {
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let params: Vec<worker::SqlStorageValue> = chunk.iter().map(|(_, k)| k.as_str().into()).collect();
            let found = first(
                self.sql
                    .exec(&format!("SELECT key, line FROM keys WHERE key IN ({marks}) LIMIT 1"), params)?,
            )?;
            if let Some(row) = found {
                let key = row.text(0);
                let here = chunk.iter().find(|(_, k)| *k == key).map_or(0, |(l, _)| *l);
                return Ok(Some((here, row.uint(1), key)));
            }
        }
        Ok(None)
    }

    /// An R2 key handed to an attempt at a part, not yet committed.
    pub fn pending(&self, rkey: &str) -> Result<()> {
        self.sql.exec("INSERT OR IGNORE INTO pending (rkey) VALUES (?)", vec![rkey.into()])?;
        Ok(())
    }

    pub fn pending_keys(&self) -> Result<Vec<String>> {
        Ok(rows(self.sql.exec("SELECT rkey FROM pending", None)?)?.into_iter().map(|r| r.text(0)).collect())
    }

    /// Requests taken so far.
    pub fn key_count(&self) -> Result<u64> {
        Ok(first(self.sql.exec("SELECT COUNT(*) FROM keys", None)?)?.map_or(0, |r| r.uint(0)))
    }

    /// Record a part and its keys (in the same synchronous run: together or not at all).
    pub fn take(&self, number: u64, part: &TakenPart, rkey: &str, keys: &[(u64, String)]) -> Result<()> {
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            let marks = vec!["(?, ?)"; chunk.len()].join(", ");
            let mut params = Vec::with_capacity(chunk.len() * 2);
            for (line, key) in chunk {
                params.push(key.as_str().into());
                params.push(int(*line));
            }
            self.sql.exec(&format!("INSERT INTO keys (key, line) VALUES {marks}"), params)?;
        }
        self.sql.exec(
            "INSERT OR REPLACE INTO parts (number, start, end_inclusive, received, lines, rkey) VALUES (?, ?, ?, ?, ?, ?)",
            vec![int(number), int(part.start), int(part.end_inclusive), int(part.received), int(part.lines), rkey.into()],
        )?;
        self.sql.exec("DELETE FROM pending WHERE rkey = ?", vec![rkey.into()])?;
        Ok(())
    }

    /// The parts' R2 keys, in order.
    pub fn part_keys(&self) -> Result<Vec<String>> {
        Ok(rows(self.sql.exec("SELECT rkey FROM parts ORDER BY number", None)?)?
            .into_iter()
            .map(|r| r.text(0))
            .collect())
    }

    /// Forget the keys and pending attempts (the input takes no more parts; its counts stay).
    pub fn clear_keys(&self) -> Result<()> {
        self.sql.exec("DELETE FROM keys", None)?;
        self.sql.exec("DELETE FROM pending", None)?;
        Ok(())
    }
}
