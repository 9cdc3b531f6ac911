//! The OpenAPI 3.1 document of the public HTTP API, generated from the types
//! the worker serializes and reads (schemars derives, compiled only in tests)
//! and the route descriptions in `routes.rs`. `cargo test -p batchgate-worker
//! openapi` checks that `worker/openapi.json`, which the worker serves at
//! `GET /openapi.json` (`api/openapi.rs`), is exactly what they generate now,
//! and that every route of the route table is described; the e2e suite
//! `openapi_e2e` checks the worker's real answers against it.
//! `BATCHGATE_BLESS=1 cargo test -p batchgate-worker openapi` rewrites it.
//!
//! Compiled only for tests (never into the worker): `serde_json` indexing,
//! which panics on a non-object, is allowed here to build the document.
#![allow(clippy::indexing_slicing)]

mod routes;
#[cfg(test)]
mod tests;
pub mod types;

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::transform::ReplaceBoolSchemas;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The document, being built: two schema generators (answers are described
/// as the worker writes them, request bodies as it reads them: a field with a
/// default is always written but optional to send) and the paths.
pub struct Doc {
    answers: SchemaGenerator,
    requests: SchemaGenerator,
    paths: Map<String, Value>,
    /// Error answers by status and codes, each described once
    /// (`components/responses`) and referenced by every operation that has it.
    refusals: BTreeMap<(u16, BTreeSet<&'static str>), (String, Value)>,
}

fn settings() -> SchemaSettings {
    // `true` ("any JSON") is a schema in 3.1, but client generators choke on
    // it (openapi-python-client does): `{}` says the same.
    let mut any_as_object = ReplaceBoolSchemas::default();
    any_as_object.skip_additional_properties = true;
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .with_transform(any_as_object)
}

impl Doc {
    fn new() -> Doc {
        Doc {
            answers: settings().for_serialize().into_generator(),
            requests: settings().for_deserialize().into_generator(),
            paths: Map::new(),
            refusals: BTreeMap::new(),
        }
    }

    /// The schema of `T` as the worker writes it (a `$ref` for named types).
    pub fn out<T: JsonSchema>(&mut self) -> Value {
        self.answers.subschema_for::<T>().to_value()
    }

    /// The schema of `T` as the worker reads it.
    pub fn read<T: JsonSchema>(&mut self) -> Value {
        self.requests.subschema_for::<T>().to_value()
    }

    /// Describe `method path`.
    pub fn add(&mut self, method: &str, path: &str, op: Op) {
        let envelope = self.out::<crate::platform::error::Envelope>();
        let id = op.v["operationId"].as_str().unwrap_or_default().to_string();
        let mut v = op.v;
        for (status, codes) in op.errors {
            let next = format!("{id}{status}");
            let (name, _) = self.refusals.entry((status, codes)).or_insert_with_key(|(status, codes)| {
                (refusal_name(*status, codes, next), refusal(*status, codes, &envelope))
            });
            v["responses"][status.to_string()] = json!({"$ref": format!("#/components/responses/{name}")});
        }
        let Value::Object(item) = self.paths.entry(path).or_insert_with(|| json!({})) else { return };
        item.insert(method.to_lowercase(), Value::Object(v));
    }

    fn responses(&self) -> Map<String, Value> {
        self.refusals.values().map(|(name, answer)| (name.clone(), answer.clone())).collect()
    }

    fn schemas(&mut self) -> Map<String, Value> {
        let mut schemas = self.answers.take_definitions(true);
        for (name, schema) in self.requests.take_definitions(true) {
            // One name, one schema: a type read and written differently needs two names.
            let known = schemas.get(&name);
            assert!(known.is_none_or(|k| *k == schema), "{name} differs as written and as read");
            schemas.insert(name, schema);
        }
        schemas
    }
}

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq)]
pub enum Caller {
    /// A user's bearer JWT.
    User,
    /// The operator's admin token.
    Admin,
    /// Anyone (or a signature the route checks itself).
    Anyone,
}

/// One operation: built by chained calls, its error answers gathered by
/// status and finished by `Doc::add`.
pub struct Op {
    v: Map<String, Value>,
    errors: BTreeMap<u16, BTreeSet<&'static str>>,
}

impl Op {
    pub fn new(id: &str, tag: &str, summary: &str, caller: Caller) -> Op {
        let mut op = Op { v: Map::new(), errors: BTreeMap::new() };
        op.v.insert("operationId".into(), json!(id));
        op.v.insert("tags".into(), json!([tag]));
        op.v.insert("summary".into(), json!(summary));
        op.v.insert("responses".into(), json!({}));
        let security = match caller {
            Caller::User => json!([{"userToken": []}]),
            Caller::Admin => json!([{"adminToken": []}]),
            Caller::Anyone => json!([]),
        };
        op.v.insert("security".into(), security);
        op = op.errors(500, INTERNAL);
        match caller {
            Caller::User => op.errors(401, USER_401).errors(503, UNAVAILABLE),
            Caller::Admin => op.errors(401, ADMIN_401).errors(503, UNAVAILABLE),
            Caller::Anyone => op,
        }
    }

    pub fn describe(mut self, text: &str) -> Op {
        self.v.insert("description".into(), json!(text));
        self
    }

    fn param(mut self, place: &str, name: &str, required: bool, schema: Value, description: &str) -> Op {
        let p = json!({"name": name, "in": place, "required": required, "schema": schema, "description": description});
        if let Value::Array(ps) = self.v.entry("parameters").or_insert_with(|| json!([])) {
            ps.push(p);
        }
        self
    }

    pub fn path(self, name: &str, description: &str) -> Op {
        self.param("path", name, true, json!({"type": "string"}), description)
    }

    pub fn query(self, name: &str, schema: Value, description: &str) -> Op {
        self.param("query", name, false, schema, description)
    }

    pub fn header(self, name: &str, required: bool, description: &str) -> Op {
        self.param("header", name, required, json!({"type": "string"}), description)
    }

    /// A request body of `content_type` (called again for another type).
    pub fn body(mut self, content_type: &str, schema: Value, description: &str) -> Op {
        let body = self.v.entry("requestBody").or_insert_with(|| json!({"required": true, "content": {}}));
        body["content"][content_type] = json!({"schema": schema});
        if !description.is_empty() {
            body["description"] = json!(description);
        }
        self
    }

    /// A request body that may be left out.
    pub fn optional_body(mut self) -> Op {
        if let Some(body) = self.v.get_mut("requestBody") {
            body["required"] = json!(false);
        }
        self
    }

    /// A success answer (`content`: its type and schema; none for an empty body).
    pub fn answer(mut self, status: u16, description: &str, content: Option<(&str, Value)>) -> Op {
        let mut a = json!({"description": description});
        if let Some((kind, schema)) = content {
            a["content"] = json!({kind: {"schema": schema}});
        }
        self.v["responses"][status.to_string()] = a;
        self
    }

    /// Another content type `status`'s answer may come as.
    pub fn or_as(mut self, status: u16, kind: &str, schema: Value) -> Op {
        self.v["responses"][status.to_string()]["content"][kind] = json!({"schema": schema});
        self
    }

    /// A header `status`'s answer carries.
    pub fn answer_header(mut self, status: u16, name: &str, description: &str) -> Op {
        let a = &mut self.v["responses"][status.to_string()];
        a["headers"][name] = json!({"description": description, "schema": {"type": "string"}});
        self
    }

    /// Error answers: `status` with one of `codes` (`prefix*`: any code with
    /// that prefix) in the error envelope (see `refusal`).
    pub fn errors(mut self, status: u16, codes: &[&'static str]) -> Op {
        self.errors.entry(status).or_default().extend(codes);
        self
    }
}

/// What users see most: the refusals every user (or admin) route shares.
fn refusal_name(status: u16, codes: &BTreeSet<&str>, otherwise: String) -> String {
    let shared = |set: &[&str]| codes.len() == set.len() && set.iter().all(|c| codes.contains(c));
    match status {
        401 if shared(USER_401) => "Unauthorized".into(),
        401 if shared(ADMIN_401) => "AdminUnauthorized".into(),
        503 if shared(UNAVAILABLE) => "Unavailable".into(),
        500 if shared(INTERNAL) => "Internal".into(),
        _ => otherwise,
    }
}

/// `status` with one of `codes` (`prefix*`: any code with that prefix) in the
/// error envelope. The codes are listed in `x-error-codes`, which the drift
/// suite holds the worker's answers to; the schema stays the one envelope, so
/// generated clients get one error type.
fn refusal(status: u16, codes: &BTreeSet<&str>, envelope: &Value) -> Value {
    let listed: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    let mut a = json!({
        "description": format!("Refused: {}.", listed.join(", ")),
        "content": {"application/json": {"schema": envelope}},
        "x-error-codes": codes,
    });
    if [409, 429, 503].contains(&status) {
        a["headers"] = json!({"Retry-After": {
            "description": "Seconds to wait before trying again, when the refusal is temporary.",
            "schema": {"type": "string"},
        }});
    }
    a
}

const USER_401: &[&str] = &[
    "missing_token",
    "malformed_token",
    "unsupported_algorithm",
    "bad_signature",
    "token_expired",
    "token_not_yet_valid",
    "invalid_claims",
];
const ADMIN_401: &[&str] = &["missing_token", "bad_admin_token"];
const UNAVAILABLE: &[&str] = &["auth_not_configured", "misconfigured", "ledger_unavailable"];
const INTERNAL: &[&str] = &["internal", "internal_route"];

const DESCRIPTION: &str = "\
batchgate runs Gemini requests through Google's Batch API at half price: submit a job \
(JSON or NDJSON, or an input sent in resumable parts), watch it, read its results, and pay \
credits for the tokens Gemini really used. Every error answers \
`{\"error\": {\"code\", \"message\", \"details\"?}}` with the code documented per answer. \
Every route answers CORS preflights (`OPTIONS`) for the configured origins. Money is in \
micro-credits (integers). Ids of jobs, inputs and uploads are 64 hex characters; another \
account's id answers 404 as an unknown one does. Google's own SDKs talk to batchgate \
through `/gemini` (base URL `https://<worker>/gemini`, a batchgate token as the API key): \
those routes are Gemini's API as Google documents it, not described here.";

/// The whole document.
pub fn document() -> Value {
    let mut doc = Doc::new();
    routes::describe(&mut doc);
    let job_webhook = doc.out::<types::JobWebhook>();
    let responses = doc.responses();
    let mut schemas = doc.schemas();
    error_details(&mut doc, &mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "batchgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{"url": "/", "description": "The worker that serves this document."}],
        "security": [{"userToken": []}],
        "tags": [
            {"name": "jobs", "description": "Batch jobs: submit, watch, cancel, retry, delete."},
            {"name": "results", "description": "A job's results, whole, paged, failed only or by key."},
            {"name": "inputs", "description": "A job's NDJSON sent in resumable parts."},
            {"name": "files", "description": "Media files for requests (Gemini's Files API)."},
            {"name": "generate", "description": "The realtime lane: one call, at the standard price."},
            {"name": "account", "description": "Balance, ledger and the webhook secret."},
            {"name": "admin", "description": "The operator: grants, tokens, keys, quota."},
            {"name": "service", "description": "Health, this document and Gemini's webhooks."},
        ],
        "paths": doc.paths,
        "webhooks": {
            "jobEnded": {"post": {
                "summary": "A job ended and was charged",
                "description": "POSTed to the job's `webhook.url`, signed with the account's webhook secret (`GET /v1/account/webhook-secret`) per Standard Webhooks; retried with backoff until a 2xx.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": job_webhook}}},
                "responses": {"200": {"description": "Received (any 2xx)."}},
            }},
        },
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {
                "userToken": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "An HS256 JWT signed with the deployment's `JWT_SECRET`: `sub` is the account (1-128 of `A-Z a-z 0-9 . _ - @ : +`), `exp` is required, `nbf`, `iss` and `aud` are checked when set. `POST /v1/admin/tokens` mints one.",
                },
                "adminToken": {
                    "type": "http", "scheme": "bearer",
                    "description": "The operator's `ADMIN_TOKEN`.",
                },
            },
        },
    })
}

/// The error envelope's `details`: one of the shapes the codes carry.
fn error_details(doc: &mut Doc, schemas: &mut Map<String, Value>) {
    use crate::api::{generate, jobs, uploads};
    use crate::objects::{input, upload};
    let shapes = vec![
        doc.out::<crate::platform::body::Limit>(),
        doc.out::<jobs::submit::Invalid>(),
        doc.out::<jobs::open::KeyUsed>(),
        doc.out::<jobs::open::KeyInUse>(),
        doc.out::<jobs::open::Refused>(),
        doc.out::<uploads::QuotaUse>(),
        doc.out::<upload::protocol::Where>(),
        doc.out::<input::Where>(),
        doc.out::<input::UsedBy>(),
        doc.out::<input::Duplicate>(),
        doc.out::<generate::GeminiError>(),
    ];
    schemas.extend(doc.answers.take_definitions(true));
    if let Some(Value::Object(error)) = schemas.get_mut("Error")
        && let Some(Value::Object(props)) = error.get_mut("properties")
    {
        props.insert(
            "details".into(),
            json!({"description": "What the code is about, when it says more than its message (its shape depends on the code).", "anyOf": shapes}),
        );
    }
}
