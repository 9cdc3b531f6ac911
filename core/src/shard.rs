//! Splitting one job into several Gemini batches ("shards").
//!
//! Gemini refuses a batch whose input file is over 2 GB, and a create that
//! would take a model's *enqueued tokens* (the input tokens of all its active
//! batches) over the project's cap. A job bigger than either is cut, while it
//! streams in, into consecutive runs of lines that each fit: the shard planner
//! closes a shard when the next line would take it over the byte, request or
//! token limit. The shards tile the normalized input exactly (byte ranges and
//! line ranges), so a shard's input is a ranged read of the stored file.

use serde::{Deserialize, Serialize};

/// What one Gemini batch may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardLimits {
    /// Input file bytes (Gemini: 2 GB).
    pub max_bytes: u64,
    /// Requests per batch (Gemini states none; operators may set one).
    pub max_requests: u64,
    /// Estimated input tokens: the model's enqueued-token cap, less headroom.
    pub max_tokens: u64,
}

impl ShardLimits {
    /// The limits for a model whose enqueued-token cap is `cap`: a shard is
    /// planned to at most `fill_percent` % of it, leaving room for estimates
    /// that come out low (Gemini counts the tokens, we only estimate them).
    pub fn for_cap(max_bytes: u64, max_requests: u64, cap: u64, fill_percent: u64) -> ShardLimits {
        ShardLimits {
            max_bytes,
            max_requests,
            max_tokens: (cap.saturating_mul(fill_percent.min(100)) / 100).max(1),
        }
    }
}

/// One shard: lines `[first_line, first_line + requests)` (0-based among the
/// job's requests) at bytes `[offset, offset + bytes)` of the normalized input.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardSpec {
    pub first_line: u64,
    pub requests: u64,
    pub offset: u64,
    pub bytes: u64,
    /// Estimated input tokens: what the shard adds to the model's enqueued total.
    pub tokens: u64,
}

/// Builds the shards line by line, as the input streams in.
#[derive(Clone, Debug)]
pub struct Planner {
    limits: ShardLimits,
    done: Vec<ShardSpec>,
    open: ShardSpec,
}

impl Planner {
    pub fn new(limits: ShardLimits) -> Planner {
        Planner { limits, done: vec![], open: ShardSpec::default() }
    }

    /// The next accepted line: `bytes` long (newline included), `tokens` of input.
    /// A single line over a limit gets a shard of its own.
    pub fn push(&mut self, bytes: u64, tokens: u64) {
        let o = &self.open;
        let over = o.requests + 1 > self.limits.max_requests
            || o.bytes + bytes > self.limits.max_bytes
            || o.tokens + tokens > self.limits.max_tokens;
        if over {
            self.cut();
        }
        self.open.requests += 1;
        self.open.bytes += bytes;
        self.open.tokens += tokens;
    }

    /// The shards, in input order (none for an empty input).
    /// Shards closed so far.
    pub fn closed(&self) -> usize {
        self.done.len()
    }

    /// Close the open shard here, whatever the limits (the next line starts one).
    pub fn cut(&mut self) {
        if self.open.requests > 0 {
            let next = ShardSpec {
                first_line: self.open.first_line + self.open.requests,
                offset: self.open.offset + self.open.bytes,
                ..ShardSpec::default()
            };
            self.done.push(std::mem::replace(&mut self.open, next));
        }
    }

    pub fn finish(mut self) -> Vec<ShardSpec> {
        if self.open.requests > 0 {
            self.done.push(self.open);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plan(limits: ShardLimits, lines: &[(u64, u64)]) -> Vec<ShardSpec> {
        let mut p = Planner::new(limits);
        for &(b, t) in lines {
            p.push(b, t);
        }
        p.finish()
    }

    #[test]
    fn the_news_classification_job_fits_the_token_cap_in_shards() {
        // 100,000 requests of ~2,800 tokens under a 3M cap planned to 90 %.
        let limits = ShardLimits::for_cap(2_000_000_000, u64::MAX, 3_000_000, 90);
        let shards = plan(limits, &vec![(11_500, 2_800); 100_000]);
        assert!(shards.iter().all(|s| s.tokens <= 2_700_000));
        assert_eq!(shards.iter().map(|s| s.requests).sum::<u64>(), 100_000);
        assert_eq!(shards.len(), 100_000usize.div_ceil(2_700_000 / 2_800));
    }

    #[test]
    fn a_small_job_is_one_shard() {
        let limits = ShardLimits::for_cap(2_000_000_000, 1_000, 3_000_000, 90);
        assert_eq!(
            plan(limits, &[(100, 10), (200, 20)]),
            vec![ShardSpec { first_line: 0, requests: 2, offset: 0, bytes: 300, tokens: 30 }]
        );
    }

    #[test]
    fn a_line_over_a_limit_travels_alone() {
        let limits = ShardLimits { max_bytes: 100, max_requests: 10, max_tokens: 50 };
        let shards = plan(limits, &[(10, 10), (10, 80), (10, 10)]);
        assert_eq!(shards.iter().map(|s| s.requests).collect::<Vec<_>>(), vec![1, 1, 1]);
        assert_eq!(shards[1].tokens, 80);
    }

    proptest! {
        #[test]
        fn shards_tile_the_input_and_respect_every_limit(
            lines in proptest::collection::vec((1u64..500, 1u64..300), 0..400),
            max_bytes in 1u64..3_000,
            max_requests in 1u64..50,
            max_tokens in 1u64..2_000,
        ) {
            let limits = ShardLimits { max_bytes, max_requests, max_tokens };
            let shards = plan(limits, &lines);
            let (mut line, mut offset) = (0u64, 0u64);
            for s in &shards {
                prop_assert_eq!(s.first_line, line);
                prop_assert_eq!(s.offset, offset);
                prop_assert!(s.requests >= 1);
                let own = &lines[line as usize..(line + s.requests) as usize];
                prop_assert_eq!(s.bytes, own.iter().map(|l| l.0).sum::<u64>());
                prop_assert_eq!(s.tokens, own.iter().map(|l| l.1).sum::<u64>());
                if s.requests > 1 {
                    prop_assert!(s.bytes <= max_bytes && s.tokens <= max_tokens && s.requests <= max_requests);
                }
                line += s.requests;
                offset += s.bytes;
            }
            prop_assert_eq!(line, lines.len() as u64);
            // Greedy: a shard closed only because the next line did not fit.
            for pair in shards.windows(2) {
                let next = lines[pair[1].first_line as usize];
                prop_assert!(pair[0].requests + 1 > max_requests
                    || pair[0].bytes + next.0 > max_bytes
                    || pair[0].tokens + next.1 > max_tokens);
            }
        }
    }
}
