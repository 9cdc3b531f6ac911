//! The account's uploaded files and the storage its uploads under way hold:
//! `files(name, uri, mime_type, size_bytes, display_name, created_ms,
//! expires_ms)` and `storage_holds(id, bytes, expires_ms)`. A hold is the
//! declared size of an upload under way: it counts against the storage quota
//! until the file is recorded (in the same step) or the upload ends, so
//! parallel uploads cannot pass the quota together.

use super::protocol::{HoldStorage, StorageHeld};
use crate::platform::sql_rows::{self, int, rows};
use batchgate_core::upload::OwnedFile;
use worker::{Result, SqlStorage};

pub fn create(sql: &SqlStorage) -> Result<()> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, uri TEXT NOT NULL, mime_type TEXT NOT NULL, \
         size_bytes INTEGER NOT NULL, display_name TEXT, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)",
        None,
    )?;
    sql.exec(
        "CREATE TABLE IF NOT EXISTS storage_holds (id TEXT PRIMARY KEY, bytes INTEGER NOT NULL, \
         expires_ms INTEGER NOT NULL)",
        None,
    )?;
    Ok(())
}

/// The account's files Gemini still keeps, newest first.
pub fn live(sql: &SqlStorage, now_ms: u64) -> Result<Vec<OwnedFile>> {
    let rows = rows(sql.exec(
        "SELECT name, uri, mime_type, size_bytes, display_name, created_ms, expires_ms FROM files \
         WHERE expires_ms > ? ORDER BY created_ms DESC",
        vec![int(now_ms)],
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

/// Record a file in place of its upload's hold, in one step.
pub fn record(sql: &SqlStorage, f: OwnedFile, hold: &str) -> Result<()> {
    release(sql, hold)?;
    sql.exec(
        "INSERT OR REPLACE INTO files (name, uri, mime_type, size_bytes, display_name, created_ms, expires_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        vec![
            f.name.into(),
            f.uri.into(),
            f.mime_type.into(),
            int(f.size_bytes),
            f.display_name.into(),
            int(f.created_ms),
            int(f.expires_ms),
        ],
    )?;
    Ok(())
}

pub fn forget(sql: &SqlStorage, name: &str) -> Result<()> {
    sql.exec("DELETE FROM files WHERE name = ?", vec![name.into()])?;
    Ok(())
}

/// Take the hold if the files kept and the other holds leave room for it;
/// read and written with no await between, so racing holds are judged one by one.
pub fn hold(sql: &SqlStorage, h: HoldStorage, now_ms: u64) -> Result<StorageHeld> {
    let files = live(sql, now_ms)?.iter().map(|f| f.size_bytes).fold(0, u64::saturating_add);
    let held = sql_rows::first(sql.exec(
        "SELECT COALESCE(SUM(bytes), 0) FROM storage_holds WHERE expires_ms > ? AND id != ?",
        vec![int(now_ms), h.id.clone().into()],
    )?)?
    .map_or(0, |r| r.uint(0));
    let used = files.saturating_add(held);
    if used.saturating_add(h.bytes) > h.quota {
        return Ok(StorageHeld { held: false, used_bytes: used });
    }
    sql.exec(
        "INSERT OR REPLACE INTO storage_holds (id, bytes, expires_ms) VALUES (?, ?, ?)",
        vec![h.id.into(), int(h.bytes), int(now_ms.saturating_add(h.ttl_ms))],
    )?;
    Ok(StorageHeld { held: true, used_bytes: used })
}

pub fn release(sql: &SqlStorage, id: &str) -> Result<()> {
    sql.exec("DELETE FROM storage_holds WHERE id = ?", vec![id.into()])?;
    Ok(())
}
