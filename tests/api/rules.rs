//! The chat rules as one layer guarantees them: the same decision on both surfaces, the
//! surface chosen from the api-version as the extractors read it, and rules that depend on
//! stored state (membership, the metadata limit) holding under concurrent writers. The races
//! are run, many writers and rounds, and the invariant is asserted on the final state; none of
//! them depends on timing to pass. (A deletion racing sends leaves no trace of commit order
//! over HTTP; `chat::tests` forces that interleaving instead.)

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, enc, thread_path};

const PREVIEW2: &str = "api-version=2020-09-21-preview2";

/// Rounds of each race; each round is a fresh thread.
const ROUNDS: usize = 8;
/// Concurrent writers in a race.
const WRITERS: usize = 8;

#[tokio::test]
async fn a_join_token_deleting_a_missing_thread_is_refused_alike_on_both_surfaces() {
    // Before the chat layer, today's surface checked the scope first (403) and the 2020 one
    // looked the thread up first (204 for a missing thread).
    let app = TestApp::builder().spawn().await;
    let (_, join) = app.create_user_with_scopes(&["chat.join"]).await;
    let missing = enc("19:0123456789abcdef0123456789abcdef@thread.v2");
    let today = app
        .chat(
            Method::DELETE,
            &format!("/chat/threads/{missing}"),
            &join,
            None,
        )
        .await;
    today.assert_error(403, "Forbidden");
    let preview2 = app
        .chat(
            Method::DELETE,
            &format!("/chat/threads/{missing}?{PREVIEW2}"),
            &join,
            None,
        )
        .await;
    assert_eq!(preview2.status, 403, "{}", preview2.text);
    assert_eq!(preview2.json()["code"], "Forbidden", "{}", preview2.text);
}

#[tokio::test]
async fn the_surface_is_chosen_from_the_api_version_in_any_case() {
    // `ChatApi` always read the parameter's name in any case; the surface dispatch compared
    // the query text, so `Api-Version=2020-09-21-preview2` reached today's handlers (201).
    let app = TestApp::builder().spawn().await;
    let (alice, token) = app.create_user().await;
    let created = app
        .chat(
            Method::POST,
            "/chat/threads?Api-Version=2020-09-21-preview2",
            &token,
            Some(json!({"topic": "t", "members": [{"id": alice}]})),
        )
        .await;
    assert_eq!(created.status, 207, "{}", created.text);
    assert!(
        created.json()["multipleStatus"].is_array(),
        "{}",
        created.text
    );
}

#[tokio::test]
async fn the_2024_preview_has_no_retention_kind_none() {
    // Its spec's RetentionPolicyKind is `threadCreationDate` only; 2025-03-15 adds `none`.
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    let body = json!({"topic": "t", "retentionPolicy": {"kind": "none"}});
    let preview = app
        .chat(
            Method::POST,
            "/chat/threads?api-version=2024-03-15-preview",
            &token,
            Some(body.clone()),
        )
        .await;
    preview.assert_error(400, "BadRequest");
    let stable = app
        .chat(
            Method::POST,
            "/chat/threads?api-version=2025-03-15",
            &token,
            Some(body),
        )
        .await;
    assert_eq!(stable.status, 201, "{}", stable.text);
    let id = stable.json()["chatThread"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // A policy of kind none (what a removed policy reads as) is no policy for the preview.
    let seen = app
        .chat(
            Method::GET,
            &format!("/chat/threads/{}?api-version=2024-03-15-preview", enc(&id)),
            &token,
            None,
        )
        .await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    assert!(
        seen.json().get("retentionPolicy").is_none(),
        "{}",
        seen.text
    );
}

/// The thread's messages as the emulator stores them (export), oldest first.
async fn stored_messages(app: &TestApp, thread_id: &str) -> Vec<Value> {
    let reply = app
        .raw(
            Method::GET,
            &format!("/_emulator/threads/{}", enc(thread_id)),
            &[],
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["messages"]
        .as_array()
        .expect("messages")
        .clone()
}

/// Sends messages as `token` until one is refused (at most `count`); the answers.
async fn send_until_refused(app: &TestApp, token: &str, thread_id: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for n in 0..count {
        let reply = app
            .chat(
                Method::POST,
                &format!("{}/messages", thread_path(thread_id)),
                token,
                Some(json!({ "content": format!("m{n}") })),
            )
            .await;
        statuses.push(reply.status.as_u16());
        if reply.status != 201 {
            break;
        }
    }
    statuses
}

#[tokio::test]
async fn no_message_of_a_removed_participant_is_stored_after_their_removal() {
    let app = TestApp::builder().spawn().await;
    let (alice, alice_token) = app.create_user().await;
    let (bob, bob_token) = app.create_user().await;
    for round in 0..ROUNDS {
        let thread = app.create_thread(&alice_token, "race", &[&bob]).await;
        let senders = (0..WRITERS).map(|_| send_until_refused(&app, &bob_token, &thread, 40));
        let removal = async {
            // A few messages first, so the removal lands while Bob's sends are in flight.
            send_until_refused(&app, &alice_token, &thread, 2).await;
            let reply = app
                .chat(
                    Method::POST,
                    &format!("{}/participants/:remove", thread_path(&thread)),
                    &alice_token,
                    Some(json!({ "communicationUser": { "id": bob } })),
                )
                .await;
            assert_eq!(reply.status, 204, "{}", reply.text);
        };
        let (answers, ()) = tokio::join!(join_all(senders), removal);
        for statuses in &answers {
            // Every refusal after the removal is the non-participant's 403.
            assert!(
                statuses.iter().all(|s| *s == 201 || *s == 403),
                "{statuses:?}"
            );
        }
        let messages = stored_messages(&app, &thread).await;
        let removed_at = messages
            .iter()
            .find(|m| m["type"] == "participantRemoved")
            .and_then(|m| m["sequenceId"].as_i64())
            .expect("the removal's system message");
        let after: Vec<&Value> = messages
            .iter()
            .filter(|m| {
                m["senderId"] == bob.as_str() && m["sequenceId"].as_i64() > Some(removed_at)
            })
            .collect();
        assert!(
            after.is_empty(),
            "round {round}: {} of Bob's messages were stored after his removal",
            after.len()
        );
        let accepted: usize = answers
            .iter()
            .map(|s| s.iter().filter(|s| **s == 201).count())
            .sum();
        let stored = messages
            .iter()
            .filter(|m| m["senderId"] == bob.as_str())
            .count();
        assert_eq!(accepted, stored, "round {round}: every 201 is stored");
        let _ = alice;
    }
}

/// `n` merge patches of one distinct ~300-byte key each, sent at once to `path` with
/// `content_type`; the answers.
async fn concurrent_metadata_patches(
    app: &TestApp,
    token: &str,
    path: &str,
    round: usize,
) -> Vec<Reply> {
    let patches = (0..WRITERS).map(|n| {
        let body = json!({ "metadata": { format!("k{round}_{n}"): "v".repeat(300) } });
        app.chat(Method::PATCH, path, token, Some(body))
    });
    join_all(patches).await
}

/// Bytes of a metadata map as the limit counts them (keys and values).
fn metadata_bytes(metadata: &Value) -> usize {
    metadata
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn concurrent_metadata_patches_never_store_more_than_the_limit() {
    // Each patch alone is under 1 KB; four of them together are over it.
    let app = TestApp::builder().spawn().await;
    let (_, token) = app.create_user().await;
    for round in 0..ROUNDS {
        let thread = app.create_thread(&token, "race", &[]).await;
        let message = app.send_message(&token, &thread, "m").await;
        let thread_url = thread_path(&thread);
        let message_url = format!("{thread_url}/messages/{message}");
        for (url, read) in [(&thread_url, "metadata"), (&message_url, "metadata")] {
            let answers = concurrent_metadata_patches(&app, &token, url, round).await;
            let accepted = answers.iter().filter(|r| r.status == 204).count();
            for refused in answers.iter().filter(|r| r.status != 204) {
                refused.assert_error(400, "BadRequest");
            }
            let stored = app.chat(Method::GET, url, &token, None).await.json()[read].clone();
            let bytes = metadata_bytes(&stored);
            assert!(
                bytes <= 1024,
                "round {round} {url}: {bytes} bytes of metadata stored"
            );
            assert_eq!(
                stored.as_object().map_or(0, |m| m.len()),
                accepted,
                "round {round} {url}: every accepted patch is stored, no refused one"
            );
        }
    }
}
