use super::*;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

/// An account store as the AccountObject keeps it: rows unique per (job, kind, event).
#[derive(Default)]
struct Store {
    rows: Vec<Entry>,
    now_ms: u64,
    submits: Vec<u64>,
}

impl Store {
    fn insert(&mut self, entries: Vec<Entry>) {
        for e in entries {
            let dup = self.rows.iter().any(|r| r.job == e.job && r.kind == e.kind && r.event == e.event);
            if !dup {
                self.rows.push(e);
            }
        }
    }

    fn facts(&self, job: &str) -> JobFacts {
        JobFacts::of(self.rows.iter().filter(|r| r.job == job))
    }

    fn open_jobs(&self) -> u64 {
        let jobs: HashSet<&str> =
            self.rows.iter().filter(|r| !r.job.is_empty()).map(|r| r.job.as_str()).collect();
        jobs.into_iter().filter(|j| self.facts(j).is_open()).count() as u64
    }

    fn reserve(&mut self, job: &str, amount: i64, limits: Limits) -> Result<(), Refusal> {
        let submits = self.submits.clone();
        let a = Admission {
            totals: Totals::of(&self.rows),
            job: self.facts(job),
            open_jobs: self.open_jobs(),
            recent_submits_ms: &submits,
            limits,
            now_ms: self.now_ms,
        };
        let entries = reserve(&a, job, amount)?;
        if !entries.is_empty() {
            self.submits.push(self.now_ms);
        }
        self.insert(entries);
        Ok(())
    }

    fn settle(&mut self, job: &str, event: &str, charge: i64) {
        let facts = self.facts(job);
        self.insert(settle(&facts, job, event, charge, charge * 2));
    }
}

#[derive(Clone, Debug)]
enum Op {
    Grant(u8, i64),
    Reserve(u8, i64),
    Settle(u8, u8, i64),
    /// Repeat an earlier operation (a replayed step).
    Replay(usize),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, 1i64..5_000).prop_map(|(e, a)| Op::Grant(e, a)),
        (0u8..8, 0i64..3_000).prop_map(|(j, a)| Op::Reserve(j, a)),
        (0u8..8, 0u8..3, 0i64..4_000).prop_map(|(j, e, c)| Op::Settle(j, e, c)),
        (0usize..64).prop_map(Op::Replay),
        (0u64..30_000).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Any sequence of grants, reserves and settles, with replays and in any
    /// order, conserves credits, never charges a job twice, and never holds
    /// more than the open reservations.
    #[test]
    fn credits_are_conserved_and_no_job_is_charged_twice(ops in prop::collection::vec(op(), 1..80)) {
        let limits = Limits { max_open_jobs: 5, max_submits_per_minute: 4 };
        let mut s = Store::default();
        let mut done: Vec<Op> = vec![];
        let mut first_charge: HashMap<String, i64> = HashMap::new();
        let mut overage = 0i64;
        for o in ops {
            let o = match o {
                Op::Replay(i) => match done.get(i % done.len().max(1)) {
                    Some(prev) => prev.clone(),
                    None => continue,
                },
                o => o,
            };
            let before = Totals::of(&s.rows);
            match &o {
                Op::Grant(e, a) => s.insert(vec![grant(&format!("g{e}"), *a, "").unwrap_or_else(|e| panic!("{e}"))]),
                Op::Reserve(j, a) => {
                    let job = format!("j{j}");
                    let had = s.facts(&job);
                    match s.reserve(&job, *a, limits) {
                        Ok(()) => {
                            let after = Totals::of(&s.rows);
                            prop_assert!(had.reserved.is_none() && had.settled.is_none(), "an id with history was reserved again");
                            prop_assert_eq!(after.balance, before.balance - a);
                            prop_assert!(before.balance >= *a, "reserved more than the balance");
                        }
                        Err(r) => {
                            if had.reserved.is_some() || had.settled.is_some() {
                                prop_assert_eq!(&r, &Refusal::Duplicate { settled: had.settled.is_some() });
                            }
                            prop_assert_eq!(Totals::of(&s.rows), before, "a refused reserve wrote something");
                            if let Refusal::Insufficient { balance, needed } = r {
                                prop_assert!(balance < needed);
                            }
                        }
                    }
                }
                Op::Settle(j, e, c) => {
                    let job = format!("j{j}");
                    let facts = s.facts(&job);
                    s.settle(&job, &format!("e{e}"), *c);
                    if facts.settled.is_none() {
                        first_charge.insert(job.clone(), *c);
                        overage += (c - facts.hold()).max(0);
                        let after = s.facts(&job);
                        prop_assert_eq!(after.hold(), 0, "a settled job still holds credits");
                        let released: i64 = s.rows.iter().filter(|r| r.job == job && r.kind == Kind::Release).map(|r| r.amount).sum();
                        prop_assert_eq!(released, (facts.hold() - c).max(0));
                    }
                }
                Op::Tick(ms) => s.now_ms += ms,
                Op::Replay(_) => {}
            }
            done.push(o);
            let t = Totals::of(&s.rows);
            prop_assert_eq!(t.granted - t.spent - t.held, t.balance, "credits not conserved");
            let holds: i64 = s.rows.iter().map(|r| r.job.as_str()).filter(|j| !j.is_empty()).collect::<HashSet<_>>().into_iter().map(|j| s.facts(j).hold()).sum();
            prop_assert_eq!(t.held, holds, "held differs from the open reservations");
            prop_assert!(t.balance >= -overage, "the balance went below what overages explain");
            for (job, charge) in &first_charge {
                let settles: Vec<i64> = s.rows.iter().filter(|r| &r.job == job && r.kind == Kind::Settle).map(|r| r.amount).collect();
                prop_assert_eq!(settles, vec![*charge], "job {} charged other than once", job);
            }
        }
    }
}

#[test]
fn too_many_submits_say_when_to_retry() {
    let limits = Limits { max_open_jobs: 100, max_submits_per_minute: 2 };
    let totals = Totals { balance: 1_000, ..Totals::default() };
    let recent = [10_000, 40_000];
    let a = Admission {
        totals,
        job: JobFacts::default(),
        open_jobs: 0,
        recent_submits_ms: &recent,
        limits,
        now_ms: 50_000,
    };
    // The submit at 10 s leaves the window at 70 s: 20 s from now.
    assert_eq!(reserve(&a, "j", 1), Err(Refusal::TooManySubmits { limit: 2, retry_after_secs: 20 }));
    let later = Admission { now_ms: 70_001, ..a };
    assert!(reserve(&later, "j", 1).is_ok());
}

#[test]
fn open_jobs_and_balance_refuse_with_their_reason() {
    let limits = Limits { max_open_jobs: 1, max_submits_per_minute: 10 };
    let totals = Totals { balance: 5, ..Totals::default() };
    let a = Admission {
        totals,
        job: JobFacts::default(),
        open_jobs: 1,
        recent_submits_ms: &[],
        limits,
        now_ms: 0,
    };
    assert_eq!(reserve(&a, "j", 1), Err(Refusal::TooManyOpenJobs { limit: 1 }));
    let a = Admission { open_jobs: 0, ..a };
    assert_eq!(reserve(&a, "j", 6), Err(Refusal::Insufficient { balance: 5, needed: 6 }));
    assert_eq!(reserve(&a, "j", 5).map(|e| e.len()), Ok(1));
}

#[test]
fn an_overage_is_charged_and_noted() {
    let facts = JobFacts { reserved: Some(100), settled: None };
    let rows = settle(&facts, "j", "end", 130, 260);
    assert_eq!(rows.len(), 1);
    let t = Totals::of(&rows);
    assert_eq!((t.balance, t.held, t.spent, t.saved), (-30, -100, 130, 130));
    assert!(rows.iter().any(|r| r.note.contains("30")));
}

#[test]
fn grants_and_adjustments_are_checked() {
    assert!(grant("g", 0, "").is_err());
    assert!(adjust("a", 0, "").is_err());
    assert_eq!(adjust("a", -5, "refund reversal").map(|e| e.balance_delta), Ok(-5));
}

/// The job-id protocol the worker runs around the ledger (submit.rs,
/// retry.rs, the JobObject's `/prior`, `/init`, `/abandon`, `/delete`), as a
/// model: each id's object is free, live or tombstoned, and the ledger is
/// core's. Issue 17's attacks are its moves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Object {
    Free,
    Live,
    Gone,
}

#[derive(Default)]
struct World {
    ledger: Store,
    objects: HashMap<String, Object>,
    /// Jobs Gemini ran, by id (a job runs once it is live).
    ran: Vec<String>,
}

#[derive(Clone, Debug)]
enum Move {
    /// Submit `amount` under Idempotency-Key `key`; `lose_init`: the object
    /// was created but the answer lost (`Some(true)`), or the init never landed
    /// (`Some(false)`).
    Submit {
        key: u8,
        amount: i64,
        lose_init: Option<bool>,
    },
    Delete {
        key: u8,
    },
    /// Retry job `key`'s failed lines as a child (generations of child ids).
    Retry {
        key: u8,
        amount: i64,
    },
    DeleteChild {
        key: u8,
        generation: u8,
    },
    Finish {
        key: u8,
        charge: i64,
    },
}

fn a_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        (0u8..3, 1i64..2_000, prop::option::of(any::<bool>()))
            .prop_map(|(key, amount, lose_init)| Move::Submit { key, amount, lose_init }),
        (0u8..3).prop_map(|key| Move::Delete { key }),
        (0u8..3, 1i64..2_000).prop_map(|(key, amount)| Move::Retry { key, amount }),
        (0u8..3, 0u8..3).prop_map(|(key, generation)| Move::DeleteChild { key, generation }),
        (0u8..3, 0i64..2_000).prop_map(|(key, charge)| Move::Finish { key, charge }),
    ]
}

impl World {
    fn object(&self, id: &str) -> Object {
        self.objects.get(id).copied().unwrap_or(Object::Free)
    }

    /// `submit::open`: reserve, then init; a lost answer is settled only
    /// after `/abandon` tombstones the id.
    fn open(&mut self, id: &str, amount: i64, lose_init: Option<bool>) {
        let a = Admission {
            totals: Totals::of(&self.ledger.rows),
            job: self.ledger.facts(id),
            open_jobs: 0,
            recent_submits_ms: &[],
            limits: Limits { max_open_jobs: u64::MAX, max_submits_per_minute: u64::MAX },
            now_ms: 0,
        };
        let Ok(entries) = reserve(&a, id, amount) else { return };
        self.ledger.insert(entries);
        match lose_init {
            None | Some(true) => {
                // `/init` refuses a tombstoned id; otherwise the job is created.
                if self.object(id) == Object::Free {
                    self.objects.insert(id.into(), Object::Live);
                    self.ran.push(id.into());
                }
                if lose_init == Some(true) && self.object(id) != Object::Live {
                    self.abandon(id);
                }
            }
            Some(false) => self.abandon(id),
        }
    }

    /// `POST /abandon`, then the not-created release when the object confirms no job.
    fn abandon(&mut self, id: &str) {
        if self.object(id) == Object::Live {
            return;
        }
        self.objects.insert(id.into(), Object::Gone);
        let facts = self.ledger.facts(id);
        self.ledger.insert(settle(&facts, id, "not-created", 0, 0));
    }

    fn delete(&mut self, id: &str) {
        if self.object(id) == Object::Live {
            let facts = self.ledger.facts(id);
            self.ledger.insert(settle(&facts, id, "deleted", 0, 0));
            self.objects.insert(id.into(), Object::Gone);
        }
    }

    fn play(&mut self, m: &Move) {
        match *m {
            Move::Submit { key, amount, lose_init } => {
                let id = format!("k{key}");
                // `/prior` first: a live job is returned, a tombstone is 409.
                if self.object(&id) == Object::Free {
                    self.open(&id, amount, lose_init);
                }
            }
            Move::Delete { key } => self.delete(&format!("k{key}")),
            Move::Retry { key, amount } => {
                let parent = format!("k{key}");
                if self.object(&parent) != Object::Live {
                    return;
                }
                // The first generation whose id is not spent.
                let next =
                    (0..64).map(|g| format!("{parent}/retry/{g}")).find(|id| self.object(id) != Object::Gone);
                if let Some(child) = next
                    && self.object(&child) == Object::Free
                {
                    self.open(&child, amount, None);
                }
            }
            Move::DeleteChild { key, generation } => self.delete(&format!("k{key}/retry/{generation}")),
            Move::Finish { key, charge } => {
                let id = format!("k{key}");
                if self.object(&id) == Object::Live {
                    let facts = self.ledger.facts(&id);
                    self.ledger.insert(settle(&facts, &id, "ended", charge, charge));
                }
            }
        }
    }
}

proptest! {
    /// Issue 17: any sequence of submits, deletes, same-key resubmits, retries,
    /// deleted children and lost `/init` answers runs every job exactly once,
    /// each with exactly one reservation, never revives a spent id, and
    /// conserves credits.
    #[test]
    fn no_job_id_runs_unpaid_or_twice(moves in prop::collection::vec(a_move(), 1..60)) {
        let mut w = World::default();
        w.ledger.insert(vec![grant("start", 1_000_000, "").unwrap_or_else(|e| panic!("{e}"))]);
        let mut spent: HashSet<String> = HashSet::new();
        for m in &moves {
            w.play(m);
            for (id, o) in &w.objects {
                if *o == Object::Gone {
                    spent.insert(id.clone());
                }
                prop_assert!(!(spent.contains(id) && *o == Object::Live), "{id} was revived after {m:?}");
            }
            let t = Totals::of(&w.ledger.rows);
            prop_assert_eq!(t.granted - t.spent - t.held, t.balance, "credits not conserved after {:?}", m);
        }
        let mut seen = HashSet::new();
        for id in &w.ran {
            prop_assert!(seen.insert(id), "{} ran twice", id);
            let reserves = w.ledger.rows.iter().filter(|r| &r.job == id && r.kind == Kind::Reserve).count();
            prop_assert_eq!(reserves, 1, "{} ran with {} reservations", id, reserves);
        }
        for id in w.ledger.rows.iter().filter(|r| r.kind == Kind::Reserve).map(|r| r.job.clone()) {
            let held = w.ledger.facts(&id).hold();
            prop_assert!(held == 0 || w.object(&id) == Object::Live, "{} holds {} with no live job", id, held);
        }
    }
}
