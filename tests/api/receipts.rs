//! Read receipts and typing notifications over raw HTTP: 200 with an empty body, the latest
//! receipt per participant, bad and unknown message ids, skip paging (api-contract.md §2, §2.4,
//! §2.5; sdk-clients.md §4).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, parse_time, thread_path};

fn receipts_path(thread: &str) -> String {
    format!("{}/readReceipts", thread_path(thread))
}

async fn send_receipt(app: &TestApp, token: &str, thread: &str, message_id: &str) -> Reply {
    app.chat(
        Method::POST,
        &receipts_path(thread),
        token,
        Some(json!({ "chatMessageId": message_id })),
    )
    .await
}

#[tokio::test]
async fn send_read_receipt_is_200_with_an_empty_body() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let message = app.send_message(&token, &thread, "read me").await;
    let reply = send_receipt(&app, &token, &thread, &message).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.text.is_empty(), "empty body: {:?}", reply.text);

    let reply = app
        .chat(Method::GET, &receipts_path(&thread), &token, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let value = body["value"].as_array().expect("value");
    assert_eq!(value.len(), 1, "{body}");
    assert_eq!(value[0]["chatMessageId"], message.as_str());
    assert_eq!(
        value[0]["senderCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    parse_time(value[0]["readOn"].as_str().expect("readOn"));
    assert!(body.get("nextLink").is_none());
    app.stop().await;
}

#[tokio::test]
async fn only_the_latest_receipt_per_participant_is_listed() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[&bob]).await;
    let first = app.send_message(&token, &thread, "one").await;
    let second = app.send_message(&token, &thread, "two").await;
    assert_eq!(
        send_receipt(&app, &token, &thread, &first).await.status,
        200
    );
    assert_eq!(
        send_receipt(&app, &token, &thread, &second).await.status,
        200
    );
    assert_eq!(
        send_receipt(&app, &bob_token, &thread, &first).await.status,
        200
    );

    let items = app.items(&receipts_path(&thread), &token).await;
    assert_eq!(items.len(), 2, "one per participant: {items:?}");
    let of = |id: &str| {
        items
            .iter()
            .find(|r| r["senderCommunicationIdentifier"]["rawId"] == id)
            .unwrap_or_else(|| panic!("no receipt for {id}"))["chatMessageId"]
            .clone()
    };
    assert_eq!(of(&alice), json!(second), "the newer message");
    assert_eq!(of(&bob), json!(first));
    app.stop().await;
}

#[tokio::test]
async fn receipt_for_an_unknown_message_is_404() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = send_receipt(&app, &token, &thread, "1593107077683").await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert!(reply.json()["error"]["code"].as_str().is_some());
    assert!(app.items(&receipts_path(&thread), &token).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn receipt_with_an_invalid_or_missing_message_id_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = send_receipt(&app, &token, &thread, "invalid_chat_message_id").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.json()["error"]["message"].as_str().is_some());
    for body in [json!({}), json!({ "chatMessageId": null })] {
        let reply = app
            .chat(
                Method::POST,
                &receipts_path(&thread),
                &token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
    }
    assert!(app.items(&receipts_path(&thread), &token).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn receipts_page_with_skip() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let (carol, carol_token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[&bob, &carol]).await;
    let message = app.send_message(&token, &thread, "m").await;
    for t in [&token, &bob_token, &carol_token] {
        assert_eq!(send_receipt(&app, t, &thread, &message).await.status, 200);
    }
    let mut url = app.chat_url(&format!("{}?maxPageSize=1", receipts_path(&thread)));
    let mut sizes = Vec::new();
    let mut senders = Vec::new();
    loop {
        let reply = app.chat(Method::GET, &url, &token, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = reply.json();
        let value = body["value"].as_array().expect("value");
        sizes.push(value.len());
        senders.extend(value.iter().map(|r| {
            r["senderCommunicationIdentifier"]["rawId"]
                .as_str()
                .expect("rawId")
                .to_owned()
        }));
        let Some(next) = body.get("nextLink").and_then(Value::as_str) else {
            break;
        };
        app.assert_skip_next_link(next, "readReceipts", senders.len(), 1);
        url = next.to_owned();
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [1, 1, 1]);
    assert_eq!(
        senders.iter().collect::<HashSet<_>>().len(),
        3,
        "{senders:?}"
    );
    assert!(senders.contains(&bob) && senders.contains(&carol));
    app.stop().await;
}

#[tokio::test]
async fn typing_with_and_without_a_body_is_200_empty() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let path = format!("{}/typing", thread_path(&thread));
    for body in [
        None,
        Some(json!({})),
        Some(json!({ "senderDisplayName": "Bob Admin" })),
    ] {
        let reply = app.chat(Method::POST, &path, &token, body.clone()).await;
        assert_eq!(reply.status, 200, "{body:?}: {}", reply.text);
        assert!(reply.text.is_empty(), "{body:?}: {:?}", reply.text);
    }
    // 2021-03-07 typing takes no body.
    let reply = app
        .chat(
            Method::POST,
            &format!("{path}?api-version=2021-03-07"),
            &token,
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    app.stop().await;
}

#[tokio::test]
async fn non_participants_cannot_send_receipts_or_typing() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (_, stranger) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let message = app.send_message(&token, &thread, "m").await;
    send_receipt(&app, &stranger, &thread, &message)
        .await
        .assert_error(403, "Forbidden");
    app.chat(Method::GET, &receipts_path(&thread), &stranger, None)
        .await
        .assert_error(403, "Forbidden");
    app.chat(
        Method::POST,
        &format!("{}/typing", thread_path(&thread)),
        &stranger,
        None,
    )
    .await
    .assert_error(403, "Forbidden");
    assert!(app.items(&receipts_path(&thread), &token).await.is_empty());
    app.stop().await;
}
