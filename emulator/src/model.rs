//! The emulator's deterministic "model": response text and `usageMetadata` are a
//! pure function of the model name and the request, so tests (and the credit
//! checks built on them) can predict every token.
//!
//! The rules, all in integers:
//! - **prompt tokens** = ceil(text chars / 4) over every `text` part of
//!   `contents` and `systemInstruction`, plus [`MEDIA_PART_TOKENS`] for each
//!   `inlineData` / `fileData` part; at least 1.
//! - **wanted answer** = prompt / 2 + 10 tokens.
//! - **thought tokens**: thinking models (any model whose name does not contain
//!   `lite`, `1.5` or `2.0`) think min(2 × wanted answer, `thinkingBudget`)
//!   tokens; a budget of 0 turns thinking off; `-1` or no budget means unlimited.
//! - `maxOutputTokens` bounds thinking and answer together, as Gemini's does
//!   (python-genai issues 811, 2062): thinking is spent first, the answer gets
//!   what is left. An answer cut short ends with `finishReason: MAX_TOKENS`; when
//!   thinking used the whole cap, its text is empty.
//! - **candidate tokens** = min(wanted answer, `maxOutputTokens` − thoughts).
//! - **total** = prompt + candidates + thoughts.
//! - **text**: `Emulated answer from {model} ({candidates} tokens): {first 48 prompt chars}`,
//!   or, with `responseMimeType: application/json`, that string as `{"answer": ...}`.

use serde_json::{Value, json};

/// Tokens charged for one media part (an image, a PDF page, an audio clip).
pub const MEDIA_PART_TOKENS: u64 = 258;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub candidates: u64,
    pub thoughts: u64,
    /// `maxOutputTokens` cut the answer short (`finishReason: MAX_TOKENS`).
    pub cut: bool,
    /// Of `prompt`, the tokens of audio parts (`promptTokensDetails` AUDIO).
    pub audio: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.prompt + self.candidates + self.thoughts
    }
}

/// Why a request cannot be answered (becomes a per-line `{code: 3}` error).
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidRequest(pub String);

pub use batchgate_core::gemini::request::field;

fn parts_of(content: &Value) -> impl Iterator<Item = &Value> {
    field(content, "parts").and_then(Value::as_array).into_iter().flatten()
}

/// Text, media parts and audio parts (of the media) over `contents` and `systemInstruction`.
fn prompt_parts(request: &Value) -> Result<(String, u64, u64), InvalidRequest> {
    let contents =
        field(request, "contents").and_then(Value::as_array).filter(|c| !c.is_empty()).ok_or_else(|| {
            InvalidRequest("* GenerateContentRequest.contents: contents is not specified".into())
        })?;
    let mut text = String::new();
    let (mut media, mut audio) = (0u64, 0u64);
    let system = field(request, "systemInstruction");
    for content in contents.iter().chain(system) {
        for part in parts_of(content) {
            if let Some(t) = field(part, "text").and_then(Value::as_str) {
                text.push_str(t);
            } else if let Some(m) = field(part, "inlineData").or_else(|| field(part, "fileData")) {
                media += 1;
                let mime = field(m, "mimeType").and_then(Value::as_str).unwrap_or_default();
                audio += u64::from(mime.starts_with("audio/"));
            }
        }
    }
    Ok((text, media, audio))
}

pub fn prompt_tokens(request: &Value) -> Result<u64, InvalidRequest> {
    prompt_and_audio_tokens(request).map(|(prompt, _)| prompt)
}

/// The prompt's tokens, and how many of them are audio.
fn prompt_and_audio_tokens(request: &Value) -> Result<(u64, u64), InvalidRequest> {
    let (text, media, audio) = prompt_parts(request)?;
    let chars = text.chars().count() as u64;
    Ok(((chars.div_ceil(4) + media * MEDIA_PART_TOKENS).max(1), audio * MEDIA_PART_TOKENS))
}

fn is_thinking_model(model: &str) -> bool {
    !(model.contains("lite") || model.contains("1.5") || model.contains("2.0"))
}

pub fn usage(model: &str, request: &Value) -> Result<Usage, InvalidRequest> {
    let (prompt, audio) = prompt_and_audio_tokens(request)?;
    let config = field(request, "generationConfig");
    let max_output =
        config.and_then(|c| field(c, "maxOutputTokens")).and_then(Value::as_u64).unwrap_or(u64::MAX);
    let wanted = prompt / 2 + 10;
    let budget = config
        .and_then(|c| field(c, "thinkingConfig"))
        .and_then(|t| field(t, "thinkingBudget"))
        .and_then(Value::as_i64);
    let thoughts = match budget {
        _ if !is_thinking_model(model) => 0,
        Some(b) if b >= 0 => (2 * wanted).min(b as u64),
        _ => 2 * wanted,
    }
    .min(max_output);
    let candidates = wanted.min(max_output - thoughts);
    Ok(Usage { prompt, candidates, thoughts, cut: candidates < wanted, audio })
}

/// The media an image or speech model answers with: a 1×1 PNG, or a short
/// clip of 16-bit PCM, the same for every request.
struct Media {
    mime: &'static str,
    bytes: &'static [u8],
}

const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00,
    0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xfc, 0xcf, 0xc0, 0x50, 0x0f, 0x00, 0x04,
    0x85, 0x01, 0x80, 0x84, 0xa9, 0x8c, 0x21, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42,
    0x60, 0x82,
];

const PCM_CLIP: &[u8] = &[0, 0, 16, 0, 32, 0, 16, 0, 0, 0, 240, 255, 224, 255, 240, 255];

impl Media {
    fn part(&self) -> Value {
        let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, self.bytes);
        json!({"inlineData": {"mimeType": self.mime, "data": data}})
    }
}

fn media_of(model: &str) -> Option<Media> {
    if model.contains("-image") {
        Some(Media { mime: "image/png", bytes: PNG_1X1 })
    } else if model.contains("-tts") {
        Some(Media { mime: "audio/L16;codec=pcm;rate=24000", bytes: PCM_CLIP })
    } else {
        None
    }
}

/// A deterministic id in the style of real `responseId`s.
fn response_id(model: &str, request: &Value) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{model}\n{request}").as_bytes());
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &digest[..17])
}

/// The `GenerateContentResponse` the emulator answers with.
pub fn respond(model: &str, request: &Value) -> Result<Value, InvalidRequest> {
    respond_padded(model, request, 0)
}

/// [`respond`], with the answer text padded to `pad_bytes` by a fixed filler.
pub fn respond_padded(model: &str, request: &Value, pad_bytes: usize) -> Result<Value, InvalidRequest> {
    let u = usage(model, request)?;
    let (text, _, _) = prompt_parts(request)?;
    let preview: String = text.chars().take(48).collect();
    let mut answer = format!("Emulated answer from {model} ({} tokens): {preview}", u.candidates);
    const FILLER: &str = " The quick brown fox jumps over the lazy dog.";
    while answer.len() < pad_bytes {
        answer.push_str(FILLER);
    }
    if u.candidates == 0 {
        // Thinking used the whole cap: nothing left to answer with.
        answer.clear();
    }
    let mime =
        field(request, "generationConfig").and_then(|c| field(c, "responseMimeType")).and_then(Value::as_str);
    if mime == Some("application/json") {
        answer = json!({ "answer": answer }).to_string();
    }
    let mut usage = json!({
        "promptTokenCount": u.prompt,
        "candidatesTokenCount": u.candidates,
        "totalTokenCount": u.total(),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.prompt - u.audio}],
    });
    if let (true, Some(details)) = (u.audio > 0, usage["promptTokensDetails"].as_array_mut()) {
        details.push(json!({"modality": "AUDIO", "tokenCount": u.audio}));
    }
    if u.thoughts > 0 {
        usage["thoughtsTokenCount"] = json!(u.thoughts);
    }
    let parts = match media_of(model) {
        // A speech model answers with audio only; an image model with its caption and a picture.
        Some(m) if m.mime.starts_with("audio/") => vec![m.part()],
        Some(m) => vec![json!({"text": answer}), m.part()],
        None => vec![json!({"text": answer})],
    };
    Ok(json!({
        "candidates": [{
            "content": {"parts": parts, "role": "model"},
            "finishReason": if u.cut { "MAX_TOKENS" } else { "STOP" },
            "index": 0
        }],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": response_id(model, request),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Value {
        json!({"contents": [{"parts": [{"text": text}]}]})
    }

    #[test]
    fn usage_follows_the_documented_formula() {
        // 40 chars → 10 prompt tokens → 15 candidates → 30 thoughts on a thinking model.
        let r = req(&"a".repeat(40));
        assert_eq!(
            usage("gemini-2.5-flash", &r).unwrap(),
            Usage { prompt: 10, candidates: 15, thoughts: 30, cut: false, audio: 0 }
        );
        assert_eq!(usage("gemini-2.5-flash-lite", &r).unwrap().thoughts, 0);
    }

    #[test]
    fn audio_parts_are_counted_apart_as_gemini_details_them() {
        let r = json!({"contents": [{"parts": [
            {"text": "abcd"},
            {"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}},
            {"file_data": {"mime_type": "audio/wav", "file_uri": "u"}},
            {"fileData": {"mimeType": "image/png", "fileUri": "v"}}]}]});
        let u = usage("gemini-2.5-flash", &r).unwrap();
        assert_eq!((u.prompt, u.audio), (1 + 3 * MEDIA_PART_TOKENS, 2 * MEDIA_PART_TOKENS));
    }

    #[test]
    fn generation_config_caps_output_and_thinking_in_either_spelling() {
        let r = json!({
            "contents": [{"parts": [{"text": "x".repeat(400)}, {"file_data": {"file_uri": "u"}}]}],
            "generation_config": {"max_output_tokens": 7, "thinking_config": {"thinking_budget": 5}}
        });
        assert_eq!(
            usage("gemini-2.5-pro", &r).unwrap(),
            Usage { prompt: 100 + MEDIA_PART_TOKENS, candidates: 2, thoughts: 5, cut: true, audio: 0 },
            "thinking is spent first; the answer gets what is left of the 7"
        );
    }

    /// Gemini counts thinking inside `maxOutputTokens`: output never passes it,
    /// and a cap thinking uses whole leaves an empty answer cut at MAX_TOKENS.
    #[test]
    fn output_never_passes_max_output_tokens() {
        for max in [1u64, 5, 14, 15, 44, 45, 46, 1_000] {
            let r = json!({"contents": [{"parts": [{"text": "a".repeat(40)}]}], "generationConfig": {"maxOutputTokens": max}});
            let u = usage("gemini-2.5-flash", &r).unwrap();
            assert!(u.candidates + u.thoughts <= max, "{max}: {u:?}");
            assert_eq!(u.cut, u.candidates < 15, "{max}: {u:?}");
        }
        let r = json!({"contents": [{"parts": [{"text": "a".repeat(40)}]}], "generationConfig": {"maxOutputTokens": 30}});
        let a = respond("gemini-2.5-flash", &r).unwrap();
        assert_eq!(a["candidates"][0]["finishReason"], "MAX_TOKENS");
        assert_eq!(a["candidates"][0]["content"]["parts"][0]["text"], "");
        assert_eq!(a["usageMetadata"]["thoughtsTokenCount"], 30);
    }

    #[test]
    fn the_response_carries_the_usage_and_is_deterministic() {
        let r = req("Describe the process of photosynthesis.");
        let a = respond("gemini-2.5-flash", &r).unwrap();
        assert_eq!(a, respond("gemini-2.5-flash", &r).unwrap());
        assert_eq!(a["usageMetadata"]["promptTokenCount"], 10);
        assert_eq!(a["usageMetadata"]["totalTokenCount"], 10 + 15 + 30);
        assert!(
            a["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap().contains("photosynthesis")
        );
    }

    #[test]
    fn a_request_without_contents_is_invalid() {
        assert!(usage("gemini-2.5-flash", &json!({"contents": []})).is_err());
        assert!(usage("gemini-2.5-flash", &json!({})).is_err());
    }
}
