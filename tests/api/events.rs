//! The committed-event model (events.md §1-§4, §10): which events each chat operation commits,
//! their envelopes and `data`, that refused requests commit none, both surfaces alike; the
//! event log (`GET /_emulator/events`) and its live stream (`/_emulator/events/stream`).

use std::collections::BTreeMap;
use std::time::Duration;

use acs_chat_emulator::config::DEFAULT_RESOURCE_ARM_ID;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, enc, thread_path};

/// Every event of the log, oldest first (following nextLinks).
async fn all_events(app: &TestApp, query: &str) -> Vec<Value> {
    let mut url = format!("{}/_emulator/events?limit=7{query}", app.http_base);
    let mut events = Vec::new();
    loop {
        let reply = app.send(Method::GET, &url, &[], None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let page = reply.json();
        events.extend(page["value"].as_array().expect("value").iter().cloned());
        match page["nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    events.reverse();
    events
}

/// `(eventType suffix, recipient or "-")` of each event, in commit order.
fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let event = &e["event"];
            (
                event["eventType"]
                    .as_str()
                    .expect("type")
                    .trim_start_matches("Microsoft.Communication.")
                    .to_owned(),
                event["data"]["recipientCommunicationIdentifier"]["rawId"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned(),
            )
        })
        .collect()
}

/// The events committed since `since`, oldest first.
async fn events_since(app: &TestApp, since: i64) -> Vec<Value> {
    all_events(app, &format!("&since={since}")).await
}

fn last_sequence(events: &[Value]) -> i64 {
    events
        .last()
        .and_then(|e| e["sequence"].as_i64())
        .unwrap_or(0)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn each_chat_operation_commits_the_documented_events() {
    // events.md §2's worked example, operation by operation.
    let app = TestApp::builder().spawn().await;
    let (alice, alice_token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    let (carol, _) = app.create_user().await;
    let (dave, _) = app.create_user().await;

    let thread = app
        .create_thread(&alice_token, "Lunch", &[&bob, &carol])
        .await;
    let created = events_since(&app, 0).await;
    assert_eq!(
        kinds(&created),
        pairs(&[
            ("ChatThreadCreated", "-"),
            ("ChatThreadCreatedWithUser", &bob),
            ("ChatThreadCreatedWithUser", &carol),
        ])
    );
    let data = &created[0]["event"]["data"];
    assert_eq!(data["threadId"], thread.as_str());
    assert_eq!(
        data["createdByCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
    assert_eq!(data["properties"]["topic"], "Lunch");
    assert_eq!(data["participants"].as_array().map(Vec::len), Some(3));
    let mut at = last_sequence(&created);

    let message = app.send_message(&bob_token, &thread, "Pizza?").await;
    let sent = events_since(&app, at).await;
    assert_eq!(
        kinds(&sent),
        pairs(&[
            ("ChatMessageReceivedInThread", "-"),
            ("ChatMessageReceived", &alice),
            ("ChatMessageReceived", &carol),
        ])
    );
    let data = &sent[1]["event"]["data"];
    assert_eq!(data["messageId"], message.as_str());
    assert_eq!(data["messageBody"], "Pizza?");
    assert_eq!(data["senderCommunicationIdentifier"]["rawId"], bob.as_str());
    assert_eq!(data["type"], "Text");
    assert_eq!(
        data["version"].as_i64(),
        message.parse::<i64>().ok(),
        "a new message's version is its id, as a number"
    );
    assert_eq!(
        sent[1]["event"]["subject"],
        format!("thread/{thread}/sender/{bob}/recipient/{alice}")
    );
    // One change, one transaction id.
    let transactions: std::collections::BTreeSet<&str> = sent
        .iter()
        .filter_map(|e| e["event"]["data"]["transactionId"].as_str())
        .collect();
    assert_eq!(transactions.len(), 1, "{sent:?}");
    at = last_sequence(&sent);

    let message_url = format!("{}/messages/{message}", thread_path(&thread));
    let edited = app
        .chat(
            Method::PATCH,
            &message_url,
            &bob_token,
            Some(json!({"content": "Sushi?"})),
        )
        .await;
    assert_eq!(edited.status, 204, "{}", edited.text);
    let edits = events_since(&app, at).await;
    assert_eq!(
        kinds(&edits),
        pairs(&[
            ("ChatMessageEditedInThread", "-"),
            ("ChatMessageEdited", &alice),
            ("ChatMessageEdited", &carol),
        ])
    );
    assert_eq!(edits[0]["event"]["data"]["messageBody"], "Sushi?");
    assert!(
        edits[0]["event"]["data"]["version"].as_i64() > message.parse::<i64>().ok(),
        "an edit raises the version"
    );
    at = last_sequence(&edits);

    let topic = app
        .chat(
            Method::PATCH,
            &thread_path(&thread),
            &alice_token,
            Some(json!({"topic": "Dinner"})),
        )
        .await;
    assert_eq!(topic.status, 204, "{}", topic.text);
    let updated = events_since(&app, at).await;
    assert_eq!(
        kinds(&updated),
        pairs(&[
            ("ChatThreadPropertiesUpdated", "-"),
            ("ChatThreadPropertiesUpdatedPerUser", &bob),
            ("ChatThreadPropertiesUpdatedPerUser", &carol),
        ])
    );
    assert_eq!(updated[0]["event"]["data"]["properties"]["topic"], "Dinner");
    at = last_sequence(&updated);

    let added = app.add_participants(&alice_token, &thread, &[&dave]).await;
    assert_eq!(added.status, 201, "{}", added.text);
    let adds = events_since(&app, at).await;
    // The added participant is among the recipients (events.md §10).
    assert_eq!(
        kinds(&adds),
        pairs(&[
            ("ChatThreadParticipantAdded", "-"),
            ("ChatParticipantAddedToThreadWithUser", &bob),
            ("ChatParticipantAddedToThreadWithUser", &carol),
            ("ChatParticipantAddedToThreadWithUser", &dave),
        ])
    );
    assert_eq!(
        adds[0]["event"]["subject"],
        format!("thread/{thread}/participantadded/{dave}")
    );
    assert_eq!(
        adds[1]["event"]["data"]["participantAdded"]["participantCommunicationIdentifier"]["rawId"],
        dave.as_str()
    );
    at = last_sequence(&adds);

    let removed = app
        .chat(
            Method::POST,
            &format!("{}/participants/:remove", thread_path(&thread)),
            &alice_token,
            Some(json!({"communicationUser": {"id": carol}})),
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    let removals = events_since(&app, at).await;
    // The removed participant is among the recipients (events.md §10).
    assert_eq!(
        kinds(&removals),
        pairs(&[
            ("ChatThreadParticipantRemoved", "-"),
            ("ChatParticipantRemovedFromThreadWithUser", &bob),
            ("ChatParticipantRemovedFromThreadWithUser", &carol),
            ("ChatParticipantRemovedFromThreadWithUser", &dave),
        ])
    );
    at = last_sequence(&removals);

    let typing = app
        .chat(
            Method::POST,
            &format!("{}/typing", thread_path(&thread)),
            &bob_token,
            Some(json!({"senderDisplayName": "Bob"})),
        )
        .await;
    assert_eq!(typing.status, 200, "{}", typing.text);
    let typed = events_since(&app, at).await;
    assert_eq!(
        kinds(&typed),
        pairs(&[("ChatTypingIndicatorReceivedInThread", "-")])
    );
    assert_eq!(typed[0]["event"]["data"]["senderDisplayName"], "Bob");
    at = last_sequence(&typed);

    let deleted = app
        .chat(Method::DELETE, &message_url, &bob_token, None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let deletions = events_since(&app, at).await;
    assert_eq!(
        kinds(&deletions),
        pairs(&[
            ("ChatMessageDeletedInThread", "-"),
            ("ChatMessageDeleted", &alice),
            ("ChatMessageDeleted", &dave),
        ])
    );
    at = last_sequence(&deletions);

    let gone = app
        .chat(Method::DELETE, &thread_path(&thread), &alice_token, None)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    let thread_deleted = events_since(&app, at).await;
    assert_eq!(
        kinds(&thread_deleted),
        pairs(&[
            ("ChatThreadDeleted", "-"),
            ("ChatThreadWithUserDeleted", &bob),
            ("ChatThreadWithUserDeleted", &dave),
        ])
    );
    at = last_sequence(&thread_deleted);

    // Deleting again changes nothing and commits nothing; nor does a read receipt.
    let again = app
        .chat(Method::DELETE, &thread_path(&thread), &alice_token, None)
        .await;
    assert_eq!(again.status, 204, "{}", again.text);
    assert!(events_since(&app, at).await.is_empty());
}

#[tokio::test]
async fn envelopes_are_the_event_grid_schema_with_the_resources_arm_id() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    app.send_message(&token, &thread, "hi").await;
    let events = events_since(&app, 0).await;
    let mut ids = std::collections::BTreeSet::new();
    for entry in &events {
        let event = &entry["event"];
        assert_eq!(event["topic"], DEFAULT_RESOURCE_ARM_ID, "{event}");
        assert_eq!(event["dataVersion"], "1.0");
        assert_eq!(event["metadataVersion"], "1");
        assert!(
            event["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("thread/"))
        );
        let time = event["eventTime"].as_str().expect("eventTime");
        assert!(
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "RFC 3339: {time}"
        );
        assert!(
            ids.insert(event["id"].as_str().expect("id").to_owned()),
            "unique ids"
        );
        let data = &event["data"];
        assert!(
            data["transactionId"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        assert_eq!(data["threadId"], thread.as_str());
        assert!(data["version"].is_i64(), "version is a number: {data}");
    }
    // The ARM id is shown by /_emulator/info.
    let info = app.raw(Method::GET, "/_emulator/info", &[], None).await;
    assert_eq!(info.json()["armResourceId"], DEFAULT_RESOURCE_ARM_ID);
}

#[tokio::test]
async fn refused_requests_commit_no_event_and_both_surfaces_commit_the_same() {
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let (_, outsider) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let at = last_sequence(&events_since(&app, 0).await);
    let refused = app
        .chat(
            Method::POST,
            &format!("{}/messages", thread_path(&thread)),
            &outsider,
            Some(json!({"content": "let me in"})),
        )
        .await;
    refused.assert_error(403, "Forbidden");
    let too_big = app
        .chat(
            Method::POST,
            &format!("{}/messages", thread_path(&thread)),
            &token,
            Some(json!({"content": "x".repeat(29 * 1024)})),
        )
        .await;
    too_big.assert_error(400, "BadRequest");
    assert!(
        events_since(&app, at).await.is_empty(),
        "no event for a refusal"
    );

    let legacy = app
        .chat(
            Method::POST,
            &format!(
                "/chat/threads/{}/messages?api-version=2020-09-21-preview2",
                enc(&thread)
            ),
            &token,
            Some(json!({"content": "from 2020"})),
        )
        .await;
    assert_eq!(legacy.status, 201, "{}", legacy.text);
    let events = events_since(&app, at).await;
    assert_eq!(
        kinds(&events),
        pairs(&[("ChatMessageReceivedInThread", "-")])
    );
    let data = &events[0]["event"]["data"];
    assert_eq!(data["messageBody"], "from 2020");
    assert_eq!(
        data["senderCommunicationIdentifier"]["rawId"],
        alice.as_str()
    );
}

#[tokio::test]
async fn the_log_filters_by_type_and_thread_and_reset_clears_it() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let (bob, _) = app.create_user().await;
    let first = app.create_thread(&token, "one", &[&bob]).await;
    let second = app.create_thread(&token, "two", &[]).await;
    app.send_message(&token, &first, "a").await;
    app.send_message(&token, &second, "b").await;

    let by_type = all_events(&app, "&type=ChatMessageReceived").await;
    assert_eq!(kinds(&by_type), pairs(&[("ChatMessageReceived", &bob)]));
    let full_name = all_events(&app, "&type=Microsoft.Communication.ChatMessageReceived").await;
    assert_eq!(full_name.len(), 1);
    let by_thread = all_events(&app, &format!("&threadId={}", enc(&second))).await;
    assert_eq!(
        kinds(&by_thread),
        pairs(&[
            ("ChatThreadCreated", "-"),
            ("ChatMessageReceivedInThread", "-")
        ])
    );
    // Newest first, sequence numbers increasing in commit order.
    let reply = app.raw(Method::GET, "/_emulator/events", &[], None).await;
    let sequences: Vec<i64> = reply.json()["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|e| e["sequence"].as_i64())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "{sequences:?}");

    let bad = app
        .raw(Method::GET, "/_emulator/events?limit=0", &[], None)
        .await;
    bad.assert_error(400, "BadRequest");

    let reset = app.admin(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    assert!(all_events(&app, "").await.is_empty());
}

/// Reads the SSE stream until `count` events arrived; (id, event name, data) of each.
async fn read_stream(response: reqwest::Response, count: usize) -> Vec<(String, String, Value)> {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    // The deadline only catches a hang; the verdict is what arrived.
    let read = async {
        while events.len() < count {
            let chunk = body.next().await.expect("stream open").expect("chunk");
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let mut fields = BTreeMap::new();
                for line in block.lines() {
                    if let Some((name, value)) = line.split_once(": ") {
                        fields.insert(name.to_owned(), value.to_owned());
                    }
                }
                if let (Some(id), Some(name), Some(data)) =
                    (fields.get("id"), fields.get("event"), fields.get("data"))
                {
                    events.push((
                        id.clone(),
                        name.clone(),
                        serde_json::from_str(data).expect("data is JSON"),
                    ));
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the events arrived");
    events
}

#[tokio::test]
async fn the_stream_delivers_events_as_they_commit_and_resumes_after_last_event_id() {
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let thread = app.create_thread(&token, "t", &[]).await;
    let stream = app
        .client
        .get(format!("{}/_emulator/events/stream", app.http_base))
        .send()
        .await
        .expect("stream opened");
    assert_eq!(stream.status(), 200);
    assert!(
        stream
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    );
    // Opened after the thread was created: it starts with the next commit.
    let message = app.send_message(&token, &thread, "live").await;
    let live = read_stream(stream, 1).await;
    assert_eq!(
        live[0].1,
        "Microsoft.Communication.ChatMessageReceivedInThread"
    );
    assert_eq!(live[0].2["data"]["messageId"], message.as_str());

    // Resuming after the thread's creation replays what came after it.
    let created = events_since(&app, 0).await;
    let created_at = created[0]["sequence"].to_string();
    let resumed = app
        .client
        .get(format!("{}/_emulator/events/stream", app.http_base))
        .header("last-event-id", created_at)
        .send()
        .await
        .expect("stream opened");
    let replayed = read_stream(resumed, 1).await;
    assert_eq!(replayed[0].0, live[0].0, "the same event, the same id");

    let bad = app
        .raw(
            Method::GET,
            "/_emulator/events/stream",
            &[("last-event-id", "yesterday".to_owned())],
            None,
        )
        .await;
    bad.assert_error(400, "BadRequest");
    // Open streams do not hold the shutdown.
    app.stop().await;
}
