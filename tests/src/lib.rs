//! batchgate-e2e: runs the real programs as separate processes and talks to them
//! over loopback HTTP, the way users and CI do.

pub mod api;
pub mod bench;
pub mod key_router;
pub mod process;
pub mod python;
pub mod record;
pub mod stack;
