//! The public HTTP API, one module per resource. Handlers read and check the
//! user's request (auth, query, body), call objects through their typed
//! clients and answer with typed JSON; they never touch SQLite.

pub mod account;
pub mod admin;
pub mod auth;
pub mod bench;
pub mod cors;
pub mod estimate;
pub mod files;
pub mod gemini;
pub mod generate;
pub mod hooks;
pub mod inputs;
pub mod jobs;
pub mod openapi;
pub mod results;
pub mod uploads;

use crate::platform::config::Settings;
use crate::platform::error::{ApiError, json_response};
use serde::Serialize;
use worker::{Env, Response};

/// What every handler works with: the bindings and the settings read for this request.
pub struct Ctx<'a> {
    pub env: &'a Env,
    /// The event's context: work that outlives the response (`wait_until`).
    pub ctx: &'a worker::Context,
    pub settings: &'a Settings,
    /// When the request's event began (ms since the epoch), for `Server-Timing`.
    pub arrived_ms: u64,
}

pub type Result<T> = std::result::Result<T, ApiError>;

/// A JSON answer with `status`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    Ok(json_response(status, serde_json::to_vec(body).map_err(|e| ApiError::internal(e.to_string()))?)?)
}

/// `200` with JSON an object made (see `rpc::forward`).
pub fn forwarded(json: Vec<u8>) -> Result<Response> {
    Ok(json_response(200, json)?)
}

/// A JSON answer, `200`.
pub fn ok<T: Serialize>(body: &T) -> Result<Response> {
    json(200, body)
}
