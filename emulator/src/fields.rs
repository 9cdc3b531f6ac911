//! proto3 JSON leniency: every field may come in camelCase or snake_case, and a
//! field the message does not have is a 400 naming it, as the real server says it.

use crate::error::ApiError;
use batchgate_core::gemini::request::{GENERATE_CONTENT_REQUEST, GENERATION_CONFIG, camel};
use serde_json::{Map, Value};

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

/// Check a `GenerateContentRequest` and its `generationConfig`.
pub fn check_generate_request(request: &Value, at: &str) -> Result<(), ApiError> {
    let obj = request
        .as_object()
        .ok_or_else(|| ApiError::invalid(format!("Invalid value at '{at}': expected an object")))?;
    check_known(obj, GENERATE_CONTENT_REQUEST, at)?;
    if let Some(cfg) = batchgate_core::gemini::request::field(request, "generationConfig") {
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
