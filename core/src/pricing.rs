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

use crate::results::{Tally, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Micro-credits per token for one model, at the standard (interactive) rate.
/// Stored with each job: read back leniently (a later version's fields must not
/// strand a job an earlier one reads); the operator's table is checked field
/// by field in `from_value`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    pub input: i64,
    /// Candidates and thinking tokens alike.
    pub output: i64,
    /// Input tokens served from Gemini's context cache.
    pub cached_input: i64,
    /// Audio input, where the model prices it apart (Gemini Flash models bill
    /// audio at 2 to 7 times text); `None`: as `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_input: Option<i64>,
    /// Cached audio input; `None`: as `cachedInput`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_cached_input: Option<i64>,
    /// Every token of a request whose prompt passes
    /// [`LONG_CONTEXT_PROMPT_TOKENS`] (Gemini Pro models), audio at no less
    /// than `audioInput`; `None`: such a request is billed as any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_context: Option<Rates>,
}

/// The three rates of a tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rates {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
}

/// Prompt tokens (cached and tool-use included) above which a request is
/// billed at its model's long-context rates: Google's line, 200k.
pub const LONG_CONTEXT_PROMPT_TOKENS: u64 = 200_000;

impl Rates {
    const FIELDS: [&str; 3] = ["input", "output", "cachedInput"];

    /// `{"input": n, "output": n, "cachedInput": n}`, each an integer, nothing else.
    fn from_value(v: &Value) -> Result<Rates, String> {
        let obj = v.as_object().ok_or("must be an object {input, output, cachedInput}")?;
        if let Some(k) = obj.keys().find(|k| !Rates::FIELDS.contains(&k.as_str())) {
            return Err(format!("has an unknown field \"{k}\" (expected input, output, cachedInput)"));
        }
        Ok(Rates {
            input: required(obj, "input")?,
            output: required(obj, "output")?,
            cached_input: required(obj, "cachedInput")?,
        })
    }

    fn negative(&self) -> bool {
        self.input < 0 || self.output < 0 || self.cached_input < 0
    }
}

/// `obj[k]`, an integer that must be there.
fn required(obj: &serde_json::Map<String, Value>, k: &str) -> Result<i64, String> {
    int(obj, k)?.ok_or_else(|| format!("needs \"{k}\" as an integer"))
}

/// `obj[k]` as an integer; `Err` when present and not one.
fn int(obj: &serde_json::Map<String, Value>, k: &str) -> Result<Option<i64>, String> {
    obj.get(k).map(|v| v.as_i64().ok_or_else(|| format!("needs \"{k}\" as an integer"))).transpose()
}

impl Price {
    const EXTRA: [&str; 3] = ["audioInput", "audioCachedInput", "longContext"];

    /// `{"input", "output", "cachedInput"}` integers, with optional
    /// `"audioInput"`, `"audioCachedInput"` and `"longContext": {input, output,
    /// cachedInput}`; nothing else.
    fn from_value(v: &Value) -> Result<Price, String> {
        let obj = v.as_object().ok_or("must be an object {input, output, cachedInput}")?;
        if let Some(k) =
            obj.keys().find(|k| !Rates::FIELDS.contains(&k.as_str()) && !Price::EXTRA.contains(&k.as_str()))
        {
            return Err(format!(
                "has an unknown field \"{k}\" (expected input, output, cachedInput, audioInput, audioCachedInput, longContext)"
            ));
        }
        let (input, output) = (required(obj, "input")?, required(obj, "output")?);
        let cached_input = required(obj, "cachedInput")?;
        let long_context = match obj.get("longContext") {
            None => None,
            Some(l) => Some(Rates::from_value(l).map_err(|e| format!("longContext {e}"))?),
        };
        Ok(Price {
            input,
            output,
            cached_input,
            audio_input: int(obj, "audioInput")?,
            audio_cached_input: int(obj, "audioCachedInput")?,
            long_context,
        })
    }

    fn negative(&self) -> bool {
        let extras = [self.audio_input, self.audio_cached_input].into_iter().flatten().any(|p| p < 0);
        self.base().negative() || extras || self.long_context.is_some_and(|l| l.negative())
    }

    fn base(&self) -> Rates {
        Rates { input: self.input, output: self.output, cached_input: self.cached_input }
    }
}

/// Batch jobs cost this fraction of the standard price (Gemini: 50 %).
pub const BATCH_NUMERATOR: i64 = 1;
pub const BATCH_DENOMINATOR: i64 = 2;

/// Google's public Gemini API prices (paid tier), in micro-credits per token:
/// audio input where it costs more, and the Pro models' rates past 200k prompt tokens.
const DEFAULT_PRICES: &[(&str, Price)] = &[
    ("gemini-3-pro-preview", rates(2_000, 12_000, 200).long(4_000, 18_000, 400)),
    ("gemini-3-flash-preview", rates(500, 3_000, 50).audio(1_000, 100)),
    ("gemini-2.5-pro", rates(1_250, 10_000, 125).long(2_500, 15_000, 250)),
    ("gemini-2.5-flash", rates(300, 2_500, 30).audio(1_000, 100)),
    ("gemini-2.5-flash-lite", rates(100, 400, 10).audio(300, 30)),
    ("gemini-2.0-flash", rates(100, 400, 25).audio(700, 175)),
    ("gemini-2.0-flash-lite", rates(75, 300, 75)),
    // Image and speech output is billed per output token, at these models' own rates.
    ("gemini-2.5-flash-image", rates(300, 30_000, 30)),
    ("gemini-3-pro-image-preview", rates(2_000, 120_000, 200)),
    ("gemini-2.5-flash-preview-tts", rates(500, 10_000, 50)),
];

const fn rates(input: i64, output: i64, cached_input: i64) -> Price {
    Price { input, output, cached_input, audio_input: None, audio_cached_input: None, long_context: None }
}

impl Price {
    const fn audio(self, input: i64, cached_input: i64) -> Price {
        Price { audio_input: Some(input), audio_cached_input: Some(cached_input), ..self }
    }

    const fn long(self, input: i64, output: i64, cached_input: i64) -> Price {
        Price { long_context: Some(Rates { input, output, cached_input }), ..self }
    }
}

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
    /// The operator's table: `{"model": {"input": n, "output": n, "cachedInput": n}, ...}`
    /// (with the optional rates of [`Price::from_value`]).
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
        if let Some((m, _)) = prices.iter().find(|(_, p)| p.negative()) {
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
    /// Of `input`, audio.
    #[serde(default)]
    pub audio_input: u64,
    /// Of `cachedInput`, audio.
    #[serde(default)]
    pub audio_cached_input: u64,
    /// Of `input`, what requests past the long-context line took.
    #[serde(default)]
    pub long_input: u64,
    /// Of `cachedInput`, what requests past the long-context line took.
    #[serde(default)]
    pub long_cached_input: u64,
    /// Of `output`, what requests past the long-context line gave.
    #[serde(default)]
    pub long_output: u64,
    /// Of `longInput`, audio.
    #[serde(default)]
    pub long_audio_input: u64,
    /// Of `longCachedInput`, audio.
    #[serde(default)]
    pub long_audio_cached_input: u64,
}

impl Tokens {
    pub fn add(&mut self, o: &Tokens) {
        *self = self.zip(o, u64::saturating_add);
    }

    /// `self` less its part `o`, each count at least zero.
    pub fn less(&self, o: &Tokens) -> Tokens {
        self.zip(o, u64::saturating_sub)
    }

    fn zip(&self, o: &Tokens, f: impl Fn(u64, u64) -> u64) -> Tokens {
        Tokens {
            input: f(self.input, o.input),
            cached_input: f(self.cached_input, o.cached_input),
            output: f(self.output, o.output),
            audio_input: f(self.audio_input, o.audio_input),
            audio_cached_input: f(self.audio_cached_input, o.audio_cached_input),
            long_input: f(self.long_input, o.long_input),
            long_cached_input: f(self.long_cached_input, o.long_cached_input),
            long_output: f(self.long_output, o.long_output),
            long_audio_input: f(self.long_audio_input, o.long_audio_input),
            long_audio_cached_input: f(self.long_audio_cached_input, o.long_audio_cached_input),
        }
    }

    /// The same tokens, all of them past the long-context line.
    fn as_long(self) -> Tokens {
        Tokens {
            long_input: self.input,
            long_cached_input: self.cached_input,
            long_output: self.output,
            long_audio_input: self.audio_input,
            long_audio_cached_input: self.audio_cached_input,
            ..self
        }
    }

    /// An estimate's tokens (no tier yet), at the tier its input may put it
    /// in: an estimate is a guess, so one within a quarter of the line is
    /// reserved at the long tier too (only a model with that tier bills it).
    pub fn tiered(self) -> Tokens {
        if self.input > LONG_CONTEXT_PROMPT_TOKENS / 4 * 3 { self.as_long() } else { self }
    }

    /// `u` with no tier: Gemini's `promptTokenCount` includes the cached part,
    /// and its per-modality details count cached tokens too; tool-use prompts
    /// are input; thinking is output. Audio past what the uncached prompt can
    /// hold is taken as cached audio, never dropped to a cheaper rate.
    fn untiered(u: &Usage) -> Tokens {
        let cached = u.cached.min(u.prompt);
        let input = (u.prompt - cached).saturating_add(u.tool_use_prompt);
        let audio = u.audio_prompt.max(u.audio_cached).min(u.prompt);
        let audio_cached = u.audio_cached.max(audio.saturating_sub(u.prompt - cached)).min(cached).min(audio);
        Tokens {
            input,
            cached_input: cached,
            output: u.candidates.saturating_add(u.thoughts),
            audio_input: (audio - audio_cached).min(input),
            audio_cached_input: audio_cached,
            ..Tokens::default()
        }
    }
}

/// What a request's estimate (`request`, tiered) grows by when the tokens of
/// the uploaded files it names (`EstimateRules::file_tokens`) join it: the
/// files, and the whole request moved past the long-context line if they take
/// it there.
pub fn growth_with_files(request: Tokens, files: &Tokens) -> Tokens {
    let mut with = request;
    with.add(files);
    with.tiered().less(&request)
}

impl From<&Usage> for Tokens {
    /// One response's tokens, at its tier.
    fn from(u: &Usage) -> Tokens {
        let t = Tokens::untiered(u);
        if u.is_long_context() { t.as_long() } else { t }
    }
}

impl From<&Tally> for Tokens {
    /// The tokens of many responses, each at its own tier. A tally stored
    /// before tiers were kept holds only its usage, without audio counts: all
    /// of it at the lower tier and text's rates (such a job's stored price has
    /// no other rates either).
    fn from(t: &Tally) -> Tokens {
        t.tokens.as_deref().copied().unwrap_or_else(|| Tokens::untiered(&t.usage))
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
    /// `i64` of micro-credits: each part of `t` at its own rate. Past the
    /// long-context line, a model with that tier bills its rates (audio at
    /// no less than audio's own); a model without it bills as below the line.
    pub fn checked_standard(&self, t: &Tokens) -> Option<i64> {
        let audio = self.audio_input.unwrap_or(self.input);
        let audio_cached = self.audio_cached_input.unwrap_or(self.cached_input);
        let long = match self.long_context {
            Some(l) => {
                [l.input, l.cached_input, l.output, l.input.max(audio), l.cached_input.max(audio_cached)]
            }
            None => [self.input, self.cached_input, self.output, audio, audio_cached],
        };
        // The parts, each bounded by the part it is "of" (a sum may be uneven).
        let (li, lc, lo) =
            (t.long_input.min(t.input), t.long_cached_input.min(t.cached_input), t.long_output.min(t.output));
        let lai = t.long_audio_input.min(li).min(t.audio_input);
        let lac = t.long_audio_cached_input.min(lc).min(t.audio_cached_input);
        let ai = (t.audio_input - lai).min(t.input - li);
        let ac = (t.audio_cached_input - lac).min(t.cached_input - lc);
        [
            (t.input - li - ai, self.input),
            (ai, audio),
            (t.cached_input - lc - ac, self.cached_input),
            (ac, audio_cached),
            (t.output - lo, self.output),
            (li - lai, long[0]),
            (lc - lac, long[1]),
            (lo, long[2]),
            (lai, long[3]),
            (lac, long[4]),
        ]
        .into_iter()
        .try_fold(0i64, |sum, (tokens, price)| sum.checked_add(mul(tokens, price)?))
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
        let mut text = TextCount::default();
        let mut media = Tokens::default();
        let system = field(request, "systemInstruction");
        let contents = field(request, "contents").and_then(Value::as_array).into_iter().flatten();
        for content in contents.chain(system) {
            let parts = field(content, "parts").and_then(Value::as_array).into_iter().flatten();
            for part in parts {
                let written = field(part, "text").and_then(Value::as_str);
                if let Some(t) = written {
                    text.add(t);
                }
                if let Some(inline) = field(part, "inlineData") {
                    // Its size is known: base64 decodes to 3 bytes per 4 characters.
                    let mime = field(inline, "mimeType").and_then(Value::as_str).unwrap_or_default();
                    let encoded = field(inline, "data").and_then(Value::as_str).map_or(0, str::len) as u64;
                    let bytes = encoded / 4 * 3 + (encoded % 4) * 3 / 4;
                    media.add(&self.media_part_tokens(mime, self.media_tokens(mime, bytes)));
                } else if let Some(file) = field(part, "fileData") {
                    let mime = field(file, "mimeType").and_then(Value::as_str).unwrap_or_default();
                    media.add(&self.media_part_tokens(mime, self.media_part(mime)));
                } else if written.is_none() {
                    // A function call or response, code or its result: read as prompt text.
                    text.add_json(part);
                }
            }
        }
        // Function declarations and a response schema are read as prompt text too.
        for extra in [field(request, "tools")]
            .into_iter()
            .chain(
                field(request, "generationConfig")
                    .map(|c| [field(c, "responseSchema"), field(c, "responseJsonSchema")])
                    .into_iter()
                    .flatten(),
            )
            .flatten()
        {
            text.add_json(extra);
        }
        let config = field(request, "generationConfig");
        let max_output = config
            .and_then(|c| field(c, "maxOutputTokens"))
            .and_then(|m| m.as_u64().or_else(|| m.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(self.default_max_output_tokens);
        // Each candidate may use the whole cap.
        let candidates =
            config.and_then(|c| field(c, "candidateCount")).and_then(Value::as_u64).unwrap_or(1).max(1);
        let input = text
            .words
            .div_ceil(self.chars_per_token.max(1))
            .saturating_add(text.singles)
            .saturating_add(media.input)
            .max(1);
        let output = max_output.saturating_mul(candidates);
        Tokens { input, output, audio_input: media.audio_input, ..Tokens::default() }.tiered()
    }

    /// `tokens` of a media part of type `mime`: audio is input priced apart.
    fn media_part_tokens(&self, mime: &str, tokens: u64) -> Tokens {
        let audio = if mime.starts_with("audio/") { tokens } else { 0 };
        Tokens { input: tokens, audio_input: audio, ..Tokens::default() }
    }

    /// One request's estimate with the uploaded files it names, each by its
    /// type and size (`files`): what its reservation is, and what a call that
    /// never said what it used is charged.
    pub fn request_with_files<'a>(
        &self,
        request: &Value,
        files: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Tokens {
        let alone = self.request(request);
        let mut sized = Tokens::default();
        for (mime, bytes) in files {
            sized.add(&self.file_tokens(mime, bytes));
        }
        let mut with = alone;
        with.add(&growth_with_files(alone, &sized));
        with
    }

    /// What an uploaded file referenced by a request is reserved, by its type
    /// and size (`media_tokens`): the worker knows both at submit.
    pub fn file_tokens(&self, mime: &str, bytes: u64) -> Tokens {
        self.media_part_tokens(mime, self.media_tokens(mime, bytes))
    }

    /// Tokens reserved for a media part of known size: its type's flat figure
    /// or what its size may cost (`media_tokens_by_size`), whichever is more.
    /// Used for inline data here, and for uploaded files (`file_tokens`).
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
/// Prompt text as the estimate counts it. ASCII words run about four
/// characters a token. Gemini's tokenizer splits digits one a token,
/// punctuation rarely merges, and other scripts (CJK above all) run about one a
/// character: each of those is reserved a token (a text of digits would
/// otherwise cost four times its reservation).
#[derive(Default)]
struct TextCount {
    /// Letters and spaces, four a token.
    words: u64,
    /// Characters reserved a token each.
    singles: u64,
}

impl TextCount {
    fn add(&mut self, t: &str) {
        for c in t.chars() {
            if c.is_ascii_alphabetic() || c.is_ascii_whitespace() {
                self.words = self.words.saturating_add(1);
            } else {
                self.singles = self.singles.saturating_add(1);
            }
        }
    }

    /// Structured prompt content, counted as its JSON text (its punctuation
    /// one a token: more than Gemini reads, never less).
    fn add_json(&mut self, v: &Value) {
        self.add(&v.to_string());
    }
}

#[cfg(test)]
mod tests;
