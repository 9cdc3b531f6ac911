//! `"fallback": "realtime"`: a batch job whose batch Gemini refuses outright
//! (no batch access, a model without batch support), or whose shard has
//! waited at the quota past the operator's limit, runs its shards not yet at
//! Gemini as realtime calls instead. The job was reserved the standard price
//! from the start, so the switch never needs credits it lacks.
//!
//! The realtime cut is planned at submit beside the batch plan, cutting at
//! every batch boundary too, so the shards from the switch on map onto
//! realtime pieces exactly: shard `s`'s first line starts a piece. Shards
//! already started keep their numbers and take the pieces in order (they hold
//! no results yet); later pieces follow as shards of their own.

use super::{Job, Outcome, Phase};
use crate::gemini::client::Failure;
use crate::lane::{Choice, Lane};
use crate::shard::ShardSpec;
use serde::{Deserialize, Serialize};

/// What a job allowed to fall back keeps: when a quota wait is too long, and
/// its requests cut for the realtime lane.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    pub after_ms: u64,
    pub pieces: Vec<ShardSpec>,
}

impl Job {
    /// Allow falling back to the realtime lane (see the module).
    pub fn with_fallback(mut self, fallback: Fallback) -> Job {
        self.fallback = Some(fallback);
        self
    }

    pub fn allows_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    /// Why shard `s`'s outcome sends the job to the realtime lane, if it does.
    pub(super) fn fallback_reason(&self, s: u64, outcome: &Outcome, now_ms: u64) -> Option<String> {
        let fallback = self.fallback.as_ref()?;
        let run = self.run(s)?;
        if run.realtime || self.stop.is_some() || self.cancel_requested {
            return None;
        }
        match (outcome, &run.phase) {
            (
                Outcome::Failed(Failure::Permanent { status, message }),
                Phase::Uploading { .. } | Phase::Creating { .. },
            ) if !matches!(status, 401 | 403) => Some(format!("Gemini refused the batch: {message}")),
            (Outcome::QuotaFull, Phase::Queued)
                if now_ms.saturating_sub(run.started_ms) >= fallback.after_ms =>
            {
                Some(format!(
                    "waited {} s for Gemini's batch quota",
                    now_ms.saturating_sub(run.started_ms) / 1000
                ))
            }
            _ => None,
        }
    }

    /// Run shard `s` and every later one realtime. Nothing changes when a
    /// later shard is at Gemini (`No`), or may be: a create whose answer was
    /// lost is looked for first (`NotYet`: shard `s` asks again later).
    pub(super) fn fall_back(&mut self, s: u64, reason: String, now_ms: u64) -> FellBack {
        let Some(fallback) = &self.fallback else { return FellBack::No };
        // Later shards already answering realtime are no obstacle.
        let later = || self.runs.iter().filter(|r| r.shard > s && !r.realtime);
        if later().any(|r| !r.before_gemini() && !r.create_maybe_sent()) {
            return FellBack::No;
        }
        if later().any(|r| r.create_maybe_sent()) {
            return FellBack::NotYet;
        }
        // Each batch shard from `s` on not yet answering realtime becomes its
        // range's first piece; the range's other pieces follow as new shards.
        let pieces = fallback.pieces.clone();
        let mut specs: Vec<ShardSpec> = (0..self.shard_count()).map(|q| self.spec_of(q)).collect();
        let mut more = vec![];
        for (q, spec) in specs.iter_mut().enumerate().skip(usize::try_from(s).unwrap_or(usize::MAX)) {
            let q = q as u64;
            // A shard answering realtime already, or one that finished (it has no run any more).
            if self.run(q).is_none_or(|r| r.realtime) && q < self.next_shard {
                continue;
            }
            let (start, end) = (spec.first_line, spec.first_line + spec.requests);
            let mut mine = pieces.iter().filter(|p| p.first_line >= start && p.first_line < end);
            let Some(first) = mine.next() else { return FellBack::No };
            *spec = *first;
            more.extend(mine.copied());
            if let Some(run) = self.run_mut(q) {
                run.answer_realtime(*first, now_ms);
            }
        }
        specs.extend(more);
        self.specs = specs;
        self.lane = Some(Choice {
            lane: Lane::Realtime,
            reason: format!("fell back to realtime at shard {s}: {reason}"),
        });
        FellBack::Yes
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum FellBack {
    Yes,
    No,
    NotYet,
}
