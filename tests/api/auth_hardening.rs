//! Strict mode means strict (api-contract.md §7, §8): unsigned and unverifiable Entra bearer
//! tokens on the identity API, the `x-ms-date` freshness window of access-key signatures,
//! user tokens dated in the future or minted for another resource, duplicate `Authorization`
//! headers, and the service's answers for identities of another resource and for empty scopes
//! (the JS identity SDK's error-case tests, `communicationIdentityClient.spec.ts`).
//!
//! Every token here is built test-side (base64url JSON and an HMAC written out again), so a bug
//! in the emulator's own minting cannot hide a bug in its checking.

use std::sync::Arc;

use acs_chat_emulator::clock::FixedClock;
use acs_chat_emulator::config::{AuthMode, DEFAULT_RESOURCE_ID};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::helpers::{
    IDENTITY_VERSION, Reply, TestApp, default_key, enc, httpdate, wall_now_micros,
};

/// The identity the JS SDK's error-case tests use: a well-formed id of another resource.
const OTHER_RESOURCE_USER: &str =
    "8:acs:00000000-0000-0000-0000-000000000000_00000000-0000-0000-0000-000000000000";

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

/// A user token HS256-signed with the emulator's token secret, derived from the access key as
/// the emulator documents it (`Keys::from_access_key`), but computed here.
fn user_token(claims: &Value) -> String {
    let mut secret = <Hmac<Sha256> as Mac>::new_from_slice(&default_key()).expect("any key");
    secret.update(b"acs-chat-emulator/user-token/v1");
    let secret = secret.finalize().into_bytes();
    let signing_input = format!(
        "{}.{}",
        b64url(json!({"alg": "HS256", "typ": "JWT"}).to_string()),
        b64url(claims.to_string())
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).expect("any key");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(mac.finalize().into_bytes()))
}

/// User-token claims for `raw_id` issued at `iat` (seconds), valid for an hour.
fn user_claims(raw_id: &str, iat: i64) -> Value {
    json!({
        "skypeid": raw_id.trim_start_matches("8:"),
        "scp": 1792,
        "csi": iat.to_string(),
        "exp": iat + 3600,
        "acsScope": "chat",
        "resourceId": DEFAULT_RESOURCE_ID,
        "resourceLocation": "unitedstates",
        "iat": iat,
    })
}

fn assert_unauthorized(reply: &Reply, case: &str) {
    assert_eq!(reply.status, 401, "{case}: {}", reply.text);
    reply.assert_error(401, "Unauthorized");
    assert_eq!(reply.header("x-ms-error-response"), Some("true"), "{case}");
}

// --- 1. Entra bearer tokens on the identity API ----------------------------------------------

#[tokio::test]
async fn entra_tokens_are_refused_in_strict_mode_without_the_opt_in_flag() {
    let app = TestApp::builder().spawn().await;
    let reply = create_with_bearer(&app, &signed_looking_entra_token()).await;
    assert_unauthorized(
        &reply,
        "signed-looking Entra token, no --accept-entra-tokens",
    );
    app.stop().await;
}

#[tokio::test]
async fn unsigned_entra_tokens_are_refused_even_with_the_opt_in_flag() {
    let app = TestApp::builder()
        .config(|c| c.accept_entra_tokens = true)
        .spawn()
        .await;
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
    let app = TestApp::builder()
        .config(|c| c.auth = AuthMode::Lenient)
        .spawn()
        .await;
    let reply = create_with_bearer(&app, &signed_looking_entra_token()).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    app.stop().await;
}

// --- 2. Freshness of access-key signatures ---------------------------------------------------

/// `x-ms-date` values a correctly signed request is refused with, and why.
fn stale_dates() -> Vec<(&'static str, String)> {
    let now = OffsetDateTime::now_utc();
    vec![
        ("30 days ago", httpdate(now - Duration::days(30))),
        ("16 minutes ago", httpdate(now - Duration::minutes(16))),
        ("1 day ahead", httpdate(now + Duration::days(1))),
        ("16 minutes ahead", httpdate(now + Duration::minutes(16))),
        ("not a date", "yesterday-ish".to_owned()),
        (
            "Unix seconds, not an HTTP date",
            now.unix_timestamp().to_string(),
        ),
        ("empty", String::new()),
    ]
}

#[tokio::test]
async fn access_key_signatures_outside_the_fifteen_minute_window_are_401() {
    let app = TestApp::builder().spawn().await;
    let path = create_path();
    for (case, date) in stale_dates() {
        let headers = app.sign_dated("POST", &path, "", &default_key(), &date);
        let reply = app.raw(Method::POST, &path, &headers, None).await;
        assert_unauthorized(&reply, case);
    }
    // Inside the window, either side of now, the same request passes. The margin is a minute,
    // so a slow machine cannot push these out of it.
    let now = OffsetDateTime::now_utc();
    for date in [
        httpdate(now - Duration::minutes(14)),
        httpdate(now + Duration::minutes(14)),
    ] {
        let headers = app.sign_dated("POST", &path, "", &default_key(), &date);
        let reply = app.raw(Method::POST, &path, &headers, None).await;
        assert_eq!(reply.status, 201, "{date}: {}", reply.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_stale_date_header_is_401_when_date_is_what_was_signed() {
    // Older SDKs (identity 1.0.x, administration 1.0.0b4) sign `Date` instead of `x-ms-date`.
    let app = TestApp::builder().spawn().await;
    let path = create_path();
    let host = app.http_base.trim_start_matches("http://").to_owned();
    let hash = STANDARD.encode(Sha256::digest(b""));
    let signed_with_date = |date: &str| {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&default_key()).expect("any key");
        mac.update(format!("POST\n{path}\n{date};{host};{hash}").as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        vec![
            ("date", date.to_owned()),
            ("x-ms-content-sha256", hash.clone()),
            (
                "authorization",
                format!(
                    "HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256&Signature={signature}"
                ),
            ),
        ]
    };
    let stale = httpdate(OffsetDateTime::now_utc() - Duration::days(30));
    let reply = app
        .raw(Method::POST, &path, &signed_with_date(&stale), None)
        .await;
    assert_unauthorized(&reply, "Date 30 days ago");
    let fresh = httpdate(OffsetDateTime::now_utc());
    let reply = app
        .raw(Method::POST, &path, &signed_with_date(&fresh), None)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    app.stop().await;
}

#[tokio::test]
async fn admin_routes_refuse_stale_access_key_signatures() {
    let app = TestApp::builder().spawn().await;
    let path = "/_emulator/faults";
    for (case, date) in stale_dates() {
        let headers = app.sign_dated("DELETE", path, "", &default_key(), &date);
        let reply = app.raw(Method::DELETE, path, &headers, None).await;
        assert_unauthorized(&reply, case);
    }
    let headers = app.sign("DELETE", path, "", &default_key());
    let reply = app.raw(Method::DELETE, path, &headers, None).await;
    assert!(reply.status.is_success(), "{}", reply.text);
    app.stop().await;
}

#[tokio::test]
async fn signed_identity_calls_keep_working_when_the_emulator_clock_is_elsewhere() {
    // The freshness window is about the signer's real clock; the emulator's clock may be moved
    // by tests (here: 30 days back) and must not make every signed call stale.
    let clock = Arc::new(FixedClock::new(
        wall_now_micros() - 30 * 24 * 3600 * 1_000_000,
    ));
    let app = TestApp::builder().clock(clock.clone()).spawn().await;
    let (_, token) = app.create_user().await;
    clock.advance_micros(60 * 24 * 3600 * 1_000_000);
    let id = app.create_identity().await;
    assert!(!id.is_empty());
    let reply = app.chat(Method::GET, "/chat/threads", &token, None).await;
    assert_eq!(
        reply.status, 401,
        "the token expired on the emulator's clock: {}",
        reply.text
    );
    app.stop().await;
}

// --- 3. User tokens dated in the future or of another resource -------------------------------

#[tokio::test]
async fn user_tokens_issued_or_valid_only_in_the_future_are_401() {
    let now_micros = wall_now_micros();
    let clock = Arc::new(FixedClock::new(now_micros));
    let app = TestApp::builder().clock(clock).spawn().await;
    let id = app.create_identity().await;
    let now = now_micros / 1_000_000;

    let mut not_yet_valid = user_claims(&id, now);
    not_yet_valid["nbf"] = json!(now + 10 * 60);
    let cases = [
        ("iat 10 minutes ahead", user_claims(&id, now + 10 * 60)),
        ("iat a day ahead", user_claims(&id, now + 24 * 3600)),
        ("nbf 10 minutes ahead", not_yet_valid),
    ];
    for (case, claims) in cases {
        let reply = app
            .chat(Method::GET, "/chat/threads", &user_token(&claims), None)
            .await;
        assert_unauthorized(&reply, case);
    }
    // Controls: now, and a little ahead (clocks of different machines disagree a little).
    let mut nbf_now = user_claims(&id, now);
    nbf_now["nbf"] = json!(now);
    for claims in [user_claims(&id, now), user_claims(&id, now + 60), nbf_now] {
        let reply = app
            .chat(Method::GET, "/chat/threads", &user_token(&claims), None)
            .await;
        assert_eq!(reply.status, 200, "{claims}: {}", reply.text);
    }
    app.stop().await;
}

#[tokio::test]
async fn user_tokens_for_another_resource_are_401() {
    let app = TestApp::builder().spawn().await;
    let id = app.create_identity().await;
    let now = wall_now_micros() / 1_000_000;
    let mut foreign = user_claims(&id, now);
    foreign["resourceId"] = json!("00000000-0000-0000-0000-000000000000");
    let reply = app
        .chat(Method::GET, "/chat/threads", &user_token(&foreign), None)
        .await;
    assert_unauthorized(&reply, "resourceId of another resource");
    let reply = app
        .chat(
            Method::GET,
            "/chat/threads",
            &user_token(&user_claims(&id, now)),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    app.stop().await;
}

// --- 4. Duplicate Authorization headers ------------------------------------------------------

#[tokio::test]
async fn duplicate_authorization_headers_are_401_on_chat_identity_and_admin_routes() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;

    // Chat: the same valid token twice, and a valid token followed by garbage.
    let url = app.chat_url("/chat/threads");
    for (case, second) in [("same token twice", token.as_str()), ("then garbage", "x")] {
        let reply = app
            .send(Method::GET, &url, &[bearer(&token), bearer(second)], None)
            .await;
        assert_unauthorized(&reply, &format!("chat: {case}"));
    }

    // Identity: a correct signature plus a second Authorization.
    let path = create_path();
    let mut headers = app.sign("POST", &path, "", &default_key());
    headers.push(bearer(&token));
    let reply = app.raw(Method::POST, &path, &headers, None).await;
    assert_unauthorized(&reply, "identity: signature plus bearer");
    let signed = app.sign("POST", &path, "", &default_key());
    let authorization = signed
        .iter()
        .find(|(name, _)| *name == "authorization")
        .expect("signed")
        .clone();
    let mut headers = signed;
    headers.push(authorization);
    let reply = app.raw(Method::POST, &path, &headers, None).await;
    assert_unauthorized(&reply, "identity: the same signature twice");

    // Admin: the access key twice.
    let key = bearer(acs_chat_emulator::config::DEFAULT_ACCESS_KEY);
    let reply = app
        .raw(
            Method::DELETE,
            "/_emulator/faults",
            &[key.clone(), key.clone()],
            None,
        )
        .await;
    assert_unauthorized(&reply, "admin: the access key twice");

    // Controls: one header each passes.
    assert_eq!(
        app.send(Method::GET, &url, &[bearer(&token)], None)
            .await
            .status,
        200
    );
    assert!(
        app.raw(Method::DELETE, "/_emulator/faults", &[key], None)
            .await
            .status
            .is_success()
    );
    app.stop().await;
}

// --- 5. The service's answers on the identity API --------------------------------------------

#[tokio::test]
async fn identities_of_another_resource_are_401_on_issue_revoke_and_delete() {
    // communicationIdentityClient.spec.ts, "Error Cases": issue, revoke and delete of
    // `8:acs:00000000-…_00000000-…` each expect statusCode 401; the recordings show
    // {"code":"IdentityNotOwned","message":"Provided identity doesn't belong to the resource."}.
    let app = TestApp::builder().spawn().await;
    let path = |suffix: &str| {
        format!(
            "/identities/{}{suffix}?api-version={IDENTITY_VERSION}",
            enc(OTHER_RESOURCE_USER)
        )
    };
    let replies = [
        (
            "issue",
            app.identity(
                Method::POST,
                &path("/:issueAccessToken"),
                Some(json!({"scopes": ["chat", "voip"]})),
            )
            .await,
        ),
        (
            "revoke",
            app.identity(Method::POST, &path("/:revokeAccessTokens"), None)
                .await,
        ),
        (
            "delete",
            app.identity(Method::DELETE, &path(""), None).await,
        ),
    ];
    for (case, reply) in replies {
        assert_unauthorized(&reply, case);
        assert_eq!(
            reply.json()["error"]["message"],
            "Provided identity doesn't belong to the resource.",
            "{case}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn issue_token_without_scopes_is_400_with_the_service_message() {
    // communicationIdentityClient.spec.ts: getToken(user, []) → 400 with exactly this message;
    // the recording's code is ValidationError.
    let app = TestApp::builder().spawn().await;
    let id = app.create_identity().await;
    let path = format!(
        "/identities/{}/:issueAccessToken?api-version={IDENTITY_VERSION}",
        enc(&id)
    );
    for body in [json!({"scopes": []}), json!({})] {
        let reply = app.identity(Method::POST, &path, Some(body.clone())).await;
        reply.assert_error(400, "ValidationError");
        assert_eq!(
            reply.json()["error"]["message"],
            "Invalid scopes - Scopes field is required.",
            "{body}"
        );
    }
    app.stop().await;
}
