//! CORS for browser callers: only the origins in `CORS_ORIGINS` (or `*`) get
//! CORS headers; a preflight from any other origin is answered without them,
//! so the browser refuses the call.

use crate::platform::config::Settings;
use worker::{Headers, Method, Request, Response, Result};

/// batchgate's own, then what Google's JS SDK sends to `/gemini` from a browser.
const ALLOW_HEADERS: &str = "authorization, content-type, content-range, idempotency-key, if-none-match, \
    x-goog-api-key, x-goog-api-client, x-goog-upload-protocol, x-goog-upload-command, x-goog-upload-offset, \
    x-goog-upload-header-content-length, x-goog-upload-header-content-type, x-goog-upload-file-name";
const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const EXPOSE_HEADERS: &str = "etag, location, retry-after, batchgate-cost, batchgate-call-id, batchgate-next-cursor, \
    batchgate-resume-cursor, x-goog-upload-url, x-goog-upload-status, x-goog-upload-size-received, \
    x-goog-upload-chunk-granularity";

/// The request's `Origin` when it is allowed.
pub fn allowed_origin(req: &Request, settings: &Settings) -> Option<String> {
    let origin = req.headers().get("origin").ok().flatten()?;
    settings.cors_origins.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(&origin)).then_some(origin)
}

/// An `OPTIONS` preflight's answer.
pub fn preflight(req: &Request, settings: &Settings) -> Option<Result<Response>> {
    if req.method() != Method::Options {
        return None;
    }
    Some(Response::empty().map(|r| r.with_status(204)).and_then(|resp| {
        if let Some(origin) = allowed_origin(req, settings) {
            let h = resp.headers();
            h.set("access-control-allow-methods", ALLOW_METHODS)?;
            h.set("access-control-allow-headers", ALLOW_HEADERS)?;
            h.set("access-control-max-age", "600")?;
            allow(h, &origin)?;
        }
        Ok(resp)
    }))
}

fn allow(h: &Headers, origin: &str) -> Result<()> {
    h.set("access-control-allow-origin", origin)?;
    h.set("vary", "origin")?;
    Ok(())
}

/// Add CORS headers to an answer for an allowed origin.
pub fn decorate(resp: Response, origin: Option<&str>) -> Result<Response> {
    let Some(origin) = origin else { return Ok(resp) };
    // Streamed bodies keep immutable headers; copy them into a fresh response.
    let headers = Headers::new();
    for (k, v) in resp.headers().entries() {
        headers.set(&k, &v)?;
    }
    allow(&headers, origin)?;
    headers.set("access-control-expose-headers", EXPOSE_HEADERS)?;
    Ok(resp.with_headers(headers))
}
