//! `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the
//! worker's types by its tests (`src/openapi/`) and served as committed.

use worker::{Response, Result};

const DOCUMENT: &str = include_str!("../../openapi.json");

pub fn serve() -> Result<Response> {
    let mut resp = Response::ok(DOCUMENT)?;
    let headers = resp.headers_mut();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "public, max-age=300")?;
    Ok(resp)
}
