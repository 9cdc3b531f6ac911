//! A quote computed in the browser, with the worker's own rules (core's
//! validator, estimate and price table), so it matches `POST /v1/estimate`.

use batchgate_core::pricing::{EstimateRules, PriceTable, Quote};
use batchgate_core::submit::{Limits, Validator};
use serde_json::Value;

/// `requests`: `[{key?, request}]`. Errors name the first bad line.
pub fn estimate(
    prices: &PriceTable,
    rules: EstimateRules,
    model: &str,
    requests: Vec<Value>,
) -> Result<Quote, String> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let price = prices.price(model).ok_or_else(|| format!("model {model:?} has no price"))?;
    let mut validator = Validator::new(Limits::default()).with_estimate(rules);
    for (i, item) in requests.into_iter().enumerate() {
        validator.item(i as u64 + 1, item);
    }
    let summary = validator.finish().map_err(|(count, errors)| {
        let first = errors.first().map(|e| format!(" (line {}: {})", e.line, e.message)).unwrap_or_default();
        format!("{count} invalid request(s){first}")
    })?;
    Ok(price.quote(&summary.tokens))
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
        let q = estimate(&prices, rules, "gemini-2.5-flash", vec![req.clone(), req]).unwrap_or_default();
        // 2 × (2 input × 300 + 10 output × 2,500) standard, halved for batch.
        assert_eq!((q.standard, q.batch, q.savings), (51_200, 25_600, 25_600));
        let bad = estimate(&prices, rules, "gemini-2.5-flash", vec![json!({"request": {}})]);
        assert!(bad.is_err_and(|e| e.contains("line 1")));
        assert!(estimate(&prices, rules, "gpt-4", vec![]).is_err());
    }
}
