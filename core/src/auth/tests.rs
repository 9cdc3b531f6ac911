use super::*;
use proptest::prelude::*;
use serde_json::json;

const SECRET: &[u8] = b"dev-secret";
const NOW: u64 = 1_800_000_000;

fn token(claims: Value) -> String {
    sign(&claims, SECRET)
}

fn with_header(header: &str, claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(header);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = HmacSha256::new_from_slice(SECRET).unwrap_or_else(|e| panic!("{e}"));
    mac.update(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[test]
fn a_signed_token_names_its_account() {
    let t = token(json!({"sub": "acct-1", "exp": NOW + 60}));
    assert_eq!(verify(&t, SECRET, NOW), Ok(Claims { account: "acct-1".into(), exp: NOW + 60 }));
}

#[test]
fn every_bad_token_is_refused_with_its_reason() {
    let good = json!({"sub": "a", "exp": NOW + 60});
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "missing_token"),
        ("garbage".into(), "malformed_token"),
        ("a.b.c.d".into(), "malformed_token"),
        ("!!.!!.!!".into(), "malformed_token"),
        (token(json!({"sub": "a", "exp": NOW - 31})), "token_expired"),
        (token(json!({"sub": "a"})), "invalid_claims"),
        (token(json!({"exp": NOW + 60})), "invalid_claims"),
        (token(json!({"sub": "", "exp": NOW + 60})), "invalid_claims"),
        (token(json!({"sub": "a b", "exp": NOW + 60})), "invalid_claims"),
        (token(json!({"sub": "a", "exp": "soon"})), "invalid_claims"),
        (token(json!({"sub": "a", "exp": NOW + 60, "nbf": NOW + 600})), "token_not_yet_valid"),
        (sign(&good, b"another-secret"), "bad_signature"),
        (with_header(r#"{"alg":"none","typ":"JWT"}"#, &good), "unsupported_algorithm"),
        (with_header(r#"{"alg":"HS512"}"#, &good), "unsupported_algorithm"),
        (with_header(r#"{"typ":"JWT"}"#, &good), "unsupported_algorithm"),
        (
            format!("{}.", with_header(r#"{"alg":"none"}"#, &good).rsplit_once('.').map_or("", |(a, _)| a)),
            "unsupported_algorithm",
        ),
    ];
    for (t, code) in cases {
        assert_eq!(verify(&t, SECRET, NOW).map_err(|e| e.code()), Err(code), "token {t:?}");
    }
}

#[test]
fn a_tampered_payload_breaks_the_signature() {
    let t = token(json!({"sub": "alice", "exp": NOW + 60}));
    let (h, rest) = t.split_once('.').unwrap_or_default();
    let (_, s) = rest.split_once('.').unwrap_or_default();
    let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "bob", "exp": NOW + 60}).to_string());
    assert_eq!(verify(&format!("{h}.{forged}.{s}"), SECRET, NOW), Err(TokenError::Signature));
}

#[test]
fn secrets_compare_whole() {
    assert!(same_secret("abc", "abc"));
    assert!(!same_secret("abc", "abd"));
    assert!(!same_secret("abc", "abcd"));
}

proptest! {
    /// No input crashes the verifier, and nothing unsigned gets through.
    #[test]
    fn arbitrary_tokens_are_refused(s in ".{0,200}") {
        prop_assert!(verify(&s, SECRET, NOW).is_err());
    }
}

#[test]
fn an_operators_issuer_and_audience_are_required_when_set() {
    let expect = Expect { issuer: Some("https://auth.example.com"), audience: Some("batchgate") };
    let ok = sign(
        &json!({"sub": "a", "exp": NOW + 60, "iss": "https://auth.example.com", "aud": ["x", "batchgate"]}),
        SECRET,
    );
    assert_eq!(verify_for(&ok, SECRET, NOW, expect).map(|c| c.account), Ok("a".into()));
    for claims in [
        json!({"sub": "a", "exp": NOW + 60, "aud": "batchgate"}),
        json!({"sub": "a", "exp": NOW + 60, "iss": "https://evil.example.com", "aud": "batchgate"}),
        json!({"sub": "a", "exp": NOW + 60, "iss": "https://auth.example.com"}),
        json!({"sub": "a", "exp": NOW + 60, "iss": "https://auth.example.com", "aud": "other"}),
        json!({"sub": "a", "exp": NOW + 60, "iss": "https://auth.example.com", "aud": 7}),
    ] {
        let t = sign(&claims, SECRET);
        assert_eq!(
            verify_for(&t, SECRET, NOW, expect).map_err(|e| e.code()),
            Err("invalid_claims"),
            "{claims}"
        );
    }
    // Unset, they are not asked for.
    assert!(verify(&sign(&json!({"sub": "a", "exp": NOW + 60}), SECRET), SECRET, NOW).is_ok());
}
