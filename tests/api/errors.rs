//! Errors across the API: unknown routes and methods, credentials (missing, garbage, tampered,
//! expired), thread ids (malformed → 400, unknown → 404), the ACS error envelope and its headers,
//! service headers (`x-ms-client-request-id`, `MS-CV`, `api-supported-versions`), api-versions,
//! and no 500 for any bad input (api-contract.md §1, §6, §7.1; sdk-clients.md §4; recordings).

use std::sync::Arc;

use acs_chat_emulator::clock::FixedClock;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    CHAT_VERSION, IDENTITY_VERSION, Reply, TestApp, default_key, participant, thread_path,
    wall_now_micros,
};

const UNKNOWN_THREAD: &str = "19:00000000000000000000000000000000@thread.v2";

/// What is wrong with an error reply, if anything: status, the ACS envelope
/// (`error.code`, `error.message`), `x-ms-error-response: true` and a JSON content type.
fn acs_error_problem(reply: &Reply, status: u16) -> Option<String> {
    let body = reply.json();
    let non_empty = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    if reply.status.as_u16() != status {
        Some(format!("status {} (expected {status})", reply.status))
    } else if !non_empty(&body["error"]["code"]) || !non_empty(&body["error"]["message"]) {
        Some("no ACS error envelope".to_owned())
    } else if reply.header("x-ms-error-response") != Some("true") {
        Some("no x-ms-error-response: true".to_owned())
    } else if !reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        Some(format!("content-type {:?}", reply.header("content-type")))
    } else {
        None
    }
}

/// Asserts `acs_error_problem` finds nothing.
fn assert_acs_error(reply: &Reply, status: u16, context: &str) {
    if let Some(problem) = acs_error_problem(reply, status) {
        panic!("{context}: {problem}: {}", reply.text);
    }
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

#[tokio::test]
async fn unknown_routes_are_404_with_the_acs_body() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    for path in [
        "/nope",
        "/chat",
        &format!("/chat/nope?api-version={CHAT_VERSION}"),
        "/chat/threads/a/b/c/d/e",
    ] {
        let reply = app.raw(Method::GET, path, &[bearer(&token)], None).await;
        assert_acs_error(&reply, 404, path);
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_methods_are_405_with_the_acs_body() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    for (method, path) in [
        (Method::PUT, "/chat/threads".to_owned()),
        (Method::DELETE, "/chat/threads".to_owned()),
        (Method::POST, thread_path(&thread)),
        (
            Method::DELETE,
            format!("{}/participants", thread_path(&thread)),
        ),
        (Method::GET, format!("{}/typing", thread_path(&thread))),
    ] {
        let reply = app.chat(method.clone(), &path, &token, None).await;
        assert_acs_error(&reply, 405, &format!("{method} {path}"));
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_or_garbage_credentials_are_401() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut tampered_signature = token.clone();
    let last = tampered_signature.pop().expect("non-empty");
    tampered_signature.push(if last == 'A' { 'B' } else { 'A' });
    // Same header and signature, payload of another scope: the signature no longer matches.
    let mut claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(parts[1].trim_end_matches('='))
            .expect("b64"),
    )
    .expect("json");
    claims["acsScope"] = json!("chat,voip");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let url = app.chat_url("/chat/threads");
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no Authorization", vec![]),
        (
            "empty bearer",
            vec![("authorization", "Bearer ".to_owned())],
        ),
        ("garbage bearer", vec![bearer("garbage")]),
        ("three garbage segments", vec![bearer("a.b.c")]),
        (
            "basic auth",
            vec![("authorization", "Basic dXNlcjpwYXNz".to_owned())],
        ),
        (
            "raw token without scheme",
            vec![("authorization", token.clone())],
        ),
        ("tampered signature", vec![bearer(&tampered_signature)]),
        ("forged payload", vec![bearer(&forged)]),
        ("alg none", vec![bearer(&unsigned)]),
        (
            "access-key signature",
            app.sign(
                "GET",
                &format!("/chat/threads?api-version={CHAT_VERSION}"),
                "",
                &default_key(),
            ),
        ),
    ];
    for (name, headers) in cases {
        let reply = app.send(Method::GET, &url, &headers, None).await;
        reply.assert_error(401, "Unauthorized");
        assert_acs_error(&reply, 401, name);
    }
    // Control: the real token works.
    assert_eq!(
        app.send(Method::GET, &url, &[bearer(&token)], None)
            .await
            .status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn expired_token_is_401() {
    // The clock is the emulator's; the token is minted by the emulator's identity API.
    let clock = Arc::new(FixedClock::new(wall_now_micros()));
    let app = TestApp::builder().clock(clock.clone()).spawn().await;
    let reply = app
        .identity(
            Method::POST,
            &format!("/identities?api-version={IDENTITY_VERSION}"),
            Some(json!({ "createTokenWithScopes": ["chat"], "expiresInMinutes": 60 })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.json()["identity"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let token = reply.json()["accessToken"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    clock.advance_micros(59 * 60 * 1_000_000);
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &token, None)
            .await
            .status,
        200,
        "valid for 60 minutes"
    );
    clock.advance_micros(2 * 60 * 1_000_000);
    app.chat(Method::GET, "/chat/threads", &token, None)
        .await
        .assert_error(401, "Unauthorized");
    let fresh = app.issue_token(&id, &["chat"]).await;
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &fresh, None)
            .await
            .status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn malformed_thread_id_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let base = "/chat/threads/invalid_chat_thread_id";
    for (method, path, body) in [
        (Method::GET, base.to_owned(), None),
        (Method::DELETE, base.to_owned(), None),
        (
            Method::PATCH,
            base.to_owned(),
            Some(json!({ "topic": "x" })),
        ),
        (Method::GET, format!("{base}/messages"), None),
        (
            Method::POST,
            format!("{base}/messages"),
            Some(json!({ "content": "x" })),
        ),
        (Method::GET, format!("{base}/participants"), None),
        (
            Method::POST,
            format!("{base}/readReceipts"),
            Some(json!({ "chatMessageId": "1593107077683" })),
        ),
        (Method::POST, format!("{base}/typing"), None),
    ] {
        let reply = app.chat(method.clone(), &path, &token, body).await;
        assert_acs_error(&reply, 400, &format!("{method} {path}"));
    }
    app.stop().await;
}

#[tokio::test]
async fn well_formed_unknown_thread_is_404() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let base = thread_path(UNKNOWN_THREAD);
    for (method, path, body) in [
        (Method::GET, base.clone(), None),
        (Method::PATCH, base.clone(), Some(json!({ "topic": "x" }))),
        (Method::GET, format!("{base}/messages"), None),
        (
            Method::POST,
            format!("{base}/messages"),
            Some(json!({ "content": "x" })),
        ),
        (Method::GET, format!("{base}/messages/1593107077683"), None),
        (Method::GET, format!("{base}/participants"), None),
        (Method::GET, format!("{base}/readReceipts"), None),
        (Method::POST, format!("{base}/typing"), None),
    ] {
        let reply = app.chat(method.clone(), &path, &token, body).await;
        let context = format!("{method} {path}");
        assert_acs_error(&reply, 404, &context);
        assert_eq!(reply.json()["error"]["code"], "NotFound", "{context}");
        assert_eq!(
            reply.json()["error"]["message"],
            "The specified thread id was not found.",
            "{context}"
        );
    }
    app.stop().await;
}

/// The recordings show the service's 400s for a malformed identifier, message id and thread id
/// with `"Code": "BadRequest"` (android-chat-2021-09-07: cannotCreateThreadWithInvalidUser,
/// cannotGetMessageWithInvalidId, cannotDeleteChatThreadWithInvalidThreadId).
#[tokio::test]
async fn recorded_400s_carry_code_bad_request() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let invalid_user =
        json!({ "topic": "t", "participants": [participant("8:acs:invalidUserId")] });
    let cases = [
        (
            "invalid identifier",
            Method::POST,
            "/chat/threads".to_owned(),
            Some(invalid_user),
        ),
        (
            "invalid message id",
            Method::GET,
            format!("{}/messages/invalid_chat_message_id", thread_path(&thread)),
            None,
        ),
        (
            "invalid thread id",
            Method::DELETE,
            "/chat/threads/invalid_chat_thread_id".to_owned(),
            None,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, method, path, body) in cases {
        let reply = app.chat(method, &path, &token, body).await;
        assert_eq!(reply.status, 400, "{name}: {}", reply.text);
        if reply.json()["error"]["code"] != "BadRequest" {
            wrong.push(format!("{name}: {}", reply.text));
        }
    }
    assert!(
        wrong.is_empty(),
        "recorded code is \"BadRequest\":\n{}",
        wrong.join("\n")
    );
    app.stop().await;
}

#[tokio::test]
async fn errors_carry_the_error_response_header_and_json() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (_, stranger) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let replies = vec![
        (
            "404 route",
            app.raw(Method::GET, "/nope", &[], None).await,
            404,
        ),
        (
            "405",
            app.chat(Method::PUT, "/chat/threads", &token, None).await,
            405,
        ),
        (
            "401 chat",
            app.chat(Method::GET, "/chat/threads", "garbage", None)
                .await,
            401,
        ),
        (
            "401 identity",
            app.raw(
                Method::POST,
                &format!("/identities?api-version={IDENTITY_VERSION}"),
                &[],
                None,
            )
            .await,
            401,
        ),
        (
            "400 version",
            app.chat(
                Method::GET,
                "/chat/threads?api-version=1999-01-01",
                &token,
                None,
            )
            .await,
            400,
        ),
        (
            "400 body",
            app.chat(
                Method::POST,
                "/chat/threads",
                &token,
                Some(json!({ "topic": 5 })),
            )
            .await,
            400,
        ),
        (
            "403",
            app.chat(Method::GET, &thread_path(&thread), &stranger, None)
                .await,
            403,
        ),
        (
            "404 thread",
            app.chat(Method::GET, &thread_path(UNKNOWN_THREAD), &token, None)
                .await,
            404,
        ),
    ];
    for (name, reply, status) in replies {
        assert_acs_error(&reply, status, name);
    }
    app.stop().await;
}

#[tokio::test]
async fn service_headers_are_present() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let request_id = "0c8f3c3e-9d52-4a4b-b1f5-7c3e0a9d2b61";
    let url = app.chat_url("/chat/threads");
    for (name, headers, status) in [
        (
            "ok",
            vec![
                bearer(&token),
                ("x-ms-client-request-id", request_id.to_owned()),
            ],
            200,
        ),
        (
            "error",
            vec![
                bearer("garbage"),
                ("x-ms-client-request-id", request_id.to_owned()),
            ],
            401,
        ),
    ] {
        let reply = app.send(Method::GET, &url, &headers, None).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {}", reply.text);
        assert_eq!(
            reply.header("x-ms-client-request-id"),
            Some(request_id),
            "{name}: echoed"
        );
        assert!(
            reply.header("ms-cv").is_some_and(|v| !v.is_empty()),
            "{name}: MS-CV"
        );
    }
    let reply = app.chat(Method::GET, "/chat/threads", &token, None).await;
    let versions = reply
        .header("api-supported-versions")
        .expect("api-supported-versions");
    for version in ["2021-09-07", "2024-03-07", "2025-03-15"] {
        assert!(
            versions.split(',').any(|v| v.trim() == version),
            "{version} in {versions}"
        );
    }
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    app.stop().await;
}

#[tokio::test]
async fn chat_api_version_is_required_and_checked() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let url = format!("{}/chat/threads", app.http_base);
    let reply = app.send(Method::GET, &url, &[bearer(&token)], None).await;
    assert_acs_error(&reply, 400, "missing api-version");
    let reply = app
        .send(
            Method::GET,
            &format!("{url}?api-version=2099-01-01"),
            &[bearer(&token)],
            None,
        )
        .await;
    reply.assert_error(400, "UnsupportedApiVersion");
    for version in [
        "2021-03-07",
        "2021-09-07",
        "2023-11-07",
        "2024-03-07",
        "2025-03-15",
    ] {
        let reply = app
            .send(
                Method::GET,
                &format!("{url}?api-version={version}"),
                &[bearer(&token)],
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{version}: {}", reply.text);
    }
    app.stop().await;
}

/// Bad input of every kind gets a 4xx with the ACS body, never a 500.
#[tokio::test]
async fn bad_input_is_400_never_500() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let message = app.send_message(&token, &thread, "m").await;
    let tp = thread_path(&thread);
    let auth = [bearer(&token)];

    // (method, path, raw body, expected status or None for "some 4xx")
    let mut cases: Vec<(Method, String, Option<String>, Option<u16>)> = Vec::new();
    let mut json_case = |method: Method, path: &str, body: &str| {
        cases.push((method, path.to_owned(), Some(body.to_owned()), Some(400)))
    };
    // Empty bodies and JSON that is not an object of the right shape.
    for body in [
        "",
        "   ",
        "[]",
        "null",
        "\"text\"",
        "42",
        "{",
        "{\"topic\":",
    ] {
        json_case(Method::POST, "/chat/threads", body);
    }
    for body in [
        r#"{"topic":5}"#,
        r#"{"topic":"t","participants":"x"}"#,
        r#"{"topic":"t","participants":[{}]}"#,
        r#"{"topic":"t","participants":[{"communicationIdentifier":{}}]}"#,
        r#"{"topic":"t","participants":[{"communicationIdentifier":{"communicationUser":{"id":5}}}]}"#,
        r#"{"topic":"t","participants":[{"communicationIdentifier":{"communicationUser":{}}}]}"#,
        r#"{"topic":"t","metadata":"x"}"#,
        r#"{"topic":"t","metadata":{"a":1}}"#,
        r#"{"topic":"t","retentionPolicy":"x"}"#,
        r#"{"topic":"t","retentionPolicy":{"kind":"weird"}}"#,
        r#"{"topic":"t","retentionPolicy":{"kind":"threadCreationDate","deleteThreadAfterDays":"30"}}"#,
        r#"{"topic":"t","retentionPolicy":{"kind":"threadCreationDate","deleteThreadAfterDays":1e400}}"#,
    ] {
        json_case(Method::POST, "/chat/threads", body);
    }
    for body in [
        "",
        r#"{"topic":5}"#,
        r#"{"metadata":{"a":5}}"#,
        r#"{"metadata":"x"}"#,
        "[1]",
    ] {
        json_case(Method::PATCH, &tp, body);
    }
    let messages = format!("{tp}/messages");
    for body in [
        "",
        r#"{"content":5}"#,
        r#"{"content":"x","type":5}"#,
        r#"{"content":"x","metadata":[1]}"#,
        r#"{"content":["x"]}"#,
    ] {
        json_case(Method::POST, &messages, body);
    }
    for body in ["", r#"{"content":5}"#, "{"] {
        json_case(Method::PATCH, &format!("{messages}/{message}"), body);
    }
    let participants = format!("{tp}/participants");
    for body in [
        "",
        "{}",
        r#"{"participants":"x"}"#,
        r#"{"participants":[{"displayName":"x"}]}"#,
    ] {
        json_case(Method::POST, &format!("{participants}/:add"), body);
    }
    let mut share = participant(
        "8:acs:a1b2c3d4-0000-4000-8000-00000000ac5e_00000000-0000-0000-0000-000000000001",
    );
    share["shareHistoryTime"] = json!("yesterday");
    json_case(
        Method::POST,
        &format!("{participants}/:add"),
        &json!({ "participants": [share] }).to_string(),
    );
    for body in [
        "",
        "{}",
        r#"{"communicationUser":{}}"#,
        r#"{"communicationUser":"x"}"#,
    ] {
        json_case(Method::POST, &format!("{participants}/:remove"), body);
    }
    for body in [
        "",
        r#"{"chatMessageId":5}"#,
        r#"{"chatMessageId":"-5"}"#,
        "{",
    ] {
        json_case(Method::POST, &format!("{tp}/readReceipts"), body);
    }
    json_case(Method::POST, &format!("{tp}/typing"), "{");
    json_case(
        Method::POST,
        &format!("{tp}/typing"),
        r#"{"senderDisplayName":5}"#,
    );

    // Query parameters.
    for query in [
        "maxPageSize=99999999999999999999",
        "maxPageSize=2147483648",
        "maxPageSize=abc",
        "maxPageSize=-1",
        "startTime=yesterday",
        "syncState=garbage",
        "syncState=%FF%FE",
    ] {
        cases.push((Method::GET, format!("{messages}?{query}"), None, Some(400)));
        cases.push((
            Method::GET,
            format!("/chat/threads?{query}"),
            None,
            Some(400),
        ));
    }
    for query in [
        "skip=-1",
        "skip=abc",
        "skip=99999999999999999999",
        "maxPageSize=99999999999999999999",
    ] {
        cases.push((
            Method::GET,
            format!("{participants}?{query}"),
            None,
            Some(400),
        ));
        cases.push((
            Method::GET,
            format!("{tp}/readReceipts?{query}"),
            None,
            Some(400),
        ));
    }

    // Paths: bytes that are not UTF-8, absurd lengths, odd message ids.
    for path in [
        "/chat/threads/%FF".to_owned(),
        format!("/chat/threads/19:{}@thread.v2", "a".repeat(10_000)),
        format!("{messages}/99999999999999999999"),
        format!("{messages}/0"),
        format!("{messages}/%FF"),
    ] {
        cases.push((Method::GET, path, None, None));
    }
    // A body far over any limit.
    cases.push((
        Method::POST,
        messages.clone(),
        Some(format!(
            r#"{{"content":"{}"}}"#,
            "x".repeat(2 * 1024 * 1024)
        )),
        None,
    ));

    // Every case runs; the failures are reported together.
    let mut failures = Vec::new();
    for (method, path, body, expected) in cases {
        let url = app.chat_url(&path);
        let reply = app.send(method.clone(), &url, &auth, body.as_deref()).await;
        let shown: String = body.as_deref().unwrap_or("").chars().take(80).collect();
        let context = format!("{method} {} body {shown:?}", &path[..path.len().min(120)]);
        let status = expected.unwrap_or(reply.status.as_u16());
        let problem = if reply.status.is_client_error() {
            acs_error_problem(&reply, status)
        } else {
            Some("not a 4xx".to_owned())
        };
        if let Some(problem) = problem {
            let text: String = reply.text.chars().take(160).collect();
            failures.push(format!("{context} → {problem}: {text}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} bad inputs answered wrongly:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Nothing above changed the thread.
    let items = app.items(&messages, &token).await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(app.items(&participants, &token).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn bad_identity_input_is_400_never_500() {
    let app = TestApp::builder().spawn().await;
    let create = format!("/identities?api-version={IDENTITY_VERSION}");
    for body in [
        json!({ "createTokenWithScopes": "chat" }),
        json!({ "createTokenWithScopes": [5] }),
        json!({ "expiresInMinutes": "60" }),
        json!({ "expiresInMinutes": 99999999999999999999.0 }),
        json!([]),
    ] {
        let reply = app
            .identity(Method::POST, &create, Some(body.clone()))
            .await;
        assert_acs_error(&reply, 400, &body.to_string());
    }
    for raw in ["{", "not json"] {
        let headers = app.sign("POST", &create, raw, &default_key());
        let reply = app.raw(Method::POST, &create, &headers, Some(raw)).await;
        assert_acs_error(&reply, 400, raw);
    }
    let id = app.create_identity().await;
    let issue = format!(
        "/identities/{}/:issueAccessToken?api-version={IDENTITY_VERSION}",
        id.replace(':', "%3A")
    );
    for body in [
        json!({}),
        json!({ "scopes": [] }),
        json!({ "scopes": "chat" }),
    ] {
        let reply = app.identity(Method::POST, &issue, Some(body.clone())).await;
        assert_acs_error(&reply, 400, &body.to_string());
    }
    for path in [
        "/identities/not-an-id",
        "/identities/%FF",
        "/identities/8%3Aacs%3Ax_y_z",
    ] {
        let path = format!("{path}?api-version={IDENTITY_VERSION}");
        let reply = app.identity(Method::DELETE, &path, None).await;
        assert!(reply.status.is_client_error(), "{path}: {}", reply.status);
        assert_acs_error(&reply, reply.status.as_u16(), &path);
    }
    app.stop().await;
}

#[tokio::test]
async fn loose_serves_unknown_api_versions_as_the_newest() {
    let app = TestApp::builder().config(|c| c.loose = true).spawn().await;
    let (_, token) = app.create_user().await;
    for path in ["/chat/threads?api-version=2099-01-01", "/chat/threads"] {
        let url = format!("{}{path}", app.http_base);
        let reply = app
            .send(
                Method::GET,
                &url,
                &[("authorization", format!("Bearer {token}"))],
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
        assert!(
            reply
                .header("api-supported-versions")
                .is_some_and(|v| v.contains("2025-03-15"))
        );
    }
    let created = app
        .identity(Method::POST, "/identities?api-version=2099-01-01", None)
        .await;
    assert_eq!(
        created.status, 201,
        "served as 2025-06-30: {}",
        created.text
    );
    app.stop().await;

    let strict = TestApp::builder().spawn().await;
    let (_, token) = strict.create_user().await;
    let url = format!("{}/chat/threads?api-version=2099-01-01", strict.http_base);
    let reply = strict
        .send(
            Method::GET,
            &url,
            &[("authorization", format!("Bearer {token}"))],
            None,
        )
        .await;
    reply.assert_error(400, "UnsupportedApiVersion");
    strict.stop().await;
}
