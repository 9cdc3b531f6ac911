//! How many rows one page of each listing may hold: what a caller gets
//! without asking, and the most it may ask for. Each is bounded so one request
//! reads a bounded number of rows from a Durable Object's SQLite.

/// A listing's page size rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize {
    pub default: u64,
    pub max: u64,
}

impl PageSize {
    /// The page size for an asked `limit` (none: the default; 0 counts as 1).
    pub fn of(self, asked: Option<u64>) -> u64 {
        asked.unwrap_or(self.default).clamp(1, self.max)
    }

    /// As [`of`](Self::of), for a query value: one that is not an integer is
    /// not asked; a negative one is the least.
    pub fn of_query(self, asked: Option<&str>) -> u64 {
        self.of(asked.and_then(|v| v.parse::<i64>().ok()).map(|v| v.max(0).unsigned_abs()))
    }
}

/// `GET /v1/jobs`.
pub const JOBS: PageSize = PageSize { default: 50, max: 200 };
/// `GET /gemini/v1beta/batches` (each listed job's view is read for its operation).
pub const GEMINI_BATCHES: PageSize = PageSize { default: 10, max: 50 };
/// `GET /gemini/v1beta/files`: batch input files a page (each one's record is
/// read from R2; the account's media files come whole on the first page).
pub const GEMINI_FILES: PageSize = PageSize { default: 20, max: 100 };
/// `GET /v1/account/ledger`.
pub const LEDGER: PageSize = PageSize { default: 50, max: 500 };
/// `GET /v1/jobs/:id/events`.
pub const EVENTS: PageSize = PageSize { default: 100, max: 1_000 };
/// `GET /v1/jobs/:id/results?limit=` (also bounded in bytes: `results::MAX_PAGE_BYTES`).
pub const RESULTS: PageSize = PageSize { default: 100, max: 1_000 };
/// Requests without a result, read from a job's object per call while the
/// failed-only results stream.
pub const MISSING: PageSize = PageSize { default: 10_000, max: 10_000 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_the_default_when_absent_and_stays_within_one_and_the_max() {
        for size in [JOBS, GEMINI_BATCHES, GEMINI_FILES, LEDGER, EVENTS, RESULTS, MISSING] {
            assert_eq!(size.of(None), size.default);
            assert_eq!(size.of(Some(0)), 1);
            assert_eq!(size.of(Some(u64::MAX)), size.max);
            assert_eq!(size.of_query(Some("-5")), 1);
            assert_eq!(size.of_query(Some("five")), size.default, "not a count: as if not asked");
            assert_eq!(size.of_query(Some("1e9")), size.default);
            assert!(size.default <= size.max);
        }
        assert_eq!(EVENTS.of_query(Some("7")), 7);
    }
}
