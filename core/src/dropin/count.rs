//! A `models/{model}:countTokens` body, checked as a generate request is
//! before it goes to Gemini: counting is free, but the body names files, and
//! Gemini counts any file of the project it is shown. What is checked is what
//! Gemini reads: known fields only, each in one spelling, media parts as a
//! batch line's, no cached content (it names a cache, not ours to show).

use crate::gemini::request::{self, field};
use serde_json::{Value, json};

/// The `files/{id}` names a countTokens body refers to (the caller must own
/// them), or why the body is refused, naming the field.
pub fn referenced_files(body: &Value, file_hosts: &[String]) -> Result<Vec<String>, String> {
    let obj = body.as_object().ok_or("the body must be a JSON object")?;
    if let Some(k) = request::unknown_field(obj, &["contents", "generateContentRequest"]) {
        return Err(format!("unknown field \"{k}\" in the body"));
    }
    request::one_spelling(obj, "the body")?;
    let inner = match (field(body, "contents"), field(body, "generateContentRequest")) {
        (Some(contents), None) => json!({ "contents": contents }),
        (None, Some(inner)) => {
            if field(inner, "cachedContent").is_some() {
                return Err(
                    "generateContentRequest.cachedContent cannot be counted here; send the content itself"
                        .into(),
                );
            }
            inner.clone()
        }
        _ => return Err("the body needs one of contents and generateContentRequest".into()),
    };
    request::validate(&inner)?;
    crate::submit::check_media_parts(&inner, Some(file_hosts))?;
    Ok(crate::upload::referenced_files(&inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_named(body: &Value) -> Result<Vec<String>, String> {
        referenced_files(body, &["g".to_string()])
    }

    #[test]
    fn the_files_named_in_either_form_and_spelling_are_found() {
        let contents = json!([{"parts": [{"fileData": {"fileUri": "files/a"}}, {"text": "how long?"}]}]);
        assert_eq!(files_named(&json!({ "contents": contents })), Ok(vec!["files/a".to_string()]));
        let inner = json!({"generate_content_request": {"model": "models/m", "contents": [
            {"parts": [{"file_data": {"file_uri": "https://g/v1beta/files/b"}}]}],
            "system_instruction": {"parts": [{"fileData": {"fileUri": "files/c"}}]}}});
        assert_eq!(files_named(&inner), Ok(vec!["files/b".to_string(), "files/c".to_string()]));
    }

    #[test]
    fn what_could_name_a_file_unseen_is_refused() {
        let text = json!([{"parts": [{"text": "hi"}]}]);
        let cases = [
            (json!([]), "JSON object"),
            (json!({}), "one of contents and generateContentRequest"),
            (json!({"contents": text, "generateContentRequest": {"contents": text}}), "one of"),
            (json!({"contents": text, "extra": 1}), "unknown field \"extra\""),
            (
                json!({"generateContentRequest": {"contents": text}, "generate_content_request": {}}),
                "has both",
            ),
            (
                json!({"contents": [{"parts": [{"fileData": {"fileUri": "Files/theirs"}}]}]}),
                "is not an uploaded file",
            ),
            (
                json!({"contents": [{"parts": [{"fileData": {"fileUri": "files/a"}, "file_data": {"file_uri": "files/b"}}]}]}),
                "has both",
            ),
            (
                json!({"generateContentRequest": {"contents": text, "cachedContent": "cachedContents/x"}}),
                "cachedContent",
            ),
            (json!({"contents": []}), "non-empty array"),
            (
                json!({"contents": [{"parts": [{"fileData": {"fileUri": "https://other/v1beta/files/a"}}]}]}),
                "not Gemini's",
            ),
        ];
        for (body, needle) in cases {
            let err = files_named(&body).unwrap_err();
            assert!(err.contains(needle), "{body}: {err:?} should contain {needle:?}");
        }
    }
}
