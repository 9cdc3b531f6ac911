//! Bearer tokens: HS256 JWTs signed by the operator's backend with
//! `JWT_SECRET`. `sub` is the account id and `exp` is required. Only HS256 is
//! accepted, whatever the header claims (no `none`, no algorithm confusion).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub account: String,
    pub exp: u64,
}

/// Why a token is refused; each becomes a 401 with [`TokenError::code`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Malformed(String),
    Algorithm(String),
    Signature,
    Expired,
    NotYetValid,
    Claim(String),
}

impl TokenError {
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Missing => "missing_token",
            TokenError::Malformed(_) => "malformed_token",
            TokenError::Algorithm(_) => "unsupported_algorithm",
            TokenError::Signature => "bad_signature",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::Claim(_) => "invalid_claims",
        }
    }

    pub fn message(&self) -> String {
        match self {
            TokenError::Missing => "send Authorization: Bearer <token>".into(),
            TokenError::Malformed(why) => format!("the token is not a JWT: {why}"),
            TokenError::Algorithm(alg) => format!("tokens must be signed with HS256, not {alg:?}"),
            TokenError::Signature => "the token's signature does not match".into(),
            TokenError::Expired => "the token has expired".into(),
            TokenError::NotYetValid => "the token is not valid yet (nbf)".into(),
            TokenError::Claim(why) => why.clone(),
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
}

/// An account id: what `sub` may be (it names Durable Objects and travels in headers).
pub fn valid_account(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':' | b'+'))
}

fn decode_json(part: &str, what: &str) -> Result<Value, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed(format!("the {what} is not base64url")))?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed(format!("the {what} is not JSON")))
}

fn number(claims: &Value, name: &str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| TokenError::Claim(format!("{name} must be a number of seconds"))),
    }
}

/// Verify `token` at `now_secs`.
/// What an operator may require of every token besides its signature and
/// times: `iss` equal to `issuer`, `aud` (a string or a list) holding
/// `audience` (`JWT_ISSUER`, `JWT_AUDIENCE`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect<'a> {
    pub issuer: Option<&'a str>,
    pub audience: Option<&'a str>,
}

pub fn verify(token: &str, secret: &[u8], now_secs: u64) -> Result<Claims, TokenError> {
    verify_for(token, secret, now_secs, Expect::default())
}

/// [`verify`], also holding the token to the operator's [`Expect`]ations.
pub fn verify_for(token: &str, secret: &[u8], now_secs: u64, expect: Expect) -> Result<Claims, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed("expected three dot-separated parts".into()));
    };
    let header: Header = serde_json::from_value(decode_json(h, "header")?)
        .map_err(|_| TokenError::Malformed("the header is not a JWT header".into()))?;
    match header.alg.as_deref() {
        Some("HS256") => {}
        other => return Err(TokenError::Algorithm(other.unwrap_or("none").to_string())),
    }
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::Malformed("the signature is not base64url".into()))?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| TokenError::Signature)?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(&signature).map_err(|_| TokenError::Signature)?;
    let claims = decode_json(p, "payload")?;
    let exp = number(&claims, "exp")?.ok_or_else(|| TokenError::Claim("the token has no exp".into()))?;
    if now_secs > exp.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if number(&claims, "nbf")?.is_some_and(|nbf| now_secs.saturating_add(LEEWAY_SECS) < nbf) {
        return Err(TokenError::NotYetValid);
    }
    if let Some(issuer) = expect.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer)
    {
        return Err(TokenError::Claim(format!("the token's iss is not {issuer:?}")));
    }
    if let Some(audience) = expect.audience {
        let holds = match claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !holds {
            return Err(TokenError::Claim(format!("the token's aud does not include {audience:?}")));
        }
    }
    let account = match claims.get("sub") {
        Some(Value::String(s)) if valid_account(s) => s.clone(),
        Some(_) => {
            return Err(TokenError::Claim("sub must be 1-128 characters of A-Z a-z 0-9 . _ - @ : +".into()));
        }
        None => return Err(TokenError::Claim("the token has no sub".into())),
    };
    Ok(Claims { account, exp })
}

/// Sign `claims` with HS256 (the operator's backend does this; so do tests and
/// `cargo xtask dev` for its dev token).
pub fn sign(claims: &impl serde::Serialize, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let signature = match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// Compare two secrets without revealing where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
