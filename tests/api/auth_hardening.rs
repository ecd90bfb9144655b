//! Strict mode means strict (api-contract.md §7, §8): unsigned and unverifiable Entra bearer
//! tokens on the identity API, the `x-ms-date` freshness window of access-key signatures,
//! user tokens dated in the future or minted for another resource, duplicate `Authorization`
//! headers, and the service's answers for identities of another resource and for empty scopes
//! (the JS identity SDK's error-case tests, `communicationIdentityClient.spec.ts`).
//!
//! Every token here is built test-side (base64url JSON and an HMAC written out again), so a bug
//! in the emulator's own minting cannot hide a bug in its checking.

use acs_chat_emulator::config::AuthMode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{IDENTITY_VERSION, Reply, TestApp, wall_now_micros};

fn create_path() -> String {
    format!("/identities?api-version={IDENTITY_VERSION}")
}

fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// A JWT of `header` and `claims` with `signature` (already encoded) as its third segment.
fn jwt(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64url(header.to_string()),
        b64url(claims.to_string())
    )
}

/// Claims shaped like a Microsoft Entra access token for ACS, valid for another hour.
fn entra_claims() -> Value {
    let now = wall_now_micros() / 1_000_000;
    json!({
        "aud": "https://communication.azure.com",
        "iss": "https://sts.windows.net/00000000-0000-4000-8000-00000000e2e0/",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": "00000000-0000-4000-8000-00000000e2e0",
    })
}

/// An Entra-shaped token that looks signed (RS256 header, a signature nobody can check).
fn signed_looking_entra_token() -> String {
    jwt(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &entra_claims(),
        &b64url([7u8; 256]),
    )
}

/// `POST /identities` with only `Authorization: Bearer <token>`.
async fn create_with_bearer(app: &TestApp, token: &str) -> Reply {
    app.raw(Method::POST, &create_path(), &[bearer(token)], None)
        .await
}

fn assert_unauthorized(reply: &Reply, case: &str) {
    assert_eq!(reply.status, 401, "{case}: {}", reply.text);
    reply.assert_error(401, "Unauthorized");
    assert_eq!(reply.header("x-ms-error-response"), Some("true"), "{case}");
}

// --- 1. Entra bearer tokens on the identity API ----------------------------------------------

#[tokio::test]
async fn entra_tokens_are_refused_in_strict_mode_without_the_opt_in_flag() {
    let app = TestApp::spawn().await;
    let reply = create_with_bearer(&app, &signed_looking_entra_token()).await;
    assert_unauthorized(
        &reply,
        "signed-looking Entra token, no --accept-entra-tokens",
    );
    app.stop().await;
}

#[tokio::test]
async fn unsigned_entra_tokens_are_refused_even_with_the_opt_in_flag() {
    let app = TestApp::spawn_with(|c| c.accept_entra_tokens = true).await;
    let claims = entra_claims();
    let cases = [
        (
            "alg none, empty signature",
            jwt(&json!({"alg": "none", "typ": "JWT"}), &claims, ""),
        ),
        (
            "alg None, some signature",
            jwt(&json!({"alg": "None"}), &claims, &b64url("sig")),
        ),
        (
            "RS256, empty signature",
            jwt(&json!({"alg": "RS256"}), &claims, ""),
        ),
        (
            "no alg",
            jwt(&json!({"typ": "JWT"}), &claims, &b64url("sig")),
        ),
        (
            "two segments",
            format!(
                "{}.{}",
                b64url(json!({"alg": "RS256"}).to_string()),
                b64url(claims.to_string())
            ),
        ),
    ];
    for (case, token) in cases {
        assert_unauthorized(&create_with_bearer(&app, &token).await, case);
    }
    // Control: the same claims with a signature-shaped third segment pass.
    let reply = create_with_bearer(&app, &signed_looking_entra_token()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    app.stop().await;
}

#[tokio::test]
async fn lenient_mode_still_accepts_entra_tokens() {
    let app = TestApp::spawn_with(|c| c.auth = AuthMode::Lenient).await;
    let reply = create_with_bearer(&app, &signed_looking_entra_token()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    app.stop().await;
}
