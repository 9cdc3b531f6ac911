//! A result line's outcome read from parsed JSON, for callers that already
//! hold a `serde_json::Value` (the SDK's `resultCost`). It answers as
//! [`scan_with_serde`](super::scan_with_serde) does, field by field: a typed
//! serde read would bring serde's error formatting (with float printing,
//! ~20 KB) into the SDK's wasm.

use super::{Outcome, Usage};
use serde_json::Value;

/// `RawUsage`'s fields in its order (serde reads an array by position).
const FIELDS: [&str; 8] = [
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
    "promptTokensDetails",
    "cacheTokensDetails",
];

/// A struct's fields as serde's derive reads them: from an object by name
/// (others ignored), or from an array by position; `None` when missing.
fn raw_fields<'a, const N: usize>(v: &'a Value, names: [&str; N]) -> Option<[Option<&'a Value>; N]> {
    match v {
        Value::Object(o) => Some(names.map(|k| o.get(k))),
        Value::Array(a) if a.len() <= N => Some(std::array::from_fn(|i| a.get(i))),
        _ => None,
    }
}

/// The same for `Option` fields, which read `null` as absent.
fn fields<'a, const N: usize>(v: &'a Value, names: [&str; N]) -> Option<[Option<&'a Value>; N]> {
    raw_fields(v, names).map(|f| f.map(|f| f.filter(|f| !f.is_null())))
}

fn malformed(why: &str) -> Outcome {
    Outcome::Malformed(why.to_string())
}

/// The outcome of one result line: its usage, its error, or why it is malformed.
pub fn outcome_of(line: &Value) -> Outcome {
    let Some([key, metadata, response, error]) = fields(line, ["key", "metadata", "response", "error"])
    else {
        return malformed("a result line is a JSON object");
    };
    let key_ok = |k: Option<&Value>| k.is_none_or(Value::is_string);
    let metadata_ok = metadata.is_none_or(|m| fields(m, ["key"]).is_some_and(|[k]| key_ok(k)));
    if !key_ok(key) || !metadata_ok {
        return malformed("key must be a string");
    }
    match (response, error) {
        (Some(response), None) => {
            usage(response).map_or_else(|| malformed("unreadable usageMetadata"), Outcome::Success)
        }
        (None, Some(error)) => error_of(error).unwrap_or_else(|| malformed("unreadable error")),
        _ => malformed("a result line has exactly one of response or error"),
    }
}

fn usage(response: &Value) -> Option<Usage> {
    let [metadata] = fields(response, ["usageMetadata"])?;
    let Some(metadata) = metadata else { return Some(Usage::default()) };
    // Counts are plain integers; a `null` one is refused, as serde refuses it.
    let [counts @ .., prompt_details, cache_details] = raw_fields(metadata, FIELDS)?;
    let mut n = [0u64; 6];
    for (count, v) in n.iter_mut().zip(counts) {
        if let Some(v) = v {
            *count = v.as_u64()?;
        }
    }
    let [prompt, candidates, thoughts, cached, tool_use_prompt, total] = n;
    let read = |d: Option<&Value>| d.filter(|d| !d.is_null()).map(super::audio_in);
    let audio_prompt = super::audio_of(read(prompt_details), prompt);
    let audio_cached = super::audio_of(read(cache_details), cached);
    Some(Usage { prompt, candidates, thoughts, cached, tool_use_prompt, total, audio_prompt, audio_cached })
}

fn error_of(error: &Value) -> Option<Outcome> {
    // Plain fields with defaults: missing is the default, `null` is refused.
    let [code, message] = raw_fields(error, ["code", "message"])?;
    let code = match code {
        None => 0,
        Some(c) => i32::try_from(c.as_i64()?).ok()?,
    };
    let message = match message {
        None => String::new(),
        Some(m) => m.as_str()?.to_string(),
    };
    Some(Outcome::Error { code, message })
}

#[cfg(test)]
mod tests {
    use super::super::scan_with_serde;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Same variant, and the same usage or error when it is not malformed.
    fn agree(line: &[u8]) {
        let by_serde = scan_with_serde(line).outcome;
        let Ok(value) = serde_json::from_slice::<Value>(line) else {
            return assert!(matches!(by_serde, Outcome::Malformed(_)));
        };
        match (outcome_of(&value), by_serde) {
            (Outcome::Malformed(_), Outcome::Malformed(_)) => {}
            (mine, theirs) => assert_eq!(mine, theirs, "{}", String::from_utf8_lossy(line)),
        }
    }

    #[test]
    fn answers_as_serde_on_every_shape() {
        for line in [
            &br#"{"key":"a","response":{"usageMetadata":{"promptTokenCount":10,"cachedContentTokenCount":4,"candidatesTokenCount":3,"thoughtsTokenCount":2,"toolUsePromptTokenCount":1,"totalTokenCount":20}}}"#[..],
            br#"{"key":"a","response":{}}"#,
            br#"{"key":"a","response":{"usageMetadata":null}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":null}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":"12"}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":-1}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":1.0}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":1e3}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"totalTokenCount":99999999999999999999}}}"#,
            br#"{"key":"a","response":{"usageMetadata":[]}}"#,
            br#"{"key":"a","response":null,"error":{"code":3}}"#,
            br#"{"key":"a","response":{},"error":{}}"#,
            br#"{"key":"a"}"#,
            br#"{"key":7,"response":{}}"#,
            br#"{"metadata":{"key":"m"},"response":{}}"#,
            br#"{"metadata":{"key":1},"response":{}}"#,
            br#"{"metadata":"x","response":{}}"#,
            br#"{"error":{"code":3,"message":"bad part"},"key":"a"}"#,
            br#"{"error":{"code":"3"},"key":"a"}"#,
            br#"{"error":{"code":9999999999},"key":"a"}"#,
            br#"{"error":{"message":4},"key":"a"}"#,
            br#"{"error":{}}"#,
            br#"{"error":"boom"}"#,
            br#"{"key":"a","response":{"usageMetadata":[1,2]}}"#,
            br#"{"key":"a","response":{"usageMetadata":[1,2,3,4,5,6,7]}}"#,
            br#"{"key":"a","response":{"usageMetadata":[1,2,3,4,5,6,[["AUDIO",4]],null]}}"#,
            br#"{"key":"a","response":{"usageMetadata":[1,2,3,4,5,6,7,8,9]}}"#,
            // Per-modality counts: audio is summed, other modalities and shapes serde reads are not.
            br#"{"key":"a","response":{"usageMetadata":{"promptTokenCount":9,"promptTokensDetails":[{"modality":"AUDIO","tokenCount":5},{"modality":"TEXT","tokenCount":4},{"modality":"AUDIO","tokenCount":1}],"cacheTokensDetails":[{"modality":"AUDIO","tokenCount":2}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":null,"cacheTokensDetails":[]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[{"modality":null,"tokenCount":3},{"tokenCount":2},{"modality":"AUDIO"},{}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[["AUDIO",7]]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":{"modality":"AUDIO"}}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[{"modality":1,"tokenCount":3}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[{"modality":"AUDIO","tokenCount":null}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[{"modality":"AUDIO","tokenCount":"3"}]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[null]}}}"#,
            br#"{"key":"a","response":{"usageMetadata":{"promptTokensDetails":[["AUDIO",1,2]]}}}"#,
            br#"{"key":"a","response":[{"totalTokenCount":5}]}"#,
            br#"{"key":"a","error":[3,"positional"]}"#,
            br#"["a",null,{}]"#,
            b"[1,2]",
            b"7",
        ] {
            agree(line);
        }
    }

    proptest! {
        #[test]
        fn agrees_with_serde_on_generated_lines(
            counts in proptest::collection::vec(0u64..u64::MAX, 6),
            code in any::<i64>(),
            text in ".{0,20}",
            shape in 0u8..4,
        ) {
            let mut usage: serde_json::Map<String, Value> =
                FIELDS.iter().zip(&counts).map(|(k, n)| (k.to_string(), json!(n))).collect();
            usage.insert("promptTokensDetails".into(), json!([{"modality": "AUDIO", "tokenCount": counts[0] / 2}, {"modality": "TEXT", "tokenCount": 1}]));
            let line = match shape {
                0 => json!({"key": text, "response": {"usageMetadata": usage}}),
                1 => json!({"key": text, "error": {"code": code, "message": text}}),
                2 => json!({"metadata": {"key": text}, "response": {"usageMetadata": usage, "x": [1, 2.5]}}),
                _ => json!({"key": text, "response": {"usageMetadata": usage}, "error": {"code": code}}),
            };
            agree(&serde_json::to_vec(&line).unwrap());
        }
    }
}
