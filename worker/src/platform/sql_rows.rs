//! SQLite rows read by position (the cursor's `raw()` arrays) instead of
//! through `SqlCursor::to_array`, whose serde-wasm-bindgen deserializer cost
//! every row type its own copy of that library's code in the worker's wasm
//! (BENCHMARKS.md, sizes). Columns are named by their place in the `SELECT`.
//! Also the one conversion the other way that needs care: unsigned integers.

use worker::{Result, SqlCursor, SqlStorageValue};

/// The largest integer a bound parameter can carry: workers-rs hands SQL
/// parameters to SQLite as JavaScript numbers, which hold integers exactly only
/// up to 2^53 − 1 (`Number.MAX_SAFE_INTEGER`); past it workerd warns and the
/// value is rounded. Times in ms and sequence numbers stay far below it.
pub const MAX_SAFE: i64 = 9_007_199_254_740_991;

/// A count or time as an SQLite integer, saturating at [`MAX_SAFE`].
pub fn int(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(i64::try_from(v).unwrap_or(MAX_SAFE).min(MAX_SAFE))
}

/// A signed bound (a paging cursor, say) clamped into what a parameter carries exactly.
pub fn bound(v: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(v.clamp(-MAX_SAFE, MAX_SAFE))
}

/// One row's values, in `SELECT` order. A missing column or one of another
/// type reads as the type's zero, as a NULL does: callers select what they read.
pub struct Row(Vec<SqlStorageValue>);

impl Row {
    fn at(&self, column: usize) -> Option<&SqlStorageValue> {
        self.0.get(column)
    }

    /// An INTEGER column (a REAL is truncated; SQLite sums may be either).
    pub fn int(&self, column: usize) -> i64 {
        match self.at(column) {
            Some(SqlStorageValue::Integer(i)) => *i,
            Some(SqlStorageValue::Float(f)) => *f as i64,
            Some(SqlStorageValue::Boolean(b)) => i64::from(*b),
            _ => 0,
        }
    }

    /// A count or time that cannot be negative.
    pub fn uint(&self, column: usize) -> u64 {
        self.int(column).max(0) as u64
    }

    /// A TEXT column that may be NULL.
    pub fn opt_text(&self, column: usize) -> Option<String> {
        match self.at(column) {
            Some(SqlStorageValue::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A TEXT column ("" when NULL).
    pub fn text(&self, column: usize) -> String {
        self.opt_text(column).unwrap_or_default()
    }
}

/// Every row of a statement's result.
pub fn rows(cursor: SqlCursor) -> Result<Vec<Row>> {
    cursor.raw().map(|r| r.map(Row)).collect()
}

/// The first row, if any. The cursor is read to its end all the same, so
/// callers select one row (a key, `COUNT`, `LIMIT 1`): a SQLite statement left
/// open holds locks the object's later writes and commits need (workerd issue
/// 959, "unused SQL cursors lead to strange errors"). Here it broke the
/// 30,000-request scale run: shard uploads lost their connection and the
/// isolate reset every client connection; reading each cursor whole, it runs clean.
pub fn first(cursor: SqlCursor) -> Result<Option<Row>> {
    Ok(rows(cursor)?.into_iter().next())
}
