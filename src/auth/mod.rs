//! Who is calling: the `AcsUser` extractor for chat routes (bearer user token) and the
//! `require_access_key` middleware for identity routes (HMAC access-key signature).
//! Failures are 401 with the ACS error body; the reason goes to the debug log.

pub mod hmac;
pub mod token;

use ::hmac::{Hmac, Mac};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::Sha256;

use crate::chat::{Caller, ChatScope};
use crate::config::AuthMode;
use crate::error::ApiError;
use crate::request::{ClaimedIdentity, RawPathAndQuery};
use crate::state::{AppState, MAX_STATE_BYTES};

/// Largest identity request body read for signature checking.
const MAX_SIGNED_BODY: usize = 64 * 1024;

/// Key material derived from the access key.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The decoded access key (HMAC key of the identity API).
    pub access_key: Vec<u8>,
    /// Secret that signs user tokens. Derived from the access key, so tokens survive a restart
    /// and a new key invalidates them, as rotating a real resource's key would not, but a new
    /// resource would.
    pub token_secret: Vec<u8>,
}

impl Keys {
    /// Decodes a base64 access key and derives the token secret.
    pub fn from_access_key(access_key_b64: &str) -> anyhow::Result<Self> {
        let access_key = STANDARD
            .decode(access_key_b64.trim())
            .map_err(|e| anyhow::anyhow!("the access key must be base64: {e}"))?;
        anyhow::ensure!(!access_key.is_empty(), "the access key must not be empty");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&access_key)?;
        mac.update(b"acs-chat-emulator/user-token/v1");
        Ok(Keys {
            access_key,
            token_secret: mac.finalize().into_bytes().to_vec(),
        })
    }
}

/// The ACS user a chat request acts for, from `Authorization: Bearer <token>`: the chat
/// layer's `Caller`, extracted (and verified) from the request.
pub type AcsUser = Caller;

impl FromRequestParts<AppState> for AcsUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |reason: String| {
            tracing::debug!(%reason, "bearer token refused");
            ApiError::Unauthorized("Request is not authorized.".to_owned())
        };
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| unauthorized("no bearer token in Authorization".to_owned()))?;

        let claims = match state.config.auth {
            AuthMode::Lenient => token::decode_unverified(token).map_err(unauthorized)?,
            AuthMode::Strict => {
                let claims = token::verify(token, &state.keys).map_err(unauthorized)?;
                let now = state.clock.now_micros();
                if claims.exp.saturating_mul(1_000_000) <= now {
                    return Err(unauthorized("token expired".to_owned()));
                }
                let identity = state
                    .store
                    .get_identity(&claims.raw_id())
                    .await?
                    .filter(|i| i.deleted_at.is_none())
                    .ok_or_else(|| unauthorized("identity deleted or unknown".to_owned()))?;
                if claims.iat.saturating_mul(1_000_000) <= identity.tokens_revoked_at {
                    return Err(unauthorized("token revoked".to_owned()));
                }
                claims
            }
        };
        let scopes: Vec<&str> = claims.scopes().collect();
        let scope = if scopes.contains(&"chat") {
            ChatScope::Full
        } else if scopes.contains(&"chat.join") {
            ChatScope::Join
        } else if scopes.contains(&"chat.join.limited") {
            ChatScope::JoinLimited
        } else if state.config.auth == AuthMode::Lenient {
            ChatScope::Full
        } else {
            return Err(ApiError::Forbidden(
                "The token does not have the chat scope.".to_owned(),
            ));
        };
        Ok(AcsUser {
            id: claims.raw_id(),
            scope,
        })
    }
}

/// The token of `Authorization: Bearer <token>` (scheme in any case), trimmed.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case("bearer ")
        .then(|| value[7..].trim())
}

/// The identity a bearer token names, read without verifying it: for logs and fault matching,
/// never for access decisions.
pub fn claimed_identity(headers: &axum::http::HeaderMap) -> Option<String> {
    token::decode_unverified(bearer_token(headers)?)
        .ok()
        .map(|claims| claims.raw_id())
}

/// The `ClaimedIdentity` an outer layer left on the request, or decoded now when none did.
pub fn claimed_identity_of(request: &axum::extract::Request) -> Option<String> {
    match request.extensions().get::<ClaimedIdentity>() {
        Some(ClaimedIdentity(identity)) => identity.clone(),
        None => claimed_identity(request.headers()),
    }
}

/// Middleware for access-key routes (identity): verifies the HMAC signature (unless
/// `--auth lenient`) and passes the request on with its body intact.
pub async fn require_access_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.auth == AuthMode::Lenient {
        return next.run(request).await;
    }
    if let Some(token) = bearer_token(request.headers()) {
        return match check_entra_token(token, state.clock.now_micros()) {
            Ok(()) => next.run(request).await,
            Err(reason) => {
                tracing::debug!(%reason, "Entra bearer token refused");
                ApiError::Unauthorized("Request is not authorized.".to_owned()).into_response()
            }
        };
    }
    match verified(&state, request, MAX_SIGNED_BODY).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// The identity API also takes Microsoft Entra tokens for `https://communication.azure.com`
/// (api-contract.md §7; the SDKs' `*_from_token_credential` tests use them). The emulator cannot
/// check Entra's signatures offline, so it accepts any unexpired JWT with that audience.
fn check_entra_token(token: &str, now_micros: i64) -> Result<(), String> {
    let payload = token.split('.').nth(1).ok_or("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "JWT payload is not base64url".to_owned())?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| "JWT payload is not JSON".to_owned())?;
    let audience_ok = |aud: &serde_json::Value| {
        aud.as_str()
            .is_some_and(|a| a.trim_end_matches('/') == "https://communication.azure.com")
    };
    let aud = &claims["aud"];
    if !(audience_ok(aud)
        || aud
            .as_array()
            .is_some_and(|list| list.iter().any(audience_ok)))
    {
        return Err(format!(
            "audience {aud} is not https://communication.azure.com"
        ));
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp.saturating_mul(1_000_000) > now_micros => Ok(()),
        _ => Err("missing or past exp".to_owned()),
    }
}

/// Middleware for the emulator's destructive routes: the access key either as
/// `Authorization: Bearer <access key>` (for curl) or as an HMAC signature like the identity
/// API's (for SDK-style clients). Skipped with `--auth lenient`.
pub async fn require_admin_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.auth == AuthMode::Lenient {
        return next.run(request).await;
    }
    if let Some(key) = bearer_token(request.headers()) {
        // Compare MACs of both, so the comparison takes the same time wherever they differ.
        let mac = |text: &[u8]| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&state.keys.token_secret)
                .expect("BUG: HMAC takes keys of any length");
            mac.update(text);
            mac.finalize().into_bytes()
        };
        return if mac(key.as_bytes()) == mac(state.config.access_key.trim().as_bytes()) {
            next.run(request).await
        } else {
            tracing::debug!("admin call with a wrong access key");
            ApiError::Unauthorized("Request is not authorized.".to_owned()).into_response()
        };
    }
    match verified(&state, request, MAX_STATE_BYTES).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Reads the body (up to `limit` bytes), checks the HMAC signature, and gives the request back
/// with its body.
async fn verified(state: &AppState, request: Request, limit: usize) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::bad_request("The request body is too large."))?;
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let host = header(HOST.as_str())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path_and_query = match parts.extensions.get::<RawPathAndQuery>() {
        Some(raw) => raw.0.as_str(),
        None => parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    };
    let signed = hmac::SignedRequest {
        method: parts.method.as_str(),
        path_and_query,
        host: &host,
        authorization: header(AUTHORIZATION.as_str()).unwrap_or_default(),
        ms_date: header("x-ms-date"),
        date: header("date"),
        content_sha256: header("x-ms-content-sha256"),
        body: &body,
    };
    if let Err(reason) = hmac::verify(&signed, &state.keys.access_key) {
        tracing::debug!(%reason, "access-key signature refused");
        return Err(ApiError::Unauthorized(
            "Request is not authorized.".to_owned(),
        ));
    }
    Ok(Request::from_parts(parts, Body::from(body)))
}
