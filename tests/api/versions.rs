//! Every operation through every stable Chat api-version, with the fields each version has and
//! lacks (api-contract.md §9): thread metadata and retention policy from 2024-03-15-preview,
//! message metadata from 2021-09-07, attachments from 2023-11-07.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, enc, participant};

const STABLE_AND_PREVIEW: &[&str] = &[
    "2021-03-07",
    "2021-09-07",
    "2023-11-07",
    "2024-03-07",
    "2024-03-15-preview",
    "2025-03-15",
];

fn has(v: &Value, key: &str) -> bool {
    v.get(key).is_some()
}

#[tokio::test]
async fn each_version_serves_every_operation_with_its_own_fields() {
    let app = TestApp::builder().spawn().await;
    let (_, alice) = app.create_user().await;
    let (bob_id, bob) = app.create_user().await;
    for version in STABLE_AND_PREVIEW {
        let q = format!("api-version={version}");
        let thread_metadata = ["2024-03-15-preview", "2025-03-15"].contains(version);
        let message_metadata = *version != "2021-03-07";
        let attachments = !["2021-03-07", "2021-09-07"].contains(version);

        let create = app
            .chat(
                Method::POST,
                &format!("/chat/threads?{q}"),
                &alice,
                Some(json!({
                    "topic": format!("t {version}"),
                    "participants": [participant(&bob_id)],
                    "metadata": {"k": "v"},
                    "retentionPolicy": {"kind": "threadCreationDate", "deleteThreadAfterDays": 40}
                })),
            )
            .await;
        assert_eq!(create.status, 201, "{version}: {}", create.text);
        let thread = create.json()["chatThread"].clone();
        assert_eq!(
            has(&thread, "metadata"),
            thread_metadata,
            "{version} create: {thread}"
        );
        assert_eq!(
            has(&thread, "retentionPolicy"),
            thread_metadata,
            "{version} create: {thread}"
        );
        let id = thread["id"].as_str().expect("id").to_owned();
        let path = format!("/chat/threads/{}", enc(&id));

        let listed = app
            .chat(
                Method::GET,
                &format!("/chat/threads?{q}&maxPageSize=1"),
                &bob,
                None,
            )
            .await;
        assert_eq!(listed.status, 200, "{version}");
        assert!(
            listed.json()["nextLink"]
                .as_str()
                .is_none_or(|l| l.contains(&q)),
            "{version}: nextLink keeps the version"
        );
        let got = app
            .chat(Method::GET, &format!("{path}?{q}"), &bob, None)
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(
            has(&got.json(), "metadata"),
            thread_metadata,
            "{version} get"
        );
        assert_eq!(
            app.chat(
                Method::PATCH,
                &format!("{path}?{q}"),
                &alice,
                Some(json!({"topic": "new"}))
            )
            .await
            .status,
            204
        );

        let sent = app
            .chat(
                Method::POST,
                &format!("{path}/messages?{q}"),
                &alice,
                Some(json!({"content": "hi", "metadata": {"m": "1"}})),
            )
            .await;
        assert_eq!(sent.status, 201, "{version}: {}", sent.text);
        let message_id = sent.json()["id"].as_str().expect("id").to_owned();
        let message = app
            .chat(
                Method::GET,
                &format!("{path}/messages/{message_id}?{q}"),
                &bob,
                None,
            )
            .await
            .json();
        assert_eq!(
            has(&message, "metadata"),
            message_metadata,
            "{version} message: {message}"
        );
        assert_eq!(
            has(&message["content"], "attachments"),
            attachments,
            "{version} message: {message}"
        );
        let messages = app
            .chat(
                Method::GET,
                &format!("{path}/messages?{q}&maxPageSize=2"),
                &bob,
                None,
            )
            .await
            .json();
        assert_eq!(
            messages["value"].as_array().map(Vec::len),
            Some(2),
            "{version}"
        );
        assert!(
            messages["nextLink"]
                .as_str()
                .is_some_and(|l| l.contains(&q)),
            "{version}: {messages}"
        );
        let edit = app
            .chat(
                Method::PATCH,
                &format!("{path}/messages/{message_id}?{q}"),
                &alice,
                Some(json!({"content": "hi!"})),
            )
            .await;
        assert_eq!(edit.status, 204);

        let participants = app
            .chat(Method::GET, &format!("{path}/participants?{q}"), &bob, None)
            .await
            .json();
        assert_eq!(
            participants["value"].as_array().map(Vec::len),
            Some(2),
            "{version}"
        );
        let (carol_id, _) = app.create_user().await;
        let add = app
            .chat(
                Method::POST,
                &format!("{path}/participants/:add?{q}"),
                &alice,
                Some(json!({"participants": [participant(&carol_id)]})),
            )
            .await;
        assert_eq!(add.status, 201, "{version}");
        let remove = app
            .chat(
                Method::POST,
                &format!("{path}/participants/:remove?{q}"),
                &alice,
                Some(json!({"communicationUser": {"id": carol_id}})),
            )
            .await;
        assert_eq!(remove.status, 204, "{version}");

        let receipt = app
            .chat(
                Method::POST,
                &format!("{path}/readReceipts?{q}"),
                &bob,
                Some(json!({"chatMessageId": message_id})),
            )
            .await;
        assert_eq!(receipt.status, 200, "{version}");
        let receipts = app
            .chat(
                Method::GET,
                &format!("{path}/readReceipts?{q}"),
                &alice,
                None,
            )
            .await
            .json();
        assert_eq!(
            receipts["value"][0]["chatMessageId"],
            message_id.as_str(),
            "{version}"
        );
        assert_eq!(
            app.chat(Method::POST, &format!("{path}/typing?{q}"), &bob, None)
                .await
                .status,
            200,
            "{version}"
        );

        assert_eq!(
            app.chat(
                Method::DELETE,
                &format!("{path}/messages/{message_id}?{q}"),
                &alice,
                None
            )
            .await
            .status,
            204
        );
        assert_eq!(
            app.chat(Method::DELETE, &format!("{path}?{q}"), &alice, None)
                .await
                .status,
            204
        );
    }
    app.stop().await;
}
