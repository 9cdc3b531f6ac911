//! The OpenAPI document cannot drift (issue 22). Every answer the e2e suites
//! got from the worker (recorded by `batchgate_e2e::record`, run after them by
//! `cargo xtask test`) and every answer of this suite's own calls is held to
//! the document the worker serves at `GET /openapi.json`: its route and method
//! must be described, its status listed, its content type named, a JSON body
//! valid against the schema (a JSON Schema 2020-12 validator), an error's code
//! among the codes that answer lists; a JSON request the worker took must be
//! valid against the request body's schema. And a Python client generated
//! from the served document (openapi-python-client) runs a job through it.

use batchgate_e2e::python::{path, pytest, python, run};
use batchgate_e2e::record;
use batchgate_e2e::stack::{ACCOUNT, Stack, token};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;

const MODEL: &str = "gemini-2.5-flash";

/// A JSON pointer's escaping of one key.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

struct Spec {
    doc: Value,
    validators: HashMap<String, jsonschema::Validator>,
}

/// One recorded exchange, held to the document: the operation it was
/// (`METHOD /template status`), or what is wrong with it.
type Checked = Result<String, String>;

impl Spec {
    /// The described path `path` (as sent) is an instance of, and its operation for `method`.
    fn operation(&self, method: &str, path: &str) -> Option<(String, String)> {
        let sent: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, String)> = None;
        for template in self.doc["paths"].as_object()?.keys() {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != sent.len() {
                continue;
            }
            let fits = parts.iter().zip(&sent).all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s);
            let literal = parts.iter().filter(|t| !t.starts_with('{')).count();
            if fits && best.as_ref().is_none_or(|(n, _)| literal > *n) {
                best = Some((literal, template.clone()));
            }
        }
        let (_, template) = best?;
        let op = method.to_lowercase();
        self.doc["paths"][&template].get(&op)?;
        Some((template, op))
    }

    /// `pointer`'s value, following a `$ref` there.
    fn resolve(&self, pointer: String) -> Option<(String, &Value)> {
        let v = self.doc.pointer(&pointer)?;
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let to = r.trim_start_matches('#').to_string();
                self.doc.pointer(&to).map(|v| (to, v))
            }
            None => Some((pointer, v)),
        }
    }

    /// The problems of `instance` against the schema at `pointer`.
    fn invalid(&mut self, pointer: &str, instance: &Value) -> Vec<String> {
        if !self.validators.contains_key(pointer) {
            let mut root = self.doc.clone();
            root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
            // A fragment is a URI's: the braces of path templates are escaped.
            root["$ref"] = json!(format!("#{}", pointer.replace('{', "%7B").replace('}', "%7D")));
            match jsonschema::draft202012::new(&root) {
                Ok(v) => {
                    self.validators.insert(pointer.to_string(), v);
                }
                Err(e) => return vec![format!("the schema at {pointer} does not compile: {e}")],
            }
        }
        self.validators[pointer]
            .iter_errors(instance)
            .take(3)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    fn check(&mut self, x: &Value) -> Checked {
        let method = x["method"].as_str().unwrap_or_default();
        let path = x["path"].as_str().unwrap_or_default();
        let status = x["status"].as_u64().unwrap_or_default();
        let code = x["body"]["error"]["code"].as_str();
        let Some((template, op)) = self.operation(method, path) else {
            // The router's own refusals of what is not a route: probes, not the API.
            let probe = (status == 405 && code == Some("method_not_allowed"))
                || (status == 404
                    && x["body"]["error"]["message"].as_str().is_some_and(|m| m.starts_with("no route")));
            // `/gemini` is Google's API (the drop-in), documented by Google.
            let google = path.starts_with("/gemini/");
            return if probe || google || method == "OPTIONS" {
                Ok(format!("(not a route) {method}"))
            } else {
                Err(format!("{method} {path} answered {status}: a route the document lacks"))
            };
        };
        let name = format!("{} {template} {status}", op.to_uppercase());
        let at = format!("/paths/{}/{op}", escape(&template));
        let Some((answer_at, answer)) = self.resolve(format!("{at}/responses/{status}")) else {
            return Err(format!("{name}: the status is not documented ({})", x["body"]));
        };
        let answer = answer.clone();
        if let Some(codes) = answer.get("x-error-codes").and_then(Value::as_array) {
            let code = code.unwrap_or("(none)");
            let listed = codes.iter().filter_map(Value::as_str).any(|c| match c.strip_suffix('*') {
                Some(prefix) => code.starts_with(prefix),
                None => c == code,
            });
            if !listed {
                return Err(format!("{name}: error code {code} is not documented for it"));
            }
        }
        let kind = x["contentType"].as_str().unwrap_or_default().split(';').next().unwrap_or_default().trim();
        match answer.get("content").and_then(Value::as_object) {
            None if x.get("body").is_some() => {
                return Err(format!("{name}: documented empty, answered {kind}"));
            }
            None => {}
            Some(content) if content.contains_key(kind) => {
                if let Some(e) = x.get("notJson") {
                    return Err(format!("{name}: {kind} that is not JSON: {e}"));
                }
                if let Some(body) = x.get("body") {
                    let problems =
                        self.invalid(&format!("{answer_at}/content/{}/schema", escape(kind)), body);
                    if !problems.is_empty() {
                        return Err(format!("{name}: the answer does not fit its schema: {problems:?}"));
                    }
                }
            }
            // Binary answers (media) are typed as what they hold.
            Some(content) if content.contains_key("application/octet-stream") && !kind.contains("json") => {}
            Some(content) => {
                let named: Vec<&String> = content.keys().collect();
                return Err(format!("{name}: answered {kind:?}, the document names {named:?}"));
            }
        }
        // A body sent to a route that reads none is ignored, not taken.
        let pointer = format!("{at}/requestBody/content/application~1json/schema");
        if let Some(sent) = x.get("sent")
            && (200..300).contains(&status)
            && self.doc.pointer(&pointer).is_some()
        {
            let problems = self.invalid(&pointer, sent);
            if !problems.is_empty() {
                return Err(format!("{name}: took a body its schema refuses: {problems:?}"));
            }
        }
        Ok(name)
    }
}

/// Every exchange recorded so far, by every suite (one file per process).
fn recorded() -> Vec<Value> {
    let mut all = vec![];
    for entry in std::fs::read_dir(record::dir()).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        all.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
    }
    all
}

/// Calls of the main routes, so that this suite alone checks something.
async fn tour(s: &Stack) {
    for path in ["/healthz", "/openapi.json", "/v1/account", "/v1/account/ledger?limit=3", "/v1/jobs?limit=3"]
    {
        let (status, _) = s.get(path).await;
        assert_eq!(status, 200, "{path}");
    }
    let body =
        json!({"model": MODEL, "requests": batchgate_e2e::api::requests(2), "metadata": {"by": "openapi"}});
    let (status, estimate) = s.post_json("/v1/estimate", &body).await;
    assert_eq!(status, 200, "{estimate}");
    let (status, job) = s.submit(body, None).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap_or_default().to_string();
    s.wait_for(&id, 90, |j| j["resultsReady"] == true).await;
    let etag =
        s.http.get(s.url(&format!("/v1/jobs/{id}"))).send().await.map(|r| r.headers().get("etag").cloned());
    if let Ok(Some(etag)) = etag {
        let again = s.http.get(s.url(&format!("/v1/jobs/{id}"))).header("if-none-match", etag).send().await;
        assert_eq!(again.map(|r| r.status().as_u16()).ok(), Some(304));
    }
    for path in [format!("/v1/jobs/{id}/events"), format!("/v1/jobs/{id}/results/k0")] {
        let (status, v) = s.get(&path).await;
        assert_eq!(status, 200, "{path}: {v}");
    }
    let (status, _) = s.results(&id, "").await;
    assert_eq!(status, 200);
    let (status, v) = s.get(&format!("/v1/jobs/{}", "0".repeat(64))).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = s.post_json("/v1/jobs", &json!({"model": MODEL, "requests": [{"request": {}}]})).await;
    assert_eq!(status, 400, "{v}");
    // The one route no other suite calls: minting a token.
    let minted = s
        .http
        .post(s.url("/v1/admin/tokens"))
        .bearer_auth(batchgate_e2e::stack::ADMIN_TOKEN)
        .json(&json!({"account": "openapi-tour", "ttlSecs": 120}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(minted.ok(), Some(201));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler and the built worker: run through `cargo xtask test`"]
async fn every_answer_the_suites_got_is_one_the_served_openapi_document_describes() {
    let s = Stack::start(json!({}), &[]);
    let (status, doc) = s.get("/openapi.json").await;
    assert_eq!(status, 200, "{doc}");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );
    tour(&s).await;

    let mut spec = Spec { doc, validators: HashMap::new() };
    let exchanges = recorded();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    // Each problem once, with how often and one exchange that had it.
    let mut problems: BTreeMap<String, (usize, &Value)> = BTreeMap::new();
    for x in &exchanges {
        match spec.check(x) {
            Ok(name) => *seen.entry(name).or_default() += 1,
            Err(problem) => problems.entry(problem).or_insert((0, x)).0 += 1,
        }
    }
    let operations: BTreeSet<String> = seen
        .keys()
        .filter(|k| !k.starts_with("(not a route)"))
        .filter_map(|k| k.rsplit_once(' ').map(|(op, _)| op.to_string()))
        .collect();
    let described: Vec<String> = spec.doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(p, item)| {
            item.as_object().into_iter().flatten().map(move |(m, _)| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    let untouched: Vec<&String> = described.iter().filter(|d| !operations.contains(*d)).collect();
    eprintln!(
        "{} exchanges, {} operations of {} exercised; never called by a suite: {untouched:?}",
        exchanges.len(),
        operations.len(),
        described.len()
    );
    let listed: Vec<String> =
        problems.iter().take(40).map(|(p, (n, x))| format!("- ({n}×) {p}\n    e.g. {x}")).collect();
    assert!(problems.is_empty(), "answers the OpenAPI document does not describe:\n{}", listed.join("\n"));
    // `cargo xtask test` runs this after every suite: so many operations at least
    // (a recorder that recorded nothing must not pass as "no drift").
    let least: usize =
        std::env::var("BATCHGATE_OPENAPI_LEAST_OPERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(8);
    assert!(operations.len() >= least, "only {} operations were exercised: {operations:?}", operations.len());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs wrangler, the built worker and the test virtualenv: run through `cargo xtask test`"]
async fn a_python_client_generated_from_the_served_document_runs_a_job() {
    let s = Stack::start(json!({}), &[]);
    let answer = s.http.get(s.url("/openapi.json")).send().await.unwrap_or_else(|e| panic!("{e}"));
    let document = answer.bytes().await.unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let spec = dir.path().join("openapi.json");
    std::fs::write(&spec, &document).unwrap_or_else(|e| panic!("{e}"));

    let bin = python().parent().map(PathBuf::from).unwrap_or_default();
    let root = batchgate_e2e::process::workspace_root();
    run(
        Command::new(bin.join("openapi-python-client"))
            .args(["generate", "--meta", "none", "--overwrite", "--path"])
            .arg(&spec)
            .arg("--config")
            .arg(root.join("tests/python/openapi-client.yaml"))
            .arg("--output-path")
            .arg(dir.path().join("batchgate_client"))
            .env("PATH", path()),
        "openapi-python-client generate",
    );
    let (generated, url, token) = (dir.path().display().to_string(), s.url(""), token(ACCOUNT));
    pytest(
        "tests/python/test_generated_client.py",
        &[
            ("PYTHONPATH", &generated),
            ("BATCHGATE_URL", &url),
            ("BATCHGATE_TOKEN", &token),
            ("BATCHGATE_MODEL", MODEL),
        ],
    );
}
