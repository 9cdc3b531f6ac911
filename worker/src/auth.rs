//! Who is calling: users by `Authorization: Bearer <HS256 JWT>` (core verifies
//! it against `JWT_SECRET`), operators by `Authorization: Bearer <ADMIN_TOKEN>`.

use crate::config::secret;
use crate::errors::ApiError;
use crate::job_object::now_ms;
use batchgate_core::auth::{Expect, TokenError, same_secret, sign, valid_account, verify_for};
use serde_json::json;
use worker::{Env, Request, Response};

/// Longest life of a minted token.
const MAX_TTL_SECS: u64 = 30 * 86_400;

fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get("authorization").ok().flatten()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

fn unauthorized(e: TokenError) -> ApiError {
    ApiError::new(401, e.code(), e.message())
}

fn not_configured(name: &str) -> ApiError {
    ApiError::new(503, "auth_not_configured", format!("the operator has not set {name}"))
}

/// The account a user request acts for.
pub fn account(req: &Request, env: &Env) -> Result<String, ApiError> {
    let token = bearer(req).ok_or_else(|| unauthorized(TokenError::Missing))?;
    verify_user(&token, env)
}

/// HS256 needs a secret at least as long as its hash (RFC 7518 §3.2): a short
/// one can be guessed offline from any token. Refused, never used.
const MIN_JWT_SECRET_BYTES: usize = 32;

fn jwt_secret(env: &Env) -> Result<String, ApiError> {
    let secret = secret(env, "JWT_SECRET").ok_or_else(|| not_configured("JWT_SECRET"))?;
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(ApiError::new(
            503,
            "misconfigured",
            format!("JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes; set a longer random secret"),
        ));
    }
    Ok(secret)
}

fn verify_user(token: &str, env: &Env) -> Result<String, ApiError> {
    let secret = jwt_secret(env)?;
    let (issuer, audience) =
        (crate::config::secret(env, "JWT_ISSUER"), crate::config::secret(env, "JWT_AUDIENCE"));
    let expect = Expect { issuer: issuer.as_deref(), audience: audience.as_deref() };
    verify_for(token, secret.as_bytes(), now_ms() / 1000, expect).map(|c| c.account).map_err(unauthorized)
}

/// Admin routes: the operator's `ADMIN_TOKEN`.
pub fn admin(req: &Request, env: &Env) -> Result<(), ApiError> {
    let expected = secret(env, "ADMIN_TOKEN").ok_or_else(|| not_configured("ADMIN_TOKEN"))?;
    match bearer(req) {
        Some(t) if same_secret(&t, &expected) => Ok(()),
        Some(_) => Err(ApiError::new(401, "bad_admin_token", "the admin token does not match")),
        None => Err(unauthorized(TokenError::Missing)),
    }
}

/// `POST /v1/admin/tokens` `{account, ttlSecs?}`: a user token signed with
/// `JWT_SECRET`, for operators without a backend of their own yet, local
/// development and the demo. Production apps sign their own.
pub async fn mint(mut req: Request, env: &Env) -> Result<Response, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        account: String,
        #[serde(default)]
        ttl_secs: Option<u64>,
    }
    let body: Body =
        crate::body::json(&mut req, crate::body::SMALL, "a token request", "{account, ttlSecs?}").await?;
    if !valid_account(&body.account) {
        return Err(ApiError::bad_request(
            "invalid_account",
            format!("{:?} is not an account id", body.account),
        ));
    }
    let secret = jwt_secret(env)?;
    let ttl = body.ttl_secs.unwrap_or(3_600).clamp(60, MAX_TTL_SECS);
    let exp = now_ms() / 1000 + ttl;
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), json!(body.account));
    claims.insert("exp".into(), json!(exp));
    // Minted tokens pass the operator's own checks.
    for (claim, name) in [("iss", "JWT_ISSUER"), ("aud", "JWT_AUDIENCE")] {
        if let Some(v) = crate::config::secret(env, name) {
            claims.insert(claim.into(), json!(v));
        }
    }
    let token = sign(&serde_json::Value::Object(claims), secret.as_bytes());
    Ok(Response::from_json(&json!({"token": token, "account": body.account, "exp": exp}))?.with_status(201))
}
