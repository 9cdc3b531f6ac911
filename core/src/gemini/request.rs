//! `GenerateContentRequest` as the API accepts it: every field in camelCase or
//! snake_case, unknown fields refused. Shared by the worker (validating
//! submissions before anything is stored) and the emulator (answering as Google).

use serde_json::{Map, Value};

pub fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Read a field under its camelCase or snake_case name.
pub fn field<'a>(obj: &'a Value, camel_name: &str) -> Option<&'a Value> {
    obj.get(camel_name).or_else(|| obj.get(snake(camel_name).as_str()))
}

/// [`field`] on an object's map.
pub fn field_in<'a>(obj: &'a Map<String, Value>, camel_name: &str) -> Option<&'a Value> {
    obj.get(camel_name).or_else(|| obj.get(snake(camel_name).as_str()))
}

pub const GENERATE_CONTENT_REQUEST: &[&str] = &[
    "model",
    "contents",
    "tools",
    "toolConfig",
    "safetySettings",
    "systemInstruction",
    "generationConfig",
    "cachedContent",
    "serviceTier",
    "labels",
];

pub const GENERATION_CONFIG: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

const CONTENT: &[&str] = &["parts", "role"];

const PART: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "partMetadata",
    "mediaResolution",
];

/// The first field of `obj` not in `allowed`, as the client spelled it.
pub fn unknown_field<'a>(obj: &'a Map<String, Value>, allowed: &[&str]) -> Option<&'a str> {
    obj.keys().map(String::as_str).find(|k| *k != "@type" && !allowed.contains(&camel(k).as_str()))
}

/// No field may stand in both spellings (`fileData` and `file_data`): which one
/// Gemini reads is not ours to guess, and what is checked (a file's owner, the
/// `maxOutputTokens` written in) must be what Gemini reads.
pub fn one_spelling(obj: &Map<String, Value>, at: &str) -> Result<(), String> {
    match obj.keys().find(|k| k.contains('_') && obj.contains_key(&camel(k))) {
        Some(k) => Err(format!("{at} has both \"{k}\" and \"{}\"", camel(k))),
        None => Ok(()),
    }
}

/// Why a request is not a valid `GenerateContentRequest`, naming the field
/// path (`contents[0].parts[1]`).
pub fn validate(request: &Value) -> Result<(), String> {
    let obj = request.as_object().ok_or("request must be a JSON object")?;
    if let Some(k) = unknown_field(obj, GENERATE_CONTENT_REQUEST) {
        return Err(format!("unknown field \"{k}\" in request"));
    }
    one_spelling(obj, "request")?;
    let contents = field(request, "contents")
        .ok_or("request.contents is required")?
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or("request.contents must be a non-empty array")?;
    for (i, content) in contents.iter().enumerate() {
        check_content(content, &format!("contents[{i}]"))?;
    }
    if let Some(system) = field(request, "systemInstruction") {
        check_content(system, "systemInstruction")?;
    }
    if let Some(cfg) = field(request, "generationConfig") {
        let cfg_obj = cfg.as_object().ok_or("generationConfig must be an object")?;
        if let Some(k) = unknown_field(cfg_obj, GENERATION_CONFIG) {
            return Err(format!("unknown field \"{k}\" in generationConfig"));
        }
        one_spelling(cfg_obj, "generationConfig")?;
        if field(cfg, "maxOutputTokens").is_some_and(|m| m.as_u64().is_none_or(|m| m < 1)) {
            return Err("generationConfig.maxOutputTokens must be a positive integer".into());
        }
    }
    Ok(())
}

fn check_content(content: &Value, at: &str) -> Result<(), String> {
    let obj = content.as_object().ok_or_else(|| format!("{at} must be an object"))?;
    if let Some(k) = unknown_field(obj, CONTENT) {
        return Err(format!("unknown field \"{k}\" in {at}"));
    }
    one_spelling(obj, at)?;
    let parts = field(content, "parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| format!("{at}.parts must be a non-empty array"))?;
    for (j, part) in parts.iter().enumerate() {
        let p = part.as_object().ok_or_else(|| format!("{at}.parts[{j}] must be an object"))?;
        if p.is_empty() {
            return Err(format!("{at}.parts[{j}] is empty"));
        }
        if let Some(k) = unknown_field(p, PART) {
            return Err(format!("unknown field \"{k}\" in {at}.parts[{j}]"));
        }
        if field(part, "text").is_some_and(|t| !t.is_string()) {
            return Err(format!("{at}.parts[{j}].text must be a string"));
        }
    }
    Ok(())
}

/// The `fileData.fileUri` values a request references (ownership is checked at submit).
pub fn file_uris(request: &Value) -> Vec<&str> {
    let contents = field(request, "contents").and_then(Value::as_array).into_iter().flatten();
    contents
        .chain(field(request, "systemInstruction"))
        .flat_map(|c| field(c, "parts").and_then(Value::as_array).into_iter().flatten())
        .filter_map(|p| field(p, "fileData").and_then(|f| field(f, "fileUri")).and_then(Value::as_str))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spellings_convert_both_ways() {
        assert_eq!(snake("inputConfig"), "input_config");
        assert_eq!(camel("input_config"), "inputConfig");
    }

    #[test]
    fn valid_requests_in_either_spelling() {
        assert!(validate(&json!({"contents": [{"parts": [{"text": "hi"}], "role": "user"}]})).is_ok());
        assert!(validate(&json!({
            "contents": [{"parts": [{"file_data": {"file_uri": "u", "mime_type": "application/pdf"}}, {"text": "x"}]}],
            "system_instruction": {"parts": [{"text": "be brief"}]},
            "generation_config": {"max_output_tokens": 5, "response_mime_type": "application/json"}
        }))
        .is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!([]), "must be a JSON object"),
            (json!({}), "contents is required"),
            (json!({"contents": []}), "non-empty array"),
            (json!({"contents": [{"parts": [{"text": 1}]}]}), "contents[0].parts[0].text must be a string"),
            (json!({"contents": [{"parts": [{}]}]}), "contents[0].parts[0] is empty"),
            (
                json!({"contents": [{"parts": [{"txt": "a"}]}]}),
                "unknown field \"txt\" in contents[0].parts[0]",
            ),
            (
                json!({"contents": [{"parts": [{"text": "a"}]}], "temperature": 1}),
                "unknown field \"temperature\" in request",
            ),
            (
                json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"maxOutputTokens": 0}}),
                "maxOutputTokens",
            ),
            // Two spellings of one field: the checked one may not be the one Gemini reads.
            (
                json!({"contents": [{"parts": [{"text": "a"}]}], "systemInstruction": {"parts": [{"text": "b"}]},
                       "system_instruction": {"parts": [{"fileData": {"fileUri": "files/theirs"}}]}}),
                "request has both \"system_instruction\" and \"systemInstruction\"",
            ),
            (
                json!({"contents": [{"parts": [{"text": "a"}]}], "generationConfig": {"maxOutputTokens": 5},
                       "generation_config": {}}),
                "request has both",
            ),
            (
                json!({"contents": [{"parts": [{"text": "a"}]}],
                       "generationConfig": {"maxOutputTokens": 5, "max_output_tokens": 65536}}),
                "generationConfig has both \"max_output_tokens\" and \"maxOutputTokens\"",
            ),
        ];
        for (req, needle) in cases {
            let err = validate(&req).unwrap_err();
            assert!(err.contains(needle), "{err:?} should contain {needle:?}");
        }
    }

    #[test]
    fn file_uris_are_found_everywhere() {
        let r = json!({"contents": [{"parts": [{"fileData": {"fileUri": "a"}}]}, {"parts": [{"file_data": {"file_uri": "b"}}]}]});
        assert_eq!(file_uris(&r), vec!["a", "b"]);
    }
}
