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
use crate::request::BodyCap;
use crate::request::{ClaimedIdentity, RawPathAndQuery};
use crate::state::{AppState, MAX_SMALL_BODY_BYTES};

/// How far ahead of the emulator's clock a user token's `iat` or `nbf` may be, in seconds:
/// room for the clocks of two emulators sharing a key, not for tokens dated in the future.
const MAX_TOKEN_CLOCK_SKEW_SECS: i64 = 5 * 60;

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
        // In both modes: who is calling decides what the request may do.
        if has_several_authorizations(&parts.headers) {
            return Err(unauthorized(
                "more than one Authorization header".to_owned(),
            ));
        }
        let token = bearer_token(&parts.headers)
            .ok_or_else(|| unauthorized("no bearer token in Authorization".to_owned()))?;

        let claims = match state.config.auth {
            AuthMode::Lenient => token::decode_unverified(token).map_err(unauthorized)?,
            AuthMode::Strict => {
                let claims = token::verify(token, &state.keys).map_err(unauthorized)?;
                // The emulator's clock, not the real one: the emulator minted the token with it
                // (`api::identity::issue_token`), and tests move it to expire tokens.
                let now = state.clock.now_micros();
                if claims.exp.saturating_mul(1_000_000) <= now {
                    return Err(unauthorized("token expired".to_owned()));
                }
                let latest_start = now.saturating_add(MAX_TOKEN_CLOCK_SKEW_SECS * 1_000_000);
                if claims.iat.saturating_mul(1_000_000) > latest_start {
                    return Err(unauthorized(format!(
                        "token issued in the future (iat {})",
                        claims.iat
                    )));
                }
                if let Some(nbf) = claims
                    .nbf
                    .filter(|nbf| nbf.saturating_mul(1_000_000) > latest_start)
                {
                    return Err(unauthorized(format!("token not valid yet (nbf {nbf})")));
                }
                // The key signs tokens of whatever --resource-id the emulator had then; a token
                // minted for another resource id must not act on this one.
                if !claims
                    .resource_id
                    .eq_ignore_ascii_case(&state.config.resource_id)
                {
                    return Err(unauthorized(format!(
                        "token of resource {}, not {}",
                        claims.resource_id, state.config.resource_id
                    )));
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

/// Whether the request has more than one `Authorization` header. Which one counts would be
/// anyone's guess (the first for us, maybe the last for a proxy in front that checked it), so
/// such requests are refused wherever credentials are checked (RFC 9110 §5.3: only fields
/// defined as lists may be repeated, and `Authorization`, §11.6.2, is not one).
fn has_several_authorizations(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all(AUTHORIZATION).iter().nth(1).is_some()
}

/// The 401 for a request with more than one `Authorization` header.
fn several_authorizations() -> Response {
    tracing::debug!("more than one Authorization header");
    ApiError::Unauthorized("Request is not authorized.".to_owned()).into_response()
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

/// Middleware for access-key routes (identity): verifies the HMAC signature, or an Entra bearer
/// token with `--accept-entra-tokens` (unless `--auth lenient`), and passes the request on with
/// its body intact.
pub async fn require_access_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.auth == AuthMode::Lenient {
        return next.run(request).await;
    }
    if has_several_authorizations(request.headers()) {
        return several_authorizations();
    }
    if let Some(token) = bearer_token(request.headers()) {
        let checked = if state.config.accept_entra_tokens {
            check_entra_token(token, system_now_secs())
        } else {
            Err("Entra bearer tokens need --accept-entra-tokens".to_owned())
        };
        return match checked {
            Ok(()) => next.run(request).await,
            Err(reason) => {
                tracing::debug!(%reason, "Entra bearer token refused");
                ApiError::Unauthorized("Request is not authorized.".to_owned()).into_response()
            }
        };
    }
    match verified(&state, request, MAX_SMALL_BODY_BYTES).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Seconds since the Unix epoch on the machine's real clock (not `state.clock`).
fn system_now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The identity API also takes Microsoft Entra tokens for `https://communication.azure.com`
/// (api-contract.md §7; the SDKs' `*_from_token_credential` tests use them). The emulator cannot
/// check Entra's signatures offline, so with `--accept-entra-tokens` it trusts any JWT that looks
/// signed and is unexpired with that audience. Unsigned ones (`alg: none`, an empty signature
/// part) are refused: they do not even claim a signature, and trusting `alg: none` is the
/// classic JWT flaw (RFC 8725 §2.1; §3.1: verify the algorithm).
///
/// `exp` is compared with the real clock, like `x-ms-date`: Entra issues tokens on real time,
/// and tests that move the emulator's clock must not expire the SDKs' Entra credential.
fn check_entra_token(token: &str, now_secs: i64) -> Result<(), String> {
    let segments: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = segments[..] else {
        return Err("not a JWT of three segments".to_owned());
    };
    let json_segment = |segment: &str, what: &str| -> Result<serde_json::Value, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment.trim_end_matches('='))
            .map_err(|_| format!("JWT {what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| format!("JWT {what} is not JSON"))
    };
    let header = json_segment(header, "header")?;
    match header["alg"].as_str() {
        None => return Err("JWT header has no alg".to_owned()),
        Some(alg) if alg.eq_ignore_ascii_case("none") => {
            return Err("unsigned JWT (alg none)".to_owned());
        }
        Some(_) => {}
    }
    let signed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .is_ok_and(|bytes| !bytes.is_empty());
    if !signed {
        return Err("JWT signature is empty or not base64url".to_owned());
    }
    let claims = json_segment(payload, "payload")?;
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
        Some(exp) if exp > now_secs => Ok(()),
        _ => Err("missing or past exp".to_owned()),
    }
}

/// Middleware for the emulator's destructive routes: the access key either as
/// `Authorization: Bearer <access key>` (for curl) or as an HMAC signature like the identity
/// API's (for SDK-style clients). Skipped with `--auth lenient`. `cap` is the route's body cap:
/// a signature makes this layer read the body, so the cap must be known here, before the
/// route's own layers run.
pub async fn require_admin_key(
    State((state, cap)): State<(AppState, BodyCap)>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.auth == AuthMode::Lenient {
        return next.run(request).await;
    }
    if has_several_authorizations(request.headers()) {
        return several_authorizations();
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
    match verified(&state, request, cap.0).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Checks the headers of an HMAC-signed request, then reads the body (up to `limit` bytes),
/// checks the signature and gives the request back with its body. A request whose headers
/// already fail (no or a garbled `Authorization`, a missing or stale date, no body hash) is
/// refused before a byte of its body is read: only a request that could still pass makes the
/// emulator read (at most `limit` bytes of) the body its signature covers.
async fn verified(state: &AppState, request: Request, limit: usize) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
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
    let mut signed = hmac::SignedRequest {
        method: parts.method.as_str(),
        path_and_query,
        host: &host,
        authorization: header(AUTHORIZATION.as_str()).unwrap_or_default(),
        ms_date: header("x-ms-date"),
        date: header("date"),
        content_sha256: header("x-ms-content-sha256"),
        body: &[],
    };
    let now = system_now_secs();
    hmac::check_before_body(&signed, now).map_err(signature_refused)?;
    let body = crate::body::read_capped(&parts.headers, body, limit).await?;
    signed.body = &body;
    // The signer's date is checked against the machine's real clock, never `state.clock`: the
    // SDKs sign with real time, and tests may move the emulator's clock (token expiry,
    // retention) while their signed identity calls must keep working.
    match hmac::verify(&signed, &state.keys.access_key, now) {
        Ok(()) => Ok(Request::from_parts(parts, Body::from(body))),
        Err(refusal) => Err(signature_refused(refusal)),
    }
}

/// The 401 for a refused access-key signature; the reason goes to the debug log.
fn signature_refused(refusal: hmac::Refusal) -> ApiError {
    tracing::debug!(reason = %refusal, "access-key signature refused");
    ApiError::Unauthorized(match refusal {
        hmac::Refusal::Signature(_) => "Request is not authorized.".to_owned(),
        hmac::Refusal::Date { header, .. } => format!(
            "Request is not authorized: the signed {header} header must be an HTTP date \
             within {} minutes of the current time.",
            hmac::MAX_CLOCK_SKEW_SECS / 60
        ),
    })
}
