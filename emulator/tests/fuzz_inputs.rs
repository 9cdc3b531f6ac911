//! Bad input never crashes the emulator: arbitrary bodies to every JSON and JSONL
//! entry point get a well-formed answer, never a 5xx.

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("batch".to_string()),
                    Just("inputConfig".to_string()),
                    Just("requests".to_string()),
                    Just("contents".to_string()),
                    Just("parts".to_string()),
                    Just("text".to_string()),
                    Just("file_name".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check(
    rt: &tokio::runtime::Runtime,
    emu: &Emu,
    path: &str,
    body: Vec<u8>,
    jsonl_upload: bool,
) -> Result<(), TestCaseError> {
    let (status, text) = rt.block_on(async {
        let r = if jsonl_upload {
            let url = emu.start_upload(body.len() as u64, "jsonl", "fuzz").await;
            let f = emu.chunk(&url, 0, body, true).await;
            let v: Value = f.json().await.unwrap();
            let name = v["file"]["name"].as_str().unwrap().to_string();
            emu.create_file_batch("gemini-2.5-flash", &name).await
        } else {
            emu.http.post(emu.url(path)).header("x-goog-api-key", KEY).body(body).send().await.unwrap()
        };
        (r.status(), r.text().await.unwrap())
    });
    prop_assert!(status.as_u16() < 500, "{path}: {status} {text}");
    if !status.is_success() {
        let v: Value =
            serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(v["error"]["code"].as_u64(), Some(u64::from(status.as_u16())));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_bodies_get_clean_answers(body in arb_json(), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let emu = rt.block_on(start(serde_json::json!({"pendingSecs": 0, "runningSecs": 0})));
        for path in ["/v1beta/models/gemini-2.5-flash:batchGenerateContent",
                     "/v1beta/models/gemini-2.5-flash:generateContent",
                     "/v1beta/models/gemini-2.5-flash:countTokens"] {
            check(&rt, &emu, path, serde_json::to_vec(&body).unwrap(), false)?;
            check(&rt, &emu, path, raw.clone(), false)?;
        }
        // The same values as the lines of an input file: per-line errors, not crashes.
        let mut lines = serde_json::to_vec(&body).unwrap();
        lines.push(b'\n');
        lines.extend_from_slice(&raw);
        check(&rt, &emu, "", lines, true)?;
    }
}
