//! Identity API over raw HTTP: create (with and without a token), token lifetimes and scopes,
//! issue, revoke, delete, get (2025-06-30), HMAC signing failures, `--auth lenient`, the token's
//! shape (api-contract.md §7, §7.1, §8) and api-version handling.

use acs_chat_emulator::config::{AuthMode, DEFAULT_RESOURCE_ID};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{IDENTITY_VERSION, Reply, TestApp, default_key, enc, parse_time};

fn create_path() -> String {
    format!("/identities?api-version={IDENTITY_VERSION}")
}

fn identity_path(id: &str, suffix: &str, version: &str) -> String {
    format!("/identities/{}{suffix}?api-version={version}", enc(id))
}

/// Decodes a token's payload the way the Python SDK does: standard base64 after padding.
fn claims(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three segments: {token}");
    let payload = parts[1];
    assert!(
        !payload.contains(['-', '_']),
        "payload {payload} would break the Python SDK's b64decode"
    );
    let padded = format!("{payload}{}", "=".repeat((4 - payload.len() % 4) % 4));
    let bytes = STANDARD.decode(padded).expect("payload is standard base64");
    serde_json::from_slice(&bytes).expect("payload is JSON")
}

/// Asserts an `8:acs:<resource>_<8-4-4-4-12 hex>` id with exactly one `_`.
fn assert_user_id(id: &str) {
    let rest = id
        .strip_prefix("8:acs:")
        .unwrap_or_else(|| panic!("{id} lacks 8:acs:"));
    assert_eq!(id.matches('_').count(), 1, "{id} must have exactly one '_'");
    let (resource, user) = rest.split_once('_').expect("one underscore");
    assert_eq!(resource, DEFAULT_RESOURCE_ID);
    let groups: Vec<&str> = user.split('-').collect();
    assert_eq!(
        groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12],
        "{user}"
    );
    assert!(
        user.chars().all(|c| c.is_ascii_hexdigit() || c == '-'),
        "{user}"
    );
}

/// Asserts the ACS error envelope with a status, without pinning the code.
fn assert_acs_error(reply: &Reply, status: u16) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
    let body = reply.json();
    assert!(
        body["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{}",
        reply.text
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    assert_eq!(reply.header("x-ms-error-response"), Some("true"));
}

#[tokio::test]
async fn create_with_token_returns_identity_and_token() {
    let app = TestApp::builder().spawn().await;
    let reply = app
        .identity(
            Method::POST,
            &create_path(),
            Some(json!({ "createTokenWithScopes": ["chat"] })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let body = reply.json();
    let id = body["identity"]["id"].as_str().expect("identity.id");
    assert_user_id(id);
    let token = body["accessToken"]["token"]
        .as_str()
        .expect("accessToken.token");
    let expires = parse_time(
        body["accessToken"]["expiresOn"]
            .as_str()
            .expect("accessToken.expiresOn"),
    );
    let claims = claims(token);
    assert_eq!(
        claims["exp"].as_i64().expect("numeric exp"),
        expires / 1_000_000,
        "expiresOn and exp agree"
    );
    // The token works on a chat call.
    let list = app.chat(Method::GET, "/chat/threads", token, None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    app.stop().await;
}

#[tokio::test]
async fn create_without_token_has_no_access_token() {
    let app = TestApp::builder().spawn().await;
    for body in [
        None,
        Some(json!({})),
        Some(json!({ "createTokenWithScopes": [] })),
    ] {
        let reply = app
            .identity(Method::POST, &create_path(), body.clone())
            .await;
        assert_eq!(reply.status, 201, "{body:?}: {}", reply.text);
        let json = reply.json();
        assert_user_id(json["identity"]["id"].as_str().expect("identity.id"));
        assert!(
            json.get("accessToken").is_none_or(Value::is_null),
            "{body:?}: {}",
            reply.text
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn every_identity_is_new() {
    let app = TestApp::builder().spawn().await;
    let a = app.create_identity().await;
    let b = app.create_identity().await;
    assert_ne!(a, b);
    app.stop().await;
}

#[tokio::test]
async fn token_lifetime_follows_expires_in_minutes() {
    let app = TestApp::builder().spawn().await;
    for (minutes, seconds) in [(Some(60), 3_600), (Some(1440), 86_400), (None, 86_400)] {
        let mut body = json!({ "createTokenWithScopes": ["chat"] });
        if let Some(m) = minutes {
            body["expiresInMinutes"] = json!(m);
        }
        let reply = app.identity(Method::POST, &create_path(), Some(body)).await;
        assert_eq!(reply.status, 201, "{minutes:?}: {}", reply.text);
        let claims = claims(
            reply.json()["accessToken"]["token"]
                .as_str()
                .expect("token"),
        );
        let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
        assert_eq!(lifetime, seconds, "expiresInMinutes {minutes:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn expires_in_minutes_out_of_range_is_400() {
    let app = TestApp::builder().spawn().await;
    let id = app.create_identity().await;
    for minutes in [59, 1441, 0, -1] {
        let reply = app
            .identity(
                Method::POST,
                &create_path(),
                Some(json!({ "createTokenWithScopes": ["chat"], "expiresInMinutes": minutes })),
            )
            .await;
        assert_acs_error(&reply, 400);
        let reply = app
            .identity(
                Method::POST,
                &identity_path(&id, "/:issueAccessToken", IDENTITY_VERSION),
                Some(json!({ "scopes": ["chat"], "expiresInMinutes": minutes })),
            )
            .await;
        assert_acs_error(&reply, 400);
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_scope_is_400() {
    let app = TestApp::builder().spawn().await;
    let reply = app
        .identity(
            Method::POST,
            &create_path(),
            Some(json!({ "createTokenWithScopes": ["chat", "email"] })),
        )
        .await;
    assert_acs_error(&reply, 400);
    let id = app.create_identity().await;
    let reply = app
        .identity(
            Method::POST,
            &identity_path(&id, "/:issueAccessToken", IDENTITY_VERSION),
            Some(json!({ "scopes": ["admin"] })),
        )
        .await;
    assert_acs_error(&reply, 400);
    app.stop().await;
}

#[tokio::test]
async fn every_documented_scope_is_accepted() {
    let app = TestApp::builder().spawn().await;
    let reply = app
        .identity(
            Method::POST,
            &create_path(),
            Some(json!({ "createTokenWithScopes": ["chat", "voip", "chat.join", "chat.join.limited", "voip.join"] })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let claims = claims(
        reply.json()["accessToken"]["token"]
            .as_str()
            .expect("token"),
    );
    let scopes: Vec<&str> = claims["acsScope"]
        .as_str()
        .expect("acsScope")
        .split(',')
        .collect();
    assert_eq!(
        scopes,
        [
            "chat",
            "voip",
            "chat.join",
            "chat.join.limited",
            "voip.join"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn issue_token_returns_200_with_token() {
    let app = TestApp::builder().spawn().await;
    let id = app.create_identity().await;
    let reply = app
        .identity(
            Method::POST,
            &identity_path(&id, "/:issueAccessToken", IDENTITY_VERSION),
            Some(json!({ "scopes": ["chat", "voip"], "expiresInMinutes": 60 })),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let token = body["token"].as_str().expect("token");
    let expires = parse_time(body["expiresOn"].as_str().expect("expiresOn"));
    let claims = claims(token);
    assert_eq!(claims["skypeid"], id.trim_start_matches("8:"));
    assert_eq!(claims["acsScope"], "chat,voip");
    assert_eq!(claims["exp"].as_i64().expect("exp"), expires / 1_000_000);
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", token, None)
            .await
            .status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn token_payload_is_python_safe_and_carries_the_claims() {
    let app = TestApp::builder().spawn().await;
    // Many tokens, so that an unlucky alignment of `>`, `?` or `~` would show.
    for _ in 0..40 {
        let reply = app
            .identity(
                Method::POST,
                &create_path(),
                Some(json!({ "createTokenWithScopes": ["chat", "voip"] })),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let body = reply.json();
        let id = body["identity"]["id"].as_str().expect("id");
        let claims = claims(body["accessToken"]["token"].as_str().expect("token"));
        assert_eq!(claims["skypeid"], id.strip_prefix("8:").expect("8: prefix"));
        assert_eq!(claims["scp"], 1792);
        let iat = claims["iat"].as_i64().expect("numeric iat");
        assert_eq!(
            claims["csi"],
            iat.to_string(),
            "csi is the issue time as a string"
        );
        assert!(claims["exp"].as_i64().expect("numeric exp") > iat);
        assert_eq!(claims["acsScope"], "chat,voip");
        assert_eq!(claims["resourceId"], DEFAULT_RESOURCE_ID);
    }
    app.stop().await;
}

#[tokio::test]
async fn revoke_refuses_old_tokens_but_not_new_ones() {
    let app = TestApp::builder().spawn().await;
    let (id, old) = app.create_user().await;
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &old, None)
            .await
            .status,
        200
    );
    let reply = app
        .identity(
            Method::POST,
            &identity_path(&id, "/:revokeAccessTokens", IDENTITY_VERSION),
            None,
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.text.is_empty());
    app.chat(Method::GET, "/chat/threads", &old, None)
        .await
        .assert_error(401, "Unauthorized");
    let new = app.issue_token(&id, &["chat"]).await;
    let reply = app.chat(Method::GET, "/chat/threads", &new, None).await;
    assert_eq!(
        reply.status, 200,
        "a token issued after the revoke works: {}",
        reply.text
    );
    app.chat(Method::GET, "/chat/threads", &old, None)
        .await
        .assert_error(401, "Unauthorized");
    app.stop().await;
}

#[tokio::test]
async fn delete_identity_is_204_twice_and_refuses_its_tokens() {
    let app = TestApp::builder().spawn().await;
    let (id, token) = app.create_user().await;
    let (_, other_token) = app.create_user().await;
    for _ in 0..2 {
        let reply = app
            .identity(
                Method::DELETE,
                &identity_path(&id, "", IDENTITY_VERSION),
                None,
            )
            .await;
        assert_eq!(reply.status, 204, "{}", reply.text);
        assert!(reply.text.is_empty());
    }
    app.chat(Method::GET, "/chat/threads", &token, None)
        .await
        .assert_error(401, "Unauthorized");
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &other_token, None)
            .await
            .status,
        200,
        "others are unaffected"
    );
    app.stop().await;
}

#[tokio::test]
async fn get_identity_exists_from_2025_06_30() {
    let app = TestApp::builder().spawn().await;
    let (id, _) = app.create_user().await;
    let reply = app
        .identity(Method::GET, &identity_path(&id, "", "2025-06-30"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["id"], id.as_str());
    let reply = app
        .identity(Method::GET, &identity_path(&id, "", "2023-10-01"), None)
        .await;
    assert_acs_error(&reply, 404);
    app.identity(
        Method::DELETE,
        &identity_path(&id, "", IDENTITY_VERSION),
        None,
    )
    .await;
    let reply = app
        .identity(Method::GET, &identity_path(&id, "", "2025-06-30"), None)
        .await;
    assert_acs_error(&reply, 404);
    app.stop().await;
}

#[tokio::test]
async fn unsigned_request_is_401() {
    let app = TestApp::builder().spawn().await;
    let reply = app.raw(Method::POST, &create_path(), &[], Some("{}")).await;
    assert_acs_error(&reply, 401);
    let reply = app.raw(Method::POST, &create_path(), &[], None).await;
    assert_acs_error(&reply, 401);
    app.stop().await;
}

#[tokio::test]
async fn wrongly_signed_requests_are_401() {
    let app = TestApp::builder().spawn().await;
    let path = create_path();
    let body = r#"{"createTokenWithScopes":["chat"]}"#;

    // Signed with another key.
    let headers = app.sign("POST", &path, body, b"not-the-access-key");
    assert_acs_error(
        &app.raw(Method::POST, &path, &headers, Some(body)).await,
        401,
    );

    // Signed for another body (hash of the signed body sent with a different one).
    let headers = app.sign("POST", &path, "{}", &default_key());
    assert_acs_error(
        &app.raw(Method::POST, &path, &headers, Some(body)).await,
        401,
    );

    // Signed for another path.
    let headers = app.sign(
        "POST",
        "/identities?api-version=2022-10-01",
        body,
        &default_key(),
    );
    assert_acs_error(
        &app.raw(Method::POST, &path, &headers, Some(body)).await,
        401,
    );

    // Signed for another method.
    let headers = app.sign("GET", &path, body, &default_key());
    assert_acs_error(
        &app.raw(Method::POST, &path, &headers, Some(body)).await,
        401,
    );

    // A correct signature with x-ms-date removed.
    let headers: Vec<_> = app
        .sign("POST", &path, body, &default_key())
        .into_iter()
        .filter(|(n, _)| *n != "x-ms-date")
        .collect();
    assert_acs_error(
        &app.raw(Method::POST, &path, &headers, Some(body)).await,
        401,
    );

    // A bearer token is not an access-key signature.
    let (_, token) = app.create_user().await;
    let reply = app
        .raw(
            Method::POST,
            &path,
            &[("authorization", format!("Bearer {token}"))],
            Some(body),
        )
        .await;
    assert_acs_error(&reply, 401);

    // Control: the same request correctly signed passes.
    let headers = app.sign("POST", &path, body, &default_key());
    assert_eq!(
        app.raw(Method::POST, &path, &headers, Some(body))
            .await
            .status,
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn lenient_auth_accepts_unsigned_identity_calls() {
    let app = TestApp::builder()
        .config(|c| c.auth = AuthMode::Lenient)
        .spawn()
        .await;
    let reply = app
        .raw(
            Method::POST,
            &create_path(),
            &[],
            Some(r#"{"createTokenWithScopes":["chat"]}"#),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let token = reply.json()["accessToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &token, None)
            .await
            .status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_api_version_is_400() {
    let app = TestApp::builder().spawn().await;
    let reply = app
        .identity(Method::POST, "/identities?api-version=2099-01-01", None)
        .await;
    reply.assert_error(400, "UnsupportedApiVersion");
    app.stop().await;
}

#[tokio::test]
async fn missing_api_version_is_400() {
    let app = TestApp::builder().spawn().await;
    let reply = app.identity(Method::POST, "/identities", None).await;
    assert_acs_error(&reply, 400);
    app.stop().await;
}

#[tokio::test]
async fn responses_carry_api_supported_versions() {
    let app = TestApp::builder().spawn().await;
    let reply = app.identity(Method::POST, &create_path(), None).await;
    assert_eq!(reply.status, 201);
    let versions = reply
        .header("api-supported-versions")
        .expect("api-supported-versions");
    assert!(
        versions.split(',').any(|v| v.trim() == IDENTITY_VERSION),
        "{versions}"
    );
    assert!(
        versions.split(',').any(|v| v.trim() == "2025-06-30"),
        "{versions}"
    );
    app.stop().await;
}

#[tokio::test]
async fn actions_on_unknown_identities_are_404() {
    let app = TestApp::builder().spawn().await;
    let unknown = format!("8:acs:{DEFAULT_RESOURCE_ID}_00000000-0000-0000-0000-000000000001");
    let reply = app
        .identity(
            Method::POST,
            &identity_path(&unknown, "/:issueAccessToken", IDENTITY_VERSION),
            Some(json!({ "scopes": ["chat"] })),
        )
        .await;
    assert_acs_error(&reply, 404);
    let reply = app
        .identity(
            Method::POST,
            &identity_path(&unknown, "/:revokeAccessTokens", IDENTITY_VERSION),
            None,
        )
        .await;
    assert_acs_error(&reply, 404);
    let reply = app
        .identity(
            Method::GET,
            &identity_path(&unknown, "", "2025-06-30"),
            None,
        )
        .await;
    assert_acs_error(&reply, 404);
    app.stop().await;
}

/// A JWT shaped like a Microsoft Entra access token (a signature nobody checks: the emulator
/// cannot check Entra's signature offline and does not try).
fn entra_token(aud: &str, exp: i64) -> String {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        b64(
            serde_json::json!({"aud": aud, "exp": exp, "tid": "00000000-0000-0000-0000-000000000000"})
        )
    )
}

#[tokio::test]
async fn entra_bearer_tokens_for_the_communication_audience_are_accepted_when_opted_in() {
    let app = TestApp::builder()
        .config(|c| c.accept_entra_tokens = true)
        .spawn()
        .await;
    let url = format!(
        "{}/identities?api-version={IDENTITY_VERSION}",
        app.http_base
    );
    let future = crate::helpers::wall_now_micros() / 1_000_000 + 3600;
    let good = entra_token("https://communication.azure.com", future);
    let reply = app
        .send(
            Method::POST,
            &url,
            &[("authorization", format!("Bearer {good}"))],
            None,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    for bad in [
        entra_token("https://graph.microsoft.com", future),
        entra_token("https://communication.azure.com", future - 7200),
        "not-a-jwt".to_owned(),
    ] {
        let reply = app
            .send(
                Method::POST,
                &url,
                &[("authorization", format!("Bearer {bad}"))],
                None,
            )
            .await;
        reply.assert_error(401, "Unauthorized");
    }
    app.stop().await;
}

#[tokio::test]
async fn custom_ids_return_the_same_identity_on_2025_06_30() {
    let app = TestApp::builder().spawn().await;
    let create = |version: &'static str| {
        let app = &app;
        async move {
            let reply = app
                .identity(
                    Method::POST,
                    &format!("/identities?api-version={version}"),
                    Some(json!({"customId": "sally@contoso.com"})),
                )
                .await;
            assert_eq!(reply.status, 201, "{}", reply.text);
            reply.json()["identity"]["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };
    let first = create("2025-06-30").await;
    assert_eq!(
        create("2025-06-30").await,
        first,
        "same customId, same identity"
    );
    let got = app
        .identity(
            Method::GET,
            &format!("/identities/{}?api-version=2025-06-30", enc(&first)),
            None,
        )
        .await;
    assert_eq!(got.json()["customId"], "sally@contoso.com");
    assert_ne!(
        create("2023-10-01").await,
        first,
        "2023-10-01 has no customId"
    );
    // Deleting releases the customId.
    let deleted = app
        .identity(
            Method::DELETE,
            &format!("/identities/{}?api-version=2025-06-30", enc(&first)),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_ne!(create("2025-06-30").await, first);
    app.stop().await;
}
