//! batchgate-core: every rule of batchgate that can be stated without I/O.
//!
//! The worker, the SDK and the emulator are adapters around this crate: they move
//! bytes and call these functions, so everything here is testable natively and
//! deterministically (no clock, no network, no `worker` types).

pub mod auth;
pub mod body_cap;
pub mod client;
pub mod dropin;
pub mod gemini;
pub mod gemini_hook;
pub mod idempotency;
pub mod ingest;
pub mod input;
pub mod job;
pub mod json_shape;
pub mod jsonl;
pub mod keys;
pub mod lane;
pub mod ledger;
pub mod media;
pub mod model;
pub mod netguard;
pub mod paging;
pub mod pricing;
pub mod quota;
pub mod realtime;
pub mod results;
pub mod schedule;
pub mod shard;
pub mod submit;
pub mod timeline;
pub mod upload;
pub mod view;
pub mod webhook;
pub mod window;
