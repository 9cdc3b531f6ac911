//! The account's job history: `jobs(id, state, model, display_name,
//! created_ms, updated_ms, figures)`, newest first by `(created_ms, id)`, so
//! listing never scans jobs (`figures`: the lane, counts and cost as JSON).
//! Each JobObject stays the truth for its job; a late, older report never
//! overwrites a newer one.

use super::protocol::{ListJobs, RecordJob};
use crate::platform::sql_rows::{self, first, int, rows};
use worker::{Result, SqlStorage, SqlStorageValue};

pub fn create(sql: &SqlStorage) -> Result<()> {
    sql.exec(
        "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, model TEXT NOT NULL, \
         display_name TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)",
        None,
    )?;
    sql.exec("CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_ms DESC, id DESC)", None)?;
    // Tables made before figures were kept gain the column.
    let has_figures = first(sql.exec(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs' AND sql LIKE '%figures%'",
        None,
    )?)?
    .is_some();
    if !has_figures {
        sql.exec("ALTER TABLE jobs ADD COLUMN figures TEXT", None)?;
    }
    Ok(())
}

pub fn record(sql: &SqlStorage, j: RecordJob) -> Result<()> {
    sql.exec(
        "INSERT INTO jobs (id, state, model, display_name, created_ms, updated_ms, figures) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state, \
         updated_ms = excluded.updated_ms, figures = excluded.figures \
         WHERE excluded.updated_ms >= jobs.updated_ms",
        vec![
            j.id.into(),
            j.state.into(),
            j.model.into(),
            j.display_name.into(),
            sql_rows::bound(j.created_ms),
            sql_rows::bound(j.updated_ms),
            j.figures.and_then(|f| serde_json::to_string(&f).ok()).into(),
        ],
    )?;
    Ok(())
}

pub fn remove(sql: &SqlStorage, id: &str) -> Result<()> {
    sql.exec("DELETE FROM jobs WHERE id = ?", vec![id.into()])?;
    Ok(())
}

/// One page and whether more follow (`limit + 1` rows are read to know).
pub fn page(sql: &SqlStorage, page: &ListJobs) -> Result<(Vec<RecordJob>, bool)> {
    let (cursor_ms, cursor_id) = page.before.clone().unwrap_or((sql_rows::MAX_SAFE, String::new()));
    let mut params: Vec<SqlStorageValue> =
        vec![sql_rows::bound(cursor_ms), sql_rows::bound(cursor_ms), cursor_id.into()];
    let mut filter = String::new();
    if !page.states.is_empty() {
        filter = format!(" AND state IN ({})", vec!["?"; page.states.len()].join(", "));
        params.extend(page.states.iter().map(|s| s.as_str().into()));
    }
    params.push(int(page.limit.saturating_add(1)));
    let rows = rows(sql.exec(
        &format!(
            "SELECT id, state, model, display_name, created_ms, updated_ms, figures FROM jobs \
             WHERE (created_ms < ? OR (created_ms = ? AND id < ?)){filter} \
             ORDER BY created_ms DESC, id DESC LIMIT ?"
        ),
        params,
    )?)?;
    let mut jobs: Vec<RecordJob> = rows
        .into_iter()
        .map(|r| RecordJob {
            id: r.text(0),
            state: r.text(1),
            model: r.text(2),
            display_name: r.opt_text(3),
            created_ms: r.int(4),
            updated_ms: r.int(5),
            figures: r.opt_text(6).and_then(|f| serde_json::from_str(&f).ok()),
        })
        .collect();
    let more = jobs.len() as u64 > page.limit;
    jobs.truncate(usize::try_from(page.limit).unwrap_or(usize::MAX));
    Ok((jobs, more))
}
