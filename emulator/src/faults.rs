//! Scriptable faults: "the next 2 calls to `POST /v1beta/models/*:batchGenerateContent`
//! answer 429", "downloads hang", "cut the results body after 1 MB", "the finalize
//! reply carries an error". Rules match on method and a `*` glob over the path.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FaultKind {
    /// Answer with this HTTP status and a Google error envelope instead of the
    /// real response (429 carries a `RetryInfo` when `retryDelaySecs` is set).
    #[serde(rename_all = "camelCase")]
    Status {
        status: u16,
        #[serde(default)]
        retry_delay_secs: Option<f64>,
    },
    /// Never answer (until `ms` passes, an hour by default): the client must time out.
    Hang {
        #[serde(default)]
        ms: Option<u64>,
    },
    /// Answer normally after a delay.
    Delay { ms: u64 },
    /// Do the work at once, answer after a delay: a caller that gives up in
    /// between never hears of what was done (a batch created, say).
    DelayAnswer { ms: u64 },
    /// Answer normally but cut the body after `bytes` and break the connection.
    Truncate { bytes: u64 },
    /// Reset the connection (TCP RST) once this many bytes of the *request*
    /// body have arrived (or the whole body, if shorter), before answering: a
    /// peer that dies while the client is still sending (0: as soon as the
    /// request head is read).
    ResetRequest { bytes: u64 },
    /// Answer, then reset the connection (TCP RST) after this many bytes of
    /// the response body (or the whole body, if shorter): the client never
    /// sees the answer end.
    ResetResponse { bytes: u64 },
    /// Answer normally but send the body at most this fast.
    #[serde(rename_all = "camelCase")]
    Slow { bytes_per_sec: u64 },
    /// The upload finalize answers 200 with `{"error": ...}` instead of `{"file": ...}`.
    FinalizeError {
        #[serde(default)]
        message: Option<String>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    #[serde(default)]
    pub id: u64,
    /// HTTP method, or `*`.
    #[serde(default = "any")]
    pub method: String,
    /// Glob over the request path; `*` matches anything, `/` included.
    pub path: String,
    /// Only calls with this `X-Goog-Upload-Command` (`start`, `upload`,
    /// `upload, finalize`, `query`…): tells a resumable upload's steps apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_command: Option<String>,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Let this many matching calls through first.
    #[serde(default)]
    pub skip: u32,
    /// Fire this many times (forever when absent).
    #[serde(default)]
    pub times: Option<u32>,
    /// Calls that matched so far (fired or skipped).
    #[serde(default)]
    pub matched: u32,
    #[serde(default)]
    pub fired: u32,
}

fn any() -> String {
    "*".into()
}

#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultRule>,
    next_id: u64,
}

impl Faults {
    pub fn add(&mut self, mut rule: FaultRule) -> u64 {
        self.next_id += 1;
        rule.id = self.next_id;
        rule.matched = 0;
        rule.fired = 0;
        self.rules.push(rule);
        self.next_id
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }

    pub fn clear(&mut self) {
        self.rules.clear();
    }

    pub fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.id != id);
        self.rules.len() != before
    }

    /// The fault to apply to this call, if any; `finalize` selects only
    /// `FinalizeError` rules (which the upload handler asks for) and otherwise
    /// they are ignored.
    pub fn take(
        &mut self,
        method: &str,
        path: &str,
        command: Option<&str>,
        finalize: bool,
    ) -> Option<FaultKind> {
        let words = |c: &str| c.split(',').map(|w| w.trim().to_ascii_lowercase()).collect::<Vec<_>>();
        for rule in &mut self.rules {
            let is_finalize = matches!(rule.kind, FaultKind::FinalizeError { .. });
            if is_finalize != finalize
                || !(rule.method == "*" || rule.method.eq_ignore_ascii_case(method))
                || !glob(&rule.path, path)
                || rule.upload_command.as_deref().is_some_and(|want| command.map(words) != Some(words(want)))
            {
                continue;
            }
            if rule.times.is_some_and(|t| rule.fired >= t) {
                continue;
            }
            rule.matched += 1;
            if rule.matched <= rule.skip {
                continue;
            }
            rule.fired += 1;
            return Some(rule.kind.clone());
        }
        None
    }
}

/// `*` matches any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else { return text.is_empty() };
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(
            "/v1beta/models/*:batchGenerateContent",
            "/v1beta/models/gemini-2.5-flash:batchGenerateContent"
        ));
        assert!(glob("*", "/anything/at/all"));
        assert!(glob("/v1beta/batches/*", "/v1beta/batches/abc"));
        assert!(!glob("/v1beta/batches/*", "/v1beta/files/abc"));
        assert!(glob("*:download", "/download/v1beta/files/x:download"));
        assert!(!glob("/a*b*c", "/a-c-b"));
        assert!(glob("/exact", "/exact") && !glob("/exact", "/exact/more"));
    }

    #[test]
    fn skip_then_fire_a_bounded_number_of_times() {
        let mut f = Faults::default();
        f.add(FaultRule {
            id: 0,
            method: "GET".into(),
            path: "/v1beta/batches/*".into(),
            upload_command: None,
            kind: FaultKind::Status { status: 503, retry_delay_secs: None },
            skip: 1,
            times: Some(2),
            matched: 0,
            fired: 0,
        });
        let hits: Vec<bool> =
            (0..5).map(|_| f.take("GET", "/v1beta/batches/x", None, false).is_some()).collect();
        assert_eq!(hits, vec![false, true, true, false, false]);
        assert!(f.take("POST", "/v1beta/batches/x", None, false).is_none());
    }

    #[test]
    fn an_upload_command_tells_the_steps_of_an_upload_apart() {
        let mut f = Faults::default();
        let rule: FaultRule = serde_json::from_value(serde_json::json!({"method": "POST",
            "path": "/upload/v1beta/files", "uploadCommand": "upload, finalize", "kind": "status", "status": 500}))
        .unwrap();
        f.add(rule);
        let path = "/upload/v1beta/files";
        assert!(f.take("POST", path, Some("start"), false).is_none());
        assert!(f.take("POST", path, Some("upload"), false).is_none());
        assert!(f.take("POST", path, None, false).is_none());
        assert!(f.take("POST", path, Some("Upload,Finalize"), false).is_some());
    }
}
