use super::*;
use proptest::prelude::*;
use serde_json::json;

#[test]
fn published_prices_are_whole_micro_credits_per_token() {
    // $0.30 / 1M input and $2.50 / 1M output for Gemini 2.5 Flash: 1M tokens
    // of each is 300 + 2,500 credits at the standard rate.
    let flash = PriceTable::default().price("gemini-2.5-flash").unwrap_or_default();
    let t = Tokens { input: 1_000_000, cached_input: 0, output: 1_000_000, ..Default::default() };
    assert_eq!(flash.standard(&t), 2_800 * 1_000_000);
    assert_eq!(flash.batch(&t), 1_400 * 1_000_000);
}

#[test]
fn versioned_ids_take_the_longest_listed_prefix() {
    let table = PriceTable::default();
    let lite = table.price("gemini-2.5-flash-lite").unwrap_or_default();
    assert_eq!(table.price("models/gemini-2.5-flash-lite-preview-06-17"), Some(lite));
    assert_ne!(table.price("gemini-2.5-flash-preview-09-2025"), Some(lite));
    assert_eq!(table.price("gemini-2.5-flash-preview-09-2025"), table.price("gemini-2.5-flash"));
    assert_eq!(table.price("gemini-2.5-flashy"), None);
    assert_eq!(table.price("gpt-4"), None);
    assert_eq!(table.price("gemini-2.5-flash-001"), table.price("gemini-2.5-flash"));
}

/// Issue 17: `gemini-2.5-flash-image` and `-tts` produce other modalities at
/// other prices; they took the text model's price by longest prefix.
#[test]
fn a_longer_name_of_another_model_is_not_priced_as_the_shorter_one() {
    let table = PriceTable::default();
    for other in [
        "gemini-2.5-flash-image",
        "gemini-2.5-flash-tts",
        "gemini-2.5-flash-image-preview",
        "gemini-2.5-pro-tts",
    ] {
        let text_model = if other.contains("pro") { "gemini-2.5-pro" } else { "gemini-2.5-flash" };
        assert_ne!(table.price(other), table.price(text_model), "{other}");
    }
    assert_eq!(table.price("gemini-2.5-flash-tts"), None, "not a model with a price of its own");
    assert_eq!(table.price("gemini-2.5-flash-image").map(|p| p.output), Some(30_000), "its own image rate");
    let own = PriceTable::from_json(
        r#"{"gemini-2.5-flash-image": {"input": 300, "output": 30000, "cachedInput": 30}}"#,
    )
    .unwrap_or_default();
    assert_eq!(own.price("gemini-2.5-flash-image").map(|p| p.output), Some(30_000));
}

/// Issue 17: a request with `maxOutputTokens: i64::MAX` saturated the standard
/// cost and the batch half wrapped negative, reserving nothing.
#[test]
fn a_quote_too_large_to_hold_is_refused_never_wrapped() {
    let flash = PriceTable::default().price("gemini-2.5-flash").unwrap_or_default();
    let huge = Tokens { input: 1, cached_input: 0, output: i64::MAX as u64, ..Default::default() };
    assert_eq!(flash.quote(&huge), None);
    assert_eq!(
        flash.quote(&Tokens { input: u64::MAX, cached_input: 0, output: 0, ..Default::default() }),
        None
    );
    // What Gemini reports is charged saturating: never below zero.
    assert_eq!(flash.standard(&huge), i64::MAX);
    assert!(flash.batch(&huge) > 0);
    assert_eq!(flash.batch(&huge), i64::MAX / 2 + 1);
}

#[test]
fn an_operator_table_replaces_the_default_and_bad_ones_are_refused() {
    let t = PriceTable::from_json(r#"{"my-model": {"input": 1, "output": 2, "cachedInput": 0}}"#);
    let t = t.unwrap_or_default();
    assert_eq!(
        t.price("my-model"),
        Some(Price { input: 1, output: 2, cached_input: 0, ..Default::default() })
    );
    assert_eq!(t.price("gemini-2.5-flash"), None);
    assert!(PriceTable::from_json(r#"{"m": {"input": -1, "output": 2, "cachedInput": 0}}"#).is_err());
    assert!(PriceTable::from_json(r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "x": 1}}"#).is_err());
    assert!(PriceTable::from_json("{}").is_err());
    assert!(PriceTable::from_json("[").is_err());
    // Each refusal names the model and the field.
    let missing = PriceTable::from_json(r#"{"m": {"input": 1, "output": 2}}"#).unwrap_err();
    assert!(missing.contains("m") && missing.contains("cachedInput"), "{missing}");
    let fraction =
        PriceTable::from_json(r#"{"m": {"input": 1.5, "output": 2, "cachedInput": 0}}"#).unwrap_err();
    assert!(fraction.contains("\"input\" as an integer"), "{fraction}");
    let unknown =
        PriceTable::from_json(r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "x": 1}}"#).unwrap_err();
    assert!(unknown.contains("\"x\""), "{unknown}");
    assert!(PriceTable::from_json(r#"{"m": 3}"#).unwrap_err().contains("must be an object"));
}

#[test]
fn usage_maps_cached_prompt_and_thinking_to_their_prices() {
    let u = Usage {
        prompt: 100,
        candidates: 20,
        thoughts: 30,
        cached: 40,
        tool_use_prompt: 5,
        total: 155,
        ..Default::default()
    };
    let t = Tokens::from(&u);
    assert_eq!(t, Tokens { input: 65, cached_input: 40, output: 50, ..Default::default() });
    let p = Price { input: 10, output: 100, cached_input: 1, ..Default::default() };
    assert_eq!(p.standard(&t), 650 + 40 + 5_000);
}

#[test]
fn estimates_count_text_media_and_the_output_cap() {
    let rules = EstimateRules::default();
    let req = json!({
        "systemInstruction": {"parts": [{"text": "abcd"}]},
        "contents": [{"role": "user", "parts": [
            {"text": "12345678"},
            {"inlineData": {"mimeType": "image/png", "data": ""}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "x"}}
        ]}],
        "generationConfig": {"maxOutputTokens": 100}
    });
    assert_eq!(
        rules.request(&req),
        Tokens { input: 1 + 8 + 258 + 2_580, cached_input: 0, output: 100, ..Default::default() },
        "four letters a token, each digit one"
    );
    let prose = json!({"contents": [{"parts": [{"text": "the cat sat, on 3 mats!"}]}]});
    assert_eq!(
        rules.request(&prose).input,
        20_u64.div_ceil(4) + 3,
        "letters and spaces by four; ',', '3', '!' one each"
    );
    let bare = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    assert_eq!(rules.request(&bare).output, rules.default_max_output_tokens);
    let snake =
        json!({"contents": [{"parts": [{"text": "hi"}]}], "generation_config": {"max_output_tokens": "7"}});
    assert_eq!(rules.request(&snake).output, 7);
}

/// Issue 17: CJK text is about a token a character, not four characters a
/// token: a Japanese prompt was reserved a quarter of its input.
#[test]
fn text_in_other_scripts_is_reserved_a_token_a_character() {
    let rules = EstimateRules::default();
    let req = |t: &str| json!({"contents": [{"parts": [{"text": t}]}]});
    assert_eq!(rules.request(&req(&"あ".repeat(1_000))).input, 1_000);
    assert_eq!(rules.request(&req(&"a".repeat(1_000))).input, 250);
    assert_eq!(rules.request(&req(&format!("{}{}", "a".repeat(400), "é".repeat(10)))).input, 100 + 10);
}

/// Issue 17: media counted a flat number whatever their length; inline data's
/// size is known, so an hour of audio is reserved as an hour.
#[test]
fn inline_media_is_estimated_from_its_size() {
    let rules = EstimateRules::default();
    let b64 = |bytes: usize| "A".repeat(bytes.div_ceil(3) * 4);
    let part = |mime: &str, bytes: usize| json!({"contents": [{"parts": [{"inlineData": {"mimeType": mime, "data": b64(bytes)}}]}]});
    // An hour of 32 kbit/s audio (14.4 MB): at least an hour's 115,200 tokens.
    assert!(rules.request(&part("audio/mp3", 14_400_000)).input >= 3_600 * 32);
    // A small image still costs its flat 258.
    assert_eq!(rules.request(&part("image/png", 1_000)).input, 258);
    // A 4 MB PDF: up to 1,000 pages of 258.
    assert_eq!(rules.request(&part("application/pdf", 4_000_000)).input, 258_000);
    assert_eq!(media_tokens_by_size("video/mp4", 2_500 * 60), 60 * 263, "a minute of 20 kbit/s video");
    assert_eq!(media_tokens_by_size("text/plain", 3_000), 1_000);
}

proptest! {
    /// Any token counts at all: a quote is refused or is non-negative, and it
    /// never goes down when a count goes up.
    #[test]
    fn quotes_are_never_negative_and_monotone(input in any::<u64>(), cached in any::<u64>(), output in any::<u64>(),
                                              more in any::<u64>(), which in 0usize..3,
                                              pi in 0i64..100_000, pc in 0i64..100_000, po in 0i64..100_000) {
        let p = Price { input: pi, output: po, cached_input: pc, ..Default::default() };
        let t = Tokens { input, cached_input: cached, output, ..Default::default() };
        let mut bigger = t;
        let field = [&mut bigger.input, &mut bigger.cached_input, &mut bigger.output];
        if let Some(f) = field.into_iter().nth(which) {
            *f = f.saturating_add(more);
        }
        if let Some(q) = p.quote(&t) {
            prop_assert!(q.standard >= 0 && q.batch >= 0 && q.savings >= 0 && q.batch <= q.standard);
            if let Some(b) = p.quote(&bigger) {
                prop_assert!(b.standard >= q.standard && b.batch >= q.batch);
            }
        } else {
            prop_assert!(p.quote(&bigger).is_none(), "a larger job priced where a smaller could not be");
        }
        prop_assert!(p.batch(&t) >= 0 && p.standard(&t) >= 0);
    }

    /// Batch is half of standard, rounded up by less than one micro-credit,
    /// and the savings make up the difference exactly.
    #[test]
    fn batch_is_half_of_standard(input in 0u64..1 << 40, cached in 0u64..1 << 40, output in 0u64..1 << 40,
                                 pi in 0i64..20_000, pc in 0i64..2_000, po in 0i64..20_000) {
        let p = Price { input: pi, output: po, cached_input: pc, ..Default::default() };
        let q = p.quote(&Tokens { input, cached_input: cached, output, ..Default::default() }).unwrap_or_default();
        prop_assert!(q.batch * 2 - q.standard == 0 || q.batch * 2 - q.standard == 1);
        prop_assert_eq!(q.standard - q.batch, q.savings);
        prop_assert!(q.batch >= 0);
    }

    /// Costs add up: pricing a sum never differs from the sum of prices by more
    /// than the one rounding.
    #[test]
    fn standard_cost_is_additive(a in 0u64..1 << 30, b in 0u64..1 << 30, c in 0u64..1 << 30, d in 0u64..1 << 30) {
        let p = PriceTable::default().price("gemini-2.5-pro").unwrap_or_default();
        let x = Tokens { input: a, cached_input: 0, output: b, ..Default::default() };
        let y = Tokens { input: c, cached_input: 0, output: d, ..Default::default() };
        let mut sum = x;
        sum.add(&y);
        prop_assert_eq!(p.standard(&sum), p.standard(&x) + p.standard(&y));
    }
}

/// Gemini Flash bills audio input at its own rate ($1.00 / 1M on 2.5 Flash,
/// against $0.30 for text): audio priced as text was a third of its cost.
#[test]
fn audio_input_is_billed_at_its_own_rate() {
    let flash = PriceTable::default().price("gemini-2.5-flash").unwrap_or_default();
    // 1,000 prompt tokens, 600 of them audio, 100 of those cached; 200 text cached.
    let u = Usage {
        prompt: 1_000,
        cached: 300,
        audio_prompt: 600,
        audio_cached: 100,
        candidates: 10,
        ..Default::default()
    };
    let t = Tokens::from(&u);
    assert_eq!((t.input, t.audio_input, t.cached_input, t.audio_cached_input), (700, 500, 300, 100));
    assert_eq!(flash.standard(&t), 200 * 300 + 500 * 1_000 + 200 * 30 + 100 * 100 + 10 * 2_500);
    // A model without an audio rate bills audio as any input.
    let pro = PriceTable::default().price("gemini-2.5-pro").unwrap_or_default();
    let text = Tokens { audio_input: 0, audio_cached_input: 0, ..t };
    assert_eq!(pro.standard(&t), pro.standard(&text));
}

/// Gemini Pro bills a request whose prompt passes 200k tokens at higher rates,
/// all of it: input, cache and output.
#[test]
fn a_prompt_past_200k_bills_the_whole_request_at_long_context_rates() {
    let pro = PriceTable::default().price("gemini-2.5-pro").unwrap_or_default();
    let line = |prompt| Usage { prompt, candidates: 1_000, thoughts: 500, ..Default::default() };
    let at_line = Tokens::from(&line(LONG_CONTEXT_PROMPT_TOKENS));
    assert_eq!(pro.standard(&at_line), 200_000 * 1_250 + 1_500 * 10_000, "200k itself is the lower tier");
    let past = Tokens::from(&line(LONG_CONTEXT_PROMPT_TOKENS + 1));
    assert_eq!(pro.standard(&past), 200_001 * 2_500 + 1_500 * 15_000);
    // Summed over lines, each is billed at its own tier.
    let mut tally = crate::results::Tally::default();
    for prompt in [1_000, 250_000, 199_999] {
        tally.add(&crate::results::Outcome::Success(line(prompt)));
    }
    let each: i64 = [1_000, 250_000, 199_999].iter().map(|p| pro.standard(&Tokens::from(&line(*p)))).sum();
    assert_eq!(pro.standard(&Tokens::from(&tally)), each);
    // Tool-use prompt tokens are the request's input too.
    let tools = Usage { prompt: 150_000, tool_use_prompt: 60_000, ..Default::default() };
    assert_eq!(Tokens::from(&tools).long_input, 210_000);
    // A model without the tier bills a long prompt at its one rate.
    let flash = PriceTable::default().price("gemini-2.5-flash").unwrap_or_default();
    assert_eq!(flash.standard(&past), 200_001 * 300 + 1_500 * 2_500);
}

#[test]
fn operators_set_audio_and_long_context_rates_and_nothing_else() {
    let table = PriceTable::from_json(
        r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "audioInput": 5, "audioCachedInput": 3,
                  "longContext": {"input": 2, "output": 4, "cachedInput": 1}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let m = table.price("m").unwrap_or_default();
    assert_eq!((m.audio_input, m.audio_cached_input), (Some(5), Some(3)));
    assert_eq!(m.long_context, Some(Rates { input: 2, output: 4, cached_input: 1 }));
    for (bad, says) in [
        (r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "audioInput": -1}}"#, "negative"),
        (r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "audioInput": "5"}}"#, "\"audioInput\""),
        (
            r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "longContext": {"input": 1}}}"#,
            "longContext needs",
        ),
        (
            r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "longContext": {"input": 1, "output": 1, "cachedInput": -1}}}"#,
            "negative",
        ),
        (
            r#"{"m": {"input": 1, "output": 2, "cachedInput": 0, "longContext": {"input": 1, "output": 1, "cachedInput": 1, "x": 1}}}"#,
            "\"x\"",
        ),
        (r#"{"m": {"output": 2, "cachedInput": 0, "audioInput": 5}}"#, "\"input\""),
    ] {
        let e = PriceTable::from_json(bad).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn estimates_reserve_audio_and_long_prompts_at_their_rates() {
    let rules = EstimateRules::default();
    // 8,000 bytes of base64: 6,000 bytes of audio, at least its flat 1,920 tokens.
    let audio = json!({"contents": [{"parts": [
        {"text": "abcd"},
        {"inlineData": {"mimeType": "audio/mp3", "data": "A".repeat(8_000)}},
        {"fileData": {"mimeType": "audio/wav", "fileUri": "files/x"}}]}]});
    let t = rules.request(&audio);
    assert_eq!(t.audio_input, 2 * rules.media_tokens);
    assert_eq!(t.input, 1 + 2 * rules.media_tokens);
    let long = json!({"contents": [{"parts": [{"text": "a".repeat(4 * 200_001)}]}],
                      "generationConfig": {"maxOutputTokens": 10}});
    let t = rules.request(&long);
    assert_eq!((t.input, t.long_input, t.output, t.long_output), (200_001, 200_001, 10, 10));
    let pro = PriceTable::default().price("gemini-2.5-pro").unwrap_or_default();
    assert_eq!(pro.standard(&t), 200_001 * 2_500 + 10 * 15_000);
    // An estimate within a quarter of the line may be past it: reserved long.
    let near = json!({"contents": [{"parts": [{"text": "a".repeat(4 * 150_001)}]}]});
    assert_eq!(rules.request(&near).long_input, 150_001);
    let far = json!({"contents": [{"parts": [{"text": "a".repeat(4 * 150_000)}]}]});
    assert_eq!(rules.request(&far).long_input, 0);
    assert_eq!(rules.file_tokens("audio/ogg", 1).audio_input, rules.media_tokens);
    assert_eq!(rules.file_tokens("video/mp4", 1).audio_input, 0);
}

/// Google's bill for one response, written out plainly: the reference the
/// token split is checked against.
fn bill(p: &Price, u: &Usage) -> i64 {
    let long = u.prompt + u.tool_use_prompt > LONG_CONTEXT_PROMPT_TOKENS;
    let (audio, audio_cached) =
        (p.audio_input.unwrap_or(p.input), p.audio_cached_input.unwrap_or(p.cached_input));
    let [input, audio, cached, audio_cached, output] = match (long, p.long_context) {
        (true, Some(l)) => {
            [l.input, l.input.max(audio), l.cached_input, l.cached_input.max(audio_cached), l.output]
        }
        _ => [p.input, audio, p.cached_input, audio_cached, p.output],
    };
    let uncached_audio = u.audio_prompt - u.audio_cached;
    let plain = u.prompt - u.cached - uncached_audio + u.tool_use_prompt;
    [
        (plain, input),
        (uncached_audio, audio),
        (u.cached - u.audio_cached, cached),
        (u.audio_cached, audio_cached),
        (u.candidates + u.thoughts, output),
    ]
    .iter()
    .map(|(n, rate)| *n as i64 * rate)
    .sum()
}

/// A response's counts as Gemini reports them: cached ≤ prompt, audio a part
/// of the prompt and cached audio a part of both.
fn consistent((prompt, out, tools, a, b, c): (u64, u64, u64, u64, u64, u64)) -> Usage {
    let cached = a.min(prompt);
    let audio_cached = c.min(cached);
    let audio_prompt = (audio_cached + b).min(audio_cached + prompt - cached);
    Usage {
        prompt,
        candidates: out,
        tool_use_prompt: tools,
        cached,
        audio_prompt,
        audio_cached,
        ..Default::default()
    }
}

proptest! {
    /// Every response is billed what Google bills it, and however responses
    /// are grouped, a job is billed what they cost one by one.
    #[test]
    fn a_tally_costs_what_google_bills_its_lines(lines in proptest::collection::vec(
        (0u64..400_000, 0u64..100_000, 0u64..50_000, 0u64..300_000, 0u64..300_000, 0u64..300_000), 0..12)) {
        let table = PriceTable::default();
        let mut tally = crate::results::Tally::default();
        let usages: Vec<Usage> = lines.into_iter().map(consistent).collect();
        for u in &usages {
            tally.add(&crate::results::Outcome::Success(*u));
        }
        for (model, price) in table.models() {
            let mut each = 0i64;
            for u in &usages {
                let billed = price.standard(&Tokens::from(u));
                prop_assert_eq!(billed, bill(price, u), "{} {:?}", model, u);
                each += billed;
            }
            prop_assert_eq!(price.standard(&Tokens::from(&tally)), each, "{}", model);
        }
    }
}

/// Past 200k on a model without the tier, audio stays at audio's rate: adding
/// text to pass the line must never lower the bill.
#[test]
fn passing_the_line_on_a_model_without_the_tier_keeps_audios_rate() {
    let flash = PriceTable::default().price("gemini-2.5-flash").unwrap_or_default();
    let u = Usage { prompt: 250_000, audio_prompt: 240_000, candidates: 100, ..Default::default() };
    assert_eq!(flash.standard(&Tokens::from(&u)), 240_000 * 1_000 + 10_000 * 300 + 100 * 2_500);
    let under = Usage { prompt: 150_000, audio_prompt: 150_000, ..Default::default() };
    let over = Usage { prompt: 200_001, audio_prompt: 150_000, ..Default::default() };
    assert!(flash.standard(&Tokens::from(&over)) > flash.standard(&Tokens::from(&under)));
}

/// Gemini's per-modality lists never make a line unreadable: the line is
/// billed from its counts, and a list that cannot be read bills its tokens as audio.
#[test]
fn an_unreadable_modality_list_bills_as_audio_and_keeps_the_line() {
    use crate::results::{Outcome, scan_line};
    for details in
        [r#""AUDIO""#, r#"[{"modality": "AUDIO", "tokenCount": "7"}]"#, r#"[7]"#, r#"[{"modality": 3}]"#]
    {
        let line = format!(
            r#"{{"key": "k", "response": {{"usageMetadata": {{"promptTokenCount": 10, "cachedContentTokenCount": 4, "promptTokensDetails": {details}, "cacheTokensDetails": {details}}}}}}}"#
        );
        let Outcome::Success(u) = scan_line(line.as_bytes()).outcome else { panic!("{line} was refused") };
        assert_eq!((u.prompt, u.audio_prompt, u.cached, u.audio_cached), (10, 10, 4, 4), "{line}");
    }
    let readable = r#"{"key": "k", "response": {"usageMetadata": {"promptTokenCount": 10, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": "x"}, {"modality": "AUDIO"}]}}}"#;
    let Outcome::Success(u) = scan_line(readable.as_bytes()).outcome else { panic!("refused") };
    assert_eq!(u.audio_prompt, 0, "other modalities are not read; a missing count is proto3's zero");
}

#[test]
fn files_that_take_a_request_past_the_line_move_it_to_the_long_tier() {
    let rules = EstimateRules::default();
    let request = rules.request(&json!({"contents": [{"parts": [{"text": "a".repeat(4 * 150_000)}]}],
                                        "generationConfig": {"maxOutputTokens": 10}}));
    assert_eq!(request.long_input, 0);
    // An hour of audio: 32 tokens a second at no less than 1,000 bytes a second.
    let file = rules.file_tokens("audio/wav", 3_600_000);
    let grown = growth_with_files(request, &file);
    let mut job = request;
    job.add(&grown);
    assert_eq!((job.input, job.long_input, job.long_output), (150_000 + 115_200, 265_200, 10));
    assert_eq!((job.audio_input, job.long_audio_input), (115_200, 115_200));
    // Files that leave it short only add themselves.
    let small = rules.file_tokens("image/png", 10);
    let short = rules.request(&json!({"contents": [{"parts": [{"text": "a short one"}]}]}));
    assert_eq!(growth_with_files(short, &small), small);
}

#[test]
fn a_request_with_files_is_sized_by_them_and_tiered_with_them() {
    let rules = EstimateRules::default();
    let req = json!({"contents": [{"parts": [{"text": "transcribe"}, {"fileData": {"mimeType": "audio/wav", "fileUri": "files/a"}}]}]});
    let alone = rules.request(&req);
    assert_eq!(rules.request_with_files(&req, []), alone);
    // Two hours of audio: 230,400 tokens, past the line.
    let with = rules.request_with_files(&req, [("audio/wav", 7_200_000)]);
    assert_eq!(with.input, alone.input + 230_400);
    assert_eq!((with.long_input, with.long_audio_input), (with.input, with.audio_input));
}

/// Every part Gemini reads as prompt text is reserved: a 40,000-character
/// function response was reserved nothing, and a call that never said what it
/// used was charged that.
#[test]
fn function_responses_code_and_schemas_are_reserved_as_text() {
    let rules = EstimateRules::default();
    let bare = rules.request(&json!({"contents": [{"parts": [{"text": "go"}]}]})).input;
    let big = "x".repeat(40_000);
    for part in [
        json!({"functionResponse": {"name": "f", "response": {"result": big}}}),
        json!({"functionCall": {"name": "f", "args": {"q": big}}}),
        json!({"executableCode": {"language": "PYTHON", "code": big}}),
        json!({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": big}}),
    ] {
        let req = json!({"contents": [{"parts": [{"text": "go"}]}, {"role": "model", "parts": [part]}]});
        assert!(rules.request(&req).input >= bare + 10_000, "{req}");
    }
    let schema = json!({"contents": [{"parts": [{"text": "go"}]}],
                        "generationConfig": {"responseSchema": {"type": "OBJECT", "description": big}}});
    assert!(rules.request(&schema).input >= bare + 10_000);
}

/// A job's price is stored with it: one written by a later version (a rate
/// this one does not know) still reads, where the operator's table refuses it.
#[test]
fn a_stored_price_reads_past_fields_it_does_not_know() {
    let stored = r#"{"input": 1, "output": 2, "cachedInput": 0, "videoInput": 9}"#;
    let price: Price = serde_json::from_str(stored).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((price.input, price.output), (1, 2));
    assert!(PriceTable::from_json(&format!(r#"{{"m": {stored}}}"#)).is_err());
}
