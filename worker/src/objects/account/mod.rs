//! `AccountObject`: one Durable Object per account. It holds the account's job
//! history (`jobs_store`), its credit ledger (`ledger_store`) and its files
//! (`files_store`). A Durable Object runs one request at a time and these
//! handlers never await between reading the balance and writing a
//! reservation, so racing submits cannot overspend.

pub mod client;
mod files_store;
mod jobs_store;
mod ledger_store;
pub mod protocol;

use crate::objects::rpc::{self, Incoming, Rpc};
use crate::platform::clock::now_ms;
use crate::platform::error::ApiError;
use crate::platform::sql_rows::MAX_SAFE;
use batchgate_core::ledger::{self, Admission};
use ledger_store::Lane;

/// Longer than any generate call can last (the Gemini timeout, a stream's length).
const STRANDED_GENERATE_MS: u64 = 30 * 60_000;
use batchgate_core::webhook::Secret;
use protocol::{
    ForgetFile, GetSummary, GetWebhookSecret, Grant, HoldStorage, JobList, LedgerEntries, LedgerPage,
    ListFiles, ListJobs, Listed, RecordFile, RecordJob, ReleaseStorage, RemoveJob, Reserve, ReserveAnswer,
    Settle, Summary, WebhookSecret,
};
use worker::{DurableObject, Env, Request, Response, Result, SqlStorage, State, durable_object};

#[durable_object]
pub struct AccountObject {
    state: State,
}

impl AccountObject {
    fn sql(&self) -> Result<SqlStorage> {
        let sql = self.state.storage().sql();
        ledger_store::create(&sql)?;
        jobs_store::create(&sql)?;
        files_store::create(&sql)?;
        Ok(sql)
    }

    async fn route(&self, call: Incoming) -> Result<Response> {
        let sql = self.sql()?;
        let account = call.account().to_string();
        match call.route() {
            Reserve::ROUTE => {
                let r: Reserve = call.read()?;
                rpc::reply::<Reserve>(Ok(reserve(&sql, r)?))
            }
            Settle::ROUTE => {
                let s: Settle = call.read()?;
                let facts = ledger_store::job_facts(&sql, &s.job)?;
                let entries = ledger::settle(&facts, &s.job, &s.event, s.charge, s.standard);
                ledger_store::insert(&sql, &entries, now_ms())?;
                rpc::reply::<Settle>(Ok(ledger_store::totals(&sql)?))
            }
            Grant::ROUTE => {
                let g: Grant = call.read()?;
                let check = if g.adjust { ledger::adjust } else { ledger::grant };
                match check(&g.event, g.amount, &g.note) {
                    Ok(e) => {
                        ledger_store::insert(&sql, &[e], now_ms())?;
                        rpc::reply::<Grant>(Ok(summary(&sql, account)?))
                    }
                    Err(message) => rpc::reply::<Grant>(Err(ApiError::bad_request("invalid_grant", message))),
                }
            }
            GetSummary::ROUTE => {
                // What the account is shown holds no call whose worker went away.
                settle_stranded_generates(&sql, now_ms())?;
                rpc::reply::<GetSummary>(Ok(summary(&sql, account)?))
            }
            GetWebhookSecret::ROUTE => {
                // Made on first use; the same secret signs every job's webhooks.
                let storage = self.state.storage();
                let secret = match storage.get::<String>("webhookSecret").await? {
                    Some(s) => s,
                    None => {
                        let s = Secret::from_bytes(&crate::platform::random::bytes(32)?).encode();
                        storage.put("webhookSecret", &s).await?;
                        s
                    }
                };
                rpc::reply::<GetWebhookSecret>(Ok(WebhookSecret { secret }))
            }
            LedgerPage::ROUTE => {
                let p: LedgerPage = call.read()?;
                let rows = ledger_store::page(&sql, p.before.unwrap_or(MAX_SAFE), p.limit.saturating_add(1))?;
                let more = rows.len() as u64 > p.limit;
                let entries: Vec<_> =
                    rows.into_iter().take(usize::try_from(p.limit).unwrap_or(usize::MAX)).collect();
                let next_cursor = if more { entries.last().map(|r| r.seq.to_string()) } else { None };
                rpc::reply::<LedgerPage>(Ok(LedgerEntries { entries, next_cursor }))
            }
            RecordJob::ROUTE => {
                jobs_store::record(&sql, call.read()?)?;
                rpc::reply::<RecordJob>(Ok(()))
            }
            RemoveJob::ROUTE => {
                let RemoveJob(id) = call.read()?;
                jobs_store::remove(&sql, &id)?;
                rpc::reply::<RemoveJob>(Ok(()))
            }
            ListJobs::ROUTE => {
                let page: ListJobs = call.read()?;
                let (jobs, more) = jobs_store::page(&sql, &page)?;
                let next_cursor =
                    if more { jobs.last().map(|j| format!("{}.{}", j.created_ms, j.id)) } else { None };
                let jobs = jobs.into_iter().map(Listed::from).collect();
                rpc::reply::<ListJobs>(Ok(JobList { jobs, next_cursor }))
            }
            HoldStorage::ROUTE => {
                let h: HoldStorage = call.read()?;
                rpc::reply::<HoldStorage>(Ok(files_store::hold(&sql, h, now_ms())?))
            }
            ReleaseStorage::ROUTE => {
                let ReleaseStorage(id) = call.read()?;
                files_store::release(&sql, &id)?;
                rpc::reply::<ReleaseStorage>(Ok(()))
            }
            RecordFile::ROUTE => {
                let r: RecordFile = call.read()?;
                files_store::record(&sql, r.file, &r.hold)?;
                rpc::reply::<RecordFile>(Ok(()))
            }
            ListFiles::ROUTE => rpc::reply::<ListFiles>(Ok(files_store::live(&sql, now_ms())?)),
            ForgetFile::ROUTE => {
                let ForgetFile(name) = call.read()?;
                files_store::forget(&sql, &name)?;
                rpc::reply::<ForgetFile>(Ok(()))
            }
            other => rpc::unknown_route("account", other),
        }
    }
}

/// Reserve a job's quote if the ledger's rules allow it (core's `ledger::reserve`).
fn reserve(sql: &SqlStorage, r: Reserve) -> Result<ReserveAnswer> {
    let now = now_ms();
    let lane = Lane::of(&r.job);
    if let Lane::Generate = lane {
        settle_stranded_generates(sql, now)?;
    }
    let recent = ledger_store::recent_submits(sql, now, lane)?;
    let admission = Admission {
        totals: ledger_store::totals(sql)?,
        job: ledger_store::job_facts(sql, &r.job)?,
        open_jobs: ledger_store::open_jobs(sql, lane)?,
        recent_submits_ms: &recent,
        limits: r.limits,
        now_ms: now,
    };
    Ok(match ledger::reserve(&admission, &r.job, r.amount) {
        Ok(entries) => {
            ledger_store::insert(sql, &entries, now)?;
            ReserveAnswer::Reserved { totals: ledger_store::totals(sql)? }
        }
        Err(refusal) => refusal.into(),
    })
}

/// A generate call settles as its answer ends; one whose worker went away
/// first would hold its reservation for ever. Past the longest a call can
/// last, it is charged its reservation: it may have run to its ceiling, and
/// the operator paid Google for whatever it used.
fn settle_stranded_generates(sql: &SqlStorage, now: u64) -> Result<()> {
    for (job, hold) in ledger_store::stranded_generates(sql, now.saturating_sub(STRANDED_GENERATE_MS))? {
        let facts = ledger_store::job_facts(sql, &job)?;
        let mut entries = ledger::settle(&facts, &job, "stranded", hold, hold);
        for e in &mut entries {
            e.note = "the call's worker ended before it settled: charged its reservation".into();
        }
        ledger_store::insert(sql, &entries, now)?;
    }
    Ok(())
}

fn summary(sql: &SqlStorage, account: String) -> Result<Summary> {
    let t = ledger_store::totals(sql)?;
    Ok(Summary {
        account,
        unit: "microcredits".into(),
        balance: t.balance,
        reserved: t.held,
        granted: t.granted,
        spent: t.spent,
        saved: t.saved,
        open_jobs: ledger_store::open_jobs(sql, Lane::Jobs)?,
    })
}

impl DurableObject for AccountObject {
    fn new(state: State, _env: Env) -> Self {
        AccountObject { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        rpc::answer("account", self.route(Incoming::of(req).await?).await)
    }
}
