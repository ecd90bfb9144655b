//! Fault rules (`/_emulator/faults`) and `--throttle` as clients see them.

use std::time::Instant;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, enc};

async fn install(app: &TestApp, rule: serde_json::Value) -> String {
    let reply = app
        .admin(Method::POST, "/_emulator/faults", Some(rule))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json()["id"].as_str().expect("rule id").to_owned()
}

#[tokio::test]
async fn a_counted_rule_fails_matching_requests_then_retires() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "faulty", &[]).await;
    let other = app.create_thread(&token, "fine", &[]).await;
    install(
        &app,
        json!({
            "match": { "operation": "ChatThread_SendChatMessage", "threadId": thread },
            "effect": { "status": 503, "retryAfterSeconds": 2 },
            "count": 2
        }),
    )
    .await;
    let send = |t: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.chat(
                Method::POST,
                &format!("/chat/threads/{}/messages", enc(&t)),
                &token,
                Some(json!({"content": "x"})),
            )
            .await
        }
    };
    for _ in 0..2 {
        let reply = send(thread.clone()).await;
        reply.assert_error(503, "ServiceUnavailable");
        assert_eq!(reply.header("retry-after"), Some("2"));
        assert_eq!(reply.header("x-ms-error-response"), Some("true"));
        assert!(
            reply.header("api-supported-versions").is_some(),
            "injected errors look like the service's"
        );
        // Another thread is not matched.
        assert_eq!(send(other.clone()).await.status, 201);
    }
    assert_eq!(
        send(thread.clone()).await.status,
        201,
        "the rule retired after 2 faults"
    );
    let listed = app
        .send(
            Method::GET,
            &format!("{}/_emulator/faults", app.http_base),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(listed["value"], json!([]));
    // Messages that failed were not stored: only the one that went through.
    let texts = app
        .items(&format!("/chat/threads/{}/messages", enc(&thread)), &token)
        .await
        .into_iter()
        .filter(|m| m["type"] == "text")
        .count();
    assert_eq!(texts, 1);
    app.stop().await;
}

#[tokio::test]
async fn rules_match_by_user_method_and_path_and_can_be_removed() {
    let app = TestApp::builder().spawn().await;
    let (alice, alice_token) = app.create_user().await;
    let (_, bob_token) = app.create_user().await;
    let id = install(
        &app,
        json!({ "match": { "userId": alice, "method": "get", "path": "/chat/threads*" }, "effect": { "status": 429, "code": "TooManyRequests", "message": "slow down" } }),
    )
    .await;
    let reply = app
        .chat(Method::GET, "/chat/threads", &alice_token, None)
        .await;
    reply.assert_error(429, "TooManyRequests");
    assert_eq!(reply.json()["error"]["message"], "slow down");
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &bob_token, None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.chat(
            Method::POST,
            "/chat/threads",
            &alice_token,
            Some(json!({"topic": "t"}))
        )
        .await
        .status,
        201
    );
    let listed = app
        .send(
            Method::GET,
            &format!("{}/_emulator/faults", app.http_base),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(listed["value"][0]["applied"], 1);
    assert_eq!(
        app.admin(Method::DELETE, &format!("/_emulator/faults/{id}"), None)
            .await
            .status,
        204
    );
    app.admin(Method::DELETE, &format!("/_emulator/faults/{id}"), None)
        .await
        .assert_error(404, "NotFound");
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &alice_token, None)
            .await
            .status,
        200
    );

    install(&app, json!({ "match": { "operation": "IdentityOperations_Create" }, "effect": { "status": 500 } })).await;
    install(&app, json!({ "effect": { "status": 503 } })).await;
    assert_eq!(
        app.admin(Method::DELETE, "/_emulator/faults", None)
            .await
            .status,
        204
    );
    let listed = app
        .send(
            Method::GET,
            &format!("{}/_emulator/faults", app.http_base),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(listed["value"], json!([]));
    // The emulator's own routes are never affected.
    install(&app, json!({ "effect": { "status": 503 } })).await;
    let health = app
        .send(
            Method::GET,
            &format!("{}/_emulator/health", app.http_base),
            &[],
            None,
        )
        .await;
    assert_eq!(health.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn latency_and_dropped_connections() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    install(&app, json!({ "match": { "operation": "Chat_ListChatThreads" }, "effect": { "latencyMs": 300 }, "count": 1 })).await;
    let started = Instant::now();
    let reply = app.chat(Method::GET, "/chat/threads", &token, None).await;
    assert_eq!(reply.status, 200, "latency alone lets the request through");
    assert!(
        started.elapsed().as_millis() >= 300,
        "the answer waited for the injected latency"
    );

    install(&app, json!({ "match": { "operation": "Chat_ListChatThreads" }, "effect": { "dropConnection": true }, "count": 1 })).await;
    let broken = app
        .client
        .get(app.chat_url("/chat/threads"))
        .bearer_auth(&token)
        .send()
        .await;
    let failed = match broken {
        Err(_) => true,
        Ok(response) => response.text().await.is_err(),
    };
    assert!(failed, "the client sees the connection break");
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &token, None)
            .await
            .status,
        200
    );
    app.stop().await;
}

#[tokio::test]
async fn bad_rules_are_refused_and_change_nothing() {
    let app = TestApp::builder().spawn().await;
    let url = format!("{}/_emulator/faults", app.http_base);
    let no_key = app
        .send(
            Method::POST,
            &url,
            &[],
            Some(&json!({"effect": {"status": 503}}).to_string()),
        )
        .await;
    no_key.assert_error(401, "Unauthorized");
    for bad in [
        json!({}),
        json!({ "effect": {} }),
        json!({ "effect": { "status": 200 } }),
        json!({ "effect": { "status": 503, "dropConnection": true } }),
        json!({ "effect": { "latencyMs": 600000 } }),
        json!({ "effect": { "status": 503 }, "probability": 2 }),
        json!({ "effect": { "status": 503 }, "count": 0 }),
        json!({ "effect": { "status": 503 }, "match": { "thread": "typo" } }),
        json!({ "effect": { "status": "503" } }),
    ] {
        app.admin(Method::POST, "/_emulator/faults", Some(bad))
            .await
            .assert_error(400, "BadRequest");
    }
    let listed = app.send(Method::GET, &url, &[], None).await.json();
    assert_eq!(listed["value"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn throttle_applies_the_documented_limits() {
    let app = TestApp::builder()
        .config(|c| c.throttle = true)
        .spawn()
        .await;
    let (_, alice) = app.create_user().await;
    let (bob_id, bob) = app.create_user().await;
    let thread = app.create_thread(&alice, "busy", &[&bob_id]).await;
    let typing = format!("/chat/threads/{}/typing", enc(&thread));
    // Typing: 5 per 10 s per user in a thread (service limits).
    for _ in 0..5 {
        assert_eq!(
            app.chat(Method::POST, &typing, &alice, None).await.status,
            200
        );
    }
    let refused = app.chat(Method::POST, &typing, &alice, None).await;
    refused.assert_error(429, "TooManyRequests");
    let retry_after: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    assert_eq!(
        app.chat(Method::POST, &typing, &bob, None).await.status,
        200,
        "each user has their own budget"
    );
    app.stop().await;

    let unthrottled = TestApp::builder().spawn().await;
    let (_, token) = unthrottled.create_user().await;
    let thread = unthrottled.create_thread(&token, "free", &[]).await;
    for _ in 0..20 {
        let reply = unthrottled
            .chat(
                Method::POST,
                &format!("/chat/threads/{}/typing", enc(&thread)),
                &token,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "no limits without --throttle");
    }
    unthrottled.stop().await;
}
