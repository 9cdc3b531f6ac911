//! Who is calling: users by `Authorization: Bearer <HS256 JWT>` (core verifies
//! it against `JWT_SECRET`), operators by `Authorization: Bearer <ADMIN_TOKEN>`.

use crate::platform::clock::now_ms;
use crate::platform::config::Settings;
use crate::platform::error::ApiError;
use batchgate_core::auth::{Expect, TokenError, same_secret, sign, valid_account, verify_for};
use serde::Serialize;
use worker::{Request, Response};

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
pub fn account(req: &Request, settings: &Settings) -> Result<String, ApiError> {
    let token = bearer(req).ok_or_else(|| unauthorized(TokenError::Missing))?;
    verify_user(&token, settings)
}

/// The account a request through the Gemini drop-in acts for: the token is
/// the SDK's API key (`x-goog-api-key`, or `?key=` as Google also takes it).
pub fn account_of_api_key(req: &Request, settings: &Settings) -> Result<String, ApiError> {
    let header = req.headers().get("x-goog-api-key").ok().flatten();
    let token = header.or_else(|| crate::platform::query::Query::of(req).get("key"));
    let token = token.filter(|t| !t.trim().is_empty()).ok_or_else(|| unauthorized(TokenError::Missing))?;
    verify_user(token.trim(), settings)
}

/// HS256 needs a secret at least as long as its hash (RFC 7518 §3.2): a short
/// one can be guessed offline from any token. Refused, never used.
const MIN_JWT_SECRET_BYTES: usize = 32;

fn jwt_secret(settings: &Settings) -> Result<&str, ApiError> {
    let secret = settings.secrets.jwt_secret.as_deref().ok_or_else(|| not_configured("JWT_SECRET"))?;
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(ApiError::new(
            503,
            "misconfigured",
            format!("JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes; set a longer random secret"),
        ));
    }
    Ok(secret)
}

fn verify_user(token: &str, settings: &Settings) -> Result<String, ApiError> {
    let secret = jwt_secret(settings)?;
    let s = &settings.secrets;
    let expect = Expect { issuer: s.jwt_issuer.as_deref(), audience: s.jwt_audience.as_deref() };
    verify_for(token, secret.as_bytes(), now_ms() / 1000, expect).map(|c| c.account).map_err(unauthorized)
}

/// Admin routes: the operator's `ADMIN_TOKEN`.
pub fn admin(req: &Request, settings: &Settings) -> Result<(), ApiError> {
    let expected = settings.secrets.admin_token.as_deref().ok_or_else(|| not_configured("ADMIN_TOKEN"))?;
    match bearer(req) {
        Some(t) if same_secret(&t, expected) => Ok(()),
        Some(_) => Err(ApiError::new(401, "bad_admin_token", "the admin token does not match")),
        None => Err(unauthorized(TokenError::Missing)),
    }
}

/// A minted token's claims: the operator's issuer and audience, if set, so
/// minted tokens pass the operator's own checks.
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

#[derive(Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub(crate) struct Minted<'a> {
    token: String,
    account: &'a str,
    exp: u64,
}

/// A token request: the account it acts for and how long it lives.
#[derive(serde::Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MintBody {
    pub(crate) account: String,
    #[serde(default)]
    pub(crate) ttl_secs: Option<u64>,
}

/// `POST /v1/admin/tokens` `{account, ttlSecs?}`: a user token signed with
/// `JWT_SECRET`, for operators without a backend of their own yet, local
/// development and the demo. Production apps sign their own.
pub async fn mint(mut req: Request, settings: &Settings) -> Result<Response, ApiError> {
    let body: MintBody = crate::platform::body::json(
        &mut req,
        crate::platform::body::SMALL,
        "a token request",
        "{account, ttlSecs?}",
    )
    .await?;
    if !valid_account(&body.account) {
        return Err(ApiError::bad_request(
            "invalid_account",
            format!("{:?} is not an account id", body.account),
        ));
    }
    let secret = jwt_secret(settings)?;
    let ttl = body.ttl_secs.unwrap_or(3_600).clamp(60, MAX_TTL_SECS);
    let exp = now_ms() / 1000 + ttl;
    let s = &settings.secrets;
    let claims =
        Claims { sub: &body.account, exp, iss: s.jwt_issuer.as_deref(), aud: s.jwt_audience.as_deref() };
    let token = sign(&claims, secret.as_bytes());
    super::json(201, &Minted { token, account: &body.account, exp })
}
