//! The transport of the worker ↔ Durable Object protocol. Each object's
//! `protocol.rs` states its requests as types, and [`Rpc`] ties each one to
//! its route and its reply type; both the object and its client use them, so
//! no internal call is built by hand. A call POSTs the request's JSON to its
//! route with the caller's account in a header. The object answers 200 with
//! the reply's JSON, 404 when it holds nothing for that account (the caller's
//! "no such job"), or an error envelope that reaches the caller as the same
//! [`ApiError`]. A route the object does not know is 500 `internal_route`:
//! a mistyped internal call is our bug, never a user's 404.

use crate::platform::bindings;
use crate::platform::error::{ApiError, json_response};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Result, Stub};

/// The account a call acts for; objects holding one account's data refuse others.
const ACCOUNT_HEADER: &str = "x-batchgate-account";
/// A WebSocket open is a GET, which has no body: its request travels here.
const REQUEST_HEADER: &str = "x-batchgate-request";

/// A request whose few fields travel as a JSON array: serde reads a tuple
/// with far less code than a struct's named fields, and the worker's wasm
/// carries every reader (these requests were query strings before they were
/// types). `tuple_wire!(Name { a: A, b: B })` beside
/// `#[serde(from = "(A, B)", into = "(A, B)")]` on the struct.
macro_rules! tuple_wire {
    ($name:ident { $($field:ident: $ty:ty),+ $(,)? }) => {
        impl From<($($ty,)+)> for $name {
            fn from(($($field,)+): ($($ty,)+)) -> Self {
                $name { $($field),+ }
            }
        }

        impl From<$name> for ($($ty,)+) {
            fn from(v: $name) -> Self {
                ($(v.$field,)+)
            }
        }
    };
}

pub(crate) use tuple_wire;

/// An object's route table: each request type, its route and its reply type.
macro_rules! routes {
    ($($request:ty => $route:literal, $reply:ty;)+) => {
        $(impl $crate::objects::rpc::Rpc for $request {
            const ROUTE: &'static str = $route;
            type Reply = $reply;
        })+
    };
}

pub(crate) use routes;

/// One request of an object's protocol.
pub trait Rpc: Serialize + DeserializeOwned {
    /// Where the object serves it (stated once, in the protocol module).
    const ROUTE: &'static str;
    type Reply: Serialize + DeserializeOwned;
}

/// The request for `route`: JSON in the body, or (`upgrade`) in a header.
fn request(method: Method, account: &str, route: &str, json: String, upgrade: bool) -> Result<Request> {
    let headers = Headers::new();
    headers.set(ACCOUNT_HEADER, account)?;
    let mut init = RequestInit::new();
    if upgrade {
        headers.set("upgrade", "websocket")?;
        headers.set(REQUEST_HEADER, &json)?;
    } else {
        headers.set("content-type", "application/json")?;
        init.with_body(Some(json.into()));
    }
    init.with_method(method).with_headers(headers);
    Request::new_with_init(&format!("https://object{route}"), &init)
}

fn failed(route: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("internal call {route} failed: {e}"))
}

/// What a call answered: the reply's bytes (200), `None` (404), or the object's error.
pub type Raw = std::result::Result<Option<Vec<u8>>, ApiError>;

/// Send `body` as `account`; `None` when the object has nothing for that account.
pub async fn call<R: Rpc>(
    stub: &Stub,
    account: &str,
    body: &R,
) -> std::result::Result<Option<R::Reply>, ApiError> {
    let json = encode(body)?;
    decode::<R>(exchange(stub, account, R::ROUTE, json).await)
}

/// Send `body` as `account` and keep the reply as JSON, for a caller that
/// only passes it on to the user (no reader of `R::Reply` is compiled in for it).
pub async fn forward<R: Rpc>(stub: &Stub, account: &str, body: &R) -> Raw {
    exchange(stub, account, R::ROUTE, encode(body)?).await
}

/// A request's JSON. The generic steps of a call are these two plain
/// functions; the exchange between them is one boxed future, so a request
/// type costs the wasm its serde code and not another copy of the exchange.
pub fn encode<R: Rpc>(body: &R) -> std::result::Result<String, ApiError> {
    serde_json::to_string(body).map_err(|e| failed(R::ROUTE, e))
}

/// The reply in `raw`, as `R`'s reply type.
pub fn decode<R: Rpc>(raw: Raw) -> std::result::Result<Option<R::Reply>, ApiError> {
    match raw? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| failed(R::ROUTE, e)),
        None => Ok(None),
    }
}

/// One call to `route` with `json` as `account`.
pub fn exchange<'a>(
    stub: &'a Stub,
    account: &'a str,
    route: &'static str,
    json: String,
) -> LocalBoxFuture<'a, Raw> {
    Box::pin(async move {
        let req = request(Method::Post, account, route, json, false).map_err(|e| failed(route, e))?;
        let mut resp = stub.fetch_with_request(req).await.map_err(|e| failed(route, e))?;
        let status = resp.status_code();
        let bytes = resp.bytes().await.map_err(|e| failed(route, e))?;
        match status {
            200 => Ok(Some(bytes)),
            404 => Ok(None),
            _ => {
                let retry_after =
                    resp.headers().get("retry-after").ok().flatten().and_then(|v| v.parse().ok());
                Err(ApiError::from_envelope(status, &bytes, retry_after).unwrap_or_else(|| {
                    ApiError::internal(format!(
                        "internal call {route} answered {status}: {}",
                        String::from_utf8_lossy(&bytes)
                    ))
                }))
            }
        }
    })
}

/// Open the object's WebSocket route `R` as `account`: its answer as it came
/// (101 with the socket, or a refusal).
pub async fn open_socket<R: Rpc>(
    stub: &Stub,
    account: &str,
    body: &R,
) -> std::result::Result<Response, ApiError> {
    let json = serde_json::to_string(body).map_err(|e| failed(R::ROUTE, e))?;
    let req = request(Method::Get, account, R::ROUTE, json, true).map_err(|e| failed(R::ROUTE, e))?;
    stub.fetch_with_request(req).await.map_err(|e| failed(R::ROUTE, e))
}

/// One object, by the id users know it by. Every call acts for an account,
/// and an object that holds nothing for that account is "no {kind} {id}", the
/// same 404 as an id that was never one of ours.
pub struct ObjectRef {
    stub: Stub,
    id: String,
    kind: &'static str,
}

impl ObjectRef {
    /// The object a user named (`kind`: what users call it, for messages).
    pub fn named(
        env: &Env,
        namespace: &str,
        kind: &'static str,
        id: &str,
    ) -> std::result::Result<ObjectRef, ApiError> {
        match bindings::by_id(env, namespace, id)? {
            Some(stub) => Ok(ObjectRef { stub, id: id.to_string(), kind }),
            None => Err(ApiError::not_found(format!("no {kind} {id}"))),
        }
    }

    /// The object `name` derives: the same name, the same object.
    pub fn derived(
        env: &Env,
        namespace: &str,
        kind: &'static str,
        name: &str,
    ) -> std::result::Result<ObjectRef, ApiError> {
        let namespace = bindings::namespace(env, namespace)?;
        let id = namespace.id_from_name(name)?;
        Ok(ObjectRef { id: id.to_string(), stub: id.get_stub()?, kind })
    }

    /// An object never used before.
    pub fn fresh(env: &Env, namespace: &str, kind: &'static str) -> std::result::Result<ObjectRef, ApiError> {
        let namespace = bindings::namespace(env, namespace)?;
        let id = namespace.unique_id()?;
        Ok(ObjectRef { id: id.to_string(), stub: id.get_stub()?, kind })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn not_found(&self) -> ApiError {
        ApiError::not_found(format!("no {} {}", self.kind, self.id))
    }

    /// Ask as `account`.
    pub async fn ask<R: Rpc>(&self, account: &str, request: &R) -> std::result::Result<R::Reply, ApiError> {
        call(&self.stub, account, request).await?.ok_or_else(|| self.not_found())
    }

    /// Ask as `account` and keep the reply as JSON, to pass on to the user.
    pub async fn forward<R: Rpc>(
        &self,
        account: &str,
        request: &R,
    ) -> std::result::Result<Vec<u8>, ApiError> {
        forward(&self.stub, account, request).await?.ok_or_else(|| self.not_found())
    }

    /// Open the object's WebSocket route `R` as `account`.
    pub async fn socket<R: Rpc>(
        &self,
        account: &str,
        request: &R,
    ) -> std::result::Result<Response, ApiError> {
        open_socket(&self.stub, account, request).await
    }
}

/// A call as its object receives it.
pub struct Incoming {
    route: String,
    account: String,
    body: Vec<u8>,
}

impl Incoming {
    /// The call in `req`, its (small, JSON) request read whole.
    pub async fn of(mut req: Request) -> Result<Incoming> {
        let account = req.headers().get(ACCOUNT_HEADER)?.unwrap_or_default();
        let body = match req.headers().get(REQUEST_HEADER)? {
            Some(header) => header.into_bytes(),
            None => req.bytes().await?,
        };
        Ok(Incoming { route: req.path(), account, body })
    }

    pub fn route(&self) -> &str {
        &self.route
    }

    /// The account the caller acts for ("" for the worker's own calls).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The request, as the route's type.
    pub fn read<R: Rpc>(&self) -> Result<R> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// The object's answer to an `R`.
pub fn reply<R: Rpc>(answer: std::result::Result<R::Reply, ApiError>) -> Result<Response> {
    match answer {
        Ok(reply) => json_response(200, serde_json::to_vec(&reply)?),
        Err(e) => e.into_response(),
    }
}

/// What `object` answers: its route's response, or a 500 naming what failed
/// (a storage error, say) — never a hung request.
pub fn answer(object: &str, routed: Result<Response>) -> Result<Response> {
    routed.or_else(|e| ApiError::internal(format!("{object} object: {e}")).into_response())
}

/// The answer to a route the object does not serve.
pub fn unknown_route(object: &str, route: &str) -> Result<Response> {
    ApiError::new(500, "internal_route", format!("the {object} object has no route {route}")).into_response()
}
