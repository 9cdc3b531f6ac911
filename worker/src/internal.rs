//! The worker ↔ Durable Object protocol: JSON over `stub.fetch`, with the
//! caller's account in a header so the object can refuse other accounts.

use crate::errors::ApiError;
use crate::job_store;
use batchgate_core::view::JobView;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use worker::{Headers, Method, Request, RequestInit, Response, Result, Stub};

pub const ACCOUNT_HEADER: &str = "x-batchgate-account";

pub fn json<T: Serialize>(v: &T) -> Result<Response> {
    Response::from_json(v)
}

/// A JSON body read by serde_json from its bytes, like every other JSON the
/// worker reads. (`worker`'s `Request::json` decodes through serde-wasm-bindgen
/// and `Response::json` from a `&str`: each a further copy of every type's
/// deserializer in the wasm.)
pub(crate) trait JsonBody {
    async fn body_json<T: DeserializeOwned>(&mut self) -> Result<T>;
}

impl JsonBody for Request {
    async fn body_json<T: DeserializeOwned>(&mut self) -> Result<T> {
        Ok(serde_json::from_slice(&self.bytes().await?)?)
    }
}

impl JsonBody for Response {
    async fn body_json<T: DeserializeOwned>(&mut self) -> Result<T> {
        Ok(serde_json::from_slice(&self.bytes().await?)?)
    }
}

#[derive(Serialize, Deserialize)]
pub struct Created {
    pub created: bool,
    pub view: JobView,
}

/// Why a job id can make no job any more: its job was deleted, or a submission
/// that reserved it never created it. An id makes one job, once.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    pub reason: String,
    pub at_ms: u64,
}

/// What a job id already is (`GET /prior`), asked before a submission claims it.
/// Externally tagged: serde reads it without buffering (see sql_rows).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Prior {
    Free,
    Live(Box<JobView>),
    /// Another account's job (an id collision): never shown.
    Taken,
    Gone(Tombstone),
}

/// `POST /abandon`: after an `/init` whose answer was lost, the object says
/// whether the job exists; if not, the id is tombstoned first, so a late
/// `/init` can never create the job after its reservation is released.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Abandoned {
    Abandoned,
    Exists(Box<JobView>),
}

/// What `POST /v1/jobs/:id/retry` needs from the parent JobObject.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryPlan {
    pub done: bool,
    pub model: String,
    pub input_key: Option<String>,
    pub display_name: Option<String>,
    pub metadata: Option<serde_json::Value>,
    /// Input keys without a successful result, in input order.
    pub keys: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct Located {
    pub ready: bool,
    pub line: Option<job_store::Located>,
}

#[derive(Serialize, Deserialize)]
pub struct Page {
    pub ready: bool,
    pub lines: Vec<job_store::Located>,
}

/// Call an object's internal route as `account`.
pub async fn call(
    stub: &Stub,
    method: Method,
    path: &str,
    account: &str,
    body: Option<String>,
) -> Result<Response> {
    let headers = Headers::new();
    headers.set(ACCOUNT_HEADER, account)?;
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers).with_body(body.map(Into::into));
    stub.fetch_with_request(Request::new_with_init(&format!("https://object{path}"), &init)?).await
}

/// Forward a streamed body (an upload chunk) to an object's route as
/// `account`, with the given headers.
pub async fn call_stream(
    stub: &Stub,
    method: Method,
    path: &str,
    account: &str,
    headers: &[(&str, String)],
    body: Option<wasm_bindgen::JsValue>,
) -> Result<Response> {
    let h = Headers::new();
    h.set(ACCOUNT_HEADER, account)?;
    for (k, v) in headers {
        h.set(k, v)?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h).with_body(body);
    stub.fetch_with_request(Request::new_with_init(&format!("https://object{path}"), &init)?).await
}

/// Call and decode a 200 answer; a 404 from the object is `None`.
pub async fn call_json<T: for<'de> Deserialize<'de>>(
    stub: &Stub,
    method: Method,
    path: &str,
    account: &str,
    body: Option<String>,
) -> std::result::Result<Option<T>, ApiError> {
    let mut resp =
        call(stub, method, path, account, body).await.map_err(|e| ApiError::internal(e.to_string()))?;
    match resp.status_code() {
        200 => resp.body_json().await.map(Some).map_err(|e| ApiError::internal(e.to_string())),
        404 => Ok(None),
        s => {
            let text = resp.text().await.unwrap_or_default();
            Err(ApiError::internal(format!("internal call {path} answered {s}: {text}")))
        }
    }
}
