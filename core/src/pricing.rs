//! What tokens cost, in integers only.
//!
//! Units: 1 credit = $0.001 and 1 credit = 1,000,000 micro-credits, so a price
//! of N micro-credits per token is $N per billion tokens; every published
//! Gemini price is a whole number in it ($0.30 / 1M tokens = 300). Amounts are
//! `i64` micro-credits everywhere.
//!
//! A job's price is looked up once, at submit, and kept with the job: the
//! reservation and the final charge use the same figures even if the operator
//! changes the table while the job runs.

use crate::results::Usage;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Micro-credits per token for one model, at the standard (interactive) rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Price {
    pub input: i64,
    /// Candidates and thinking tokens alike.
    pub output: i64,
    /// Input tokens served from Gemini's context cache.
    pub cached_input: i64,
}

impl Price {
    const FIELDS: [&str; 3] = ["input", "output", "cachedInput"];

    /// `{"input": n, "output": n, "cachedInput": n}`, each an integer, nothing else.
    fn from_value(v: &Value) -> Result<Price, String> {
        let obj = v.as_object().ok_or("must be an object {input, output, cachedInput}")?;
        if let Some(k) = obj.keys().find(|k| !Price::FIELDS.contains(&k.as_str())) {
            return Err(format!("has an unknown field \"{k}\" (expected input, output, cachedInput)"));
        }
        let int = |k: &str| {
            obj.get(k).and_then(Value::as_i64).ok_or_else(|| format!("needs \"{k}\" as an integer"))
        };
        Ok(Price { input: int("input")?, output: int("output")?, cached_input: int("cachedInput")? })
    }
}

/// Batch jobs cost this fraction of the standard price (Gemini: 50 %).
pub const BATCH_NUMERATOR: i64 = 1;
pub const BATCH_DENOMINATOR: i64 = 2;

/// Google's public Gemini API prices (paid tier, prompts up to 200k tokens),
/// in micro-credits per token.
const DEFAULT_PRICES: &[(&str, Price)] = &[
    ("gemini-3-pro-preview", Price { input: 2_000, output: 12_000, cached_input: 200 }),
    ("gemini-3-flash-preview", Price { input: 500, output: 3_000, cached_input: 50 }),
    ("gemini-2.5-pro", Price { input: 1_250, output: 10_000, cached_input: 125 }),
    ("gemini-2.5-flash", Price { input: 300, output: 2_500, cached_input: 30 }),
    ("gemini-2.5-flash-lite", Price { input: 100, output: 400, cached_input: 10 }),
    ("gemini-2.0-flash", Price { input: 100, output: 400, cached_input: 25 }),
    ("gemini-2.0-flash-lite", Price { input: 75, output: 300, cached_input: 75 }),
    // Image and speech output is billed per output token, at these models' own rates.
    ("gemini-2.5-flash-image", Price { input: 300, output: 30_000, cached_input: 30 }),
    ("gemini-3-pro-image-preview", Price { input: 2_000, output: 120_000, cached_input: 200 }),
    ("gemini-2.5-flash-preview-tts", Price { input: 500, output: 10_000, cached_input: 50 }),
];

/// Prices by model id. A versioned id (`gemini-2.5-flash-001`,
/// `gemini-2.5-flash-preview-09-2025`) takes its model's price; a longer name of
/// another model (`gemini-2.5-flash-image`) never does (`model::is_version_of`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceTable {
    prices: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        // Inserted rather than collected: `collect` sorts first, and the sort's
        // code would ship in the SDK's wasm for seven rows.
        let mut prices = BTreeMap::new();
        for (model, price) in DEFAULT_PRICES {
            prices.insert(model.to_string(), *price);
        }
        PriceTable { prices }
    }
}

impl PriceTable {
    /// The operator's table: `{"model": {"input": n, "output": n, "cachedInput": n}, ...}`.
    pub fn from_json(json: &str) -> Result<PriceTable, String> {
        let table: Value =
            serde_json::from_slice(json.as_bytes()).map_err(|e| format!("PRICES is not JSON: {e}"))?;
        PriceTable::from_value(&table)
    }

    /// The table from parsed JSON. Read field by field rather than derived: a
    /// typed serde read brings serde's error formatting (float printing with
    /// it, ~20 KB) into the SDK's wasm, which reads the operator's table too.
    pub fn from_value(table: &Value) -> Result<PriceTable, String> {
        let models = table.as_object().ok_or("PRICES must be an object of model ids to prices")?;
        let mut prices = BTreeMap::new();
        for (model, price) in models {
            let price = Price::from_value(price).map_err(|e| format!("PRICES: the price of {model} {e}"))?;
            prices.insert(model.clone(), price);
        }
        if let Some((m, _)) = prices.iter().find(|(_, p)| p.input < 0 || p.output < 0 || p.cached_input < 0) {
            return Err(format!("PRICES: the price of {m} is negative"));
        }
        if prices.is_empty() {
            return Err("PRICES lists no model".into());
        }
        Ok(PriceTable { prices })
    }

    pub fn price(&self, model: &str) -> Option<Price> {
        self.prices
            .iter()
            .filter(|(m, _)| crate::model::is_version_of(model, m))
            .max_by_key(|(m, _)| m.len())
            .map(|(_, p)| *p)
    }

    pub fn models(&self) -> impl Iterator<Item = (&str, &Price)> {
        self.prices.iter().map(|(m, p)| (m.as_str(), p))
    }
}

/// Tokens, as estimated before a job runs or as Gemini reported them.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
}

impl Tokens {
    pub fn add(&mut self, o: &Tokens) {
        self.input = self.input.saturating_add(o.input);
        self.cached_input = self.cached_input.saturating_add(o.cached_input);
        self.output = self.output.saturating_add(o.output);
    }
}

impl From<&Usage> for Tokens {
    /// Gemini's `promptTokenCount` includes the cached part; tool-use prompts are
    /// input; thinking is output.
    fn from(u: &Usage) -> Tokens {
        let cached = u.cached.min(u.prompt);
        Tokens {
            input: (u.prompt - cached).saturating_add(u.tool_use_prompt),
            cached_input: cached,
            output: u.candidates.saturating_add(u.thoughts),
        }
    }
}

fn mul(tokens: u64, price: i64) -> Option<i64> {
    i64::try_from(tokens).ok()?.checked_mul(price)
}

/// The batch share of a standard cost: × 1/2 rounded up, computed so that no
/// cost, however large, wraps (`s / 2 + s % 2`, never `(s + 1) / 2`).
fn batch_share(standard: i64) -> i64 {
    let s = standard.max(0);
    let rest = s % BATCH_DENOMINATOR * BATCH_NUMERATOR;
    s / BATCH_DENOMINATOR * BATCH_NUMERATOR + (rest + BATCH_DENOMINATOR - 1) / BATCH_DENOMINATOR
}

impl Price {
    /// Standard (interactive) cost of `t`, or `None` if it does not fit an
    /// `i64` of micro-credits.
    pub fn checked_standard(&self, t: &Tokens) -> Option<i64> {
        mul(t.input, self.input)?
            .checked_add(mul(t.cached_input, self.cached_input)?)?
            .checked_add(mul(t.output, self.output)?)
    }

    /// Standard cost of tokens Gemini reported, saturating (a charge can only
    /// be too large to hold, never wrap to a credit).
    pub fn standard(&self, t: &Tokens) -> i64 {
        self.checked_standard(t).unwrap_or(i64::MAX)
    }

    /// Batch cost of `t`: the standard cost times 1/2, rounded up (the one
    /// rounding, applied once per job, never in the user's disfavour by more
    /// than one micro-credit).
    pub fn batch(&self, t: &Tokens) -> i64 {
        batch_share(self.standard(t))
    }

    /// What `t` costs, or `None` when an amount would not fit: such a job
    /// cannot be reserved, so it is refused, never priced at a saturated or
    /// wrapped figure.
    pub fn quote(&self, t: &Tokens) -> Option<Quote> {
        let standard = self.checked_standard(t)?;
        let batch = batch_share(standard);
        Some(Quote { tokens: *t, standard, batch, savings: standard - batch })
    }
}

/// What a set of requests costs, in micro-credits.
#[cfg_attr(feature = "ts", derive(tsify::Tsify))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    pub tokens: Tokens,
    pub standard: i64,
    pub batch: i64,
    pub savings: i64,
}

/// How requests are sized before Gemini has seen them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EstimateRules {
    /// Characters of text per token (Gemini's rule of thumb is 4).
    pub chars_per_token: u64,
    /// Tokens for an image or a PDF page (Gemini bills 258 per image tile).
    pub image_tokens: u64,
    /// Tokens for a document part (a PDF) whose page count is unknown.
    pub document_tokens: u64,
    /// Tokens for an audio or video part whose length is unknown.
    pub media_tokens: u64,
    /// Output reserved for a request without `maxOutputTokens`.
    pub default_max_output_tokens: u64,
}

impl Default for EstimateRules {
    fn default() -> Self {
        EstimateRules {
            chars_per_token: 4,
            image_tokens: 258,
            document_tokens: 258 * 10,
            media_tokens: 32 * 60,
            default_max_output_tokens: 8_192,
        }
    }
}

fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    crate::gemini::request::field(v, camel)
}

impl EstimateRules {
    /// Tokens one `GenerateContentRequest` is expected to use: text length,
    /// per-media estimates, and its `maxOutputTokens` (or the default cap) as
    /// output, which bounds candidates and thinking together.
    pub fn request(&self, request: &Value) -> Tokens {
        let mut chars = 0u64;
        let mut wide = 0u64;
        let mut media = 0u64;
        let system = field(request, "systemInstruction");
        let contents = field(request, "contents").and_then(Value::as_array).into_iter().flatten();
        for content in contents.chain(system) {
            let parts = field(content, "parts").and_then(Value::as_array).into_iter().flatten();
            for part in parts {
                if let Some(t) = field(part, "text").and_then(Value::as_str) {
                    // ASCII runs about four characters a token; other scripts (CJK
                    // above all) about one: each such character is reserved a token.
                    for c in t.chars() {
                        if c.is_ascii() {
                            chars = chars.saturating_add(1);
                        } else {
                            wide = wide.saturating_add(1);
                        }
                    }
                }
                if let Some(inline) = field(part, "inlineData") {
                    // Its size is known: base64 decodes to 3 bytes per 4 characters.
                    let mime = field(inline, "mimeType").and_then(Value::as_str).unwrap_or_default();
                    let encoded = field(inline, "data").and_then(Value::as_str).map_or(0, str::len) as u64;
                    let bytes = encoded / 4 * 3 + (encoded % 4) * 3 / 4;
                    media = media.saturating_add(self.media_tokens(mime, bytes));
                } else if let Some(file) = field(part, "fileData") {
                    let mime = field(file, "mimeType").and_then(Value::as_str).unwrap_or_default();
                    media = media.saturating_add(self.media_part(mime));
                }
            }
        }
        // Function declarations are read as prompt text: count their names and strings.
        if let Some(tools) = field(request, "tools") {
            chars = chars.saturating_add(text_chars(tools));
        }
        let config = field(request, "generationConfig");
        let max_output = config
            .and_then(|c| field(c, "maxOutputTokens"))
            .and_then(|m| m.as_u64().or_else(|| m.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(self.default_max_output_tokens);
        // Each candidate may use the whole cap.
        let candidates =
            config.and_then(|c| field(c, "candidateCount")).and_then(Value::as_u64).unwrap_or(1).max(1);
        Tokens {
            input: chars
                .div_ceil(self.chars_per_token.max(1))
                .saturating_add(wide)
                .saturating_add(media)
                .max(1),
            cached_input: 0,
            output: max_output.saturating_mul(candidates),
        }
    }

    /// Tokens reserved for a media part of known size: its type's flat figure
    /// or what its size may cost (`media_tokens_by_size`), whichever is more.
    /// Used for inline data here, and by the worker for uploaded files, whose
    /// sizes it knows at submit.
    pub fn media_tokens(&self, mime: &str, bytes: u64) -> u64 {
        self.media_part(mime).max(media_tokens_by_size(mime, bytes))
    }

    fn media_part(&self, mime: &str) -> u64 {
        if mime.starts_with("image/") {
            self.image_tokens
        } else if mime == "application/pdf" || mime.starts_with("text/") {
            self.document_tokens
        } else {
            self.media_tokens
        }
    }
}

/// Tokens a media part of `bytes` bytes may cost at most, by type, from its
/// size alone (Gemini bills by pixels, pages and seconds, which bytes bound only
/// under an assumption; each assumption leans towards more tokens):
/// - image: 258 per 768×768 tile, at no less than 0.1 byte per pixel;
/// - PDF: 258 per page, at no less than 2,000 bytes per page (at most 1,000 pages);
/// - audio: 32 per second, at no less than 8 kbit/s (1,000 bytes per second);
/// - video: 263 per second (frames and sound), at no less than 20 kbit/s;
/// - text: one per 3 bytes (CJK text is about one token per 3-byte character).
pub fn media_tokens_by_size(mime: &str, bytes: u64) -> u64 {
    let per = |unit: u64, tokens: u64| bytes.div_ceil(unit).max(1).saturating_mul(tokens);
    if mime.starts_with("image/") {
        per(768 * 768 / 10, 258)
    } else if mime == "application/pdf" {
        per(2_000, 258).min(1_000 * 258)
    } else if mime.starts_with("audio/") {
        per(1_000, 32)
    } else if mime.starts_with("video/") {
        per(2_500, 263)
    } else {
        bytes.div_ceil(3).max(1)
    }
}

/// Characters of every key and string in `v`.
fn text_chars(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(a) => a.iter().map(text_chars).fold(0, u64::saturating_add),
        Value::Object(o) => {
            o.iter().map(|(k, v)| (k.len() as u64).saturating_add(text_chars(v))).fold(0, u64::saturating_add)
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
