//! Participant operations over raw HTTP: list with skip paging, `:add` (201, system message,
//! idempotent for existing members, invalidParticipants, batch and thread limits), `:remove`
//! (bare identifier body, system message, the removed user loses access), scopes, and unknown
//! action segments (api-contract.md §2, §2.3, §2.5, §5, §10; sdk-clients.md §4).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, participant, thread_path};

const OTHER_RESOURCE_USER: &str =
    "8:acs:357e39d2-a29a-4bf6-88cc-fda0afc2c0ed_0000000c-005a-9fcc-ac00-343a0d007710";

fn participants_path(thread: &str) -> String {
    format!("{}/participants", thread_path(thread))
}

fn ids(items: &[Value]) -> Vec<String> {
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

async fn participant_ids(app: &TestApp, token: &str, thread: &str) -> HashSet<String> {
    ids(&app.items(&participants_path(thread), token).await)
        .into_iter()
        .collect()
}

async fn message_count(app: &TestApp, token: &str, thread: &str) -> usize {
    app.items(&format!("{}/messages", thread_path(thread)), token)
        .await
        .len()
}

async fn remove(app: &TestApp, token: &str, thread: &str, body: Value) -> crate::helpers::Reply {
    app.chat(
        Method::POST,
        &format!("{}/:remove", participants_path(thread)),
        token,
        Some(body),
    )
    .await
}

async fn identities(app: &TestApp, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(app.create_identity().await);
    }
    out
}

#[tokio::test]
async fn list_returns_every_participant() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let mut bob_entry = participant(&bob);
    bob_entry["displayName"] = json!("Bob");
    let reply = app
        .chat(
            Method::POST,
            "/chat/threads",
            &token,
            Some(json!({ "topic": "t", "participants": [bob_entry] })),
        )
        .await;
    let thread = reply.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = app
        .chat(Method::GET, &participants_path(&thread), &token, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    assert!(body.get("nextLink").is_none(), "one page: {body}");
    let items = body["value"].as_array().expect("value");
    assert_eq!(
        ids(items).into_iter().collect::<HashSet<_>>(),
        HashSet::from([alice.clone(), bob.clone()])
    );
    let bob_item = items
        .iter()
        .find(|p| p["communicationIdentifier"]["rawId"] == bob.as_str())
        .expect("bob");
    assert_eq!(bob_item["displayName"], "Bob");
    assert_eq!(
        bob_item["communicationIdentifier"]["communicationUser"]["id"],
        bob.as_str()
    );
    assert!(
        bob_item["shareHistoryTime"].as_str().is_some(),
        "{bob_item}"
    );
    app.stop().await;
}

#[tokio::test]
async fn list_pages_with_skip_and_max_page_size() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let others = identities(&app, 4).await;
    let refs: Vec<&str> = others.iter().map(String::as_str).collect();
    let thread = app.create_thread(&token, "t", &refs).await;

    let mut url = app.chat_url(&format!("{}?maxPageSize=2", participants_path(&thread)));
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    loop {
        let reply = app.chat(Method::GET, &url, &token, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = reply.json();
        let value = body["value"].as_array().expect("value");
        sizes.push(value.len());
        seen.extend(ids(value));
        let Some(next) = body.get("nextLink").and_then(Value::as_str) else {
            break;
        };
        app.assert_skip_next_link(next, "participants", seen.len(), 2);
        url = next.to_owned();
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        5,
        "no duplicates: {seen:?}"
    );

    // skip alone.
    let reply = app
        .chat(
            Method::GET,
            &format!("{}?skip=3", participants_path(&thread)),
            &token,
            None,
        )
        .await;
    assert_eq!(
        ids(reply.json()["value"].as_array().expect("value")),
        seen[3..]
    );
    let reply = app
        .chat(
            Method::GET,
            &format!("{}?skip=10", participants_path(&thread)),
            &token,
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["value"], json!([]));
    assert!(reply.json().get("nextLink").is_none());
    app.stop().await;
}

#[tokio::test]
async fn add_is_201_and_posts_a_participant_added_message() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (dave, dave_token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = app.add_participants(&token, &thread, &[&dave]).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.json(),
        json!({}),
        "AddChatParticipantsResult without failures is {{}}"
    );
    assert!(
        reply.header("location").is_none(),
        "the add has no Location"
    );
    assert_eq!(
        participant_ids(&app, &token, &thread).await,
        HashSet::from([alice.clone(), dave.clone()])
    );

    let messages = app
        .items(&format!("{}/messages", thread_path(&thread)), &token)
        .await;
    let newest = &messages[0];
    assert_eq!(newest["type"], "participantAdded", "{newest}");
    assert_eq!(newest["sequenceId"], "3");
    assert_eq!(
        ids(newest["content"]["participants"]
            .as_array()
            .expect("participants")),
        vec![dave.clone()]
    );
    assert_eq!(
        newest["content"]["initiatorCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    // The new participant can use the thread.
    app.send_message(&dave_token, &thread, "hi").await;
    app.stop().await;
}

#[tokio::test]
async fn adding_an_existing_participant_changes_nothing() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[&bob]).await;
    let messages_before = message_count(&app, &token, &thread).await;
    let reply = app.add_participants(&token, &thread, &[&bob, &alice]).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let listed = ids(&app.items(&participants_path(&thread), &token).await);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(
        message_count(&app, &token, &thread).await,
        messages_before,
        "no system message for nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn add_reports_users_it_cannot_add() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = app
        .add_participants(&token, &thread, &[OTHER_RESOURCE_USER, &bob])
        .await;
    assert_eq!(
        reply.status, 201,
        "recorded: a permission failure is a 201 with invalidParticipants: {}",
        reply.text
    );
    let body = reply.json();
    let invalid = body["invalidParticipants"]
        .as_array()
        .expect("invalidParticipants");
    assert_eq!(invalid.len(), 1, "{body}");
    assert_eq!(invalid[0]["target"], OTHER_RESOURCE_USER);
    assert_eq!(invalid[0]["code"], "403");
    assert_eq!(
        participant_ids(&app, &token, &thread).await,
        HashSet::from([alice, bob])
    );
    app.stop().await;
}

#[tokio::test]
async fn add_with_a_malformed_identifier_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = app
        .add_participants(&token, &thread, &[&bob, "8:acs:invalidUserId"])
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.json()["error"]["message"],
        "Identifier format is invalid (8:acs:invalidUserId)."
    );
    assert_eq!(
        participant_ids(&app, &token, &thread).await.len(),
        1,
        "nothing added"
    );
    app.stop().await;
}

#[tokio::test]
async fn more_than_200_in_one_request_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let many = identities(&app, 201).await;
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let participants: Vec<Value> = refs.iter().map(|id| participant(id)).collect();
    let reply = app
        .chat(
            Method::POST,
            "/chat/threads",
            &token,
            Some(json!({ "topic": "t", "participants": participants })),
        )
        .await;
    assert_eq!(
        reply.status,
        400,
        "create with 201: {}",
        &reply.text[..reply.text.len().min(300)]
    );
    assert!(app.items("/chat/threads", &token).await.is_empty());

    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = app.add_participants(&token, &thread, &refs).await;
    assert_eq!(
        reply.status,
        400,
        "add 201: {}",
        &reply.text[..reply.text.len().min(300)]
    );
    assert!(reply.json()["error"]["code"].as_str().is_some());
    assert_eq!(
        participant_ids(&app, &token, &thread).await.len(),
        1,
        "nothing added"
    );
    // 200 is allowed.
    let reply = app.add_participants(&token, &thread, &refs[..200]).await;
    assert_eq!(
        reply.status,
        201,
        "{}",
        &reply.text[..reply.text.len().min(300)]
    );
    assert_eq!(participant_ids(&app, &token, &thread).await.len(), 201);
    app.stop().await;
}

#[tokio::test]
async fn a_thread_holds_at_most_250_participants() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let many = identities(&app, 250).await;
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    // Creator + 199 = 200, + 49 = 249.
    let thread = app.create_thread(&token, "big", &refs[..199]).await;
    assert_eq!(
        app.add_participants(&token, &thread, &refs[199..248])
            .await
            .status,
        201
    );
    assert_eq!(participant_ids(&app, &token, &thread).await.len(), 249);
    let messages_before = message_count(&app, &token, &thread).await;

    // Two more would make 251: refused as a whole.
    let reply = app.add_participants(&token, &thread, &refs[248..250]).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.json()["error"]["message"].as_str().is_some());
    assert_eq!(
        participant_ids(&app, &token, &thread).await.len(),
        249,
        "nothing added"
    );
    assert_eq!(message_count(&app, &token, &thread).await, messages_before);

    // One more makes exactly 250; then none fits.
    assert_eq!(
        app.add_participants(&token, &thread, &refs[248..249])
            .await
            .status,
        201
    );
    assert_eq!(participant_ids(&app, &token, &thread).await.len(), 250);
    let reply = app.add_participants(&token, &thread, &refs[249..250]).await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(participant_ids(&app, &token, &thread).await.len(), 250);
    app.stop().await;
}

#[tokio::test]
async fn remove_takes_a_bare_identifier_and_the_removed_user_loses_access() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let (carol, _) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[&bob, &carol]).await;
    app.send_message(&bob_token, &thread, "while a member")
        .await;

    // The spec example's shape: a bare CommunicationIdentifierModel, no rawId.
    let reply = remove(
        &app,
        &token,
        &thread,
        json!({ "communicationUser": { "id": bob } }),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.text.is_empty());
    assert_eq!(
        participant_ids(&app, &token, &thread).await,
        HashSet::from([alice.clone(), carol.clone()])
    );

    let messages = app
        .items(&format!("{}/messages", thread_path(&thread)), &token)
        .await;
    let newest = &messages[0];
    assert_eq!(newest["type"], "participantRemoved", "{newest}");
    assert_eq!(
        ids(newest["content"]["participants"]
            .as_array()
            .expect("participants")),
        vec![bob.clone()]
    );
    assert_eq!(
        newest["content"]["initiatorCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );

    // "can't send or receive new messages"
    let reply = app
        .chat(
            Method::POST,
            &format!("{}/messages", thread_path(&thread)),
            &bob_token,
            Some(json!({ "content": "still here?" })),
        )
        .await;
    reply.assert_error(403, "Forbidden");

    // The SDKs' shape: rawId plus the sub-object.
    let reply = remove(
        &app,
        &token,
        &thread,
        json!({ "rawId": carol, "communicationUser": { "id": carol } }),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        participant_ids(&app, &token, &thread).await,
        HashSet::from([alice])
    );
    app.stop().await;
}

#[tokio::test]
async fn remove_with_a_malformed_identifier_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = remove(
        &app,
        &token,
        &thread,
        json!({ "communicationUser": { "id": "8:acs:invalidUserId" } }),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.json()["error"]["message"],
        "Identifier format is invalid (8:acs:invalidUserId)."
    );
    app.stop().await;
}

#[tokio::test]
async fn chat_join_limited_cannot_add_or_remove() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (limited, limited_token) = app.create_user_with_scopes(&["chat.join.limited"]).await;
    let (joiner, join_token) = app.create_user_with_scopes(&["chat.join"]).await;
    let (bob, _) = app.create_user().await;
    let (carol, _) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[&limited, &joiner]).await;

    app.add_participants(&limited_token, &thread, &[&bob])
        .await
        .assert_error(403, "Forbidden");
    remove(
        &app,
        &limited_token,
        &thread,
        json!({ "communicationUser": { "id": joiner } }),
    )
    .await
    .assert_error(403, "Forbidden");
    assert_eq!(
        participant_ids(&app, &token, &thread).await,
        HashSet::from([alice, limited.clone(), joiner.clone()])
    );
    // …while it may still read and post.
    app.send_message(&limited_token, &thread, "hello").await;

    // chat.join keeps participant management.
    assert_eq!(
        app.add_participants(&join_token, &thread, &[&carol])
            .await
            .status,
        201
    );
    assert_eq!(
        remove(
            &app,
            &join_token,
            &thread,
            json!({ "communicationUser": { "id": carol } })
        )
        .await
        .status,
        204
    );
    app.stop().await;
}

#[tokio::test]
async fn non_participants_cannot_add_or_remove() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (stranger, stranger_token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    app.add_participants(&stranger_token, &thread, &[&stranger])
        .await
        .assert_error(403, "Forbidden");
    remove(
        &app,
        &stranger_token,
        &thread,
        json!({ "communicationUser": { "id": alice } }),
    )
    .await
    .assert_error(403, "Forbidden");
    app.chat(
        Method::GET,
        &participants_path(&thread),
        &stranger_token,
        None,
    )
    .await
    .assert_error(403, "Forbidden");
    assert_eq!(
        participant_ids(&app, &token, &thread).await,
        HashSet::from([alice])
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_action_segment_is_404() {
    let app = TestApp::builder().spawn().await;
    let (bob, _) = app.create_user().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    for action in [":foo", ":delete"] {
        let reply = app
            .chat(
                Method::POST,
                &format!("{}/{action}", participants_path(&thread)),
                &token,
                Some(json!({ "participants": [participant(&bob)] })),
            )
            .await;
        assert_eq!(reply.status, 404, "{action}: {}", reply.text);
        assert!(
            reply.json()["error"]["code"].as_str().is_some(),
            "{action}: ACS body"
        );
    }
    assert_eq!(participant_ids(&app, &token, &thread).await.len(), 1);
    app.stop().await;
}
