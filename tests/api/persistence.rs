//! Persistence: a file-backed emulator keeps identities, token state, threads, messages,
//! participants, receipts and repeatability records across a restart (design.md decision 10);
//! an in-memory one keeps nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    CHAT_VERSION, IDENTITY_VERSION, Reply, TestApp, enc, participant, thread_path,
};

/// Everything a user can read about the state, for comparing before and after a restart.
async fn snapshot(app: &TestApp, token: &str, threads: &[&str], message: &str) -> Value {
    let mut out = json!({ "threads": app.items("/chat/threads", token).await });
    for (n, thread) in threads.iter().enumerate() {
        let tp = thread_path(thread);
        let get = app.chat(Method::GET, &tp, token, None).await;
        out[format!("thread{n}")] = json!({
            "status": get.status.as_u16(),
            "body": get.json(),
        });
        if get.status == 200 {
            out[format!("messages{n}")] = json!(app.items(&format!("{tp}/messages"), token).await);
            out[format!("participants{n}")] =
                json!(app.items(&format!("{tp}/participants"), token).await);
            out[format!("receipts{n}")] =
                json!(app.items(&format!("{tp}/readReceipts"), token).await);
        }
    }
    let reply = app
        .chat(
            Method::GET,
            &format!("{}/messages/{message}", thread_path(threads[0])),
            token,
            None,
        )
        .await;
    out["message"] = reply.json();
    out
}

async fn create_with_request_id(
    app: &TestApp,
    token: &str,
    request_id: &str,
    body: &Value,
) -> Reply {
    app.send(
        Method::POST,
        &app.chat_url("/chat/threads"),
        &[
            ("authorization", format!("Bearer {token}")),
            ("repeatability-request-id", request_id.to_owned()),
        ],
        Some(&body.to_string()),
    )
    .await
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = TestApp::builder()
        .data_dir(dir.path())
        .file_backed()
        .spawn()
        .await;
    assert_eq!(app.data_dir, dir.path());
    let (alice, alice_token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let (carol, carol_token) = app.create_user().await;

    let create_body = json!({
        "topic": "persisted",
        "participants": [participant(&bob)],
        "metadata": { "k": "v" },
        "retentionPolicy": { "kind": "threadCreationDate", "deleteThreadAfterDays": 45 },
    });
    let request_id = "3b0f7a52-1c6e-4d3a-9f0b-6a2d8e4c1b77";
    let reply = create_with_request_id(&app, &alice_token, request_id, &create_body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let thread = reply.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let tp = thread_path(&thread);

    let first = app.send_message(&alice_token, &thread, "first").await;
    let second = app.send_message(&bob_token, &thread, "second").await;
    assert_eq!(
        app.chat(
            Method::PATCH,
            &format!("{tp}/messages/{first}"),
            &alice_token,
            Some(json!({ "content": "first, edited" }))
        )
        .await
        .status,
        204
    );
    let gone = app.send_message(&bob_token, &thread, "gone").await;
    assert_eq!(
        app.chat(
            Method::DELETE,
            &format!("{tp}/messages/{gone}"),
            &bob_token,
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        app.add_participants(&alice_token, &thread, &[&carol])
            .await
            .status,
        201
    );
    assert_eq!(
        app.chat(
            Method::POST,
            &format!("{tp}/readReceipts"),
            &alice_token,
            Some(json!({ "chatMessageId": second }))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.chat(
            Method::POST,
            &format!("{tp}/readReceipts"),
            &bob_token,
            Some(json!({ "chatMessageId": first }))
        )
        .await
        .status,
        200
    );
    let deleted = app.create_thread(&alice_token, "deleted", &[]).await;
    assert_eq!(
        app.chat(Method::DELETE, &thread_path(&deleted), &alice_token, None)
            .await
            .status,
        204
    );
    let reply = app
        .identity(
            Method::POST,
            &format!(
                "/identities/{}/:revokeAccessTokens?api-version={IDENTITY_VERSION}",
                enc(&carol)
            ),
            None,
        )
        .await;
    assert_eq!(reply.status, 204);
    app.chat(Method::GET, "/chat/threads", &carol_token, None)
        .await
        .assert_error(401, "Unauthorized");
    let identity_before = app
        .identity(
            Method::GET,
            &format!("/identities/{}?api-version=2025-06-30", enc(&alice)),
            None,
        )
        .await
        .json();

    let before = snapshot(&app, &alice_token, &[&thread, &deleted], &first).await;
    let ca_before = app.ca_pem.clone();
    app.stop().await;

    let app = TestApp::builder()
        .data_dir(dir.path())
        .file_backed()
        .spawn()
        .await;
    let after = snapshot(&app, &alice_token, &[&thread, &deleted], &first).await;
    assert_eq!(after, before, "everything reads the same after the restart");
    // Spot checks, so that an empty snapshot on both sides cannot pass.
    assert_eq!(after["threads"].as_array().map(Vec::len), Some(2));
    assert_eq!(after["thread0"]["body"]["metadata"], json!({ "k": "v" }));
    assert_eq!(
        after["thread0"]["body"]["retentionPolicy"]["deleteThreadAfterDays"],
        45
    );
    assert_eq!(
        after["thread1"]["status"], 404,
        "the deleted thread stays deleted"
    );
    assert_eq!(
        after["messages0"].as_array().map(Vec::len),
        Some(6),
        "2 system + 3 sent + participantAdded"
    );
    assert_eq!(after["participants0"].as_array().map(Vec::len), Some(3));
    assert_eq!(after["receipts0"].as_array().map(Vec::len), Some(2));
    assert_eq!(after["message"]["content"]["message"], "first, edited");
    assert!(after["message"]["editedOn"].as_str().is_some());
    let identity_after = app
        .identity(
            Method::GET,
            &format!("/identities/{}?api-version=2025-06-30", enc(&alice)),
            None,
        )
        .await
        .json();
    assert_eq!(identity_after, identity_before);
    assert_eq!(
        app.ca_pem, ca_before,
        "the CA is reused, so clients trust it once"
    );

    // Token state: the revoked token stays refused; the others still work.
    app.chat(Method::GET, "/chat/threads", &carol_token, None)
        .await
        .assert_error(401, "Unauthorized");
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &bob_token, None)
            .await
            .status,
        200
    );

    // Counters continue: the next message comes after everything before.
    let next = app.send_message(&bob_token, &thread, "after restart").await;
    assert!(next.parse::<i64>().expect("id") > gone.parse::<i64>().expect("id"));
    let reply = app
        .chat(
            Method::GET,
            &format!("{tp}/messages/{next}"),
            &bob_token,
            None,
        )
        .await;
    assert_eq!(reply.json()["sequenceId"], "7");

    // The repeatability record survived: the same request replays the same thread.
    let reply = create_with_request_id(&app, &alice_token, request_id, &create_body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json()["chatThread"]["id"], thread.as_str());
    assert_eq!(
        app.items(
            &format!("/chat/threads?api-version={CHAT_VERSION}"),
            &alice_token
        )
        .await
        .len(),
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn in_memory_state_is_gone_after_a_restart() {
    // One data dir for both runs, as a user restarting with the same flags has: the state is
    // gone because it was in memory, not because the second app looked in a fresh dir.
    let dir = tempfile::tempdir().expect("temp dir");
    let app = TestApp::builder()
        .data_dir(dir.path())
        .in_memory()
        .spawn()
        .await;
    let (_, token) = app.create_user().await;
    app.create_thread(&token, "ephemeral", &[]).await;
    assert_eq!(
        app.chat(Method::GET, "/chat/threads", &token, None)
            .await
            .status,
        200
    );
    app.stop().await;

    let app = TestApp::builder()
        .data_dir(dir.path())
        .in_memory()
        .spawn()
        .await;
    // Same access key, so the token's signature is fine; the identity is unknown.
    app.chat(Method::GET, "/chat/threads", &token, None)
        .await
        .assert_error(401, "Unauthorized");
    let (_, fresh) = app.create_user().await;
    assert!(app.items("/chat/threads", &fresh).await.is_empty());
    app.stop().await;
}
