//! A quote computed in the browser, with the worker's own rules (core's
//! validator, estimate and price table), so it matches `POST /v1/estimate`.

use batchgate_core::pricing::{EstimateRules, PriceTable, Quote, Tokens};
use batchgate_core::results::{Outcome, outcome_of};
use batchgate_core::submit::{Limits, Validator};
use serde_json::Value;

/// `requests`: `[{key?, request}]`. Errors name the first bad line.
pub fn estimate(
    prices: &PriceTable,
    rules: EstimateRules,
    model: &str,
    requests: &[u8],
) -> Result<Quote, String> {
    let model = batchgate_core::model::bare(model);
    let price = prices.price(model).ok_or_else(|| no_price(model))?;
    let mut validator = Validator::new(Limits::default()).with_estimate(rules).with_model(model);
    // Parsed as a `Value`, never as a typed `Vec`: see `outcome_of` for why.
    let Ok(Value::Array(requests)) = serde_json::from_slice(requests) else {
        return Err("requests must be a JSON array".into());
    };
    for (i, item) in requests.into_iter().enumerate() {
        validator.check(i as u64 + 1, item);
    }
    let summary = validator.finish().map_err(|(count, errors)| {
        let first = errors.first().map(|e| format!(" (line {}: {})", e.line, e.message)).unwrap_or_default();
        format!("{count} invalid request(s){first}")
    })?;
    price.quote(&summary.tokens).ok_or_else(too_large)
}

fn too_large() -> String {
    "the quote is too large to reserve".into()
}

/// `"model" has no price`, quoted by hand: `{:?}` would ship Unicode
/// escaping tables in the wasm.
fn no_price(model: &str) -> String {
    format!("model \"{model}\" has no price")
}

/// The cost of one result line's usage (an error line's is zero).
pub fn result_cost(prices: &PriceTable, model: &str, line: &[u8]) -> Result<Quote, String> {
    let model = batchgate_core::model::bare(model);
    let price = prices.price(model).ok_or_else(|| no_price(model))?;
    let line: Value = serde_json::from_slice(line).map_err(|e| format!("a result line is JSON: {e}"))?;
    let usage = match outcome_of(&line) {
        Outcome::Success(u) => u,
        _ => Default::default(),
    };
    price.quote(&Tokens::from(&usage)).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_like_the_worker_and_names_bad_lines() {
        let prices = PriceTable::default();
        let rules = EstimateRules::default();
        let req = json!({"request": {"contents": [{"parts": [{"text": "12345678"}]}], "generationConfig": {"maxOutputTokens": 10}}});
        let two = serde_json::to_vec(&json!([req.clone(), req])).unwrap_or_default();
        let q = estimate(&prices, rules, "gemini-2.5-flash", &two).unwrap_or_default();
        // 2 × (2 input × 300 + 10 output × 2,500) standard, halved for batch.
        assert_eq!((q.standard, q.batch, q.savings), (51_200, 25_600, 25_600));
        let bad = estimate(&prices, rules, "gemini-2.5-flash", br#"[{"request": {}}]"#);
        assert!(bad.is_err_and(|e| e.contains("line 1")));
        assert!(
            estimate(&prices, rules, "gpt-4", b"[]").is_err_and(|e| e.contains("\"gpt-4\" has no price"))
        );
        assert!(estimate(&prices, rules, "gemini-2.5-flash", br#"{"request": {}}"#).is_err());
    }

    #[test]
    fn a_result_line_costs_its_usage_and_an_error_nothing() {
        let prices = PriceTable::default();
        let ok = br#"{"key":"a","response":{"usageMetadata":{"promptTokenCount":10,"cachedContentTokenCount":4,"candidatesTokenCount":3,"thoughtsTokenCount":2,"totalTokenCount":15}}}"#;
        let q = result_cost(&prices, "models/gemini-2.5-flash", ok).unwrap_or_default();
        // 6 input × 300 + 4 cached × 30 + 5 output × 2,500 = 14,420 standard.
        assert_eq!((q.standard, q.batch), (14_420, 7_210));
        let err = br#"{"key":"b","error":{"code":3,"message":"bad"}}"#;
        assert_eq!(result_cost(&prices, "gemini-2.5-flash", err).map(|q| q.batch), Ok(0));
        assert!(result_cost(&prices, "nope", ok).is_err());
    }
}
