//! Checking a job's requests before anything is stored: every line is parsed and
//! validated, keys are assigned where missing and must be unique, and the
//! normalized input JSONL (`{"key", "request"}` per line, as Gemini reads it) is
//! produced line by line so a 100 MB submission never sits in memory whole.

use crate::gemini::request;
use crate::pricing::{EstimateRules, Tokens};
use crate::shard::{Planner, ShardLimits, ShardSpec};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_requests: u64,
    pub max_key_bytes: usize,
    /// Errors reported in one answer (the count of all of them is kept).
    pub max_reported_errors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_requests: 100_000, max_key_bytes: 256, max_reported_errors: 50 }
    }
}

/// One refused line: its 1-based number in the submission and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

#[derive(Debug)]
pub struct Validator {
    limits: Limits,
    keys: HashSet<String>,
    order: Vec<String>,
    count: u64,
    errors: Vec<LineError>,
    error_count: u64,
    rules: EstimateRules,
    /// The job's model (a line may not name another) and its output limit.
    model: Option<String>,
    output_limit: u64,
    tokens: Tokens,
    files: Vec<(u64, String)>,
    file_lines: BTreeMap<u64, Tokens>,
    /// The hosts a `fileUri` given as a URL may name (none: any; the worker
    /// names Gemini's, the client leaves it to the worker).
    file_hosts: Option<Vec<String>>,
    shards: Planner,
    /// The same input cut for the realtime lane (small shards, each answered in one step).
    realtime: Option<Planner>,
}

/// A valid submission's facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    /// Keys in submission order.
    pub keys: Vec<String>,
    /// Estimated tokens of all requests (what the reservation is priced on).
    pub tokens: Tokens,
    /// Uploaded files the requests use, `(line, files/{id})`, to check ownership.
    pub files: Vec<(u64, String)>,
    /// The estimates of the lines that use files (before their files' sizes
    /// join them: `pricing::growth_with_files`).
    pub file_lines: BTreeMap<u64, Tokens>,
    /// The Gemini batches the job is split into (one unless it is over a limit).
    pub shards: Vec<ShardSpec>,
    /// The shards it runs as in the realtime lane (when planned:
    /// `with_realtime_shards`), cut at every batch boundary too.
    pub realtime_shards: Vec<ShardSpec>,
}

/// A request the validator accepted (its key is the last of the job's keys).
#[derive(Debug)]
pub struct Accepted {
    pub request: Value,
    /// Its estimated tokens (already added to the job's).
    pub tokens: Tokens,
}

/// Key given to a line that has none.
/// The longest display name a job (or a file) may have, in bytes: it is in
/// every view and listing, so it is bounded like the rest of a job's record.
pub const MAX_DISPLAY_NAME_BYTES: usize = 512;

/// A display name within [`MAX_DISPLAY_NAME_BYTES`], or why not.
pub fn check_display_name(name: Option<&str>) -> Result<(), String> {
    match name {
        Some(n) if n.len() > MAX_DISPLAY_NAME_BYTES => {
            Err(format!("displayName is {} bytes; at most {MAX_DISPLAY_NAME_BYTES}", n.len()))
        }
        _ => Ok(()),
    }
}

pub fn assigned_key(line: u64) -> String {
    format!("line-{line}")
}

/// Only the standard tier is priced: Google bills `priority` 75–100 % above
/// it, and what `flex` saves is not this product's to guess. Any spelling of
/// standard (`standard`, `SERVICE_TIER_STANDARD`, unspecified) passes.
fn check_service_tier(tier: &Value) -> Result<(), String> {
    let name = tier.as_str().ok_or("request.serviceTier must be a string")?.to_ascii_lowercase();
    match name.strip_prefix("service_tier_").unwrap_or(&name) {
        "standard" | "unspecified" => Ok(()),
        _ => Err(format!(
            "unpriced_field: request.serviceTier {tier} is billed apart from the standard price and has no price here; leave it out"
        )),
    }
}

/// Media parts are read one way only, so what is checked is what Gemini gets:
/// a part names `fileData` or `inlineData` in one spelling, with only their
/// own fields, each in one spelling; a `fileUri` is a Gemini file in canonical
/// form (`files/{id}`, or `http(s)://host/v1beta|v1/files/{id}`), so its
/// ownership can be checked; anything else Gemini would fetch and bill
/// unseen (a video link) is refused.
pub(crate) fn check_media_parts(req: &Value, file_hosts: Option<&[String]>) -> Result<(), String> {
    let system = request::field(req, "systemInstruction");
    let contents = request::field(req, "contents").and_then(Value::as_array).into_iter().flatten();
    for (i, content) in contents.chain(system).enumerate() {
        let parts = request::field(content, "parts").and_then(Value::as_array).into_iter().flatten();
        for (j, part) in parts.enumerate() {
            let at = format!("contents[{i}].parts[{j}]");
            let Some(obj) = part.as_object() else { continue };
            request::one_spelling(obj, &at)?;
            for (name, allowed) in
                [("fileData", &["mimeType", "fileUri"][..]), ("inlineData", &["mimeType", "data"][..])]
            {
                let Some(data) = request::field(part, name) else { continue };
                let d = data.as_object().ok_or_else(|| format!("{at}.{name} must be an object"))?;
                request::one_spelling(d, &format!("{at}.{name}"))?;
                if let Some(k) = request::unknown_field(d, allowed) {
                    return Err(format!("unknown field \"{k}\" in {at}.{name}"));
                }
            }
            if let Some(uri) = request::field(part, "fileData").and_then(|d| request::field(d, "fileUri")) {
                let uri = uri.as_str().ok_or_else(|| format!("{at}.fileData.fileUri must be a string"))?;
                if crate::upload::canonical_file_name(uri).is_none() {
                    return Err(format!(
                        "{at}.fileData.fileUri {uri:?} is not an uploaded file (files/{{id}}); upload media with POST /v1/files"
                    ));
                }
                if let (Some(host), Some(hosts)) = (crate::upload::uri_host(uri), file_hosts)
                    && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
                {
                    return Err(format!(
                        "{at}.fileData.fileUri {uri:?} names a host that is not Gemini's; write files/{{id}}"
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Validator {
    pub fn new(limits: Limits) -> Validator {
        Validator {
            limits,
            keys: HashSet::new(),
            order: vec![],
            count: 0,
            errors: vec![],
            error_count: 0,
            rules: EstimateRules::default(),
            model: None,
            output_limit: crate::model::DEFAULT_OUTPUT_LIMIT,
            tokens: Tokens::default(),
            files: vec![],
            file_lines: BTreeMap::new(),
            file_hosts: None,
            shards: Planner::new(ShardLimits {
                max_bytes: u64::MAX,
                max_requests: u64::MAX,
                max_tokens: u64::MAX,
            }),
            realtime: None,
        }
    }

    /// Also cut the job for the realtime lane, within these limits.
    pub fn with_realtime_shards(mut self, limits: ShardLimits) -> Validator {
        self.realtime = Some(Planner::new(limits));
        self
    }

    /// Split the job into batches within these limits (one batch otherwise).
    pub fn with_shards(mut self, limits: ShardLimits) -> Validator {
        self.shards = Planner::new(limits);
        self
    }

    /// The job's model: a line's own `model` must be this one, and
    /// `maxOutputTokens` may not pass its limit.
    pub fn with_model(mut self, model: &str) -> Validator {
        self.output_limit = crate::model::output_limit(model);
        self.model = Some(crate::model::bare(model).to_string());
        self
    }

    /// A `fileUri` written as a URL must name one of these hosts (`host[:port]`):
    /// a file id under any other host is not the file whose owner was checked.
    pub fn with_file_hosts(mut self, hosts: Vec<String>) -> Validator {
        self.file_hosts = Some(hosts);
        self
    }

    /// Estimate tokens with these rules (the default otherwise).
    pub fn with_estimate(mut self, rules: EstimateRules) -> Validator {
        self.rules = rules;
        self
    }

    fn refuse(&mut self, line: u64, message: String) {
        self.error_count += 1;
        if self.errors.len() < self.limits.max_reported_errors {
            self.errors.push(LineError { line, message });
        }
    }

    /// An NDJSON line: `{"key"?: string, "request": GenerateContentRequest}`.
    pub fn line(&mut self, line: u64, bytes: &[u8]) -> Option<Vec<u8>> {
        let item = self.parse_line(line, bytes)?;
        self.item(line, item)
    }

    /// An NDJSON line parsed, unless it is not JSON or would cost too much
    /// to parse (`json_shape`); either is refused, counted and named.
    pub fn parse_line(&mut self, line: u64, bytes: &[u8]) -> Option<Value> {
        let parsed =
            crate::json_shape::check(bytes, crate::json_shape::MAX_LINE_COST, "the line").and_then(|()| {
                serde_json::from_slice::<Value>(bytes).map_err(|e| format!("not valid JSON: {e}"))
            });
        match parsed {
            Ok(v) => Some(v),
            Err(why) => {
                self.refuse(line, why);
                None
            }
        }
    }

    /// One request object (a line, or an element of `requests` in a JSON body).
    /// Returns the normalized input line (with its newline) when valid.
    pub fn item(&mut self, line: u64, item: Value) -> Option<Vec<u8>> {
        let Accepted { request, tokens } = self.check(line, item)?;
        let key = self.order.last()?;
        let mut out = serde_json::to_vec(&json!({"key": key, "request": request})).ok()?;
        out.push(b'\n');
        let closed = self.shards.closed();
        self.shards.push(out.len() as u64, tokens.input);
        if let Some(r) = &mut self.realtime {
            // Every batch boundary is a realtime one: a shard that falls back maps onto pieces.
            if self.shards.closed() > closed {
                r.cut();
            }
            r.push(out.len() as u64, tokens.input);
        }
        Some(out)
    }

    /// Check a lone `GenerateContentRequest` (a realtime call) as line 1 of a job.
    pub fn request(&mut self, request: Value) -> Option<Accepted> {
        self.check(1, json!({ "request": request }))
    }

    /// Check one request object and count it (its key, tokens and files),
    /// without producing its input line: all a quote needs (the SDK's
    /// `estimate`, whose wasm then carries no JSON writer).
    pub fn check(&mut self, line: u64, item: Value) -> Option<Accepted> {
        self.count += 1;
        if self.count > self.limits.max_requests {
            if self.count == self.limits.max_requests + 1 {
                let max = self.limits.max_requests;
                self.refuse(line, format!("more than {max} requests in one job"));
            }
            return None;
        }
        let Value::Object(mut obj) = item else {
            self.refuse(line, "each line must be a JSON object {\"key\", \"request\"}".into());
            return None;
        };
        if let Some(k) = obj.keys().find(|k| *k != "key" && *k != "request") {
            let k = k.clone();
            self.refuse(line, format!("unknown field \"{k}\" (expected \"key\" and \"request\")"));
            return None;
        }
        let key = match obj.remove("key") {
            None | Some(Value::Null) => assigned_key(line),
            Some(Value::String(k)) if k.is_empty() => {
                self.refuse(line, "key must not be empty".into());
                return None;
            }
            Some(Value::String(k)) if k.len() > self.limits.max_key_bytes => {
                self.refuse(line, format!("key is longer than {} bytes", self.limits.max_key_bytes));
                return None;
            }
            Some(Value::String(k)) => k,
            Some(_) => {
                self.refuse(line, "key must be a string".into());
                return None;
            }
        };
        // Keys are claimed before the request is checked, so a duplicate is
        // reported even when the first use of the key was itself invalid.
        if !self.keys.insert(key.clone()) {
            self.refuse(line, format!("duplicate key \"{key}\""));
            return None;
        }
        let Some(req) = obj.remove("request") else {
            self.refuse(line, "\"request\" is required".into());
            return None;
        };
        let mut req = req;
        if let Err(e) = request::validate(&req).and_then(|()| self.bound(&mut req)) {
            self.refuse(line, e);
            return None;
        }
        let tokens = self.rules.request(&req);
        self.tokens.add(&tokens);
        let files = crate::upload::referenced_files(&req);
        if !files.is_empty() {
            self.file_lines.insert(line, tokens);
        }
        self.files.extend(files.into_iter().map(|f| (line, f)));
        self.order.push(key);
        Some(Accepted { request: req, tokens })
    }

    /// Make the reservation a ceiling on what the request can cost: it runs on
    /// the job's model, uses no tool or cache that is billed beyond its tokens,
    /// and carries `maxOutputTokens` (the user's, within the model's limit, or
    /// the default cap written in), which bounds candidates and thinking
    /// together at Gemini.
    fn bound(&self, req: &mut Value) -> Result<(), String> {
        if let (Some(own), Some(job)) = (request::field(req, "model"), &self.model) {
            let own = own.as_str().ok_or("request.model must be a string")?;
            if crate::model::bare(own) != job {
                return Err(format!(
                    "model_mismatch: request.model {own:?} is not the job's model {job:?} (a job runs one model)"
                ));
            }
        }
        check_media_parts(req, self.file_hosts.as_deref())?;
        if request::field(req, "cachedContent").is_some() {
            return Err("unpriced_field: request.cachedContent cannot be priced before it runs; send the content itself".into());
        }
        if let Some(tier) = request::field(req, "serviceTier") {
            check_service_tier(tier)?;
        }
        if let Some(tools) = request::field(req, "tools") {
            let tools = tools.as_array().ok_or("request.tools must be an array")?;
            for (i, tool) in tools.iter().enumerate() {
                let obj = tool.as_object().ok_or_else(|| format!("request.tools[{i}] must be an object"))?;
                if let Some(k) = request::unknown_field(obj, &["functionDeclarations"]) {
                    return Err(format!(
                        "unpriced_tool: request.tools[{i}].{k} is billed beyond its tokens and has no price here"
                    ));
                }
            }
        }
        let limit = self.output_limit;
        let model = self.model.as_deref().unwrap_or("this model");
        let obj = req.as_object_mut().ok_or("request must be a JSON object")?;
        let cfg_key =
            if obj.contains_key("generation_config") { "generation_config" } else { "generationConfig" };
        let cfg = obj.entry(cfg_key).or_insert_with(|| json!({}));
        let cfg = cfg.as_object_mut().ok_or("generationConfig must be an object")?;
        if let Some(n) = request::field_in(cfg, "candidateCount")
            && !n.as_u64().is_some_and(|n| (1..=crate::model::MAX_CANDIDATES).contains(&n))
        {
            return Err(format!(
                "generationConfig.candidateCount must be an integer from 1 to {}",
                crate::model::MAX_CANDIDATES
            ));
        }
        match request::field_in(cfg, "maxOutputTokens").map(|m| m.as_u64()) {
            Some(Some(n)) if n > limit => Err(format!(
                "generationConfig.maxOutputTokens {n} is above {model}'s output limit of {limit}"
            )),
            Some(_) => Ok(()),
            None => {
                let key =
                    if cfg_key == "generation_config" { "max_output_tokens" } else { "maxOutputTokens" };
                cfg.insert(key.into(), json!(self.rules.default_max_output_tokens.min(limit)));
                Ok(())
            }
        }
    }

    /// A line the splitter refused (too long).
    pub fn unreadable(&mut self, line: u64, message: String) {
        self.count += 1;
        self.refuse(line, message);
    }

    /// The verdict, with every key in order when the submission is valid.
    pub fn finish(self) -> Result<Summary, (u64, Vec<LineError>)> {
        if self.count == 0 {
            return Err((1, vec![LineError { line: 0, message: "the job has no requests".into() }]));
        }
        if self.error_count > 0 {
            return Err((self.error_count, self.errors));
        }
        Ok(Summary {
            count: self.count,
            keys: self.order,
            tokens: self.tokens,
            files: self.files,
            file_lines: self.file_lines,
            shards: self.shards.finish(),
            realtime_shards: self.realtime.map(Planner::finish).unwrap_or_default(),
        })
    }
}

/// The key of a normalized line produced by [`Validator::item`].
pub fn key_of(normalized: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct K {
        key: String,
    }
    serde_json::from_slice::<K>(normalized).ok().map(|k| k.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_line(key: Option<&str>) -> Vec<u8> {
        let req = json!({"contents": [{"parts": [{"text": "hi"}]}]});
        let v = match key {
            Some(k) => json!({"key": k, "request": req}),
            None => json!({"request": req}),
        };
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn valid_lines_are_normalized_and_keys_assigned() {
        let mut v = Validator::new(Limits::default());
        let a = v.line(1, &ok_line(Some("a"))).unwrap();
        let b = v.line(2, &ok_line(None)).unwrap();
        assert_eq!(key_of(&a).as_deref(), Some("a"));
        assert_eq!(key_of(&b).as_deref(), Some("line-2"));
        assert!(a.ends_with(b"\n"));
        let summary = v.finish().unwrap();
        assert_eq!(summary.keys, vec!["a", "line-2"]);
        // "hi" is one token each; no maxOutputTokens, so the default cap each.
        let cap = EstimateRules::default().default_max_output_tokens;
        assert_eq!(
            summary.tokens,
            Tokens { input: 2, cached_input: 0, output: 2 * cap, ..Default::default() }
        );
    }

    #[test]
    fn shards_cover_the_emitted_input_byte_for_byte() {
        let limits = ShardLimits { max_bytes: u64::MAX, max_requests: 3, max_tokens: u64::MAX };
        let realtime = ShardLimits { max_requests: 2, ..limits };
        let mut v = Validator::new(Limits::default()).with_shards(limits).with_realtime_shards(realtime);
        let mut input = vec![];
        for n in 1..=7 {
            input.extend(v.line(n, &ok_line(None)).unwrap());
        }
        let summary = v.finish().unwrap();
        let shards = summary.shards;
        assert_eq!(shards.iter().map(|s| s.requests).collect::<Vec<_>>(), vec![3, 3, 1]);
        let cut = |s: &[ShardSpec]| s.iter().map(|s| (s.offset, s.bytes)).collect::<Vec<_>>();
        let rt = &summary.realtime_shards;
        assert_eq!(
            rt.iter().map(|s| s.requests).collect::<Vec<_>>(),
            vec![2, 1, 2, 1, 1],
            "cut at 2 and at each batch's end"
        );
        assert_eq!(
            rt.iter().map(|s| s.bytes).sum::<u64>(),
            input.len() as u64,
            "the realtime cut tiles it too"
        );
        assert_eq!(cut(&rt[..1]).first().map(|c| c.0), Some(0));
        let last = shards.last().unwrap();
        assert_eq!(last.offset + last.bytes, input.len() as u64);
        // Each shard starts at a line boundary, with the line it claims.
        for s in &shards {
            let at = &input[s.offset as usize..];
            assert_eq!(
                key_of(at.split(|b| *b == b'\n').next().unwrap()),
                Some(format!("line-{}", s.first_line + 1))
            );
        }
    }

    #[test]
    fn every_bad_line_is_named() {
        let mut v = Validator::new(Limits::default());
        v.line(1, &ok_line(Some("a")));
        v.line(2, &ok_line(Some("a")));
        v.line(3, b"{nope");
        v.line(4, br#"{"key":"b","request":{"contents":[]}}"#);
        v.line(5, br#"{"key":"c","request":{"contents":[{"parts":[{"text":"x"}]}]},"extra":1}"#);
        v.line(6, br#"{"key":7,"request":{}}"#);
        let (count, errors) = v.finish().unwrap_err();
        assert_eq!(count, 5);
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(errors[0].message.contains("duplicate key \"a\""));
        assert!(errors[2].message.contains("contents"));
        let mut v = Validator::new(Limits::default());
        v.line(1, br#"{"key":"x","request":{}}"#);
        v.line(2, br#"{"key":"x","request":{}}"#);
        let (_, again) = v.finish().unwrap_err();
        assert!(again[1].message.contains("duplicate"), "reported although line 1 was invalid too");
    }

    #[test]
    fn a_line_too_costly_to_parse_is_refused_unparsed() {
        // 1.4 MB of tiny objects in the schema: about 100 times that parsed.
        let schema = format!("[{}]", vec![r#"{"":0}"#; 200_000].join(","));
        let line = format!(r#"{{"request":{{"contents":[{{"parts":[{{"text":"x"}}]}}],"tools":{schema}}}}}"#);
        let mut v = Validator::new(Limits::default());
        assert_eq!(v.line(1, &ok_line(None)).map(|_| ()), Some(()));
        assert_eq!(v.line(2, line.as_bytes()), None);
        let (_, errors) = v.finish().unwrap_err();
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("the line would take about"), "{}", errors[0].message);
    }

    #[test]
    fn limits_hold() {
        let mut v = Validator::new(Limits { max_requests: 2, max_key_bytes: 3, max_reported_errors: 1 });
        v.line(1, &ok_line(Some("long-key")));
        v.line(2, &ok_line(Some("a")));
        v.line(3, &ok_line(Some("b")));
        let (count, errors) = v.finish().unwrap_err();
        assert_eq!(count, 2, "the long key and the third request");
        assert_eq!(errors.len(), 1, "only max_reported_errors are listed");
        assert!(Validator::new(Limits::default()).finish().is_err(), "an empty job is refused");
    }

    fn one(v: &mut Validator, request: Value) -> Result<Value, String> {
        let n = v.count + 1;
        match v.item(n, json!({"request": request})) {
            Some(line) => Ok(serde_json::from_slice::<Value>(&line).unwrap_or_default()["request"].clone()),
            None => Err(v.errors.last().map(|e| e.message.clone()).unwrap_or_default()),
        }
    }

    fn flash() -> Validator {
        Validator::new(Limits::default()).with_model("models/gemini-2.5-flash")
    }

    /// Issue 17: `maxOutputTokens: i64::MAX` made the quote wrap negative.
    #[test]
    fn max_output_tokens_above_the_models_limit_is_refused_naming_it() {
        let mut v = flash();
        let e = one(&mut v, json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": i64::MAX}})).unwrap_err();
        assert!(e.contains("maxOutputTokens 9223372036854775807") && e.contains("65536"), "{e}");
        assert!(one(&mut v, json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 65_536}})).is_ok());
        let mut old = Validator::new(Limits::default()).with_model("gemini-2.0-flash-001");
        assert!(one(&mut old, json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 8_193}})).is_err());
    }

    /// Issue 17: a line without `maxOutputTokens` reserved 8,192 output tokens
    /// but Gemini could produce up to the model's limit; now the cap it was
    /// priced at is written into the request Gemini gets, in its own spelling.
    #[test]
    fn every_request_carries_the_output_cap_it_was_priced_at() {
        let mut v = flash();
        let cap = EstimateRules::default().default_max_output_tokens;
        let sent = one(&mut v, json!({"contents": [{"parts": [{"text": "hi"}]}]})).unwrap_or_default();
        assert_eq!(sent["generationConfig"]["maxOutputTokens"], cap);
        let snake = one(
            &mut v,
            json!({"contents": [{"parts": [{"text": "hi"}]}], "generation_config": {"temperature": 0.5}}),
        )
        .unwrap_or_default();
        assert_eq!(snake["generation_config"]["max_output_tokens"], cap);
        assert!(snake.get("generationConfig").is_none(), "one spelling only: {snake}");
        let own = one(
            &mut v,
            json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 10}}),
        )
        .unwrap_or_default();
        assert_eq!(own["generationConfig"]["maxOutputTokens"], 10);
        let summary = v.finish().unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(summary.tokens.output, 2 * cap + 10);
    }

    /// Issue 17: `candidateCount` was ignored; each candidate may use the whole cap.
    #[test]
    fn each_candidate_is_reserved_the_whole_cap() {
        let mut v = flash();
        assert!(one(&mut v, json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 100, "candidateCount": 3}})).is_ok());
        for bad in [json!(0), json!(9), json!("2"), json!(1.5)] {
            let e = one(&mut v, json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"candidateCount": bad}})).unwrap_err();
            assert!(e.contains("candidateCount"), "{e}");
        }
        assert_eq!(v.finish().map_err(|e| e.0).map(|s| s.tokens.output), Err(4));
        let mut ok = flash();
        let _ = one(
            &mut ok,
            json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 100, "candidateCount": 3}}),
        );
        assert_eq!(ok.finish().map(|s| s.tokens.output).ok(), Some(300));
    }

    /// Issue 17: a line's own `model` ran a costlier model at the job's price.
    #[test]
    fn a_line_may_not_name_another_model() {
        let mut v = flash();
        let e =
            one(&mut v, json!({"model": "models/gemini-2.5-pro", "contents": [{"parts": [{"text": "hi"}]}]}))
                .unwrap_err();
        assert!(e.starts_with("model_mismatch") && e.contains("gemini-2.5-pro"), "{e}");
        assert!(
            one(
                &mut v,
                json!({"model": "models/gemini-2.5-flash", "contents": [{"parts": [{"text": "hi"}]}]})
            )
            .is_ok()
        );
        assert!(one(&mut v, json!({"model": 7, "contents": [{"parts": [{"text": "hi"}]}]})).is_err());
    }

    /// Issue 17: search grounding and code execution were never priced.
    #[test]
    fn tools_billed_beyond_tokens_are_refused_and_declarations_are_counted() {
        let mut v = flash();
        for tool in [json!({"googleSearch": {}}), json!({"code_execution": {}}), json!({"urlContext": {}})] {
            let e =
                one(&mut v, json!({"contents": [{"parts": [{"text": "hi"}]}], "tools": [tool]})).unwrap_err();
            assert!(e.starts_with("unpriced_tool"), "{e}");
        }
        let e = one(
            &mut v,
            json!({"contents": [{"parts": [{"text": "hi"}]}], "cachedContent": "cachedContents/x"}),
        )
        .unwrap_err();
        assert!(e.starts_with("unpriced_field"), "{e}");
        for tier in ["priority", "SERVICE_TIER_PRIORITY", "flex", "Priority"] {
            let req = json!({"contents": [{"parts": [{"text": "hi"}]}], "serviceTier": tier});
            let e = one(&mut v, req).unwrap_err();
            assert!(e.starts_with("unpriced_field: request.serviceTier"), "{tier}: {e}");
        }
        let e =
            one(&mut v, json!({"contents": [{"parts": [{"text": "hi"}]}], "service_tier": 2})).unwrap_err();
        assert!(e.contains("serviceTier must be a string"), "{e}");
        let mut ok = flash();
        for tier in ["standard", "SERVICE_TIER_STANDARD", "SERVICE_TIER_UNSPECIFIED"] {
            let req = json!({"contents": [{"parts": [{"text": "hi"}]}], "serviceTier": tier});
            assert!(one(&mut ok, req).is_ok(), "{tier}");
        }
        let decl =
            json!({"functionDeclarations": [{"name": "lookup_weather", "description": "x".repeat(400)}]});
        assert!(one(&mut ok, json!({"contents": [{"parts": [{"text": "hi"}]}], "tools": [decl]})).is_ok());
        assert!(
            ok.finish().map(|s| s.tokens.input).unwrap_or_default() > 100,
            "declarations count as prompt"
        );
    }

    /// Issue 17: `fileData` in two spellings, with unknown keys or a
    /// non-canonical URI was half-checked (ownership read one spelling, Gemini
    /// perhaps the other).
    #[test]
    fn media_parts_are_read_one_way_only() {
        let part = |p: Value| json!({"contents": [{"parts": [{"text": "see"}, p]}]});
        let mut v = flash();
        for (bad, says) in [
            (json!({"fileData": {"fileUri": "files/abc"}, "file_data": {"file_uri": "files/other"}}), "both"),
            (json!({"fileData": {"fileUri": "files/abc", "file_uri": "files/other"}}), "both"),
            (json!({"fileData": {"fileUri": "files/abc", "displayName": "x"}}), "unknown field"),
            (json!({"fileData": {"fileUri": "Files/abc"}}), "not an uploaded file"),
            (json!({"fileData": {"fileUri": "files%2Fabc"}}), "not an uploaded file"),
            (json!({"fileData": {"fileUri": "files/abc?alt=media"}}), "not an uploaded file"),
            (
                json!({"fileData": {"fileUri": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}}),
                "not an uploaded file",
            ),
            (json!({"inlineData": {"mimeType": "image/png", "data": "", "extra": 1}}), "unknown field"),
        ] {
            let e = one(&mut v, part(bad.clone())).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        for good in [
            json!({"fileData": {"fileUri": "files/abc-123", "mimeType": "application/pdf"}}),
            json!({"file_data": {"file_uri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}),
            json!({"fileData": {"fileUri": "http://127.0.0.1:8765/v1/files/abc"}}),
        ] {
            assert!(one(&mut v, part(good.clone())).is_ok(), "{good}");
        }
        assert_eq!(
            crate::upload::canonical_file_name("https://x/v1beta/files/abc"),
            Some("files/abc".into())
        );
        assert_eq!(crate::upload::canonical_file_name("https://x/upload/v1beta/files/abc"), None);
    }

    /// A URL naming one of the account's file ids under another host passed the
    /// ownership check, and Gemini would have been sent the other host's URL.
    #[test]
    fn a_file_url_must_name_gemini_s_host() {
        let part =
            |uri: &str| json!({"contents": [{"parts": [{"text": "see"}, {"fileData": {"fileUri": uri}}]}]});
        let hosts = vec!["generativelanguage.googleapis.com".to_string(), "127.0.0.1:8765".to_string()];
        let mut v = flash().with_file_hosts(hosts);
        for good in [
            "files/abc",
            "https://generativelanguage.googleapis.com/v1beta/files/abc",
            "https://GenerativeLanguage.googleapis.com/v1/files/abc",
            "http://127.0.0.1:8765/v1beta/files/abc",
        ] {
            assert!(one(&mut v, part(good)).is_ok(), "{good}");
        }
        for bad in [
            "https://evil.example/v1beta/files/abc",
            "https://generativelanguage.googleapis.com.evil.example/v1beta/files/abc",
            "http://127.0.0.1:9999/v1beta/files/abc",
            "https://user@generativelanguage.googleapis.com/v1beta/files/abc",
        ] {
            let e = one(&mut v, part(bad)).unwrap_err();
            assert!(e.contains("not Gemini's"), "{bad}: {e}");
        }
    }
}
