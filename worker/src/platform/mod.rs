//! The edges of the runtime: the clock, randomness, bindings and storage keys,
//! SQLite rows, the query and body readers, configuration, the one error
//! shape, and Gemini over `fetch`. Nothing here knows a route or an object.

pub mod bindings;
pub mod body;
pub mod clock;
pub mod config;
pub mod error;
pub mod gemini;
pub mod gemini_files;
pub mod query;
pub mod random;
pub mod sql_rows;
