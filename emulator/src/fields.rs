//! proto3 JSON leniency: every field may come in camelCase or snake_case, and a
//! field the message does not have is a 400 naming it, as the real server says it.

use crate::error::ApiError;
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

/// Refuse fields outside `allowed` (given in camelCase); `at` names the message
/// in the error the way Google does (`'batch.input_config'`).
pub fn check_known(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), ApiError> {
    for key in obj.keys() {
        if key == "@type" {
            continue;
        }
        if !allowed.contains(&camel(key).as_str()) {
            return Err(ApiError::invalid(format!(
                "Invalid JSON payload received. Unknown name \"{key}\" at '{at}': Cannot find field."
            ))
            .with_field_violation(
                at,
                format!(
                    "Invalid JSON payload received. Unknown name \"{key}\" at '{at}': Cannot find field."
                ),
            ));
        }
    }
    Ok(())
}

/// `GenerateContentRequest` top-level fields.
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

/// `GenerationConfig` fields.
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

/// Check a `GenerateContentRequest` and its `generationConfig`.
pub fn check_generate_request(request: &Value, at: &str) -> Result<(), ApiError> {
    let obj = request
        .as_object()
        .ok_or_else(|| ApiError::invalid(format!("Invalid value at '{at}': expected an object")))?;
    check_known(obj, GENERATE_CONTENT_REQUEST, at)?;
    if let Some(cfg) = crate::model::field(request, "generationConfig") {
        let cfg = cfg.as_object().ok_or_else(|| {
            ApiError::invalid(format!("Invalid value at '{at}.generation_config': expected an object"))
        })?;
        check_known(cfg, GENERATION_CONFIG, &format!("{at}.generation_config"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spellings_convert_both_ways() {
        assert_eq!(snake("inputConfig"), "input_config");
        assert_eq!(camel("input_config"), "inputConfig");
        assert_eq!(camel("displayName"), "displayName");
    }

    #[test]
    fn unknown_fields_are_named_in_the_error() {
        let err = check_generate_request(&json!({"contents": [], "bogus": 1}), "batch.request").unwrap_err();
        assert!(err.message().contains("Unknown name \"bogus\" at 'batch.request'"));
        assert!(
            check_generate_request(&json!({"contents": [], "generation_config": {"temperature": 1}}), "r")
                .is_ok()
        );
        assert!(check_generate_request(&json!({"generationConfig": {"temprature": 1}}), "r").is_err());
    }
}
