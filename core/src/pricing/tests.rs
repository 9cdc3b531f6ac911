use super::*;
use proptest::prelude::*;
use serde_json::json;

#[test]
fn published_prices_are_whole_micro_credits_per_token() {
    // $0.30 / 1M input and $2.50 / 1M output for Gemini 2.5 Flash: 1M tokens
    // of each is 300 + 2,500 credits at the standard rate.
    let flash = PriceTable::default().price("gemini-2.5-flash").unwrap_or_default();
    let t = Tokens { input: 1_000_000, cached_input: 0, output: 1_000_000 };
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
    let huge = Tokens { input: 1, cached_input: 0, output: i64::MAX as u64 };
    assert_eq!(flash.quote(&huge), None);
    assert_eq!(flash.quote(&Tokens { input: u64::MAX, cached_input: 0, output: 0 }), None);
    // What Gemini reports is charged saturating: never below zero.
    assert_eq!(flash.standard(&huge), i64::MAX);
    assert!(flash.batch(&huge) > 0);
    assert_eq!(flash.batch(&huge), i64::MAX / 2 + 1);
}

#[test]
fn an_operator_table_replaces_the_default_and_bad_ones_are_refused() {
    let t = PriceTable::from_json(r#"{"my-model": {"input": 1, "output": 2, "cachedInput": 0}}"#);
    let t = t.unwrap_or_default();
    assert_eq!(t.price("my-model"), Some(Price { input: 1, output: 2, cached_input: 0 }));
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
    let u = Usage { prompt: 100, candidates: 20, thoughts: 30, cached: 40, tool_use_prompt: 5, total: 155 };
    let t = Tokens::from(&u);
    assert_eq!(t, Tokens { input: 65, cached_input: 40, output: 50 });
    let p = Price { input: 10, output: 100, cached_input: 1 };
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
    assert_eq!(rules.request(&req), Tokens { input: 3 + 258 + 2_580, cached_input: 0, output: 100 });
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
        let p = Price { input: pi, output: po, cached_input: pc };
        let t = Tokens { input, cached_input: cached, output };
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
        let p = Price { input: pi, output: po, cached_input: pc };
        let q = p.quote(&Tokens { input, cached_input: cached, output }).unwrap_or_default();
        prop_assert!(q.batch * 2 - q.standard == 0 || q.batch * 2 - q.standard == 1);
        prop_assert_eq!(q.standard - q.batch, q.savings);
        prop_assert!(q.batch >= 0);
    }

    /// Costs add up: pricing a sum never differs from the sum of prices by more
    /// than the one rounding.
    #[test]
    fn standard_cost_is_additive(a in 0u64..1 << 30, b in 0u64..1 << 30, c in 0u64..1 << 30, d in 0u64..1 << 30) {
        let p = PriceTable::default().price("gemini-2.5-pro").unwrap_or_default();
        let x = Tokens { input: a, cached_input: 0, output: b };
        let y = Tokens { input: c, cached_input: 0, output: d };
        let mut sum = x;
        sum.add(&y);
        prop_assert_eq!(p.standard(&sum), p.standard(&x) + p.standard(&y));
    }
}
