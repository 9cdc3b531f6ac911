//! The one way a user's request body is read whole: through a byte cap that is
//! checked before buffering. A declared `Content-Length` above the cap is
//! refused before a byte is read; a body without one (chunked) is read chunk
//! by chunk and stopped at the cap. Either way: 413 `body_too_large`. Without
//! it the platform would buffer up to its own limit (100 MB) before any check,
//! on routes as open as `POST /hooks/gemini`.

use super::error::ApiError;
use batchgate_core::body_cap::Cap;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use worker::Request;

/// Small JSON control bodies: sessions, grants, tokens, Gemini's events.
pub const SMALL: u64 = 64 * 1024;

#[derive(serde::Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Limit {
    limit: u64,
}

fn too_large(what: &str, cap: u64) -> ApiError {
    ApiError::new(413, "body_too_large", format!("{what} is at most {cap} bytes"))
        .with_details(Limit { limit: cap })
}

/// The body's bytes, at most `cap` of them; `what` names the body in errors.
pub async fn read(req: &mut Request, cap: u64, what: &str) -> Result<Vec<u8>, ApiError> {
    let declared: Option<u64> =
        req.headers().get("content-length").ok().flatten().and_then(|v| v.trim().parse().ok());
    let mut count = Cap::new(cap, declared).map_err(|_| too_large(what, cap))?;
    let Ok(mut stream) = req.stream() else {
        // No body at all.
        return Ok(Vec::new());
    };
    let mut bytes = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request("unreadable_body", format!("{what} broke off: {e}")))?;
        count.take(chunk.len()).map_err(|_| too_large(what, cap))?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A JSON body of at most `cap` bytes; a body that is not `T` is 400
/// `invalid_json` with serde's account of where (`expected` says what fits).
pub async fn json<T: DeserializeOwned>(
    req: &mut Request,
    cap: u64,
    what: &str,
    expected: &str,
) -> Result<T, ApiError> {
    let bytes = read(req, cap, what).await?;
    parse_cost_ok(&bytes, what)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("expected {expected}: {e}")))
}

/// A JSON body about to be parsed whole, unless parsed it would take more
/// memory than a worker can spare (413 `json_too_complex`; core's `json_shape`).
pub fn parse_cost_ok(bytes: &[u8], what: &str) -> Result<(), ApiError> {
    batchgate_core::json_shape::check(bytes, batchgate_core::json_shape::MAX_BODY_COST, what)
        .map_err(|why| ApiError::new(413, "json_too_complex", why))
}
