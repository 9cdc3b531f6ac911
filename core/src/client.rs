//! The SDK's client, sans-IO: what to send for each call and what an answer
//! means, written once for every transport. The browser SDK (`sdk/`, fetch and
//! WebSocket through wasm) and the command line (`cli/`) move the bytes; the
//! decisions are here, tested natively with scripted answers.
//!
//! - [`machine`]: the one protocol every call runs on: a machine says what it
//!   needs ([`machine::Io`]), a transport does it and replies;
//! - [`call`]: a request as data, and reading an answer into a value or a
//!   [`call::ClientError`];
//! - [`paths`]: the API's paths and queries;
//! - [`token`]: a token function asked once for concurrent calls, and once
//!   more after a 401;
//! - [`watch`]: a job's views over a WebSocket, reconnecting with backoff,
//!   `ETag` polling when the socket keeps dropping, and the socket tried again
//!   later;
//! - [`resume`]: uploads and job inputs sent in parts, resumed from what the
//!   server holds;
//! - [`submit`]: a job's requests checked and quoted locally, then sent inline
//!   or as an input's parts;
//! - [`lines`]: NDJSON result pages, split as they arrive;
//! - [`generate`]: one request answered now, whole or as server-sent events.

pub mod call;
pub mod generate;
pub mod lines;
pub mod machine;
pub mod paths;
pub mod resume;
pub mod submit;
pub mod token;
pub mod watch;
