//! What a JSON text may cost once parsed into a `serde_json::Value`, read
//! from its bytes before it is parsed. A parsed object is a B-tree node of a
//! few hundred bytes against the seven it takes to write (`{"":0}`), so a
//! body well within its byte cap could need gigabytes parsed and end the
//! worker's isolate (128 MB) for every request in it. Bodies and lines whose
//! cost passes their bound are refused unparsed.

/// One JSON object parsed, in a 32-bit (wasm) worker: a B-tree leaf of
/// eleven `String` keys and `Value`s and its header, rounded up. (Measured
/// natively, 64-bit: 672 bytes an object; pointers are half as wide in wasm.)
pub const OBJECT_COST: u64 = 352;
/// One value in an array or an object (a `Value` is 16 bytes in wasm).
pub const VALUE_COST: u64 = 16;

/// The most a JSON body may cost parsed: what a worker parses whole
/// (`POST /v1/jobs` as `application/json`, the drop-in's inline batches).
/// Larger jobs stream as NDJSON, a line at a time.
pub const MAX_BODY_COST: u64 = 48 << 20;
/// The most one NDJSON line (one request) may cost parsed.
pub const MAX_LINE_COST: u64 = 32 << 20;

/// The bytes parsing `json` into a `Value` may take, roughly and from above
/// for the shapes that cost most: its own length (strings are copied), each
/// object, and each value held in an array or object. Braces, brackets and
/// separators inside strings do not count.
pub fn parse_cost(json: &[u8]) -> u64 {
    let (mut objects, mut values) = (0u64, 0u64);
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => objects += 1,
            // A value in a container: each separator, and the first in each (`[`, `:`).
            b',' | b'[' | b':' => values += 1,
            _ => {}
        }
    }
    (json.len() as u64)
        .saturating_add(objects.saturating_mul(OBJECT_COST))
        .saturating_add(values.saturating_mul(VALUE_COST))
}

/// Why `json` is refused as too costly to parse (`what`: "the body", "line 3"), if it is.
pub fn check(json: &[u8], limit: u64, what: &str) -> Result<(), String> {
    let cost = parse_cost(json);
    if cost <= limit {
        return Ok(());
    }
    Err(format!(
        "{what} would take about {} MiB to read ({} bytes of JSON in many small objects or values); the most is {} MiB: send fewer, larger values, or the job as NDJSON",
        cost >> 20,
        json.len(),
        limit >> 20
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn objects_and_values(v: &Value) -> (u64, u64) {
        match v {
            Value::Object(m) => {
                m.values().map(objects_and_values).fold((1, m.len() as u64), |a, b| (a.0 + b.0, a.1 + b.1))
            }
            Value::Array(a) => {
                a.iter().map(objects_and_values).fold((0, a.len() as u64), |a, b| (a.0 + b.0, a.1 + b.1))
            }
            _ => (0, 0),
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            // Strings full of what would count outside one.
            "[{}\\[\\]:,\"\\\\a-z ]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                prop::collection::btree_map("[a-z{}:,\"]{0,6}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Every object is counted, and every value it or an array holds at
        /// least once and at most three times (a member's `:` and `,`, an
        /// array's `[`), whatever the strings hold.
        #[test]
        fn the_cost_counts_every_object_and_value_outside_strings(v in any_json(), pretty in any::<bool>()) {
            let text = if pretty { serde_json::to_vec_pretty(&v) } else { serde_json::to_vec(&v) }.unwrap_or_default();
            let (objects, values) = objects_and_values(&v);
            let cost = parse_cost(&text);
            let floor = text.len() as u64 + objects * OBJECT_COST + values * VALUE_COST;
            prop_assert!(cost >= floor, "{cost} < {floor} for {}", String::from_utf8_lossy(&text));
            let ceiling = text.len() as u64 + objects * OBJECT_COST + (3 * values + 1) * VALUE_COST;
            prop_assert!(cost <= ceiling, "{cost} > {ceiling}");
        }
    }

    #[test]
    fn many_small_objects_cost_far_more_than_their_bytes_and_are_refused() {
        let bomb = format!("[{}]", vec![r#"{"":0}"#; 200_000].join(","));
        assert!(parse_cost(bomb.as_bytes()) > 200_000 * OBJECT_COST);
        let err = check(bomb.as_bytes(), MAX_BODY_COST, "the body").unwrap_err();
        assert!(err.contains("the body would take about") && err.contains("the most is 48 MiB"), "{err}");
    }

    #[test]
    fn one_large_value_costs_its_bytes() {
        let inline = json!({"request": {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "A".repeat(8 << 20)}}]}]}});
        let text = serde_json::to_vec(&inline).unwrap_or_default();
        assert!(parse_cost(&text) < text.len() as u64 + 4096);
        assert_eq!(check(&text, MAX_LINE_COST, "line 1"), Ok(()));
    }

    #[test]
    fn escaped_quotes_keep_a_string_open() {
        assert_eq!(parse_cost(br#""a\"{{{""#), 8);
        assert_eq!(parse_cost(br#"["\\",{}]"#), 9 + OBJECT_COST + 2 * VALUE_COST);
    }
}
