//! The credit ledger's rules. The AccountObject stores [`Entry`] rows; every
//! figure an account shows is a sum over them (never a second copy), and every
//! rule that decides which rows to write lives here.
//!
//! Each entry carries its effect on the two buckets of an account: `balance`
//! (spendable) and `held` (reserved for running jobs). Charges are the settle
//! amounts. By construction, for every account at every moment:
//!
//! `granted − spent − held = balance`  (granted counts adjustments too)
//!
//! A job's money moves exactly twice: one reserve at submit, then one settle
//! (the charge for what Gemini delivered) with one release (the rest of the
//! hold). Entries are unique per (job, kind, event), and a settled job takes
//! no further reserve or settle, so replayed or reordered steps cannot charge
//! twice.

use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    Grant,
    Adjust,
    Reserve,
    Settle,
    Release,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Grant => "grant",
            Kind::Adjust => "adjust",
            Kind::Reserve => "reserve",
            Kind::Settle => "settle",
            Kind::Release => "release",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Grant, Kind::Adjust, Kind::Reserve, Kind::Settle, Kind::Release]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One ledger row. `job` is empty for grants and adjustments; `event` makes the
/// row unique (a grant's idempotency key, a job's terminal event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub kind: Kind,
    pub job: String,
    pub event: String,
    /// Micro-credits granted, reserved, charged or released (adjustments may be negative).
    pub amount: i64,
    pub balance_delta: i64,
    pub held_delta: i64,
    /// For a settle: what the same tokens cost at the standard price (the saving is the difference).
    pub standard: i64,
    pub note: String,
}

/// The sums an account shows.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub balance: i64,
    pub held: i64,
    pub granted: i64,
    pub spent: i64,
    /// Standard price of what was spent, minus what was spent.
    pub saved: i64,
}

impl Totals {
    /// Fold entries (the store does the same with `SUM`).
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Totals {
        let mut t = Totals::default();
        // Saturating: with grants bounded (`MAX_GRANT`) no real ledger comes
        // near the limit, and a sum must never wrap into a credit.
        for e in entries {
            t.balance = t.balance.saturating_add(e.balance_delta);
            t.held = t.held.saturating_add(e.held_delta);
            match e.kind {
                Kind::Grant | Kind::Adjust => t.granted = t.granted.saturating_add(e.amount),
                Kind::Settle => {
                    t.spent = t.spent.saturating_add(e.amount);
                    t.saved = t.saved.saturating_add(e.standard.saturating_sub(e.amount));
                }
                Kind::Reserve | Kind::Release => {}
            }
        }
        t
    }
}

/// What the ledger already says about one job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobFacts {
    pub reserved: Option<i64>,
    pub settled: Option<i64>,
}

impl JobFacts {
    pub fn of<'a>(job_entries: impl IntoIterator<Item = &'a Entry>) -> JobFacts {
        let mut f = JobFacts::default();
        for e in job_entries {
            match e.kind {
                Kind::Reserve => f.reserved = Some(e.amount),
                Kind::Settle => f.settled = Some(e.amount),
                _ => {}
            }
        }
        f
    }

    /// Reserved and not yet settled: the job counts against the open-jobs limit.
    pub fn is_open(&self) -> bool {
        self.reserved.is_some() && self.settled.is_none()
    }

    /// Held for this job right now.
    pub fn hold(&self) -> i64 {
        match (self.reserved, self.settled) {
            (Some(r), None) => r,
            _ => 0,
        }
    }
}

/// Per-account limits on submitting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub max_open_jobs: u64,
    pub max_submits_per_minute: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_open_jobs: 100, max_submits_per_minute: 60 }
    }
}

/// Why a submit is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 402: the balance does not cover the reservation.
    Insufficient { balance: i64, needed: i64 },
    /// 429: too many jobs still running.
    TooManyOpenJobs { limit: u64 },
    /// 429: too many submits in the last minute; retry after this many seconds.
    TooManySubmits { limit: u64, retry_after_secs: u64 },
    /// The job id already has history (a reservation, open or settled): an id
    /// makes one job, once. Answering "nothing to do" here let a deleted job's
    /// id run a second, larger job with no reservation at all (issue 17).
    Duplicate { settled: bool },
}

/// The account's state a submit is judged against.
pub struct Admission<'a> {
    pub totals: Totals,
    pub job: JobFacts,
    pub open_jobs: u64,
    /// Times (ms) of this account's reservations in the last minute, any order.
    pub recent_submits_ms: &'a [u64],
    pub limits: Limits,
    pub now_ms: u64,
}

pub use crate::window::MINUTE_MS;

/// Reserve `amount` for `job`. A job id with any history is refused
/// ([`Refusal::Duplicate`]): the caller finds out what that id already is.
pub fn reserve(a: &Admission, job: &str, amount: i64) -> Result<Vec<Entry>, Refusal> {
    if a.job.reserved.is_some() || a.job.settled.is_some() {
        return Err(Refusal::Duplicate { settled: a.job.settled.is_some() });
    }
    if a.open_jobs >= a.limits.max_open_jobs {
        return Err(Refusal::TooManyOpenJobs { limit: a.limits.max_open_jobs });
    }
    if let Err(wait_ms) = crate::window::admit(a.recent_submits_ms, a.now_ms, a.limits.max_submits_per_minute)
    {
        let retry_after_secs = wait_ms.div_ceil(1000).max(1);
        return Err(Refusal::TooManySubmits { limit: a.limits.max_submits_per_minute, retry_after_secs });
    }
    let amount = amount.max(0);
    if a.totals.balance < amount {
        return Err(Refusal::Insufficient { balance: a.totals.balance, needed: amount });
    }
    Ok(vec![Entry {
        kind: Kind::Reserve,
        job: job.into(),
        event: "submit".into(),
        amount,
        balance_delta: -amount,
        held_delta: amount,
        standard: 0,
        note: String::new(),
    }])
}

/// Close `job`: charge `charge` (its delivered usage at the batch price) and
/// release the rest of its hold. A charge above the hold is taken from the
/// balance (which may go below zero) and noted. A settled job gets nothing new.
pub fn settle(facts: &JobFacts, job: &str, event: &str, charge: i64, standard: i64) -> Vec<Entry> {
    if facts.settled.is_some() {
        return vec![];
    }
    let charge = charge.max(0);
    let hold = facts.hold().max(0);
    let from_hold = charge.min(hold);
    let over = charge - from_hold;
    let note = if over > 0 { format!("usage exceeded the reservation by {over}") } else { String::new() };
    let mut out = vec![Entry {
        kind: Kind::Settle,
        job: job.into(),
        event: event.into(),
        amount: charge,
        balance_delta: -over,
        held_delta: -from_hold,
        standard: standard.max(charge),
        note,
    }];
    if hold > from_hold {
        out.push(Entry {
            kind: Kind::Release,
            job: job.into(),
            event: event.into(),
            amount: hold - from_hold,
            balance_delta: hold - from_hold,
            held_delta: -(hold - from_hold),
            standard: 0,
            note: String::new(),
        });
    }
    out
}

/// The largest grant or adjustment, in micro-credits ($1M of credits): bounds
/// every ledger sum far from `i64`'s limit.
pub const MAX_GRANT: i64 = 1_000_000_000_000_000;

/// Credits given by the operator (`0 < amount ≤ MAX_GRANT`), unique per `event`.
pub fn grant(event: &str, amount: i64, note: &str) -> Result<Entry, String> {
    if amount <= 0 {
        return Err("a grant must be a positive number of micro-credits".into());
    }
    if amount > MAX_GRANT {
        return Err(format!("a grant is at most {MAX_GRANT} micro-credits"));
    }
    Ok(operator_entry(Kind::Grant, event, amount, note))
}

/// An operator's correction, positive or negative, unique per `event`.
pub fn adjust(event: &str, amount: i64, note: &str) -> Result<Entry, String> {
    if amount == 0 {
        return Err("an adjustment must not be zero".into());
    }
    if amount.checked_abs().is_none_or(|a| a > MAX_GRANT) {
        return Err(format!("an adjustment is at most {MAX_GRANT} micro-credits either way"));
    }
    Ok(operator_entry(Kind::Adjust, event, amount, note))
}

fn operator_entry(kind: Kind, event: &str, amount: i64, note: &str) -> Entry {
    Entry {
        kind,
        job: String::new(),
        event: event.into(),
        amount,
        balance_delta: amount,
        held_delta: 0,
        standard: 0,
        note: note.into(),
    }
}

#[cfg(test)]
mod tests;
