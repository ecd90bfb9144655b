//! Thread operations over raw HTTP: create (Location, body, creator, invalidParticipants,
//! repeatability), get, update (topic, metadata merge-patch, retention policy), list paging,
//! delete, and who may do what (api-contract.md §2, §2.1, §3, §5; sdk-clients.md §4).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    CHAT_VERSION, Reply, TestApp, parse_time, participant, thread_path, wall_now_micros,
};

/// A well-formed ACS user of another resource (recorded id).
const OTHER_RESOURCE_USER: &str =
    "8:acs:357e39d2-a29a-4bf6-88cc-fda0afc2c0ed_0000000c-005a-9fcc-ac00-343a0d007710";

async fn create(app: &TestApp, token: &str, body: Value) -> Reply {
    app.chat(Method::POST, "/chat/threads", token, Some(body))
        .await
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

/// PATCH with the merge-patch content type the SDKs send.
async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> Reply {
    let response = app
        .client
        .patch(app.chat_url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    Reply {
        status,
        headers,
        text,
    }
}

async fn get_thread(app: &TestApp, token: &str, id: &str, version: &str) -> Reply {
    app.chat(
        Method::GET,
        &format!("{}?api-version={version}", thread_path(id)),
        token,
        None,
    )
    .await
}

fn participant_ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|p| {
            p["communicationIdentifier"]["rawId"]
                .as_str()
                .expect("rawId")
                .to_owned()
        })
        .collect()
}

fn assert_thread_id(id: &str) {
    assert!(
        id.starts_with("19:") && id.ends_with("@thread.v2") && id.len() > 13,
        "thread id shape: {id}"
    );
}

#[tokio::test]
async fn create_returns_201_with_location_and_thread() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let before = wall_now_micros() / 1_000_000 * 1_000_000;
    let reply = create(
        &app,
        &token,
        json!({ "topic": "lunch", "participants": [participant(&bob)] }),
    )
    .await;
    let after = wall_now_micros();
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let body = reply.json();
    let thread = &body["chatThread"];
    let id = thread["id"].as_str().expect("chatThread.id");
    assert_thread_id(id);
    assert_eq!(thread["topic"], "lunch");
    let created = parse_time(thread["createdOn"].as_str().expect("createdOn"));
    assert!(
        created >= before && created <= after,
        "createdOn {created} is now"
    );
    assert_eq!(
        thread["createdByCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    assert_eq!(
        thread["createdByCommunicationIdentifier"]["communicationUser"]["id"],
        alice.as_str()
    );
    assert!(thread.get("deletedOn").is_none());
    assert!(
        body.get("invalidParticipants")
            .is_none_or(|v| v.as_array().is_some_and(Vec::is_empty)),
        "{}",
        reply.text
    );

    let location = reply.header("location").expect("Location");
    let prefix = format!("{}/chat/threads/19%3A", app.http_base);
    assert!(
        location.starts_with(&prefix),
        "absolute, ':' escaped: {location}"
    );
    let decoded = location.replace("%3A", ":").replace("%40", "@");
    assert_eq!(decoded, format!("{}/chat/threads/{id}", app.http_base));
    app.stop().await;
}

#[tokio::test]
async fn creator_is_a_participant() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let alone = app.create_thread(&token, "alone", &[]).await;
    assert_eq!(
        participant_ids(
            &app.items(&format!("{}/participants", thread_path(&alone)), &token)
                .await
        ),
        vec![alice.clone()]
    );
    // Listing the creator explicitly does not add them twice.
    let both = app.create_thread(&token, "both", &[&alice, &bob]).await;
    let mut ids = participant_ids(
        &app.items(&format!("{}/participants", thread_path(&both)), &token)
            .await,
    );
    ids.sort();
    let mut expected = vec![alice, bob];
    expected.sort();
    assert_eq!(ids, expected);
    app.stop().await;
}

#[tokio::test]
async fn unaddable_participants_are_reported_not_failed() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let unknown = format!(
        "8:acs:{}_00000000-0000-0000-0000-0000000000ff",
        acs_chat_emulator::config::DEFAULT_RESOURCE_ID
    );
    let reply = create(
        &app,
        &token,
        json!({ "topic": "t", "participants": [participant(OTHER_RESOURCE_USER), participant(&unknown), participant(&bob)] }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let body = reply.json();
    let invalid = body["invalidParticipants"]
        .as_array()
        .expect("invalidParticipants");
    assert_eq!(invalid.len(), 2, "{}", reply.text);
    let by_target = |target: &str| {
        invalid
            .iter()
            .find(|e| e["target"] == target)
            .unwrap_or_else(|| panic!("no entry for {target}"))
    };
    assert_eq!(
        by_target(OTHER_RESOURCE_USER)["code"],
        "403",
        "the code is the status as a string"
    );
    assert_eq!(by_target(&unknown)["code"], "404");
    for entry in invalid {
        assert!(entry["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let id = body["chatThread"]["id"].as_str().expect("id");
    let mut ids = participant_ids(
        &app.items(&format!("{}/participants", thread_path(id)), &token)
            .await,
    );
    ids.sort();
    let mut expected = vec![alice, bob];
    expected.sort();
    assert_eq!(ids, expected, "only the valid participants were added");
    app.stop().await;
}

#[tokio::test]
async fn malformed_identifier_is_400_and_creates_nothing() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let reply = create(
        &app,
        &token,
        json!({ "topic": "t", "participants": [participant("8:acs:invalidUserId")] }),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.json()["error"]["message"],
        "Identifier format is invalid (8:acs:invalidUserId)."
    );
    assert!(app.items("/chat/threads", &token).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn missing_topic_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let reply = create(&app, &token, json!({ "participants": [] })).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        reply.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(app.items("/chat/threads", &token).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn repeatability_request_id_replays_the_first_create() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let body = json!({ "topic": "once", "participants": [] });
    let first =
        create_with_request_id(&app, &token, "7f1e2b0c-3a4d-4e5f-8a9b-0c1d2e3f4a5b", &body).await;
    let second =
        create_with_request_id(&app, &token, "7f1e2b0c-3a4d-4e5f-8a9b-0c1d2e3f4a5b", &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(second.status, 201, "{}", second.text);
    let id = first.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(second.json()["chatThread"]["id"], id.as_str());
    assert_eq!(first.header("location"), second.header("location"));
    let listed = app.items("/chat/threads", &token).await;
    assert_eq!(listed.len(), 1, "one thread: {listed:?}");

    // Same id, different body (an SDK retry recomputes shareHistoryTime): still the first
    // thread, as the SDK's own e2e test expects of the service; nothing new is created.
    let other = json!({ "topic": "different", "participants": [] });
    let reply =
        create_with_request_id(&app, &token, "7f1e2b0c-3a4d-4e5f-8a9b-0c1d2e3f4a5b", &other).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json()["chatThread"]["id"], id.as_str());
    assert_eq!(reply.json()["chatThread"]["topic"], "once");
    assert_eq!(app.items("/chat/threads", &token).await.len(), 1);

    // Another id creates another thread.
    let third =
        create_with_request_id(&app, &token, "0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d", &body).await;
    assert_eq!(third.status, 201);
    assert_ne!(third.json()["chatThread"]["id"], id.as_str());
    assert_eq!(app.items("/chat/threads", &token).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn get_returns_the_thread() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let id = app.create_thread(&token, "lunch", &[]).await;
    let reply = get_thread(&app, &token, &id, CHAT_VERSION).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["topic"], "lunch");
    assert_eq!(
        body["createdByCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    parse_time(body["createdOn"].as_str().expect("createdOn"));
    assert!(body.get("deletedOn").is_none());
    app.stop().await;
}

#[tokio::test]
async fn update_topic_is_204_and_adds_a_topic_updated_message() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let id = app.create_thread(&token, "old", &[]).await;
    let reply = patch(&app, &thread_path(&id), &token, json!({ "topic": "new" })).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.text.is_empty());
    assert_eq!(
        get_thread(&app, &token, &id, CHAT_VERSION).await.json()["topic"],
        "new"
    );
    let messages = app
        .items(&format!("{}/messages", thread_path(&id)), &token)
        .await;
    let newest = &messages[0];
    assert_eq!(newest["type"], "topicUpdated", "{messages:?}");
    assert_eq!(newest["content"]["topic"], "new");
    assert_eq!(
        newest["content"]["initiatorCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    assert_eq!(newest["sequenceId"], "3");
    assert_eq!(
        messages
            .iter()
            .filter(|m| m["type"] == "topicUpdated")
            .count(),
        2
    );
    app.stop().await;
}

#[tokio::test]
async fn metadata_is_merge_patched() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let reply = create(
        &app,
        &token,
        json!({ "topic": "t", "metadata": { "a": "1", "b": "2" } }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.json()["chatThread"]["metadata"],
        json!({ "a": "1", "b": "2" })
    );
    let id = reply.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = patch(
        &app,
        &thread_path(&id),
        &token,
        json!({ "metadata": { "b": null, "c": "3" } }),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let body = get_thread(&app, &token, &id, "2025-03-15").await.json();
    assert_eq!(body["metadata"], json!({ "a": "1", "c": "3" }));
    assert_eq!(
        body["topic"], "t",
        "a metadata patch leaves the topic alone"
    );
    app.stop().await;
}

#[tokio::test]
async fn metadata_over_1_kb_is_400_and_changes_nothing() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let big = "x".repeat(1100);
    let reply = create(
        &app,
        &token,
        json!({ "topic": "t", "metadata": { "k": big } }),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(
        app.items("/chat/threads", &token).await.is_empty(),
        "no thread was created"
    );

    let reply = create(
        &app,
        &token,
        json!({ "topic": "t", "metadata": { "a": "1" } }),
    )
    .await;
    let id = reply.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = patch(
        &app,
        &thread_path(&id),
        &token,
        json!({ "topic": "changed", "metadata": { "k": big } }),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    let body = get_thread(&app, &token, &id, "2025-03-15").await.json();
    assert_eq!(body["metadata"], json!({ "a": "1" }));
    assert_eq!(body["topic"], "t");
    app.stop().await;
}

#[tokio::test]
async fn retention_policy_round_trips_and_null_reads_none() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let policy = json!({ "kind": "threadCreationDate", "deleteThreadAfterDays": 30 });
    let reply = create(
        &app,
        &token,
        json!({ "topic": "t", "retentionPolicy": policy }),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json()["chatThread"]["retentionPolicy"], policy);
    let id = reply.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        get_thread(&app, &token, &id, "2025-03-15").await.json()["retentionPolicy"],
        policy
    );

    let ninety = json!({ "kind": "threadCreationDate", "deleteThreadAfterDays": 90 });
    assert_eq!(
        patch(
            &app,
            &thread_path(&id),
            &token,
            json!({ "retentionPolicy": ninety })
        )
        .await
        .status,
        204
    );
    assert_eq!(
        get_thread(&app, &token, &id, "2025-03-15").await.json()["retentionPolicy"],
        ninety
    );

    let reply = patch(
        &app,
        &thread_path(&id),
        &token,
        json!({ "retentionPolicy": null }),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        get_thread(&app, &token, &id, "2025-03-15").await.json()["retentionPolicy"],
        json!({ "kind": "none" })
    );
    app.stop().await;
}

#[tokio::test]
async fn retention_days_outside_30_to_90_are_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    for days in [29, 91] {
        let policy = json!({ "kind": "threadCreationDate", "deleteThreadAfterDays": days });
        let reply = create(
            &app,
            &token,
            json!({ "topic": "t", "retentionPolicy": policy }),
        )
        .await;
        assert_eq!(reply.status, 400, "{days}: {}", reply.text);
        assert!(reply.json()["error"]["code"].as_str().is_some());
    }
    assert!(app.items("/chat/threads", &token).await.is_empty());
    let id = app.create_thread(&token, "t", &[]).await;
    let kept = json!({ "kind": "threadCreationDate", "deleteThreadAfterDays": 60 });
    assert_eq!(
        patch(
            &app,
            &thread_path(&id),
            &token,
            json!({ "retentionPolicy": kept })
        )
        .await
        .status,
        204
    );
    for days in [29, 91] {
        let policy = json!({ "kind": "threadCreationDate", "deleteThreadAfterDays": days });
        let reply = patch(
            &app,
            &thread_path(&id),
            &token,
            json!({ "retentionPolicy": policy }),
        )
        .await;
        assert_eq!(reply.status, 400, "{days}: {}", reply.text);
    }
    assert_eq!(
        get_thread(&app, &token, &id, "2025-03-15").await.json()["retentionPolicy"],
        kept
    );
    app.stop().await;
}

#[tokio::test]
async fn metadata_and_retention_policy_are_absent_on_2024_03_07() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let body = json!({
        "topic": "t",
        "metadata": { "a": "1" },
        "retentionPolicy": { "kind": "threadCreationDate", "deleteThreadAfterDays": 30 },
    });
    let reply = create(&app, &token, body.clone()).await;
    assert_eq!(reply.status, 201);
    let id = reply.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let old = get_thread(&app, &token, &id, "2024-03-07").await;
    assert_eq!(old.status, 200, "{}", old.text);
    let old = old.json();
    assert_eq!(old["id"], id.as_str());
    assert!(old.get("metadata").is_none(), "{old}");
    assert!(old.get("retentionPolicy").is_none(), "{old}");
    // Created on 2024-03-07: the create response has neither field either.
    let reply = app
        .chat(
            Method::POST,
            "/chat/threads?api-version=2024-03-07",
            &token,
            Some(body),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let created = &reply.json()["chatThread"];
    assert!(
        created.get("metadata").is_none() && created.get("retentionPolicy").is_none(),
        "{created}"
    );
    app.stop().await;
}

#[tokio::test]
async fn list_threads_pages_with_next_links_to_the_end() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (_, other) = app.create_user().await;
    let mut created = HashSet::new();
    for n in 0..4 {
        created.insert(app.create_thread(&token, &format!("t{n}"), &[]).await);
    }
    app.create_thread(&other, "not mine", &[]).await;

    let mut url = app.chat_url("/chat/threads?maxPageSize=1");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let reply = app.chat(Method::GET, &url, &token, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = reply.json();
        let value = body["value"].as_array().expect("value");
        assert!(value.len() <= 1, "maxPageSize=1: {value:?}");
        for item in value {
            assert!(item["topic"].as_str().is_some());
            parse_time(
                item["lastMessageReceivedOn"]
                    .as_str()
                    .expect("lastMessageReceivedOn"),
            );
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        pages += 1;
        assert!(pages <= 10, "paging does not end");
        let Some(next) = body.get("nextLink").and_then(Value::as_str) else {
            break;
        };
        assert!(
            next.starts_with(&format!("{}/chat/threads?", app.http_base)),
            "absolute: {next}"
        );
        assert!(
            next.contains(&format!("api-version={CHAT_VERSION}")),
            "{next}"
        );
        assert!(next.contains("maxPageSize=1"), "{next}");
        url = next.to_owned();
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        created,
        "no duplicates, none missing"
    );
    app.stop().await;
}

#[tokio::test]
async fn delete_is_204_twice_then_get_is_404_and_the_list_shows_deleted_on() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let id = app.create_thread(&token, "doomed", &[]).await;
    for _ in 0..2 {
        let reply = app
            .chat(Method::DELETE, &thread_path(&id), &token, None)
            .await;
        assert_eq!(reply.status, 204, "{}", reply.text);
        assert!(reply.text.is_empty());
    }
    let reply = get_thread(&app, &token, &id, CHAT_VERSION).await;
    reply.assert_error(404, "NotFound");
    let listed = app.items("/chat/threads", &token).await;
    let item = listed
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("deleted thread still listed");
    parse_time(item["deletedOn"].as_str().expect("deletedOn"));
    app.stop().await;
}

#[tokio::test]
async fn non_participants_are_403() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (_, stranger) = app.create_user().await;
    let id = app.create_thread(&token, "private", &[]).await;
    get_thread(&app, &stranger, &id, CHAT_VERSION)
        .await
        .assert_error(403, "Forbidden");
    patch(
        &app,
        &thread_path(&id),
        &stranger,
        json!({ "topic": "hijacked" }),
    )
    .await
    .assert_error(403, "Forbidden");
    app.chat(Method::DELETE, &thread_path(&id), &stranger, None)
        .await
        .assert_error(403, "Forbidden");
    let body = get_thread(&app, &token, &id, CHAT_VERSION).await.json();
    assert_eq!(body["topic"], "private");
    assert!(body.get("deletedOn").is_none());
    assert!(
        app.items("/chat/threads", &stranger).await.is_empty(),
        "not listed for a stranger"
    );
    app.stop().await;
}

#[tokio::test]
async fn chat_join_cannot_create_update_or_delete_threads() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (joiner, join_token) = app.create_user_with_scopes(&["chat.join"]).await;
    create(&app, &join_token, json!({ "topic": "mine" }))
        .await
        .assert_error(403, "Forbidden");
    let id = app.create_thread(&token, "shared", &[&joiner]).await;
    // A participant with chat.join may read and post…
    assert_eq!(
        get_thread(&app, &join_token, &id, CHAT_VERSION)
            .await
            .status,
        200
    );
    app.send_message(&join_token, &id, "hello").await;
    // …but not update or delete the thread.
    patch(
        &app,
        &thread_path(&id),
        &join_token,
        json!({ "topic": "renamed" }),
    )
    .await
    .assert_error(403, "Forbidden");
    app.chat(Method::DELETE, &thread_path(&id), &join_token, None)
        .await
        .assert_error(403, "Forbidden");
    let body = get_thread(&app, &token, &id, CHAT_VERSION).await.json();
    assert_eq!(body["topic"], "shared");
    assert!(body.get("deletedOn").is_none());
    app.stop().await;
}

#[tokio::test]
async fn voip_only_token_is_403() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user_with_scopes(&["voip"]).await;
    create(&app, &token, json!({ "topic": "t" }))
        .await
        .assert_error(403, "Forbidden");
    app.chat(Method::GET, "/chat/threads", &token, None)
        .await
        .assert_error(403, "Forbidden");
    app.stop().await;
}
