//! The emulator's own API: info, reset, state export/import, inspection; bad input to each is
//! a clear 400 (or 401) and changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, enc, participant};

/// A state with every kind of object: identities (one revoked, one deleted), a thread with
/// metadata and retention, participants with display names and share times, text and system
/// messages, an edited and a deleted message, read receipts, a repeatability record, and a
/// deleted thread.
async fn populate(app: &TestApp) -> (String, String, String) {
    let (alice, alice_token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let (carol, _) = app.create_user().await;
    let (dave, _) = app.create_user().await;
    let mut body = json!({
        "topic": "everything",
        "participants": [participant(&bob), participant(&carol)],
        "metadata": { "kind": "test" },
        "retentionPolicy": { "kind": "threadCreationDate", "deleteThreadAfterDays": 45 }
    });
    body["participants"][0]["displayName"] = json!("Bob");
    body["participants"][0]["shareHistoryTime"] = json!("2024-01-01T00:00:00Z");
    let reply = app
        .send(
            Method::POST,
            &app.chat_url("/chat/threads"),
            &[
                ("authorization", format!("Bearer {alice_token}")),
                ("repeatability-request-id", "rid-1".to_owned()),
            ],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let thread = reply.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = app.send_message(&alice_token, &thread, "first").await;
    let second = app.send_message(&bob_token, &thread, "second").await;
    let path = format!("/chat/threads/{}", enc(&thread));
    let edit = app
        .chat(
            Method::PATCH,
            &format!("{path}/messages/{first}"),
            &alice_token,
            Some(json!({"content": "first, edited", "metadata": {"k": "v"}})),
        )
        .await;
    assert_eq!(edit.status, 204);
    assert_eq!(
        app.chat(
            Method::DELETE,
            &format!("{path}/messages/{second}"),
            &bob_token,
            None
        )
        .await
        .status,
        204
    );
    let receipt = app
        .chat(
            Method::POST,
            &format!("{path}/readReceipts"),
            &bob_token,
            Some(json!({"chatMessageId": first})),
        )
        .await;
    assert_eq!(receipt.status, 200);
    let removal = app
        .chat(
            Method::POST,
            &format!("{path}/participants/:remove"),
            &alice_token,
            Some(json!({"communicationUser": {"id": carol}})),
        )
        .await;
    assert_eq!(removal.status, 204);
    let gone = app.create_thread(&alice_token, "gone", &[]).await;
    assert_eq!(
        app.chat(
            Method::DELETE,
            &format!("/chat/threads/{}", enc(&gone)),
            &alice_token,
            None
        )
        .await
        .status,
        204
    );
    let revoke = app
        .identity(
            Method::POST,
            &format!(
                "/identities/{}/:revokeAccessTokens?api-version=2023-10-01",
                enc(&bob)
            ),
            None,
        )
        .await;
    assert_eq!(revoke.status, 204);
    let delete = app
        .identity(
            Method::DELETE,
            &format!("/identities/{}?api-version=2023-10-01", enc(&dave)),
            None,
        )
        .await;
    assert_eq!(delete.status, 204);
    (thread, alice_token, alice)
}

#[tokio::test]
async fn export_reset_import_export_is_lossless() {
    let app = TestApp::builder().spawn().await;
    let (thread, alice_token, _) = populate(&app).await;
    let before = app.export().await;
    assert_eq!(before["format"], "acs-chat-emulator/state@1");
    assert_eq!(before["identities"].as_array().map(Vec::len), Some(4));
    assert_eq!(before["threads"].as_array().map(Vec::len), Some(2));
    assert_eq!(before["repeatability"].as_array().map(Vec::len), Some(1));

    assert_eq!(
        app.admin(Method::POST, "/_emulator/reset", None)
            .await
            .status,
        204
    );
    let empty = app.export().await;
    assert_eq!(empty["identities"], json!([]));
    assert_eq!(empty["threads"], json!([]));
    let gone = app
        .chat(
            Method::GET,
            &format!("/chat/threads/{}", enc(&thread)),
            &alice_token,
            None,
        )
        .await;
    gone.assert_error(401, "Unauthorized");

    let import = app
        .admin(Method::PUT, "/_emulator/state", Some(before.clone()))
        .await;
    assert_eq!(import.status, 204, "{}", import.text);
    assert_eq!(
        app.export().await,
        before,
        "export → reset → import → export gives the same document"
    );

    // The imported state is live: the old token works again and new messages continue the
    // thread's sequence.
    let next = app
        .send_message(&alice_token, &thread, "after import")
        .await;
    let messages = app
        .items(
            &format!("/chat/threads/{}/messages", enc(&thread)),
            &alice_token,
        )
        .await;
    assert_eq!(messages[0]["id"], next.as_str());
    let max_before = before["threads"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == thread.as_str()))
        .map(|t| t["lastSequenceId"].as_i64().expect("number"))
        .expect("thread exported");
    assert_eq!(messages[0]["sequenceId"], (max_before + 1).to_string());
    app.stop().await;
}

#[tokio::test]
async fn reset_can_keep_identities() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    app.create_thread(&token, "t", &[]).await;
    assert_eq!(
        app.admin(Method::POST, "/_emulator/reset?keep=identities", None)
            .await
            .status,
        204
    );
    let state = app.export().await;
    assert_eq!(state["threads"], json!([]));
    assert_eq!(state["identities"][0]["id"], alice.as_str());
    // The token is still good: the identity survived.
    let listed = app.chat(Method::GET, "/chat/threads", &token, None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["value"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn destructive_calls_need_the_access_key_and_bad_input_changes_nothing() {
    let app = TestApp::builder().spawn().await;
    populate(&app).await;
    let before = app.export().await;
    let url = |p: &str| format!("{}{p}", app.http_base);

    let no_key = app
        .send(Method::POST, &url("/_emulator/reset"), &[], None)
        .await;
    no_key.assert_error(401, "Unauthorized");
    let wrong_key = app
        .send(
            Method::POST,
            &url("/_emulator/reset"),
            &[("authorization", "Bearer d3Jvbmc=".to_owned())],
            None,
        )
        .await;
    wrong_key.assert_error(401, "Unauthorized");
    let put_no_key = app
        .send(
            Method::PUT,
            &url("/_emulator/state"),
            &[],
            Some(&before.to_string()),
        )
        .await;
    put_no_key.assert_error(401, "Unauthorized");
    // The HMAC signature of the identity API is accepted too.
    let signed = app.sign(
        "POST",
        "/_emulator/reset?keep=bogus",
        "",
        &crate::helpers::default_key(),
    );
    app.send(
        Method::POST,
        &url("/_emulator/reset?keep=bogus"),
        &signed,
        None,
    )
    .await
    .assert_error(400, "BadRequest");

    let mut duplicate_identity = before.clone();
    let first = duplicate_identity["identities"][0].clone();
    duplicate_identity["identities"]
        .as_array_mut()
        .expect("array")
        .push(first);
    let mut bad_counter = before.clone();
    bad_counter["threads"][0]["lastSequenceId"] = json!(0);
    let mut bad_time = before.clone();
    bad_time["identities"][0]["createdAt"] = json!("yesterday");
    let mut unknown_field = before.clone();
    unknown_field["extra"] = json!(1);
    let mut wrong_format = before.clone();
    wrong_format["format"] = json!("something-else@9");
    let mut bad_thread_id = before.clone();
    bad_thread_id["threads"][0]["id"] = json!("not-a-thread");
    for bad in [
        json!({}),
        json!([]),
        duplicate_identity,
        bad_counter,
        bad_time,
        unknown_field,
        wrong_format,
        bad_thread_id,
    ] {
        let reply = app.admin(Method::PUT, "/_emulator/state", Some(bad)).await;
        reply.assert_error(400, "BadRequest");
    }
    let malformed = app
        .send(
            Method::PUT,
            &url("/_emulator/state"),
            &[(
                "authorization",
                format!("Bearer {}", acs_chat_emulator::config::DEFAULT_ACCESS_KEY),
            )],
            Some("{not json"),
        )
        .await;
    malformed.assert_error(400, "BadRequest");
    assert_eq!(app.export().await, before, "no bad call changed anything");
    app.stop().await;
}

#[tokio::test]
async fn info_and_inspection_need_no_token() {
    let app = TestApp::builder().spawn().await;
    let (thread, _, alice) = populate(&app).await;
    let info = app
        .send(
            Method::GET,
            &format!("{}/_emulator/info", app.http_base),
            &[],
            None,
        )
        .await;
    assert_eq!(info.status, 200);
    let info = info.json();
    assert_eq!(info["resourceId"], "a1b2c3d4-0000-4000-8000-00000000ac5e");
    assert_eq!(info["endpoints"]["https"], app.https_base.as_str());
    assert!(
        info["apiVersions"]["chat"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("2025-03-15")))
    );
    assert!(
        info["apiVersions"]["identity"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("2023-10-01")))
    );
    // The suite runs once per store (ACS_TEST_STORE); info names the one this app runs on.
    let storage = if app.in_memory { "memory" } else { "sqlite" };
    assert_eq!(info["storage"], storage);

    let identities = app
        .send(
            Method::GET,
            &format!("{}/_emulator/identities", app.http_base),
            &[],
            None,
        )
        .await
        .json();
    assert!(
        identities["value"]
            .as_array()
            .is_some_and(|v| v.iter().any(|i| i["id"] == alice.as_str()))
    );
    let threads = app
        .send(
            Method::GET,
            &format!("{}/_emulator/threads", app.http_base),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(threads["value"].as_array().map(Vec::len), Some(2));
    let one = app
        .send(
            Method::GET,
            &format!("{}/_emulator/threads/{}", app.http_base, enc(&thread)),
            &[],
            None,
        )
        .await;
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(one["topic"], "everything");
    let texts: Vec<&Value> = one["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["type"] == "text")
        .collect();
    assert_eq!(texts.len(), 2);
    let missing = app
        .send(
            Method::GET,
            &format!("{}/_emulator/threads/19%3Anope%40thread.v2", app.http_base),
            &[],
            None,
        )
        .await;
    missing.assert_error(404, "NotFound");
    app.stop().await;
}

#[tokio::test]
async fn reset_under_concurrent_traffic_leaves_a_consistent_state() {
    let app = std::sync::Arc::new(TestApp::builder().spawn().await);
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "busy", &[]).await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let app = app.clone();
        let token = token.clone();
        let thread = thread.clone();
        writers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..25 {
                let reply = app
                    .chat(
                        Method::POST,
                        &format!("/chat/threads/{}/messages", enc(&thread)),
                        &token,
                        Some(json!({"content": format!("{w}-{i}")})),
                    )
                    .await;
                statuses.push(reply.status.as_u16());
            }
            statuses
        }));
    }
    let reset = app.admin(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(reset.status, 204);
    let mut statuses = Vec::new();
    for writer in writers {
        statuses.extend(writer.await.expect("writer"));
    }
    // Before the reset a send succeeds; after it the token's identity is gone (401), or, for a
    // send already past its checks, the thread is (404). Never a 500, never anything else.
    assert!(
        statuses.iter().all(|s| [201, 401, 404].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.export().await["threads"], json!([]));
    match std::sync::Arc::try_unwrap(app) {
        Ok(app) => app.stop().await,
        Err(_) => panic!("writers still hold the app"),
    }
}
