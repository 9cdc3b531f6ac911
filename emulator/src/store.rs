//! The emulator's records: files and batches, and how batches move through their
//! states as emulated time passes. Pure bookkeeping under one lock; the bytes of
//! files live on disk and are never held here.

use crate::clock::secs_to_ns;
use crate::config::Config;
use batchgate_core::gemini::timestamp::format_nanos;
use batchgate_core::gemini::{
    BATCH_METADATA_TYPE, BATCH_OUTPUT_TYPE, BatchMetadata, BatchOutput, BatchState, BatchStats, File,
    InputConfigEcho, Operation, OutputEnvelope, Status,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

#[derive(Debug)]
pub struct FileEntry {
    pub file: File,
    pub path: PathBuf,
    pub create_ns: i64,
    pub expire_ns: i64,
    pub seq: u64,
    /// Lines and prompt tokens, counted once when a batch first uses the file.
    pub scan: Option<Scan>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Scan {
    pub lines: u64,
    pub prompt_tokens: u64,
}

#[derive(Clone, Debug)]
pub struct InlineRequest {
    pub request: Value,
    pub metadata: Option<Value>,
}

#[derive(Clone, Debug)]
pub enum Input {
    File { name: String, path: PathBuf },
    Inline(Vec<InlineRequest>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Pending,
    Running,
    /// Results are being written; still RUNNING on the wire.
    Finishing {
        target: BatchState,
        limit: Option<u64>,
    },
    Done(BatchState),
}

/// A test's hold on a batch: it stays in this state until released.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Hold {
    Pending,
    Running,
}

#[derive(Debug)]
pub struct BatchEntry {
    pub id: String,
    pub model: String,
    pub display_name: Option<String>,
    pub input: Input,
    pub request_count: u64,
    pub prompt_tokens: u64,
    pub priority: Option<u64>,
    pub create_ns: i64,
    pub update_ns: i64,
    pub end_ns: Option<i64>,
    pub pending_until_ns: i64,
    pub running_until_ns: i64,
    pub phase: Phase,
    pub hold: Option<Hold>,
    pub fail_keys: HashSet<String>,
    pub output: Option<BatchOutput>,
    pub final_stats: BatchStats,
    pub error: Option<Status>,
    pub seq: u64,
}

/// What the caller must do after a state change (outside the lock).
#[derive(Debug, PartialEq)]
pub enum Effect {
    /// Write the results of batch `id`, then finish it as `target`; with a
    /// `limit`, lines past it are cancelled.
    Generate { id: String, target: BatchState, limit: Option<u64> },
    /// Batch `id` reached a terminal state (webhooks fire on this).
    Terminal { id: String },
    /// A file expired; delete its bytes.
    RemoveBytes(PathBuf),
}

impl BatchEntry {
    pub fn state(&self) -> BatchState {
        match &self.phase {
            Phase::Pending => BatchState::Pending,
            Phase::Running | Phase::Finishing { .. } => BatchState::Running,
            Phase::Done(s) => s.clone(),
        }
    }

    fn stats(&self, now_ns: i64, cfg: &Config) -> BatchStats {
        if let Phase::Done(_) = self.phase {
            return self.final_stats.clone();
        }
        let n = self.request_count;
        let mut processed = 0;
        if cfg.progress_stats && self.phase != Phase::Pending {
            let span = (self.running_until_ns - self.pending_until_ns).max(1) as f64;
            let f = ((now_ns - self.pending_until_ns) as f64 / span).clamp(0.0, 1.0);
            processed = (f * n as f64) as u64;
        }
        BatchStats {
            request_count: n,
            successful_request_count: processed,
            failed_request_count: 0,
            pending_request_count: n - processed,
        }
    }

    /// The operation as `batches.get` returns it; listings leave inline results out.
    pub fn operation(&self, now_ns: i64, cfg: &Config, with_inline_results: bool) -> Operation {
        let name = format!("batches/{}", self.id);
        let state = self.state();
        let mut output = self.output.clone();
        if let (false, Some(o)) = (with_inline_results, output.as_mut()) {
            o.inlined_responses = None;
        }
        let output = output.filter(|o| o.responses_file.is_some() || o.inlined_responses.is_some());
        let input_config = match &self.input {
            Input::File { name, .. } => Some(InputConfigEcho { file_name: Some(name.clone()) }),
            Input::Inline(_) => None,
        };
        let response = match (&state, &output) {
            (BatchState::Succeeded, Some(o)) => {
                Some(OutputEnvelope { type_url: BATCH_OUTPUT_TYPE.into(), output: o.clone() })
            }
            _ => None,
        };
        Operation {
            name: name.clone(),
            metadata: Some(BatchMetadata {
                type_url: BATCH_METADATA_TYPE.into(),
                model: format!("models/{}", self.model),
                display_name: self.display_name.clone(),
                input_config,
                output,
                create_time: Some(format_nanos(self.create_ns)),
                end_time: self.end_ns.map(format_nanos),
                update_time: Some(format_nanos(self.update_ns)),
                batch_stats: Some(self.stats(now_ns, cfg)),
                state: state.clone(),
                name,
                priority: self.priority.filter(|p| *p != 0),
            }),
            done: state.is_terminal(),
            response,
            error: self.error.clone(),
        }
    }

    /// Move along the PENDING → RUNNING → (results) path as time allows.
    fn advance(&mut self, now_ns: i64, cfg: &Config, effects: &mut Vec<Effect>) {
        if matches!(self.phase, Phase::Done(_) | Phase::Finishing { .. }) {
            return;
        }
        if now_ns >= self.create_ns + secs_to_ns(cfg.batch_expiry_secs) {
            self.finish(BatchState::Expired, now_ns, None);
            effects.push(Effect::Terminal { id: self.id.clone() });
            return;
        }
        match self.hold {
            Some(Hold::Pending) => return,
            Some(Hold::Running) => {
                if self.phase == Phase::Pending {
                    self.phase = Phase::Running;
                    self.update_ns = now_ns;
                }
                return;
            }
            None => {}
        }
        if self.phase == Phase::Pending && now_ns >= self.pending_until_ns {
            self.phase = Phase::Running;
            self.update_ns = self.pending_until_ns;
        }
        if self.phase == Phase::Running && now_ns >= self.running_until_ns {
            self.start_finishing(BatchState::Succeeded, None, effects);
        }
    }

    pub fn start_finishing(&mut self, target: BatchState, limit: Option<u64>, effects: &mut Vec<Effect>) {
        self.phase = Phase::Finishing { target: target.clone(), limit };
        effects.push(Effect::Generate { id: self.id.clone(), target, limit });
    }

    /// End the batch without results (FAILED, EXPIRED, CANCELLED while PENDING).
    pub fn finish(&mut self, state: BatchState, now_ns: i64, error: Option<Status>) {
        self.final_stats = BatchStats {
            request_count: self.request_count,
            pending_request_count: self.request_count,
            ..Default::default()
        };
        self.phase = Phase::Done(state);
        self.error = error;
        self.end_ns = Some(now_ns);
        self.update_ns = now_ns;
    }

    /// How far through RUNNING the batch is, as a count of lines.
    pub fn lines_processed_by(&self, now_ns: i64) -> u64 {
        if self.phase == Phase::Pending {
            return 0;
        }
        let span = (self.running_until_ns - self.pending_until_ns).max(1) as f64;
        let f = ((now_ns - self.pending_until_ns) as f64 / span).clamp(0.0, 1.0);
        (f * self.request_count as f64) as u64
    }
}

#[derive(Debug)]
pub struct Store {
    pub files: BTreeMap<String, FileEntry>,
    pub batches: BTreeMap<String, BatchEntry>,
    /// Per model, the most input tokens ever enqueued at once.
    pub peak_enqueued: BTreeMap<String, u64>,
    seq: u64,
    rng: StdRng,
}

const ID_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl Store {
    pub fn new(seed: u64) -> Store {
        Store {
            files: BTreeMap::new(),
            batches: BTreeMap::new(),
            peak_enqueued: BTreeMap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh lowercase alphanumeric id (files use 12 chars, batches 36).
    pub fn new_id(&mut self, len: usize) -> String {
        loop {
            let id: String =
                (0..len).map(|_| char::from(ID_CHARS[self.rng.random_range(0..ID_CHARS.len())])).collect();
            if !self.files.contains_key(&id) && !self.batches.contains_key(&id) {
                return id;
            }
        }
    }

    pub fn random_token(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(ID_CHARS[self.rng.random_range(0..ID_CHARS.len())])).collect()
    }

    /// A live file (expired ones are swept here, so they are never served).
    pub fn file(&mut self, id: &str, now_ns: i64, effects: &mut Vec<Effect>) -> Option<&mut FileEntry> {
        if self.files.get(id).is_some_and(|f| now_ns >= f.expire_ns)
            && let Some(f) = self.files.remove(id)
        {
            effects.push(Effect::RemoveBytes(f.path));
        }
        self.files.get_mut(id)
    }

    /// Prompt tokens of every active batch of `model`.
    pub fn enqueued_tokens(&self, model: &str) -> u64 {
        self.batches
            .values()
            .filter(|b| b.model == model && b.state().is_active())
            .map(|b| b.prompt_tokens)
            .sum()
    }

    pub fn active_batches(&self) -> usize {
        self.batches.values().filter(|b| b.state().is_active()).count()
    }

    /// Apply the passage of time to everything.
    pub fn advance(&mut self, now_ns: i64, cfg: &Config) -> Vec<Effect> {
        let mut effects = Vec::new();
        for b in self.batches.values_mut() {
            b.advance(now_ns, cfg, &mut effects);
        }
        let expired: Vec<String> =
            self.files.iter().filter(|(_, f)| now_ns >= f.expire_ns).map(|(k, _)| k.clone()).collect();
        for id in expired {
            if let Some(f) = self.files.remove(&id) {
                effects.push(Effect::RemoveBytes(f.path));
            }
        }
        effects
    }

    /// The earliest emulated time at which something will change by itself.
    pub fn next_deadline(&self, cfg: &Config) -> Option<i64> {
        let batches = self.batches.values().flat_map(|b| match (&b.phase, b.hold) {
            (Phase::Done(_) | Phase::Finishing { .. }, _) => vec![],
            (_, Some(_)) => vec![b.create_ns + secs_to_ns(cfg.batch_expiry_secs)],
            (Phase::Pending, None) => vec![b.pending_until_ns],
            (_, None) => vec![b.running_until_ns],
        });
        batches.chain(self.files.values().map(|f| f.expire_ns)).min()
    }
}
