//! Message operations over raw HTTP: send (201, Location, id), ids and sequence ids, get, list
//! (newest first, system messages, paging, startTime), update and delete by the sender only,
//! the size limit, bad input, and `shareHistoryTime` (api-contract.md §1, §2.2, §2.5, §3, §5;
//! sdk-clients.md §4).

use std::sync::Arc;

use acs_chat_emulator::clock::FixedClock;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    CHAT_VERSION, TestApp, parse_time, participant, rfc3339, thread_path, wall_now_micros,
};

const SECOND: i64 = 1_000_000;

fn messages_path(thread: &str) -> String {
    format!("{}/messages", thread_path(thread))
}

fn message_path(thread: &str, id: &str) -> String {
    format!("{}/messages/{id}", thread_path(thread))
}

async fn get_message(app: &TestApp, token: &str, thread: &str, id: &str) -> Value {
    let reply = app
        .chat(Method::GET, &message_path(thread, id), token, None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()
}

fn texts(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter(|m| m["type"] == "text" || m["type"] == "html")
        .map(|m| {
            m["content"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn send_returns_201_location_and_id() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = app
        .chat(
            Method::POST,
            &messages_path(&thread),
            &token,
            Some(json!({ "content": "hi" })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let body = reply.json();
    let id = body["id"].as_str().expect("id is a string");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "SendChatMessageResult has only id: {body}"
    );
    let location = reply.header("location").expect("Location");
    assert!(
        location.starts_with(&format!("{}/chat/threads/19%3A", app.http_base)),
        "{location}"
    );
    assert_eq!(
        location.replace("%3A", ":").replace("%40", "@"),
        format!("{}/chat/threads/{thread}/messages/{id}", app.http_base)
    );
    app.stop().await;
}

#[tokio::test]
async fn ids_increase_and_are_epoch_millisecond_strings() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let before_ms = wall_now_micros() / 1_000;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(app.send_message(&token, &thread, &format!("m{n}")).await);
    }
    let after_ms = wall_now_micros() / 1_000;
    let numbers: Vec<i64> = ids
        .iter()
        .map(|id| id.parse().expect("decimal id"))
        .collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {numbers:?}"
    );
    assert!(
        numbers[0] >= before_ms && numbers[5] <= after_ms + 1_000,
        "epoch ms: {numbers:?} vs {before_ms}..{after_ms}"
    );
    for (n, id) in ids.iter().enumerate() {
        let message = get_message(&app, &token, &thread, id).await;
        // Sequence 1 and 2 are the creation's system messages.
        assert_eq!(message["sequenceId"], json!((n + 3).to_string()));
        assert_eq!(
            message["version"],
            json!(id),
            "an unedited message's version is its id"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn get_returns_the_message() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let before = wall_now_micros() / SECOND * SECOND;
    let plain = app.send_message(&token, &thread, "hello").await;
    let reply = app
        .chat(
            Method::POST,
            &messages_path(&thread),
            &token,
            Some(json!({ "content": "<b>hi</b>", "type": "html", "senderDisplayName": "Alice" })),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let html = reply.json()["id"].as_str().expect("id").to_owned();

    let message = get_message(&app, &token, &thread, &plain).await;
    assert_eq!(message["id"], plain.as_str());
    assert_eq!(message["type"], "text");
    assert_eq!(message["content"]["message"], "hello");
    assert_eq!(
        message["content"]["attachments"],
        json!([]),
        "recorded: ACS messages carry an empty attachments list"
    );
    assert_eq!(
        message["senderDisplayName"], "",
        "recorded: empty display name when unset"
    );
    assert_eq!(
        message["senderCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    assert_eq!(
        message["senderCommunicationIdentifier"]["communicationUser"]["id"],
        alice.as_str()
    );
    let created = parse_time(message["createdOn"].as_str().expect("createdOn"));
    assert!(
        created >= before && created <= wall_now_micros(),
        "createdOn is now"
    );
    assert!(message.get("editedOn").is_none() && message.get("deletedOn").is_none());

    let message = get_message(&app, &token, &thread, &html).await;
    assert_eq!(message["type"], "html");
    assert_eq!(message["senderDisplayName"], "Alice");
    app.stop().await;
}

#[tokio::test]
async fn list_is_newest_first_with_system_messages() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let thread = app.create_thread(&token, "lunch", &[&bob]).await;
    app.send_message(&token, &thread, "one").await;
    app.send_message(&token, &thread, "two").await;
    let items = app.items(&messages_path(&thread), &token).await;
    let sequence: Vec<&str> = items
        .iter()
        .map(|m| m["sequenceId"].as_str().expect("string sequenceId"))
        .collect();
    assert_eq!(sequence, ["4", "3", "2", "1"]);
    assert_eq!(texts(&items), ["two", "one"]);

    let topic = &items[2];
    assert_eq!(topic["type"], "topicUpdated");
    assert_eq!(topic["content"]["topic"], "lunch");
    assert_eq!(
        topic["content"]["initiatorCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );

    let added = &items[3];
    assert_eq!(added["type"], "participantAdded");
    assert_eq!(
        added["content"]["initiatorCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    let mut ids: Vec<&str> = added["content"]["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| {
            p["communicationIdentifier"]["rawId"]
                .as_str()
                .expect("rawId")
        })
        .collect();
    ids.sort();
    let mut expected = vec![alice.as_str(), bob.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        added["content"]["participants"][0]["shareHistoryTime"],
        "1970-01-01T00:00:00Z"
    );
    for system in [topic, added] {
        assert!(
            system.get("senderCommunicationIdentifier").is_none(),
            "system messages have no sender: {system}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn list_pages_to_the_end_with_exact_counts() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    for n in 0..5 {
        app.send_message(&token, &thread, &format!("m{n}")).await;
    }
    let mut url = app.chat_url(&format!("{}?maxPageSize=2", messages_path(&thread)));
    let mut sizes = Vec::new();
    let mut sequence = Vec::new();
    loop {
        let reply = app.chat(Method::GET, &url, &token, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = reply.json();
        let value = body["value"].as_array().expect("value");
        sizes.push(value.len());
        sequence.extend(value.iter().map(|m| {
            m["sequenceId"]
                .as_str()
                .expect("sequenceId")
                .parse::<i64>()
                .expect("number")
        }));
        let Some(next) = body.get("nextLink").and_then(Value::as_str) else {
            break;
        };
        assert!(
            next.starts_with(&format!("{}/chat/threads/", app.http_base)),
            "absolute: {next}"
        );
        assert!(next.contains("/messages?"), "{next}");
        assert!(
            next.contains("maxPageSize=2") && next.contains(&format!("api-version={CHAT_VERSION}")),
            "{next}"
        );
        url = next.to_owned();
        assert!(sizes.len() < 10, "paging does not end");
    }
    assert_eq!(sizes, [2, 2, 2, 1]);
    assert_eq!(sequence, [7, 6, 5, 4, 3, 2, 1]);
    app.stop().await;
}

#[tokio::test]
async fn start_time_filters_older_messages() {
    let clock = Arc::new(FixedClock::new(wall_now_micros()));
    let app = TestApp::builder().clock(clock.clone()).spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let t0 = clock_now(&clock);
    app.send_message(&token, &thread, "old").await;
    clock.advance_micros(10 * SECOND);
    app.send_message(&token, &thread, "new1").await;
    app.send_message(&token, &thread, "new2").await;

    let since = |at: i64| format!("{}?startTime={}", messages_path(&thread), rfc3339(at));
    let recent = app.items(&since(t0 + 5 * SECOND), &token).await;
    assert_eq!(texts(&recent), ["new2", "new1"]);
    assert_eq!(
        recent.len(),
        2,
        "the creation's system messages are older too: {recent:?}"
    );
    assert!(
        app.items(&since(t0 + 60 * SECOND), &token).await.is_empty(),
        "nothing after a future startTime"
    );
    assert_eq!(app.items(&since(t0 - 3600 * SECOND), &token).await.len(), 5);

    // Paging keeps the filter.
    let pages = app
        .all_pages(&format!("{}&maxPageSize=1", since(t0 + 5 * SECOND)), &token)
        .await;
    let total: usize = pages.iter().map(Vec::len).sum();
    assert_eq!(total, 2, "{pages:?}");
    app.stop().await;
}

fn clock_now(clock: &FixedClock) -> i64 {
    use acs_chat_emulator::clock::Clock;
    clock.now_micros()
}

#[tokio::test]
async fn sender_can_update_a_message() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let id = app.send_message(&token, &thread, "draft").await;
    let before = get_message(&app, &token, &thread, &id).await;
    let reply = app
        .chat(
            Method::PATCH,
            &message_path(&thread, &id),
            &token,
            Some(json!({ "content": "final" })),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.text.is_empty());
    let after = get_message(&app, &token, &thread, &id).await;
    assert_eq!(after["content"]["message"], "final");
    parse_time(after["editedOn"].as_str().expect("editedOn"));
    assert_ne!(after["version"], before["version"]);
    let (old, new): (i64, i64) = (
        before["version"]
            .as_str()
            .expect("version")
            .parse()
            .expect("number"),
        after["version"]
            .as_str()
            .expect("version")
            .parse()
            .expect("number"),
    );
    assert!(new > old, "version moves forward: {old} → {new}");
    assert_eq!(after["sequenceId"], before["sequenceId"]);
    assert_eq!(after["id"], before["id"]);
    app.stop().await;
}

#[tokio::test]
async fn message_metadata_is_merge_patched() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let reply = app
        .chat(
            Method::POST,
            &messages_path(&thread),
            &token,
            Some(json!({ "content": "x", "metadata": { "a": "1", "b": "2" } })),
        )
        .await;
    let id = reply.json()["id"].as_str().expect("id").to_owned();
    let reply = app
        .chat(
            Method::PATCH,
            &message_path(&thread, &id),
            &token,
            Some(json!({ "metadata": { "a": null, "c": "3" } })),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let message = get_message(&app, &token, &thread, &id).await;
    assert_eq!(message["metadata"], json!({ "b": "2", "c": "3" }));
    assert_eq!(message["content"]["message"], "x");
    app.stop().await;
}

#[tokio::test]
async fn only_the_sender_may_update_or_delete() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[&bob]).await;
    let id = app.send_message(&token, &thread, "mine").await;
    let reply = app
        .chat(
            Method::PATCH,
            &message_path(&thread, &id),
            &bob_token,
            Some(json!({ "content": "bob's" })),
        )
        .await;
    reply.assert_error(403, "Forbidden");
    let reply = app
        .chat(
            Method::DELETE,
            &message_path(&thread, &id),
            &bob_token,
            None,
        )
        .await;
    reply.assert_error(403, "Forbidden");
    let message = get_message(&app, &token, &thread, &id).await;
    assert_eq!(message["content"]["message"], "mine");
    assert!(message.get("deletedOn").is_none() && message.get("editedOn").is_none());
    app.stop().await;
}

#[tokio::test]
async fn delete_is_204_and_the_message_shows_deleted_on() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let id = app.send_message(&token, &thread, "oops").await;
    let reply = app
        .chat(Method::DELETE, &message_path(&thread, &id), &token, None)
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.text.is_empty());
    let message = get_message(&app, &token, &thread, &id).await;
    parse_time(message["deletedOn"].as_str().expect("deletedOn"));
    let listed = app.items(&messages_path(&thread), &token).await;
    let item = listed
        .iter()
        .find(|m| m["id"] == id.as_str())
        .expect("still listed");
    assert!(item["deletedOn"].as_str().is_some(), "{item}");
    app.stop().await;
}

#[tokio::test]
async fn message_over_28_kb_is_400_and_not_stored() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let kept = app.send_message(&token, &thread, "small").await;
    let big = "x".repeat(29 * 1024);
    let reply = app
        .chat(
            Method::POST,
            &messages_path(&thread),
            &token,
            Some(json!({ "content": big })),
        )
        .await;
    assert_eq!(
        reply.status,
        400,
        "{}",
        &reply.text[..reply.text.len().min(300)]
    );
    assert!(reply.json()["error"]["code"].as_str().is_some());
    assert_eq!(
        app.items(&messages_path(&thread), &token).await.len(),
        3,
        "nothing stored"
    );
    let reply = app
        .chat(
            Method::PATCH,
            &message_path(&thread, &kept),
            &token,
            Some(json!({ "content": big })),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        get_message(&app, &token, &thread, &kept).await["content"]["message"],
        "small"
    );
    // A message well inside the limit is fine.
    let reply = app
        .chat(
            Method::POST,
            &messages_path(&thread),
            &token,
            Some(json!({ "content": "y".repeat(20 * 1024) })),
        )
        .await;
    assert_eq!(reply.status, 201);
    app.stop().await;
}

#[tokio::test]
async fn system_message_types_cannot_be_sent() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    for kind in ["topicUpdated", "participantAdded", "participantRemoved"] {
        let reply = app
            .chat(
                Method::POST,
                &messages_path(&thread),
                &token,
                Some(json!({ "content": "x", "type": kind })),
            )
            .await;
        assert_eq!(reply.status, 400, "{kind}: {}", reply.text);
        assert!(reply.json()["error"]["message"].as_str().is_some());
    }
    assert_eq!(app.items(&messages_path(&thread), &token).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn invalid_message_id_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let path = message_path(&thread, "invalid_chat_message_id");
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({ "content": "x" }))),
        (Method::DELETE, None),
    ] {
        let reply = app.chat(method.clone(), &path, &token, body).await;
        assert_eq!(reply.status, 400, "{method}: {}", reply.text);
        assert_eq!(
            reply.json()["error"]["message"],
            "Value for MessageId (invalid_chat_message_id) is not valid.",
            "{method}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_message_id_is_404() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let path = message_path(&thread, "1593107077683");
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({ "content": "x" }))),
        (Method::DELETE, None),
    ] {
        let reply = app.chat(method.clone(), &path, &token, body).await;
        assert_eq!(reply.status, 404, "{method}: {}", reply.text);
        assert!(reply.json()["error"]["code"].as_str().is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn missing_content_is_400() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    for body in [
        json!({}),
        json!({ "senderDisplayName": "x" }),
        json!({ "content": null }),
    ] {
        let reply = app
            .chat(
                Method::POST,
                &messages_path(&thread),
                &token,
                Some(body.clone()),
            )
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
    }
    assert_eq!(app.items(&messages_path(&thread), &token).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_with_the_acs_body() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let url = app.chat_url(&messages_path(&thread));
    for body in [r#"{"content": "x""#, "not json", r#"{"content": "x",}"#] {
        let reply = app
            .send(
                Method::POST,
                &url,
                &[("authorization", format!("Bearer {token}"))],
                Some(body),
            )
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        let json = reply.json();
        assert!(
            json["error"]["code"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "{}",
            reply.text
        );
        assert!(
            json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            reply.text
        );
        assert_eq!(reply.header("x-ms-error-response"), Some("true"));
    }
    app.stop().await;
}

#[tokio::test]
async fn share_history_time_hides_earlier_messages() {
    let clock = Arc::new(FixedClock::new(wall_now_micros()));
    let app = TestApp::builder().clock(clock.clone()).spawn().await;
    let (_, token) = app.create_user().await;
    let (carol, carol_token) = app.create_user().await;
    let (dave, dave_token) = app.create_user().await;
    let (erin, erin_token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let early = app.send_message(&token, &thread, "before").await;
    clock.advance_micros(SECOND);
    let now = clock_now(&clock);

    let add = |id: &str, share: Option<i64>| {
        let mut p = participant(id);
        if let Some(at) = share {
            p["shareHistoryTime"] = json!(rfc3339(at));
        }
        json!({ "participants": [p] })
    };
    let add_path = format!("{}/participants/:add", thread_path(&thread));
    // Carol: history from an hour ahead. Dave: history from now. Erin: everything.
    for body in [
        add(&carol, Some(now + 3600 * SECOND)),
        add(&dave, Some(now)),
        add(&erin, None),
    ] {
        let reply = app.chat(Method::POST, &add_path, &token, Some(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    app.send_message(&token, &thread, "after").await;

    let seen = async |t: &str| texts(&app.items(&messages_path(&thread), t).await);
    assert_eq!(
        seen(&erin_token).await,
        ["after", "before"],
        "no shareHistoryTime: all history"
    );
    assert_eq!(
        seen(&dave_token).await,
        ["after"],
        "history from now: not the earlier message"
    );
    assert!(
        seen(&carol_token).await.is_empty(),
        "history from the future: nothing yet"
    );
    let reply = app
        .chat(
            Method::GET,
            &message_path(&thread, &early),
            &dave_token,
            None,
        )
        .await;
    assert_ne!(
        reply.status, 200,
        "an earlier message is not readable: {}",
        reply.text
    );

    // Once the clock passes Carol's share time, new messages reach her; the old ones never do.
    clock.advance_micros(2 * 3600 * SECOND);
    app.send_message(&token, &thread, "later").await;
    assert_eq!(seen(&carol_token).await, ["later"]);
    app.stop().await;
}
