//! Media in answers (an image model's pictures, a TTS model's audio): Gemini
//! returns them base64 inside the result line (`inlineData.data`), megabytes
//! that most readers of a results file do not want inline. A result line is
//! served with each such part's `data` replaced by the URL it can be fetched
//! from on its own (`url`, with its decoded size as `bytes`); the part itself
//! is decoded from the stored line when fetched. Parts are numbered in order
//! over every candidate's parts, from 0.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// Whether a model answers with media (image and speech models): only their
/// results are looked through for it.
pub fn makes_media(model: &str) -> bool {
    let m = crate::model::bare(model);
    m.contains("-image") || m.contains("-tts")
}

/// Whether a stored line may carry inline media (a byte search; false is sure).
pub fn may_have_media(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"inlineData").is_some()
        || memchr::memmem::find(line, b"inline_data").is_some()
}

/// Each media part of the line's response, in order.
fn media_parts(line: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    let mut out = vec![];
    let Some(candidates) =
        line.get_mut("response").and_then(|r| r.get_mut("candidates")).and_then(Value::as_array_mut)
    else {
        return out;
    };
    for candidate in candidates {
        let Some(parts) =
            candidate.get_mut("content").and_then(|c| c.get_mut("parts")).and_then(Value::as_array_mut)
        else {
            continue;
        };
        for part in parts {
            let name = if part.get("inlineData").is_some() { "inlineData" } else { "inline_data" };
            if let Some(media) = part.get_mut(name).and_then(Value::as_object_mut) {
                out.push(media);
            }
        }
    }
    out
}

/// The line with every media part's `data` replaced by `url_of(n)` (and its
/// decoded size); `None` when it has none (serve it as stored).
pub fn link_media(line: &[u8], url_of: impl Fn(usize) -> String) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(line).ok()?;
    let parts = media_parts(&mut value);
    if parts.is_empty() {
        return None;
    }
    for (n, media) in parts.into_iter().enumerate() {
        let data = media.remove("data");
        let len = data.as_ref().and_then(Value::as_str).map_or(0, decoded_len);
        media.insert("url".into(), Value::String(url_of(n)));
        media.insert("bytes".into(), Value::from(len));
    }
    serde_json::to_vec(&value).ok()
}

/// Bytes a base64 string decodes to.
fn decoded_len(b64: &str) -> u64 {
    let padding = b64.bytes().rev().take_while(|b| *b == b'=').count() as u64;
    (b64.len() as u64 / 4 * 3).saturating_sub(padding)
}

/// Media part `n` of the line: its MIME type and bytes.
pub fn media_part(line: &[u8], n: usize) -> Option<(String, Vec<u8>)> {
    all_media(line).into_iter().nth(n)
}

/// Every media part of the line, in order (up to the first whose data does not decode).
pub fn all_media(line: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Ok(mut value) = serde_json::from_slice::<Value>(line) else { return vec![] };
    media_parts(&mut value)
        .into_iter()
        .map_while(|media| {
            let mime =
                ["mimeType", "mime_type"].iter().find_map(|k| media.get(*k)).and_then(Value::as_str)?;
            let bytes = STANDARD.decode(media.get("data")?.as_str()?).ok()?;
            Some((mime.to_string(), bytes))
        })
        .collect()
}

/// A media type a browser may be told to show: an image, audio or video;
/// anything else is served as bytes.
pub fn served_type(mime: &str) -> &str {
    if ["image/", "audio/", "video/"].iter().any(|p| mime.starts_with(p)) {
        mime
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line() -> Vec<u8> {
        json!({"key": "cat", "response": {"candidates": [{"content": {"parts": [
            {"text": "here is a cat"},
            {"inlineData": {"mimeType": "image/png", "data": STANDARD.encode(b"\x89PNG fake")}},
            {"inline_data": {"mime_type": "audio/L16;rate=24000", "data": STANDARD.encode([1u8, 2, 3, 4])}},
        ]}}], "usageMetadata": {"promptTokenCount": 3}}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn media_is_linked_in_order_and_fetched_back_whole() {
        let linked = link_media(&line(), |n| format!("/media/{n}")).unwrap();
        let v: Value = serde_json::from_slice(&linked).unwrap();
        let parts = &v["response"]["candidates"][0]["content"]["parts"];
        assert_eq!(parts[1]["inlineData"], json!({"mimeType": "image/png", "url": "/media/0", "bytes": 9}));
        assert_eq!(parts[2]["inline_data"]["url"], "/media/1");
        assert_eq!(parts[2]["inline_data"]["bytes"], 4);
        assert_eq!(parts[0]["text"], "here is a cat", "the rest of the line is as stored");
        assert_eq!(v["response"]["usageMetadata"]["promptTokenCount"], 3);
        assert_eq!(media_part(&line(), 0), Some(("image/png".into(), b"\x89PNG fake".to_vec())));
        assert_eq!(media_part(&line(), 1).map(|m| m.1), Some(vec![1, 2, 3, 4]));
        assert_eq!(media_part(&line(), 2), None);
        assert_eq!(all_media(&line()).len(), 2);
        assert_eq!(served_type("image/png"), "image/png");
        assert_eq!(served_type("text/html"), "application/octet-stream", "never a page a browser would run");
    }

    #[test]
    fn lines_without_media_are_left_alone() {
        let plain = br#"{"key":"a","response":{"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}}"#;
        assert!(!may_have_media(plain));
        assert_eq!(link_media(plain, |n| n.to_string()), None);
        assert!(may_have_media(&line()));
        assert!(
            makes_media("models/gemini-3-pro-image-preview") && makes_media("gemini-2.5-flash-preview-tts")
        );
        assert!(!makes_media("gemini-2.5-flash"));
    }
}
